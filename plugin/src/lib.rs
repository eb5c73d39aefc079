//! Latent Live: perform the latent space of a MusicVAE model, live. The plugin
//! ([`LatentLive`], exported as CLAP and VST3; `src/main.rs` is the standalone), built on
//! `latent_live_core` (music encodings, the model, model files).
//!
//! Data flows one way: host -> [`params`] -> [`worker`] -> phrase -> [`audio`] thread ->
//! host. The modules, lowest first (each imports only those before it):
//! - [`state`]: the clips and the project's saved state, versioned and migrated;
//! - [`params`]: every parameter, with its stable id, and the snapshots the threads read
//!   of them ([`params::ZRequest`], [`params::Playback`]);
//! - [`link`]: everything that crosses between threads (the phrase hand-off, capture
//!   requests, commands, status, the editor's view);
//! - [`worker`], [`audio`] and [`editor`]: the three sides, which meet only in [`link`]:
//!   the inference thread (where z is composed and decoded), the audio thread (the
//!   [`audio::sequencer`] that schedules the phrase on the host's bars, capture, the
//!   audition synth), and the GUI;
//! - this file: the plugin's lifecycle (the first activation starts the worker) and
//!   `process()`. No allocation, lock or syscall on the audio thread.

pub mod audio;
#[cfg(feature = "editor")]
pub mod editor;
pub mod link;
pub mod params;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod worker;

use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

use audio::capture::Capturer;
use audio::chords::ChordListener;
use audio::output::{self as midi_out, Outbox, Thru};
use audio::pace::Pace;
use audio::scenes::SceneListener;
use audio::sequencer::{SeqEvent, Sequencer};
use audio::start::Starter;
use audio::synth::AuditionSynth;
use audio::timeline::{Clock, TransportInfo};
use link::{AudioLink, EditorLink, WorkerPorts};
use params::{LatentLiveParams, Playback};
use worker::engine::Engine;
use worker::models;

/// The longest `activate()` waits for the phrase of the restored state (the embedded
/// models load and decode in well under this).
const ACTIVATE_WAIT: Duration = Duration::from_secs(2);

/// The instrument: plays the phrase decoded from the current z, and sends it as MIDI.
pub struct LatentLive {
    params: Arc<LatentLiveParams>,
    /// The inference worker, started by the first `activate()` on `ports`.
    engine: Option<Engine>,
    ports: Option<WorkerPorts>,
    /// The editor's ends of the worker's queues, until the host asks for the editor.
    #[cfg_attr(not(feature = "editor"), allow(dead_code))]
    editor_link: Option<EditorLink>,
    /// The audio thread's ends of the worker's queues.
    link: Option<AudioLink>,
    sequencer: Sequencer,
    synth: AuditionSynth,
    capturer: Capturer,
    chords: ChordListener,
    scenes: SceneListener,
    starter: Starter,
    /// MIDI Thru, and the note-offs owed to the host.
    thru: Thru,
    outbox: Outbox,
    /// The plugin's own beat clock (capture stamps, hosts without a position).
    clock: Clock,
    sample_rate: f32,
    /// How fast the host renders: whether `process()` may wait for the worker.
    pace: Pace,
    /// Captures sent to the worker, compared with its count when `process()` waits.
    captures_sent: u64,
    /// What the worker had delivered when `process()` last waited for it in vain.
    /// Until it delivers something else it is not waited for again, so that a stuck
    /// worker costs a bounce one wait, not one per parameter change.
    gave_up: Option<u64>,
    /// A panic was caught in `process()`: the next block ends every note.
    recovering: bool,
}

impl Default for LatentLive {
    fn default() -> Self {
        // Cheap on purpose: hosts create instances to scan them. The model loads in activate().
        let (ports, editor_link) = link::ports();
        Self {
            params: Arc::new(LatentLiveParams::default()),
            engine: None,
            ports: Some(ports),
            editor_link: Some(editor_link),
            link: None,
            sequencer: Sequencer::new(),
            synth: AuditionSynth::new(48_000.0),
            capturer: Capturer::default(),
            chords: ChordListener::default(),
            scenes: SceneListener::default(),
            starter: Starter::default(),
            thru: Thru::default(),
            outbox: Outbox::default(),
            clock: Clock::default(),
            sample_rate: 48_000.0,
            pace: Pace::default(),
            captures_sent: 0,
            gave_up: None,
            recovering: false,
        }
    }
}

impl LatentLive {
    /// The worker, once activated: its status, and [`link::Command`]s for the editor.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }
}

impl Plugin for LatentLive {
    const NAME: &'static str = "Latent Live";
    const VENDOR: &'static str = "Latent Live developers";
    const URL: &'static str = "https://latentlive.dev";
    const EMAIL: &'static str = "dev@latentlive.dev";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    // An instrument: no main input, a stereo output for the audition synth (some hosts
    // refuse plugins without audio outputs).
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: None,
        main_output_channels: NonZeroU32::new(2),
        ..AudioIOLayout::const_default()
    }];

    // Notes played in are recorded for Capture and forwarded (MIDI Thru) with the
    // controllers played beside them (a sustain pedal, a mod wheel); a Program Change on
    // the scene channel recalls a scene (CLAP: nice-plug's VST3 wrapper passes on CCs but
    // never a program change). CCs out for all-notes-off and Thru.
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;
    // Parameters are read once per block: playback settings apply per note and z changes
    // go through the worker, so splitting blocks at automation points would buy nothing.
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type SysExMessage = ();
    type BackgroundTask = ();
    #[cfg(feature = "editor")]
    type Editor = nice_plug_egui::EguiEditor<editor::Editor>;
    /// Built without its editor (the fuzz targets): the host gets none.
    #[cfg(not(feature = "editor"))]
    type Editor = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    /// Every restored project goes through here first: migrated to this version, its
    /// clips, model path and parameter values validated (see [`worker::state`]).
    fn filter_state(state: &mut PluginState) {
        for message in state::migrate(state, &LatentLiveParams::default()) {
            nice_warn!("Latent Live: restored project: {message}");
        }
    }

    #[cfg(feature = "editor")]
    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.editor_link.take()?)
    }

    fn activate(
        &mut self,
        _layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.sample_rate = buffer_config.sample_rate;
        self.pace
            .activate(buffer_config.process_mode == ProcessMode::Offline);
        self.synth.set_sample_rate(buffer_config.sample_rate);
        if let Some(ports) = self.ports.take() {
            match Engine::start(self.params.clone(), models::default_loader(), ports) {
                Ok((engine, link)) => {
                    self.engine = Some(engine);
                    self.link = Some(link);
                }
                Err(e) => {
                    nice_error!("Latent Live: cannot start the inference thread: {e}");
                    return false;
                }
            }
        }
        if let Some(engine) = &self.engine {
            engine.set_active(true);
            // So that the first block already plays the restored state's phrase, also in
            // hosts that render faster than real time without saying so.
            let status = engine.status();
            engine.wait_for(|| status.request(&self.params).fingerprint(), ACTIVATE_WAIT);
        }
        true
    }

    fn reset(&mut self) {
        self.sequencer.request_all_notes_off();
        self.synth.reset();
        self.capturer.clear();
        self.chords.clear();
        self.scenes.clear();
        self.starter.clear();
        // A render after a reset starts where a fresh instance would.
        self.clock = Clock::default();
        self.pace.reset();
    }

    fn deactivate(&mut self) {
        // No events can be sent now; the next process() sends the note-offs.
        self.sequencer.request_all_notes_off();
        if let Some(engine) = &self.engine {
            engine.set_active(false);
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let samples = buffer.samples();
        let transport =
            TransportInfo::from_host(context.transport(), self.sample_rate, &self.clock);
        let forward = self.params.play.thru.value() || self.params.bypass.value();
        while let Some(event) = context.next_event() {
            self.take_input(&event, &transport, forward);
        }
        if let Some(link) = &self.link {
            // Drift and glides decode z where they are at the bar the next phrase takes
            // over at.
            let played_on = self
                .starter
                .transport(&transport, self.params.start.mode.value());
            let bar = self
                .sequencer
                .next_swap_bar(&played_on, self.params.play.swap.value());
            link.shared.status.drift_bar.store(bar, Ordering::Release);
            // A scene recalled takes over at the same swap point.
            let cue = self.scenes.cue(&self.params.scenes, bar);
            link.shared
                .status
                .scene_cue
                .store(cue.pack(), Ordering::Release);
        }
        let seconds = samples as f64 / self.sample_rate as f64;
        if let Some(patience) = self.pace.patience(Instant::now(), seconds) {
            self.wait_for_worker(patience);
        }
        let channels = buffer.as_slice();
        for channel in channels.iter_mut() {
            channel.fill(0.0);
        }
        // MIDI is made whatever audio buffers the host gives (none, for some MIDI-only
        // routings); the audition synth needs the stereo pair.
        let audio = match channels {
            [left, right, ..] => Some((&mut **left, &mut **right)),
            _ => None,
        };
        let mut send = |event| context.try_send_event(event).is_ok();
        // A panic here would cross the host's FFI boundary and take the host down.
        // Nothing below should panic (sanitised transport, checked arithmetic and
        // indexing); if something does anyway, the set goes on, every note ended.
        let rendered = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.render_block(&transport, forward, samples, audio, &mut send)
        }));
        if rendered.is_err() {
            self.recovering = true;
        }
        self.clock.advance(&transport, samples);
        ProcessStatus::KeepAlive
    }
}

impl LatentLive {
    /// An event played in: a trigger's note (`Play` on Note Trigger), a scene's note or
    /// program change, the chord's notes (heard, forwarded with Chord Thru), or the
    /// melody's (recorded for Capture) and the controllers beside them; `forward`: MIDI
    /// Thru or bypass.
    pub fn take_input(&mut self, event: &NoteEvent<()>, transport: &TransportInfo, forward: bool) {
        // A trigger starts the phrase, a scene's note or program change recalls the
        // scene; neither is melody nor chord, nor passed on.
        if self.starter.hear(event, &self.params.start, transport)
            || self.scenes.hear(event, &self.params.scenes)
        {
            return;
        }
        let chord = self.chords.hear(event, &self.params.chords, transport);
        if !chord {
            self.capturer.record(event, transport);
        }
        if forward && (!chord || self.params.chords.thru.value()) {
            self.thru.forward(event);
        }
    }

    /// Rendering offline or faster than real time (see [`audio::pace`]), the host calls
    /// `process()` back to back, far faster than the worker decodes. To render the same
    /// notes as real time, wait until the worker is done with the current parameters (it
    /// says so for every outcome: a phrase handed over, no model, an error), waking it
    /// rather than waiting for its next look: with no real-time deadline, a syscall is
    /// allowed. The one place `process()` waits.
    fn wait_for_worker(&mut self, patience: Duration) {
        let Some(link) = &self.link else { return };
        let shared = &link.shared;
        let delivered = || shared.status.delivered.load(Ordering::Acquire);
        if self.gave_up.is_some_and(|then| then == delivered()) {
            return;
        }
        self.gave_up = None;
        let deadline = Instant::now() + patience;
        // Captures first: a stored clip changes the request itself.
        loop {
            let wanted = shared.status.request(&self.params).fingerprint();
            let captured =
                shared.status.captures_handled.load(Ordering::Acquire) >= self.captures_sent;
            if captured && shared.status.has_delivered(wanted) {
                return;
            }
            if Instant::now() > deadline {
                self.gave_up = Some(delivered());
                return;
            }
            shared.waker.wake();
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The body of `process()` once the host's transport and input are read: captures,
    /// takes the newest phrase, runs the sequencer, merges its events with the notes
    /// played in (`forward`: MIDI Thru or bypass), hands them to the host through `send`
    /// (which says whether the host took the event) and plays them on the audition synth
    /// into `audio` (left and right, at least `samples` long, already cleared). Real-time
    /// safe.
    pub fn render_block(
        &mut self,
        transport: &TransportInfo,
        forward: bool,
        samples: usize,
        audio: Option<(&mut [f32], &mut [f32])>,
        send: &mut impl FnMut(NoteEvent<()>) -> bool,
    ) {
        let outbox = &mut self.outbox;
        outbox.begin_block(send);
        let sent = &mut self.captures_sent;
        let mut link = self.link.as_mut();
        self.capturer.process(
            &self.params,
            transport,
            self.sequencer.current(),
            &self.chords,
            &mut |request| {
                // Full only if the worker is stuck; the press is lost, as a button would be.
                if link
                    .as_mut()
                    .is_some_and(|link| link.captures.push(request).is_ok())
                {
                    *sent += 1;
                }
            },
        );
        if let Some(link) = self.link.as_mut() {
            self.sequencer.receive(&mut link.phrases);
        }
        let params = &self.params;
        let mode = params.start.mode.value();
        let played_on = self.starter.transport(transport, mode);
        let mut play = Playback::from_params(params);
        play.shift = self.starter.shift(mode, self.sequencer.current().tonic);
        let (left, right) = audio.unwrap_or_default();
        let samples_out = samples.min(left.len()).min(right.len());
        let synth_on = params.audition.on.value() && !play.bypass && samples_out == samples;
        if !synth_on {
            self.synth.reset();
        }
        self.synth.set_drum_kit(play.drum_channel, play.drum_notes);
        let gain = &params.audition.gain.smoothed;
        let synth = &mut self.synth;
        let mut rendered = 0usize;
        // Every event the plugin sends goes through here, in time order: heard on the
        // synth at its sample, then handed to the host.
        let mut emit = |event: NoteEvent<()>| {
            if synth_on {
                let upto = (event.timing() as usize).clamp(rendered, samples);
                synth.render(
                    &mut left[rendered..upto],
                    &mut right[rendered..upto],
                    |_| gain.next(),
                );
                rendered = upto;
                synth.handle(&event);
            }
            outbox.send(event, send);
        };
        let thru = &mut self.thru;
        if std::mem::take(&mut self.recovering) {
            self.sequencer = Sequencer::new();
            self.sequencer.request_all_notes_off();
        }
        if !forward || self.sequencer.all_notes_off_requested() {
            for (channel, key) in thru.take_held().iter() {
                emit(midi_out::note(false, 0, channel, key));
            }
        }
        // A trigger let go inside the block stops the phrase at its sample: the block is
        // played in two parts, the second on a stopped transport.
        let stop = self
            .starter
            .release(mode)
            .map_or(samples, |at| at.min(samples));
        let stopped = TransportInfo {
            playing: false,
            ..played_on
        };
        for (transport, from, to) in [(&played_on, 0, stop), (&stopped, stop, samples)] {
            if to > from || (from == 0 && to == samples) {
                let offset = from as u32;
                self.sequencer
                    .process_block(transport, &play, to - from, &mut |event| {
                        let event = event.delayed(offset);
                        thru.until(Some(event.timing()), &mut emit);
                        emit(host_event(event));
                    });
            }
        }
        self.starter.end_block();
        thru.until(None, &mut emit);
        if synth_on {
            synth.render(
                &mut left[rendered..samples],
                &mut right[rendered..samples],
                |_| gain.next(),
            );
        }
        if let Some(link) = &self.link {
            let status = &link.shared.status;
            let generation = self.sequencer.current().generation;
            if status.playing_generation.swap(generation, Ordering::AcqRel) != generation {
                link.shared.repaint.request_repaint();
            }
            // The editor's playhead follows the phrase's timeline, whatever starts it.
            status.tempo.store(played_on.tempo, Ordering::Release);
            if status
                .transport_playing
                .swap(played_on.playing, Ordering::AcqRel)
                != played_on.playing
            {
                link.shared.repaint.request_repaint();
            }
            status
                .position_beats
                .store(played_on.pos_beats, Ordering::Release);
        }
    }
}

/// A sequencer event as the note event the host is sent.
fn host_event(event: SeqEvent) -> NoteEvent<()> {
    match event {
        SeqEvent::NoteOn {
            timing,
            channel,
            key,
            velocity,
        } => NoteEvent::NoteOn {
            timing,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(channel),
            key: Key::Number(key),
            velocity,
        },
        SeqEvent::NoteOff {
            timing,
            channel,
            key,
        } => midi_out::note(false, timing, channel, key),
        SeqEvent::AllNotesOff { timing, channel } => midi_out::all_notes_off(timing, channel),
    }
}

impl ClapPlugin for LatentLive {
    const CLAP_ID: &'static str = "dev.latentlive.latent-live";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Perform the latent space of a MusicVAE melody model, live");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::Instrument,
        ClapFeature::NoteEffect,
        ClapFeature::Synthesizer,
    ];
}

impl Vst3Plugin for LatentLive {
    const VST3_CLASS_ID: [u8; 16] = *b"LatentLiveMVAE01";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Synth];
}

nice_export_clap!(LatentLive);
nice_export_vst3!(LatentLive);

/// nice-plug's allocation checker around the audio-thread code. With the
/// `assert_process_allocs` feature on (as in `cargo test --workspace`, which the host
/// tests switch it on for) nice-plug installs it; a `cargo test -p latent_live` installs
/// the same allocator here. Either way an allocation inside `assert_no_alloc` aborts.
#[cfg(test)]
mod alloc_check {
    use crate::audio::output;
    use nice_assert_no_alloc::assert_no_alloc;
    use nice_plug::prelude::{NoteEvent, Param};

    use crate::audio::timeline::TransportInfo;
    use crate::params::CaptureSource;
    use crate::state::clips::Slot;
    use crate::testing::set_normalized;
    use latent_live_core::music::melody::Note;
    use latent_live_core::music::phrase::Phrase;

    #[cfg(not(feature = "assert_process_allocs"))]
    #[global_allocator]
    static CHECKER: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

    fn press(param: &impl Param, on: bool) {
        set_normalized(param, if on { 1.0 } else { 0.0 });
    }

    fn choose<T: nice_plug::prelude::Enum + PartialEq + 'static>(
        param: &nice_plug::prelude::EnumParam<T>,
        value: T,
    ) {
        set_normalized(param, param.preview_normalized(value));
    }

    #[test]
    fn the_audio_thread_plays_records_and_captures_without_allocating() {
        let mut plugin = crate::LatentLive::default();
        let (mut producer, phrases) = crate::link::phrase::phrase_channel();
        let (captures, mut requests) = rtrb::RingBuffer::new(8);
        let shared = std::sync::Arc::new(crate::link::Shared::default());
        plugin.link = Some(crate::link::AudioLink {
            phrases,
            captures,
            shared,
        });
        // As a host would: audition synth on, smoothers at the sample rate.
        set_normalized(&plugin.params.audition.on, 1.0);
        // SAFETY: the params outlive the pointer, and no audio thread runs yet.
        unsafe {
            plugin
                .params
                .audition
                .gain
                .as_ptr()
                ._internal_update_smoother(48_000.0, true);
        }
        let first = Phrase::from_notes(
            &[
                Note {
                    pitch: 60,
                    start: 0,
                    end: 4,
                },
                Note {
                    pitch: 67,
                    start: 8,
                    end: 12,
                },
            ],
            16,
            1,
        );
        let second = Phrase::from_notes(
            &[Note {
                pitch: 72,
                start: 2,
                end: 6,
            }],
            16,
            2,
        );
        let hits = [
            (0, 0),
            (0, 2),
            (2, 2),
            (4, 1),
            (4, 2),
            (6, 2),
            (8, 0),
            (12, 1),
        ]
        .map(|(step, class)| latent_live_core::music::drums::Hit { step, class });
        let mut felt = Phrase::from_drums(&hits, 16, 3);
        let feel: Vec<_> = (0..16)
            .map(|s| {
                [latent_live_core::music::groove::Feel {
                    velocity: 60 + s as u8,
                    shift: 0.4 - s as f32 * 0.05,
                }; 9]
            })
            .collect();
        felt.set_feel(&feel);
        producer.publish(first);
        let (mut left, mut right) = (vec![0.0f32; 480], vec![0.0f32; 480]);
        let (mut ons, mut offs, mut peak) = (0u32, 0u32, 0.0f32);
        assert_no_alloc(|| {
            // 10 ms blocks at 120 bpm: 0.02 beats each, so block 200 starts on beat 4.
            for block in 0..1_100u64 {
                let t = TransportInfo::playing(120.0, block as f64 * 0.02, 48_000.0);
                let note = |on: bool, key: u8| output::note(on, 0, 0, key);
                match block {
                    200 => plugin.take_input(&note(true, 62), &t, false),
                    // A scene's note on the scene channel recalls it, and plays no note.
                    230 => {
                        plugin.take_input(&output::note(true, 0, 14, 26), &t, false);
                        let cue = plugin.scenes.cue(&plugin.params.scenes, 4);
                        assert_eq!((cue.scene, cue.bar), (3, 4));
                    }
                    // A program change on the scene channel recalls too; a sustain
                    // pedal played beside the melody is forwarded (MIDI Thru).
                    240 => {
                        let program = NoteEvent::MidiProgramChange {
                            timing: 0,
                            channel: 14,
                            program: 4,
                        };
                        plugin.take_input(&program, &t, false);
                        let cue = plugin.scenes.cue(&plugin.params.scenes, 4);
                        assert_eq!(cue.scene, 5);
                        let pedal = NoteEvent::MidiCC {
                            timing: 0,
                            channel: 0,
                            cc: 64,
                            value: 1.0,
                        };
                        plugin.take_input(&pedal, &t, true);
                    }
                    250 => plugin.take_input(&note(false, 62), &t, false),
                    300 => plugin.take_input(&note(true, 65), &t, false),
                    325 => plugin.take_input(&note(false, 65), &t, false),
                    // Beat 8.2: early in bar 3, so the capture takes bar 2 (beats 4 to 8).
                    410 => press(&plugin.params.capture.a, true),
                    420 => press(&plugin.params.capture.a, false),
                    500 => {
                        producer.publish(second);
                    }
                    // After the second phrase took over (bar 4, beat 12): capture it into
                    // D, a top corner of the pad.
                    650 => {
                        choose(&plugin.params.capture.source, CaptureSource::Playing);
                        press(&plugin.params.pad.capture_d, true);
                    }
                    // A drum phrase with a feel, played at full groove, and a tapped rhythm
                    // captured (bar 5, beats 16 to 20).
                    700 => {
                        producer.publish(felt);
                        press(&plugin.params.drums.groove, true);
                    }
                    800 | 812 | 825 | 850 => plugin.take_input(&note(true, 40), &t, false),
                    805 | 818 | 830 | 860 => plugin.take_input(&note(false, 40), &t, false),
                    // Beat 20.2: the capture takes bar 5.
                    1010 => {
                        choose(&plugin.params.capture.source, CaptureSource::Tap);
                        press(&plugin.params.capture.a, false);
                        press(&plugin.params.capture.a, true);
                    }
                    _ => {}
                }
                left.fill(0.0);
                right.fill(0.0);
                plugin.render_block(&t, true, 480, Some((&mut left, &mut right)), &mut |event| {
                    match event {
                        NoteEvent::NoteOn { .. } => ons += 1,
                        NoteEvent::NoteOff { .. } => offs += 1,
                        _ => {}
                    }
                    true
                });
                peak = left.iter().fold(peak, |m, x| m.max(x.abs()));
            }
        });
        // 1100 blocks of 10 ms = 11 s = 88 steps at 120 bpm: five 16-step loops and more.
        assert!(
            ons >= 5 && ons.abs_diff(offs) <= 9,
            "{ons} note-ons, {offs} note-offs"
        );
        assert!(peak > 0.01, "the audition synth is heard ({peak})");
        assert_eq!(plugin.sequencer.current().generation, 3);

        let a = requests.pop().expect("capture A sent");
        assert_eq!(
            (a.slot, a.source, a.phrase.steps),
            (Slot::A, CaptureSource::Input, 16)
        );
        let played: Vec<_> = a
            .phrase
            .notes()
            .iter()
            .map(|n| (n.pitch, n.start, n.end))
            .collect();
        assert_eq!(played, vec![(62, 0, 4), (65, 8, 10)]);
        let d = requests.pop().expect("capture D sent");
        assert_eq!(
            (d.slot, d.source, d.phrase.generation),
            (Slot::D, CaptureSource::Playing, 2)
        );
        let tap = requests.pop().expect("tap capture sent");
        assert_eq!(
            (tap.slot, tap.source, tap.phrase.encoding),
            (
                Slot::A,
                CaptureSource::Tap,
                latent_live_core::music::Encoding::Drums
            )
        );
        // Taps at beats 16, 16.24, 16.5 and 17: steps 0, 1 (early by 0.04), 2 and 4.
        let taps: Vec<_> = tap
            .phrase
            .notes()
            .iter()
            .map(|n| (n.start, (n.shift * 100.0).round() as i32))
            .collect();
        assert_eq!(taps, vec![(0, 0), (1, -4), (2, 0), (4, 0)]);
        assert!(requests.pop().is_err(), "one request per press");
    }

    #[test]
    fn sixteen_bar_phrases_swaps_mid_phrase_and_a_trigger_let_go_mid_block_allocate_nothing() {
        let mut plugin = crate::LatentLive::default();
        let (mut producer, phrases) = crate::link::phrase::phrase_channel();
        let (captures, _requests) = rtrb::RingBuffer::new(8);
        let shared = std::sync::Arc::new(crate::link::Shared::default());
        plugin.link = Some(crate::link::AudioLink {
            phrases,
            captures,
            shared,
        });
        // Two 16-bar phrases, a quarter note every beat: the first in C4 and up, the
        // second two octaves higher, so that what plays tells them apart.
        let phrase = |base: u8, generation: u64| {
            let notes: Vec<Note> = (0..64u32)
                .map(|beat| Note {
                    pitch: base + (beat % 12) as u8,
                    start: beat * 4,
                    end: beat * 4 + 3,
                })
                .collect();
            Phrase::from_notes(&notes, 256, generation)
        };
        let (first, second) = (phrase(60, 1), phrase(84, 2));
        producer.publish(first);
        let (mut left, mut right) = (vec![0.0f32; 480], vec![0.0f32; 480]);
        let mut played: Vec<(u64, u8)> = Vec::with_capacity(4096);
        assert_no_alloc(|| {
            // 10 ms blocks at 120 bpm: 0.02 beats each; bar k starts at block 200 k.
            for block in 0..3_000u64 {
                let t = TransportInfo::playing(120.0, block as f64 * 0.02, 48_000.0);
                let trigger = |on: bool, timing: u32| output::note(on, timing, 0, 60);
                match block {
                    // In bar 5 of 16: the new phrase takes over at bar 6, at its own bar 6.
                    1_050 => producer.publish(second),
                    // Then Note Trigger: held from block 2,400, let go inside block 2,700.
                    2_390 => choose(
                        &plugin.params.start.mode,
                        crate::params::PlayMode::NoteTrigger,
                    ),
                    2_400 => plugin.take_input(&trigger(true, 0), &t, false),
                    2_700 => plugin.take_input(&trigger(false, 240), &t, false),
                    _ => {}
                }
                plugin.render_block(&t, true, 480, Some((&mut left, &mut right)), &mut |event| {
                    if let NoteEvent::NoteOn { timing, key, .. } = event {
                        if played.len() < played.capacity() {
                            played.push((block * 480 + timing as u64, key.number().unwrap_or(0)));
                        }
                    }
                    true
                });
            }
        });
        let beat = |sample: u64| sample / 24_000;
        // Bars 0 to 5 from the first phrase, bar 6 on from the second at the same beats.
        for &(at, key) in &played {
            let b = beat(at);
            if b < 24 {
                assert_eq!(key, 60 + (b % 12) as u8, "beat {b}");
            } else if b < 48 {
                assert_eq!(
                    key,
                    84 + (b % 12) as u8,
                    "beat {b}: the bar position is kept"
                );
            }
        }
        assert!(played.iter().any(|&(at, _)| beat(at) == 24));
        // Nothing after the trigger was let go (block 2,700, sample 240).
        let released = 2_700 * 480 + 240;
        assert!(played.iter().all(|&(at, _)| at < released));
        assert!(
            played.iter().any(|&(at, _)| at >= 2_400 * 480),
            "the trigger played"
        );
    }

    /// Run by the test below in a child process: it must abort there.
    #[test]
    #[ignore = "aborts on purpose; run by the_checker_aborts_on_allocation"]
    fn allocates_under_the_checker() {
        if std::env::var_os("LATENT_LIVE_ALLOC_CHILD").is_some() {
            assert_no_alloc(|| std::hint::black_box(vec![1u8; 64]));
        }
    }

    #[test]
    fn the_checker_aborts_on_allocation() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "alloc_check::allocates_under_the_checker",
                "--ignored",
                "--test-threads=1",
            ])
            .env("LATENT_LIVE_ALLOC_CHILD", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            !status.success(),
            "an allocation under the checker did not abort: the checking allocator is not \
             installed"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use crate::testing::set_normalized;

    #[test]
    fn a_render_waits_for_a_stuck_worker_once_until_it_delivers_again() {
        let mut plugin = crate::LatentLive::default();
        let (_producer, phrases) = crate::link::phrase::phrase_channel();
        let (captures, _requests) = rtrb::RingBuffer::new(8);
        // No worker thread: nothing is delivered unless the test says so.
        let shared = std::sync::Arc::new(crate::link::Shared::default());
        plugin.link = Some(crate::link::AudioLink {
            phrases,
            captures,
            shared: shared.clone(),
        });
        let patience = Duration::from_millis(300);
        let waited = |plugin: &mut crate::LatentLive| {
            let start = Instant::now();
            plugin.wait_for_worker(patience);
            start.elapsed()
        };
        let change = |plugin: &crate::LatentLive, value: f32| {
            set_normalized(&plugin.params.latent.sliders[0], value)
        };
        assert!(
            waited(&mut plugin) >= patience,
            "the first request is waited for"
        );
        change(&plugin, 0.9);
        assert!(
            waited(&mut plugin) < patience,
            "a new request is not waited for while the worker has delivered nothing"
        );
        shared
            .status
            .delivered
            .store(plugin.params.z_request().fingerprint(), Ordering::Release);
        assert!(
            waited(&mut plugin) < patience,
            "what was delivered is not waited for"
        );
        change(&plugin, 0.1);
        assert!(
            waited(&mut plugin) >= patience,
            "a worker that delivered is waited for again"
        );
    }
}
