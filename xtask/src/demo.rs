//! `cargo xtask demo`: the embedded 2-bar model (or `--model M`) interpolates between two
//! melodies and samples from its prior, into demo.mid.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use latent_live::model::assets::DefaultModel;
use latent_live::worker::latent::{slerp, z_tensor};
use latent_live::music::melody::{self, Note};
use latent_live::music::midi;
use latent_live::model::inversion::{invert, InversionConfig};
use latent_live::model::{ModelFile, Sampling};
use latent_live::training::train::standard_normal;
use rand::SeedableRng;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// A model file instead of the embedded 2-bar model (an imported Magenta checkpoint, say).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value = "demo.mid")]
    out: PathBuf,
    #[arg(long, default_value_t = 120.0)]
    bpm: f64,
    /// Temperature of the prior samples.
    #[arg(long, default_value_t = 0.5)]
    temperature: f32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// "Twinkle, Twinkle": C C G G A A G-, F F E E D D C-.
fn twinkle() -> Vec<Note> {
    let pitches = [60, 60, 67, 67, 69, 69, 67, 65, 65, 64, 64, 62, 62, 60];
    let mut notes = Vec::new();
    let mut step = 0;
    for (i, &pitch) in pitches.iter().enumerate() {
        let length = if i == 6 || i == 13 { 4 } else { 2 };
        notes.push(Note { pitch, start: step, end: step + length - 1 });
        step += length;
    }
    notes
}

/// A reel-like run of 8ths in D major.
fn reel() -> Vec<Note> {
    let pitches = [74, 71, 71, 69, 71, 74, 78, 76, 74, 71, 69, 67, 66, 67, 69, 71];
    pitches.iter().enumerate().map(|(i, &pitch)| Note { pitch, start: 2 * i as u32, end: 2 * i as u32 + 2 }).collect()
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let file = match &args.model {
        Some(path) => ModelFile::read(path)?,
        None => DefaultModel::Flat2Bar.load()?,
    };
    let model = file.model(&candle_core::Device::Cpu)?;
    let steps = model.config.steps();
    // The two-bar tunes repeat to fill longer models.
    let repeat = |notes: Vec<Note>| -> Vec<Note> {
        (0..steps.div_ceil(32) as u32).flat_map(|k| notes.iter().map(move |n| Note { start: n.start + 32 * k, end: n.end + 32 * k, ..*n })).collect()
    };
    let a = melody::encode(&repeat(twinkle()), steps);
    let b = melody::encode(&repeat(reel()), steps);
    let ends = if model.has_encoder() {
        model.encode(&[&a, &b])?
    } else {
        println!("{} is decoder-only: the two melodies' z come from latent inversion", file.card.name);
        invert(&model, &[&a, &b], None, InversionConfig::default(), &AtomicBool::new(false))?
    };
    let ends = ends.to_vec2::<f32>()?;
    let mut phrases: Vec<(String, Vec<latent_live::music::Event>)> = vec![("input A".into(), a), ("input B".into(), b)];
    let path: Vec<Vec<f32>> = (0..9).map(|i| slerp(&ends[0], &ends[1], i as f32 / 8.0)).collect();
    for (i, events) in model.decode(&z_tensor(&model, &path)?, Sampling::Greedy)?.into_iter().enumerate() {
        phrases.push((format!("slerp {i}/8"), events));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let prior = standard_normal(&mut rng, (8, model.config.z_size))?;
    let samples = model.decode(&prior, Sampling::new(args.temperature, args.seed))?;
    for (i, events) in samples.into_iter().enumerate() {
        phrases.push((format!("prior sample {}", i + 1), events));
    }

    let mut all_notes = Vec::new();
    for (i, (name, events)) in phrases.iter().enumerate() {
        println!("{name}\n{}", melody::piano_roll(events));
        let offset = (i * steps) as u32;
        all_notes.extend(melody::decode(events).into_iter().map(|n| Note { start: n.start + offset, end: n.end + offset, ..n }));
    }
    midi::write_file(&args.out, &all_notes, args.bpm)?;
    println!("wrote {} phrases ({} notes) to {}", phrases.len(), all_notes.len(), args.out.display());
    Ok(())
}
