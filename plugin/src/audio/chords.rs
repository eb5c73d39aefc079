//! The chords played in: the notes `Chord Input` routes here are kept while held, and
//! every new note names the chord of all those held ([`Chord::recognise`]), which is
//! published for the worker and remembered on the plugin's clock, so that a capture
//! takes the chords played with its notes. Plain data, no allocation.

use nice_plug::prelude::NoteEvent;

use crate::audio::output::{note_of, KeySet};
use crate::audio::timeline::{TransportInfo, STEPS_PER_BEAT};
use crate::params::ChordParams;
use latent_live_core::model::MAX_STEPS;
use latent_live_core::music::chord::Chord;

/// The most notes a chord is named from; more held at once are ignored.
const MAX_CHORD_NOTES: usize = 16;
/// Chord changes remembered for capture: a change a beat over the longest phrase.
const MAX_CHANGES: usize = MAX_STEPS / 4;

#[derive(Debug)]
pub struct ChordListener {
    held: KeySet,
    /// `(beats on the plugin's clock, Chord::code)` of the latest changes, oldest first
    /// from `head` round.
    changes: [(f64, u16); MAX_CHANGES],
    head: usize,
    len: usize,
}

impl Default for ChordListener {
    fn default() -> Self {
        Self {
            held: KeySet::default(),
            changes: [(0.0, 0); MAX_CHANGES],
            head: 0,
            len: 0,
        }
    }
}

impl ChordListener {
    /// Takes `event` if it belongs to the chord: a note-on `params` routes to the chord
    /// input, or the note-off of a note it took. Returns whether it did.
    pub fn hear(
        &mut self,
        event: &NoteEvent<()>,
        params: &ChordParams,
        transport: &TransportInfo,
    ) -> bool {
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
            let at = transport.clock_beats + transport.beats_in(event.timing() as usize);
            self.changes[self.head] = (at, Chord::code(Some(chord)));
            self.head = (self.head + 1) % MAX_CHANGES;
            self.len = (self.len + 1).min(MAX_CHANGES);
        }
        true
    }

    /// The chord sounding at each 16th of `out` from `start` (beats on the plugin's
    /// clock), as [`Chord::code`]s: 0 before the first chord remembered. A change counts
    /// from its nearest 16th, as capture quantizes notes: a chord played a little after
    /// the downbeat is the downbeat's.
    pub fn chords_over(&self, start: f64, out: &mut [u16]) {
        let half_step = 0.5 / STEPS_PER_BEAT;
        for (t, code) in out.iter_mut().enumerate() {
            let at = start + t as f64 / STEPS_PER_BEAT;
            // Newest first: the latest change before the step's second half.
            *code = (1..=self.len)
                .map(|back| self.changes[(self.head + MAX_CHANGES - back) % MAX_CHANGES])
                .find(|&(when, _)| when < at + half_step)
                .map_or(0, |(_, code)| code);
        }
    }

    /// Forgets the notes held (a reset: the host will not send their note-offs).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ChordInput;
    use latent_live_core::music::chord::Quality;

    fn note(on: bool, key: u8, timing: u32) -> NoteEvent<()> {
        crate::audio::output::note(on, timing, 0, key)
    }

    #[test]
    fn names_the_chord_held_and_remembers_it_for_capture() {
        let params = ChordParams::default();
        // Split is the last of the three choices.
        crate::testing::set_normalized(&params.input, 1.0);
        assert_eq!(params.input.value(), ChordInput::Split);
        let mut listener = ChordListener::default();
        let at = |beats: f64| TransportInfo {
            clock_beats: beats,
            ..TransportInfo::playing(120.0, beats, 48_000.0)
        };
        // C major from beat 0, its notes let go at beat 3; A minor (first inversion)
        // played at beat 4, half a beat (12000 samples at 120 bpm) into a block at 3.5.
        for key in [48, 52, 55] {
            assert!(listener.hear(&note(true, key, 0), &params, &at(0.0)));
        }
        for key in [48, 52, 55] {
            assert!(listener.hear(&note(false, key, 0), &params, &at(3.0)));
        }
        assert_eq!(params.chord(), Some(Chord::new(0, Quality::Major)));
        for key in [48, 52, 57] {
            assert!(listener.hear(&note(true, key, 12_000), &params, &at(3.5)));
        }
        let a_minor = Chord {
            bass: 0,
            ..Chord::new(9, Quality::Minor)
        };
        assert_eq!(params.chord(), Some(a_minor));
        // Melody notes above the split are not the chord's.
        assert!(!listener.hear(&note(true, 72, 0), &params, &at(4.0)));
        let mut codes = [0u16; 16];
        listener.chords_over(2.0, &mut codes);
        let chords: Vec<Option<Chord>> = codes
            .iter()
            .map(|&c| Chord::from_code(c).flatten())
            .collect();
        // Beats 2 to 4 C (held after its keys were let go), from beat 4 A minor; and no
        // chord before the first.
        assert!(chords[..8]
            .iter()
            .all(|&c| c == Some(Chord::new(0, Quality::Major))));
        assert!(
            chords[8..].iter().all(|&c| c == Some(a_minor)),
            "{chords:?}"
        );
        listener.chords_over(-1.0, &mut codes[..2]);
        assert_eq!(codes[..2], [0, 0]);
        // Played less than a 32nd late, F counts from its 16th; a 16th late, from the next.
        for key in [48, 52, 57, 72] {
            listener.hear(&note(false, key, 0), &params, &at(7.0));
        }
        for key in [53, 57, 60] {
            listener.hear(&note(true, key, 2_000), &params, &at(8.0));
        }
        listener.chords_over(7.75, &mut codes[..3]);
        let f = Chord::code(Some(Chord::new(5, Quality::Major)));
        assert_eq!(codes[..3], [Chord::code(Some(a_minor)), f, f]);
        for key in [53, 57, 60] {
            listener.hear(&note(false, key, 0), &params, &at(8.5));
        }
        for key in [55, 59, 62] {
            listener.hear(&note(true, key, 6_000), &params, &at(9.0));
        }
        listener.chords_over(9.0, &mut codes[..2]);
        assert_ne!(codes[0], codes[1], "a 16th late is the next 16th's");
    }
}
