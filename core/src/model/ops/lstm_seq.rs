//! The fused whole-sequence LSTM op behind [`crate::model::lstm::LstmCell::seq`].
//!
//! Forward: inputs xproj [T, B, 4H], w_h [H, 4H], state0 [B, 2H] = (h0, c0); output
//! [T + 1, B, H] = h_0 .. h_{T-1}, then the final c. The output stays small because every
//! narrow of it costs a full-size zero pad in candle's backward. What the backward needs
//! besides h (c_t, tanh c_t and the activated gates, [T, B, 6H]) is kept in the op's
//! `saved` slot: candle keeps the op alive in the graph exactly as long as the output, and
//! drops it at once when no input tracks gradients.
//!
//! Both passes split the batch into one block of rows per thread of candle's worker pool;
//! rows are independent in the recurrence, so each thread runs all T steps on its rows with
//! single-threaded gemms and no synchronisation. dW_h = sum_t h_{t-1}^T dgates_t is one big
//! gemm over all steps after the loop (each thread takes a block of its columns).

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{
    bail, CpuStorage, CustomOp3, Device, Layout, Result, Shape, Storage, Tensor, WithDType,
};
use gemm::Parallelism;

use super::kernels::{BackwardRows, Elem, ForwardRows, WS};

enum Saved {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Workspaces of dropped sequences, kept for reuse: a training step would otherwise fault
/// in and zero tens of MB afresh for every layer. At most `POOL_SIZE` buffers per dtype.
const POOL_SIZE: usize = 8;
static POOL_F32: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
static POOL_F64: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());

/// The workspace pool of each float type.
trait Pooled: Elem {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
}

impl Pooled for f32 {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>> {
        &POOL_F32
    }
}

impl Pooled for f64 {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>> {
        &POOL_F64
    }
}

/// Frees the workspaces that [`crate::model::lstm::LstmCell::seq`] keeps for reuse (up
/// to 8 per dtype, each `T * B * 6H` floats of a past call).
pub fn release_workspaces() {
    POOL_F32.lock().map(|mut p| p.clear()).ok();
    POOL_F64.lock().map(|mut p| p.clear()).ok();
}

/// A buffer of `len` elements (contents unspecified), from the pool when one fits.
fn take_workspace<F: Pooled>(len: usize) -> Vec<F> {
    let reused = F::pool().lock().ok().and_then(|mut pool| {
        let best = (0..pool.len())
            .filter(|&i| pool[i].capacity() >= len)
            .min_by_key(|&i| pool[i].capacity())?;
        Some(pool.swap_remove(best))
    });
    match reused {
        Some(mut v) => {
            v.resize(len, F::ZERO);
            v
        }
        None => vec![F::ZERO; len],
    }
}

fn give_workspace<F: Pooled>(v: Vec<F>) {
    if let Ok(mut pool) = F::pool().lock() {
        pool.push(v);
        if pool.len() > POOL_SIZE {
            let smallest = (0..pool.len())
                .min_by_key(|&i| pool[i].capacity())
                .unwrap_or(0);
            pool.swap_remove(smallest);
        }
    }
}

impl Drop for LstmSeqOp {
    fn drop(&mut self) {
        let saved = self
            .saved
            .get_mut()
            .ok()
            .and_then(|s| s.take())
            .and_then(|s| Arc::try_unwrap(s).ok());
        match saved {
            Some(Saved::F32(v)) => give_workspace(v),
            Some(Saved::F64(v)) => give_workspace(v),
            None => {}
        }
    }
}

pub struct LstmSeqOp {
    hidden: usize,
    saved: Mutex<Option<Arc<Saved>>>,
}

impl LstmSeqOp {
    pub fn new(hidden: usize) -> Self {
        Self {
            hidden,
            saved: Mutex::new(None),
        }
    }

    fn dims(&self, l1: &Layout, l2: &Layout, l3: &Layout) -> Result<(usize, usize)> {
        let n = self.hidden;
        let (t, b) = match l1.dims() {
            &[t, b, w] if w == 4 * n => (t, b),
            d => bail!("lstm_seq: xproj {d:?}, expected [T, B, {}]", 4 * n),
        };
        if l2.dims() != [n, 4 * n] {
            bail!("lstm_seq: w_h {:?}, expected [{n}, {}]", l2.dims(), 4 * n);
        }
        if l3.dims() != [b, 2 * n] {
            bail!("lstm_seq: state {:?}, expected [{b}, {}]", l3.dims(), 2 * n);
        }
        if t == 0 {
            bail!("lstm_seq: empty sequence");
        }
        Ok((t, b))
    }
}

impl CustomOp3 for LstmSeqOp {
    fn name(&self) -> &'static str {
        "lstm-seq"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (t, b) = self.dims(l1, l2, l3)?;
        let n = self.hidden;
        let dims = Dims { t, b, n };
        let (out, saved) = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let (out, ws) =
                    forward::<f32>(dims, &slice(s1, l1)?, &slice(s2, l2)?, &slice(s3, l3)?);
                (CpuStorage::F32(out), Saved::F32(ws))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let (out, ws) =
                    forward::<f64>(dims, &slice(s1, l1)?, &slice(s2, l2)?, &slice(s3, l3)?);
                (CpuStorage::F64(out), Saved::F64(ws))
            }
            _ => bail!(
                "lstm_seq: unsupported dtypes {:?}, {:?}, {:?} (f32 or f64, all the same)",
                s1.dtype(),
                s2.dtype(),
                s3.dtype()
            ),
        };
        *self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("lstm_seq: poisoned".into()))? =
            Some(Arc::new(saved));
        Ok((out, Shape::from((t + 1, b, n))))
    }

    fn bwd(
        &self,
        xproj: &Tensor,
        w_h: &Tensor,
        state: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("lstm_seq: poisoned".into()))?
            .clone()
            .ok_or_else(|| candle_core::Error::Msg("lstm_seq: backward before forward".into()))?;
        let (t, b) = self.dims(xproj.layout(), w_h.layout(), state.layout())?;
        let n = self.hidden;
        let dims = Dims { t, b, n };
        let (w_s, w_l) = w_h.storage_and_layout();
        let (s_s, s_l) = state.storage_and_layout();
        let (r_s, r_l) = res.storage_and_layout();
        let (g_s, g_l) = grad_res.storage_and_layout();
        let (w_s, s_s, r_s, g_s) = (cpu(&w_s)?, cpu(&s_s)?, cpu(&r_s)?, cpu(&g_s)?);
        if g_l.dims() != [t + 1, b, n] {
            bail!(
                "lstm_seq: gradient {:?}, expected [{}, {b}, {n}]",
                g_l.dims(),
                t + 1
            );
        }
        let (r, g, w, s0) = (
            Operand(r_s, r_l),
            Operand(g_s, g_l),
            Operand(w_s, w_l),
            Operand(s_s, s_l),
        );
        let (dx, dw, ds) = match &*saved {
            Saved::F32(ws) => backward_tensors::<f32>(dims, ws, r, g, w, s0)?,
            Saved::F64(ws) => backward_tensors::<f64>(dims, ws, r, g, w, s0)?,
        };
        Ok((Some(dx), Some(dw), Some(ds)))
    }
}

/// A CPU operand of the backward pass and its layout.
#[derive(Clone, Copy)]
struct Operand<'a>(&'a CpuStorage, &'a Layout);

/// The backward pass in one float type, its gradients as tensors `(dxproj, dw_h, dstate0)`.
fn backward_tensors<F: Pooled>(
    d: Dims,
    ws: &[F],
    res: Operand,
    grad: Operand,
    w_h: Operand,
    state: Operand,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (res, grad) = (slice::<F>(res.0, res.1)?, slice::<F>(grad.0, grad.1)?);
    let (w_h, state) = (slice::<F>(w_h.0, w_h.1)?, slice::<F>(state.0, state.1)?);
    let (dx, dw, ds) = backward::<F>(d, ws, &res, &grad, &w_h, &state);
    let (Dims { t, b, n }, dev) = (d, Device::Cpu);
    Ok((
        Tensor::from_vec(dx, (t, b, 4 * n), &dev)?,
        Tensor::from_vec(dw, (n, 4 * n), &dev)?,
        Tensor::from_vec(ds, (b, 2 * n), &dev)?,
    ))
}

fn cpu(s: &Storage) -> Result<&CpuStorage> {
    match s {
        Storage::Cpu(s) => Ok(s),
        _ => bail!("lstm_seq: the fused LSTM op runs on the CPU only"),
    }
}

/// The elements of `s` under layout `l`, in row-major order (borrowed when contiguous).
fn slice<'a, F: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<Cow<'a, [F]>> {
    let data = s.as_slice::<F>()?;
    if let Some((start, end)) = l.contiguous_offsets() {
        return Ok(Cow::Borrowed(&data[start..end]));
    }
    let dims = l.dims();
    let stride = l.stride();
    let count = l.shape().elem_count();
    let mut out = Vec::with_capacity(count);
    let mut index = vec![0usize; dims.len()];
    let mut offset = l.start_offset();
    for _ in 0..count {
        out.push(data[offset]);
        // Odometer increment over the dims, last dim fastest.
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            offset += stride[d];
            if index[d] < dims[d] {
                break;
            }
            offset -= stride[d] * dims[d];
            index[d] = 0;
        }
    }
    Ok(Cow::Owned(out))
}

#[derive(Clone, Copy)]
struct Dims {
    t: usize,
    b: usize,
    n: usize,
}

/// How many blocks of work candle's CPU worker pool runs at once (its workers and the
/// calling thread).
fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Runs `f(0) .. f(blocks - 1)` in parallel on candle's own worker pool, the one its
/// elementwise ops use: its workers spin for a while after each candle op, so work handed
/// to a second pool (rayon) would compete with them for the cores. `blocks <= threads()`.
fn run_blocks(blocks: usize, f: impl Fn(usize) + Sync) {
    if blocks <= 1 {
        (0..blocks).for_each(f);
    } else {
        candle_core::utils::barrier_pool().execute(|tid| {
            if tid < blocks {
                f(tid)
            }
        });
    }
}

/// Rows `[start, end)` of the batch for each worker.
fn row_blocks(b: usize) -> Vec<(usize, usize)> {
    const MIN_ROWS: usize = 16;
    let blocks = threads().min(b / MIN_ROWS).max(1);
    (0..blocks)
        .map(|i| (i * b / blocks, (i + 1) * b / blocks))
        .collect()
}

fn uninit<F>(len: usize) -> Vec<MaybeUninit<F>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation.
    unsafe { v.set_len(len) };
    v
}

/// # Safety
/// Every element of `v` must have been written.
unsafe fn assume_init<F>(v: Vec<MaybeUninit<F>>) -> Vec<F> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: `MaybeUninit<F>` has `F`'s layout, so the buffer, length and capacity are
    // those of a `Vec<F>`; the caller vouches that every element was written; and `v`,
    // never dropped, gives up the allocation to the new `Vec`.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut F, v.len(), v.capacity()) }
}

/// A raw pointer shared by workers that touch disjoint rows.
#[derive(Clone, Copy)]
struct Ptr<F>(*mut F);
// SAFETY: a `Ptr` is only handed to rayon workers that each write their own disjoint rows
// of the buffer, which outlives the parallel section; no two threads touch one element.
unsafe impl<F> Send for Ptr<F> {}
// SAFETY: as for `Send`: shared references to a `Ptr` only ever yield disjoint rows.
unsafe impl<F> Sync for Ptr<F> {}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` on strided operands (`(row, col)` strides).
///
/// # Safety
/// `dst`, `lhs` and `rhs` must be valid for every element their dimensions and strides
/// reach, `dst` for writes, and `dst` must not overlap either operand.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<F: 'static + Copy>(
    (m, n, k): (usize, usize, usize),
    dst: *mut F,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const F,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const F,
    (rhs_rs, rhs_cs): (usize, usize),
    one: F,
    parallelism: Parallelism,
) {
    // SAFETY: the caller vouches for the pointers and strides, as `matmul`'s contract says.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            one,
            one,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Returns the output `[T + 1, B, H]` and the workspace `[T, B, 6H]`.
fn forward<F: Pooled>(d: Dims, xp: &[F], wh: &[F], s0: &[F]) -> (Vec<F>, Vec<F>) {
    let Dims { t: steps, b, n } = d;
    let mut out = uninit::<F>((steps + 1) * b * n);
    let mut ws = take_workspace::<F>(steps * b * WS * n);
    let (out_p, ws_p) = (Ptr(out.as_mut_ptr()), Ptr(ws.as_mut_ptr()));
    let blocks = row_blocks(b);
    run_blocks(blocks.len(), |i| {
        let (r0, r1) = blocks[i];
        let rows = r1 - r0;
        let mut g = vec![F::ZERO; rows * 4 * n];
        let (out_p, ws_p) = (out_p, ws_p);
        for t in 0..steps {
            // SAFETY: this worker reads and writes only rows r0..r1 of every step; the
            // step t - 1 rows it reads are disjoint from the step t rows it writes.
            unsafe {
                let (h_prev, h_rs): (*const F, usize) = if t == 0 {
                    (s0.as_ptr().add(r0 * 2 * n), 2 * n)
                } else {
                    (out_p.0.add(((t - 1) * b + r0) * n) as *const F, n)
                };
                matmul(
                    (rows, 4 * n, n),
                    g.as_mut_ptr(),
                    4 * n,
                    false,
                    h_prev,
                    (h_rs, 1),
                    wh.as_ptr(),
                    (4 * n, 1),
                    F::ONE,
                    Parallelism::None,
                );
                let (c_prev, c_rs): (&[F], usize) = if t == 0 {
                    (&s0[r0 * 2 * n + n..r1 * 2 * n], 2 * n)
                } else {
                    let base = ((t - 1) * b + r0) * WS * n;
                    (
                        std::slice::from_raw_parts(ws_p.0.add(base), rows * WS * n),
                        WS * n,
                    )
                };
                let x = &xp[(t * b + r0) * 4 * n..(t * b + r1) * 4 * n];
                let w = std::slice::from_raw_parts_mut(
                    ws_p.0.add((t * b + r0) * WS * n),
                    rows * WS * n,
                );
                let h = std::slice::from_raw_parts_mut(out_p.0.add((t * b + r0) * n), rows * n);
                F::forward_rows(ForwardRows {
                    n,
                    g: &g,
                    x,
                    c_prev,
                    c_rs,
                    w,
                    h,
                });
                if t + 1 == steps {
                    let c =
                        std::slice::from_raw_parts_mut(out_p.0.add((steps * b + r0) * n), rows * n);
                    for r in 0..rows {
                        for (c, &v) in c[r * n..(r + 1) * n]
                            .iter_mut()
                            .zip(&w[r * WS * n..r * WS * n + n])
                        {
                            c.write(v);
                        }
                    }
                }
            }
        }
    });
    // SAFETY: the blocks wrote every h row of every step and every final c row.
    (unsafe { assume_init(out) }, ws)
}

/// Returns the gradients of xproj `[T, B, 4H]`, w_h `[H, 4H]` and state0 `[B, 2H]`.
fn backward<F: Pooled>(
    d: Dims,
    ws: &[F],
    out: &[F],
    grad: &[F],
    wh: &[F],
    s0: &[F],
) -> (Vec<F>, Vec<F>, Vec<F>) {
    let Dims { t: steps, b, n } = d;
    let mut dx = uninit::<F>(steps * b * 4 * n);
    let mut ds = vec![F::ZERO; b * 2 * n];
    let (dx_p, ds_p) = (Ptr(dx.as_mut_ptr()), Ptr(ds.as_mut_ptr()));
    let blocks = row_blocks(b);
    run_blocks(blocks.len(), |i| {
        let (r0, r1) = blocks[i];
        let rows = r1 - r0;
        let (dx_p, ds_p) = (dx_p, ds_p);
        // Gradient reaching h_{t} through the recurrence, and reaching c_{t} from step t + 1
        // (the final c's own gradient to start with).
        let mut dh = vec![F::ZERO; rows * n];
        let mut dc = grad[(steps * b + r0) * n..(steps * b + r1) * n].to_vec();
        for t in (0..steps).rev() {
            let (c_prev, c_rs): (&[F], usize) = if t == 0 {
                (&s0[r0 * 2 * n + n..r1 * 2 * n], 2 * n)
            } else {
                (
                    &ws[((t - 1) * b + r0) * WS * n..((t - 1) * b + r1) * WS * n],
                    WS * n,
                )
            };
            let w = &ws[(t * b + r0) * WS * n..(t * b + r1) * WS * n];
            let gh = &grad[(t * b + r0) * n..(t * b + r1) * n];
            // SAFETY: rows r0..r1 of step t belong to this worker alone.
            unsafe {
                let dgates =
                    std::slice::from_raw_parts_mut(dx_p.0.add((t * b + r0) * 4 * n), rows * 4 * n);
                F::backward_rows(BackwardRows {
                    n,
                    w,
                    c_prev,
                    c_rs,
                    gh,
                    dh: &dh,
                    dc: &mut dc,
                    dg: dgates,
                });
                // dh_{t-1} = dgates_t @ W_h^T.
                matmul(
                    (rows, n, 4 * n),
                    dh.as_mut_ptr(),
                    n,
                    false,
                    dgates.as_ptr() as *const F,
                    (4 * n, 1),
                    wh.as_ptr(),
                    (1, 4 * n),
                    F::ONE,
                    Parallelism::None,
                );
            }
        }
        for r in 0..rows {
            // SAFETY: rows r0..r1 of the state gradient belong to this worker alone.
            let row =
                unsafe { std::slice::from_raw_parts_mut(ds_p.0.add((r0 + r) * 2 * n), 2 * n) };
            row[..n].copy_from_slice(&dh[r * n..(r + 1) * n]);
            row[n..].copy_from_slice(&dc[r * n..(r + 1) * n]);
        }
    });
    // dW_h = h_{-1}^T dgates_0 + [h_0 .. h_{T-2}]^T [dgates_1 .. dgates_{T-1}].
    // SAFETY: the blocks wrote every gate gradient of every step.
    let dx = unsafe { assume_init(dx) };
    // Each worker takes a block of columns.
    let mut dw = vec![F::ZERO; n * 4 * n];
    let big = n * 4 * n * steps * b >= 1 << 20;
    let blocks = if big {
        threads().min(4 * n / 16).max(1)
    } else {
        1
    };
    let (dw_p, dx_ref) = (Ptr(dw.as_mut_ptr()), &dx);
    run_blocks(blocks, |i| {
        let (c0, c1) = (i * 4 * n / blocks, (i + 1) * 4 * n / blocks);
        // Capture the whole `Ptr` (Sync), not its raw-pointer field.
        #[allow(clippy::redundant_locals)]
        let dw_p = dw_p;
        // SAFETY: columns c0..c1 of dW belong to this worker alone.
        unsafe {
            let dst = dw_p.0.add(c0);
            let rhs = dx_ref.as_ptr().add(c0);
            matmul(
                (n, c1 - c0, b),
                dst,
                4 * n,
                false,
                s0.as_ptr(),
                (1, 2 * n),
                rhs,
                (4 * n, 1),
                F::ONE,
                Parallelism::None,
            );
            if steps > 1 {
                let k = (steps - 1) * b;
                let rhs = rhs.add(b * 4 * n);
                matmul(
                    (n, c1 - c0, k),
                    dst,
                    4 * n,
                    true,
                    out.as_ptr(),
                    (1, n),
                    rhs,
                    (4 * n, 1),
                    F::ONE,
                    Parallelism::None,
                );
            }
        }
    });
    (dx, dw, ds)
}
