//! Held-out evaluation: reconstruction accuracy and how the latent space is used.

use candle_core::{Result, Tensor, D};
use rayon::prelude::*;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::corpus::Split;
use latent_live_core::model::latent::standard_normal;
use latent_live_core::model::{Batch, GrooveInput, MusicVae, Sampling};
use latent_live_core::music::chord::Chord;
use latent_live_core::music::drums::NUM_DRUM_CLASSES;
use latent_live_core::music::groove::{self, Feel, Groove, ROW};
use latent_live_core::music::{melody, Encoding, Event};

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
    /// A drum model's greedy decode against the slices, per drum class (empty for
    /// melodies): which parts of the kit the wrong steps get wrong.
    pub class_errors: Vec<ClassErrors>,
    /// Over a split with chords: how the human melodies and the greedy decodes of mu
    /// follow them on the beats.
    pub chord_tones: Option<ChordToneShares>,
    pub slices: usize,
}

/// On-beat chord tones of the measured melodies, and of their decodes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChordToneShares {
    pub human: ChordTones,
    pub decoded: ChordTones,
}

/// One drum class's hits in the measured slices, and the decode's departures from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassErrors {
    pub hits: usize,
    /// Hits the decode leaves out.
    pub missed: usize,
    /// Hits the decode plays where the slice has none.
    pub extra: usize,
}

/// Adds each drum class of `wanted` against `decoded`, step for step, to `classes`.
fn tally_classes(classes: &mut [ClassErrors], decoded: &[Vec<Event>], wanted: &[&[Event]]) {
    for (d, w) in decoded.iter().zip(wanted) {
        for (&got, &want) in d.iter().zip(w.iter()) {
            for (c, errors) in classes.iter_mut().enumerate() {
                let (got, want) = (got >> c & 1 == 1, want >> c & 1 == 1);
                errors.hits += usize::from(want);
                errors.missed += usize::from(want && !got);
                errors.extra += usize::from(got && !want);
            }
        }
    }
}

impl Evaluation {
    pub fn active_dims(&self) -> usize {
        self.mu_variance
            .iter()
            .filter(|&&v| v > ACTIVE_VARIANCE)
            .count()
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
pub fn evaluate(
    model: &MusicVae,
    split: &Split,
    batch_size: usize,
    limit: Option<usize>,
) -> Result<Evaluation> {
    let n = limit.map_or(split.len(), |l| l.min(split.len()));
    if n == 0 {
        candle_core::bail!("nothing to evaluate: the split is empty");
    }
    let (mut tf_correct, mut sampled_correct, mut total_steps) = (0usize, 0usize, 0usize);
    let (mut mu, mut sigma) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let drums = model.config.encoding == Encoding::Drums;
    let mut class_errors = vec![ClassErrors::default(); if drums { NUM_DRUM_CLASSES } else { 0 }];
    let mut chord_tones = split.chords(0).map(|_| ChordToneShares::default());
    for start in (0..n).step_by(batch_size) {
        let indices = start..(start + batch_size).min(n);
        let melodies: Vec<&[Event]> = indices.clone().map(|i| split.get(i)).collect();
        let chords = split.chords_of(indices);
        let batch = model.batch_over(&melodies, chords.as_deref())?;
        let posterior = model.posterior(&batch)?;
        tf_correct += teacher_forced_correct(model, &posterior.mu, &batch)?;
        let decoded = model.decode_over(&posterior.mu, chords.as_deref(), Sampling::Greedy)?;
        for (m, d) in melodies.iter().zip(&decoded) {
            sampled_correct += m.iter().zip(d).filter(|(a, b)| a == b).count();
            total_steps += m.len();
        }
        tally_classes(&mut class_errors, &decoded, &melodies);
        if let (Some(shares), Some(chords)) = (chord_tones.as_mut(), &chords) {
            for ((m, d), c) in melodies.iter().zip(&decoded).zip(chords) {
                shares.human.add_notes(&melody::decode(m), c);
                shares.decoded.add_notes(&melody::decode(d), c);
            }
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
        class_errors,
        chord_tones,
        slices: n,
    })
}

/// Prior samples (z ~ N(0, I), seeded) decoded over `chords`, one per progression, in
/// batches of 256: how a model plays over progressions it was never given a melody for.
/// A model without chords ignores them.
pub fn sample_over(
    model: &MusicVae,
    chords: &[&[Option<Chord>]],
    temperature: f32,
    seed: u64,
) -> Result<Vec<Vec<Event>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut decoded = Vec::with_capacity(chords.len());
    for (b, over) in chords.chunks(256).enumerate() {
        let z = standard_normal(&mut rng, (over.len(), model.config.z_size))?;
        let sampling = Sampling::new(temperature, seed + 256 * b as u64);
        decoded.extend(model.decode_over(&z, Some(over), sampling)?);
    }
    Ok(decoded)
}

/// How many steps of `events` `[B, T]` the decoder's argmax gets right from `z` when fed
/// the true previous steps.
pub fn teacher_forced_correct(model: &MusicVae, z: &Tensor, batch: &Batch) -> Result<usize> {
    let right = model
        .logits(z, batch)?
        .argmax(D::Minus1)?
        .eq(batch.targets())?
        .to_dtype(candle_core::DType::F32)?
        .sum_all()?;
    Ok(right.to_scalar::<f32>()? as usize)
}

/// Of the melody notes that start on a beat, how many are tones of the chord sounding
/// there: what following the chords means on the beats, where a listener hears it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChordTones {
    pub tones: usize,
    pub notes: usize,
}

impl ChordTones {
    /// Counts `melodies` (events) over their `chords` (one per step); steps without a
    /// chord are not counted.
    pub fn of(melodies: &[&[Event]], chords: &[&[Option<Chord>]]) -> Self {
        let mut count = Self::default();
        for (melody, chords) in melodies.iter().zip(chords) {
            count.add_notes(&melody::decode(melody), chords);
        }
        count
    }

    /// Adds `notes` over `chords` (one per step).
    pub fn add_notes(&mut self, notes: &[melody::Note], chords: &[Option<Chord>]) {
        for note in notes.iter().filter(|n| n.start.is_multiple_of(4)) {
            if let Some(Some(chord)) = chords.get(note.start as usize) {
                self.notes += 1;
                self.tones += chord.has_tone(note.pitch) as usize;
            }
        }
    }

    pub fn share(&self) -> f64 {
        self.tones as f64 / self.notes.max(1) as f64
    }
}

/// How well a groove model plays its test grooves, from a greedy decode of mu (as the
/// plugin decodes), beside the baseline of GrooVAE's paper: each class at its mean
/// velocity, on the grid.
#[derive(Debug, Clone)]
pub struct GrooveEvaluation {
    /// Share of (step, class) cells whose hit or rest is right.
    pub hit_accuracy: f64,
    /// Of the hits played and the hits wanted: precision, recall and their F1.
    pub hit_precision: f64,
    pub hit_recall: f64,
    /// Mean absolute velocity error on the wanted hits, in MIDI velocity (0..=127).
    pub velocity_mae: f64,
    /// Mean absolute timing error on the wanted hits, in milliseconds at each groove's tempo.
    pub timing_mae_ms: f64,
    pub baseline_velocity_mae: f64,
    pub baseline_timing_mae_ms: f64,
    /// A humanizer's velocity and timing errors when it decodes with the wanted hits
    /// held, as the plugin plays it ([`MusicVae::feel_of`]); `None` for other models.
    pub held: Option<(f64, f64)>,
    /// The errors on the hits both played and wanted alone. The errors above also count
    /// the wanted hits the model leaves out (at the velocity it writes for a rest), which
    /// is most of a tap2drum model's error: this says how it plays the hits it gets right.
    pub matched: MatchedErrors,
    pub kl_per_dim: Vec<f64>,
    pub mu_variance: Vec<f64>,
    pub slices: usize,
}

/// Mean velocity and timing errors over the hits a model plays where the drummer did:
/// the model's, and the baseline's on the same hits.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchedErrors {
    pub velocity: f64,
    pub timing_ms: f64,
    pub baseline_velocity: f64,
    pub baseline_timing_ms: f64,
}

impl GrooveEvaluation {
    pub fn hit_f1(&self) -> f64 {
        2.0 * self.hit_precision * self.hit_recall
            / (self.hit_precision + self.hit_recall).max(1e-12)
    }

    /// The line scripts read: always printed last by `xtask eval` for groove models.
    pub fn summary_line(&self) -> String {
        let held = self.held.map_or(String::new(), |(v, t)| {
            format!(" held_velocity_mae={v:.2} held_timing_mae_ms={t:.2}")
        });
        format!(
            "hit_accuracy={:.4} hit_f1={:.4} velocity_mae={:.2} timing_mae_ms={:.2}{held} \
             baseline_velocity_mae={:.2} baseline_timing_mae_ms={:.2} slices={}",
            self.hit_accuracy,
            self.hit_f1(),
            self.velocity_mae,
            self.timing_mae_ms,
            self.baseline_velocity_mae,
            self.baseline_timing_mae_ms,
            self.slices
        )
    }
}

/// Each class's mean velocity over the hits of `split` (a groove corpus's training
/// split): the baseline's velocities.
pub fn mean_velocities(split: &Split) -> [f64; NUM_DRUM_CLASSES] {
    let (mut sum, mut count) = ([0f64; NUM_DRUM_CLASSES], [0usize; NUM_DRUM_CLASSES]);
    for (&event, feel) in split.events.iter().zip(&split.feel) {
        for c in latent_live_core::music::drums::classes_in(event) {
            sum[c] += feel[c].velocity as f64;
            count[c] += 1;
        }
    }
    std::array::from_fn(|c| {
        if count[c] > 0 {
            sum[c] / count[c] as f64
        } else {
            64.0
        }
    })
}

/// Evaluates a groove model on the first `limit` grooves of `split` (all when `None`);
/// `bpm[tune]` is each tune's tempo, and `baseline` each class's velocity for the baseline.
pub fn evaluate_grooves(
    model: &MusicVae,
    split: &Split,
    bpm: &[f64],
    baseline: &[f64; NUM_DRUM_CLASSES],
    batch_size: usize,
    limit: Option<usize>,
) -> Result<GrooveEvaluation> {
    let n = limit.map_or(split.len(), |l| l.min(split.len()));
    if n == 0 {
        candle_core::bail!("nothing to evaluate: the split is empty");
    }
    let (mut right_cells, mut cells, mut played, mut wanted, mut both) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let (mut velocity, mut timing, mut base_velocity, mut base_timing) = (0f64, 0f64, 0f64, 0f64);
    let humanizer = model.config.groove_input == GrooveInput::Humanize;
    let (mut held_velocity, mut held_timing) = (0f64, 0f64);
    let mut matched = MatchedErrors::default();
    let (mut mu, mut sigma) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let nc = NUM_DRUM_CLASSES;
    for start in (0..n).step_by(batch_size) {
        let indices: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        let grooves: Vec<Groove> = indices.iter().map(|&i| split.groove(i)).collect();
        let refs: Vec<&Groove> = grooves.iter().collect();
        let posterior = model.posterior(&model.groove_batch(&refs)?)?;
        let decoded = model.decode_rows(&posterior.mu, Sampling::Greedy)?;
        let held = if humanizer {
            model.humanize_rows(&refs)?
        } else {
            Vec::new()
        };
        for (b, ((&i, target), rows)) in indices.iter().zip(&grooves).zip(&decoded).enumerate() {
            let step_ms =
                groove::step_ms(bpm.get(split.tune[i] as usize).copied().unwrap_or(120.0));
            // Velocity and timing errors of a row's wanted hit, in MIDI units and ms.
            let errors = |row: &[f32], c: usize, feel: Feel| {
                (
                    (row[nc + c] as f64 * 127.0 - feel.velocity as f64).abs(),
                    (-row[2 * nc + c] as f64 / 2.0 - feel.shift as f64).abs() * step_ms,
                )
            };
            for (step, row) in rows.chunks_exact(ROW).enumerate() {
                for c in 0..nc {
                    let (hit, want) = (
                        row[c] > groove::HIT_THRESHOLD,
                        target.events[step] >> c & 1 == 1,
                    );
                    cells += 1;
                    right_cells += (hit == want) as usize;
                    played += hit as usize;
                    wanted += want as usize;
                    both += (hit && want) as usize;
                    if want {
                        let feel = target.feel[step][c];
                        let (v, t) = errors(row, c, feel);
                        (velocity, timing) = (velocity + v, timing + t);
                        if let Some(held) = held.get(b) {
                            let (v, t) = errors(&held[step * ROW..(step + 1) * ROW], c, feel);
                            (held_velocity, held_timing) = (held_velocity + v, held_timing + t);
                        }
                        let (bv, bt) = (
                            (baseline[c] - feel.velocity as f64).abs(),
                            (feel.shift as f64).abs() * step_ms,
                        );
                        (base_velocity, base_timing) = (base_velocity + bv, base_timing + bt);
                        if hit {
                            matched.velocity += v;
                            matched.timing_ms += t;
                            matched.baseline_velocity += bv;
                            matched.baseline_timing_ms += bt;
                        }
                    }
                }
            }
        }
        mu.extend(posterior.mu.to_vec2::<f32>()?);
        sigma.extend(posterior.sigma.to_vec2::<f32>()?);
    }
    let (kl_per_dim, mu_variance) = latent_statistics(&mu, &sigma);
    let hits = wanted.max(1) as f64;
    Ok(GrooveEvaluation {
        hit_accuracy: right_cells as f64 / cells as f64,
        hit_precision: both as f64 / played.max(1) as f64,
        hit_recall: both as f64 / hits,
        velocity_mae: velocity / hits,
        timing_mae_ms: timing / hits,
        baseline_velocity_mae: base_velocity / hits,
        baseline_timing_mae_ms: base_timing / hits,
        held: humanizer.then(|| (held_velocity / hits, held_timing / hits)),
        matched: {
            let m = both.max(1) as f64;
            MatchedErrors {
                velocity: matched.velocity / m,
                timing_ms: matched.timing_ms / m,
                baseline_velocity: matched.baseline_velocity / m,
                baseline_timing_ms: matched.baseline_timing_ms / m,
            }
        },
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
    let variance = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| q / count - (s / count).powi(2))
        .collect();
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

/// The accuracy of answering each slice of `held` with the slice of `train` that matches
/// it on the most steps: what memorising the training slices alone would score, the
/// floor a model's held-out accuracy is read against.
pub fn nearest_copy_accuracy(train: &Split, held: &Split, limit: Option<usize>) -> f64 {
    let n = limit.unwrap_or(usize::MAX).min(held.len());
    let steps = (0..n).into_par_iter().map(|i| {
        let slice = held.get(i);
        train
            .iter()
            .map(|t| t.iter().zip(slice).filter(|(a, b)| a == b).count())
            .max()
            .unwrap_or(0)
    });
    let all: usize = (0..n).map(|i| held.get(i).len()).sum();
    steps.sum::<usize>() as f64 / all.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_tallies_count_each_drum_missed_and_added() {
        let (kick, snare, hat) = (1 << 0, 1 << 1, 1 << 2);
        let mut classes = vec![ClassErrors::default(); NUM_DRUM_CLASSES];
        tally_classes(
            &mut classes,
            &[vec![kick | snare, 0], vec![hat]],
            &[&[kick, hat], &[hat]],
        );
        assert_eq!(
            classes[0],
            ClassErrors {
                hits: 1,
                missed: 0,
                extra: 0
            }
        );
        assert_eq!(
            classes[1],
            ClassErrors {
                hits: 0,
                missed: 0,
                extra: 1
            }
        );
        assert_eq!(
            classes[2],
            ClassErrors {
                hits: 2,
                missed: 1,
                extra: 0
            }
        );
        assert!(classes[3..].iter().all(|c| *c == ClassErrors::default()));
    }

    #[test]
    fn copying_the_nearest_training_slice_scores_its_matching_steps() {
        let split = |events: Vec<Event>| Split {
            steps: 4,
            tune: vec![0; events.len() / 4],
            events,
            feel: Vec::new(),
            chords: Vec::new(),
        };
        let train = split(vec![1, 2, 3, 4, 5, 5, 5, 5]);
        let held = split(vec![1, 2, 0, 0, 5, 5, 5, 0]);
        // Each held slice is best answered by a different training slice: 2 + 3 of 8 steps.
        assert_eq!(nearest_copy_accuracy(&train, &held, None), 5.0 / 8.0);
        assert_eq!(nearest_copy_accuracy(&train, &held, Some(1)), 2.0 / 4.0);
        assert_eq!(nearest_copy_accuracy(&train, &train, None), 1.0);
    }

    #[test]
    fn counts_on_beat_notes_against_their_chord() {
        use latent_live_core::music::chord::Quality;
        let notes = [(60, 0), (62, 2), (62, 4), (67, 8), (64, 12)];
        let events = melody::encode(
            &notes
                .iter()
                .map(|&(pitch, start)| melody::Note {
                    pitch,
                    start,
                    end: start + 1,
                })
                .collect::<Vec<_>>(),
            16,
        );
        let mut chords = vec![Some(Chord::new(0, Quality::Major)); 16];
        chords[12] = None;
        // On beats: C (tone), D (not), G (tone); D at step 2 is off the beat, E has no chord.
        let count = ChordTones::of(&[&events], &[&chords]);
        assert_eq!((count.tones, count.notes), (2, 3));
    }
}
