//! TensorFlow `LSTMBlockCell` semantics, with a fused whole-sequence op for training.
//!
//! Ports `LSTMBlockCell` (magenta/contrib/rnn.py, TF's `lstm_ops`): one kernel
//! `[input + hidden, 4 * hidden]` over `concat(x, h)`, gates in the order i, j (new
//! input), f, o, and `forget_bias = 1.0` added at run time (it is not in the checkpoint).
//!
//! Training runs a whole layer through [`LstmCell::seq`]: the caller projects every
//! timestep's input at once (`x @ W_x + bias`, known under teacher forcing) and one
//! custom op (`LstmSeqOp`) runs the recurrence and its backward-through-time with the
//! `gemm` crate and batch-parallel elementwise loops, with no per-step tensor ops.
//! [`LstmCell::step`] and [`LstmCell::seq_slow`] are the plain-candle references (the
//! tests check the fused op against them); `step` also serves autoregressive sampling.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor, WithDType};
use candle_nn::VarBuilder;

use super::add_row;
use gemm::Parallelism;

/// Added to the forget gate's pre-activation at run time, as `LSTMBlockCell` does.
pub const FORGET_BIAS: f64 = 1.0;

/// One TensorFlow `LSTMBlockCell`: `kernel` `[input + hidden, 4 * hidden]` over
/// `concat(x, h)` and `bias` `[4 * hidden]`, gates i, j, f, o:
/// `i = σ(gi)`, `j = tanh(gj)`, `f = σ(gf + 1)`, `o = σ(go)`, `c' = f c + i j`,
/// `h' = o tanh(c')`. No peepholes, no clipping.
#[derive(Debug, Clone)]
pub struct LstmCell {
    pub kernel: Tensor,
    pub bias: Tensor,
    input: usize,
    hidden: usize,
}

/// The result of [`LstmCell::seq`]: every step's `h` (`[T, B, H]`) and the final state.
#[derive(Debug, Clone)]
pub struct LstmSeqOutput {
    pub hs: Tensor,
    pub h: Tensor,
    pub c: Tensor,
}

impl LstmCell {
    /// Loads (or, under a `VarMap`, creates) `kernel` (Glorot uniform, TF's default) and
    /// `bias` (zeros) under `vb`.
    pub fn new(input: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        if hidden == 0 {
            bail!("LstmCell: hidden size must be positive");
        }
        let limit = (6.0 / (input + 5 * hidden) as f64).sqrt();
        let kernel = vb.get_with_hints(
            (input + hidden, 4 * hidden),
            "kernel",
            candle_nn::Init::Uniform { lo: -limit, up: limit },
        )?;
        let bias = vb.get_with_hints(4 * hidden, "bias", candle_nn::init::ZERO)?;
        Ok(Self { kernel, bias, input, hidden })
    }

    pub fn input_size(&self) -> usize {
        self.input
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The input rows of the kernel, `[input, 4H]` (a view: gradients reach `kernel`).
    pub fn w_x(&self) -> Result<Tensor> {
        self.kernel.narrow(0, 0, self.input)
    }

    /// The recurrent rows of the kernel, `[H, 4H]` (a view: gradients reach `kernel`).
    pub fn w_h(&self) -> Result<Tensor> {
        self.kernel.narrow(0, self.input, self.hidden)
    }

    /// `x [.., input] -> x @ W_x + bias`, `[.., 4H]`, for any leading dimensions.
    pub fn project(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        if dims.last() != Some(&self.input) {
            bail!("LstmCell::project: input {:?}, expected last dimension {}", dims, self.input);
        }
        let rows = dims[..dims.len() - 1].iter().product::<usize>();
        let y = add_row(&x.reshape((rows, self.input))?.matmul(&self.w_x()?)?, &self.bias)?;
        let mut out = dims[..dims.len() - 1].to_vec();
        out.push(4 * self.hidden);
        y.reshape(out)
    }

    /// Runs a whole sequence with the fused op. `xproj` `[T, B, 4H]` is the time-major
    /// input projection (`x_t @ W_x + bias`, see [`Self::project`]); `h0`, `c0` are
    /// `[B, H]`. Returns `hs` `[T, B, H]` and the final `(h, c)`. Differentiable with
    /// respect to `xproj`, `kernel` (through `W_h`), `h0` and `c0`.
    pub fn seq(&self, xproj: &Tensor, h0: &Tensor, c0: &Tensor) -> Result<LstmSeqOutput> {
        let (steps, batch) = self.check_seq_args(xproj, h0, c0)?;
        if !xproj.device().is_cpu() {
            bail!("LstmCell::seq: the fused LSTM op runs on the CPU only");
        }
        if steps == 0 {
            let hs = Tensor::zeros((0, batch, self.hidden), xproj.dtype(), xproj.device())?;
            return Ok(LstmSeqOutput { hs, h: h0.clone(), c: c0.clone() });
        }
        let state = Tensor::cat(&[h0, c0], 1)?;
        // [T + 1, B, H]: every step's h, then the final c.
        let out = xproj.apply_op3(&self.w_h()?, &state, LstmSeqOp::new(self.hidden))?;
        Ok(LstmSeqOutput { hs: out.narrow(0, 0, steps)?, h: out.get(steps - 1)?, c: out.get(steps)? })
    }

    /// [`Self::seq`] with plain candle ops, one step at a time (the reference).
    pub fn seq_slow(&self, xproj: &Tensor, h0: &Tensor, c0: &Tensor) -> Result<LstmSeqOutput> {
        let (steps, batch) = self.check_seq_args(xproj, h0, c0)?;
        let w_h = self.w_h()?;
        let (mut h, mut c) = (h0.clone(), c0.clone());
        let mut hs = Vec::with_capacity(steps);
        for t in 0..steps {
            let gates = xproj.get(t)?.add(&h.matmul(&w_h)?)?;
            (h, c) = self.activate(&gates, &c)?;
            hs.push(h.clone());
        }
        let hs = if steps == 0 {
            Tensor::zeros((0, batch, self.hidden), xproj.dtype(), xproj.device())?
        } else {
            Tensor::stack(&hs, 0)?
        };
        Ok(LstmSeqOutput { hs, h, c })
    }

    /// One step with plain candle ops: `x [B, input]`, state `[B, H]` each, returns `(h, c)`.
    pub fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let gates = Tensor::cat(&[x, h], 1)?.matmul(&self.kernel)?.broadcast_add(&self.bias)?;
        self.activate(&gates, c)
    }

    /// Gate pre-activations `[B, 4H]` (bias included, forget bias not) to the new state.
    fn activate(&self, gates: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = self.hidden;
        let i = candle_nn::ops::sigmoid(&gates.narrow(1, 0, n)?)?;
        let j = gates.narrow(1, n, n)?.tanh()?;
        let f = candle_nn::ops::sigmoid(&gates.narrow(1, 2 * n, n)?.affine(1.0, FORGET_BIAS)?)?;
        let o = candle_nn::ops::sigmoid(&gates.narrow(1, 3 * n, n)?)?;
        let c = f.mul(c)?.add(&i.mul(&j)?)?;
        let h = o.mul(&c.tanh()?)?;
        Ok((h, c))
    }

    fn check_seq_args(&self, xproj: &Tensor, h0: &Tensor, c0: &Tensor) -> Result<(usize, usize)> {
        let n = self.hidden;
        let (steps, batch, width) = match xproj.dims() {
            &[t, b, w] => (t, b, w),
            d => bail!("LstmCell::seq: xproj {d:?}, expected [T, B, {}]", 4 * n),
        };
        if width != 4 * n {
            bail!("LstmCell::seq: xproj {:?}, expected [T, B, {}]", xproj.dims(), 4 * n);
        }
        for (name, s) in [("h0", h0), ("c0", c0)] {
            if s.dims() != [batch, n] {
                bail!("LstmCell::seq: {name} {:?}, expected [{batch}, {n}]", s.dims());
            }
        }
        let dtype = self.kernel.dtype();
        if !matches!(dtype, DType::F32 | DType::F64) {
            bail!("LstmCell::seq: the fused op supports f32 and f64, not {dtype:?}");
        }
        for (name, t) in [("xproj", xproj), ("h0", h0), ("c0", c0)] {
            if t.dtype() != dtype {
                bail!("LstmCell::seq: {name} is {:?} but the kernel is {dtype:?}", t.dtype());
            }
        }
        Ok((steps, batch))
    }
}

// ---------------------------------------------------------------------------------------
// The fused op.
//
// Forward: inputs xproj [T, B, 4H], w_h [H, 4H], state0 [B, 2H] = (h0, c0); output
// [T + 1, B, H] = h_0 .. h_{T-1}, then the final c. The output stays small because every
// narrow of it costs a full-size zero pad in candle's backward. What the backward needs
// besides h (c_t, tanh c_t and the activated gates, [T, B, 6H]) is kept in the op's
// `saved` slot: candle keeps the op alive in the graph exactly as long as the output, and
// drops it at once when no input tracks gradients.
//
// Both passes split the batch into one block of rows per thread of candle's worker pool;
// rows are independent in the recurrence, so each thread runs all T steps on its rows with
// single-threaded gemms and no synchronisation. dW_h = sum_t h_{t-1}^T dgates_t is one big
// gemm over all steps after the loop (each thread takes a block of its columns).
// ---------------------------------------------------------------------------------------

/// Per-row layout of the saved workspace: c, tanh(c), i, j, f, o.
const WS: usize = 6;

enum Saved {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Workspaces of dropped sequences, kept for reuse: a training step would otherwise fault
/// in and zero tens of MB afresh for every layer. At most `POOL_SIZE` buffers per dtype.
const POOL_SIZE: usize = 8;
static POOL_F32: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
static POOL_F64: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());

/// Frees the workspaces that [`LstmCell::seq`] keeps for reuse (up to 8 per dtype, each
/// `T * B * 6H` floats of a past call).
pub fn release_workspaces() {
    POOL_F32.lock().map(|mut p| p.clear()).ok();
    POOL_F64.lock().map(|mut p| p.clear()).ok();
}

/// A buffer of `len` elements (contents unspecified), from the pool when one fits.
fn take_workspace<F: Elem>(len: usize) -> Vec<F> {
    let reused = F::pool().lock().ok().and_then(|mut pool| {
        let best = (0..pool.len()).filter(|&i| pool[i].capacity() >= len).min_by_key(|&i| pool[i].capacity())?;
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

fn give_workspace<F: Elem>(v: Vec<F>) {
    if let Ok(mut pool) = F::pool().lock() {
        pool.push(v);
        if pool.len() > POOL_SIZE {
            let smallest = (0..pool.len()).min_by_key(|&i| pool[i].capacity()).unwrap_or(0);
            pool.swap_remove(smallest);
        }
    }
}

impl Drop for LstmSeqOp {
    fn drop(&mut self) {
        let saved = self.saved.get_mut().ok().and_then(|s| s.take()).and_then(|s| Arc::try_unwrap(s).ok());
        match saved {
            Some(Saved::F32(v)) => give_workspace(v),
            Some(Saved::F64(v)) => give_workspace(v),
            None => {}
        }
    }
}

struct LstmSeqOp {
    hidden: usize,
    saved: Mutex<Option<Arc<Saved>>>,
}

impl LstmSeqOp {
    fn new(hidden: usize) -> Self {
        Self { hidden, saved: Mutex::new(None) }
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
                let (out, ws) = forward::<f32>(dims, &slice(s1, l1)?, &slice(s2, l2)?, &slice(s3, l3)?);
                (CpuStorage::F32(out), Saved::F32(ws))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let (out, ws) = forward::<f64>(dims, &slice(s1, l1)?, &slice(s2, l2)?, &slice(s3, l3)?);
                (CpuStorage::F64(out), Saved::F64(ws))
            }
            _ => bail!(
                "lstm_seq: unsupported dtypes {:?}, {:?}, {:?} (f32 or f64, all the same)",
                s1.dtype(),
                s2.dtype(),
                s3.dtype()
            ),
        };
        *self.saved.lock().map_err(|_| candle_core::Error::Msg("lstm_seq: poisoned".into()))? = Some(Arc::new(saved));
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
            bail!("lstm_seq: gradient {:?}, expected [{}, {b}, {n}]", g_l.dims(), t + 1);
        }
        let dev = Device::Cpu;
        let (dx, dw, ds) = match &*saved {
            Saved::F32(ws) => {
                let (dx, dw, ds) = backward::<f32>(
                    dims,
                    ws,
                    &slice(r_s, r_l)?,
                    &slice(g_s, g_l)?,
                    &slice(w_s, w_l)?,
                    &slice(s_s, s_l)?,
                );
                (
                    Tensor::from_vec(dx, (t, b, 4 * n), &dev)?,
                    Tensor::from_vec(dw, (n, 4 * n), &dev)?,
                    Tensor::from_vec(ds, (b, 2 * n), &dev)?,
                )
            }
            Saved::F64(ws) => {
                let (dx, dw, ds) = backward::<f64>(
                    dims,
                    ws,
                    &slice(r_s, r_l)?,
                    &slice(g_s, g_l)?,
                    &slice(w_s, w_l)?,
                    &slice(s_s, s_l)?,
                );
                (
                    Tensor::from_vec(dx, (t, b, 4 * n), &dev)?,
                    Tensor::from_vec(dw, (n, 4 * n), &dev)?,
                    Tensor::from_vec(ds, (b, 2 * n), &dev)?,
                )
            }
        };
        Ok((Some(dx), Some(dw), Some(ds)))
    }
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
    (0..blocks).map(|i| (i * b / blocks, (i + 1) * b / blocks)).collect()
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
    Vec::from_raw_parts(v.as_mut_ptr() as *mut F, v.len(), v.capacity())
}

/// A raw pointer shared by workers that touch disjoint rows.
#[derive(Clone, Copy)]
struct Ptr<F>(*mut F);
unsafe impl<F> Send for Ptr<F> {}
unsafe impl<F> Sync for Ptr<F> {}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` on strided operands (`(row, col)` strides).
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

/// Returns the output `[T + 1, B, H]` and the workspace `[T, B, 6H]`.
fn forward<F: Elem>(d: Dims, xp: &[F], wh: &[F], s0: &[F]) -> (Vec<F>, Vec<F>) {
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
                    (std::slice::from_raw_parts(ws_p.0.add(base), rows * WS * n), WS * n)
                };
                let x = &xp[(t * b + r0) * 4 * n..(t * b + r1) * 4 * n];
                let w = std::slice::from_raw_parts_mut(ws_p.0.add((t * b + r0) * WS * n), rows * WS * n);
                let h = std::slice::from_raw_parts_mut(out_p.0.add((t * b + r0) * n), rows * n);
                F::forward_rows(n, &g, x, c_prev, c_rs, w, h);
                if t + 1 == steps {
                    let c = std::slice::from_raw_parts_mut(out_p.0.add((steps * b + r0) * n), rows * n);
                    for r in 0..rows {
                        for (c, &v) in c[r * n..(r + 1) * n].iter_mut().zip(&w[r * WS * n..r * WS * n + n]) {
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
fn backward<F: Elem>(d: Dims, ws: &[F], out: &[F], grad: &[F], wh: &[F], s0: &[F]) -> (Vec<F>, Vec<F>, Vec<F>) {
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
                (&ws[((t - 1) * b + r0) * WS * n..((t - 1) * b + r1) * WS * n], WS * n)
            };
            let w = &ws[(t * b + r0) * WS * n..(t * b + r1) * WS * n];
            let gh = &grad[(t * b + r0) * n..(t * b + r1) * n];
            // SAFETY: rows r0..r1 of step t belong to this worker alone.
            unsafe {
                let dgates = std::slice::from_raw_parts_mut(dx_p.0.add((t * b + r0) * 4 * n), rows * 4 * n);
                F::backward_rows(n, w, c_prev, c_rs, gh, &dh, &mut dc, dgates);
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
            let row = unsafe { std::slice::from_raw_parts_mut(ds_p.0.add((r0 + r) * 2 * n), 2 * n) };
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
    let blocks = if big { threads().min(4 * n / 16).max(1) } else { 1 };
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

// ---------------------------------------------------------------------------------------
// Elementwise kernels. f32 uses a branch-free exp that vectorises, compiled for AVX-512 or
// AVX2 and picked at run time; f64 (used for gradient checks) uses the exact std functions.
// ---------------------------------------------------------------------------------------

trait Elem: WithDType {
    const ZERO: Self;
    const ONE: Self;
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
    fn sigmoid(self) -> Self;
    fn tanh_(self) -> Self;

    /// One step's cell update for a block of rows: `g` (recurrent products) and `x` (input
    /// projection) `[rows, 4H]`, `c_prev` rows `c_rs` apart, into the workspace `w`
    /// `[rows, 6H]` and `h` `[rows, H]`.
    fn forward_rows(
        n: usize,
        g: &[Self],
        x: &[Self],
        c_prev: &[Self],
        c_rs: usize,
        w: &mut [Self],
        h: &mut [MaybeUninit<Self>],
    ) {
        forward_rows_impl(n, g, x, c_prev, c_rs, w, h)
    }

    /// One step's backward for a block of rows: writes the gate pre-activation gradients
    /// `dg` `[rows, 4H]` and carries `dc` back one step.
    #[allow(clippy::too_many_arguments)]
    fn backward_rows(
        n: usize,
        w: &[Self],
        c_prev: &[Self],
        c_rs: usize,
        gh: &[Self],
        dh: &[Self],
        dc: &mut [Self],
        dg: &mut [MaybeUninit<Self>],
    ) {
        backward_rows_impl(n, w, c_prev, c_rs, gh, dh, dc, dg)
    }
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn pool() -> &'static Mutex<Vec<Vec<Self>>> {
        &POOL_F64
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    #[inline(always)]
    fn tanh_(self) -> Self {
        self.tanh()
    }
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn pool() -> &'static Mutex<Vec<Vec<Self>>> {
        &POOL_F32
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + fast_exp(-self))
    }
    #[inline(always)]
    fn tanh_(self) -> Self {
        1.0 - 2.0 / (fast_exp(2.0 * self) + 1.0)
    }

    fn forward_rows(
        n: usize,
        g: &[f32],
        x: &[f32],
        c_prev: &[f32],
        c_rs: usize,
        w: &mut [f32],
        h: &mut [MaybeUninit<f32>],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if simd::avx512() {
                return unsafe { simd::forward_avx512(n, g, x, c_prev, c_rs, w, h) };
            }
            if simd::avx2() {
                return unsafe { simd::forward_avx2(n, g, x, c_prev, c_rs, w, h) };
            }
        }
        forward_rows_impl(n, g, x, c_prev, c_rs, w, h)
    }

    fn backward_rows(
        n: usize,
        w: &[f32],
        c_prev: &[f32],
        c_rs: usize,
        gh: &[f32],
        dh: &[f32],
        dc: &mut [f32],
        dg: &mut [MaybeUninit<f32>],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if simd::avx512() {
                return unsafe { simd::backward_avx512(n, w, c_prev, c_rs, gh, dh, dc, dg) };
            }
            if simd::avx2() {
                return unsafe { simd::backward_avx2(n, w, c_prev, c_rs, gh, dh, dc, dg) };
            }
        }
        backward_rows_impl(n, w, c_prev, c_rs, gh, dh, dc, dg)
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{backward_rows_impl, forward_rows_impl};
    use std::mem::MaybeUninit;

    pub fn avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    pub fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn forward_avx512(
        n: usize,
        g: &[f32],
        x: &[f32],
        c: &[f32],
        c_rs: usize,
        w: &mut [f32],
        h: &mut [MaybeUninit<f32>],
    ) {
        forward_rows_impl(n, g, x, c, c_rs, w, h)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_avx2(
        n: usize,
        g: &[f32],
        x: &[f32],
        c: &[f32],
        c_rs: usize,
        w: &mut [f32],
        h: &mut [MaybeUninit<f32>],
    ) {
        forward_rows_impl(n, g, x, c, c_rs, w, h)
    }
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn backward_avx512(
        n: usize,
        w: &[f32],
        c: &[f32],
        c_rs: usize,
        gh: &[f32],
        dh: &[f32],
        dc: &mut [f32],
        dg: &mut [MaybeUninit<f32>],
    ) {
        backward_rows_impl(n, w, c, c_rs, gh, dh, dc, dg)
    }
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn backward_avx2(
        n: usize,
        w: &[f32],
        c: &[f32],
        c_rs: usize,
        gh: &[f32],
        dh: &[f32],
        dc: &mut [f32],
        dg: &mut [MaybeUninit<f32>],
    ) {
        backward_rows_impl(n, w, c, c_rs, gh, dh, dc, dg)
    }
}

/// `exp` for f32 without branches or calls (Cephes polynomial, about 1 ulp on the
/// clamped range [-87, 88]), so that loops over it vectorise.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^k from the integer sitting in t's low mantissa bits.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    e * scale
}

#[inline(always)]
fn forward_rows_impl<F: Elem>(
    n: usize,
    g: &[F],
    x: &[F],
    c_prev: &[F],
    c_rs: usize,
    w: &mut [F],
    h: &mut [MaybeUninit<F>],
) {
    let rows = h.len() / n;
    let fb = F::from_f64(FORGET_BIAS);
    for r in 0..rows {
        let g = &g[r * 4 * n..(r + 1) * 4 * n];
        let x = &x[r * 4 * n..(r + 1) * 4 * n];
        let cp = &c_prev[r * c_rs..r * c_rs + n];
        let h = &mut h[r * n..(r + 1) * n];
        let w = &mut w[r * WS * n..(r + 1) * WS * n];
        let (gi, gj, gf, go) = (&g[..n], &g[n..2 * n], &g[2 * n..3 * n], &g[3 * n..4 * n]);
        let (xi, xj, xf, xo) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n], &x[3 * n..4 * n]);
        let (wc, rest) = w.split_at_mut(n);
        let (wt, rest) = rest.split_at_mut(n);
        let (wi, rest) = rest.split_at_mut(n);
        let (wj, rest) = rest.split_at_mut(n);
        let (wf, wo) = rest.split_at_mut(n);
        let wo = &mut wo[..n];
        for k in 0..n {
            let i = (gi[k] + xi[k]).sigmoid();
            let j = (gj[k] + xj[k]).tanh_();
            let f = (gf[k] + xf[k] + fb).sigmoid();
            let o = (go[k] + xo[k]).sigmoid();
            let c = f * cp[k] + i * j;
            let tc = c.tanh_();
            wc[k] = c;
            wt[k] = tc;
            wi[k] = i;
            wj[k] = j;
            wf[k] = f;
            wo[k] = o;
            h[k].write(o * tc);
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_rows_impl<F: Elem>(
    n: usize,
    w: &[F],
    c_prev: &[F],
    c_rs: usize,
    gh: &[F],
    dh: &[F],
    dc: &mut [F],
    dg: &mut [MaybeUninit<F>],
) {
    let rows = gh.len() / n;
    let one = F::ONE;
    for r in 0..rows {
        let w = &w[r * WS * n..(r + 1) * WS * n];
        let cp = &c_prev[r * c_rs..r * c_rs + n];
        let gh = &gh[r * n..(r + 1) * n];
        let dh = &dh[r * n..(r + 1) * n];
        let dc = &mut dc[r * n..(r + 1) * n];
        let dg = &mut dg[r * 4 * n..(r + 1) * 4 * n];
        let (wt, wi, wj, wf, wo) =
            (&w[n..2 * n], &w[2 * n..3 * n], &w[3 * n..4 * n], &w[4 * n..5 * n], &w[5 * n..6 * n]);
        let (di, rest) = dg.split_at_mut(n);
        let (dj, rest) = rest.split_at_mut(n);
        let (df, do_) = rest.split_at_mut(n);
        let do_ = &mut do_[..n];
        for k in 0..n {
            let (tc, i, j, f, o) = (wt[k], wi[k], wj[k], wf[k], wo[k]);
            let dhk = gh[k] + dh[k];
            let dck = dc[k] + dhk * o * (one - tc * tc);
            di[k].write(dck * j * i * (one - i));
            dj[k].write(dck * i * (one - j * j));
            df[k].write(dck * cp[k] * f * (one - f));
            do_[k].write(dhk * tc * o * (one - o));
            dc[k] = dck * f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use candle_nn::VarMap;

    fn cell(input: usize, hidden: usize, dtype: DType) -> Result<(VarMap, LstmCell)> {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, dtype, &Device::Cpu);
        let cell = LstmCell::new(input, hidden, vb)?;
        // Give the bias some spread so every gate sits away from the origin.
        let bias = Tensor::randn(0.0, 0.5, 4 * hidden, &Device::Cpu)?.to_dtype(dtype)?;
        map.data().lock().unwrap().get("bias").unwrap().set(&bias)?;
        Ok((map, cell))
    }

    fn randn(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::randn(0.0, 1.0, shape, &Device::Cpu)?.to_dtype(dtype)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
        a.to_dtype(DType::F64)?.sub(&b.to_dtype(DType::F64)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()
    }

    fn max_abs(a: &Tensor) -> Result<f64> {
        a.to_dtype(DType::F64)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()
    }

    /// `seq` against `step` applied T times, from non-zero state.
    fn check_forward(t: usize, b: usize, input: usize, hidden: usize) -> Result<()> {
        let (_map, cell) = cell(input, hidden, DType::F32)?;
        let x = randn((t, b, input), DType::F32)?;
        let h0 = randn((b, hidden), DType::F32)?;
        let c0 = randn((b, hidden), DType::F32)?;
        let out = cell.seq(&cell.project(&x)?, &h0, &c0)?;
        assert_eq!(out.hs.dims(), [t, b, hidden]);
        let (mut h, mut c) = (h0, c0);
        for s in 0..t {
            (h, c) = cell.step(&x.get(s)?, &h, &c)?;
            let d = max_diff(&out.hs.get(s)?, &h)?;
            assert!(d < 1e-5, "step {s}: h differs by {d}");
        }
        assert!(max_diff(&out.h, &h)? < 1e-5);
        assert!(max_diff(&out.c, &c)? < 1e-5);
        Ok(())
    }

    #[test]
    fn lstm_seq_matches_step() -> Result<()> {
        check_forward(7, 5, 6, 16)
    }

    #[test]
    fn lstm_seq_odd_sizes() -> Result<()> {
        check_forward(1, 1, 3, 5)?;
        check_forward(4, 1, 1, 13)?;
        check_forward(1, 3, 7, 9)?;
        // Enough rows for several worker blocks, uneven split.
        check_forward(3, 37, 5, 11)
    }

    #[test]
    fn lstm_seq_strided_inputs() -> Result<()> {
        let (t, b, hidden) = (4, 3, 6);
        let (_map, cell) = cell(2, hidden, DType::F32)?;
        let xproj = randn((b, t, 4 * hidden), DType::F32)?;
        let state = randn((2 * hidden, b), DType::F32)?;
        let (h0, c0) = (state.narrow(0, 0, hidden)?.t()?, state.narrow(0, hidden, hidden)?.t()?);
        let strided = cell.seq(&xproj.transpose(0, 1)?, &h0, &c0)?;
        let reference = cell.seq_slow(&xproj.transpose(0, 1)?.contiguous()?, &h0.contiguous()?, &c0.contiguous()?)?;
        assert!(max_diff(&strided.hs, &reference.hs)? < 1e-5);
        assert!(max_diff(&strided.c, &reference.c)? < 1e-5);
        Ok(())
    }

    #[test]
    fn lstm_seq_rejects_bad_arguments() -> Result<()> {
        let (_map, cell) = cell(3, 4, DType::F32)?;
        let h = randn((2, 4), DType::F32)?;
        assert!(cell.seq(&randn((3, 2, 15), DType::F32)?, &h, &h).is_err());
        assert!(cell.seq(&randn((3, 2, 16), DType::F32)?, &randn((3, 4), DType::F32)?, &h).is_err());
        assert!(cell.seq(&randn((3, 2, 16), DType::F64)?, &h, &h).is_err());
        assert!(cell.seq(&randn((2, 16), DType::F32)?, &h, &h).is_err());
        let empty = cell.seq(&randn((0, 2, 16), DType::F32)?, &h, &h)?;
        assert_eq!(empty.hs.dims(), [0, 2, 4]);
        Ok(())
    }

    struct Problem {
        cell: LstmCell,
        kernel: Var,
        xproj: Var,
        h0: Var,
        c0: Var,
        w_hs: Tensor,
        w_c: Tensor,
    }

    fn problem(t: usize, b: usize, input: usize, hidden: usize, dtype: DType) -> Result<Problem> {
        let (map, cell) = cell(input, hidden, dtype)?;
        let kernel = map.data().lock().unwrap().get("kernel").unwrap().clone();
        Ok(Problem {
            cell,
            kernel,
            xproj: Var::from_tensor(&randn((t, b, 4 * hidden), dtype)?)?,
            h0: Var::from_tensor(&randn((b, hidden), dtype)?)?,
            c0: Var::from_tensor(&randn((b, hidden), dtype)?)?,
            w_hs: randn((t, b, hidden), dtype)?,
            w_c: randn((b, hidden), dtype)?,
        })
    }

    impl Problem {
        /// sum(hs * w_hs) + sum(c * w_c): gradient arrives on every h and on the final c.
        fn loss(&self, out: &LstmSeqOutput) -> Result<Tensor> {
            out.hs.mul(&self.w_hs)?.sum_all()?.add(&out.c.mul(&self.w_c)?.sum_all()?)
        }

        fn grads(&self, fused: bool) -> Result<Vec<Tensor>> {
            let (x, h, c) = (self.xproj.as_tensor(), self.h0.as_tensor(), self.c0.as_tensor());
            let out = if fused { self.cell.seq(x, h, c)? } else { self.cell.seq_slow(x, h, c)? };
            let grads = self.loss(&out)?.backward()?;
            [&self.xproj, &self.kernel, &self.h0, &self.c0]
                .iter()
                .map(|v| grads.get(v.as_tensor()).cloned().ok_or_else(|| candle_core::Error::Msg("no grad".into())))
                .collect()
        }
    }

    #[test]
    fn lstm_seq_gradients_match_reference() -> Result<()> {
        for (t, b, input, hidden) in [(6, 4, 5, 8), (1, 1, 2, 3), (5, 40, 3, 7)] {
            let p = problem(t, b, input, hidden, DType::F32)?;
            let fused = p.grads(true)?;
            let slow = p.grads(false)?;
            for (name, (a, r)) in ["xproj", "kernel", "h0", "c0"].iter().zip(fused.iter().zip(&slow)) {
                let d = max_diff(a, r)?;
                let scale = max_abs(r)?.max(1.0);
                assert!(d < 1e-5 * scale, "{name} ({t},{b},{input},{hidden}): grad differs by {d} (scale {scale})");
            }
            // The kernel's input rows get nothing through xproj here.
            assert_eq!(max_abs(&fused[1].narrow(0, 0, input)?)?, 0.0);
        }
        Ok(())
    }

    /// End to end from x: project + seq against a `step` loop, gradients for x, kernel
    /// (both halves) and bias.
    #[test]
    fn lstm_seq_project_gradients_match_step() -> Result<()> {
        let (t, b, input, hidden) = (5, 3, 4, 6);
        let (map, cell) = cell(input, hidden, DType::F32)?;
        let vars = map.all_vars();
        let x = Var::from_tensor(&randn((t, b, input), DType::F32)?)?;
        let h0 = randn((b, hidden), DType::F32)?;
        let c0 = randn((b, hidden), DType::F32)?;
        let w = randn((t, b, hidden), DType::F32)?;
        let out = cell.seq(&cell.project(x.as_tensor())?, &h0, &c0)?;
        let fused = out.hs.mul(&w)?.sum_all()?.backward()?;
        let (mut h, mut c) = (h0, c0);
        let mut hs = vec![];
        for s in 0..t {
            (h, c) = cell.step(&x.as_tensor().get(s)?, &h, &c)?;
            hs.push(h.clone());
        }
        let slow = Tensor::stack(&hs, 0)?.mul(&w)?.sum_all()?.backward()?;
        for v in vars.iter().chain([&x]) {
            let (a, r) = (fused.get(v.as_tensor()).unwrap(), slow.get(v.as_tensor()).unwrap());
            assert!(max_diff(a, r)? < 1e-5, "grad differs by {}", max_diff(a, r)?);
        }
        Ok(())
    }

    /// Central differences in f64 on a tiny problem.
    #[test]
    fn lstm_seq_finite_differences() -> Result<()> {
        let p = problem(3, 2, 3, 4, DType::F64)?;
        let analytic = p.grads(true)?;
        let eps = 1e-5;
        let loss_with = |which: usize, idx: usize, delta: f64| -> Result<f64> {
            let vars = [&p.xproj, &p.kernel, &p.h0, &p.c0];
            let orig = vars[which].as_tensor();
            let mut data = orig.flatten_all()?.to_vec1::<f64>()?;
            data[idx] += delta;
            let bumped = Tensor::from_vec(data, orig.dims(), &Device::Cpu)?;
            let mut tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().detach()).collect();
            tensors[which] = bumped;
            let cell = LstmCell { kernel: tensors[1].clone(), ..p.cell.clone() };
            let out = cell.seq(&tensors[0], &tensors[2], &tensors[3])?;
            p.loss(&out)?.to_scalar::<f64>()
        };
        for (which, name) in ["xproj", "kernel", "h0", "c0"].iter().enumerate() {
            let grad = analytic[which].flatten_all()?.to_vec1::<f64>()?;
            let mut worst: f64 = 0.0;
            let mut largest: f64 = 0.0;
            for (idx, &g) in grad.iter().enumerate() {
                let numeric = (loss_with(which, idx, eps)? - loss_with(which, idx, -eps)?) / (2.0 * eps);
                worst = worst.max((numeric - g).abs());
                largest = largest.max(numeric.abs());
            }
            assert!(largest > 1e-3, "{name}: gradient vanished");
            assert!(worst / largest < 1e-6, "{name}: relative error {}", worst / largest);
        }
        Ok(())
    }

    #[test]
    fn lstm_fast_exp_is_accurate() {
        let mut x = -90.0f32;
        while x < 90.0 {
            let (fast, exact) = (fast_exp(x) as f64, (x.clamp(-87.0, 88.0) as f64).exp());
            assert!((fast - exact).abs() <= 4e-7 * exact, "exp({x}) = {fast}, expected {exact}");
            x += 0.01;
        }
        for &x in &[-20.0f32, -3.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0, 20.0] {
            assert!((Elem::sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-7);
            assert!((Elem::tanh_(x) - x.tanh()).abs() < 2e-7);
        }
    }
}
