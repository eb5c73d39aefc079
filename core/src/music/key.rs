//! Keys and scales: a phrase's own key, estimated from its pitch classes (Krumhansl and
//! Kessler's profiles), and fitting a phrase into the key and scale a song is in.
//!
//! A phrase is fitted in two moves, the larger first: the whole phrase is transposed by
//! the smallest interval that brings its tonic to the key's, so that it keeps its shape
//! and its mode; then each note still outside the scale moves to a neighbouring degree,
//! chosen along the line's direction so that repeated notes stay repeated and steps stay
//! steps.

use serde::{Deserialize, Serialize};

use super::melody::{Note, MAX_PITCH, MIN_PITCH};

/// Pitch-class names, with the flats and sharps a key signature most often uses.
pub const NOTE_NAMES: [&str; 12] = [
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];

/// A note name's pitch class and what follows it: `("F#m7", ..)` gives `(6, "m7")`.
pub fn note_name(text: &str) -> Option<(u8, &str)> {
    let mut chars = text.char_indices();
    let (_, letter) = chars.next()?;
    let natural: i32 = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let mut pc = natural;
    let mut end = letter.len_utf8();
    for (i, c) in chars {
        match c {
            '#' | '♯' => pc += 1,
            'b' | '♭' => pc -= 1,
            _ => break,
        }
        end = i + c.len_utf8();
    }
    Some((pc.rem_euclid(12) as u8, &text[end..]))
}

/// The pitch class a note name (`C`, `F#`, `Bb`) names.
pub fn pitch_class(name: &str) -> Option<u8> {
    match note_name(name.trim())? {
        (pc, "") => Some(pc),
        _ => None,
    }
}

/// Krumhansl and Kessler's (1982) probe-tone ratings of the pitch classes above a major
/// and a minor tonic.
const MAJOR_PROFILE: [f64; 12] = [
    6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
];
const MINOR_PROFILE: [f64; 12] = [
    6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Major,
    Minor,
}

/// A tonic (pitch class, 0 = C) and a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub tonic: u8,
    pub mode: Mode,
}

impl Key {
    /// "A minor", "Eb major".
    pub fn name(self) -> String {
        let mode = match self.mode {
            Mode::Major => "major",
            Mode::Minor => "minor",
        };
        format!("{} {mode}", NOTE_NAMES[self.tonic as usize % 12])
    }

    /// The key whose profile correlates best with the notes' pitch classes, each weighted
    /// by its duration. `None` for no notes.
    pub fn estimate(notes: &[Note]) -> Option<Self> {
        let mut weights = [0f64; 12];
        for n in notes {
            weights[n.pitch as usize % 12] += n.end.saturating_sub(n.start).max(1) as f64;
        }
        if weights.iter().all(|&w| w == 0.0) {
            return None;
        }
        (0..12u8)
            .flat_map(|tonic| [Mode::Major, Mode::Minor].map(|mode| Key { tonic, mode }))
            .map(|key| (key, key.fit(&weights)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(key, _)| key)
    }

    /// Pearson correlation of `weights` with this key's profile.
    fn fit(self, weights: &[f64; 12]) -> f64 {
        let profile = match self.mode {
            Mode::Major => &MAJOR_PROFILE,
            Mode::Minor => &MINOR_PROFILE,
        };
        let rotated = |pc: usize| profile[(pc + 12 - self.tonic as usize) % 12];
        let mean_w = weights.iter().sum::<f64>() / 12.0;
        let mean_p = profile.iter().sum::<f64>() / 12.0;
        let (mut num, mut var_w, mut var_p) = (0.0, 0.0, 0.0);
        for (pc, &w) in weights.iter().enumerate() {
            let (dw, dp) = (w - mean_w, rotated(pc) - mean_p);
            num += dw * dp;
            var_w += dw * dw;
            var_p += dp * dp;
        }
        num / (var_w * var_p).sqrt().max(f64::MIN_POSITIVE)
    }
}

/// The scales `Scale` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    Major,
    NaturalMinor,
    HarmonicMinor,
    MelodicMinor,
    Dorian,
    Phrygian,
    Lydian,
    Mixolydian,
    MajorPentatonic,
    MinorPentatonic,
    Blues,
}

impl Scale {
    pub const ALL: [Scale; 11] = [
        Scale::Major,
        Scale::NaturalMinor,
        Scale::HarmonicMinor,
        Scale::MelodicMinor,
        Scale::Dorian,
        Scale::Phrygian,
        Scale::Lydian,
        Scale::Mixolydian,
        Scale::MajorPentatonic,
        Scale::MinorPentatonic,
        Scale::Blues,
    ];

    /// Semitones above the tonic.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Scale::Major => &[0, 2, 4, 5, 7, 9, 11],
            Scale::NaturalMinor => &[0, 2, 3, 5, 7, 8, 10],
            Scale::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Scale::MelodicMinor => &[0, 2, 3, 5, 7, 9, 11],
            Scale::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Scale::Phrygian => &[0, 1, 3, 5, 7, 8, 10],
            Scale::Lydian => &[0, 2, 4, 6, 7, 9, 11],
            Scale::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Scale::MajorPentatonic => &[0, 2, 4, 7, 9],
            Scale::MinorPentatonic => &[0, 3, 5, 7, 10],
            Scale::Blues => &[0, 3, 5, 6, 7, 10],
        }
    }

    /// Major or minor, by the scale's third.
    pub fn mode(self) -> Mode {
        if self.intervals().contains(&4) {
            Mode::Major
        } else {
            Mode::Minor
        }
    }

    /// What the editor shows.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Major => "Major",
            Scale::NaturalMinor => "Natural minor",
            Scale::HarmonicMinor => "Harmonic minor",
            Scale::MelodicMinor => "Melodic minor",
            Scale::Dorian => "Dorian",
            Scale::Phrygian => "Phrygian",
            Scale::Lydian => "Lydian",
            Scale::Mixolydian => "Mixolydian",
            Scale::MajorPentatonic => "Major pentatonic",
            Scale::MinorPentatonic => "Minor pentatonic",
            Scale::Blues => "Blues",
        }
    }

    /// The name in kebab case, as commands take it: `natural-minor`.
    pub fn kebab_name(self) -> String {
        self.name().to_lowercase().replace(' ', "-")
    }

    pub fn from_kebab_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.kebab_name() == name)
    }
}

/// A key and scale to keep a phrase in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleLock {
    /// The key's tonic, a pitch class (0 = C).
    pub tonic: u8,
    pub scale: Scale,
}

impl ScaleLock {
    /// Whether `pitch` is in the scale.
    pub fn contains(self, pitch: u8) -> bool {
        self.has(pitch as i32)
    }

    fn has(self, pitch: i32) -> bool {
        let degree = (pitch - self.tonic as i32).rem_euclid(12) as u8;
        self.scale.intervals().contains(&degree)
    }

    /// The semitones (-5..=6) that bring a phrase whose own key is `key` to this tonic.
    pub fn shift_from(self, key: Key) -> i32 {
        let up = (self.tonic as i32 - key.tonic as i32).rem_euclid(12);
        if up > 6 {
            up - 12
        } else {
            up
        }
    }

    /// Fits `notes` (one voice, in time order) into the key and scale: the whole phrase
    /// moved so that its own tonic is this one, then each note still outside the scale
    /// moved to a neighbouring degree along the line's direction. Pitches stay in the
    /// melody range.
    pub fn fit(self, notes: &mut [Note]) {
        if let Some(key) = Key::estimate(notes) {
            let shift = self.shift_from(key);
            for n in notes.iter_mut() {
                n.pitch = in_range(n.pitch as i32 + shift);
            }
        }
        self.snap(notes);
    }

    /// Moves each note outside the scale to a neighbouring degree: the one along the
    /// line's direction into the note (out of it, for the first), unless that lands on
    /// the note before or after it and the other does not. A repeated note repeats what
    /// the note it repeats became.
    pub fn snap(self, notes: &mut [Note]) {
        let original: Vec<u8> = notes.iter().map(|n| n.pitch).collect();
        for i in 0..notes.len() {
            let pitch = original[i];
            if self.contains(pitch) {
                continue;
            }
            let previous = i.checked_sub(1).map(|p| (original[p], notes[p].pitch));
            notes[i].pitch = match previous {
                // A repeated note stays the note it repeats.
                Some((was, now)) if was == pitch => now,
                _ => {
                    let (below, above) = (self.below(pitch), self.above(pitch));
                    // The line's direction into this note, or failing that out of it.
                    let rising = match (previous, original.get(i + 1)) {
                        (Some((was, _)), _) => pitch > was,
                        (None, Some(&next)) => next > pitch,
                        (None, None) => pitch - below > above - pitch,
                    };
                    let (first, second) = if rising {
                        (above, below)
                    } else {
                        (below, above)
                    };
                    // A step stays a step: not onto the note just played, nor onto the
                    // next, where the other neighbour avoids both.
                    let next = original.get(i + 1).copied().filter(|&p| self.contains(p));
                    let clashes =
                        |p: u8| previous.is_some_and(|(_, now)| now == p) || next == Some(p);
                    if clashes(first) && !clashes(second) {
                        second
                    } else {
                        first
                    }
                }
            };
        }
    }

    /// `pitch` (in the scale) moved by `degrees` scale steps, within the melody range.
    pub fn step(self, pitch: u8, degrees: i32) -> u8 {
        let mut p = pitch as i32;
        for _ in 0..degrees.unsigned_abs() {
            let next = (1..=12)
                .map(|d| p + d * degrees.signum())
                .find(|&q| self.has(q))
                .unwrap_or(p);
            if !(MIN_PITCH as i32..=MAX_PITCH as i32).contains(&next) {
                break;
            }
            p = next;
        }
        p as u8
    }

    /// The nearest scale pitch below `pitch`, kept in the melody range by an octave.
    fn below(self, pitch: u8) -> u8 {
        let p = (1..=12).map(|d| pitch as i32 - d).find(|&p| self.has(p));
        in_range(p.unwrap_or(pitch as i32))
    }

    /// The nearest scale pitch above `pitch`, kept in the melody range by an octave.
    fn above(self, pitch: u8) -> u8 {
        let p = (1..=12).map(|d| pitch as i32 + d).find(|&p| self.has(p));
        in_range(p.unwrap_or(pitch as i32))
    }
}

/// `pitch` moved by octaves into the melody range.
fn in_range(mut pitch: i32) -> u8 {
    while pitch < MIN_PITCH as i32 {
        pitch += 12;
    }
    while pitch > MAX_PITCH as i32 {
        pitch -= 12;
    }
    pitch as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn line(pitches: &[u8]) -> Vec<Note> {
        pitches
            .iter()
            .enumerate()
            .map(|(i, &pitch)| Note {
                pitch,
                start: 2 * i as u32,
                end: 2 * i as u32 + 2,
            })
            .collect()
    }

    #[test]
    fn a_scale_and_its_arpeggios_name_their_key() {
        // C major up and down, with the tonic and dominant held longest.
        let c_major = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60];
        let mut notes = line(&c_major);
        notes.last_mut().unwrap().end += 8;
        assert_eq!(
            Key::estimate(&notes),
            Some(Key {
                tonic: 0,
                mode: Mode::Major
            })
        );
        // A harmonic minor, its tonic triad twice.
        let a_minor = [57, 60, 64, 57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57];
        assert_eq!(
            Key::estimate(&line(&a_minor)),
            Some(Key {
                tonic: 9,
                mode: Mode::Minor
            })
        );
        // Every transposition of both.
        for t in 0..12u8 {
            let moved: Vec<u8> = c_major.iter().map(|p| p + t).collect();
            let mut notes = line(&moved);
            notes.last_mut().unwrap().end += 8;
            assert_eq!(Key::estimate(&notes).unwrap().tonic, t);
        }
        assert_eq!(Key::estimate(&[]), None);
    }

    #[test]
    fn every_note_lands_in_every_scale_of_every_key() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for scale in Scale::ALL {
            for tonic in 0..12 {
                let lock = ScaleLock { tonic, scale };
                for _ in 0..50 {
                    let pitches: Vec<u8> = (0..16)
                        .map(|_| rng.random_range(MIN_PITCH..=MAX_PITCH))
                        .collect();
                    let mut notes = line(&pitches);
                    lock.fit(&mut notes);
                    for n in &notes {
                        assert!(lock.contains(n.pitch), "{scale:?} in {tonic}: {}", n.pitch);
                        assert!((MIN_PITCH..=MAX_PITCH).contains(&n.pitch));
                    }
                }
            }
        }
    }

    #[test]
    fn a_phrase_moves_whole_to_the_key_and_keeps_its_shape() {
        // D major, fitted to F major: up three semitones, every interval kept.
        let d_major = [62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62];
        let mut notes = line(&d_major);
        notes.last_mut().unwrap().end += 8;
        let lock = ScaleLock {
            tonic: 5,
            scale: Scale::Major,
        };
        lock.fit(&mut notes);
        let fitted: Vec<u8> = notes.iter().map(|n| n.pitch).collect();
        assert_eq!(fitted, d_major.map(|p| p + 3));
        // And down, where down is nearer: D major to B major is three semitones down.
        assert_eq!(
            ScaleLock {
                tonic: 11,
                scale: Scale::Major
            }
            .shift_from(Key {
                tonic: 2,
                mode: Mode::Major
            }),
            -3
        );
    }

    #[test]
    fn outside_notes_move_along_the_line_and_keep_repeats_and_steps() {
        // In C major pentatonic (C D E G A): F# rising from D goes up to G, F# falling
        // from A to D goes down to E, a repeated F# repeats what the first became, and
        // neither neighbour of a step is repeated where the other one is free.
        let lock = ScaleLock {
            tonic: 0,
            scale: Scale::MajorPentatonic,
        };
        let snap = |pitches: &[u8]| {
            let mut notes = line(pitches);
            lock.snap(&mut notes);
            notes.iter().map(|n| n.pitch).collect::<Vec<_>>()
        };
        assert_eq!(snap(&[62, 66, 69]), [62, 67, 69]);
        assert_eq!(snap(&[69, 66, 62]), [69, 64, 62]);
        assert_eq!(snap(&[62, 66, 66, 66, 60]), [62, 67, 67, 67, 60]);
        assert_eq!(snap(&[69, 66, 66, 62]), [69, 64, 64, 62]);
        // E F E (steps): F would go up to G, and does; A F# E: F# would go down onto
        // the E that follows, and goes up to G instead.
        assert_eq!(snap(&[62, 64, 65, 64]), [62, 64, 67, 64]);
        assert_eq!(snap(&[69, 66, 64]), [69, 67, 64]);
        // The first note follows the line out of it.
        assert_eq!(snap(&[66, 69]), [67, 69]);
        assert_eq!(snap(&[66, 62]), [64, 62]);
    }

    #[test]
    fn scale_steps_walk_the_scale() {
        let lock = ScaleLock {
            tonic: 9,
            scale: Scale::NaturalMinor,
        };
        // A minor: A B C D E F G.
        assert_eq!(lock.step(57, 2), 60);
        assert_eq!(lock.step(60, -2), 57);
        assert_eq!(lock.step(57, 7), 69);
        assert_eq!(lock.step(MAX_PITCH, 3), MAX_PITCH, "the range's top stays");
        for scale in Scale::ALL {
            assert_eq!(Scale::from_kebab_name(&scale.kebab_name()), Some(scale));
        }
        assert_eq!(Scale::NaturalMinor.kebab_name(), "natural-minor");
        assert_eq!(Scale::Dorian.mode(), Mode::Minor);
        assert_eq!(Scale::Lydian.mode(), Mode::Major);
        assert_eq!(pitch_class("F#"), Some(6));
        assert_eq!(pitch_class("Bb"), Some(10));
        assert_eq!(pitch_class("Cb"), Some(11));
        assert_eq!(pitch_class("H"), None);
        assert_eq!(pitch_class("Cm"), None);
    }
}
