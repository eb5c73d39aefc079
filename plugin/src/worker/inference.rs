//! The inference thread: owns the model, turns parameter changes into phrases.
//!
//! Each time it wakes it:
//! 1. loads the model the `model` parameter names, and the groove model `Groove Model`
//!    names, when they changed;
//! 2. picks up clips restored with the host's project;
//! 3. runs the editor's commands and encodes the captures the audio thread sent
//!    ([`super::commands`]);
//! 4. when what decides z changed, composes z
//!    ([`latent_live_core::model::latent::LatentSpace::compose`]), decodes, gives a drum
//!    phrase the humanizer's feel, and publishes a [`Phrase`] for the audio thread, and
//!    its [`Decoded`] view to the editor.
//!
//! Reading only the latest parameter values is the coalescing: a burst of automation
//! costs one decode per wake at most, never a backlog. Each step runs under
//! `catch_unwind`: an error or a panic is reported in the editor, and the last good model
//! and phrase go on playing.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::link::capture::CaptureRequest;
use crate::link::phrase::PhrasePublisher;
use crate::link::view::{Decoded, View, ViewPublisher};
use crate::link::{Command, Shared};
use crate::params::{
    ChordFollow, GrooveModelChoice, LatentLiveParams, ModelChoice, SceneCue, ZRequest,
};
use crate::state::clips::{Clips, Slot};
use crate::worker::models::{self, Loaded, LoadedGroove, ModelLoader, ModelSource};
use latent_live_core::model::latent::{slerp, z_tensor};
use latent_live_core::model::{Config, GrooveInput, Sampling};
use latent_live_core::music::chord::{self, Chord};
use latent_live_core::music::groove::Feel;
use latent_live_core::music::phrase::Phrase;
use latent_live_core::music::{drums, melody, Encoding, Event};

/// How often an active worker looks at the parameters when nothing is going on.
pub const IDLE_POLL: Duration = Duration::from_millis(20);
/// How often it looks for a while after a change: automation comes in bursts.
pub const BUSY_POLL: Duration = Duration::from_millis(2);
/// How long the worker stays on [`BUSY_POLL`] after the last change.
pub const BUSY_FOR: Duration = Duration::from_secs(1);

/// Decodes remembered for export and the editor: the audio thread may still play one
/// the worker has already replaced (it swaps at the next bar).
const RECENT_PHRASES: usize = 8;

pub struct Worker {
    pub(super) loader: ModelLoader,
    pub(super) loaded: Option<Loaded>,
    /// The last model load tried.
    attempted: Option<Attempt<ModelChoice>>,
    /// The groove model that humanizes drum phrases, and the last choice tried.
    humanizer: Option<LoadedGroove>,
    humanizer_attempted: Option<Attempt<GrooveModelChoice>>,
    /// The last pattern humanized and its feel: slider moves that keep the hits cost no
    /// second pass.
    humanized: Option<(Vec<Event>, Vec<[Feel; drums::NUM_DRUM_CLASSES]>)>,
    /// The tap-to-drums model, read at the first tap capture.
    pub(super) tap2drum: Option<LoadedGroove>,
    pub(super) params: Arc<LatentLiveParams>,
    phrases: PhrasePublisher,
    captures: rtrb::Consumer<CaptureRequest>,
    inbox: mpsc::Receiver<Command>,
    view: ViewPublisher,
    pub(super) shared: Arc<Shared>,
    /// The worker's copy of the persisted clips, and the store's revision it matches.
    pub(super) clips: Clips,
    pub(super) clips_revision: Option<u64>,
    generation: u64,
    /// The chord the newest phrase was decoded for: a phrase for another one may take
    /// over at the next beat.
    last_chord: Option<Chord>,
    pub(super) recent: Vec<Arc<Decoded>>,
    /// The request the newest phrase answers.
    decoded: Option<ZRequest>,
    /// When anything last changed: the worker looks often for a while after.
    last_change: Instant,
    /// The restore whose repairs were last reported.
    restore_seen: u64,
    /// The scene recall playing.
    recall: Option<Recall>,
}

/// A scene recall the worker plays: its cue, the scene's values when it has one (none
/// for a recall of the controls as they are), what the controls played when it came, and
/// the z a glide starts from.
struct Recall {
    cue: SceneCue,
    scene: Option<BTreeMap<String, f32>>,
    at_recall: BTreeMap<String, f32>,
    from: Option<Vec<f32>>,
}

impl Worker {
    pub fn new(
        loader: ModelLoader,
        params: Arc<LatentLiveParams>,
        phrases: PhrasePublisher,
        captures: rtrb::Consumer<CaptureRequest>,
        inbox: mpsc::Receiver<Command>,
        view: ViewPublisher,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            loader,
            loaded: None,
            attempted: None,
            humanizer: None,
            humanizer_attempted: None,
            humanized: None,
            tap2drum: None,
            params,
            phrases,
            captures,
            inbox,
            view,
            shared,
            clips: Clips::default(),
            clips_revision: None,
            generation: 0,
            last_chord: None,
            recent: Vec::with_capacity(RECENT_PHRASES),
            decoded: None,
            last_change: Instant::now(),
            restore_seen: 0,
            recall: None,
        }
    }

    pub fn run(mut self) {
        // Whatever ends this thread early tells the audio thread not to wait for it.
        struct Failed(Arc<Shared>);
        impl Drop for Failed {
            fn drop(&mut self) {
                if !self.0.stop.load(Ordering::Acquire) {
                    self.0.status.failed.store(true, Ordering::Release);
                }
            }
        }
        let _failed = Failed(self.shared.clone());
        while !self.stopping() {
            if self.wake_up() {
                self.last_change = Instant::now();
            }
            let timeout = if !self.shared.active.load(Ordering::Acquire) {
                None
            } else if self.last_change.elapsed() < BUSY_FOR {
                Some(BUSY_POLL)
            } else {
                Some(IDLE_POLL)
            };
            self.shared.waker.sleep(timeout);
        }
    }

    pub(super) fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// One round of work; whether anything changed.
    fn wake_up(&mut self) -> bool {
        self.shared.status.wakes.fetch_add(1, Ordering::Relaxed);
        let revisions = (
            self.params.clips.revision(),
            self.shared.status.handled.load(Ordering::Acquire),
        );
        self.guarded("loading the model", |w| w.load_model_if_changed());
        self.guarded("loading the groove model", |w| {
            w.load_humanizer_if_changed()
        });
        self.guarded("restoring the clips", |w| w.sync_clips());
        self.report_restore();
        while let Ok(command) = self.inbox.try_recv() {
            self.guarded("running a command", |w| w.handle(command));
            self.shared.status.handled.fetch_add(1, Ordering::AcqRel);
        }
        while let Ok(capture) = self.captures.pop() {
            self.guarded("capturing a clip", |w| w.capture(capture));
            self.shared.status.handled.fetch_add(1, Ordering::AcqRel);
            self.shared
                .status
                .captures_handled
                .fetch_add(1, Ordering::AcqRel);
        }
        // Read last: the request carries the revisions of the clips just stored.
        let request = self.shared.status.request(&self.params);
        let wanted = Attempt::new(
            request.model,
            ModelChoice::File,
            request.model_file_revision,
        );
        if self.attempted != Some(wanted) {
            // The model was chosen after this round loaded one (a host restoring a
            // project while the first model loads): the next round loads it. Decoding
            // the request with the model it replaces would deliver the wrong phrase.
            return true;
        }
        let changed = self.decoded != Some(request)
            || revisions
                != (
                    self.params.clips.revision(),
                    self.shared.status.handled.load(Ordering::Acquire),
                );
        if self.loaded.is_none() {
            // Nothing can be decoded: an offline render must not wait for it.
            self.shared
                .status
                .delivered
                .store(request.fingerprint(), Ordering::Release);
        } else if self.decoded != Some(request) {
            self.decoded = Some(request);
            if self
                .guarded("decoding", |w| w.decode_and_publish(&request))
                .is_none()
            {
                // The last good phrase plays on; an offline render goes on with it.
                self.shared
                    .status
                    .delivered
                    .store(request.fingerprint(), Ordering::Release);
            }
        }
        changed
    }

    /// Runs one step of work; a panic in it is reported like an error and the worker
    /// goes on. `None` when it panicked.
    fn guarded<T>(&mut self, what: &str, work: impl FnOnce(&mut Self) -> T) -> Option<T> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(value) => Some(value),
            Err(panic) => {
                let reason = models::panic_message(panic.as_ref());
                self.shared.status.report(Some(format!(
                    "internal error while {what}: {reason}; the last good phrase plays on"
                )));
                None
            }
        }
    }

    /// Loads the chosen model when the choice (or the chosen file) changed. A model that
    /// fails to load leaves the previous one playing, with the error for the editor.
    fn load_model_if_changed(&mut self) {
        let choice = self.params.model.value();
        let attempt = Attempt::new(choice, ModelChoice::File, self.params.model_file.revision());
        if !attempt.is_new(&mut self.attempted) {
            return;
        }
        match models::load(
            &self.loader,
            choice,
            self.params.model_file.get(),
            &self.shared.stop,
        ) {
            Ok(Some(loaded)) => {
                self.shared.status.set_model_name(&loaded.name);
                self.loaded = Some(loaded);
                // What was decoded, was decoded by the model this one replaces.
                self.decoded = None;
                self.publish();
                self.shared.status.report(None);
                self.reencode_clips();
            }
            Ok(None) => {}
            // The previous model, if any, keeps playing; the next attempt waits for
            // another choice or file.
            Err(e) => self
                .shared
                .status
                .report(Some(format!("cannot load the model ({choice:?}): {e}"))),
        }
    }

    /// Loads the chosen groove model when the choice (or its file) changed; one that
    /// fails leaves the previous one playing, with the error for the editor.
    fn load_humanizer_if_changed(&mut self) {
        let choice = self.params.drums.groove_model.value();
        let revision = self.params.groove_file.revision();
        let attempt = Attempt::new(choice, GrooveModelChoice::File, revision);
        if !attempt.is_new(&mut self.humanizer_attempted) {
            return;
        }
        let path = if choice == GrooveModelChoice::File {
            self.params.groove_file.get()
        } else {
            None
        };
        match models::load_groove(
            &self.loader,
            ModelSource::Humanizer(choice),
            GrooveInput::Humanize,
            path,
            &self.shared.stop,
        ) {
            Ok(Some(loaded)) => {
                self.humanizer = Some(loaded);
                self.humanized = None;
                self.shared.status.report(None);
            }
            Ok(None) => {}
            Err(e) => self.shared.status.report(Some(format!(
                "cannot load the groove model ({choice:?}): {e}"
            ))),
        }
    }

    /// The humanizer's feel for a drum pattern, from the cache when the hits are the same.
    fn feel_of(
        &mut self,
        events: &[Event],
    ) -> candle_core::Result<Option<&[[Feel; drums::NUM_DRUM_CLASSES]]>> {
        let Some(humanizer) = &self.humanizer else {
            return Ok(None);
        };
        if self
            .humanized
            .as_ref()
            .is_none_or(|(hits, _)| hits.as_slice() != events)
        {
            self.humanized = Some((events.to_vec(), humanizer.model.feel_of(events)?));
        }
        Ok(self.humanized.as_ref().map(|(_, feel)| feel.as_slice()))
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

    /// Tells the editor what a restored project needed repaired or dropped.
    fn report_restore(&mut self) {
        let revision = self.params.state_version.revision();
        if revision != self.restore_seen {
            self.restore_seen = revision;
            let repairs = self.params.state_version.report();
            if !repairs.is_empty() {
                self.shared
                    .status
                    .report(Some(format!("restored project: {}", repairs.join("; "))));
            }
        }
    }

    /// Shows the editor the model and the recent decodes.
    pub(super) fn publish(&mut self) {
        let model = self.loaded.as_ref().map(|l| l.info.clone());
        self.view.write(View {
            model,
            recent: self.recent.clone(),
        });
        self.shared.repaint.request_repaint();
    }

    fn decode_and_publish(&mut self, request: &ZRequest) {
        match self.decode(request) {
            Ok(decoded) => {
                let phrase = decoded.phrase;
                self.shared
                    .status
                    .generation
                    .store(phrase.generation, Ordering::Release);
                if self.recent.len() == RECENT_PHRASES {
                    self.recent.remove(0);
                }
                self.recent.push(Arc::new(decoded));
                self.publish();
                self.phrases.publish(phrase);
                self.shared
                    .status
                    .delivered
                    .store(request.fingerprint(), Ordering::Release);
                self.shared.status.decodes.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                self.shared.status.report(Some(format!(
                    "decode failed: {e}; the last good phrase plays on"
                )));
                self.shared
                    .status
                    .delivered
                    .store(request.fingerprint(), Ordering::Release);
            }
        }
    }

    /// The request as it plays: with the scene recalled played over the controls. A new
    /// recall brings its scene's clips back (not one a restored project names: its clips
    /// are the project's), and remembers the z playing for its glide.
    pub(super) fn played(&mut self, request: &ZRequest) -> ZRequest {
        let cue = request.cue;
        if cue.count == 0 {
            return *request;
        }
        if self.recall.as_ref().is_none_or(|r| r.cue != cue) {
            let scene = self.params.scene_store.get().get(cue.scene).cloned();
            if let Some(scene) = scene.as_ref().filter(|_| !cue.restored) {
                self.params.clips.update(|c| *c = scene.clips.clone());
                self.sync_clips();
            }
            self.recall = Some(Recall {
                cue,
                scene: scene.map(|s| s.values),
                at_recall: request.scene_values(),
                from: self.recent.last().map(|d| d.z.clone()),
            });
        }
        match self
            .recall
            .as_ref()
            .and_then(|r| Some((r.scene.as_ref()?, r)))
        {
            Some((values, recall)) => request.with_scene(values, &recall.at_recall),
            None => *request,
        }
    }

    fn decode(&mut self, request: &ZRequest) -> candle_core::Result<Decoded> {
        let started = Instant::now();
        let request = &self.played(request);
        let Some(loaded) = self.loaded.as_ref() else {
            candle_core::bail!("no model is loaded")
        };
        let mu = |slot| {
            self.clips
                .get(slot)
                .filter(|c| c.model == loaded.hash && c.mu.len() == loaded.space.z_size)
                .map(|c| c.mu.as_slice())
        };
        let mut z = loaded.space.compose(Slot::ALL.map(mu), &request.controls);
        // A glide into a scene: bar by bar from the z playing at the recall.
        let glide = request.glide();
        if let Some(from) = self.recall.as_ref().and_then(|r| r.from.as_ref()) {
            if glide < 1.0 && from.len() == z.len() {
                z = slerp(from, &z, glide);
            }
        }
        let steps = loaded.model.config.steps();
        let chords = progression(request, &self.clips, steps);
        let over_chords = loaded.model.config.chords.is_some();
        let fitted = loaded.model.config.encoding == Encoding::Melody
            && request.chord.is_some()
            && request.chord_fit > 0.0;
        let like = reference(request, &self.clips, &loaded.model.config);
        let like = like.as_deref().map(|l| [l]);
        let (events, activations) = loaded.model.decode_traced(
            &z_tensor(&loaded.model, std::slice::from_ref(&z))?,
            Some(&[chords.as_slice()]),
            like.as_ref().map(|l| l.as_slice()),
            Sampling::new(request.temperature, request.seed),
        )?;
        let events = events.into_iter().next().unwrap_or_default();
        self.generation += 1;
        let hidden = activations.len() / events.len().max(1);
        let phrase = match loaded.model.config.encoding {
            Encoding::Melody => {
                let mut notes = melody::decode(&events);
                if let Some(lock) = request.scale {
                    lock.fit(&mut notes);
                }
                // A chord model has played over the chords already.
                if !over_chords && request.chord.is_some() {
                    chord::fit_to_chords(&mut notes, &chords, request.chord_fit);
                }
                Phrase::from_notes(&notes, steps, self.generation)
            }
            Encoding::Drums | Encoding::Groove => {
                let mut phrase =
                    Phrase::from_drums(&drums::decode(&events), steps, self.generation);
                if let Some(feel) = self.feel_of(&events)? {
                    phrase.set_feel(feel);
                }
                phrase
            }
        };
        let mut phrase = phrase;
        phrase.swap_on_beat = request.chord_follow == ChordFollow::Beat
            && std::mem::replace(&mut self.last_chord, request.chord) != request.chord;
        self.shared
            .status
            .last_decode_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Release);
        Ok(Decoded {
            phrase,
            z,
            activations,
            hidden,
            chords: if over_chords || fitted {
                chords
            } else {
                Vec::new()
            },
        })
    }
}

/// The chords a phrase of `steps` is played over, one per step: the chord played in, held
/// for the whole phrase; failing one, the chords captured with the clip the morph is
/// nearer (then the other's); failing those, the default progression in the key set.
fn progression(request: &ZRequest, clips: &Clips, steps: usize) -> Vec<Option<Chord>> {
    if let Some(chord) = request.chord {
        return vec![Some(chord); steps];
    }
    nearer_first(request)
        .iter()
        .find_map(|&slot| clips.get(slot)?.chords(steps))
        .unwrap_or_else(|| chord::default_progression(request.key, steps))
}

/// The melody whose rhythm, contour and register a model with melody controls follows:
/// the nearer captured melody clip. `None` for other models, and without such a clip
/// (the model then follows its default reference).
fn reference(request: &ZRequest, clips: &Clips, config: &Config) -> Option<Vec<Event>> {
    if config.melody_controls.is_empty() {
        return None;
    }
    nearer_first(request).iter().find_map(|&slot| {
        let clip = clips.get(slot)?;
        (clip.encoding == Encoding::Melody && !clip.notes.is_empty())
            .then(|| melody::encode(&clip.notes, config.steps()))
    })
}

/// The clip slots, nearest the XY pad's point first (A first of equals): with two clips,
/// the one the morph is nearer.
fn nearer_first(request: &ZRequest) -> [Slot; 4] {
    let (x, y) = (request.controls.morph, request.controls.pad_y);
    let mut slots = Slot::ALL;
    slots.sort_by(|a, b| {
        let distance = |slot: &Slot| {
            let (cx, cy) = slot.corner();
            (x - cx).powi(2) + (y - cy).powi(2)
        };
        distance(a).total_cmp(&distance(b))
    });
    slots
}

/// What a load tried: a choice, and the chosen file's revision when the file is what
/// plays (another file's revision means nothing to an embedded model). A model slot
/// loads again only when its attempt changes, so a file that fails to load is not read
/// again at every wake.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Attempt<C> {
    choice: C,
    file_revision: u64,
}

impl<C: Copy + PartialEq> Attempt<C> {
    fn new(choice: C, file: C, file_revision: u64) -> Self {
        let file_revision = if choice == file { file_revision } else { 0 };
        Self {
            choice,
            file_revision,
        }
    }

    /// Whether `self` is new to `last`, which then remembers it.
    fn is_new(self, last: &mut Option<Self>) -> bool {
        last.replace(self) != Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::clips::{Clip, ClipSource};
    use latent_live_core::music::chord::Quality;

    #[test]
    fn a_phrase_plays_over_the_chord_held_then_the_clips_then_the_key() {
        let params = LatentLiveParams::default();
        let mut request = params.z_request();
        let mut clips = Clips::default();
        let names = |p: &[Option<Chord>]| -> Vec<String> {
            [0, 8, 16, 24]
                .iter()
                .map(|&t| p[t].map_or("N.C.".into(), |c| c.to_string()))
                .collect()
        };
        // Nothing played or captured: I-V-vi-IV in C major.
        assert_eq!(
            names(&progression(&request, &clips, 32)),
            ["C", "G", "Am", "F"]
        );
        // A clip captured over Dm then G (a bar each), repeated over the phrase.
        let (dm, g) = (Chord::new(2, Quality::Minor), Chord::new(7, Quality::Major));
        clips.set(
            Slot::A,
            Some(Clip {
                notes: vec![melody::Note {
                    pitch: 62,
                    start: 0,
                    end: 4,
                }],
                steps: 32,
                source: ClipSource::Input,
                mu: Vec::new(),
                model: String::new(),
                encoding: Encoding::Melody,
                chords: (0..32)
                    .map(|t| Chord::code(Some(if t < 16 { dm } else { g })))
                    .collect(),
            }),
        );
        assert_eq!(
            names(&progression(&request, &clips, 32)),
            ["Dm", "Dm", "G", "G"]
        );
        // A chord played in wins.
        request.chord = Some(Chord::new(9, Quality::Minor));
        assert_eq!(names(&progression(&request, &clips, 32)), ["Am"; 4]);
    }

    #[test]
    fn a_model_with_melody_controls_follows_the_nearer_melody_clip() {
        use latent_live_core::model::MelodyControl;
        let params = LatentLiveParams::default();
        let mut request = params.z_request();
        let mut clips = Clips::default();
        let plain = Config::tiny(2, false);
        let controlled = Config {
            melody_controls: vec![MelodyControl::Rhythm, MelodyControl::Shape],
            ..Config::tiny(2, false)
        };
        let clip = |pitch, encoding| Clip {
            notes: vec![melody::Note {
                pitch,
                start: 4,
                end: 8,
            }],
            steps: 32,
            source: ClipSource::Input,
            mu: Vec::new(),
            model: String::new(),
            encoding,
            chords: Vec::new(),
        };
        // No clip: the model's default reference.
        assert_eq!(reference(&request, &clips, &controlled), None);
        clips.set(Slot::A, Some(clip(62, Encoding::Melody)));
        clips.set(Slot::B, Some(clip(67, Encoding::Melody)));
        let of = |pitch| Some(melody::encode(&clip(pitch, Encoding::Melody).notes, 32));
        assert_eq!(reference(&request, &clips, &controlled), of(62));
        request.controls.morph = 0.8;
        assert_eq!(reference(&request, &clips, &controlled), of(67));
        // A drum clip is no melody to follow; the other clip is.
        clips.set(Slot::B, Some(clip(1, Encoding::Drums)));
        assert_eq!(reference(&request, &clips, &controlled), of(62));
        // Four clips: the corner of the pad nearest its point.
        clips.set(Slot::C, Some(clip(64, Encoding::Melody)));
        clips.set(Slot::D, Some(clip(65, Encoding::Melody)));
        request.controls.pad_y = 0.7;
        assert_eq!(reference(&request, &clips, &controlled), of(65));
        request.controls.morph = 0.2;
        assert_eq!(reference(&request, &clips, &controlled), of(64));
        // A model without melody controls follows nothing.
        assert_eq!(reference(&request, &clips, &plain), None);
    }
}
