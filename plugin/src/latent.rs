//! Where z is composed: interpolation between clips and latent vectors as tensors.

use candle_core::{Result, Tensor};

use crate::model::MusicVae;

/// Spherical interpolation, as Magenta's Python `interpolate` does.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    let cos = (dot / (na * nb).max(f32::MIN_POSITIVE)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-4 {
        return a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    }
    let (sa, sb) = (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin());
    a.iter().zip(b).map(|(x, y)| sa * x + sb * y).collect()
}

/// Stacks rows into a `[N, Z]` tensor on the model's device.
pub fn z_tensor(model: &MusicVae, rows: &[Vec<f32>]) -> Result<Tensor> {
    let z = model.config.z_size;
    if let Some(bad) = rows.iter().find(|r| r.len() != z) {
        candle_core::bail!("latent vector has {} values, the model's z has {z}", bad.len());
    }
    Tensor::from_vec(rows.concat(), (rows.len(), z), model.device())
}
