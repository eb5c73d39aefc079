//! Google's MusicVAE checkpoints as magenta.js loads them: TF.js (`weights_manifest.json`
//! and binary shards, float32 or quantized) and the older deeplearn.js format
//! (`manifest.json` and one raw float32 file per variable).
//!
//! Variable names already match ours (see `model/mod.rs` and `model/groove.rs`), so
//! importing is reading the tensors, working out the architecture from their shapes and the
//! encoding from the data converter (melodies, drums, or GrooVAE's grooves) and the chords
//! from its chord encoder (`mel_chords`), and refusing, with a reason, what Latent Live
//! cannot play.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;
use serde_json::Value;

use super::{
    ChordEncoding, Config, ConfigError, GrooveInput, MelodyControl, ModelCard, ModelFile,
    MAX_MODEL_BYTES,
};
use crate::files::read_capped;
use crate::music::groove::ROW;
use crate::music::melody::{MAX_PITCH, MIN_PITCH, STEPS_PER_BAR, STEPS_PER_QUARTER};
use crate::music::{drums, Encoding};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON of the expected shape: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Checkpoint(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("the checkpoint's weights do not form a MusicVAE: {0}")]
    Weights(#[from] super::ModelError),
    #[error("the checkpoint's architecture is not one Latent Live plays: {0}")]
    Config(#[from] ConfigError),
}

/// What the folder does not say and the user may.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Bars per sequence, for checkpoints with neither `config.json` nor `converter.json`
    /// (flat models then default to 2 bars, as the demos that shipped them).
    pub bars: Option<usize>,
}

/// The checkpoint format found in a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tfjs,
    Deeplearn,
}

/// Reads the checkpoint in `dir` into a model file (weights as float32).
pub fn import(dir: &Path, options: ImportOptions) -> Result<ModelFile, ImportError> {
    let (format, variables, quantization) = if dir.join("weights_manifest.json").is_file() {
        let (variables, quantization) = read_tfjs(dir)?;
        (Format::Tfjs, variables, quantization)
    } else if dir.join("manifest.json").is_file() {
        (Format::Deeplearn, read_deeplearn(dir)?, None)
    } else {
        return Err(ImportError::Checkpoint(format!(
            "{} holds neither weights_manifest.json (a TF.js checkpoint) nor manifest.json (a \
             deeplearn.js checkpoint)",
            dir.display()
        )));
    };
    let config = architecture(&variables, read_spec(dir)?, options)?;
    config.validate()?;
    // Only the variables the model reads: optimiser slots and step counters stay behind.
    let prefixes: &[&str] = if config.encoder.is_empty() {
        &["decoder/", "core_decoder/"]
    } else {
        &["encoder/", "decoder/", "core_decoder/"]
    };
    // TensorFlow scopes are `/`-separated, candle's are `.`-separated.
    let tensors: HashMap<String, Tensor> = variables
        .into_iter()
        .filter(|(name, _)| prefixes.iter().any(|p| name.starts_with(p)))
        .map(|(name, t)| (name.replace('/', "."), t))
        .collect();
    let name = dir
        .file_name()
        .map_or_else(|| "imported".into(), |n| n.to_string_lossy().into_owned());
    let source = match (format, quantization) {
        (Format::Tfjs, None) => "a TF.js checkpoint (float32)".to_string(),
        (Format::Tfjs, Some(q)) => {
            format!("a TF.js checkpoint ({q}-quantized, dequantized to float32)")
        }
        (Format::Deeplearn, _) => "a deeplearn.js checkpoint (float32)".to_string(),
    };
    let kind = match (config.hierarchical, config.encoder.is_empty()) {
        (true, true) => "hierarchical, decoder only",
        (true, false) => "hierarchical",
        (false, true) => "flat, decoder only",
        (false, false) => "flat",
    };
    let what = match (config.encoding, config.groove_input) {
        (Encoding::Melody, _) if config.chords.is_some() => "melody model over chords",
        (Encoding::Melody, _) => "melody model",
        (Encoding::Drums, _) => "drum model",
        (Encoding::Groove, GrooveInput::Whole) => "groove model",
        (Encoding::Groove, GrooveInput::Humanize) => "groove model, humanize",
        (Encoding::Groove, GrooveInput::Tap) => "groove model, tap to drums",
    };
    let card = ModelCard {
        name: name.clone(),
        summary: format!(
            "Magenta MusicVAE {name} ({what}, {kind}, {} bars, z = {}), imported from {source}",
            config.bars, config.z_size
        ),
        data: "trained by Google Magenta; see where the checkpoint came from for its data and \
               licence"
            .into(),
        split: String::new(),
        training: format!(
            "imported with `cargo xtask import-magenta {}`",
            dir.display()
        ),
        metrics: Default::default(),
    };
    let file = ModelFile::new(config, card, Default::default(), tensors)?;
    // Building the model checks every shape against the config.
    file.model(&Device::Cpu)?;
    Ok(file)
}

#[derive(Deserialize)]
struct ManifestGroup {
    paths: Vec<String>,
    weights: Vec<ManifestWeight>,
}

#[derive(Deserialize)]
struct ManifestWeight {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    #[serde(default)]
    scale: f64,
    #[serde(default)]
    min: f64,
}

type Variables = HashMap<String, Tensor>;

/// The TF.js layout: each group's shards, concatenated, hold its weights back to back.
/// Returns the variables and the quantization used, if any.
fn read_tfjs(dir: &Path) -> Result<(Variables, Option<String>), ImportError> {
    let groups: Vec<ManifestGroup> = read_json(&dir.join("weights_manifest.json"))?;
    let mut variables = HashMap::new();
    let mut quantization = None;
    for group in groups {
        let mut bytes = Vec::new();
        for shard in &group.paths {
            bytes.extend(read(&inside(dir, shard)?)?);
        }
        let mut offset = 0;
        for weight in group.weights {
            let count = element_count(&weight.shape, &weight.name)?;
            let width = match (&weight.quantization, weight.dtype.as_str()) {
                (Some(q), _) => match q.dtype.as_str() {
                    "uint8" => 1,
                    "uint16" | "float16" => 2,
                    other => {
                        return Err(ImportError::Checkpoint(format!(
                            "{}: unknown quantization {other:?}",
                            weight.name
                        )))
                    }
                },
                (None, "float32" | "int32") => 4,
                (None, "bool") => 1,
                (None, other) => {
                    return Err(ImportError::Checkpoint(format!(
                        "{}: unknown dtype {other:?}",
                        weight.name
                    )))
                }
            };
            let end = count
                .checked_mul(width)
                .and_then(|n| n.checked_add(offset))
                .unwrap_or(usize::MAX);
            let Some(raw) = bytes.get(offset..end) else {
                return Err(ImportError::Checkpoint(format!(
                    "the shards {:?} end at byte {} but {} needs bytes {offset}..{end}: a shard \
                     is missing or truncated",
                    group.paths,
                    bytes.len(),
                    weight.name
                )));
            };
            offset = end;
            let values: Vec<f32> = match (&weight.quantization, weight.dtype.as_str()) {
                (Some(q), _) => {
                    quantization = Some(q.dtype.clone());
                    match q.dtype.as_str() {
                        // As tfjs dequantizes: in double precision, then stored as float32.
                        "uint8" => raw
                            .iter()
                            .map(|&v| (v as f64 * q.scale + q.min) as f32)
                            .collect(),
                        "uint16" => raw
                            .chunks_exact(2)
                            .map(|b| {
                                (u16::from_le_bytes([b[0], b[1]]) as f64 * q.scale + q.min) as f32
                            })
                            .collect(),
                        _ => raw
                            .chunks_exact(2)
                            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                            .collect(),
                    }
                }
                (None, "float32") => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                // Step counters and flags: not weights.
                _ => continue,
            };
            variables.insert(
                weight.name.clone(),
                tensor(values, &weight.shape, &weight.name)?,
            );
        }
    }
    Ok((variables, quantization))
}

#[derive(Deserialize)]
struct DeeplearnEntry {
    filename: String,
    shape: Vec<usize>,
}

fn read_deeplearn(dir: &Path) -> Result<Variables, ImportError> {
    let manifest: HashMap<String, DeeplearnEntry> = read_json(&dir.join("manifest.json"))?;
    manifest
        .into_iter()
        .map(|(name, entry)| {
            let path = inside(dir, &entry.filename)?;
            let raw = read(&path)?;
            let count = element_count(&entry.shape, &name)?;
            if count.checked_mul(4) != Some(raw.len()) {
                return Err(ImportError::Checkpoint(format!(
                    "{} holds {} bytes, but {name} of shape {:?} needs {}",
                    path.display(),
                    raw.len(),
                    entry.shape,
                    4 * count as u128
                )));
            }
            let values = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((name.clone(), tensor(values, &entry.shape, &name)?))
        })
        .collect()
}

/// The data converter and model options, from `config.json` (TF.js) or `converter.json`
/// (deeplearn.js). `None` when the folder has neither.
/// What a checkpoint's spec says beyond its weights.
struct Spec {
    /// Its data converter (`config.json`'s `dataConverter`, or `converter.json`).
    converter: Option<Value>,
    /// The chords it reads, from `config.json`'s `chordEncoder`.
    chords: Option<ChordEncoding>,
    /// The melody controls it reads after them, from `config.json`'s `extraControls`.
    melody_controls: Vec<MelodyControl>,
}

fn read_spec(dir: &Path) -> Result<Spec, ImportError> {
    let config = dir.join("config.json");
    if config.is_file() {
        let spec: Value = read_json(&config)?;
        if let Some(kind) = spec.get("type").and_then(Value::as_str) {
            if kind != "MusicVAE" {
                return Err(ImportError::Unsupported(format!(
                    "config.json describes a {kind} model, not a MusicVAE"
                )));
            }
        }
        for (key, what) in [
            ("conditionOnKey", "key conditioning"),
            (
                "useBooleanDecoder",
                "a boolean decoder (each of 9 drums on or off, not one of their 512 combinations)",
            ),
        ] {
            if is_set(spec.get(key)) {
                return Err(ImportError::Unsupported(format!(
                    "this checkpoint uses {what}; Latent Live plays melodies (unconditioned, or \
                     over chords in the pitch encoding) and drums with categorical decoders, \
                     and grooves"
                )));
            }
        }
        let chords = match spec.get("chordEncoder") {
            Some(Value::String(e)) if e == "PitchChordEncoder" => Some(ChordEncoding::Pitch),
            Some(other) if is_set(Some(other)) => {
                return Err(ImportError::Unsupported(format!(
                    "the chord encoder {other}; Latent Live reads chords as Magenta's pitch \
                     encoding (PitchChordEncoder, as mel_chords does)"
                )));
            }
            _ => None,
        };
        return Ok(Spec {
            converter: spec.get("dataConverter").cloned(),
            chords,
            melody_controls: melody_controls(spec.get("extraControls"))?,
        });
    }
    let converter = dir.join("converter.json");
    let converter = if converter.is_file() {
        Some(read_json(&converter)?)
    } else {
        None
    };
    Ok(Spec {
        converter,
        chords: None,
        melody_controls: Vec::new(),
    })
}

/// `extraControls`: magenta.js's melody controls, each `{name, depth}`, the register's
/// with the `boundaryPitches` magenta.js's `MelodyRegister` is built with. Their values
/// are extracted from a melody, so only those three can be played.
fn melody_controls(spec: Option<&Value>) -> Result<Vec<MelodyControl>, ImportError> {
    let Some(spec) = spec.filter(|s| is_set(Some(s))) else {
        return Ok(Vec::new());
    };
    let unsupported = |why: String| {
        ImportError::Unsupported(format!(
            "extraControls: {why}; Latent Live plays the melody controls rhythm (depth 1), \
             shape (depth 3) and register (depth n + 1, with its n boundaryPitches), taken \
             from the captured clip"
        ))
    };
    let Some(entries) = spec.as_array() else {
        return Err(unsupported(format!("{spec} is not a list")));
    };
    entries
        .iter()
        .map(|entry| {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let depth = entry.get("depth").and_then(Value::as_u64);
            let control = match name {
                "rhythm" => MelodyControl::Rhythm,
                "shape" => MelodyControl::Shape,
                "register" => {
                    let boundaries = entry
                        .get("boundaryPitches")
                        .and_then(Value::as_array)
                        .and_then(|b| {
                            b.iter()
                                .map(|p| p.as_u64().and_then(|p| u8::try_from(p).ok()))
                                .collect::<Option<Vec<u8>>>()
                        });
                    match boundaries {
                        Some(boundaries) if boundaries.windows(2).all(|w| w[0] < w[1]) => {
                            MelodyControl::Register { boundaries }
                        }
                        _ => {
                            return Err(unsupported(format!(
                                "the register control {entry} does not list its boundaryPitches \
                                 (rising MIDI pitches), so its buckets are unknown"
                            )))
                        }
                    }
                }
                _ => return Err(unsupported(format!("the control {entry}"))),
            };
            if depth != Some(control.depth() as u64) {
                return Err(unsupported(format!(
                    "{entry} has depth {depth:?}, but {name} has {} values a step",
                    control.depth()
                )));
            }
            Ok(control)
        })
        .collect()
}

fn architecture(
    variables: &Variables,
    spec: Spec,
    options: ImportOptions,
) -> Result<Config, ImportError> {
    // The weights say what the model is before any spec does.
    for (marker, reason) in [
        (
            "control_preprocessing/",
            "has a control preprocessing LSTM (a conditioned model); Latent Live plays \
             unconditioned models",
        ),
        (
            "nade/",
            "decodes with a NADE output layer, each of 9 drums on or off (a multi-label drum \
             model such as drums_2bar_nade_9_q2), not with a categorical softmax over their 512 \
             combinations; Latent Live plays categorical decoders",
        ),
        (
            "core_decoder_0/",
            "has several core decoders (a trio or multitrack model); Latent Live plays one melody \
             or drum part",
        ),
    ] {
        if variables.keys().any(|n| n.contains(marker)) {
            return Err(ImportError::Unsupported(format!(
                "this checkpoint {reason}"
            )));
        }
    }
    let hierarchical = variables.contains_key("decoder/hierarchical_level_0/initial_state/kernel");
    let layer_sizes = |pattern: &dyn Fn(usize) -> String| -> Vec<usize> {
        (0..)
            .map_while(|i| {
                variables
                    .get(&pattern(i))
                    .and_then(|b| b.dims().first())
                    .map(|d| d / 4)
            })
            .collect()
    };
    let (decoder, z_size) = if hierarchical {
        let core = layer_sizes(&|i| {
            format!("core_decoder/decoder/multi_rnn_cell/cell_{i}/lstm_cell/bias")
        });
        let conductor =
            layer_sizes(&|i| format!("decoder/hierarchical_level_0/cell_{i}/lstm_cell/bias"));
        if core != conductor {
            return Err(ImportError::Unsupported(format!(
                "the conductor's layers {conductor:?} differ from the bar decoder's {core:?}; \
                 Latent Live's are the same"
            )));
        }
        (
            core,
            first_dim(
                variables,
                "decoder/hierarchical_level_0/initial_state/kernel",
            )?,
        )
    } else {
        let flat = layer_sizes(&|i| format!("decoder/multi_rnn_cell/cell_{i}/lstm_cell/bias"));
        (
            flat,
            first_dim(variables, "decoder/z_to_initial_state/kernel")?,
        )
    };
    if decoder.is_empty() {
        return Err(ImportError::Checkpoint(
            "no decoder LSTM cells found (decoder/multi_rnn_cell/cell_0/lstm_cell)".into(),
        ));
    }
    let scope = if hierarchical {
        "core_decoder/decoder"
    } else {
        "decoder"
    };
    let classes = first_dim(variables, &format!("{scope}/output_projection/bias"))?;
    let DataConverter {
        encoding,
        groove_input,
        steps,
        segments,
    } = match &spec.converter {
        Some(converter) => data_converter(converter)?,
        // GrooVAE's options change what its encoder was shown, and only its spec says which.
        None if classes == ROW => {
            return Err(ImportError::Checkpoint(format!(
                "the decoder writes {ROW} values a step, as a GrooVAE does, but without \
                 config.json the checkpoint does not say what its encoder reads (the whole \
                 groove, the hits alone to humanize, or taps)"
            )));
        }
        // Without a spec, the decoder's width tells drums (their 512 combinations) from melodies.
        None => DataConverter {
            encoding: if classes == drums::NUM_CLASSES {
                Encoding::Drums
            } else {
                Encoding::Melody
            },
            groove_input: GrooveInput::Whole,
            steps: None,
            segments: None,
        },
    };
    let bars = match steps {
        Some(steps) if (steps as usize).is_multiple_of(STEPS_PER_BAR) => {
            steps as usize / STEPS_PER_BAR
        }
        Some(steps) => {
            return Err(ImportError::Unsupported(format!(
                "{steps} steps is not a whole number of 4/4 bars of 16ths"
            )));
        }
        None if hierarchical => segments
            .map(|s| s as usize)
            .or(options.bars)
            .ok_or_else(|| {
                ImportError::Checkpoint(
                    "the checkpoint does not say how many bars it spans: pass --bars".into(),
                )
            })?,
        None => options.bars.unwrap_or(2),
    };
    if hierarchical && segments.is_some_and(|s| s as usize != bars) {
        return Err(ImportError::Unsupported(format!(
            "the conductor plans {} segments of {} bars; Latent Live's conductor plans one bar \
             per step",
            segments.unwrap(),
            bars as f64 / segments.unwrap() as f64
        )));
    }
    let has_encoder = variables.contains_key("encoder/mu/kernel");
    let hierarchical_encoder = variables
        .keys()
        .any(|n| n.starts_with("encoder/hierarchical_level_"));
    let encoder = if !has_encoder {
        Vec::new()
    } else if hierarchical_encoder {
        let low = layer_sizes(&|i| {
            format!(
                "encoder/hierarchical_level_0/cell_{i}/bidirectional_rnn/fw/multi_rnn_cell/cell_0/\
                 lstm_cell/bias"
            )
        });
        let high = layer_sizes(&|i| {
            format!(
                "encoder/hierarchical_level_1/cell_{i}/bidirectional_rnn/fw/multi_rnn_cell/cell_0/\
                 lstm_cell/bias"
            )
        });
        if low != high {
            return Err(ImportError::Unsupported(format!(
                "encoder levels of different sizes ({low:?} and {high:?})"
            )));
        }
        low
    } else {
        layer_sizes(&|i| {
            format!("encoder/cell_{i}/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/bias")
        })
    };
    if hierarchical_encoder && segments.is_some_and(|s| s as usize != bars) {
        return Err(ImportError::Unsupported(
            "a hierarchical encoder whose segments are not bars".into(),
        ));
    }
    let config = Config {
        z_size,
        encoder,
        hierarchical_encoder: has_encoder && hierarchical_encoder,
        decoder,
        hierarchical,
        bars,
        steps_per_bar: STEPS_PER_BAR,
        encoding,
        groove_input,
        min_pitch: MIN_PITCH,
        max_pitch: MAX_PITCH,
        chords: spec.chords,
        melody_controls: spec.melody_controls,
    };
    // The converter and the weights must agree on what goes in and comes out of a step.
    let encoder_input = match config.encoder.first() {
        Some(&hidden) => {
            let level = if config.hierarchical_encoder {
                "encoder/hierarchical_level_0"
            } else {
                "encoder"
            };
            let rows = first_dim(
                variables,
                &format!(
                    "{level}/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
                ),
            )?;
            // An LSTM kernel stacks the input's rows above the hidden state's.
            Some(rows.saturating_sub(hidden))
        }
        None => None,
    };
    let (name, outputs, reads) = match encoding {
        Encoding::Melody => (
            "MelodyConverter",
            format!("one of {} classes", config.num_classes()),
            match (config.control_depth(), config.melody_controls.is_empty()) {
                (0, _) => format!("a one-hot class of {}", config.num_classes()),
                (controls, true) => format!(
                    "a one-hot class of {} and its chord's {controls} values",
                    config.num_classes(),
                ),
                (controls, false) => format!(
                    "a one-hot class of {} and {controls} values of its chord and melody \
                     controls",
                    config.num_classes(),
                ),
            },
        ),
        Encoding::Drums => (
            "DrumsConverter",
            format!(
                "one of the {} combinations of its {} drums",
                drums::NUM_CLASSES,
                drums::NUM_DRUM_CLASSES
            ),
            format!(
                "the drum roll of {} (its {} drums and a \"no hits\" bit)",
                drums::ROLL_DEPTH,
                drums::NUM_DRUM_CLASSES
            ),
        ),
        Encoding::Groove => {
            groove_shapes(classes, encoder_input)?;
            return Ok(config);
        }
    };
    if classes != config.num_classes() {
        return Err(ImportError::Checkpoint(format!(
            "the decoder outputs {classes} classes a step, but a {name} model outputs {outputs}"
        )));
    }
    if let Some(input) = encoder_input.filter(|&input| input != config.input_depth()) {
        return Err(ImportError::Checkpoint(format!(
            "the encoder reads {input} values a step, but a {name} model reads {reads}"
        )));
    }
    Ok(config)
}

/// A GrooVAE's widths: a groove row in and out of every step. Magenta's other groove
/// options show in them: categorical velocities and offsets, or one drum a step
/// (`split_instruments`), widen or narrow the decoder's output, and the target hits as
/// controls (`hits_as_controls`) widen the encoder's input.
fn groove_shapes(outputs: usize, encoder_input: Option<usize>) -> Result<(), ImportError> {
    let n = drums::NUM_DRUM_CLASSES;
    if outputs != ROW {
        return Err(ImportError::Unsupported(format!(
            "the decoder writes {outputs} values a step; Latent Live plays GrooveConverter models \
             that write {ROW}, a hit, a velocity and an offset for each of {n} drums (not \
             categorical velocity and offset bins, nor one drum a step)"
        )));
    }
    match encoder_input {
        Some(input) if input > ROW => Err(ImportError::Unsupported(format!(
            "the encoder reads {input} values a step, a groove row of {ROW} and {} control values \
             (the hits as controls, as groovae_2bar_hits_control); Latent Live plays \
             unconditioned groove models",
            input - ROW
        ))),
        Some(input) if input < ROW => Err(ImportError::Checkpoint(format!(
            "the encoder reads {input} values a step, but a GrooveConverter model reads a groove \
             row of {ROW} ({n} hits, {n} velocities, {n} offsets)"
        ))),
        _ => Ok(()),
    }
}

/// What a data converter spec (`{type, args: {...}}` or flat) tells about the model.
struct DataConverter {
    encoding: Encoding,
    groove_input: GrooveInput,
    steps: Option<u64>,
    segments: Option<u64>,
}

fn data_converter(spec: &Value) -> Result<DataConverter, ImportError> {
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("MelodyConverter");
    let args = spec.get("args").unwrap_or(spec);
    let int = |key: &str| args.get(key).and_then(Value::as_u64);
    let mut groove_input = GrooveInput::Whole;
    let encoding = match kind {
        "MelodyConverter" => {
            let (min_pitch, max_pitch) = (
                int("minPitch").unwrap_or(MIN_PITCH as u64),
                int("maxPitch").unwrap_or(MAX_PITCH as u64),
            );
            if (min_pitch, max_pitch) != (MIN_PITCH as u64, MAX_PITCH as u64) {
                return Err(ImportError::Unsupported(format!(
                    "the checkpoint's pitch range is {min_pitch}..={max_pitch}; Latent Live's \
                     melody encoding covers {MIN_PITCH}..={MAX_PITCH}"
                )));
            }
            Encoding::Melody
        }
        "DrumsConverter" => {
            if let Some(classes) = args.get("pitchClasses") {
                drum_pitch_classes(kind, classes)?;
            }
            Encoding::Drums
        }
        "GrooveConverter" => {
            if is_set(args.get("splitInstruments")) {
                return Err(ImportError::Unsupported(
                    "the checkpoint's GrooveConverter splits instruments (one drum a step, each \
                     drum its own sequence); Latent Live plays groove models that write all nine \
                     drums of a step at once"
                        .into(),
                ));
            }
            if let Some(steps) = int("stepsPerQuarter").filter(|&s| s != STEPS_PER_QUARTER as u64) {
                return Err(ImportError::Unsupported(format!(
                    "the checkpoint's GrooveConverter has {steps} steps a quarter; Latent Live \
                     plays 16ths, {STEPS_PER_QUARTER} a quarter"
                )));
            }
            if let Some(classes) = args.get("pitchClasses") {
                drum_pitch_classes(kind, classes)?;
            }
            // What the encoder was shown: the hits alone, taps with their timing, or all.
            groove_input = match (is_set(args.get("humanize")), is_set(args.get("tapify"))) {
                (false, false) => GrooveInput::Whole,
                (true, false) => GrooveInput::Humanize,
                (false, true) => GrooveInput::Tap,
                (true, true) => {
                    return Err(ImportError::Unsupported(
                        "the checkpoint's GrooveConverter both humanizes and tapifies (its \
                         encoder reads taps without their timing); Latent Live's groove models \
                         read the whole groove, its hits alone, or taps with their timing"
                            .into(),
                    ));
                }
            };
            Encoding::Groove
        }
        _ => {
            let what = match kind {
                "DrumRollConverter" => {
                    "a multi-label drum model: its decoder sets each of 9 drums on or off, with a \
                     NADE or boolean output layer, where Latent Live's picks one of their 512 \
                     combinations with a categorical softmax"
                }
                "DrumsOneHotConverter" => {
                    "drums read as one of their 512 combinations, where Latent Live's drum encoder \
                     reads the drum roll"
                }
                "TrioConverter" => "a trio (melody, bass, drums) model",
                "MultitrackConverter" => "a multitrack model",
                "MelodyRhythmConverter" | "MelodyShapeConverter" => {
                    "a model of melody rhythm or contour only"
                }
                _ => "neither melodies, drums nor grooves",
            };
            return Err(ImportError::Unsupported(format!(
                "the checkpoint's data converter is {kind} ({what}); Latent Live plays \
                 MelodyConverter, DrumsConverter and GrooveConverter models"
            )));
        }
    };
    Ok(DataConverter {
        encoding,
        groove_input,
        steps: int("numSteps"),
        segments: int("numSegments"),
    })
}

/// Whether a spec sets an option, as magenta.js reads it: present and true in JavaScript
/// (anything but `null`, `false`, 0 and the empty string).
fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// magenta.js's `DEFAULT_DRUM_PITCH_CLASSES`: Magenta's drum classes as they were before 22
/// and 26 (the Roland TD-11's hi-hat edges) were added and 43 and 52 moved to the low tom
/// and the crash. The classes, their order and the pitch each plays are Latent Live's
/// ([`drums::CLASSES`]); only where those few rare pitches fall differs.
const MAGENTA_JS_DRUM_PITCH_CLASSES: [&[u8]; drums::NUM_DRUM_CLASSES] = [
    &[36, 35],
    &[38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85],
    &[42, 44, 54, 68, 69, 70, 71, 73, 78, 80],
    &[46, 67, 72, 74, 79, 81],
    &[45, 29, 41, 61, 64, 84],
    &[48, 47, 60, 63, 77, 86, 87],
    &[50, 30, 43, 62, 76, 83],
    &[49, 55, 57, 58],
    &[51, 52, 53, 59, 82],
];

/// A `DrumsConverter`'s or `GrooveConverter`'s `pitchClasses`, refused unless they are one
/// of Magenta's defaults: Latent Live reads captures into, and plays, its own classes.
fn drum_pitch_classes(kind: &str, spec: &Value) -> Result<(), ImportError> {
    let classes: Option<Vec<Vec<u8>>> = serde_json::from_value(spec.clone()).ok();
    let ours = drums::CLASSES.map(|c| c.pitches);
    let is = |table: &[&[u8]]| {
        classes
            .as_ref()
            .is_some_and(|c| c.iter().map(Vec::as_slice).eq(table.iter().copied()))
    };
    if is(&ours) || is(&MAGENTA_JS_DRUM_PITCH_CLASSES) {
        return Ok(());
    }
    let names: Vec<&str> = drums::CLASSES.iter().map(|c| c.short).collect();
    Err(ImportError::Unsupported(format!(
        "the checkpoint's {kind} has pitch classes of its own, {spec}; Latent Live reads and \
         plays Magenta's default {} drum classes ({}; magenta.js's DEFAULT_DRUM_PITCH_CLASSES or \
         Magenta's DEFAULT_DRUM_TYPE_PITCHES)",
        drums::NUM_DRUM_CLASSES,
        names.join(" ")
    )))
}

fn first_dim(variables: &Variables, name: &str) -> Result<usize, ImportError> {
    variables
        .get(name)
        .and_then(|t| t.dims().first().copied())
        .ok_or_else(|| ImportError::Checkpoint(format!("the checkpoint has no {name}")))
}

/// A manifest's file name, refused unless it names a file in the checkpoint's folder.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, ImportError> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(std::path::Component::Normal(file)), None) => Ok(dir.join(file)),
        _ => Err(ImportError::Checkpoint(format!(
            "the manifest names {name:?}, which is not a file in {}",
            dir.display()
        ))),
    }
}

/// The number of values of a shape, refused when it overflows.
fn element_count(shape: &[usize], name: &str) -> Result<usize, ImportError> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            ImportError::Checkpoint(format!(
                "{name}: shape {shape:?} has more values than memory can hold"
            ))
        })
}

fn tensor(values: Vec<f32>, shape: &[usize], name: &str) -> Result<Tensor, ImportError> {
    Tensor::from_vec(values, shape, &Device::Cpu)
        .map_err(|e| ImportError::Checkpoint(format!("{name}: {e}")))
}

fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    read_capped(path, MAX_MODEL_BYTES).map_err(|source| ImportError::Io {
        path: path.into(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ImportError> {
    serde_json::from_slice(&read(path)?).map_err(|source| ImportError::Json {
        path: path.into(),
        source,
    })
}
