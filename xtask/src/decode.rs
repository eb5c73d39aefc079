//! `cargo xtask decode`: latent vectors in, notes out.

use std::path::PathBuf;

use anyhow::Context;
use latent_live_core::model::latent::z_tensor;
use latent_live_core::model::{ModelFile, Sampling};
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
    let phrases = model.decode(&z_tensor(&model, &rows)?, sampling)?;
    let notes: Vec<Vec<[u32; 3]>> = phrases
        .iter()
        .map(|events| match model.config.encoding {
            Encoding::Melody => melody::decode(events)
                .iter()
                .map(|n| [n.pitch as u32, n.start, n.end])
                .collect(),
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
