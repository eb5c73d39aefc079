//! Latent Live: perform the latent space of a MusicVAE melody model.
//!
//! The library holds everything the plugin, the `xtask` commands and the tests share:
//! the melody encoding, MIDI I/O, the corpus, the model, its trainer and evaluation.
//!
//! It is also the plugin ([`LatentLive`], exported as CLAP and VST3; `src/main.rs` is
//! the standalone). Who runs where:
//! - main thread: [`params`] (the automatable ways of moving z), `activate()` starts
//!   the [`engine`];
//! - inference thread ([`engine`]): polls the params, composes z
//!   ([`latent::compose`]), decodes and hands a fixed-size phrase over ([`handoff`]);
//! - audio thread (`process()`): [`sequencer`] loops the phrase on the host timeline
//!   and sends MIDI, [`synth`] lets it be heard. No allocation, lock or syscall there.

pub mod assets;
pub mod corpus;
pub mod engine;
pub mod eval;
pub mod handoff;
pub mod latent;
pub mod melody;
pub mod midi;
pub mod model;
pub mod params;
pub mod sequencer;
pub mod synth;
pub mod train;

use std::num::NonZeroU32;
use std::sync::Arc;

use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

use engine::Engine;
use handoff::{phrase_queue, PhraseConsumer};
use params::LatentLiveParams;
use sequencer::{Playback, SeqEvent, Sequencer, TransportInfo};
use synth::AuditionSynth;

/// MIDI channel the phrase is sent on (0 = channel 1).
const OUTPUT_CHANNEL: u8 = 0;
/// Tempo assumed when the host reports none (some standalone setups).
const FALLBACK_TEMPO: f64 = 120.0;

/// The instrument: plays the phrase decoded from the current z, and sends it as MIDI.
pub struct LatentLive {
    params: Arc<LatentLiveParams>,
    /// The inference worker, started by the first `activate()`.
    engine: Option<Engine>,
    /// The audio thread's end of the worker's phrase queue.
    phrases: Option<PhraseConsumer>,
    sequencer: Sequencer,
    synth: AuditionSynth,
    sample_rate: f32,
    /// Beat position for hosts that report none: runs while the transport plays.
    free_beats: f64,
}

impl Default for LatentLive {
    fn default() -> Self {
        // Cheap on purpose: hosts create instances to scan them. The model loads in activate().
        Self {
            params: Arc::new(LatentLiveParams::default()),
            engine: None,
            phrases: None,
            sequencer: Sequencer::new(),
            synth: AuditionSynth::new(48_000.0),
            sample_rate: 48_000.0,
            free_beats: 0.0,
        }
    }
}

impl LatentLive {
    /// The worker's status (decodes, timing, failure), once activated.
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

    // Notes played in will be captured as clips (later); CCs out for all-notes-off.
    const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;
    // Parameters are read once per block: playback settings apply per note and z changes
    // go through the worker, so splitting blocks at automation points would buy nothing.
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn activate(&mut self, _layout: &AudioIOLayout, buffer_config: &BufferConfig, _context: &mut impl ActivateContext<Self>) -> bool {
        self.sample_rate = buffer_config.sample_rate;
        self.synth.set_sample_rate(buffer_config.sample_rate);
        if self.engine.is_none() {
            let (producer, consumer) = phrase_queue();
            match Engine::start(self.params.clone(), producer) {
                Ok(engine) => {
                    self.engine = Some(engine);
                    self.phrases = Some(consumer);
                }
                Err(e) => {
                    nice_error!("Latent Live: cannot start the inference thread: {e}");
                    return false;
                }
            }
        }
        true
    }

    fn reset(&mut self) {
        self.sequencer.request_all_notes_off();
        self.synth.reset();
    }

    fn deactivate(&mut self) {
        // No events can be sent now; the next process() sends the note-offs.
        self.sequencer.request_all_notes_off();
    }

    fn process(&mut self, buffer: &mut Buffer, _aux: &mut AuxiliaryBuffers, context: &mut impl ProcessContext<Self>) -> ProcessStatus {
        // Notes played in are for capture, which comes later; drain them meanwhile.
        while context.next_event().is_some() {}

        let samples = buffer.samples();
        let transport = {
            let t = context.transport();
            let tempo = t.tempo.filter(|&bpm| bpm > 0.0).unwrap_or(FALLBACK_TEMPO);
            let pos_beats = t.pos_beats().unwrap_or(self.free_beats);
            if t.playing {
                self.free_beats = pos_beats + samples as f64 * tempo / 60.0 / self.sample_rate as f64;
            }
            TransportInfo { playing: t.playing, tempo, pos_beats, sample_rate: self.sample_rate }
        };
        let channels = buffer.as_slice();
        for channel in channels.iter_mut() {
            channel.fill(0.0);
        }
        if let [left, right, ..] = channels {
            self.render_block(&transport, left, right, &mut |event| {
                // A full host event buffer drops the event; nothing else can be done here.
                let _ = context.try_send_event(event);
            });
        }
        ProcessStatus::KeepAlive
    }
}

impl LatentLive {
    /// The body of `process()` once the host's transport is read: takes the newest
    /// phrase, runs the sequencer, sends its events through `send` and adds the audition
    /// synth to `left`/`right` (same length, already cleared). Real-time safe.
    pub fn render_block(&mut self, transport: &TransportInfo, left: &mut [f32], right: &mut [f32], send: &mut impl FnMut(NoteEvent<()>)) {
        if let Some(queue) = self.phrases.as_mut() {
            self.sequencer.receive(queue);
        }
        let samples = left.len().min(right.len());
        let params = &self.params;
        let bypass = params.bypass.value();
        let play = Playback {
            semitones: params.transpose.value() + 12 * params.octave.value(),
            velocity: params.velocity.value() as f32 / 127.0,
            length: params.length.value(),
            swap: params.swap.value(),
            bypass,
        };
        let synth_on = params.synth.value() && !bypass;
        if !synth_on {
            self.synth.reset();
        }
        let gain = &params.gain.smoothed;
        let synth = &mut self.synth;
        let mut rendered = 0usize;
        self.sequencer.process_block(transport, &play, samples, &mut |event| {
            let timing = event.timing();
            let channel = Channel::Number(OUTPUT_CHANNEL);
            send(match event {
                SeqEvent::NoteOn { key, velocity, .. } => NoteEvent::NoteOn { timing, voice_id: VoiceID::Wildcard, channel, key: Key::Number(key), velocity },
                SeqEvent::NoteOff { key, .. } => NoteEvent::NoteOff { timing, voice_id: VoiceID::Wildcard, channel, key: Key::Number(key), velocity: 0.0 },
                SeqEvent::AllNotesOff { .. } => NoteEvent::MidiCC { timing, channel: OUTPUT_CHANNEL, cc: control_change::ALL_NOTES_OFF, value: 0.0 },
            });
            if synth_on {
                let upto = (timing as usize).min(samples);
                synth.render(&mut left[rendered..upto], &mut right[rendered..upto], |_| gain.next());
                rendered = upto;
                synth.handle(&event);
            }
        });
        if synth_on {
            synth.render(&mut left[rendered..samples], &mut right[rendered..samples], |_| gain.next());
        }
    }
}

impl ClapPlugin for LatentLive {
    const CLAP_ID: &'static str = "dev.latentlive.latent-live";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Perform the latent space of a MusicVAE melody model, live");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::Instrument, ClapFeature::NoteEffect, ClapFeature::Synthesizer];
}

impl Vst3Plugin for LatentLive {
    const VST3_CLASS_ID: [u8; 16] = *b"LatentLiveMVAE01";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Instrument, Vst3SubCategory::Synth];
}

nice_export_clap!(LatentLive);
nice_export_vst3!(LatentLive);

/// The allocation checker the unit tests use: nice-plug's `assert_no_alloc` in counting
/// mode. The tests install its allocator themselves unless the `assert_process_allocs`
/// feature is on, in which case nice-plug already has.
#[cfg(test)]
pub(crate) mod alloc_check {
    #[cfg(not(feature = "assert_process_allocs"))]
    #[global_allocator]
    static CHECKER: nice_assert_no_alloc::AllocDisabler = nice_assert_no_alloc::AllocDisabler;

    /// Runs `f` and counts the allocations and frees it made on this thread.
    pub fn allocations_in(f: impl FnOnce()) -> u32 {
        let before = nice_assert_no_alloc::violation_count();
        nice_assert_no_alloc::assert_no_alloc(f);
        nice_assert_no_alloc::violation_count() - before
    }

    #[test]
    fn render_block_plays_the_workers_phrases_without_allocating() {
        use crate::handoff::Phrase;
        use crate::melody::Note;
        use nice_plug::prelude::{NoteEvent, Param};

        let mut plugin = crate::LatentLive::default();
        let (mut producer, consumer) = crate::handoff::phrase_queue();
        plugin.phrases = Some(consumer);
        // As a host would: audition synth on, smoothers at the sample rate.
        unsafe {
            plugin.params.synth.as_ptr()._internal_set_normalized_value(1.0);
            plugin.params.gain.as_ptr()._internal_update_smoother(48_000.0, true);
        }
        let first = Phrase::from_notes(&[Note { pitch: 60, start: 0, end: 4 }, Note { pitch: 67, start: 8, end: 12 }], 16, 1);
        let second = Phrase::from_notes(&[Note { pitch: 72, start: 2, end: 6 }], 16, 2);
        producer.push(first).unwrap();
        let (mut left, mut right) = (vec![0.0f32; 480], vec![0.0f32; 480]);
        let (mut ons, mut offs, mut peak) = (0u32, 0u32, 0.0f32);
        let allocations = allocations_in(|| {
            for block in 0..1_000u64 {
                if block == 500 {
                    let _ = producer.push(second);
                }
                let t = crate::sequencer::TransportInfo { playing: true, tempo: 120.0, pos_beats: block as f64 * 480.0 / 24_000.0, sample_rate: 48_000.0 };
                left.fill(0.0);
                right.fill(0.0);
                plugin.render_block(&t, &mut left, &mut right, &mut |event| match event {
                    NoteEvent::NoteOn { .. } => ons += 1,
                    NoteEvent::NoteOff { .. } => offs += 1,
                    _ => {}
                });
                peak = left.iter().fold(peak, |m, x| m.max(x.abs()));
            }
        });
        assert_eq!(allocations, 0);
        // 1000 blocks of 10 ms = 10 s = 80 steps at 120 bpm: five 16-step loops.
        assert!(ons >= 5 && ons.abs_diff(offs) <= 1, "{ons} note-ons, {offs} note-offs");
        assert!(peak > 0.01, "the audition synth is heard ({peak})");
        assert_eq!(plugin.sequencer.current().generation, 2);
    }

    #[test]
    fn the_checker_sees_allocations() {
        let n = allocations_in(|| {
            std::hint::black_box(vec![1u8; 64]);
        });
        assert!(n >= 1, "allocation not counted: the checking allocator is not installed");
    }
}
