//! Clips A and B: the melodies a musician captured, their latent means, and the
//! persisted store that saves them in the host's project.
//!
//! The worker is the only writer (it encodes a capture, then stores it); the host's state
//! restore is the other (nice-plug's `#[persist]`). Both bump [`Persisted::revision`], so
//! the worker notices a restored project by polling one atomic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use nice_plug::params::persist::PersistentField;
use serde::{Deserialize, Serialize};

use crate::music::melody::{self, Note};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    A,
    B,
}

/// Where a clip came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClipSource {
    /// Notes played into the plugin.
    Input,
    /// The phrase that was playing.
    Playing,
    /// A MIDI file (its path when captured).
    File(String),
}

/// A captured melody and where it sits in the latent space of the model that encoded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Sorted, non-overlapping notes on the 16th grid.
    pub notes: Vec<Note>,
    /// Length in 16th steps.
    pub steps: u32,
    pub source: ClipSource,
    /// The encoder's mean for this clip (the point morphs start and end at).
    pub mu: Vec<f32>,
    /// The model that produced `mu`; another model re-encodes the notes.
    pub model: String,
}

impl Clip {
    /// The clip as `steps` model events: repeated when shorter (a 2-bar riff fills a 4-bar
    /// model), cut when longer, pitches folded by octaves into the model's range.
    pub fn events(&self, steps: usize, min_pitch: u8, max_pitch: u8) -> Vec<u8> {
        let period = self.steps.max(1);
        let mut notes = Vec::new();
        for repeat in 0.. {
            let offset = repeat * period;
            if offset as usize >= steps {
                break;
            }
            notes.extend(self.notes.iter().map(|n| Note {
                pitch: fold_pitch(n.pitch, min_pitch, max_pitch),
                start: n.start + offset,
                end: n.end.min(period) + offset,
            }));
        }
        melody::encode(&notes, steps)
    }
}

/// Moves a pitch by octaves into `min..=max` (clamps when the range is under an octave).
pub fn fold_pitch(pitch: u8, min: u8, max: u8) -> u8 {
    let mut p = pitch as i32;
    while p < min as i32 && p + 12 <= max as i32 {
        p += 12;
    }
    while p > max as i32 && p - 12 >= min as i32 {
        p -= 12;
    }
    p.clamp(min as i32, max as i32) as u8
}

/// Both clips, as saved in the host's project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clips {
    pub a: Option<Clip>,
    pub b: Option<Clip>,
}

impl Clips {
    pub fn get(&self, slot: Slot) -> Option<&Clip> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    pub fn set(&mut self, slot: Slot, clip: Option<Clip>) {
        match slot {
            Slot::A => self.a = clip,
            Slot::B => self.b = clip,
        }
    }
}

/// A value saved with the plugin's state, with a revision counter that moves on every
/// change, so readers on other threads can poll for changes without taking the lock.
/// Never touched by the audio thread.
#[derive(Debug, Default)]
pub struct Persisted<T> {
    value: RwLock<T>,
    revision: AtomicU64,
}

impl<T: Clone> Persisted<T> {
    pub fn new(value: T) -> Self {
        Self { value: RwLock::new(value), revision: AtomicU64::new(0) }
    }

    pub fn get(&self) -> T {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Changes the value; returns its new revision.
    pub fn update(&self, f: impl FnOnce(&mut T)) -> u64 {
        let mut value = self.value.write().unwrap_or_else(|e| e.into_inner());
        f(&mut value);
        // Bumped under the lock: a revision read after the write names this value.
        self.revision.fetch_add(1, Ordering::AcqRel) + 1
    }
}

impl<'a, T> PersistentField<'a, T> for Persisted<T>
where
    T: Serialize + Deserialize<'a> + Clone + Send + Sync,
{
    fn set(&self, new_value: T) {
        self.update(|value| *value = new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&T) -> R,
    {
        f(&self.value.read().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(notes: &[(u8, u32, u32)], steps: u32) -> Clip {
        Clip {
            notes: notes.iter().map(|&(pitch, start, end)| Note { pitch, start, end }).collect(),
            steps,
            source: ClipSource::Input,
            mu: vec![],
            model: String::new(),
        }
    }

    #[test]
    fn short_clips_repeat_and_pitches_fold_into_range() {
        let c = clip(&[(60, 0, 4), (120, 8, 16)], 16);
        let events = c.events(32, 21, 108);
        let notes = melody::decode(&events);
        assert_eq!(
            notes,
            vec![
                Note { pitch: 60, start: 0, end: 4 },
                Note { pitch: 108, start: 8, end: 16 },
                Note { pitch: 60, start: 16, end: 20 },
                Note { pitch: 108, start: 24, end: 32 },
            ]
        );
        assert_eq!(fold_pitch(5, 21, 108), 29);
        assert_eq!(fold_pitch(127, 21, 108), 103);
    }

    #[test]
    fn long_clips_are_cut() {
        let c = clip(&[(60, 0, 40), (62, 40, 64)], 64);
        assert_eq!(melody::decode(&c.events(32, 21, 108)), vec![Note { pitch: 60, start: 0, end: 32 }]);
    }

    #[test]
    fn persisted_values_count_revisions_and_round_trip_through_serde() {
        let store = Persisted::new(Clips::default());
        assert_eq!(store.revision(), 0);
        store.update(|c| c.set(Slot::B, Some(clip(&[(64, 0, 2)], 32))));
        assert_eq!(store.revision(), 1);
        let json = store.map(|c| serde_json::to_string(c).unwrap());
        let restored = Persisted::new(Clips::default());
        PersistentField::set(&restored, serde_json::from_str::<Clips>(&json).unwrap());
        assert_eq!(restored.revision(), 1);
        assert_eq!(restored.get(), store.get());
        assert!(restored.get().get(Slot::A).is_none());
    }
}
