//! Capture presses, from the audio thread to the worker.

use latent_live_core::model::MAX_STEPS;
use latent_live_core::music::phrase::Phrase;

use crate::params::CaptureSource;
use crate::state::clips::Slot;

/// What the audio thread sends the worker when Capture A or B fires.
#[derive(Debug, Clone, Copy)]
pub struct CaptureRequest {
    pub slot: Slot,
    /// Played in, tapped (the phrase holds the taps, on [`latent_live_core::music::groove::TAP_CLASS`]), or the
    /// phrase that was playing.
    pub source: CaptureSource,
    pub phrase: Phrase,
    /// The chord played in at each of the phrase's steps
    /// ([`latent_live_core::music::chord::Chord::code`], 0 for none),
    /// for notes played in.
    pub chords: [u16; MAX_STEPS],
}
