//! `cargo xtask import-magenta`: Google's MusicVAE checkpoints (TF.js or deeplearn.js
//! folders, as magenta.js loads them; melodies, drums and GrooVAE's grooves) into Latent
//! Live model files.

use std::path::PathBuf;

use latent_live_core::model::magenta::{import, ImportOptions};
use latent_live_core::model::GrooveInput;
use latent_live_core::music::{drums, Encoding};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The checkpoint folder: weights_manifest.json and shards, or manifest.json and one file per variable.
    dir: PathBuf,
    /// The model file to write (.safetensors).
    #[arg(short, long)]
    out: PathBuf,
    /// Bars per sequence, for checkpoints with neither config.json nor converter.json
    /// (flat models default to 2).
    #[arg(long)]
    bars: Option<usize>,
}

pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let file = import(&args.dir, ImportOptions { bars: args.bars })?;
    // Float32: quantized weights were dequantized exactly as magenta.js does, and f16 would
    // move them again.
    file.write(&args.out, candle_core::DType::F32)?;
    println!("{}", file.card.summary);
    println!("config: {:?}", file.config);
    let classes = drums::CLASSES
        .iter()
        .map(|c| format!("{} {}", c.short, c.pitches[0]))
        .collect::<Vec<_>>()
        .join(", ");
    match file.config.encoding {
        Encoding::Melody => {}
        Encoding::Drums => {
            println!(
                "drum model: one of {} combinations of {} drums a step, played as the GM notes \
                 {classes}",
                drums::NUM_CLASSES,
                drums::NUM_DRUM_CLASSES
            );
        }
        Encoding::Groove => {
            let reads = match file.config.groove_input {
                GrooveInput::Whole => "whole grooves",
                GrooveInput::Humanize => "the hits alone, and adds their velocity and timing",
                GrooveInput::Tap => "taps with their timing, and drums them up",
            };
            println!(
                "groove model (GrooVAE): reads {reads}; writes a hit, a velocity and a timing for \
                 each of {} drums a step, played as the GM notes {classes}",
                drums::NUM_DRUM_CLASSES
            );
        }
    }
    if file.config.encoder.is_empty() {
        println!(
            "decoder only: it decodes and samples; captures find their z by latent inversion \
             (slower than an encoder)"
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
