//! The audio thread's side: the host's timeline made safe, the sequencer that plays the
//! worker's phrase on the host's bars, capture of the notes played in, the chords heard,
//! what starts the phrase, the scenes recalled, the MIDI output, the audition synth, and
//! the host's pace (when `process()` may wait). Nothing here allocates or locks.

pub mod capture;
pub mod chords;
pub mod drum_kit;
pub mod output;
pub mod pace;
pub mod scenes;
pub mod sequencer;
pub mod start;
pub mod synth;
pub mod timeline;
