//! Offline work on models, run by `cargo xtask` and the tests, never by the plugin:
//! corpora, the trainer, held-out evaluation and the analysis of the latent space.

pub mod analysis;
pub mod corpus;
pub mod eval;
pub mod train;
