//! Everything that crosses between the plugin's threads, as plain data and the queues
//! that carry it. The host's threads (the audio thread, the editor's GUI thread, the main
//! thread) and the inference worker each hold their ends, made here ([`ports`]); none of
//! them imports another.
//!
//! - [`phrase`]: worker -> audio thread, the newest phrase, through a triple buffer;
//! - [`capture`]: audio thread -> worker, Capture presses with what they captured, through
//!   a wait-free ring;
//! - [`Command`]: editor -> worker, through a channel (never from `process()`);
//! - [`status`]: worker and audio thread -> anyone, atomics;
//! - [`view`]: worker -> editor, what it decoded and why, as plain data.

pub mod capture;
pub mod phrase;
pub mod status;
pub mod view;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crate::link::capture::CaptureRequest;
use crate::link::phrase::PhraseConsumer;
use crate::link::status::EngineStatus;
use crate::link::view::{view_channel, ViewPublisher, ViewReader};
use crate::state::clips::Slot;

/// Requests from non-real-time threads (the editor). Never sent from `process()`.
#[derive(Debug, Clone)]
pub enum Command {
    /// Take a clip from a MIDI file: its first window of the model's length that has
    /// notes in every bar, or the whole file when it is shorter.
    CaptureFile {
        slot: Slot,
        path: PathBuf,
    },
    ClearClip(Slot),
    /// Move the clip's z by latent inversion to the point whose decode is closest to the
    /// clip (the encoder's mean is the centre of a posterior, not that point).
    RefineClip(Slot),
    /// Write the phrase playing now, as it is heard (transpose, octave, velocity, note
    /// length), to a .mid file at the host's tempo.
    ExportMidi(PathBuf),
    /// Store what plays now (the controls, a scene playing over them, and the clips) as
    /// scene 1 to 8.
    StoreScene(u8),
    ClearScene(u8),
}

/// Wakes the worker from any non-real-time thread; what woke it is in the shared state
/// it then reads.
#[derive(Debug, Default)]
pub struct Waker {
    thread: OnceLock<Thread>,
    woken: AtomicBool,
}

impl Waker {
    /// Never from the audio thread: unparking is a syscall.
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Sets the thread [`Waker::wake`] unparks: the worker's own, once it runs.
    pub fn set_thread(&self, thread: Thread) {
        let _ = self.thread.set(thread);
    }

    /// Sleeps until woken, or for `timeout` when given: the worker's thread only.
    pub fn sleep(&self, timeout: Option<Duration>) {
        if self.woken.swap(false, Ordering::AcqRel) {
            return;
        }
        match timeout {
            Some(timeout) => std::thread::park_timeout(timeout),
            None => std::thread::park(),
        }
        self.woken.store(false, Ordering::Release);
    }
}

#[cfg(feature = "editor")]
pub use nice_plug_egui::RepaintNotifier;

/// Built without its editor (the fuzz targets), nothing is ever repainted.
#[cfg(not(feature = "editor"))]
#[derive(Default)]
pub struct RepaintNotifier;

#[cfg(not(feature = "editor"))]
impl RepaintNotifier {
    pub fn request_repaint(&self) {}
}

/// What the worker shares with whoever holds its ends.
#[derive(Default)]
pub struct Shared {
    pub status: EngineStatus,
    pub waker: Waker,
    /// Asks the editor to redraw (an atomic store: the audio thread may call it too).
    pub repaint: RepaintNotifier,
    /// The plugin is activated: the worker polls the parameters.
    pub active: AtomicBool,
    pub stop: AtomicBool,
}

/// The worker's queues, made with the plugin instance so that the editor can hold its
/// ends before (and whether or not) the host activates the plugin.
pub struct WorkerPorts {
    pub commands: CommandSender,
    pub inbox: mpsc::Receiver<Command>,
    pub view: ViewPublisher,
    pub shared: Arc<Shared>,
}

/// Where [`Command`]s enter the worker's queue; each one wakes it.
#[derive(Clone)]
pub struct CommandSender {
    queue: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl CommandSender {
    pub fn send(&self, command: Command) {
        // Fails only when the worker has stopped, and then there is nobody to tell.
        let _ = self.queue.send(command);
        self.shared.waker.wake();
    }
}

/// The editor's ends: commands in, status and [`view::View`]s out.
pub struct EditorLink {
    pub commands: CommandSender,
    pub view: ViewReader,
    pub shared: Arc<Shared>,
}

impl EditorLink {
    pub fn status(&self) -> &EngineStatus {
        &self.shared.status
    }
}

pub fn ports() -> (WorkerPorts, EditorLink) {
    let shared = Arc::new(Shared::default());
    let (queue, inbox) = mpsc::channel();
    let commands = CommandSender {
        queue,
        shared: shared.clone(),
    };
    let (publisher, reader) = view_channel();
    let editor = EditorLink {
        commands: commands.clone(),
        view: reader,
        shared: shared.clone(),
    };
    (
        WorkerPorts {
            commands,
            inbox,
            view: publisher,
            shared,
        },
        editor,
    )
}

/// The audio thread's ends of the worker's queues.
pub struct AudioLink {
    pub phrases: PhraseConsumer,
    pub captures: rtrb::Producer<CaptureRequest>,
    pub shared: Arc<Shared>,
}
