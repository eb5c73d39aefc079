//! `cargo xtask ship`: a trained run becomes a shipped model in assets/, measured on the
//! held-out tunes, stored as f16 when that costs no accuracy, with its card beside it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{DType, Device};
use latent_live_core::model::{GrooveInput, ModelFile};
use latent_live_core::music::Encoding;
use latent_live_training::corpus::{self, Corpus};
use latent_live_training::eval::{
    evaluate, evaluate_grooves, mean_velocities, Evaluation, GrooveEvaluation,
};

#[derive(clap::Args)]
pub struct ShipArgs {
    /// The run folder (its model.safetensors is shipped).
    #[arg(long)]
    run: PathBuf,
    /// Asset name: writes assets/<name>.safetensors and assets/<name>.md.
    #[arg(long)]
    name: String,
    /// A corpus whose test split measures the model (default: data/folk-<bars>bar.safetensors,
    /// data/groove-<bars>bar.safetensors for drum models, data/groove-feel-<bars>bar.safetensors for groove models).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// One line on what the model is for.
    #[arg(long)]
    summary: String,
    /// Replace the shipped model even if the new one is not better.
    #[arg(long)]
    force: bool,
}

/// How much the f16 copy may lose before the model ships as f32: accuracy for pattern
/// models, MIDI velocity and milliseconds for groove models.
const F16_TOLERANCE: f64 = 0.002;
const F16_GROOVE_TOLERANCE: f64 = 0.05;

pub fn run(args: &ShipArgs) -> anyhow::Result<()> {
    let mut file = ModelFile::read(&args.run.join("model.safetensors"))?;
    let (bars, encoding) = (file.config.bars, file.config.encoding);
    let corpus_path = args
        .corpus
        .clone()
        .unwrap_or_else(|| corpus::default_path(encoding, file.config.chords.is_some(), bars));
    let corpus =
        Corpus::load(&corpus_path).with_context(|| format!("{}", corpus_path.display()))?;
    if (corpus.encoding, corpus.bars) != (encoding, bars) {
        bail!(
            "{} holds {}-bar {}, the model plays {bars}-bar {}",
            corpus_path.display(),
            corpus.bars,
            corpus.encoding.name(),
            encoding.name()
        );
    }
    file.card.name = args.name.clone();
    file.card.summary = args.summary.clone();
    file.card.split = format!(
        "{} ({}), split by {}",
        corpus.summary().lines().next().unwrap_or_default(),
        corpus_path.display(),
        match corpus.encoding {
            // Folk corpora record a longer `split_by`; a chord corpus is split by song.
            Encoding::Melody => format!(
                "{} with seed {}",
                if corpus.has_chords() { "song" } else { "tune" },
                corpus.metadata.get("seed").cloned().unwrap_or_default()
            ),
            Encoding::Drums | Encoding::Groove =>
                corpus.metadata.get("split_by").cloned().unwrap_or_default(),
        }
    );
    let out = PathBuf::from(format!("assets/{}.safetensors", args.name));
    let shipped = if out.exists() && !args.force {
        Some(ModelFile::read(&out)?)
    } else {
        None
    };
    match encoding {
        Encoding::Groove => ship_groove(file, &corpus, shipped.as_ref(), &out),
        Encoding::Melody | Encoding::Drums => ship_pattern(file, &corpus, shipped.as_ref(), &out),
    }
}

/// Measures a melody or drum model on the test split and writes it with its card.
fn ship_pattern(
    mut file: ModelFile,
    corpus: &Corpus,
    shipped: Option<&ModelFile>,
    out: &Path,
) -> anyhow::Result<()> {
    let test = &corpus.test;
    let e32 = evaluate(&file.model(&Device::Cpu)?, test, 256, None)?;
    println!("f32: {}", e32.summary_line());
    let f16 = ModelFile::from_bytes(&file.to_bytes(DType::F16)?)?;
    let e16 = evaluate(&f16.model(&Device::Cpu)?, test, 256, None)?;
    println!("f16: {}", e16.summary_line());
    let (dtype, e) = if e32.sampled - e16.sampled <= F16_TOLERANCE
        && e32.teacher_forced - e16.teacher_forced <= F16_TOLERANCE
    {
        (DType::F16, e16)
    } else {
        (DType::F32, e32)
    };

    if let Some(shipped) = shipped {
        let old = shipped.card.metrics.get("sampled").copied().unwrap_or(0.0);
        if e.sampled <= old {
            bail!(
                "the shipped model reaches sampled={old:.4}, this one {:.4}: not better (--force \
                 to replace)",
                e.sampled
            );
        }
    }
    file.card.metrics = [
        ("teacher_forced".to_string(), e.teacher_forced),
        ("sampled".to_string(), e.sampled),
        ("active_dims".to_string(), e.active_dims() as f64),
        ("test_slices".to_string(), e.slices as f64),
        ("kl_total".to_string(), e.kl_per_dim.iter().sum()),
    ]
    .into();
    file.extra
        .insert("kl_per_dim".into(), serde_json::to_string(&e.kl_per_dim)?);
    file.extra
        .insert("kl_ranking".into(), serde_json::to_string(&e.kl_ranking())?);
    file.write(out, dtype)?;
    std::fs::write(
        out.with_extension("md"),
        card_markdown(&file, &e, dtype, corpus),
    )?;
    println!(
        "shipped {} as {dtype:?}: {}",
        out.display(),
        e.summary_line()
    );
    Ok(())
}

/// Measures a groove model on the test split against the mean-velocity baseline and
/// writes it with its card. Lower errors are better: a new model ships only where its
/// velocity and timing errors together are lower than the shipped one's.
fn ship_groove(
    mut file: ModelFile,
    corpus: &Corpus,
    shipped: Option<&ModelFile>,
    out: &Path,
) -> anyhow::Result<()> {
    let (test, bpm, baseline) = (
        &corpus.test,
        corpus.tune_bpm(),
        mean_velocities(&corpus.train),
    );
    let e32 = evaluate_grooves(&file.model(&Device::Cpu)?, test, &bpm, &baseline, 256, None)?;
    println!("f32: {}", e32.summary_line());
    let f16 = ModelFile::from_bytes(&file.to_bytes(DType::F16)?)?;
    let e16 = evaluate_grooves(&f16.model(&Device::Cpu)?, test, &bpm, &baseline, 256, None)?;
    println!("f16: {}", e16.summary_line());
    let held = |e: &GrooveEvaluation| e.held.unwrap_or_default();
    let (dtype, e) = if e16.velocity_mae - e32.velocity_mae <= F16_GROOVE_TOLERANCE
        && held(&e16).0 - held(&e32).0 <= F16_GROOVE_TOLERANCE
        && held(&e16).1 - held(&e32).1 <= F16_GROOVE_TOLERANCE
        && e16.timing_mae_ms - e32.timing_mae_ms <= F16_GROOVE_TOLERANCE
        && e32.hit_accuracy - e16.hit_accuracy <= F16_TOLERANCE
    {
        (DType::F16, e16)
    } else {
        (DType::F32, e32)
    };
    // A humanizer is judged as the plugin plays it: with the pattern's hits held.
    let (prefix, (velocity, timing)) = match e.held {
        Some(held) => ("held_", held),
        None => ("", (e.velocity_mae, e.timing_mae_ms)),
    };
    let error = |velocity: f64, timing: f64| {
        velocity / e.baseline_velocity_mae + timing / e.baseline_timing_mae_ms
    };
    if let Some(shipped) = shipped {
        let metric = |name: &str| {
            shipped
                .card
                .metrics
                .get(&format!("{prefix}{name}"))
                .copied()
                .filter(|m| m.is_finite())
                .unwrap_or(f64::INFINITY)
        };
        let (v, t) = (metric("velocity_mae"), metric("timing_mae_ms"));
        if error(velocity, timing) >= error(v, t) {
            bail!(
                "the shipped model has {prefix}velocity_mae={v:.2} {prefix}timing_mae_ms={t:.2}, \
                 this one {velocity:.2} and {timing:.2}: not better (--force to replace)"
            );
        }
    }
    // Only a humanizer has the held errors: a metric is a number (JSON has no NaN).
    let held = e
        .held
        .map(|(v, t)| [("held_velocity_mae", v), ("held_timing_mae_ms", t)]);
    file.card.metrics = [
        ("hit_accuracy", e.hit_accuracy),
        ("hit_f1", e.hit_f1()),
        ("velocity_mae", e.velocity_mae),
        ("timing_mae_ms", e.timing_mae_ms),
        ("matched_velocity_mae", e.matched.velocity),
        ("matched_timing_mae_ms", e.matched.timing_ms),
        ("baseline_velocity_mae", e.baseline_velocity_mae),
        ("baseline_timing_mae_ms", e.baseline_timing_mae_ms),
        ("test_slices", e.slices as f64),
        ("kl_total", e.kl_per_dim.iter().sum()),
    ]
    .into_iter()
    .chain(held.into_iter().flatten())
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    file.write(out, dtype)?;
    std::fs::write(
        out.with_extension("md"),
        groove_card_markdown(&file, &e, dtype, corpus),
    )?;
    println!(
        "shipped {} as {dtype:?}: {}",
        out.display(),
        e.summary_line()
    );
    Ok(())
}

/// A model card's sections; [`Card::render`] writes every card the one way.
struct Card<'a> {
    file: &'a ModelFile,
    architecture: String,
    /// Licences of the sources, or the dataset's credit.
    credit: String,
    /// How the metrics below were measured.
    measured: String,
    /// The metrics table, header first.
    table: Vec<Vec<String>>,
}

impl Card<'_> {
    fn render(&self) -> String {
        let card = &self.file.card;
        let row = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut table = row(&self.table[0]);
        table.push_str(&format!("|{}\n", "---|".repeat(self.table[0].len())));
        self.table[1..]
            .iter()
            .for_each(|cells| table.push_str(&row(cells)));
        format!(
            "# {name}\n\n{summary}\n\n## Architecture\n\n{architecture}\n\n## \
             Data\n\n{data}\n\n{credit}\n\n## Split\n\n{split}\n\n## Training\n\n{training}\n\n## \
             Held-out metrics\n\n{measured}\n\n{table}",
            name = card.name,
            summary = card.summary,
            architecture = self.architecture,
            data = card.data,
            credit = self.credit,
            split = card.split,
            training = card.training,
            measured = self.measured,
        )
    }
}

/// A table row from its cells.
fn cells<const N: usize>(cells: [&dyn std::fmt::Display; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn card_markdown(file: &ModelFile, e: &Evaluation, dtype: DType, corpus: &Corpus) -> String {
    let c = &file.config;
    let kind = if c.hierarchical {
        "hierarchical (conductor + bar decoder)"
    } else {
        "flat"
    };
    let (encoding, credit) = match c.encoding {
        Encoding::Melody if corpus.has_chords() => (
            format!(
                "90-class melody encoding (pitches {}..={}), and beside every event the chord \
                 of its 16th in Magenta's pitch chord encoding (no chord, root, pitch classes, \
                 bass: 37 values), read by the encoder and the decoder",
                c.min_pitch, c.max_pitch
            ),
            format!(
                "Trained on {}. The songs' lead melodies (their `MELODY` tracks) over the \
                 chords annotated in `chord_midi.txt`, on the beats of `beat_midi.txt`.",
                corpus
                    .metadata
                    .get("dataset")
                    .map_or("POP909", String::as_str),
            ),
        ),
        Encoding::Melody => {
            let licences: Vec<String> = corpus
                .metadata
                .iter()
                // The one-line notes; the long licence texts stay in the corpus file.
                .filter(|(k, _)| {
                    k.starts_with("licence.")
                        && !k.ends_with("_notes")
                        && *k != "licence.music21_corpus"
                })
                .map(|(k, v)| format!("- {}: {v}", k.trim_start_matches("licence.")))
                .collect();
            (
                format!(
                    "90-class melody encoding (pitches {}..={})",
                    c.min_pitch, c.max_pitch
                ),
                format!(
                    "Licences of the sources (the Essen collection is for non-commercial and \
                     research use, so this model is too):\n\n{}",
                    licences.join("\n")
                ),
            )
        }
        Encoding::Drums | Encoding::Groove => (
            "drum encoding of Magenta's DrumsConverter (9 drum classes, one of 512 combinations \
             per 16th; the encoder reads the 10-wide roll)"
                .to_string(),
            groove_dataset_credit(corpus),
        ),
    };
    let kl = e.kl_per_dim.iter().sum::<f64>();
    Card {
        file,
        architecture: format!(
            "{kind} MusicVAE, {bars} bars of 16ths ({steps} steps), z = {z}, bidirectional LSTM \
             encoder {enc:?}, decoder LSTM {dec:?}, {encoding}. Weights stored as {dtype:?}.",
            bars = c.bars,
            steps = c.steps(),
            z = c.z_size,
            enc = c.encoder,
            dec = c.decoder,
        ),
        credit,
        measured: format!(
            "Measured by `cargo xtask ship` on all {slices} test slices (`cargo xtask eval \
             --model assets/{name}.safetensors` gives the same):",
            slices = e.slices,
            name = file.card.name,
        ),
        table: vec![
            cells([&"metric", &"value"]),
            cells([
                &"teacher-forced accuracy",
                &format!("{:.4}", e.teacher_forced),
            ]),
            cells([
                &"greedy-sampled accuracy (from mu)",
                &format!("{:.4}", e.sampled),
            ]),
            cells([
                &"active latent dimensions (var(mu) > 0.01)",
                &e.active_dims(),
            ]),
            cells([&"total KL (nats)", &format!("{kl:.2}")]),
        ],
    }
    .render()
}

fn groove_dataset_credit(corpus: &Corpus) -> String {
    format!(
        "Data credit: the Groove MIDI Dataset v1.0.0 (Jon Gillick, Adam Roberts, Jesse Engel, Douglas Eck, David Bamman, \
         \"Learning to Groove with Inverse Sequence Transformations\", ICML 2019; \
         https://magenta.tensorflow.org/datasets/groove), licensed under the Creative Commons Attribution 4.0 \
         International License (CC BY 4.0). This model is trained on it; its licence note as shipped: \"{}\"",
        corpus.metadata.get("licence").map_or("(none found)", String::as_str)
    )
}

fn groove_card_markdown(
    file: &ModelFile,
    e: &GrooveEvaluation,
    dtype: DType,
    corpus: &Corpus,
) -> String {
    let c = &file.config;
    let input = match c.groove_input {
        GrooveInput::Humanize => {
            "the quantized hits alone (GrooVAE's `humanize`): it adds velocity and timing to a \
             pattern"
        }
        GrooveInput::Tap => {
            "one tap voice at each step's timing, velocity fixed (GrooVAE's `tapify` with \
             `fixed_velocities`): it turns a tapped rhythm into a beat"
        }
        GrooveInput::Whole => "the whole groove: it reconstructs and morphs grooves",
    };
    let (f2, f4) = (|v: f64| format!("{v:.2}"), |v: f64| format!("{v:.4}"));
    let mut table = vec![
        cells([&"metric", &"model", &"baseline"]),
        cells([&"hit accuracy (cells)", &f4(e.hit_accuracy), &""]),
        cells([&"hit F1", &f4(e.hit_f1()), &""]),
        cells([
            &"velocity MAE (MIDI)",
            &f2(e.velocity_mae),
            &f2(e.baseline_velocity_mae),
        ]),
        cells([
            &"timing MAE (ms)",
            &f2(e.timing_mae_ms),
            &f2(e.baseline_timing_mae_ms),
        ]),
    ];
    if let Some((velocity, timing)) = e.held {
        table.push(cells([
            &"velocity MAE, hits held (as the plugin plays it)",
            &f2(velocity),
            &f2(e.baseline_velocity_mae),
        ]));
        table.push(cells([
            &"timing MAE, hits held (ms)",
            &f2(timing),
            &f2(e.baseline_timing_mae_ms),
        ]));
    }
    table.extend([
        cells([
            &"velocity MAE, on the hits it plays right",
            &f2(e.matched.velocity),
            &f2(e.matched.baseline_velocity),
        ]),
        cells([
            &"timing MAE, on the hits it plays right (ms)",
            &f2(e.matched.timing_ms),
            &f2(e.matched.baseline_timing_ms),
        ]),
        cells([
            &"total KL (nats)",
            &f2(e.kl_per_dim.iter().sum::<f64>()),
            &"",
        ]),
    ]);
    Card {
        file,
        architecture: format!(
            "GrooVAE (Magenta's `GrooveConverter` and `GrooveLstmDecoder`), flat, {bars} bars of \
             16ths ({steps} steps), z = {z}, bidirectional LSTM encoder {enc:?}, decoder LSTM \
             {dec:?}. Each step holds, for the 9 drum classes, a hit, a velocity (0..1) and a \
             timing offset (up to half a 16th either way). The encoder reads {input}. Weights \
             stored as {dtype:?}.",
            bars = c.bars,
            steps = c.steps(),
            z = c.z_size,
            enc = c.encoder,
            dec = c.decoder,
        ),
        credit: groove_dataset_credit(corpus),
        measured: format!(
            "Measured by `cargo xtask ship` on all {slices} test grooves, decoded greedily from \
             mu (`cargo xtask eval --model assets/{name}.safetensors` gives the same). Velocity \
             and timing errors are over the hits the drummer played; timing is in milliseconds at \
             each performance's tempo. The baseline is GrooVAE's: each class at its mean velocity \
             over the training split, on the grid.",
            slices = e.slices,
            name = file.card.name,
        ),
        table,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_live_core::model::{Config, ModelCard};

    #[test]
    fn a_card_renders_its_sections_then_its_table() {
        let card = ModelCard {
            name: "m".into(),
            summary: "s".into(),
            ..ModelCard::default()
        };
        let file = ModelFile::random(Config::tiny(2, false), card, Default::default()).unwrap();
        let card = Card {
            file: &file,
            architecture: "arch".into(),
            credit: "credit".into(),
            measured: "measured:".into(),
            table: vec![cells([&"metric", &"value"]), cells([&"x", &1])],
        }
        .render();
        assert!(
            card.starts_with("# m\n\ns\n\n## Architecture\n\narch\n\n## Data\n\n"),
            "{card}"
        );
        assert!(card.contains("credit\n\n## Split\n\n"), "{card}");
        assert!(
            card.ends_with(
                "## Held-out metrics\n\nmeasured:\n\n| metric | value |\n|---|---|\n| x | 1 |\n"
            ),
            "{card}"
        );
    }
}
