//! Equivalence with magenta.js: the checkpoints in `fixtures/magenta` and what magenta.js
//! computed with them were written by `xtask/magenta-js/fixtures.js`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use latent_live::music::{drums, melody, Encoding, Event};
use latent_live::model::magenta::{import, ImportError, ImportOptions};
use latent_live::model::{ModelFile, Sampling};
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
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/magenta").join(name)
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

    if let (Some(inputs), Some(notes)) = (&want.inputs, &want.input_notes) {
        // Latent Live reads magenta.js's drum notes into the same events.
        for (i, (events, notes)) in inputs.iter().zip(notes).enumerate() {
            let hits: Vec<drums::Hit> =
                notes.iter().map(|&[pitch, step]| drums::Hit { step, class: drums::class_of(pitch as u8).expect("a drum pitch") as u8 }).collect();
            assert_eq!(&drums::encode(&hits, events.len()), events, "{name}: input {i} read differently from magenta.js");
        }
    }
    if let (Some(inputs), Some(mu)) = (&want.inputs, &want.mu) {
        let refs: Vec<&[Event]> = inputs.iter().map(Vec::as_slice).collect();
        let ours = model.encode(&refs).unwrap().to_vec2::<f32>().unwrap();
        let worst = ours.iter().flatten().zip(mu.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{name}: mu differs from magenta.js by up to {worst}");
    } else {
        assert!(!model.has_encoder(), "{name}: expected no encoder");
    }

    let z = Tensor::new(want.z.clone(), &Device::Cpu).unwrap();
    let decoded = model.decode(&z, Sampling::Greedy).unwrap();
    for (i, (events, greedy)) in decoded.iter().zip(&want.greedy).enumerate() {
        assert_eq!(events, greedy, "{name}: greedy decode {i} differs from magenta.js");
        let notes: Vec<[u32; 3]> = match encoding {
            Encoding::Melody => melody::decode(events).iter().map(|n| [n.pitch as u32, n.start, n.end]).collect(),
            // A drum hit lasts one step and plays its class's first pitch.
            Encoding::Drums | Encoding::Groove => {
                drums::decode(events).iter().map(|h| [drums::CLASSES[h.class as usize].pitches[0] as u32, h.step, h.step + 1]).collect()
            }
        };
        assert_eq!(notes, want.notes[i], "{name}: notes of decode {i} differ from magenta.js");
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
fn hierarchical_tfjs_uint16_matches_magenta_js() {
    check("hier-u16");
}

#[test]
fn hierarchical_deeplearn_matches_magenta_js() {
    check("hier-deeplearn");
}

#[test]
fn flat_drums_tfjs_float32_matches_magenta_js() {
    let file = check("drums-flat-f32");
    assert_eq!(file.config.encoding, Encoding::Drums);
    assert!(!file.config.hierarchical && file.config.bars == 2 && file.config.z_size == 8);
    assert!(file.card.summary.contains("drum model"), "{}", file.card.summary);
}

#[test]
fn flat_drums_deeplearn_matches_magenta_js() {
    assert_eq!(check("drums-flat-deeplearn").config.encoding, Encoding::Drums);
}

#[test]
fn hierarchical_drums_tfjs_uint16_matches_magenta_js() {
    let file = check("drums-hier-u16");
    assert_eq!(file.config.encoding, Encoding::Drums);
    assert!(file.config.hierarchical && file.config.hierarchical_encoder && file.config.bars == 4);
}

#[test]
fn hierarchical_drums_deeplearn_matches_magenta_js() {
    assert_eq!(check("drums-hier-deeplearn").config.encoding, Encoding::Drums);
}

#[test]
fn an_imported_drum_model_is_a_drum_model_file() {
    let out = std::env::temp_dir().join(format!("latent-live-magenta-drums-{}.safetensors", std::process::id()));
    import(&fixture("drums-hier-u16"), ImportOptions::default()).unwrap().write(&out, candle_core::DType::F32).unwrap();
    let file = ModelFile::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(file.config.encoding, Encoding::Drums);
    assert_eq!((file.config.num_classes(), file.config.input_depth()), (drums::NUM_CLASSES, drums::ROLL_DEPTH));
    file.model(&Device::Cpu).unwrap();
}

#[test]
fn decoder_only_decodes_and_refuses_to_encode_with_a_reason() {
    let file = check("flat-decoder-only");
    assert!(file.config.encoder.is_empty());
    let model = file.model(&Device::Cpu).unwrap();
    let melody = vec![melody::NO_EVENT; 32];
    let err = model.encode(&[&melody]).unwrap_err().to_string();
    assert!(err.contains("decoder-only") && err.contains("inversion"), "{err}");
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
    let write = |from: &str, to: &str| std::fs::write(dir.join("weights_manifest.json"), manifest.replacen(from, to, 1)).unwrap();
    for path in ["../flat-u8/group1-shard1of1", "/etc/passwd", "."] {
        write("\"group1-shard1of1\"", &format!("{path:?}"));
        let err = import(&dir, ImportOptions::default()).err().expect("import should fail").to_string();
        assert!(err.contains("not a file in"), "{path}: {err}");
    }
    write("\"shape\":[122,128]", "\"shape\":[4294967296,4294967296,4294967296]");
    let err = import(&dir, ImportOptions::default()).err().expect("import should fail").to_string();
    assert!(err.contains("more values than memory can hold"), "{err}");

    write("", "");
    std::fs::write(dir.join("config.json"), r#"{"type":"MusicVAE","dataConverter":{"type":"MelodyConverter","args":{"numSteps":0}}}"#).unwrap();
    let err = import(&dir, ImportOptions::default()).err().expect("import should fail");
    assert!(matches!(err, ImportError::Config(_)) && err.to_string().contains("`bars`"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn deeplearn_without_converter_takes_the_length_from_options() {
    let dir = scratch("flat-deeplearn", "noconv");
    std::fs::remove_file(dir.join("converter.json")).unwrap();
    // Flat melody models default to 2 bars, as the demos that shipped them.
    assert_eq!(import(&dir, ImportOptions::default()).unwrap().config.bars, 2);
    assert_eq!(import(&dir, ImportOptions { bars: Some(4) }).unwrap().config.bars, 4);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn other_models_are_refused_with_what_is_missing() {
    let dir = scratch("flat-f32", "drums");
    let config = |converter: &str, extra: &str| {
        format!(r#"{{"type":"MusicVAE","dataConverter":{{"type":"{converter}","args":{{"numSteps":32}}}}{extra}}}"#)
    };
    for (spec, needle) in [
        (config("DrumRollConverter", ""), "NADE"),
        (config("DrumsOneHotConverter", ""), "drum roll"),
        (config("TrioConverter", ""), "trio"),
        (config("GrooveConverter", ""), "groove"),
        (config("MelodyConverter", r#","chordEncoder":"PitchChordEncoder""#), "chord"),
    ] {
        std::fs::write(dir.join("config.json"), spec).unwrap();
        let err = import(&dir, ImportOptions::default()).err().expect("import should fail");
        assert!(matches!(err, ImportError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
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
        std::fs::write(dir.join("converter.json"), format!(r#"{{"type":"{converter}","args":{{"numSteps":32}}}}"#)).unwrap();
        let err = import(&dir, ImportOptions::default()).err().expect("import should fail");
        assert!(matches!(err, ImportError::Unsupported(_)), "{err}");
        let message = err.to_string();
        assert!(message.contains("NADE") && message.contains("categorical"), "{converter}: {message}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn drum_converter_specs_are_checked() {
    let dir = scratch("drums-flat-f32", "drumspec");
    let import_with = |converter: &str| {
        std::fs::write(dir.join("config.json"), format!(r#"{{"type":"MusicVAE","dataConverter":{converter}}}"#)).unwrap();
        import(&dir, ImportOptions::default())
    };
    // Latent Live's own classes (Magenta's newer list) and magenta.js's older ones both import.
    let ours: Vec<&[u8]> = drums::CLASSES.iter().map(|c| c.pitches).collect();
    let spec = format!(r#"{{"type":"DrumsConverter","args":{{"numSteps":32,"pitchClasses":{}}}}}"#, serde_json::to_string(&ours).unwrap());
    assert_eq!(import_with(&spec).unwrap().config.encoding, Encoding::Drums);
    assert_eq!(import(&fixture("drums-hier-u16"), ImportOptions::default()).unwrap().config.encoding, Encoding::Drums);
    // A flat spec, as deeplearn.js's converter.json, and one without args.
    assert_eq!(import_with(r#"{"type":"DrumsConverter","numSteps":64}"#).unwrap().config.bars, 4);
    assert_eq!(import_with(r#"{"type":"DrumsConverter","args":{}}"#).unwrap().config.bars, 2);

    for (spec, needle) in [
        (r#"{"type":"DrumsConverter","args":{"pitchClasses":[[36],[38],[42],[46],[45],[48],[50],[49],[51]]}}"#, "pitch classes of its own"),
        (r#"{"type":"DrumsConverter","args":{"pitchClasses":[[36, 35], [38]]}}"#, "pitch classes of its own"),
        (r#"{"type":"DrumsConverter","args":{"pitchClasses":"kick"}}"#, "pitch classes of its own"),
        (r#"{"type":"DrumsConverter","args":{"numSteps":40}}"#, "whole number"),
        (r#"{"type":"DrumsOneHotConverter","args":{"numSteps":32}}"#, "drum roll"),
    ] {
        let err = import_with(spec).err().expect("import should fail");
        assert!(matches!(err, ImportError::Unsupported(_)), "{spec}: {err}");
        assert!(err.to_string().contains(needle), "{spec}: {err}");
    }

    // The converter and the weights must agree: a melody spec on drum weights...
    let err = import_with(r#"{"type":"MelodyConverter","args":{"numSteps":32}}"#).err().expect("import should fail");
    assert!(matches!(err, ImportError::Checkpoint(_)) && err.to_string().contains("outputs 512 classes"), "{err}");
    // ...and a drum spec on melody weights.
    let melody = scratch("flat-f32", "drumspec-melody");
    std::fs::write(melody.join("config.json"), r#"{"type":"MusicVAE","dataConverter":{"type":"DrumsConverter","args":{"numSteps":32}}}"#).unwrap();
    let err = import(&melody, ImportOptions::default()).err().expect("import should fail").to_string();
    assert!(err.contains("outputs 90 classes") && err.contains("DrumsConverter") && err.contains("512"), "{err}");
    // Drum weights whose encoder reads one-hot combinations rather than the roll.
    let onehot = scratch("drums-flat-deeplearn", "drumspec-onehot");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(onehot.join("manifest.json")).unwrap()).unwrap();
    let kernel = &mut manifest["encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"];
    assert_eq!(kernel["shape"], serde_json::json!([drums::ROLL_DEPTH + 16, 64]));
    kernel["shape"] = serde_json::json!([drums::NUM_CLASSES + 16, 64]);
    std::fs::write(onehot.join(kernel["filename"].as_str().unwrap()), vec![0u8; (drums::NUM_CLASSES + 16) * 64 * 4]).unwrap();
    std::fs::write(onehot.join("manifest.json"), manifest.to_string()).unwrap();
    let err = import(&onehot, ImportOptions::default()).err().expect("import should fail");
    assert!(matches!(err, ImportError::Checkpoint(_)) && err.to_string().contains("reads 512 values") && err.to_string().contains("drum roll"), "{err}");
    for d in [dir, melody, onehot] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn deeplearn_drums_without_converter_are_told_by_their_widths() {
    let dir = scratch("drums-flat-deeplearn", "drums-noconv");
    std::fs::remove_file(dir.join("converter.json")).unwrap();
    let file = import(&dir, ImportOptions::default()).unwrap();
    assert_eq!((file.config.encoding, file.config.bars), (Encoding::Drums, 2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damaged_checkpoints_give_clear_errors() {
    let dir = scratch("flat-f32", "damaged");
    std::fs::remove_file(dir.join("group1-shard16of16")).unwrap();
    let err = import(&dir, ImportOptions::default()).err().expect("import should fail").to_string();
    assert!(err.contains("group1-shard16of16"), "{err}");

    let dir2 = scratch("flat-deeplearn", "truncated");
    let kernel = dir2.join("decoder_output_projection_kernel");
    let bytes = std::fs::read(&kernel).unwrap();
    std::fs::write(&kernel, &bytes[..bytes.len() - 3]).unwrap();
    let err = import(&dir2, ImportOptions::default()).err().expect("import should fail").to_string();
    assert!(err.contains("decoder/output_projection/kernel"), "{err}");

    let empty = std::env::temp_dir().join(format!("latent-live-magenta-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let err = import(&empty, ImportOptions::default()).err().expect("import should fail").to_string();
    assert!(err.contains("weights_manifest.json"), "{err}");
    for d in [dir, dir2, empty] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
