//! Where z is composed: the clips' morph, the latent sliders and the attribute amounts,
//! along the axes a model file's analysis names ([`LatentSpace`]).

use std::collections::BTreeMap;

use candle_core::{Device, Result, Tensor};
use rand::Rng;

use crate::model::{ModelError, ModelFile, MusicVae};
use crate::music::attributes::{CONTROLLED as ATTRIBUTES, NUM_CONTROLLED as NUM_ATTRIBUTES};

/// Number of latent sliders. They move the model's most informative dims, best first.
pub const NUM_SLIDERS: usize = 8;

/// A dim whose mean moves less than this (in standard deviations over real music) is a
/// noise neuron: the same threshold as the `active_dims` metric (variance 0.01).
pub const MUSIC_NEURON_STD: f32 = 0.1;

/// What a performer's controls ask of z, on top of the clips.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Controls {
    /// The XY pad's X: 0 plays clip A (or C), 1 clip B (or D), between them their slerp.
    /// With only A and B, this is the A-B morph.
    pub morph: f32,
    /// The pad's Y: 0 its bottom edge (A-B), 1 its top edge (C-D).
    pub pad_y: f32,
    /// In units of each slider dim's spread (see [`LatentSpace::slider_scales`]).
    pub sliders: [f32; NUM_SLIDERS],
    /// Amounts along the attribute vectors, in the order of [`ATTRIBUTES`].
    pub attributes: [f32; NUM_ATTRIBUTES],
    pub drift: Drift,
}

/// Latent drift: z wandering by itself along a smooth, seeded path over the model's music
/// neurons, locked to the song's bars, so that the same song position gives the same z
/// and a loop repeats.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Drift {
    /// How far the path goes (its RMS), in each neuron's spread over real music; 0 for
    /// none.
    pub amount: f32,
    /// Bars per cycle: the path comes back to where it was this many bars on.
    pub cycle_bars: u32,
    pub seed: u64,
    /// The song's bar the phrase plays from.
    pub bar: i64,
}

impl Drift {
    /// The path's value at `bar` on `dim`: two seeded harmonics of the cycle, of unit RMS
    /// over it.
    fn at(&self, dim: usize) -> f32 {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            self.seed ^ (dim as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let (first, second): (f64, f64) = (
            rng.random_range(0.0..std::f64::consts::TAU),
            rng.random_range(0.0..std::f64::consts::TAU),
        );
        let cycle = self.cycle_bars.max(1) as i64;
        // The phase from the bar within its cycle: exact at any song position.
        let phase = std::f64::consts::TAU * self.bar.rem_euclid(cycle) as f64 / cycle as f64;
        let value = (phase + first).sin() + 0.5 * (2.0 * phase + second).sin();
        // The RMS of sin a + sin(2a) / 2 over a cycle is sqrt(5 / 8).
        (value / (5.0f64 / 8.0).sqrt()) as f32
    }
}

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
    let (sa, sb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| sa * x + sb * y).collect()
}

/// The axes the plugin's controls move z along, for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentSpace {
    pub z_size: usize,
    /// Every dim, most informative first.
    pub ranking: Vec<usize>,
    /// Each dim's spread of mu over real music, when analysis measured it.
    pub mu_std: Option<Vec<f32>>,
    /// The dims the latent sliders move, best first, and their labels.
    pub slider_dims: Vec<usize>,
    pub slider_labels: Vec<String>,
    /// What one slider unit is on each slider's dim: the spread of mu over real music
    /// when analysis measured it (so +-3 covers +-3 of its sigmas), else the prior's 1.
    pub slider_scales: Vec<f32>,
    /// One vector per entry of [`ATTRIBUTES`], when the model has it.
    pub attribute_vectors: [Option<Vec<f32>>; NUM_ATTRIBUTES],
}

impl LatentSpace {
    /// From the model file's metadata: `neuron_ranking`, `neuron_labels` and `mu_std`
    /// (written by `xtask analyze`), else the trainer's `kl_ranking`, for the sliders;
    /// `attribute_vectors` (attribute name to a z-sized array) for the attribute amounts.
    /// Metadata written for another z (a dim past it, an array of another length), or
    /// holding values that would make z NaN, is an error: the file is not what it claims.
    pub fn of(file: &ModelFile) -> std::result::Result<Self, ModelError> {
        let z_size = file.config.z_size;
        let ranking_key = if file.extra.contains_key("neuron_ranking") {
            "neuron_ranking"
        } else {
            "kl_ranking"
        };
        let ranking: Option<Vec<usize>> = file.extra_json(ranking_key)?;
        if let Some(&dim) = ranking.iter().flatten().find(|&&d| d >= z_size) {
            return Err(ModelError::BadMetadata {
                key: ranking_key,
                reason: format!("dim {dim} is past the model's z of {z_size}"),
            });
        }
        let labels: Vec<String> = file.extra_json("neuron_labels")?.unwrap_or_default();
        let mu_std: Option<Vec<f32>> = file.extra_json("mu_std")?;
        if let Some(mu_std) = &mu_std {
            check_vector("mu_std", mu_std, z_size)?;
            if mu_std.iter().any(|&s| s < 0.0) {
                return Err(ModelError::BadMetadata {
                    key: "mu_std",
                    reason: "a spread is negative".into(),
                });
            }
        }
        let vectors: BTreeMap<String, Vec<f32>> =
            file.extra_json("attribute_vectors")?.unwrap_or_default();
        for vector in vectors.values() {
            check_vector("attribute_vectors", vector, z_size)?;
        }
        let attribute_vectors = ATTRIBUTES.map(|name| vectors.get(name).cloned());
        let ranking = slider_dims(ranking.as_deref(), z_size, z_size);
        let slider_dims: Vec<usize> = ranking[..NUM_SLIDERS.min(z_size)].to_vec();
        // Labels follow the ranking they were written with; without one, say which dim.
        let slider_labels = slider_dims
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("N{} · dim {d}", i + 1))
            })
            .collect();
        let slider_scales = slider_dims
            .iter()
            .map(|&d| mu_std.as_ref().map_or(1.0, |s| s[d].max(1e-3)))
            .collect();
        Ok(Self {
            z_size,
            ranking,
            mu_std,
            slider_dims,
            slider_labels,
            slider_scales,
            attribute_vectors,
        })
    }

    /// Composes the z the plugin decodes:
    ///
    /// - base: the clips' latent means blended over the XY pad, `corners` = clips A to D
    ///   at its bottom left, bottom right, top left and top right: along each edge the
    ///   slerp of its two clips at the pad's X (the one clip of an edge that has one),
    ///   then the slerp of the two edges at its Y (the one edge that has clips). With
    ///   only A and B that is `slerp(a, b, morph)`; with no clip, the origin (the prior's
    ///   mean);
    /// - plus each latent slider on its dim, in units of that dim's spread;
    /// - plus each attribute amount times its attribute vector;
    /// - plus the drift's path where the song is.
    pub fn compose(&self, corners: [Option<&[f32]>; 4], request: &Controls) -> Vec<f32> {
        let (x, y) = (request.morph.clamp(0.0, 1.0), request.pad_y.clamp(0.0, 1.0));
        let blend = |from: Option<Vec<f32>>, to: Option<Vec<f32>>, t: f32| match (from, to) {
            (Some(from), Some(to)) => Some(slerp(&from, &to, t)),
            (one, None) | (None, one) => one,
        };
        let [a, b, c, d] = corners.map(|mu| mu.map(<[f32]>::to_vec));
        let mut z =
            blend(blend(a, b, x), blend(c, d, x), y).unwrap_or_else(|| vec![0.0; self.z_size]);
        z.resize(self.z_size, 0.0);
        for ((&value, &dim), &scale) in request
            .sliders
            .iter()
            .zip(&self.slider_dims)
            .zip(&self.slider_scales)
        {
            if let Some(x) = z.get_mut(dim) {
                *x += value * scale;
            }
        }
        for (&amount, vector) in request.attributes.iter().zip(&self.attribute_vectors) {
            if let Some(vector) = vector {
                z.iter_mut().zip(vector).for_each(|(x, v)| *x += amount * v);
            }
        }
        let drift = request.drift;
        if drift.amount != 0.0 {
            for dim in self.music_neurons() {
                let spread = self.mu_std.as_ref().map_or(1.0, |s| s[dim]);
                z[dim] += drift.amount * spread * drift.at(dim);
            }
        }
        z
    }

    /// The dims that carry music: those whose mean moves over real music
    /// ([`MUSIC_NEURON_STD`]); for a model not analysed, the sliders'.
    pub fn music_neurons(&self) -> Vec<usize> {
        match &self.mu_std {
            Some(spread) => (0..self.z_size)
                .filter(|&d| spread[d] >= MUSIC_NEURON_STD)
                .collect(),
            None => self.slider_dims.clone(),
        }
    }
}

/// A z-sized array of finite values.
fn check_vector(
    key: &'static str,
    values: &[f32],
    z_size: usize,
) -> std::result::Result<(), ModelError> {
    if values.len() != z_size {
        return Err(ModelError::BadMetadata {
            key,
            reason: format!("{} values for a z of {z_size}", values.len()),
        });
    }
    if !values.iter().all(|v| v.is_finite()) {
        return Err(ModelError::BadMetadata {
            key,
            reason: "a value is NaN or infinite".into(),
        });
    }
    Ok(())
}

/// The first `count` dims of a ranking (dims past `z_size` dropped, missing ones
/// appended in order), or `0..count` without one.
pub fn slider_dims(ranking: Option<&[usize]>, z_size: usize, count: usize) -> Vec<usize> {
    let mut dims: Vec<usize> = ranking
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|&d| d < z_size)
        .collect();
    let mut seen = vec![false; z_size];
    dims.retain(|&d| !std::mem::replace(&mut seen[d], true));
    dims.extend((0..z_size).filter(|&d| !seen[d]));
    dims.truncate(count);
    dims
}

/// Stacks rows into a `[N, Z]` tensor on the model's device.
pub fn z_tensor(model: &MusicVae, rows: &[Vec<f32>]) -> Result<Tensor> {
    let z = model.config.z_size;
    if let Some(bad) = rows.iter().find(|r| r.len() != z) {
        candle_core::bail!(
            "latent vector has {} values, the model's z has {z}",
            bad.len()
        );
    }
    Tensor::from_vec(rows.concat(), (rows.len(), z), model.device())
}

/// Draws from the prior, z ~ N(0, 1), as a `[rows, cols]` tensor on the CPU.
pub fn standard_normal(rng: &mut impl Rng, shape: (usize, usize)) -> Result<Tensor> {
    let values = (0..shape.0 * shape.1).map(|_| normal(rng)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// One draw of N(0, 1).
pub fn normal(rng: &mut impl Rng) -> f32 {
    // Box-Muller; one of the pair is enough here.
    let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(slider_dims: Vec<usize>, z_size: usize) -> LatentSpace {
        let slider_scales = vec![1.0; slider_dims.len()];
        let slider_labels = slider_dims.iter().map(|d| format!("dim {d}")).collect();
        let ranking = slider_dims.clone();
        LatentSpace {
            z_size,
            ranking,
            mu_std: None,
            slider_dims,
            slider_labels,
            slider_scales,
            attribute_vectors: Default::default(),
        }
    }

    fn request(sliders: &[f32], morph: f32) -> Controls {
        let mut r = Controls {
            morph,
            ..Controls::default()
        };
        r.sliders[..sliders.len()].copy_from_slice(sliders);
        r
    }

    /// z at song bar `bar` with drift `amount` over a cycle of `cycle` bars, from the
    /// origin.
    fn drifted(space: &LatentSpace, amount: f32, cycle: u32, seed: u64, bar: i64) -> Vec<f32> {
        let controls = Controls {
            drift: Drift {
                amount,
                cycle_bars: cycle,
                seed,
                bar,
            },
            ..Controls::default()
        };
        space.compose([None; 4], &controls)
    }

    #[test]
    fn drift_is_a_smooth_seeded_cycle_over_the_music_neurons_of_the_song_position() {
        let mut s = space(vec![0, 1], 6);
        // Dims 0, 2 and 5 carry music; 1, 3 and 4 are noise neurons.
        s.mu_std = Some(vec![0.8, 0.05, 1.5, 0.0, 0.09, 0.3]);
        assert_eq!(s.music_neurons(), [0, 2, 5]);
        // No drift: z is where the controls put it, at any bar.
        assert_eq!(drifted(&s, 0.0, 16, 3, 41), vec![0.0; 6]);
        let path: Vec<Vec<f32>> = (0..32).map(|bar| drifted(&s, 1.5, 16, 3, bar)).collect();
        for z in &path {
            assert_eq!((z[1], z[3], z[4]), (0.0, 0.0, 0.0), "noise neurons stay");
        }
        // A pure function of the bar: the same bar, the same z; a cycle on, the same again,
        // also before the song's start.
        assert_eq!(drifted(&s, 1.5, 16, 3, 7), path[7]);
        assert_eq!(path[16 + 7], path[7]);
        assert_eq!(drifted(&s, 1.5, 16, 3, -9), path[7]);
        // Another seed, another path.
        assert_ne!(drifted(&s, 1.5, 16, 4, 7), path[7]);
        // Over a cycle each neuron moves 1.5 of its spread (RMS), a bar's step a little.
        for d in [0, 2, 5] {
            let spread = s.mu_std.as_ref().unwrap()[d];
            let rms = (path[..16].iter().map(|z| z[d] * z[d]).sum::<f32>() / 16.0).sqrt();
            assert!((rms / spread - 1.5).abs() < 0.02, "dim {d}: RMS {rms}");
            let biggest_step = (0..16)
                .map(|b| (path[b + 1][d] - path[b][d]).abs() / spread)
                .fold(0f32, f32::max);
            assert!(
                biggest_step < 1.5,
                "dim {d}: a bar moves {biggest_step} sigmas"
            );
        }
    }

    #[test]
    fn compose_without_clips_offsets_the_ranked_dims_from_the_origin() {
        let z = space(vec![4, 1], 6).compose([None; 4], &request(&[1.5, -2.0, 0.5], 0.7));
        assert_eq!(z, vec![0.0, -2.0, 0.0, 0.0, 1.5, 0.0]);
    }

    #[test]
    fn compose_morphs_between_clips_then_adds_sliders_and_attributes() {
        let a = [1.0, 0.0, 0.0];
        let b = [0.0, 1.0, 0.0];
        let mut s = space(vec![2], 3);
        assert_eq!(
            s.compose([Some(&a), Some(&b), None, None], &request(&[0.0], 0.0)),
            a.to_vec()
        );
        let mid = s.compose([Some(&a), Some(&b), None, None], &request(&[0.25], 0.5));
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (mid[0] - h).abs() < 1e-5 && (mid[1] - h).abs() < 1e-5,
            "{mid:?}"
        );
        assert_eq!(mid[2], 0.25);
        assert_eq!(
            s.compose([Some(&b), None, None, None], &request(&[], 0.9)),
            b.to_vec()
        );

        s.attribute_vectors[1] = Some(vec![0.0, 0.5, -1.0]);
        let mut r = request(&[], 0.0);
        r.attributes[1] = 2.0;
        r.attributes[0] = 5.0; // no vector for this one: no effect
        assert_eq!(s.compose([None; 4], &r), vec![0.0, 1.0, -2.0]);
    }

    #[test]
    fn the_pad_blends_four_clips_each_at_its_corner_and_the_morph_on_its_bottom_edge() {
        let s = space(vec![0], 4);
        let [a, b, c, d] = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.3, -0.2, 0.4, 0.9],
        ];
        let four = [Some(&a[..]), Some(&b[..]), Some(&c[..]), Some(&d[..])];
        let at = |x: f32, y: f32, corners: [Option<&[f32]>; 4]| {
            s.compose(
                corners,
                &Controls {
                    morph: x,
                    pad_y: y,
                    ..Controls::default()
                },
            )
        };
        for (x, y, clip) in [(0.0, 0.0, a), (1.0, 0.0, b), (0.0, 1.0, c), (1.0, 1.0, d)] {
            assert_eq!(at(x, y, four), clip.to_vec(), "the corner ({x}, {y})");
        }
        for x in [0.1, 0.5, 0.77] {
            // The bottom edge is the A-B morph, the top the C-D one.
            assert_eq!(at(x, 0.0, four), slerp(&a, &b, x));
            assert_eq!(at(x, 1.0, four), slerp(&c, &d, x));
            // Inside, the slerp of the edges.
            let y = 0.35;
            assert_eq!(
                at(x, y, four),
                slerp(&slerp(&a, &b, x), &slerp(&c, &d, x), y)
            );
            // Two clips: the pad's Y changes nothing, as before there were four.
            let two = [Some(&a[..]), Some(&b[..]), None, None];
            assert_eq!(at(x, y, two), slerp(&a, &b, x));
            // Three: the top edge is its one clip.
            let three = [Some(&a[..]), Some(&b[..]), Some(&c[..]), None];
            assert_eq!(at(x, y, three), slerp(&slerp(&a, &b, x), &c, y));
        }
        // Out of range, as a host may send: clamped to the pad.
        assert_eq!(at(-3.0, 9.0, four), c.to_vec());
    }

    #[test]
    fn metadata_for_another_z_or_with_nan_is_an_error() {
        let file = ModelFile::random(
            crate::model::Config::tiny(2, false),
            Default::default(),
            BTreeMap::new(),
        )
        .unwrap();
        let with = |key: &str, json: &str| {
            let extra = BTreeMap::from([(key.to_string(), json.to_string())]);
            LatentSpace::of(
                &ModelFile::new(
                    file.config.clone(),
                    Default::default(),
                    extra,
                    file.tensors.clone(),
                )
                .unwrap(),
            )
        };
        let (z8, z7) = (
            format!("[{}]", ["0.5"; 8].join(",")),
            format!("[{}]", ["0.5"; 7].join(",")),
        );
        assert!(with("neuron_ranking", "[7, 0, 3]").is_ok());
        assert!(with("mu_std", &z8).is_ok());
        assert!(with("attribute_vectors", &format!("{{\"density\": {z8}}}")).is_ok());
        for (key, json, reason) in [
            ("neuron_ranking", "[7, 8]".to_string(), "past the model's z"),
            ("kl_ranking", "[100]".to_string(), "past the model's z"),
            ("mu_std", z7.clone(), "7 values"),
            ("mu_std", z8.replace("0.5]", "1e39]"), "infinite"),
            ("mu_std", z8.replace("[0.5", "[-1"), "negative"),
            (
                "attribute_vectors",
                format!("{{\"density\": {z7}}}"),
                "7 values",
            ),
            (
                "attribute_vectors",
                format!("{{\"anything\": {}}}", z8.replace("0.5]", "-1e300]")),
                "infinite",
            ),
        ] {
            let err = with(key, &json).expect_err(key).to_string();
            assert!(
                err.contains(key) && err.contains(reason),
                "{key} = {json}: {err}"
            );
        }
    }

    #[test]
    fn slider_dims_fall_back_to_the_first_dims() {
        assert_eq!(slider_dims(Some(&[7, 300, 2, 5]), 128, 2), vec![7, 2]);
        assert_eq!(slider_dims(None, 128, 3), vec![0, 1, 2]);
        assert_eq!(slider_dims(Some(&[]), 4, 8), vec![0, 1, 2, 3]);
        assert_eq!(
            slider_dims(Some(&[2, 2, 0]), 4, 4),
            vec![2, 0, 1, 3],
            "a full ranking of every dim"
        );
    }
}
