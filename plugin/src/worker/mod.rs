//! The inference worker's side: one thread per instance that owns the model, composes z
//! from the parameters and the clips, decodes phrases for the audio thread and publishes
//! what it did for the editor.

pub mod clips;
pub mod engine;
pub mod latent;
pub mod state;
pub mod view;
