//! MusicVAE in candle.

pub mod lstm;
