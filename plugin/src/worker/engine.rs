//! The inference worker's handle: starts the thread, carries commands and wake-ups to it,
//! and stops it within [`STOP_WAIT`] whatever it is doing.
//!
//! One thread per plugin instance, started in `activate()` (not in `Default`, so plugin
//! scans stay fast). What it does each time it wakes is in [`super::inference`]. It
//! sleeps when there is nothing to do: parked for good while the plugin is inactive, and
//! while active it looks at the parameters every [`IDLE_POLL`] (host automation reaches
//! them on the audio thread, which must not make the syscall a wake-up is), every
//! [`BUSY_POLL`] for a moment after anything changed. Commands, restored state and
//! activation wake it at once.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::link::phrase::phrase_channel;
use crate::link::status::EngineStatus;
use crate::link::{AudioLink, CommandSender, Shared, WorkerPorts};
use crate::params::LatentLiveParams;
use crate::worker::inference::Worker;
use crate::worker::models::ModelLoader;

/// The longest `Drop` waits for the thread; past it the thread is left to finish alone.
pub const STOP_WAIT: Duration = Duration::from_millis(100);
/// Captures waiting for the worker; a musician cannot press faster than this drains.
const CAPTURE_QUEUE: usize = 8;

/// Handle to the worker thread; dropping it stops the thread.
pub struct Engine {
    thread: Option<JoinHandle<()>>,
    finished: mpsc::Receiver<()>,
    /// The same queue as the editor's: for hosts and tools that drive the worker without
    /// an editor.
    pub commands: CommandSender,
    pub shared: Arc<Shared>,
}

impl Engine {
    /// Starts the worker on `ports` (see [`ports`]), active; it loads its first model on
    /// its own thread.
    pub fn start(
        params: Arc<LatentLiveParams>,
        loader: ModelLoader,
        ports: WorkerPorts,
    ) -> std::io::Result<(Self, AudioLink)> {
        let WorkerPorts {
            commands,
            inbox,
            view,
            shared,
        } = ports;
        let (phrase_producer, phrases) = phrase_channel();
        let (captures, capture_consumer) = rtrb::RingBuffer::new(CAPTURE_QUEUE);
        let (finish, finished) = mpsc::sync_channel(1);
        shared.active.store(true, Ordering::Release);
        let worker = Worker::new(
            loader,
            params,
            phrase_producer,
            capture_consumer,
            inbox,
            view,
            shared.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("latent-live-inference".into())
            .spawn(move || {
                worker.run();
                let _ = finish.send(());
            })?;
        shared.waker.set_thread(thread.thread().clone());
        let link = AudioLink {
            phrases,
            captures,
            shared: shared.clone(),
        };
        Ok((
            Self {
                thread: Some(thread),
                finished,
                commands,
                shared,
            },
            link,
        ))
    }

    pub fn status(&self) -> &EngineStatus {
        &self.shared.status
    }

    /// Activation and deactivation: an inactive worker sleeps until woken.
    pub fn set_active(&self, active: bool) {
        self.shared.active.store(active, Ordering::Release);
        self.shared.waker.wake();
    }

    /// Waits up to `timeout` until the worker is done with the request `wanted` gives (the
    /// fingerprint of the parameters now: a clip stored meanwhile changes it); whether it
    /// was.
    pub fn wait_for(&self, wanted: impl Fn() -> u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.shared.waker.wake();
        while !self.shared.status.has_delivered(wanted()) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        true
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.waker.wake();
        // The worker checks `stop` inside every long loop and does its blocking I/O on
        // helper threads, so it ends within milliseconds. Should it not, the host's main
        // thread is not held hostage: the thread is left to end on its own.
        if self.finished.recv_timeout(STOP_WAIT).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::capture::CaptureRequest;
    use crate::link::phrase::PhraseConsumer;
    use crate::link::{ports, Command};
    use crate::params::{CaptureSource, ModelChoice};
    use crate::state::clips::{ClipSource, Clips, Slot};
    use crate::worker::error::WorkerError;
    use crate::worker::inference::{BUSY_FOR, IDLE_POLL};
    use crate::worker::models::ModelSource;
    use latent_live_core::model::ModelError;
    use latent_live_core::model::{Config, MelodyControl, ModelCard, ModelFile, MAX_STEPS};
    use latent_live_core::music::melody::Note;
    use latent_live_core::music::midi;
    use latent_live_core::music::phrase::Phrase;
    use nice_plug::prelude::Param;
    use std::collections::BTreeMap;
    use std::io::ErrorKind;

    fn wait_for(consumer: &mut PhraseConsumer, slot: &mut Phrase, timeout: Duration) -> bool {
        wait_until(timeout, || consumer.pop_newest(slot))
    }

    use crate::testing::{set_normalized as set, wait_until};

    fn set_plain(param: &nice_plug::prelude::FloatParam, value: f32) {
        set(param, param.preview_normalized(value));
    }

    /// Random tiny models: they decode in microseconds, so the tests are about the thread.
    /// `File` loads a 4-bar one (named by its path); the embedded choices a 2-bar one; the
    /// groove models are tiny GrooVAEs.
    fn tiny_loader() -> ModelLoader {
        use latent_live_core::model::GrooveInput;
        use latent_live_core::music::Encoding;
        Arc::new(|source, path| {
            let groove = |groove_input| Config {
                encoding: Encoding::Groove,
                groove_input,
                ..Config::tiny(2, false)
            };
            let config = match (source, path) {
                (ModelSource::Pattern(ModelChoice::File), Some("tiny-4bar")) => {
                    Config::tiny(4, true)
                }
                (ModelSource::Pattern(ModelChoice::File), Some("tiny-2bar")) => {
                    Config::tiny(2, false)
                }
                // An imported Magenta checkpoint without its encoder.
                (ModelSource::Pattern(ModelChoice::File), Some("tiny-decoder-only")) => Config {
                    encoder: Vec::new(),
                    ..Config::tiny(2, false)
                },
                // An imported mel_2bar_multicontrol-like checkpoint.
                (ModelSource::Pattern(ModelChoice::File), Some("tiny-multicontrol")) => Config {
                    chords: Some(latent_live_core::model::ChordEncoding::Pitch),
                    melody_controls: vec![
                        MelodyControl::Rhythm,
                        MelodyControl::Shape,
                        MelodyControl::Register {
                            boundaries: vec![48, 60, 72],
                        },
                    ],
                    ..Config::tiny(2, false)
                },
                (ModelSource::Pattern(ModelChoice::File), _) => {
                    return Err(WorkerError::Model(ModelError::Io {
                        path: path.unwrap_or_default().into(),
                        source: std::io::Error::new(ErrorKind::InvalidData, "not a model"),
                    }))
                }
                (ModelSource::Pattern(ModelChoice::Groove2Bar), _) => Config {
                    encoding: Encoding::Drums,
                    ..Config::tiny(2, false)
                },
                (ModelSource::Pattern(ModelChoice::Pop2BarChords), _) => Config {
                    chords: Some(latent_live_core::model::ChordEncoding::Pitch),
                    ..Config::tiny(2, false)
                },
                (ModelSource::Pattern(_), _) => Config::tiny(2, false),
                (ModelSource::Humanizer(_), _) => groove(GrooveInput::Humanize),
                (ModelSource::Tap2Drum, _) => groove(GrooveInput::Tap),
            };
            let name = match source {
                ModelSource::Pattern(choice) => format!("tiny-{choice:?}"),
                other => format!("tiny-{other:?}"),
            };
            let card = ModelCard {
                name,
                ..ModelCard::default()
            };
            let extra = BTreeMap::from([("kl_ranking".to_string(), "[3, 1, 0]".to_string())]);
            Ok(ModelFile::random(config, card, extra)?)
        })
    }

    /// A worker on the tiny models, started on `params`, with its first phrase.
    fn started(params: &Arc<LatentLiveParams>) -> (Engine, AudioLink, Phrase) {
        started_with(params, tiny_loader())
    }

    /// A worker loading its models with `loader`, started on `params`, with its first
    /// phrase.
    fn started_with(
        params: &Arc<LatentLiveParams>,
        loader: ModelLoader,
    ) -> (Engine, AudioLink, Phrase) {
        let (engine, mut link) = Engine::start(params.clone(), loader, ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(
            &mut link.phrases,
            &mut slot,
            Duration::from_secs(20)
        ));
        (engine, link, slot)
    }

    fn capture(phrase: Phrase, slot: Slot, from_input: bool) -> CaptureRequest {
        CaptureRequest {
            slot,
            source: if from_input {
                CaptureSource::Input
            } else {
                CaptureSource::Playing
            },
            phrase,
            chords: [0; MAX_STEPS],
        }
    }

    #[test]
    fn a_model_chosen_while_another_loads_is_the_one_that_plays() {
        // A host restores a project (the 4-bar model) while the first model loads: the
        // phrase must be the 4-bar model's, not the default's with the project's values.
        let params = Arc::new(LatentLiveParams::default());
        let chooser = params.clone();
        let tiny = tiny_loader();
        let loader: ModelLoader = Arc::new(move |source, path| {
            let hierarchical = source == ModelSource::Pattern(ModelChoice::Folk4Bar);
            if source == ModelSource::Pattern(ModelChoice::Folk2Bar) {
                let four_bars = chooser.model.preview_normalized(ModelChoice::Folk4Bar);
                set(&chooser.model, four_bars);
            }
            if hierarchical {
                let card = ModelCard {
                    name: "tiny-4bar".into(),
                    ..ModelCard::default()
                };
                return Ok(ModelFile::random(
                    Config::tiny(4, true),
                    card,
                    BTreeMap::new(),
                )?);
            }
            tiny(source, path)
        });
        let (engine, mut link) = Engine::start(params.clone(), loader, ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_until(Duration::from_secs(20), || {
            link.phrases.pop_newest(&mut slot);
            engine
                .status()
                .has_delivered(params.z_request().fingerprint())
        }));
        assert_eq!(
            slot.steps, 64,
            "the phrase of the model chosen during the load"
        );
        assert_eq!(engine.status().model_name(), "tiny-4bar");
    }

    #[test]
    fn decodes_once_at_start_then_only_on_change() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)),
            "first phrase"
        );
        assert_eq!(slot.generation, 1);
        assert_eq!(slot.steps, 32);
        assert_eq!(
            engine.status().delivered.load(Ordering::Acquire),
            params.z_request().fingerprint()
        );
        // Nothing changed: nothing new.
        assert!(!wait_for(
            &mut link.phrases,
            &mut slot,
            Duration::from_millis(100)
        ));
        assert_eq!(engine.status().decodes.load(Ordering::Acquire), 1);

        set_plain(&params.latent.sliders[1], 2.5);
        assert!(
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)),
            "slider change decodes"
        );
        assert_eq!(slot.generation, 2);

        // A burst of changes is coalesced: far fewer decodes than changes.
        for i in 0..2_000 {
            set_plain(&params.latent.sliders[0], (i % 100) as f32 * 0.01);
        }
        std::thread::sleep(Duration::from_millis(50));
        let decodes = engine.status().decodes.load(Ordering::Acquire);
        assert!(decodes < 200, "{decodes} decodes for 2000 changes");
        assert!(!engine.status().failed.load(Ordering::Acquire));
    }

    #[test]
    fn keeps_the_newest_phrase_when_the_audio_thread_is_not_consuming() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        assert!(wait_until(Duration::from_secs(20), || engine
            .status()
            .decodes
            .load(Ordering::Acquire)
            >= 1));
        for i in 1..=10 {
            set_plain(&params.latent.temperature, 0.1 * i as f32);
            std::thread::sleep(Duration::from_millis(15));
        }
        // Nobody read the ten phrases: the newest is there, and the worker has said so for
        // the current parameters (activate() waits on that before the first block).
        let wanted = params.z_request().fingerprint();
        let started = Instant::now();
        assert!(engine.wait_for(|| wanted, Duration::from_secs(2)));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let mut slot = Phrase::EMPTY;
        wait_until(Duration::from_secs(5), || {
            link.phrases.pop_newest(&mut slot);
            slot.generation >= 2
                && slot.generation == engine.status().generation.load(Ordering::Acquire)
        });
        let newest = engine.status().generation.load(Ordering::Acquire);
        assert!(newest >= 2, "decoded {newest}");
        assert_eq!(slot.generation, newest, "the newest phrase arrives");
    }

    #[test]
    fn drum_models_capture_grooves_morph_between_them_and_refuse_melodies() {
        use latent_live_core::music::drums::Hit;
        use latent_live_core::music::Encoding;
        let params = Arc::new(LatentLiveParams::default());
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::Groove2Bar),
        );
        let (engine, mut link, mut slot) = started(&params);
        assert_eq!(
            slot.encoding,
            Encoding::Drums,
            "a drum model decodes drum phrases"
        );
        let handled = |n| {
            wait_until(Duration::from_secs(10), || {
                engine.status().handled.load(Ordering::Acquire) >= n
            })
        };
        let groove = |hits: &[(u32, u8)]| {
            Phrase::from_drums(
                &hits
                    .iter()
                    .map(|&(step, class)| Hit { step, class })
                    .collect::<Vec<_>>(),
                32,
                0,
            )
        };
        link.captures
            .push(capture(
                groove(&[(0, 0), (0, 2), (4, 1), (8, 0), (12, 1)]),
                Slot::A,
                true,
            ))
            .unwrap();
        link.captures
            .push(capture(
                groove(&[(0, 0), (2, 2), (6, 3), (10, 1), (14, 4)]),
                Slot::B,
                true,
            ))
            .unwrap();
        assert!(handled(2));
        let clips = params.clips.get();
        let (a, b) = (
            clips.a.clone().expect("groove A"),
            clips.b.clone().expect("groove B"),
        );
        assert_eq!((a.encoding, b.encoding), (Encoding::Drums, Encoding::Drums));
        assert_eq!(a.hits()[1], Hit { step: 0, class: 2 });
        assert_ne!(a.mu, b.mu);
        for morph in [0.0, 0.5, 1.0] {
            set(&params.latent.morph, morph);
            assert!(
                wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)),
                "morph {morph} decodes"
            );
            assert_eq!(slot.encoding, Encoding::Drums);
        }
        // A melody is not a groove: refused with the reason, the grooves kept.
        let riff = Phrase::from_notes(
            &[Note {
                pitch: 60,
                start: 0,
                end: 4,
            }],
            16,
            0,
        );
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(handled(3));
        assert!(
            engine
                .status()
                .message()
                .is_some_and(|m| m.contains("melody") && m.contains("drums")),
            "{:?}",
            engine.status().message()
        );
        assert_eq!(params.clips.get().a, Some(a));
    }

    #[test]
    fn drum_phrases_carry_the_humanizers_feel_and_taps_become_drum_clips() {
        use latent_live_core::music::Encoding;
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started(&params);
        let handled = |n| {
            wait_until(Duration::from_secs(10), || {
                engine.status().handled.load(Ordering::Acquire) >= n
            })
        };
        let taps = |steps: &[(u16, f32)]| {
            let mut p = Phrase::silent(32, 0);
            p.encoding = Encoding::Drums;
            for &(step, shift) in steps {
                p.push(latent_live_core::music::phrase::PhraseNote {
                    shift,
                    ..latent_live_core::music::phrase::PhraseNote::new(3, step, step + 1)
                });
            }
            p
        };
        let tapped = taps(&[(0, 0.0), (4, -0.2), (8, 0.1), (10, 0.0), (12, 0.3)]);
        // A melody model: taps make drum clips only.
        link.captures
            .push(CaptureRequest {
                slot: Slot::A,
                source: CaptureSource::Tap,
                phrase: tapped,
                chords: [0; MAX_STEPS],
            })
            .unwrap();
        assert!(handled(1));
        assert!(
            engine
                .status()
                .message()
                .is_some_and(|m| m.contains("drum model")),
            "{:?}",
            engine.status().message()
        );

        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::Groove2Bar),
        );
        // Random weights can decode silence: move the latent sliders until hits come.
        let mut felt = false;
        for i in 0..20 {
            set_plain(&params.latent.sliders[0], -2.5 + 0.25 * i as f32);
            if wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5))
                && slot.encoding == Encoding::Drums
                && !slot.is_empty()
            {
                felt = true;
                break;
            }
        }
        assert!(felt, "a drum phrase with hits");
        for note in slot.notes() {
            assert!(
                (1..=127).contains(&note.velocity) && (-0.5..=0.5).contains(&note.shift),
                "{note:?}"
            );
        }

        link.captures
            .push(CaptureRequest {
                slot: Slot::B,
                source: CaptureSource::Tap,
                phrase: tapped,
                chords: [0; MAX_STEPS],
            })
            .unwrap();
        assert!(handled(2));
        match params.clips.get().b {
            Some(b) => {
                assert_eq!(
                    (b.source, b.encoding, b.steps),
                    (ClipSource::Tap, Encoding::Drums, 32)
                );
                assert!(!b.mu.is_empty(), "encoded by the drum model");
            }
            // Random tap-to-drums weights may hear nothing: said so.
            None => assert!(
                engine
                    .status()
                    .message()
                    .is_some_and(|m| m.contains("no beat")),
                "{:?}",
                engine.status().message()
            ),
        }
        link.captures
            .push(CaptureRequest {
                slot: Slot::A,
                source: CaptureSource::Tap,
                phrase: taps(&[]),
                chords: [0; MAX_STEPS],
            })
            .unwrap();
        assert!(handled(3));
        assert!(engine
            .status()
            .message()
            .is_some_and(|m| m.contains("nothing was tapped")));
        assert!(!engine.status().failed.load(Ordering::Acquire));
    }

    #[test]
    fn captures_encode_persist_and_morph() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started(&params);
        let handled = |n| {
            wait_until(Duration::from_secs(10), || {
                engine.status().handled.load(Ordering::Acquire) >= n
            })
        };

        let riff = Phrase::from_notes(
            &[
                Note {
                    pitch: 60,
                    start: 0,
                    end: 4,
                },
                Note {
                    pitch: 67,
                    start: 8,
                    end: 16,
                },
            ],
            32,
            0,
        );
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(handled(1));
        let a = params.clips.get().a.expect("clip A stored");
        assert_eq!(a.source, ClipSource::Input);
        assert_eq!((a.steps, a.notes.len(), a.mu.len()), (32, 2, 8));
        assert!(
            a.model.starts_with("xxh3-"),
            "tied to the weights: {}",
            a.model
        );
        assert!(
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)),
            "a new clip decodes"
        );

        // Nothing played: reported, clip A kept.
        link.captures
            .push(capture(Phrase::EMPTY, Slot::A, true))
            .unwrap();
        assert!(handled(2));
        assert!(engine
            .status()
            .message()
            .unwrap()
            .contains("nothing was played"));
        assert_eq!(params.clips.get().a.as_ref(), Some(&a));

        let playing = Phrase::from_notes(
            &[Note {
                pitch: 72,
                start: 4,
                end: 30,
            }],
            32,
            9,
        );
        link.captures
            .push(capture(playing, Slot::B, false))
            .unwrap();
        assert!(handled(3));
        let b = params.clips.get().b.expect("clip B stored");
        assert_eq!(b.source, ClipSource::Playing);
        assert_ne!(a.mu, b.mu);

        // Morphing moves between them: each end decodes from its clip's mu.
        for morph in [0.0, 1.0, 0.5] {
            set(&params.latent.morph, morph);
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5));
        }
        assert!(!engine.status().failed.load(Ordering::Acquire));

        // A project restored with other clips is picked up (nice-plug calls `set`).
        let restored = Clips {
            a: Some(b.clone()),
            ..Clips::default()
        };
        nice_plug::params::persist::PersistentField::set(&params.clips, restored);
        assert!(
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5)),
            "restored clips decode"
        );
        assert_eq!(params.clips.get().a, Some(b));
    }

    /// One set of tiny weights for every melody model, their file, and their greedy
    /// decode of a z: a test can then decode what the worker plays.
    fn one_model() -> (ModelLoader, Arc<ModelFile>, impl Fn(&[f32]) -> Vec<Note>) {
        use latent_live_core::model::latent::z_tensor;
        use latent_live_core::model::Sampling;
        use latent_live_core::music::melody;
        let file = tiny_loader()(ModelSource::Pattern(ModelChoice::Folk2Bar), None).unwrap();
        let model = file.model(&candle_core::Device::Cpu).unwrap();
        let file = Arc::new(file);
        let (shared, tiny) = (file.clone(), tiny_loader());
        let loader: ModelLoader = Arc::new(move |source, path| match source {
            ModelSource::Pattern(_) => Ok((*shared).clone()),
            other => tiny(other, path),
        });
        let library = move |z: &[f32]| {
            let events = model
                .decode_like(
                    &z_tensor(&model, &[z.to_vec()]).unwrap(),
                    None,
                    None,
                    Sampling::Greedy,
                )
                .unwrap();
            melody::decode(&events[0])
        };
        (loader, file, library)
    }

    /// Whether the worker plays `expected` within a few seconds.
    fn plays(phrases: &mut PhraseConsumer, slot: &mut Phrase, expected: &[Note]) -> bool {
        wait_until(Duration::from_secs(10), || {
            phrases.pop_newest(slot);
            slot.melody_notes() == expected
        })
    }

    /// Scenes: stored from what plays, recalled at a cue over the controls that have not
    /// moved since, and glided into bar by bar, reaching the scene's z at its last bar.
    #[test]
    fn a_scene_recalled_plays_its_controls_and_a_glide_reaches_it_at_its_last_bar() {
        use crate::params::SceneCue;
        use latent_live_core::model::latent::{slerp, LatentSpace};
        let (loader, file, library) = one_model();
        let space = LatentSpace::of(&file).unwrap();
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started_with(&params, loader);
        let z_of = |lat1: f32, lat2: f32| {
            let mut controls = params.z_request().controls;
            controls.sliders[0] = lat1;
            controls.sliders[1] = lat2;
            space.compose([None; 4], &controls)
        };
        let [lat1, lat2] = [&params.latent.sliders[0], &params.latent.sliders[1]];
        set_plain(lat1, 2.0);
        assert!(plays(
            &mut link.phrases,
            &mut slot,
            &library(&z_of(2.0, 0.0))
        ));
        engine.commands.send(Command::StoreScene(1));
        assert!(wait_until(Duration::from_secs(10), || {
            engine.status().handled.load(Ordering::Acquire) >= 1
        }));
        let stored = params.scene_store.get().get(1).cloned().expect("scene 1");
        assert_eq!(stored.values["lat1"], 2.0);
        set_plain(lat1, 0.0);
        set_plain(lat2, -1.0);
        assert!(plays(
            &mut link.phrases,
            &mut slot,
            &library(&z_of(0.0, -1.0))
        ));
        // The audio thread cues scene 1 at bar 8: both sliders play the scene's values.
        let cue = |count, bar| {
            let status = &link.shared.status;
            status.drift_bar.store(bar, Ordering::Release);
            status.scene_cue.store(
                SceneCue {
                    scene: 1,
                    count,
                    bar,
                    restored: false,
                }
                .pack(),
                Ordering::Release,
            );
            link.shared.waker.wake();
        };
        cue(1, 8);
        let scene = z_of(2.0, 0.0);
        assert!(
            plays(&mut link.phrases, &mut slot, &library(&scene)),
            "recalled"
        );
        // Latent 2 moved since: it plays where it is; latent 1 stays the scene's.
        set_plain(lat2, 0.5);
        let moved = z_of(2.0, 0.5);
        assert!(
            plays(&mut link.phrases, &mut slot, &library(&moved)),
            "taken over"
        );
        // Recalled again with a 2-bar glide, from bar 16: halfway at bar 16, the scene
        // exactly at bar 17, its last.
        set(
            &params.scenes.glide,
            params.scenes.glide.preview_normalized(2),
        );
        let recalled = z_of(2.0, 0.0);
        assert_ne!(
            library(&moved),
            library(&recalled),
            "the glide has a way to go"
        );
        cue(2, 16);
        let halfway = slerp(&moved, &recalled, 0.5);
        assert!(
            plays(&mut link.phrases, &mut slot, &library(&halfway)),
            "bar 16"
        );
        link.shared.status.drift_bar.store(17, Ordering::Release);
        link.shared.waker.wake();
        assert!(
            plays(&mut link.phrases, &mut slot, &library(&recalled)),
            "bar 17"
        );
        // Back to the controls as they are: scene 0.
        let live = z_of(0.0, 0.5);
        let status = &link.shared.status;
        status.scene_cue.store(
            SceneCue {
                scene: 0,
                count: 3,
                bar: 18,
                restored: false,
            }
            .pack(),
            Ordering::Release,
        );
        status.drift_bar.store(19, Ordering::Release);
        link.shared.waker.wake();
        assert!(plays(&mut link.phrases, &mut slot, &library(&live)), "live");
        assert!(!engine.status().failed.load(Ordering::Acquire));
    }

    /// The XY pad blends four clips: at each corner it plays that clip's own decode, and
    /// on its bottom edge the A-B morph, whatever the pad's Y, while C and D are empty.
    #[test]
    fn the_pad_plays_each_of_four_clips_at_its_corner() {
        use latent_live_core::model::latent::slerp;
        let (loader, _, library) = one_model();
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started_with(&params, loader);
        let riff = |pitch: u8| {
            let notes: Vec<Note> = (0..4)
                .map(|i| Note {
                    pitch: pitch + 2 * i as u8,
                    start: i * 8,
                    end: i * 8 + 3,
                })
                .collect();
            Phrase::from_notes(&notes, 32, 0)
        };
        // Two clips first: the pad's Y moves nothing while the top edge is empty.
        for (slot, pitch) in [(Slot::A, 60), (Slot::B, 71)] {
            link.captures
                .push(capture(riff(pitch), slot, true))
                .unwrap();
        }
        let clips = || params.clips.get();
        assert!(wait_until(Duration::from_secs(10), || clips().b.is_some()));
        let (a, b) = (clips().a.unwrap().mu, clips().b.unwrap().mu);
        set(&params.latent.morph, 0.4);
        set(&params.pad.y, 0.8);
        let morph = library(&slerp(&a, &b, 0.4));
        assert!(plays(&mut link.phrases, &mut slot, &morph), "the A-B morph");
        for (slot, pitch) in [(Slot::C, 55), (Slot::D, 79)] {
            link.captures
                .push(capture(riff(pitch), slot, true))
                .unwrap();
        }
        assert!(wait_until(Duration::from_secs(10), || clips().d.is_some()));
        let four = clips();
        let mut corners = Vec::new();
        for at in Slot::ALL {
            let (x, y) = at.corner();
            set(&params.latent.morph, x);
            set(&params.pad.y, y);
            let own = library(&four.get(at).unwrap().mu);
            assert!(
                plays(&mut link.phrases, &mut slot, &own),
                "clip {at:?} at its corner"
            );
            corners.push(own);
        }
        corners.dedup();
        assert!(corners.len() > 1, "the corners play different phrases");
        assert!(!engine.status().failed.load(Ordering::Acquire));
    }

    #[test]
    fn file_capture_and_export_go_through_midi_files() {
        let dir = std::env::temp_dir().join(format!("latent-live-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let notes: Vec<Note> = (0..16)
            .map(|i| Note {
                pitch: 60 + (i % 5) as u8,
                start: i * 4,
                end: i * 4 + 3,
            })
            .collect();
        let source = dir.join("riff.mid");
        midi::write_file(&source, &notes, 100.0).unwrap();

        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started(&params);
        let handled = |n| {
            wait_until(Duration::from_secs(10), || {
                engine.status().handled.load(Ordering::Acquire) >= n
            })
        };

        engine.commands.send(Command::CaptureFile {
            slot: Slot::B,
            path: source.clone(),
        });
        assert!(handled(1));
        let b = params.clips.get().b.expect("clip B from the file");
        assert_eq!((b.steps, b.notes.len()), (32, 8));
        assert_eq!(b.source, ClipSource::File(source.display().to_string()));

        engine.commands.send(Command::CaptureFile {
            slot: Slot::A,
            path: dir.join("missing.mid"),
        });
        assert!(handled(2));
        assert!(engine.status().message().unwrap().contains("missing.mid"));
        assert!(params.clips.get().a.is_none());

        // Export what plays, as heard: an octave up.
        wait_for(&mut link.phrases, &mut slot, Duration::from_secs(5));
        engine
            .status()
            .playing_generation
            .store(slot.generation, Ordering::Release);
        set(
            &params.play.octave,
            params.play.octave.preview_normalized(1),
        );
        let out = dir.join("out.mid");
        engine.commands.send(Command::ExportMidi(out.clone()));
        assert!(handled(3));
        let exported = midi::import_file(&out).unwrap();
        // The importer folds pitches past 108 back by octaves, as it does for any file.
        let expected: Vec<u8> = slot
            .notes()
            .iter()
            .map(|n| crate::state::clips::fold_pitch(n.pitch + 12, 21, 108))
            .collect();
        assert_eq!(
            exported.notes.iter().map(|n| n.pitch).collect::<Vec<_>>(),
            expected
        );

        engine.commands.send(Command::ClearClip(Slot::B));
        assert!(handled(4));
        assert!(params.clips.get().b.is_none());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_chord_model_exports_lead_sheets_and_reads_their_chords_back() {
        use latent_live_core::music::chord::Chord;
        let dir = std::env::temp_dir().join(format!("latent-live-sheet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let params = Arc::new(LatentLiveParams::default());
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::Pop2BarChords),
        );
        let (engine, _link, slot) = started(&params);
        let handled = |n| {
            wait_until(Duration::from_secs(10), || {
                engine.status().handled.load(Ordering::Acquire) >= n
            })
        };
        engine
            .status()
            .playing_generation
            .store(slot.generation, Ordering::Release);
        // No chord played and no clip: the phrase plays over I-V-vi-IV in C.
        let out = dir.join("sheet.mid");
        engine.commands.send(Command::ExportMidi(out.clone()));
        assert!(handled(1));
        let sheet = midi::import_lead_sheet_file(&out).unwrap();
        let names = ["C", "G", "Am", "F"].map(|s| Chord::parse(s).unwrap());
        let want: Vec<Option<Chord>> = (0..32).map(|t| names[t / 8]).collect();
        assert_eq!(
            &sheet.chords[..32],
            &want[..],
            "the chords the phrase played over"
        );
        // Loaded back as a clip, the lead sheet keeps them.
        engine.commands.send(Command::CaptureFile {
            slot: Slot::A,
            path: out.clone(),
        });
        assert!(handled(2));
        let a = params.clips.get().a.expect("clip A from the lead sheet");
        assert_eq!(a.chords(32), Some(want));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_model_with_melody_controls_plays_before_and_after_a_clip_to_follow() {
        let dir = std::env::temp_dir().join(format!("latent-live-like-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let riff: Vec<Note> = (0..16)
            .map(|i| Note {
                pitch: 72 - (i % 4) as u8,
                start: i * 2,
                end: i * 2 + 1,
            })
            .collect();
        let source = dir.join("riff.mid");
        midi::write_file(&source, &riff, 120.0).unwrap();
        let params = Arc::new(LatentLiveParams::default());
        params
            .model_file
            .update(|f| *f = Some("tiny-multicontrol".into()));
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::File),
        );
        // No clip: it follows the default reference.
        let (engine, mut link, mut slot) = started(&params);
        let first = slot.generation;
        engine.commands.send(Command::CaptureFile {
            slot: Slot::A,
            path: source,
        });
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .handled
            .load(Ordering::Acquire)
            >= 1));
        assert!(params.clips.get().a.is_some());
        assert!(wait_until(Duration::from_secs(10), || {
            link.phrases.pop_newest(&mut slot) && slot.generation > first
        }));
        assert_eq!(engine.status().message(), None);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// magenta.js's `extraControls` shape, imported, through the plugin's own loader: it
    /// plays the library's decode over I–V–vi–IV, following the default reference, then
    /// the clip captured.
    #[test]
    fn an_imported_multicontrol_checkpoint_plays_the_librarys_decode_like_the_clip() {
        use crate::worker::models::default_loader;
        use latent_live_core::model::latent::{z_tensor, LatentSpace};
        use latent_live_core::model::magenta::{import, ImportOptions};
        use latent_live_core::model::Sampling;
        use latent_live_core::music::chord;
        use latent_live_core::music::key::{Key, Mode};
        use latent_live_core::music::melody;
        let dir = std::env::temp_dir().join(format!("latent-live-mc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../core/tests/fixtures/magenta/flat-multicontrol-f32");
        let file = import(&fixture, ImportOptions::default()).unwrap();
        let path = dir.join("multicontrol.safetensors");
        file.write(&path, candle_core::DType::F32).unwrap();
        let params = Arc::new(LatentLiveParams::default());
        params
            .model_file
            .update(|f| *f = Some(path.display().to_string()));
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::File),
        );
        let (engine, mut link, mut slot) = started_with(&params, default_loader());
        let model = file.model(&candle_core::Device::Cpu).unwrap();
        let space = LatentSpace::of(&file).unwrap();
        let progression = chord::default_progression(
            Key {
                tonic: 0,
                mode: Mode::Major,
            },
            32,
        );
        let library = |z: Vec<f32>, like: Option<&[u16]>| {
            let like = like.map(|l| vec![l]);
            let events = model
                .decode_like(
                    &z_tensor(&model, &[z]).unwrap(),
                    Some(&[progression.as_slice()]),
                    like.as_deref(),
                    Sampling::Greedy,
                )
                .unwrap();
            melody::decode(&events[0])
        };
        let origin = space.compose([None; 4], &params.z_request().controls);
        assert_eq!(
            slot.melody_notes(),
            library(origin, None),
            "the default reference"
        );
        // A clip to follow: its own mu, and its rhythm, contour and register.
        let riff: Vec<Note> = (0..8)
            .map(|i| Note {
                pitch: 76 - 2 * i as u8,
                start: i * 4,
                end: i * 4 + 2,
            })
            .collect();
        let source = dir.join("riff.mid");
        midi::write_file(&source, &riff, 120.0).unwrap();
        engine.commands.send(Command::CaptureFile {
            slot: Slot::A,
            path: source,
        });
        let first = slot.generation;
        assert!(wait_until(Duration::from_secs(10), || {
            link.phrases.pop_newest(&mut slot) && slot.generation > first
        }));
        let clip = params.clips.get().a.expect("clip A");
        let like = melody::encode(&clip.notes, 32);
        let z = space.compose(
            [Some(&clip.mu), None, None, None],
            &params.z_request().controls,
        );
        let followed = library(z.clone(), Some(&like));
        assert_ne!(followed, library(z, None), "the controls change the phrase");
        assert_eq!(slot.melody_notes(), followed, "the clip's controls");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn switching_models_reencodes_clips_and_bad_files_keep_the_old_model() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started(&params);
        let riff = Phrase::from_notes(
            &[Note {
                pitch: 62,
                start: 0,
                end: 8,
            }],
            32,
            0,
        );
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .handled
            .load(Ordering::Acquire)
            >= 1));

        // A file that is not a model: an error to show, the 2-bar model keeps playing.
        params
            .model_file
            .update(|f| *f = Some("not-a-model".into()));
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::File),
        );
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .message()
            .is_some_and(|m| m.contains("not-a-model"))));
        assert_eq!(engine.status().model_name(), "tiny-Folk2Bar");

        let first = params.clips.get().a.unwrap();
        params.model_file.update(|f| *f = Some("tiny-2bar".into()));
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .model_name()
            == "tiny-2bar"));
        assert!(wait_until(Duration::from_secs(10), || params
            .clips
            .get()
            .a
            .is_some_and(|c| c.model != first.model)));
        let a = params.clips.get().a.unwrap();
        assert!(a.mu != first.mu, "clip A re-encoded by the new model");
        assert!(engine.status().message().is_none());

        // The same file, rewritten with other weights (the tiny loader draws new ones):
        // same name, another hash, so the clip is encoded again.
        params.model_file.update(|f| *f = Some("tiny-2bar".into()));
        assert!(wait_until(Duration::from_secs(10), || params
            .clips
            .get()
            .a
            .is_some_and(|c| c.model != a.model)));
        assert_eq!(params.clips.get().a.unwrap().notes, a.notes);

        // A 4-bar model cannot place a 2-bar clip: it says so, plays, and keeps the clip.
        params.model_file.update(|f| *f = Some("tiny-4bar".into()));
        assert!(wait_until(Duration::from_secs(10), || link
            .phrases
            .pop_newest(&mut slot)
            && slot.steps == 64));
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .message()
            .is_some_and(|m| m.contains(
                "clip A: it is 2 bars, and the model plays 4 bars"
            ))));
        assert_eq!(params.clips.get().a.unwrap().notes, a.notes);
    }

    /// A worker playing a decoder-only model, with clip A captured (by inversion).
    fn decoder_only_with_clip_a() -> (Arc<LatentLiveParams>, Engine, AudioLink) {
        let params = Arc::new(LatentLiveParams::default());
        params
            .model_file
            .update(|f| *f = Some("tiny-decoder-only".into()));
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::File),
        );
        let (engine, mut link) = Engine::start(params.clone(), tiny_loader(), ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(
            wait_for(&mut link.phrases, &mut slot, Duration::from_secs(20)),
            "it decodes"
        );
        let riff = Phrase::from_notes(
            &[Note {
                pitch: 62,
                start: 0,
                end: 8,
            }],
            32,
            0,
        );
        link.captures.push(capture(riff, Slot::A, true)).unwrap();
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .handled
            .load(Ordering::Acquire)
            >= 1));
        (params, engine, link)
    }

    #[test]
    fn decoder_only_models_capture_by_inversion_and_clips_refine() {
        let (params, engine, _link) = decoder_only_with_clip_a();
        assert_eq!(engine.status().message(), None);
        let a = params.clips.get().a.expect("captured without an encoder");
        assert_eq!(a.mu.len(), 8);

        engine.commands.send(Command::RefineClip(Slot::A));
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .handled
            .load(Ordering::Acquire)
            >= 2));
        let refined = params.clips.get().a.unwrap();
        assert_eq!(
            (refined.notes.as_slice(), refined.mu.len()),
            (a.notes.as_slice(), 8)
        );
        assert_ne!(refined.mu, a.mu, "refining moves z");
        engine.commands.send(Command::RefineClip(Slot::B));
        assert!(wait_until(Duration::from_secs(10), || engine
            .status()
            .handled
            .load(Ordering::Acquire)
            >= 3));
        assert!(engine.status().message().unwrap().contains("empty"));
        assert!(!engine.status().failed.load(Ordering::Acquire));
    }

    #[test]
    fn drop_returns_at_once_even_during_a_read_that_never_ends() {
        let params = Arc::new(LatentLiveParams::default());
        params.model_file.update(|f| *f = Some("slow".into()));
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::File),
        );
        // A read that hangs, as on a dead network share.
        let hanging: ModelLoader = Arc::new(|_, _| {
            std::thread::sleep(Duration::from_secs(30));
            Err(WorkerError::NoFileChosen)
        });
        let (engine, _link) = Engine::start(params.clone(), hanging, ports().0).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        drop(engine);
        let took = started.elapsed();
        assert!(
            took <= STOP_WAIT + Duration::from_millis(50),
            "drop took {took:?}"
        );
    }

    #[test]
    fn drop_returns_at_once_during_a_refine() {
        let (_params, engine, _link) = decoder_only_with_clip_a();
        // Refines back to back: the drop lands inside one.
        for _ in 0..50 {
            engine.commands.send(Command::RefineClip(Slot::A));
        }
        std::thread::sleep(Duration::from_millis(30));
        let started = Instant::now();
        drop(engine);
        let took = started.elapsed();
        assert!(took <= STOP_WAIT, "drop took {took:?}");
    }

    #[test]
    fn a_panic_in_the_worker_is_reported_and_the_worker_goes_on() {
        let params = Arc::new(LatentLiveParams::default());
        let fine = tiny_loader();
        let loader: ModelLoader = Arc::new(move |choice, path| {
            if choice == ModelSource::Pattern(ModelChoice::File) {
                panic!("a model file the loader did not expect");
            }
            fine(choice, path)
        });
        let (engine, mut link) = Engine::start(params.clone(), loader, ports().0).unwrap();
        let mut slot = Phrase::EMPTY;
        assert!(wait_for(
            &mut link.phrases,
            &mut slot,
            Duration::from_secs(20)
        ));
        params.model_file.update(|f| *f = Some("boom".into()));
        set(
            &params.model,
            params.model.preview_normalized(ModelChoice::File),
        );
        assert!(
            wait_until(Duration::from_secs(10), || engine
                .status()
                .message()
                .is_some_and(|m| m.contains("did not expect"))),
            "{:?}",
            engine.status().message()
        );
        // The 2-bar model still plays and still decodes changes.
        assert_eq!(engine.status().model_name(), "tiny-Folk2Bar");
        set_plain(&params.latent.sliders[0], 1.5);
        assert!(wait_for(
            &mut link.phrases,
            &mut slot,
            Duration::from_secs(5)
        ));
        assert!(!engine.status().failed.load(Ordering::Acquire));
    }

    #[test]
    fn an_inactive_worker_sleeps_and_an_idle_one_rarely_wakes() {
        let params = Arc::new(LatentLiveParams::default());
        let (engine, mut link, mut slot) = started(&params);
        engine.set_active(false);
        std::thread::sleep(Duration::from_millis(50));
        let wakes = engine.status().wakes.load(Ordering::Acquire);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            engine.status().wakes.load(Ordering::Acquire) - wakes <= 1,
            "inactive: parked"
        );
        // A command wakes it at once.
        engine.commands.send(Command::ClearClip(Slot::A));
        assert!(wait_until(Duration::from_secs(1), || engine
            .status()
            .handled
            .load(Ordering::Acquire)
            >= 1));
        // Active and idle past the busy window: one look per IDLE_POLL.
        engine.set_active(true);
        std::thread::sleep(BUSY_FOR + Duration::from_millis(100));
        let wakes = engine.status().wakes.load(Ordering::Acquire);
        std::thread::sleep(Duration::from_millis(500));
        let idle = engine.status().wakes.load(Ordering::Acquire) - wakes;
        assert!(
            idle <= 500 / IDLE_POLL.as_millis() as u64 + 5,
            "{idle} wakes in 500 ms"
        );
        // A parameter change is still picked up.
        set_plain(&params.latent.sliders[2], -2.0);
        assert!(wait_for(
            &mut link.phrases,
            &mut slot,
            Duration::from_secs(2)
        ));
    }
}
