//! `cargo xtask train`: resumable training with checkpoints and a progress bar.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::corpus::CorpusSource;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use latent_live_core::model::{Config, ModelCard, ModelFile};
use latent_live_core::music::{Encoding, Event};
use latent_live_training::corpus::{self, Corpus, Split, SplitFractions};
use latent_live_training::eval::{evaluate, evaluate_grooves, mean_velocities};
use latent_live_training::train::{StepStats, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Architecture: Latent Live's melody models `2bar` (flat), `4bar` and `16bar`
    /// (hierarchical),
    /// its chord-conditioned melody models `pop-2bar-chords` and `pop-4bar-chords` (on a
    /// `corpus --pop909` corpus), its drum models `groove-2bar` and `groove-4bar`, its groove models
    /// `groove-humanize-2bar` and `tap2drum-2bar`, or Magenta's `mel_2bar_small` and
    /// `drums_2bar_small`.
    #[arg(long, default_value = "2bar")]
    preset: String,
    #[command(flatten)]
    source: CorpusSource,
    /// Run folder: checkpoint.safetensors, model.safetensors and log.csv go here.
    #[arg(long)]
    out: PathBuf,
    /// Continue from the run folder's checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start a new run from a trained model's weights (e.g. assets/folk-2bar.safetensors),
    /// at the step it was saved at, with fresh optimiser moments.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Start a new run of `--preset`'s architecture from another architecture's trained
    /// weights (e.g. the 16bar or pop-4bar-chords preset from assets/folk-4bar.safetensors):
    /// each tensor takes what it shares with the file's, the rest keeps its
    /// initialisation; the schedules start at step 0.
    #[arg(long, conflicts_with_all = ["resume", "init"])]
    transplant: Option<PathBuf>,
    /// The schedules' step to continue from with --init, for files that do not record it.
    #[arg(long, requires = "init")]
    init_step: Option<u64>,
    /// Stop after this many optimisation steps in total.
    #[arg(long, default_value_t = 200_000)]
    steps: u64,
    /// Stop after this many minutes of this invocation.
    #[arg(long)]
    minutes: Option<f64>,
    #[arg(long, default_value_t = 5.0)]
    checkpoint_minutes: f64,
    /// Validate (teacher forced and greedy) every this many steps.
    #[arg(long, default_value_t = 1000)]
    eval_every: u64,
    #[arg(long, default_value_t = 1024)]
    eval_slices: usize,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    learning_rate: Option<f64>,
    #[arg(long)]
    max_beta: Option<f64>,
    #[arg(long)]
    beta_rate: Option<f64>,
    #[arg(long)]
    free_bits: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Chord models: the share of training slices (0 to 1) the encoder reads in one
    /// random key and the decoder writes in another, so that the decoder takes the key
    /// from the chords.
    #[arg(long, value_parser = share)]
    keys_apart: Option<f64>,
    /// Scheduled sampling rate k (Magenta: 1000); also applies when resuming.
    #[arg(long)]
    scheduled_sampling: Option<f64>,
    /// Keep each LSTM layer's inputs with this probability while training (Magenta's
    /// dropout_keep_prob; 1 for none); also applies when resuming.
    #[arg(long)]
    dropout_keep: Option<f64>,
    /// Drum models: play each training slice with closed hi-hat and ride exchanged with
    /// this probability; also applies when resuming.
    #[arg(long)]
    swap_hat_ride: Option<f64>,
    /// Drum models: play each training slice with its three toms in another order (the
    /// fill's rhythm kept, moved between the toms) with this probability; also applies
    /// when resuming.
    #[arg(long)]
    shuffle_toms: Option<f64>,
    /// Drum models: play each training slice's kick, snare and toms under the hi-hats,
    /// crash and ride of another training slice with this probability; also applies
    /// when resuming.
    #[arg(long)]
    borrow_cymbals: Option<f64>,
    /// Drum models: leave out each hit of a training slice with this probability (a
    /// sparser take of the same groove); also applies when resuming.
    #[arg(long)]
    drop_hits: Option<f64>,
    /// Drum models: weigh each step's loss by the rarity of the drums it hits, each
    /// class (most hits / its hits)^GAMMA over the training split (0.5 is a square root;
    /// 0 turns it off); also applies when resuming.
    #[arg(long)]
    rare_drums: Option<f64>,
    /// AR-VAE: bind these attributes to latent dimensions 0, 1, ... (comma-separated,
    /// e.g. note_density,rhythm_complexity,pitch_range,contour).
    #[arg(long, value_delimiter = ',')]
    regularize: Vec<String>,
    /// Weight of the AR-VAE term (gamma).
    #[arg(long)]
    regularize_weight: Option<f64>,
}

/// A share, 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a share from 0 to 1")),
    }
}

pub fn preset(name: &str) -> anyhow::Result<Config> {
    Ok(match name {
        "2bar" => Config::latent_live_2bar(),
        "4bar" => Config::latent_live_4bar(),
        "16bar" => Config::latent_live_16bar(),
        "pop-2bar-chords" => Config::pop_2bar_chords(),
        "pop-4bar-chords" => Config::pop_4bar_chords(),
        "groove-2bar" => Config::groove_2bar(),
        "groove-4bar" => Config::groove_4bar(),
        "groove-humanize-2bar" => Config::groove_humanize_2bar(),
        "tap2drum-2bar" => Config::tap2drum_2bar(),
        "mel_2bar_small" => Config::mel_2bar_small(),
        "drums_2bar_small" => Config::drums_2bar_small(),
        other => bail!(
            "unknown preset {other:?}; use 2bar, 4bar, 16bar, pop-2bar-chords, pop-4bar-chords, \
             groove-2bar, groove-4bar, \
             groove-humanize-2bar, tap2drum-2bar, mel_2bar_small or drums_2bar_small"
        ),
    })
}

/// One optimisation step on a batch drawn from `split`: events, or grooves.
fn step(trainer: &mut Trainer, split: &Split) -> candle_core::Result<StepStats> {
    if trainer.model.config.encoding == Encoding::Groove {
        let batch = trainer.sample_grooves(split);
        trainer.train_groove_step(&batch.iter().collect::<Vec<_>>())
    } else {
        trainer.train_on(&trainer.sample_batch(split))
    }
}

/// The summary line, the KL, and the two figures the log keeps: teacher-forced and
/// sampled accuracy, or (grooves) hit accuracy and velocity error.
fn validation(
    trainer: &Trainer,
    corpus: &Corpus,
    slices: usize,
) -> anyhow::Result<(String, f64, f64, f64)> {
    if trainer.model.config.encoding == Encoding::Groove {
        let e = evaluate_grooves(
            &trainer.model,
            &corpus.validation,
            &corpus.tune_bpm(),
            &mean_velocities(&corpus.train),
            256,
            Some(slices),
        )?;
        return Ok((
            e.summary_line(),
            e.kl_per_dim.iter().sum(),
            e.hit_accuracy,
            e.velocity_mae,
        ));
    }
    let e = evaluate(&trainer.model, &corpus.validation, 256, Some(slices))?;
    Ok((
        e.summary_line(),
        e.kl_per_dim.iter().sum(),
        e.teacher_forced,
        e.sampled,
    ))
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let checkpoint = args.out.join("checkpoint.safetensors");
    // What came before this run folder (a warm start's source), kept in every save.
    let mut lineage = String::new();
    let mut trainer = if args.resume {
        let t = Trainer::resume(&checkpoint)
            .with_context(|| format!("resuming from {}", checkpoint.display()))?;
        println!("resumed at step {}", t.step);
        lineage = std::fs::read_to_string(args.out.join("lineage.txt")).unwrap_or_default();
        t
    } else {
        if checkpoint.exists() {
            bail!(
                "{} exists: pass --resume to continue it, or choose another --out",
                checkpoint.display()
            );
        }
        let mut config = TrainConfig::default();
        config.batch_size = args.batch_size.unwrap_or(config.batch_size);
        config.learning_rate = args.learning_rate.unwrap_or(config.learning_rate);
        config.max_beta = args.max_beta.unwrap_or(config.max_beta);
        config.beta_rate = args.beta_rate.unwrap_or(config.beta_rate);
        config.free_bits = args.free_bits.unwrap_or(config.free_bits);
        config.seed = args.seed.unwrap_or(config.seed);
        config.keys_apart = args.keys_apart.unwrap_or(config.keys_apart);
        let encoding = match &args.init {
            Some(path) => ModelFile::read(path)?.config.encoding,
            None => preset(&args.preset)?.encoding,
        };
        let known = latent_live_core::music::attributes::of(encoding);
        if let Some(unknown) = args
            .regularize
            .iter()
            .find(|a| !known.contains(&a.as_str()))
        {
            bail!(
                "unknown {} attribute {unknown:?}; choose from {}",
                encoding.name(),
                known.join(", ")
            );
        }
        if encoding == Encoding::Groove && !args.regularize.is_empty() {
            bail!(
                "--regularize binds attributes in pattern models; a groove model's latent space \
                 is not regularised"
            );
        }
        config.regularize = args.regularize.clone();
        config.regularize_weight = args.regularize_weight.unwrap_or(config.regularize_weight);
        match &args.init {
            Some(path) => {
                let file = ModelFile::read(path)?;
                let step = match args.init_step {
                    Some(step) => step,
                    None => file.extra_json("step")?.with_context(|| {
                        format!(
                            "{} does not record its step: pass --init-step",
                            path.display()
                        )
                    })?,
                };
                lineage = format!(
                    "Warm-started at step {step} from {} ({}).\n\n",
                    path.display(),
                    file.card.training.trim()
                );
                std::fs::write(args.out.join("lineage.txt"), &lineage)?;
                println!("warm start from {} at step {step}", path.display());
                Trainer::warm_start(&file, config, step)?
            }
            None => match &args.transplant {
                Some(path) => {
                    let file = ModelFile::read(path)?;
                    let (trainer, report) =
                        Trainer::transplant(&file, preset(&args.preset)?, config)?;
                    println!(
                        "transplanted from {}: {} tensors whole, {} in part ({}), {} fresh ({})",
                        path.display(),
                        report.whole,
                        report.part.len(),
                        report.part.join(", "),
                        report.fresh.len(),
                        report.fresh.join(", ")
                    );
                    lineage = format!(
                        "Transplanted into the {} preset from {} ({} tensors whole, {} in \
                         part, {} fresh; {}).\n\n",
                        args.preset,
                        path.display(),
                        report.whole,
                        report.part.len(),
                        report.fresh.len(),
                        file.card.training.trim()
                    );
                    std::fs::write(args.out.join("lineage.txt"), &lineage)?;
                    trainer
                }
                None => Trainer::new(preset(&args.preset)?, config)?,
            },
        }
    };
    if trainer.config.keys_apart > 0.0 && trainer.model.config.chords.is_none() {
        bail!("--keys-apart is for chord models: without chords the decoder has no key to take");
    }
    if trainer.model.config.encoding.is_drums() {
        // Transposition is for melodies: drum batches are never transposed, and the
        // config (kept with the weights) says so.
        trainer.config.transpose = 0;
    }
    if let Some(keep) = args.dropout_keep {
        anyhow::ensure!(
            keep > 0.0 && keep <= 1.0,
            "--dropout-keep is a probability in (0, 1], not {keep}"
        );
        trainer.config.dropout_keep = keep;
    }
    let plays_drums = trainer.model.config.encoding == Encoding::Drums;
    let variation = &mut trainer.config.drum_variation;
    for (flag, arg, field) in [
        (
            "--swap-hat-ride",
            args.swap_hat_ride,
            &mut variation.swap_hat_ride,
        ),
        (
            "--shuffle-toms",
            args.shuffle_toms,
            &mut variation.shuffle_toms,
        ),
        (
            "--borrow-cymbals",
            args.borrow_cymbals,
            &mut variation.borrow_cymbals,
        ),
        ("--drop-hits", args.drop_hits, &mut variation.drop_hits),
    ] {
        if let Some(p) = arg {
            anyhow::ensure!(
                (0.0..=1.0).contains(&p),
                "{flag} is a probability in [0, 1], not {p}"
            );
            anyhow::ensure!(
                plays_drums,
                "{flag} varies drum pattern slices; this model does not play drum patterns"
            );
            *field = p;
        }
    }
    if let Some(rate) = args.scheduled_sampling {
        trainer.config.scheduled_sampling_rate = rate;
    }
    let (corpus, _) = args.source.load(
        &trainer.model.config,
        SplitFractions::default(),
        trainer.config.seed,
    )?;
    println!("{}", corpus.summary());
    if let Some(gamma) = args.rare_drums {
        anyhow::ensure!(
            gamma >= 0.0 && plays_drums,
            "--rare-drums weighs drum pattern hits: a power of 0 or more, for a model that \
             plays drum patterns"
        );
        trainer.config.drum_class_weights = if gamma > 0.0 {
            corpus::drum_rarity(&corpus.train, gamma)
        } else {
            Vec::new()
        };
    }
    println!(
        "model {:?}\ntraining {:?}",
        &trainer.model.config, trainer.config
    );

    let started = Instant::now();
    let deadline = args
        .minutes
        .map(|m| started + Duration::from_secs_f64(m * 60.0));
    let mut last_checkpoint = Instant::now();
    let mut log = open_log(&args.out.join("log.csv"))?;
    let bar = ProgressBar::new(args.steps).with_position(trainer.step);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec} {msg}")?
            .progress_chars("=> "),
    );
    let (mut examples, mut window_start) = (0usize, Instant::now());
    while trainer.step < args.steps && deadline.is_none_or(|d| Instant::now() < d) {
        let stats = step(&mut trainer, &corpus.train)?;
        examples += trainer.config.batch_size;
        bar.set_position(trainer.step);
        let rate = examples as f64 / window_start.elapsed().as_secs_f64();
        let regularization = if trainer.config.regularize.is_empty() {
            String::new()
        } else {
            format!(" ar {:.3}", stats.regularization)
        };
        bar.set_message(format!(
            "loss {:.2} kl {:.2} acc {:.3}{regularization} beta {:.3} sampled {:.2} {:.0} ex/s",
            stats.loss, stats.kl, stats.accuracy, stats.beta, stats.sampling_probability, rate
        ));
        writeln!(
            log,
            "{},train,{},{},{},{},{:.1}",
            trainer.step, stats.loss, stats.reconstruction, stats.kl, stats.accuracy, rate
        )?;
        if trainer.step % 100 == 0 {
            (examples, window_start) = (0, Instant::now());
        }
        if trainer.step % args.eval_every == 0 {
            validate(&trainer, &corpus, args.eval_slices, &bar, &mut log)?;
        }
        if last_checkpoint.elapsed().as_secs_f64() > args.checkpoint_minutes * 60.0 {
            save(&trainer, &args.out, &corpus, &started, &lineage)?;
            last_checkpoint = Instant::now();
        }
    }
    bar.finish();
    save(&trainer, &args.out, &corpus, &started, &lineage)?;
    validate(&trainer, &corpus, args.eval_slices, &bar, &mut log)?;
    println!(
        "stopped at step {}; checkpoint and model in {}",
        trainer.step,
        args.out.display()
    );
    Ok(())
}

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    let fresh = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if fresh {
        writeln!(f, "step,kind,loss,reconstruction,kl,accuracy,extra")?;
    }
    Ok(f)
}

fn validate(
    trainer: &Trainer,
    corpus: &Corpus,
    slices: usize,
    bar: &ProgressBar,
    log: &mut std::fs::File,
) -> anyhow::Result<()> {
    let (line, kl, first, second) = validation(trainer, corpus, slices)?;
    bar.println(format!(
        "step {} validation: {line} kl={kl:.2}",
        trainer.step
    ));
    writeln!(log, "{},validation,,,{kl},{first},{second}", trainer.step)?;
    Ok(())
}

/// Writes the resumable checkpoint and, beside it, the weights with their card.
fn save(
    trainer: &Trainer,
    out: &Path,
    corpus: &Corpus,
    started: &Instant,
    lineage: &str,
) -> anyhow::Result<()> {
    trainer.save_checkpoint(&out.join("checkpoint.safetensors"))?;
    let card = ModelCard {
        name: out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        data: corpus.provenance(),
        split: corpus.summary(),
        training: format!(
            "{lineage}{} steps of batch {} ({:?}); last session {:.0} min",
            trainer.step,
            trainer.config.batch_size,
            trainer.config,
            started.elapsed().as_secs_f64() / 60.0
        ),
        ..ModelCard::default()
    };
    trainer
        .model_file(card, BTreeMap::new())?
        .write(&out.join("model.safetensors"), candle_core::DType::F32)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchTrainArgs {
    #[arg(long, default_value = "2bar")]
    preset: String,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Timed steps, after two warm-up steps.
    #[arg(long, default_value_t = 10)]
    steps: u64,
}

/// Training throughput on random melodies: what BENCHMARKS.md quotes.
pub fn bench(args: &BenchTrainArgs) -> anyhow::Result<()> {
    let config = preset(&args.preset)?;
    let steps = config.steps();
    let mut trainer = Trainer::new(
        config.clone(),
        TrainConfig {
            batch_size: args.batch_size,
            ..TrainConfig::default()
        },
    )?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let batch: Vec<Vec<Event>> = (0..args.batch_size)
        .map(|_| {
            (0..steps)
                .map(|_| rng.random_range(0..config.num_classes() as Event))
                .collect()
        })
        .collect();
    let refs: Vec<&[Event]> = batch.iter().map(Vec::as_slice).collect();
    for _ in 0..2 {
        trainer.train_step(&refs, None)?;
    }
    let started = Instant::now();
    for _ in 0..args.steps {
        trainer.train_step(&refs, None)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "preset {} batch {}: {:.1} ms/step, {:.1} examples/s ({} threads)",
        args.preset,
        args.batch_size,
        1000.0 * seconds / args.steps as f64,
        (args.steps as usize * args.batch_size) as f64 / seconds,
        candle_core::utils::get_num_threads()
    );
    Ok(())
}
