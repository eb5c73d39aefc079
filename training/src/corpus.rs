//! Folders of MIDI files into sliced, split training sets.
//!
//! A [`Corpus`] is built from a folder of MIDI files, one tune per file
//! ([`Corpus::from_midi_dir`]): every file is imported as a monophonic melody, cut into
//! windows of `bars` 4/4 bars with a hop of one bar, and the tunes are split into train,
//! validation and test sets *by tune*, so that no tune has slices on both sides of a split.
//! Everything is deterministic: paths are sorted and every random choice comes from a
//! seeded [`ChaCha8Rng`], so the same folder, bars and seed give the same corpus, byte
//! for byte once saved.
//!
//! Drum corpora come from folders of drum performances ([`Corpus::from_drum_dir`]), such
//! as the Groove MIDI Dataset, split as its `info.csv` says; groove corpora are the same
//! windows as played, each hit with its velocity and timing.
//!
//! The corpus is stored as one safetensors file ([`Corpus::save`], [`Corpus::load`]):
//! `u16` tensors `train`, `validation`, `test` of shape `[n, steps]` (one slice of events
//! a row), `u32` tensors `train_tune`, ... of shape `[n]` (the tune each slice came from,
//! an index into `tunes`), for groove corpora `u8` tensors `train_velocity`, ... and
//! `f32` tensors `train_shift`, ... of shape `[n, steps, 9]` (each hit's velocity and
//! shift off the grid, in steps), and header metadata `format`, `format_version`, `encoding`,
//! `bars`, `steps`, `tunes` (a JSON array of names) plus the free-form
//! [`Corpus::metadata`] map.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use latent_live_core::music::chord::Chord;
use latent_live_core::music::drums::{self, NUM_DRUM_CLASSES};
use latent_live_core::music::groove::{self, Feel, Groove, RoundTrip};
use latent_live_core::music::melody::{self, MAX_PITCH, MIN_PITCH, STEPS_PER_BAR};
use latent_live_core::music::{midi, Encoding, Event};

mod pop909;
pub use pop909::{Meter, POP909_INDEX, TUNE_KEY};

/// The `format` metadata value that marks a corpus file.
pub const FORMAT: &str = "latent_live.corpus";
/// Bumped when the layout of the file changes incompatibly.
pub const FORMAT_VERSION: u32 = 2;
/// Header metadata keys the file format itself uses; [`Corpus::metadata`] may not.
pub const RESERVED_KEYS: [&str; 6] = [
    "format",
    "format_version",
    "encoding",
    "bars",
    "steps",
    "tunes",
];
/// The performance list of a drum dataset folder (the Groove MIDI Dataset's).
pub const DRUM_INDEX: &str = "info.csv";
/// The split names, in file and report order.
pub const SPLIT_NAMES: [&str; 3] = ["train", "validation", "test"];

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("corpus file {path} not found (build one with `cargo xtask corpus`)")]
    NotFound { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no .mid or .midi files under {dir}")]
    NoMidiFiles { dir: PathBuf },
    #[error(
        "none of the {files} MIDI files under {dir} could be imported (first error: {first_error})"
    )]
    NothingImported {
        dir: PathBuf,
        files: usize,
        first_error: String,
    },
    #[error("no tune under {dir} is long enough for one {bars}-bar slice")]
    NoSlices { dir: PathBuf, bars: usize },
    #[error("invalid corpus parameters: {0}")]
    Invalid(String),
    #[error("{path} is not a valid corpus file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl CorpusError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            CorpusError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            CorpusError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        CorpusError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// The share of tunes each split gets; normalised by their sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitFractions {
    pub train: f64,
    pub validation: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 0.9,
            validation: 0.05,
            test: 0.05,
        }
    }
}

impl SplitFractions {
    /// Everything in test: for evaluating on a folder of someone else's MIDI.
    pub fn all_test() -> Self {
        SplitFractions {
            train: 0.0,
            validation: 0.0,
            test: 1.0,
        }
    }

    /// Everything in train.
    pub fn all_train() -> Self {
        SplitFractions {
            train: 1.0,
            validation: 0.0,
            test: 0.0,
        }
    }

    /// Shuffles each group of tunes (seeded) and deals it into the splits by these
    /// fractions: train, validation and test ids are appended to `assigned`.
    fn assign(
        &self,
        groups: &mut BTreeMap<&str, Vec<usize>>,
        rng: &mut ChaCha8Rng,
        assigned: &mut [Vec<usize>; 3],
    ) -> Result<(), CorpusError> {
        for ids in groups.values_mut() {
            ids.shuffle(rng);
            let [_, validation, test] = self.counts(ids.len())?;
            assigned[2].extend_from_slice(&ids[..test]);
            assigned[1].extend_from_slice(&ids[test..test + validation]);
            assigned[0].extend_from_slice(&ids[test + validation..]);
        }
        Ok(())
    }

    fn normalised(&self) -> Result<[f64; 3], CorpusError> {
        let f = [self.train, self.validation, self.test];
        if f.iter().any(|x| !x.is_finite() || *x < 0.0) || f.iter().sum::<f64>() <= 0.0 {
            return Err(CorpusError::Invalid(format!(
                "split fractions must be non-negative and not all zero, got {self:?}"
            )));
        }
        let sum: f64 = f.iter().sum();
        Ok(f.map(|x| x / sum))
    }

    /// How many of `n` tunes go to (train, validation, test). Groups of three or more
    /// tunes give every split with a non-zero fraction at least one tune; smaller groups
    /// go to train (or wherever the largest fraction points).
    fn counts(&self, n: usize) -> Result<[usize; 3], CorpusError> {
        let f = self.normalised()?;
        let mut counts = [0usize; 3];
        if n < 3 {
            let largest = (0..3)
                .max_by(|&a, &b| f[a].total_cmp(&f[b]).then(b.cmp(&a)))
                .unwrap();
            counts[largest] = n;
            return Ok(counts);
        }
        for s in 1..3 {
            counts[s] = ((n as f64 * f[s]).round() as usize).max(usize::from(f[s] > 0.0));
        }
        // Leave train at least one tune when it asked for any; trim the larger held-out split.
        let cap = n - usize::from(f[0] > 0.0);
        while counts[1] + counts[2] > cap {
            let s = if counts[1] >= counts[2] { 1 } else { 2 };
            counts[s] -= 1;
        }
        counts[0] = n - counts[1] - counts[2];
        Ok(counts)
    }
}

/// One split: `len()` slices of `steps` events each, row-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    pub steps: usize,
    pub events: Vec<Event>,
    /// The tune (index into [`Corpus::tunes`]) each slice came from.
    pub tune: Vec<u32>,
    /// For a groove corpus, how each step's hits are played (one per event); else empty.
    pub feel: Vec<[Feel; NUM_DRUM_CLASSES]>,
    /// For a chord corpus, the chord of every step (one per event); else empty.
    pub chords: Vec<Option<Chord>>,
}

impl Split {
    fn new(steps: usize) -> Self {
        Split {
            steps,
            events: Vec::new(),
            tune: Vec::new(),
            feel: Vec::new(),
            chords: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tune.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tune.is_empty()
    }

    /// Slice `i`'s events. Panics when `i >= len()`.
    pub fn get(&self, i: usize) -> &[Event] {
        &self.events[i * self.steps..(i + 1) * self.steps]
    }

    /// Slice `i` of a groove corpus, as played. Panics when `i >= len()`, or when the
    /// corpus holds no feel.
    pub fn groove(&self, i: usize) -> Groove {
        let steps = i * self.steps..(i + 1) * self.steps;
        Groove {
            events: self.events[steps.clone()].to_vec(),
            feel: self.feel[steps].to_vec(),
        }
    }

    /// Slice `i`'s chords, one per step, in a chord corpus; `None` in any other.
    pub fn chords(&self, i: usize) -> Option<&[Option<Chord>]> {
        (!self.chords.is_empty()).then(|| &self.chords[i * self.steps..(i + 1) * self.steps])
    }

    /// The chords of slices `indices`, as [`latent_live_core::model::MusicVae::batch_over`]
    /// reads them.
    pub fn chords_of(
        &self,
        indices: impl IntoIterator<Item = usize>,
    ) -> Option<Vec<&[Option<Chord>]>> {
        indices.into_iter().map(|i| self.chords(i)).collect()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[Event]> + '_ {
        // `max(1)` only guards `chunks_exact`; a split with steps == 0 holds no events.
        self.events.chunks_exact(self.steps.max(1))
    }

    /// How many different tunes have slices in this split.
    pub fn tune_count(&self) -> usize {
        self.tune.iter().collect::<HashSet<_>>().len()
    }

    fn push(&mut self, slice: &Slice, tune: u32) {
        debug_assert_eq!(slice.events.len(), self.steps);
        self.events.extend_from_slice(&slice.events);
        self.feel.extend_from_slice(&slice.feel);
        self.chords.extend_from_slice(&slice.chords);
        self.tune.push(tune);
    }
}

/// Slices and tunes per split for one collection (see [`Corpus::collections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CollectionCounts {
    /// Tunes with at least one slice, per split (train, validation, test).
    pub tunes: [usize; 3],
    pub slices: [usize; 3],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    pub encoding: Encoding,
    pub bars: usize,
    pub steps: usize,
    pub train: Split,
    pub validation: Split,
    pub test: Split,
    /// Tune names by index: paths relative to the source folder, `/`-separated.
    pub tunes: Vec<String>,
    /// Sources, seed, counts and anything else worth keeping with the data.
    pub metadata: BTreeMap<String, String>,
}

/// Where `cargo xtask corpus` writes a corpus, and where the other commands look for it:
/// `data/folk-<bars>bar.safetensors` for melodies, `data/pop-<bars>bar.safetensors` for
/// melodies over chords, `data/groove-<bars>bar.safetensors` for drums.
pub fn default_path(encoding: Encoding, chords: bool, bars: usize) -> PathBuf {
    let name = match (encoding, chords) {
        (Encoding::Melody, false) => "folk",
        (Encoding::Melody, true) => "pop",
        (Encoding::Drums, _) => "groove",
        (Encoding::Groove, _) => "groove-feel",
    };
    PathBuf::from(format!("data/{name}-{bars}bar.safetensors"))
}

/// The command that builds the corpus at [`default_path`].
pub fn build_command(encoding: Encoding, chords: bool, bars: usize) -> String {
    match (encoding, chords) {
        (Encoding::Melody, false) => format!("cargo xtask corpus --bars {bars}"),
        (Encoding::Melody, true) => {
            format!("cargo xtask corpus --pop909 <POP909 folder> --bars {bars}")
        }
        (Encoding::Drums, _) => {
            format!("cargo xtask corpus --drums <groove-v1.0.0-midionly folder> --bars {bars}")
        }
        (Encoding::Groove, _) => {
            format!("cargo xtask corpus --grooves <groove-v1.0.0-midionly folder> --bars {bars}")
        }
    }
}

/// The metadata key of a performance corpus's tempos, one per tune (a JSON array).
const TUNE_BPM: &str = "tune_bpm";

/// The metadata key of a performance corpus's kinds (`info.csv`'s `beat_type`: `beat` or
/// `fill`), one per tune.
const TUNE_KIND: &str = "tune_kind";

/// The collection a tune belongs to: the first folder of its name (`""` for none).
pub fn collection_of(tune: &str) -> &str {
    tune.split_once('/').map_or("", |(first, _)| first)
}

impl Corpus {
    /// Builds a corpus from every `.mid`/`.midi` file under `dir` (recursively, in sorted
    /// order), one tune per file, cut into `bars`-bar slices with a hop of one bar.
    ///
    /// * Files that fail to import are counted (`import_failures` in the metadata, with a
    ///   few examples) and skipped; it is an error only when none imports.
    /// * Tunes with the same notes as an earlier tune, up to transposition and a time
    ///   offset, are dropped (`duplicate_tunes`), so that a tune transcribed twice cannot
    ///   land on both sides of a split; tunes too short for one slice are dropped too.
    /// * Tunes are split by `split`, stratified by collection (the first folder under
    ///   `dir`), with a [`ChaCha8Rng`] seeded by `seed`.
    /// * Within a split, identical slices are kept once and slices without a single note
    ///   onset are dropped; the slices are then shuffled (seeded), so that the first `n`
    ///   slices of a split are a fair sample of it.
    /// * With `lead_sheets`, every file is a lead sheet ([`midi::import_lead_sheet`]: the
    ///   melody in one track, block chords in a second), and every slice keeps its
    ///   chords: a chord corpus of the user's own songs. Windows without a chord are
    ///   dropped, and files without a chord part are import failures.
    pub fn from_midi_dir(
        dir: &Path,
        bars: usize,
        split: SplitFractions,
        seed: u64,
        lead_sheets: bool,
    ) -> Result<Corpus, CorpusError> {
        if bars == 0 {
            return Err(CorpusError::Invalid("bars must be at least 1".into()));
        }
        split.normalised()?;
        let steps = bars * STEPS_PER_BAR;

        let mut files = Vec::new();
        collect_midi_files(dir, dir, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(CorpusError::NoMidiFiles {
                dir: dir.to_path_buf(),
            });
        }

        // Import and slice in parallel; `collect` keeps the sorted order.
        type Imported = Result<(Vec<(u8, u32, u32)>, Vec<Slice>), midi::MidiError>;
        let imported: Vec<Imported> = files
            .par_iter()
            .map(|(_, path)| {
                if lead_sheets {
                    let sheet = midi::import_lead_sheet_file(path)?;
                    let slices = midi::lead_sheet_slices(&sheet, bars).into_iter().map(
                        |(events, chords)| Slice {
                            chords,
                            ..Slice::quantized(events)
                        },
                    );
                    Ok((tune_fingerprint(&sheet.melody.notes), slices.collect()))
                } else {
                    let m = midi::import_file(path)?;
                    let slices = midi::slices(&m, bars).into_iter().map(Slice::quantized);
                    Ok((tune_fingerprint(&m.notes), slices.collect()))
                }
            })
            .collect();

        let mut failures = Vec::new();
        let mut seen_tunes: HashMap<Vec<(u8, u32, u32)>, usize> = HashMap::new();
        let (mut duplicate_tunes, mut too_short, mut bad_length) = (Vec::new(), 0usize, 0usize);
        let mut tunes = Vec::new();
        let mut tune_slices: Vec<Vec<Slice>> = Vec::new();
        for ((name, _), result) in files.iter().zip(imported) {
            let (fingerprint, slices) = match result {
                Ok(ok) => ok,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let before = slices.len();
            let slices: Vec<Slice> = slices
                .into_iter()
                .filter(|s| s.events.len() == steps)
                .collect();
            bad_length += before - slices.len();
            if slices.is_empty() {
                too_short += 1;
                continue;
            }
            if !fingerprint.is_empty() {
                if let Some(&first) = seen_tunes.get(&fingerprint) {
                    duplicate_tunes.push(format!("{name} = {}", tunes[first]));
                    continue;
                }
                seen_tunes.insert(fingerprint, tunes.len());
            }
            tunes.push(name.clone());
            tune_slices.push(slices);
        }
        let imported_count = files.len() - failures.len();
        if imported_count == 0 {
            return Err(CorpusError::NothingImported {
                dir: dir.to_path_buf(),
                files: files.len(),
                first_error: failures.first().cloned().unwrap_or_default(),
            });
        }
        if tunes.is_empty() {
            return Err(CorpusError::NoSlices {
                dir: dir.to_path_buf(),
                bars,
            });
        }

        // Split by tune, stratified by collection. BTreeMap: collections in sorted order.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut by_collection: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, name) in tunes.iter().enumerate() {
            by_collection
                .entry(collection_of(name))
                .or_default()
                .push(i);
        }
        let mut assigned: [Vec<usize>; 3] = Default::default();
        split.assign(&mut by_collection, &mut rng, &mut assigned)?;

        let mut metadata = BTreeMap::new();
        let splits = fill_splits(
            Encoding::Melody,
            steps,
            &tune_slices,
            &mut assigned,
            &mut rng,
            &mut metadata,
        );

        metadata.insert("source".into(), dir.display().to_string());
        metadata.insert("seed".into(), seed.to_string());
        metadata.insert(
            "split_fractions".into(),
            [split.train, split.validation, split.test]
                .map(|f| ((f * 1e6).round() / 1e6).to_string())
                .join("/"),
        );
        metadata.insert(
            "split_by".into(),
            "tune, stratified by collection (first folder)".into(),
        );
        metadata.insert("midi_files".into(), files.len().to_string());
        metadata.insert("import_failures".into(), failures.len().to_string());
        if !failures.is_empty() {
            let examples: Vec<&String> = failures.iter().take(10).collect();
            metadata.insert(
                "import_failure_examples".into(),
                serde_json::to_string(&examples).expect("strings serialise"),
            );
        }
        metadata.insert("duplicate_tunes".into(), duplicate_tunes.len().to_string());
        if !duplicate_tunes.is_empty() {
            let examples: Vec<&String> = duplicate_tunes.iter().take(10).collect();
            metadata.insert(
                "duplicate_tune_examples".into(),
                serde_json::to_string(&examples).expect("strings serialise"),
            );
        }
        metadata.insert("tunes_too_short".into(), too_short.to_string());
        if bad_length > 0 {
            metadata.insert("slices_wrong_length".into(), bad_length.to_string());
        }
        metadata.insert("tune_count".into(), tunes.len().to_string());

        let [train, validation, test] = splits;
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

    /// Builds a drum corpus from a folder of drum performances, one per MIDI file, cut
    /// into `bars`-bar windows with a hop of one bar ([`midi::drum_slices`]).
    ///
    /// * With an `info.csv` (the Groove MIDI Dataset's), the performances are those it
    ///   lists in 4/4, and each keeps its official split. Without one, every MIDI file is a
    ///   performance, and they are split by `split`, stratified by the first folder (the
    ///   drummer, in Groove's layout), with a [`ChaCha8Rng`] seeded by `seed`.
    /// * Windows without a hit are dropped, identical windows are kept once per split, and
    ///   each split is shuffled (seeded), as for melodies.
    /// * Nothing is augmented here: transposition means nothing to drums, the grid already
    ///   removes tempo, and a hop of one bar is the only shift that keeps bar lines in
    ///   place. Training may vary drum slices as a drummer would ([`DrumVariation`]).
    pub fn from_drum_dir(
        dir: &Path,
        bars: usize,
        split: SplitFractions,
        seed: u64,
    ) -> Result<Corpus, CorpusError> {
        Self::from_performances(dir, bars, split, seed, Encoding::Drums)
    }

    /// [`Corpus::from_drum_dir`] as played: every hit keeps its velocity and timing, and
    /// windows are kept once only where they repeat exactly, feel and all.
    pub fn from_groove_dir(
        dir: &Path,
        bars: usize,
        split: SplitFractions,
        seed: u64,
    ) -> Result<Corpus, CorpusError> {
        Self::from_performances(dir, bars, split, seed, Encoding::Groove)
    }

    fn from_performances(
        dir: &Path,
        bars: usize,
        split: SplitFractions,
        seed: u64,
        encoding: Encoding,
    ) -> Result<Corpus, CorpusError> {
        if bars == 0 {
            return Err(CorpusError::Invalid("bars must be at least 1".into()));
        }
        split.normalised()?;
        let steps = bars * STEPS_PER_BAR;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut metadata = BTreeMap::new();

        // (name, path, split, kind) per performance.
        let index = dir.join(DRUM_INDEX);
        let mut performances: Vec<(String, PathBuf, Option<usize>, String)> = Vec::new();
        if index.is_file() {
            let mut reader = csv::Reader::from_path(&index)
                .map_err(|e| CorpusError::corrupt(&index, e.to_string()))?;
            let headers = reader
                .headers()
                .map_err(|e| CorpusError::corrupt(&index, e.to_string()))?
                .clone();
            let column = |name: &str| {
                headers
                    .iter()
                    .position(|h| h == name)
                    .ok_or_else(|| CorpusError::corrupt(&index, format!("no `{name}` column")))
            };
            let (file, split_at, meter, kind) = (
                column("midi_filename")?,
                column("split")?,
                column("time_signature")?,
                column("beat_type")?,
            );
            let (mut other_meters, mut kinds) = (0usize, BTreeMap::<String, usize>::new());
            for row in reader.records() {
                let row = row.map_err(|e| CorpusError::corrupt(&index, e.to_string()))?;
                let field = |i: usize| row.get(i).unwrap_or_default();
                if field(meter) != "4-4" {
                    other_meters += 1;
                    continue;
                }
                let Some(s) = SPLIT_NAMES.iter().position(|&n| n == field(split_at)) else {
                    return Err(CorpusError::corrupt(
                        &index,
                        format!("`{}` has split `{}`", field(file), field(split_at)),
                    ));
                };
                *kinds.entry(field(kind).to_string()).or_default() += 1;
                performances.push((
                    field(file).to_string(),
                    dir.join(field(file)),
                    Some(s),
                    field(kind).to_string(),
                ));
            }
            metadata.insert(
                "split_by".into(),
                format!("performance, as {DRUM_INDEX} says"),
            );
            metadata.insert("performances_not_in_4_4".into(), other_meters.to_string());
            metadata.insert(
                "performance_kinds".into(),
                serde_json::to_string(&kinds).expect("counts serialise"),
            );
        } else {
            let mut files = Vec::new();
            collect_midi_files(dir, dir, &mut files)?;
            files.sort();
            performances.extend(
                files
                    .into_iter()
                    .map(|(name, path)| (name, path, None, String::new())),
            );
            metadata.insert(
                "split_by".into(),
                "performance, stratified by first folder".into(),
            );
        }
        if performances.is_empty() {
            return Err(CorpusError::NoMidiFiles {
                dir: dir.to_path_buf(),
            });
        }

        // Per performance: its windows and how many of its notes fell outside the classes.
        // Per performance: its windows, its tempo, how many notes fell outside the classes,
        // and (for grooves) how the whole performance survives the encoding.
        type Imported = Result<(Vec<Slice>, f64, usize, RoundTrip), String>;
        let import = |path: &Path| -> Result<(Vec<Slice>, f64, usize, RoundTrip), midi::MidiError> {
            Ok(match encoding {
                Encoding::Groove => {
                    let g = midi::import_groove_file(path)?;
                    let slices = midi::groove_slices(&g, bars)
                        .into_iter()
                        .map(|g| Slice {
                            events: g.events,
                            feel: g.feel,
                            chords: Vec::new(),
                        })
                        .collect();
                    (
                        slices,
                        g.bpm,
                        g.unmapped,
                        groove::round_trip(&g.strokes, g.steps as usize),
                    )
                }
                _ => {
                    let d = midi::import_drums_file(path)?;
                    (
                        midi::drum_slices(&d, bars)
                            .into_iter()
                            .map(Slice::quantized)
                            .collect(),
                        d.bpm,
                        d.unmapped,
                        RoundTrip::default(),
                    )
                }
            })
        };
        let imported: Vec<Imported> = performances
            .par_iter()
            .map(|(_, path, ..)| import(path).map_err(|e| e.to_string()))
            .collect();
        let (mut failures, mut too_short, mut unmapped) = (Vec::new(), 0usize, 0usize);
        let (mut tunes, mut tune_slices, mut fixed, mut tempos, mut kinds) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut round_trip = RoundTrip::default();
        for ((name, _, s, kind), result) in performances.iter().zip(imported) {
            if let Ok((.., trip)) = &result {
                round_trip.add(trip);
            }
            match result {
                Err(e) => failures.push(format!("{name}: {e}")),
                Ok((slices, ..)) if slices.is_empty() => too_short += 1,
                Ok((slices, bpm, dropped, _)) => {
                    unmapped += dropped;
                    fixed.push(*s);
                    tunes.push(name.clone());
                    tune_slices.push(slices);
                    tempos.push(bpm);
                    kinds.push(kind.clone());
                }
            }
        }
        if tunes.is_empty() {
            return match failures.first() {
                Some(first) if too_short == 0 => Err(CorpusError::NothingImported {
                    dir: dir.to_path_buf(),
                    files: performances.len(),
                    first_error: first.clone(),
                }),
                _ => Err(CorpusError::NoSlices {
                    dir: dir.to_path_buf(),
                    bars,
                }),
            };
        }

        let mut assigned: [Vec<usize>; 3] = Default::default();
        let mut unassigned: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in fixed.iter().enumerate() {
            match s {
                Some(s) => assigned[*s].push(i),
                None => unassigned
                    .entry(collection_of(&tunes[i]))
                    .or_default()
                    .push(i),
            }
        }
        split.assign(&mut unassigned, &mut rng, &mut assigned)?;
        let [train, validation, test] = fill_splits(
            encoding,
            steps,
            &tune_slices,
            &mut assigned,
            &mut rng,
            &mut metadata,
        );

        metadata.insert("source".into(), dir.display().to_string());
        metadata.insert("seed".into(), seed.to_string());
        metadata.insert("midi_files".into(), performances.len().to_string());
        metadata.insert("import_failures".into(), failures.len().to_string());
        if !failures.is_empty() {
            let examples: Vec<&String> = failures.iter().take(10).collect();
            metadata.insert(
                "import_failure_examples".into(),
                serde_json::to_string(&examples).expect("strings serialise"),
            );
        }
        metadata.insert("tunes_too_short".into(), too_short.to_string());
        metadata.insert("unmapped_drum_notes".into(), unmapped.to_string());
        metadata.insert(
            TUNE_BPM.into(),
            serde_json::to_string(&tempos).expect("numbers serialise"),
        );
        metadata.insert(
            TUNE_KIND.into(),
            serde_json::to_string(&kinds).expect("strings serialise"),
        );
        if encoding == Encoding::Groove {
            let r = round_trip;
            metadata.insert(
                "round_trip".into(),
                format!(
                    "{} of {} strokes of every performance come back from the groove rows, {} \
                     merged into a louder stroke of their class and step; the largest errors: \
                     {:.2e} steps, velocity {}",
                    r.kept, r.strokes, r.merged, r.max_time_error, r.max_velocity_error
                ),
            );
        }
        metadata.insert("augmentation".into(), "none".into());
        metadata.insert("tune_count".into(), tunes.len().to_string());
        Ok(Corpus {
            encoding,
            bars,
            steps,
            train,
            validation,
            test,
            tunes,
            metadata,
        })
    }

    /// Whether every slice comes with its chords (a corpus for chord-conditioned models).
    pub fn has_chords(&self) -> bool {
        self.splits().iter().any(|(_, s)| !s.chords.is_empty())
    }

    /// Each tune's tempo, as its file gives it (120 where the corpus does not record it):
    /// what turns a groove's timing into milliseconds.
    pub fn tune_bpm(&self) -> Vec<f64> {
        let recorded: Vec<f64> = self
            .metadata
            .get(TUNE_BPM)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        (0..self.tunes.len())
            .map(|t| {
                recorded
                    .get(t)
                    .copied()
                    .filter(|b| b.is_finite() && *b > 0.0)
                    .unwrap_or(120.0)
            })
            .collect()
    }

    /// Each tune's kind as its index labels it (`beat`, `fill`), `""` where it has none.
    pub fn tune_kinds(&self) -> Vec<String> {
        let recorded: Vec<String> = self
            .metadata
            .get(TUNE_KIND)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        (0..self.tunes.len())
            .map(|t| recorded.get(t).cloned().unwrap_or_default())
            .collect()
    }

    pub fn splits(&self) -> [(&'static str, &Split); 3] {
        [
            ("train", &self.train),
            ("validation", &self.validation),
            ("test", &self.test),
        ]
    }

    /// Tunes and slices per split for every collection (first folder of the tune names).
    pub fn collections(&self) -> BTreeMap<String, CollectionCounts> {
        let mut out: BTreeMap<String, CollectionCounts> = BTreeMap::new();
        for (s, (_, split)) in self.splits().into_iter().enumerate() {
            let mut tunes_seen = HashSet::new();
            for &t in &split.tune {
                let name = &self.tunes[t as usize];
                let counts = out.entry(collection_of(name).to_string()).or_default();
                counts.slices[s] += 1;
                if tunes_seen.insert(t) {
                    counts.tunes[s] += 1;
                }
            }
        }
        out
    }

    /// Tunes and slices per split, and per collection when there is more than one.
    /// Where the slices came from, in one line, for model cards.
    pub fn provenance(&self) -> String {
        let get = |k: &str| self.metadata.get(k).cloned().unwrap_or_else(|| "?".into());
        let origin = match (self.encoding, self.metadata.get("music21.version")) {
            _ if self.has_chords() => format!(
                "{} under {}, each 16th with its annotated chord",
                get("dataset"),
                get("source")
            ),
            (Encoding::Melody, Some(v)) => {
                format!("the folk collections of the music21 {v} wheel, converted with abc2midi")
            }
            (Encoding::Melody, None) => format!("the MIDI files under {}", get("source")),
            (Encoding::Drums | Encoding::Groove, _) => {
                format!("the drum performances under {}", get("source"))
            }
        };
        let command = self
            .metadata
            .get("command")
            .map(|c| format!(", built by `{c}`"))
            .unwrap_or_default();
        let unit = match self.encoding {
            Encoding::Melody if self.has_chords() => "songs",
            Encoding::Melody => "tunes",
            Encoding::Drums | Encoding::Groove => "performances",
        };
        format!("{} {unit} from {origin}{command}", get("tune_count"))
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        let unit = match self.encoding {
            Encoding::Melody => "tunes",
            Encoding::Drums | Encoding::Groove => "performances",
        };
        let _ = writeln!(
            out,
            "corpus: {} bars ({} steps), {} {unit}",
            self.bars,
            self.steps,
            self.tunes.len()
        );
        let _ = writeln!(out, "  {:<24} {:>8} {:>10}", "split", unit, "slices");
        for (name, split) in self.splits() {
            let _ = writeln!(
                out,
                "  {:<24} {:>8} {:>10}",
                name,
                split.tune_count(),
                split.len()
            );
        }
        let collections = self.collections();
        if collections.len() > 1 {
            let _ = writeln!(
                out,
                "  {:<24} {:>20} {:>24}",
                "collection", "tunes train/val/test", "slices train/val/test"
            );
            for (name, c) in &collections {
                let tunes = format!("{}/{}/{}", c.tunes[0], c.tunes[1], c.tunes[2]);
                let slices = format!("{}/{}/{}", c.slices[0], c.slices[1], c.slices[2]);
                let _ = writeln!(out, "  {:<24} {:>20} {:>24}", name, tunes, slices);
            }
        }
        out
    }

    /// Writes the corpus as one safetensors file (through a temporary file and a rename,
    /// so a reader never sees half a file). The header is written with sorted keys, so
    /// the same corpus always gives the same bytes.
    pub fn save(&self, path: &Path) -> Result<(), CorpusError> {
        if let Some(key) = self
            .metadata
            .keys()
            .find(|k| RESERVED_KEYS.contains(&k.as_str()))
        {
            return Err(CorpusError::Invalid(format!(
                "metadata key `{key}` is reserved by the corpus format"
            )));
        }
        for (name, split) in self.splits() {
            if split.steps != self.steps || split.events.len() != split.len() * self.steps {
                return Err(CorpusError::Invalid(format!(
                    "split `{name}` does not hold whole {}-step slices",
                    self.steps
                )));
            }
            if let Some(&t) = split.tune.iter().find(|&&t| t as usize >= self.tunes.len()) {
                return Err(CorpusError::Invalid(format!(
                    "split `{name}` refers to tune {t} of {}",
                    self.tunes.len()
                )));
            }
            let feel = if self.encoding == Encoding::Groove {
                split.events.len()
            } else {
                0
            };
            if split.feel.len() != feel {
                return Err(CorpusError::Invalid(format!(
                    "split `{name}` has feel for {} of its {} steps",
                    split.feel.len(),
                    split.events.len()
                )));
            }
            let chords = if self.has_chords() {
                split.events.len()
            } else {
                0
            };
            if split.chords.len() != chords {
                return Err(CorpusError::Invalid(format!(
                    "split `{name}` has chords for {} of its {} steps",
                    split.chords.len(),
                    split.events.len()
                )));
            }
        }

        let mut metadata = self.metadata.clone();
        metadata.insert("format".into(), FORMAT.into());
        metadata.insert("format_version".into(), FORMAT_VERSION.to_string());
        metadata.insert("encoding".into(), self.encoding.name().into());
        metadata.insert("bars".into(), self.bars.to_string());
        metadata.insert("steps".into(), self.steps.to_string());
        metadata.insert(
            "tunes".into(),
            serde_json::to_string(&self.tunes).expect("strings serialise"),
        );

        // Data: the 4-byte tensors first (aligned), then the u16 ones, then the u8 ones.
        let mut data: Vec<u8> = Vec::new();
        let mut tensors: BTreeMap<String, TensorHeader> = BTreeMap::new();
        for (name, split) in self.splits() {
            let start = data.len();
            data.extend(split.tune.iter().flat_map(|t| t.to_le_bytes()));
            tensors.insert(
                format!("{name}_tune"),
                TensorHeader {
                    dtype: "U32",
                    shape: vec![split.len()],
                    data_offsets: [start, data.len()],
                },
            );
        }
        let feel_shape = |split: &Split| vec![split.len(), self.steps, NUM_DRUM_CLASSES];
        if self.encoding == Encoding::Groove {
            for (name, split) in self.splits() {
                let start = data.len();
                data.extend(
                    split
                        .feel
                        .iter()
                        .flatten()
                        .flat_map(|f| f.shift.to_le_bytes()),
                );
                tensors.insert(
                    format!("{name}_shift"),
                    TensorHeader {
                        dtype: "F32",
                        shape: feel_shape(split),
                        data_offsets: [start, data.len()],
                    },
                );
            }
        }
        for (name, split) in self.splits() {
            let start = data.len();
            data.extend(split.events.iter().flat_map(|e| e.to_le_bytes()));
            tensors.insert(
                name.to_string(),
                TensorHeader {
                    dtype: "U16",
                    shape: vec![split.len(), self.steps],
                    data_offsets: [start, data.len()],
                },
            );
            if self.has_chords() {
                let start = data.len();
                data.extend(
                    split
                        .chords
                        .iter()
                        .flat_map(|&c| Chord::code(c).to_le_bytes()),
                );
                tensors.insert(
                    format!("{name}_chord"),
                    TensorHeader {
                        dtype: "U16",
                        shape: vec![split.len(), self.steps],
                        data_offsets: [start, data.len()],
                    },
                );
            }
        }
        if self.encoding == Encoding::Groove {
            for (name, split) in self.splits() {
                let start = data.len();
                data.extend(split.feel.iter().flatten().map(|f| f.velocity));
                tensors.insert(
                    format!("{name}_velocity"),
                    TensorHeader {
                        dtype: "U8",
                        shape: feel_shape(split),
                        data_offsets: [start, data.len()],
                    },
                );
            }
        }
        let header = Header { metadata, tensors };
        let mut header = serde_json::to_vec(&header).expect("header serialises");
        header.resize(header.len().next_multiple_of(8), b' ');

        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| CorpusError::io(parent, e))?;
        }
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        let write = || -> std::io::Result<()> {
            let mut file = std::io::BufWriter::new(fs::File::create(&tmp)?);
            file.write_all(&(header.len() as u64).to_le_bytes())?;
            file.write_all(&header)?;
            file.write_all(&data)?;
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            CorpusError::io(path, e)
        })
    }

    /// Reads a corpus written by [`Corpus::save`], checking everything it relies on.
    pub fn load(path: &Path) -> Result<Corpus, CorpusError> {
        let bytes = fs::read(path).map_err(|e| CorpusError::io(path, e))?;
        let corrupt = |reason: String| CorpusError::corrupt(path, reason);
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| corrupt(format!("not a safetensors file ({e})")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| corrupt(format!("not a safetensors file ({e})")))?;
        let mut metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();

        let mut take = |key: &str| {
            metadata
                .remove(key)
                .ok_or_else(|| corrupt(format!("no `{key}` metadata")))
        };
        let format = take("format")?;
        if format != FORMAT {
            return Err(corrupt(format!(
                "`format` is `{format}`, expected `{FORMAT}`"
            )));
        }
        let version = take("format_version")?;
        if version != FORMAT_VERSION.to_string() {
            return Err(corrupt(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let encoding = take("encoding")?;
        let encoding = Encoding::from_name(&encoding)
            .ok_or_else(|| corrupt(format!("unknown `encoding` `{encoding}`")))?;
        let bars: usize = take("bars")?
            .parse()
            .map_err(|e| corrupt(format!("bad `bars`: {e}")))?;
        let steps: usize = take("steps")?
            .parse()
            .map_err(|e| corrupt(format!("bad `steps`: {e}")))?;
        if bars == 0 || steps != bars * STEPS_PER_BAR {
            return Err(corrupt(format!("{steps} steps do not make {bars} bars")));
        }
        let tunes: Vec<String> = serde_json::from_str(&take("tunes")?)
            .map_err(|e| corrupt(format!("bad `tunes`: {e}")))?;

        let read_feel =
            |name: &str, n: usize| -> Result<Vec<[Feel; NUM_DRUM_CLASSES]>, CorpusError> {
                let shape = [n, steps, NUM_DRUM_CLASSES];
                let tensor = |suffix: &str, dtype: safetensors::Dtype| {
                    let key = format!("{name}_{suffix}");
                    let t = file
                        .tensor(&key)
                        .map_err(|_| corrupt(format!("no `{key}` tensor")))?;
                    if t.dtype() != dtype || t.shape() != shape {
                        return Err(corrupt(format!(
                            "`{key}` is {:?} {:?}, expected {dtype:?} {shape:?}",
                            t.dtype(),
                            t.shape()
                        )));
                    }
                    Ok(t)
                };
                let (velocity, shift) = (
                    tensor("velocity", safetensors::Dtype::U8)?,
                    tensor("shift", safetensors::Dtype::F32)?,
                );
                let shifts = shift
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let feel: Vec<Feel> = velocity
                    .data()
                    .iter()
                    .zip(shifts)
                    .map(|(&velocity, shift)| Feel {
                        velocity: velocity.min(127),
                        shift: if shift.is_finite() {
                            shift.clamp(-0.5, 0.5)
                        } else {
                            0.0
                        },
                    })
                    .collect();
                Ok(feel
                    .chunks_exact(NUM_DRUM_CLASSES)
                    .map(|c| std::array::from_fn(|i| c[i]))
                    .collect())
            };
        let chorded = file.tensor("train_chord").is_ok();
        let read_split = |name: &str| -> Result<Split, CorpusError> {
            let events = file
                .tensor(name)
                .map_err(|_| corrupt(format!("no `{name}` tensor")))?;
            if events.dtype() != safetensors::Dtype::U16
                || events.shape().len() != 2
                || events.shape()[1] != steps
            {
                return Err(corrupt(format!(
                    "`{name}` is {:?} {:?}, expected U16 [n, {steps}]",
                    events.dtype(),
                    events.shape()
                )));
            }
            let n = events.shape()[0];
            let tune_name = format!("{name}_tune");
            let tune = file
                .tensor(&tune_name)
                .map_err(|_| corrupt(format!("no `{tune_name}` tensor")))?;
            if tune.dtype() != safetensors::Dtype::U32 || tune.shape() != [n] {
                return Err(corrupt(format!(
                    "`{tune_name}` is {:?} {:?}, expected U32 [{n}]",
                    tune.dtype(),
                    tune.shape()
                )));
            }
            let tune: Vec<u32> = tune
                .data()
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(&t) = tune.iter().find(|&&t| t as usize >= tunes.len()) {
                return Err(corrupt(format!(
                    "`{tune_name}` refers to tune {t} of {}",
                    tunes.len()
                )));
            }
            let events: Vec<Event> = events
                .data()
                .chunks_exact(2)
                .map(|b| Event::from_le_bytes([b[0], b[1]]))
                .collect();
            let classes = encoding.num_classes();
            if let Some(&e) = events.iter().find(|&&e| e as usize >= classes) {
                return Err(corrupt(format!(
                    "`{name}` holds event {e}, outside the {classes} {} classes",
                    encoding.name()
                )));
            }
            let feel = if encoding == Encoding::Groove {
                read_feel(name, n)?
            } else {
                Vec::new()
            };
            // Chords are optional: only a chord corpus has them, in every split.
            let chord_name = format!("{name}_chord");
            let chords = match file.tensor(&chord_name) {
                Err(_) if !chorded => Vec::new(),
                Err(_) => return Err(corrupt(format!("no `{chord_name}` tensor"))),
                Ok(_) if !chorded => {
                    return Err(corrupt(format!(
                        "`{chord_name}` in a corpus without chords"
                    )))
                }
                Ok(t) if t.dtype() == safetensors::Dtype::U16 && t.shape() == [n, steps] => t
                    .data()
                    .chunks_exact(2)
                    .map(|b| Chord::from_code(u16::from_le_bytes([b[0], b[1]])))
                    .collect::<Option<_>>()
                    .ok_or_else(|| corrupt(format!("`{chord_name}` holds a code no chord has")))?,
                Ok(t) => {
                    return Err(corrupt(format!(
                        "`{chord_name}` is {:?} {:?}, expected U16 [{n}, {steps}]",
                        t.dtype(),
                        t.shape()
                    )))
                }
            };
            Ok(Split {
                steps,
                events,
                tune,
                feel,
                chords,
            })
        };
        let train = read_split("train")?;
        let validation = read_split("validation")?;
        let test = read_split("test")?;
        Ok(Corpus {
            encoding,
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

/// Fills the splits with the slices of the tunes `assigned` to each: a slice without an
/// onset is dropped, one seen before in its split is kept once, and each split's rows
/// are shuffled so that its first `n` slices are a fair sample. The counts go into
/// `metadata`.
fn fill_splits(
    encoding: Encoding,
    steps: usize,
    tune_slices: &[Vec<Slice>],
    assigned: &mut [Vec<usize>; 3],
    rng: &mut ChaCha8Rng,
    metadata: &mut BTreeMap<String, String>,
) -> [Split; 3] {
    let mut splits: [Split; 3] = std::array::from_fn(|_| Split::new(steps));
    for (s, ids) in assigned.iter_mut().enumerate() {
        ids.sort_unstable();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let (mut duplicates, mut silent) = (0usize, 0usize);
        let mut rows: Vec<(&Slice, u32)> = Vec::new();
        for &t in ids.iter() {
            for slice in &tune_slices[t] {
                if !slice.events.iter().any(|&e| encoding.is_onset(e)) {
                    silent += 1;
                } else if seen.insert(slice.key()) {
                    rows.push((slice, t as u32));
                } else {
                    duplicates += 1;
                }
            }
        }
        rows.shuffle(rng);
        for (slice, t) in rows {
            splits[s].push(slice, t);
        }
        let name = SPLIT_NAMES[s];
        metadata.insert(format!("{name}.tunes"), splits[s].tune_count().to_string());
        metadata.insert(format!("{name}.slices"), splits[s].len().to_string());
        metadata.insert(format!("{name}.duplicate_slices"), duplicates.to_string());
        metadata.insert(format!("{name}.silent_slices"), silent.to_string());
    }
    splits
}

/// One window of a tune: its events and, for grooves, its feel; for chord corpora, its
/// chords.
struct Slice {
    events: Vec<Event>,
    feel: Vec<[Feel; NUM_DRUM_CLASSES]>,
    chords: Vec<Option<Chord>>,
}

impl Slice {
    fn quantized(events: Vec<Event>) -> Self {
        Self {
            events,
            feel: Vec::new(),
            chords: Vec::new(),
        }
    }

    /// The bytes that tell two windows apart.
    fn key(&self) -> Vec<u8> {
        let events = self.events.iter().flat_map(|e| e.to_le_bytes());
        let feel = self
            .feel
            .iter()
            .flatten()
            .flat_map(|f| [f.velocity].into_iter().chain(f.shift.to_le_bytes()));
        let chords = self
            .chords
            .iter()
            .flat_map(|&c| Chord::code(c).to_le_bytes());
        events.chain(feel).chain(chords).collect()
    }
}

#[derive(serde::Serialize)]
struct TensorHeader {
    dtype: &'static str,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

#[derive(serde::Serialize)]
struct Header {
    #[serde(rename = "__metadata__")]
    metadata: BTreeMap<String, String>,
    #[serde(flatten)]
    tensors: BTreeMap<String, TensorHeader>,
}

/// Transposes `events` by a random shift ([`transposition`]). For training batches only:
/// validation and test are scored untransposed.
pub fn augment(events: &[Event], rng: &mut impl Rng, max_semitones: i32) -> Vec<Event> {
    let shift = transposition(events, rng, max_semitones);
    melody::transpose(events, shift).unwrap_or_else(|| events.to_vec())
}

/// Each drum class's weight for a loss that counts rare drums more: `(most / hits)^gamma`
/// from the hits of each class in `split`'s drum patterns (the most hit class weighs 1; a
/// class never hit weighs as if hit once). `gamma` 0 weighs them all 1; 1 makes every
/// class weigh as much as the most common in all.
pub fn drum_rarity(split: &Split, gamma: f64) -> Vec<f64> {
    let mut hits = [0u64; NUM_DRUM_CLASSES];
    for &event in &split.events {
        for (c, count) in hits.iter_mut().enumerate() {
            *count += u64::from(event >> c & 1 == 1);
        }
    }
    let most = hits.iter().copied().max().unwrap_or(0).max(1) as f64;
    hits.iter()
        .map(|&h| (most / h.max(1) as f64).powf(gamma))
        .collect()
}

/// A random shift in `-max_semitones..=max_semitones`, drawn uniformly among the shifts
/// that keep every note of `events` in 21..=108 (0 always qualifies).
pub fn transposition(events: &[Event], rng: &mut impl Rng, max_semitones: i32) -> i32 {
    let max = max_semitones.max(0);
    let pitches = events.iter().filter_map(|&e| melody::class_pitch(e));
    let Some((lo, hi)) = pitches.fold(None, |acc: Option<(u8, u8)>, p| {
        Some(acc.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))))
    }) else {
        return 0;
    };
    let down = max.min(lo as i32 - MIN_PITCH as i32);
    let up = max.min(MAX_PITCH as i32 - hi as i32);
    if down + up > 0 {
        rng.random_range(-down..=up)
    } else {
        0
    }
}

/// How training varies drum slices, as a drummer or a kit could have played them. Each
/// is a probability; all 0 leaves slices as they are.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrumVariation {
    /// A slice plays its closed hi-hat part on the ride and its ride part on the hi-hat,
    /// as a drummer moves the same figure between them.
    pub swap_hat_ride: f64,
    /// A slice plays its three toms in another order, as on a kit tuned or set up
    /// otherwise: the fill keeps its rhythm and moves between other drums.
    pub shuffle_toms: f64,
    /// A slice keeps its kick, snare and toms and plays the hi-hats, crash and ride of
    /// another slice of its split, as one drummer's feet and snare under another's
    /// time-keeping. Held-out grooves are far from any training groove (a copy of the
    /// nearest matches two steps in three); recombined limbs are the cheapest source of
    /// grooves the model has not seen whole.
    pub borrow_cymbals: f64,
    /// Each hit is left out, a sparser take of the same groove.
    pub drop_hits: f64,
}

impl DrumVariation {
    /// A variation of slice `i` of the drum split `split`: cymbals borrowed, parts
    /// exchanged, then hits left out. A slice every hit would leave keeps its hits. For
    /// training batches only, as [`augment`] is.
    pub fn vary(&self, split: &Split, i: usize, rng: &mut impl Rng) -> Vec<Event> {
        let mut events = split.get(i).to_vec();
        if chance(self.borrow_cymbals, rng) {
            let cymbals = drums::event_of(drums::CYMBALS);
            let partner = split.get(rng.random_range(0..split.len()));
            let borrowed: Vec<Event> = events
                .iter()
                .zip(partner)
                .map(|(e, p)| (e & !cymbals) | (p & cymbals))
                .collect();
            if borrowed.iter().any(|&e| e != drums::NO_HITS) {
                events = borrowed;
            }
        }
        let (hat, ride) = (drums::CLOSED_HAT, drums::RIDE);
        let mut part_of: [usize; NUM_DRUM_CLASSES] = std::array::from_fn(|c| c);
        if chance(self.swap_hat_ride, rng) {
            part_of.swap(hat, ride);
        }
        if chance(self.shuffle_toms, rng) {
            // One of the five orders other than the kit's own.
            let mut toms = drums::TOMS;
            while toms == drums::TOMS {
                toms.shuffle(rng);
            }
            for (from, to) in drums::TOMS.into_iter().zip(toms) {
                part_of[from] = to;
            }
        }
        let moved: Vec<Event> = events
            .iter()
            .map(|&e| drums::event_of(drums::classes_in(e).map(|c| part_of[c])))
            .collect();
        if self.drop_hits <= 0.0 {
            return moved;
        }
        let p = self.drop_hits.min(1.0);
        let sparser: Vec<Event> = moved
            .iter()
            .map(|&e| drums::event_of(drums::classes_in(e).filter(|_| !rng.random_bool(p))))
            .collect();
        if sparser.iter().all(|&e| e == drums::NO_HITS) {
            moved
        } else {
            sparser
        }
    }
}

/// Whether an event of probability `p` happens; draws nothing when `p` is 0.
fn chance(p: f64, rng: &mut impl Rng) -> bool {
    p > 0.0 && rng.random_bool(p.min(1.0))
}

/// The notes of a tune up to transposition and a time offset: equal fingerprints are the
/// same tune for [`Corpus::from_midi_dir`]'s duplicate check.
fn tune_fingerprint(notes: &[melody::Note]) -> Vec<(u8, u32, u32)> {
    let Some(first) = notes.first() else {
        return Vec::new();
    };
    let lowest = notes.iter().map(|n| n.pitch).min().unwrap_or(first.pitch);
    notes
        .iter()
        .map(|n| {
            (
                n.pitch - lowest,
                n.start.saturating_sub(first.start),
                n.end.saturating_sub(first.start),
            )
        })
        .collect()
}

/// Every `.mid`/`.midi` file under `dir` as (name relative to `root` with `/`, path).
fn collect_midi_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), CorpusError> {
    let entries = fs::read_dir(dir).map_err(|e| CorpusError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CorpusError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| CorpusError::io(&path, e))?;
        // Symlinked folders are not followed (no cycles); symlinked files are.
        if kind.is_dir() {
            collect_midi_files(root, &path, out)?;
            continue;
        }
        let is_midi = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"));
        if is_midi && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_live_core::music::melody::Note;
    use latent_live_core::music::midi;

    /// A scratch folder removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "latent_live_corpus_{tag}_{}_{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Writes a one-track 4/4 MIDI file of (pitch, start step, end step) notes.
    fn write_midi(path: &Path, notes: &[(u8, u32, u32)]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, midi::export(&as_notes(notes), 120.0)).unwrap();
    }

    fn as_notes(notes: &[(u8, u32, u32)]) -> Vec<Note> {
        notes
            .iter()
            .map(|&(pitch, start, end)| Note { pitch, start, end })
            .collect()
    }

    /// A random melody of `bars` bars of 8th and quarter notes around `base`.
    fn random_tune(rng: &mut ChaCha8Rng, bars: u32, base: u8) -> Vec<(u8, u32, u32)> {
        let mut notes = Vec::new();
        let mut step = 0;
        while step < bars * 16 {
            let len = if rng.random_bool(0.5) { 2 } else { 4 };
            let end = (step + len).min(bars * 16);
            notes.push((base + rng.random_range(0..12u8), step, end));
            step = end;
        }
        notes
    }

    /// `per_collection` tunes of 4 to 7 bars in each of two collections, plus one
    /// unreadable file and one exact duplicate.
    fn build_dir(dir: &Path, per_collection: usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        for collection in ["alpha", "beta"] {
            for i in 0..per_collection {
                let bars = rng.random_range(4..=7);
                let tune = random_tune(&mut rng, bars, 48 + (i % 24) as u8);
                write_midi(&dir.join(collection).join(format!("tune{i:03}.mid")), &tune);
            }
        }
        fs::copy(
            dir.join("alpha/tune000.mid"),
            dir.join("beta/zz_copy_of_alpha0.mid"),
        )
        .unwrap();
        fs::write(dir.join("beta/broken.mid"), b"MThd this is not a MIDI file").unwrap();
        fs::write(dir.join("beta/notes.txt"), b"not MIDI, ignored").unwrap();
    }

    fn fractions() -> SplitFractions {
        SplitFractions {
            train: 0.6,
            validation: 0.2,
            test: 0.2,
        }
    }

    fn tunes_of(split: &Split) -> HashSet<u32> {
        split.tune.iter().copied().collect()
    }

    #[test]
    fn lead_sheets_make_a_chord_corpus() {
        let dir = TempDir::new("lead-sheets");
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // A bar each: C, Am, F, G (the last in first inversion).
        let names = ["C", "Am", "F", "G/B"].map(|s| Chord::parse(s).unwrap());
        let chords: Vec<Option<Chord>> = (0..6 * 16).map(|t| names[t / 16 % 4]).collect();
        for i in 0..10 {
            let tune = as_notes(&random_tune(&mut rng, 6, 60 + i as u8));
            let sheet = midi::export_lead_sheet(&tune, 80, &chords, 120.0);
            fs::write(dir.0.join(format!("song{i}.mid")), sheet).unwrap();
        }
        write_midi(&dir.0.join("melody-only.mid"), &[(60, 0, 64)]);
        let corpus = Corpus::from_midi_dir(&dir.0, 2, fractions(), 3, true).unwrap();
        assert!(corpus.has_chords());
        assert_eq!(
            corpus.metadata["import_failures"], "1",
            "a file without chords"
        );
        for (_, split) in corpus.splits() {
            for i in 0..split.len() {
                let chords = split.chords(i).unwrap();
                // Each window starts on a bar, so it holds two of the chords in order.
                let first = names.iter().position(|&c| c == chords[0]).unwrap();
                assert!(chords[..16].iter().all(|&c| c == names[first]));
                assert!(chords[16..].iter().all(|&c| c == names[(first + 1) % 4]));
                assert!(split.get(i).iter().all(|&e| e < 90));
            }
        }
        assert!(corpus.train.len() > 20);
    }

    #[test]
    fn splits_are_disjoint_by_tune() {
        let dir = TempDir::new("disjoint");
        build_dir(&dir.0, 12);
        let corpus = Corpus::from_midi_dir(&dir.0, 2, fractions(), 7, false).unwrap();
        assert_eq!(corpus.steps, 32);
        assert_eq!(corpus.metadata["midi_files"], "26");
        assert_eq!(corpus.metadata["import_failures"], "1");
        assert_eq!(corpus.metadata["duplicate_tunes"], "1");
        assert_eq!(corpus.tunes.len(), 24);
        let (train, validation, test) = (
            tunes_of(&corpus.train),
            tunes_of(&corpus.validation),
            tunes_of(&corpus.test),
        );
        assert!(
            train.is_disjoint(&validation)
                && train.is_disjoint(&test)
                && validation.is_disjoint(&test)
        );
        assert_eq!(train.len() + validation.len() + test.len(), 24);
        // Stratified: each collection of 12 gives 2 validation and 2 test tunes.
        for c in corpus.collections().values() {
            assert_eq!(c.tunes, [8, 2, 2]);
        }
        // Every slice is a whole window, unique within its split, and has a note.
        for (_, split) in corpus.splits() {
            assert!(!split.is_empty());
            let unique: HashSet<&[Event]> = split.iter().collect();
            assert_eq!(unique.len(), split.len());
            assert!(split
                .iter()
                .all(|s| s.len() == 32 && s.iter().any(|&e| e >= 2)));
        }
        // A tune of b bars gives at most b - 1 two-bar windows.
        assert!(corpus.train.len() <= 16 * 6);
        assert!(corpus.summary().contains("validation"));
    }

    #[test]
    fn same_seed_same_corpus_other_seed_other_split() {
        let dir = TempDir::new("seed");
        build_dir(&dir.0, 12);
        let a = Corpus::from_midi_dir(&dir.0, 2, fractions(), 7, false).unwrap();
        let b = Corpus::from_midi_dir(&dir.0, 2, fractions(), 7, false).unwrap();
        assert_eq!(a, b);
        let c = Corpus::from_midi_dir(&dir.0, 2, fractions(), 8, false).unwrap();
        assert_ne!(tunes_of(&a.test), tunes_of(&c.test));
        // Saving is deterministic too.
        let (pa, pb) = (dir.0.join("a.safetensors"), dir.0.join("b.safetensors"));
        a.save(&pa).unwrap();
        b.save(&pb).unwrap();
        assert_eq!(fs::read(pa).unwrap(), fs::read(pb).unwrap());
    }

    #[test]
    fn save_load_round_trip() {
        let dir = TempDir::new("roundtrip");
        build_dir(&dir.0, 6);
        let corpus =
            Corpus::from_midi_dir(&dir.0.join("alpha"), 4, SplitFractions::default(), 3, false)
                .unwrap();
        assert_eq!(corpus.steps, 64);
        let path = dir.0.join("out/nested/corpus.safetensors");
        corpus.save(&path).unwrap();
        let loaded = Corpus::load(&path).unwrap();
        assert_eq!(loaded, corpus);
        assert_eq!(loaded.metadata.get("seed").map(String::as_str), Some("3"));
        // Plain safetensors readers see the tensors.
        let bytes = fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("train").unwrap().shape(),
            &[corpus.train.len(), 64]
        );
        assert_eq!(
            st.tensor("test_tune").unwrap().dtype(),
            safetensors::Dtype::U32
        );
    }

    #[test]
    fn load_reports_missing_and_corrupt_files() {
        let dir = TempDir::new("corrupt");
        let missing = Corpus::load(&dir.0.join("nope.safetensors")).unwrap_err();
        assert!(matches!(missing, CorpusError::NotFound { .. }), "{missing}");
        assert!(missing.to_string().contains("cargo xtask corpus"));

        let garbage = dir.0.join("garbage.safetensors");
        fs::write(&garbage, b"definitely not safetensors").unwrap();
        assert!(matches!(
            Corpus::load(&garbage),
            Err(CorpusError::Corrupt { .. })
        ));

        build_dir(&dir.0.join("midi"), 4);
        let corpus = Corpus::from_midi_dir(&dir.0.join("midi"), 2, fractions(), 1, false).unwrap();
        let good = dir.0.join("good.safetensors");
        corpus.save(&good).unwrap();
        let bytes = fs::read(&good).unwrap();
        let truncated = dir.0.join("truncated.safetensors");
        fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
        assert!(matches!(
            Corpus::load(&truncated),
            Err(CorpusError::Corrupt { .. })
        ));

        // A valid safetensors file that is not a corpus.
        let other = dir.0.join("other.safetensors");
        let data = [1u8, 2, 3, 4];
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![4], &data).unwrap();
        safetensors::serialize_to_file([("x", view)], None, &other).unwrap();
        let err = Corpus::load(&other).unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
    }

    #[test]
    fn folders_without_usable_midi_are_errors() {
        let dir = TempDir::new("empty");
        assert!(matches!(
            Corpus::from_midi_dir(&dir.0, 2, fractions(), 1, false),
            Err(CorpusError::NoMidiFiles { .. })
        ));
        fs::write(dir.0.join("bad.mid"), b"garbage").unwrap();
        assert!(matches!(
            Corpus::from_midi_dir(&dir.0, 2, fractions(), 1, false),
            Err(CorpusError::NothingImported { .. })
        ));
        assert!(matches!(
            Corpus::from_midi_dir(&dir.0.join("missing"), 2, fractions(), 1, false),
            Err(CorpusError::NotFound { .. })
        ));
    }

    #[test]
    fn split_counts() {
        let f = SplitFractions::default();
        assert_eq!(f.counts(100).unwrap(), [90, 5, 5]);
        assert_eq!(f.counts(3).unwrap(), [1, 1, 1]);
        assert_eq!(f.counts(2).unwrap(), [2, 0, 0]);
        assert_eq!(f.counts(0).unwrap(), [0, 0, 0]);
        assert_eq!(SplitFractions::all_test().counts(2).unwrap(), [0, 0, 2]);
        assert_eq!(SplitFractions::all_test().counts(50).unwrap(), [0, 0, 50]);
        assert_eq!(SplitFractions::all_train().counts(50).unwrap(), [50, 0, 0]);
        assert!(SplitFractions {
            train: -1.0,
            validation: 0.0,
            test: 0.0
        }
        .counts(5)
        .is_err());
    }

    fn split_of(slices: &[&[Event]]) -> Split {
        Split {
            steps: slices[0].len(),
            events: slices.concat(),
            tune: (0..slices.len() as u32).collect(),
            feel: Vec::new(),
            chords: Vec::new(),
        }
    }

    #[test]
    fn borrowed_cymbals_come_from_another_slice_over_the_slices_own_kick_snare_and_toms() {
        let (kick, snare, tom) = (1 << 0, 1 << 1, 1 << drums::TOMS[0]);
        let (hat, open, crash, ride) = (1 << drums::CLOSED_HAT, 1 << 3, 1 << 7, 1 << drums::RIDE);
        let rock: [Event; 4] = [kick | hat, hat, snare | hat, open];
        let jazz: [Event; 4] = [ride, drums::NO_HITS, ride | tom, crash];
        let only_cymbals: [Event; 4] = [hat, hat, hat, hat];
        let feet_only: [Event; 4] = [kick, drums::NO_HITS, drums::NO_HITS, drums::NO_HITS];
        let split = split_of(&[&rock, &jazz, &only_cymbals, &feet_only]);
        let borrow = DrumVariation {
            borrow_cymbals: 1.0,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut seen = HashSet::new();
        for _ in 0..100 {
            let out = borrow.vary(&split, 0, &mut rng);
            assert_eq!(
                out.iter()
                    .map(|e| e & (kick | snare | tom))
                    .collect::<Vec<_>>(),
                [kick, 0, snare, 0],
                "its own kick, snare and toms"
            );
            seen.insert(out);
            let lone = borrow.vary(&split, 2, &mut rng);
            assert!(
                lone.iter().any(|&e| e != drums::NO_HITS),
                "a slice of cymbals alone is never emptied"
            );
        }
        let with = |cymbals: [Event; 4]| -> Vec<Event> {
            [kick, 0, snare, 0]
                .iter()
                .zip(cymbals)
                .map(|(a, b)| a | b)
                .collect()
        };
        let expected: HashSet<Vec<Event>> = [
            with([hat, hat, hat, open]),
            with([ride, 0, ride, crash]),
            with([hat; 4]),
            with([0; 4]),
        ]
        .into();
        assert_eq!(seen, expected, "each slice's cymbals, its own included");
    }

    #[test]
    fn drum_variations_swap_hat_and_ride_and_leave_out_hits_but_never_all() {
        let (kick, hat, ride): (Event, Event, Event) =
            (1, 1 << drums::CLOSED_HAT, 1 << drums::RIDE);
        let slice = [kick | hat, hat, ride, hat | ride, drums::NO_HITS, kick];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let split = split_of(&[&slice]);
        let vary = |v: DrumVariation, rng: &mut ChaCha8Rng| v.vary(&split, 0, rng);
        assert_eq!(vary(DrumVariation::default(), &mut rng), slice);
        assert_eq!(
            vary(
                DrumVariation {
                    swap_hat_ride: 1.0,
                    ..Default::default()
                },
                &mut rng
            ),
            [kick | ride, ride, hat, hat | ride, drums::NO_HITS, kick]
        );
        assert_eq!(
            vary(
                DrumVariation {
                    drop_hits: 1.0,
                    ..Default::default()
                },
                &mut rng
            ),
            slice,
            "a slice every hit would leave keeps its hits"
        );
        let hits = |events: &[Event]| events.iter().map(|e| e.count_ones()).sum::<u32>();
        let (mut kept, mut fewer) = (0, 0);
        for _ in 0..200 {
            let out = vary(
                DrumVariation {
                    drop_hits: 0.25,
                    ..Default::default()
                },
                &mut rng,
            );
            assert!(
                out.iter().zip(&slice).all(|(o, s)| o & !s == 0),
                "only hits of the slice remain"
            );
            kept += hits(&out);
            fewer += (hits(&out) < hits(&slice)) as u32;
        }
        let share = kept as f64 / (200 * hits(&slice)) as f64;
        assert!(
            (0.65..0.85).contains(&share),
            "about three hits in four kept, got {share}"
        );
        assert!(fewer > 150);
    }

    #[test]
    fn shuffled_toms_keep_the_fill_and_move_it_to_other_toms() {
        let [low, mid, high] = drums::TOMS.map(|c| 1 << c);
        let (kick, snare): (Event, Event) = (1, 1 << 1);
        let fill = [
            high,
            high | snare,
            mid,
            mid,
            low | kick,
            drums::NO_HITS,
            low,
            kick,
        ];
        let tom_bits = low | mid | high;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let split = split_of(&[&fill]);
        let mut orders = HashSet::new();
        for _ in 0..100 {
            let out = DrumVariation {
                shuffle_toms: 1.0,
                ..Default::default()
            }
            .vary(&split, 0, &mut rng);
            assert_ne!(out, fill, "always another order");
            for (o, f) in out.iter().zip(&fill) {
                assert_eq!(o & !tom_bits, f & !tom_bits, "the rest of the kit stays");
                assert_eq!(
                    o.count_ones(),
                    f.count_ones(),
                    "each tom hit moves to one tom"
                );
            }
            orders.insert(out);
        }
        assert_eq!(orders.len(), 5, "every other order of three toms");
    }

    #[test]
    fn augment_keeps_notes_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let high = melody::encode(
            &[
                melody::Note {
                    pitch: 105,
                    start: 0,
                    end: 4,
                },
                melody::Note {
                    pitch: 100,
                    start: 4,
                    end: 8,
                },
            ],
            16,
        );
        let mut shifts = HashSet::new();
        for _ in 0..500 {
            let out = augment(&high, &mut rng, 5);
            let shift = melody::class_pitch(out[0]).unwrap() as i32 - 105;
            assert!((-5..=3).contains(&shift), "{shift}");
            assert_eq!(melody::transpose(&high, shift).unwrap(), out);
            shifts.insert(shift);
        }
        assert_eq!(shifts.len(), 9, "every allowed shift is drawn");
        let silence = vec![melody::NO_EVENT; 16];
        assert_eq!(augment(&silence, &mut rng, 5), silence);
        assert_eq!(augment(&high, &mut rng, 0), high);
        let wide = melody::encode(
            &[
                melody::Note {
                    pitch: 21,
                    start: 0,
                    end: 2,
                },
                melody::Note {
                    pitch: 108,
                    start: 2,
                    end: 4,
                },
            ],
            8,
        );
        assert_eq!(augment(&wide, &mut rng, 5), wide);
    }

    /// A drum performance of `bars` bars: kick, snare and hats, varied by `seed`.
    fn write_drums(path: &Path, bars: u32, seed: u32) {
        use latent_live_core::music::drums::{Hit, GM_NOTES};
        let mut hits = Vec::new();
        for step in 0..bars * 16 {
            if step % 2 == 0 {
                hits.push(Hit { step, class: 2 });
            }
            if step % 8 == 0 || (step + seed).is_multiple_of(13) {
                hits.push(Hit {
                    step,
                    class: (step / 4 % 2) as u8,
                });
            }
        }
        hits.sort();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, midi::export_drums(&hits, 100.0, &GM_NOTES, |_| 100)).unwrap();
    }

    #[test]
    fn groove_corpora_keep_each_hit_as_played() {
        use latent_live_core::music::drums::GM_NOTES;
        use latent_live_core::music::groove::Stroke;
        let dir = TempDir::new("grooves");
        let mut csv = String::from(
            "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,audio_filename,\
             duration,split\n",
        );
        // The same quantized beat, played twice with other feel: both windows are kept.
        for (i, split) in ["train", "train", "test"].iter().enumerate() {
            // From step 2: a stroke ahead of the file's start is exported at its start.
            let strokes: Vec<Stroke> = (2..64)
                .filter(|step| step % 2 == 0)
                .map(|step| Stroke {
                    class: if step % 8 == 4 { 1 } else { 2 },
                    time: step as f64 + 0.1 * i as f64 - 0.05,
                    velocity: 40 + (step % 7) as u8 * 10 + i as u8,
                })
                .collect();
            let file = format!("d{i}/p.mid");
            fs::create_dir_all(dir.0.join(format!("d{i}"))).unwrap();
            fs::write(
                dir.0.join(&file),
                midi::export_groove(&strokes, 100.0, &GM_NOTES),
            )
            .unwrap();
            csv.push_str(&format!("d,s,{i},funk,100,beat,4-4,{file},,10,{split}\n"));
        }
        fs::write(dir.0.join(DRUM_INDEX), csv).unwrap();
        let grooves = Corpus::from_groove_dir(&dir.0, 2, SplitFractions::default(), 7).unwrap();
        let drums = Corpus::from_drum_dir(&dir.0, 2, SplitFractions::default(), 7).unwrap();
        assert_eq!(grooves.encoding, Encoding::Groove);
        // Drums keep one of each repeated window; grooves keep the windows whose feel differs.
        assert!(
            grooves.train.len() > drums.train.len(),
            "{} vs {}",
            grooves.train.len(),
            drums.train.len()
        );
        assert_eq!(grooves.train.feel.len(), grooves.train.events.len());
        for i in 0..grooves.train.len() {
            let g = grooves.train.groove(i);
            for stroke in g.strokes() {
                assert!(stroke.velocity >= 40, "{stroke:?}");
                let shift = stroke.time - stroke.time.round();
                assert!(
                    [-0.05, 0.05].iter().any(|s| (shift - s).abs() < 0.01),
                    "{stroke:?}"
                );
            }
        }
        assert!(
            grooves.tune_bpm().iter().all(|&b| (b - 100.0).abs() < 0.01),
            "{:?}",
            grooves.tune_bpm()
        );
        let path = dir.0.join("grooves.safetensors");
        grooves.save(&path).unwrap();
        assert_eq!(Corpus::load(&path).unwrap(), grooves);
    }

    #[test]
    fn drum_corpora_keep_the_official_split_and_skip_other_meters() {
        let dir = TempDir::new("drums");
        let mut csv = String::from(
            "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,audio_filename,\
             duration,split\n",
        );
        let rows = [
            ("d1/a.mid", "train", "4-4", "beat"),
            ("d1/b.mid", "train", "4-4", "fill"),
            ("d2/c.mid", "validation", "4-4", "beat"),
            ("d2/d.mid", "test", "4-4", "beat"),
            ("d2/e.mid", "train", "3-4", "beat"),
        ];
        for (i, (file, split, meter, kind)) in rows.iter().enumerate() {
            write_drums(&dir.0.join(file), 4 + i as u32, i as u32);
            csv.push_str(&format!(
                "d,s,{i},funk,100,{kind},{meter},{file},,10,{split}\n"
            ));
        }
        fs::write(dir.0.join(DRUM_INDEX), csv).unwrap();
        let corpus = Corpus::from_drum_dir(&dir.0, 2, SplitFractions::default(), 7).unwrap();
        assert_eq!(corpus.encoding, Encoding::Drums);
        let names = |split: &Split| -> Vec<&str> {
            let mut n: Vec<&str> = split
                .tune
                .iter()
                .map(|&t| corpus.tunes[t as usize].as_str())
                .collect();
            n.sort();
            n.dedup();
            n
        };
        assert_eq!(names(&corpus.train), ["d1/a.mid", "d1/b.mid"]);
        assert_eq!(names(&corpus.validation), ["d2/c.mid"]);
        assert_eq!(names(&corpus.test), ["d2/d.mid"]);
        assert_eq!(corpus.metadata["performances_not_in_4_4"], "1");
        let kinds: Vec<(String, String)> = corpus
            .tunes
            .iter()
            .cloned()
            .zip(corpus.tune_kinds())
            .collect();
        assert!(
            kinds.contains(&("d1/b.mid".into(), "fill".into()))
                && kinds.contains(&("d2/c.mid".into(), "beat".into())),
            "{kinds:?}"
        );
        // Hop of one bar: a 4-bar performance gives 3 two-bar windows (fewer when some
        // repeat), none empty.
        assert!(
            corpus.validation.len() <= 5 && corpus.validation.len() >= 2,
            "{}",
            corpus.validation.len()
        );
        assert!(corpus.train.iter().all(|w| w.iter().any(|&e| e != 0)));
        // Saved and loaded, it is the same corpus, drums included.
        let path = dir.0.join("drums.safetensors");
        corpus.save(&path).unwrap();
        assert_eq!(Corpus::load(&path).unwrap(), corpus);
    }
}
