//! Latent Live's core: music as the model sees it, and the model.
//!
//! - [`music`]: the melody, drum and groove encodings, their attributes, MIDI files in and
//!   out;
//! - [`model`]: MusicVAE in candle over swappable encoders and decoders, model files,
//!   Google's checkpoints, the embedded models, and the latent axes the plugin's controls
//!   move ([`model::latent`]);
//! - [`files`]: reading the files a user or a project names, capped and never blocking.
//!
//! Nothing here knows of a plugin, a host or a GUI: the plugin, the trainer and the
//! command-line tools all build on it.

pub mod files;
pub mod model;
pub mod music;
