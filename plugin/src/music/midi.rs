//! MIDI files to monophonic 16th-note melodies and back.
//!
//! One importer serves training, evaluation and the plugin's clip capture: every track and
//! program is read (the percussion channel excepted), times go through the file's PPQ or,
//! for SMPTE-timed files, its tempo map, notes snap to the 16th grid, and overlapping notes
//! reduce to one voice that keeps the highest pitch.

use std::path::{Path, PathBuf};

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::files::read_capped;
use crate::music::melody::{self, Note, MAX_PITCH, MIN_PITCH, STEPS_PER_BAR, STEPS_PER_QUARTER};

#[derive(Debug, thiserror::Error)]
pub enum MidiError {
    #[error("not a MIDI file (it starts with neither MThd nor an RMID header)")]
    NotMidi,
    #[error("truncated MIDI file: it ends before the tracks its header declares")]
    Truncated,
    #[error("unreadable MIDI file: {0}")]
    Parse(#[from] midly::Error),
    #[error("the MIDI file has no notes outside the percussion channel")]
    NoNotes,
    #[error("the MIDI file lasts {0} sixteenths, more than the {MAX_STEPS} supported")]
    TooLong(u32),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: Box<MidiError> },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A file reduced to one voice on the 16th grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedMidi {
    /// Sorted, non-overlapping notes.
    pub notes: Vec<Note>,
    /// Length in steps, rounded up to whole bars.
    pub steps: u32,
    /// The first tempo in the file (120 when it has none).
    pub bpm: f64,
}

const PERCUSSION_CHANNEL: u8 = 9;
const DEFAULT_US_PER_QUARTER: f64 = 500_000.0;
const EXPORT_PPQ: u16 = 480;
/// 65536 bars: hours of music, yet it keeps a corrupt delta time from allocating gigabytes.
pub const MAX_STEPS: u32 = 1 << 20;
/// The largest MIDI file read: a whole song is tens of kilobytes.
pub const MAX_MIDI_BYTES: u64 = 16 << 20;

/// A note in file time, before quantization.
struct RawNote {
    pitch: u8,
    start: u64,
    end: u64,
}

pub fn import(bytes: &[u8]) -> Result<ImportedMidi, MidiError> {
    let bytes = standard_file(bytes)?;
    precheck(bytes)?;
    let smf = Smf::parse(bytes)?;
    let (raw, tempos) = collect_notes(&smf);
    let first_tempo = tempos.first().map_or(DEFAULT_US_PER_QUARTER, |&(_, us)| us);
    let clock = StepClock::new(smf.header.timing, &tempos);
    // Float to int casts saturate, so absurd times stay finite until the length check.
    let mut quantized: Vec<Note> = raw
        .iter()
        .map(|n| {
            let start = clock.steps(n.start).round() as u32;
            let end = (clock.steps(n.end).round() as u32).max(start.saturating_add(1));
            Note { pitch: fold_into_range(n.pitch), start, end }
        })
        .collect();
    let notes = skyline(&mut quantized);
    let end = notes.last().ok_or(MidiError::NoNotes)?.end;
    if end > MAX_STEPS {
        return Err(MidiError::TooLong(end));
    }
    let bar = STEPS_PER_BAR as u32;
    Ok(ImportedMidi { steps: end.div_ceil(bar) * bar, notes, bpm: 60e6 / first_tempo })
}

/// Reads a file of at most [`MAX_MIDI_BYTES`], if it is a regular file (see
/// [`read_capped`]).
pub fn import_file(path: &Path) -> Result<ImportedMidi, MidiError> {
    let bytes = read_capped(path, MAX_MIDI_BYTES).map_err(|source| MidiError::Io { path: path.into(), source })?;
    import(&bytes).map_err(|e| MidiError::File { path: path.into(), source: Box::new(e) })
}

/// The standard MIDI file itself, out of its RIFF wrapper for an RMID file.
fn standard_file(bytes: &[u8]) -> Result<&[u8], MidiError> {
    let smf_at = match bytes.get(..4) {
        Some(b"MThd") => Some(0),
        Some(b"RIFF") if bytes.get(8..12) == Some(b"RMID") => bytes.windows(4).position(|w| w == b"MThd"),
        _ => None,
    };
    smf_at.map(|at| &bytes[at..]).ok_or(MidiError::NotMidi)
}

/// What midly lets through but should not: a cut-off file, which it reads leniently,
/// dropping whatever is missing without a word (Magenta's reader, mido, refuses one: every
/// declared track must be whole), and an SMPTE rate of -128, which it negates as an i8
/// (an overflow, so a panic in debug builds) in any header chunk: midly reads every chunk
/// to the end of the file, past the declared tracks, and parses each `MThd` it meets.
fn precheck(smf: &[u8]) -> Result<(), MidiError> {
    let Some(&[hi, lo]) = smf.get(10..12) else {
        return Err(MidiError::Truncated);
    };
    let (declared, mut tracks, mut rest) = (u16::from_be_bytes([hi, lo]), 0u16, smf);
    while let Some((head, body)) = rest.split_first_chunk::<8>() {
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        // A cut-off chunk runs to the end of the file, as midly reads it.
        let (data, after) = body.split_at(len.min(body.len()));
        match &head[..4] {
            b"MThd" if data.get(4) == Some(&0x80) => {
                return Err(MidiError::Parse(midly::Error::new(&midly::ErrorKind::Invalid("invalid smpte fps"))));
            }
            b"MTrk" if tracks < declared => {
                if data.len() < len {
                    return Err(MidiError::Truncated);
                }
                tracks += 1;
            }
            // Chunks of unknown kinds are skipped, as midly does.
            _ => {}
        }
        rest = after;
    }
    if tracks < declared {
        return Err(MidiError::Truncated);
    }
    Ok(())
}

/// Every note of every non-percussion channel, in ticks on one time line, and the tempo
/// map `(tick, microseconds per quarter)`.
fn collect_notes(smf: &Smf) -> (Vec<RawNote>, Vec<(u64, f64)>) {
    let mut notes = Vec::new();
    let mut tempos = Vec::new();
    // Type 2 tracks are independent patterns: play them one after another.
    let mut offset = 0u64;
    for track in &smf.tracks {
        let mut tick = offset;
        // Open notes per (channel, key), oldest first.
        let mut open: Vec<(u8, u8, u64)> = Vec::new();
        for event in track {
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => tempos.push((tick, us.as_int().max(1) as f64)),
                TrackEventKind::Midi { channel, message } if channel.as_int() != PERCUSSION_CHANNEL => {
                    let ch = channel.as_int();
                    match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => open.push((ch, key.as_int(), tick)),
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            if let Some(i) = open.iter().position(|&(c, k, _)| c == ch && k == key.as_int()) {
                                let (_, pitch, start) = open.remove(i);
                                notes.push(RawNote { pitch, start, end: tick });
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // Notes never released end with their track.
        notes.extend(open.into_iter().map(|(_, pitch, start)| RawNote { pitch, start, end: tick }));
        if smf.header.format == Format::Sequential {
            offset = tick;
        }
    }
    tempos.sort_by_key(|&(tick, _)| tick);
    (notes, tempos)
}

/// Ticks to (fractional) 16th steps.
enum StepClock {
    /// Musical time: the grid follows the beat whatever the tempo.
    Metrical { ticks_per_quarter: f64 },
    /// Real time: seconds become beats through the tempo map, one segment per tempo:
    /// `(first tick, quarters elapsed before it, quarters per tick)`, sorted by tick.
    Timecode(Vec<(u64, f64, f64)>),
}

impl StepClock {
    fn new(timing: Timing, tempos: &[(u64, f64)]) -> Self {
        match timing {
            Timing::Metrical(ppq) => Self::Metrical { ticks_per_quarter: ppq.as_int().max(1) as f64 },
            Timing::Timecode(fps, subframes) => {
                let ticks_per_second = fps.as_f32() as f64 * subframes.max(1) as f64;
                let rate = |us_per_quarter: f64| 1e6 / (us_per_quarter * ticks_per_second);
                let mut segments = vec![(0, 0.0, rate(DEFAULT_US_PER_QUARTER))];
                for &(tick, us) in tempos {
                    let (from, quarters, per_tick) = segments[segments.len() - 1];
                    segments.push((tick, quarters + (tick - from) as f64 * per_tick, rate(us)));
                }
                Self::Timecode(segments)
            }
        }
    }

    fn steps(&self, tick: u64) -> f64 {
        let quarters = match self {
            Self::Metrical { ticks_per_quarter } => tick as f64 / ticks_per_quarter,
            Self::Timecode(segments) => {
                // The first segment starts at tick 0, so the one holding `tick` exists.
                let (from, quarters, per_tick) = segments[segments.partition_point(|&(t, ..)| t <= tick) - 1];
                quarters + (tick - from) as f64 * per_tick
            }
        };
        quarters * STEPS_PER_QUARTER as f64
    }
}

fn fold_into_range(pitch: u8) -> u8 {
    let mut p = pitch;
    while p < MIN_PITCH {
        p += 12;
    }
    while p > MAX_PITCH {
        p -= 12;
    }
    p
}

/// One voice that keeps the highest pitch. A note starts only at its own onset: a lower
/// note that begins under a sounding higher one is dropped, and a higher onset cuts
/// whatever sounds. Where onsets share a step the highest wins.
fn skyline(notes: &mut [Note]) -> Vec<Note> {
    notes.sort_by(|a, b| a.start.cmp(&b.start).then(b.pitch.cmp(&a.pitch)));
    let mut voice: Vec<Note> = Vec::new();
    for &note in notes.iter() {
        match voice.last_mut() {
            Some(last) if last.start == note.start => {}
            Some(last) if last.end > note.start && last.pitch > note.pitch => {}
            Some(last) => {
                last.end = last.end.min(note.start);
                voice.push(note);
            }
            None => voice.push(note),
        }
    }
    voice
}

/// Every window of `bars` bars, one bar apart, as 90-class events. As with Magenta's
/// `gap_bars = 1`, windows holding a whole silent bar, or no onset at all, are skipped.
pub fn slices(imported: &ImportedMidi, bars: usize) -> Vec<Vec<u8>> {
    let len = bars * STEPS_PER_BAR;
    let total = imported.steps as usize;
    if total < len {
        return Vec::new();
    }
    let events = melody::encode(&imported.notes, total);
    let mut sounding = vec![false; total];
    for n in &imported.notes {
        let (start, end) = ((n.start as usize).min(total), (n.end as usize).min(total));
        sounding[start..end.max(start)].fill(true);
    }
    let bar_heard: Vec<bool> = sounding.chunks(STEPS_PER_BAR).map(|bar| bar.iter().any(|&s| s)).collect();
    (0..=total - len)
        .step_by(STEPS_PER_BAR)
        .filter(|&start| {
            let first_bar = start / STEPS_PER_BAR;
            bar_heard[first_bar..first_bar + bars].iter().all(|&h| h)
                && events[start..start + len].iter().any(|&e| melody::class_pitch(e).is_some())
        })
        .map(|start| events[start..start + len].to_vec())
        .collect()
}

/// [`export_with_velocity`] at velocity 100.
pub fn export(notes: &[Note], bpm: f64) -> Vec<u8> {
    export_with_velocity(notes, bpm, 100)
}

/// A type-0 file, PPQ 480, at `bpm`: tempo, 4/4, and the notes on channel 1.
pub fn export_with_velocity(notes: &[Note], bpm: f64, velocity: u8) -> Vec<u8> {
    let ticks_per_step = (EXPORT_PPQ as usize / STEPS_PER_QUARTER) as u64;
    // (tick, is_on, pitch): offs sort before ons at the same tick, so repeated notes retrigger.
    let mut timed: Vec<(u64, bool, u8)> = notes
        .iter()
        .filter(|n| n.end > n.start)
        .flat_map(|n| [(n.start as u64 * ticks_per_step, true, n.pitch), (n.end as u64 * ticks_per_step, false, n.pitch)])
        .collect();
    timed.sort();
    // A tempo is a 24-bit count of microseconds; `max` also turns NaN into something playable.
    let us_per_quarter = (60e6 / bpm).round().max(1.0).min(0xFF_FFFF as f64) as u32;
    let mut track: Vec<TrackEvent> = vec![
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us_per_quarter))) },
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8)) },
    ];
    let mut now = 0u64;
    for (tick, on, pitch) in timed {
        let message = if on {
            MidiMessage::NoteOn { key: u7::new(pitch.min(127)), vel: u7::new(velocity.clamp(1, 127)) }
        } else {
            MidiMessage::NoteOff { key: u7::new(pitch.min(127)), vel: u7::new(0) }
        };
        track.push(TrackEvent { delta: u28::new((tick - now) as u32), kind: TrackEventKind::Midi { channel: u4::new(0), message } });
        now = tick;
    }
    track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    let smf = Smf { header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(EXPORT_PPQ))), tracks: vec![track] };
    let mut out = Vec::new();
    smf.write_std(&mut out).expect("writing to a Vec cannot fail");
    out
}

pub fn write_file(path: &Path, notes: &[Note], bpm: f64) -> Result<(), MidiError> {
    std::fs::write(path, export(notes, bpm)).map_err(|source| MidiError::Io { path: path.into(), source })
}
