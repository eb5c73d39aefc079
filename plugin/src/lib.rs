//! Latent Live: perform the latent space of a MusicVAE melody model.
//!
//! The library holds everything the plugin, the `xtask` commands and the tests share:
//! the melody encoding, MIDI I/O, the corpus, the model and its trainer.

pub mod corpus;
pub mod melody;
pub mod midi;
pub mod model;
