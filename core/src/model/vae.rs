//! The VAE around the encoder and decoder: latent head, loss, encode and decode
//! (Magenta's `MusicVAE` in `base_model.py`).

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::decoder::sample_categorical;
use super::encoder::{Input, Posterior};
use super::{Config, Decoder, Dropout, Encoder, Sampling};
use crate::music::Event;

#[derive(Debug, Clone)]
pub struct MusicVae {
    pub config: Config,
    /// `None` for decoder-only checkpoints.
    encoder: Option<Encoder>,
    decoder: Decoder,
}

/// Feed the model's own samples instead of the targets with this probability.
#[derive(Debug, Clone, Copy)]
pub struct ScheduledSampling {
    pub probability: f64,
    pub seed: u64,
}

/// What training adds to a forward pass.
#[derive(Debug, Default)]
pub struct Training {
    pub scheduled: Option<ScheduledSampling>,
    pub dropout: Option<Dropout>,
}

/// One training batch's loss and the figures the trainer reports.
pub struct Loss {
    /// `reconstruction + beta * max(kl - free_nats, 0)`, averaged over the batch.
    pub total: Tensor,
    /// Cross-entropy summed over steps, averaged over the batch.
    pub reconstruction: f32,
    /// KL summed over dimensions, averaged over the batch.
    pub kl: f32,
    /// Teacher-forced per-step accuracy.
    pub accuracy: f32,
    /// The sampled z `[B, Z]`, for regularisers on the latent space.
    pub z: Tensor,
}

impl MusicVae {
    pub fn new(config: Config, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle_core::Error::wrap)?;
        if config.encoding == crate::music::Encoding::Groove {
            candle_core::bail!(
                "this is a groove model (GrooVAE): it humanizes or drums up patterns, and does \
                 not make them"
            );
        }
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

    /// `events` `[T, B]` u32, time-major.
    pub fn posterior(&self, events: &Tensor) -> Result<Posterior> {
        self.encoder()?.posterior(Input::Tokens(events), None)
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
        self.encoder()?
            .mu(Input::Tokens(&self.events_tensor(melodies)?))
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
        self.decoder.sample(
            &z.to_dtype(DType::F32)?,
            self.config.steps(),
            sampling,
            None,
        )
    }

    /// [`MusicVae::decode`] that also returns the decoder's top-layer output for row 0 at
    /// every step, `[steps, hidden]` row-major (the editor's neuron view).
    pub fn decode_traced(
        &self,
        z: &Tensor,
        sampling: Sampling,
    ) -> Result<(Vec<Vec<Event>>, Vec<f32>)> {
        let mut trace = Vec::with_capacity(self.config.steps() * self.decoder.hidden_size());
        let events = self.decoder.sample(
            &z.to_dtype(DType::F32)?,
            self.config.steps(),
            sampling,
            Some(&mut trace),
        )?;
        Ok((events, trace))
    }

    /// Teacher-forced logits `[T, B, classes]` of `events` `[T, B]` given `z` `[B, Z]`.
    pub fn logits(&self, z: &Tensor, events: &Tensor) -> Result<Tensor> {
        self.decoder.logits(z, events, None)
    }

    /// Melodies of `config.steps()` events as a time-major `[T, B]` u32 tensor.
    pub fn events_tensor(&self, melodies: &[&[Event]]) -> Result<Tensor> {
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

    /// Parallel scheduled sampling (Duckworth et al. 2019): one teacher-forced pass
    /// predicts every step, and the sampled predictions replace the targets as inputs
    /// at random steps. It keeps the fused whole-sequence LSTM usable, where Magenta's
    /// step-by-step version would not be.
    fn mix_in_samples(&self, z: &Tensor, events: &Tensor, s: ScheduledSampling) -> Result<Tensor> {
        let logits = self
            .decoder
            .logits(&z.detach(), events, None)?
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

    /// The ELBO with Magenta's beta and free bits: `free_nats = free_bits * ln 2`.
    /// `eps` `[B, Z]` is standard normal noise for the reparameterisation. With
    /// scheduled sampling, each step is fed the model's own sample instead of the
    /// previous target with the given probability.
    pub fn loss(
        &self,
        events: &Tensor,
        eps: &Tensor,
        beta: f64,
        free_bits: f64,
        training: &Training,
    ) -> Result<Loss> {
        let dropout = training.dropout.as_ref();
        let Posterior { mu, sigma } = self.encoder()?.posterior(Input::Tokens(events), dropout)?;
        let z = (&mu + (&sigma * eps)?)?;
        let inputs = match training.scheduled {
            Some(s) if s.probability > 0.0 => self.mix_in_samples(&z, events, s)?,
            _ => events.clone(),
        };
        let logits = self.decoder.logits(&z, &inputs, dropout)?;
        let (steps, batch, classes) = logits.dims3()?;
        let flat_logits = logits.reshape((steps * batch, classes))?;
        let flat_targets = events.flatten_all()?;
        let log_probs = candle_nn::ops::log_softmax(&flat_logits, D::Minus1)?;
        let picked = log_probs.gather(&flat_targets.unsqueeze(1)?, 1)?;
        let reconstruction = (picked.sum_all()?.neg()? / batch as f64)?;
        let (kl_cost, kl) = kl_cost(&mu, &sigma, free_bits)?;
        let total = (&reconstruction + (kl_cost * beta)?)?;
        let correct = flat_logits
            .argmax(D::Minus1)?
            .eq(&flat_targets)?
            .to_dtype(DType::F32)?
            .mean_all()?;
        Ok(Loss {
            total,
            reconstruction: scalar(&reconstruction)?,
            kl: scalar(&kl)?,
            accuracy: scalar(&correct)?,
            z,
        })
    }
}

/// `KL(N(mu, sigma) || N(0, 1))` summed over dimensions: its cost beyond the free bits
/// (which apply per example) and itself, both averaged over the batch.
pub(super) fn kl_cost(mu: &Tensor, sigma: &Tensor, free_bits: f64) -> Result<(Tensor, Tensor)> {
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
