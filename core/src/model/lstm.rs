//! TensorFlow `LSTMBlockCell` semantics, with a fused whole-sequence op for training.
//!
//! Ports `LSTMBlockCell` (magenta/contrib/rnn.py, TF's `lstm_ops`): one kernel
//! `[input + hidden, 4 * hidden]` over `concat(x, h)`, gates in the order i, j (new
//! input), f, o, and `forget_bias = 1.0` added at run time (it is not in the checkpoint).
//!
//! Training runs a whole layer through [`LstmCell::seq`]: the caller projects every
//! timestep's input at once (`x @ W_x + bias`, known under teacher forcing) and one
//! custom op ([`super::ops::LstmSeqOp`]) runs the recurrence and its backward-through-time
//! with the `gemm` crate and batch-parallel elementwise loops, with no per-step tensor ops.
//! [`LstmCell::step`] and [`LstmCell::seq_slow`] are the plain-candle references (the
//! tests check the fused op against them); `step` also serves autoregressive sampling.

use candle_core::{bail, DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::ops::{LstmSeqOp, FORGET_BIAS};
use super::{add_row, Dense};

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
            candle_nn::Init::Uniform {
                lo: -limit,
                up: limit,
            },
        )?;
        let bias = vb.get_with_hints(4 * hidden, "bias", candle_nn::init::ZERO)?;
        Ok(Self {
            kernel,
            bias,
            input,
            hidden,
        })
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
            bail!(
                "LstmCell::project: input {:?}, expected last dimension {}",
                dims,
                self.input
            );
        }
        let rows = dims[..dims.len() - 1].iter().product::<usize>();
        let y = add_row(
            &x.reshape((rows, self.input))?.matmul(&self.w_x()?)?,
            &self.bias,
        )?;
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
            return Ok(LstmSeqOutput {
                hs,
                h: h0.clone(),
                c: c0.clone(),
            });
        }
        let state = Tensor::cat(&[h0, c0], 1)?;
        // [T + 1, B, H]: every step's h, then the final c.
        let out = xproj.apply_op3(&self.w_h()?, &state, LstmSeqOp::new(self.hidden))?;
        Ok(LstmSeqOutput {
            hs: out.narrow(0, 0, steps)?,
            h: out.get(steps - 1)?,
            c: out.get(steps)?,
        })
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
        let gates = Tensor::cat(&[x, h], 1)?
            .matmul(&self.kernel)?
            .broadcast_add(&self.bias)?;
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
            bail!(
                "LstmCell::seq: xproj {:?}, expected [T, B, {}]",
                xproj.dims(),
                4 * n
            );
        }
        for (name, s) in [("h0", h0), ("c0", c0)] {
            if s.dims() != [batch, n] {
                bail!(
                    "LstmCell::seq: {name} {:?}, expected [{batch}, {n}]",
                    s.dims()
                );
            }
        }
        let dtype = self.kernel.dtype();
        if !matches!(dtype, DType::F32 | DType::F64) {
            bail!("LstmCell::seq: the fused op supports f32 and f64, not {dtype:?}");
        }
        for (name, t) in [("xproj", xproj), ("h0", h0), ("c0", c0)] {
            if t.dtype() != dtype {
                bail!(
                    "LstmCell::seq: {name} is {:?} but the kernel is {dtype:?}",
                    t.dtype()
                );
            }
        }
        Ok((steps, batch))
    }
}

/// An LSTM stack of `sizes` over inputs of width `input`, named as Magenta's
/// `multi_rnn_cell/cell_N/lstm_cell`.
pub fn stack(input: usize, sizes: &[usize], vb: VarBuilder) -> Result<Vec<LstmCell>> {
    let mut layer_input = input;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &hidden)| {
            let cell = LstmCell::new(
                layer_input,
                hidden,
                vb.pp(format!("cell_{i}")).pp("lstm_cell"),
            );
            layer_input = hidden;
            cell
        })
        .collect()
}

/// `tanh(dense(z))` split into `[c0, h0, c1, h1, ...]` (`initial_cell_state_from_embedding`).
pub fn initial_states(
    dense: &Dense,
    cells: &[LstmCell],
    condition: &Tensor,
) -> Result<Vec<(Tensor, Tensor)>> {
    let flat = dense.forward(condition)?.tanh()?;
    let mut offset = 0;
    cells
        .iter()
        .map(|cell| {
            let hidden = cell.hidden_size();
            let c = flat.narrow(1, offset, hidden)?.contiguous()?;
            let h = flat.narrow(1, offset + hidden, hidden)?.contiguous()?;
            offset += 2 * hidden;
            Ok((h, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Shape, Var};
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
        a.to_dtype(DType::F64)?
            .sub(&b.to_dtype(DType::F64)?)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f64>()
    }

    fn max_abs(a: &Tensor) -> Result<f64> {
        a.to_dtype(DType::F64)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f64>()
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
        let (h0, c0) = (
            state.narrow(0, 0, hidden)?.t()?,
            state.narrow(0, hidden, hidden)?.t()?,
        );
        let strided = cell.seq(&xproj.transpose(0, 1)?, &h0, &c0)?;
        let reference = cell.seq_slow(
            &xproj.transpose(0, 1)?.contiguous()?,
            &h0.contiguous()?,
            &c0.contiguous()?,
        )?;
        assert!(max_diff(&strided.hs, &reference.hs)? < 1e-5);
        assert!(max_diff(&strided.c, &reference.c)? < 1e-5);
        Ok(())
    }

    #[test]
    fn lstm_seq_rejects_bad_arguments() -> Result<()> {
        let (_map, cell) = cell(3, 4, DType::F32)?;
        let h = randn((2, 4), DType::F32)?;
        assert!(cell.seq(&randn((3, 2, 15), DType::F32)?, &h, &h).is_err());
        assert!(cell
            .seq(
                &randn((3, 2, 16), DType::F32)?,
                &randn((3, 4), DType::F32)?,
                &h
            )
            .is_err());
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
            out.hs
                .mul(&self.w_hs)?
                .sum_all()?
                .add(&out.c.mul(&self.w_c)?.sum_all()?)
        }

        fn grads(&self, fused: bool) -> Result<Vec<Tensor>> {
            let (x, h, c) = (
                self.xproj.as_tensor(),
                self.h0.as_tensor(),
                self.c0.as_tensor(),
            );
            let out = if fused {
                self.cell.seq(x, h, c)?
            } else {
                self.cell.seq_slow(x, h, c)?
            };
            let grads = self.loss(&out)?.backward()?;
            [&self.xproj, &self.kernel, &self.h0, &self.c0]
                .iter()
                .map(|v| {
                    grads
                        .get(v.as_tensor())
                        .cloned()
                        .ok_or_else(|| candle_core::Error::Msg("no grad".into()))
                })
                .collect()
        }
    }

    #[test]
    fn lstm_seq_gradients_match_reference() -> Result<()> {
        for (t, b, input, hidden) in [(6, 4, 5, 8), (1, 1, 2, 3), (5, 40, 3, 7)] {
            let p = problem(t, b, input, hidden, DType::F32)?;
            let fused = p.grads(true)?;
            let slow = p.grads(false)?;
            for (name, (a, r)) in ["xproj", "kernel", "h0", "c0"]
                .iter()
                .zip(fused.iter().zip(&slow))
            {
                let d = max_diff(a, r)?;
                let scale = max_abs(r)?.max(1.0);
                assert!(
                    d < 1e-5 * scale,
                    "{name} ({t},{b},{input},{hidden}): grad differs by {d} (scale {scale})"
                );
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
            let (a, r) = (
                fused.get(v.as_tensor()).unwrap(),
                slow.get(v.as_tensor()).unwrap(),
            );
            assert!(
                max_diff(a, r)? < 1e-5,
                "grad differs by {}",
                max_diff(a, r)?
            );
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
            let cell = LstmCell {
                kernel: tensors[1].clone(),
                ..p.cell.clone()
            };
            let out = cell.seq(&tensors[0], &tensors[2], &tensors[3])?;
            p.loss(&out)?.to_scalar::<f64>()
        };
        for (which, name) in ["xproj", "kernel", "h0", "c0"].iter().enumerate() {
            let grad = analytic[which].flatten_all()?.to_vec1::<f64>()?;
            let mut worst: f64 = 0.0;
            let mut largest: f64 = 0.0;
            for (idx, &g) in grad.iter().enumerate() {
                let numeric =
                    (loss_with(which, idx, eps)? - loss_with(which, idx, -eps)?) / (2.0 * eps);
                worst = worst.max((numeric - g).abs());
                largest = largest.max(numeric.abs());
            }
            assert!(largest > 1e-3, "{name}: gradient vanished");
            assert!(
                worst / largest < 1e-6,
                "{name}: relative error {}",
                worst / largest
            );
        }
        Ok(())
    }
}
