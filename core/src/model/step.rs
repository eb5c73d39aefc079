//! LSTM stacks stepped on plain slices, for autoregressive sampling.
//!
//! Sampling cannot run a layer over the whole sequence (each step's input is the previous
//! step's sample), and as candle ops a step costs a dozen small allocations and
//! dispatches per layer: most of a batch-1 decode's time. Here a step is one `gemm` into
//! a reused buffer and the fused op's cell kernel. Each decoder builds its first layer's
//! input projection its own way (an event's kernel row, or a groove row's product) and
//! hands it to [`StackState::step`].

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use gemm::Parallelism;

use super::ops::kernels::{Elem, ForwardRows, WS};
use crate::model::lstm::{initial_states, LstmCell};
use crate::model::{add_row, Dense};

/// A tensor's values, row-major, as f32.
pub fn f32_rows(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

/// A weight's values as an f32 slice: borrowed from the tensor's storage when it is a
/// contiguous f32 CPU tensor (every model Latent Live loads or trains), copied otherwise.
pub enum Values<'a> {
    Borrowed(
        Box<dyn std::ops::Deref<Target = Storage> + 'a>,
        std::ops::Range<usize>,
    ),
    Owned(Vec<f32>),
}

impl<'a> Values<'a> {
    pub fn of(t: &'a Tensor) -> Result<Self> {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(_)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(Self::Borrowed(Box::new(storage), start..end));
        }
        drop(storage);
        Ok(Self::Owned(f32_rows(t)?))
    }

    pub fn slice(&self) -> &[f32] {
        match self {
            Self::Borrowed(storage, range) => match &***storage {
                Storage::Cpu(CpuStorage::F32(values)) => &values[range.clone()],
                _ => unreachable!("checked in Values::of"),
            },
            Self::Owned(values) => values,
        }
    }
}

/// The values of a stack's kernels and biases, borrowed for as long as they are stepped.
pub struct StackValues<'a> {
    cells: Vec<(usize, usize)>,
    kernels: Vec<Values<'a>>,
    biases: Vec<Values<'a>>,
}

impl<'a> StackValues<'a> {
    pub fn of(cells: &'a [LstmCell]) -> Result<Self> {
        Ok(Self {
            cells: cells
                .iter()
                .map(|c| (c.input_size(), c.hidden_size()))
                .collect(),
            kernels: cells
                .iter()
                .map(|c| Values::of(&c.kernel))
                .collect::<Result<_>>()?,
            biases: cells
                .iter()
                .map(|c| Values::of(&c.bias))
                .collect::<Result<_>>()?,
        })
    }

    pub fn weights(&self) -> StackWeights<'_> {
        StackWeights {
            cells: self.cells.clone(),
            kernels: self.kernels.iter().map(Values::slice).collect(),
            biases: self.biases.iter().map(Values::slice).collect(),
        }
    }
}

/// An LSTM stack's weights as slices (shareable between threads).
pub struct StackWeights<'a> {
    /// `(input, hidden)` per layer.
    pub cells: Vec<(usize, usize)>,
    pub kernels: Vec<&'a [f32]>,
    pub biases: Vec<&'a [f32]>,
}

impl StackWeights<'_> {
    /// The rows of layer 0's kernel that multiply its input, `[input, 4H]`.
    pub fn input_rows(&self) -> &[f32] {
        let (input, hidden) = self.cells[0];
        &self.kernels[0][..input * 4 * hidden]
    }

    /// A block of rows' state, from each layer's initial `(h, c)` (`[rows, H]` each).
    pub fn start(&self, initial: Vec<(Vec<f32>, Vec<f32>)>) -> StackState {
        let rows = initial[0].0.len() / self.cells[0].1;
        StackState {
            layers: initial
                .into_iter()
                .zip(&self.cells)
                .map(|((h, c), &(_, hidden))| LayerState::new(hidden, h, c))
                .collect(),
            upper_inputs: self.cells[1..]
                .iter()
                .map(|&(input, hidden)| vec![0f32; rows * (input + hidden)])
                .collect(),
            upper_biases: self.biases[1..]
                .iter()
                .map(|bias| bias.repeat(rows))
                .collect(),
        }
    }
}

/// A stack's state for a block of rows, with every buffer a step needs.
pub struct StackState {
    layers: Vec<LayerState>,
    /// `[h below, h]` per layer above the first: what its whole kernel multiplies.
    upper_inputs: Vec<Vec<f32>>,
    upper_biases: Vec<Vec<f32>>,
}

impl StackState {
    /// Steps every layer once. `x0` `[rows, 4H0]` is layer 0's input projection, bias
    /// included, so that layer 0 multiplies only its `h`. Returns the top layer's `h`.
    pub fn step(&mut self, weights: &StackWeights, x0: &[f32]) -> &[f32] {
        let (input0, hidden0) = weights.cells[0];
        self.layers[0].step(None, &weights.kernels[0][input0 * 4 * hidden0..], x0);
        for l in 1..self.layers.len() {
            let (below, above) = self.layers.split_at_mut(l);
            let (input, hidden) = weights.cells[l];
            for (r, row) in self.upper_inputs[l - 1]
                .chunks_exact_mut(input + hidden)
                .enumerate()
            {
                row[..input].copy_from_slice(&below[l - 1].h[r * input..(r + 1) * input]);
                row[input..].copy_from_slice(&above[0].h[r * hidden..(r + 1) * hidden]);
            }
            above[0].step(
                Some(&self.upper_inputs[l - 1]),
                weights.kernels[l],
                &self.upper_biases[l - 1],
            );
        }
        &self.layers.last().unwrap().h
    }
}

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
        assert!(
            lhs.len() == rows * k && x_proj.len() == rows * 4 * n,
            "LayerState::step: operand sizes"
        );
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
        f32::forward_rows(ForwardRows {
            n,
            g: &self.gates,
            x: x_proj,
            c_prev: &self.c,
            c_rs: n,
            w: &mut self.workspace,
            h: &mut self.next_h,
        });
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
    for row in dst.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
    add_product(lhs, w, bias.len(), dst);
}

/// `dst [rows, N] += lhs [rows, K] @ w [K, N]`.
pub fn add_product(lhs: &[f32], w: &[f32], n: usize, dst: &mut [f32]) {
    let (rows, k) = (dst.len() / n, w.len() / n);
    assert!(
        lhs.len() == rows * k && dst.len() == rows * n && w.len() == k * n,
        "add_product: operand sizes"
    );
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

/// What stays fixed through an autoregressive decode from `condition` `[N, C]`, computed
/// once with candle: the condition's share of layer 0's input (layer 0's bias included)
/// and each layer's initial `(h, c)`, as f32 rows; the stack's and the output
/// projection's weights, borrowed as slices.
pub struct SampleStart<'a> {
    pub condition_projection: Vec<f32>,
    pub initial: Vec<(Vec<f32>, Vec<f32>)>,
    pub stack: StackValues<'a>,
    pub output_kernel: Values<'a>,
    pub output_bias: Values<'a>,
}

impl<'a> SampleStart<'a> {
    /// `fed` is the width of what each step feeds back (the first rows of layer 0's
    /// kernel); the condition follows it (and the controls, if any, follow the condition).
    pub fn new(
        cells: &'a [LstmCell],
        initial_state: &Dense,
        output: &'a Dense,
        condition: &Tensor,
        fed: usize,
    ) -> Result<Self> {
        let condition_rows = cells[0].w_x()?.narrow(0, fed, condition.dim(1)?)?;
        Ok(Self {
            condition_projection: f32_rows(&add_row(
                &condition.matmul(&condition_rows)?,
                &cells[0].bias,
            )?)?,
            initial: initial_states(initial_state, cells, condition)?
                .iter()
                .map(|(h, c)| Ok((f32_rows(h)?, f32_rows(c)?)))
                .collect::<Result<_>>()?,
            stack: StackValues::of(cells)?,
            output_kernel: Values::of(&output.kernel)?,
            output_bias: Values::of(&output.bias)?,
        })
    }
}
