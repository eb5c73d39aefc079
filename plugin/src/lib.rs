//! Latent Live: perform the latent space of a MusicVAE melody model.
//!
//! The library holds everything the plugin, the `xtask` commands and the tests share:
//! the melody encoding, MIDI I/O, the corpus, the model, its trainer and evaluation.

pub mod assets;
pub mod corpus;
pub mod eval;
pub mod latent;
pub mod melody;
pub mod midi;
pub mod model;
pub mod train;
