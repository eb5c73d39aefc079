//! What the worker reports, readable from any thread: the editor shows it, `process()`
//! waits on it when rendering offline, `activate()` waits on it for the first phrase.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use atomic_float::AtomicF64;

use crate::params::{LatentLiveParams, SceneCue, ZRequest};

/// The audio thread writes the `playing_*`, `tempo`, `transport_playing`,
/// `position_beats`, `drift_bar` and `scene_cue` fields; the worker the rest.
#[derive(Debug, Default)]
pub struct EngineStatus {
    /// Phrases handed over to the audio thread so far.
    pub decodes: AtomicU64,
    /// Generation of the newest phrase decoded (handed over or waiting for room).
    pub generation: AtomicU64,
    /// [`crate::params::ZRequest::fingerprint`] of the newest request the worker is done
    /// with: its phrase handed over, or nothing to hand over (no model, a decode error).
    pub delivered: AtomicU64,
    /// Wall time of the last decode (compose + decode + build the phrase), microseconds.
    pub last_decode_micros: AtomicU64,
    /// The worker thread ended on its own (it should not): nothing will be delivered.
    pub failed: AtomicBool,
    /// Generation of the phrase the audio thread plays now.
    pub playing_generation: AtomicU64,
    /// The host's tempo, transport state and position in quarter notes, as the audio
    /// thread last saw them (the editor's playhead).
    pub tempo: AtomicF64,
    pub transport_playing: AtomicBool,
    pub position_beats: AtomicF64,
    /// The song's bar the next phrase takes over at, as the audio thread last saw it:
    /// with drift on, the worker decodes z where the drift's path is there.
    pub drift_bar: AtomicI64,
    /// The last scene recall ([`SceneCue::pack`]), cued by the audio thread.
    pub scene_cue: AtomicU64,
    /// Counts finished commands and captures, failed or not.
    pub handled: AtomicU64,
    /// Captures from the audio thread handled so far (it counts those it sent).
    pub captures_handled: AtomicU64,
    /// Times the worker woke up: how quiet it is at rest.
    pub wakes: AtomicU64,
    /// The loaded model's name (empty until one loads), and the last error (a model that
    /// did not load, a capture that found no notes, a restored clip repaired...): for the
    /// editor.
    pub model_name: Mutex<String>,
    pub message: Mutex<Option<String>>,
}

impl EngineStatus {
    /// The request the worker serves now: the parameters and the last scene recall, at
    /// the bar the next phrase takes over at (for drift and glides). The audio thread
    /// waits for the same one.
    pub fn request(&self, params: &LatentLiveParams) -> ZRequest {
        ZRequest {
            cue: self.scene_cue(),
            ..params.z_request()
        }
        .at_bar(self.drift_bar.load(Ordering::Acquire))
    }

    pub fn scene_cue(&self) -> SceneCue {
        SceneCue::unpack(self.scene_cue.load(Ordering::Acquire))
    }

    pub fn message(&self) -> Option<String> {
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn model_name(&self) -> String {
        self.model_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The worker's, never the audio thread's: it locks.
    pub fn set_model_name(&self, name: &str) {
        *self.model_name.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
    }

    /// The worker's, never the audio thread's: it locks and logs.
    pub fn report(&self, message: Option<String>) {
        if let Some(m) = &message {
            nice_plug::nice_log!("Latent Live: {m}");
        }
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }

    /// Whether the worker is done with the request whose fingerprint is `wanted`.
    pub fn has_delivered(&self, wanted: u64) -> bool {
        self.delivered.load(Ordering::Acquire) == wanted || self.failed.load(Ordering::Acquire)
    }
}
