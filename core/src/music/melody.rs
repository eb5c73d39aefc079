//! The 90-class monophonic melody encoding of MusicVAE's `MelodyConverter`.
//!
//! One event per 16th-note step: [`NO_EVENT`] keeps the previous note sounding (or the
//! rest resting), [`NOTE_OFF`] ends it, and classes 2..=89 start MIDI pitch 21..=108.

use serde::{Deserialize, Serialize};

use super::Event;

pub const MIN_PITCH: u8 = 21;
pub const MAX_PITCH: u8 = 108;
pub const NUM_CLASSES: usize = 90;
pub const NO_EVENT: Event = 0;
pub const NOTE_OFF: Event = 1;
/// MusicVAE's grid: 4/4 bars of 16th notes.
pub const STEPS_PER_BAR: usize = 16;
pub const STEPS_PER_QUARTER: usize = 4;

/// A note on the 16th grid; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub pitch: u8,
    pub start: u32,
    pub end: u32,
}

pub fn note_on_class(pitch: u8) -> Event {
    debug_assert!((MIN_PITCH..=MAX_PITCH).contains(&pitch));
    (pitch - MIN_PITCH) as Event + 2
}

pub fn class_pitch(class: Event) -> Option<u8> {
    (class >= 2 && (class as usize) < NUM_CLASSES).then(|| (class - 2) as u8 + MIN_PITCH)
}

/// Encodes monophonic notes into `steps` events. Notes are expected sorted and not
/// overlapping (what [`crate::music::midi`] produces); a later onset cuts an earlier note, and
/// anything past `steps` is dropped.
pub fn encode(notes: &[Note], steps: usize) -> Vec<Event> {
    let mut events = vec![NO_EVENT; steps];
    for (i, note) in notes.iter().enumerate() {
        let start = note.start as usize;
        if start >= steps || note.end <= note.start {
            continue;
        }
        events[start] = note_on_class(note.pitch.clamp(MIN_PITCH, MAX_PITCH));
        let next_start = notes.get(i + 1).map_or(usize::MAX, |n| n.start as usize);
        let end = note.end as usize;
        if end < steps && end < next_start {
            events[end] = NOTE_OFF;
        }
    }
    events
}

/// Decodes events into notes; a note still sounding at the end stops at `events.len()`.
pub fn decode(events: &[Event]) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut current: Option<(u8, u32)> = None;
    for (step, &event) in events.iter().enumerate() {
        let step = step as u32;
        if event == NO_EVENT {
            continue;
        }
        if let Some((pitch, start)) = current.take() {
            notes.push(Note {
                pitch,
                start,
                end: step,
            });
        }
        current = class_pitch(event).map(|pitch| (pitch, step));
    }
    if let Some((pitch, start)) = current {
        notes.push(Note {
            pitch,
            start,
            end: events.len() as u32,
        });
    }
    notes
}

/// Transposes an event sequence, or `None` when a note would leave 21..=108.
pub fn transpose(events: &[Event], semitones: i32) -> Option<Vec<Event>> {
    events
        .iter()
        .map(|&e| match class_pitch(e) {
            Some(p) => {
                let q = p as i32 + semitones;
                ((MIN_PITCH as i32)..=(MAX_PITCH as i32))
                    .contains(&q)
                    .then(|| note_on_class(q as u8))
            }
            None => Some(e),
        })
        .collect()
}

/// A compact text piano roll, one row per pitch from high to low, `#` for an onset and
/// `=` while it sounds; bar lines every 16 steps.
pub fn piano_roll(events: &[Event]) -> String {
    let notes = decode(events);
    let Some(lo) = notes.iter().map(|n| n.pitch).min() else {
        return "(silence)\n".to_string();
    };
    let hi = notes.iter().map(|n| n.pitch).max().unwrap();
    let mut out = String::new();
    for pitch in (lo..=hi).rev() {
        out.push_str(&format!("{:>4} |", pitch_name(pitch)));
        for step in 0..events.len() as u32 {
            let c = match notes
                .iter()
                .find(|n| n.pitch == pitch && n.start <= step && step < n.end)
            {
                Some(n) if n.start == step => '#',
                Some(_) => '=',
                None => '.',
            };
            out.push(c);
            if (step as usize + 1).is_multiple_of(STEPS_PER_BAR) {
                out.push('|');
            }
        }
        out.push('\n');
    }
    out
}

pub fn pitch_name(pitch: u8) -> String {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    format!("{}{}", NAMES[pitch as usize % 12], pitch as i32 / 12 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let notes = vec![
            Note {
                pitch: 60,
                start: 0,
                end: 4,
            },
            Note {
                pitch: 62,
                start: 4,
                end: 6,
            },
            Note {
                pitch: 64,
                start: 8,
                end: 16,
            },
        ];
        let events = encode(&notes, 16);
        assert_eq!(events[0], note_on_class(60));
        assert_eq!(events[4], note_on_class(62));
        assert_eq!(events[6], NOTE_OFF);
        assert_eq!(decode(&events), notes);
    }

    #[test]
    fn transpose_refuses_to_leave_the_range() {
        let events = encode(
            &[Note {
                pitch: 106,
                start: 0,
                end: 2,
            }],
            4,
        );
        assert!(transpose(&events, 3).is_none());
        assert_eq!(class_pitch(transpose(&events, -2).unwrap()[0]), Some(104));
    }
}
