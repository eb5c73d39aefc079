//! The chords played in: the notes `Chord Input` routes here are kept while held, and
//! every new note names the chord of all those held ([`Chord::recognise`]), which is
//! published for the worker. Plain data, no allocation.

use nice_plug::prelude::NoteEvent;

use crate::audio::output::{note_of, KeySet};
use crate::params::ChordParams;
use latent_live_core::music::chord::Chord;

/// The most notes a chord is named from; more held at once are ignored.
const MAX_CHORD_NOTES: usize = 16;

#[derive(Debug, Default)]
pub struct ChordListener {
    held: KeySet,
}

impl ChordListener {
    /// Takes `event` if it belongs to the chord: a note-on `params` routes to the chord
    /// input, or the note-off of a note it took. Returns whether it did.
    pub fn hear(&mut self, event: &NoteEvent<()>, params: &ChordParams) -> bool {
        let Some((channel, key, on)) = note_of(event) else {
            return false;
        };
        if !on {
            let held = self.held.contains(channel, key);
            self.held.set(channel, key, false);
            return held;
        }
        if !params.is_chord_note(key, channel) {
            return false;
        }
        self.held.set(channel, key, true);
        let mut keys = [0u8; MAX_CHORD_NOTES];
        let mut len = 0;
        for (_, key) in self.held.iter() {
            if len < MAX_CHORD_NOTES {
                keys[len] = key;
                len += 1;
            }
        }
        // A set no quality reads (a cluster, one note) leaves the last chord playing.
        if let Some(chord) = Chord::recognise(&keys[..len]) {
            params.publish(chord);
        }
        true
    }

    /// Forgets the notes held (a reset: the host will not send their note-offs).
    pub fn clear(&mut self) {
        self.held = KeySet::default();
    }
}
