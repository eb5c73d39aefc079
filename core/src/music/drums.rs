//! The drum encoding of MusicVAE's `DrumsConverter`: nine drum classes on the 16th grid,
//! one of 2^9 = 512 combinations per step.
//!
//! An event's bit `c` is set when class `c` ([`CLASSES`]) is hit on that step; 0 is a
//! step without hits. The encoder reads the same steps as a roll of ten inputs, the nine
//! bits and a "no hits" bit ([`roll`]). Velocity and micro-timing are not modelled.

use super::Event;

/// The drum classes, in Magenta's bit order.
pub const NUM_DRUM_CLASSES: usize = 9;
/// Every combination of classes.
pub const NUM_CLASSES: usize = 1 << NUM_DRUM_CLASSES;
/// The encoder's input per step: the classes and a "no hits" bit.
pub const ROLL_DEPTH: usize = NUM_DRUM_CLASSES + 1;
pub const NO_HITS: Event = 0;

/// One drum class: a name, and the MIDI pitches it gathers. The first pitch is the one
/// played back; the lists are Magenta's `DEFAULT_DRUM_TYPE_PITCHES`
/// (`drums_encoder_decoder.py`), which fold GM1, GM2 and the Roland TD-11's extra pitches
/// (hi-hat edges 22 and 26) into a standard kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrumClass {
    pub name: &'static str,
    pub short: &'static str,
    pub pitches: &'static [u8],
}

pub const CLASSES: [DrumClass; NUM_DRUM_CLASSES] = [
    DrumClass {
        name: "Kick",
        short: "BD",
        pitches: &[36, 35],
    },
    DrumClass {
        name: "Snare",
        short: "SN",
        pitches: &[38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85],
    },
    DrumClass {
        name: "Closed Hi-Hat",
        short: "CH",
        pitches: &[42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22],
    },
    DrumClass {
        name: "Open Hi-Hat",
        short: "OH",
        pitches: &[46, 67, 72, 74, 79, 81, 26],
    },
    DrumClass {
        name: "Low Tom",
        short: "LT",
        pitches: &[45, 29, 41, 43, 61, 64, 84],
    },
    DrumClass {
        name: "Mid Tom",
        short: "MT",
        pitches: &[48, 47, 60, 63, 77, 86, 87],
    },
    DrumClass {
        name: "High Tom",
        short: "HT",
        pitches: &[50, 30, 62, 76, 83],
    },
    DrumClass {
        name: "Crash",
        short: "CR",
        pitches: &[49, 52, 55, 57, 58],
    },
    DrumClass {
        name: "Ride",
        short: "RD",
        pitches: &[51, 53, 59, 82],
    },
];

/// Indices in [`CLASSES`] of the two parts a drummer moves a time-keeping figure between.
pub const CLOSED_HAT: usize = 2;
pub const RIDE: usize = 8;
/// Indices in [`CLASSES`] of the low, mid and high toms.
pub const TOMS: [usize; 3] = [4, 5, 6];
/// Indices in [`CLASSES`] of the hi-hats, crash and ride: the hands' time-keeping.
pub const CYMBALS: [usize; 4] = [2, 3, 7, 8];

/// The GM note each class plays by default.
pub const GM_NOTES: [u8; NUM_DRUM_CLASSES] = {
    let mut notes = [0; NUM_DRUM_CLASSES];
    let mut c = 0;
    while c < NUM_DRUM_CLASSES {
        notes[c] = CLASSES[c].pitches[0];
        c += 1;
    }
    notes
};

/// The General MIDI percussion channel, 10 (9 counted from 0).
pub const GM_CHANNEL: u8 = 9;

/// The class a MIDI pitch belongs to, `None` for pitches outside every class.
pub fn class_of(pitch: u8) -> Option<usize> {
    CLASSES.iter().position(|c| c.pitches.contains(&pitch))
}

/// One drum hit on the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub step: u32,
    pub class: u8,
}

/// Each class's velocity on the beat, before the groove issue models velocity: kick and
/// snare lead, hats sit under them, cymbals and toms between.
pub const BASE_VELOCITY: [u8; NUM_DRUM_CLASSES] = [112, 108, 84, 92, 100, 100, 100, 104, 88];

/// The fixed accent pattern a drum phrase is played with: a class's base velocity on the
/// beat, a little less on the off-beat 8th, less again on the 16ths between.
pub fn accent(hit: &Hit) -> u8 {
    let base = BASE_VELOCITY
        .get(hit.class as usize)
        .copied()
        .unwrap_or(100);
    let drop = match hit.step % 4 {
        0 => 0,
        2 => 10,
        _ => 22,
    };
    base.saturating_sub(drop).max(1)
}

/// The classes hit in `event`, in class order.
pub fn classes_in(event: Event) -> impl Iterator<Item = usize> {
    (0..NUM_DRUM_CLASSES).filter(move |&c| event >> c & 1 == 1)
}

/// The step that hits `classes`: [`classes_in`] the other way round.
pub fn event_of(classes: impl IntoIterator<Item = usize>) -> Event {
    classes.into_iter().fold(NO_HITS, |acc, c| acc | 1 << c)
}

/// Encodes hits into `steps` events; hits of one class on one step (a flam, a double)
/// are one hit, and hits past `steps` are dropped.
pub fn encode(hits: &[Hit], steps: usize) -> Vec<Event> {
    let mut events = vec![NO_HITS; steps];
    for hit in hits {
        if let Some(event) = events.get_mut(hit.step as usize) {
            if (hit.class as usize) < NUM_DRUM_CLASSES {
                *event |= 1 << hit.class;
            }
        }
    }
    events
}

/// The hits of `events`, sorted by step then class.
pub fn decode(events: &[Event]) -> Vec<Hit> {
    events
        .iter()
        .enumerate()
        .flat_map(|(step, &event)| {
            classes_in(event).map(move |class| Hit {
                step: step as u32,
                class: class as u8,
            })
        })
        .collect()
}

/// The encoder's input for one step: [`ROLL_DEPTH`] values, the class bits then the
/// "no hits" bit (Magenta's `roll_input`).
pub fn roll(event: Event) -> [f32; ROLL_DEPTH] {
    let mut roll = [0.0; ROLL_DEPTH];
    for c in classes_in(event) {
        roll[c] = 1.0;
    }
    roll[NUM_DRUM_CLASSES] = if event == NO_HITS { 1.0 } else { 0.0 };
    roll
}

/// A text drum grid, one row per class that is hit (`x` a hit), bar lines every 16 steps.
pub fn grid(events: &[Event]) -> String {
    let used: Vec<usize> = (0..NUM_DRUM_CLASSES)
        .filter(|&c| events.iter().any(|&e| e >> c & 1 == 1))
        .collect();
    if used.is_empty() {
        return "(silence)\n".to_string();
    }
    let mut out = String::new();
    for c in used.into_iter().rev() {
        out.push_str(&format!("{:>4} |", CLASSES[c].short));
        for (step, &event) in events.iter().enumerate() {
            out.push(if event >> c & 1 == 1 { 'x' } else { '.' });
            if (step + 1) % super::melody::STEPS_PER_BAR == 0 {
                out.push('|');
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pitch_has_at_most_one_class() {
        for pitch in 0..=127u8 {
            let owners = CLASSES
                .iter()
                .filter(|c| c.pitches.contains(&pitch))
                .count();
            assert!(owners <= 1, "pitch {pitch} is in {owners} classes");
        }
        assert_eq!(GM_NOTES, [36, 38, 42, 46, 45, 48, 50, 49, 51]);
        // The TD-11's hi-hat edges, as in the Groove MIDI Dataset.
        assert_eq!((class_of(22), class_of(26)), (Some(2), Some(3)));
        assert_eq!(class_of(60), Some(5));
        assert_eq!(class_of(100), None);
    }

    #[test]
    fn encode_decode_round_trip() {
        let hits = vec![
            Hit { step: 0, class: 0 },
            Hit { step: 0, class: 2 },
            Hit { step: 4, class: 1 },
            Hit { step: 4, class: 2 },
            Hit { step: 31, class: 8 },
        ];
        let events = encode(&hits, 32);
        assert_eq!(events[0], 0b101);
        assert_eq!(events[4], 0b110);
        assert_eq!(events[31], 1 << 8);
        assert_eq!(decode(&events), hits);
        // Every event round-trips through its hits.
        for event in 0..NUM_CLASSES as Event {
            assert_eq!(encode(&decode(&[event]), 1), vec![event]);
        }
    }

    #[test]
    fn a_flam_is_one_hit_and_late_hits_are_dropped() {
        let events = encode(
            &[
                Hit { step: 2, class: 1 },
                Hit { step: 2, class: 1 },
                Hit { step: 9, class: 0 },
            ],
            8,
        );
        assert_eq!(events, vec![0, 0, 2, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn the_roll_has_a_no_hits_bit() {
        assert_eq!(roll(NO_HITS), [0., 0., 0., 0., 0., 0., 0., 0., 0., 1.]);
        assert_eq!(
            roll(0b1_0000_0011),
            [1., 1., 0., 0., 0., 0., 0., 0., 1., 0.]
        );
    }
}
