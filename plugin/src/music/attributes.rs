//! Musical attributes of a melody (an event sequence), as the MusicVAE paper and
//! AR-VAE (Pati and Lerch) define them: what analysis correlates the latent dimensions
//! with, and what attribute vectors move.

use crate::music::melody::{class_pitch, STEPS_PER_BAR};
use crate::music::Event;

/// Every attribute, by the name used in model metadata and reports.
pub const ALL: [&str; 9] = [
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

/// Attribute `name` of `events`, or `None` for an unknown name.
pub fn measure(name: &str, events: &[Event]) -> Option<f64> {
    let onsets = onsets(events);
    let n = onsets.len() as f64;
    let pitches = || onsets.iter().map(|&(_, p)| p as f64);
    let intervals = || onsets.windows(2).map(|w| w[1].1 as f64 - w[0].1 as f64);
    let per_onset = |count: usize| if onsets.is_empty() { 0.0 } else { count as f64 / n };
    let onset_at = |step: usize| onsets.iter().any(|&(s, _)| s == step);
    Some(match name {
        "note_density" => n / events.len().max(1) as f64,
        // The mean metrical weakness of the onsets: 0 on downbeats, 1/4 on the half bar,
        // 1/2 on beats, 3/4 on 8ths, 1 on 16ths.
        "rhythm_complexity" => {
            let weakness = |s: usize| match s % STEPS_PER_BAR {
                0 => 0.0,
                8 => 0.25,
                4 | 12 => 0.5,
                s if s % 2 == 0 => 0.75,
                _ => 1.0,
            };
            if onsets.is_empty() { 0.0 } else { onsets.iter().map(|&(s, _)| weakness(s)).sum::<f64>() / n }
        }
        "syncopation_8th" => per_onset(onsets.iter().filter(|&&(s, _)| s % 4 == 2 && !onset_at(s - 1) && !onset_at(s - 2)).count()),
        "syncopation_16th" => per_onset(onsets.iter().filter(|&&(s, _)| s % 2 == 1 && !onset_at(s - 1)).count()),
        "mean_pitch" => if onsets.is_empty() { 0.0 } else { pitches().sum::<f64>() / n },
        "pitch_range" => pitches().fold(None, |r: Option<(f64, f64)>, p| Some(r.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))))).map_or(0.0, |(lo, hi)| hi - lo),
        "c_diatonic" => per_onset(onsets.iter().filter(|&&(_, p)| [0, 2, 4, 5, 7, 9, 11].contains(&(p % 12))).count()),
        "average_interval" => if onsets.len() < 2 { 0.0 } else { intervals().map(f64::abs).sum::<f64>() / (n - 1.0) },
        // The balance of rising against falling steps, from -1 to 1.
        "contour" => if onsets.len() < 2 { 0.0 } else { intervals().map(f64::signum).sum::<f64>() / (n - 1.0) },
        _ => return None,
    })
}

/// `(step, pitch)` of every note-on.
fn onsets(events: &[Event]) -> Vec<(usize, u8)> {
    events.iter().enumerate().filter_map(|(s, &e)| class_pitch(e).map(|p| (s, p))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::melody::{self, Note};

    fn events(notes: &[(u8, u32, u32)]) -> Vec<Event> {
        let notes: Vec<Note> = notes.iter().map(|&(pitch, start, end)| Note { pitch, start, end }).collect();
        melody::encode(&notes, 32)
    }

    #[test]
    fn attributes_follow_their_definitions() {
        // C4 on the downbeat, E4 on the off-16th 3, G4 on the 8th off-beat 6, C5 on beat 2 of bar 2.
        let e = events(&[(60, 0, 2), (64, 3, 5), (67, 6, 8), (72, 20, 24)]);
        let m = |name| measure(name, &e).unwrap();
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
        assert_eq!(measure("loudness", &e), None);
        for name in ALL {
            assert_eq!(measure(name, &[0; 32]), Some(0.0), "{name} of silence");
        }
    }
}
