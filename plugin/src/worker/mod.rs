//! The inference worker: one thread per instance that owns the model, composes z from
//! the parameters and the clips, decodes phrases for the audio thread and publishes what
//! it did for the editor. It meets the other threads only in [`crate::link`].
//!
//! [`engine`] is the handle the plugin holds; [`inference`] the thread's loop;
//! [`commands`] its work on clips; [`models`] which model plays. Where z is composed is
//! the core's `model::latent`.

pub mod commands;
pub mod engine;
pub mod error;
pub mod inference;
pub mod models;
