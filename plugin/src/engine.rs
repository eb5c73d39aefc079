//! The inference worker: owns the model, turns parameter changes into phrases.
//!
//! One thread per plugin instance, started in `activate()` (not in `Default`, so plugin
//! scans stay fast) and joined when the [`Engine`] is dropped. Every [`POLL_INTERVAL`] it
//! reads the parameters (atomics) and, when what decides z or sampling changed since the
//! last decode, composes z ([`crate::latent::compose`]), decodes and pushes a
//! [`Phrase`] to the audio thread. Reading only the latest state is the coalescing: a burst
//! of automation costs one decode per poll at most, never a backlog. The audio thread
//! never wakes this thread (no syscall in `process()`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::Device;

use crate::assets::DefaultModel;
use crate::handoff::Phrase;
use crate::latent;
use crate::melody;
use crate::model::{MusicVae, Sampling};
use crate::params::{LatentLiveParams, ZRequest, NUM_SLIDERS};

pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Requests from non-real-time threads (GUI, state loading). Never sent from `process()`.
#[derive(Debug, Clone)]
pub enum Command {
    /// The latent means of clips A and B (`None` clears one).
    SetClips { a: Option<Vec<f32>>, b: Option<Vec<f32>> },
}

/// What the worker reports, readable from any thread.
#[derive(Debug, Default)]
pub struct EngineStatus {
    /// Phrases handed over to the audio thread so far.
    pub decodes: AtomicU64,
    /// Generation of the newest phrase decoded (handed over or waiting for room).
    pub generation: AtomicU64,
    /// Wall time of the last decode (compose + decode + build the phrase), microseconds.
    pub last_decode_micros: AtomicU64,
    /// The model is loaded and the worker is polling.
    pub ready: AtomicBool,
    /// The worker stopped on an error (model failed to load or decode); see the log.
    pub failed: AtomicBool,
}

/// Handle to the worker thread; dropping it stops and joins the thread.
pub struct Engine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    commands: mpsc::Sender<Command>,
    pub status: Arc<EngineStatus>,
}

impl Engine {
    /// Starts the worker with the embedded default model.
    pub fn start(params: Arc<LatentLiveParams>, phrases: rtrb::Producer<Phrase>) -> std::io::Result<Self> {
        Self::start_with(params, phrases, || {
            let file = DefaultModel::Flat2Bar.load().map_err(|e| e.to_string())?;
            let ranking: Option<Vec<usize>> = file.extra_json("kl_ranking").map_err(|e| e.to_string())?;
            let model = file.model(&Device::Cpu).map_err(|e| e.to_string())?;
            Ok((model, ranking))
        })
    }

    /// Starts the worker with the model `load` returns (called on the worker thread).
    pub fn start_with<F>(params: Arc<LatentLiveParams>, phrases: rtrb::Producer<Phrase>, load: F) -> std::io::Result<Self>
    where
        F: FnOnce() -> Result<(MusicVae, Option<Vec<usize>>), String> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(EngineStatus::default());
        let (commands, inbox) = mpsc::channel();
        let worker = {
            let stop = stop.clone();
            let status = status.clone();
            move || match load() {
                Ok((model, ranking)) => Worker::new(model, ranking.as_deref(), params, phrases, inbox, status).run(&stop),
                Err(e) => {
                    nice_plug::nice_error!("Latent Live: cannot load the model: {e}");
                    status.failed.store(true, Ordering::Release);
                }
            }
        };
        let thread = std::thread::Builder::new().name("latent-live-inference".into()).spawn(worker)?;
        Ok(Self { stop, thread: Some(thread), commands, status })
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

struct Worker {
    model: MusicVae,
    slider_dims: Vec<usize>,
    params: Arc<LatentLiveParams>,
    phrases: rtrb::Producer<Phrase>,
    inbox: mpsc::Receiver<Command>,
    status: Arc<EngineStatus>,
    clip_a: Option<Vec<f32>>,
    clip_b: Option<Vec<f32>>,
    generation: u64,
}

impl Worker {
    fn new(
        model: MusicVae,
        ranking: Option<&[usize]>,
        params: Arc<LatentLiveParams>,
        phrases: rtrb::Producer<Phrase>,
        inbox: mpsc::Receiver<Command>,
        status: Arc<EngineStatus>,
    ) -> Self {
        let slider_dims = latent::slider_dims(ranking, model.config.z_size, NUM_SLIDERS);
        Self { model, slider_dims, params, phrases, inbox, status, clip_a: None, clip_b: None, generation: 0 }
    }

    fn run(mut self, stop: &AtomicBool) {
        self.status.ready.store(true, Ordering::Release);
        let mut decoded: Option<ZRequest> = None;
        // A phrase the audio thread had no room for yet (it is not processing); a newer
        // decode replaces it.
        let mut unsent: Option<Phrase> = None;
        while !stop.load(Ordering::Acquire) {
            let mut clips_changed = false;
            while let Ok(command) = self.inbox.try_recv() {
                match command {
                    Command::SetClips { a, b } => {
                        self.clip_a = a;
                        self.clip_b = b;
                        clips_changed = true;
                    }
                }
            }
            let request = self.params.z_request();
            if clips_changed || decoded != Some(request) {
                match self.decode(&request) {
                    Ok(phrase) => {
                        self.status.generation.store(phrase.generation, Ordering::Release);
                        unsent = Some(phrase);
                    }
                    Err(e) => {
                        nice_plug::nice_error!("Latent Live: decode failed: {e}");
                        self.status.failed.store(true, Ordering::Release);
                        return;
                    }
                }
                decoded = Some(request);
            }
            if let Some(phrase) = unsent {
                if self.phrases.push(phrase).is_ok() {
                    unsent = None;
                    self.status.decodes.fetch_add(1, Ordering::AcqRel);
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn decode(&mut self, request: &ZRequest) -> candle_core::Result<Phrase> {
        let started = Instant::now();
        let z = latent::compose(
            self.model.config.z_size,
            self.clip_a.as_deref(),
            self.clip_b.as_deref(),
            request.morph,
            &request.sliders,
            &self.slider_dims,
        );
        let z = latent::z_tensor(&self.model, &[z])?;
        let events = self.model.decode(&z, Sampling::new(request.temperature, request.seed))?;
        let events = events.into_iter().next().unwrap_or_default();
        self.generation += 1;
        let phrase = Phrase::from_notes(&melody::decode(&events), self.model.config.steps(), self.generation);
        self.status.last_decode_micros.store(started.elapsed().as_micros() as u64, Ordering::Release);
        Ok(phrase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::phrase_queue;
    use crate::model::Config;
    use candle_nn::VarBuilder;
    use nice_plug::prelude::Param;

    fn wait_for(consumer: &mut crate::handoff::PhraseConsumer, slot: &mut Phrase, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if consumer.pop_newest(slot) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn set(param: &nice_plug::prelude::FloatParam, value: f32) {
        // The host's route for setting a parameter; safe here, the param outlives the call.
        unsafe {
            param.as_ptr()._internal_set_normalized_value(param.preview_normalized(value));
        }
    }

    /// A random tiny model: decodes in microseconds, so the test is about the thread.
    fn tiny() -> Result<(MusicVae, Option<Vec<usize>>), String> {
        let vb = VarBuilder::from_varmap(&candle_nn::VarMap::new(), candle_core::DType::F32, &Device::Cpu);
        let model = MusicVae::new(Config::tiny(2, false), vb).map_err(|e| e.to_string())?;
        Ok((model, Some(vec![3, 1, 0])))
    }

    #[test]
    fn decodes_once_at_start_then_only_on_change() {
        let params = Arc::new(LatentLiveParams::default());
        let (producer, mut consumer) = phrase_queue();
        let engine = Engine::start_with(params.clone(), producer, tiny).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut consumer, &mut slot, Duration::from_secs(20)), "first phrase");
        assert_eq!(slot.generation, 1);
        assert_eq!(slot.steps, 32);
        // Nothing changed: nothing new.
        assert!(!wait_for(&mut consumer, &mut slot, Duration::from_millis(100)));
        assert_eq!(engine.status.decodes.load(Ordering::Acquire), 1);

        set(&params.lat2, 2.5);
        assert!(wait_for(&mut consumer, &mut slot, Duration::from_secs(5)), "slider change decodes");
        assert_eq!(slot.generation, 2);
        assert!(params.lat2.modulated_plain_value() == 2.5);

        // A burst of changes is coalesced: far fewer decodes than changes.
        for i in 0..2_000 {
            set(&params.lat1, (i % 100) as f32 * 0.01);
        }
        std::thread::sleep(Duration::from_millis(50));
        let decodes = engine.status.decodes.load(Ordering::Acquire);
        assert!(decodes < 200, "{decodes} decodes for 2000 changes");

        engine.send(Command::SetClips { a: Some(vec![0.5; 8]), b: Some(vec![-0.5; 8]) });
        assert!(wait_for(&mut consumer, &mut slot, Duration::from_secs(5)), "new clips decode");
        assert!(!engine.status.failed.load(Ordering::Acquire));
        drop(engine); // joins the worker
    }

    #[test]
    fn keeps_the_newest_phrase_when_the_audio_thread_is_not_consuming() {
        let params = Arc::new(LatentLiveParams::default());
        let (producer, mut consumer) = phrase_queue();
        let engine = Engine::start_with(params.clone(), producer, tiny).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while engine.status.decodes.load(Ordering::Acquire) < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 1..=10 {
            set(&params.temperature, 0.1 * i as f32);
            std::thread::sleep(Duration::from_millis(15));
        }
        // The queue holds 4; later phrases wait as "unsent", each replacing the last.
        let mut slot = Phrase::EMPTY;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            consumer.pop_newest(&mut slot);
            if slot.generation >= 2 && slot.generation == engine.status.generation.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let newest = engine.status.generation.load(Ordering::Acquire);
        assert!(newest >= 2, "decoded {newest}");
        assert_eq!(slot.generation, newest, "the newest phrase arrives, whatever the queue held");
        drop(engine);
    }

    #[test]
    fn embedded_model_decodes_a_phrase() {
        let params = Arc::new(LatentLiveParams::default());
        let (producer, mut consumer) = phrase_queue();
        let engine = Engine::start(params, producer).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(&mut consumer, &mut slot, Duration::from_secs(60)), "failed: {}", engine.status.failed.load(Ordering::Acquire));
        assert_eq!(slot.steps, 32);
        assert!(slot.notes().iter().all(|n| n.start < n.end && n.end <= 32));
    }
}
