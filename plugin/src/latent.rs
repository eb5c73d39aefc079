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

/// Composes the z the plugin decodes: the base point plus the slider offsets.
///
/// - base: `slerp(clip_a, clip_b, morph)` when both clips exist, the one clip when only
///   one does, else the origin (the prior's mean).
/// - `sliders[i]` (in units of the prior's sigma, which is 1) is added to dim
///   `ranked_dims[i]`; `ranked_dims` lists the model's most informative dims best first
///   (the model file's `kl_ranking`). Dims past `z_size` are ignored.
pub fn compose(z_size: usize, clip_a: Option<&[f32]>, clip_b: Option<&[f32]>, morph: f32, sliders: &[f32], ranked_dims: &[usize]) -> Vec<f32> {
    let mut z = match (clip_a, clip_b) {
        (Some(a), Some(b)) => slerp(a, b, morph.clamp(0.0, 1.0)),
        (Some(one), None) | (None, Some(one)) => one.to_vec(),
        (None, None) => vec![0.0; z_size],
    };
    z.resize(z_size, 0.0);
    for (&value, &dim) in sliders.iter().zip(ranked_dims) {
        if let Some(x) = z.get_mut(dim) {
            *x += value;
        }
    }
    z
}

/// The dims the sliders move: the model's `kl_ranking` when it has one (dims past
/// `z_size` dropped), else `0..count`.
pub fn slider_dims(kl_ranking: Option<&[usize]>, z_size: usize, count: usize) -> Vec<usize> {
    match kl_ranking {
        Some(ranking) if ranking.iter().any(|&d| d < z_size) => ranking.iter().copied().filter(|&d| d < z_size).take(count).collect(),
        _ => (0..count.min(z_size)).collect(),
    }
}

/// Stacks rows into a `[N, Z]` tensor on the model's device.
pub fn z_tensor(model: &MusicVae, rows: &[Vec<f32>]) -> Result<Tensor> {
    let z = model.config.z_size;
    if let Some(bad) = rows.iter().find(|r| r.len() != z) {
        candle_core::bail!("latent vector has {} values, the model's z has {z}", bad.len());
    }
    Tensor::from_vec(rows.concat(), (rows.len(), z), model.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_without_clips_offsets_the_ranked_dims_from_the_origin() {
        let z = compose(6, None, None, 0.7, &[1.5, -2.0, 0.5], &[4, 1]);
        assert_eq!(z, vec![0.0, -2.0, 0.0, 0.0, 1.5, 0.0]);
    }

    #[test]
    fn compose_morphs_between_clips_then_adds_sliders() {
        let a = [1.0, 0.0, 0.0];
        let b = [0.0, 1.0, 0.0];
        assert_eq!(compose(3, Some(&a), Some(&b), 0.0, &[0.0], &[2]), a.to_vec());
        let mid = compose(3, Some(&a), Some(&b), 0.5, &[0.25], &[2]);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((mid[0] - h).abs() < 1e-5 && (mid[1] - h).abs() < 1e-5, "{mid:?}");
        assert_eq!(mid[2], 0.25);
        assert_eq!(compose(3, Some(&b), None, 0.9, &[], &[]), b.to_vec());
    }

    #[test]
    fn slider_dims_fall_back_to_the_first_dims() {
        assert_eq!(slider_dims(Some(&[7, 300, 2, 5]), 128, 2), vec![7, 2]);
        assert_eq!(slider_dims(None, 128, 3), vec![0, 1, 2]);
        assert_eq!(slider_dims(Some(&[]), 4, 8), vec![0, 1, 2, 3]);
    }
}
