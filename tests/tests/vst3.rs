//! The plugin in a VST3 host: a load-and-process smoke test of the VST3 export.
//!
//! The CLAP host tests (`host.rs`) check what the plugin plays; this one checks that the
//! same library also works through `GetPluginFactory`, as a VST3 host would see it:
//! factory and class info, one object that is component, processor and controller (as
//! nice-plug builds it), the bus layout, and a few seconds of real-time processing with
//! a playing transport, the notes coming back through the host's output event list.
//!
//! The library is the debug build with `assert_process_allocs` on, so an allocation in
//! the plugin's `process()` aborts the test. (The event list below lives in this binary,
//! out of that checker's sight: it keeps to a fixed capacity by construction.)

// The bindings' constants are `u32` on some platforms and `i32` on others: the casts
// that are no-ops here are needed there.
#![allow(clippy::unnecessary_cast)]

use std::ffi::{c_char, c_void, CStr};
use std::mem::zeroed;
use std::ptr::null_mut;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use latent_live_tests::{exclusive, library_path};
use vst3::Steinberg::Vst::BusDirections_::{kInput, kOutput};
use vst3::Steinberg::Vst::Event_::EventTypes_::{
    kLegacyMIDICCOutEvent, kNoteOffEvent, kNoteOnEvent,
};
use vst3::Steinberg::Vst::MediaTypes_::{kAudio, kEvent};
use vst3::Steinberg::Vst::ParameterInfo_::ParameterFlags_::kIsHidden;
use vst3::Steinberg::Vst::ProcessContext_::StatesAndFlags_::{
    kBarPositionValid, kPlaying, kProjectTimeMusicValid, kTempoValid, kTimeSigValid,
};
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, BusInfo, Event, IAudioProcessor, IAudioProcessorTrait,
    IComponent, IComponentTrait, IEditController, IEditControllerTrait, IEventList,
    IEventListTrait, IMidiMapping, IMidiMappingTrait, ParameterInfo, ProcessContext, ProcessData,
    ProcessModes_, ProcessSetup, SpeakerArr, SymbolicSampleSizes_,
};
use vst3::Steinberg::{
    kResultFalse, kResultOk, tresult, IPluginBaseTrait, IPluginFactory, IPluginFactory2,
    IPluginFactory2Trait, IPluginFactoryTrait, PClassInfo, PClassInfo2,
};
use vst3::{Class, ComPtr, ComWrapper, Interface};

const CLASS_ID: [u8; 16] = *b"LatentLiveMVAE01";
const SR: f64 = 48_000.0;
const TEMPO: f64 = 120.0;
const BLOCK: usize = 512;
/// A 16th note at 120 bpm and 48 kHz: the sequencer's grid.
const STEP: u64 = 6_000;
/// About 5.3 s of audio: more than one 2-bar loop (4 s at 120 bpm).
const MIN_BLOCKS: usize = 500;
/// Enough notes to call it a melody (the CLAP tests check the melody itself).
const MIN_NOTES: usize = 4;
/// The worker loads the model on its own thread while we process; on a busy machine it
/// may take a while, so keep processing until notes come, for at most this long.
const DEADLINE: Duration = Duration::from_secs(10);

/// The host's output event list. nice-plug calls `addEvent` inside `process()`, where
/// nothing may allocate, so the list has a fixed capacity and reports a full buffer
/// (as a host's would) instead of growing. A `Mutex` because COM methods take `&self`.
struct EventSink {
    events: Mutex<Vec<Event>>,
}

impl Class for EventSink {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for EventSink {
    unsafe fn getEventCount(&self) -> i32 {
        self.events.lock().unwrap().len() as i32
    }

    unsafe fn getEvent(&self, index: i32, e: *mut Event) -> tresult {
        match self.events.lock().unwrap().get(index as usize) {
            // SAFETY: the caller passes a valid `Event` to write to.
            Some(event) if !e.is_null() => unsafe { e.write(*event) },
            _ => return kResultFalse,
        }
        kResultOk
    }

    unsafe fn addEvent(&self, e: *mut Event) -> tresult {
        let mut events = self.events.lock().unwrap();
        if e.is_null() || events.len() == events.capacity() {
            return kResultFalse;
        }
        // SAFETY: the caller passes a valid `Event`; it is plain data, copied out.
        events.push(unsafe { *e });
        kResultOk
    }
}

/// A NUL-terminated `char8` field of a VST3 struct.
fn text(chars: &[c_char]) -> String {
    // SAFETY: `c_char` and `u8` have the same layout.
    let bytes = unsafe { &*(chars as *const [c_char] as *const [u8]) };
    CStr::from_bytes_until_nul(bytes)
        .expect("NUL-terminated")
        .to_string_lossy()
        .into_owned()
}

/// A host transport for the block starting at `position`: playing (or stopped), 4/4 at
/// `TEMPO`, with the musical position that the plugin's sequencer follows.
fn transport(position: u64, playing: bool) -> ProcessContext {
    // SAFETY: `ProcessContext` is plain data; all-zero is a valid value.
    let mut context: ProcessContext = unsafe { zeroed() };
    let beats = position as f64 / SR * TEMPO / 60.0;
    context.state =
        (kTempoValid | kTimeSigValid | kProjectTimeMusicValid | kBarPositionValid) as u32;
    if playing {
        context.state |= kPlaying as u32;
    }
    context.sampleRate = SR;
    context.projectTimeSamples = position as i64;
    context.continousTimeSamples = position as i64;
    context.projectTimeMusic = beats;
    context.barPositionMusic = (beats / 4.0).floor() * 4.0;
    context.tempo = TEMPO;
    context.timeSigNumerator = 4;
    context.timeSigDenominator = 4;
    context
}

#[test]
fn loads_and_plays_through_the_vst3_factory() {
    let _turn = exclusive();
    let path = library_path();
    // SAFETY: the library is this workspace's plugin, built by cargo for this run; its
    // initialisers only set up nice-plug's globals.
    let library = unsafe { libloading::Library::new(&path) }
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    // SAFETY: the signatures are those of nice-plug's `nice_export_vst3!` exports.
    let (module_entry, module_exit, get_factory) = unsafe {
        (
            *library
                .get::<unsafe extern "C" fn(*mut c_void) -> bool>(b"ModuleEntry\0")
                .expect("ModuleEntry (Linux VST3 entry)"),
            *library
                .get::<unsafe extern "C" fn() -> bool>(b"ModuleExit\0")
                .expect("ModuleExit"),
            *library
                .get::<unsafe extern "system" fn() -> *mut c_void>(b"GetPluginFactory\0")
                .expect("GetPluginFactory"),
        )
    };
    // Linux hosts call ModuleEntry before anything else (nice-plug sets up its logger).
    // SAFETY: called once, before the factory; nice-plug ignores the handle.
    assert!(unsafe { module_entry(null_mut()) });

    // SAFETY: GetPluginFactory returns a new IPluginFactory with one reference, which the
    // ComPtr takes over and releases.
    let factory = unsafe { ComPtr::from_raw(get_factory() as *mut IPluginFactory) }
        .expect("a plugin factory");

    // 1. The factory lists our class, as an audio module, under our name.
    // SAFETY (this block and the calls below): every pointer passed is to a live local
    // of the type the VST3 API asks for, and the COM pointers are live.
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    let (index, info) = unsafe {
        (0..factory.countClasses())
            .map(|i| {
                let mut info: PClassInfo = zeroed();
                assert_eq!(factory.getClassInfo(i, &mut info), kResultOk);
                (i, info)
            })
            .find(|(_, info)| info.cid.map(|c| c as u8) == CLASS_ID)
            .expect("a class with cid LatentLiveMVAE01")
    };
    assert_eq!(text(&info.category), "Audio Module Class");
    assert_eq!(text(&info.name), "Latent Live");
    let factory2 = factory.cast::<IPluginFactory2>().expect("IPluginFactory2");
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    let mut info2: PClassInfo2 = unsafe { zeroed() };
    assert_eq!(
        // SAFETY: the COM pointers are live and every pointer passed is to a live local of the
        // type the VST3 API asks for (see the factory's block).
        unsafe { factory2.getClassInfo2(index, &mut info2) },
        kResultOk
    );
    assert!(
        text(&info2.subCategories)
            .split('|')
            .any(|c| c == "Instrument"),
        "an instrument: {}",
        text(&info2.subCategories)
    );

    // 2. An instance, initialised. nice-plug ignores the host context (its `initialize`
    // reads nothing from it), so a null one stands in for an IHostApplication.
    let mut object = null_mut();
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    let created = unsafe {
        factory.createInstance(
            CLASS_ID.as_ptr() as *const c_char,
            IComponent::IID.as_ptr() as *const c_char,
            &mut object,
        )
    };
    assert_eq!(created, kResultOk);
    // SAFETY: createInstance returned an IComponent with one reference, now owned here.
    let component = unsafe { ComPtr::from_raw(object as *mut IComponent) }.expect("an IComponent");
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    assert_eq!(unsafe { component.initialize(null_mut()) }, kResultOk);
    let processor = component
        .cast::<IAudioProcessor>()
        .expect("IAudioProcessor on the component");
    // nice-plug's component is its own edit controller: no separate controller class.
    let controller = component
        .cast::<IEditController>()
        .expect("IEditController on the component");
    // The plugin's own 72, and nice-plug's hidden ones that carry MIDI controllers in
    // (VST3 has no CC events): 130 (the CCs, channel pressure, pitch bend) a channel.
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    let count = unsafe { controller.getParameterCount() };
    assert_eq!(count, 72 + 16 * 130);
    let visible = (0..count)
        .filter(|&index| {
            // SAFETY: ParameterInfo is plain data, for which all zeroes is a valid value;
            // `getParameterInfo` then writes a live local of that type.
            let mut info: ParameterInfo = unsafe { zeroed() };
            // SAFETY: as above.
            let found = unsafe { controller.getParameterInfo(index, &mut info) };
            assert_eq!(found, kResultOk);
            info.flags & kIsHidden == 0
        })
        .count();
    assert_eq!(
        visible, 72,
        "the host lists the plugin's own parameters only"
    );
    // A sustain pedal on channel 1 reaches the plugin (and MIDI Thru) through one.
    let mapping = controller
        .cast::<IMidiMapping>()
        .expect("IMidiMapping on the controller");
    let mut pedal = 0;
    // SAFETY: as above; `pedal` is a live local ParamID.
    let mapped = unsafe { mapping.getMidiControllerAssignment(0, 0, 64, &mut pedal) };
    assert_eq!(mapped, kResultOk);

    // The buses: an instrument (no audio in, stereo out) with note input and output.
    let (audio, event) = (kAudio as i32, kEvent as i32);
    let (input, output) = (kInput as i32, kOutput as i32);
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    unsafe {
        assert_eq!(component.getBusCount(audio, input), 0, "no audio input");
        assert_eq!(component.getBusCount(audio, output), 1, "one audio output");
        assert_eq!(component.getBusCount(event, input), 1, "a note input");
        assert_eq!(component.getBusCount(event, output), 1, "a note output");
        let mut bus: BusInfo = zeroed();
        assert_eq!(component.getBusInfo(audio, output, 0, &mut bus), kResultOk);
        assert_eq!(bus.channelCount, 2, "a stereo output");
        let mut arrangement = 0;
        assert_eq!(
            processor.getBusArrangement(output, 0, &mut arrangement),
            kResultOk
        );
        assert_eq!(arrangement, SpeakerArr::kStereo);
        for (media, direction) in [(audio, output), (event, input), (event, output)] {
            assert_eq!(component.activateBus(media, direction, 0, 1), kResultOk);
        }
        assert_eq!(
            processor.canProcessSampleSize(SymbolicSampleSizes_::kSample32 as i32),
            kResultOk
        );
        let mut setup = ProcessSetup {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            maxSamplesPerBlock: BLOCK as i32,
            sampleRate: SR,
        };
        assert_eq!(processor.setupProcessing(&mut setup), kResultOk);
        // setActive starts the plugin's inference worker, which loads the model.
        assert_eq!(component.setActive(1), kResultOk);
        assert_eq!(processor.setProcessing(1), kResultOk);
    }

    // 3. Real-time processing: everything `process()` touches is allocated up front.
    let sink = ComWrapper::new(EventSink {
        events: Mutex::new(Vec::with_capacity(1024)),
    });
    let sink_list = sink.to_com_ptr::<IEventList>().expect("IEventList");
    let (mut left, mut right) = (vec![0f32; BLOCK], vec![0f32; BLOCK]);
    // (absolute sample, event), for the whole run.
    let mut events: Vec<(u64, Event)> = Vec::new();
    let mut position = 0u64;
    let note_ons = |events: &[(u64, Event)]| {
        events
            .iter()
            .filter(|(_, e)| e.r#type == kNoteOnEvent as u16)
            .count()
    };
    let mut block = |playing: bool, position: u64, events: &mut Vec<(u64, Event)>| {
        // NaN marks samples the plugin did not write.
        left.fill(f32::NAN);
        right.fill(f32::NAN);
        let mut channels = [left.as_mut_ptr(), right.as_mut_ptr()];
        let buffers = AudioBusBuffers__type0 {
            channelBuffers32: channels.as_mut_ptr(),
        };
        let mut out_bus = AudioBusBuffers {
            numChannels: 2,
            silenceFlags: 0,
            __field0: buffers,
        };
        let mut context = transport(position, playing);
        let mut data = ProcessData {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            numSamples: BLOCK as i32,
            numInputs: 0,
            numOutputs: 1,
            inputs: null_mut(),
            outputs: &mut out_bus,
            inputParameterChanges: null_mut(),
            outputParameterChanges: null_mut(),
            inputEvents: null_mut(),
            outputEvents: sink_list.as_ptr(),
            processContext: &mut context,
        };
        // SAFETY: `data` points at live buffers of BLOCK samples, a live context and event
        // list; nothing else touches them during the call.
        assert_eq!(
            // SAFETY: the COM pointers are live and every pointer passed is to a live local of
            // the type the VST3 API asks for (see the factory's block).
            unsafe { processor.process(&mut data) },
            kResultOk,
            "process at sample {position}"
        );
        assert!(
            left.iter().chain(&right).all(|x| x.is_finite()),
            "the plugin writes its whole output at sample {position}"
        );
        events.extend(sink.events.lock().unwrap().drain(..).map(|e| (position, e)));
    };
    let started = Instant::now();
    let mut blocks = 0;
    while blocks < MIN_BLOCKS || (note_ons(&events) < MIN_NOTES && started.elapsed() < DEADLINE) {
        block(true, position, &mut events);
        position += BLOCK as u64;
        blocks += 1;
        // About real-time pace (a block is 10.7 ms), leaving the worker time to decode.
        std::thread::sleep(Duration::from_millis(5));
    }
    let played = note_ons(&events);
    // Stopping the transport ends the sounding note.
    block(false, position, &mut events);

    // What came out: notes on the host's 16th grid at valid offsets, one at a time, each
    // ended; and the all-notes-off (CC 123) that follows setProcessing's reset.
    assert!(
        played >= MIN_NOTES,
        "the default model plays notes within {blocks} blocks: {played} note-ons"
    );
    let (first_at, first) = events.first().expect("events");
    assert!(
        first.r#type == kLegacyMIDICCOutEvent as u16 && *first_at == 0 && first.sampleOffset == 0,
        "setProcessing's reset sends all-notes-off first"
    );
    let (mut sounding, mut last) = (0i32, (0u64, 0i32));
    for (start, e) in &events {
        assert!(
            (0..BLOCK as i32).contains(&e.sampleOffset),
            "sample offset {} in a {BLOCK}-sample block",
            e.sampleOffset
        );
        assert!((*start, e.sampleOffset) >= last, "events in time order");
        last = (*start, e.sampleOffset);
        let at = start + e.sampleOffset as u64;
        assert_eq!(e.busIndex, 0);
        match e.r#type as u32 {
            // SAFETY: the COM pointers are live and every pointer passed is to a live local of
            // the type the VST3 API asks for (see the factory's block).
            t if t == kNoteOnEvent as u32 => {
                // SAFETY: the event type says which union field is set.
                let note = unsafe { e.__field0.noteOn };
                assert!(
                    (0..128).contains(&note.pitch) && note.velocity > 0.0,
                    "a valid note-on: pitch {} velocity {}",
                    note.pitch,
                    note.velocity
                );
                assert_eq!(at % STEP, 0, "note-on at sample {at}: on the 16th grid");
                sounding += 1;
            }
            t if t == kNoteOffEvent as u32 => sounding -= 1,
            t if t == kLegacyMIDICCOutEvent as u32 => assert_eq!(
                // SAFETY: the event type, matched above, says which union field is set.
                unsafe { e.__field0.midiCCOut }.controlNumber,
                123,
                "only all-notes-off CCs"
            ),
            t => panic!("unexpected event type {t}"),
        }
        assert!(
            (0..=1).contains(&sounding),
            "a monophonic line, each note ended once: {sounding} sounding at sample {at}"
        );
    }
    assert_eq!(sounding, 0, "stopping the transport ends every note");

    // 4. Tear down in the order hosts do; the ComPtrs release their references as they
    // go (the last one drops the plugin, which joins its worker).
    // SAFETY: the COM pointers are live and every pointer passed is to a live local of the type
    // the VST3 API asks for (see the factory's block).
    unsafe {
        assert_eq!(processor.setProcessing(0), kResultOk);
        assert_eq!(component.setActive(0), kResultOk);
        assert_eq!(component.terminate(), kResultOk);
    }
    drop((
        controller, processor, component, factory2, factory, sink_list,
    ));
    // SAFETY: no object of the library is left.
    assert!(unsafe { module_exit() });
    // The model's thread pool (rayon, via candle) keeps threads parked in the library's
    // code for the life of the process: unmapping it under them would be unsound, so the
    // library stays loaded until the test process exits.
    std::mem::forget(library);
}
