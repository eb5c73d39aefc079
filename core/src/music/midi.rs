//! MIDI files to 16th-note melodies and drum patterns, and back.
//!
//! One importer serves training, evaluation and the plugin's clip capture. Every track is
//! read, and times go through the file's PPQ or, for SMPTE-timed files, its tempo map.
//! Notes snap to the nearest 16th. A melody is every channel but the drum channels,
//! reduced to one voice that keeps the highest pitch ([`import`]); drums are every drum
//! channel of every track, folded into the nine drum classes ([`import_drums`]). A drum
//! channel is channel 10, or a channel switched to a drum bank (GM2's 120, XG's 127). A
//! lead sheet is read as two parts: the melody, and block chords under it
//! ([`import_lead_sheet`]).

use std::ops::Range;
use std::path::{Path, PathBuf};

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::files::read_capped;
use crate::music::chord::Chord;
use crate::music::drums::{self, Hit};
use crate::music::groove::{Groove, Stroke};
use crate::music::melody::{self, Note, MAX_PITCH, MIN_PITCH, STEPS_PER_BAR, STEPS_PER_QUARTER};
use crate::music::Event;

#[derive(Debug, thiserror::Error)]
pub enum MidiError {
    #[error("not a MIDI file (it starts with neither MThd nor an RMID header)")]
    NotMidi,
    #[error("truncated MIDI file: it ends before the tracks its header declares")]
    Truncated,
    #[error("unreadable MIDI file: {0}")]
    Parse(#[from] midly::Error),
    #[error("the MIDI file has no notes outside the drum channels")]
    NoNotes,
    #[error(
        "the MIDI file has no chord part: a lead sheet has its melody in one track and its \
         chords, as notes sounding together, in a second (or, in a one-track file, on a \
         second channel)"
    )]
    NoChordPart,
    #[error(
        "the MIDI file has no drum hits (on channel 10 or a drum bank) of the nine drum classes"
    )]
    NoDrums,
    #[error("the MIDI file lasts {0} sixteenths, more than the {MAX_STEPS} supported")]
    TooLong(u32),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: Box<MidiError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// Bank-select MSBs that turn a channel into a drum kit: GM2's rhythm bank, XG's drums.
const DRUM_BANKS: [u8; 2] = [120, 127];
const DEFAULT_US_PER_QUARTER: f64 = 500_000.0;
const EXPORT_PPQ: u16 = 480;
/// 65536 bars: hours of music, yet it keeps a corrupt delta time from allocating gigabytes.
pub const MAX_STEPS: u32 = 1 << 20;
/// The tempo of a file, or of a host, that names none: MIDI's own default.
pub const DEFAULT_TEMPO: f64 = 120.0;
/// The largest MIDI file read: a whole song is tens of kilobytes.
pub const MAX_MIDI_BYTES: u64 = 16 << 20;

/// A drum file on the 16th grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedDrums {
    /// Sorted hits; two of one class on one step (a flam) are one.
    pub hits: Vec<Hit>,
    /// Length in steps, rounded up to whole bars.
    pub steps: u32,
    /// The first tempo in the file (120 when it has none).
    pub bpm: f64,
    /// Drum-channel notes of pitches outside the nine classes, dropped.
    pub unmapped: usize,
}

/// A drum file as played: its strokes off the grid, at their velocities.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedGroove {
    /// Sorted by time.
    pub strokes: Vec<Stroke>,
    /// Length in steps, to the bar after the last stroke's nearest step.
    pub steps: u32,
    /// The first tempo in the file (120 when it has none).
    pub bpm: f64,
    /// Drum-channel notes of pitches outside the nine classes, dropped.
    pub unmapped: usize,
}

/// A note in file time, before quantization.
struct RawNote {
    /// The track and channel it was read from.
    track: usize,
    channel: u8,
    pitch: u8,
    velocity: u8,
    start: u64,
    end: u64,
    drum: bool,
}

/// A file's notes in ticks, its tempo map, and the clock that turns ticks into steps.
struct Parsed {
    notes: Vec<RawNote>,
    first_tempo: f64,
    clock: StepClock,
}

fn parse(bytes: &[u8]) -> Result<Parsed, MidiError> {
    let bytes = standard_file(bytes)?;
    precheck(bytes)?;
    let smf = Smf::parse(bytes)?;
    let (notes, tempos) = collect_notes(&smf);
    let first_tempo = tempos.first().map_or(DEFAULT_US_PER_QUARTER, |&(_, us)| us);
    Ok(Parsed {
        notes,
        first_tempo,
        clock: StepClock::new(smf.header.timing, &tempos),
    })
}

/// The melody of a file: every note off the drum channels, as one voice.
pub fn import(bytes: &[u8]) -> Result<ImportedMidi, MidiError> {
    let parsed = parse(bytes)?;
    melody_of(parsed.notes.iter().filter(|n| !n.drum), &parsed)
}

/// `notes` quantized to one voice, the highest.
fn melody_of<'a>(
    notes: impl Iterator<Item = &'a RawNote>,
    parsed: &Parsed,
) -> Result<ImportedMidi, MidiError> {
    let mut quantized: Vec<Note> = notes
        .map(|n| {
            let (start, end) = parsed.clock.span(n);
            Note {
                pitch: fold_into_range(n.pitch),
                start,
                end,
            }
        })
        .collect();
    let notes = skyline(&mut quantized);
    let end = notes.last().ok_or(MidiError::NoNotes)?.end;
    if end > MAX_STEPS {
        return Err(MidiError::TooLong(end));
    }
    let bar = STEPS_PER_BAR as u32;
    Ok(ImportedMidi {
        steps: end.div_ceil(bar) * bar,
        notes,
        bpm: 60e6 / parsed.first_tempo,
    })
}

/// A lead sheet: its melody, and the chord of each of the melody's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadSheet {
    pub melody: ImportedMidi,
    /// One per step of the melody: the chord its chord part's sounding notes name. A
    /// chord holds through the chord part's rests, as a chord symbol holds until the
    /// next; before the first, there is none.
    pub chords: Vec<Option<Chord>>,
}

/// A lead sheet's melody and chords: off the drum channels, the first track with notes
/// is the melody and the second the chords, as notes sounding together; a second part
/// that names no chord is not a chord part. A file of one track is read by channel
/// instead, the lowest channel the melody.
pub fn import_lead_sheet(bytes: &[u8]) -> Result<LeadSheet, MidiError> {
    let parsed = parse(bytes)?;
    let pitched: Vec<&RawNote> = parsed.notes.iter().filter(|n| !n.drum).collect();
    let by_track = pitched.iter().any(|n| n.track != pitched[0].track);
    let part = |n: &RawNote| {
        if by_track {
            n.track
        } else {
            n.channel as usize
        }
    };
    let mut parts: Vec<usize> = pitched.iter().map(|n| part(n)).collect();
    parts.sort_unstable();
    parts.dedup();
    let [melody_part, chord_part, ..] = parts[..] else {
        return Err(if pitched.is_empty() {
            MidiError::NoNotes
        } else {
            MidiError::NoChordPart
        });
    };
    let melody = melody_of(
        pitched.iter().copied().filter(|n| part(n) == melody_part),
        &parsed,
    )?;
    // A sweep over the chord part's notes by start, keeping those still sounding.
    let mut voicing: Vec<(u32, u32, u8)> = pitched
        .iter()
        .filter(|n| part(n) == chord_part)
        .map(|n| {
            let (start, end) = parsed.clock.span(n);
            (start, end, n.pitch)
        })
        .collect();
    voicing.sort_unstable();
    let (mut next, mut sounding, mut held) = (0, Vec::<(u32, u8)>::new(), Vec::new());
    let mut chord = None;
    let mut chords = Vec::with_capacity(melody.steps as usize);
    for step in 0..melody.steps {
        let before = sounding.len();
        sounding.retain(|&(end, _)| end > step);
        let mut changed = sounding.len() != before;
        while let Some(&(start, end, pitch)) = voicing.get(next).filter(|v| v.0 <= step) {
            if end > step && start <= step {
                sounding.push((end, pitch));
                changed = true;
            }
            next += 1;
        }
        if changed && !sounding.is_empty() {
            held.clear();
            held.extend(sounding.iter().map(|&(_, pitch)| pitch));
            chord = Chord::recognise(&held).or(chord);
        }
        chords.push(chord);
    }
    // A second part that never names a chord (a bass line, a counter-melody) is no chord
    // part.
    if chords.iter().all(Option::is_none) {
        return Err(MidiError::NoChordPart);
    }
    Ok(LeadSheet { melody, chords })
}

/// The drums of a file as played: every note on a drum channel, in the class of its
/// pitch, at its own time and velocity.
pub fn import_groove(bytes: &[u8]) -> Result<ImportedGroove, MidiError> {
    let Parsed {
        notes: raw,
        first_tempo,
        clock,
    } = parse(bytes)?;
    let mut unmapped = 0;
    let mut strokes: Vec<Stroke> = Vec::new();
    for n in raw.iter().filter(|n| n.drum) {
        match drums::class_of(n.pitch) {
            Some(class) => strokes.push(Stroke {
                class: class as u8,
                time: clock.steps(n.start),
                velocity: n.velocity,
            }),
            None => unmapped += 1,
        }
    }
    strokes.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.class.cmp(&b.class)));
    let last = strokes
        .iter()
        .map(Stroke::step)
        .max()
        .ok_or(MidiError::NoDrums)?;
    if last >= MAX_STEPS {
        return Err(MidiError::TooLong(last));
    }
    let bar = STEPS_PER_BAR as u32;
    Ok(ImportedGroove {
        steps: (last + 1).div_ceil(bar) * bar,
        strokes,
        bpm: 60e6 / first_tempo,
        unmapped,
    })
}

/// The drums of a file on the 16th grid: [`import_groove`]'s strokes, each on its nearest
/// 16th (as Magenta's quantizer rounds).
pub fn import_drums(bytes: &[u8]) -> Result<ImportedDrums, MidiError> {
    let ImportedGroove {
        strokes,
        steps,
        bpm,
        unmapped,
    } = import_groove(bytes)?;
    let mut hits: Vec<Hit> = strokes
        .iter()
        .map(|s| Hit {
            step: s.step(),
            class: s.class,
        })
        .collect();
    hits.sort_unstable();
    hits.dedup();
    Ok(ImportedDrums {
        hits,
        steps,
        bpm,
        unmapped,
    })
}

/// Reads a file of at most [`MAX_MIDI_BYTES`], if it is a regular file (see
/// [`read_capped`]).
pub fn import_file(path: &Path) -> Result<ImportedMidi, MidiError> {
    import(&read_file(path)?).map_err(|e| MidiError::File {
        path: path.into(),
        source: Box::new(e),
    })
}

/// [`import_lead_sheet`] on a file, read as [`import_file`] reads it.
pub fn import_lead_sheet_file(path: &Path) -> Result<LeadSheet, MidiError> {
    import_lead_sheet(&read_file(path)?).map_err(|e| MidiError::File {
        path: path.into(),
        source: Box::new(e),
    })
}

/// [`import_drums`] on a file, read as [`import_file`] reads it.
pub fn import_drums_file(path: &Path) -> Result<ImportedDrums, MidiError> {
    import_drums(&read_file(path)?).map_err(|e| MidiError::File {
        path: path.into(),
        source: Box::new(e),
    })
}

/// [`import_groove`] on a file, read as [`import_file`] reads it.
pub fn import_groove_file(path: &Path) -> Result<ImportedGroove, MidiError> {
    import_groove(&read_file(path)?).map_err(|e| MidiError::File {
        path: path.into(),
        source: Box::new(e),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, MidiError> {
    read_capped(path, MAX_MIDI_BYTES).map_err(|source| MidiError::Io {
        path: path.into(),
        source,
    })
}

/// The standard MIDI file itself, out of its RIFF wrapper for an RMID file.
fn standard_file(bytes: &[u8]) -> Result<&[u8], MidiError> {
    let smf_at = match bytes.get(..4) {
        Some(b"MThd") => Some(0),
        Some(b"RIFF") if bytes.get(8..12) == Some(b"RMID") => {
            bytes.windows(4).position(|w| w == b"MThd")
        }
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
                return Err(MidiError::Parse(midly::Error::new(
                    &midly::ErrorKind::Invalid("invalid smpte fps"),
                )));
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

/// Every note of every channel, in ticks on one time line and marked as drums or not, and
/// the tempo map `(tick, microseconds per quarter)`.
fn collect_notes(smf: &Smf) -> (Vec<RawNote>, Vec<(u64, f64)>) {
    let mut notes = Vec::new();
    let mut tempos = Vec::new();
    // Channel 10 is the drum channel until a bank select says otherwise, and any channel
    // becomes one on a drum bank. Bank selects apply from where they are read, track by
    // track, as a sequencer replaying the file one track after another would see them.
    let mut drum_channel: [bool; 16] = std::array::from_fn(|ch| ch == drums::GM_CHANNEL as usize);
    // Type 2 tracks are independent patterns: play them one after another.
    let mut offset = 0u64;
    for (track_index, track) in smf.tracks.iter().enumerate() {
        let mut tick = offset;
        // Open notes per (channel, key, velocity, start, drum), oldest first.
        let mut open: Vec<(u8, u8, u8, u64, bool)> = Vec::new();
        for event in track {
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => {
                    tempos.push((tick, us.as_int().max(1) as f64))
                }
                TrackEventKind::Midi { channel, message } => {
                    let ch = channel.as_int();
                    match message {
                        MidiMessage::Controller { controller, value }
                            if controller.as_int() == 0 =>
                        {
                            drum_channel[ch as usize] = DRUM_BANKS.contains(&value.as_int())
                                || (ch == drums::GM_CHANNEL && value.as_int() == 0);
                        }
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => open.push((
                            ch,
                            key.as_int(),
                            vel.as_int(),
                            tick,
                            drum_channel[ch as usize],
                        )),
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            if let Some(i) = open
                                .iter()
                                .position(|&(c, k, ..)| c == ch && k == key.as_int())
                            {
                                let (channel, pitch, velocity, start, drum) = open.remove(i);
                                notes.push(RawNote {
                                    track: track_index,
                                    channel,
                                    pitch,
                                    velocity,
                                    start,
                                    end: tick,
                                    drum,
                                });
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // Notes never released end with their track.
        notes.extend(
            open.into_iter()
                .map(|(channel, pitch, velocity, start, drum)| RawNote {
                    track: track_index,
                    channel,
                    pitch,
                    velocity,
                    start,
                    end: tick,
                    drum,
                }),
        );
        if smf.header.format == Format::Sequential {
            offset = tick;
        }
    }
    tempos.sort_by_key(|&(tick, _)| tick);
    (notes, tempos)
}

/// A note of one track in seconds, for corpora whose annotations are in seconds (POP909's
/// beats and chords).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondsNote {
    pub pitch: u8,
    pub start: f64,
    pub end: f64,
}

/// The notes of the track named `track` (its first track-name event), in seconds through
/// the file's tempo map, sorted by start; `None` when no track has that name.
pub fn track_notes_in_seconds(
    bytes: &[u8],
    track: &str,
) -> Result<Option<Vec<SecondsNote>>, MidiError> {
    let bytes = standard_file(bytes)?;
    precheck(bytes)?;
    let smf = Smf::parse(bytes)?;
    let (_, tempos) = collect_notes(&smf);
    let named = smf.tracks.iter().find(|t| {
        t.iter().any(|e| {
            matches!(e.kind, TrackEventKind::Meta(MetaMessage::TrackName(name))
                if String::from_utf8_lossy(name).trim() == track)
        })
    });
    let Some(events) = named else {
        return Ok(None);
    };
    let seconds = Seconds::new(smf.header.timing, &tempos);
    let (mut tick, mut open, mut notes) = (0u64, Vec::<(u8, u8, u64)>::new(), Vec::new());
    for event in events {
        tick += event.delta.as_int() as u64;
        if let TrackEventKind::Midi { channel, message } = event.kind {
            let ch = channel.as_int();
            match message {
                MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                    open.push((ch, key.as_int(), tick))
                }
                MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                    if let Some(i) = open
                        .iter()
                        .position(|&(c, k, _)| c == ch && k == key.as_int())
                    {
                        let (_, pitch, start) = open.remove(i);
                        notes.push(SecondsNote {
                            pitch,
                            start: seconds.at(start),
                            end: seconds.at(tick),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    notes.extend(open.into_iter().map(|(_, pitch, start)| SecondsNote {
        pitch,
        start: seconds.at(start),
        end: seconds.at(tick),
    }));
    notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(b.pitch.cmp(&a.pitch)));
    Ok(Some(notes))
}

/// Ticks to seconds: `(first tick, seconds elapsed before it, seconds per tick)` per
/// tempo segment, sorted by tick.
struct Seconds(Vec<(u64, f64, f64)>);

impl Seconds {
    fn new(timing: Timing, tempos: &[(u64, f64)]) -> Self {
        match timing {
            Timing::Metrical(ppq) => {
                let ppq = ppq.as_int().max(1) as f64;
                let mut segments = vec![(0, 0.0, DEFAULT_US_PER_QUARTER / 1e6 / ppq)];
                for &(tick, us) in tempos {
                    let (from, elapsed, per_tick) = segments[segments.len() - 1];
                    segments.push((
                        tick,
                        elapsed + (tick - from) as f64 * per_tick,
                        us / 1e6 / ppq,
                    ));
                }
                Self(segments)
            }
            Timing::Timecode(fps, subframes) => {
                let per_tick = 1.0 / (fps.as_f32() as f64 * subframes.max(1) as f64);
                Self(vec![(0, 0.0, per_tick)])
            }
        }
    }

    fn at(&self, tick: u64) -> f64 {
        // The first segment starts at tick 0, so the one holding `tick` exists.
        let (from, elapsed, per_tick) = self.0[self.0.partition_point(|&(t, ..)| t <= tick) - 1];
        elapsed + (tick - from) as f64 * per_tick
    }
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
            Timing::Metrical(ppq) => Self::Metrical {
                ticks_per_quarter: ppq.as_int().max(1) as f64,
            },
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
                let (from, quarters, per_tick) =
                    segments[segments.partition_point(|&(t, ..)| t <= tick) - 1];
                quarters + (tick - from) as f64 * per_tick
            }
        };
        quarters * STEPS_PER_QUARTER as f64
    }

    /// A note's steps, on the nearest 16ths, at least one long. Float to int casts
    /// saturate, so absurd times stay finite until the length check.
    fn span(&self, note: &RawNote) -> (u32, u32) {
        let start = self.steps(note.start).round() as u32;
        let end = (self.steps(note.end).round() as u32).max(start.saturating_add(1));
        (start, end)
    }
}

/// A pitch moved by octaves into the melody encoding's range.
pub fn fold_into_range(pitch: u8) -> u8 {
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
pub fn slices(imported: &ImportedMidi, bars: usize) -> Vec<Vec<Event>> {
    let (events, windows) = melody_windows(imported, bars);
    windows.map(|window| events[window].to_vec()).collect()
}

/// [`slices`] of a lead sheet's melody, each with the chords of its steps; windows
/// without a chord are skipped too.
pub fn lead_sheet_slices(sheet: &LeadSheet, bars: usize) -> Vec<(Vec<Event>, Vec<Option<Chord>>)> {
    let (events, windows) = melody_windows(&sheet.melody, bars);
    windows
        .filter(|window| sheet.chords[window.clone()].iter().any(Option::is_some))
        .map(|window| {
            (
                events[window.clone()].to_vec(),
                sheet.chords[window].to_vec(),
            )
        })
        .collect()
}

/// The melody's events, and the windows of [`slices`].
fn melody_windows(
    imported: &ImportedMidi,
    bars: usize,
) -> (Vec<Event>, impl Iterator<Item = Range<usize>>) {
    let len = bars * STEPS_PER_BAR;
    let total = imported.steps as usize;
    let events = melody::encode(&imported.notes, total);
    let mut sounding = vec![false; total];
    for n in &imported.notes {
        let (start, end) = ((n.start as usize).min(total), (n.end as usize).min(total));
        sounding[start..end.max(start)].fill(true);
    }
    let bar_heard: Vec<bool> = sounding
        .chunks(STEPS_PER_BAR)
        .map(|bar| bar.iter().any(|&s| s))
        .collect();
    let starts = (0..(total + 1).saturating_sub(len)).step_by(STEPS_PER_BAR);
    let windows: Vec<Range<usize>> = starts
        .filter(|&start| {
            let first_bar = start / STEPS_PER_BAR;
            bar_heard[first_bar..first_bar + bars].iter().all(|&h| h)
                && events[start..start + len]
                    .iter()
                    .any(|&e| melody::class_pitch(e).is_some())
        })
        .map(|start| start..start + len)
        .collect();
    (events, windows.into_iter())
}

/// Every window of `bars` bars, one bar apart, as drum events; windows without a hit are
/// skipped.
pub fn drum_slices(imported: &ImportedDrums, bars: usize) -> Vec<Vec<Event>> {
    let events = drums::encode(&imported.hits, imported.steps as usize);
    hit_windows(&events, bars)
        .map(|window| events[window].to_vec())
        .collect()
}

/// Every window of `bars` bars, one bar apart, as played; windows without a hit are
/// skipped. A stroke played early for a window's first step belongs to the window.
pub fn groove_slices(imported: &ImportedGroove, bars: usize) -> Vec<Groove> {
    let groove = Groove::from_strokes(&imported.strokes, imported.steps as usize);
    hit_windows(&groove.events, bars)
        .map(|window| groove.window(window.start, window.len()))
        .collect()
}

/// The windows of `bars` bars, one bar apart, of drum `events` that hold a hit.
fn hit_windows(events: &[Event], bars: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let len = bars * STEPS_PER_BAR;
    (0..(events.len() + 1).saturating_sub(len))
        .step_by(STEPS_PER_BAR)
        .map(move |start| start..start + len)
        .filter(|window| events[window.clone()].iter().any(|&e| e != drums::NO_HITS))
}

/// [`export_with_velocity`] at velocity 100.
pub fn export(notes: &[Note], bpm: f64) -> Vec<u8> {
    export_with_velocity(notes, bpm, 100)
}

/// A type-0 file, PPQ 480, at `bpm`: tempo, 4/4, and the notes on channel 1.
pub fn export_with_velocity(notes: &[Note], bpm: f64, velocity: u8) -> Vec<u8> {
    let voiced: Vec<(Note, u8)> = notes.iter().map(|&n| (n, velocity)).collect();
    export_voiced(&voiced, 0, bpm)
}

/// Drum hits as GM drum notes on channel 10, a 16th long each: `notes[class]` is the
/// note a class plays and `velocity(hit)` its velocity.
pub fn export_drums(
    hits: &[Hit],
    bpm: f64,
    notes: &[u8; drums::NUM_DRUM_CLASSES],
    velocity: impl Fn(&Hit) -> u8,
) -> Vec<u8> {
    let voiced: Vec<(Note, u8)> = hits
        .iter()
        .filter(|h| (h.class as usize) < drums::NUM_DRUM_CLASSES)
        .map(|h| {
            (
                Note {
                    pitch: notes[h.class as usize],
                    start: h.step,
                    end: h.step + 1,
                },
                velocity(h),
            )
        })
        .collect();
    export_voiced(&voiced, drums::GM_CHANNEL, bpm)
}

/// Strokes as played, on channel 10: `notes[class]` is the note a class plays. Each
/// lasts a 16th from its own onset, to the tick at 480 PPQ; a stroke played ahead of the
/// first step starts the file.
pub fn export_groove(
    strokes: &[Stroke],
    bpm: f64,
    notes: &[u8; drums::NUM_DRUM_CLASSES],
) -> Vec<u8> {
    let ticks_per_step = (EXPORT_PPQ as usize / STEPS_PER_QUARTER) as f64;
    let timed: Vec<TimedNote> = strokes
        .iter()
        .filter(|s| (s.class as usize) < drums::NUM_DRUM_CLASSES)
        .map(|s| {
            let start = (s.time * ticks_per_step).round().max(0.0) as u64;
            TimedNote {
                start,
                end: start + ticks_per_step as u64,
                pitch: notes[s.class as usize],
                velocity: s.velocity,
            }
        })
        .collect();
    export_ticks(&timed, drums::GM_CHANNEL, bpm)
}

/// A lead sheet ([`import_lead_sheet`] reads it back): a type-1 file, PPQ 480, at `bpm`,
/// the melody on channel 1 at `velocity` in its first track, and `chords` (one per step)
/// as block chords on channel 2 in its second, each held while it lasts. A chord is voiced
/// close above its bass, the bass in the octave below middle C, so that its inversion
/// reads back; its fifth is left out where the full chord would read as another (Fm7 over
/// Ab is Ab6 with its C, so an Fm7/Ab read without its fifth is written without it).
pub fn export_lead_sheet(
    notes: &[Note],
    velocity: u8,
    chords: &[Option<Chord>],
    bpm: f64,
) -> Vec<u8> {
    let ticks_per_step = (EXPORT_PPQ as usize / STEPS_PER_QUARTER) as u64;
    let melody: Vec<TimedNote> = notes
        .iter()
        .map(|n| TimedNote {
            start: n.start as u64 * ticks_per_step,
            end: n.end as u64 * ticks_per_step,
            pitch: n.pitch,
            velocity,
        })
        .collect();
    let mut block = Vec::new();
    let mut step = 0;
    while step < chords.len() {
        let end = step
            + chords[step..]
                .iter()
                .take_while(|&&c| c == chords[step])
                .count();
        if let Some(chord) = chords[step] {
            for pitch in voicing(chord) {
                block.push(TimedNote {
                    start: step as u64 * ticks_per_step,
                    end: end as u64 * ticks_per_step,
                    pitch,
                    velocity: 80,
                });
            }
        }
        step = end;
    }
    write_tracks(&[(&melody, 0), (&block, 1)], bpm)
}

/// The pitches [`export_lead_sheet`] writes for `chord`: its bass in the octave below
/// middle C and its other tones close above, all of them unless only the voicing without
/// its fifth reads back as `chord`. [`Chord::recognise`] reads only the pitch classes and the bass,
/// and names every chord it returns from its full set or from that set less its fifth, so
/// one of the two reads back.
fn voicing(chord: Chord) -> Vec<u8> {
    let bass = 48 + chord.bass;
    let fifth = (chord.root + 7) % 12;
    let with = |drop_fifth: bool| -> Vec<u8> {
        let tones = (0..12u8)
            .filter(|&pc| chord.has_tone(pc) && pc != chord.bass && !(drop_fifth && pc == fifth))
            .map(|pc| bass + (pc + 12 - chord.bass) % 12);
        std::iter::once(bass).chain(tones).collect()
    };
    let full = with(false);
    let without_fifth = with(true);
    if Chord::recognise(&full) != Some(chord) && Chord::recognise(&without_fifth) == Some(chord) {
        without_fifth
    } else {
        full
    }
}

/// A note in export ticks.
struct TimedNote {
    start: u64,
    end: u64,
    pitch: u8,
    velocity: u8,
}

/// A type-0 file, PPQ 480, at `bpm`: tempo, 4/4, and each note at its own velocity on
/// `channel` (0-based).
fn export_voiced(notes: &[(Note, u8)], channel: u8, bpm: f64) -> Vec<u8> {
    let ticks_per_step = (EXPORT_PPQ as usize / STEPS_PER_QUARTER) as u64;
    let timed: Vec<TimedNote> = notes
        .iter()
        .map(|&(n, velocity)| TimedNote {
            start: n.start as u64 * ticks_per_step,
            end: n.end as u64 * ticks_per_step,
            pitch: n.pitch,
            velocity,
        })
        .collect();
    export_ticks(&timed, channel, bpm)
}

fn export_ticks(notes: &[TimedNote], channel: u8, bpm: f64) -> Vec<u8> {
    write_tracks(&[(notes, channel)], bpm)
}

/// A file of one track per part (`notes`, `channel`, 0-based): type 0 for one, type 1
/// for more; the tempo and 4/4 open the first.
fn write_tracks(parts: &[(&[TimedNote], u8)], bpm: f64) -> Vec<u8> {
    let tracks = parts
        .iter()
        .enumerate()
        .map(|(i, &(notes, channel))| track_of(notes, channel, (i == 0).then_some(bpm)))
        .collect();
    let format = if parts.len() == 1 {
        Format::SingleTrack
    } else {
        Format::Parallel
    };
    let smf = Smf {
        header: Header::new(format, Timing::Metrical(u15::new(EXPORT_PPQ))),
        tracks,
    };
    let mut out = Vec::new();
    smf.write_std(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// `notes` on `channel` as a track, opened by the tempo and 4/4 when `bpm` is given.
fn track_of(notes: &[TimedNote], channel: u8, bpm: Option<f64>) -> Vec<TrackEvent<'static>> {
    // (tick, is_on, pitch, velocity): offs sort before ons at the same tick, so repeated
    // notes retrigger.
    let mut timed: Vec<(u64, bool, u8, u8)> = notes
        .iter()
        .filter(|n| n.end > n.start)
        .flat_map(|n| {
            [
                (n.start, true, n.pitch, n.velocity),
                (n.end, false, n.pitch, 0),
            ]
        })
        .collect();
    timed.sort();
    let mut track: Vec<TrackEvent> = Vec::new();
    if let Some(bpm) = bpm {
        // A tempo is a 24-bit count of microseconds; `max` also turns NaN into something
        // playable.
        let us_per_quarter = (60e6 / bpm).round().max(1.0).min(0xFF_FFFF as f64) as u32;
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us_per_quarter))),
        });
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8)),
        });
    }
    let mut now = 0u64;
    for (tick, on, pitch, velocity) in timed {
        let message = if on {
            MidiMessage::NoteOn {
                key: u7::new(pitch.min(127)),
                vel: u7::new(velocity.clamp(1, 127)),
            }
        } else {
            MidiMessage::NoteOff {
                key: u7::new(pitch.min(127)),
                vel: u7::new(0),
            }
        };
        track.push(TrackEvent {
            delta: u28::new((tick - now) as u32),
            kind: TrackEventKind::Midi {
                channel: u4::new(channel.min(15)),
                message,
            },
        });
        now = tick;
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    track
}

pub fn write_file(path: &Path, notes: &[Note], bpm: f64) -> Result<(), MidiError> {
    std::fs::write(path, export(notes, bpm)).map_err(|source| MidiError::Io {
        path: path.into(),
        source,
    })
}
