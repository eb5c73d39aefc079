//! `cargo xtask bench-latency`: how long after a parameter changes the new phrase is
//! ready for the audio thread, through the plugin's own worker and queues.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use latent_live::engine::{self, Engine};
use latent_live::handoff::Phrase;
use latent_live::params::{LatentLiveParams, ModelChoice};
use nice_plug::prelude::Param;

#[derive(clap::Args)]
pub struct LatencyArgs {
    /// Parameter changes timed per model.
    #[arg(long, default_value_t = 200)]
    changes: usize,
}

pub fn run(args: &LatencyArgs) -> anyhow::Result<()> {
    for choice in [ModelChoice::Folk2Bar, ModelChoice::Folk4Bar] {
        if let Err(e) = engine::default_loader()(choice, None) {
            println!("{choice:?}: skipped ({e})");
            continue;
        }
        let params = Arc::new(LatentLiveParams::default());
        set(&params.model, params.model.preview_normalized(choice));
        let (engine, mut link) = Engine::start(params.clone(), engine::default_loader())?;
        let mut phrase = Phrase::EMPTY;
        wait(Duration::from_secs(60), || link.phrases.pop_newest(&mut phrase)).context("the first phrase never came")?;

        let mut latencies = Vec::with_capacity(args.changes);
        let mut decodes = Vec::with_capacity(args.changes);
        for i in 0..args.changes {
            // Let the worker settle into its idle poll, as between a performer's moves.
            std::thread::sleep(Duration::from_millis(5 + (i % 7) as u64));
            let previous = phrase.generation;
            let value = (i % 50) as f32 / 50.0;
            let changed = Instant::now();
            set(&params.lat1, if params.lat1.modulated_normalized_value() == value { value + 0.01 } else { value });
            wait(Duration::from_secs(10), || link.phrases.pop_newest(&mut phrase) && phrase.generation > previous).context("no phrase after a change")?;
            latencies.push(changed.elapsed());
            decodes.push(Duration::from_micros(engine.status.last_decode_micros.load(Ordering::Acquire)));
        }
        let name = engine.status.model_name();
        println!("{name}: change to phrase ready {}; of which decoding {}", summary(&mut latencies), summary(&mut decodes));
    }
    Ok(())
}

fn set(param: &impl Param, normalized: f32) {
    // The route a host's automation takes into the parameter.
    unsafe { param.as_ptr()._internal_set_normalized_value(normalized) };
}

fn wait(timeout: Duration, mut f: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    bail!("timed out after {timeout:?}")
}

/// "median m ms, p95 p ms, max x ms (n)".
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    format!("median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} changes)", at(0.5), at(0.95), at(1.0), samples.len())
}

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// Decodes timed per model and batch size.
    #[arg(long, default_value_t = 200)]
    decodes: usize,
}

/// Decode time of each embedded model, greedy from z ~ N(0, 1), at batch 1 and 16.
pub fn decode(args: &DecodeArgs) -> anyhow::Result<()> {
    use latent_live::assets::DefaultModel;
    use latent_live::model::Sampling;
    use rand::SeedableRng;

    for model in DefaultModel::ALL {
        let file = model.load()?;
        let vae = file.model(&candle_core::Device::Cpu)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for batch in [1usize, 16] {
            let mut times = Vec::with_capacity(args.decodes);
            for _ in 0..args.decodes + 5 {
                let z = latent_live::train::standard_normal(&mut rng, (batch, vae.config.z_size))?;
                let started = Instant::now();
                std::hint::black_box(vae.decode(&z, Sampling::Greedy)?);
                times.push(started.elapsed());
            }
            // The first decodes warm caches and the allocator.
            times.drain(..5);
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
            println!("{} batch {batch:>2}: p50 {:.1} ms, p99 {:.1} ms ({} decodes)", model.name(), at(0.5), at(0.99), times.len());
        }
    }
    Ok(())
}
