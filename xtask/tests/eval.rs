//! `cargo xtask eval --midi DIR` on a user's own lead sheets: the melody in one track,
//! block chords in a second, and how the shipped models follow those chords.

use std::path::{Path, PathBuf};
use std::process::Command;

use midly::num::{u15, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One track of `(pitch, start, end)` notes in 16ths at 480 PPQ on `channel`.
fn track(notes: &[(u8, u32, u32)], channel: u8) -> Vec<TrackEvent<'static>> {
    let mut timed: Vec<(u32, bool, u8)> = notes
        .iter()
        .flat_map(|&(p, start, end)| [(start * 120, true, p), (end * 120, false, p)])
        .collect();
    timed.sort_by_key(|&(tick, on, p)| (tick, on, p));
    let mut now = 0;
    let mut events: Vec<TrackEvent<'static>> = timed
        .into_iter()
        .map(|(tick, on, p)| {
            let (key, vel) = (u7::new(p), u7::new(if on { 90 } else { 0 }));
            let message = if on {
                MidiMessage::NoteOn { key, vel }
            } else {
                MidiMessage::NoteOff { key, vel }
            };
            let delta = u28::new(tick - now);
            now = tick;
            TrackEvent {
                delta,
                kind: TrackEventKind::Midi {
                    channel: u4::new(channel),
                    message,
                },
            }
        })
        .collect();
    events.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    events
}

/// Eight 4-bar songs over C Am F G, a chord a bar: quarter notes, each on a beat and a
/// tone of its chord.
fn write_lead_sheets(dir: &Path) {
    let chords: [[u8; 3]; 4] = [[48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50]];
    for song in 0..8u32 {
        let mut melody = Vec::new();
        let mut voicing = Vec::new();
        for bar in 0..4u32 {
            let chord = chords[bar as usize];
            for &p in &chord {
                voicing.push((p, bar * 16, bar * 16 + 16));
            }
            for beat in 0..4u32 {
                let tone = chord[((song + bar + beat) % 3) as usize] + 24;
                let start = bar * 16 + beat * 4;
                melody.push((tone, start, start + 4));
            }
        }
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(480))),
            tracks: vec![track(&melody, 0), track(&voicing, 1)],
        };
        smf.save(dir.join(format!("song{song}.mid"))).unwrap();
    }
}

fn eval(model: &str, dir: &Path, extra: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("eval")
        .arg("--model")
        .arg(root().join("assets").join(model))
        .arg("--midi")
        .arg(dir)
        .args(extra)
        .output()
        .expect("xtask runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The share printed on the line starting with `label`, in percent.
fn share(text: &str, label: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in\n{text}"));
    let percent = line.split(" % ").next().unwrap();
    percent.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn eval_reads_lead_sheets_and_reports_how_decodes_follow_their_chords() {
    let dir = std::env::temp_dir().join(format!("latent-live-sheets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_lead_sheets(&dir);
    // The chord model reads the chords; it samples over them too.
    let (ok, text) = eval("pop-2bar-chords.safetensors", &dir, &[]);
    assert!(ok, "{text}");
    assert_eq!(share(&text, "the melodies"), 100.0, "{text}");
    let decoded = share(&text, "greedy decodes of mu");
    assert!((0.0..=100.0).contains(&decoded));
    share(&text, "prior samples over the progressions");
    assert!(text.contains("teacher_forced="), "{text}");
    // A model without chords reads the same melodies with `--lead-sheets`: its decodes
    // are its reconstructions, unaware of the chords.
    let (ok, text) = eval("folk-2bar.safetensors", &dir, &["--lead-sheets"]);
    assert!(ok, "{text}");
    assert_eq!(share(&text, "the melodies"), 100.0, "{text}");
    assert!(!text.contains("prior samples over"), "{text}");
    // Without it, every track is the melody, as for any MIDI folder: no chords reported.
    let (ok, text) = eval("folk-2bar.safetensors", &dir, &[]);
    assert!(ok && !text.contains("tones of their chord"), "{text}");
    if std::env::var_os("KEEP").is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
