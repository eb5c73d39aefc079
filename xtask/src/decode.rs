//! `cargo xtask decode`: latent vectors in, notes out.

use std::path::PathBuf;

use anyhow::Context;
use latent_live_core::model::latent::z_tensor;
use latent_live_core::model::{ModelFile, Sampling};
use latent_live_core::music::chord::{self, Chord};
use latent_live_core::music::key::{pitch_class, Scale, ScaleLock};
use latent_live_core::music::{drums, melody, Encoding};

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
    /// Chord symbols spread evenly over the phrase (`"Am F C G"`; `N.C.` for none): a
    /// chord model plays over them, any other melody model is fitted to them on the beats
    /// (`--chord-fit`).
    #[arg(long)]
    chords: Option<String>,
    /// With `--chords`, for a model that does not read them: the share of on-beat notes
    /// moved onto a chord tone (0 to 1), as the plugin's Chord Fit.
    #[arg(long, default_value_t = 1.0, requires = "chords")]
    chord_fit: f32,
}

/// `symbols` spread evenly over `steps`: the progression a phrase plays over.
fn progression(symbols: &str, steps: usize) -> anyhow::Result<Vec<Option<Chord>>> {
    let chords: Vec<Option<Chord>> = symbols
        .split_whitespace()
        .map(|s| Chord::parse(s).with_context(|| format!("--chords: {s:?}")))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!chords.is_empty(), "--chords names no chord");
    Ok((0..steps)
        .map(|t| chords[t * chords.len() / steps])
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
    let phrases = model.decode_over(&z_tensor(&model, &rows)?, over.as_deref(), sampling)?;
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
