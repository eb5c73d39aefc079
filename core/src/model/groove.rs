//! GrooVAE's parts (Gillick et al. 2019): Magenta's `GrooveLstmDecoder`, which writes
//! every step's hits, velocities and offsets and reads them back as its next input, and
//! what a groove model's encoder is shown ([`GrooveInput`]). The model around them is the
//! same [`super::MusicVae`] as for melodies, with its bidirectional encoder over rows.
//!
//! The encoder sees what the model's [`GrooveInput`] leaves of a groove (everything, the
//! hits alone, or taps); the decoder writes the whole groove. Hits are Bernoulli, through
//! a sigmoid; velocities a sigmoid and offsets a tanh, each learnt by squared error.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::lstm::{initial_states, stack, LstmCell};
use super::step::{add_product, affine, SampleStart};
use super::{dropped, Dense, Dropout, Reconstruction, Sampling};
use crate::music::drums::{self, NUM_DRUM_CLASSES};
use crate::music::groove::{Groove, ROW};
use crate::music::Event;

/// What the encoder is shown of a groove (Magenta's `GrooveConverter` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrooveInput {
    /// The whole groove: a VAE of performances (`groovae_4bar`).
    #[default]
    Whole,
    /// The hits alone, to add velocity and timing (`groovae_2bar_humanize`).
    Humanize,
    /// Taps on one voice with their timing (`groovae_2bar_tap_fixed_velocity`).
    Tap,
}

impl GrooveInput {
    pub fn of(self, groove: &Groove) -> Groove {
        match self {
            Self::Whole => groove.clone(),
            Self::Humanize => groove.humanize_input(),
            Self::Tap => groove.tap_input(),
        }
    }
}

/// An LSTM stack fed its own previous row and z at every step.
#[derive(Debug, Clone)]
pub struct GrooveDecoder {
    cells: Vec<LstmCell>,
    initial_state: Dense,
    output_projection: Dense,
}

impl GrooveDecoder {
    pub fn new(sizes: &[usize], z_size: usize, vb: VarBuilder) -> Result<Self> {
        let cells = stack(ROW + z_size, sizes, vb.pp("multi_rnn_cell"))?;
        let initial_state = Dense::new(
            z_size,
            2 * sizes.iter().sum::<usize>(),
            vb.pp("z_to_initial_state"),
        )?;
        let output_projection =
            Dense::new(*sizes.last().unwrap(), ROW, vb.pp("output_projection"))?;
        Ok(Self {
            cells,
            initial_state,
            output_projection,
        })
    }

    /// Teacher-forced pre-activations `[T, B, ROW]`: step `t` reads row `t - 1` of
    /// `targets` `[T, B, ROW]` (zeros at the first step) beside z `[B, Z]`.
    pub fn outputs(
        &self,
        z: &Tensor,
        targets: &Tensor,
        dropout: Option<&Dropout>,
    ) -> Result<Tensor> {
        let (steps, batch, _) = targets.dims3()?;
        let first = Tensor::zeros((1, batch, ROW), targets.dtype(), targets.device())?;
        let previous = Tensor::cat(&[&first, &targets.narrow(0, 0, steps - 1)?], 0)?;
        let zs = z.unsqueeze(0)?.broadcast_as((steps, batch, z.dim(1)?))?;
        let mut x = Tensor::cat(&[&previous, &zs.contiguous()?], 2)?;
        let mut states = initial_states(&self.initial_state, &self.cells, z)?;
        for cell in &self.cells {
            let (h, c) = states.remove(0);
            x = cell.seq(&cell.project(&dropped(&x, dropout)?)?, &h, &c)?.hs;
        }
        self.output_projection.forward(&x)
    }

    pub fn device(&self) -> &Device {
        self.output_projection.kernel.device()
    }

    pub fn hidden_size(&self) -> usize {
        self.cells.last().unwrap().hidden_size()
    }

    /// GrooVAE's reconstruction loss of `targets` `[T, B, ROW]` given `z`: per step, the
    /// hits' sigmoid cross-entropy plus the squared errors of velocities and offsets (all
    /// nine classes, hit or not, as Magenta sums them), summed over steps and averaged
    /// over the batch. The accuracy is the share of steps whose nine hits are all right.
    pub fn reconstruction(
        &self,
        z: &Tensor,
        targets: &Tensor,
        dropout: Option<&Dropout>,
    ) -> Result<Reconstruction> {
        let raw = self.outputs(z, targets, dropout)?;
        let batch = targets.dim(1)? as f64;
        let n = NUM_DRUM_CLASSES;
        let (logits, hits) = (raw.narrow(2, 0, n)?, targets.narrow(2, 0, n)?);
        // log(1 + e^-|x|) + max(x, 0) - x y: the cross-entropy of logits, kept finite.
        let hits_loss = ((logits.abs()?.neg()?.exp()? + 1.0)?.log()? + logits.relu()?)?
            .sub(&(&logits * &hits)?)?;
        let velocities = candle_nn::ops::sigmoid(&raw.narrow(2, n, n)?)?
            .sub(&targets.narrow(2, n, n)?)?
            .sqr()?;
        let offsets = raw
            .narrow(2, 2 * n, n)?
            .tanh()?
            .sub(&targets.narrow(2, 2 * n, n)?)?
            .sqr()?;
        let loss = ((hits_loss.sum_all()? + velocities.sum_all()?)? + offsets.sum_all()?)?
            .affine(1.0 / batch, 0.0)?;
        let predicted = logits.ge(0.0)?.to_dtype(DType::F32)?;
        let wrong = predicted.sub(&hits)?.abs()?.sum(2)?;
        let accuracy = wrong.eq(0.0)?.to_dtype(DType::F32)?.mean_all()?;
        Ok(Reconstruction { loss, accuracy })
    }

    /// Decodes every row of `z` `[B, Z]` into `steps` rows, each step fed the previous
    /// one: hits above probability 0.5 when greedy (as magenta.js decodes), else
    /// Bernoulli on `logit / temperature`; velocities and offsets as the model writes them.
    /// With `hits` (each row's pattern, `steps` events), the hits are the pattern's
    /// instead, written and fed back: the velocities and offsets of a known pattern.
    ///
    /// z's share of layer 0's input and the initial state are computed once with candle;
    /// the steps run on plain slices (as the categorical decoder's).
    pub fn sample(
        &self,
        z: &Tensor,
        steps: usize,
        sampling: Sampling,
        hits: Option<&[&[Event]]>,
    ) -> Result<Vec<Vec<f32>>> {
        let batch = z.dim(0)?;
        let SampleStart {
            condition_projection: z_projection,
            initial,
            stack: values,
            output_kernel,
            output_bias,
        } = SampleStart::new(
            &self.cells,
            &self.initial_state,
            &self.output_projection,
            z,
            ROW,
        )?;
        let stack = values.weights();
        let mut state = stack.start(initial);
        let gates0 = 4 * self.cells[0].hidden_size();
        let row_kernel = &stack.input_rows()[..ROW * gates0];
        let mut rngs: Vec<ChaCha8Rng> = (0..batch)
            .map(|i| {
                let mut rng = ChaCha8Rng::seed_from_u64(match sampling {
                    Sampling::Greedy => 0,
                    Sampling::Temperature { seed, .. } => seed,
                });
                rng.set_stream(i as u64);
                rng
            })
            .collect();
        let (mut x0, mut raw, mut previous) = (
            vec![0f32; batch * gates0],
            vec![0f32; batch * ROW],
            vec![0f32; batch * ROW],
        );
        let mut out = vec![Vec::with_capacity(steps * ROW); batch];
        for step in 0..steps {
            x0.copy_from_slice(&z_projection);
            add_product(&previous, row_kernel, gates0, &mut x0);
            affine(
                state.step(&stack, &x0),
                output_kernel.slice(),
                output_bias.slice(),
                &mut raw,
            );
            for (b, (((raw, rng), out), row)) in raw
                .chunks_exact(ROW)
                .zip(&mut rngs)
                .zip(&mut out)
                .zip(previous.chunks_exact_mut(ROW))
                .enumerate()
            {
                let n = NUM_DRUM_CLASSES;
                let known = hits.map(|h| {
                    h.get(b)
                        .and_then(|e| e.get(step))
                        .copied()
                        .unwrap_or(drums::NO_HITS)
                });
                for c in 0..n {
                    let hit = match (known, sampling) {
                        (Some(event), _) => event >> c & 1 == 1,
                        (None, Sampling::Greedy) => raw[c] > 0.0,
                        (None, Sampling::Temperature { temperature, .. }) => {
                            sigmoid(raw[c] / temperature) > rng.random::<f32>()
                        }
                    };
                    row[c] = if hit { 1.0 } else { 0.0 };
                    row[n + c] = sigmoid(raw[n + c]);
                    row[2 * n + c] = raw[2 * n + c].tanh();
                }
                out.extend_from_slice(row);
            }
        }
        Ok(out)
    }
}

/// Pre-activations to rows: sigmoid hits and velocities, tanh offsets.
pub(super) fn activate(raw: &Tensor) -> Result<Tensor> {
    let hv = candle_nn::ops::sigmoid(&raw.narrow(D::Minus1, 0, 2 * NUM_DRUM_CLASSES)?)?;
    let offsets = raw
        .narrow(D::Minus1, 2 * NUM_DRUM_CLASSES, NUM_DRUM_CLASSES)?
        .tanh()?;
    Tensor::cat(&[&hv, &offsets], D::Minus1)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One decoded row with every class hit, so that [`Groove::from_rows`] reads (and
/// clamps) the velocity and offset of each.
pub(super) fn hit_all(row: &[f32]) -> [f32; ROW] {
    let mut all = [0f32; ROW];
    all.copy_from_slice(row);
    all[..NUM_DRUM_CLASSES].fill(1.0);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::vae::{MusicVae, Training};
    use crate::model::Config;
    use crate::music::groove::{Feel, Stroke};
    use crate::music::Encoding;
    use candle_nn::VarMap;

    fn tiny(input: GrooveInput) -> Config {
        Config {
            encoding: Encoding::Groove,
            groove_input: input,
            ..Config::tiny(2, false)
        }
    }

    fn groove(seed: u64) -> Groove {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let strokes: Vec<Stroke> = (0..32)
            .flat_map(|step| {
                [(0u8, step % 8 == 0), (1, step % 8 == 4), (2, step % 2 == 0)]
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(move |(c, _)| (c, step))
            })
            .map(|(class, step)| Stroke {
                class,
                time: step as f64 + rng.random_range(-0.3..0.3),
                velocity: rng.random_range(30..127),
            })
            .collect();
        Groove::from_strokes(&strokes, 32)
    }

    #[test]
    fn the_loss_is_finite_and_decodes_keep_their_shape() {
        for input in [GrooveInput::Whole, GrooveInput::Humanize, GrooveInput::Tap] {
            let varmap = VarMap::new();
            let model = MusicVae::new(
                tiny(input),
                VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            )
            .unwrap();
            let grooves = [groove(1), groove(2)];
            let refs: Vec<&Groove> = grooves.iter().collect();
            let eps = Tensor::zeros((2, 8), DType::F32, &Device::Cpu).unwrap();
            let loss = model
                .loss(
                    &model.groove_batch(&refs).unwrap(),
                    &eps,
                    0.2,
                    0.0,
                    &Training::default(),
                )
                .unwrap();
            assert!(loss.reconstruction.is_finite() && loss.reconstruction > 0.0);
            let out = model.transform(&refs, Sampling::Greedy).unwrap();
            assert_eq!(out.len(), 2);
            assert!(out.iter().all(|g| g.len() == 32));
            // Greedy decoding is deterministic; sampling is by seed.
            assert_eq!(out, model.transform(&refs, Sampling::Greedy).unwrap());
            let hot = Sampling::Temperature {
                temperature: 1.0,
                seed: 9,
            };
            assert_eq!(
                model.transform(&refs, hot).unwrap(),
                model.transform(&refs, hot).unwrap()
            );
        }
    }

    #[test]
    fn sampling_on_slices_writes_the_rows_teacher_forcing_reads() {
        let varmap = VarMap::new();
        let config = tiny(GrooveInput::Whole);
        let decoder = GrooveDecoder::new(
            &config.decoder,
            config.z_size,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let (batch, steps) = (3, config.steps());
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let z: Vec<f32> = (0..batch * config.z_size)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let z = Tensor::from_vec(z, (batch, config.z_size), &Device::Cpu).unwrap();
        for hits in [None, Some([groove(1), groove(2), groove(3)])] {
            let events: Option<Vec<&[Event]>> = hits
                .as_ref()
                .map(|g| g.iter().map(|g| g.events.as_slice()).collect());
            let sampled = decoder
                .sample(&z, steps, Sampling::Greedy, events.as_deref())
                .unwrap()
                .concat();
            let targets = Tensor::from_vec(sampled.clone(), (batch, steps, ROW), &Device::Cpu)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap();
            let raw = decoder.outputs(&z, &targets, None).unwrap();
            let forced = activate(&raw)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (i, (&s, &f)) in sampled.iter().zip(&forced).enumerate() {
                if i % ROW >= NUM_DRUM_CLASSES {
                    assert!(
                        (s - f).abs() < 1e-5,
                        "value {i}: sampled {s}, teacher-forced {f}"
                    );
                } else if hits.is_none() {
                    assert_eq!(
                        s == 1.0,
                        f > 0.5,
                        "hit {i}: sampled {s}, teacher-forced probability {f}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_humanizer_plays_exactly_the_hits_it_is_given_at_any_length() {
        let varmap = VarMap::new();
        let model = MusicVae::new(
            tiny(GrooveInput::Humanize),
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let pattern = groove(3);
        let rows = model.humanize_rows(&[&pattern]).unwrap().remove(0);
        let held = Groove::from_rows(&rows);
        assert_eq!(
            held.events, pattern.events,
            "the hits are the pattern's, whatever the weights"
        );
        // Three windows and a half: every hit gets a velocity and a shift in range, every
        // rest none, and the first window's feel is the 2-bar pass's.
        let long: Vec<Event> = (0..112).map(|s| pattern.events[s % 32]).collect();
        let feel = model.feel_of(&long).unwrap();
        assert_eq!(feel.len(), 112);
        for (step, (&event, feel)) in long.iter().zip(&feel).enumerate() {
            for (c, &f) in feel.iter().enumerate() {
                if event >> c & 1 == 1 {
                    assert!(
                        (1..=127).contains(&f.velocity) && (-0.5..=0.5).contains(&f.shift),
                        "step {step} class {c}: {f:?}"
                    );
                } else {
                    assert_eq!(f, Feel::default());
                }
            }
        }
        // The same pass, in a batch of four: gemm rounds rows of other batch sizes apart.
        for (step, (long, held)) in feel[..32].iter().zip(&held.feel).enumerate() {
            for (a, b) in long.iter().zip(held) {
                assert!(
                    a.velocity.abs_diff(b.velocity) <= 1 && (a.shift - b.shift).abs() < 1e-5,
                    "step {step}: {a:?} against {b:?}"
                );
            }
        }
        assert!(model.feel_of(&[]).unwrap().is_empty());
    }
}
