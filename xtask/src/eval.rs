//! `cargo xtask eval`: held-out accuracy and latent usage of a model.

use std::path::PathBuf;

use anyhow::Context;
use latent_live::corpus::{Corpus, SplitFractions};
use latent_live::eval::evaluate;
use latent_live::model::ModelFile;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A model file.
    #[arg(long)]
    model: PathBuf,
    /// A corpus whose test split is used (default: data/folk-<bars>bar.safetensors).
    #[arg(long, conflicts_with = "midi")]
    corpus: Option<PathBuf>,
    /// Evaluate on every slice of this MIDI folder instead.
    #[arg(long)]
    midi: Option<PathBuf>,
    /// Evaluate at most this many slices.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let file = ModelFile::read(&args.model)?;
    let model = file.model(&candle_core::Device::Cpu)?;
    if !model.has_encoder() {
        anyhow::bail!(
            "{} is decoder-only: evaluating reconstruction needs the z of each melody, which takes an encoder \
             (or latent inversion, which Latent Live does not have yet)",
            args.model.display()
        );
    }
    let bars = model.config.bars;
    let split = match (&args.midi, &args.corpus) {
        (Some(dir), _) => Corpus::from_midi_dir(dir, bars, SplitFractions::all_test(), 0)?.test,
        (None, path) => {
            let path = path.clone().unwrap_or_else(|| PathBuf::from(format!("data/folk-{bars}bar.safetensors")));
            Corpus::load(&path).with_context(|| format!("{}: build it with `cargo xtask corpus --bars {bars}`", path.display()))?.test
        }
    };
    let started = std::time::Instant::now();
    let e = evaluate(&model, &split, args.batch_size, args.limit)?;
    println!("model: {} ({:?})", args.model.display(), model.config);
    println!("evaluated {} slices in {:.1} s", e.slices, started.elapsed().as_secs_f64());
    let ranking = e.kl_ranking();
    println!("KL per dimension (nats), largest first:");
    for chunk in ranking.chunks(8) {
        let row: Vec<String> = chunk.iter().map(|&d| format!("z{d}={:.3}", e.kl_per_dim[d])).collect();
        println!("  {}", row.join(" "));
    }
    println!("total KL {:.2} nats", e.kl_per_dim.iter().sum::<f64>());
    println!("{}", e.summary_line());
    Ok(())
}
