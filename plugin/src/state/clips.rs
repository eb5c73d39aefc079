//! Clips A to D: the melodies a musician captured, their latent means, and the
//! persisted store that saves them in the host's project.
//!
//! The worker is the only writer (it encodes a capture, then stores it); the host's state
//! restore is the other (nice-plug's `#[persist]`, after [`crate::state::migrate`]
//! has passed the clips through [`Clips::validated`]). Both bump [`Persisted::revision`],
//! so the worker notices a restored project by polling one atomic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use nice_plug::params::persist::PersistentField;
use serde::{Deserialize, Serialize};

use latent_live_core::model::MAX_STEPS;
use latent_live_core::music::chord::Chord;
use latent_live_core::music::drums::{self, Hit};
use latent_live_core::music::melody::{self, Note};
use latent_live_core::music::phrase::MAX_NOTES;
use latent_live_core::music::{Encoding, Event};

/// The longest source path a clip keeps (Linux's `PATH_MAX`): it is only ever shown.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// The longest latent mean a clip keeps: above any model's z (Magenta's largest is 512).
pub const MAX_MU: usize = 4096;

/// A clip's place: A and B at the XY pad's bottom corners (the A-B morph is its bottom
/// edge), C and D at its top ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    A,
    B,
    C,
    D,
}

impl Slot {
    pub const ALL: [Slot; 4] = [Slot::A, Slot::B, Slot::C, Slot::D];

    /// The slot's corner of the pad: (Pad X, Pad Y).
    pub fn corner(self) -> (f32, f32) {
        match self {
            Slot::A => (0.0, 0.0),
            Slot::B => (1.0, 0.0),
            Slot::C => (0.0, 1.0),
            Slot::D => (1.0, 1.0),
        }
    }

    /// Its letter, as the editor and messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
            Slot::C => "C",
            Slot::D => "D",
        }
    }
}

/// Where a clip came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClipSource {
    /// Notes played into the plugin.
    Input,
    /// The phrase that was playing.
    Playing,
    /// A rhythm tapped in, made a beat by the tap-to-drums model.
    Tap,
    /// A MIDI file (its path when captured). Only its file name is shown; it is never
    /// opened again.
    File(String),
}

/// A captured melody or groove and where it sits in the latent space of the model that
/// encoded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Sorted notes on the 16th grid: a melody's do not overlap; a groove's are hits a
    /// step long whose `pitch` is the drum class.
    pub notes: Vec<Note>,
    /// Length in 16th steps.
    pub steps: u32,
    pub source: ClipSource,
    /// The encoder's mean for this clip (the point morphs start and end at). Its length is
    /// checked against the loaded model's z where it is used: the worker encodes the notes
    /// again when the length or [`Clip::model`] does not match the weights loaded.
    pub mu: Vec<f32>,
    /// The weights that produced `mu`: their content hash (`ModelFile::hash`). Empty when
    /// unknown (a project from before version 1 of the state), which makes the worker
    /// encode the notes again.
    pub model: String,
    /// Melody or drums; projects from before drums hold melodies.
    #[serde(default)]
    pub encoding: Encoding,
    /// The chord of every step ([`Chord::code`]; 0 for none) when chords were played in
    /// with it, or the phrase captured played over them; else empty. What a chord model
    /// plays over when no chord is played.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chords: Vec<u16>,
}

impl Clip {
    /// The clip as model events, one a step, pitches folded by octaves into the model's
    /// range. The worker encodes only clips as long as the model's phrases.
    pub fn events(&self, min_pitch: u8, max_pitch: u8) -> Vec<Event> {
        let steps = self.steps as usize;
        match self.encoding {
            Encoding::Melody => {
                let notes: Vec<Note> = self
                    .notes
                    .iter()
                    .map(|n| Note {
                        pitch: fold_pitch(n.pitch, min_pitch, max_pitch),
                        ..*n
                    })
                    .collect();
                melody::encode(&notes, steps)
            }
            Encoding::Drums | Encoding::Groove => drums::encode(&self.hits(), steps),
        }
    }

    /// The clip's chords over `steps` model steps, repeated or cut (a progression loops
    /// under a longer phrase); `None` for a clip without chords.
    pub fn chords(&self, steps: usize) -> Option<Vec<Option<Chord>>> {
        if self.chords.is_empty() {
            return None;
        }
        let period = self.chords.len();
        Some(
            (0..steps)
                .map(|t| Chord::from_code(self.chords[t % period]).flatten())
                .collect(),
        )
    }

    /// Hits as a groove clip's notes: a step long, the drum class as the pitch.
    pub fn hit_notes(hits: &[Hit]) -> Vec<Note> {
        hits.iter()
            .map(|h| Note {
                pitch: h.class,
                start: h.step,
                end: h.step + 1,
            })
            .collect()
    }

    /// A groove's hits.
    pub fn hits(&self) -> Vec<Hit> {
        self.notes
            .iter()
            .map(|n| Hit {
                step: n.start,
                class: n.pitch,
            })
            .collect()
    }
}

impl Clip {
    /// The clip made safe to play, or `None` when nothing playable is left, with a message
    /// for each repair or drop. Restored clips pass through here: a project file may hold
    /// anything. Notes above pitch 127, empty or reversed, or outside the clip are dropped,
    /// one that runs past the clip's end is cut there, and overlapping ones are cut where
    /// the next starts (the clip is a monophonic line), so the notes come out sorted,
    /// non-overlapping and within `steps`.
    pub fn validated(mut self, slot: Slot) -> (Option<Clip>, Vec<String>) {
        let mut said = Vec::new();
        if !(1..=MAX_STEPS as u32).contains(&self.steps) {
            said.push(format!(
                "dropped: its length, {} steps, is not between 1 and {MAX_STEPS}",
                self.steps
            ));
            return (None, about(slot, said));
        }
        let steps = self.steps;
        if self.encoding == Encoding::Drums {
            return self.validated_groove(slot, said);
        }
        if !self.chords.is_empty()
            && (self.chords.len() != steps as usize
                || self.chords.iter().any(|&c| Chord::from_code(c).is_none()))
        {
            self.chords.clear();
            said.push("its chords do not fit it: dropped".into());
        }
        said.extend(drop_notes(
            &mut self.notes,
            |n| n.pitch <= 127,
            "above pitch 127",
        ));
        said.extend(drop_notes(
            &mut self.notes,
            |n| n.start < n.end,
            "with no length",
        ));
        said.extend(drop_notes(
            &mut self.notes,
            |n| n.start < steps,
            "outside the clip",
        ));
        let past_end = self
            .notes
            .iter_mut()
            .filter(|n| n.end > steps)
            .map(|n| n.end = steps)
            .count();
        if past_end > 0 {
            said.push(counted(past_end, "past the clip's end", "cut there"));
        }
        // Of notes that start together, the longest is last: the one the cuts below keep.
        if !self.notes.is_sorted_by_key(|n| (n.start, n.end)) {
            self.notes.sort_by_key(|n| (n.start, n.end));
            said.push("its notes were out of order and were sorted".into());
        }
        let mut overlapping = 0;
        for i in 1..self.notes.len() {
            let next_start = self.notes[i].start;
            let previous = &mut self.notes[i - 1];
            if previous.end > next_start {
                previous.end = next_start;
                overlapping += usize::from(previous.start < next_start);
            }
        }
        if overlapping > 0 {
            said.push(counted(
                overlapping,
                "overlapping the next",
                "cut where it starts",
            ));
        }
        // A cut at a note with the same start leaves nothing of the earlier one.
        said.extend(drop_notes(
            &mut self.notes,
            |n| n.start < n.end,
            "starting with another",
        ));
        self.validated_rest(slot, said)
    }

    /// [`Clip::validated`] for a groove: hits of classes past the nine are dropped, every
    /// hit is a step long, and a class hit twice on one step is one hit.
    fn validated_groove(
        mut self,
        slot: Slot,
        mut said: Vec<String>,
    ) -> (Option<Clip>, Vec<String>) {
        let steps = self.steps;
        // Drums have no chords.
        self.chords.clear();
        said.extend(drop_notes(
            &mut self.notes,
            |n| (n.pitch as usize) < drums::NUM_DRUM_CLASSES,
            "of no drum class",
        ));
        said.extend(drop_notes(
            &mut self.notes,
            |n| n.start < steps,
            "outside the clip",
        ));
        for n in &mut self.notes {
            n.end = n.start + 1;
        }
        if !self.notes.is_sorted_by_key(|n| (n.start, n.pitch)) {
            self.notes.sort_by_key(|n| (n.start, n.pitch));
            said.push("its hits were out of order and were sorted".into());
        }
        let before = self.notes.len();
        self.notes.dedup();
        if self.notes.len() < before {
            said.push(counted(
                before - self.notes.len(),
                "repeating a hit",
                "dropped",
            ));
        }
        self.validated_rest(slot, said)
    }

    /// What every clip is checked for once its notes are: a limit on notes, a finite
    /// mean, a source path of bounded length.
    fn validated_rest(mut self, slot: Slot, mut said: Vec<String>) -> (Option<Clip>, Vec<String>) {
        if self.notes.len() > MAX_NOTES {
            said.push(counted(
                self.notes.len() - MAX_NOTES,
                &format!("past the first {MAX_NOTES}"),
                "dropped",
            ));
            self.notes.truncate(MAX_NOTES);
        }
        if self.notes.is_empty() {
            said.push("dropped: no notes are left".into());
            return (None, about(slot, said));
        }
        if self.mu.len() > MAX_MU || self.mu.iter().any(|x| !x.is_finite()) {
            said.push(
                "its latent mean was not finite or too long: it is encoded again from its notes"
                    .into(),
            );
            self.mu.clear();
            self.model.clear();
        }
        if let ClipSource::File(path) = &mut self.source {
            if path.len() > MAX_SOURCE_BYTES {
                path.truncate(path.floor_char_boundary(MAX_SOURCE_BYTES));
                said.push(format!(
                    "its source path was cut to {MAX_SOURCE_BYTES} bytes"
                ));
            }
        }
        (Some(self), about(slot, said))
    }
}

/// Messages about the clip in `slot`.
fn about(slot: Slot, said: Vec<String>) -> Vec<String> {
    said.into_iter()
        .map(|s| format!("clip {slot:?}: {s}"))
        .collect()
}

/// Drops the notes `keep` rejects; says how many, if any.
fn drop_notes(notes: &mut Vec<Note>, keep: impl Fn(&Note) -> bool, which: &str) -> Option<String> {
    let before = notes.len();
    notes.retain(keep);
    (notes.len() < before).then(|| counted(before - notes.len(), which, "dropped"))
}

/// "1 note {which} was {done}", "3 notes {which} were {done}".
pub(crate) fn counted(count: usize, which: &str, done: &str) -> String {
    let (noun, verb) = if count == 1 {
        ("note", "was")
    } else {
        ("notes", "were")
    };
    format!("{count} {noun} {which} {verb} {done}")
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

/// The four clips, as saved in the host's project. C and D are left out while empty,
/// so that a two-clip project saves as it did before there were four.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clips {
    pub a: Option<Clip>,
    pub b: Option<Clip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<Clip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<Clip>,
}

impl Clips {
    pub fn get(&self, slot: Slot) -> Option<&Clip> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
            Slot::C => self.c.as_ref(),
            Slot::D => self.d.as_ref(),
        }
    }

    pub fn set(&mut self, slot: Slot, clip: Option<Clip>) {
        *self.slot_mut(slot) = clip;
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Option<Clip> {
        match slot {
            Slot::A => &mut self.a,
            Slot::B => &mut self.b,
            Slot::C => &mut self.c,
            Slot::D => &mut self.d,
        }
    }

    /// Every clip through [`Clip::validated`].
    pub fn validated(mut self) -> (Clips, Vec<String>) {
        let mut messages = Vec::new();
        let mut clips = Clips::default();
        for slot in Slot::ALL {
            let clip = self.slot_mut(slot).take();
            let (clip, said) = clip.map_or((None, Vec::new()), |clip| clip.validated(slot));
            clips.set(slot, clip);
            messages.extend(said);
        }
        (clips, messages)
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
        Self {
            value: RwLock::new(value),
            revision: AtomicU64::new(0),
        }
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
            notes: notes
                .iter()
                .map(|&(pitch, start, end)| Note { pitch, start, end })
                .collect(),
            steps,
            source: ClipSource::Input,
            mu: vec![],
            model: String::new(),
            chords: Vec::new(),
            encoding: Encoding::Melody,
        }
    }

    #[test]
    fn grooves_repeat_and_restored_hits_are_repaired() {
        let groove = Clip {
            encoding: Encoding::Drums,
            ..clip(
                &[
                    (0, 0, 1),
                    (2, 0, 1),
                    (1, 4, 1),
                    (1, 4, 9),
                    (12, 6, 7),
                    (8, 40, 41),
                ],
                16,
            )
        };
        let (repaired, said) = groove.validated(Slot::A);
        let repaired = repaired.expect("hits are left");
        assert_eq!(
            repaired.hits(),
            vec![
                Hit { step: 0, class: 0 },
                Hit { step: 0, class: 2 },
                Hit { step: 4, class: 1 }
            ]
        );
        assert_eq!(said.len(), 3, "{said:?}");
        let events = repaired.events(21, 108);
        assert_eq!(events.len(), 16);
        assert_eq!((events[0], events[4], events[5]), (0b101, 0b10, 0));
    }

    #[test]
    fn pitches_fold_into_range() {
        let c = clip(&[(60, 0, 4), (120, 8, 16)], 16);
        let notes = melody::decode(&c.events(21, 108));
        assert_eq!(
            notes,
            vec![
                Note {
                    pitch: 60,
                    start: 0,
                    end: 4
                },
                Note {
                    pitch: 108,
                    start: 8,
                    end: 16
                },
            ]
        );
        assert_eq!(fold_pitch(5, 21, 108), 29);
        assert_eq!(fold_pitch(127, 21, 108), 103);
    }

    #[test]
    fn validation_repairs_the_notes_and_says_what_it_did() {
        let notes = [
            (62, 4, 12),
            (200, 0, 2),
            (60, 0, 6),
            (64, 9, 9),
            (65, 12, 10),
            (67, 20, 40),
            (69, 40, 44),
            (71, 20, 22),
            (72, 4, 5),
        ];
        let (valid, said) = clip(&notes, 32).validated(Slot::A);
        let kept: Vec<(u8, u32, u32)> = valid
            .expect("notes are left")
            .notes
            .iter()
            .map(|n| (n.pitch, n.start, n.end))
            .collect();
        assert_eq!(kept, vec![(60, 0, 4), (62, 4, 12), (67, 20, 32)]);
        assert_eq!(
            said,
            [
                "clip A: 1 note above pitch 127 was dropped",
                "clip A: 2 notes with no length were dropped",
                "clip A: 1 note outside the clip was dropped",
                "clip A: 1 note past the clip's end was cut there",
                "clip A: its notes were out of order and were sorted",
                "clip A: 1 note overlapping the next was cut where it starts",
                "clip A: 2 notes starting with another were dropped",
            ]
        );
        // A valid clip passes unchanged and silently.
        let valid = clip(&[(60, 0, 4), (62, 4, 8)], 16);
        assert_eq!(valid.clone().validated(Slot::B), (Some(valid), vec![]));
    }

    #[test]
    fn validation_drops_clips_without_a_playable_length_or_notes() {
        for steps in [0, MAX_STEPS as u32 + 1, u32::MAX] {
            let (kept, said) = clip(&[(60, 0, 4)], steps).validated(Slot::B);
            assert!(kept.is_none());
            assert_eq!(
                said,
                [format!(
                    "clip B: dropped: its length, {steps} steps, is not between 1 and 256"
                )]
            );
        }
        // Far past the clip: `start + offset` in `events` never sees these.
        let (kept, said) =
            clip(&[(60, u32::MAX - 1, u32::MAX), (61, 300, 2)], 256).validated(Slot::A);
        assert!(kept.is_none());
        assert_eq!(
            said,
            [
                "clip A: 1 note with no length was dropped",
                "clip A: 1 note outside the clip was dropped",
                "clip A: dropped: no notes are left"
            ]
        );
    }

    #[test]
    fn validation_resets_a_bad_mean_and_caps_the_source_path() {
        let mut c = clip(&[(60, 0, 4)], 16);
        c.mu = vec![0.5, f32::NAN];
        c.model = "xxh3-0123456789abcdef".into();
        c.source = ClipSource::File(format!("/{}", "é".repeat(MAX_SOURCE_BYTES)));
        let (kept, said) = c.validated(Slot::A);
        let kept = kept.unwrap();
        assert!(
            kept.mu.is_empty() && kept.model.is_empty(),
            "encoded again by the worker"
        );
        let ClipSource::File(path) = &kept.source else {
            panic!("a file source")
        };
        assert!(path.len() <= MAX_SOURCE_BYTES && path.starts_with("/é"));
        assert_eq!(said.len(), 2, "{said:?}");
        let mut long = clip(&[(60, 0, 4)], 16);
        long.mu = vec![0.0; MAX_MU + 1];
        assert!(long.validated(Slot::B).0.unwrap().mu.is_empty());
        // A mean of another length is kept: the worker compares it with the model it loads.
        let mut other = clip(&[(60, 0, 4)], 16);
        other.mu = vec![0.25; 7];
        assert_eq!(other.clone().validated(Slot::B).0, Some(other));
    }

    #[test]
    fn both_clips_are_validated_and_an_empty_one_dropped() {
        let clips = Clips {
            a: Some(clip(&[(130, 0, 4)], 16)),
            b: Some(clip(&[(60, 0, 4)], 16)),
            d: Some(clip(&[(62, 0, 4)], 16)),
            ..Clips::default()
        };
        let (valid, said) = clips.clone().validated();
        assert_eq!(valid, Clips { a: None, ..clips });
        assert_eq!(
            said,
            [
                "clip A: 1 note above pitch 127 was dropped",
                "clip A: dropped: no notes are left"
            ]
        );
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
        // Two clips save as they did before there were four; four come back as four.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::json!({"a": null, "b": serde_json::to_value(store.get().b).unwrap()})
        );
        store.update(|c| c.set(Slot::C, Some(clip(&[(67, 4, 8)], 32))));
        let json = store.map(|c| serde_json::to_string(c).unwrap());
        assert_eq!(serde_json::from_str::<Clips>(&json).unwrap(), store.get());
    }
}
