//! The VAE around the encoder and decoder: latent head, loss, encode and decode
//! (Magenta's `MusicVAE` in `base_model.py`).
//!
//! One model for every encoding. The config chooses the parts: a decoder-only model has no
//! encoder, and the decoder ([`Decoder`]) is categorical (flat or hierarchical) for
//! melodies and drums, GrooVAE's for grooves. Posterior, KL and loss are the same for
//! all; what the encoding changes is how sequences become tensors ([`Batch`], Magenta's
//! data converters) and what a decode gives back: events, or groove rows.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::decoder::ScheduledSampling;
use super::encoder::{Input, Posterior};
use super::groove::{activate, hit_all};
use super::{controls, Config, Decoder, Dropout, Encoder, Reconstruction, Sampling};
use crate::music::chord::Chord;
use crate::music::drums::{self, NUM_DRUM_CLASSES};
use crate::music::groove::{Feel, Groove, ROW};
use crate::music::Event;

#[derive(Debug, Clone)]
pub struct MusicVae {
    pub config: Config,
    /// `None` for decoder-only checkpoints.
    encoder: Option<Encoder>,
    decoder: Decoder,
}

/// What training adds to a forward pass.
#[derive(Debug, Default)]
pub struct Training {
    pub scheduled: Option<ScheduledSampling>,
    pub dropout: Option<Dropout>,
    /// Each output class's weight in the reconstruction loss `[classes]` (drum patterns
    /// whose rare hits count for more); `None` weighs every class 1.
    pub class_weights: Option<Tensor>,
}

/// One training batch's loss and the figures the trainer reports.
pub struct Loss {
    /// `reconstruction + beta * max(kl - free_nats, 0)`, averaged over the batch.
    pub total: Tensor,
    /// The decoder's loss summed over steps, averaged over the batch.
    pub reconstruction: f32,
    /// KL summed over dimensions, averaged over the batch.
    pub kl: f32,
    /// Teacher-forced accuracy: per event, or per groove step (all nine hits right).
    pub accuracy: f32,
    /// The sampled z `[B, Z]`, for regularisers on the latent space.
    pub z: Tensor,
}

/// Sequences as the model reads them, time-major: what Magenta's data converters make of
/// them.
pub enum Batch {
    /// Melodies or drum patterns as events `[T, B]` u32: the encoder's input and the
    /// decoder's targets; for a chord model, the chord of every step `[T, B, C]` beside
    /// them, read by both.
    Events {
        events: Tensor,
        controls: Option<Tensor>,
    },
    /// Melodies over chords that the encoder reads in one key and the decoder writes in
    /// another ([`MusicVae::batch_apart`]).
    Apart {
        read: Box<Batch>,
        written: Box<Batch>,
    },
    /// Grooves: the encoder's view of them `[T, B, ROW]` (what the model's
    /// [`super::GrooveInput`] leaves), and the whole rows the decoder writes.
    Grooves { inputs: Tensor, targets: Tensor },
}

impl Batch {
    fn input(&self) -> Input<'_> {
        match self {
            Self::Events { events, controls } => Input::Tokens {
                events,
                controls: controls.as_ref(),
            },
            Self::Apart { read, .. } => read.input(),
            Self::Grooves { inputs, .. } => Input::Features(inputs),
        }
    }

    /// What the decoder is to write.
    pub fn targets(&self) -> &Tensor {
        match self {
            Self::Events { events, .. } => events,
            Self::Apart { written, .. } => written.targets(),
            Self::Grooves { targets, .. } => targets,
        }
    }

    fn controls(&self) -> Option<&Tensor> {
        match self {
            Self::Events { controls, .. } => controls.as_ref(),
            Self::Apart { written, .. } => written.controls(),
            Self::Grooves { .. } => None,
        }
    }
}

impl MusicVae {
    pub fn new(config: Config, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle_core::Error::wrap)?;
        let encoder = Encoder::new(&config, vb.pp("encoder"))?;
        let decoder = Decoder::new(&config, vb)?;
        Ok(Self {
            config,
            encoder,
            decoder,
        })
    }

    pub fn device(&self) -> &Device {
        self.decoder.device()
    }

    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    fn encoder(&self) -> Result<&Encoder> {
        self.encoder.as_ref().ok_or_else(|| {
            candle_core::Error::Msg(
                "this model is decoder-only (its checkpoint has no encoder), so it has no mu for \
                 a melody; find its z by latent inversion (model::inversion) instead"
                    .into(),
            )
        })
    }

    /// Melodies or drum patterns of `config.steps()` events, as the model reads them;
    /// a chord model reads them over no chord ([`Self::batch_over`]).
    pub fn batch(&self, melodies: &[&[Event]]) -> Result<Batch> {
        self.batch_over(melodies, None)
    }

    /// [`Self::batch`] with each melody's chords, one per step. A model without chords
    /// leaves them out; a chord model given none reads "no chord" at every step.
    pub fn batch_over(
        &self,
        melodies: &[&[Event]],
        chords: Option<&[&[Option<Chord>]]>,
    ) -> Result<Batch> {
        Ok(Batch::Events {
            events: self.events_tensor(melodies)?,
            controls: self.controls_tensor(chords, Some(melodies), melodies.len())?,
        })
    }

    /// Training phrases that the encoder reads as `read` (over `read_chords`) and the
    /// decoder writes as `written` (over `written_chords`): the same phrases in other keys,
    /// so that z gains nothing by carrying the key and the decoder must take it from the
    /// chords.
    pub fn batch_apart(
        &self,
        read: &[&[Event]],
        read_chords: &[&[Option<Chord>]],
        written: &[&[Event]],
        written_chords: &[&[Option<Chord>]],
    ) -> Result<Batch> {
        Ok(Batch::Apart {
            read: Box::new(self.batch_over(read, Some(read_chords))?),
            written: Box::new(self.batch_over(written, Some(written_chords))?),
        })
    }

    /// The controls of `batch` phrases as the model reads them, `[T, B, C]`: each step's
    /// chord, then the melody controls of the phrase each row follows (`like`; without
    /// one, [`controls::default_reference`]). `None` for a model without controls.
    fn controls_tensor(
        &self,
        chords: Option<&[&[Option<Chord>]]>,
        like: Option<&[&[Event]]>,
        batch: usize,
    ) -> Result<Option<Tensor>> {
        let depth = self.config.control_depth();
        if depth == 0 {
            return Ok(None);
        }
        let steps = self.config.steps();
        for (what, lengths) in [
            (
                "chord progressions",
                chords.map(|c| c.iter().map(|c| c.len()).collect::<Vec<_>>()),
            ),
            (
                "melodies to follow",
                like.map(|l| l.iter().map(|l| l.len()).collect()),
            ),
        ] {
            let Some(lengths) = lengths else { continue };
            if lengths.len() != batch {
                candle_core::bail!("{} {what} for {batch} phrases", lengths.len());
            }
            if let Some((i, n)) = lengths.iter().enumerate().find(|(_, &n)| n != steps) {
                candle_core::bail!("{what}: row {i} has {n} steps, the model needs {steps}");
            }
        }
        let controls = &self.config.melody_controls;
        let fallback =
            (like.is_none() && !controls.is_empty()).then(|| controls::default_reference(steps));
        // Per row, per control: `[steps][depth]`.
        let signals: Vec<Vec<Vec<f32>>> = (0..batch)
            .map(|i| {
                let melody = like.map_or(fallback.as_deref().unwrap_or_default(), |l| l[i]);
                controls
                    .iter()
                    .map(|c| c.of(melody, self.config.min_pitch))
                    .collect()
            })
            .collect();
        let mut data = Vec::with_capacity(steps * batch * depth);
        for t in 0..steps {
            for (i, signals) in signals.iter().enumerate() {
                if let Some(encoding) = self.config.chords {
                    encoding.write(chords.and_then(|c| c[i][t]), &mut data);
                }
                for (control, values) in controls.iter().zip(signals) {
                    let d = control.depth();
                    data.extend_from_slice(&values[t * d..(t + 1) * d]);
                }
            }
        }
        Tensor::from_vec(data, (steps, batch, depth), self.device()).map(Some)
    }

    pub fn posterior(&self, batch: &Batch) -> Result<Posterior> {
        self.encoder()?.posterior(batch.input(), None)
    }

    /// The means of a batch, `[B, Z]`.
    pub fn mu(&self, batch: &Batch) -> Result<Tensor> {
        self.encoder()?.mu(batch.input())
    }

    /// The means of a batch of melodies, `[B, Z]`: what capture and interpolation use.
    ///
    /// A MIDI file's melody into z:
    /// ```
    /// use candle_core::Device;
    /// use latent_live_core::model::assets::DefaultModel;
    /// use latent_live_core::music::melody::{self, Note};
    /// use latent_live_core::music::midi;
    ///
    /// let tune = [Note { pitch: 60, start: 0, end: 4 }, Note { pitch: 64, start: 4, end: 8 }];
    /// let imported = midi::import(&midi::export(&tune, 120.0))?;
    /// let model = DefaultModel::Flat2Bar.load()?.model(&Device::Cpu)?;
    /// let events = melody::encode(&imported.notes, model.config.steps());
    /// let mu = model.encode(&[&events])?;
    /// assert_eq!(mu.dims(), &[1, model.config.z_size]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, melodies: &[&[Event]]) -> Result<Tensor> {
        self.mu(&self.batch(melodies)?)
    }

    /// One phrase of the model's length per row of `z` `[B, Z]`.
    ///
    /// ```
    /// use candle_core::Device;
    /// use latent_live_core::model::assets::DefaultModel;
    /// use latent_live_core::model::latent::z_tensor;
    /// use latent_live_core::model::Sampling;
    /// use latent_live_core::music::melody;
    ///
    /// let model = DefaultModel::Flat2Bar.load()?.model(&Device::Cpu)?;
    /// let origin = vec![0.0; model.config.z_size];
    /// let phrases = model.decode(&z_tensor(&model, &[origin])?, Sampling::Greedy)?;
    /// assert_eq!(phrases[0].len(), model.config.steps());
    /// let notes = melody::decode(&phrases[0]);
    /// assert!(notes.iter().all(|n| n.start < n.end));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(&self, z: &Tensor, sampling: Sampling) -> Result<Vec<Vec<Event>>> {
        self.decode_over(z, None, sampling)
    }

    /// [`Self::decode`] over chords, one progression of the model's length per row of `z`
    /// (as [`Self::batch_over`] reads them).
    pub fn decode_over(
        &self,
        z: &Tensor,
        chords: Option<&[&[Option<Chord>]]>,
        sampling: Sampling,
    ) -> Result<Vec<Vec<Event>>> {
        self.decode_like(z, chords, None, sampling)
    }

    /// [`Self::decode_over`] for a model with melody controls, each row following the
    /// rhythm, contour and register of its melody in `like` (without one, of
    /// [`controls::default_reference`]). Other models leave `like` out.
    pub fn decode_like(
        &self,
        z: &Tensor,
        chords: Option<&[&[Option<Chord>]]>,
        like: Option<&[&[Event]]>,
        sampling: Sampling,
    ) -> Result<Vec<Vec<Event>>> {
        self.sample(z, chords, like, sampling, None)
    }

    /// [`MusicVae::decode_like`] that also returns the decoder's top-layer output for row
    /// 0 at every step, `[steps, hidden]` row-major (the editor's neuron view).
    pub fn decode_traced(
        &self,
        z: &Tensor,
        chords: Option<&[&[Option<Chord>]]>,
        like: Option<&[&[Event]]>,
        sampling: Sampling,
    ) -> Result<(Vec<Vec<Event>>, Vec<f32>)> {
        let mut trace = Vec::with_capacity(self.config.steps() * self.decoder.hidden_size());
        let events = self.sample(z, chords, like, sampling, Some(&mut trace))?;
        Ok((events, trace))
    }

    /// The decoder sampled from `z` over the controls `chords` and `like` make.
    fn sample(
        &self,
        z: &Tensor,
        chords: Option<&[&[Option<Chord>]]>,
        like: Option<&[&[Event]]>,
        sampling: Sampling,
        trace: Option<&mut Vec<f32>>,
    ) -> Result<Vec<Vec<Event>>> {
        let controls = self.controls_tensor(chords, like, z.dim(0)?)?;
        self.decoder.sample(
            &z.to_dtype(DType::F32)?,
            controls.as_ref(),
            self.config.steps(),
            sampling,
            trace,
        )
    }

    /// Teacher-forced logits `[T, B, classes]` of an event batch given `z` `[B, Z]`.
    pub fn logits(&self, z: &Tensor, batch: &Batch) -> Result<Tensor> {
        self.decoder
            .logits(z, batch.targets(), batch.controls(), None)
    }

    /// Melodies of `config.steps()` events as a time-major `[T, B]` u32 tensor.
    fn events_tensor(&self, melodies: &[&[Event]]) -> Result<Tensor> {
        let steps = self.config.steps();
        let classes = self.config.num_classes();
        let mut data = Vec::with_capacity(steps * melodies.len());
        for t in 0..steps {
            for (i, m) in melodies.iter().enumerate() {
                let event = *m.get(t).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "melody {i} has {} events, the model needs {steps}",
                        m.len()
                    ))
                })?;
                if event as usize >= classes {
                    candle_core::bail!(
                        "melody {i} has event {event} at step {t}, beyond the model's {classes} \
                         classes"
                    );
                }
                data.push(event as u32);
            }
        }
        Tensor::from_vec(data, (steps, melodies.len()), self.device())
    }

    /// The ELBO with Magenta's beta and free bits: `free_nats = free_bits * ln 2`.
    /// `eps` `[B, Z]` is standard normal noise for the reparameterisation; the decoder
    /// brings its own reconstruction loss ([`Decoder::reconstruction`]).
    pub fn loss(
        &self,
        batch: &Batch,
        eps: &Tensor,
        beta: f64,
        free_bits: f64,
        training: &Training,
    ) -> Result<Loss> {
        let dropout = training.dropout.as_ref();
        let Posterior { mu, sigma } = self.encoder()?.posterior(batch.input(), dropout)?;
        let z = (&mu + (&sigma * eps)?)?;
        let Reconstruction {
            loss: reconstruction,
            accuracy,
        } = self.decoder.reconstruction(
            &z,
            batch.targets(),
            batch.controls(),
            training.scheduled,
            dropout,
            training.class_weights.as_ref(),
        )?;
        let (kl_cost, kl) = kl_cost(&mu, &sigma, free_bits)?;
        let total = (&reconstruction + (kl_cost * beta)?)?;
        Ok(Loss {
            total,
            reconstruction: scalar(&reconstruction)?,
            kl: scalar(&kl)?,
            accuracy: scalar(&accuracy)?,
            z,
        })
    }
}

/// Grooves: what a groove model (GrooVAE) reads and writes, and the tools built on it:
/// humanize a pattern, drum up taps.
impl MusicVae {
    /// Grooves of `config.steps()` steps as time-major rows `[T, B, ROW]`.
    fn rows_tensor(&self, grooves: &[&Groove]) -> Result<Tensor> {
        let steps = self.config.steps();
        let mut rows = Vec::with_capacity(grooves.len() * steps * ROW);
        for (i, g) in grooves.iter().enumerate() {
            if g.len() != steps {
                candle_core::bail!("groove {i} has {} steps, the model needs {steps}", g.len());
            }
            rows.extend(g.rows());
        }
        Tensor::from_vec(rows, (grooves.len(), steps, ROW), self.device())?
            .transpose(0, 1)?
            .contiguous()
    }

    /// Grooves of `config.steps()` steps as the model reads them.
    pub fn groove_batch(&self, grooves: &[&Groove]) -> Result<Batch> {
        let inputs: Vec<Groove> = grooves
            .iter()
            .map(|g| self.config.groove_input.of(g))
            .collect();
        Ok(Batch::Grooves {
            inputs: self.rows_tensor(&inputs.iter().collect::<Vec<_>>())?,
            targets: self.rows_tensor(grooves)?,
        })
    }

    /// One groove of the model's length per row of `z` `[B, Z]`.
    pub fn decode_grooves(&self, z: &Tensor, sampling: Sampling) -> Result<Vec<Groove>> {
        Ok(self
            .decode_rows(z, sampling)?
            .iter()
            .map(|r| Groove::from_rows(r))
            .collect())
    }

    /// [`Self::transform`] of a groove of any length: its windows of the model's length
    /// (the last padded with silence) in one batch, put back together.
    pub fn transform_windows(&self, groove: &Groove, sampling: Sampling) -> Result<Groove> {
        if groove.is_empty() {
            return Ok(Groove::default());
        }
        let windows = self.windows(groove);
        let mut whole = Groove::default();
        for window in self.transform(&windows.iter().collect::<Vec<_>>(), sampling)? {
            whole.events.extend(window.events);
            whole.feel.extend(window.feel);
        }
        Ok(whole.window(0, groove.len()))
    }

    /// `groove` cut into windows of the model's length, the last padded with silence.
    fn windows(&self, groove: &Groove) -> Vec<Groove> {
        let steps = self.config.steps();
        (0..groove.len())
            .step_by(steps)
            .map(|start| {
                let mut w = groove.window(start, steps.min(groove.len() - start));
                w.events.resize(steps, drums::NO_HITS);
                w.feel.resize(steps, [Feel::default(); NUM_DRUM_CLASSES]);
                w
            })
            .collect()
    }

    /// The feel a humanize model plays the hits of `events` with (GrooVAE's Groove tool):
    /// the pattern, cut into windows of the model's length, is decoded greedily from the
    /// windows' means in one batch with the pattern's hits held (the hits are the drum
    /// model's to choose; the humanizer only plays them), and every hit takes the
    /// velocity and offset decoded for it.
    pub fn feel_of(&self, events: &[Event]) -> Result<Vec<[Feel; NUM_DRUM_CLASSES]>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let windows = self.windows(&Groove::quantized(events));
        let rows = self.humanize_rows(&windows.iter().collect::<Vec<_>>())?;
        let played = rows
            .iter()
            .flat_map(|r| r.chunks_exact(ROW))
            .map(|row| Groove::from_rows(&hit_all(row)).feel[0]);
        Ok(events
            .iter()
            .zip(played)
            .map(|(&event, feel)| {
                std::array::from_fn(|c| {
                    if event >> c & 1 == 1 {
                        feel[c]
                    } else {
                        Feel::default()
                    }
                })
            })
            .collect())
    }

    /// Greedy rows for `grooves` (of the model's length) decoded from their means with
    /// their own hits held: what [`Self::feel_of`] reads, and what the evaluation of a
    /// humanizer measures beside the free decode.
    pub fn humanize_rows(&self, grooves: &[&Groove]) -> Result<Vec<Vec<f32>>> {
        let hits: Vec<&[Event]> = grooves.iter().map(|g| g.events.as_slice()).collect();
        self.decoder.groove()?.sample(
            &self
                .mu(&self.groove_batch(grooves)?)?
                .to_dtype(DType::F32)?,
            self.config.steps(),
            Sampling::Greedy,
            Some(&hits),
        )
    }

    /// The decoded rows themselves, `[steps * ROW]` each: velocities and offsets of every
    /// class, hit or not.
    pub fn decode_rows(&self, z: &Tensor, sampling: Sampling) -> Result<Vec<Vec<f32>>> {
        self.decoder.groove()?.sample(
            &z.to_dtype(DType::F32)?,
            self.config.steps(),
            sampling,
            None,
        )
    }

    /// What the model makes of `groove`: its humanized pattern, or the beat of its taps.
    pub fn transform(&self, grooves: &[&Groove], sampling: Sampling) -> Result<Vec<Groove>> {
        self.decode_grooves(&self.mu(&self.groove_batch(grooves)?)?, sampling)
    }

    /// Teacher-forced rows `[T, B, ROW]` (hit probabilities, velocities, offsets) of
    /// `grooves` given `z`.
    pub fn reconstruct(&self, z: &Tensor, grooves: &[&Groove]) -> Result<Tensor> {
        activate(
            &self
                .decoder
                .groove()?
                .outputs(z, &self.rows_tensor(grooves)?, None)?,
        )
    }
}

/// `KL(N(mu, sigma) || N(0, 1))` summed over dimensions: its cost beyond the free bits
/// (which apply per example) and itself, both averaged over the batch.
fn kl_cost(mu: &Tensor, sigma: &Tensor, free_bits: f64) -> Result<(Tensor, Tensor)> {
    let sigma_sq = sigma.sqr()?;
    let kl_per_dim = ((&sigma_sq + mu.sqr()?)? - 1.0)?
        .sub(&(sigma_sq + 1e-12)?.log()?)?
        .affine(0.5, 0.0)?;
    let kl_per_example = kl_per_dim.sum(1)?;
    let free_nats = free_bits * std::f64::consts::LN_2;
    let cost = (kl_per_example.clone() - free_nats)?.relu()?.mean_all()?;
    Ok((cost, kl_per_example.mean_all()?))
}

fn scalar(t: &Tensor) -> Result<f32> {
    t.to_dtype(DType::F32)?.to_scalar::<f32>()
}
