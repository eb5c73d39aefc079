//! The inference worker: owns the model, turns parameter changes into phrases and
//! captures into clips.
//!
//! One thread per plugin instance, started in `activate()` (not in `Default`, so plugin
//! scans stay fast) and joined when the [`Engine`] is dropped. Every [`POLL_INTERVAL`] it:
//! 1. runs the editor's commands (capture from a file, clear a clip, export MIDI);
//! 2. encodes the captures the audio thread sent;
//! 3. loads the model the `model` parameter names, when it changed;
//! 4. picks up clips restored with the host's project;
//! 5. when what decides z changed, composes z ([`LatentSpace::compose`]), decodes, and
//!    pushes a [`Phrase`] to the audio thread, and its [`Decoded`] view to the editor.
//!
//! Reading only the latest parameter values is the coalescing: a burst of automation
//! costs one decode per poll at most, never a backlog. The audio thread never wakes this
//! thread (no syscall in `process()`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use atomic_float::AtomicF64;
use candle_core::{Device, Tensor};

use crate::model::assets::DefaultModel;
use crate::audio::capture::CaptureRequest;
use crate::worker::clips::{Clip, ClipSource, Clips, Slot};
use crate::audio::handoff::{phrase_queue, Phrase, PhraseConsumer};
use crate::worker::latent::{self, LatentSpace};
use crate::music::melody::{self, Note};
use crate::music::midi;
use crate::model::inversion::{self, InversionConfig};
use crate::model::{ModelFile, MusicVae, Sampling};
use crate::params::{LatentLiveParams, ModelChoice, ZRequest};
use crate::worker::view::{view_channel, Decoded, ModelInfo, View, ViewPublisher, ViewReader};

pub const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Captures waiting for the worker; a musician cannot press faster than this drains.
const CAPTURE_QUEUE: usize = 8;
/// Decodes remembered for export and the editor: the audio thread may still play one
/// the worker has already replaced (it swaps at the next bar).
const RECENT_PHRASES: usize = 8;

/// Requests from non-real-time threads (the editor). Never sent from `process()`.
#[derive(Debug, Clone)]
pub enum Command {
    /// Take a clip from a MIDI file: its first window of the model's length that has
    /// notes in every bar, or the whole file when it is shorter.
    CaptureFile { slot: Slot, path: PathBuf },
    ClearClip(Slot),
    /// Move the clip's z by latent inversion to the point whose decode is closest to the
    /// clip (the encoder's mean is the centre of a posterior, not that point).
    RefineClip(Slot),
    /// Write the phrase playing now, as it is heard (transpose, octave, velocity, note
    /// length), to a .mid file at the host's tempo.
    ExportMidi(PathBuf),
}

/// What the worker reports, readable from any thread. The audio thread writes the
/// `playing_*` and `tempo` fields.
#[derive(Debug, Default)]
pub struct EngineStatus {
    /// Phrases handed over to the audio thread so far.
    pub decodes: AtomicU64,
    /// Generation of the newest phrase decoded (handed over or waiting for room).
    pub generation: AtomicU64,
    /// [`ZRequest::fingerprint`] of the request the newest handed-over phrase answers.
    pub delivered: AtomicU64,
    /// Wall time of the last decode (compose + decode + build the phrase), microseconds.
    pub last_decode_micros: AtomicU64,
    /// The worker stopped on an error it cannot recover from; see `message`.
    pub failed: AtomicBool,
    /// Generation of the phrase the audio thread plays now.
    pub playing_generation: AtomicU64,
    /// The host's tempo, transport state and position in quarter notes, as the audio
    /// thread last saw them (the editor's playhead).
    pub tempo: AtomicF64,
    pub transport_playing: AtomicBool,
    pub position_beats: AtomicF64,
    /// Counts finished commands and captures, failed or not.
    pub handled: AtomicU64,
    /// Captures from the audio thread handled so far (it counts those it sent).
    pub captures_handled: AtomicU64,
    /// The loaded model's name (empty until one loads), and the last error (a model that
    /// did not load, a capture that found no notes...): for the editor.
    pub model_name: Mutex<String>,
    pub message: Mutex<Option<String>>,
}

impl EngineStatus {
    pub fn message(&self) -> Option<String> {
        self.message.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn model_name(&self) -> String {
        self.model_name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn report(&self, message: Option<String>) {
        if let Some(m) = &message {
            nice_plug::nice_log!("Latent Live: {m}");
        }
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }
}

/// Reads the model a choice names: the embedded defaults, or a file.
pub type ModelLoader = Box<dyn Fn(ModelChoice, Option<&str>) -> Result<ModelFile, String> + Send>;

/// The embedded models and `Model File`'s path.
pub fn default_loader() -> ModelLoader {
    Box::new(|choice, path| match choice {
        ModelChoice::Folk2Bar => DefaultModel::Flat2Bar.load().map_err(|e| e.to_string()),
        ModelChoice::Folk4Bar => DefaultModel::Hier4Bar.load().map_err(|e| e.to_string()),
        ModelChoice::Folk2BarAttributes => DefaultModel::Flat2BarAttributes.load().map_err(|e| e.to_string()),
        ModelChoice::File => match path {
            Some(path) => ModelFile::read(Path::new(path)).map_err(|e| e.to_string()),
            None => Err("no model file chosen".into()),
        },
    })
}

/// The worker's queues, made with the plugin instance so that the editor can hold its
/// ends before (and whether or not) the host activates the plugin.
pub struct WorkerPorts {
    commands: mpsc::Sender<Command>,
    inbox: mpsc::Receiver<Command>,
    view: ViewPublisher,
    status: Arc<EngineStatus>,
}

/// The editor's ends: commands in, status and [`View`]s out.
pub struct EditorLink {
    pub commands: mpsc::Sender<Command>,
    pub view: ViewReader,
    pub status: Arc<EngineStatus>,
}

impl EditorLink {
    pub fn send(&self, command: Command) {
        // Fails only when the worker has stopped, and then there is nobody to tell.
        let _ = self.commands.send(command);
    }
}

pub fn ports() -> (WorkerPorts, EditorLink) {
    let status = Arc::new(EngineStatus::default());
    let (commands, inbox) = mpsc::channel();
    let (publisher, reader) = view_channel();
    let editor = EditorLink { commands: commands.clone(), view: reader, status: status.clone() };
    (WorkerPorts { commands, inbox, view: publisher, status }, editor)
}

/// The audio thread's ends of the worker's queues.
pub struct AudioLink {
    pub phrases: PhraseConsumer,
    pub captures: rtrb::Producer<CaptureRequest>,
    pub status: Arc<EngineStatus>,
}

/// Handle to the worker thread; dropping it stops and joins the thread.
pub struct Engine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    commands: mpsc::Sender<Command>,
    pub status: Arc<EngineStatus>,
}

impl Engine {
    /// Starts the worker on `ports` (see [`ports`]); it loads its first model on its own
    /// thread.
    pub fn start(params: Arc<LatentLiveParams>, loader: ModelLoader, ports: WorkerPorts) -> std::io::Result<(Self, AudioLink)> {
        let stop = Arc::new(AtomicBool::new(false));
        let WorkerPorts { commands, inbox, view, status } = ports;
        let (phrase_producer, phrases) = phrase_queue();
        let (captures, capture_consumer) = rtrb::RingBuffer::new(CAPTURE_QUEUE);
        let worker = Worker {
            loader,
            loaded: None,
            attempted: None,
            params,
            phrases: phrase_producer,
            captures: capture_consumer,
            inbox,
            view,
            status: status.clone(),
            clips: Clips::default(),
            clips_revision: None,
            generation: 0,
            recent: Vec::with_capacity(RECENT_PHRASES),
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new().name("latent-live-inference".into()).spawn(move || worker.run(&stop))?
        };
        let link = AudioLink { phrases, captures, status: status.clone() };
        Ok((Self { stop, thread: Some(thread), commands, status }, link))
    }

    pub fn send(&self, command: Command) {
        // Fails only when the worker has stopped, and then there is nobody to tell.
        let _ = self.commands.send(command);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The model now playing and what the controls mean for it.
struct Loaded {
    model: MusicVae,
    space: LatentSpace,
    name: String,
    info: Arc<ModelInfo>,
}

struct Worker {
    loader: ModelLoader,
    loaded: Option<Loaded>,
    /// The last model choice tried, with the file's revision for `Model File`.
    attempted: Option<(ModelChoice, u64)>,
    params: Arc<LatentLiveParams>,
    phrases: rtrb::Producer<Phrase>,
    captures: rtrb::Consumer<CaptureRequest>,
    inbox: mpsc::Receiver<Command>,
    view: ViewPublisher,
    status: Arc<EngineStatus>,
    /// The worker's copy of the persisted clips, and the store's revision it matches.
    clips: Clips,
    clips_revision: Option<u64>,
    generation: u64,
    recent: Vec<Arc<Decoded>>,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool) {
        // Whatever ends this thread early (a panic included) tells the audio thread.
        struct Failed(Arc<EngineStatus>);
        impl Drop for Failed {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.failed.store(true, Ordering::Release);
                }
            }
        }
        let _failed = Failed(self.status.clone());
        let mut decoded: Option<ZRequest> = None;
        // A phrase the audio thread had no room for yet (it is not processing); a newer
        // decode replaces it.
        let mut unsent: Option<(Phrase, u64)> = None;
        while !stop.load(Ordering::Acquire) {
            self.load_model_if_changed();
            self.sync_clips();
            while let Ok(command) = self.inbox.try_recv() {
                self.handle(command);
            }
            while let Ok(capture) = self.captures.pop() {
                self.capture(capture);
                self.status.captures_handled.fetch_add(1, Ordering::AcqRel);
            }
            // Read last: the request carries the revisions of the clips just stored.
            let request = self.params.z_request();
            if self.loaded.is_none() {
                // Nothing can be decoded: an offline render must not wait for it.
                self.status.delivered.store(request.fingerprint(), Ordering::Release);
            } else if decoded != Some(request) {
                match self.decode(&request) {
                    Ok(decoded) => {
                        let phrase = decoded.phrase;
                        self.status.generation.store(phrase.generation, Ordering::Release);
                        if self.recent.len() == RECENT_PHRASES {
                            self.recent.remove(0);
                        }
                        self.recent.push(Arc::new(decoded));
                        self.publish();
                        unsent = Some((phrase, request.fingerprint()));
                    }
                    Err(e) => {
                        self.status.report(Some(format!("decode failed: {e}")));
                        self.status.failed.store(true, Ordering::Release);
                        return;
                    }
                }
                decoded = Some(request);
            }
            if let Some((phrase, fingerprint)) = unsent {
                if self.phrases.push(phrase).is_ok() {
                    unsent = None;
                    self.status.delivered.store(fingerprint, Ordering::Release);
                    self.status.decodes.fetch_add(1, Ordering::AcqRel);
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Loads the chosen model when the choice (or the chosen file) changed. A model that
    /// fails to load leaves the previous one playing, with the error for the editor.
    fn load_model_if_changed(&mut self) {
        let choice = self.params.model.value();
        // The file's revision only matters when the file is what plays.
        let file_revision = if choice == ModelChoice::File { self.params.model_file.revision() } else { 0 };
        if self.attempted == Some((choice, file_revision)) {
            return;
        }
        self.attempted = Some((choice, file_revision));
        let path = self.params.model_file.get();
        let loaded = (self.loader)(choice, path.as_deref()).and_then(|file| {
            let space = LatentSpace::of(&file).map_err(|e| e.to_string())?;
            let model = file.model(&Device::Cpu).map_err(|e| e.to_string())?;
            let name = match (&path, choice) {
                // A file is known by its path and its last change, so that another model
                // saved at the same path re-encodes the clips.
                (Some(path), ModelChoice::File) => {
                    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                    let stamp = modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
                    format!("{path} @{stamp}")
                }
                _ if !file.card.name.is_empty() => file.card.name.clone(),
                _ => format!("{choice:?}"),
            };
            let info = Arc::new(ModelInfo::of(&name, &file.card, &space, model.has_encoder()));
            Ok(Loaded { model, space, name, info })
        });
        match loaded {
            Ok(loaded) => {
                *self.status.model_name.lock().unwrap_or_else(|e| e.into_inner()) = loaded.name.clone();
                self.loaded = Some(loaded);
                self.publish();
                self.status.report(None);
                self.reencode_clips();
            }
            // The previous model, if any, keeps playing; the next attempt waits for
            // another choice or file.
            Err(e) => self.status.report(Some(format!("cannot load the model ({choice:?}): {e}"))),
        }
    }

    /// Takes clips restored with a project (or written by this worker) from the store.
    fn sync_clips(&mut self) {
        let revision = self.params.clips.revision();
        if self.clips_revision != Some(revision) {
            self.clips = self.params.clips.get();
            self.clips_revision = Some(revision);
            self.reencode_clips();
        }
    }

    /// Clips encoded by another model are encoded again by this one.
    fn reencode_clips(&mut self) {
        let Some(loaded) = &self.loaded else { return };
        let mut encoded = Vec::new();
        for slot in [Slot::A, Slot::B] {
            let Some(clip) = self.clips.get(slot) else { continue };
            if clip.model == loaded.name && clip.mu.len() == loaded.space.z_size {
                continue;
            }
            let mut clip = clip.clone();
            match encode(loaded, &clip) {
                Ok(mu) => {
                    clip.mu = mu;
                    clip.model = loaded.name.clone();
                    encoded.push((slot, clip));
                }
                Err(e) => self.status.report(Some(format!("cannot encode clip {slot:?}: {e}"))),
            }
        }
        for (slot, clip) in encoded {
            self.store(slot, Some(clip));
        }
    }

    fn store(&mut self, slot: Slot, clip: Option<Clip>) {
        self.clips.set(slot, clip.clone());
        self.clips_revision = Some(self.params.clips.update(|clips| clips.set(slot, clip)));
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::CaptureFile { slot, path } => {
                let clip = self.clip_from_file(&path);
                self.keep_capture(slot, clip);
            }
            Command::ClearClip(slot) => self.store(slot, None),
            Command::RefineClip(slot) => {
                let result = self.refine(slot);
                self.status.report(result.err().map(|e| format!("cannot refine clip {slot:?}: {e}")));
            }
            Command::ExportMidi(path) => {
                let result = self.export(&path);
                self.status.report(result.err().map(|e| format!("cannot export {}: {e}", path.display())));
            }
        }
        self.status.handled.fetch_add(1, Ordering::AcqRel);
    }

    fn capture(&mut self, request: CaptureRequest) {
        let notes = request.phrase.melody_notes();
        let clip = if notes.is_empty() {
            Err(if request.from_input { "nothing was played in during the last phrase".to_string() } else { "the phrase playing is silent".to_string() })
        } else {
            let source = if request.from_input { ClipSource::Input } else { ClipSource::Playing };
            Ok(Clip { notes, steps: request.phrase.steps as u32, source, mu: Vec::new(), model: String::new() })
        };
        self.keep_capture(request.slot, clip);
        self.status.handled.fetch_add(1, Ordering::AcqRel);
    }

    /// Encodes a captured clip and stores it, or reports why not.
    fn keep_capture(&mut self, slot: Slot, clip: Result<Clip, String>) {
        let Some(loaded) = &self.loaded else {
            self.status.report(Some("no model is loaded yet".into()));
            return;
        };
        let encoded = clip.and_then(|mut clip| {
            clip.mu = encode(loaded, &clip)?;
            clip.model = loaded.name.clone();
            Ok(clip)
        });
        match encoded {
            Ok(clip) => {
                self.store(slot, Some(clip));
                self.status.report(None);
            }
            Err(e) => self.status.report(Some(format!("capture {slot:?}: {e}"))),
        }
    }

    fn refine(&mut self, slot: Slot) -> Result<(), String> {
        let loaded = self.loaded.as_ref().ok_or("no model is loaded yet")?;
        let mut clip = self.params.clips.get().get(slot).cloned().ok_or("the slot is empty")?;
        let config = &loaded.model.config;
        let events = clip.events(config.steps(), config.min_pitch, config.max_pitch);
        let start = Tensor::new(clip.mu.as_slice(), loaded.model.device()).and_then(|mu| mu.unsqueeze(0));
        let z = start.and_then(|start| inversion::invert(&loaded.model, &[&events], Some(start), InversionConfig::default()));
        clip.mu = z.and_then(|z| z.squeeze(0)?.to_vec1::<f32>()).map_err(|e| e.to_string())?;
        self.store(slot, Some(clip));
        Ok(())
    }

    fn clip_from_file(&self, path: &Path) -> Result<Clip, String> {
        let steps = self.loaded.as_ref().map_or(32, |l| l.model.config.steps());
        let imported = midi::import_file(path).map_err(|e| e.to_string())?;
        let (notes, clip_steps) = match midi::slices(&imported, steps / melody::STEPS_PER_BAR).first() {
            Some(window) => (melody::decode(window), steps as u32),
            None => (imported.notes.clone(), imported.steps.clamp(1, crate::audio::capture::MAX_CAPTURE_STEPS as u32)),
        };
        if notes.is_empty() {
            return Err(format!("{} has no notes", path.display()));
        }
        Ok(Clip { notes, steps: clip_steps, source: ClipSource::File(path.display().to_string()), mu: Vec::new(), model: String::new() })
    }

    /// Shows the editor the model and the recent decodes.
    fn publish(&mut self) {
        let model = self.loaded.as_ref().map(|l| l.info.clone());
        self.view.write(View { model, recent: self.recent.clone() });
    }

    fn decode(&mut self, request: &ZRequest) -> candle_core::Result<Decoded> {
        let started = Instant::now();
        let loaded = self.loaded.as_ref().expect("decode runs with a model");
        let mu = |slot| self.clips.get(slot).filter(|c| c.model == loaded.name).map(|c| c.mu.as_slice());
        let z = loaded.space.compose(mu(Slot::A), mu(Slot::B), request);
        let (events, activations) = loaded.model.decode_traced(&latent::z_tensor(&loaded.model, std::slice::from_ref(&z))?, Sampling::new(request.temperature, request.seed))?;
        let events = events.into_iter().next().unwrap_or_default();
        self.generation += 1;
        let phrase = Phrase::from_notes(&melody::decode(&events), loaded.model.config.steps(), self.generation);
        self.status.last_decode_micros.store(started.elapsed().as_micros() as u64, Ordering::Release);
        let hidden = activations.len() / events.len().max(1);
        Ok(Decoded { phrase, z, activations, hidden })
    }

    fn export(&self, path: &Path) -> Result<(), String> {
        let playing = self.status.playing_generation.load(Ordering::Acquire);
        let decoded = self.recent.iter().rev().find(|d| d.phrase.generation == playing).or(self.recent.last()).ok_or("nothing has been decoded yet")?;
        let phrase = &decoded.phrase;
        let p = &self.params;
        let semitones = p.transpose.value() + 12 * p.octave.value();
        let notes = phrase.notes();
        let heard: Vec<Note> = notes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let next = notes.get(i + 1).map_or(u32::MAX, |m| m.start as u32);
                let length = ((n.end - n.start) as f32 * p.length.value()).round().max(1.0) as u32;
                Note { pitch: (n.pitch as i32 + semitones).clamp(0, 127) as u8, start: n.start as u32, end: (n.start as u32 + length).min(next) }
            })
            .collect();
        let tempo = self.status.tempo.load(Ordering::Acquire);
        let bpm = if tempo > 0.0 { tempo } else { 120.0 };
        let bytes = midi::export_with_velocity(&heard, bpm, p.velocity.value() as u8);
        std::fs::write(path, bytes).map_err(|e| e.to_string())
    }
}

/// The clip's point in the loaded model's latent space: the encoder's mean, or for a
/// decoder-only model the z that latent inversion finds.
fn encode(loaded: &Loaded, clip: &Clip) -> Result<Vec<f32>, String> {
    let config = &loaded.model.config;
    let events = clip.events(config.steps(), config.min_pitch, config.max_pitch);
    let z = if loaded.model.has_encoder() {
        loaded.model.encode(&[&events])
    } else {
        inversion::invert(&loaded.model, &[&events], None, InversionConfig::default())
    };
    z.and_then(|z| z.squeeze(0)?.to_vec1::<f32>()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Config, ModelCard};
    use candle_nn::VarBuilder;
    use nice_plug::prelude::Param;
    use std::collections::BTreeMap;

    fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn wait_for(consumer: &mut PhraseConsumer, slot: &mut Phrase, timeout: Duration) -> bool {
        wait_until(timeout, || consumer.pop_newest(slot))
    }

    fn set(param: &impl Param, normalized: f32) {
        // The host's route for setting a parameter; safe here, the param outlives the call.
        unsafe {
            param.as_ptr()._internal_set_normalized_value(normalized);
        }
    }

    fn set_plain(param: &nice_plug::prelude::FloatParam, value: f32) {
        set(param, param.preview_normalized(value));
    }

    /// Random tiny models: they decode in microseconds, so the tests are about the thread.
    /// `File` loads a 4-bar one (named by its path); the embedded choices a 2-bar one.
    fn tiny_loader() -> ModelLoader {
        Box::new(|choice, path| {
            let config = match (choice, path) {
                (ModelChoice::File, Some("tiny-4bar")) => Config::tiny(4, true),
                // An imported Magenta checkpoint without its encoder.
                (ModelChoice::File, Some("tiny-decoder-only")) => Config { encoder: Vec::new(), ..Config::tiny(2, false) },
                (ModelChoice::File, _) => return Err(format!("{path:?} is not a model")),
                _ => Config::tiny(2, false),
            };
            let varmap = candle_nn::VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
            MusicVae::new(config.clone(), vb).map_err(|e| e.to_string())?;
            let tensors = varmap.data().lock().unwrap().iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
            let card = ModelCard { name: format!("tiny-{choice:?}"), ..ModelCard::default() };
            let extra = BTreeMap::from([("kl_ranking".to_string(), "[3, 1, 0]".to_string())]);
            ModelFile::new(config, card, extra, tensors).map_err(|e| e.to_string())
        })
    }

    fn capture(phrase: Phrase, slot: Slot, from_input: bool) -> CaptureRequest {
        CaptureRequest { slot, from_input, phrase }
    }

    #[test]
    fn decodes_once_at_start_then_only_on_change() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)), "first phrase");
        assert_eq!(slot.generation, 1);
        assert_eq!(slot.steps, 32);
        assert_eq!(engine.status.delivered.load(Ordering::Acquire), params.z_request().fingerprint());
        // Nothing changed: nothing new.
        assert!(!wait_for(&mut link.phrases, &mut slot, Duration::from_millis(100)));
        assert_eq!(engine.status.decodes.load(Ordering::Acquire), 1);

        set_plain(&params.lat2, 2.5);
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)), "slider change decodes");
        assert_eq!(slot.generation, 2);

        // A burst of changes is coalesced: far fewer decodes than changes.
        for i in 0..2_000 {
            set_plain(&params.lat1, (i % 100) as f32 * 0.01);
        }
        std::thread::sleep(Duration::from_millis(50));
        let decodes = engine.status.decodes.load(Ordering::Acquire);
        assert!(decodes < 200, "{decodes} decodes for 2000 changes");
        assert!(!engine.status.failed.load(Ordering::Acquire));
    }

    #[test]
    fn keeps_the_newest_phrase_when_the_audio_thread_is_not_consuming() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        assert!(wait_until(Duration::from_secs(20), || engine.status.decodes.load(Ordering::Acquire) >= 1));
        for i in 1..=10 {
            set_plain(&params.temperature, 0.1 * i as f32);
            std::thread::sleep(Duration::from_millis(15));
        }
        // The queue holds 4; later phrases wait as "unsent", each replacing the last.
        let mut slot = Phrase::EMPTY;
        wait_until(Duration::from_secs(5), || {
            link.phrases.pop_newest(&mut slot);
            slot.generation >= 2 && slot.generation == engine.status.generation.load(Ordering::Acquire)
        });
        let newest = engine.status.generation.load(Ordering::Acquire);
        assert!(newest >= 2, "decoded {newest}");
        assert_eq!(slot.generation, newest, "the newest phrase arrives, whatever the queue held");
    }

    #[test]
    fn captures_encode_persist_and_morph() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)));
        let handled = |n| wait_until(Duration::from_secs(10), || engine.status.handled.load(Ordering::Acquire) >= n);

        let riff = Phrase::from_notes(&[Note { pitch: 60, start: 0, end: 4 }, Note { pitch: 67, start: 8, end: 16 }], 16, 0);
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(handled(1));
        let a = params.clips.get().a.expect("clip A stored");
        assert_eq!(a.source, ClipSource::Input);
        assert_eq!((a.steps, a.notes.len(), a.mu.len(), a.model.as_str()), (16, 2, 8, "tiny-Folk2Bar"));
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)), "a new clip decodes");

        // Nothing played: reported, clip A kept.
        link.captures.push(capture(Phrase::EMPTY, Slot::A, true)).unwrap();
        assert!(handled(2));
        assert!(engine.status.message().unwrap().contains("nothing was played"));
        assert_eq!(params.clips.get().a.as_ref(), Some(&a));

        let playing = Phrase::from_notes(&[Note { pitch: 72, start: 4, end: 30 }], 32, 9);
        link.captures.push(capture(playing, Slot::B, false)).unwrap();
        assert!(handled(3));
        let b = params.clips.get().b.expect("clip B stored");
        assert_eq!(b.source, ClipSource::Playing);
        assert_ne!(a.mu, b.mu);

        // Morphing moves between them: each end decodes from its clip's mu.
        for morph in [0.0, 1.0, 0.5] {
            set(&params.morph, morph);
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5));
        }
        assert!(!engine.status.failed.load(Ordering::Acquire));

        // A project restored with other clips is picked up (nice-plug calls `set`).
        let restored = Clips { a: Some(b.clone()), b: None };
        nice_plug::params::persist::PersistentField::set(&params.clips, restored);
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)), "restored clips decode");
        assert_eq!(params.clips.get().a, Some(b));
    }

    #[test]
    fn file_capture_and_export_go_through_midi_files() {
        let dir = std::env::temp_dir().join(format!("latent-live-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let notes: Vec<Note> = (0..16).map(|i| Note { pitch: 60 + (i % 5) as u8, start: i * 4, end: i * 4 + 3 }).collect();
        let source = dir.join("riff.mid");
        midi::write_file(&source, &notes, 100.0).unwrap();

        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)));
        let handled = |n| wait_until(Duration::from_secs(10), || engine.status.handled.load(Ordering::Acquire) >= n);

        engine.send(Command::CaptureFile { slot: Slot::B, path: source.clone() });
        assert!(handled(1));
        let b = params.clips.get().b.expect("clip B from the file");
        assert_eq!((b.steps, b.notes.len()), (32, 8));
        assert_eq!(b.source, ClipSource::File(source.display().to_string()));

        engine.send(Command::CaptureFile { slot: Slot::A, path: dir.join("missing.mid") });
        assert!(handled(2));
        assert!(engine.status.message().unwrap().contains("missing.mid"));
        assert!(params.clips.get().a.is_none());

        // Export what plays, as heard: an octave up.
        wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5));
        engine.status.playing_generation.store(slot.generation, Ordering::Release);
        unsafe { params.octave.as_ptr()._internal_set_normalized_value(params.octave.preview_normalized(1)) };
        let out = dir.join("out.mid");
        engine.send(Command::ExportMidi(out.clone()));
        assert!(handled(3));
        let exported = midi::import_file(&out).unwrap();
        // The importer folds pitches past 108 back by octaves, as it does for any file.
        let expected: Vec<u8> = slot.notes().iter().map(|n| crate::worker::clips::fold_pitch(n.pitch + 12, 21, 108)).collect();
        assert_eq!(exported.notes.iter().map(|n| n.pitch).collect::<Vec<_>>(), expected);

        engine.send(Command::ClearClip(Slot::B));
        assert!(handled(4));
        assert!(params.clips.get().b.is_none());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn switching_models_reencodes_clips_and_bad_files_keep_the_old_model() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)));
        let riff = Phrase::from_notes(&[Note { pitch: 62, start: 0, end: 8 }], 16, 0);
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(wait_until(Duration::from_secs(10), || engine.status.handled.load(Ordering::Acquire) >= 1));

        // A file that is not a model: an error to show, the 2-bar model keeps playing.
        params.model_file.update(|f| *f = Some("not-a-model".into()));
        set(&params.model, params.model.preview_normalized(ModelChoice::File));
        assert!(wait_until(Duration::from_secs(10), || engine.status.message().is_some_and(|m| m.contains("not-a-model"))));
        assert_eq!(engine.status.model_name(), "tiny-Folk2Bar");

        params.model_file.update(|f| *f = Some("tiny-4bar".into()));
        assert!(wait_until(Duration::from_secs(10), || engine.status.model_name().starts_with("tiny-4bar @")));
        assert!(wait_until(Duration::from_secs(10), || link.phrases.pop_newest(&mut slot) && slot.steps == 64));
        let a = params.clips.get().a.unwrap();
        assert!(a.model.starts_with("tiny-4bar @"), "clip A re-encoded by the new model");
        assert!(engine.status.message().is_none());
    }

    #[test]
    fn decoder_only_models_capture_by_inversion_and_clips_refine() {
        let params = Arc::new(LatentLiveParams::default());
        params.model_file.update(|f| *f = Some("tiny-decoder-only".into()));
        set(&params.model, params.model.preview_normalized(ModelChoice::File));
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)), "it decodes");
        let riff = Phrase::from_notes(&[Note { pitch: 62, start: 0, end: 8 }], 16, 0);
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(wait_until(Duration::from_secs(10), || engine.status.handled.load(Ordering::Acquire) >= 1));
        assert_eq!(engine.status.message(), None);
        let a = params.clips.get().a.expect("captured without an encoder");
        assert_eq!(a.mu.len(), 8);

        engine.send(Command::RefineClip(Slot::A));
        assert!(wait_until(Duration::from_secs(10), || engine.status.handled.load(Ordering::Acquire) >= 2));
        let refined = params.clips.get().a.unwrap();
        assert_eq!((refined.notes.as_slice(), refined.mu.len()), (a.notes.as_slice(), 8));
        assert_ne!(refined.mu, a.mu, "refining moves z");
        engine.send(Command::RefineClip(Slot::B));
        assert!(wait_until(Duration::from_secs(10), || engine.status.handled.load(Ordering::Acquire) >= 3));
        assert!(engine.status.message().unwrap().contains("empty"));
        assert!(!engine.status.failed.load(Ordering::Acquire));
    }
}
