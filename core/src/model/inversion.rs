//! Latent inversion: the z whose decode is a given melody, found by gradient descent
//! through the decoder (the "Immersions" idea: optimise the input until the network
//! answers as asked).
//!
//! It captures clips with decoder-only models, which have no encoder to give mu, and
//! refines the encoder's mu, which is the centre of a posterior, not the z that decodes
//! the clip best.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Result, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;

use super::{Batch, MusicVae};
use crate::music::Event;

#[derive(Debug, Clone, Copy)]
pub struct InversionConfig {
    /// Adam steps on z.
    pub steps: usize,
    pub learning_rate: f64,
    /// Prior samples tried per melody when there is no mu to start from; the best wins.
    pub restarts: usize,
    /// Weight of `|z|^2 / 2` (the prior's negative log density) beside the
    /// reconstruction loss: keeps z where the decoder was trained.
    pub prior_weight: f64,
    pub seed: u64,
}

impl Default for InversionConfig {
    fn default() -> Self {
        Self {
            steps: 150,
            learning_rate: 0.05,
            restarts: 8,
            prior_weight: 1.0,
            seed: 0,
        }
    }
}

/// The z `[B, Z]` for `melodies` (each `config.steps()` events), starting from `start`
/// (a previous z, to refine it), else from the encoder's mu when the model has one, else
/// from the best of a few prior samples. Stops with an error as soon as `stop` is set (the
/// plugin's worker shutting down).
pub fn invert(
    model: &MusicVae,
    melodies: &[&[Event]],
    start: Option<Tensor>,
    config: InversionConfig,
    stop: &AtomicBool,
) -> Result<Tensor> {
    let batch = model.batch(melodies)?;
    let events = batch.targets();
    match start {
        Some(z) => return descend(model, events, z, config, stop),
        None if model.has_encoder() => {
            return descend(model, events, model.mu(&batch)?, config, stop)
        }
        None => {}
    }
    // Every melody gets `restarts` rows, optimised together; the best row per melody wins.
    let (batch, k) = (melodies.len(), config.restarts.max(1));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let start = crate::model::latent::standard_normal(&mut rng, (batch * k, model.config.z_size))?;
    let repeated = events.repeat((1, k))?;
    let z = descend(model, &repeated, start, config, stop)?;
    let losses = per_row_loss(model, &repeated, &z, config.prior_weight)?.to_vec1::<f32>()?;
    let best: Vec<u32> = (0..batch)
        .map(|b| {
            (0..k)
                .map(|r| r * batch + b)
                .min_by(|&x, &y| losses[x].total_cmp(&losses[y]))
                .unwrap() as u32
        })
        .collect();
    z.index_select(&Tensor::new(best, z.device())?, 0)
}

/// Adam on z from `start`, minimising the teacher-forced cross-entropy of `events`
/// `[T, B]` plus the prior term.
fn descend(
    model: &MusicVae,
    events: &Tensor,
    start: Tensor,
    config: InversionConfig,
    stop: &AtomicBool,
) -> Result<Tensor> {
    let z = Var::from_tensor(&start.to_dtype(DType::F32)?)?;
    let params = ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut adam = AdamW::new(vec![z.clone()], params)?;
    for _ in 0..config.steps {
        if stop.load(Ordering::Acquire) {
            candle_core::bail!("latent inversion stopped");
        }
        let loss = per_row_loss(model, events, z.as_tensor(), config.prior_weight)?.sum_all()?;
        adam.backward_step(&loss)?;
    }
    Ok(z.as_tensor().detach())
}

/// `[B]`: cross-entropy summed over steps plus `prior_weight * |z|^2 / 2`.
fn per_row_loss(
    model: &MusicVae,
    events: &Tensor,
    z: &Tensor,
    prior_weight: f64,
) -> Result<Tensor> {
    // Inversion is for decoder-only checkpoints, none of which reads chords.
    let batch = Batch::Events {
        events: events.clone(),
        controls: None,
    };
    let logits = model.logits(z, &batch)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = log_probs.gather(&events.unsqueeze(2)?, 2)?.squeeze(2)?;
    let reconstruction = picked.sum(0)?.neg()?;
    reconstruction + (z.sqr()?.sum(1)? * (prior_weight / 2.0))?
}
