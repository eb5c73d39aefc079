//! Musical attributes of a phrase (an event sequence): for melodies as the MusicVAE paper
//! and AR-VAE (Pati and Lerch) define them, for drums what a producer reaches for (how busy
//! each part of the kit is, syncopation, backbeat, fills). What analysis correlates the
//! latent dimensions with, and what attribute vectors move.

use crate::music::drums::classes_in;
use crate::music::melody::{class_pitch, STEPS_PER_BAR};
use crate::music::{Encoding, Event};

/// Every melody attribute, by the name used in model metadata and reports.
pub const MELODY: [&str; 9] = [
    "note_density",
    "rhythm_complexity",
    "syncopation_8th",
    "syncopation_16th",
    "mean_pitch",
    "pitch_range",
    "c_diatonic",
    "average_interval",
    "contour",
];

/// Every drum attribute.
pub const DRUMS: [&str; 8] = [
    "kick_density",
    "snare_density",
    "hat_density",
    "tom_density",
    "cymbal_density",
    "drum_syncopation",
    "backbeat",
    "fill",
];

/// The attributes z can be pushed along, as named in a model's `attribute_vectors`
/// metadata: six melody attributes, then every drum attribute. A model without a vector
/// for one (a melody model, for the drum ones) leaves its control idle.
pub const CONTROLLED: [&str; NUM_CONTROLLED] = {
    let mut all = [""; NUM_CONTROLLED];
    let mut i = 0;
    while i < CONTROLLED_MELODY.len() {
        all[i] = CONTROLLED_MELODY[i];
        i += 1;
    }
    while i < NUM_CONTROLLED {
        all[i] = DRUMS[i - CONTROLLED_MELODY.len()];
        i += 1;
    }
    all
};
pub const NUM_CONTROLLED: usize = CONTROLLED_MELODY.len() + DRUMS.len();
/// The melody attributes with a control: six of [`MELODY`].
const CONTROLLED_MELODY: [&str; 6] = [
    "note_density",
    "rhythm_complexity",
    "syncopation_16th",
    "pitch_range",
    "mean_pitch",
    "contour",
];

/// The attributes of an encoding's phrases.
pub fn of(encoding: Encoding) -> &'static [&'static str] {
    match encoding {
        Encoding::Melody => &MELODY,
        Encoding::Drums | Encoding::Groove => &DRUMS,
    }
}

/// Attribute `name` of `events` read in `encoding`, or `None` for a name that is not one
/// of [`of`]`(encoding)`.
pub fn measure(encoding: Encoding, name: &str, events: &[Event]) -> Option<f64> {
    match encoding {
        Encoding::Melody => melody_attribute(name, events),
        Encoding::Drums | Encoding::Groove => drum_attribute(name, events),
    }
}

/// 0 on downbeats, 1/4 on the half bar, 1/2 on beats, 3/4 on 8ths, 1 on 16ths.
fn metrical_weakness(step: usize) -> f64 {
    match step % STEPS_PER_BAR {
        0 => 0.0,
        8 => 0.25,
        4 | 12 => 0.5,
        s if s % 2 == 0 => 0.75,
        _ => 1.0,
    }
}

fn melody_attribute(name: &str, events: &[Event]) -> Option<f64> {
    let onsets = onsets(events);
    let n = onsets.len() as f64;
    let pitches = || onsets.iter().map(|&(_, p)| p as f64);
    let intervals = || onsets.windows(2).map(|w| w[1].1 as f64 - w[0].1 as f64);
    let per_onset = |count: usize| {
        if onsets.is_empty() {
            0.0
        } else {
            count as f64 / n
        }
    };
    let onset_at = |step: usize| onsets.iter().any(|&(s, _)| s == step);
    Some(match name {
        "note_density" => n / events.len().max(1) as f64,
        // The mean metrical weakness of the onsets.
        "rhythm_complexity" => {
            if onsets.is_empty() {
                0.0
            } else {
                onsets
                    .iter()
                    .map(|&(s, _)| metrical_weakness(s))
                    .sum::<f64>()
                    / n
            }
        }
        "syncopation_8th" => per_onset(
            onsets
                .iter()
                .filter(|&&(s, _)| s % 4 == 2 && !onset_at(s - 1) && !onset_at(s - 2))
                .count(),
        ),
        "syncopation_16th" => per_onset(
            onsets
                .iter()
                .filter(|&&(s, _)| s % 2 == 1 && !onset_at(s - 1))
                .count(),
        ),
        "mean_pitch" => {
            if onsets.is_empty() {
                0.0
            } else {
                pitches().sum::<f64>() / n
            }
        }
        "pitch_range" => pitches()
            .fold(None, |r: Option<(f64, f64)>, p| {
                Some(r.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))))
            })
            .map_or(0.0, |(lo, hi)| hi - lo),
        "c_diatonic" => per_onset(
            onsets
                .iter()
                .filter(|&&(_, p)| [0, 2, 4, 5, 7, 9, 11].contains(&(p % 12)))
                .count(),
        ),
        "average_interval" => {
            if onsets.len() < 2 {
                0.0
            } else {
                intervals().map(f64::abs).sum::<f64>() / (n - 1.0)
            }
        }
        // The balance of rising against falling steps, from -1 to 1.
        "contour" => {
            if onsets.len() < 2 {
                0.0
            } else {
                intervals().map(f64::signum).sum::<f64>() / (n - 1.0)
            }
        }
        _ => return None,
    })
}

/// The drum groups the densities count, as classes of [`drums::CLASSES`].
const KICK: &[usize] = &[0];
const SNARE: &[usize] = &[1];
const HATS: &[usize] = &[2, 3];
const TOMS: &[usize] = &[4, 5, 6];
const CYMBALS: &[usize] = &[7, 8];

fn drum_attribute(name: &str, events: &[Event]) -> Option<f64> {
    let steps = events.len().max(1) as f64;
    // (step, class) of every hit.
    let hits: Vec<(usize, usize)> = events
        .iter()
        .enumerate()
        .flat_map(|(s, &e)| classes_in(e).map(move |c| (s, c)))
        .collect();
    let count = |group: &[usize]| hits.iter().filter(|&&(_, c)| group.contains(&c)).count() as f64;
    let share = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
    let on_backbeat = |s: usize| s % STEPS_PER_BAR == 4 || s % STEPS_PER_BAR == 12;
    let snares = || hits.iter().filter(|&&(_, c)| SNARE.contains(&c));
    Some(match name {
        // Steps with a hit of the group, per step.
        "kick_density" => count(KICK) / steps,
        "snare_density" => count(SNARE) / steps,
        "hat_density" => {
            events
                .iter()
                .filter(|&&e| HATS.iter().any(|&c| e >> c & 1 == 1))
                .count() as f64
                / steps
        }
        "tom_density" => {
            events
                .iter()
                .filter(|&&e| TOMS.iter().any(|&c| e >> c & 1 == 1))
                .count() as f64
                / steps
        }
        "cymbal_density" => {
            events
                .iter()
                .filter(|&&e| CYMBALS.iter().any(|&c| e >> c & 1 == 1))
                .count() as f64
                / steps
        }
        // The mean metrical weakness of the kick and snare hits, which carry the rhythm
        // (hats on every 8th or 16th are not syncopation).
        "drum_syncopation" => {
            let weakness: Vec<f64> = hits
                .iter()
                .filter(|&&(_, c)| c <= 1)
                .map(|&(s, _)| metrical_weakness(s))
                .collect();
            share(weakness.iter().sum(), weakness.len() as f64)
        }
        // How much of a backbeat there is: the share of beats 2 and 4 with a snare, times
        // the share of the snare's hits that fall on them. 1 is a pure backbeat.
        "backbeat" => {
            let backbeats = (0..events.len()).filter(|&s| on_backbeat(s)).count() as f64;
            let on = snares().filter(|&&(s, _)| on_backbeat(s)).count() as f64;
            share(on, backbeats) * share(on, snares().count() as f64)
        }
        // How fill-like: the share of the hits that are toms, or snares off the backbeat,
        // rather than time-keeping (kick, hats, cymbals, backbeat snare).
        "fill" => share(
            count(TOMS) + snares().filter(|&&(s, _)| !on_backbeat(s)).count() as f64,
            hits.len() as f64,
        ),
        _ => return None,
    })
}

/// `(step, pitch)` of every note-on.
fn onsets(events: &[Event]) -> Vec<(usize, u8)> {
    events
        .iter()
        .enumerate()
        .filter_map(|(s, &e)| class_pitch(e).map(|p| (s, p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::melody::{self, Note};

    fn events(notes: &[(u8, u32, u32)]) -> Vec<Event> {
        let notes: Vec<Note> = notes
            .iter()
            .map(|&(pitch, start, end)| Note { pitch, start, end })
            .collect();
        melody::encode(&notes, 32)
    }

    #[test]
    fn attributes_follow_their_definitions() {
        // C4 on the downbeat, E4 on the off-16th 3, G4 on the 8th off-beat 6, C5 on beat 2 of bar 2.
        let e = events(&[(60, 0, 2), (64, 3, 5), (67, 6, 8), (72, 20, 24)]);
        let m = |name| measure(Encoding::Melody, name, &e).unwrap();
        assert_eq!(m("note_density"), 4.0 / 32.0);
        assert_eq!(m("mean_pitch"), (60.0 + 64.0 + 67.0 + 72.0) / 4.0);
        assert_eq!(m("pitch_range"), 12.0);
        assert_eq!(m("c_diatonic"), 1.0);
        assert_eq!(m("average_interval"), (4.0 + 3.0 + 5.0) / 3.0);
        assert_eq!(m("contour"), 1.0);
        // Step 3 is odd with nothing on step 2; step 6 is 2 mod 4 with nothing on 4 and 5.
        assert_eq!(m("syncopation_16th"), 0.25);
        assert_eq!(m("syncopation_8th"), 0.25);
        assert_eq!(m("rhythm_complexity"), (0.0 + 1.0 + 0.75 + 0.5) / 4.0);
        assert_eq!(measure(Encoding::Melody, "loudness", &e), None);
        assert_eq!(measure(Encoding::Melody, "backbeat", &e), None);
        for name in MELODY {
            assert_eq!(
                measure(Encoding::Melody, name, &[0; 32]),
                Some(0.0),
                "{name} of silence"
            );
        }
    }

    #[test]
    fn drum_attributes_follow_their_definitions() {
        use crate::music::drums::{encode, Hit};
        let hit = |step, class| Hit { step, class };
        // A rock beat over one bar: kick on 1 and 3, snare on 2 and 4, closed hats on 8ths.
        let mut rock: Vec<Hit> = (0..16).step_by(2).map(|s| hit(s, 2)).collect();
        rock.extend([hit(0, 0), hit(8, 0), hit(4, 1), hit(12, 1)]);
        let e = encode(&rock, 16);
        let m = |name| measure(Encoding::Drums, name, &e).unwrap();
        assert_eq!(
            (m("kick_density"), m("snare_density"), m("hat_density")),
            (2.0 / 16.0, 2.0 / 16.0, 8.0 / 16.0)
        );
        assert_eq!((m("tom_density"), m("cymbal_density")), (0.0, 0.0));
        assert_eq!(m("backbeat"), 1.0);
        assert_eq!(m("fill"), 0.0);
        // Kicks 0 and 0.25, snares 0.5 and 0.5.
        assert_eq!(m("drum_syncopation"), (0.0 + 0.25 + 0.5 + 0.5) / 4.0);
        // A fill: a snare roll into toms, a crash on the next downbeat.
        let fill = encode(
            &[
                hit(8, 1),
                hit(9, 1),
                hit(10, 1),
                hit(11, 1),
                hit(12, 6),
                hit(13, 5),
                hit(14, 4),
                hit(15, 4),
                hit(16, 7),
                hit(16, 0),
            ],
            32,
        );
        let f = |name| measure(Encoding::Drums, name, &fill).unwrap();
        assert_eq!(f("fill"), 8.0 / 10.0);
        assert_eq!(f("backbeat"), 0.0);
        assert_eq!(f("tom_density"), 4.0 / 32.0);
        assert_eq!(f("cymbal_density"), 1.0 / 32.0);
        assert!(f("drum_syncopation") > m("drum_syncopation"));
        for name in DRUMS {
            assert_eq!(
                measure(Encoding::Drums, name, &[crate::music::drums::NO_HITS; 32]),
                Some(0.0),
                "{name} of silence"
            );
        }
        assert_eq!(measure(Encoding::Drums, "note_density", &e), None);
    }
}
