//! `cargo xtask analyze`: music neurons, their correlations with musical attributes, and
//! attribute vectors, written into the model file's metadata and a Markdown report.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use candle_core::DType;
use latent_live_core::model::ModelFile;
use latent_live_core::music::{attributes, Encoding};
use latent_live_training::analysis::{
    analyze, fix_sliders, sweep, Analysis, SliderFix, CHECK_BASES, MONOTONIC,
    SWEEP_AMOUNTS as AMOUNTS,
};
use latent_live_training::corpus::Corpus;

use crate::eval::HeldOut;
use crate::plots;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// The model file; its metadata gains `neuron_ranking`, `neuron_labels`, `mu_std`
    /// and `attribute_vectors`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    held_out: HeldOut,
    /// Neurons that get correlations and labels.
    #[arg(long, default_value_t = 16)]
    top: usize,
    /// Prior samples (bases) decoded per amount when sweeping along each attribute
    /// vector; a slider's check takes the median over them of each one's Spearman.
    #[arg(long, default_value_t = CHECK_BASES)]
    samples: usize,
    /// The report (default: docs/analysis/<model name>.md).
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let mut file = ModelFile::from_bytes(&bytes)?;
    let model = file.model(&candle_core::Device::Cpu)?;
    let (corpus, source) = args.held_out.corpus(&model.config)?;
    let split = &corpus.test;
    let started = std::time::Instant::now();
    let mut a = analyze(&model, split, args.held_out.limit, args.top)?;
    println!(
        "analysed {} slices of the test split of {source} in {:.1} s",
        a.slices,
        started.elapsed().as_secs_f64()
    );
    // A bound attribute's vector is its quartile difference like any other's, not its bound
    // dimension alone: on folk-2bar-ar the dimension alone swept rhythm complexity at a
    // median Spearman of 0.889 and pitch range at 0.746, the whole vector at 0.977 and 0.926
    // (`check-sliders`), as the attribute also moves with the dimensions it correlates with.
    let bound = bound_attributes(&file)?;

    let path = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("docs/analysis/{}.md", file.card.name)));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let stem = path
        .file_stem()
        .map_or_else(|| "analysis".into(), |s| s.to_string_lossy().into_owned());
    let png = |what: &str| format!("{stem}-{what}.png");
    plots::variance_spectrum(&dir.join(png("variance")), &a)?;
    plots::correlation_heat_map(&dir.join(png("correlations")), &a)?;

    let mut report = String::new();
    writeln!(report, "# Latent analysis of {}\n", file.card.name)?;
    writeln!(
        report,
        "`cargo xtask analyze --model {}` over {} slices of the test split of {source}.\n",
        args.model.display(),
        a.slices
    )?;
    neurons(&mut report, &a)?;
    writeln!(report, "![variance spectrum]({})\n", png("variance"))?;
    correlations(&mut report, &a)?;
    writeln!(report, "![correlations]({})\n", png("correlations"))?;
    interpretability(&mut report, &a, &bound)?;
    writeln!(report, "## Attribute vectors\n")?;
    writeln!(
        report,
        "Each vector is the mean z of the top quartile minus that of the bottom quartile. \
         Moving each of {} prior samples along it by -2..2 and decoding greedily, the median \
         over the samples of the Spearman correlation of the amount with each attribute \
         measured on its decodes (the check: the vector's own attribute at least \
         {MONOTONIC}; a vector that fails it is left out of the file, and the plugin greys \
         its slider out):\n",
        args.samples
    )?;
    writeln!(
        report,
        "| vector | own attribute | check | strongest other | its Spearman | own attribute at -2 \
         / 0 / +2 |"
    )?;
    writeln!(report, "|---|---|---|---|---|---|")?;
    let mut sweeps = Vec::new();
    for (i, name) in a.attributes.iter().enumerate() {
        let s = sweep(
            &model,
            &a.attribute_vectors[*name],
            &AMOUNTS,
            args.samples,
            1,
        )?;
        let own = s.median_spearman[i];
        let (other, value) = s
            .median_spearman
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))
            .unwrap();
        let pass = own >= MONOTONIC;
        let line = format!(
            "| {name} | {own:.3} | {} | {} | {value:.3} | {:.2} / {:.2} / {:.2} |",
            if pass { "pass" } else { "FAIL" },
            a.attributes[other],
            s.means[0][i],
            s.means[AMOUNTS.len() / 2][i],
            s.means[AMOUNTS.len() - 1][i]
        );
        println!(
            "{name}: own Spearman {own:.3} ({}), strongest other {} {value:.3}",
            if pass { "pass" } else { "FAIL" },
            a.attributes[other]
        );
        writeln!(report, "{line}")?;
        sweeps.push(s);
    }
    plots::sweeps(&dir.join(png("sweeps")), &sweeps)?;
    writeln!(report, "\n![attribute sweeps]({})", png("sweeps"))?;
    let fixes = fix_sliders(&model, &mut a.attribute_vectors)?;
    let said = |fix: SliderFix| -> Vec<String> {
        fixes
            .iter()
            .filter(|f| f.2 == fix)
            .map(|(name, median, _)| format!("{name} ({median:.3})"))
            .collect()
    };
    let (replaced, dropped) = (said(SliderFix::FromPrior), said(SliderFix::Dropped));
    if !replaced.is_empty() {
        writeln!(
            report,
            "\nFailing the check, replaced by the vector found from decoded prior samples, \
             which passes (its median over {CHECK_BASES} bases): {}.",
            replaced.join(", ")
        )?;
    }
    if !dropped.is_empty() {
        writeln!(
            report,
            "\nLeft out of the file, as neither vector passes (their sliders are greyed out): \
             {}.",
            dropped.join(", ")
        )?;
    }
    if model.config.encoding == Encoding::Drums {
        fill_against_labels(&mut report, &corpus)?;
    }
    std::fs::write(&path, report)?;
    println!("wrote {}", path.display());

    file.extra.insert("neuron_ranking".into(), json(&a.ranking));
    file.extra.insert("neuron_labels".into(), json(&a.labels));
    file.extra.insert("mu_std".into(), json(&a.mu_std));
    file.extra
        .insert("attribute_vectors".into(), json(&a.attribute_vectors));
    file.write(&args.model, stored_dtype(&bytes)?)?;
    println!(
        "wrote neuron_ranking, neuron_labels, mu_std and attribute_vectors into {}",
        args.model.display()
    );
    Ok(())
}

/// How well the `fill` attribute tells the windows of performances `info.csv` labels
/// fills from those of beats: the area under the ROC curve (the chance that a fill's
/// window scores above a beat's), over every split's windows.
fn fill_against_labels(report: &mut String, corpus: &Corpus) -> anyhow::Result<()> {
    let kinds = corpus.tune_kinds();
    let (mut fills, mut beats) = (Vec::new(), Vec::new());
    for (_, split) in corpus.splits() {
        for (events, &tune) in split.iter().zip(&split.tune) {
            let value = attributes::measure(Encoding::Drums, "fill", events).unwrap_or(0.0);
            match kinds[tune as usize].as_str() {
                "fill" => fills.push(value),
                "beat" => beats.push(value),
                _ => {}
            }
        }
    }
    writeln!(report, "\n## `fill` against the dataset's labels\n")?;
    if fills.is_empty() || beats.is_empty() {
        writeln!(
            report,
            "The corpus has no beat and fill labels (it was built without an `info.csv`, or \
             before they were kept)."
        )?;
        return Ok(());
    }
    let above: f64 = fills
        .iter()
        .map(|f| {
            beats
                .iter()
                .map(|b| {
                    if f > b {
                        1.0
                    } else if f == b {
                        0.5
                    } else {
                        0.0
                    }
                })
                .sum::<f64>()
        })
        .sum();
    let auc = above / (fills.len() * beats.len()) as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "fill attribute against info.csv's labels: AUC {auc:.3} ({} fill windows, {} beat windows)",
        fills.len(),
        beats.len()
    );
    writeln!(
        report,
        "Over the corpus's windows, those of performances labelled `fill` in `info.csv` ({}) \
         score {:.3} on average and those labelled `beat` ({}) {:.3}; the area under the ROC \
         curve is **{auc:.3}** (0.5 would be chance).",
        fills.len(),
        mean(&fills),
        beats.len(),
        mean(&beats)
    )?;
    Ok(())
}

/// A result as the JSON stored in metadata.
pub fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("analysis results serialise")
}

/// The precision a model file's weights are stored in (shipped models are f16), so that
/// rewriting its metadata keeps it.
pub fn stored_dtype(bytes: &[u8]) -> anyhow::Result<DType> {
    let stored = safetensors::SafeTensors::deserialize(bytes)?
        .tensors()
        .first()
        .map(|(_, t)| t.dtype());
    Ok(if stored == Some(safetensors::Dtype::F16) {
        DType::F16
    } else {
        DType::F32
    })
}

/// The attributes AR-VAE training bound to dimensions 0, 1, ... (`train --regularize`).
fn bound_attributes(file: &ModelFile) -> anyhow::Result<Vec<String>> {
    Ok(file
        .extra_json::<latent_live_training::train::TrainConfig>("train_config")?
        .map(|c| c.regularize)
        .unwrap_or_default())
}

/// AR-VAE's interpretability score: R² of each attribute on the dimension it is bound to
/// (models trained with `--regularize`), and on the single best dimension.
fn interpretability(report: &mut String, a: &Analysis, bound: &[String]) -> anyhow::Result<()> {
    writeln!(report, "## Interpretability\n")?;
    writeln!(
        report,
        "R² of a 1-D linear regression of each attribute on one dimension of mu."
    )?;
    if bound.is_empty() {
        writeln!(
            report,
            "This model was trained without attribute regularisation.\n"
        )?;
    } else {
        writeln!(
            report,
            "This model was trained with `--regularize {}` (dimension k bound to attribute k).\n",
            bound.join(",")
        )?;
    }
    writeln!(
        report,
        "| attribute | bound dimension | R² there | best dimension | R² there |"
    )?;
    writeln!(report, "|---|---|---|---|---|")?;
    for (i, name) in a.attributes.iter().enumerate() {
        let r2 = &a.r_squared[i];
        let best = (0..r2.len())
            .max_by(|&x, &y| r2[x].total_cmp(&r2[y]))
            .unwrap_or(0);
        let (dim, there) = match bound.iter().position(|b| b == name) {
            Some(k) => (format!("z{k}"), format!("{:.3}", r2[k])),
            None => ("".into(), "".into()),
        };
        writeln!(
            report,
            "| {name} | {dim} | {there} | z{best} | {:.3} |",
            r2[best]
        )?;
    }
    writeln!(report)?;
    Ok(())
}

fn neurons(report: &mut String, a: &Analysis) -> anyhow::Result<()> {
    writeln!(report, "## Music neurons\n")?;
    writeln!(
        report,
        "{} of {} dimensions vary with the music (variance of mu over the slices above 0.01); the \
         rest stay at the prior and carry nothing. Most variable first:\n",
        a.music_neurons,
        a.mu_variance.len()
    )?;
    writeln!(
        report,
        "| rank | dimension | variance of mu | KL (nats) | label |"
    )?;
    writeln!(report, "|---|---|---|---|---|")?;
    for (i, &d) in a.ranking.iter().take(a.labels.len().max(8)).enumerate() {
        let label = a.labels.get(i).map_or("", String::as_str);
        writeln!(
            report,
            "| {} | z{d} | {:.4} | {:.3} | {label} |",
            i + 1,
            a.mu_variance[d],
            a.kl_per_dim[d]
        )?;
    }
    writeln!(report)?;
    Ok(())
}

fn correlations(report: &mut String, a: &Analysis) -> anyhow::Result<()> {
    writeln!(report, "## What the top neurons follow\n")?;
    writeln!(
        report,
        "Spearman correlation / mutual information (bits, 8 quantile bins) of each neuron's mu \
         with each attribute:\n"
    )?;
    writeln!(report, "| neuron | {} |", a.attributes.join(" | "))?;
    writeln!(report, "|---|{}", "---|".repeat(a.attributes.len()))?;
    for (i, rel) in a.relations.iter().enumerate() {
        let cells: Vec<String> = rel
            .iter()
            .map(|r| format!("{:+.2} / {:.2}", r.spearman, r.mutual_information))
            .collect();
        writeln!(
            report,
            "| N{} (z{}) | {} |",
            i + 1,
            a.ranking[i],
            cells.join(" | ")
        )?;
    }
    writeln!(report)?;
    Ok(())
}
