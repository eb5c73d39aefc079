//! `cargo xtask chord-tones`: how well melodies follow the chords on the beats, measured
//! over a chord corpus's progressions: the human melodies, and prior samples of each
//! model decoded over the same progressions (a chord model reads them; any other is
//! scale-locked to the song's key, as the plugin's Scale would); and how often the key
//! detected from a slice's melody is the song's.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use latent_live_core::model::ModelFile;
use latent_live_core::music::key::{note_name, Key, Mode, Scale, ScaleLock};
use latent_live_core::music::{melody, Encoding, Event};
use latent_live_training::corpus::{Corpus, TUNE_KEY};
use latent_live_training::eval::{sample_over, ChordTones};

#[derive(clap::Args)]
pub struct ChordTonesArgs {
    /// A chord corpus (`cargo xtask corpus --pop909 ...`).
    #[arg(long, default_value = "data/pop-2bar.safetensors")]
    corpus: PathBuf,
    /// Models to sample, each over every test progression.
    #[arg(long)]
    model: Vec<PathBuf>,
    /// Sampling temperature of the prior samples.
    #[arg(long, default_value_t = 0.5)]
    temperature: f32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Use at most this many test slices.
    #[arg(long)]
    limit: Option<usize>,
}

pub fn run(args: &ChordTonesArgs) -> Result<()> {
    let corpus = Corpus::load(&args.corpus).with_context(|| {
        format!(
            "{}: build it with `cargo xtask corpus --pop909 ...`",
            args.corpus.display()
        )
    })?;
    ensure!(
        corpus.has_chords(),
        "{} has no chords",
        args.corpus.display()
    );
    let test = &corpus.test;
    let n = args.limit.map_or(test.len(), |l| l.min(test.len()));
    ensure!(n > 0, "{} has no test slices", args.corpus.display());
    let melodies: Vec<&[Event]> = (0..n).map(|i| test.get(i)).collect();
    let chords = test.chords_of(0..n).expect("a chord corpus");
    let keys = song_keys(&corpus);
    println!(
        "on-beat notes that are tones of their chord, over the {n} test progressions of {}:",
        args.corpus.display()
    );
    let humans = ChordTones::of(&melodies, &chords);
    println!(
        "  {:<40} {:>6.1} % of {}",
        "human melodies",
        100.0 * humans.share(),
        humans.notes
    );
    key_detection(&melodies, &test.tune[..n], &keys);
    for path in &args.model {
        let file = ModelFile::read(path)?;
        ensure!(
            file.config.encoding == Encoding::Melody,
            "{} is not a melody model",
            path.display()
        );
        let model = file.model(&candle_core::Device::Cpu)?;
        let steps = model.config.steps();
        ensure!(
            steps == corpus.steps,
            "{} plays {steps} steps, the corpus holds {}",
            path.display(),
            corpus.steps
        );
        let mut count = ChordTones::default();
        let decoded = sample_over(&model, &chords, args.temperature, args.seed)?;
        for (i, events) in decoded.iter().enumerate() {
            let mut notes = melody::decode(events);
            let reads_chords = model.config.chords.is_some();
            if let (false, Some(key)) = (reads_chords, keys[test.tune[i] as usize]) {
                let scale = match key.mode {
                    Mode::Major => Scale::Major,
                    Mode::Minor => Scale::NaturalMinor,
                };
                ScaleLock {
                    tonic: key.tonic,
                    scale,
                }
                .fit(&mut notes);
            }
            count.add_notes(&notes, chords[i]);
        }
        let how = if model.config.chords.is_some() {
            "over the chords"
        } else {
            "scale-locked to the song's key"
        };
        println!(
            "  {:<40} {:>6.1} % of {}",
            format!("{} ({how})", file.card.name),
            100.0 * count.share(),
            count.notes
        );
    }
    println!(
        "prior samples: z ~ N(0, I), temperature {}, seed {}",
        args.temperature, args.seed
    );
    Ok(())
}

/// How often the key Capture shows (Krumhansl-Kessler on the clip's notes) is the song's
/// annotated key, on the test slices: exactly, or its relative major or minor.
fn key_detection(melodies: &[&[Event]], tunes: &[u32], keys: &[Option<Key>]) {
    let (mut exact, mut relative, mut total) = (0usize, 0usize, 0usize);
    for (events, &tune) in melodies.iter().zip(tunes) {
        let (Some(truth), Some(found)) =
            (keys[tune as usize], Key::estimate(&melody::decode(events)))
        else {
            continue;
        };
        total += 1;
        let relative_of = |k: Key| Key {
            tonic: match k.mode {
                Mode::Major => (k.tonic + 9) % 12,
                Mode::Minor => (k.tonic + 3) % 12,
            },
            mode: match k.mode {
                Mode::Major => Mode::Minor,
                Mode::Minor => Mode::Major,
            },
        };
        exact += (found == truth) as usize;
        relative += (found == relative_of(truth)) as usize;
    }
    println!(
        "key detected from each slice's melody (what Capture shows) against the song's \
         annotated key: {:.1} % exact, {:.1} % its relative key, of {total} slices",
        100.0 * exact as f64 / total.max(1) as f64,
        100.0 * relative as f64 / total.max(1) as f64
    );
}

/// Each song's key, from the corpus's `tune_key` (POP909's `key_audio.txt`).
fn song_keys(corpus: &Corpus) -> Vec<Option<Key>> {
    let names: Vec<String> = corpus
        .metadata
        .get(TUNE_KEY)
        .and_then(|k| serde_json::from_str(k).ok())
        .unwrap_or_default();
    (0..corpus.tunes.len())
        .map(|t| {
            let (tonic, mode) = names.get(t)?.split_once(':')?;
            let (tonic, "") = note_name(tonic)? else {
                return None;
            };
            let mode = match mode {
                "maj" => Mode::Major,
                "min" => Mode::Minor,
                _ => return None,
            };
            Some(Key { tonic, mode })
        })
        .collect()
}
