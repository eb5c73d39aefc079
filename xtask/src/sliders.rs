//! `cargo xtask check-sliders`: whether each attribute slider of each model does what its
//! label says, by the check `analyze` ships vectors under.

use std::path::PathBuf;

use anyhow::bail;
use latent_live_core::model::assets::DefaultModel;
use latent_live_core::model::latent::LatentSpace;
use latent_live_core::model::ModelFile;
use latent_live_core::music::attributes::CONTROLLED as ATTRIBUTES;
use latent_live_training::analysis::{
    fix_sliders, slider_check, SliderFix, CHECK_BASES, MONOTONIC,
};
use std::collections::BTreeMap;

use crate::analyze::{json, stored_dtype};

#[derive(clap::Args)]
pub struct SlidersArgs {
    /// Model files to check (default: every embedded model).
    #[arg(long)]
    model: Vec<PathBuf>,
    /// Rewrite each file named by `--model` as `analyze` writes vectors now: each failing
    /// one replaced by the vector from decoded prior samples where that passes, and left
    /// out otherwise; the rest of the file as it is.
    #[arg(long, requires = "model")]
    fix: bool,
}

pub fn run(args: &SlidersArgs) -> anyhow::Result<()> {
    let files: Vec<(String, ModelFile)> = if args.model.is_empty() {
        DefaultModel::ALL
            .iter()
            .map(|m| Ok((m.name().to_string(), m.load()?)))
            .collect::<anyhow::Result<_>>()?
    } else {
        args.model
            .iter()
            .map(|p| Ok((p.display().to_string(), ModelFile::read(p)?)))
            .collect::<anyhow::Result<_>>()?
    };
    println!(
        "median over {CHECK_BASES} prior bases of the Spearman between each attribute \
         slider's amount (-2..2) and its own attribute (the check: at least {MONOTONIC})"
    );
    println!("| model | slider | median Spearman | check |");
    println!("|---|---|---|---|");
    let mut failed = 0;
    for (name, file) in &files {
        let model = file.model(&candle_core::Device::Cpu)?;
        let space = LatentSpace::of(file)?;
        let mut any = false;
        for (attribute, vector) in ATTRIBUTES.iter().zip(&space.attribute_vectors) {
            let Some(vector) = vector else { continue };
            any = true;
            let median = slider_check(&model, attribute, vector)?;
            let pass = median >= MONOTONIC;
            failed += usize::from(!pass);
            println!(
                "| {name} | {attribute} | {median:.3} | {} |",
                if pass { "pass" } else { "FAIL" }
            );
        }
        if !any {
            println!("| {name} | (no attribute vectors: its sliders are greyed out) | | |");
        }
    }
    if args.fix {
        for path in &args.model {
            fix(path)?;
        }
    } else if failed > 0 {
        bail!("{failed} sliders fail the check");
    }
    Ok(())
}

/// Rewrites the model file at `path` with its failing vectors fixed ([`fix_sliders`]),
/// in the precision it is stored in.
fn fix(path: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)?;
    let mut file = ModelFile::from_bytes(&bytes)?;
    let model = file.model(&candle_core::Device::Cpu)?;
    let mut vectors: BTreeMap<String, Vec<f32>> =
        file.extra_json("attribute_vectors")?.unwrap_or_default();
    let changed: Vec<String> = fix_sliders(&model, &mut vectors)?
        .into_iter()
        .filter(|f| f.2 != SliderFix::Kept)
        .map(|(name, median, fix)| format!("{name} {fix:?} ({median:.3})"))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    file.extra
        .insert("attribute_vectors".into(), json(&vectors));
    file.write(path, stored_dtype(&bytes)?)?;
    println!("{}: {}", path.display(), changed.join(", "));
    Ok(())
}
