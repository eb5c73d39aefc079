//! `cargo xtask decode`: latent vectors in, notes out.

use std::path::PathBuf;

use anyhow::Context;
use latent_live_core::model::latent::z_tensor;
use latent_live_core::model::{ModelFile, Sampling, MAX_STEPS};
use latent_live_core::music::chord::{self, Chord};
use latent_live_core::music::key::{pitch_class, Scale, ScaleLock};
use latent_live_core::music::{drums, melody, midi, Encoding, Event};

#[derive(clap::Args)]
pub struct DecodeArgs {
    #[arg(long)]
    model: PathBuf,
    /// JSON array of latent vectors.
    #[arg(long)]
    z: PathBuf,
    /// JSON array, per vector, of notes `[pitch, start_step, end_step]` (end exclusive);
    /// a drum model's hits are GM drum notes a step long.
    #[arg(long)]
    out: PathBuf,
    /// Sampling temperature; greedy when absent.
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The key melodies are fitted into (C, F#, Bb...), with `--scale`.
    #[arg(long, requires = "scale")]
    key: Option<String>,
    /// The scale melodies are fitted into: major, natural-minor, harmonic-minor,
    /// melodic-minor, dorian, phrygian, lydian, mixolydian, major-pentatonic,
    /// minor-pentatonic or blues.
    #[arg(long, requires = "key")]
    scale: Option<String>,
    /// Chord symbols, one a bar (`"Am F C G"`; repeated when the phrase has more bars), or
    /// `chord:steps` pairs (`"Am:8 F:8 C:16"`; `N.C.` for no chord), repeated to the
    /// phrase's length: a chord model plays over them, any other melody model is fitted
    /// to them on the beats (`--chord-fit`).
    #[arg(long)]
    chords: Option<String>,
    /// With `--chords`, for a model that does not read them: the share of on-beat notes
    /// moved onto a chord tone (0 to 1), as the plugin's Chord Fit.
    #[arg(long, default_value_t = 1.0, requires = "chords")]
    chord_fit: f32,
    /// For a model with melody controls (an imported `extraControls` checkpoint): a MIDI
    /// file whose first bars' rhythm, contour and register the phrases follow; without
    /// it, the default reference (C D E G | E D C).
    #[arg(long)]
    like: Option<PathBuf>,
}

/// The chord of each of `steps` 16ths from `symbols`: one a bar, or `chord:steps` pairs,
/// repeated to the phrase's length.
fn progression(symbols: &str, steps: usize) -> anyhow::Result<Vec<Option<Chord>>> {
    let mut one_period = Vec::new();
    for item in symbols.split_whitespace() {
        let (symbol, length) = match item.rsplit_once(':') {
            Some((symbol, length)) => (
                symbol,
                length
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| (1..=MAX_STEPS).contains(&n))
                    .with_context(|| {
                        format!("--chords: {item:?}: the steps must be 1 to {MAX_STEPS}")
                    })?,
            ),
            None => (item, melody::STEPS_PER_BAR),
        };
        let chord = Chord::parse(symbol).with_context(|| format!("--chords: {item:?}"))?;
        one_period.extend(std::iter::repeat_n(chord, length));
    }
    anyhow::ensure!(!one_period.is_empty(), "--chords names no chord");
    Ok((0..steps)
        .map(|t| one_period[t % one_period.len()])
        .collect())
}

pub fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    let model = ModelFile::read(&args.model)?.model(&candle_core::Device::Cpu)?;
    let text = std::fs::read_to_string(&args.z)
        .with_context(|| format!("reading {}", args.z.display()))?;
    let rows: Vec<Vec<f32>> = serde_json::from_str(&text)
        .context("the z file must be a JSON array of arrays of numbers")?;
    let sampling = args
        .temperature
        .map_or(Sampling::Greedy, |t| Sampling::new(t, args.seed));
    let lock = match (&args.key, &args.scale) {
        (Some(key), Some(scale)) => Some(ScaleLock {
            tonic: pitch_class(key)
                .with_context(|| format!("{key:?} is not a key (C, F#, Bb...)"))?,
            scale: Scale::from_kebab_name(scale).with_context(|| {
                let names: Vec<String> = Scale::ALL.iter().map(|s| s.kebab_name()).collect();
                format!("unknown scale {scale:?}; choose from {}", names.join(", "))
            })?,
        }),
        _ => None,
    };
    let chords = args
        .chords
        .as_deref()
        .map(|symbols| progression(symbols, model.config.steps()))
        .transpose()?;
    let over: Option<Vec<&[Option<Chord>]>> =
        chords.as_ref().map(|c| vec![c.as_slice(); rows.len()]);
    let like = match &args.like {
        Some(path) => {
            anyhow::ensure!(
                !model.config.melody_controls.is_empty(),
                "--like is for models with melody controls; {} has none",
                args.model.display()
            );
            let imported = midi::import_file(path)?;
            Some(melody::encode(&imported.notes, model.config.steps()))
        }
        None => None,
    };
    let like: Option<Vec<&[Event]>> = like.as_ref().map(|l| vec![l.as_slice(); rows.len()]);
    let phrases = model.decode_like(
        &z_tensor(&model, &rows)?,
        over.as_deref(),
        like.as_deref(),
        sampling,
    )?;
    let fit = chords.as_ref().filter(|_| model.config.chords.is_none());
    let notes: Vec<Vec<[u32; 3]>> = phrases
        .iter()
        .map(|events| match model.config.encoding {
            Encoding::Melody => {
                let mut notes = melody::decode(events);
                if let Some(lock) = lock {
                    lock.fit(&mut notes);
                }
                if let Some(chords) = fit {
                    chord::fit_to_chords(&mut notes, chords, args.chord_fit);
                }
                notes
                    .iter()
                    .map(|n| [n.pitch as u32, n.start, n.end])
                    .collect()
            }
            Encoding::Drums | Encoding::Groove => drums::decode(events)
                .iter()
                .map(|h| [drums::GM_NOTES[h.class as usize] as u32, h.step, h.step + 1])
                .collect(),
        })
        .collect();
    std::fs::write(&args.out, serde_json::to_string(&notes)?)?;
    println!(
        "decoded {} phrases into {}",
        notes.len(),
        args.out.display()
    );
    Ok(())
}
