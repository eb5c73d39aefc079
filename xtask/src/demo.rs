//! `cargo xtask demo`: the embedded 2-bar model (or `--model M`) interpolates between two
//! melodies, or for a drum model between two grooves of the Groove test split, and samples
//! from its prior, into demo.mid.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use latent_live_core::model::assets::DefaultModel;
use latent_live_core::model::inversion::{invert, InversionConfig};
use latent_live_core::model::latent::standard_normal;
use latent_live_core::model::latent::{slerp, z_tensor};
use latent_live_core::model::{ModelFile, MusicVae, Sampling};
use latent_live_core::music::drums::{self, Hit};
use latent_live_core::music::melody::{self, Note};
use latent_live_core::music::{midi, Encoding, Event};
use latent_live_training::corpus::{self, Corpus};
use rand::SeedableRng;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// An embedded model by name (folk-2bar, folk-2bar-ar, folk-4bar, groove-2bar), or a
    /// model file (an imported Magenta checkpoint, say) [default: folk-2bar].
    #[arg(long)]
    model: Option<String>,
    /// For a drum model: the corpus whose test split gives the two grooves
    /// [default: data/groove-<bars>bar.safetensors].
    #[arg(long)]
    corpus: Option<PathBuf>,
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
        notes.push(Note {
            pitch,
            start: step,
            end: step + length - 1,
        });
        step += length;
    }
    notes
}

/// A reel-like run of 8ths in D major.
fn reel() -> Vec<Note> {
    let pitches = [
        74, 71, 71, 69, 71, 74, 78, 76, 74, 71, 69, 67, 66, 67, 69, 71,
    ];
    pitches
        .iter()
        .enumerate()
        .map(|(i, &pitch)| Note {
            pitch,
            start: 2 * i as u32,
            end: 2 * i as u32 + 2,
        })
        .collect()
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let file = match args.model.as_deref() {
        None => DefaultModel::Flat2Bar.load()?,
        Some(name) => match DefaultModel::from_name(name) {
            Some(embedded) => embedded.load()?,
            None => ModelFile::read(std::path::Path::new(name))?,
        },
    };
    let model = file.model(&candle_core::Device::Cpu)?;
    let encoding = model.config.encoding;
    let (a, b) = match encoding {
        Encoding::Melody => two_melodies(model.config.steps()),
        Encoding::Drums | Encoding::Groove => two_grooves(&model, args.corpus.clone())?,
    };
    let ends = if model.has_encoder() {
        model.encode(&[&a, &b])?
    } else {
        println!(
            "{} is decoder-only: the two inputs' z come from latent inversion",
            file.card.name
        );
        invert(
            &model,
            &[&a, &b],
            None,
            InversionConfig::default(),
            &AtomicBool::new(false),
        )?
    };
    let ends = ends.to_vec2::<f32>()?;
    let mut phrases: Vec<(String, Vec<Event>)> = vec![("input A".into(), a), ("input B".into(), b)];
    let path: Vec<Vec<f32>> = (0..9)
        .map(|i| slerp(&ends[0], &ends[1], i as f32 / 8.0))
        .collect();
    for (i, events) in model
        .decode(&z_tensor(&model, &path)?, Sampling::Greedy)?
        .into_iter()
        .enumerate()
    {
        phrases.push((format!("slerp {i}/8"), events));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let prior = standard_normal(&mut rng, (8, model.config.z_size))?;
    let samples = model.decode(&prior, Sampling::new(args.temperature, args.seed))?;
    for (i, events) in samples.into_iter().enumerate() {
        phrases.push((format!("prior sample {}", i + 1), events));
    }

    let steps = model.config.steps() as u32;
    for (name, events) in &phrases {
        println!("{name}\n{}", encoding.render(events));
    }
    let (bytes, count) = match encoding {
        Encoding::Melody => {
            let notes: Vec<Note> = phrases
                .iter()
                .enumerate()
                .flat_map(|(i, (_, events))| {
                    melody::decode(events).into_iter().map(move |n| Note {
                        start: n.start + i as u32 * steps,
                        end: n.end + i as u32 * steps,
                        ..n
                    })
                })
                .collect();
            (midi::export(&notes, args.bpm), notes.len())
        }
        Encoding::Drums | Encoding::Groove => {
            let hits: Vec<Hit> = phrases
                .iter()
                .enumerate()
                .flat_map(|(i, (_, events))| {
                    drums::decode(events).into_iter().map(move |h| Hit {
                        step: h.step + i as u32 * steps,
                        ..h
                    })
                })
                .collect();
            (
                midi::export_drums(&hits, args.bpm, &drums::GM_NOTES, drums::accent),
                hits.len(),
            )
        }
    };
    std::fs::write(&args.out, bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let unit = if encoding == Encoding::Drums {
        "hits on channel 10"
    } else {
        "notes"
    };
    println!(
        "wrote {} phrases ({count} {unit}) to {}",
        phrases.len(),
        args.out.display()
    );
    Ok(())
}

/// "Twinkle, Twinkle" and a reel, repeated to fill longer models.
fn two_melodies(steps: usize) -> (Vec<Event>, Vec<Event>) {
    let repeat = |notes: Vec<Note>| -> Vec<Note> {
        (0..steps.div_ceil(32) as u32)
            .flat_map(|k| {
                notes.iter().map(move |n| Note {
                    start: n.start + 32 * k,
                    end: n.end + 32 * k,
                    ..*n
                })
            })
            .collect()
    };
    (
        melody::encode(&repeat(twinkle()), steps),
        melody::encode(&repeat(reel()), steps),
    )
}

/// Two grooves of the test split, from two performances: the split's first window, and
/// the first after it from another performance (the split is shuffled when built).
fn two_grooves(
    model: &MusicVae,
    path: Option<PathBuf>,
) -> anyhow::Result<(Vec<Event>, Vec<Event>)> {
    let bars = model.config.bars;
    let path = path.unwrap_or_else(|| corpus::default_path(Encoding::Drums, false, bars));
    let corpus = Corpus::load(&path).with_context(|| {
        format!(
            "{}: build it with `{}`",
            path.display(),
            corpus::build_command(Encoding::Drums, false, bars)
        )
    })?;
    anyhow::ensure!(
        corpus.encoding == Encoding::Drums && corpus.bars == bars,
        "{} does not hold {bars}-bar drums",
        path.display()
    );
    let test = &corpus.test;
    anyhow::ensure!(!test.is_empty(), "{} has no test split", path.display());
    let other = (1..test.len())
        .find(|&i| test.tune[i] != test.tune[0])
        .unwrap_or(test.len().min(2) - 1);
    for (label, i) in [("A", 0), ("B", other)] {
        println!("groove {label}: {}", corpus.tunes[test.tune[i] as usize]);
    }
    Ok((test.get(0).to_vec(), test.get(other).to_vec()))
}
