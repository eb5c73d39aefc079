//! `cargo xtask corpus`: the folk-melody training set, rebuilt reproducibly from the
//! ABC tune books in the music21 wheel on PyPI.
//!
//! 1. `pip download music21==<pinned> --no-deps` into `data/cache` (once; the wheel's
//!    SHA-256 is checked for the pinned version), and the folk collections' `.abc` files
//!    and the corpus licence notes extracted from it (a wheel is a zip; Python's
//!    `zipfile` does it, Python being needed for pip anyway).
//! 2. Every `.abc` file converted with `abc2midi` (Debian's `abcmidi`), one MIDI file per
//!    tune, into `data/midi/<collection>/<book>/<X number>.mid`; tunes that do not
//!    convert are counted and skipped.
//! 3. [`Corpus::from_midi_dir`] on `data/midi`: sliced, deduplicated, split by tune with a
//!    fixed seed, saved to `data/folk-<bars>bar.safetensors` with the sources, counts,
//!    versions and licence notes in its metadata.
//!
//! Every step works from sorted paths and fixed seeds, so the same wheel, `abc2midi` and
//! arguments give the same file, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use latent_live_core::model::Config;
use latent_live_core::music::Encoding;
use latent_live_training::corpus::{self, Corpus, Meter, SplitFractions};

/// The music21 release the corpus is built from, pinned for reproducibility.
pub const MUSIC21_VERSION: &str = "10.5.1";
/// SHA-256 of `music21-10.5.1-py3-none-any.whl` as downloaded from PyPI.
const MUSIC21_WHEEL_SHA256: &str =
    "dc3309498c4c95cebdf8d4f20c868deb6b63bce1d929cad4f51a7ccc982987b1";

/// `-NGUI`: no accompaniment from guitar chords; `-NGRA`: no grace notes (they would
/// steal time from the main notes on a 16th grid); `-NFER`: fermatas keep their written
/// length; `-NCOM`: no comments in the MIDI files.
const ABC2MIDI_FLAGS: [&str; 6] = ["-quiet", "-silent", "-NGUI", "-NGRA", "-NFER", "-NCOM"];
/// A single abc2midi run (one book) that takes longer than this is killed and its tunes
/// counted as failures.
const ABC2MIDI_TIMEOUT: Duration = Duration::from_secs(120);

/// Marks a MIDI folder as written by this command, so that it may clear it.
const MARKER: &str = ".latent_live_corpus";

/// The folk collections of the music21 corpus, with what is known of their status.
const COLLECTIONS: [(&str, &str); 6] = [
    (
        "airdsAirs",
        "James Aird, A Selection of Scotch, English, Irish and Foreign Airs (Glasgow, 1778-1803): \
         public-domain books; ABC transcription by Jack Campin",
    ),
    (
        "essenFolksong",
        "Essen Folksong Collection (EsAC; H. Schaffrath, E. Dahlig-Turek), ABC by Seymour Shlien: \
         legal status unclear, permission given for non-commercial distribution and use in \
         music21 (research / non-commercial use)",
    ),
    (
        "miscFolk",
        "American colonial and Civil War fife tunes, and Bruce & Stokoe's Northumbrian Minstrelsy \
         (1882): public-domain tunes; ABC transcriptions by Jack Campin, no licence stated",
    ),
    (
        "nottingham-dataset",
        "two tunes from the Nottingham Music Database (E. Foxley): folk tunes; distributed with \
         music21, no licence stated",
    ),
    (
        "oneills1850",
        "Francis O'Neill, O'Neill's Music of Ireland (1903, 1850 melodies): public-domain book; \
         ABC transcriptions by volunteers (Norbert Paap, Henrik Norbeck, Bob Safranek and others)",
    ),
    (
        "ryansMammoth",
        "Ryan's Mammoth Collection (Boston, 1883): public-domain book; ABC transcriptions by \
         volunteers (Ray Davies, Bob Puckette, John Walsh and others)",
    ),
];

#[derive(clap::Args, Debug, Clone)]
pub struct CorpusArgs {
    /// Build a drum corpus from this folder of drum performances instead (the Groove MIDI
    /// Dataset, `groove-v1.0.0-midionly`, split by its `info.csv`).
    #[arg(long, value_name = "DIR", conflicts_with = "grooves")]
    pub drums: Option<PathBuf>,
    /// Build a groove corpus from this folder instead: the same windows as played, each
    /// hit with its velocity and timing (for the groove models).
    #[arg(long, value_name = "DIR", conflicts_with = "pop909")]
    pub grooves: Option<PathBuf>,
    /// Build a chord corpus from this POP909 folder instead: the melody track of every
    /// song in common time, each step with its annotated chord (for the chord models).
    #[arg(long, value_name = "DIR", conflicts_with = "drums")]
    pub pop909: Option<PathBuf>,
    /// Bars per slice: 2 for the flat model, 4 or 16 for hierarchical ones.
    #[arg(long, default_value_t = 2)]
    pub bars: usize,
    /// Output file [default: data/folk-<bars>bar.safetensors].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the train/validation/test split.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Share of tunes held out for validation.
    #[arg(long, default_value_t = 0.05)]
    pub validation: f64,
    /// Share of tunes held out for test.
    #[arg(long, default_value_t = 0.05)]
    pub test: f64,
    /// Where the wheel and the extracted ABC files are kept.
    #[arg(long, default_value = "data/cache")]
    pub cache: PathBuf,
    /// Where the converted MIDI files go (cleared and rewritten on every run).
    #[arg(long, default_value = "data/midi")]
    pub midi_dir: PathBuf,
    /// The music21 release to take the tunes from.
    #[arg(long, default_value = MUSIC21_VERSION)]
    pub music21_version: String,
    /// Parallel abc2midi runs [default: the number of CPUs].
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl CorpusArgs {
    /// The split `--validation` and `--test` ask for; train takes the rest.
    fn fractions(&self) -> SplitFractions {
        SplitFractions {
            train: 1.0 - self.validation - self.test,
            validation: self.validation,
            test: self.test,
        }
    }
}

/// The first line of a dataset folder's `LICENSE`, kept in the corpus's metadata.
fn note_licence(corpus: &mut Corpus, dir: &Path) {
    if let Ok(text) = fs::read_to_string(dir.join("LICENSE")) {
        corpus.metadata.insert(
            "licence".into(),
            text.lines().next().unwrap_or_default().trim().to_string(),
        );
    }
}

pub fn run(args: &CorpusArgs) -> Result<()> {
    let started = Instant::now();
    ensure!(args.bars >= 1, "--bars must be at least 1");
    if let Some(dir) = &args.drums {
        return performances(args, dir, Encoding::Drums, started);
    }
    if let Some(dir) = &args.grooves {
        return performances(args, dir, Encoding::Groove, started);
    }
    if let Some(dir) = &args.pop909 {
        return pop909(args, dir, started);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/folk-{}bar.safetensors", args.bars)));
    let fractions = args.fractions();
    ensure!(
        fractions.train > 0.0 && args.validation >= 0.0 && args.test >= 0.0,
        "--validation and --test must be non-negative and leave some tunes for training"
    );
    let abc2midi_version = abc2midi_version()?;

    // 1. The wheel, and the ABC files in it.
    let wheel = fetch_wheel(&args.cache, &args.music21_version)?;
    let sha256 = sha256(&wheel)?;
    if args.music21_version == MUSIC21_VERSION && sha256 != MUSIC21_WHEEL_SHA256 {
        bail!(
            "{} has SHA-256 {sha256}, expected {MUSIC21_WHEEL_SHA256}; delete it to download it \
             again",
            wheel.display()
        );
    }
    let extracted = args.cache.join(format!("music21-{}", args.music21_version));
    extract_collections(&wheel, &extracted)?;
    let corpus_root = extracted.join("music21").join("corpus");
    let t_extract = started.elapsed();

    // 2. ABC to MIDI.
    let (books, mut stats) = read_books(&corpus_root)?;
    prepare_midi_dir(&args.midi_dir)?;
    let scratch = args.cache.join("abc2midi-scratch");
    remove_dir_if_exists(&scratch)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let converted = convert_books(&books, &scratch, &args.midi_dir, jobs)?;
    remove_dir_if_exists(&scratch)?;
    let mut index = BTreeMap::new();
    let mut failure_examples = Vec::new();
    for (book, result) in books.iter().zip(&converted) {
        let s = stats
            .get_mut(&book.collection)
            .expect("collection of a book");
        s.converted += result.converted.len();
        s.failed += book.tunes.len() - result.converted.len();
        for (x, name) in &result.converted {
            let tune = book
                .tunes
                .iter()
                .find(|t| t.x == *x)
                .expect("converted tune");
            index.insert(name.clone(), serde_json::json!({ "title": tune.title, "meter": tune.meter, "abc": book.source, "x": x }));
        }
        for x in book
            .tunes
            .iter()
            .map(|t| t.x)
            .filter(|x| !result.converted.iter().any(|(y, _)| y == x))
        {
            if failure_examples.len() < 10 {
                failure_examples.push(format!(
                    "{} X:{x}{}",
                    book.source,
                    result.message.as_deref().unwrap_or("")
                ));
            }
        }
    }
    fs::write(
        args.midi_dir.join("index.json"),
        serde_json::to_string_pretty(&index)? + "\n",
    )
    .with_context(|| format!("writing {}", args.midi_dir.join("index.json").display()))?;
    let total_converted: usize = stats.values().map(|s| s.converted).sum();
    ensure!(
        total_converted > 0,
        "abc2midi converted no tune; first failures: {failure_examples:?}"
    );
    let t_convert = started.elapsed();

    // 3. The corpus.
    let mut corpus = Corpus::from_midi_dir(&args.midi_dir, args.bars, fractions, args.seed, false)
        .with_context(|| format!("building the corpus from {}", args.midi_dir.display()))?;
    let counts = corpus.collections();
    for (name, s) in stats.iter_mut() {
        if let Some(c) = counts.get(name) {
            s.in_corpus = c.tunes.iter().sum();
        }
    }
    let meta = &mut corpus.metadata;
    meta.insert("music21.version".into(), args.music21_version.clone());
    meta.insert("music21.wheel".into(), file_name(&wheel));
    meta.insert("music21.wheel_sha256".into(), sha256);
    meta.insert("abc2midi.version".into(), abc2midi_version);
    meta.insert("abc2midi.flags".into(), ABC2MIDI_FLAGS.join(" "));
    meta.insert(
        "command".into(),
        format!(
            "cargo xtask corpus --bars {} --seed {} --validation {} --test {} --music21-version {}",
            args.bars, args.seed, args.validation, args.test, args.music21_version
        ),
    );
    meta.insert("collections".into(), serde_json::to_string(&stats)?);
    if !failure_examples.is_empty() {
        meta.insert(
            "abc2midi.failure_examples".into(),
            serde_json::to_string(&failure_examples)?,
        );
    }
    for (name, licence) in COLLECTIONS {
        if stats.contains_key(name) {
            meta.insert(format!("licence.{name}"), licence.into());
        }
    }
    for (key, path) in [
        ("licence.music21_corpus", corpus_root.join("license.txt")),
        (
            "licence.essenFolksong_notes",
            corpus_root.join("essenFolksong").join("license.txt"),
        ),
    ] {
        if let Ok(text) = fs::read_to_string(&path) {
            meta.insert(key.into(), strip_comment_header(&text));
        }
    }
    corpus
        .save(&out)
        .with_context(|| format!("saving {}", out.display()))?;
    let t_total = started.elapsed();

    // Report.
    println!();
    print!("{}", corpus.summary());
    println!();
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>7} {:>9} {:>22} {:>24}",
        "collection",
        "abc tunes",
        "dup skip",
        "converted",
        "failed",
        "in corpus",
        "tunes train/val/test",
        "slices train/val/test"
    );
    for (name, s) in &stats {
        let c = counts.get(name).copied().unwrap_or_default();
        println!(
            "{:<20} {:>9} {:>9} {:>9} {:>7} {:>9} {:>22} {:>24}",
            name,
            s.abc_tunes,
            s.duplicates_skipped,
            s.converted,
            s.failed,
            s.in_corpus,
            format!("{}/{}/{}", c.tunes[0], c.tunes[1], c.tunes[2]),
            format!("{}/{}/{}", c.slices[0], c.slices[1], c.slices[2]),
        );
    }
    let m = &corpus.metadata;
    let get = |k: &str| m.get(k).map_or("0", String::as_str);
    println!(
        "\nMIDI files {}, import failures {}, duplicate tunes dropped {}, tunes shorter than {} \
         bars {}",
        get("midi_files"),
        get("import_failures"),
        get("duplicate_tunes"),
        args.bars,
        get("tunes_too_short"),
    );
    println!(
        "duplicate slices dropped (train/validation/test): {}/{}/{}",
        get("train.duplicate_slices"),
        get("validation.duplicate_slices"),
        get("test.duplicate_slices")
    );
    if !failure_examples.is_empty() {
        println!(
            "abc2midi failures, first ones: {}",
            failure_examples.join("; ")
        );
    }
    println!("\nsources and licences:");
    for (name, licence) in COLLECTIONS {
        if stats.contains_key(name) {
            println!("  {name}: {licence}");
        }
    }
    println!(
        "  (music21/corpus/license.txt: \"Some encodings included in the corpus may not be used \
         for commercial uses or have other restrictions\")"
    );
    println!(
        "\nwrote {} ({} bytes) in {:.1} s (extract {:.1} s, abc2midi {:.1} s with {jobs} jobs, \
         corpus {:.1} s)",
        out.display(),
        fs::metadata(&out).map(|m| m.len()).unwrap_or(0),
        t_total.as_secs_f64(),
        t_extract.as_secs_f64(),
        (t_convert - t_extract).as_secs_f64(),
        (t_total - t_convert).as_secs_f64(),
    );
    Ok(())
}

/// Per-collection counts, kept in the corpus metadata as JSON.
#[derive(Debug, Default, serde::Serialize)]
struct CollectionStats {
    abc_files: usize,
    /// Tunes in the ABC files taken (after the skips below).
    abc_tunes: usize,
    /// Tunes skipped as a second transcription of a tune already taken.
    duplicates_skipped: usize,
    /// ABC files skipped entirely (music21's test fixtures).
    files_skipped: Vec<String>,
    converted: usize,
    failed: usize,
    /// Tunes with slices in the corpus (after import, length and duplicate checks).
    in_corpus: usize,
}

/// One tune of an ABC file.
#[derive(Debug, Clone)]
struct AbcTune {
    x: u32,
    title: String,
    /// The first `M:` field, as written (`6/8`, `C|`, ...).
    meter: String,
    text: Vec<u8>,
}

/// One `.abc` file: what comes before its first tune, and the tunes to convert.
#[derive(Debug)]
struct Book {
    collection: String,
    /// Path under the collection, without `.abc`, `/`-separated.
    stem: String,
    /// Path under `music21/corpus`, for reports.
    source: String,
    preamble: Vec<u8>,
    tunes: Vec<AbcTune>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn abc2midi_version() -> Result<String> {
    let output = Command::new("abc2midi").arg("-ver").output().context(
        "cannot run `abc2midi`; install it (Debian/Ubuntu: `sudo apt-get install abcmidi`, macOS: \
         `brew install abcmidi`)",
    )?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(if text.is_empty() {
        String::from_utf8_lossy(&output.stderr).trim().to_string()
    } else {
        text
    })
}

fn python() -> Result<&'static str> {
    for candidate in ["python3", "python"] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(candidate);
        }
    }
    bail!("`cargo xtask corpus` needs Python 3 with pip (to download the music21 wheel from PyPI)")
}

/// The wheel in `cache`, downloaded with pip when it is not there yet.
fn fetch_wheel(cache: &Path, version: &str) -> Result<PathBuf> {
    let wheel = cache.join(format!("music21-{version}-py3-none-any.whl"));
    if wheel.is_file() {
        println!("music21 {version}: using {}", wheel.display());
        return Ok(wheel);
    }
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    println!(
        "music21 {version}: downloading the wheel from PyPI into {}",
        cache.display()
    );
    let status = Command::new(python()?)
        .args([
            "-m",
            "pip",
            "download",
            &format!("music21=={version}"),
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(cache)
        .status()
        .context("running pip")?;
    ensure!(
        status.success(),
        "`pip download music21=={version}` failed ({status})"
    );
    ensure!(
        wheel.is_file(),
        "pip did not leave {} behind",
        wheel.display()
    );
    Ok(wheel)
}

fn sha256(path: &Path) -> Result<String> {
    let output = Command::new(python()?)
        .args([
            "-c",
            "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .context("hashing the wheel")?;
    ensure!(
        output.status.success(),
        "hashing {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Extracts the folk collections' files and the corpus licence note into `dest`
/// (cleared first), keeping the wheel's paths (`dest/music21/corpus/...`).
fn extract_collections(wheel: &Path, dest: &Path) -> Result<()> {
    remove_dir_if_exists(dest)?;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let prefixes: Vec<String> = COLLECTIONS
        .iter()
        .map(|(name, _)| format!("music21/corpus/{name}/"))
        .collect();
    const SCRIPT: &str = r#"
import sys, zipfile
wheel, dest, prefixes = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    names = sorted(n for n in z.namelist()
                   if not n.endswith('/') and (n == 'music21/corpus/license.txt' or any(n.startswith(p) for p in prefixes)))
    for n in names:
        z.extract(n, dest)
print(len(names))
"#;
    let output = Command::new(python()?)
        .args(["-c", SCRIPT])
        .arg(wheel)
        .arg(dest)
        .args(&prefixes)
        .output()
        .context("extracting the wheel")?;
    ensure!(
        output.status.success(),
        "extracting {} failed: {}",
        wheel.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "extracted {} files of the folk collections into {}",
        String::from_utf8_lossy(&output.stdout).trim(),
        dest.display()
    );
    Ok(())
}

/// Every `.abc` file of every collection present, in sorted order, split into tunes,
/// with second transcriptions of a tune skipped.
fn read_books(corpus_root: &Path) -> Result<(Vec<Book>, BTreeMap<String, CollectionStats>)> {
    let mut books = Vec::new();
    let mut stats = BTreeMap::new();
    for (collection, _) in COLLECTIONS {
        let dir = corpus_root.join(collection);
        if !dir.is_dir() {
            println!("note: the wheel has no {collection} collection");
            continue;
        }
        let mut files = Vec::new();
        collect_files(&dir, &mut files)?;
        files.sort();
        let s: &mut CollectionStats = stats.entry(collection.to_string()).or_default();
        let mut seen_numbers = BTreeSet::new();
        for path in files {
            let relative = path.strip_prefix(&dir).expect("under the collection");
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let Some(stem) = relative.strip_suffix(".abc") else {
                if relative != "license.txt" {
                    println!("note: ignoring {collection}/{relative} (not ABC)");
                }
                continue;
            };
            // music21's own test fixtures, mostly copies of tunes in the other files.
            if collection == "essenFolksong" && stem.starts_with("test") {
                s.files_skipped.push(relative.clone());
                continue;
            }
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let (preamble, mut tunes) = split_tunes(&bytes);
            // O'Neill's tune numbers are the X: numbers; some ranges were transcribed
            // twice, by different people, into different files: keep the first.
            if collection == "oneills1850" {
                let before = tunes.len();
                tunes.retain(|t| seen_numbers.insert(t.x));
                s.duplicates_skipped += before - tunes.len();
            }
            // abc2midi names its output files by X: number; a repeated number would clash.
            let mut numbers = BTreeSet::new();
            let before = tunes.len();
            tunes.retain(|t| numbers.insert(t.x));
            s.duplicates_skipped += before - tunes.len();
            s.abc_files += 1;
            s.abc_tunes += tunes.len();
            books.push(Book {
                collection: collection.to_string(),
                stem: stem.to_string(),
                source: format!("{collection}/{relative}"),
                preamble,
                tunes,
            });
        }
    }
    ensure!(
        !books.is_empty(),
        "no ABC files of the folk collections under {}",
        corpus_root.display()
    );
    Ok((books, stats))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Splits an ABC file at its `X:` lines: (what comes before the first tune, the tunes).
/// Tunes whose `X:` field has no number are dropped (abc2midi could not name them).
fn split_tunes(bytes: &[u8]) -> (Vec<u8>, Vec<AbcTune>) {
    let mut preamble = Vec::new();
    let mut tunes: Vec<AbcTune> = Vec::new();
    let mut current: Option<AbcTune> = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"X:") {
            if let Some(tune) = current.take() {
                tunes.push(tune);
            }
            let digits: String = String::from_utf8_lossy(rest)
                .trim()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            current = digits.parse().ok().map(|x| AbcTune {
                x,
                title: String::new(),
                meter: String::new(),
                text: Vec::new(),
            });
            if current.is_none() {
                // Skip the tune's lines: they go to no one.
                current = Some(AbcTune {
                    x: u32::MAX,
                    title: String::new(),
                    meter: String::new(),
                    text: Vec::new(),
                });
            }
        }
        match current.as_mut() {
            Some(tune) => {
                if tune.title.is_empty() {
                    if let Some(title) = line.strip_prefix(b"T:") {
                        tune.title = String::from_utf8_lossy(title).trim().to_string();
                    }
                }
                if tune.meter.is_empty() {
                    if let Some(meter) = line.strip_prefix(b"M:") {
                        tune.meter = String::from_utf8_lossy(meter).trim().to_string();
                    }
                }
                tune.text.extend_from_slice(line);
            }
            None => preamble.extend_from_slice(line),
        }
    }
    tunes.extend(current);
    tunes.retain(|t| t.x != u32::MAX);
    (preamble, tunes)
}

/// What one book's conversion gave: (X number, MIDI name under the MIDI folder) per
/// converted tune, and abc2midi's complaint if the run itself failed.
#[derive(Debug, Default)]
struct Converted {
    converted: Vec<(u32, String)>,
    message: Option<String>,
}

/// The MIDI folder, emptied: created if missing, cleared if this command wrote it, and
/// left alone (an error) if it holds something else.
fn prepare_midi_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).is_file() {
            bail!(
                "{} exists and was not written by `cargo xtask corpus`; move it away or pass \
                 another --midi-dir",
                dir.display()
            );
        }
        remove_dir_if_exists(dir)?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(
        dir.join(MARKER),
        "MIDI converted by `cargo xtask corpus`; cleared and rewritten on every run\n",
    )?;
    Ok(())
}

/// Converts every book on `jobs` threads; results in book order.
fn convert_books(
    books: &[Book],
    scratch: &Path,
    midi_dir: &Path,
    jobs: usize,
) -> Result<Vec<Converted>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Converted>>>> =
        Mutex::new((0..books.len()).map(|_| None).collect());
    let progress = indicatif::ProgressBar::new(books.len() as u64).with_message("abc2midi");
    progress.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} files")
            .expect("template")
            .progress_chars("=> "),
    );
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(books.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(book) = books.get(i) else { break };
                let work = scratch.join(format!("{i:05}"));
                let result = convert_book(book, &work, midi_dir);
                results.lock().expect("results lock")[i] = Some(result);
                progress.inc(1);
            });
        }
    });
    progress.finish_and_clear();
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every book converted"))
        .collect()
}

fn convert_book(book: &Book, work: &Path, midi_dir: &Path) -> Result<Converted> {
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let mut abc = book.preamble.clone();
    for tune in &book.tunes {
        if !abc.is_empty() && !abc.ends_with(b"\n\n") {
            abc.extend_from_slice(if abc.ends_with(b"\n") { b"\n" } else { b"\n\n" });
        }
        abc.extend_from_slice(&tune.text);
    }
    fs::write(work.join("t.abc"), &abc)
        .with_context(|| format!("writing {}", work.join("t.abc").display()))?;

    let mut result = Converted::default();
    match run_abc2midi(work) {
        Ok(()) => {}
        Err(message) => result.message = Some(format!(" ({message})")),
    }
    let out_dir = midi_dir.join(&book.collection).join(&book.stem);
    for tune in &book.tunes {
        let produced = work.join(format!("t{}.mid", tune.x));
        if fs::metadata(&produced).is_ok_and(|m| m.len() > 14) {
            fs::create_dir_all(&out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            let file = format!("{:05}.mid", tune.x);
            fs::rename(&produced, out_dir.join(&file))
                .or_else(|_| fs::copy(&produced, out_dir.join(&file)).map(|_| ()))
                .with_context(|| {
                    format!("moving {} into {}", produced.display(), out_dir.display())
                })?;
            result
                .converted
                .push((tune.x, format!("{}/{}/{file}", book.collection, book.stem)));
        }
    }
    remove_dir_if_exists(work)?;
    Ok(result)
}

/// Runs abc2midi on `work/t.abc`, writing `work/t<X>.mid` per tune.
fn run_abc2midi(work: &Path) -> std::result::Result<(), String> {
    let mut child = Command::new("abc2midi")
        .arg("t.abc")
        .args(ABC2MIDI_FLAGS)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run abc2midi: {e}"))?;
    let deadline = Instant::now() + ABC2MIDI_TIMEOUT;
    // Most books take a few milliseconds: poll fast at first, then back off.
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("abc2midi exited with {status}")),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "abc2midi ran past {} s",
                    ABC2MIDI_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A licence note without its `#---` comment banner.
fn strip_comment_header(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// POP909's `index.xlsx`: every song's meter, by its folder name.
fn pop909_meters(dir: &Path) -> Result<BTreeMap<String, Meter>> {
    use calamine::{Data, Reader, Xlsx};
    let path = dir.join(corpus::POP909_INDEX);
    let mut book: Xlsx<_> =
        calamine::open_workbook(&path).with_context(|| format!("opening {}", path.display()))?;
    let sheet = book
        .worksheet_range_at(0)
        .context("index.xlsx has no sheet")?
        .with_context(|| format!("reading {}", path.display()))?;
    let mut rows = sheet.rows();
    let header: Vec<String> = rows
        .next()
        .context("index.xlsx is empty")?
        .iter()
        .map(|c| c.to_string())
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("index.xlsx has no `{name}` column"))
    };
    let (id, beats, quavers) = (
        column("song_id")?,
        column("num_beats_per_measure")?,
        column("num_quavers_per_beat")?,
    );
    let number = |cell: Option<&Data>| -> Option<u8> {
        match cell? {
            Data::Int(n) => u8::try_from(*n).ok(),
            Data::Float(f) => Some(*f as u8),
            Data::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let mut meters = BTreeMap::new();
    for row in rows {
        let name = match row.get(id) {
            Some(Data::String(s)) => s.trim().to_string(),
            Some(Data::Int(n)) => format!("{n:03}"),
            Some(Data::Float(f)) => format!("{:03}", *f as u32),
            _ => continue,
        };
        if let (Some(beats_per_measure), Some(quavers_per_beat)) =
            (number(row.get(beats)), number(row.get(quavers)))
        {
            meters.insert(
                name,
                Meter {
                    beats_per_measure,
                    quavers_per_beat,
                },
            );
        }
    }
    ensure!(!meters.is_empty(), "{} lists no song", path.display());
    Ok(meters)
}

/// `corpus --pop909 DIR`: melodies over their chords ([`Corpus::from_pop909`]).
fn pop909(args: &CorpusArgs, dir: &Path, started: Instant) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| corpus::default_path(Encoding::Melody, true, args.bars));
    let fractions = args.fractions();
    let meters = pop909_meters(dir)?;
    let mut corpus = Corpus::from_pop909(dir, &meters, args.bars, fractions, args.seed)
        .with_context(|| format!("building the chord corpus from {}", dir.display()))?;
    note_licence(&mut corpus, dir);
    corpus.metadata.insert(
        "command".into(),
        format!(
            "cargo xtask corpus --pop909 {} --bars {} --seed {} --validation {} --test {}",
            dir.display(),
            args.bars,
            args.seed,
            args.validation,
            args.test
        ),
    );
    corpus
        .save(&out)
        .with_context(|| format!("saving {}", out.display()))?;
    println!();
    print!("{}", corpus.summary());
    let m = &corpus.metadata;
    let get = |k: &str| m.get(k).map_or("0", String::as_str);
    println!(
        "  songs: {} in the index, {} in common time (read), {} failed, {} too short",
        get("songs_in_index"),
        get("songs_in_common_time"),
        get("import_failures"),
        get("tunes_too_short")
    );
    for name in ["train", "validation", "test"] {
        println!(
            "  {name}: {} windows kept, {} repeats, {} without an onset",
            get(&format!("{name}.slices")),
            get(&format!("{name}.duplicate_slices")),
            get(&format!("{name}.silent_slices"))
        );
    }
    println!(
        "  windows without a chord (dropped): {}; chord labels read as no chord: {}",
        get("chordless_windows"),
        get("unknown_chord_labels")
    );
    println!(
        "wrote {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `corpus --drums DIR` or `--grooves DIR`: windows of a folder of drum performances,
/// on the grid or as played, split by its `info.csv` when it has one
/// ([`Corpus::from_drum_dir`], [`Corpus::from_groove_dir`]).
fn performances(args: &CorpusArgs, dir: &Path, encoding: Encoding, started: Instant) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| corpus::default_path(encoding, false, args.bars));
    let fractions = args.fractions();
    let build = if encoding == Encoding::Groove {
        Corpus::from_groove_dir
    } else {
        Corpus::from_drum_dir
    };
    let mut corpus = build(dir, args.bars, fractions, args.seed).with_context(|| {
        format!(
            "building the {} corpus from {}",
            encoding.name(),
            dir.display()
        )
    })?;
    note_licence(&mut corpus, dir);
    corpus.metadata.insert(
        "command".into(),
        format!(
            "cargo xtask corpus --{} {} --bars {} --seed {}",
            if encoding == Encoding::Groove {
                "grooves"
            } else {
                "drums"
            },
            dir.display(),
            args.bars,
            args.seed
        ),
    );
    corpus
        .save(&out)
        .with_context(|| format!("saving {}", out.display()))?;
    println!();
    print!("{}", corpus.summary());
    let m = &corpus.metadata;
    let get = |k: &str| m.get(k).map_or("0", String::as_str);
    println!("  split by {}", get("split_by"));
    if let Some(kinds) = m.get("performance_kinds") {
        println!(
            "  4/4 performances by kind: {kinds}; not in 4/4 (skipped): {}",
            get("performances_not_in_4_4")
        );
    }
    for name in ["train", "validation", "test"] {
        println!(
            "  {name}: {} windows kept, {} repeats of a window already kept, {} without a hit",
            get(&format!("{name}.slices")),
            get(&format!("{name}.duplicate_slices")),
            get(&format!("{name}.silent_slices"))
        );
    }
    println!(
        "  import failures: {}, performances shorter than a window: {}, drum notes outside the 9 \
         classes: {}",
        get("import_failures"),
        get("tunes_too_short"),
        get("unmapped_drum_notes")
    );
    match encoding {
        Encoding::Groove => {
            println!(
                "  every hit keeps its velocity and its timing off the grid; augmentation: none"
            );
            println!("  round trip: {}", get("round_trip"));
        }
        _ => println!(
            "  augmentation: none in the corpus (transposing drums means nothing, and the grid \
             removes tempo); `train --swap-hat-ride P --shuffle-toms P --borrow-cymbals P \
             --drop-hits P` varies training slices"
        ),
    }
    println!(
        "wrote {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_abc_files_into_tunes() {
        let abc = b"% a book\n%%MIDI program 1\n\nX:1\nT:First\nK:G\nGABc|\n\nX: 2\nT:Second\nT:Alt\nM: 6/8\nK:D\nDEF|\nX:\nT:No number\nK:C\nC|\n";
        let (preamble, tunes) = split_tunes(abc);
        assert_eq!(preamble, b"% a book\n%%MIDI program 1\n\n");
        assert_eq!(tunes.len(), 2);
        assert_eq!((tunes[0].x, tunes[0].title.as_str()), (1, "First"));
        assert_eq!((tunes[1].x, tunes[1].title.as_str()), (2, "Second"));
        assert_eq!(tunes[0].meter, "");
        assert_eq!(tunes[1].meter, "6/8");
        assert_eq!(tunes[1].text, b"X: 2\nT:Second\nT:Alt\nM: 6/8\nK:D\nDEF|\n");
    }

    #[test]
    fn converts_abc_with_abc2midi() {
        if Command::new("abc2midi").arg("-ver").output().is_err() {
            eprintln!("abc2midi not installed; skipping");
            return;
        }
        let root =
            std::env::temp_dir().join(format!("latent_live_xtask_corpus_{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let abc = b"X:3\nT:Good\nM:4/4\nL:1/8\nK:G\nGABc dedB|GABc d4|GABc dedB|c2A2 G4|\n\nX:4\nT:Also good\nM:4/4\nL:1/8\nK:D\nDEFG A2A2|B2AG F4|\n";
        let (preamble, tunes) = split_tunes(abc);
        let book = Book {
            collection: "c".into(),
            stem: "book".into(),
            source: "c/book.abc".into(),
            preamble,
            tunes,
        };
        let result = convert_book(&book, &root.join("work"), &root.join("midi")).unwrap();
        assert_eq!(
            result.converted,
            vec![
                (3, "c/book/00003.mid".to_string()),
                (4, "c/book/00004.mid".to_string())
            ]
        );
        let imported =
            latent_live_core::music::midi::import_file(&root.join("midi/c/book/00003.mid"))
                .unwrap();
        assert!(imported.notes.len() >= 14, "{} notes", imported.notes.len());
        assert!(!root.join("work").exists());
        let _ = fs::remove_dir_all(&root);
    }
}

/// Where a command's slices come from: `--corpus` (a corpus `cargo xtask corpus` built),
/// or `--midi` (a folder of MIDI files), shared by `train`, `eval` and `analyze`.
#[derive(clap::Args)]
pub struct CorpusSource {
    /// A corpus built by `cargo xtask corpus` (default: data/folk-<bars>bar.safetensors,
    /// or data/groove-<bars>bar.safetensors for drum models).
    #[arg(long, conflicts_with = "midi")]
    corpus: Option<PathBuf>,
    /// A folder of MIDI files instead (for a drum model, drum performances; with an
    /// `info.csv`, split as it says): `train` splits it by file, `eval` and `analyze`
    /// measure every slice.
    #[arg(long)]
    midi: Option<PathBuf>,
    /// Read the `--midi` folder's files as lead sheets: the melody in the first track,
    /// block chords in the second (or, in one-track files, on a second channel). Always,
    /// for a model that reads chords; for another melody model, `eval` then reports how
    /// its decodes follow the chords.
    #[arg(long, requires = "midi")]
    lead_sheets: bool,
}

impl CorpusSource {
    /// The corpus for a model of `config` (its bars, its encoding, over chords or not; a
    /// MIDI folder split as `fractions` say, seeded), checked to fit it, and where it came
    /// from.
    pub fn load(
        &self,
        config: &Config,
        fractions: SplitFractions,
        seed: u64,
    ) -> Result<(Corpus, String)> {
        let (bars, encoding, chords) = (config.bars, config.encoding, config.chords.is_some());
        let (corpus, source) = match (&self.midi, &self.corpus) {
            (Some(dir), _) => {
                let corpus = match encoding {
                    Encoding::Melody => {
                        let lead_sheets = chords || self.lead_sheets;
                        Corpus::from_midi_dir(dir, bars, fractions, seed, lead_sheets)?
                    }
                    Encoding::Drums => Corpus::from_drum_dir(dir, bars, fractions, seed)?,
                    Encoding::Groove => Corpus::from_groove_dir(dir, bars, fractions, seed)?,
                };
                (corpus, dir.display().to_string())
            }
            (None, path) => {
                let path = path
                    .clone()
                    .unwrap_or_else(|| corpus::default_path(encoding, chords, bars));
                let corpus = Corpus::load(&path).with_context(|| {
                    format!(
                        "{}: build it with `{}`",
                        path.display(),
                        corpus::build_command(encoding, chords, bars)
                    )
                })?;
                (corpus, path.display().to_string())
            }
        };
        ensure!(
            corpus.encoding == encoding,
            "{source} holds {}, the model plays {}",
            corpus.encoding.name(),
            encoding.name()
        );
        ensure!(
            corpus.bars == bars,
            "{source} has {}-bar slices, the model {bars}-bar ones",
            corpus.bars
        );
        // A model without chords plays a chord corpus's melodies and leaves its chords.
        ensure!(
            corpus.has_chords() || !chords,
            "{source} has no chords, and the model reads them"
        );
        Ok((corpus, source))
    }
}
