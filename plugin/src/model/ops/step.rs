//! One LSTM layer stepped on plain slices, for autoregressive sampling.
//!
//! Sampling cannot run a layer over the whole sequence (each step's input is the previous
//! step's sample), and as candle ops a step costs a dozen small allocations and
//! dispatches per layer: most of a batch-1 decode's time. Here a step is one `gemm` into
//! a reused buffer and the fused op's cell kernel.

use std::mem::MaybeUninit;

use gemm::Parallelism;

use super::kernels::{Elem, WS};

/// A layer's state for `rows` sequences, with every buffer a step needs.
pub struct LayerState {
    hidden: usize,
    /// `[rows, H]`.
    pub h: Vec<f32>,
    c: Vec<f32>,
    gates: Vec<f32>,
    workspace: Vec<f32>,
    next_h: Vec<MaybeUninit<f32>>,
}

impl LayerState {
    /// `h0`, `c0`: `[rows, H]`.
    pub fn new(hidden: usize, h0: Vec<f32>, c0: Vec<f32>) -> Self {
        let rows = h0.len() / hidden;
        Self {
            hidden,
            h: h0,
            c: c0,
            gates: vec![0.0; rows * 4 * hidden],
            workspace: vec![0.0; rows * WS * hidden],
            next_h: vec![MaybeUninit::uninit(); rows * hidden],
        }
    }

    /// `gates = lhs @ w + x_proj`, then the cell update. `lhs` `[rows, K]` is what `w`
    /// `[K, 4H]` multiplies: `[h below, h]`, or `None` for `h` alone; `x_proj` `[rows, 4H]`
    /// is the rest of the pre-activation, bias included.
    pub fn step(&mut self, lhs: Option<&[f32]>, w: &[f32], x_proj: &[f32]) {
        let (n, rows) = (self.hidden, self.h.len() / self.hidden);
        let k = w.len() / (4 * n);
        let lhs = lhs.unwrap_or(&self.h);
        assert!(lhs.len() == rows * k && x_proj.len() == rows * 4 * n, "LayerState::step: operand sizes");
        // SAFETY: the sizes are checked above; dst, lhs and rhs are dense row-major.
        unsafe {
            gemm::gemm(
                rows,
                4 * n,
                k,
                self.gates.as_mut_ptr(),
                1,
                4 * n as isize,
                false,
                lhs.as_ptr(),
                1,
                k as isize,
                w.as_ptr(),
                1,
                4 * n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        f32::forward_rows(n, &self.gates, x_proj, &self.c, n, &mut self.workspace, &mut self.next_h);
        for (r, h) in self.h.chunks_exact_mut(n).enumerate() {
            let c_row = &self.workspace[r * WS * n..r * WS * n + n];
            self.c[r * n..(r + 1) * n].copy_from_slice(c_row);
            for (h, next) in h.iter_mut().zip(&self.next_h[r * n..(r + 1) * n]) {
                // SAFETY: forward_rows wrote every element of next_h.
                *h = unsafe { next.assume_init() };
            }
        }
    }
}

/// `dst [rows, N] = lhs [rows, K] @ w [K, N] + bias [N]`.
pub fn affine(lhs: &[f32], w: &[f32], bias: &[f32], dst: &mut [f32]) {
    let n = bias.len();
    let (rows, k) = (dst.len() / n, w.len() / n);
    assert!(lhs.len() == rows * k && dst.len() == rows * n, "affine: operand sizes");
    for row in dst.chunks_exact_mut(n) {
        row.copy_from_slice(bias);
    }
    // SAFETY: the sizes are checked above; all operands are dense row-major.
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}
