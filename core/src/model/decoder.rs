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

    /// Width of its top layer, whose outputs [`Self::sample`] traces.
    fn top_hidden(&self) -> usize {
        self.cells.last().unwrap().hidden_size()
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
    /// (`classes` for the zero input). Returns `[N][steps]` events, and appends every
    /// row's top-layer output at every step to `trace` when given (`[steps, N, hidden]`).
    /// `parallel`: the rows may be split over threads (a batch of phrases, not one).
    ///
    /// What does not depend on the samples (the condition's and the controls' shares of
    /// layer 0's input, the initial state) is computed once with candle; the steps run on
    /// plain slices.
    #[allow(clippy::too_many_arguments)]
    fn sample(
        &self,
        condition: &Tensor,
        controls: Option<&Tensor>,
        steps: usize,
        first: &[u32],
        pickers: &mut [Picker],
        trace: Option<&mut Vec<f32>>,
        parallel: bool,
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
        let blocks = if parallel && n >= 8 && trace.is_none() {
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
    /// the first events and the rows' pickers; every row's top-layer output goes to
    /// `trace` at every step when given.
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
                trace.extend_from_slice(&top[..n * top_hidden]);
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

    /// Each bar starts from the previous bar's last event, as when sampling in Magenta, so
    /// the bars are not independent. They nearly are: a bar most often ends on class 0 (a
    /// melody's hold, a drum pattern's silence; 93 % and 54 % of bar ends in prior decodes
    /// of folk-4bar and groove-4bar). So a small batch decodes every bar at once, each
    /// later bar from class 0, as one batch of rows through the bottom decoder (a 16-bar
    /// phrase: 16 steps of 16 rows, not 256 steps of one), then chains them: a bar whose
    /// previous bar ended on another event is decoded again from that event. Each bar draws
    /// from its own place in its phrase's random stream ([`Picker::at_step`]), so the
    /// phrase is the one bar-by-bar decoding gives, to the event.
    fn sample(
        &self,
        z: &Tensor,
        controls: Option<&Tensor>,
        pickers: &[Picker],
        trace: Option<&mut Vec<f32>>,
    ) -> Result<Vec<Vec<Event>>> {
        let batch = z.dim(0)?;
        let (u, s) = (self.bars, self.steps_per_bar);
        let embeddings = self.embeddings(z)?;
        let controls = controls.map(|c| self.per_bar(c)).transpose()?;
        let hidden = self.core.top_hidden();
        let zero_input = self.core.classes as u32;
        // Decodes the bars `rows` name, `(bar, item, first event)`; with `trace`, every
        // row's top-layer output, `[s, rows, hidden]`.
        let decode = |rows: &[(usize, usize, u32)], trace: Option<&mut Vec<f32>>| {
            let index: Vec<u32> = rows
                .iter()
                .map(|&(bar, item, _)| (bar * batch + item) as u32)
                .collect();
            let index = Tensor::from_vec(index, rows.len(), z.device())?;
            let condition = embeddings.index_select(&index, 0)?;
            let controls = controls
                .as_ref()
                .map(|c| c.index_select(&index, 1))
                .transpose()?;
            let first: Vec<u32> = rows.iter().map(|r| r.2).collect();
            let mut row_pickers: Vec<Picker> = rows
                .iter()
                .map(|&(bar, item, _)| pickers[item].at_step(bar * s))
                .collect();
            self.core.sample(
                &condition,
                controls.as_ref(),
                s,
                &first,
                &mut row_pickers,
                trace,
                batch >= PARALLEL_BATCH,
            )
        };
        let mut trace = trace;
        // A small batch: every bar at once, bar 0 from the zero input, the others from
        // class 0. Row `bar * batch + item`.
        let guessed = if batch < PARALLEL_BATCH {
            let rows: Vec<(usize, usize, u32)> = (0..u * batch)
                .map(|row| {
                    let (bar, item) = (row / batch, row % batch);
                    (bar, item, if bar == 0 { zero_input } else { 0 })
                })
                .collect();
            let mut every_row = trace.is_some().then(Vec::new);
            let events = decode(&rows, every_row.as_mut())?;
            Some((rows, events, every_row))
        } else {
            None
        };
        let mut out: Vec<Vec<Event>> = vec![Vec::with_capacity(u * s); batch];
        for bar in 0..u {
            let mut again = Vec::new();
            for (item, phrase) in out.iter_mut().enumerate() {
                let first = phrase.last().map_or(zero_input, |&last| last as u32);
                let row = bar * batch + item;
                match &guessed {
                    Some((rows, events, every_row)) if rows[row].2 == first => {
                        if let (Some(trace), Some(every_row), 0) =
                            (trace.as_deref_mut(), every_row, item)
                        {
                            append_row(trace, every_row, rows.len(), hidden, row);
                        }
                        phrase.extend_from_slice(&events[row]);
                    }
                    _ => again.push((bar, item, first)),
                }
            }
            if again.is_empty() {
                continue;
            }
            // Item 0, when it is decoded again, is the first row.
            let mut every_row = (trace.is_some() && again[0].1 == 0).then(Vec::new);
            let events = decode(&again, every_row.as_mut())?;
            if let (Some(trace), Some(every_row)) = (trace.as_deref_mut(), &every_row) {
                append_row(trace, every_row, again.len(), hidden, 0);
            }
            for (&(_, item, _), events) in again.iter().zip(events) {
                out[item].extend(events);
            }
        }
        Ok(out)
    }
}

/// From this many phrases in a batch, the rows are split over threads and a hierarchical
/// decoder decodes bar by bar: its rows already fill the matrix products.
const PARALLEL_BATCH: usize = 8;

/// Appends row `row`'s outputs from `every_row`, a trace of `rows` rows
/// (`[steps, rows, hidden]`), to `trace` (`[steps, hidden]`).
fn append_row(trace: &mut Vec<f32>, every_row: &[f32], rows: usize, hidden: usize, row: usize) {
    for step in every_row.chunks_exact(rows * hidden) {
        trace.extend_from_slice(&step[row * hidden..(row + 1) * hidden]);
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
            Self::Flat(d) => {
                let mut every_row = trace.is_some().then(Vec::new);
                let events = d.sample(
                    z,
                    controls,
                    steps,
                    &vec![classes as u32; batch],
                    &mut pickers,
                    every_row.as_mut(),
                    batch >= PARALLEL_BATCH,
                )?;
                if let (Some(trace), Some(every_row)) = (trace, every_row) {
                    append_row(trace, &every_row, batch, d.top_hidden(), 0);
                }
                Ok(events)
            }
            Self::Hierarchical(d) => d.sample(z, controls, &pickers, trace),
            Self::Groove(_) => unreachable!("classes() refused it"),
        }
    }

    /// The loss of reconstructing `targets` from `z` `[B, Z]`: time-major events `[T, B]`
    /// under a softmax cross-entropy, or groove rows `[T, B, ROW]` under GrooVAE's loss.
    /// With scheduled sampling (categorical decoders), each step is fed the model's own
    /// sample instead of the previous target with its probability; with `class_weights`
    /// (categorical decoders), each step's cross-entropy counts its target's weight.
    pub fn reconstruction(
        &self,
        z: &Tensor,
        targets: &Tensor,
        controls: Option<&Tensor>,
        scheduled: Option<ScheduledSampling>,
        dropout: Option<&Dropout>,
        class_weights: Option<&Tensor>,
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
        let mut picked = log_probs.gather(&flat_targets.unsqueeze(1)?, 1)?;
        if let Some(weights) = class_weights {
            let weights = weights.index_select(&flat_targets, 0)?.unsqueeze(1)?;
            picked = (picked * weights.to_dtype(log_probs.dtype())?)?;
        }
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
            Self::Flat(d) => d.top_hidden(),
            Self::Hierarchical(d) => d.core.top_hidden(),
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
#[derive(Clone)]
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

    /// This picker as it is after `step` picks: each pick draws one `f64` (two words of
    /// the stream) whatever it picks, so a bar can be decoded apart from the bars before
    /// it and draw what it would have drawn after them.
    fn at_step(&self, step: usize) -> Self {
        let mut picker = self.clone();
        picker.rng.set_word_pos(2 * step as u128);
        picker
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
    // Drawn first, so that every pick takes the same share of the stream.
    let draw = rng.random::<f64>();
    if !total.is_finite() || total <= 0.0 {
        return argmax(logits);
    }
    let mut target = draw * total;
    for (i, w) in weights.iter().enumerate() {
        target -= w;
        if target < 0.0 {
            return i;
        }
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChordEncoding;
    use candle_nn::VarMap;

    /// A tiny 16-bar hierarchical decoder with random weights whose class 0 is about as
    /// likely as all the others together at temperature 1, so that bars end on it about
    /// half the time: both the guessed bars and the bars decoded again are exercised.
    fn sixteen_bars(chords: bool) -> (Decoder, Config) {
        let mut config = Config::tiny(16, true);
        if chords {
            config.chords = Some(ChordEncoding::Pitch);
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let decoder = Decoder::new(&config, vb).unwrap();
        let classes = config.num_classes();
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.ends_with("output_projection.bias") {
                let mut bias = vec![0f32; classes];
                bias[0] = ((classes - 1) as f32).ln();
                var.set(&Tensor::new(bias, &Device::Cpu).unwrap()).unwrap();
            }
        }
        (decoder, config)
    }

    #[test]
    fn a_picker_placed_at_a_step_draws_what_it_would_after_that_many_picks() {
        let picker = Picker::new(
            Sampling::Temperature {
                temperature: 1.0,
                seed: 9,
            },
            3,
        );
        let logits = [0.1, 0.5, 0.2, 0.9, 0.0];
        let mut run = picker.clone();
        let picks: Vec<usize> = (0..40).map(|_| run.pick(&logits)).collect();
        for step in [0, 1, 17, 39] {
            assert_eq!(picker.at_step(step).pick(&logits), picks[step], "{step}");
        }
    }

    /// A phrase decoded alone (every bar at once, then chained) is the phrase decoded
    /// bar by bar in a batch of eight, to the event, with the same trace.
    #[test]
    fn bars_decoded_at_once_give_the_phrase_bar_by_bar_decoding_gives() {
        for chords in [false, true] {
            let (decoder, config) = sixteen_bars(chords);
            let steps = config.steps();
            let device = Device::Cpu;
            let mut ends_on_zero = 0;
            for (seed, sampling) in [
                (1, Sampling::Greedy),
                (
                    2,
                    Sampling::Temperature {
                        temperature: 1.0,
                        seed: 5,
                    },
                ),
                (
                    3,
                    Sampling::Temperature {
                        temperature: 1.0,
                        seed: 6,
                    },
                ),
            ] {
                let z8 = Tensor::randn(0f32, 1.0, (PARALLEL_BATCH, config.z_size), &device)
                    .unwrap()
                    .affine(1.0, seed as f64)
                    .unwrap();
                let z1 = z8.narrow(0, 0, 1).unwrap();
                let controls = |rows: usize| {
                    chords.then(|| {
                        Tensor::randn(0f32, 1.0, (steps, rows, config.control_depth()), &device)
                            .unwrap()
                    })
                };
                let controls8 = controls(PARALLEL_BATCH);
                let controls1 = controls8.as_ref().map(|c| c.narrow(1, 0, 1).unwrap());
                let (mut trace1, mut trace8) = (Vec::new(), Vec::new());
                let alone = decoder
                    .sample(&z1, controls1.as_ref(), steps, sampling, Some(&mut trace1))
                    .unwrap();
                let batched = decoder
                    .sample(&z8, controls8.as_ref(), steps, sampling, Some(&mut trace8))
                    .unwrap();
                assert_eq!(alone[0], batched[0], "{sampling:?}, chords {chords}");
                assert_eq!(trace1, trace8);
                assert_eq!(trace1.len(), steps * decoder.hidden_size());
                ends_on_zero += (1..16).filter(|bar| alone[0][bar * 16 - 1] == 0).count();
            }
            // Of the 45 bar ends the guess was right for some and wrong for others.
            assert!((5..40).contains(&ends_on_zero), "{ends_on_zero}");
        }
    }
}
