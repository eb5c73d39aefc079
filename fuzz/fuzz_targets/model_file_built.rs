//! Model files built from an arbitrary config, the tensors that config needs (dropped,
//! reshaped, poisoned, stored as integers at will) and arbitrary analysis metadata: a
//! structure-aware companion to `model_file`, which gets past the safetensors header and
//! the config at every run.

#![no_main]

mod model_checks;

use std::collections::{BTreeMap, HashMap};

use arbitrary::Arbitrary;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use latent_live_core::model::{ChordEncoding, Config, GrooveInput, MelodyControl, MusicVae};
use latent_live_core::music::Encoding;
use libfuzzer_sys::fuzz_target;

/// Models larger than this are only validated, not built: a run must stay fast.
const BUILD_PARAMETERS: usize = 200_000;

#[derive(Arbitrary, Debug)]
struct Built {
    config: FuzzConfig,
    /// Replaces the config's JSON.
    config_json: Option<String>,
    changes: Vec<Change>,
    extra: Vec<(Key, Value)>,
    dtype: Float,
    values: Vec<i8>,
}

#[derive(Arbitrary, Debug)]
struct FuzzConfig {
    z_size: Size,
    encoder: Vec<Size>,
    hierarchical_encoder: bool,
    decoder: Vec<Size>,
    hierarchical: bool,
    bars: Size,
    steps_per_bar: Size,
    min_pitch: Option<u8>,
    max_pitch: Option<u8>,
    /// Melody, drums or groove, and a groove model's input.
    encoding: u8,
    groove_input: u8,
    /// A chord-conditioned model (meant for melodies; refused for the others).
    chords: bool,
    /// Melody controls after the chord (meant for melodies too).
    melody_controls: Vec<FuzzControl>,
}

#[derive(Arbitrary, Debug)]
enum FuzzControl {
    Rhythm,
    Shape,
    Register(Vec<u8>),
}

/// Small sizes mostly, the edges of what is allowed sometimes.
#[derive(Arbitrary, Debug)]
enum Size {
    Small(u8),
    Edge(u8),
}

impl Size {
    fn get(&self) -> usize {
        match *self {
            Size::Small(n) => n as usize % 24,
            Size::Edge(i) => [
                0,
                1,
                2,
                16,
                17,
                256,
                1024,
                1025,
                4096,
                4097,
                1 << 32,
                usize::MAX,
            ][i as usize % 12],
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Change {
    Drop(u8),
    Reshape(u8, Vec<u8>),
    Poison(u8, bool),
    Integer(u8),
    Add(String, Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Float {
    F16,
    Bf16,
    F32,
    F64,
}

#[derive(Arbitrary, Debug)]
enum Key {
    NeuronRanking,
    KlRanking,
    NeuronLabels,
    MuStd,
    AttributeVectors,
    Card,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Raw(String),
    /// `len` is z plus a small offset, so that most arrays have z's length.
    Floats {
        offset: i8,
        fill: f32,
    },
    Dims(Vec<u16>),
    Labels(Vec<String>),
    Attributes(Vec<(u8, i8, f32)>),
}

fn config(c: &FuzzConfig) -> Config {
    let sizes = |v: &[Size]| v.iter().take(6).map(Size::get).collect();
    let defaults = Config::latent_live_2bar();
    Config {
        z_size: c.z_size.get(),
        encoder: sizes(&c.encoder),
        hierarchical_encoder: c.hierarchical_encoder,
        decoder: sizes(&c.decoder),
        hierarchical: c.hierarchical,
        bars: c.bars.get(),
        steps_per_bar: c.steps_per_bar.get(),
        encoding: [Encoding::Melody, Encoding::Drums, Encoding::Groove][c.encoding as usize % 3],
        min_pitch: c.min_pitch.unwrap_or(defaults.min_pitch),
        max_pitch: c.max_pitch.unwrap_or(defaults.max_pitch),
        groove_input: [GrooveInput::Whole, GrooveInput::Humanize, GrooveInput::Tap]
            [c.groove_input as usize % 3],
        chords: c.chords.then_some(ChordEncoding::Pitch),
        melody_controls: c
            .melody_controls
            .iter()
            .take(10)
            .map(|control| match control {
                FuzzControl::Rhythm => MelodyControl::Rhythm,
                FuzzControl::Shape => MelodyControl::Shape,
                FuzzControl::Register(boundaries) => MelodyControl::Register {
                    boundaries: boundaries.iter().take(140).copied().collect(),
                },
            })
            .collect(),
    }
}

/// The tensors a config's model reads, by name, with values from `values`.
fn tensors(config: &Config, values: &[i8]) -> BTreeMap<String, Tensor> {
    if config.validate().is_err() || config.parameters() > BUILD_PARAMETERS {
        return BTreeMap::new();
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    MusicVae::new(config.clone(), vb).expect("a valid config builds");
    let data = varmap.data().lock().unwrap();
    let mut next = 0usize;
    data.iter()
        .map(|(name, var)| {
            let n = var.elem_count();
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    values
                        .get((next + i) % values.len().max(1))
                        .map_or(0.01, |&b| b as f32 / 256.0)
                })
                .collect();
            next += n;
            (
                name.clone(),
                Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap(),
            )
        })
        .collect()
}

fn json(value: &Value, z_size: usize) -> String {
    match value {
        Value::Raw(s) => s.clone(),
        Value::Floats { offset, fill } => {
            let len = (z_size as i64 + (*offset % 3) as i64).clamp(0, 4096) as usize;
            serde_json::to_string(&vec![*fill; len]).unwrap()
        }
        Value::Dims(dims) => serde_json::to_string(dims).unwrap(),
        Value::Labels(labels) => serde_json::to_string(labels).unwrap(),
        Value::Attributes(entries) => {
            let names = latent_live_core::music::attributes::CONTROLLED;
            let map: HashMap<&str, Vec<f32>> = entries
                .iter()
                .map(|&(name, offset, fill)| {
                    let len = (z_size as i64 + (offset % 3) as i64).clamp(0, 4096) as usize;
                    (names[name as usize % names.len()], vec![fill; len])
                })
                .collect();
            serde_json::to_string(&map).unwrap()
        }
    }
}

fn pick<'a>(
    tensors: &'a mut BTreeMap<String, Tensor>,
    index: u8,
) -> Option<(String, &'a mut Tensor)> {
    let len = tensors.len();
    tensors
        .iter_mut()
        .nth(index as usize % len.max(1))
        .map(|(n, t)| (n.clone(), t))
}

fn bytes(built: &Built) -> Option<Vec<u8>> {
    let config = config(&built.config);
    let mut tensors = tensors(&config, &built.values);
    for change in built.changes.iter().take(8) {
        match change {
            Change::Drop(i) => {
                if let Some((name, _)) = pick(&mut tensors, *i) {
                    tensors.remove(&name);
                }
            }
            Change::Reshape(i, dims) => {
                if let Some((_, t)) = pick(&mut tensors, *i) {
                    let dims: Vec<usize> = dims.iter().take(3).map(|&d| d as usize % 48).collect();
                    *t = Tensor::from_vec(vec![0.5f32; dims.iter().product()], dims, &Device::Cpu)
                        .ok()?;
                }
            }
            Change::Poison(i, infinite) => {
                if let Some((_, t)) = pick(&mut tensors, *i) {
                    let bad = if *infinite { f64::INFINITY } else { f64::NAN };
                    *t = t.ones_like().ok()?.affine(bad, 0.0).ok()?;
                }
            }
            Change::Integer(i) => {
                if let Some((_, t)) = pick(&mut tensors, *i) {
                    *t = t.to_dtype(DType::U8).ok()?;
                }
            }
            Change::Add(name, values) => {
                let v: Vec<f32> = values.iter().map(|&b| b as f32).collect();
                tensors.insert(
                    name.clone(),
                    Tensor::from_vec(v.clone(), v.len(), &Device::Cpu).ok()?,
                );
            }
        }
    }
    let dtype = match built.dtype {
        Float::F16 => DType::F16,
        Float::Bf16 => DType::BF16,
        Float::F32 => DType::F32,
        Float::F64 => DType::F64,
    };
    let tensors: BTreeMap<String, Tensor> = tensors
        .into_iter()
        .map(|(n, t)| {
            Ok((
                n,
                if t.dtype() == DType::F32 {
                    t.to_dtype(dtype)?
                } else {
                    t
                },
            ))
        })
        .collect::<candle_core::Result<_>>()
        .ok()?;
    let mut metadata = HashMap::new();
    metadata.insert(
        "config".to_string(),
        built
            .config_json
            .clone()
            .unwrap_or_else(|| serde_json::to_string(&config).unwrap()),
    );
    for (key, value) in built.extra.iter().take(8) {
        let key = match key {
            Key::NeuronRanking => "neuron_ranking".to_string(),
            Key::KlRanking => "kl_ranking".to_string(),
            Key::NeuronLabels => "neuron_labels".to_string(),
            Key::MuStd => "mu_std".to_string(),
            Key::AttributeVectors => "attribute_vectors".to_string(),
            Key::Card => "card".to_string(),
            Key::Other(k) => k.clone(),
        };
        metadata.insert(key, json(value, config.z_size));
    }
    safetensors::serialize(tensors, Some(metadata)).ok()
}

fuzz_target!(|built: Built| {
    if let Some(bytes) = bytes(&built) {
        model_checks::play(&bytes);
    }
});
