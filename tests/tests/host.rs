//! The plugin in a CLAP host: the built library, loaded through its entry point, playing
//! the embedded default model against a host transport.
//!
//! Most runs render offline (CLAP's render extension): the plugin then waits for its
//! worker, so the notes are deterministic whatever the machine's load. One test paces a
//! real-time run with the wall clock and checks that it plays the same notes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use latent_live::params::LatentLiveParams;
use latent_live::testing::set_by_id;
use latent_live_core::model::assets::DefaultModel;
use latent_live_core::model::latent::{z_tensor, LatentSpace};
use latent_live_core::model::Sampling;
use latent_live_core::music::chord::{Chord, Quality};
use latent_live_core::music::groove::Feel;
use latent_live_core::music::key::{Scale, ScaleLock};
use latent_live_core::music::phrase::Phrase;
use latent_live_core::music::{drums, melody};
use latent_live_tests::{
    at, exclusive, param_id, riff_inputs, sounding, Input, Output, Plugin, Transport, ARPEGGIO, RUN,
};

const SR: f64 = 48_000.0;
const TEMPO: f64 = 120.0;
/// A 16th at 120 bpm and 48 kHz.
const STEP: u64 = 6_000;

fn seconds(s: f64) -> u64 {
    (s * SR) as u64
}

/// Block sizes from a fixed-seed LCG, 1 to 2048 samples.
fn block_sizes(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        1 + ((state >> 33) % 2048) as usize
    }
}

/// Plays `duration` samples from beat `start` at `TEMPO`; `inputs(sample, frames)` gives
/// each block's inputs, with `sample` counted from the start of this call. Returns the
/// outputs with times from the start of this call.
fn play(
    plugin: &mut Plugin,
    start: f64,
    duration: u64,
    mut sizes: impl FnMut() -> usize,
    mut inputs: impl FnMut(u64, usize) -> Vec<Input>,
) -> Vec<Output> {
    let mut out = Vec::new();
    let origin = plugin.position;
    let mut done = 0u64;
    while done < duration {
        let frames = sizes().min((duration - done) as usize);
        let transport = Transport {
            playing: true,
            tempo: TEMPO,
            beats: start + done as f64 / SR * TEMPO / 60.0,
            loop_range: None,
            ..Transport::default()
        };
        plugin.process(frames, &transport, &inputs(done, frames), &mut out);
        done += frames as u64;
    }
    out.iter().map(|e| shift(e, origin)).collect()
}

fn stop(plugin: &mut Plugin, out: &mut Vec<Output>) {
    plugin.process(
        256,
        &Transport {
            playing: false,
            tempo: TEMPO,
            beats: 0.0,
            loop_range: None,
            ..Transport::default()
        },
        &[],
        out,
    );
}

fn shift(e: &Output, origin: u64) -> Output {
    match *e {
        Output::NoteOn { at, key, channel } => Output::NoteOn {
            at: at - origin,
            key,
            channel,
        },
        Output::NoteOff { at, key, channel } => Output::NoteOff {
            at: at - origin,
            key,
            channel,
        },
        Output::AllNotesOff { at } => Output::AllNotesOff { at: at - origin },
    }
}

fn offline_plugin() -> Plugin {
    let mut plugin = Plugin::new();
    plugin.render_offline();
    plugin.activate(SR);
    plugin
}

fn onsets(events: &[Output]) -> Vec<(u64, u8)> {
    events
        .iter()
        .filter_map(|e| {
            if let Output::NoteOn { at, key, .. } = *e {
                Some((at, key))
            } else {
                None
            }
        })
        .collect()
}

/// One note at a time: every note-on comes when nothing else sounds.
fn assert_monophonic(events: &[Output]) {
    for (i, e) in events.iter().enumerate() {
        if let Output::NoteOn { .. } = e {
            assert!(
                sounding(&events[..i]).is_empty(),
                "note-on {e:?} over a sounding note"
            );
        }
    }
}

#[test]
fn describes_itself_as_an_instrument_with_stable_parameters() {
    let _turn = exclusive();
    let factory = latent_live_tests::entry()
        .get_plugin_factory()
        .expect("plugin factory");
    let descriptor = factory.plugin_descriptors().next().expect("one plugin");
    assert_eq!(descriptor.id(), Some(latent_live_tests::PLUGIN_ID));
    assert!(descriptor.features().any(|f| f.to_bytes() == b"instrument"));

    let mut plugin = Plugin::new();
    let params = plugin.params();
    let ids = [
        "lat1", "lat2", "lat3", "lat4", "lat5", "lat6", "lat7", "lat8", "temp", "seed", "morph",
        "dens", "rhyth", "sync", "prange", "height", "contr", "kick", "snare", "hats", "toms",
        "cymb", "dsync", "bback", "fill", "padx", "pady", "model", "capa", "capb", "capsrc",
        "trans", "oct", "vel", "len", "swap", "chan", "thru", "dchan", "dn_1", "dn_2", "dn_3",
        "dn_4", "dn_5", "dn_6", "dn_7", "dn_8", "dn_9", "groove", "gmodel", "synth", "gain",
        "bypass", "key", "scale", "chin", "chch", "split", "chfol", "chthru", "chfit", "play",
        "trgch", "drift", "drrate", "pady2", "capc", "capd", "scene", "scnch", "scnnt", "sglide",
    ];
    assert_eq!(
        params.len(),
        ids.len(),
        "{:?}",
        params.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    for id in ids {
        let p = params
            .iter()
            .find(|p| p.id == param_id(id))
            .unwrap_or_else(|| panic!("no parameter {id}"));
        assert!(p.automatable, "{id} is automatable");
    }
    let find = |id: &str| params.iter().find(|p| p.id == param_id(id)).unwrap();
    assert_eq!(find("lat1").name, "Latent 1");
    assert_eq!(find("seed").max, 9999.0, "stepped: CLAP values are steps");
    assert_eq!(
        plugin.ports(),
        (1, 1, vec![2]),
        "note in, note out, stereo out"
    );
}

#[test]
fn plays_the_default_model_on_the_grid_and_loops_it() {
    let _turn = exclusive();
    let mut plugin = offline_plugin();
    let events = play(
        &mut plugin,
        0.0,
        seconds(8.0),
        block_sizes(1),
        |_, _| vec![],
    );
    let mut all = events.clone();
    stop(&mut plugin, &mut all);
    let notes = onsets(&events);
    assert!(
        notes.len() >= 4,
        "the default model plays a melody: {notes:?}"
    );
    assert!(
        notes.iter().all(|(at, _)| at % STEP == 0),
        "sample-accurate 16ths: {notes:?}"
    );
    assert_monophonic(&events);
    // A 2-bar phrase lasts 4 s at 120 bpm: the second loop repeats the first.
    let first: Vec<_> = notes
        .iter()
        .filter(|(at, _)| *at < seconds(4.0))
        .map(|&(at, key)| (at + seconds(4.0), key))
        .collect();
    let second: Vec<_> = notes
        .iter()
        .filter(|(at, _)| *at >= seconds(4.0))
        .copied()
        .collect();
    assert_eq!(first, second);
    assert!(sounding(&all).is_empty(), "stop ends every note");
    assert!(!plugin.restart_requested());
}

/// The phrase the library decodes, with the embedded 2-bar model, for the parameters
/// `set` gives (string id, normalized value): what the plugin must play.
fn library_phrase(set: &[(&str, f32)]) -> Phrase {
    library_phrase_over(DefaultModel::Flat2Bar, set, None, 0)
}

/// The phrase an embedded model decodes for `set`, over `chords` (one per step) for a
/// chord model, to take over at song bar `bar`.
fn library_phrase_over(
    embedded: DefaultModel,
    set: &[(&str, f32)],
    chords: Option<&[Option<Chord>]>,
    bar: i64,
) -> Phrase {
    let params = LatentLiveParams::default();
    for &(id, normalized) in set {
        set_by_id(&params, id, normalized);
    }
    let request = params.z_request().at_bar(bar);
    let file = embedded.load().unwrap();
    let model = file.model(&candle_core::Device::Cpu).unwrap();
    let z = LatentSpace::of(&file)
        .unwrap()
        .compose([None; 4], &request.controls);
    let events = model
        .decode_over(
            &z_tensor(&model, &[z]).unwrap(),
            chords.map(|c| vec![c]).as_deref(),
            Sampling::new(request.temperature, request.seed),
        )
        .unwrap();
    Phrase::from_notes(&melody::decode(&events[0]), model.config.steps(), 0)
}

/// The phrase the default model decodes for `set` to take over at song bar `bar` (where
/// the drift's path is then).
fn library_phrase_at(set: &[(&str, f32)], bar: i64) -> Phrase {
    library_phrase_over(DefaultModel::Flat2Bar, set, None, bar)
}

/// `(sample, key)` of every note-on, and of every note-off.
type OnsAndOffs = (Vec<(u64, u8)>, Vec<(u64, u8)>);
/// A test case: a sample rate, parameters to set, and its block sizes by seed.
type Case = (
    f64,
    &'static [(&'static str, f32)],
    fn(u64) -> Box<dyn FnMut() -> usize>,
);

/// The notes `phrase` makes, looping from beat 0, over `duration` samples: each at the
/// first sample at or after its grid time.
fn expected(phrase: &Phrase, sample_rate: f64, duration: u64) -> OnsAndOffs {
    let samples_per_step = sample_rate * 60.0 / TEMPO / 4.0;
    let at = |step: u64| (step as f64 * samples_per_step - 1e-4).ceil() as u64;
    let (mut ons, mut offs) = (Vec::new(), Vec::new());
    for offset in (0..)
        .map(|loop_| loop_ * phrase.steps as u64)
        .take_while(|&o| at(o) < duration)
    {
        for n in phrase.notes() {
            ons.push((at(offset + n.start as u64), n.pitch));
            offs.push((at(offset + n.end as u64), n.pitch));
        }
    }
    ons.retain(|&(t, _)| t < duration);
    offs.retain(|&(t, _)| t < duration);
    (ons, offs)
}

#[test]
fn plays_the_librarys_decode_at_every_sample_rate_and_block_size() {
    let _turn = exclusive();
    // (sample rate, parameters, block sizes): greedy at the origin, a latent slider moved,
    // and sampling with a seed; blocks of 1 to 4096 samples.
    let cases: [Case; 3] = [
        (44_100.0, &[], |seed| {
            let mut lcg = block_sizes(seed);
            let mut n = 0;
            // Single samples first, then anything up to 4096.
            Box::new(move || {
                n += 1;
                if n < 3_000 {
                    1 + lcg() % 3
                } else {
                    1 + (lcg() * 2) % 4096
                }
            })
        }),
        (48_000.0, &[("lat2", 0.75)], |_| Box::new(|| 4096)),
        (96_000.0, &[("temp", 0.5), ("seed", 7.0 / 9999.0)], |seed| {
            let mut lcg = block_sizes(seed);
            Box::new(move || 1 + (lcg() * 2) % 4096)
        }),
    ];
    for (i, (sample_rate, set, sizes)) in cases.into_iter().enumerate() {
        let mut plugin = Plugin::new();
        plugin.render_offline();
        plugin.activate(sample_rate);
        let inputs: Vec<Input> = set
            .iter()
            .map(|&(id, value)| Input::Param {
                time: 0,
                id: leak(id),
                value: clap_value(id, value),
            })
            .collect();
        let duration = (5.0 * sample_rate) as u64;
        let mut out = Vec::new();
        let mut sizes = sizes(i as u64);
        let mut done = 0u64;
        while done < duration {
            let frames = sizes().min((duration - done) as usize);
            let transport = Transport {
                playing: true,
                tempo: TEMPO,
                beats: done as f64 / sample_rate * TEMPO / 60.0,
                loop_range: None,
                ..Transport::default()
            };
            plugin.process(
                frames,
                &transport,
                if done == 0 { &inputs } else { &[] },
                &mut out,
            );
            done += frames as u64;
        }
        let phrase = library_phrase(set);
        assert!(!phrase.is_empty(), "case {i}: the model decodes notes");
        let (ons, offs) = expected(&phrase, sample_rate, duration);
        let played_ons: Vec<(u64, u8)> = out
            .iter()
            .filter_map(|e| {
                if let Output::NoteOn { at, key, .. } = *e {
                    Some((at, key))
                } else {
                    None
                }
            })
            .collect();
        let played_offs: Vec<(u64, u8)> = out
            .iter()
            .filter_map(|e| {
                if let Output::NoteOff { at, key, .. } = *e {
                    Some((at, key))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(played_ons, ons, "case {i} at {sample_rate} Hz: note-ons");
        assert_eq!(played_offs, offs, "case {i} at {sample_rate} Hz: note-offs");
    }
}

#[test]
fn plays_the_librarys_drum_decode_on_the_drum_channel() {
    let _turn = exclusive();
    let sample_rate = 48_000.0;
    // The embedded drum model (step 3 of the Model choice), a latent slider moved, and a
    // kit whose kick is on note 24.
    let set: [(&str, f32); 2] = [("lat1", 0.7), ("dn_1", 24.0 / 127.0)];
    let mut plugin = Plugin::new();
    plugin.render_offline();
    let inputs: Vec<Input> = [Input::Param {
        time: 0,
        id: "model",
        value: 3.0,
    }]
    .into_iter()
    .chain(set.iter().map(|&(id, value)| Input::Param {
        time: 0,
        id,
        value: if id == "dn_1" { 24.0 } else { value as f64 },
    }))
    .collect();
    // Parameters first (a block the host sends before playing), then the model decodes.
    plugin.activate(sample_rate);
    let mut out = Vec::new();
    plugin.process(
        64,
        &Transport {
            playing: false,
            tempo: TEMPO,
            beats: 0.0,
            loop_range: None,
            ..Transport::default()
        },
        &inputs,
        &mut out,
    );
    // A loop and a half of the 2-bar groove.
    let duration = (6.0 * sample_rate) as u64;
    let mut done = 0u64;
    let mut sizes = block_sizes(5);
    out.clear();
    let origin = 64;
    while done < duration {
        let frames = sizes().min((duration - done) as usize);
        let transport = Transport {
            playing: true,
            tempo: TEMPO,
            beats: done as f64 / sample_rate * TEMPO / 60.0,
            loop_range: None,
            ..Transport::default()
        };
        plugin.process(frames, &transport, &[], &mut out);
        done += frames as u64;
    }
    // What the library decodes for the same z.
    let params = LatentLiveParams::default();
    set_by_id(&params, "lat1", 0.7);
    let file = DefaultModel::Groove2Bar.load().unwrap();
    let model = file.model(&candle_core::Device::Cpu).unwrap();
    let z = LatentSpace::of(&file)
        .unwrap()
        .compose([None; 4], &params.z_request().controls);
    let events = model
        .decode(&z_tensor(&model, &[z]).unwrap(), Sampling::Greedy)
        .unwrap();
    let hits = drums::decode(&events[0]);
    assert!(hits.len() > 8, "the model decodes a groove: {hits:?}");
    let mut kit = drums::GM_NOTES;
    kit[0] = 24;
    let samples_per_step = sample_rate * 60.0 / TEMPO / 4.0;
    let at = |step: u32| (step as f64 * samples_per_step - 1e-4).ceil() as u64;
    let mut expected: Vec<(u64, u8, u8)> = Vec::new();
    for offset in [0, 32] {
        for h in &hits {
            expected.push((at(offset + h.step), 9, kit[h.class as usize]));
        }
    }
    expected.retain(|&(t, ..)| t < duration);
    expected.sort();
    expected.dedup();
    let mut played: Vec<(u64, u8, u8)> = out
        .iter()
        .filter_map(|e| {
            if let Output::NoteOn { at, key, channel } = *e {
                Some((at - origin, channel, key))
            } else {
                None
            }
        })
        .collect();
    played.sort();
    assert_eq!(
        played, expected,
        "every hit, on channel 10, through the kit mapping"
    );
    assert!(out.iter().all(|e| !matches!(e, Output::NoteOn { channel, .. } | Output::NoteOff { channel, .. } if *channel != 9)), "nothing off the drum channel");
    stop(&mut plugin, &mut out);
    assert!(sounding(&out).is_empty(), "every hit is ended");
}

/// A tempo, a sample rate, a Groove amount, and block sizes by seed.
type GrooveCase = (f64, f64, f32, fn(u64) -> Box<dyn FnMut() -> usize>);

/// The embedded drum model's greedy decode with latent 1 at `lat1`, and the embedded
/// humanizer's feel for its hits: what the plugin should play.
fn library_groove(lat1: f32) -> (Vec<drums::Hit>, Vec<[Feel; drums::NUM_DRUM_CLASSES]>) {
    let params = LatentLiveParams::default();
    set_by_id(&params, "lat1", lat1);
    let file = DefaultModel::Groove2Bar.load().unwrap();
    let model = file.model(&candle_core::Device::Cpu).unwrap();
    let z = LatentSpace::of(&file)
        .unwrap()
        .compose([None; 4], &params.z_request().controls);
    let events = model
        .decode(&z_tensor(&model, &[z]).unwrap(), Sampling::Greedy)
        .unwrap()
        .remove(0);
    let humanizer = DefaultModel::Humanize2Bar
        .load()
        .unwrap()
        .model(&candle_core::Device::Cpu)
        .unwrap();
    (drums::decode(&events), humanizer.feel_of(&events).unwrap())
}

#[test]
fn early_and_late_hits_arrive_on_their_sample_at_any_tempo_rate_and_block_size() {
    let _turn = exclusive();
    let lat1 = 0.7;
    let (hits, feel) = library_groove(lat1);
    assert!(hits.len() > 8, "the model decodes a groove: {hits:?}");
    let shifts: Vec<f32> = hits
        .iter()
        .map(|h| feel[h.step as usize][h.class as usize].shift)
        .collect();
    // The test is about early notes: the humanizer must play some (drummers play ahead).
    assert!(
        shifts.iter().filter(|&&s| s < -0.05).count() >= 4,
        "the humanizer plays hits early: {shifts:?}"
    );
    // (tempo, sample rate, groove amount, block sizes); Groove 0 must be the quantized
    // pattern exactly.
    let cases: [GrooveCase; 5] = [
        (120.0, 48_000.0, 1.0, |seed| Box::new(block_sizes(seed))),
        (93.0, 44_100.0, 1.0, |seed| {
            let mut lcg = block_sizes(seed);
            let mut n = 0;
            Box::new(move || {
                n += 1;
                if n < 2_000 {
                    1 + lcg() % 3
                } else {
                    lcg()
                }
            })
        }),
        (171.0, 96_000.0, 0.6, |_| Box::new(|| 4096)),
        (64.0, 22_050.0, 1.0, |_| Box::new(|| 37)),
        (133.0, 48_000.0, 0.0, |seed| Box::new(block_sizes(seed))),
    ];
    for (i, (tempo, sample_rate, groove, sizes)) in cases.into_iter().enumerate() {
        let mut plugin = Plugin::new();
        plugin.render_offline();
        plugin.activate(sample_rate);
        let inputs = [
            Input::Param {
                time: 0,
                id: "model",
                value: 3.0,
            },
            Input::Param {
                time: 0,
                id: "lat1",
                value: lat1 as f64,
            },
            Input::Param {
                time: 0,
                id: "groove",
                value: groove as f64,
            },
        ];
        let mut out = Vec::new();
        plugin.process(
            64,
            &Transport {
                playing: false,
                tempo,
                beats: 0.0,
                ..Transport::default()
            },
            &inputs,
            &mut out,
        );
        out.clear();
        // A loop and a half of the 2-bar groove.
        let samples_per_beat = sample_rate * 60.0 / tempo;
        let duration = (12.0 * samples_per_beat) as u64;
        let (mut done, mut sizes) = (0u64, sizes(i as u64));
        while done < duration {
            let frames = sizes().min((duration - done) as usize);
            plugin.process(
                frames,
                &Transport {
                    playing: true,
                    tempo,
                    beats: done as f64 / samples_per_beat,
                    ..Transport::default()
                },
                &[],
                &mut out,
            );
            done += frames as u64;
        }
        // Each hit on the first sample at or after its step plus its scaled shift; one
        // due before the transport started plays on the first sample.
        let mut expected: Vec<(u64, u8)> = Vec::new();
        for offset in [0, 32, 64] {
            for (h, shift) in hits.iter().zip(&shifts) {
                let beats = (offset + h.step) as f64 / 4.0 + (shift * groove) as f64 / 4.0;
                let at = (beats * samples_per_beat - 1e-4).ceil().max(0.0) as u64;
                if at < duration {
                    expected.push((at, drums::GM_NOTES[h.class as usize]));
                }
            }
        }
        expected.sort();
        let mut played: Vec<(u64, u8)> = out
            .iter()
            .filter_map(|e| {
                if let Output::NoteOn {
                    at,
                    key,
                    channel: 9,
                } = *e
                {
                    Some((at - 64, key))
                } else {
                    None
                }
            })
            .collect();
        played.sort();
        assert_eq!(
            played, expected,
            "case {i}: {tempo} bpm at {sample_rate} Hz, groove {groove}"
        );
        stop(&mut plugin, &mut out);
        assert!(sounding(&out).is_empty(), "case {i}: every hit is ended");
    }
}

/// CLAP's value for a normalized one: stepped parameters count steps.
fn clap_value(id: &str, normalized: f32) -> f64 {
    match id {
        "seed" => (normalized * 9999.0).round() as f64,
        _ => normalized as f64,
    }
}

fn leak(id: &str) -> &'static str {
    Box::leak(id.to_string().into_boxed_str())
}

/// lat1 moves at 0.6 s; the new phrase takes over on the next bar line, at 2 s.
fn automation(sample: u64, frames: usize) -> Vec<Input> {
    at(seconds(0.6), sample, frames, |time| Input::Param {
        time,
        id: "lat1",
        value: 0.9,
    })
    .into_iter()
    .collect()
}

#[test]
fn with_a_scale_set_every_melody_note_it_sends_is_in_the_scale() {
    let _turn = exclusive();
    // Off the origin, so that the phrase is one the fit has work on.
    let moved = |set_scale: bool| {
        move |sample: u64, frames: usize| -> Vec<Input> {
            let scale: &[(&'static str, f64)] = if set_scale {
                // A (index 9), minor pentatonic (index 10): stepped values count steps.
                &[("key", 9.0), ("scale", 10.0)]
            } else {
                &[]
            };
            [("lat2", 0.85), ("lat3", 0.2)]
                .iter()
                .chain(scale)
                .filter_map(|&(id, value)| {
                    at(0, sample, frames, |time| Input::Param { time, id, value })
                })
                .collect()
        }
    };
    let a_minor_pentatonic = ScaleLock {
        tonic: 9,
        scale: Scale::MinorPentatonic,
    };
    let locked = onsets(&play(
        &mut offline_plugin(),
        0.0,
        seconds(8.0),
        block_sizes(4),
        moved(true),
    ));
    assert!(locked.len() >= 8, "{locked:?}");
    for &(at, key) in &locked {
        assert!(
            a_minor_pentatonic.contains(key),
            "note {key} at {at} is outside A minor pentatonic"
        );
    }
    let free = onsets(&play(
        &mut offline_plugin(),
        0.0,
        seconds(8.0),
        block_sizes(4),
        moved(false),
    ));
    assert!(
        free.iter()
            .any(|&(_, key)| !a_minor_pentatonic.contains(key)),
        "the same phrase unlocked leaves the scale, so the lock did the work: {free:?}"
    );
}

#[test]
fn offline_render_plays_the_notes_real_time_plays() {
    let _turn = exclusive();
    let mut offline = offline_plugin();
    let rendered = play(&mut offline, 0.0, seconds(4.0), block_sizes(2), automation);
    let unchanged = play(
        &mut offline_plugin(),
        0.0,
        seconds(4.0),
        block_sizes(3),
        |_, _| vec![],
    );
    let before = |e: &[Output]| {
        onsets(e)
            .into_iter()
            .filter(|(at, _)| *at < seconds(2.0))
            .collect::<Vec<_>>()
    };
    let after = |e: &[Output]| {
        onsets(e)
            .into_iter()
            .filter(|(at, _)| *at >= seconds(2.0))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        before(&rendered),
        before(&unchanged),
        "the old phrase plays out its bar"
    );
    assert_ne!(
        after(&rendered),
        after(&unchanged),
        "the new phrase takes over at the bar line"
    );

    // Real time: 512-sample blocks paced by the wall clock, after a warm-up with the
    // transport stopped in which the worker loads the model.
    let mut realtime = Plugin::new();
    realtime.activate(SR);
    let clock = Instant::now();
    let pace = |sample: u64| {
        if let Some(wait) = Duration::from_secs_f64(sample as f64 / SR).checked_sub(clock.elapsed())
        {
            std::thread::sleep(wait);
        }
    };
    let (warmup, mut sink) = (seconds(3.0), Vec::new());
    while realtime.position < warmup {
        pace(realtime.position);
        realtime.process(
            512,
            &Transport {
                playing: false,
                tempo: TEMPO,
                beats: 0.0,
                loop_range: None,
                ..Transport::default()
            },
            &[],
            &mut sink,
        );
    }
    let start = realtime.position;
    let live = play(
        &mut realtime,
        0.0,
        seconds(4.0),
        || 512,
        |sample, frames| {
            pace(start + sample);
            automation(sample, frames)
        },
    );
    assert_eq!(onsets(&live), onsets(&rendered));
}

#[test]
fn latent_drift_plays_its_path_bar_by_bar_the_same_in_every_render() {
    let _turn = exclusive();
    // Drift 1.5 sigma over a cycle of 4 bars, set in the first block.
    let set = [("drift", 0.75), ("drrate", 3.0 / 63.0)];
    let bar = seconds(2.0);
    let render = |sizes| {
        play(
            &mut offline_plugin(),
            0.0,
            6 * bar,
            sizes,
            |sample, frames| {
                at(0, sample, frames, |time| Input::Param {
                    time,
                    id: "drift",
                    value: 0.75,
                })
                .into_iter()
                // A stepped parameter's CLAP value is its step: 4 bars is step 3.
                .chain(at(0, sample, frames, |time| Input::Param {
                    time,
                    id: "drrate",
                    value: 3.0,
                }))
                .collect()
            },
        )
    };
    let rendered = render(block_sizes(5));
    assert_eq!(
        onsets(&rendered),
        onsets(&render(block_sizes(6))),
        "two renders are one"
    );
    let in_bar = |ons: Vec<(u64, u8)>, k: u64| -> Vec<(u64, u8)> {
        ons.into_iter()
            .filter(|&(t, _)| (k * bar..(k + 1) * bar).contains(&t))
            .collect()
    };
    let mut phrases = BTreeSet::new();
    for k in 0..6u64 {
        let phrase = library_phrase_at(&set, k as i64);
        phrases.insert(format!("{:?}", phrase.notes()));
        assert_eq!(
            in_bar(onsets(&rendered), k),
            in_bar(expected(&phrase, SR, 6 * bar).0, k),
            "bar {k} plays z where the drift is at bar {k}"
        );
    }
    assert!(
        phrases.len() >= 3,
        "the drift moves the phrase: {phrases:?}"
    );
    // A cycle on, the path is where it was.
    assert_eq!(
        format!("{:?}", library_phrase_at(&set, 5).notes()),
        format!("{:?}", library_phrase_at(&set, 1).notes())
    );
}

/// Scenes travel in the project; a note or a Program Change on the scene channel and the
/// `Scene` parameter recall them, each from the next bar line (Swap: Next Bar), and the
/// note is not passed on.
#[test]
fn scenes_recalled_by_note_parameter_and_program_change_take_over_at_the_next_bar() {
    let _turn = exclusive();
    // A project with two scenes: latent 1 up and latent 2 down, then latent 1 down.
    let mut plugin = Plugin::new();
    let mut state = plugin.state_json();
    let scene = |lat1: f32, lat2: f32| {
        serde_json::json!({"values": {"lat1": lat1, "lat2": lat2},
                           "clips": {"a": null, "b": null}})
    };
    let slots = serde_json::json!({"slots": [scene(2.0, -1.5), scene(-2.0, 0.0),
        null, null, null, null, null, null]});
    state["fields"]["scenes"] = serde_json::Value::String(slots.to_string());
    plugin.load_state_json(&state);
    plugin.render_offline();
    plugin.activate(SR);
    let bar = seconds(2.0);
    let rendered = play(
        &mut plugin,
        0.0,
        5 * bar,
        block_sizes(3),
        |sample, frames| {
            // Scene Channel 1 (its CLAP value is its step), in the first block.
            at(0, sample, frames, |time| Input::Param {
                time,
                id: "scnch",
                value: 1.0,
            })
            .into_iter()
            // C1, scene 1, halfway through bar 1: it takes over at bar 2 (k = 1).
            .chain(at(bar / 2, sample, frames, |time| Input::NoteOn {
                time,
                key: 24,
            }))
            .chain(at(bar / 2 + 100, sample, frames, |time| Input::NoteOff {
                time,
                key: 24,
            }))
            // The parameter names scene 2 in bar 3: it takes over at bar 4.
            .chain(at(2 * bar + bar / 2, sample, frames, |time| Input::Param {
                time,
                id: "scene",
                value: 2.0,
            }))
            // Program 1 (0 on the wire) on channel 1 in bar 4: scene 1 from bar 5.
            .chain(at(3 * bar + bar / 3, sample, frames, |time| Input::Midi {
                time,
                data: [0xC0, 0, 0],
            }))
            .collect()
        },
    );
    assert!(
        onsets(&rendered).iter().all(|&(_, key)| key != 24),
        "the scene's note is not passed on"
    );
    let in_bar = |ons: Vec<(u64, u8)>, k: u64| -> Vec<(u64, u8)> {
        ons.into_iter()
            .filter(|&(t, _)| (k * bar..(k + 1) * bar).contains(&t))
            .collect()
    };
    // Normalized: latent sliders span -3 to 3.
    let normalized = |v: f32| (v + 3.0) / 6.0;
    let first = [("lat1", normalized(2.0)), ("lat2", normalized(-1.5))];
    let second = [("lat1", normalized(-2.0)), ("lat2", normalized(0.0))];
    let phrases: [&[(&str, f32)]; 5] = [&[], &first, &first, &second, &first];
    for (k, set) in phrases.iter().enumerate() {
        let phrase = library_phrase_at(set, k as i64);
        assert_eq!(
            in_bar(onsets(&rendered), k as u64),
            in_bar(expected(&phrase, SR, 5 * bar).0, k as u64),
            "bar {}",
            k + 1
        );
    }
    assert_ne!(
        format!("{:?}", library_phrase_at(&first, 0).notes()),
        format!("{:?}", library_phrase_at(&[], 0).notes()),
        "the scene changes the phrase"
    );
    assert_ne!(
        format!("{:?}", library_phrase_at(&first, 4).notes()),
        format!("{:?}", library_phrase_at(&second, 4).notes()),
        "the program change changes the phrase"
    );
}

#[test]
fn a_host_rendering_faster_than_real_time_unannounced_plays_what_was_set_from_bar_one() {
    let _turn = exclusive();
    // A batch renderer (a Python script, say): real-time mode, the parameters set in the
    // first block, then 6 s rendered back to back, with lat1 moved at 0.6 s.
    let set: [(&str, f32); 2] = [("lat2", 0.8), ("lat4", 0.25)];
    let inputs = |sample: u64, frames: usize| -> Vec<Input> {
        let mut inputs = automation(sample, frames);
        if sample == 0 {
            inputs.extend(set.iter().map(|&(id, value)| Input::Param {
                time: 0,
                id,
                value: value as f64,
            }));
        }
        inputs
    };
    let batch = || {
        let mut plugin = Plugin::new();
        plugin.activate(SR);
        play(&mut plugin, 0.0, seconds(6.0), || 512, inputs)
    };
    let (first, second) = (batch(), batch());
    assert_eq!(first, second, "two identical renders are identical");
    let mut plugin = offline_plugin();
    let offline = play(&mut plugin, 0.0, seconds(6.0), || 512, inputs);
    assert_eq!(onsets(&first), onsets(&offline), "as rendered offline");
    let (ons, _) = expected(&library_phrase(&set), SR, seconds(2.0));
    let bar_one: Vec<(u64, u8)> = onsets(&first)
        .into_iter()
        .filter(|&(at, _)| at < seconds(2.0))
        .collect();
    assert!(!ons.is_empty());
    assert_eq!(
        bar_one, ons,
        "the parameters set are heard from the first bar"
    );
}

#[test]
fn no_note_is_left_sounding_by_loops_jumps_stop_bypass_or_deactivation() {
    let _turn = exclusive();
    let mut plugin = offline_plugin();
    let mut out = Vec::new();
    let mut sizes = block_sizes(4);
    let beats_per_sample = TEMPO / 60.0 / SR;
    // The host's position carries over from run to run (a stop keeps it).
    let mut beats = 0.0f64;
    // The host loops beats 0 to 6 (a bar and a half: the jump lands mid-phrase).
    let mut run = |plugin: &mut Plugin,
                   out: &mut Vec<Output>,
                   samples: u64,
                   looped: bool,
                   inputs: &[Input]| {
        let mut done = 0u64;
        while done < samples {
            let frames = sizes().min((samples - done) as usize);
            let loop_range = looped.then_some((0.0, 6.0));
            plugin.process(
                frames,
                &Transport {
                    playing: true,
                    tempo: TEMPO,
                    beats,
                    loop_range,
                    ..Transport::default()
                },
                if done == 0 { inputs } else { &[] },
                out,
            );
            beats += frames as f64 * beats_per_sample;
            if looped && beats >= 6.0 {
                beats -= 6.0;
            }
            done += frames as u64;
        }
    };
    run(&mut plugin, &mut out, seconds(7.0), true, &[]);
    assert_monophonic(&out);
    let jumps = out
        .iter()
        .filter(|e| matches!(e, Output::NoteOn { .. }))
        .count();
    assert!(jumps >= 4, "played through the loop: {out:?}");

    let before_stop = out.len();
    stop(&mut plugin, &mut out);
    assert!(sounding(&out).is_empty(), "stop: {:?}", &out[before_stop..]);

    // Bypass mid-phrase: the sounding note ends and nothing new starts.
    run(&mut plugin, &mut out, seconds(1.3), false, &[]);
    let bypassed_at = out.len();
    run(
        &mut plugin,
        &mut out,
        seconds(2.0),
        false,
        &[Input::Param {
            time: 0,
            id: "bypass",
            value: 1.0,
        }],
    );
    assert!(sounding(&out).is_empty(), "bypass");
    assert!(
        !out[bypassed_at..]
            .iter()
            .any(|e| matches!(e, Output::NoteOn { .. })),
        "silent while bypassed"
    );
    run(
        &mut plugin,
        &mut out,
        seconds(0.5),
        false,
        &[Input::Param {
            time: 0,
            id: "bypass",
            value: 0.0,
        }],
    );

    // Deactivated while a note may sound: the next block after reactivation sends
    // all-notes-off before anything else.
    plugin.deactivate();
    plugin.activate(SR);
    let reactivated = out.len();
    run(&mut plugin, &mut out, 512, false, &[]);
    let first_block = &out[reactivated..];
    let all_off = first_block
        .iter()
        .position(|e| matches!(e, Output::AllNotesOff { .. }));
    assert!(
        all_off.is_some_and(|i| first_block[..i]
            .iter()
            .all(|e| matches!(e, Output::NoteOff { .. }))),
        "{first_block:?}"
    );
    stop(&mut plugin, &mut out);
    assert!(sounding(&out).is_empty());
}

fn clips(state: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(state["fields"]["clips"].as_str().expect("clips persisted")).unwrap()
}

#[test]
fn captures_played_notes_and_the_playing_phrase_then_morphs_between_them() {
    let _turn = exclusive();
    let mut plugin = offline_plugin();
    // Bars 1 and 2 (0 to 4 s): an arpeggio in quarter notes, held 0.4 s.
    let script = |sample: u64, frames: usize| -> Vec<Input> {
        let mut inputs = riff_inputs(sample, frames, SR);
        let param = |at_s: f64, id: &'static str, value: f64| {
            at(seconds(at_s), sample, frames, move |time| Input::Param {
                time,
                id,
                value,
            })
        };
        // The phrase alone on the output: what plays is compared with the clips.
        inputs.extend(param(0.0, "thru", 0.0));
        // Capture A a little after the bar line at beat 8 (4 s): it takes bars 1 and 2.
        inputs.extend(param(4.2, "capa", 1.0));
        inputs.extend(param(4.3, "capa", 0.0));
        // Clip A's phrase takes over at beat 12 (6 s): capture what plays as B.
        inputs.extend(param(5.0, "capsrc", 1.0));
        inputs.extend(param(6.5, "capb", 1.0));
        inputs.extend(param(6.6, "capb", 0.0));
        // Then B again, from the run played in bars 3 and 4, pressed just after beat 16.
        inputs.extend(param(7.5, "capsrc", 0.0));
        inputs.extend(param(8.2, "capb", 1.0));
        inputs.extend(param(8.3, "capb", 0.0));
        inputs
    };
    let events = play(&mut plugin, 0.0, seconds(7.0), block_sizes(5), script);
    let clips_now = clips(&plugin.state_json());
    let a = &clips_now["a"];
    assert_eq!(a["source"], "Input");
    let notes = |clip: &serde_json::Value| -> Vec<(u64, u64, u64)> {
        clip["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["pitch"].as_u64().unwrap(),
                    n["start"].as_u64().unwrap(),
                    n["end"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    // Quarter notes (4 steps apart) held for 0.4 s: 3.2 steps, quantized to 3.
    let expected: Vec<(u64, u64, u64)> = ARPEGGIO
        .iter()
        .enumerate()
        .map(|(i, &k)| (k as u64, 4 * i as u64, 4 * i as u64 + 3))
        .collect();
    assert_eq!(notes(a), expected);
    assert_eq!(a["mu"].as_array().unwrap().len(), 128);
    assert_eq!(clips_now["b"]["source"], "Playing");
    // The phrase follows the host's timeline: at beat 12 it plays from its step 16.
    let heard: BTreeSet<(u64, u64)> = onsets(&events)
        .into_iter()
        .filter(|(at, _)| *at >= seconds(6.0))
        .map(|(at, key)| ((at / STEP) % 32, key as u64))
        .collect();
    let b_notes: BTreeSet<(u64, u64)> = notes(&clips_now["b"])
        .into_iter()
        .map(|(pitch, start, _)| (start, pitch))
        .collect();
    assert!(
        !heard.is_empty() && heard.is_subset(&b_notes),
        "B holds the phrase that played: {heard:?} in {b_notes:?}"
    );

    play(
        &mut plugin,
        14.0,
        seconds(2.0),
        block_sizes(6),
        |sample, frames| script(seconds(7.0) + sample, frames),
    );
    let clips_now = clips(&plugin.state_json());
    let b = &clips_now["b"];
    assert_eq!(b["source"], "Input");
    let expected: Vec<(u64, u64, u64)> = RUN
        .iter()
        .enumerate()
        .map(|(i, &k)| (k as u64, 2 * i as u64, 2 * i as u64 + 2))
        .collect();
    assert_eq!(
        notes(b),
        expected,
        "8ths held 0.2 s (1.6 steps) last until the next"
    );

    // Morph from A to B: each end decodes near its clip, and the two ends differ.
    let phrase_at = |plugin: &mut Plugin, morph: f64| {
        let mut out = Vec::new();
        stop(plugin, &mut out);
        let set = [Input::Param {
            time: 0,
            id: "morph",
            value: morph,
        }];
        let events = play(plugin, 0.0, seconds(4.0), block_sizes(7), |sample, _| {
            if sample == 0 {
                set.to_vec()
            } else {
                vec![]
            }
        });
        onsets(&events)
            .into_iter()
            .map(|(at, key)| (at / STEP, key as u64))
            .collect::<BTreeSet<_>>()
    };
    // Onsets in common, a decoded one counting when the clip has its pitch within two
    // steps: a greedy reconstruction may place a detached note an 8th late.
    let similarity = |decoded: &BTreeSet<(u64, u64)>, clip: &[(u64, u64, u64)]| {
        let matched = decoded
            .iter()
            .filter(|&&(step, key)| clip.iter().any(|n| n.0 == key && n.1.abs_diff(step) <= 2))
            .count();
        matched as f64 / (decoded.len() + clip.len() - matched) as f64
    };
    let (at_a, at_b) = (phrase_at(&mut plugin, 0.0), phrase_at(&mut plugin, 1.0));
    assert_ne!(at_a, at_b);
    assert!(
        similarity(&at_a, &expected) < similarity(&at_b, &expected),
        "the B end is nearer the run: {at_a:?} {at_b:?}"
    );
    assert!(
        similarity(&at_a, &notes(a)) > similarity(&at_b, &notes(a)),
        "the A end is nearer the arpeggio: {at_a:?} {at_b:?}"
    );
}

#[test]
fn captures_a_riff_played_while_the_transport_is_stopped() {
    let _turn = exclusive();
    let mut plugin = offline_plugin();
    let stopped = Transport {
        playing: false,
        tempo: TEMPO,
        beats: 0.0,
        loop_range: None,
        ..Transport::default()
    };
    // Half a second of silence, then 8ths from 0.5 s (step 0 of the clip is the first note).
    let riff = [(0.5, 62u8), (0.75, 65), (1.0, 69), (1.5, 67)];
    let mut out = Vec::new();
    for block in 0..(seconds(2.5) / 480) {
        let (sample, frames) = (block * 480, 480usize);
        let mut inputs: Vec<Input> = Vec::new();
        for &(start, key) in &riff {
            inputs.extend(at(seconds(start), sample, frames, |time| Input::NoteOn {
                time,
                key,
            }));
            inputs.extend(at(seconds(start + 0.2), sample, frames, |time| {
                Input::NoteOff { time, key }
            }));
        }
        inputs.extend(at(seconds(2.2), sample, frames, |time| Input::Param {
            time,
            id: "capa",
            value: 1.0,
        }));
        plugin.process(frames, &stopped, &inputs, &mut out);
    }
    // The phrase does not play while stopped; what was played in is forwarded (MIDI
    // Thru, on by default), each note on its own sample.
    let forwarded: Vec<(u64, u8)> = out
        .iter()
        .filter_map(|e| {
            if let Output::NoteOn { at, key, .. } = *e {
                Some((at, key))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        forwarded,
        riff.iter()
            .map(|&(start, key)| (seconds(start), key))
            .collect::<Vec<_>>(),
        "only the riff, forwarded"
    );
    assert!(sounding(&out).is_empty(), "every forwarded note ended");
    let a = &clips(&plugin.state_json())["a"];
    let notes: Vec<(u64, u64)> = a["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["start"].as_u64().unwrap(), n["pitch"].as_u64().unwrap()))
        .collect();
    assert_eq!(notes, vec![(0, 62), (2, 65), (4, 69), (8, 67)]);
}

#[test]
fn saved_projects_reopen_with_the_same_clips_and_sound() {
    let _turn = exclusive();
    let mut plugin = offline_plugin();
    let setup = [
        Input::Param {
            time: 0,
            id: "temp",
            value: 0.4,
        },
        Input::Param {
            time: 0,
            id: "seed",
            value: 42.0,
        },
        Input::Param {
            time: 0,
            id: "lat3",
            value: 0.7,
        },
        Input::Param {
            time: 0,
            id: "capsrc",
            value: 1.0,
        },
    ];
    play(
        &mut plugin,
        0.0,
        seconds(1.0),
        || 512,
        |sample, _| if sample == 0 { setup.to_vec() } else { vec![] },
    );
    // Capture A takes the phrase playing; the block after it lets the worker store it.
    play(
        &mut plugin,
        2.0,
        512,
        || 512,
        |_, _| {
            vec![Input::Param {
                time: 0,
                id: "capa",
                value: 1.0,
            }]
        },
    );
    play(
        &mut plugin,
        2.1,
        512,
        || 512,
        |_, _| {
            vec![Input::Param {
                time: 0,
                id: "capa",
                value: 0.0,
            }]
        },
    );
    let render = |plugin: &mut Plugin| {
        let mut out = Vec::new();
        stop(plugin, &mut out);
        onsets(&play(
            plugin,
            0.0,
            seconds(4.0),
            block_sizes(7),
            |_, _| vec![],
        ))
    };
    let original = render(&mut plugin);
    let state = plugin.save_state();
    let json = plugin.state_json();
    assert!(
        clips(&json)["a"]["mu"]
            .as_array()
            .is_some_and(|mu| mu.len() == 128),
        "clip A is saved with its mean"
    );

    let mut reopened = Plugin::new();
    reopened.load_state(&state);
    reopened.render_offline();
    reopened.activate(SR);
    assert_eq!(reopened.param_value("seed").map(f64::round), Some(42.0));
    assert_eq!(render(&mut reopened), original);
}

/// Note-ons and note-offs of a run, as (sample, key).
fn ons_and_offs(out: &[Output]) -> OnsAndOffs {
    let ons = out
        .iter()
        .filter_map(|e| {
            if let Output::NoteOn { at, key, .. } = *e {
                Some((at, key))
            } else {
                None
            }
        })
        .collect();
    let offs = out
        .iter()
        .filter_map(|e| {
            if let Output::NoteOff { at, key, .. } = *e {
                Some((at, key))
            } else {
                None
            }
        })
        .collect();
    (ons, offs)
}

#[test]
fn a_fresh_instance_rendering_faster_than_real_time_plays_from_its_first_block() {
    let _turn = exclusive();
    // Not flagged offline, blocks back to back from the moment activate() returns, as a
    // batch host does: the first block already plays the phrase.
    let mut plugin = Plugin::new();
    plugin.activate(SR);
    let out = play(&mut plugin, 0.0, seconds(5.0), || 512, |_, _| vec![]);
    let (ons, offs) = expected(&library_phrase(&[]), SR, seconds(5.0));
    assert_eq!(ons_and_offs(&out), (ons, offs));
}

#[test]
fn with_no_transport_at_all_it_free_runs_at_120_bpm_from_the_start() {
    let _turn = exclusive();
    for offline in [false, true] {
        let mut plugin = Plugin::new();
        if offline {
            plugin.render_offline();
        }
        plugin.activate(SR);
        let mut out = Vec::new();
        for _ in 0..seconds(5.0) / 500 {
            plugin.process_with(500, None, &[], &mut out);
        }
        let (ons, offs) = expected(&library_phrase(&[]), SR, seconds(5.0));
        assert_eq!(ons_and_offs(&out), (ons, offs), "offline: {offline}");
        // A reset (a batch host's next render) starts it again from the top.
        drop(plugin);
    }
}

#[test]
fn phrases_swap_on_the_hosts_bar_lines_in_any_meter() {
    let _turn = exclusive();
    for (numerator, denominator) in [(2u16, 4u16), (3, 4), (5, 4), (6, 8), (7, 8), (12, 8)] {
        let mut plugin = offline_plugin();
        let bar = numerator as f64 * 4.0 / denominator as f64;
        let bar_samples = |n: f64| (n * bar * 60.0 / TEMPO * SR).round() as u64;
        let mut out = Vec::new();
        let mut done = 0u64;
        // Two bars, then a slider moves mid-bar: the new phrase must start on a bar line.
        let change_at = bar_samples(2.5);
        while done < bar_samples(6.0) {
            let frames = 480usize;
            let transport = Transport {
                beats: done as f64 / SR * TEMPO / 60.0,
                meter: (numerator, denominator),
                ..Transport::default()
            };
            let inputs: Vec<Input> = at(change_at, done, frames, |time| Input::Param {
                time,
                id: "lat1",
                value: 0.95,
            })
            .into_iter()
            .collect();
            plugin.process(frames, &transport, &inputs, &mut out);
            done += frames as u64;
        }
        stop(&mut plugin, &mut out);
        assert!(sounding(&out).is_empty(), "{numerator}/{denominator}");
        // Each host bar starts on a phrase bar's downbeat: the notes of each bar are a
        // phrase bar's opening, cut to the bar's length.
        let (ons, _) = ons_and_offs(&out);
        let steps_per_bar = (bar * 4.0).round() as u64;
        let before = library_phrase(&[]);
        let after = library_phrase(&[("lat1", 0.95)]);
        let step_samples = STEP;
        for &(at, key) in &ons {
            let (host_bar, step) = (
                at / bar_samples(1.0),
                (at % bar_samples(1.0)) / step_samples,
            );
            assert!(step < steps_per_bar);
            let phrase = if at < bar_samples(3.0) {
                &before
            } else {
                &after
            };
            let phrase_step = (host_bar % 2) * 16 + step % 16;
            assert!(
                phrase
                    .notes()
                    .iter()
                    .any(|n| n.start as u64 == phrase_step && n.pitch == key),
                "{numerator}/{denominator}: {key} at bar {host_bar} step {step} is not the \
                 phrase's step {phrase_step}"
            );
        }
        assert!(
            ons.iter().any(|&(at, _)| at >= bar_samples(3.0)),
            "{numerator}/{denominator}: the new phrase plays"
        );
    }
}

#[test]
fn sixteen_instances_load_in_one_process_quickly() {
    let _turn = exclusive();
    let started = Instant::now();
    let mut plugins: Vec<Plugin> = (0..16).map(|_| Plugin::new()).collect();
    for plugin in &mut plugins {
        plugin.activate(SR);
    }
    let each = started.elapsed() / 16;
    // A sanity bound (a stuck instance waits out its seconds), not a benchmark: the
    // figure is in BENCHMARKS.md (`cargo run -p latent_live_tests --example instances`).
    assert!(each < Duration::from_secs(2), "{each:?} per instance");
    for plugin in &mut plugins {
        let out = play(plugin, 0.0, 4_096, || 512, |_, _| vec![]);
        assert!(
            !onsets(&out).is_empty()
                || library_phrase(&[])
                    .notes()
                    .first()
                    .is_none_or(|n| n.start > 0),
            "each plays from its first block"
        );
    }
}

#[test]
fn activation_and_offline_renders_never_wait_for_a_phrase_already_decoded() {
    let _turn = exclusive();
    // A slider a hair below 0 rounds to -0.0, equal to the 0.0 already decoded: the
    // worker has nothing to do, and must say so (clap-validator's param-fuzz-basic and
    // batch hosts that set every parameter before a render hit this).
    let mut plugin = Plugin::new();
    plugin.render_offline();
    plugin.activate(SR);
    let mut out = Vec::new();
    // And a capture of the phrase playing, stored by the worker after the last block:
    // it changes the request while activate() waits.
    let last_block = [
        Input::Param {
            time: 0,
            id: "lat1",
            value: 0.4999,
        },
        Input::Param {
            time: 0,
            id: "capsrc",
            value: 1.0,
        },
        Input::Param {
            time: 0,
            id: "capa",
            value: 1.0,
        },
    ];
    plugin.process(512, &Transport::default(), &last_block, &mut out);
    plugin.deactivate();
    let started = Instant::now();
    plugin.activate(SR);
    play(
        &mut plugin,
        0.0,
        seconds(1.0),
        || 512,
        |_, _| {
            vec![Input::Param {
                time: 0,
                id: "dens",
                value: 0.4999,
            }]
        },
    );
    // Sanity bound, not a benchmark: a missed delivery waits out whole seconds.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_embedded_chord_model_plays_the_librarys_decode_over_the_chord_held() {
    let _turn = exclusive();
    // Pop 2-bar over chords (the Model's sixth value), a chord held below Split Note from
    // the start, Chord Thru off: the notes sent are the model's decode over that chord.
    let set: [(&str, f32); 2] = [("lat2", 0.8), ("lat1", 0.3)];
    let mut played = Vec::new();
    for (name, keys) in [("Am", [45u8, 48, 52]), ("F", [41, 45, 48])] {
        let inputs = |sample: u64, frames: usize| -> Vec<Input> {
            let mut inputs: Vec<Input> = [("model", 5.0), ("chin", 2.0), ("chthru", 0.0)]
                .iter()
                .chain(&set.map(|(id, value)| (id, value as f64)))
                .filter_map(|&(id, value)| {
                    at(0, sample, frames, |time| Input::Param { time, id, value })
                })
                .collect();
            for key in keys {
                inputs.extend(at(0, sample, frames, |time| Input::NoteOn { time, key }));
            }
            inputs
        };
        let out = play(
            &mut offline_plugin(),
            0.0,
            seconds(8.0),
            block_sizes(3),
            inputs,
        );
        let chord = Chord::parse(name).unwrap();
        let phrase = library_phrase_over(DefaultModel::Pop2BarChords, &set, Some(&[chord; 32]), 0);
        let (ons, offs) = expected(&phrase, SR, seconds(8.0));
        assert!(!ons.is_empty(), "{name}: the model plays");
        assert_eq!(onsets(&out), ons, "{name}: note-ons");
        let played_offs: Vec<(u64, u8)> = out
            .iter()
            .filter_map(|e| match *e {
                Output::NoteOff { at, key, .. } => Some((at, key)),
                _ => None,
            })
            .collect();
        assert_eq!(played_offs, offs, "{name}: note-offs");
        played.push(ons);
    }
    assert_ne!(played[0], played[1], "another chord, another phrase");
}

#[test]
fn a_chord_held_below_the_split_pulls_the_beats_onto_its_tones() {
    let _turn = exclusive();
    // A minor held below Split Note (C4) from the start: A2 C3 E3.
    let chord = [45u8, 48, 52];
    let am = Chord::new(9, Quality::Minor);
    let inputs = |fit: f64, chord_thru: f64| {
        move |sample: u64, frames: usize| -> Vec<Input> {
            let mut inputs: Vec<Input> = [
                ("lat2", 0.85),
                ("lat3", 0.2),
                ("chin", 2.0),
                ("chfit", fit),
                ("chthru", chord_thru),
            ]
            .iter()
            .filter_map(|&(id, value)| {
                at(0, sample, frames, |time| Input::Param { time, id, value })
            })
            .collect();
            for key in chord {
                inputs.extend(at(0, sample, frames, |time| Input::NoteOn { time, key }));
            }
            inputs
        }
    };
    let samples_per_beat = (SR * 60.0 / TEMPO) as u64;
    let on_beats = |notes: &[(u64, u8)]| -> Vec<u8> {
        notes
            .iter()
            .filter(|&&(at, key)| at.is_multiple_of(samples_per_beat) && !chord.contains(&key))
            .map(|&(_, key)| key)
            .collect()
    };
    let fitted = onsets(&play(
        &mut offline_plugin(),
        0.0,
        seconds(8.0),
        block_sizes(5),
        inputs(1.0, 0.0),
    ));
    // Chord Thru off: the chord's notes are heard, not forwarded.
    assert!(
        fitted
            .iter()
            .all(|&(at, key)| at > 0 || !chord.contains(&key)),
        "{fitted:?}"
    );
    let beats = on_beats(&fitted);
    assert!(beats.len() >= 4, "{fitted:?}");
    assert!(
        beats.iter().all(|&key| am.has_tone(key)),
        "on-beat notes outside A minor: {beats:?}"
    );
    // Without the fit the same phrase has on-beat notes off the chord, so the fit did the
    // work; with Chord Thru on the chord goes out too.
    let free = onsets(&play(
        &mut offline_plugin(),
        0.0,
        seconds(8.0),
        block_sizes(5),
        inputs(0.0, 1.0),
    ));
    assert!(
        on_beats(&free).iter().any(|&key| !am.has_tone(key)),
        "{free:?}"
    );
    for key in chord {
        assert!(free.iter().any(|&(at, k)| at == 0 && k == key), "{free:?}");
    }
}

/// Plays `duration` samples on a transport that stays stopped at beat 0 (pedalboard's),
/// in blocks of 480; times from the start of this call.
fn play_stopped(
    plugin: &mut Plugin,
    duration: u64,
    mut inputs: impl FnMut(u64, usize) -> Vec<Input>,
) -> Vec<Output> {
    let stopped = Transport {
        playing: false,
        tempo: TEMPO,
        beats: 0.0,
        loop_range: None,
        ..Transport::default()
    };
    let (mut out, origin) = (Vec::new(), plugin.position);
    for block in 0..duration / 480 {
        plugin.process(480, &stopped, &inputs(block * 480, 480), &mut out);
    }
    out.iter().map(|e| shift(e, origin)).collect()
}

/// `Play` set to `mode` (0 Host Transport, 1 Free-run, 2 Note Trigger) at the first
/// sample.
fn play_mode(mode: f64) -> impl FnMut(u64, usize) -> Vec<Input> {
    move |sample, frames| {
        at(0, sample, frames, |time| Input::Param {
            time,
            id: "play",
            value: mode,
        })
        .into_iter()
        .collect()
    }
}

#[test]
fn free_run_plays_where_the_transport_never_runs_and_switching_back_ends_every_note() {
    let _turn = exclusive();
    let mut plugin = offline_plugin();
    let silent = play_stopped(&mut plugin, seconds(1.0), play_mode(0.0));
    assert!(
        onsets(&silent).is_empty(),
        "Host Transport, stopped: {silent:?}"
    );
    let free = play_stopped(&mut plugin, seconds(4.0), play_mode(1.0));
    let notes = onsets(&free);
    assert!(notes.len() >= 4, "{free:?}");
    // On the 16th grid of the plugin's clock, which runs from activation at the tempo.
    let origin = seconds(1.0);
    assert!(
        notes
            .iter()
            .all(|&(at, _)| (origin + at).is_multiple_of(STEP)),
        "{notes:?}"
    );
    // Back to the stopped transport: silence, and every note ended.
    let back = play_stopped(&mut plugin, seconds(1.0), play_mode(0.0));
    assert!(onsets(&back).is_empty(), "{back:?}");
    let whole: Vec<Output> = free.iter().chain(&back).copied().collect();
    assert!(sounding(&whole).is_empty(), "left sounding: {whole:?}");
}

#[test]
fn a_held_trigger_note_plays_the_phrase_from_its_downbeat_with_the_note_as_its_tonic() {
    let _turn = exclusive();
    // Let go in the middle of a note (the phrase, from 0.5 s, plays a note from 4 to 4.25 s).
    let (on, off) = (seconds(0.5), seconds(4.2));
    let trigger = |key: u8| {
        move |sample: u64, frames: usize| -> Vec<Input> {
            let mut inputs = play_mode(2.0)(sample, frames);
            // Off the origin, for a phrase with more notes.
            for (id, value) in [("lat2", 0.85), ("lat3", 0.2)] {
                inputs.extend(at(0, sample, frames, |time| Input::Param {
                    time,
                    id,
                    value,
                }));
            }
            inputs.extend(at(on, sample, frames, |time| Input::NoteOn { time, key }));
            inputs.extend(at(off, sample, frames, |time| Input::NoteOff { time, key }));
            inputs
        }
    };
    let low = play(
        &mut offline_plugin(),
        0.0,
        seconds(5.5),
        block_sizes(6),
        trigger(60),
    );
    let high = play(
        &mut offline_plugin(),
        0.0,
        seconds(5.5),
        block_sizes(6),
        trigger(65),
    );
    // The trigger note is not passed on: every note is the phrase's, and only while held.
    let (low_notes, high_notes) = (onsets(&low), onsets(&high));
    assert!(low_notes.len() >= 4, "{low:?}");
    assert!(
        low_notes.iter().all(|&(at, _)| (on..off).contains(&at)),
        "{low_notes:?}"
    );
    // From the note's own downbeat, on the host's grid.
    assert!(low_notes
        .iter()
        .all(|&(at, _)| (at - on).is_multiple_of(STEP)));
    // Another note plays the same phrase moved to it.
    let moved: Vec<(u64, u8)> = low_notes.iter().map(|&(at, key)| (at, key + 5)).collect();
    assert_eq!(high_notes, moved);
    assert!(sounding(&low).is_empty(), "left sounding: {low:?}");
    // Letting go stops the phrase at that sample, wherever it falls in a block.
    let before: Vec<Output> = low
        .iter()
        .filter(|e| match **e {
            Output::NoteOn { at, .. } | Output::NoteOff { at, .. } => at < off,
            Output::AllNotesOff { at } => at < off,
        })
        .copied()
        .collect();
    let held_over = sounding(&before);
    assert!(
        !held_over.is_empty(),
        "a note sounds as the trigger is let go"
    );
    for key in held_over.keys() {
        assert!(
            low.iter().any(
                |e| matches!(*e, Output::NoteOff { at, key: k, .. } if at == off && k == *key)
            ),
            "{key} ends at the release: {low:?}"
        );
    }
}

#[test]
fn a_chord_played_on_the_chord_channel_changes_the_phrase_at_the_next_swap() {
    let _turn = exclusive();
    // Chord Channel 1 (step 0), where the test host plays; A minor from 1 s, inside bar 0.
    let chord = [45u8, 48, 52];
    let am = Chord::new(9, Quality::Minor);
    let played = |with_chord: bool| {
        move |sample: u64, frames: usize| -> Vec<Input> {
            let mut inputs: Vec<Input> = [
                ("lat2", 0.85),
                ("lat3", 0.2),
                ("chin", 1.0),
                ("chch", 0.0),
                ("chfit", 1.0),
            ]
            .iter()
            .filter_map(|&(id, value)| {
                at(0, sample, frames, |time| Input::Param { time, id, value })
            })
            .collect();
            if with_chord {
                for key in chord {
                    inputs.extend(at(seconds(1.0), sample, frames, |time| Input::NoteOn {
                        time,
                        key,
                    }));
                }
            }
            inputs
        }
    };
    let phrase_notes = |with_chord: bool| -> Vec<(u64, u8)> {
        onsets(&play(
            &mut offline_plugin(),
            0.0,
            seconds(6.0),
            block_sizes(7),
            played(with_chord),
        ))
        .into_iter()
        // Chord Thru is on: the chord itself goes out at 1 s.
        .filter(|&(at, key)| !(at == seconds(1.0) && chord.contains(&key)))
        .collect()
    };
    let (before, after) = (phrase_notes(false), phrase_notes(true));
    let bar = seconds(2.0);
    type Onsets = Vec<(u64, u8)>;
    let split =
        |notes: &[(u64, u8)]| -> (Onsets, Onsets) { notes.iter().partition(|&&(at, _)| at < bar) };
    let ((old_first, old_rest), (new_first, new_rest)) = (split(&before), split(&after));
    // Bar 0 plays on as it was; from the bar line (Swap: Next Bar) the phrase follows Am.
    assert_eq!(new_first, old_first);
    let samples_per_beat = (SR * 60.0 / TEMPO) as u64;
    let on_beats = |notes: &[(u64, u8)]| -> Vec<u8> {
        notes
            .iter()
            .filter(|&&(at, _)| at.is_multiple_of(samples_per_beat))
            .map(|&(_, key)| key)
            .collect()
    };
    assert!(on_beats(&new_rest).len() >= 4, "{after:?}");
    assert!(
        on_beats(&new_rest).iter().all(|&key| am.has_tone(key)),
        "{new_rest:?}"
    );
    assert_ne!(new_rest, old_rest, "the chord changed the phrase");
}
