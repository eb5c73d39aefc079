//! Equivalence with magenta.js: the checkpoints in `fixtures/magenta` and what magenta.js
//! computed with them were written by `xtask/magenta-js/fixtures.js`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use latent_live::music::Event;
use latent_live::music::melody;
use latent_live::model::magenta::{import, ImportError, ImportOptions};
use latent_live::model::{ModelFile, Sampling};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    inputs: Option<Vec<Vec<Event>>>,
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
        let notes: Vec<[u32; 3]> = melody::decode(events).iter().map(|n| [n.pitch as u32, n.start, n.end]).collect();
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
        (config("DrumsConverter", ""), "drum"),
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
