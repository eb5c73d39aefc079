//! How a model organises music in its latent space: which dimensions carry music (the
//! "music neurons" of Barenboim et al.; the rest stay at the prior), what each of them
//! follows, and the attribute vectors (the MusicVAE paper's top quartile minus bottom
//! quartile) that the plugin's attribute sliders move along.

use std::collections::BTreeMap;

use candle_core::Result;

use crate::corpus::Split;
use crate::eval::{latent_statistics, ACTIVE_VARIANCE};
use latent_live_core::model::{MusicVae, Sampling};
use latent_live_core::music::attributes;
use latent_live_core::music::chord::{self, Chord};
use latent_live_core::music::key::{Key, Mode};
use latent_live_core::music::Event;

/// One dimension's relation to one attribute over the analysed slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relation {
    pub spearman: f64,
    /// Mutual information in bits, from quantile bins: catches relations that are not
    /// monotonic.
    pub mutual_information: f64,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub slices: usize,
    pub mu_variance: Vec<f64>,
    pub kl_per_dim: Vec<f64>,
    /// The attributes measured, in the order of every per-attribute list below.
    pub attributes: &'static [&'static str],
    /// Every dimension, the most variable mu first: music neurons, then noise neurons.
    pub ranking: Vec<usize>,
    /// Dimensions whose mu varies more than [`ACTIVE_VARIANCE`].
    pub music_neurons: usize,
    /// Standard deviation of mu per dimension: the plugin's slider ranges are +-3 of it.
    pub mu_std: Vec<f64>,
    /// For the top neurons (in ranking order), their relation to each of the model's
    /// attributes ([`attributes::of`]).
    pub relations: Vec<Vec<Relation>>,
    /// "N1 · pitch range": each top neuron and the attribute it follows most closely.
    pub labels: Vec<String>,
    /// Per attribute, mean z of the top quartile minus mean z of the bottom quartile.
    pub attribute_vectors: BTreeMap<String, Vec<f32>>,
    /// `r_squared[a][d]`: R² of a 1-D linear regression of attribute `a` on mu's
    /// dimension `d`, AR-VAE's interpretability score for a dimension bound to `a`.
    pub r_squared: Vec<Vec<f64>>,
}

/// Analyses the first `limit` slices of `split`; `top` neurons get correlations and labels.
pub fn analyze(
    model: &MusicVae,
    split: &Split,
    limit: Option<usize>,
    top: usize,
) -> Result<Analysis> {
    let n = limit.map_or(split.len(), |l| l.min(split.len()));
    if n < 8 {
        candle_core::bail!("analysis needs at least 8 slices, got {n}");
    }
    let (mut mu, mut sigma) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for start in (0..n).step_by(256) {
        let phrases: Vec<&[Event]> = (start..(start + 256).min(n))
            .map(|i| split.get(i))
            .collect();
        let chords = split.chords_of(start..(start + 256).min(n));
        let posterior = model.posterior(&model.batch_over(&phrases, chords.as_deref())?)?;
        mu.extend(posterior.mu.to_vec2::<f32>()?);
        sigma.extend(posterior.sigma.to_vec2::<f32>()?);
    }
    let (kl_per_dim, mu_variance) = latent_statistics(&mu, &sigma);
    let mut ranking: Vec<usize> = (0..mu_variance.len()).collect();
    ranking.sort_by(|&a, &b| {
        mu_variance[b]
            .total_cmp(&mu_variance[a])
            .then(kl_per_dim[b].total_cmp(&kl_per_dim[a]))
    });
    let music_neurons = mu_variance.iter().filter(|&&v| v > ACTIVE_VARIANCE).count();

    let names = attributes::of(model.config.encoding);
    let values: Vec<Vec<f64>> = names
        .iter()
        .map(|name| {
            (0..n)
                .map(|i| {
                    attributes::measure(model.config.encoding, name, split.get(i))
                        .expect("a known attribute")
                })
                .collect()
        })
        .collect();
    let column = |d: usize| -> Vec<f64> { mu.iter().map(|row| row[d] as f64).collect() };
    let relations: Vec<Vec<Relation>> = ranking[..top.min(ranking.len())]
        .iter()
        .map(|&d| {
            let z = column(d);
            values
                .iter()
                .map(|a| Relation {
                    spearman: spearman(&z, a),
                    mutual_information: mutual_information(&z, a, 8),
                })
                .collect()
        })
        .collect();
    let labels = distinct_labels(&relations, names);
    let attribute_vectors = names
        .iter()
        .zip(&values)
        .map(|(name, a)| (name.to_string(), quartile_vector(&mu, a)))
        .collect();
    let mu_std = mu_variance.iter().map(|v| v.max(0.0).sqrt()).collect();
    let columns: Vec<Vec<f64>> = (0..mu_variance.len()).map(column).collect();
    let r_squared = values
        .iter()
        .map(|a| columns.iter().map(|z| pearson(z, a).powi(2)).collect())
        .collect();
    Ok(Analysis {
        attributes: names,
        slices: n,
        mu_variance,
        kl_per_dim,
        ranking,
        music_neurons,
        mu_std,
        relations,
        labels,
        attribute_vectors,
        r_squared,
    })
}

/// The amounts an attribute vector is swept over: its slider's range.
pub const SWEEP_AMOUNTS: [f64; 9] = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0];
/// The prior samples a vector is swept from for its slider's check.
pub const CHECK_BASES: usize = 8;
/// An attribute slider's check: the median over [`CHECK_BASES`] bases of the Spearman
/// between the amount and its own attribute is at least this. A vector that fails it is
/// not shipped, and the plugin greys its slider out.
pub const MONOTONIC: f64 = 0.9;

/// The check of the attribute slider `name` moving z along `vector`: the median Spearman
/// of [`sweep`] over [`CHECK_BASES`] prior bases (seed 1), its own attribute's.
pub fn slider_check(model: &MusicVae, name: &str, vector: &[f32]) -> Result<f64> {
    let s = sweep(model, vector, &SWEEP_AMOUNTS, CHECK_BASES, 1)?;
    let own = s
        .attributes
        .iter()
        .position(|&a| a == name)
        .ok_or_else(|| {
            candle_core::Error::Msg(format!("{name} is not an attribute of this model"))
        })?;
    Ok(s.median_spearman[own])
}

/// What [`fix_sliders`] did with a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliderFix {
    /// It passes its check.
    Kept,
    /// It failed, and the vector from prior samples' decodes ([`prior_vectors`]), which
    /// passes, took its place.
    FromPrior,
    /// Neither passes: it is left out, and the plugin greys its slider out.
    Dropped,
}

/// Prior samples decoded to find a vector from where the sliders start.
const PRIOR_SAMPLES: usize = 2048;

/// Attribute vectors found where the sliders are used rather than in the encoder's
/// means: `samples` prior samples (z ~ N(0, 1) from `seed`) decoded greedily, each
/// vector the mean z of the top quartile of its attribute minus that of the bottom one.
pub fn prior_vectors(
    model: &MusicVae,
    samples: usize,
    seed: u64,
) -> Result<BTreeMap<String, Vec<f32>>> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let z =
        latent_live_core::model::latent::standard_normal(&mut rng, (samples, model.config.z_size))?
            .to_vec2::<f32>()?;
    let progression = default_progression(model);
    let names = attributes::of(model.config.encoding);
    let mut values = vec![Vec::with_capacity(samples); names.len()];
    for rows in z.chunks(256) {
        let over: Option<Vec<&[Option<Chord>]>> =
            progression.as_ref().map(|p| vec![p.as_slice(); rows.len()]);
        let phrases = model.decode_over(
            &latent_live_core::model::latent::z_tensor(model, rows)?,
            over.as_deref(),
            Sampling::Greedy,
        )?;
        for phrase in &phrases {
            for (a, name) in names.iter().enumerate() {
                values[a].push(
                    attributes::measure(model.config.encoding, name, phrase)
                        .expect("a known attribute"),
                );
            }
        }
    }
    Ok(names
        .iter()
        .zip(&values)
        .map(|(name, a)| (name.to_string(), quartile_vector(&z, a)))
        .collect())
}

/// Checks every vector of `vectors` (attribute name to vector) with [`slider_check`];
/// one that fails is replaced by its [`prior_vectors`] one where that passes, and left
/// out otherwise. Each vector's name, the median Spearman of what is kept (or of the
/// better of the two when neither passes), and what was done.
pub fn fix_sliders(
    model: &MusicVae,
    vectors: &mut BTreeMap<String, Vec<f32>>,
) -> Result<Vec<(String, f64, SliderFix)>> {
    let mut checks = Vec::with_capacity(vectors.len());
    let mut prior: Option<BTreeMap<String, Vec<f32>>> = None;
    let names: Vec<String> = vectors.keys().cloned().collect();
    for name in names {
        let median = slider_check(model, &name, &vectors[&name])?;
        if median >= MONOTONIC {
            checks.push((name, median, SliderFix::Kept));
            continue;
        }
        if prior.is_none() {
            prior = Some(prior_vectors(model, PRIOR_SAMPLES, 2)?);
        }
        let candidate = prior.as_ref().and_then(|p| p.get(&name)).cloned();
        let from_prior = match &candidate {
            Some(v) => slider_check(model, &name, v)?,
            None => f64::NEG_INFINITY,
        };
        if from_prior >= MONOTONIC {
            vectors.insert(name.clone(), candidate.expect("checked above"));
            checks.push((name, from_prior, SliderFix::FromPrior));
        } else {
            vectors.remove(&name);
            checks.push((name, median.max(from_prior), SliderFix::Dropped));
        }
    }
    Ok(checks)
}

/// What a chord model is swept over when no chord is named, as the plugin plays it:
/// I–V–vi–IV in C.
fn default_progression(model: &MusicVae) -> Option<Vec<Option<Chord>>> {
    model.config.chords.map(|_| {
        let c_major = Key {
            tonic: 0,
            mode: Mode::Major,
        };
        chord::default_progression(c_major, model.config.steps())
    })
}

/// How decoding moves an attribute when z moves along a vector.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The attributes measured, as [`Analysis::attributes`].
    pub attributes: &'static [&'static str],
    pub amounts: Vec<f64>,
    /// Mean of each of the model's attributes ([`attributes::of`]) over the samples, per amount.
    pub means: Vec<Vec<f64>>,
    /// Spearman of (amount, measured attribute) over every sample, per attribute.
    pub spearman: Vec<f64>,
    /// Per attribute, the median over the prior samples (the bases) of each one's own
    /// Spearman of amount against the attribute: how reliably the vector moves the
    /// attribute from wherever z starts. Its own attribute's is the slider's check.
    pub median_spearman: Vec<f64>,
}

/// Decodes `samples` prior samples (z ~ N(0, 1) from `seed`) moved by each amount along
/// `vector`, greedily, and measures every attribute of the phrases. A chord model plays
/// over what the plugin plays it over when no chord is named: I–V–vi–IV in C.
pub fn sweep(
    model: &MusicVae,
    vector: &[f32],
    amounts: &[f64],
    samples: usize,
    seed: u64,
) -> Result<Sweep> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let base =
        latent_live_core::model::latent::standard_normal(&mut rng, (samples, model.config.z_size))?
            .to_vec2::<f32>()?;
    let names = attributes::of(model.config.encoding);
    let progression = default_progression(model);
    let over: Option<Vec<&[Option<Chord>]>> =
        progression.as_ref().map(|p| vec![p.as_slice(); samples]);
    let (mut xs, mut measured) = (Vec::new(), vec![Vec::new(); names.len()]);
    let mut means = Vec::with_capacity(amounts.len());
    for &amount in amounts {
        let z: Vec<Vec<f32>> = base
            .iter()
            .map(|row| {
                row.iter()
                    .zip(vector)
                    .map(|(z, v)| z + amount as f32 * v)
                    .collect()
            })
            .collect();
        let phrases = model.decode_over(
            &latent_live_core::model::latent::z_tensor(model, &z)?,
            over.as_deref(),
            Sampling::Greedy,
        )?;
        let mut mean = vec![0.0; names.len()];
        for phrase in &phrases {
            xs.push(amount);
            for (a, name) in names.iter().enumerate() {
                let value = attributes::measure(model.config.encoding, name, phrase)
                    .expect("a known attribute");
                measured[a].push(value);
                mean[a] += value / phrases.len() as f64;
            }
        }
        means.push(mean);
    }
    let pooled = measured.iter().map(|m| spearman(&xs, m)).collect();
    // `measured[a]` runs amount by amount, each over every base.
    let median_spearman = measured
        .iter()
        .map(|m| {
            let mut per_base: Vec<f64> = (0..samples)
                .map(|b| {
                    let values: Vec<f64> = (0..amounts.len()).map(|i| m[i * samples + b]).collect();
                    spearman(amounts, &values)
                })
                .collect();
            median(&mut per_base)
        })
        .collect();
    Ok(Sweep {
        attributes: names,
        amounts: amounts.to_vec(),
        means,
        spearman: pooled,
        median_spearman,
    })
}

/// The median of `values` (NaN sorts last); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Below this |Spearman| a relation names nothing a listener would hear.
const LABEL_SPEARMAN: f64 = 0.2;

/// "N3 · pitch range": each neuron (in rank order, with its relations to `names`) named
/// by what sets it apart: its strongest relation that no higher-ranked neuron is named
/// by, when that relation is at least [`LABEL_SPEARMAN`]; otherwise its strongest, with
/// how many neurons that attribute names so far ("note density 2").
fn distinct_labels(relations: &[Vec<Relation>], names: &[&str]) -> Vec<String> {
    let mut named = vec![0usize; names.len()];
    relations
        .iter()
        .enumerate()
        .map(|(i, rel)| {
            let mut order: Vec<usize> = (0..rel.len().min(names.len())).collect();
            order.sort_by(|&a, &b| rel[b].spearman.abs().total_cmp(&rel[a].spearman.abs()));
            let Some(&best) = order.first() else {
                return format!("N{}", i + 1);
            };
            let fresh = order
                .iter()
                .copied()
                .find(|&a| named[a] == 0 && rel[a].spearman.abs() >= LABEL_SPEARMAN);
            let chosen = fresh.unwrap_or(best);
            named[chosen] += 1;
            let name = names[chosen].replace('_', " ");
            match named[chosen] {
                1 => format!("N{} · {name}", i + 1),
                k => format!("N{} · {name} {k}", i + 1),
            }
        })
        .collect()
}

fn quartile_vector(mu: &[Vec<f32>], attribute: &[f64]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..mu.len()).collect();
    order.sort_by(|&a, &b| attribute[a].total_cmp(&attribute[b]));
    let q = (mu.len() / 4).max(1);
    let mean = |rows: &[usize]| -> Vec<f64> {
        let mut m = vec![0.0; mu[0].len()];
        for &r in rows {
            m.iter_mut()
                .zip(&mu[r])
                .for_each(|(m, &x)| *m += x as f64 / rows.len() as f64);
        }
        m
    };
    let (bottom, top) = (mean(&order[..q]), mean(&order[order.len() - q..]));
    top.iter()
        .zip(&bottom)
        .map(|(t, b)| (t - b) as f32)
        .collect()
}

/// Ranks with ties averaged.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            ranks[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    ranks
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Mutual information (bits) of two samples, each cut into `bins` quantile bins (ties
/// share a bin, so a constant attribute has none).
pub fn mutual_information(x: &[f64], y: &[f64], bins: usize) -> f64 {
    let n = x.len();
    let bin = |v: &[f64]| -> Vec<usize> {
        ranks(v)
            .iter()
            .map(|r| ((r * bins as f64) / n as f64) as usize)
            .map(|b| b.min(bins - 1))
            .collect()
    };
    let (bx, by) = (bin(x), bin(y));
    let mut joint = vec![0f64; bins * bins];
    let (mut px, mut py) = (vec![0f64; bins], vec![0f64; bins]);
    for (&a, &b) in bx.iter().zip(&by) {
        joint[a * bins + b] += 1.0 / n as f64;
        px[a] += 1.0 / n as f64;
        py[b] += 1.0 / n as f64;
    }
    let mut mi = 0.0;
    for a in 0..bins {
        for b in 0..bins {
            let p = joint[a * bins + b];
            if p > 0.0 {
                mi += p * (p / (px[a] * py[b])).log2();
            }
        }
    }
    mi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neuron_labels_name_what_sets_each_apart() {
        let rel = |rhos: [f64; 3]| -> Vec<Relation> {
            rhos.iter()
                .map(|&spearman| Relation {
                    spearman,
                    mutual_information: 0.0,
                })
                .collect()
        };
        let names = ["kick_density", "snare_density", "backbeat"];
        let relations = [
            rel([0.8, 0.1, 0.3]),
            // Kick density again, most strongly; its backbeat relation is its own.
            rel([0.7, 0.05, -0.4]),
            // Nothing fresh above the floor: the second neuron named by kick density.
            rel([0.6, 0.1, 0.1]),
            rel([0.5, 0.15, 0.9]),
        ];
        assert_eq!(
            distinct_labels(&relations, &names),
            [
                "N1 · kick density",
                "N2 · backbeat",
                "N3 · kick density 2",
                "N4 · backbeat 2",
            ]
        );
        let labels = distinct_labels(&relations, &names);
        let unique: std::collections::HashSet<&String> = labels.iter().collect();
        assert_eq!(unique.len(), labels.len());
    }

    #[test]
    fn spearman_and_mutual_information_measure_what_they_should() {
        let x: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let cube: Vec<f64> = x.iter().map(|v| (v - 50.0).powi(3)).collect();
        assert!((spearman(&x, &cube) - 1.0).abs() < 1e-12, "monotonic is 1");
        let reversed: Vec<f64> = x.iter().rev().cloned().collect();
        assert!((spearman(&x, &reversed) + 1.0).abs() < 1e-12);
        // A V shape: no rank correlation, but y tells a lot about x.
        let v: Vec<f64> = x.iter().map(|v| (v - 49.5).abs()).collect();
        assert!(spearman(&x, &v).abs() < 0.05);
        assert!(mutual_information(&x, &v, 8) > 0.8);
        assert!(mutual_information(&x, &x, 8) > 2.9, "8 equal bins: 3 bits");
        let constant = vec![1.0; 100];
        assert_eq!(spearman(&x, &constant), 0.0);
    }
}
