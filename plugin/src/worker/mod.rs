//! The inference worker's side: one thread per instance that owns the model, composes z
//! from the parameters and the clips, decodes phrases for the audio thread and publishes
//! what it did for the editor.
//!
//! [`engine`] is the handle the plugin holds; [`inference`] the thread's loop;
//! [`commands`] its work on clips; [`models`] which model plays; [`latent`] where z is
//! composed; [`clips`] the clips and their persisted store; [`state`] the project's
//! saved state, versioned, migrated and validated on restore; [`status`] and [`view`]
//! what it reports.

pub mod clips;
pub mod commands;
pub mod engine;
pub mod inference;
pub mod latent;
pub mod models;
pub mod state;
pub mod status;
pub mod view;
