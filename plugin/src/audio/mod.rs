//! The audio thread's side: the phrase hand-off from the worker, the sequencer that plays
//! it on the host's timeline, capture of the notes played in, and the audition synth.
//! Nothing here allocates, locks or blocks.

pub mod capture;
pub mod handoff;
pub mod sequencer;
pub mod synth;
