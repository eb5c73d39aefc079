//! `cargo xtask decode` as a user runs it, on the shipped folk model: latent vectors in,
//! notes out, fitted into the key and scale, or onto the chords, asked for.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use latent_live_core::music::key::{Scale, ScaleLock};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `xtask decode` on eight fixed latent vectors with `extra` arguments; the notes of
/// each phrase as `[pitch, start, end]`.
fn decode(dir: &Path, extra: &[&str]) -> (Output, Vec<Vec<[u32; 3]>>) {
    let z: Vec<Vec<f32>> = (0..8)
        .map(|row| {
            (0..128)
                .map(|i| ((row * 131 + i * 37) % 17) as f32 / 8.0 - 1.0)
                .collect()
        })
        .collect();
    let (z_path, out_path) = (dir.join("z.json"), dir.join("notes.json"));
    std::fs::write(&z_path, serde_json::to_string(&z).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out_path);
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("decode")
        .arg("--model")
        .arg(root().join("assets/folk-2bar.safetensors"))
        .arg("--z")
        .arg(&z_path)
        .arg("--out")
        .arg(&out_path)
        .args(extra)
        .output()
        .expect("xtask runs");
    let notes = std::fs::read_to_string(&out_path)
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap_or_default();
    (output, notes)
}

#[test]
fn decode_fits_melodies_into_the_key_and_scale_asked_for() {
    let dir = std::env::temp_dir().join(format!("latent-live-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lock = ScaleLock {
        tonic: 9,
        scale: Scale::MinorPentatonic,
    };
    let (output, fitted) = decode(&dir, &["--key", "A", "--scale", "minor-pentatonic"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pitches: Vec<u8> = fitted.iter().flatten().map(|n| n[0] as u8).collect();
    assert!(pitches.len() >= 16, "{fitted:?}");
    assert!(pitches.iter().all(|&p| lock.contains(p)), "{pitches:?}");

    let (output, free) = decode(&dir, &[]);
    assert!(output.status.success());
    assert!(
        free.iter().flatten().any(|n| !lock.contains(n[0] as u8)),
        "unfitted, the same vectors leave the scale: {free:?}"
    );
    assert_eq!(free.len(), fitted.len());

    // A key without a scale, or a scale it does not know, is refused with the choices.
    let (output, _) = decode(&dir, &["--key", "A"]);
    assert!(!output.status.success());
    let (output, _) = decode(&dir, &["--key", "A", "--scale", "lydian-dominant"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("natural-minor"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn decode_fits_the_beats_to_the_chords_asked_for() {
    use latent_live_core::music::chord::Chord;
    let dir = std::env::temp_dir().join(format!("latent-live-chords-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let progression = ["Am", "F", "C", "G"].map(|s| Chord::parse(s).unwrap().unwrap());
    // Two bars, a chord every half bar.
    let chord_at = |step: u32| progression[(step / 8) as usize];
    let pairs = "Am:8 F:8 C:8 G:8";
    let on_beats = |notes: &[Vec<[u32; 3]>]| -> Vec<(u32, u8)> {
        notes
            .iter()
            .flatten()
            .filter(|n| n[1].is_multiple_of(4))
            .map(|n| (n[1], n[0] as u8))
            .collect()
    };
    let (output, fitted) = decode(&dir, &["--chords", pairs]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let beats = on_beats(&fitted);
    assert!(beats.len() >= 16, "{fitted:?}");
    assert!(
        beats.iter().all(|&(step, p)| chord_at(step).has_tone(p)),
        "{beats:?}"
    );
    let (_, free) = decode(&dir, &[]);
    assert!(
        on_beats(&free)
            .iter()
            .any(|&(step, p)| !chord_at(step).has_tone(p)),
        "unfitted, the beats leave the chords: {free:?}"
    );
    // One chord a bar, repeated: Dm over bar 1, G7 over bar 2.
    let (output, bars) = decode(&dir, &["--chords", "Dm G7"]);
    assert!(output.status.success());
    let (dm, g7) = (
        Chord::parse("Dm").unwrap().unwrap(),
        Chord::parse("G7").unwrap().unwrap(),
    );
    assert!(
        on_beats(&bars)
            .iter()
            .all(|&(step, p)| if step < 16 { dm } else { g7 }.has_tone(p)),
        "{bars:?}"
    );
    for wrong in ["Am Hm", "Am:0", "Am:x"] {
        let (output, _) = decode(&dir, &["--chords", wrong]);
        assert!(!output.status.success(), "{wrong}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
