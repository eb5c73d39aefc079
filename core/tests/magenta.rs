//! Equivalence with magenta.js: the checkpoints in `fixtures/magenta` and what magenta.js
//! computed with them were written by `xtask/magenta-js/fixtures.js`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use latent_live_core::model::magenta::{import, ImportError, ImportOptions};
use latent_live_core::model::{ChordEncoding, GrooveInput, MelodyControl, ModelFile, Sampling};
use latent_live_core::music::chord::Chord;
use latent_live_core::music::groove::{Groove, Stroke, ROW};
use latent_live_core::music::{drums, melody, Encoding, Event};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    inputs: Option<Vec<Vec<Event>>>,
    /// Drum fixtures: the `[pitch, step]` notes magenta.js encoded the inputs from.
    #[serde(rename = "inputNotes")]
    input_notes: Option<Vec<Vec<[u32; 2]>>>,
    mu: Option<Vec<Vec<f32>>>,
    z: Vec<Vec<f32>>,
    greedy: Vec<Vec<Event>>,
    notes: Vec<Vec<[u32; 3]>>,
    /// Chord models: the progression every encode and decode was given.
    chords: Option<Vec<String>>,
    /// Models with melody controls: the melody whose controls every decode was given (each
    /// input was encoded with its own).
    like: Option<Vec<Event>>,
}

/// `symbols` over `steps` as magenta.js's `encodeProgression` spreads them: step `t`
/// plays chord `floor(t * n / steps)`.
fn spread(symbols: &[String], steps: usize) -> Vec<Option<Chord>> {
    let chords: Vec<Option<Chord>> = symbols
        .iter()
        .map(|s| Chord::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    (0..steps)
        .map(|t| chords[t * chords.len() / steps])
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/magenta")
        .join(name)
}

fn expected(dir: &Path) -> Expected {
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap()
}

/// Imports `name`, round-trips it through a model file, and checks it against magenta.js.
fn check(name: &str) -> ModelFile {
    let dir = fixture(name);
    let imported = import(&dir, ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let file = ModelFile::from_bytes(&imported.to_bytes(candle_core::DType::F32).unwrap()).unwrap();
    let model = file.model(&Device::Cpu).unwrap();
    let want = expected(&dir);
    let encoding = file.config.encoding;
    let progression = want
        .chords
        .as_ref()
        .map(|symbols| spread(symbols, file.config.steps()));
    assert_eq!(
        progression.is_some(),
        file.config.chords.is_some(),
        "{name}"
    );
    let over = |batch: usize| progression.as_ref().map(|p| vec![p.as_slice(); batch]);
    assert_eq!(
        want.like.is_some(),
        !file.config.melody_controls.is_empty(),
        "{name}"
    );
    let like = |batch: usize| want.like.as_ref().map(|l| vec![l.as_slice(); batch]);

    if let (Some(inputs), Some(notes)) = (&want.inputs, &want.input_notes) {
        // Latent Live reads magenta.js's drum notes into the same events.
        for (i, (events, notes)) in inputs.iter().zip(notes).enumerate() {
            let hits: Vec<drums::Hit> = notes
                .iter()
                .map(|&[pitch, step]| drums::Hit {
                    step,
                    class: drums::class_of(pitch as u8).expect("a drum pitch") as u8,
                })
                .collect();
            assert_eq!(
                &drums::encode(&hits, events.len()),
                events,
                "{name}: input {i} read differently from magenta.js"
            );
        }
    }
    if let (Some(inputs), Some(mu)) = (&want.inputs, &want.mu) {
        let refs: Vec<&[Event]> = inputs.iter().map(Vec::as_slice).collect();
        let batch = model
            .batch_over(&refs, over(refs.len()).as_deref())
            .unwrap();
        let ours = model
            .posterior(&batch)
            .unwrap()
            .mu
            .to_vec2::<f32>()
            .unwrap();
        let worst = ours
            .iter()
            .flatten()
            .zip(mu.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "{name}: mu differs from magenta.js by up to {worst}"
        );
    } else {
        assert!(!model.has_encoder(), "{name}: expected no encoder");
    }

    let z = Tensor::new(want.z.clone(), &Device::Cpu).unwrap();
    let decoded = model
        .decode_like(
            &z,
            over(want.z.len()).as_deref(),
            like(want.z.len()).as_deref(),
            Sampling::Greedy,
        )
        .unwrap();
    for (i, (events, greedy)) in decoded.iter().zip(&want.greedy).enumerate() {
        assert_eq!(
            events, greedy,
            "{name}: greedy decode {i} differs from magenta.js"
        );
        let notes: Vec<[u32; 3]> = match encoding {
            Encoding::Melody => melody::decode(events)
                .iter()
                .map(|n| [n.pitch as u32, n.start, n.end])
                .collect(),
            // A drum hit lasts one step and plays its class's first pitch.
            Encoding::Drums | Encoding::Groove => drums::decode(events)
                .iter()
                .map(|h| {
                    [
                        drums::CLASSES[h.class as usize].pitches[0] as u32,
                        h.step,
                        h.step + 1,
                    ]
                })
                .collect(),
        };
        assert_eq!(
            notes, want.notes[i],
            "{name}: notes of decode {i} differ from magenta.js"
        );
    }
    file
}

#[test]
fn flat_tfjs_float32_matches_magenta_js() {
    let file = check("flat-f32");
    assert!(!file.config.hierarchical && file.config.bars == 2 && file.config.z_size == 16);
}

#[test]
fn flat_tfjs_uint8_matches_magenta_js() {
    check("flat-u8");
}

#[test]
fn flat_deeplearn_matches_magenta_js() {
    check("flat-deeplearn");
}

#[test]
fn hierarchical_tfjs_float32_matches_magenta_js() {
    let file = check("hier-f32");
    assert!(file.config.hierarchical && file.config.hierarchical_encoder && file.config.bars == 4);
}

#[test]
fn a_16_bar_hierarchical_model_as_mel_16bar_small_q2_matches_magenta_js() {
    let file = check("hier16-u8");
    assert!(file.config.hierarchical && file.config.hierarchical_encoder);
    assert_eq!((file.config.bars, file.config.steps()), (16, 256));
}

#[test]
fn hierarchical_tfjs_uint16_matches_magenta_js() {
    check("hier-u16");
}

#[test]
fn hierarchical_deeplearn_matches_magenta_js() {
    check("hier-deeplearn");
}

#[test]
fn flat_chord_model_as_mel_chords_matches_magenta_js() {
    let file = check("flat-chords-f32");
    assert_eq!(file.config.chords, Some(ChordEncoding::Pitch));
    assert!(!file.config.hierarchical && file.config.bars == 2);
    assert!(
        file.card.summary.contains("over chords"),
        "{}",
        file.card.summary
    );
}

/// The mel_2bar_multicontrol family's shape: chords, then rhythm, shape and register
/// controls taken from a melody.
#[test]
fn a_chord_model_with_melody_controls_matches_magenta_js() {
    let file = check("flat-multicontrol-f32");
    assert_eq!(file.config.chords, Some(ChordEncoding::Pitch));
    assert_eq!(
        file.config.melody_controls,
        [
            MelodyControl::Rhythm,
            MelodyControl::Shape,
            MelodyControl::Register {
                boundaries: vec![48, 60, 72]
            }
        ]
    );
    assert_eq!(file.config.control_depth(), 37 + 1 + 3 + 4);
}

#[test]
fn hierarchical_chord_model_tfjs_uint16_matches_magenta_js() {
    let file = check("hier-chords-u16");
    assert_eq!(file.config.chords, Some(ChordEncoding::Pitch));
    assert!(file.config.hierarchical && file.config.bars == 4);
}

#[test]
fn flat_drums_tfjs_float32_matches_magenta_js() {
    let file = check("drums-flat-f32");
    assert_eq!(file.config.encoding, Encoding::Drums);
    assert!(!file.config.hierarchical && file.config.bars == 2 && file.config.z_size == 8);
    assert!(
        file.card.summary.contains("drum model"),
        "{}",
        file.card.summary
    );
}

#[test]
fn flat_drums_deeplearn_matches_magenta_js() {
    assert_eq!(
        check("drums-flat-deeplearn").config.encoding,
        Encoding::Drums
    );
}

#[test]
fn hierarchical_drums_tfjs_uint16_matches_magenta_js() {
    let file = check("drums-hier-u16");
    assert_eq!(file.config.encoding, Encoding::Drums);
    assert!(file.config.hierarchical && file.config.hierarchical_encoder && file.config.bars == 4);
}

#[test]
fn hierarchical_drums_deeplearn_matches_magenta_js() {
    assert_eq!(
        check("drums-hier-deeplearn").config.encoding,
        Encoding::Drums
    );
}

#[test]
fn an_imported_drum_model_is_a_drum_model_file() {
    let out = std::env::temp_dir().join(format!(
        "latent-live-magenta-drums-{}.safetensors",
        std::process::id()
    ));
    import(&fixture("drums-hier-u16"), ImportOptions::default())
        .unwrap()
        .write(&out, candle_core::DType::F32)
        .unwrap();
    let file = ModelFile::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(file.config.encoding, Encoding::Drums);
    assert_eq!(
        (file.config.num_classes(), file.config.input_depth()),
        (drums::NUM_CLASSES, drums::ROLL_DEPTH)
    );
    file.model(&Device::Cpu).unwrap();
}

/// What magenta.js computed with a GrooVAE fixture (`groove-*`; see `fixtures.js`).
#[derive(Deserialize)]
struct GrooveExpected {
    qpm: f64,
    /// `(pitch, velocity, start time in seconds)` of every note of each performance.
    #[serde(rename = "inputNotes")]
    input_notes: Vec<Vec<(u8, u8, f64)>>,
    /// magenta.js's `toTensor` of each performance: its encoder's rows.
    input: Vec<Vec<Vec<f32>>>,
    mu: Vec<Vec<f32>>,
    z: Vec<Vec<f32>>,
    /// The greedy `decodeTensors(z)`: hits (0 or 1), velocities, offsets per step.
    rows: Vec<Vec<Vec<f32>>>,
    #[serde(rename = "decodeQpm")]
    decode_qpm: f64,
    /// `decode(z)` at `decode_qpm`: `(pitch, velocity, start, end)`, times in seconds.
    notes: Vec<Vec<(u8, u8, f64, f64)>>,
}

fn seconds_per_step(qpm: f64) -> f64 {
    60.0 / qpm / melody::STEPS_PER_QUARTER as f64
}

/// The largest difference of `values` from `want`, where both have one.
fn worst<'a>(
    values: impl IntoIterator<Item = &'a f32>,
    want: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    values
        .into_iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Imports the GrooVAE fixture `name`, round-trips it through a model file, and checks it
/// against magenta.js: the encoder's input and mu of its performances, and the greedy
/// decodes of its z, as rows and as notes.
fn check_groove(name: &str) -> ModelFile {
    let dir = fixture(name);
    let imported = import(&dir, ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let file = ModelFile::from_bytes(&imported.to_bytes(candle_core::DType::F32).unwrap()).unwrap();
    let model = file.model(&Device::Cpu).unwrap();
    let want: GrooveExpected =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let (steps, n) = (model.config.steps(), drums::NUM_DRUM_CLASSES);

    // The performances as Latent Live reads a drum take: each note on its class, at its time
    // in steps, and pitches outside the classes dropped, as magenta.js drops them (but for
    // tapify, which taps them: the tap fixture has none, see the README).
    let step = seconds_per_step(want.qpm);
    let grooves: Vec<Groove> = want
        .input_notes
        .iter()
        .map(|notes| {
            let strokes: Vec<Stroke> = notes
                .iter()
                .filter_map(|&(pitch, velocity, start)| {
                    Some(Stroke {
                        class: drums::class_of(pitch)? as u8,
                        time: start / step,
                        velocity,
                    })
                })
                .collect();
            Groove::from_strokes(&strokes, steps)
        })
        .collect();
    // The model's view of them (the hits alone, or taps) is what magenta.js's converter
    // makes of them.
    assert_eq!(
        (grooves.len(), want.input.len()),
        (want.mu.len(), want.mu.len()),
        "{name}: one input and one mu per performance"
    );
    let mut worst_input = 0f32;
    for (i, (groove, js)) in grooves.iter().zip(&want.input).enumerate() {
        let ours = model.config.groove_input.of(groove).rows();
        assert_eq!(ours.len(), js.len() * ROW, "{name}: input {i}");
        for (t, (ours, js)) in ours.chunks_exact(ROW).zip(js).enumerate() {
            assert_eq!(
                ours[..n],
                js[..n],
                "{name}: input {i} step {t}: hits differ from magenta.js's"
            );
            worst_input = worst_input.max(worst(&ours[n..], &js[n..]));
        }
    }
    assert!(
        worst_input < 1e-6,
        "{name}: the encoder's velocities and offsets differ from magenta.js's by up to \
         {worst_input}"
    );
    let mu = model
        .mu(&model
            .groove_batch(&grooves.iter().collect::<Vec<_>>())
            .unwrap())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let worst_mu = worst(mu.iter().flatten(), want.mu.iter().flatten());
    assert!(
        worst_mu < 1e-4,
        "{name}: mu differs from magenta.js by up to {worst_mu}"
    );

    let z = Tensor::new(want.z.clone(), &Device::Cpu).unwrap();
    let decoded = model.decode_rows(&z, Sampling::Greedy).unwrap();
    assert_eq!(
        (decoded.len(), want.rows.len()),
        (want.notes.len(), want.notes.len()),
        "{name}: one decode per z"
    );
    let (mut worst_velocity, mut worst_offset, mut hits) = (0f32, 0f32, 0);
    let step = seconds_per_step(want.decode_qpm);
    for (i, ((ours, js), js_notes)) in decoded.iter().zip(&want.rows).zip(&want.notes).enumerate() {
        assert_eq!(ours.len(), js.len() * ROW, "{name}: decode {i}");
        for (t, (ours, js)) in ours.chunks_exact(ROW).zip(js).enumerate() {
            assert_eq!(
                ours[..n],
                js[..n],
                "{name}: decode {i} step {t}: hits differ from magenta.js's"
            );
            worst_velocity = worst_velocity.max(worst(&ours[n..2 * n], &js[n..2 * n]));
            worst_offset = worst_offset.max(worst(&ours[2 * n..], &js[2 * n..]));
        }
        // The notes magenta.js's toNoteSequence writes of its rows, at its tempo: each
        // class's first pitch, a 16th long, moved off the grid by half its offset.
        let notes: Vec<(u8, u8, f64, f64)> = Groove::from_rows(ours)
            .strokes()
            .iter()
            .map(|s| {
                (
                    drums::CLASSES[s.class as usize].pitches[0],
                    s.velocity,
                    s.time * step,
                    (s.time + 1.0) * step,
                )
            })
            .collect();
        assert_eq!(
            notes.len(),
            js_notes.len(),
            "{name}: decode {i} has {} notes, magenta.js's {}",
            notes.len(),
            js_notes.len()
        );
        for (ours, js) in notes.iter().zip(js_notes) {
            assert_eq!(
                (ours.0, ours.1),
                (js.0, js.1),
                "{name}: decode {i}: {ours:?} against magenta.js's {js:?}"
            );
            // An offset within 1e-4 moves a note by at most half that of a step.
            assert!(
                (ours.2 - js.2).abs() < 1e-4 * step && (ours.3 - js.3).abs() < 1e-4 * step,
                "{name}: decode {i}: {ours:?} against {js:?}"
            );
        }
        hits += notes.len();
    }
    assert!(
        worst_velocity < 1e-4 && worst_offset < 1e-4,
        "{name}: velocities within {worst_velocity}, offsets within {worst_offset}"
    );
    println!(
        "{name}: encoder input within {worst_input:e}, mu within {worst_mu:e}; {} decodes, {hits} \
         hits exact, velocities within {worst_velocity:e}, offsets within {worst_offset:e}",
        decoded.len()
    );
    file
}

#[test]
fn groove_humanize_tfjs_float32_matches_magenta_js() {
    let file = check_groove("groove-humanize-f32");
    let config = &file.config;
    assert_eq!(
        (config.encoding, config.groove_input),
        (Encoding::Groove, GrooveInput::Humanize)
    );
    assert_eq!(
        (
            config.bars,
            config.z_size,
            &config.encoder[..],
            &config.decoder[..]
        ),
        (2, 8, &[16][..], &[16, 16][..])
    );
    assert!(
        file.card.summary.contains("groove model, humanize"),
        "{}",
        file.card.summary
    );
    // A groove model humanizes patterns; it does not make them.
    let model = file.model(&Device::Cpu).unwrap();
    let z = Tensor::zeros((1, model.config.z_size), DType::F32, &Device::Cpu).unwrap();
    let err = model
        .decode(&z, Sampling::Greedy)
        .expect_err("a groove model decodes no events")
        .to_string();
    assert!(err.contains("groove model"), "{err}");
}

#[test]
fn groove_tap_tfjs_float32_matches_magenta_js() {
    let file = check_groove("groove-tap-f32");
    assert_eq!(
        (file.config.groove_input, file.config.bars),
        (GrooveInput::Tap, 2)
    );
}

#[test]
fn groove_4bar_tfjs_uint16_matches_magenta_js() {
    let file = check_groove("groove-4bar-u16");
    assert_eq!(
        (
            file.config.groove_input,
            file.config.bars,
            file.config.hierarchical
        ),
        (GrooveInput::Whole, 4, false)
    );
}

#[test]
fn groove_converter_specs_are_checked() {
    let dir = scratch("groove-humanize-f32", "groovespec");
    let import_with = |converter: &str| {
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"type":"MusicVAE","dataConverter":{converter}}}"#),
        )
        .unwrap();
        import(&dir, ImportOptions::default())
    };
    // Latent Live's own classes (Magenta's newer list) import, as magenta.js's do (the
    // groove-4bar-u16 fixture names them); the options say what the encoder reads.
    let ours: Vec<&[u8]> = drums::CLASSES.iter().map(|c| c.pitches).collect();
    let spec = format!(
        r#"{{"type":"GrooveConverter","args":{{"numSteps":32,"tapify":true,"pitchClasses":{}}}}}"#,
        serde_json::to_string(&ours).unwrap()
    );
    assert_eq!(
        import_with(&spec).unwrap().config.groove_input,
        GrooveInput::Tap
    );
    let whole = import_with(r#"{"type":"GrooveConverter","args":{"numSteps":32,"humanize":false,"splitInstruments":false}}"#).unwrap();
    assert_eq!(whole.config.groove_input, GrooveInput::Whole);

    for (spec, needle) in [
        (
            r#"{"type":"GrooveConverter","args":{"numSteps":32,"splitInstruments":true}}"#,
            "splits instruments",
        ),
        (
            r#"{"type":"GrooveConverter","args":{"numSteps":32,"humanize":true,"tapify":true}}"#,
            "both humanizes and tapifies",
        ),
        (
            r#"{"type":"GrooveConverter","args":{"numSteps":24,"stepsPerQuarter":3}}"#,
            "3 steps a quarter",
        ),
        (
            r#"{"type":"GrooveConverter","args":{"pitchClasses":[[36],[38],[42],[46],[45],[48],[50],[49],[51]]}}"#,
            "GrooveConverter has pitch classes of its own",
        ),
        (
            r#"{"type":"GrooveConverter","args":{"numSteps":40}}"#,
            "whole number",
        ),
    ] {
        assert_unsupported(import_with(spec), spec, needle);
    }
    // The converter and the weights must agree: a drum spec on groove weights...
    let err = import_with(r#"{"type":"DrumsConverter","args":{"numSteps":32}}"#)
        .err()
        .expect("import should fail");
    assert!(
        matches!(err, ImportError::Checkpoint(_)) && err.to_string().contains("outputs 27 classes"),
        "{err}"
    );
    // ...and without a spec, nothing says what the encoder was shown.
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = import(&dir, ImportOptions::default())
        .err()
        .expect("import should fail");
    assert!(
        matches!(err, ImportError::Checkpoint(_)) && err.to_string().contains("config.json"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn groove_models_with_the_hits_as_controls_are_refused() {
    // groovae_2bar_hits_control's shape: the 9 target hits beside the row at every encoder
    // and decoder step, written as a deeplearn.js checkpoint of the humanize fixture's
    // weights widened by 9 input rows.
    let file = import(&fixture("groove-humanize-f32"), ImportOptions::default()).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "latent-live-magenta-hits-control-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = serde_json::Map::new();
    for (name, tensor) in &file.tensors {
        let name = name.replace('.', "/");
        let mut shape = tensor.dims().to_vec();
        if name.ends_with("cell_0/lstm_cell/kernel") {
            shape[0] += drums::NUM_DRUM_CLASSES;
        }
        let filename = name.replace('/', "_");
        std::fs::write(
            dir.join(&filename),
            vec![0u8; 4 * shape.iter().product::<usize>()],
        )
        .unwrap();
        manifest.insert(
            name,
            serde_json::json!({ "filename": filename, "shape": shape }),
        );
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::Value::Object(manifest).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("converter.json"),
        r#"{"type":"GrooveConverter","args":{"numSteps":32}}"#,
    )
    .unwrap();
    let err = import(&dir, ImportOptions::default())
        .err()
        .expect("import should fail");
    assert!(matches!(err, ImportError::Unsupported(_)), "{err}");
    assert!(
        err.to_string().contains("reads 36 values") && err.to_string().contains("hits as controls"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn decoder_only_decodes_and_refuses_to_encode_with_a_reason() {
    let file = check("flat-decoder-only");
    assert!(file.config.encoder.is_empty());
    let model = file.model(&Device::Cpu).unwrap();
    let melody = vec![melody::NO_EVENT; 32];
    let err = model.encode(&[&melody]).unwrap_err().to_string();
    assert!(
        err.contains("decoder-only") && err.contains("inversion"),
        "{err}"
    );
}

/// Copies a fixture into a scratch folder, to damage or strip it.
fn scratch(name: &str, tag: &str) -> PathBuf {
    let to = std::env::temp_dir().join(format!("latent-live-magenta-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

#[test]
fn manifests_cannot_reach_outside_their_folder_or_overflow() {
    let dir = scratch("flat-u8", "escape");
    let manifest = std::fs::read_to_string(dir.join("weights_manifest.json")).unwrap();
    let write = |from: &str, to: &str| {
        std::fs::write(
            dir.join("weights_manifest.json"),
            manifest.replacen(from, to, 1),
        )
        .unwrap()
    };
    for path in ["../flat-u8/group1-shard1of1", "/etc/passwd", "."] {
        write("\"group1-shard1of1\"", &format!("{path:?}"));
        let err = import(&dir, ImportOptions::default())
            .err()
            .expect("import should fail")
            .to_string();
        assert!(err.contains("not a file in"), "{path}: {err}");
    }
    write(
        "\"shape\":[122,128]",
        "\"shape\":[4294967296,4294967296,4294967296]",
    );
    let err = import(&dir, ImportOptions::default())
        .err()
        .expect("import should fail")
        .to_string();
    assert!(err.contains("more values than memory can hold"), "{err}");

    write("", "");
    std::fs::write(
        dir.join("config.json"),
        r#"{"type":"MusicVAE","dataConverter":{"type":"MelodyConverter","args":{"numSteps":0}}}"#,
    )
    .unwrap();
    let err = import(&dir, ImportOptions::default())
        .err()
        .expect("import should fail");
    assert!(
        matches!(err, ImportError::Config(_)) && err.to_string().contains("`bars`"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn deeplearn_without_converter_takes_the_length_from_options() {
    let dir = scratch("flat-deeplearn", "noconv");
    std::fs::remove_file(dir.join("converter.json")).unwrap();
    // Flat melody models default to 2 bars, as the demos that shipped them.
    assert_eq!(
        import(&dir, ImportOptions::default()).unwrap().config.bars,
        2
    );
    assert_eq!(
        import(&dir, ImportOptions { bars: Some(4) })
            .unwrap()
            .config
            .bars,
        4
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `result` is an import refused as unsupported, with `needle` in its reason.
fn assert_unsupported(result: Result<ModelFile, ImportError>, spec: &str, needle: &str) {
    let err = result.err().expect("import should fail");
    assert!(matches!(err, ImportError::Unsupported(_)), "{spec}: {err}");
    assert!(err.to_string().contains(needle), "{spec}: {err}");
}

#[test]
fn other_models_are_refused_with_what_is_missing() {
    let dir = scratch("flat-f32", "drums");
    let config = |converter: &str, extra: &str| {
        format!(
            r#"{{"type":"MusicVAE","dataConverter":{{"type":"{converter}","args":{{"numSteps":32}}}}{extra}}}"#
        )
    };
    for (spec, needle) in [
        (config("DrumRollConverter", ""), "NADE"),
        (config("DrumsOneHotConverter", ""), "drum roll"),
        (config("TrioConverter", ""), "trio"),
        // A GrooVAE writes a row of 27 a step, not one of 90 melody classes.
        (config("GrooveConverter", ""), "writes 90 values"),
        (
            config("MelodyConverter", r#","chordEncoder":"TriadChordEncoder""#),
            "PitchChordEncoder",
        ),
        (
            config(
                "MelodyConverter",
                r#","chordEncoder":"PitchChordEncoder","extraControls":[{"name":"rhythm","depth":2}]"#,
            ),
            "rhythm has 1 values",
        ),
        (
            config(
                "MelodyConverter",
                r#","extraControls":[{"name":"register","depth":4}]"#,
            ),
            "boundaryPitches",
        ),
        (
            config(
                "MelodyConverter",
                r#","extraControls":[{"name":"velocity","depth":8}]"#,
            ),
            "velocity",
        ),
        (
            config("MelodyConverter", r#","conditionOnKey":true"#),
            "key conditioning",
        ),
    ] {
        std::fs::write(dir.join("config.json"), &spec).unwrap();
        assert_unsupported(import(&dir, ImportOptions::default()), &spec, needle);
    }
    // A spec that names chords over weights that read none.
    let spec = config("MelodyConverter", r#","chordEncoder":"PitchChordEncoder""#);
    std::fs::write(dir.join("config.json"), &spec).unwrap();
    let err = import(&dir, ImportOptions::default())
        .err()
        .expect("refused");
    assert!(
        matches!(err, ImportError::Checkpoint(_)) && err.to_string().contains("chord's 37"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn nade_drum_models_are_refused_naming_nade() {
    // drums_2bar_nade_9_q2's shape: a DrumRollConverter, and a NADE beside the decoder.
    let dir = scratch("drums-flat-deeplearn", "nade");
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let nade = r#"{"decoder/nade/w_enc": {"filename": "decoder_nade_w_enc", "shape": [9, 1, 4]},"#;
    std::fs::write(dir.join("manifest.json"), manifest.replacen('{', nade, 1)).unwrap();
    std::fs::write(dir.join("decoder_nade_w_enc"), [0u8; 9 * 4 * 4]).unwrap();
    for converter in ["DrumsConverter", "DrumRollConverter"] {
        std::fs::write(
            dir.join("converter.json"),
            format!(r#"{{"type":"{converter}","args":{{"numSteps":32}}}}"#),
        )
        .unwrap();
        let err = import(&dir, ImportOptions::default())
            .err()
            .expect("import should fail");
        assert!(matches!(err, ImportError::Unsupported(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("NADE") && message.contains("categorical"),
            "{converter}: {message}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn drum_converter_specs_are_checked() {
    let dir = scratch("drums-flat-f32", "drumspec");
    let import_with = |converter: &str| {
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"type":"MusicVAE","dataConverter":{converter}}}"#),
        )
        .unwrap();
        import(&dir, ImportOptions::default())
    };
    // Latent Live's own classes (Magenta's newer list) and magenta.js's older ones both import.
    let ours: Vec<&[u8]> = drums::CLASSES.iter().map(|c| c.pitches).collect();
    let spec = format!(
        r#"{{"type":"DrumsConverter","args":{{"numSteps":32,"pitchClasses":{}}}}}"#,
        serde_json::to_string(&ours).unwrap()
    );
    assert_eq!(import_with(&spec).unwrap().config.encoding, Encoding::Drums);
    assert_eq!(
        import(&fixture("drums-hier-u16"), ImportOptions::default())
            .unwrap()
            .config
            .encoding,
        Encoding::Drums
    );
    // A flat spec, as deeplearn.js's converter.json, and one without args.
    assert_eq!(
        import_with(r#"{"type":"DrumsConverter","numSteps":64}"#)
            .unwrap()
            .config
            .bars,
        4
    );
    assert_eq!(
        import_with(r#"{"type":"DrumsConverter","args":{}}"#)
            .unwrap()
            .config
            .bars,
        2
    );

    for (spec, needle) in [
        (
            r#"{"type":"DrumsConverter","args":{"pitchClasses":[[36],[38],[42],[46],[45],[48],[50],[49],[51]]}}"#,
            "pitch classes of its own",
        ),
        (
            r#"{"type":"DrumsConverter","args":{"pitchClasses":[[36, 35], [38]]}}"#,
            "pitch classes of its own",
        ),
        (
            r#"{"type":"DrumsConverter","args":{"pitchClasses":"kick"}}"#,
            "pitch classes of its own",
        ),
        (
            r#"{"type":"DrumsConverter","args":{"numSteps":40}}"#,
            "whole number",
        ),
        (
            r#"{"type":"DrumsOneHotConverter","args":{"numSteps":32}}"#,
            "drum roll",
        ),
    ] {
        assert_unsupported(import_with(spec), spec, needle);
    }

    // The converter and the weights must agree: a melody spec on drum weights...
    let err = import_with(r#"{"type":"MelodyConverter","args":{"numSteps":32}}"#)
        .err()
        .expect("import should fail");
    assert!(
        matches!(err, ImportError::Checkpoint(_))
            && err.to_string().contains("outputs 512 classes"),
        "{err}"
    );
    // ...and a drum spec on melody weights.
    let melody = scratch("flat-f32", "drumspec-melody");
    std::fs::write(
        melody.join("config.json"),
        r#"{"type":"MusicVAE","dataConverter":{"type":"DrumsConverter","args":{"numSteps":32}}}"#,
    )
    .unwrap();
    let err = import(&melody, ImportOptions::default())
        .err()
        .expect("import should fail")
        .to_string();
    assert!(
        err.contains("outputs 90 classes") && err.contains("DrumsConverter") && err.contains("512"),
        "{err}"
    );
    // Drum weights whose encoder reads one-hot combinations rather than the roll.
    let onehot = scratch("drums-flat-deeplearn", "drumspec-onehot");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(onehot.join("manifest.json")).unwrap()).unwrap();
    let kernel =
        &mut manifest["encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"];
    assert_eq!(
        kernel["shape"],
        serde_json::json!([drums::ROLL_DEPTH + 16, 64])
    );
    kernel["shape"] = serde_json::json!([drums::NUM_CLASSES + 16, 64]);
    std::fs::write(
        onehot.join(kernel["filename"].as_str().unwrap()),
        vec![0u8; (drums::NUM_CLASSES + 16) * 64 * 4],
    )
    .unwrap();
    std::fs::write(onehot.join("manifest.json"), manifest.to_string()).unwrap();
    let err = import(&onehot, ImportOptions::default())
        .err()
        .expect("import should fail");
    assert!(
        matches!(err, ImportError::Checkpoint(_))
            && err.to_string().contains("reads 512 values")
            && err.to_string().contains("drum roll"),
        "{err}"
    );
    for d in [dir, melody, onehot] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn deeplearn_drums_without_converter_are_told_by_their_widths() {
    let dir = scratch("drums-flat-deeplearn", "drums-noconv");
    std::fs::remove_file(dir.join("converter.json")).unwrap();
    let file = import(&dir, ImportOptions::default()).unwrap();
    assert_eq!(
        (file.config.encoding, file.config.bars),
        (Encoding::Drums, 2)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damaged_checkpoints_give_clear_errors() {
    let dir = scratch("flat-f32", "damaged");
    std::fs::remove_file(dir.join("group1-shard16of16")).unwrap();
    let err = import(&dir, ImportOptions::default())
        .err()
        .expect("import should fail")
        .to_string();
    assert!(err.contains("group1-shard16of16"), "{err}");

    let dir2 = scratch("flat-deeplearn", "truncated");
    let kernel = dir2.join("decoder_output_projection_kernel");
    let bytes = std::fs::read(&kernel).unwrap();
    std::fs::write(&kernel, &bytes[..bytes.len() - 3]).unwrap();
    let err = import(&dir2, ImportOptions::default())
        .err()
        .expect("import should fail")
        .to_string();
    assert!(err.contains("decoder/output_projection/kernel"), "{err}");

    let empty =
        std::env::temp_dir().join(format!("latent-live-magenta-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let err = import(&empty, ImportOptions::default())
        .err()
        .expect("import should fail")
        .to_string();
    assert!(err.contains("weights_manifest.json"), "{err}");
    for d in [dir, dir2, empty] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
