//! POP909 (Wang et al., ISMIR 2020) as a corpus of melodies over their chords: what the
//! chord-conditioned models learn from.
//!
//! Each song folder `NNN/` holds the arrangement (`NNN.mid`, whose `MELODY` track is the
//! lead vocal line) and annotations in seconds: the beats (`beat_midi.txt`), the chords
//! (`chord_midi.txt`, Harte labels) and the keys (`key_audio.txt`). The annotated beats
//! are the grid: every beat is cut into four 16th steps, so that the melody is quantised
//! to where the song's own pulse is, however its tempo moves, and bars start where the
//! beat file marks a 4/4 bar line.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use latent_live_core::music::chord::Chord;
use latent_live_core::music::melody::{self, Note, STEPS_PER_BAR};
use latent_live_core::music::{midi, Encoding};

use super::{fill_splits, Corpus, CorpusError, Slice, SplitFractions};

/// POP909's song list, with each song's meter (read by `cargo xtask corpus --pop909`).
pub const POP909_INDEX: &str = "index.xlsx";

/// The track of a POP909 file that holds the lead melody.
const MELODY_TRACK: &str = "MELODY";

/// 16th steps per annotated beat (a quarter note, in the songs that are read).
const STEPS_PER_BEAT: usize = 4;

/// The metadata key of a chord corpus's keys, one per tune (a JSON array of `C:maj`-style
/// names, the key that lasts longest in `key_audio.txt`; `""` where there is none).
pub const TUNE_KEY: &str = "tune_key";

/// A song's meter, as POP909's index gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    pub beats_per_measure: u8,
    pub quavers_per_beat: u8,
}

impl Meter {
    /// Whether the song is read: its beats are quarter notes (two quavers each) and its
    /// measures two beats, so that the beat file's second flag, every second measure,
    /// marks 4/4 bars. 857 of the 909 songs; the rest are in 3/4 or compound time, which
    /// Latent Live's 4/4 grid of 16ths cannot hold.
    pub fn is_common_time(self) -> bool {
        self == Self {
            beats_per_measure: 2,
            quavers_per_beat: 2,
        }
    }
}

/// What one song gives: its windows, or why it gives none.
struct Song {
    slices: Vec<Slice>,
    key: String,
    unknown_labels: Vec<String>,
    chordless_windows: usize,
}

impl Corpus {
    /// Builds a chord corpus from a POP909 folder: every song in common time (by `meters`,
    /// POP909's index) cut into windows of `bars` bars with a hop of one bar, each step
    /// with its melody event and its chord.
    ///
    /// * The songs are split by song (one group), seeded by `seed`.
    /// * Windows without a note onset or without a single chord are dropped; identical
    ///   windows are kept once per split, and each split is shuffled, as for folk tunes.
    /// * Chord labels POP909 writes that Latent Live cannot name are read as no chord and
    ///   counted (`unknown_chord_labels`).
    /// * Nothing is transposed here; training moves melody and chords together.
    pub fn from_pop909(
        dir: &Path,
        meters: &BTreeMap<String, Meter>,
        bars: usize,
        split: SplitFractions,
        seed: u64,
    ) -> Result<Corpus, CorpusError> {
        if bars == 0 {
            return Err(CorpusError::Invalid("bars must be at least 1".into()));
        }
        split.normalised()?;
        let steps = bars * STEPS_PER_BAR;
        let songs: Vec<&String> = meters
            .iter()
            .filter(|(id, meter)| meter.is_common_time() && dir.join(id).is_dir())
            .map(|(id, _)| id)
            .collect();
        if songs.is_empty() {
            return Err(CorpusError::NoMidiFiles {
                dir: dir.to_path_buf(),
            });
        }
        let read: Vec<Result<Song, String>> = songs
            .par_iter()
            .map(|id| read_song(&dir.join(id), id, bars).map_err(|e| format!("{id}: {e}")))
            .collect();

        let (mut tunes, mut tune_slices, mut keys, mut failures) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut unknown, mut chordless, mut too_short) =
            (BTreeMap::<String, usize>::new(), 0usize, 0usize);
        for (id, song) in songs.iter().zip(read) {
            match song {
                Err(e) => failures.push(e),
                Ok(song) if song.slices.is_empty() => too_short += 1,
                Ok(song) => {
                    for label in song.unknown_labels {
                        *unknown.entry(label).or_default() += 1;
                    }
                    chordless += song.chordless_windows;
                    tunes.push((*id).clone());
                    tune_slices.push(song.slices);
                    keys.push(song.key);
                }
            }
        }
        if tunes.is_empty() {
            return Err(match failures.first() {
                Some(first) => CorpusError::NothingImported {
                    dir: dir.to_path_buf(),
                    files: songs.len(),
                    first_error: first.clone(),
                },
                None => CorpusError::NoSlices {
                    dir: dir.to_path_buf(),
                    bars,
                },
            });
        }

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut all: BTreeMap<&str, Vec<usize>> =
            BTreeMap::from([("", (0..tunes.len()).collect())]);
        let mut assigned: [Vec<usize>; 3] = Default::default();
        split.assign(&mut all, &mut rng, &mut assigned)?;
        let mut metadata = BTreeMap::new();
        let [train, validation, test] = fill_splits(
            Encoding::Melody,
            steps,
            &tune_slices,
            &mut assigned,
            &mut rng,
            &mut metadata,
        );

        metadata.insert("source".into(), dir.display().to_string());
        metadata.insert(
            "dataset".into(),
            "POP909 (Wang et al., ISMIR 2020), MIT".into(),
        );
        metadata.insert("seed".into(), seed.to_string());
        metadata.insert(
            "split_fractions".into(),
            [split.train, split.validation, split.test]
                .map(|f| ((f * 1e6).round() / 1e6).to_string())
                .join("/"),
        );
        metadata.insert("split_by".into(), "song".into());
        metadata.insert("songs_in_index".into(), meters.len().to_string());
        metadata.insert("songs_in_common_time".into(), songs.len().to_string());
        metadata.insert("import_failures".into(), failures.len().to_string());
        if !failures.is_empty() {
            metadata.insert(
                "import_failure_examples".into(),
                json(&failures[..failures.len().min(10)]),
            );
        }
        metadata.insert("tunes_too_short".into(), too_short.to_string());
        metadata.insert("chordless_windows".into(), chordless.to_string());
        metadata.insert("unknown_chord_labels".into(), json(&unknown));
        metadata.insert("chords".into(), "per 16th step, from chord_midi.txt".into());
        metadata.insert(TUNE_KEY.into(), json(&keys));
        metadata.insert(
            "augmentation".into(),
            "none in the file; training transposes".into(),
        );
        metadata.insert("tune_count".into(), tunes.len().to_string());
        Ok(Corpus {
            encoding: Encoding::Melody,
            bars,
            steps,
            train,
            validation,
            test,
            tunes,
            metadata,
        })
    }
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata serialises")
}

/// The annotated beats, each cut into [`STEPS_PER_BEAT`] steps.
struct Grid {
    /// Beat times in seconds, increasing, and whether a 4/4 bar starts on each.
    beats: Vec<(f64, bool)>,
}

impl Grid {
    fn read(path: &Path) -> Result<Self, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut beats = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<f64> = line
                .split_whitespace()
                .map(|f| f.parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("beat_midi.txt: {line:?}: {e}"))?;
            let [time, _, bar] = fields[..] else {
                return Err(format!("beat_midi.txt: {line:?} is not `time flag flag`"));
            };
            if !time.is_finite() || beats.last().is_some_and(|&(t, _)| time <= t) {
                return Err(format!("beat_midi.txt: beat at {time} is out of order"));
            }
            beats.push((time, bar > 0.5));
        }
        if beats.len() < 2 {
            return Err("beat_midi.txt has fewer than two beats".into());
        }
        Ok(Self { beats })
    }

    fn steps(&self) -> usize {
        self.beats.len() * STEPS_PER_BEAT
    }

    /// The length of beat `i` (the last beat lasts as long as the one before it).
    fn beat_length(&self, i: usize) -> f64 {
        let i = i.min(self.beats.len() - 2);
        self.beats[i + 1].0 - self.beats[i].0
    }

    /// When step `k` starts.
    fn time_of(&self, k: usize) -> f64 {
        let (beat, sub) = (k / STEPS_PER_BEAT, k % STEPS_PER_BEAT);
        self.beats[beat].0 + sub as f64 / STEPS_PER_BEAT as f64 * self.beat_length(beat)
    }

    /// The (fractional) step at `time`; negative before the first beat.
    fn step_at(&self, time: f64) -> f64 {
        let beat = self
            .beats
            .partition_point(|&(t, _)| t <= time)
            .saturating_sub(1);
        let fraction = (time - self.beats[beat].0) / self.beat_length(beat);
        (beat as f64 + fraction) * STEPS_PER_BEAT as f64
    }

    /// The first step of every window of `bars` whole bars, each bar four beats from a
    /// marked bar line to the next.
    fn windows(&self, bars: usize) -> Vec<usize> {
        let beats_per_bar = STEPS_PER_BAR / STEPS_PER_BEAT;
        let starts: Vec<usize> = (0..self.beats.len())
            .filter(|&i| self.beats[i].1 && i + beats_per_bar <= self.beats.len())
            .collect();
        starts
            .windows(bars)
            .filter(|w| w.last().unwrap() - w[0] == (bars - 1) * beats_per_bar)
            .filter(|w| w.windows(2).all(|p| p[1] - p[0] == beats_per_bar))
            .map(|w| w[0] * STEPS_PER_BEAT)
            .collect()
    }
}

fn read_song(dir: &Path, id: &str, bars: usize) -> Result<Song, String> {
    let grid = Grid::read(&dir.join("beat_midi.txt"))?;
    let bytes = fs::read(dir.join(format!("{id}.mid"))).map_err(|e| format!("{id}.mid: {e}"))?;
    let played = midi::track_notes_in_seconds(&bytes, MELODY_TRACK)
        .map_err(|e| format!("{id}.mid: {e}"))?
        .ok_or_else(|| format!("{id}.mid has no {MELODY_TRACK} track"))?;
    let mut notes: Vec<Note> = played
        .iter()
        .filter_map(|n| {
            let start = grid.step_at(n.start).round();
            let end = grid.step_at(n.end).round().max(start + 1.0);
            (start >= 0.0).then(|| Note {
                pitch: midi::fold_into_range(n.pitch),
                start: start as u32,
                end: end as u32,
            })
        })
        .collect();
    notes.sort_by_key(|n| (n.start, std::cmp::Reverse(n.pitch)));
    // One voice: where two notes start on a step, the higher (sorted first) is kept.
    notes.dedup_by_key(|n| n.start);
    let events = melody::encode(&notes, grid.steps());

    let (chords, unknown_labels) = read_chords(&dir.join("chord_midi.txt"), &grid)?;
    let steps = bars * STEPS_PER_BAR;
    let mut chordless_windows = 0;
    let slices = grid
        .windows(bars)
        .into_iter()
        .filter(|&start| {
            let has_chord = chords[start..start + steps].iter().any(Option::is_some);
            chordless_windows += !has_chord as usize;
            has_chord
        })
        .map(|start| Slice {
            events: events[start..start + steps].to_vec(),
            feel: Vec::new(),
            chords: chords[start..start + steps].to_vec(),
        })
        .collect();
    Ok(Song {
        slices,
        key: read_key(&dir.join("key_audio.txt")).unwrap_or_default(),
        unknown_labels,
        chordless_windows,
    })
}

/// The chord sounding at every step of `grid` (read just after the step starts, since
/// chord changes fall on beats), and the labels that name no chord Latent Live knows.
fn read_chords(path: &Path, grid: &Grid) -> Result<(Vec<Option<Chord>>, Vec<String>), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut spans = Vec::new();
    let mut unknown = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [start, end, label] = fields[..] else {
            return Err(format!("chord_midi.txt: {line:?} is not `start end label`"));
        };
        let parse = |t: &str| {
            t.parse::<f64>()
                .map_err(|e| format!("chord_midi.txt: {line:?}: {e}"))
        };
        let chord = Chord::from_harte(label).unwrap_or_else(|_| {
            unknown.push(label.to_string());
            None
        });
        spans.push((parse(start)?, parse(end)?, chord));
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut at = 0;
    let chords = (0..grid.steps())
        .map(|k| {
            let t = grid.time_of(k) + 0.01 * grid.beat_length(k / STEPS_PER_BEAT);
            while at < spans.len() && spans[at].1 <= t {
                at += 1;
            }
            spans.get(at).filter(|s| s.0 <= t).and_then(|s| s.2)
        })
        .collect();
    Ok((chords, unknown))
}

/// The key that lasts longest in `key_audio.txt` (`start end key` per line).
fn read_key(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [start, end, key] = fields[..] else {
                return None;
            };
            Some((end.parse::<f64>().ok()? - start.parse::<f64>().ok()?, key))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_live_core::music::chord::Quality;
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent};

    /// A type-1 file at 120 bpm (a quarter is 0.5 s): a tempo track, then a `MELODY`
    /// track with `notes` `(pitch, start, end)` in quarters.
    fn song_midi(notes: &[(u8, f64, f64)]) -> Vec<u8> {
        let event = |delta: u32, kind| TrackEvent {
            delta: u28::new(delta),
            kind,
        };
        let tempo = vec![
            event(
                0,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))),
            ),
            event(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let mut timed: Vec<(u32, bool, u8)> = notes
            .iter()
            .flat_map(|&(p, s, e)| {
                [
                    ((s * 480.0) as u32, true, p),
                    ((e * 480.0) as u32, false, p),
                ]
            })
            .collect();
        timed.sort_by_key(|&(t, on, _)| (t, on));
        let mut melody = vec![event(
            0,
            TrackEventKind::Meta(MetaMessage::TrackName(b"MELODY")),
        )];
        let mut now = 0;
        for (tick, on, pitch) in timed {
            let key = u7::new(pitch);
            let message = if on {
                MidiMessage::NoteOn {
                    key,
                    vel: u7::new(90),
                }
            } else {
                MidiMessage::NoteOff {
                    key,
                    vel: u7::new(0),
                }
            };
            melody.push(event(
                tick - now,
                TrackEventKind::Midi {
                    channel: u4::new(0),
                    message,
                },
            ));
            now = tick;
        }
        melody.push(event(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)));
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(480))),
            tracks: vec![tempo, melody],
        };
        let mut bytes = Vec::new();
        smf.write(&mut bytes).unwrap();
        bytes
    }

    use midly::TrackEventKind;

    /// One song: a pickup beat at 0.25 s, then bars of four beats (0.5 s each) from
    /// 0.75 s, a C major bar and an A minor bar, a melody of quarter notes from the first
    /// bar line, and a second song in 3/4 that is left out.
    fn pop909_folder() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("latent_live_pop909_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let song = dir.join("001");
        fs::create_dir_all(&song).unwrap();
        let beats: String = (0..10)
            .map(|i| {
                let bar = i % 4 == 1;
                format!(
                    "{} {:.1} {:.1}\n",
                    0.25 + 0.5 * i as f64,
                    (i % 2 == 1) as u8,
                    bar as u8
                )
            })
            .collect();
        fs::write(song.join("beat_midi.txt"), beats).unwrap();
        fs::write(
            song.join("chord_midi.txt"),
            "0.25\t0.75\tN\n0.75\t2.75\tC:maj\n2.75\t4.75\tA:min/b3\n4.75\t5.25\tX:weird\n",
        )
        .unwrap();
        fs::write(song.join("key_audio.txt"), "0.0\t5.25\tC:maj\n").unwrap();
        // Quarters from the first bar line (1.0 quarters in, at 120 bpm = 0.5 s per
        // quarter, so 0.75 s is 1.5 quarters); the last note is late by a 64th.
        let notes: Vec<(u8, f64, f64)> = (0..8)
            .map(|i| {
                let start = 1.5 + i as f64 + if i == 7 { 0.06 } else { 0.0 };
                (60 + 2 * i as u8, start, 1.5 + i as f64 + 0.9)
            })
            .collect();
        fs::write(song.join("001.mid"), song_midi(&notes)).unwrap();
        fs::create_dir_all(dir.join("002")).unwrap();
        dir
    }

    #[test]
    fn reads_melody_and_chords_on_the_annotated_beats() {
        let dir = pop909_folder();
        let meters = BTreeMap::from([
            (
                "001".to_string(),
                Meter {
                    beats_per_measure: 2,
                    quavers_per_beat: 2,
                },
            ),
            (
                "002".to_string(),
                Meter {
                    beats_per_measure: 3,
                    quavers_per_beat: 2,
                },
            ),
        ]);
        let corpus = Corpus::from_pop909(&dir, &meters, 1, SplitFractions::all_train(), 3).unwrap();
        assert_eq!(corpus.tunes, ["001"]);
        assert!(corpus.has_chords());
        assert_eq!(corpus.metadata["songs_in_common_time"], "1");
        assert_eq!(corpus.metadata["unknown_chord_labels"], r#"{"X:weird":1}"#);
        assert_eq!(corpus.metadata[TUNE_KEY], r#"["C:maj"]"#);
        // Two bars, from beats 1 and 5: the bar from beat 9 would run past the beats.
        assert_eq!(corpus.train.len(), 2);
        let c_major = Some(Chord::new(0, Quality::Major));
        let a_minor = Some(Chord {
            bass: 0,
            ..Chord::new(9, Quality::Minor)
        });
        for i in 0..2 {
            let events = corpus.train.get(i);
            let chords = corpus.train.chords(i).unwrap();
            let first = melody::class_pitch(events[0]).unwrap();
            // Every quarter an onset on its beat, two semitones up; the late one snaps.
            for beat in 0..4 {
                assert_eq!(
                    melody::class_pitch(events[beat * 4]),
                    Some(first + 2 * beat as u8),
                    "slice {i} beat {beat}: {events:?}"
                );
            }
            let expected = if first == 60 { c_major } else { a_minor };
            assert!(chords.iter().all(|&c| c == expected), "{chords:?}");
        }
        // The chords survive the file.
        let path = dir.join("pop.safetensors");
        corpus.save(&path).unwrap();
        assert_eq!(Corpus::load(&path).unwrap(), corpus);
        let _ = fs::remove_dir_all(&dir);
    }
}
