//! Writes the fuzz targets' seed corpora (`fuzz/corpus/<target>/`): a few small MIDI
//! files of every kind the importer reads, and tiny model files with random weights and
//! analysis metadata.
//!
//! `cargo run -p latent_live_training --example fuzz_seeds -- fuzz/corpus`

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::DType;
use latent_live_core::model::{Config, ModelCard};
use latent_live_core::music::melody::Note;
use latent_live_core::music::midi;
use latent_live_training::train::{TrainConfig, Trainer};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{
    Format, Fps, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
};

fn main() {
    let root = std::env::args()
        .nth(1)
        .expect("usage: fuzz_seeds <corpus folder>");
    let root = Path::new(&root);
    write_midi(&root.join("midi_import"));
    write_models(&root.join("model_file"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
}

fn event(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
    TrackEvent {
        delta: u28::new(delta),
        kind,
    }
}

fn note(delta: u32, channel: u8, key: u8, velocity: u8) -> TrackEvent<'static> {
    let message = MidiMessage::NoteOn {
        key: u7::new(key),
        vel: u7::new(velocity),
    };
    event(
        delta,
        TrackEventKind::Midi {
            channel: u4::new(channel),
            message,
        },
    )
}

fn smf(format: Format, timing: Timing, tracks: Vec<Vec<TrackEvent<'static>>>) -> Vec<u8> {
    let tracks = tracks
        .into_iter()
        .map(|mut t| {
            t.push(event(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)));
            t
        })
        .collect();
    let mut out = Vec::new();
    Smf {
        header: Header::new(format, timing),
        tracks,
    }
    .write_std(&mut out)
    .unwrap();
    out
}

fn write_midi(dir: &Path) {
    // What the plugin exports: one track, PPQ 480.
    let melody: Vec<Note> = (0..8)
        .map(|i| Note {
            pitch: 60 + (i * 5 % 12) as u8,
            start: i * 4,
            end: i * 4 + 3,
        })
        .collect();
    let exported = midi::export(&melody, 132.0);
    write(dir, "exported", &exported);

    // Several tracks: a tempo change, chords the skyline reduces, drums, a note never
    // released, a pitch below the model's range.
    let tempo = |delta, us| {
        event(
            delta,
            TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us))),
        )
    };
    let conductor = vec![tempo(0, 500_000), tempo(960, 400_000)];
    let chords = vec![
        note(0, 0, 60, 90),
        note(0, 0, 64, 90),
        note(240, 0, 64, 0),
        note(240, 0, 60, 0),
        note(0, 1, 12, 80),
        note(480, 1, 12, 0),
        note(0, 0, 72, 100),
    ];
    let drums = vec![
        note(0, 9, 36, 100),
        note(120, 9, 36, 0),
        note(120, 9, 38, 100),
        note(120, 9, 38, 0),
    ];
    write(
        dir,
        "parallel",
        &smf(
            Format::Parallel,
            Timing::Metrical(u15::new(480)),
            vec![conductor, chords, drums],
        ),
    );

    // Real time: 25 fps, 40 ticks a frame, with a tempo change half way.
    let timed = vec![
        tempo(0, 600_000),
        note(0, 0, 67, 100),
        note(500, 0, 67, 0),
        tempo(0, 300_000),
        note(0, 0, 69, 100),
        note(1000, 0, 69, 0),
    ];
    write(
        dir,
        "smpte",
        &smf(
            Format::SingleTrack,
            Timing::Timecode(Fps::Fps25, 40),
            vec![timed],
        ),
    );

    // Independent patterns, played one after the other.
    let pattern = |key| vec![note(0, 0, key, 100), note(96, 0, key, 0)];
    write(
        dir,
        "sequential",
        &smf(
            Format::Sequential,
            Timing::Metrical(u15::new(96)),
            vec![pattern(62), pattern(65)],
        ),
    );

    // The exported file in a RIFF RMID wrapper.
    let mut rmid = b"RIFF".to_vec();
    rmid.extend(((exported.len() + 12) as u32).to_le_bytes());
    rmid.extend(b"RMIDdata");
    rmid.extend((exported.len() as u32).to_le_bytes());
    rmid.extend(&exported);
    write(dir, "rmid", &rmid);
}

fn write_models(dir: &Path) {
    let tiny = Config {
        z_size: 4,
        encoder: vec![8],
        decoder: vec![8, 8],
        ..Config::tiny(2, false)
    };
    let analysis = BTreeMap::from([
        ("neuron_ranking".to_string(), "[2, 0, 3, 1]".to_string()),
        (
            "neuron_labels".to_string(),
            r#"["density", "range"]"#.to_string(),
        ),
        ("mu_std".to_string(), "[0.5, 1.25, 0.01, 2.0]".to_string()),
        (
            "attribute_vectors".to_string(),
            r#"{"note_density": [0.1, -0.2, 0.3, 0.0], "contour": [1.0, 0.0, 0.0, -1.0]}"#
                .to_string(),
        ),
    ]);
    let models = [
        ("flat-f16", tiny.clone(), analysis, DType::F16),
        (
            "hierarchical-f32",
            Config {
                bars: 4,
                hierarchical: true,
                hierarchical_encoder: true,
                ..tiny.clone()
            },
            BTreeMap::new(),
            DType::F32,
        ),
        (
            "decoder-only-bf16",
            Config {
                encoder: Vec::new(),
                decoder: vec![8],
                ..tiny
            },
            BTreeMap::from([("kl_ranking".to_string(), "[3]".to_string())]),
            DType::BF16,
        ),
    ];
    for (name, config, extra, dtype) in models {
        let trainer = Trainer::new(
            config,
            TrainConfig {
                seed: 7,
                ..TrainConfig::default()
            },
        )
        .unwrap();
        let card = ModelCard {
            name: name.into(),
            ..ModelCard::default()
        };
        let mut file = trainer.model_file(card, BTreeMap::new()).unwrap();
        // The trainer's own metadata would only make the seeds longer.
        file.extra = extra;
        write(dir, name, &file.to_bytes(dtype).unwrap());
    }
}
