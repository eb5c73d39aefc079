//! The audio thread's side: the host's timeline made safe, the sequencer that plays the
//! worker's phrase on the host's bars, capture of the notes played in, the chords heard, what starts the phrase, the MIDI output
//! and the audition synth. Nothing here allocates, locks or blocks.

pub mod capture;
pub mod chords;
pub mod drum_kit;
pub mod output;
pub mod sequencer;
pub mod start;
pub mod synth;
pub mod timeline;
