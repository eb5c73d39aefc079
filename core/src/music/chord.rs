//! Chords: the qualities Latent Live names, a chord recognised from the notes held
//! (inversions and a missing fifth included), chord symbols as musicians write them
//! (`Bbmaj7`, `F#m7b5`) and as annotations write them (Harte's `Bb:maj7`, POP909's
//! syntax), and Magenta's encodings of a chord as a model input.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::key::{note_name, Key, Mode, NOTE_NAMES};
use super::melody::Note;

/// Chord qualities, by their intervals above the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Major,
    Minor,
    Diminished,
    Augmented,
    Sus2,
    Sus4,
    Dominant7,
    Major7,
    Minor7,
    HalfDiminished7,
    Diminished7,
    Major6,
    Minor6,
    Add9,
}

impl Quality {
    /// In the order the recogniser prefers them when two read the same notes.
    pub const ALL: [Quality; 14] = [
        Quality::Major,
        Quality::Minor,
        Quality::Dominant7,
        Quality::Minor7,
        Quality::Major7,
        Quality::Diminished,
        Quality::Augmented,
        Quality::HalfDiminished7,
        Quality::Diminished7,
        Quality::Sus4,
        Quality::Sus2,
        Quality::Major6,
        Quality::Minor6,
        Quality::Add9,
    ];

    /// Semitones above the root (pitch classes).
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Quality::Major => &[0, 4, 7],
            Quality::Minor => &[0, 3, 7],
            Quality::Diminished => &[0, 3, 6],
            Quality::Augmented => &[0, 4, 8],
            Quality::Sus2 => &[0, 2, 7],
            Quality::Sus4 => &[0, 5, 7],
            Quality::Dominant7 => &[0, 4, 7, 10],
            Quality::Major7 => &[0, 4, 7, 11],
            Quality::Minor7 => &[0, 3, 7, 10],
            Quality::HalfDiminished7 => &[0, 3, 6, 10],
            Quality::Diminished7 => &[0, 3, 6, 9],
            Quality::Major6 => &[0, 4, 7, 9],
            Quality::Minor6 => &[0, 3, 7, 9],
            Quality::Add9 => &[0, 2, 4, 7],
        }
    }

    /// The suffix of its chord symbol: `m7b5` in `F#m7b5`.
    pub fn suffix(self) -> &'static str {
        match self {
            Quality::Major => "",
            Quality::Minor => "m",
            Quality::Diminished => "dim",
            Quality::Augmented => "aug",
            Quality::Sus2 => "sus2",
            Quality::Sus4 => "sus4",
            Quality::Dominant7 => "7",
            Quality::Major7 => "maj7",
            Quality::Minor7 => "m7",
            Quality::HalfDiminished7 => "m7b5",
            Quality::Diminished7 => "dim7",
            Quality::Major6 => "6",
            Quality::Minor6 => "m6",
            Quality::Add9 => "add9",
        }
    }

    /// Whether its fifth is the perfect fifth, which a voicing may leave out.
    fn fifth_may_drop(self) -> bool {
        self.intervals().contains(&7) && !matches!(self, Quality::Sus2 | Quality::Sus4)
    }

    /// The triad Magenta's triad and major-minor encodings reduce it to.
    fn triad(self) -> Option<Triad> {
        match self {
            Quality::Major | Quality::Dominant7 | Quality::Major7 | Quality::Major6 => {
                Some(Triad::Major)
            }
            Quality::Add9 => Some(Triad::Major),
            Quality::Minor | Quality::Minor7 | Quality::Minor6 => Some(Triad::Minor),
            Quality::Augmented => Some(Triad::Augmented),
            Quality::Diminished | Quality::HalfDiminished7 | Quality::Diminished7 => {
                Some(Triad::Diminished)
            }
            Quality::Sus2 | Quality::Sus4 => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Triad {
    Major,
    Minor,
    Augmented,
    Diminished,
}

/// A chord: root and quality (pitch classes, 0 = C), and the pitch class in the bass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chord {
    pub root: u8,
    pub quality: Quality,
    pub bass: u8,
}

/// Why a chord symbol cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChordError {
    #[error("{0:?} does not start with a note name (A to G)")]
    Root(String),
    #[error("{symbol:?}: unknown chord quality {quality:?}")]
    Quality { symbol: String, quality: String },
    #[error("{symbol:?}: unknown bass {bass:?}")]
    Bass { symbol: String, bass: String },
}

impl Chord {
    pub fn new(root: u8, quality: Quality) -> Self {
        Self {
            root: root % 12,
            quality,
            bass: root % 12,
        }
    }

    /// Its pitch classes as a bit set (bit 0 = C).
    pub fn pitch_classes(self) -> u16 {
        self.quality
            .intervals()
            .iter()
            .fold(0, |set, &i| set | 1 << ((self.root + i) % 12))
    }

    /// Whether `pitch` is one of its tones.
    pub fn has_tone(self, pitch: u8) -> bool {
        self.pitch_classes() >> (pitch % 12) & 1 == 1
    }

    /// The chord the held notes (MIDI pitches, any order) name, or `None` for fewer than
    /// two pitch classes or a set no quality reads. Inversions are read by their bass,
    /// and chords whose fifth is perfect also without it. A complete reading wins over
    /// one without its fifth; where two read the same notes (C6 and Am7), the one rooted
    /// on the bass wins, then the simpler quality.
    pub fn recognise(held: &[u8]) -> Option<Self> {
        let bass = held.iter().min()? % 12;
        let set = held.iter().fold(0u16, |set, &p| set | 1 << (p % 12));
        if set.count_ones() < 2 {
            return None;
        }
        let mut best: Option<(u32, Chord)> = None;
        for (rank, &quality) in Quality::ALL.iter().enumerate() {
            for root in 0..12u8 {
                let chord = Chord {
                    root,
                    quality,
                    bass,
                };
                let full = chord.pitch_classes();
                let no_fifth = full & !(1 << ((root + 7) % 12));
                let cost = if set == full {
                    0
                } else if quality.fifth_may_drop() && set == no_fifth {
                    1
                } else {
                    continue;
                };
                // A complete chord first, then one rooted on the bass, then the simpler
                // quality: Eb G C is Cm over Eb, not Eb6 without its fifth.
                let score = cost * 100 + u32::from(root != bass) * 50 + rank as u32;
                if best.is_none_or(|(s, _)| score < s) {
                    best = Some((score, chord));
                }
            }
        }
        best.map(|(_, chord)| chord)
    }

    /// Reads a chord symbol: a root (`C`, `F#`, `Bb`), a quality (`m`, `min`, `7`,
    /// `maj7`, `M7`, `m7b5`, `ø`, `dim`, `°`, `dim7`, `aug`, `+`, `sus2`, `sus4`, `sus`,
    /// `6`, `m6`, `add9`...) and an optional `/bass`. `N` or `N.C.` is no chord.
    pub fn parse(symbol: &str) -> Result<Option<Self>, ChordError> {
        let symbol = symbol.trim();
        if matches!(symbol, "N" | "N.C." | "NC") {
            return Ok(None);
        }
        let (body, bass) = match symbol.split_once('/') {
            Some((body, bass)) => (body, Some(bass)),
            None => (symbol, None),
        };
        let (root, rest) = note_name(body).ok_or_else(|| ChordError::Root(symbol.to_string()))?;
        let quality = match rest {
            "" | "maj" | "M" => Quality::Major,
            "m" | "min" | "-" => Quality::Minor,
            "dim" | "°" | "o" => Quality::Diminished,
            "aug" | "+" => Quality::Augmented,
            "sus2" => Quality::Sus2,
            "sus4" | "sus" => Quality::Sus4,
            "7" | "dom7" => Quality::Dominant7,
            "maj7" | "M7" | "Δ" | "Δ7" => Quality::Major7,
            "m7" | "min7" | "-7" => Quality::Minor7,
            "m7b5" | "ø" | "ø7" | "min7b5" => Quality::HalfDiminished7,
            "dim7" | "°7" | "o7" => Quality::Diminished7,
            "6" | "maj6" => Quality::Major6,
            "m6" | "min6" => Quality::Minor6,
            "add9" | "add2" => Quality::Add9,
            _ => {
                return Err(ChordError::Quality {
                    symbol: symbol.to_string(),
                    quality: rest.to_string(),
                })
            }
        };
        let mut chord = Chord::new(root, quality);
        if let Some(bass) = bass {
            chord.bass = match note_name(bass) {
                Some((pc, "")) => pc,
                _ => {
                    return Err(ChordError::Bass {
                        symbol: symbol.to_string(),
                        bass: bass.to_string(),
                    })
                }
            };
        }
        Ok(Some(chord))
    }

    /// Reads a Harte chord label as POP909 writes them (`B:maj`, `F#:min7`, `C:maj/5`,
    /// `E:hdim7`, `A:sus4(b7)`, `N`). Extended chords fold to the quality they extend (a
    /// 9th to its 7th chord), extensions in parentheses are dropped, and a power chord
    /// (`5`, `1`) reads as its major triad.
    pub fn from_harte(label: &str) -> Result<Option<Self>, ChordError> {
        let label = label.trim();
        if matches!(label, "N" | "X" | "") {
            return Ok(None);
        }
        let (body, bass) = match label.split_once('/') {
            Some((body, bass)) => (body, Some(bass)),
            None => (label, None),
        };
        let (root_name, quality) = body.split_once(':').unwrap_or((body, "maj"));
        let root = match note_name(root_name) {
            Some((pc, "")) => pc,
            _ => return Err(ChordError::Root(label.to_string())),
        };
        let quality = quality.split('(').next().unwrap_or_default();
        let quality = match quality {
            "maj" | "" | "5" | "1" => Quality::Major,
            "min" => Quality::Minor,
            "dim" => Quality::Diminished,
            "aug" => Quality::Augmented,
            "sus2" => Quality::Sus2,
            "sus4" => Quality::Sus4,
            "7" | "9" | "11" | "13" => Quality::Dominant7,
            "maj7" | "maj9" | "maj11" | "maj13" => Quality::Major7,
            "min7" | "min9" | "min11" | "min13" => Quality::Minor7,
            "minmaj7" => Quality::Minor,
            "hdim7" => Quality::HalfDiminished7,
            "dim7" => Quality::Diminished7,
            "maj6" => Quality::Major6,
            "min6" => Quality::Minor6,
            other => {
                return Err(ChordError::Quality {
                    symbol: label.to_string(),
                    quality: other.to_string(),
                })
            }
        };
        let mut chord = Chord::new(root, quality);
        if let Some(degree) = bass {
            let semitones = harte_degree(degree).ok_or_else(|| ChordError::Bass {
                symbol: label.to_string(),
                bass: degree.to_string(),
            })?;
            chord.bass = (root + semitones) % 12;
        }
        Ok(Some(chord))
    }

    /// The chord moved by `semitones`.
    pub fn transposed(self, semitones: i32) -> Self {
        let moved = |pc: u8| (pc as i32 + semitones).rem_euclid(12) as u8;
        Self {
            root: moved(self.root),
            quality: self.quality,
            bass: moved(self.bass),
        }
    }
}

impl fmt::Display for Chord {
    /// The chord symbol: `Am`, `Bbmaj7`, `C/E`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            NOTE_NAMES[self.root as usize],
            self.quality.suffix()
        )?;
        if self.bass != self.root {
            write!(f, "/{}", NOTE_NAMES[self.bass as usize])?;
        }
        Ok(())
    }
}

impl Chord {
    /// A chord in 16 bits, for files and atomics: 0 for no chord, else
    /// `1 + (root * 14 + quality) * 12 + bass`, the quality by its place in
    /// [`Quality::ALL`].
    pub fn code(chord: Option<Chord>) -> u16 {
        chord.map_or(0, |c| {
            let quality = Quality::ALL
                .iter()
                .position(|&q| q == c.quality)
                .unwrap_or(0);
            1 + ((c.root as u16 * 14 + quality as u16) * 12 + c.bass as u16)
        })
    }

    /// The chord of a [`Chord::code`]; `None` for a code no chord has.
    pub fn from_code(code: u16) -> Option<Option<Chord>> {
        let Some(code) = code.checked_sub(1) else {
            return Some(None);
        };
        let (bass, rest) = ((code % 12) as u8, code / 12);
        let (quality, root) = ((rest % 14) as usize, rest / 14);
        (root < 12).then(|| {
            Some(Chord {
                root: root as u8,
                quality: Quality::ALL[quality],
                bass,
            })
        })
    }
}

/// The progression a chord model plays over when nothing names the chords: I–V–vi–IV in
/// a major key, i–VI–III–VII in a minor one, the four chords spread evenly over `steps`
/// (one a bar over four bars, two a bar over two).
pub fn default_progression(key: Key, steps: usize) -> Vec<Option<Chord>> {
    let degrees: [(u8, Quality); 4] = match key.mode {
        Mode::Major => [
            (0, Quality::Major),
            (7, Quality::Major),
            (9, Quality::Minor),
            (5, Quality::Major),
        ],
        Mode::Minor => [
            (0, Quality::Minor),
            (8, Quality::Major),
            (3, Quality::Major),
            (10, Quality::Major),
        ],
    };
    (0..steps)
        .map(|t| {
            let (degree, quality) = degrees[t * 4 / steps.max(1)];
            Some(Chord::new(key.tonic + degree, quality))
        })
        .collect()
}

/// Chord Fit: moves notes that start on a beat (every 4th 16th) and are not tones of the
/// chord sounding there (`chords`, one per step) to the nearest chord tone, the lower on
/// a tie. `amount` (0 to 1) is the share of such notes moved; which ones is fixed by the
/// notes' places, so that a phrase fitted twice moves the same notes.
pub fn fit_to_chords(notes: &mut [Note], chords: &[Option<Chord>], amount: f32) {
    if amount.is_nan() || amount <= 0.0 {
        return;
    }
    for note in notes.iter_mut().filter(|n| n.start.is_multiple_of(4)) {
        let Some(Some(chord)) = chords.get(note.start as usize) else {
            continue;
        };
        if chord.has_tone(note.pitch) || place_hash(note.start) >= amount {
            continue;
        }
        let nearest = (1..=6u8)
            .flat_map(|d| [note.pitch.checked_sub(d), note.pitch.checked_add(d)])
            .flatten()
            .find(|&p| p <= 127 && chord.has_tone(p));
        if let Some(p) = nearest {
            note.pitch = p;
        }
    }
}

/// A value in `0..1` fixed by a step: which notes a partial Chord Fit moves.
fn place_hash(step: u32) -> f32 {
    let h = (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    h as f32 / (1u64 << 24) as f32
}

/// Semitones above the root of a Harte degree: `3`, `b7`, `#4`.
fn harte_degree(degree: &str) -> Option<u8> {
    let digits = degree.trim_start_matches(['b', '#']);
    let accidentals = &degree[..degree.len() - digits.len()];
    let natural = match digits.parse::<u8>().ok()? {
        0 => return None,
        n => [0, 2, 4, 5, 7, 9, 11][(n as usize - 1) % 7],
    };
    let shift: i32 = accidentals
        .chars()
        .map(|c| if c == '#' { 1 } else { -1 })
        .sum();
    Some((natural + shift).rem_euclid(12) as u8)
}

/// Magenta's `PitchChordsEncoding`: a no-chord flag, the root (12, one-hot), the pitch
/// classes (12), and the bass (12, one-hot).
pub const PITCH_ENCODING_DEPTH: usize = 1 + 3 * 12;

/// `chord` as Magenta's `PitchChordsEncoding` writes it.
pub fn pitch_encoding(chord: Option<Chord>) -> [f32; PITCH_ENCODING_DEPTH] {
    let mut x = [0f32; PITCH_ENCODING_DEPTH];
    match chord {
        None => x[0] = 1.0,
        Some(chord) => {
            x[1 + chord.root as usize] = 1.0;
            for pc in 0..12 {
                if chord.pitch_classes() >> pc & 1 == 1 {
                    x[13 + pc] = 1.0;
                }
            }
            x[25 + chord.bass as usize] = 1.0;
        }
    }
    x
}

/// Magenta's `TriadChordOneHotEncoding`: 0 for no chord, then 12 major, 12 minor, 12
/// augmented and 12 diminished triads by root.
pub const TRIAD_CLASSES: usize = 1 + 4 * 12;

/// `chord`'s class in Magenta's `TriadChordOneHotEncoding`; `None` for a sus chord, which
/// it cannot encode.
pub fn triad_class(chord: Option<Chord>) -> Option<usize> {
    let Some(chord) = chord else {
        return Some(0);
    };
    let offset = match chord.quality.triad()? {
        Triad::Major => 0,
        Triad::Minor => 12,
        Triad::Augmented => 24,
        Triad::Diminished => 36,
    };
    Some(1 + offset + chord.root as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every voicing of `chord` from `low`: root position and each inversion, with the
    /// fifth and (where it may drop) without.
    fn voicings(chord: Chord) -> Vec<(u8, Vec<u8>)> {
        let tones: Vec<u8> = chord
            .quality
            .intervals()
            .iter()
            .map(|i| (chord.root + i) % 12)
            .collect();
        let mut out = Vec::new();
        for drop_fifth in [false, true] {
            if drop_fifth && !chord.quality.fifth_may_drop() {
                continue;
            }
            let fifth = (chord.root + 7) % 12;
            let kept: Vec<u8> = tones
                .iter()
                .copied()
                .filter(|&t| !(drop_fifth && t == fifth))
                .collect();
            for (i, &bass) in kept.iter().enumerate() {
                // The bass at the bottom, the others stacked above it.
                let mut held = vec![48 + bass];
                for (j, &t) in kept.iter().enumerate() {
                    if j != i {
                        held.push(60 + t);
                    }
                }
                out.push((bass, held));
            }
        }
        out
    }

    #[test]
    fn every_quality_in_every_key_and_inversion_is_recognised() {
        let all: Vec<Chord> = Quality::ALL
            .iter()
            .flat_map(|&q| (0..12).map(move |r| Chord::new(r, q)))
            .collect();
        for &chord in &all {
            let unique = all
                .iter()
                .filter(|c| c.pitch_classes() == chord.pitch_classes())
                .count()
                == 1;
            for (bass, held) in voicings(chord) {
                let got = Chord::recognise(&held)
                    .unwrap_or_else(|| panic!("{chord} over {bass}: {held:?} not recognised"));
                assert_eq!(got.bass, bass);
                let fifth = 1 << ((chord.root + 7) % 12);
                assert_eq!(
                    got.pitch_classes() | fifth,
                    chord.pitch_classes() | fifth,
                    "{chord} as {held:?} read as {got}"
                );
                // A set only one chord has is that chord; a shared one (C6 = Am7) is
                // the one rooted on the bass.
                if unique && held.len() == chord.quality.intervals().len() {
                    assert_eq!(
                        (got.root, got.quality),
                        (chord.root, chord.quality),
                        "{held:?}"
                    );
                }
                if bass == chord.root && held.len() == chord.quality.intervals().len() {
                    assert_eq!(
                        (got.root, got.quality),
                        (chord.root, chord.quality),
                        "{held:?}"
                    );
                }
            }
        }
        assert_eq!(Chord::recognise(&[60]), None);
        assert_eq!(
            Chord::recognise(&[60, 72]),
            None,
            "an octave names no chord"
        );
        assert_eq!(Chord::recognise(&[]), None);
    }

    #[test]
    fn symbols_read_and_write_back() {
        for &quality in &Quality::ALL {
            for root in 0..12 {
                let chord = Chord::new(root, quality);
                assert_eq!(Chord::parse(&chord.to_string()), Ok(Some(chord)));
                let over = Chord {
                    bass: (root + 4) % 12,
                    ..chord
                };
                assert_eq!(Chord::parse(&over.to_string()), Ok(Some(over)));
            }
        }
        let read = |s: &str| Chord::parse(s).unwrap().unwrap();
        assert_eq!(read("Am"), Chord::new(9, Quality::Minor));
        assert_eq!(read("D7"), Chord::new(2, Quality::Dominant7));
        assert_eq!(read("Bbmaj7"), Chord::new(10, Quality::Major7));
        assert_eq!(read("F#m7b5"), Chord::new(6, Quality::HalfDiminished7));
        assert_eq!(read("Bdim"), Chord::new(11, Quality::Diminished));
        assert_eq!(read("Caug"), Chord::new(0, Quality::Augmented));
        assert_eq!(read("Csus4"), Chord::new(0, Quality::Sus4));
        assert_eq!(read("C/E").bass, 4);
        assert_eq!(Chord::parse("N.C."), Ok(None));
        assert!(Chord::parse("H7").is_err());
        assert!(Chord::parse("Cwhat").is_err());
        assert!(Chord::parse("C/X").is_err());
    }

    #[test]
    fn harte_labels_read_as_pop909_writes_them() {
        let read = |s: &str| Chord::from_harte(s).unwrap().unwrap();
        assert_eq!(read("B:maj"), Chord::new(11, Quality::Major));
        assert_eq!(read("F#:min7"), Chord::new(6, Quality::Minor7));
        assert_eq!(read("E:hdim7"), Chord::new(4, Quality::HalfDiminished7));
        assert_eq!(read("Db:9"), Chord::new(1, Quality::Dominant7));
        assert_eq!(read("A:sus4(b7)"), Chord::new(9, Quality::Sus4));
        let c_over_g = read("C:maj/5");
        assert_eq!((c_over_g.root, c_over_g.bass), (0, 7));
        assert_eq!(read("D:7/b7").bass, 0);
        assert_eq!(Chord::from_harte("N"), Ok(None));
        assert!(Chord::from_harte("C:weird").is_err());
    }

    #[test]
    fn magentas_encodings() {
        let c7_over_e = Chord {
            bass: 4,
            ..Chord::new(0, Quality::Dominant7)
        };
        let x = pitch_encoding(Some(c7_over_e));
        let on: Vec<usize> = (0..PITCH_ENCODING_DEPTH).filter(|&i| x[i] == 1.0).collect();
        // Root C, pitches C E G Bb, bass E.
        assert_eq!(on, [1, 13, 17, 20, 23, 29]);
        assert_eq!(pitch_encoding(None)[0], 1.0);
        assert_eq!(triad_class(None), Some(0));
        assert_eq!(
            triad_class(Some(Chord::new(9, Quality::Minor7))),
            Some(1 + 12 + 9)
        );
        assert_eq!(
            triad_class(Some(Chord::new(11, Quality::Diminished))),
            Some(48)
        );
        assert_eq!(triad_class(Some(Chord::new(0, Quality::Sus2))), None);
    }

    #[test]
    fn every_chord_survives_its_code() {
        assert_eq!(Chord::from_code(Chord::code(None)), Some(None));
        for root in 0..12 {
            for quality in Quality::ALL {
                for bass in 0..12 {
                    let chord = Some(Chord {
                        root,
                        quality,
                        bass,
                    });
                    assert_eq!(Chord::from_code(Chord::code(chord)), Some(chord));
                }
            }
        }
        assert_eq!(Chord::from_code(u16::MAX), None);
    }

    #[test]
    fn the_default_progression_is_i_v_vi_iv_or_i_vi_iii_vii() {
        let names = |key, steps| -> Vec<String> {
            let p = default_progression(key, steps);
            (0..4)
                .map(|q| p[q * steps / 4].unwrap().to_string())
                .collect()
        };
        let a_minor = Key {
            tonic: 9,
            mode: Mode::Minor,
        };
        let g_major = Key {
            tonic: 7,
            mode: Mode::Major,
        };
        assert_eq!(names(g_major, 32), ["G", "D", "Em", "C"]);
        assert_eq!(names(a_minor, 64), ["Am", "F", "C", "G"]);
        // Evenly spread: two chords a bar over two bars, one a bar over four.
        let two_bars = default_progression(g_major, 32);
        assert!(two_bars[..8].iter().all(|&c| c == two_bars[0]));
        assert_ne!(two_bars[7], two_bars[8]);
    }

    #[test]
    fn chord_fit_moves_on_beat_notes_to_the_nearest_chord_tone() {
        let c = Some(Chord::new(0, Quality::Major));
        let chords = vec![c; 16];
        let line = |pitches: [u8; 4]| -> Vec<Note> {
            pitches
                .iter()
                .enumerate()
                .map(|(i, &pitch)| Note {
                    pitch,
                    start: i as u32 * 2,
                    end: i as u32 * 2 + 2,
                })
                .collect()
        };
        // D on beat 1 goes to C (a tie: the lower), F on beat 2 to E; the off-beat notes stay.
        let mut notes = line([62, 65, 65, 71]);
        fit_to_chords(&mut notes, &chords, 1.0);
        let pitches: Vec<u8> = notes.iter().map(|n| n.pitch).collect();
        assert_eq!(pitches, [60, 65, 64, 71]);
        let mut untouched = line([62, 65, 65, 71]);
        fit_to_chords(&mut untouched, &chords, 0.0);
        assert_eq!(untouched, line([62, 65, 65, 71]));
        // A partial fit moves a fixed share of the notes, the same ones every time.
        let many: Vec<Note> = (0..400)
            .map(|i| Note {
                pitch: 62,
                start: i * 4,
                end: i * 4 + 1,
            })
            .collect();
        let chords = vec![c; 1600];
        let mut half = many.clone();
        fit_to_chords(&mut half, &chords, 0.5);
        let moved = half.iter().filter(|n| n.pitch != 62).count();
        assert!((160..=240).contains(&moved), "{moved} of 400 moved");
        let mut again = many.clone();
        fit_to_chords(&mut again, &chords, 0.5);
        assert_eq!(half, again);
    }
}
