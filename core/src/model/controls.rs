//! Melody controls: per-step signals taken from a melody that a model is conditioned on
//! beside its chords, as magenta.js's `MelodyRhythm`, `MelodyShape` and `MelodyRegister`
//! extract them (its `extraControls`). A model trained with them reads them from each
//! training melody; decoding, they come from the melody whose rhythm, contour and register
//! the new one is to follow (in the plugin, the captured clip).

use serde::{Deserialize, Serialize};

use crate::music::melody::{self, Note};
use crate::music::Event;

/// One control signal, in the order a model reads them after its chord.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MelodyControl {
    /// 1 on the steps where a note starts, else 0.
    Rhythm,
    /// Each step one-hot as down, same or up: the move from the last note to the next.
    Shape,
    /// The bucket of the melody's mean pitch (weighted by how long each sounds) among
    /// `boundaries`, one-hot at every step; all zero for a melody with no notes.
    Register { boundaries: Vec<u8> },
}

impl MelodyControl {
    /// Values per step.
    pub fn depth(&self) -> usize {
        match self {
            Self::Rhythm => 1,
            Self::Shape => 3,
            Self::Register { boundaries } => boundaries.len() + 1,
        }
    }

    /// This signal of `melody` (events of a model whose lowest pitch is `min_pitch`),
    /// `[steps][depth]` row-major.
    pub fn of(&self, melody: &[Event], min_pitch: u8) -> Vec<f32> {
        let steps = melody.len();
        let depth = self.depth();
        let mut rows = vec![0.0f32; steps * depth];
        let onset = |e: Event| e > melody::NOTE_OFF;
        match self {
            Self::Rhythm => {
                for (t, &e) in melody.iter().enumerate() {
                    rows[t] = f32::from(u8::from(onset(e)));
                }
            }
            Self::Shape => {
                // Each onset marks the steps since the one before with the move that led to
                // it; the steps before the second onset take the first move, those after
                // the last repeat it, and a melody with no move is "same" throughout.
                let marked =
                    |rows: &[f32], t: usize| rows[t * 3..t * 3 + 3].iter().any(|&v| v > 0.0);
                let mut last: Option<(usize, Event)> = None;
                let mut moved = false;
                for (t, &e) in melody.iter().enumerate() {
                    if !onset(e) {
                        continue;
                    }
                    if let Some((from, pitch)) = last {
                        let direction = match e.cmp(&pitch) {
                            std::cmp::Ordering::Less => 0,
                            std::cmp::Ordering::Equal => 1,
                            std::cmp::Ordering::Greater => 2,
                        };
                        let start = if marked(&rows, from) { from + 1 } else { 0 };
                        for s in start..=t {
                            rows[s * 3 + direction] = 1.0;
                        }
                        moved = true;
                    }
                    last = Some((t, e));
                }
                match last {
                    Some((from, _)) if from + 1 < steps && moved => {
                        let tail: [f32; 3] = rows[from * 3..from * 3 + 3].try_into().unwrap();
                        for s in from + 1..steps {
                            rows[s * 3..s * 3 + 3].copy_from_slice(&tail);
                        }
                    }
                    Some((from, _)) if from + 1 == steps => {}
                    _ => {
                        for s in 0..steps {
                            rows[s * 3 + 1] = 1.0;
                        }
                    }
                }
            }
            Self::Register { boundaries } => {
                let (mut sum, mut count) = (0.0f64, 0usize);
                let mut sounding: Option<u8> = None;
                for &e in melody {
                    if e == melody::NOTE_OFF {
                        sounding = None;
                    } else if onset(e) {
                        sounding = Some(min_pitch.saturating_add((e - 2) as u8));
                    }
                    if let Some(pitch) = sounding {
                        sum += f64::from(pitch);
                        count += 1;
                    }
                }
                if count > 0 {
                    let mean = sum / count as f64;
                    let bucket = boundaries
                        .iter()
                        .take_while(|&&b| mean >= f64::from(b))
                        .count();
                    for t in 0..steps {
                        rows[t * depth + bucket] = 1.0;
                    }
                }
            }
        }
        rows
    }
}

/// The melody a model with melody controls follows when it is given none: two bars of
/// quarters and eighths that rise and fall around middle C (C D E G | E D C, held),
/// repeated over longer models.
pub fn default_reference(steps: usize) -> Vec<Event> {
    const BARS: [(u8, u32, u32); 7] = [
        (60, 0, 4),
        (62, 4, 8),
        (64, 8, 10),
        (67, 10, 16),
        (64, 16, 20),
        (62, 20, 24),
        (60, 24, 32),
    ];
    let notes: Vec<Note> = (0..steps.div_ceil(32) as u32)
        .flat_map(|k| {
            BARS.iter().map(move |&(pitch, start, end)| Note {
                pitch,
                start: start + 32 * k,
                end: end + 32 * k,
            })
        })
        .filter(|n| (n.start as usize) < steps)
        .map(|n| Note {
            end: n.end.min(steps as u32),
            ..n
        })
        .collect();
    melody::encode(&notes, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// magenta.js's melody events (0 no event, 1 note off, 2 + pitch - min) are ours.
    const MIN: u8 = 60;

    fn argmax(rows: &[f32], depth: usize) -> Vec<usize> {
        rows.chunks(depth)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                    .unwrap()
                    .0
            })
            .collect()
    }

    // The expected values are magenta.js's own unit tests of these controls
    // (melodies_test.ts).
    #[test]
    fn rhythm_marks_onsets() {
        let rows = MelodyControl::Rhythm.of(&[0, 2, 0, 1, 4, 6, 9, 1], MIN);
        assert_eq!(rows, [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn shape_marks_each_move_back_to_the_one_before() {
        let rows = MelodyControl::Shape.of(&[0, 2, 0, 6, 6, 2, 9, 1], MIN);
        assert_eq!(argmax(&rows, 3), [2, 2, 2, 2, 1, 0, 2, 2]);
        assert!(rows.chunks(3).all(|r| r.iter().sum::<f32>() == 1.0));
    }

    #[test]
    fn shape_without_a_move_is_same() {
        let rows = MelodyControl::Shape.of(&[0, 5, 0, 0], MIN);
        assert_eq!(argmax(&rows, 3), [1, 1, 1, 1]);
        let rows = MelodyControl::Shape.of(&[0, 0, 0, 0], MIN);
        assert_eq!(argmax(&rows, 3), [1, 1, 1, 1]);
    }

    #[test]
    fn register_buckets_the_mean_pitch() {
        let register = MelodyControl::Register {
            boundaries: vec![60, 63, 72],
        };
        let rows = register.of(&[0, 2, 0, 0, 4, 6, 6, 1], MIN);
        assert_eq!(argmax(&rows, 4), [1; 8]);
        assert_eq!(register.of(&[0, 1, 0], MIN), [0.0; 12]);
    }

    #[test]
    fn the_default_reference_fills_any_length() {
        for steps in [16, 32, 64, 256] {
            let events = default_reference(steps);
            assert_eq!(events.len(), steps);
            assert_eq!(
                events[0],
                melody::encode(
                    &[Note {
                        pitch: 60,
                        start: 0,
                        end: 1
                    }],
                    1
                )[0]
            );
        }
    }
}
