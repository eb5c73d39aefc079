//! The chords played in: where the audio thread hears them ([`ChordParams::input`]), what
//! it does with their notes, and how the worker plays over them. The chord itself is not a
//! parameter: the audio thread names it from the notes held and publishes it in
//! [`ChordParams::held`], and the worker reads it with the rest of the request.

use std::sync::atomic::{AtomicU16, Ordering};

use nice_plug::prelude::*;

use latent_live_core::music::chord::Chord;

use crate::params::share;

#[derive(Params)]
pub struct ChordParams {
    #[id = "chin"]
    pub input: EnumParam<ChordInput>,
    /// The MIDI channel chords are played on, 1 to 16, with `Chord Input` on Channel.
    #[id = "chch"]
    pub channel: IntParam,
    /// With `Chord Input` on Split, the notes below this one are the chord.
    #[id = "split"]
    pub split: IntParam,
    #[id = "chfol"]
    pub follow: EnumParam<ChordFollow>,
    /// Forwards the chord's notes to the MIDI output with MIDI Thru (the melody's notes
    /// played in are forwarded by MIDI Thru alone).
    #[id = "chthru"]
    pub thru: BoolParam,
    /// For models that do not read chords: the share of on-beat notes moved onto a chord
    /// tone.
    #[id = "chfit"]
    pub fit: FloatParam,
    /// The chord last played ([`Chord::code`]; 0 before any), written by the audio
    /// thread. It holds after the keys are let go, as a chord pad's does.
    pub held: AtomicU16,
}

impl Default for ChordParams {
    fn default() -> Self {
        Self {
            input: EnumParam::new("Chord Input", ChordInput::Off),
            channel: IntParam::new("Chord Channel", 16, IntRange::Linear { min: 1, max: 16 }),
            split: IntParam::new("Split Note", 60, IntRange::Linear { min: 0, max: 127 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            follow: EnumParam::new("Chord Follow", ChordFollow::Swap),
            thru: BoolParam::new("Chord Thru", true),
            fit: share("Chord Fit"),
            held: AtomicU16::new(0),
        }
    }
}

impl ChordParams {
    /// Whether a note (key 0..=127, channel 0..=15) played in is part of the chord.
    pub fn is_chord_note(&self, key: u8, channel: u8) -> bool {
        match self.input.value() {
            ChordInput::Off => false,
            ChordInput::Channel => channel as i32 + 1 == self.channel.value(),
            ChordInput::Split => (key as i32) < self.split.value(),
        }
    }

    /// The chord the worker plays over: the one last played, with `Chord Input` on.
    pub fn chord(&self) -> Option<Chord> {
        if self.input.value() == ChordInput::Off {
            return None;
        }
        Chord::from_code(self.held.load(Ordering::Acquire)).flatten()
    }

    /// Publishes the chord the notes held name (the audio thread's).
    pub fn publish(&self, chord: Chord) {
        self.held.store(Chord::code(Some(chord)), Ordering::Release);
    }
}

/// Where chords are played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChordInput {
    #[id = "off"]
    Off,
    /// The notes held on `Chord Channel`.
    #[id = "channel"]
    Channel,
    /// The notes held below `Split Note`, on any channel.
    #[id = "split"]
    Split,
}

/// When a new chord is heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChordFollow {
    /// At the next swap point, as any other change.
    #[id = "swap"]
    Swap,
    /// At the next beat.
    #[id = "beat"]
    Beat,
}
