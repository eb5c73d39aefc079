//! What crosses from the inference worker to the audio thread.
//!
//! A [`Phrase`] is a fixed-size `Copy` value that crosses through a triple buffer: the
//! worker always writes the newest one, `process()` always reads the newest, neither ever
//! waits, and no phrase is heap memory the audio thread would have to free. Only the
//! newest phrase matters, so there is no queue that could fill up with stale ones while
//! the audio thread is not running (between an activation and its first block, say):
//! a phrase written is a phrase delivered.

use crate::music::melody::Note;

/// The most notes a phrase holds; more than a 16-bar melody of 16ths.
pub const MAX_NOTES: usize = 256;

/// One note of a phrase, in 16th steps from the phrase start; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhraseNote {
    pub pitch: u8,
    pub start: u16,
    pub end: u16,
}

/// A looping phrase: monophonic notes sorted by start, not overlapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phrase {
    notes: [PhraseNote; MAX_NOTES],
    len: u16,
    /// Loop length in 16th steps.
    pub steps: u16,
    /// Counts the worker's decodes, so the audio thread and tests can tell phrases apart.
    pub generation: u64,
}

impl Default for Phrase {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Phrase {
    /// Silence, 2 bars long.
    pub const EMPTY: Phrase = Phrase { notes: [PhraseNote { pitch: 0, start: 0, end: 0 }; MAX_NOTES], len: 0, steps: 32, generation: 0 };

    /// No notes, `steps` long.
    pub const fn silent(steps: u16, generation: u64) -> Self {
        Phrase { steps, generation, ..Self::EMPTY }
    }

    /// Builds a phrase from decoded melody notes. Notes are sorted, cut so they don't
    /// overlap and clipped to `steps`; empty notes and anything past [`MAX_NOTES`] are
    /// dropped.
    pub fn from_notes(notes: &[Note], steps: usize, generation: u64) -> Self {
        let steps = steps.clamp(1, u16::MAX as usize) as u16;
        let mut sorted: Vec<Note> = notes.to_vec();
        sorted.sort_by_key(|n| (n.start, n.end));
        let mut phrase = Self::silent(steps, generation);
        for (i, note) in sorted.iter().enumerate() {
            let next_start = sorted.get(i + 1).map_or(u32::MAX, |n| n.start);
            let start = note.start.min(steps as u32);
            let end = note.end.min(next_start).min(steps as u32);
            if end <= start {
                continue;
            }
            phrase.push(PhraseNote { pitch: note.pitch.min(127), start: start as u16, end: end as u16 });
        }
        phrase
    }

    /// Appends a note that starts after the last one; dropped when the phrase is full.
    /// Real-time safe.
    pub fn push(&mut self, note: PhraseNote) {
        debug_assert!(self.notes().last().is_none_or(|last| last.end <= note.start));
        if (self.len as usize) < MAX_NOTES {
            self.notes[self.len as usize] = note;
            self.len += 1;
        }
    }

    /// The notes as melody notes (for encoding and MIDI export).
    pub fn melody_notes(&self) -> Vec<Note> {
        self.notes().iter().map(|n| Note { pitch: n.pitch, start: n.start as u32, end: n.end as u32 }).collect()
    }

    pub fn notes(&self) -> &[PhraseNote] {
        &self.notes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The two ends of the worker-to-audio hand-off.
pub fn phrase_channel() -> (PhrasePublisher, PhraseConsumer) {
    let (input, output) = triple_buffer::triple_buffer(&Phrase::EMPTY);
    (PhrasePublisher { input }, PhraseConsumer { output })
}

/// The worker's end.
pub struct PhrasePublisher {
    input: triple_buffer::Input<Phrase>,
}

impl PhrasePublisher {
    /// Makes `phrase` the newest; the audio thread takes it at its next block.
    pub fn publish(&mut self, phrase: Phrase) {
        self.input.write(phrase);
    }
}

/// The audio thread's end: wait-free, allocation-free.
pub struct PhraseConsumer {
    output: triple_buffer::Output<Phrase>,
}

impl PhraseConsumer {
    /// Copies the newest phrase into `slot` if one was published since the last call;
    /// whether one was.
    pub fn pop_newest(&mut self, slot: &mut Phrase) -> bool {
        if !self.output.update() {
            return false;
        }
        *slot = *self.output.output_buffer();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_notes_sorts_cuts_and_clips() {
        let notes = [
            Note { pitch: 64, start: 4, end: 12 },
            Note { pitch: 60, start: 0, end: 8 },
            Note { pitch: 67, start: 30, end: 40 },
            Note { pitch: 70, start: 40, end: 44 },
        ];
        let p = Phrase::from_notes(&notes, 32, 7);
        assert_eq!(p.steps, 32);
        assert_eq!(p.generation, 7);
        assert_eq!(
            p.notes(),
            &[
                PhraseNote { pitch: 60, start: 0, end: 4 },
                PhraseNote { pitch: 64, start: 4, end: 12 },
                PhraseNote { pitch: 67, start: 30, end: 32 },
            ]
        );
    }

    #[test]
    fn from_notes_keeps_at_most_max_notes() {
        let notes: Vec<Note> = (0..400).map(|i| Note { pitch: 60, start: i, end: i + 1 }).collect();
        assert_eq!(Phrase::from_notes(&notes, 400, 0).notes().len(), MAX_NOTES);
    }

    #[test]
    fn consumer_keeps_the_newest() {
        let (mut publisher, mut consumer) = phrase_channel();
        let mut slot = Phrase::EMPTY;
        assert!(!consumer.pop_newest(&mut slot));
        // However many are published unread, the newest arrives and nothing blocks.
        for generation in 1..=100 {
            publisher.publish(Phrase { generation, ..Phrase::EMPTY });
        }
        assert!(consumer.pop_newest(&mut slot));
        assert_eq!(slot.generation, 100);
        assert!(!consumer.pop_newest(&mut slot), "each phrase arrives once");
    }
}
