//! `cargo xtask eval`: held-out accuracy and latent usage of a model, and over chords how
//! its melodies follow them.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::corpus::CorpusSource;
use latent_live_core::model::inversion::{invert, InversionConfig};
use latent_live_core::model::{Config, ModelFile, MusicVae, Sampling};
use latent_live_core::music::{drums, melody, Encoding};
use latent_live_training::corpus::{self, Corpus, Split, SplitFractions};
use latent_live_training::eval::{
    accuracy, evaluate, evaluate_grooves, mean_velocities, nearest_copy_accuracy, sample_over,
    teacher_forced_correct, ChordToneShares, ChordTones,
};

/// The temperature of the prior samples measured over a split's chords, as
/// `chord-tones` samples by default.
const PRIOR_TEMPERATURE: f32 = 0.5;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A model file.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    held_out: HeldOut,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Also compare greedy reconstruction from mu against latent inversion ("refine") on
    /// this many slices, one clip at a time as the plugin does, with the time it takes.
    /// The only evaluation decoder-only models have.
    #[arg(long)]
    refine: Option<usize>,
    /// The corpus split to measure: held-out `test`, or `validation`, or `train` to see
    /// how much of the gap to held-out accuracy is generalisation.
    #[arg(long, default_value = "test", value_parser = clap::builder::PossibleValuesParser::new(corpus::SPLIT_NAMES))]
    split: String,
    /// Also score copying the closest training slice, step for step: how far the measured
    /// slices lie from anything the model was trained on.
    #[arg(long)]
    nearest: bool,
}

impl EvalArgs {
    /// The split `--split` names.
    fn split_of<'c>(&self, corpus: &'c Corpus) -> &'c Split {
        corpus
            .splits()
            .into_iter()
            .find(|(name, _)| *name == self.split)
            .map(|(_, split)| split)
            .expect("clap admits only SPLIT_NAMES")
    }
}

/// The melodies a model is measured on, shared by `eval` and `analyze`.
#[derive(clap::Args)]
pub struct HeldOut {
    #[command(flatten)]
    source: CorpusSource,
    /// Use at most this many slices.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl HeldOut {
    /// The corpus whose test split a model of `config` is measured on (a MIDI folder's is
    /// all test), and where it came from.
    pub fn corpus(&self, config: &Config) -> anyhow::Result<(Corpus, String)> {
        let all_test = SplitFractions::all_test();
        self.source.load(config, all_test, 0)
    }
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let file = ModelFile::read(&args.model)?;
    if file.config.encoding == Encoding::Groove {
        return grooves(args, &file);
    }
    let model = file.model(&candle_core::Device::Cpu)?;
    if !model.has_encoder() && args.refine.is_none() {
        anyhow::bail!(
            "{} is decoder-only: it has no mu to evaluate from; `--refine N` measures latent \
             inversion instead",
            args.model.display()
        );
    }
    let (corpus, source) = args.held_out.corpus(&model.config)?;
    let split = args.split_of(&corpus);
    anyhow::ensure!(!split.is_empty(), "{source} has no {} split", args.split);
    anyhow::ensure!(
        !args.nearest || !corpus.train.is_empty(),
        "--nearest copies training slices, and {source} has no training split"
    );
    if let Some(n) = args.refine {
        refine(&model, split, n)?;
        if !model.has_encoder() {
            return Ok(());
        }
    }
    let started = std::time::Instant::now();
    let e = evaluate(&model, split, args.batch_size, args.held_out.limit)?;
    println!("model: {} ({:?})", args.model.display(), model.config);
    println!(
        "evaluated {} slices of the {} split of {source} in {:.1} s",
        e.slices,
        args.split,
        started.elapsed().as_secs_f64()
    );
    if args.nearest {
        println!(
            "copying the nearest training slice: {:.4}",
            nearest_copy_accuracy(&corpus.train, split, args.held_out.limit)
        );
    }
    if !e.class_errors.is_empty() {
        let steps = (e.slices * model.config.steps()) as f64;
        println!(
            "greedy decode of mu by drum class: its hits, the share of them missed, extra hits \
             per 100 steps"
        );
        for (class, c) in drums::CLASSES.iter().zip(&e.class_errors) {
            println!(
                "  {:<14} {:>6} hits  {:>5.1} % missed  {:>5.2} extra",
                class.name,
                c.hits,
                100.0 * c.missed as f64 / c.hits.max(1) as f64,
                100.0 * c.extra as f64 / steps
            );
        }
    }
    if let Some(shares) = e.chord_tones {
        chord_tones(&model, split, shares, args.held_out.limit)?;
    }
    let ranking = e.kl_ranking();
    println!("KL per dimension (nats), largest first:");
    for chunk in ranking.chunks(8) {
        let row: Vec<String> = chunk
            .iter()
            .map(|&d| format!("z{d}={:.3}", e.kl_per_dim[d]))
            .collect();
        println!("  {}", row.join(" "));
    }
    println!("total KL {:.2} nats", e.kl_per_dim.iter().sum::<f64>());
    println!("{}", e.summary_line());
    Ok(())
}

/// How the measured melodies, their decodes and, for a model that reads chords, prior
/// samples over the same progressions follow the chords on the beats.
fn chord_tones(
    model: &MusicVae,
    split: &Split,
    shares: ChordToneShares,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let share = |c: ChordTones| format!("{:.1} % of {} notes", 100.0 * c.share(), c.notes);
    println!("on-beat notes that are tones of their chord:");
    println!("  {:<44} {}", "the melodies", share(shares.human));
    println!("  {:<44} {}", "greedy decodes of mu", share(shares.decoded));
    if model.config.chords.is_some() {
        let n = limit.map_or(split.len(), |l| l.min(split.len()));
        let chords = split.chords_of(0..n).expect("a split with chords");
        let mut sampled = ChordTones::default();
        for (events, over) in sample_over(model, &chords, PRIOR_TEMPERATURE, 1)?
            .iter()
            .zip(&chords)
        {
            sampled.add_notes(&melody::decode(events), over);
        }
        println!(
            "  {:<44} {}",
            format!("prior samples over the progressions (T {PRIOR_TEMPERATURE})"),
            share(sampled)
        );
    }
    Ok(())
}

/// A groove model against its test grooves and the mean-velocity baseline.
fn grooves(args: &EvalArgs, file: &ModelFile) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.nearest,
        "--nearest scores a pattern model's step accuracy; a groove model is scored on its hits"
    );
    let model = file.model(&candle_core::Device::Cpu)?;
    let (corpus, source) = args.held_out.corpus(&model.config)?;
    // The baseline's velocities come from the training split; a MIDI folder has none, so
    // its own test grooves stand in.
    let (baseline, baseline_from) = if corpus.train.is_empty() {
        (&corpus.test, "test")
    } else {
        (&corpus.train, "training")
    };
    let started = std::time::Instant::now();
    let split = args.split_of(&corpus);
    anyhow::ensure!(!split.is_empty(), "{source} has no {} split", args.split);
    let e = evaluate_grooves(
        &model,
        split,
        &corpus.tune_bpm(),
        &mean_velocities(baseline),
        args.batch_size,
        args.held_out.limit,
    )?;
    println!("model: {} ({:?})", args.model.display(), model.config);
    println!(
        "evaluated {} grooves of the {} split of {source} in {:.1} s (greedy decode of mu)",
        e.slices,
        args.split,
        started.elapsed().as_secs_f64()
    );
    println!(
        "hits: precision {:.4}, recall {:.4}",
        e.hit_precision, e.hit_recall
    );
    let m = e.matched;
    println!(
        "on the hits it plays right: velocity MAE {:.2} (baseline {:.2}), timing MAE {:.2} ms \
         (baseline {:.2} ms)",
        m.velocity, m.baseline_velocity, m.timing_ms, m.baseline_timing_ms
    );
    println!(
        "baseline: each class at its mean velocity over the {baseline_from} split, on the grid"
    );
    println!("total KL {:.2} nats", e.kl_per_dim.iter().sum::<f64>());
    println!("{}", e.summary_line());
    Ok(())
}

/// Greedy reconstruction of the first `n` slices from mu and from inverted z.
fn refine(model: &MusicVae, split: &Split, n: usize) -> anyhow::Result<()> {
    let n = n.min(split.len());
    let config = InversionConfig::default();
    let (mut from_mu, mut from_z, mut seconds, mut forced_right) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for i in 0..n {
        let phrase = split.get(i);
        let started = std::time::Instant::now();
        let z = invert(model, &[phrase], None, config, &AtomicBool::new(false))?;
        seconds.push(started.elapsed().as_secs_f64());
        from_z.extend(model.decode(&z, Sampling::Greedy)?);
        forced_right += teacher_forced_correct(model, &z, &model.batch(&[phrase])?)?;
        if model.has_encoder() {
            from_mu.extend(model.decode(&model.encode(&[phrase])?, Sampling::Greedy)?);
        }
    }
    let phrases: Vec<&[latent_live_core::music::Event]> = (0..n).map(|i| split.get(i)).collect();
    seconds.sort_by(f64::total_cmp);
    let start = if model.has_encoder() {
        "from mu".to_string()
    } else {
        format!("from the best of {} prior samples", config.restarts)
    };
    println!(
        "latent inversion ({} Adam steps, lr {}, {start}) on {n} slices: median {:.2} s, max \
         {:.2} s per clip",
        config.steps,
        config.learning_rate,
        seconds[n / 2],
        seconds[n - 1]
    );
    if model.has_encoder() {
        println!(
            "greedy reconstruction from mu: {:.4}",
            accuracy(&from_mu, &phrases)
        );
    }
    println!(
        "greedy reconstruction from inverted z: {:.4}",
        accuracy(&from_z, &phrases)
    );
    let steps: usize = phrases.iter().map(|p| p.len()).sum();
    println!(
        "teacher-forced accuracy from inverted z: {:.4}",
        forced_right as f64 / steps as f64
    );
    Ok(())
}
