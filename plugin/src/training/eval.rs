//! Held-out evaluation: reconstruction accuracy and how the latent space is used.

use candle_core::{Result, D};

use crate::training::corpus::Split;
use crate::model::{MusicVae, Sampling};
use crate::music::Event;

/// A dimension whose mu varies more than this over real music is a "music neuron"
/// (Barenboim et al.); the rest stay at the prior and carry nothing.
pub const ACTIVE_VARIANCE: f64 = 0.01;

#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Per-step accuracy of the argmax under teacher forcing, with z = mu.
    pub teacher_forced: f64,
    /// Per-step accuracy of a greedy decode of mu against the input.
    pub sampled: f64,
    /// KL(q(z|x) || p(z)) per dimension, averaged over the slices.
    pub kl_per_dim: Vec<f64>,
    /// Variance of mu over the slices, per dimension.
    pub mu_variance: Vec<f64>,
    pub slices: usize,
}

impl Evaluation {
    pub fn active_dims(&self) -> usize {
        self.mu_variance.iter().filter(|&&v| v > ACTIVE_VARIANCE).count()
    }

    /// Dimensions by KL, largest first: the slider ranking until analysis runs.
    pub fn kl_ranking(&self) -> Vec<usize> {
        let mut dims: Vec<usize> = (0..self.kl_per_dim.len()).collect();
        dims.sort_by(|&a, &b| self.kl_per_dim[b].total_cmp(&self.kl_per_dim[a]));
        dims
    }

    /// The line scripts read: always printed last by `xtask eval`.
    pub fn summary_line(&self) -> String {
        format!(
            "teacher_forced={:.4} sampled={:.4} active_dims={} slices={}",
            self.teacher_forced,
            self.sampled,
            self.active_dims(),
            self.slices
        )
    }
}

/// Evaluates on the first `limit` slices of `split` (all when `None`).
pub fn evaluate(model: &MusicVae, split: &Split, batch_size: usize, limit: Option<usize>) -> Result<Evaluation> {
    let n = limit.map_or(split.len(), |l| l.min(split.len()));
    if n == 0 {
        candle_core::bail!("nothing to evaluate: the split is empty");
    }
    let (mut tf_correct, mut sampled_correct, mut total_steps) = (0usize, 0usize, 0usize);
    let (mut mu, mut sigma) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for start in (0..n).step_by(batch_size) {
        let melodies: Vec<&[Event]> = (start..(start + batch_size).min(n)).map(|i| split.get(i)).collect();
        let events = model.events_tensor(&melodies)?;
        let posterior = model.posterior(&events)?;
        let logits = model.logits(&posterior.mu, &events)?;
        tf_correct += logits.argmax(D::Minus1)?.eq(&events)?.to_dtype(candle_core::DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize;
        let decoded = model.decode(&posterior.mu, Sampling::Greedy)?;
        for (m, d) in melodies.iter().zip(&decoded) {
            sampled_correct += m.iter().zip(d).filter(|(a, b)| a == b).count();
            total_steps += m.len();
        }
        mu.extend(posterior.mu.to_vec2::<f32>()?);
        sigma.extend(posterior.sigma.to_vec2::<f32>()?);
    }
    let (kl_per_dim, mu_variance) = latent_statistics(&mu, &sigma);
    Ok(Evaluation {
        teacher_forced: tf_correct as f64 / total_steps as f64,
        sampled: sampled_correct as f64 / total_steps as f64,
        kl_per_dim,
        mu_variance,
        slices: n,
    })
}

/// Per dimension, over a set of posteriors (rows of mu and sigma): the mean
/// KL(q(z|x) || N(0, 1)) and the variance of mu.
pub fn latent_statistics(mu: &[Vec<f32>], sigma: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let z_size = mu.first().map_or(0, Vec::len);
    let count = mu.len().max(1) as f64;
    let (mut kl, mut sum, mut sq) = (vec![0f64; z_size], vec![0f64; z_size], vec![0f64; z_size]);
    for (mu_row, sigma_row) in mu.iter().zip(sigma) {
        for d in 0..z_size {
            let (m, s) = (mu_row[d] as f64, (sigma_row[d] as f64).max(1e-12));
            kl[d] += 0.5 * (m * m + s * s - 1.0) - s.ln();
            sum[d] += m;
            sq[d] += m * m;
        }
    }
    let kl = kl.iter().map(|k| k / count).collect();
    let variance = sum.iter().zip(&sq).map(|(s, q)| q / count - (s / count).powi(2)).collect();
    (kl, variance)
}

/// Mean per-step accuracy of `a` against `b`; for tests and quick checks.
pub fn accuracy(a: &[Vec<Event>], b: &[&[Event]]) -> f64 {
    let (mut hit, mut all) = (0, 0);
    for (x, y) in a.iter().zip(b) {
        hit += x.iter().zip(y.iter()).filter(|(p, q)| p == q).count();
        all += y.len();
    }
    hit as f64 / all.max(1) as f64
}
