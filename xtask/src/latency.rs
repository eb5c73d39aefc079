//! `cargo xtask bench-latency`: how long after a parameter changes the new phrase is
//! ready for the audio thread, through the plugin's own worker and queues.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use latent_live::link;
use latent_live::params::{ChordInput, LatentLiveParams, ModelChoice};
use latent_live::testing::{set_normalized as set, wait_until};
use latent_live::worker::engine::Engine;
use latent_live::worker::models;
use latent_live_core::music::chord::Chord;
use latent_live_core::music::phrase::Phrase;
use nice_plug::prelude::Param;

#[derive(clap::Args)]
pub struct LatencyArgs {
    /// Parameter changes timed per model.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Time chord changes instead: a chord played in (C, G, Am, F in turn), as the audio
    /// thread publishes one; a model that reads chords decodes over it, the others are
    /// fitted to it at Chord Fit 100 %.
    #[arg(long)]
    chords: bool,
}

pub fn run(args: &LatencyArgs) -> anyhow::Result<()> {
    for choice in [
        ModelChoice::Folk2Bar,
        ModelChoice::Folk4Bar,
        ModelChoice::Groove2Bar,
        ModelChoice::Pop2BarChords,
    ] {
        // Chords move melodies only.
        if args.chords && choice == ModelChoice::Groove2Bar {
            continue;
        }
        if let Err(e) = models::default_loader()(models::ModelSource::Pattern(choice), None) {
            println!("{choice:?}: skipped ({e})");
            continue;
        }
        let params = Arc::new(LatentLiveParams::default());
        set(&params.model, params.model.preview_normalized(choice));
        let progression = ["C", "G", "Am", "F"].map(|s| Chord::parse(s).unwrap().unwrap());
        if args.chords {
            set(
                &params.chords.input,
                params.chords.input.preview_normalized(ChordInput::Channel),
            );
            set(&params.chords.fit, 1.0);
            params.chords.publish(progression[3]);
        }
        let (engine, mut link) =
            Engine::start(params.clone(), models::default_loader(), link::ports().0)?;
        let mut phrase = Phrase::EMPTY;
        wait(Duration::from_secs(60), || {
            link.phrases.pop_newest(&mut phrase)
        })
        .context("the first phrase never came")?;

        let mut latencies = Vec::with_capacity(args.changes);
        let mut decodes = Vec::with_capacity(args.changes);
        for i in 0..args.changes {
            // Let the worker settle into its idle poll, as between a performer's moves.
            std::thread::sleep(Duration::from_millis(5 + (i % 7) as u64));
            let previous = phrase.generation;
            let value = (i % 50) as f32 / 50.0;
            let changed = Instant::now();
            if args.chords {
                params.chords.publish(progression[i % 4]);
            } else {
                set(
                    &params.latent.sliders[0],
                    if params.latent.sliders[0].modulated_normalized_value() == value {
                        value + 0.01
                    } else {
                        value
                    },
                );
            }
            wait(Duration::from_secs(10), || {
                link.phrases.pop_newest(&mut phrase) && phrase.generation > previous
            })
            .context("no phrase after a change")?;
            latencies.push(changed.elapsed());
            decodes.push(Duration::from_micros(
                engine.status().last_decode_micros.load(Ordering::Acquire),
            ));
        }
        let name = engine.status().model_name();
        println!(
            "{name}: {} to phrase ready {}; of which decoding {}",
            if args.chords {
                "chord change"
            } else {
                "change"
            },
            summary(&mut latencies),
            summary(&mut decodes)
        );
    }
    Ok(())
}

fn wait(timeout: Duration, f: impl FnMut() -> bool) -> anyhow::Result<()> {
    if !wait_until(timeout, f) {
        bail!("timed out after {timeout:?}")
    }
    Ok(())
}

/// "median m ms, p95 p ms, max x ms (n)".
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} changes)",
        at(0.5),
        at(0.95),
        at(1.0),
        samples.len()
    )
}

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// Decodes timed per model and batch size.
    #[arg(long, default_value_t = 200)]
    decodes: usize,
    /// Also time random weights of these `train` presets (e.g. `16bar`), to time a model
    /// before it is trained. A flat decoder's time depends on its architecture alone; a
    /// hierarchical one's also on how its bars end (it guesses, and decodes again the
    /// bars it guessed wrong), and random weights end bars as no trained model does: see
    /// `--bars`.
    #[arg(long)]
    preset: Vec<String>,
    /// Also time each embedded hierarchical model with its conductor run for this many
    /// bars: trained weights, whose bars end as a trained model's do, at the length of a
    /// longer model not trained yet.
    #[arg(long)]
    bars: Option<usize>,
}

/// Decode time of each embedded model (and of the presets asked for), greedy from
/// z ~ N(0, 1), at batch 1 and 16.
pub fn decode(args: &DecodeArgs) -> anyhow::Result<()> {
    use latent_live_core::model::assets::DefaultModel;
    use latent_live_core::model::{ModelCard, ModelFile};

    let mut models = Vec::new();
    for model in DefaultModel::ALL {
        models.push((model.name().to_string(), model.load()?));
    }
    if let Some(bars) = args.bars {
        let stretched: Vec<_> = models
            .iter()
            .filter(|(_, file)| file.config.hierarchical && file.config.bars != bars)
            .map(|(name, file)| {
                let mut file = file.clone();
                file.config.bars = bars;
                file.config.validate()?;
                Ok((format!("{name} run for {bars} bars"), file))
            })
            .collect::<anyhow::Result<_>>()?;
        models.extend(stretched);
    }
    for preset in &args.preset {
        let config = crate::train::preset(preset)?;
        let file = ModelFile::random(config, ModelCard::default(), Default::default())?;
        models.push((format!("{preset} (random weights)"), file));
    }
    for (name, file) in models {
        let vae = file.model(&candle_core::Device::Cpu)?;
        for batch in [1usize, 16] {
            let times = time_decodes(&vae, batch, args.decodes)?;
            println!(
                "{name} batch {batch:>2}: p50 {:.1} ms, p99 {:.1} ms ({} decodes)",
                at(&times, 0.5),
                at(&times, 0.99),
                times.len()
            );
        }
    }
    let times = time_humanize(args.decodes)?;
    println!(
        "humanize pass (groove-humanize-2bar, a 2-bar pattern's feel): p50 {:.1} ms, p99 {:.1} ms \
         ({} passes)",
        at(&times, 0.5),
        at(&times, 0.99),
        times.len()
    );
    Ok(())
}

/// One humanize pass as the worker runs it on a new drum pattern
/// ([`latent_live_core::model::MusicVae::feel_of`]): encode a 2-bar pattern's hits and decode
/// their velocities and timing, at batch 1, with the embedded humanizer.
fn time_humanize(passes: usize) -> anyhow::Result<Vec<Duration>> {
    use latent_live_core::model::assets::DefaultModel;
    use rand::{Rng, SeedableRng};

    let humanizer = DefaultModel::Humanize2Bar
        .load()?
        .model(&candle_core::Device::Cpu)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut times = Vec::with_capacity(passes + 5);
    for _ in 0..passes + 5 {
        let events: Vec<u16> = (0..32).map(|_| rng.random_range(0..512)).collect();
        let started = Instant::now();
        std::hint::black_box(humanizer.feel_of(&events)?);
        times.push(started.elapsed());
    }
    times.drain(..5);
    times.sort();
    Ok(times)
}

/// `decodes` greedy decodes of z ~ N(0, 1) at `batch`, after 5 that warm caches and the
/// allocator; sorted.
fn time_decodes(
    vae: &latent_live_core::model::MusicVae,
    batch: usize,
    decodes: usize,
) -> anyhow::Result<Vec<Duration>> {
    use latent_live_core::model::Sampling;
    use rand::SeedableRng;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut times = Vec::with_capacity(decodes + 5);
    for _ in 0..decodes + 5 {
        let z =
            latent_live_core::model::latent::standard_normal(&mut rng, (batch, vae.config.z_size))?;
        let started = Instant::now();
        std::hint::black_box(vae.decode(&z, Sampling::Greedy)?);
        times.push(started.elapsed());
    }
    times.drain(..5);
    times.sort();
    Ok(times)
}

/// The `q` quantile of sorted `times`, in ms.
fn at(times: &[Duration], q: f64) -> f64 {
    times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}

#[derive(clap::Args)]
pub struct VersusArgs {
    /// Timed decodes per backend and batch size (the tfjs cpu backend runs fewer).
    #[arg(long, default_value_t = 30)]
    decodes: usize,
}

#[derive(serde::Deserialize)]
struct JsTiming {
    backend: String,
    batch: usize,
    runs: usize,
    median_ms: f64,
}

/// magenta.js (tfjs wasm and cpu backends, in Node) against the Rust decoder on the same
/// random-weight model of mel_2bar_small's size, at batch 1 and 16.
pub fn versus_magenta(args: &VersusArgs) -> anyhow::Result<()> {
    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("magenta-js");
    if !js.join("node_modules/@magenta/music").is_dir() {
        bail!(
            "magenta.js is not installed: run `npm ci --legacy-peer-deps` in {} (needs Node.js)",
            js.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("latent-live-vs-magenta-{}", std::process::id()));
    let output = std::process::Command::new("node")
        .arg(js.join("bench.js"))
        .arg(&dir)
        .arg(args.decodes.to_string())
        .current_dir(&js)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running node (is Node.js installed?)")?;
    if !output.status.success() {
        bail!("magenta.js benchmark failed: {}", output.status);
    }
    let js_times: Vec<JsTiming> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let file = latent_live_core::model::magenta::import(&dir, Default::default())?;
    let vae = file.model(&candle_core::Device::Cpu)?;
    std::fs::remove_dir_all(&dir)?;
    println!("model: {} (random weights)", file.card.summary);
    println!(
        "{:<38} {:>6} {:>12} {:>10}",
        "decoder", "batch", "median ms", "vs Rust"
    );
    for batch in [1usize, 16] {
        let rust = at(&time_decodes(&vae, batch, args.decodes.max(20))?, 0.5);
        for t in js_times.iter().filter(|t| t.batch == batch) {
            let name = format!("magenta.js tfjs-{} ({} runs)", t.backend, t.runs);
            println!(
                "{name:<38} {batch:>6} {:>12.2} {:>9.1}x",
                t.median_ms,
                t.median_ms / rust
            );
        }
        println!(
            "{:<38} {batch:>6} {rust:>12.2} {:>9.1}x",
            "Latent Live (Rust, candle)", 1.0
        );
    }
    Ok(())
}
