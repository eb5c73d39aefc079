//! Music as the model sees it: the 16th-note melody encoding, its musical attributes, and
//! MIDI files in and out.

pub mod attributes;
pub mod melody;
pub mod midi;
