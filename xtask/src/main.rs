//! `cargo xtask <command>`: the corpus, training, evaluation and tooling around the model.

mod analyze;
mod bundle;
mod chord_tones;
mod corpus;
mod decode;
mod demo;
mod eval;
mod import;
mod latency;
mod plots;
mod ship;
mod sliders;
mod train;

use clap::{Parser, Subcommand};

// Training frees and reallocates tensors of tens of megabytes every step; glibc hands
// those back to the kernel and pays page faults to get them again, mimalloc keeps them.
// Release builds only (`cargo xtask` is one): debug builds of the workspace link
// nice-plug's allocation checker, and a binary has one global allocator.
#[cfg(not(debug_assertions))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "xtask", about = "Latent Live's build, data and model commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a training set: folk melodies from the music21 wheel, or (`--drums`,
    /// `--grooves`, `--pop909`) from a dataset folder.
    Corpus(corpus::CorpusArgs),
    /// Train a model (resumable).
    Train(Box<train::TrainArgs>),
    /// Training throughput on random data (examples/s).
    BenchTrain(train::BenchTrainArgs),
    /// Interpolate and sample with the embedded 2-bar model into demo.mid.
    Demo(demo::DemoArgs),
    /// Measure a trained run on the test tunes and ship it into assets/ with its card.
    Ship(ship::ShipArgs),
    /// Evaluate a model on held-out tunes or a MIDI folder.
    Eval(eval::EvalArgs),
    /// Music neurons, attribute correlations and attribute vectors, into the model's metadata.
    Analyze(analyze::AnalyzeArgs),
    /// How well melodies follow the chords on the beats: humans and models, over a chord
    /// corpus's test progressions.
    ChordTones(chord_tones::ChordTonesArgs),
    /// Whether each attribute slider moves its own attribute (the median Spearman
    /// `analyze` ships vectors under), for the embedded models or the files named.
    CheckSliders(sliders::SlidersArgs),
    /// Decode latent vectors from a JSON file into notes.
    Decode(decode::DecodeArgs),
    /// Convert a Magenta MusicVAE checkpoint (TF.js or deeplearn.js) into a model file.
    ImportMagenta(import::ImportArgs),
    /// Build the CLAP and VST3 bundles: `bundle latent_live --release`.
    #[command(disable_help_flag = true)]
    Bundle {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Copy the bundles into the user's CLAP and VST3 folders.
    Install(bundle::InstallArgs),
    /// Time from a parameter change to the new phrase, with the embedded models.
    BenchLatency(latency::LatencyArgs),
    /// Decode time of the embedded models at batch 1 and 16.
    BenchDecode(latency::DecodeArgs),
    /// magenta.js (Node, tfjs wasm and cpu) against the Rust decoder, side by side.
    BenchVsMagenta(latency::VersusArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Corpus(args) => corpus::run(&args),
        Command::Train(args) => train::run(&args),
        Command::BenchTrain(args) => train::bench(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Ship(args) => ship::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::ChordTones(args) => chord_tones::run(&args),
        Command::CheckSliders(args) => sliders::run(&args),
        Command::Decode(args) => decode::run(&args),
        Command::ImportMagenta(args) => import::run(&args),
        Command::Bundle { args } => bundle::bundle(args),
        Command::Install(args) => bundle::install(&args),
        Command::BenchLatency(args) => latency::run(&args),
        Command::BenchDecode(args) => latency::decode(&args),
        Command::BenchVsMagenta(args) => latency::versus_magenta(&args),
    }
}
