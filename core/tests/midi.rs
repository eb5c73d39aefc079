//! MIDI import and export: round trips and the files real collections contain.

use latent_live_core::music::melody::{self, Note, NOTE_OFF, NO_EVENT};
use latent_live_core::music::midi::{self, ImportedMidi, MidiError};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{
    Format, Fps, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
};

/// `(tick, channel, key, velocity)`, velocity 0 meaning note-off.
type Ev = (u32, u8, u8, u8);

fn track(events: &[Ev], tempos: &[(u32, u32)]) -> Vec<TrackEvent<'static>> {
    let mut timed: Vec<(u32, TrackEventKind<'static>)> = tempos
        .iter()
        .map(|&(tick, us)| (tick, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us)))))
        .collect();
    for &(tick, ch, key, vel) in events {
        let message = if vel > 0 {
            MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            }
        } else {
            MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(0),
            }
        };
        timed.push((
            tick,
            TrackEventKind::Midi {
                channel: u4::new(ch),
                message,
            },
        ));
    }
    timed.sort_by_key(|(t, _)| *t);
    let mut now = 0;
    let mut out: Vec<TrackEvent> = timed
        .into_iter()
        .map(|(tick, kind)| {
            let delta = tick - now;
            now = tick;
            TrackEvent {
                delta: u28::new(delta),
                kind,
            }
        })
        .collect();
    out.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    out
}

fn smf_bytes(format: Format, timing: Timing, tracks: Vec<Vec<TrackEvent<'static>>>) -> Vec<u8> {
    let smf = Smf {
        header: Header::new(format, timing),
        tracks,
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).unwrap();
    bytes
}

/// A note from `start` to `end` in 16th steps at `ppq`.
fn note(ppq: u32, ch: u8, key: u8, start: f64, end: f64) -> [Ev; 2] {
    let tick = |step: f64| (step * ppq as f64 / 4.0).round() as u32;
    [(tick(start), ch, key, 100), (tick(end), ch, key, 0)]
}

fn import_one_track(ppq: u16, notes: &[[Ev; 2]]) -> ImportedMidi {
    let events: Vec<Ev> = notes.iter().flatten().copied().collect();
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(ppq)),
        vec![track(&events, &[(0, 500_000)])],
    );
    midi::import(&bytes).unwrap()
}

fn n(pitch: u8, start: u32, end: u32) -> Note {
    Note { pitch, start, end }
}

#[test]
fn export_import_round_trip() {
    let notes = vec![
        n(60, 0, 4),
        n(62, 4, 6),
        n(64, 8, 16),
        n(67, 16, 17),
        n(72, 20, 32),
    ];
    let imported = midi::import(&midi::export(&notes, 97.0)).unwrap();
    assert_eq!(imported.notes, notes);
    assert_eq!(imported.steps, 32);
    assert!((imported.bpm - 97.0).abs() < 0.01);
    // And through the 90-class encoding.
    let events = melody::encode(&imported.notes, 32);
    assert_eq!(melody::decode(&events), notes);
    let again = midi::import(&midi::export(&melody::decode(&events), 120.0)).unwrap();
    assert_eq!(again.notes, notes);
}

#[test]
fn repeated_notes_retrigger_after_export() {
    let notes = vec![n(60, 0, 2), n(60, 2, 4), n(60, 4, 8)];
    assert_eq!(
        midi::import(&midi::export(&notes, 120.0)).unwrap().notes,
        notes
    );
}

#[test]
fn other_ppqs_land_on_the_same_grid() {
    for ppq in [96u16, 480, 960, 24] {
        let got = import_one_track(
            ppq,
            &[
                note(ppq as u32, 0, 60, 0.0, 2.0),
                note(ppq as u32, 0, 64, 4.0, 8.0),
            ],
        );
        assert_eq!(got.notes, vec![n(60, 0, 2), n(64, 4, 8)], "ppq {ppq}");
    }
}

#[test]
fn overlapping_notes_keep_the_highest() {
    // A chord, then a low note starting under a sounding high one, then a higher one that cuts it.
    let got = import_one_track(
        480,
        &[
            note(480, 0, 60, 0.0, 4.0),
            note(480, 0, 64, 0.0, 4.0),
            note(480, 0, 67, 0.0, 4.0),
            note(480, 0, 72, 4.0, 12.0),
            note(480, 0, 55, 6.0, 10.0),
            note(480, 0, 79, 8.0, 10.0),
        ],
    );
    assert_eq!(got.notes, vec![n(67, 0, 4), n(72, 4, 8), n(79, 8, 10)]);
    // The same note twice on one channel: each note-off closes the oldest.
    let got = import_one_track(
        480,
        &[
            [(0, 0, 60, 100), (240, 0, 60, 0)],
            [(120, 0, 60, 100), (480, 0, 60, 0)],
        ],
    );
    assert_eq!(got.notes, vec![n(60, 0, 1), n(60, 1, 4)]);
}

#[test]
fn pitches_outside_the_range_fold_by_octaves() {
    let got = import_one_track(
        480,
        &[
            note(480, 0, 12, 0.0, 2.0),
            note(480, 0, 120, 4.0, 6.0),
            note(480, 0, 21, 8.0, 9.0),
        ],
    );
    assert_eq!(
        got.notes.iter().map(|n| n.pitch).collect::<Vec<_>>(),
        vec![24, 108, 21]
    );
}

#[test]
fn empty_bars_stay_rests_and_silent_windows_are_skipped() {
    // Bar 0 and bar 2 have notes, bar 1 is silent, bar 3 has a note.
    let got = import_one_track(
        480,
        &[
            note(480, 0, 60, 0.0, 4.0),
            note(480, 0, 62, 32.0, 36.0),
            note(480, 0, 64, 48.0, 50.0),
        ],
    );
    assert_eq!(got.notes, vec![n(60, 0, 4), n(62, 32, 36), n(64, 48, 50)]);
    assert_eq!(got.steps, 64);
    let events = melody::encode(&got.notes, 64);
    assert!(events[16..32]
        .iter()
        .enumerate()
        .all(|(i, &e)| e == NO_EVENT || (i == 0 && e == NOTE_OFF)));
    // Windows of 2 bars: [0,1] and [1,2] hold the silent bar 1; only [2,3] survives.
    let slices = midi::slices(&got, 2);
    assert_eq!(slices, vec![events[32..64].to_vec()]);
}

#[test]
fn slices_hop_one_bar() {
    let notes: Vec<Note> = (0..32)
        .map(|i| n(60 + (i % 12) as u8, i * 4, i * 4 + 2))
        .collect();
    let imported = ImportedMidi {
        notes,
        steps: 128,
        bpm: 120.0,
    };
    let slices = midi::slices(&imported, 2);
    assert_eq!(slices.len(), 7);
    let all = melody::encode(&imported.notes, 128);
    for (i, s) in slices.iter().enumerate() {
        assert_eq!(s.as_slice(), &all[i * 16..i * 16 + 32]);
    }
    assert_eq!(midi::slices(&imported, 8).len(), 1);
    assert!(midi::slices(&imported, 9).is_empty());
}

#[test]
fn triplets_snap_to_the_nearest_sixteenth() {
    // Eighth-note triplets over one beat: onsets at 0, 4/3 and 8/3 steps.
    let got = import_one_track(
        480,
        &[
            note(480, 0, 60, 0.0, 4.0 / 3.0),
            note(480, 0, 62, 4.0 / 3.0, 8.0 / 3.0),
            note(480, 0, 64, 8.0 / 3.0, 4.0),
        ],
    );
    assert_eq!(got.notes, vec![n(60, 0, 1), n(62, 1, 3), n(64, 3, 4)]);
    // Sixteenth triplets collide on one step; the highest wins.
    let got = import_one_track(
        480,
        &[
            note(480, 0, 60, 0.0, 2.0 / 3.0),
            note(480, 0, 67, 2.0 / 3.0, 4.0 / 3.0),
        ],
    );
    assert_eq!(got.notes[0].start, 0);
    assert!(got.notes.iter().all(|n| n.end > n.start));
}

#[test]
fn tempo_changes_leave_the_metrical_grid_alone() {
    let events: Vec<Ev> = [note(480, 0, 60, 0.0, 4.0), note(480, 0, 62, 16.0, 20.0)]
        .iter()
        .flatten()
        .copied()
        .collect();
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(480)),
        vec![track(&events, &[(0, 400_000), (960, 1_000_000)])],
    );
    let got = midi::import(&bytes).unwrap();
    assert_eq!(got.notes, vec![n(60, 0, 4), n(62, 16, 20)]);
    assert!((got.bpm - 150.0).abs() < 1e-9);
}

#[test]
fn smpte_files_go_through_the_tempo_map() {
    // 25 fps x 40 subframes = 1000 ticks per second. At 120 bpm a 16th lasts 125 ms;
    // after 2 s the tempo halves to 60 bpm, where a 16th lasts 250 ms.
    let events: Vec<Ev> = vec![
        (0, 0, 60, 100),
        (500, 0, 60, 0),
        (2000, 0, 64, 100),
        (2500, 0, 64, 0),
    ];
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Timecode(Fps::Fps25, 40),
        vec![track(&events, &[(0, 500_000), (2000, 1_000_000)])],
    );
    let got = midi::import(&bytes).unwrap();
    assert_eq!(got.notes, vec![n(60, 0, 4), n(64, 16, 18)]);
}

#[test]
fn type_0_and_type_1_files_read_alike() {
    let melody_events: Vec<Ev> = [note(480, 0, 72, 0.0, 4.0), note(480, 0, 74, 4.0, 8.0)]
        .iter()
        .flatten()
        .copied()
        .collect();
    let bass_events: Vec<Ev> = [note(480, 1, 48, 0.0, 8.0)]
        .iter()
        .flatten()
        .copied()
        .collect();
    let drums: Vec<Ev> = [note(480, 9, 100, 0.0, 1.0), note(480, 9, 100, 8.0, 9.0)]
        .iter()
        .flatten()
        .copied()
        .collect();
    let all: Vec<Ev> = [&melody_events[..], &bass_events[..], &drums[..]].concat();
    let timing = Timing::Metrical(u15::new(480));
    let type0 = smf_bytes(
        Format::SingleTrack,
        timing,
        vec![track(&all, &[(0, 500_000)])],
    );
    let type1 = smf_bytes(
        Format::Parallel,
        timing,
        vec![
            track(&[], &[(0, 500_000)]),
            track(&melody_events, &[]),
            track(&bass_events, &[]),
            track(&drums, &[]),
        ],
    );
    let a = midi::import(&type0).unwrap();
    let b = midi::import(&type1).unwrap();
    assert_eq!(a, b);
    // The percussion note at step 8 (pitch 100) is not part of the melody.
    assert_eq!(a.notes, vec![n(72, 0, 4), n(74, 4, 8)]);
}

#[test]
fn running_status_is_understood() {
    // Hand-written: one track, a note-on status byte followed by data-only events.
    let mut track_data = vec![
        0x00, 0x90, 60, 100, // note on C4
        0x78, 60, 0, // (running status) note on C4 vel 0 = off, after 120 ticks
        0x00, 64, 90, // note on E4
        0x78, 64, 0, // off
        0x00, 0xFF, 0x2F, 0x00, // end of track
    ];
    let mut bytes = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xE0MTrk".to_vec(); // type 0, 1 track, ppq 480
    bytes.extend_from_slice(&(track_data.len() as u32).to_be_bytes());
    bytes.append(&mut track_data);
    let got = midi::import(&bytes).unwrap();
    assert_eq!(got.notes, vec![n(60, 0, 1), n(64, 1, 2)]);
}

#[test]
fn unreleased_notes_end_with_their_track() {
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(480)),
        vec![vec![
            TrackEvent {
                delta: u28::new(0),
                kind: TrackEventKind::Midi {
                    channel: u4::new(0),
                    message: MidiMessage::NoteOn {
                        key: u7::new(60),
                        vel: u7::new(90),
                    },
                },
            },
            TrackEvent {
                delta: u28::new(960),
                kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
            },
        ]],
    );
    assert_eq!(midi::import(&bytes).unwrap().notes, vec![n(60, 0, 8)]);
}

#[test]
fn type_2_tracks_play_one_after_another() {
    let first: Vec<Ev> = note(480, 0, 60, 0.0, 16.0).to_vec();
    let second: Vec<Ev> = note(480, 0, 64, 0.0, 4.0).to_vec();
    let bytes = smf_bytes(
        Format::Sequential,
        Timing::Metrical(u15::new(480)),
        vec![track(&first, &[]), track(&second, &[])],
    );
    assert_eq!(
        midi::import(&bytes).unwrap().notes,
        vec![n(60, 0, 16), n(64, 16, 20)]
    );
}

/// A lead sheet over two bars: the melody on `melody_ch`, block chords on `chord_ch`: Am
/// (root position) for a bar, then F (first inversion, its top above the melody) for
/// half a bar, then the chord part rests.
fn lead_sheet_events(melody_ch: u8, chord_ch: u8) -> (Vec<Ev>, Vec<Ev>) {
    let melody: Vec<Ev> = [
        note(480, melody_ch, 69, 0.0, 4.0),
        note(480, melody_ch, 72, 4.0, 8.0),
        note(480, melody_ch, 65, 16.0, 20.0),
        note(480, melody_ch, 64, 24.0, 32.0),
    ]
    .iter()
    .flatten()
    .copied()
    .collect();
    let chords: Vec<Ev> = [
        note(480, chord_ch, 57, 0.0, 16.0),
        note(480, chord_ch, 60, 0.0, 16.0),
        note(480, chord_ch, 64, 0.0, 16.0),
        note(480, chord_ch, 69, 16.0, 24.0),
        note(480, chord_ch, 72, 16.0, 24.0),
        note(480, chord_ch, 77, 16.0, 24.0),
    ]
    .iter()
    .flatten()
    .copied()
    .collect();
    (melody, chords)
}

#[test]
fn lead_sheets_read_a_melody_over_the_chords_of_a_second_part() {
    use latent_live_core::music::chord::Chord;
    let timing = Timing::Metrical(u15::new(480));
    let (melody, chords) = lead_sheet_events(0, 0);
    let type1 = smf_bytes(
        Format::Parallel,
        timing,
        vec![
            track(&[], &[(0, 500_000)]),
            track(&melody, &[]),
            track(&chords, &[]),
        ],
    );
    let sheet = midi::import_lead_sheet(&type1).unwrap();
    assert_eq!(
        sheet.melody.notes,
        vec![n(69, 0, 4), n(72, 4, 8), n(65, 16, 20), n(64, 24, 32)],
        "the melody is its own track, the chord tones above it left out"
    );
    let (am, f) = (Chord::parse("Am").unwrap(), Chord::parse("F/A").unwrap());
    assert!(sheet.chords[..16].iter().all(|&c| c == am));
    assert!(
        sheet.chords[16..].iter().all(|&c| c == f),
        "F from its onset, held through the rest"
    );
    // In one track, by channel.
    let (melody, chords) = lead_sheet_events(0, 1);
    let all = [melody, chords].concat();
    let type0 = smf_bytes(
        Format::SingleTrack,
        timing,
        vec![track(&all, &[(0, 500_000)])],
    );
    assert_eq!(midi::import_lead_sheet(&type0).unwrap(), sheet);
    // Its 1-bar windows, each with its chords.
    let slices = midi::lead_sheet_slices(&sheet, 1);
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[1].0, midi::slices(&sheet.melody, 1)[1]);
    assert_eq!(slices[1].1, sheet.chords[16..32]);
    // A melody alone is no lead sheet.
    let (melody, _) = lead_sheet_events(0, 0);
    let alone = smf_bytes(
        Format::SingleTrack,
        timing,
        vec![track(&melody, &[(0, 500_000)])],
    );
    assert!(matches!(
        midi::import_lead_sheet(&alone),
        Err(MidiError::NoChordPart)
    ));
    // Nor is a melody over a bass line: one note at a time names no chord.
    let bass: Vec<Ev> = [note(480, 1, 45, 0.0, 16.0), note(480, 1, 41, 16.0, 32.0)]
        .iter()
        .flatten()
        .copied()
        .collect();
    let (melody, _) = lead_sheet_events(0, 0);
    let over_bass = smf_bytes(
        Format::Parallel,
        timing,
        vec![track(&melody, &[(0, 500_000)]), track(&bass, &[])],
    );
    assert!(matches!(
        midi::import_lead_sheet(&over_bass),
        Err(MidiError::NoChordPart)
    ));
}

#[test]
fn lead_sheets_export_and_import_round_trip() {
    use latent_live_core::music::chord::Chord;
    let notes = vec![n(72, 0, 4), n(71, 4, 8), n(69, 8, 16), n(67, 16, 30)];
    // No chord for a bar, then Am, G/B (an inversion) and F7 over the second.
    let symbols = [
        (None, 16),
        (Some("Am"), 6),
        (Some("G/B"), 2),
        (Some("F7"), 8),
    ];
    let chords: Vec<Option<Chord>> = symbols
        .iter()
        .flat_map(|&(symbol, steps)| {
            let chord = symbol.and_then(|s| Chord::parse(s).unwrap());
            std::iter::repeat_n(chord, steps)
        })
        .collect();
    let bytes = midi::export_lead_sheet(&notes, 90, &chords, 100.0);
    let sheet = midi::import_lead_sheet(&bytes).unwrap();
    assert_eq!(sheet.melody.notes, notes);
    assert_eq!(sheet.melody.bpm.round(), 100.0);
    assert_eq!(sheet.chords, chords);
}

/// Whatever the importer names, the exporter writes so that it reads back: every quality
/// on every root and bass, read from its full set and from that set less its fifth (an
/// Fm7 over Ab played without its C is Fm7/Ab; with the C it would read as Ab6).
#[test]
fn every_chord_the_importer_names_exports_as_itself() {
    use latent_live_core::music::chord::{Chord, Quality};
    let notes = vec![n(72, 0, 16)];
    for quality in Quality::ALL {
        for root in 0..12u8 {
            let tones: Vec<u8> = quality
                .intervals()
                .iter()
                .map(|i| (root + i) % 12)
                .collect();
            for &bass in &tones {
                for drop_fifth in [false, true] {
                    let fifth = (root + 7) % 12;
                    if drop_fifth && (!tones.contains(&fifth) || bass == fifth) {
                        continue;
                    }
                    let held: Vec<u8> = tones
                        .iter()
                        .filter(|&&pc| !(drop_fifth && pc == fifth))
                        .map(|&pc| if pc == bass { 36 + pc } else { 60 + pc })
                        .collect();
                    let Some(read) = Chord::recognise(&held) else {
                        continue;
                    };
                    let chords = vec![Some(read); 16];
                    let bytes = midi::export_lead_sheet(&notes, 90, &chords, 120.0);
                    let sheet = midi::import_lead_sheet(&bytes).unwrap();
                    assert_eq!(sheet.chords, chords, "{read} from {held:?}");
                }
            }
        }
    }
}

#[test]
fn rmid_files_are_unwrapped() {
    let smf = midi::export(&[n(60, 0, 4)], 120.0);
    let mut riff = b"RIFF".to_vec();
    riff.extend_from_slice(&(smf.len() as u32 + 12).to_le_bytes());
    riff.extend_from_slice(b"RMIDdata");
    riff.extend_from_slice(&(smf.len() as u32).to_le_bytes());
    riff.extend_from_slice(&smf);
    assert_eq!(midi::import(&riff).unwrap().notes, vec![n(60, 0, 4)]);
}

#[test]
fn bad_files_are_errors() {
    assert!(matches!(
        midi::import(b"RIFF....WAVEfmt "),
        Err(MidiError::NotMidi)
    ));
    assert!(matches!(
        midi::import(b"Hello, world"),
        Err(MidiError::NotMidi)
    ));
    assert!(matches!(midi::import(&[]), Err(MidiError::NotMidi)));
    let drums_only = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(480)),
        vec![track(&note(480, 9, 36, 0.0, 1.0), &[])],
    );
    assert!(matches!(midi::import(&drums_only), Err(MidiError::NoNotes)));
    // Every cut of a valid file is refused, whether inside the header, a track, or between tracks.
    let two_tracks = smf_bytes(
        Format::Parallel,
        Timing::Metrical(u15::new(480)),
        vec![
            track(&note(480, 0, 60, 0.0, 4.0), &[(0, 500_000)]),
            track(&note(480, 1, 64, 4.0, 8.0), &[]),
        ],
    );
    assert!(midi::import(&two_tracks).is_ok());
    for cut in 0..two_tracks.len() {
        assert!(midi::import(&two_tracks[..cut]).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        midi::import(&two_tracks[..two_tracks.len() - 1]),
        Err(MidiError::Truncated)
    ));
    // Trailing bytes after the declared tracks are harmless.
    let padded = [&two_tracks[..], &[0, 0, 0]].concat();
    assert_eq!(
        midi::import(&padded).unwrap(),
        midi::import(&two_tracks).unwrap()
    );
    // An SMPTE rate of -128 in a header chunk after the tracks (midly parses every header
    // it meets, and negating -128 overflows): found by the midi_import fuzz target.
    let mut late_header = two_tracks.clone();
    late_header.extend(b"MThd\0\0\0\x06\0\0\0\x01\x80\x44");
    assert!(matches!(
        midi::import(&late_header),
        Err(MidiError::Parse(_))
    ));
    // A corrupt delta time far in the future is refused instead of allocating gigabytes.
    let far = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(1)),
        vec![track(&[(0, 0, 60, 100), (u32::MAX >> 4, 0, 60, 0)], &[])],
    );
    assert!(matches!(midi::import(&far), Err(MidiError::TooLong(_))));
    let err = midi::import_file(std::path::Path::new("/nonexistent/song.mid")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/song.mid"));
}

/// xorshift64: reproducible garbage without a dependency.
fn garbage(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state as u8
        })
        .collect()
}

/// `FUZZ=10000000 cargo test --test midi garbage` fuzzes longer.
fn fuzz_rounds() -> usize {
    std::env::var("FUZZ")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..fuzz_rounds() {
        let len = i % 300;
        let body = garbage(&mut state, len);
        let _ = midi::import(&body);
        let _ = midi::import_lead_sheet(&body);
        // A well-formed header and chunk around random events (random format, timing,
        // SMPTE included), so that the event and timing paths see the garbage too.
        let mut bytes = b"MThd\0\0\0\x06".to_vec();
        bytes.extend_from_slice(&[0, (i % 3) as u8, 0, 1]);
        bytes.extend(garbage(&mut state, 2));
        bytes.extend_from_slice(b"MTrk");
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(m) = midi::import(&bytes) {
            assert!(m.steps % 16 == 0 && m.notes.windows(2).all(|w| w[0].end <= w[1].start));
            let _ = midi::slices(&m, 2);
        }
        if let Ok(sheet) = midi::import_lead_sheet(&bytes) {
            assert_eq!(sheet.chords.len(), sheet.melody.steps as usize);
            let _ = midi::lead_sheet_slices(&sheet, 2);
        }
    }
    // Valid files with a few bytes changed reach the deeper paths (meta events, deltas, status bytes).
    let valid = midi::export(
        &[n(60, 0, 4), n(62, 4, 6), n(64, 8, 16), n(67, 16, 17)],
        133.0,
    );
    for _ in 0..fuzz_rounds() {
        let mut bytes = valid.clone();
        let noise = garbage(&mut state, 8);
        for pair in noise.chunks(2).take(1 + noise[0] as usize % 4) {
            let at = pair[0] as usize % bytes.len();
            bytes[at] = pair[1];
        }
        let _ = midi::import(&bytes);
    }
    // Slicing a hand-built import with notes past its length does not panic either.
    let odd = ImportedMidi {
        notes: vec![n(60, 40, 50), n(62, 5, 3)],
        steps: 32,
        bpm: 120.0,
    };
    let _ = midi::slices(&odd, 1);
    let _ = midi::export(&[n(200, 9, 3), n(60, 0, 4)], f64::NAN);
}

// Drums.

use latent_live_core::music::drums::{self, Hit};

fn hit(step: u32, class: u8) -> Hit {
    Hit { step, class }
}

/// A drum hit at `step` (fractional 16ths) at `ppq`, a 32nd long.
fn drum(ppq: u32, ch: u8, key: u8, step: f64) -> [Ev; 2] {
    note(ppq, ch, key, step, step + 0.5)
}

fn drum_file(ppq: u16, tracks: &[&[[Ev; 2]]]) -> Vec<u8> {
    let tracks = tracks
        .iter()
        .map(|notes| {
            track(
                &notes.iter().flatten().copied().collect::<Vec<_>>(),
                &[(0, 500_000)],
            )
        })
        .collect();
    smf_bytes(Format::Parallel, Timing::Metrical(u15::new(ppq)), tracks)
}

#[test]
fn drum_export_import_round_trip() {
    let hits = vec![
        hit(0, 0),
        hit(0, 2),
        hit(2, 2),
        hit(4, 1),
        hit(4, 2),
        hit(6, 3),
        hit(8, 0),
        hit(12, 1),
        hit(14, 4),
        hit(15, 5),
        hit(16, 7),
        hit(20, 6),
        hit(24, 8),
    ];
    let bytes = midi::export_drums(&hits, 96.0, &drums::GM_NOTES, |h| {
        if h.step % 4 == 0 {
            110
        } else {
            80
        }
    });
    let imported = midi::import_drums(&bytes).unwrap();
    assert_eq!(imported.hits, hits);
    assert_eq!((imported.steps, imported.unmapped), (32, 0));
    assert!((imported.bpm - 96.0).abs() < 0.01, "{}", imported.bpm);
    // GM notes on channel 10, with the velocities asked for.
    let smf = Smf::parse(&bytes).unwrap();
    let ons: Vec<(u8, u8, u8)> = smf.tracks[0]
        .iter()
        .filter_map(|e| match e.kind {
            TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOn { key, vel },
            } if vel > 0 => Some((channel.as_int(), key.as_int(), vel.as_int())),
            _ => None,
        })
        .collect();
    assert_eq!(ons[..3], [(9, 36, 110), (9, 42, 110), (9, 42, 80)]);
    assert!(ons.iter().all(|&(ch, ..)| ch == 9));
    // Melody import ignores the drum channel altogether.
    assert!(matches!(midi::import(&bytes), Err(MidiError::NoNotes)));
}

#[test]
fn every_drum_pitch_maps_to_its_class() {
    for (class, c) in drums::CLASSES.iter().enumerate() {
        let notes: Vec<[Ev; 2]> = c
            .pitches
            .iter()
            .enumerate()
            .map(|(i, &p)| drum(480, 9, p, i as f64 * 2.0))
            .collect();
        let imported = midi::import_drums(&drum_file(480, &[&notes])).unwrap();
        assert!(
            imported.hits.iter().all(|h| h.class as usize == class),
            "{}: {:?}",
            c.name,
            imported.hits
        );
        assert_eq!(imported.hits.len(), c.pitches.len());
    }
    // A pitch in no class is counted, not guessed.
    let imported = midi::import_drums(&drum_file(
        480,
        &[&[drum(480, 9, 36, 0.0), drum(480, 9, 100, 1.0)]],
    ))
    .unwrap();
    assert_eq!((imported.hits, imported.unmapped), (vec![hit(0, 0)], 1));
}

#[test]
fn flams_and_doubles_are_one_hit() {
    // A flam: two snare strokes 10 ticks apart; a double: the same kick twice on a step.
    let notes = [
        drum(480, 9, 38, 4.0),
        drum(480, 9, 40, 4.08),
        drum(480, 9, 36, 0.0),
        drum(480, 9, 35, 0.1),
    ];
    let imported = midi::import_drums(&drum_file(480, &[&notes])).unwrap();
    assert_eq!(imported.hits, vec![hit(0, 0), hit(4, 1)]);
}

#[test]
fn drum_hits_snap_to_the_nearest_sixteenth() {
    // Ahead of and behind the beat, as a human drummer plays, and a triplet.
    let notes = [
        drum(480, 9, 36, -0.0),
        drum(480, 9, 38, 3.7),
        drum(480, 9, 42, 6.4),
        drum(480, 9, 42, 7.5),
        drum(480, 9, 46, 10.0 + 4.0 / 3.0),
    ];
    let imported = midi::import_drums(&drum_file(480, &[&notes])).unwrap();
    assert_eq!(
        imported.hits,
        vec![hit(0, 0), hit(4, 1), hit(6, 2), hit(8, 2), hit(11, 3)]
    );
}

#[test]
fn every_drum_track_and_drum_bank_is_read() {
    let ppq = 96;
    // Kick on one track, snare on another, hats on channel 3 switched to GM2's drum bank.
    let mut hats = track(
        &[drum(ppq, 2, 42, 2.0), drum(ppq, 2, 42, 6.0)].concat(),
        &[],
    );
    hats.insert(
        0,
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Midi {
                channel: u4::new(2),
                message: MidiMessage::Controller {
                    controller: u7::new(0),
                    value: u7::new(120),
                },
            },
        },
    );
    let kick = track(
        &[drum(ppq, 9, 36, 0.0), drum(ppq, 9, 36, 8.0)].concat(),
        &[(0, 400_000)],
    );
    let snare = track(
        &[drum(ppq, 9, 38, 4.0), drum(ppq, 9, 38, 12.0)].concat(),
        &[],
    );
    // And a bass line that must stay out of the drums.
    let bass = track(&note(ppq, 0, 40, 0.0, 4.0), &[]);
    let bytes = smf_bytes(
        Format::Parallel,
        Timing::Metrical(u15::new(ppq as u16)),
        vec![kick, snare, hats, bass],
    );
    let imported = midi::import_drums(&bytes).unwrap();
    assert_eq!(
        imported.hits,
        vec![
            hit(0, 0),
            hit(2, 2),
            hit(4, 1),
            hit(6, 2),
            hit(8, 0),
            hit(12, 1)
        ]
    );
    assert!((imported.bpm - 150.0).abs() < 1e-9);
    assert_eq!(midi::import(&bytes).unwrap().notes, vec![n(40, 0, 4)]);
}

#[test]
fn drum_tempo_changes_and_smpte_time_keep_the_grid() {
    // Metrical: a tempo change does not move hits off the beat.
    let kick = track(
        &[
            drum(480, 9, 36, 0.0),
            drum(480, 9, 36, 16.0),
            drum(480, 9, 36, 20.0),
        ]
        .concat(),
        &[(0, 500_000), (480 * 4, 300_000)],
    );
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(480)),
        vec![kick],
    );
    assert_eq!(
        midi::import_drums(&bytes).unwrap().hits,
        vec![hit(0, 0), hit(16, 0), hit(20, 0)]
    );
    // SMPTE at 25 fps x 40 subframes = 1000 ticks a second, 120 bpm: a 16th is 125 ticks.
    let smpte = track(
        &[
            (0, 9, 36, 100),
            (60, 9, 36, 0),
            (500, 9, 38, 100),
            (560, 9, 38, 0),
        ],
        &[(0, 500_000)],
    );
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Timecode(Fps::Fps25, 40),
        vec![smpte],
    );
    assert_eq!(
        midi::import_drums(&bytes).unwrap().hits,
        vec![hit(0, 0), hit(4, 1)]
    );
}

#[test]
fn drum_windows_hop_one_bar_and_skip_empty_ones() {
    // Bar 0 and bar 3 hold hits, bars 1 and 2 are silent; the file is 4 bars long.
    let notes = [drum(480, 9, 36, 0.0), drum(480, 9, 38, 52.0)];
    let imported = midi::import_drums(&drum_file(480, &[&notes])).unwrap();
    assert_eq!(imported.steps, 64);
    let windows = midi::drum_slices(&imported, 2);
    // Windows at bars 0 and 2 have a hit; the one at bar 1 (bars 1-2) is empty.
    assert_eq!(windows.len(), 2);
    assert_eq!(drums::decode(&windows[0]), vec![hit(0, 0)]);
    assert_eq!(drums::decode(&windows[1]), vec![hit(20, 1)]);
    assert!(midi::drum_slices(&imported, 5).is_empty());
}

#[test]
fn a_file_without_drums_is_an_error() {
    let bytes = smf_bytes(
        Format::SingleTrack,
        Timing::Metrical(u15::new(480)),
        vec![track(&note(480, 0, 60, 0.0, 4.0), &[])],
    );
    assert!(matches!(
        midi::import_drums(&bytes),
        Err(MidiError::NoDrums)
    ));
}

// Grooves: drums as played.

use latent_live_core::music::groove::{Groove, Stroke};

/// A drum stroke at `step` (fractional 16ths) and `velocity`, at `ppq`.
fn stroke_at(ppq: u32, key: u8, step: f64, velocity: u8) -> [Ev; 2] {
    let [(on, ch, key, _), off] = drum(ppq, 9, key, step);
    [(on, ch, key, velocity), off]
}

#[test]
fn grooves_keep_velocity_and_timing() {
    // Pushed and laid back around the grid, soft and loud, at 480 PPQ (Groove MIDI's).
    let notes = [
        stroke_at(480, 36, 0.0, 110),
        stroke_at(480, 42, 1.9, 45),
        stroke_at(480, 38, 4.25, 98),
        stroke_at(480, 42, 15.6, 60),
    ];
    let imported = midi::import_groove(&drum_file(480, &[&notes])).unwrap();
    let got: Vec<(u8, f64, u8)> = imported
        .strokes
        .iter()
        .map(|s| (s.class, s.time, s.velocity))
        .collect();
    assert_eq!(
        got,
        vec![(0, 0.0, 110), (2, 1.9, 45), (1, 4.25, 98), (2, 15.6, 60)]
    );
    // The last stroke rounds to step 16, so the groove is two bars long.
    assert_eq!(imported.steps, 32);
    // The drum import is the same strokes on the grid.
    let hits = midi::import_drums(&drum_file(480, &[&notes])).unwrap().hits;
    assert_eq!(hits, vec![hit(0, 0), hit(2, 2), hit(4, 1), hit(16, 2)]);
}

#[test]
fn groove_export_import_round_trip() {
    let strokes = vec![
        Stroke {
            class: 0,
            time: 0.0,
            velocity: 127,
        },
        Stroke {
            class: 2,
            time: 2.1,
            velocity: 40,
        },
        Stroke {
            class: 1,
            time: 3.8,
            velocity: 100,
        },
        Stroke {
            class: 8,
            time: 30.55,
            velocity: 1,
        },
    ];
    let bytes = midi::export_groove(&strokes, 87.0, &drums::GM_NOTES);
    let imported = midi::import_groove(&bytes).unwrap();
    assert!((imported.bpm - 87.0).abs() < 0.01);
    assert_eq!(imported.strokes.len(), strokes.len());
    for (a, b) in imported.strokes.iter().zip(&strokes) {
        assert_eq!((a.class, a.velocity), (b.class, b.velocity));
        // 480 PPQ: a 16th is 120 ticks, so a time comes back within half a tick.
        assert!((a.time - b.time).abs() <= 0.5 / 120.0, "{a:?} vs {b:?}");
    }
}

#[test]
fn groove_windows_take_strokes_played_ahead_of_their_first_step() {
    // A snare pushed ahead of bar 2's downbeat belongs to the window that starts there.
    let notes = [
        stroke_at(480, 36, 0.0, 100),
        stroke_at(480, 38, 15.8, 90),
        stroke_at(480, 36, 40.0, 100),
    ];
    let imported = midi::import_groove(&drum_file(480, &[&notes])).unwrap();
    let windows = midi::groove_slices(&imported, 2);
    assert_eq!(windows.len(), 2);
    let second: Vec<Stroke> = windows[1].strokes();
    assert_eq!(second[0].class, 1);
    assert!((second[0].time + 0.2).abs() < 1e-6, "{:?}", second[0]);
    // The windows are the whole groove's, cut.
    let whole = Groove::from_strokes(&imported.strokes, imported.steps as usize);
    assert_eq!(windows[0], whole.window(0, 32));
}
