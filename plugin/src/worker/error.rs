//! What can go wrong in the worker. The editor shows each as its message, after what was
//! being done ("capture A: ...", "cannot load the model (...): ...").

use std::path::PathBuf;

use latent_live_core::model::{GrooveInput, ModelError};
use latent_live_core::music::midi::MidiError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A model file that cannot be read or played.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Encoding, decoding or inversion failed inside candle.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Midi(#[from] MidiError),
    /// Writing a MIDI file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no model file chosen")]
    NoFileChosen,
    #[error("no model is loaded yet")]
    NoModel,
    #[error("the slot is empty")]
    EmptySlot,
    #[error("nothing has been decoded yet")]
    NothingDecoded,
    /// A capture with nothing in it; says what was captured from.
    #[error("{0}")]
    NothingCaptured(&'static str),
    #[error("{} has no notes", .0.display())]
    NoNotes(PathBuf),
    /// A clip of melody for a drum model, or the other way round.
    #[error("it holds {clip}, and the model plays {model}")]
    Encoding {
        clip: &'static str,
        model: &'static str,
    },
    /// A clip longer or shorter than the model's phrases: its notes cannot be placed in
    /// them without repeating or cutting what was played.
    #[error(
        "it is {}, and the model plays {}: capture it again, or choose a model of its length",
        length(*.clip),
        length(*.model)
    )]
    ClipLength { clip: usize, model: usize },
    #[error("it is a {0} model, not a groove model")]
    NotGroove(&'static str),
    #[error(
        "it is a groove model (GrooVAE): it humanizes or drums up patterns, and does not make \
         them; choose it as the Groove Model"
    )]
    Groove,
    #[error("it is a {found:?} groove model, and this needs a {wanted:?} one")]
    GrooveInput {
        found: GrooveInput,
        wanted: GrooveInput,
    },
    /// A model that loads but fails its first decode: it never replaces the one playing.
    #[error("the model loads but cannot decode: {0}")]
    CannotDecode(candle_core::Error),
    #[error("Tap makes drum clips: choose a drum model first")]
    TapNeedsDrums,
    #[error("cannot load the tap-to-drums model: {0}")]
    Tap2Drum(Box<WorkerError>),
    #[error("the tap-to-drums model heard no beat in the taps")]
    NoBeat,
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// Work on a helper thread panicked.
    #[error("internal error: {0}")]
    Panic(String),
    /// The worker is stopping: the work was abandoned.
    #[error("stopped")]
    Stopped,
}

/// `steps` 16ths in bars where they make whole bars.
fn length(steps: usize) -> String {
    let bar = latent_live_core::music::melody::STEPS_PER_BAR;
    match (steps / bar, steps % bar) {
        (1, 0) => "1 bar".into(),
        (bars, 0) => format!("{bars} bars"),
        _ => format!("{steps} 16ths"),
    }
}
