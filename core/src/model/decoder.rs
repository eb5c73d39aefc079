//! The decoders a MusicVAE is built with ([`Decoder`]), as in Magenta's `lstm_models.py`:
//! categorical, flat (`CategoricalLstmDecoder`) or under a conductor
//! (`HierarchicalLstmDecoder`), and GrooVAE's ([`super::groove`]).

use candle_core::{DType, Device, IndexOp, Result, Tensor, D};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::groove::GrooveDecoder;
use super::lstm::{initial_states, stack, LstmCell};
use super::step::{affine, f32_rows, SampleStart, StackWeights};
use super::{add_row, dropped, Config, Dense, Dropout, Reconstruction};
use crate::music::{Encoding, Event};

/// How the next event is chosen from the logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Argmax: the same z always gives the same phrase.
    Greedy,
    /// Categorical on `logits / temperature`. Item `i` of a batch draws from stream `i`
    /// of a ChaCha8 generator seeded with `seed`, so a phrase does not depend on the
    /// other phrases decoded beside it.
    Temperature { temperature: f32, seed: u64 },
}

impl Sampling {
    /// Temperature 0 means greedy, as the plugin's slider does.
    pub fn new(temperature: f32, seed: u64) -> Self {
        if temperature <= 0.0 {
            Self::Greedy
        } else {
            Self::Temperature { temperature, seed }
        }
    }
}

/// An LSTM stack whose initial state and every input are conditioned on an embedding
/// (z itself, or the conductor's output for one bar). Layer 0 reads, as in Magenta, the
/// previous event, the embedding and the step's controls (a chord model's chord).
#[derive(Debug, Clone)]
pub struct CategoricalDecoder {
    cells: Vec<LstmCell>,
    initial_state: Dense,
    output_projection: Dense,
    classes: usize,
    condition: usize,
    controls: usize,
}

impl CategoricalDecoder {
    pub fn new(
        sizes: &[usize],
        condition: usize,
        classes: usize,
        controls: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let cells = stack(
            classes + condition + controls,
            sizes,
            vb.pp("multi_rnn_cell"),
        )?;
        let initial_state = Dense::new(
            condition,
            2 * sizes.iter().sum::<usize>(),
            vb.pp("z_to_initial_state"),
        )?;
        let output_projection =
            Dense::new(*sizes.last().unwrap(), classes, vb.pp("output_projection"))?;
        Ok(Self {
            cells,
            initial_state,
            output_projection,
            classes,
            condition,
            controls,
        })
    }

    /// The rows of layer 0's kernel that multiply the controls, `[C, 4H]`.
    fn control_rows(&self) -> Result<Tensor> {
        self.cells[0]
            .w_x()?
            .narrow(0, self.classes + self.condition, self.controls)
    }

    /// The controls' share of layer 0's input at every step, `[S * N, 4H]`, from
    /// `controls` `[S, N, C]`; `None` for a decoder without controls.
    fn control_projection(
        &self,
        controls: Option<&Tensor>,
        dropout: Option<&Dropout>,
    ) -> Result<Option<Tensor>> {
        match (self.controls, controls) {
            (0, _) => Ok(None),
            (_, None) => candle_core::bail!("this decoder reads controls (chords) at every step"),
            (_, Some(c)) => {
                let flat = c.reshape((c.dim(0)? * c.dim(1)?, self.controls))?;
                Ok(Some(
                    dropped(&flat, dropout)?.matmul(&self.control_rows()?)?,
                ))
            }
        }
    }

    /// Teacher-forced logits `[S, N, classes]`. `previous` `[S, N]` holds the event fed at
    /// each step; index `classes` stands for the all-zero input of the first step.
    /// `controls` `[S, N, C]` for a decoder with controls.
    pub fn logits(
        &self,
        condition: &Tensor,
        previous: &Tensor,
        controls: Option<&Tensor>,
        dropout: Option<&Dropout>,
    ) -> Result<Tensor> {
        let (steps, n) = previous.dims2()?;
        let mut states = initial_states(&self.initial_state, &self.cells, condition)?;
        let first = &self.cells[0];
        let w_x = first.w_x()?;
        let w_event = Tensor::cat(
            &[
                &w_x.narrow(0, 0, self.classes)?,
                &w_x.narrow(0, 0, 1)?.zeros_like()?,
            ],
            0,
        )?;
        let w_condition = w_x.narrow(0, self.classes, self.condition)?;
        let events = w_event.index_select(&previous.flatten_all()?, 0)?;
        let mut x =
            match dropout {
                // The condition is the same at every step: its projection is computed once.
                None => {
                    let condition_projection =
                        add_row(&condition.matmul(&w_condition)?, &first.bias)?.flatten_all()?;
                    add_row(&events.reshape((steps, ()))?, &condition_projection)?.reshape((
                        steps,
                        n,
                        (),
                    ))?
                }
                // Each step drops its own inputs. A one-hot event is kept whole or dropped.
                Some(d) => {
                    let kept = d.apply(&Tensor::ones(
                        (steps * n, 1),
                        events.dtype(),
                        events.device(),
                    )?)?;
                    let repeated = condition
                        .unsqueeze(0)?
                        .broadcast_as((steps, n, condition.dim(1)?))?
                        .contiguous()?;
                    let conditions = d
                        .apply(&repeated)?
                        .reshape((steps * n, ()))?
                        .matmul(&w_condition)?;
                    add_row(&(events.broadcast_mul(&kept)? + conditions)?, &first.bias)?
                        .reshape((steps, n, ()))?
                }
            };
        if let Some(c) = self.control_projection(controls, dropout)? {
            x = (x + c.reshape((steps, n, ()))?)?;
        }
        for (i, cell) in self.cells.iter().enumerate() {
            if i > 0 {
                x = cell.project(&dropped(&x, dropout)?)?;
            }
            let (h, c) = states.remove(0);
            x = cell.seq(&x, &h, &c)?.hs;
        }
        self.output_projection.forward(&x)
    }

    /// Autoregressive sampling from `condition` `[N, E]` (and `controls` `[steps, N, C]`
    /// for a decoder with controls); `first` is the event fed at the first step
    /// (`classes` for the zero input). Returns `[N][steps]` events, and appends row 0's
    /// top-layer output at every step to `trace` when given.
    ///
    /// What does not depend on the samples (the condition's and the controls' shares of
    /// layer 0's input, the initial state) is computed once with candle; the steps run on
    /// plain slices.
    fn sample(
        &self,
        condition: &Tensor,
        controls: Option<&Tensor>,
        steps: usize,
        first: &[u32],
        pickers: &mut [Picker],
        trace: Option<&mut Vec<f32>>,
    ) -> Result<Vec<Vec<Event>>> {
        let n = condition.dim(0)?;
        let control_projection = self
            .control_projection(controls, None)?
            .map(|c| f32_rows(&c))
            .transpose()?;
        let SampleStart {
            condition_projection,
            initial,
            stack,
            output_kernel,
            output_bias,
        } = SampleStart::new(
            &self.cells,
            &self.initial_state,
            &self.output_projection,
            condition,
            self.classes,
        )?;
        let weights = StepWeights {
            stack: stack.weights(),
            output_kernel: output_kernel.slice(),
            output_bias: output_bias.slice(),
            classes: self.classes,
        };
        // Batches split into independent blocks of rows, one per thread. A single phrase
        // (the plugin's live decode, 1.5 ms) stays on its thread: the host's audio threads
        // need the other cores more.
        let blocks = if n >= 8 && trace.is_none() {
            rayon::current_num_threads().clamp(1, n / 4)
        } else {
            1
        };
        let rows = n.div_ceil(blocks);
        let gates0 = 4 * self.cells[0].hidden_size();
        let block_initial = |b: usize| -> Vec<(Vec<f32>, Vec<f32>)> {
            let (r0, r1) = (b * rows, ((b + 1) * rows).min(n));
            initial
                .iter()
                .zip(&weights.stack.cells)
                .map(|((h, c), &(_, hidden))| {
                    (
                        h[r0 * hidden..r1 * hidden].to_vec(),
                        c[r0 * hidden..r1 * hidden].to_vec(),
                    )
                })
                .collect()
        };
        let run =
            |b: usize, pickers: &mut [Picker], first: &[u32], trace: Option<&mut Vec<f32>>| {
                let (r0, r1) = (b * rows, ((b + 1) * rows).min(n));
                let controls = control_projection
                    .as_deref()
                    .map(|projection| BlockControls {
                        projection,
                        rows: n,
                        first_row: r0,
                    });
                weights.run(
                    &condition_projection[r0 * gates0..r1 * gates0],
                    controls,
                    block_initial(b),
                    steps,
                    first,
                    pickers,
                    trace,
                )
            };
        if blocks == 1 {
            return Ok(run(0, pickers, first, trace));
        }
        use rayon::prelude::*;
        let outs: Vec<Vec<Vec<Event>>> = pickers
            .par_chunks_mut(rows)
            .zip(first.par_chunks(rows))
            .enumerate()
            .map(|(b, (p, f))| run(b, p, f, None))
            .collect();
        Ok(outs.into_iter().flatten().collect())
    }
}

/// The controls' share of layer 0's input for a block of rows: `projection` is
/// `[steps, rows, 4H0]` for all the batch's rows, of which the block starts at `first_row`.
#[derive(Clone, Copy)]
struct BlockControls<'a> {
    projection: &'a [f32],
    rows: usize,
    first_row: usize,
}

/// A categorical decoder's weights as slices, for [`StepWeights::run`].
struct StepWeights<'a> {
    stack: StackWeights<'a>,
    output_kernel: &'a [f32],
    output_bias: &'a [f32],
    classes: usize,
}

impl StepWeights<'_> {
    /// Samples `steps` events for a block of rows: `condition_projection` `[rows, 4H0]`
    /// (bias included), the controls' share at every step, each layer's initial `(h, c)`,
    /// the first events and the rows' pickers; row 0's top-layer output goes to `trace` at
    /// every step when given.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        condition_projection: &[f32],
        controls: Option<BlockControls>,
        initial: Vec<(Vec<f32>, Vec<f32>)>,
        steps: usize,
        first: &[u32],
        pickers: &mut [Picker],
        mut trace: Option<&mut Vec<f32>>,
    ) -> Vec<Vec<Event>> {
        let n = first.len();
        let classes = self.classes;
        let mut state = self.stack.start(initial);
        // Layer 0's inputs are a row lookup (the event) and the condition's projection.
        let gates0 = 4 * self.stack.cells[0].1;
        let event_rows = &self.stack.input_rows()[..classes * gates0];
        let top_hidden = self.stack.cells.last().unwrap().1;
        let mut x0 = vec![0f32; n * gates0];
        let mut logits = vec![0f32; n * classes];
        let mut previous = first.to_vec();
        let mut out = vec![Vec::with_capacity(steps); n];
        for t in 0..steps {
            for (r, row) in x0.chunks_exact_mut(gates0).enumerate() {
                row.copy_from_slice(&condition_projection[r * gates0..(r + 1) * gates0]);
                if let Some(event) = event_rows.chunks_exact(gates0).nth(previous[r] as usize) {
                    row.iter_mut().zip(event).for_each(|(x, e)| *x += e);
                }
                if let Some(c) = controls {
                    let at = (t * c.rows + c.first_row + r) * gates0;
                    row.iter_mut()
                        .zip(&c.projection[at..at + gates0])
                        .for_each(|(x, c)| *x += c);
                }
            }
            let top = state.step(&self.stack, &x0);
            if let Some(trace) = trace.as_deref_mut() {
                trace.extend_from_slice(&top[..top_hidden]);
            }
            affine(top, self.output_kernel, self.output_bias, &mut logits);
            for (i, (row, picker)) in logits
                .chunks_exact(classes)
                .zip(pickers.iter_mut())
                .enumerate()
            {
                let event = picker.pick(row);
                out[i].push(event as Event);
                previous[i] = event as u32;
            }
        }
        out
    }
}

/// A conductor LSTM runs one step per bar on zero input; its top output conditions the
/// core decoder for that bar.
#[derive(Debug, Clone)]
pub struct HierarchicalDecoder {
    conductor: Vec<LstmCell>,
    initial_state: Dense,
    core: CategoricalDecoder,
    bars: usize,
    steps_per_bar: usize,
}

impl HierarchicalDecoder {
    pub fn new(config: &Config, classes: usize, vb: VarBuilder) -> Result<Self> {
        // Magenta's names: `decoder/hierarchical_level_0/cell_N` for the conductor (no
        // `multi_rnn_cell`) and `core_decoder/decoder/...` for the bar decoder.
        let level = vb.pp("decoder").pp("hierarchical_level_0");
        let conductor = stack(1, &config.decoder, level.clone())?;
        let conductor_size = *config.decoder.last().unwrap();
        let initial_state = Dense::new(
            config.z_size,
            2 * config.decoder.iter().sum::<usize>(),
            level.pp("initial_state"),
        )?;
        let core = CategoricalDecoder::new(
            &config.decoder,
            conductor_size,
            classes,
            config.control_depth(),
            vb.pp("core_decoder").pp("decoder"),
        )?;
        Ok(Self {
            conductor,
            initial_state,
            core,
            bars: config.bars,
            steps_per_bar: config.steps_per_bar,
        })
    }

    /// The conductor's embeddings, bar-major `[bars * B, H]`.
    fn embeddings(&self, z: &Tensor) -> Result<Tensor> {
        let batch = z.dim(0)?;
        let mut states = initial_states(&self.initial_state, &self.conductor, z)?;
        let mut x: Option<Tensor> = None;
        for cell in &self.conductor {
            let xproj = match &x {
                // Zero input: the projection is the bias alone.
                None => {
                    let zeros = Tensor::zeros(
                        (self.bars * batch, cell.bias.dim(0)?),
                        cell.bias.dtype(),
                        z.device(),
                    )?;
                    add_row(&zeros, &cell.bias)?.reshape((self.bars, batch, ()))?
                }
                Some(x) => cell.project(x)?,
            };
            let (h, c) = states.remove(0);
            x = Some(cell.seq(&xproj, &h, &c)?.hs);
        }
        let x = x.unwrap();
        x.reshape((self.bars * batch, ()))
    }

    /// `[T, B, ..]` -> `[S, U * B, ..]`: every bar becomes a sequence of its own.
    fn per_bar(&self, t: &Tensor) -> Result<Tensor> {
        let (u, s) = (self.bars, self.steps_per_bar);
        let (rest, batch) = (&t.dims()[2..], t.dim(1)?);
        let dims: Vec<usize> = [u, s, batch].iter().chain(rest).copied().collect();
        let bars: Vec<usize> = [s, u * batch].iter().chain(rest).copied().collect();
        t.reshape(dims)?
            .transpose(0, 1)?
            .reshape(bars)?
            .contiguous()
    }

    fn logits(
        &self,
        z: &Tensor,
        previous: &Tensor,
        controls: Option<&Tensor>,
        dropout: Option<&Dropout>,
    ) -> Result<Tensor> {
        let batch = z.dim(0)?;
        let (u, s) = (self.bars, self.steps_per_bar);
        let embeddings = self.embeddings(z)?;
        let previous = self.per_bar(previous)?;
        let controls = controls.map(|c| self.per_bar(c)).transpose()?;
        let logits = self
            .core
            .logits(&embeddings, &previous, controls.as_ref(), dropout)?;
        let classes = logits.dim(2)?;
        logits
            .reshape((s, u, batch, classes))?
            .transpose(0, 1)?
            .reshape((u * s, batch, classes))
    }

    fn sample(
        &self,
        z: &Tensor,
        controls: Option<&Tensor>,
        pickers: &mut [Picker],
        mut trace: Option<&mut Vec<f32>>,
    ) -> Result<Vec<Vec<Event>>> {
        let batch = z.dim(0)?;
        let embeddings = self.embeddings(z)?;
        let mut first = vec![self.core.classes as u32; batch];
        let mut out = vec![Vec::with_capacity(self.bars * self.steps_per_bar); batch];
        for bar in 0..self.bars {
            let condition = embeddings.narrow(0, bar * batch, batch)?;
            let bar_controls = controls
                .map(|c| c.narrow(0, bar * self.steps_per_bar, self.steps_per_bar))
                .transpose()?;
            let events = self.core.sample(
                &condition,
                bar_controls.as_ref(),
                self.steps_per_bar,
                &first,
                pickers,
                trace.as_deref_mut(),
            )?;
            for (i, bar_events) in events.into_iter().enumerate() {
                // The next bar starts from this bar's last output, as when sampling in Magenta.
                first[i] = *bar_events.last().unwrap() as u32;
                out[i].extend(bar_events);
            }
        }
        Ok(out)
    }
}

/// The decoder a model is built with, as in Magenta's `lstm_models.py`: categorical,
/// flat or under a conductor, for melodies and drums; GrooVAE's for grooves. Each brings
/// its output head and its reconstruction loss; the VAE around it is the same.
#[derive(Debug, Clone)]
pub enum Decoder {
    Flat(CategoricalDecoder),
    Hierarchical(HierarchicalDecoder),
    Groove(GrooveDecoder),
}

/// Feed the model's own samples instead of the targets with this probability.
#[derive(Debug, Clone, Copy)]
pub struct ScheduledSampling {
    pub probability: f64,
    pub seed: u64,
}

impl Decoder {
    /// `vb` is the model's root: flat and hierarchical decoders live under different scopes.
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self> {
        let classes = config.num_classes();
        Ok(if config.encoding == Encoding::Groove {
            Self::Groove(GrooveDecoder::new(
                &config.decoder,
                config.z_size,
                vb.pp("decoder"),
            )?)
        } else if config.hierarchical {
            Self::Hierarchical(HierarchicalDecoder::new(config, classes, vb)?)
        } else {
            Self::Flat(CategoricalDecoder::new(
                &config.decoder,
                config.z_size,
                classes,
                config.control_depth(),
                vb.pp("decoder"),
            )?)
        })
    }

    pub fn device(&self) -> &Device {
        match self {
            Self::Flat(d) => d.output_projection.kernel.device(),
            Self::Hierarchical(d) => d.core.output_projection.kernel.device(),
            Self::Groove(d) => d.device(),
        }
    }

    /// The groove decoder, for what only it does (write rows, hold hits).
    pub fn groove(&self) -> Result<&GrooveDecoder> {
        match self {
            Self::Groove(d) => Ok(d),
            _ => candle_core::bail!(
                "this model writes events, not groove rows: it makes patterns, and does not \
                 humanize them"
            ),
        }
    }

    /// The categorical decoder's classes; an error for a groove decoder.
    fn classes(&self) -> Result<usize> {
        match self {
            Self::Flat(d) => Ok(d.classes),
            Self::Hierarchical(d) => Ok(d.core.classes),
            Self::Groove(_) => candle_core::bail!(
                "this is a groove model (GrooVAE): it humanizes or drums up patterns, and does \
                 not make them"
            ),
        }
    }

    /// Logits `[T, B, classes]` when step `t` is fed event `t - 1` of the time-major
    /// `inputs` `[T, B]`: the targets themselves under teacher forcing. `controls`
    /// `[T, B, C]` for a chord model; `dropout` while training.
    pub fn logits(
        &self,
        z: &Tensor,
        inputs: &Tensor,
        controls: Option<&Tensor>,
        dropout: Option<&Dropout>,
    ) -> Result<Tensor> {
        let previous = shift_right(inputs, self.classes()? as u32)?;
        match self {
            Self::Flat(d) => d.logits(z, &previous, controls, dropout),
            Self::Hierarchical(d) => d.logits(z, &previous, controls, dropout),
            Self::Groove(_) => unreachable!("classes() refused it"),
        }
    }

    /// Decodes every row of `z` `[B, Z]` into `steps` events, over `controls`
    /// `[steps, B, C]` for a chord model. With `trace`, row 0's top-layer output at every
    /// step is appended to it (`[steps, hidden]`, row-major).
    pub fn sample(
        &self,
        z: &Tensor,
        controls: Option<&Tensor>,
        steps: usize,
        sampling: Sampling,
        trace: Option<&mut Vec<f32>>,
    ) -> Result<Vec<Vec<Event>>> {
        let classes = self.classes()?;
        let batch = z.dim(0)?;
        let mut pickers: Vec<Picker> = (0..batch)
            .map(|i| Picker::new(sampling, i as u64))
            .collect();
        match self {
            Self::Flat(d) => d.sample(
                z,
                controls,
                steps,
                &vec![classes as u32; batch],
                &mut pickers,
                trace,
            ),
            Self::Hierarchical(d) => d.sample(z, controls, &mut pickers, trace),
            Self::Groove(_) => unreachable!("classes() refused it"),
        }
    }

    /// The loss of reconstructing `targets` from `z` `[B, Z]`: time-major events `[T, B]`
    /// under a softmax cross-entropy, or groove rows `[T, B, ROW]` under GrooVAE's loss.
    /// With scheduled sampling (categorical decoders), each step is fed the model's own
    /// sample instead of the previous target with its probability.
    pub fn reconstruction(
        &self,
        z: &Tensor,
        targets: &Tensor,
        controls: Option<&Tensor>,
        scheduled: Option<ScheduledSampling>,
        dropout: Option<&Dropout>,
    ) -> Result<Reconstruction> {
        if let Self::Groove(d) = self {
            return d.reconstruction(z, targets, dropout);
        }
        let inputs = match scheduled {
            Some(s) if s.probability > 0.0 => self.mix_in_samples(z, targets, controls, s)?,
            _ => targets.clone(),
        };
        let logits = self.logits(z, &inputs, controls, dropout)?;
        let (steps, batch, classes) = logits.dims3()?;
        let flat_logits = logits.reshape((steps * batch, classes))?;
        let flat_targets = targets.flatten_all()?;
        let log_probs = candle_nn::ops::log_softmax(&flat_logits, D::Minus1)?;
        let picked = log_probs.gather(&flat_targets.unsqueeze(1)?, 1)?;
        let accuracy = flat_logits
            .argmax(D::Minus1)?
            .eq(&flat_targets)?
            .to_dtype(DType::F32)?
            .mean_all()?;
        Ok(Reconstruction {
            loss: (picked.sum_all()?.neg()? / batch as f64)?,
            accuracy,
        })
    }

    /// Parallel scheduled sampling (Duckworth et al. 2019): one teacher-forced pass
    /// predicts every step, and the sampled predictions replace the targets as inputs
    /// at random steps. It keeps the fused whole-sequence LSTM usable, where Magenta's
    /// step-by-step version would not be.
    fn mix_in_samples(
        &self,
        z: &Tensor,
        events: &Tensor,
        controls: Option<&Tensor>,
        s: ScheduledSampling,
    ) -> Result<Tensor> {
        let logits = self
            .logits(&z.detach(), events, controls, None)?
            .detach()
            .to_dtype(DType::F32)?;
        let (steps, batch, classes) = logits.dims3()?;
        let logits = logits.flatten_all()?.to_vec1::<f32>()?;
        let mut targets = events.flatten_all()?.to_vec1::<u32>()?;
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
        for (i, target) in targets.iter_mut().enumerate() {
            if rng.random::<f64>() < s.probability {
                *target =
                    sample_categorical(&logits[i * classes..(i + 1) * classes], &mut rng) as u32;
            }
        }
        Tensor::from_vec(targets, (steps, batch), events.device())
    }

    /// Width of the top layer [`Decoder::sample`] traces.
    pub fn hidden_size(&self) -> usize {
        match self {
            Self::Flat(d) => d.cells.last().unwrap().hidden_size(),
            Self::Hierarchical(d) => d.core.cells.last().unwrap().hidden_size(),
            Self::Groove(d) => d.hidden_size(),
        }
    }
}

/// The events fed at each step: the previous target, and `start` at step 0.
fn shift_right(targets: &Tensor, start: u32) -> Result<Tensor> {
    let (steps, batch) = targets.dims2()?;
    let first = Tensor::full(start, (1, batch), targets.device())?;
    Tensor::cat(&[&first, &targets.i(..steps - 1)?], 0)
}

/// Chooses one event from a row of logits.
struct Picker {
    temperature: Option<f32>,
    rng: ChaCha8Rng,
}

impl Picker {
    fn new(sampling: Sampling, stream: u64) -> Self {
        let (temperature, seed) = match sampling {
            Sampling::Greedy => (None, 0),
            Sampling::Temperature { temperature, seed } => (Some(temperature), seed),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self { temperature, rng }
    }

    fn pick(&mut self, logits: &[f32]) -> usize {
        match self.temperature {
            None => argmax(logits),
            Some(t) => sample_categorical(
                &logits.iter().map(|l| l / t).collect::<Vec<_>>(),
                &mut self.rng,
            ),
        }
    }
}

fn argmax(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &l)| {
            if l > best.1 {
                (i, l)
            } else {
                best
            }
        })
        .0
}

/// Draws an index from `softmax(logits)`.
fn sample_categorical(logits: &[f32], rng: &mut impl Rng) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    if !total.is_finite() || total <= 0.0 {
        return argmax(logits);
    }
    let mut target = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        target -= w;
        if target < 0.0 {
            return i;
        }
    }
    weights.len() - 1
}
