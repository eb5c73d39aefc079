//! A CLAP test host: loads the plugin as a DAW does, through the `clap_entry` of the
//! library cargo built beside the tests, and drives it block by block with a transport,
//! parameter changes and notes, recording what it sends back.
//!
//! The library under test is the debug build of this workspace, with nice-plug's
//! `assert_process_allocs` on (this crate switches the feature on): an allocation in
//! `process()` aborts the test binary.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use clack_extensions::audio_ports::{AudioPortInfoBuffer, PluginAudioPorts};
use clack_extensions::note_ports::{NotePortInfoBuffer, PluginNotePorts};
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::{
    MidiEvent, NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags,
};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::EventFlags;
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};

pub const PLUGIN_ID: &CStr = c"dev.latentlive.latent-live";

/// The plugin library cargo built for this test run. As a dependency of the tests it
/// stays beside them in `target/<profile>/deps/`; a `cargo build` of the plugin itself
/// puts it one folder up. `LATENT_LIVE_CLAP` names another one, such as a release bundle
/// (`target/bundled/Latent Live.clap`).
pub fn library_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LATENT_LIVE_CLAP") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/ for tests, target/<profile>/examples/ for examples.
    let dir = exe.parent().expect("target/<profile>/<kind>");
    let profile = dir.parent().expect("target/<profile>");
    let name = format!(
        "{}latent_live{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let candidates = [
        dir.join(&name),
        profile.join("deps").join(&name),
        profile.join(&name),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or(&candidates[0])
        .clone()
}

/// Host tests take turns: each plugin runs its own inference thread, and the real-time
/// test needs the cores it paces against.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// One entry for the whole test binary: loading and unloading the library per test
/// would re-run nice-plug's global setup each time.
pub fn entry() -> &'static PluginEntry {
    static ENTRY: OnceLock<PluginEntry> = OnceLock::new();
    ENTRY.get_or_init(|| {
        let path = library_path();
        // SAFETY: the library is this workspace's plugin, built by cargo for this run.
        unsafe { PluginEntry::load(&path) }
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
    })
}

/// nice-plug's CLAP parameter ids: a hash of the string id.
pub fn param_id(id: &str) -> ClapId {
    let hash = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        & !(1 << 31);
    ClapId::new(hash)
}

#[derive(Default)]
pub struct Shared {
    pub restart_requested: AtomicBool,
    callback_requested: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

pub struct Host;

impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// The host's timeline for one block.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub playing: bool,
    pub tempo: f64,
    /// Position of the block's first sample, in quarter notes.
    pub beats: f64,
    pub loop_range: Option<(f64, f64)>,
    /// Time signature, numerator and denominator.
    pub meter: (u16, u16),
    /// The bar start and bar number sent; `None`: bars of `meter` from beat 0.
    pub bar: Option<(f64, i32)>,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            playing: true,
            tempo: 120.0,
            beats: 0.0,
            loop_range: None,
            meter: (4, 4),
            bar: None,
        }
    }
}

/// What the host sends into a block (times are sample offsets in it).
#[derive(Debug, Clone, Copy)]
pub enum Input {
    /// A parameter by string id, in CLAP's units (normalized, times the step count for
    /// stepped parameters).
    Param {
        time: u32,
        id: &'static str,
        value: f64,
    },
    NoteOn {
        time: u32,
        key: u8,
    },
    NoteOff {
        time: u32,
        key: u8,
    },
    /// A MIDI 1.0 message of up to three bytes (a Program Change: `[0xC0 | channel,
    /// program, 0]`), as CLAP's MIDI events carry it.
    Midi {
        time: u32,
        data: [u8; 3],
    },
}

/// What the plugin sent, in samples from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Output {
    /// `channel` counts from 0 (channel 10 is 9).
    NoteOn {
        at: u64,
        key: u8,
        channel: u8,
    },
    NoteOff {
        at: u64,
        key: u8,
        channel: u8,
    },
    /// MIDI CC 123.
    AllNotesOff {
        at: u64,
    },
}

impl Output {
    pub fn at(&self) -> u64 {
        match *self {
            Output::NoteOn { at, .. } | Output::NoteOff { at, .. } | Output::AllNotesOff { at } => {
                at
            }
        }
    }
}

/// Parameter info, owned.
#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub id: ClapId,
    pub name: String,
    pub max: f64,
    pub automatable: bool,
}

pub const MAX_BLOCK: usize = 8192;

/// One plugin instance in the test host.
pub struct Plugin {
    // Declared before the instance: it must go first (see Drop).
    processor: Option<StartedPluginAudioProcessor<Host>>,
    instance: PluginInstance<Host>,
    pub sample_rate: f64,
    /// Samples processed since the instance was created.
    pub position: u64,
    left: Vec<f32>,
    right: Vec<f32>,
    ports: AudioPorts,
    events_in: EventBuffer,
    events_out: EventBuffer,
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

impl Plugin {
    pub fn new() -> Self {
        let info = HostInfo::new(
            "latent-live-tests",
            "Latent Live developers",
            "https://latentlive.dev",
            "0.1.0",
        )
        .unwrap();
        let instance =
            PluginInstance::<Host>::new(|_| Shared::default(), |_| (), entry(), PLUGIN_ID, &info)
                .expect("plugin instance");
        Self {
            processor: None,
            instance,
            sample_rate: 48_000.0,
            position: 0,
            left: vec![0.0; MAX_BLOCK],
            right: vec![0.0; MAX_BLOCK],
            ports: AudioPorts::with_capacity(2, 1),
            events_in: EventBuffer::with_capacity(256),
            events_out: EventBuffer::with_capacity(4096),
        }
    }

    /// Asks for offline rendering (CLAP's render extension); call before `activate`.
    pub fn render_offline(&mut self) {
        let render: PluginRender = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("render extension");
        render
            .set(&self.instance.plugin_handle(), RenderMode::Offline)
            .expect("offline mode accepted");
    }

    pub fn activate(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate;
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: MAX_BLOCK as u32,
        };
        let stopped = self.instance.activate(|_, _| (), config).expect("activate");
        self.processor = Some(
            stopped
                .start_processing()
                .map_err(|_| "start_processing failed")
                .unwrap(),
        );
    }

    pub fn deactivate(&mut self) {
        if let Some(processor) = self.processor.take() {
            self.instance.deactivate(processor.stop_processing());
        }
    }

    pub fn params(&mut self) -> Vec<ParamInfo> {
        let params: PluginParams = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("params extension");
        let count = params.count(&self.instance.plugin_handle());
        let mut buffer = ParamInfoBuffer::new();
        (0..count)
            .map(|i| {
                let info = params
                    .get_info(&self.instance.plugin_handle(), i, &mut buffer)
                    .expect("param info");
                ParamInfo {
                    id: info.id,
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    max: info.max_value,
                    automatable: info
                        .flags
                        .contains(clack_extensions::params::ParamInfoFlags::IS_AUTOMATABLE),
                }
            })
            .collect()
    }

    pub fn param_value(&mut self, id: &str) -> Option<f64> {
        let params: PluginParams = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("params extension");
        params.get_value(&self.instance.plugin_handle(), param_id(id))
    }

    /// (input ports, output ports) of notes, and the output audio ports' channel counts.
    pub fn ports(&mut self) -> (u32, u32, Vec<u32>) {
        let notes: PluginNotePorts = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("note ports");
        let audio: PluginAudioPorts = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("audio ports");
        let handle = self.instance.plugin_handle();
        let mut buffer = NotePortInfoBuffer::new();
        assert!(notes.get(&handle, 0, true, &mut buffer).is_some());
        let note_ports = (notes.count(&handle, true), notes.count(&handle, false));
        assert_eq!(
            audio.count(&handle, true),
            0,
            "an instrument has no audio input"
        );
        let mut buffer = AudioPortInfoBuffer::new();
        let outputs = (0..audio.count(&handle, false))
            .map(|i| {
                audio
                    .get(&handle, i, false, &mut buffer)
                    .unwrap()
                    .channel_count
            })
            .collect();
        (note_ports.0, note_ports.1, outputs)
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let state: PluginState = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("state extension");
        let mut bytes = Vec::new();
        state
            .save(&self.instance.plugin_handle(), &mut bytes)
            .expect("state saved");
        bytes
    }

    /// The state's JSON: what nice-plug saves after its length ([`framed`]).
    pub fn state_json(&mut self) -> serde_json::Value {
        serde_json::from_slice(&self.save_state()[8..]).expect("state is JSON")
    }

    /// Loads a state given as its JSON.
    pub fn load_state_json(&mut self, state: &serde_json::Value) {
        self.load_state(&framed(&serde_json::to_vec(state).expect("JSON")));
    }

    pub fn load_state(&mut self, bytes: &[u8]) {
        assert!(self.try_load_state(bytes), "state loaded");
    }

    /// Loads a state the plugin may refuse; whether it took it.
    pub fn try_load_state(&mut self, bytes: &[u8]) -> bool {
        let state: PluginState = self
            .instance
            .plugin_shared_handle()
            .get_extension()
            .expect("state extension");
        let loaded = state
            .load(&self.instance.plugin_handle(), &mut &bytes[..])
            .is_ok();
        self.pump_main_thread();
        loaded
    }

    /// Runs the main-thread callbacks nice-plug asked for.
    pub fn pump_main_thread(&mut self) {
        if self
            .instance
            .access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst))
        {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// One block of `frames` samples; appends what the plugin sent to `out`.
    pub fn process(
        &mut self,
        frames: usize,
        transport: &Transport,
        inputs: &[Input],
        out: &mut Vec<Output>,
    ) {
        self.process_with(frames, Some(transport), inputs, out)
    }

    /// One block from a host that sends no transport at all (`None`), as batch renderers
    /// without a timeline do.
    pub fn process_with(
        &mut self,
        frames: usize,
        transport: Option<&Transport>,
        inputs: &[Input],
        out: &mut Vec<Output>,
    ) {
        assert!(frames > 0 && frames <= MAX_BLOCK);
        self.events_in.clear();
        self.events_out.clear();
        for input in inputs {
            match *input {
                Input::Param { time, id, value } => self.events_in.push(&ParamValueEvent::new(
                    time,
                    param_id(id),
                    Pckn::match_all(),
                    value,
                )),
                Input::NoteOn { time, key } => self.events_in.push(&NoteOnEvent::new(
                    time,
                    Pckn::from_raw(0, 0, key as i16, -1),
                    0.8,
                )),
                Input::NoteOff { time, key } => self.events_in.push(&NoteOffEvent::new(
                    time,
                    Pckn::from_raw(0, 0, key as i16, -1),
                    0.0,
                )),
                Input::Midi { time, data } => self.events_in.push(&MidiEvent::new(time, 0, data)),
            }
        }
        self.events_in.sort();
        let clap_transport = transport.map(clap_transport);
        let processor = self.processor.as_mut().expect("activated");
        {
            let (left, right) = (&mut self.left[..frames], &mut self.right[..frames]);
            let mut outputs = self.ports.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only([left, right]),
            }]);
            processor
                .process(
                    &InputAudioBuffers::empty(),
                    &mut outputs,
                    &self.events_in.as_input(),
                    &mut self.events_out.as_output(),
                    Some(self.position),
                    clap_transport.as_ref(),
                )
                .expect("process");
        }
        for event in self.events_out.iter() {
            let at = self.position + event.header().time() as u64;
            match event.as_core_event() {
                Some(CoreEventSpace::NoteOn(e)) => out.push(Output::NoteOn {
                    at,
                    key: e.key().into_specific().expect("a key") as u8,
                    channel: e.channel().into_specific().expect("a channel") as u8,
                }),
                Some(CoreEventSpace::NoteOff(e)) => out.push(Output::NoteOff {
                    at,
                    key: e.key().into_specific().expect("a key") as u8,
                    channel: e.channel().into_specific().expect("a channel") as u8,
                }),
                Some(CoreEventSpace::Midi(e))
                    if e.data()[0] & 0xF0 == 0xB0 && e.data()[1] == 123 =>
                {
                    out.push(Output::AllNotesOff { at })
                }
                _ => {}
            }
        }
        self.position += frames as u64;
        self.pump_main_thread();
    }

    pub fn restart_requested(&self) -> bool {
        self.instance
            .access_shared_handler(|s| s.restart_requested.load(Ordering::SeqCst))
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.deactivate();
    }
}

fn clap_transport(t: &Transport) -> TransportEvent {
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if t.playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    if t.loop_range.is_some() {
        flags |= TransportFlags::IS_LOOP_ACTIVE;
    }
    let (loop_start, loop_end) = t.loop_range.unwrap_or((0.0, 0.0));
    let seconds = |beats: f64| SecondsTime::from_float(beats * 60.0 / t.tempo);
    let bar_beats = t.meter.0 as f64 * 4.0 / t.meter.1 as f64;
    let (bar_start, bar_number) = t.bar.unwrap_or_else(|| {
        let bar = (t.beats / bar_beats).floor();
        (bar * bar_beats, bar as i32)
    });
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(t.beats),
        song_pos_seconds: seconds(t.beats),
        tempo: t.tempo,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(loop_start),
        loop_end_beats: BeatTime::from_float(loop_end),
        loop_start_seconds: seconds(loop_start),
        loop_end_seconds: seconds(loop_end),
        bar_start: BeatTime::from_float(bar_start),
        bar_number,
        time_signature_numerator: t.meter.0,
        time_signature_denominator: t.meter.1,
    }
}

/// Keys sounding after a list of outputs (note-ons minus note-offs, all-notes-off clears).
pub fn sounding(events: &[Output]) -> BTreeMap<u8, i32> {
    let mut keys = BTreeMap::new();
    for e in events {
        match *e {
            Output::NoteOn { key, .. } => *keys.entry(key).or_insert(0) += 1,
            Output::NoteOff { key, .. } => *keys.entry(key).or_insert(0) -= 1,
            Output::AllNotesOff { .. } => keys.clear(),
        }
    }
    keys.retain(|_, n| *n != 0);
    keys
}

/// Bars 1 and 2 of a riff played in (0 to 4 s at 120 bpm): an arpeggio in quarter notes,
/// each held 0.4 s.
pub const ARPEGGIO: [u8; 8] = [60, 64, 67, 72, 71, 67, 64, 62];
/// Bars 3 and 4 (4 to 8 s): a run of 8ths, each held 0.2 s, a touch late.
pub const RUN: [u8; 16] = [
    79, 77, 76, 74, 72, 74, 76, 77, 79, 81, 79, 77, 76, 74, 72, 71,
];

/// The note inputs of [`ARPEGGIO`] then [`RUN`] that fall in the block of `frames`
/// samples starting at run sample `sample`, at `sample_rate`.
pub fn riff_inputs(sample: u64, frames: usize, sample_rate: f64) -> Vec<Input> {
    let at_seconds = |s: f64| (s * sample_rate) as u64;
    let notes = ARPEGGIO
        .iter()
        .enumerate()
        .map(|(i, &k)| (i as f64 * 0.5, 0.4, k))
        .chain(
            RUN.iter()
                .enumerate()
                .map(|(i, &k)| (4.05 + i as f64 * 0.25, 0.2, k)),
        );
    let mut inputs = Vec::new();
    for (start, length, key) in notes {
        inputs.extend(at(at_seconds(start), sample, frames, |time| {
            Input::NoteOn { time, key }
        }));
        inputs.extend(at(at_seconds(start + length), sample, frames, |time| {
            Input::NoteOff { time, key }
        }));
    }
    inputs
}

/// nice-plug's CLAP state: a little-endian u64 length, then the JSON.
pub fn framed(json: &[u8]) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json);
    bytes
}

/// An input at absolute run sample `at`, if it falls in the block of `frames` samples
/// starting at `sample`.
pub fn at(at: u64, sample: u64, frames: usize, make: impl FnOnce(u32) -> Input) -> Option<Input> {
    (at >= sample && at < sample + frames as u64).then(|| make((at - sample) as u32))
}
