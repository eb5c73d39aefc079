//! The phrase a model's decode becomes, as a player reads it: a fixed-size `Copy` value
//! of notes or drum hits, with their feel, that a real-time thread can hold and copy
//! without touching the heap.

use crate::music::drums::{self, Hit};
use crate::music::groove::Feel;
use crate::music::key::Key;
use crate::music::melody::Note;
use crate::music::Encoding;

/// The most notes a phrase holds: a 16-bar melody of 16ths, or four bars of drums with
/// four hits on every step.
pub const MAX_NOTES: usize = 1024;

/// One note of a phrase, in 16th steps from the phrase start; `end` is exclusive.
/// In a drum phrase `pitch` is the drum class ([`drums::CLASSES`]): the audio thread
/// plays it as the note the kit mapping gives the class.
///
/// A drum hit can carry a feel, which the `Groove` amount blends in: `velocity` (1..=127;
/// 0 when it has none and plays its accent) and `shift`, where it lands around its step,
/// in steps (`-0.5..=0.5`, negative early), as in [`Feel`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhraseNote {
    pub pitch: u8,
    pub start: u16,
    pub end: u16,
    pub velocity: u8,
    pub shift: f32,
}

impl PhraseNote {
    /// A note without a feel.
    pub const fn new(pitch: u8, start: u16, end: u16) -> Self {
        Self {
            pitch,
            start,
            end,
            velocity: 0,
            shift: 0.0,
        }
    }
}

/// A looping phrase, its notes sorted by start: a melody's never overlap, a drum
/// phrase's hits are a step long, several to a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phrase {
    notes: [PhraseNote; MAX_NOTES],
    len: u16,
    /// Loop length in 16th steps.
    pub steps: u16,
    /// Counts the worker's decodes, so the audio thread and tests can tell phrases apart.
    pub generation: u64,
    pub encoding: Encoding,
    /// Decoded for a new chord heard with `Chord Follow` on Beat: it takes over at the
    /// next beat rather than at the swap point.
    pub swap_on_beat: bool,
    /// A melody's tonic as a pitch (its key's tonic, Krumhansl-Kessler, at or below its
    /// first note): the note a trigger note stands for. `None` for drums and silence.
    pub tonic: Option<u8>,
}

impl Default for Phrase {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Phrase {
    /// Silence, 2 bars long.
    pub const EMPTY: Phrase = Phrase {
        notes: [PhraseNote::new(0, 0, 0); MAX_NOTES],
        len: 0,
        steps: 32,
        generation: 0,
        encoding: Encoding::Melody,
        swap_on_beat: false,
        tonic: None,
    };

    /// No notes, `steps` long.
    pub const fn silent(steps: u16, generation: u64) -> Self {
        Phrase {
            steps,
            generation,
            ..Self::EMPTY
        }
    }

    /// Builds a phrase from decoded melody notes. Notes are sorted, cut so they don't
    /// overlap and clipped to `steps`; empty notes and anything past [`MAX_NOTES`] are
    /// dropped.
    pub fn from_notes(notes: &[Note], steps: usize, generation: u64) -> Self {
        let steps = steps.clamp(1, u16::MAX as usize) as u16;
        let mut sorted: Vec<Note> = notes.to_vec();
        sorted.sort_by_key(|n| (n.start, n.end));
        let mut phrase = Self::silent(steps, generation);
        phrase.tonic = Key::estimate(&sorted).and_then(|key| {
            let first = sorted.first()?.pitch;
            Some(first.saturating_sub((first + 12 - key.tonic % 12) % 12))
        });
        for (i, note) in sorted.iter().enumerate() {
            let next_start = sorted.get(i + 1).map_or(u32::MAX, |n| n.start);
            let start = note.start.min(steps as u32);
            let end = note.end.min(next_start).min(steps as u32);
            if end <= start {
                continue;
            }
            phrase.push(PhraseNote::new(
                note.pitch.min(127),
                start as u16,
                end as u16,
            ));
        }
        phrase
    }

    /// Builds a drum phrase from decoded hits, each a step long; hits past `steps` and
    /// past [`MAX_NOTES`] are dropped.
    pub fn from_drums(hits: &[Hit], steps: usize, generation: u64) -> Self {
        let steps = steps.clamp(1, u16::MAX as usize) as u16;
        let mut sorted: Vec<Hit> = hits
            .iter()
            .copied()
            .filter(|h| h.step < steps as u32 && (h.class as usize) < drums::NUM_DRUM_CLASSES)
            .collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut phrase = Self::silent(steps, generation);
        phrase.encoding = Encoding::Drums;
        for hit in sorted {
            phrase.push(PhraseNote::new(
                hit.class,
                hit.step as u16,
                hit.step as u16 + 1,
            ));
        }
        phrase
    }

    /// Gives a drum phrase's hits the feel `feel[step][class]` (a groove model's
    /// humanization of them): steps past `feel` keep their accent. NaN-safe.
    pub fn set_feel(&mut self, feel: &[[Feel; drums::NUM_DRUM_CLASSES]]) {
        let len = self.len as usize;
        for note in &mut self.notes[..len] {
            if let Some(f) = feel
                .get(note.start as usize)
                .and_then(|row| row.get(note.pitch as usize))
            {
                note.velocity = f.velocity.clamp(1, 127);
                note.shift = if f.shift.is_finite() {
                    f.shift.clamp(-0.5, 0.5)
                } else {
                    0.0
                };
            }
        }
    }

    /// Whether any note carries a feel.
    pub fn has_feel(&self) -> bool {
        self.notes().iter().any(|n| n.velocity > 0)
    }

    /// Appends a note that starts no earlier than the last one; dropped when the phrase
    /// is full. Real-time safe.
    pub fn push(&mut self, note: PhraseNote) {
        debug_assert!(self.notes().last().is_none_or(|last| match self.encoding {
            Encoding::Melody => last.end <= note.start,
            Encoding::Drums | Encoding::Groove => last.start <= note.start,
        }));
        if (self.len as usize) < MAX_NOTES {
            self.notes[self.len as usize] = note;
            self.len += 1;
        }
    }

    /// The notes as melody notes (for encoding and MIDI export): for a drum phrase, the
    /// drum class stands as the pitch.
    pub fn melody_notes(&self) -> Vec<Note> {
        self.notes()
            .iter()
            .map(|n| Note {
                pitch: n.pitch,
                start: n.start as u32,
                end: n.end as u32,
            })
            .collect()
    }

    /// A drum phrase's hits.
    pub fn drum_hits(&self) -> Vec<Hit> {
        self.notes()
            .iter()
            .map(|n| Hit {
                step: n.start as u32,
                class: n.pitch,
            })
            .collect()
    }

    pub fn notes(&self) -> &[PhraseNote] {
        &self.notes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_notes_sorts_cuts_and_clips() {
        let notes = [
            Note {
                pitch: 64,
                start: 4,
                end: 12,
            },
            Note {
                pitch: 60,
                start: 0,
                end: 8,
            },
            Note {
                pitch: 67,
                start: 30,
                end: 40,
            },
            Note {
                pitch: 70,
                start: 40,
                end: 44,
            },
        ];
        let p = Phrase::from_notes(&notes, 32, 7);
        assert_eq!(p.steps, 32);
        assert_eq!(p.generation, 7);
        assert_eq!(
            p.notes(),
            &[
                PhraseNote::new(60, 0, 4),
                PhraseNote::new(64, 4, 12),
                PhraseNote::new(67, 30, 32),
            ]
        );
    }

    #[test]
    fn from_notes_keeps_at_most_max_notes() {
        let notes: Vec<Note> = (0..1100)
            .map(|i| Note {
                pitch: 60,
                start: i,
                end: i + 1,
            })
            .collect();
        assert_eq!(Phrase::from_notes(&notes, 1100, 0).notes().len(), MAX_NOTES);
    }

    #[test]
    fn drum_phrases_keep_every_hit_of_a_step() {
        let hits = [
            Hit { step: 4, class: 1 },
            Hit { step: 0, class: 2 },
            Hit { step: 0, class: 0 },
            Hit { step: 0, class: 0 },
            Hit { step: 40, class: 7 },
        ];
        let p = Phrase::from_drums(&hits, 32, 3);
        assert_eq!(p.encoding, Encoding::Drums);
        assert_eq!(
            p.notes(),
            &[
                PhraseNote::new(0, 0, 1),
                PhraseNote::new(2, 0, 1),
                PhraseNote::new(1, 4, 5)
            ]
        );
        assert_eq!(
            p.drum_hits(),
            vec![
                Hit { step: 0, class: 0 },
                Hit { step: 0, class: 2 },
                Hit { step: 4, class: 1 }
            ]
        );
    }
}
