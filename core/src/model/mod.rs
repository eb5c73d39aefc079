//! MusicVAE in candle: a bidirectional LSTM encoder, a latent head (mu and a softplus
//! sigma) and a decoder chosen by the config: categorical, flat or under a conductor, for
//! melodies and drums, or GrooVAE's for grooves ([`Decoder`]).
//!
//! Ports magenta/models/music_vae (`base_model.py`, `lstm_models.py`). Tensor names follow
//! Magenta's TensorFlow variable names, so Google's checkpoints map onto ours by name.

pub mod assets;
pub mod controls;
pub mod decoder;
pub mod encoder;
pub mod file;
pub mod groove;
pub mod inversion;
pub mod latent;
pub mod lstm;
pub mod magenta;
pub mod ops;
pub mod step;
pub mod vae;

pub use controls::MelodyControl;
pub use decoder::{Decoder, Sampling, ScheduledSampling};
pub use encoder::{Encoder, Posterior};
pub use file::{ModelCard, ModelError, ModelFile, MAX_MODEL_BYTES};
pub use groove::GrooveInput;
pub use vae::{Batch, MusicVae};

use std::cell::RefCell;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::music::chord::{self, Chord};
use crate::music::{drums, groove as groove_rows, melody, Encoding};

/// The largest latent: twice Magenta's largest melody model's (`cat-mel_2bar_big`, 512).
pub const MAX_Z_SIZE: usize = 1024;
/// The most LSTM layers in a stack: Magenta's deepest has 3.
pub const MAX_LAYERS: usize = 4;
/// The widest LSTM layer: twice Magenta's widest (2048).
pub const MAX_LAYER_SIZE: usize = 4096;
/// The longest model, and so the longest phrase or clip the plugin plays: Magenta's
/// longest (`hierdec-mel_16bar`).
pub const MAX_BARS: usize = 16;
/// [`MAX_BARS`] in 16th steps.
pub const MAX_STEPS: usize = MAX_BARS * melody::STEPS_PER_BAR;
/// The most weights a config may ask for (800 MB as f32). The caps above still allow
/// billions; this one keeps a config that looks valid from allocating gigabytes, or from
/// taking minutes to decode. Magenta's largest melody models, `cat-mel_2bar_big` and
/// `hierdec-mel_16bar`, have 134.6 and 176.1 million.
pub const MAX_PARAMETERS: usize = 200_000_000;
/// Bounds on the melody controls a model file may name (magenta.js's use three, of up to a
/// dozen values).
pub const MAX_MELODY_CONTROLS: usize = 8;
pub const MAX_CONTROL_DEPTH: usize = 128;

/// Why a config cannot be played. Every message names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("`{field}` is {value}, outside {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
    #[error("`decoder` has no layers; a model needs at least one")]
    NoDecoder,
    #[error("`{field}` has {count} layers, more than {MAX_LAYERS}")]
    TooManyLayers { field: &'static str, count: usize },
    #[error("`{field}` layer {layer} has {size} units, outside 1..={MAX_LAYER_SIZE}")]
    LayerSize {
        field: &'static str,
        layer: usize,
        size: usize,
    },
    #[error("`hierarchical_encoder` is set, but `encoder` has no layers")]
    HierarchicalWithoutEncoder,
    #[error("`steps_per_bar` is {0}; Latent Live plays 4/4 bars of 16th notes, {steps} steps a bar", steps = melody::STEPS_PER_BAR)]
    StepsPerBar(usize),
    #[error(
        "`min_pitch`..=`max_pitch` is {min_pitch}..={max_pitch}; Latent Live's melody encoding covers {lo}..={hi}",
        lo = melody::MIN_PITCH,
        hi = melody::MAX_PITCH
    )]
    PitchRange { min_pitch: u8, max_pitch: u8 },
    #[error(
        "a groove model is flat: `hierarchical` and `hierarchical_encoder` are for class \
         encodings, and it needs an `encoder`"
    )]
    GrooveShape,
    #[error("`groove_input` is for groove models; this one's `encoding` is {0}")]
    GrooveInputWithoutGroove(&'static str),
    #[error("`chords` and `melody_controls` condition melodies; this model's `encoding` is {0}")]
    ChordsWithoutMelody(&'static str),
    #[error("`melody_controls` names more than {MAX_MELODY_CONTROLS} controls, or one of more than {MAX_CONTROL_DEPTH} values")]
    MelodyControls,
    #[error(
        "the layer sizes and `z_size` ask for {0} weights, more than the {MAX_PARAMETERS} allowed"
    )]
    TooManyParameters(usize),
}

/// The architecture, stored as JSON in the weights file's metadata under `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub z_size: usize,
    /// Bidirectional encoder layer sizes (per direction); empty for decoder-only models.
    pub encoder: Vec<usize>,
    /// `true` for an encoder of two levels, one over each bar and one over the bars'
    /// codes, each with the `encoder` sizes (Magenta's `HierarchicalLstmEncoder`).
    #[serde(default)]
    pub hierarchical_encoder: bool,
    /// Decoder LSTM layer sizes; the conductor, when there is one, has the same sizes.
    pub decoder: Vec<usize>,
    /// `true` for a conductor LSTM that plans one bar per step (Magenta's `hierdec`).
    #[serde(default)]
    pub hierarchical: bool,
    pub bars: usize,
    #[serde(default = "default_steps_per_bar")]
    pub steps_per_bar: usize,
    /// What the classes mean; models without the field are melody models.
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default = "default_min_pitch")]
    pub min_pitch: u8,
    #[serde(default = "default_max_pitch")]
    pub max_pitch: u8,
    /// What a groove model's encoder is shown of a groove.
    #[serde(default)]
    pub groove_input: GrooveInput,
    /// For a chord-conditioned model, how the chord of every step is written beside the
    /// event, into the encoder and into the (core) decoder. Left out of the JSON when
    /// `None`, so that every model from before chords keeps its config and its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chords: Option<ChordEncoding>,
    /// Signals taken from a melody (its rhythm, contour, register) read after the chord at
    /// every step, as magenta.js's `extraControls`; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub melody_controls: Vec<MelodyControl>,
}

/// How a chord-conditioned model reads a chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChordEncoding {
    /// Magenta's `PitchChordsEncoding` ([`chord::pitch_encoding`]): root, pitch classes and
    /// bass. It writes every quality the chord input names (sevenths, sixths, sus and add9
    /// chords, and inversions by their bass), where the triad encoding has no sus chords
    /// and folds the rest onto four triads; and it is what magenta.js's `mel_chords`
    /// reads.
    Pitch,
}

impl ChordEncoding {
    /// Values per step.
    pub fn depth(self) -> usize {
        match self {
            Self::Pitch => chord::PITCH_ENCODING_DEPTH,
        }
    }

    /// `chord` as this encoding writes it, appended to `out`.
    pub fn write(self, chord: Option<Chord>, out: &mut Vec<f32>) {
        match self {
            Self::Pitch => out.extend(chord::pitch_encoding(chord)),
        }
    }
}

fn default_steps_per_bar() -> usize {
    melody::STEPS_PER_BAR
}
fn default_min_pitch() -> u8 {
    melody::MIN_PITCH
}
fn default_max_pitch() -> u8 {
    melody::MAX_PITCH
}

impl Config {
    /// Latent Live's flat 2-bar default: Magenta's `cat-mel_2bar_small` shape, halved to
    /// train on two CPU cores.
    pub fn latent_live_2bar() -> Self {
        Self {
            z_size: 128,
            encoder: vec![256],
            decoder: vec![256, 256],
            hierarchical_encoder: false,
            hierarchical: false,
            bars: 2,
            steps_per_bar: melody::STEPS_PER_BAR,
            encoding: Encoding::Melody,
            min_pitch: melody::MIN_PITCH,
            max_pitch: melody::MAX_PITCH,
            groove_input: GrooveInput::Whole,
            chords: None,
            melody_controls: Vec::new(),
        }
    }

    /// Latent Live's hierarchical 4-bar default: `hierdec-mel_16bar` in miniature.
    pub fn latent_live_4bar() -> Self {
        Self {
            bars: 4,
            hierarchical: true,
            ..Self::latent_live_2bar()
        }
    }

    /// Latent Live's hierarchical 16-bar melody model: `hierdec-mel_16bar`'s shape (a
    /// conductor over 16 bar decoders under a flat encoder) at the 4-bar model's widths,
    /// which two CPU cores train at about a quarter of the 4-bar model's pace; z is twice
    /// as wide, for four times the bars.
    pub fn latent_live_16bar() -> Self {
        Self {
            z_size: 256,
            bars: 16,
            ..Self::latent_live_4bar()
        }
    }

    /// Latent Live's chord-conditioned 2-bar melody model: the flat default with the chord
    /// of every step beside each event (Magenta's `cat-mel_2bar_chords` idea).
    pub fn pop_2bar_chords() -> Self {
        Self {
            chords: Some(ChordEncoding::Pitch),
            ..Self::latent_live_2bar()
        }
    }

    /// Latent Live's chord-conditioned hierarchical 4-bar melody model.
    pub fn pop_4bar_chords() -> Self {
        Self {
            chords: Some(ChordEncoding::Pitch),
            ..Self::latent_live_4bar()
        }
    }

    /// Latent Live's flat 2-bar drum model: Magenta's `cat-drums_2bar_small` with the
    /// encoder halved, to train on two CPU cores.
    pub fn groove_2bar() -> Self {
        Self {
            z_size: 256,
            encoding: Encoding::Drums,
            ..Self::latent_live_2bar()
        }
    }

    /// Latent Live's hierarchical 4-bar drum model.
    pub fn groove_4bar() -> Self {
        Self {
            bars: 4,
            hierarchical: true,
            ..Self::groove_2bar()
        }
    }

    /// Magenta's `cat-drums_2bar_small` (`drums_2bar_lokl_small`, `drums_2bar_hikl_small`).
    pub fn drums_2bar_small() -> Self {
        Self {
            encoder: vec![512],
            ..Self::groove_2bar()
        }
    }

    /// Latent Live's 2-bar humanizer: GrooVAE's `groovae_2bar_humanize` with the encoder
    /// halved, as for the drum model.
    pub fn groove_humanize_2bar() -> Self {
        Self {
            encoding: Encoding::Groove,
            groove_input: GrooveInput::Humanize,
            ..Self::groove_2bar()
        }
    }

    /// Latent Live's 2-bar tap-to-drums model (`groovae_2bar_tap_fixed_velocity`, halved).
    pub fn tap2drum_2bar() -> Self {
        Self {
            groove_input: GrooveInput::Tap,
            ..Self::groove_humanize_2bar()
        }
    }

    /// Magenta's `cat-mel_2bar_small`.
    pub fn mel_2bar_small() -> Self {
        Self {
            z_size: 256,
            encoder: vec![512],
            ..Self::latent_live_2bar()
        }
    }

    /// Checks every field against what the plugin can play and what memory allows, so that
    /// a config read from a file is an error rather than a panic, an abort on allocation
    /// or a decode that takes minutes. Every model is built through it ([`MusicVae::new`]).
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        let range = |field, value, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                })
            }
        };
        range("z_size", self.z_size, 1, MAX_Z_SIZE)?;
        range("bars", self.bars, 1, MAX_BARS)?;
        if self.decoder.is_empty() {
            return Err(ConfigError::NoDecoder);
        }
        for (field, sizes) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            if sizes.len() > MAX_LAYERS {
                return Err(ConfigError::TooManyLayers {
                    field,
                    count: sizes.len(),
                });
            }
            if let Some((layer, &size)) = sizes
                .iter()
                .enumerate()
                .find(|&(_, &size)| !(1..=MAX_LAYER_SIZE).contains(&size))
            {
                return Err(ConfigError::LayerSize { field, layer, size });
            }
        }
        if self.hierarchical_encoder && self.encoder.is_empty() {
            return Err(ConfigError::HierarchicalWithoutEncoder);
        }
        if self.encoding == Encoding::Groove
            && (self.hierarchical || self.hierarchical_encoder || self.encoder.is_empty())
        {
            return Err(ConfigError::GrooveShape);
        }
        if self.encoding != Encoding::Groove && self.groove_input != GrooveInput::Whole {
            return Err(ConfigError::GrooveInputWithoutGroove(self.encoding.name()));
        }
        if (self.chords.is_some() || !self.melody_controls.is_empty())
            && self.encoding != Encoding::Melody
        {
            return Err(ConfigError::ChordsWithoutMelody(self.encoding.name()));
        }
        if self.melody_controls.len() > MAX_MELODY_CONTROLS
            || self
                .melody_controls
                .iter()
                .any(|c| c.depth() > MAX_CONTROL_DEPTH)
        {
            return Err(ConfigError::MelodyControls);
        }
        // The sequencer, capture and the MIDI slicer all work in bars of 16 steps.
        if self.steps_per_bar != melody::STEPS_PER_BAR {
            return Err(ConfigError::StepsPerBar(self.steps_per_bar));
        }
        // Events are read and written with `melody`'s fixed 90 classes.
        if self.encoding == Encoding::Melody
            && (self.min_pitch, self.max_pitch) != (melody::MIN_PITCH, melody::MAX_PITCH)
        {
            return Err(ConfigError::PitchRange {
                min_pitch: self.min_pitch,
                max_pitch: self.max_pitch,
            });
        }
        let parameters = self.parameters();
        if parameters > MAX_PARAMETERS {
            return Err(ConfigError::TooManyParameters(parameters));
        }
        Ok(())
    }

    /// How many weights the model has: what [`MusicVae::new`] loads or creates. Saturates
    /// rather than overflows, for configs [`Config::validate`] has yet to bound.
    pub fn parameters(&self) -> usize {
        let lstm = |input: usize, hidden: usize| {
            input
                .saturating_add(hidden)
                .saturating_add(1)
                .saturating_mul(hidden.saturating_mul(4))
        };
        let dense = |input: usize, output: usize| input.saturating_add(1).saturating_mul(output);
        let stack = |input: usize, sizes: &[usize], bidirectional: bool| {
            let (mut total, mut layer_input, directions) =
                (0usize, input, 1 + bidirectional as usize);
            for &hidden in sizes {
                total = total.saturating_add(lstm(layer_input, hidden).saturating_mul(directions));
                layer_input = hidden.saturating_mul(directions);
            }
            (total, layer_input)
        };
        let classes = self.num_classes();
        let input = self.input_depth();
        let controls = self.control_depth();
        let state = self
            .decoder
            .iter()
            .fold(0usize, |sum, &h| sum.saturating_add(h))
            .saturating_mul(2);
        let top = self.decoder.last().copied().unwrap_or(0);
        // A categorical decoder: its stack, the dense from the condition to the initial
        // state, and the output projection.
        let categorical = |condition: usize| {
            stack(
                classes.saturating_add(condition).saturating_add(controls),
                &self.decoder,
                false,
            )
            .0
            .saturating_add(dense(condition, state))
            .saturating_add(dense(top, classes))
        };
        // A conductor: its stack on a 1-wide zero input and its initial state, over a
        // categorical decoder conditioned on its output.
        let decoder = if self.encoding == Encoding::Groove {
            let row = groove_rows::ROW;
            stack(row.saturating_add(self.z_size), &self.decoder, false)
                .0
                .saturating_add(dense(self.z_size, state))
                .saturating_add(dense(top, row))
        } else if self.hierarchical {
            stack(1, &self.decoder, false)
                .0
                .saturating_add(dense(self.z_size, state))
                .saturating_add(categorical(top))
        } else {
            categorical(self.z_size)
        };
        if self.encoder.is_empty() {
            return decoder;
        }
        let (mut encoder, mut code) = stack(input, &self.encoder, true);
        if self.hierarchical_encoder {
            let (top, top_code) = stack(code, &self.encoder, true);
            (encoder, code) = (encoder.saturating_add(top), top_code);
        }
        // mu and sigma.
        encoder
            .saturating_add(dense(code, self.z_size).saturating_mul(2))
            .saturating_add(decoder)
    }

    pub fn steps(&self) -> usize {
        self.bars * self.steps_per_bar
    }

    /// The decoder's output classes (for a groove model, the drum combinations its hits
    /// make).
    pub fn num_classes(&self) -> usize {
        match self.encoding {
            Encoding::Melody => {
                (self.max_pitch as usize).saturating_sub(self.min_pitch as usize) + 3
            }
            Encoding::Drums | Encoding::Groove => drums::NUM_CLASSES,
        }
    }

    /// The encoder's input per step: a one-hot class for melodies, the drum roll for
    /// drums, a groove row for grooves; then the step's controls.
    pub fn input_depth(&self) -> usize {
        let sequence = match self.encoding {
            Encoding::Melody => self.num_classes(),
            Encoding::Drums => drums::ROLL_DEPTH,
            Encoding::Groove => groove_rows::ROW,
        };
        sequence + self.control_depth()
    }

    /// The controls fed beside the sequence at every step (the chord, then the melody
    /// controls), or 0.
    pub fn control_depth(&self) -> usize {
        self.chords.map_or(0, ChordEncoding::depth)
            + self
                .melody_controls
                .iter()
                .map(MelodyControl::depth)
                .sum::<usize>()
    }

    /// Tiny sizes for tests.
    pub fn tiny(bars: usize, hierarchical: bool) -> Self {
        Self {
            z_size: 8,
            encoder: vec![16],
            decoder: vec![16, 16],
            hierarchical,
            bars,
            ..Self::latent_live_2bar()
        }
    }
}

/// A TensorFlow dense layer: `x @ kernel + bias` with `kernel` of shape `[in, out]`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub kernel: Tensor,
    pub bias: Tensor,
}

impl Dense {
    pub fn new(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        let kernel = vb.get_with_hints(
            (input, output),
            "kernel",
            candle_nn::init::DEFAULT_KAIMING_UNIFORM,
        )?;
        let bias = vb.get_with_hints(output, "bias", candle_nn::init::ZERO)?;
        Ok(Self { kernel, bias })
    }

    /// Applies to the last dimension of an input of any rank.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (lead, input) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let y = add_row(
            &x.reshape((rows, input[0]))?.matmul(&self.kernel)?,
            &self.bias,
        )?;
        let mut out = lead.to_vec();
        out.push(self.kernel.dim(1)?);
        y.reshape(out)
    }
}

/// `x [R, C] + row [C]` on every row. Written as a rank-1 matmul so that the backward
/// pass sums the rows with gemm: candle's sum over leading dimensions does two integer
/// divisions per element, and was a tenth of a training step.
pub fn add_row(x: &Tensor, row: &Tensor) -> Result<Tensor> {
    let (rows, cols) = x.dims2()?;
    let ones = Tensor::ones((rows, 1), x.dtype(), x.device())?;
    x + ones.matmul(&row.reshape((1, cols))?)?
}

/// What a decoder's loss reports for one batch.
pub struct Reconstruction {
    /// The decoder's loss, summed over steps and averaged over the batch.
    pub loss: Tensor,
    /// Teacher-forced accuracy: of events, or of steps whose hits are all right.
    pub accuracy: Tensor,
}

/// Magenta's `dropout_keep_prob`, for training: every LSTM layer's input values are each
/// kept with probability `keep` and scaled by `1 / keep`, or zeroed (TensorFlow's
/// `DropoutWrapper` with `input_keep_prob`). Every [`Dropout::apply`] draws a new mask.
#[derive(Debug)]
pub struct Dropout {
    keep: f64,
    rng: RefCell<ChaCha8Rng>,
}

impl Dropout {
    pub fn new(keep: f64, seed: u64) -> Self {
        Self {
            keep: keep.clamp(f64::MIN_POSITIVE, 1.0),
            rng: RefCell::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let scale = (1.0 / self.keep) as f32;
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f64>() < self.keep {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        x * Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?
    }
}

/// `x` through `dropout`, when training with one.
fn dropped(x: &Tensor, dropout: Option<&Dropout>) -> Result<Tensor> {
    match dropout {
        Some(d) => d.apply(x),
        None => Ok(x.clone()),
    }
}

/// `log(1 + e^x)`, written to stay finite for large `|x|`.
fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// The error a config with one field changed gives, checked to name that field.
    fn error(field: &str, change: impl FnOnce(&mut Config)) -> ConfigError {
        let mut config = Config::latent_live_2bar();
        change(&mut config);
        let err = config.validate().expect_err(field);
        assert!(
            err.to_string().contains(&format!("`{field}`")),
            "{field}: {err}"
        );
        err
    }

    #[test]
    fn every_bad_field_is_an_error_that_names_it() {
        error("z_size", |c| c.z_size = 0);
        error("z_size", |c| c.z_size = MAX_Z_SIZE + 1);
        error("bars", |c| c.bars = 0);
        error("bars", |c| c.bars = 17);
        assert_eq!(
            error("decoder", |c| c.decoder.clear()),
            ConfigError::NoDecoder
        );
        error("decoder", |c| c.decoder = vec![8; MAX_LAYERS + 1]);
        error("decoder", |c| c.decoder[1] = 0);
        error("decoder", |c| c.decoder[0] = MAX_LAYER_SIZE + 1);
        error("encoder", |c| c.encoder = vec![8; MAX_LAYERS + 1]);
        assert_eq!(
            error("encoder", |c| c.encoder = vec![64, 0]),
            ConfigError::LayerSize {
                field: "encoder",
                layer: 1,
                size: 0
            }
        );
        error("hierarchical_encoder", |c| {
            (c.hierarchical_encoder, c.encoder) = (true, Vec::new())
        });
        error("steps_per_bar", |c| c.steps_per_bar = 0);
        error("steps_per_bar", |c| c.steps_per_bar = 12);
        error("min_pitch", |c| (c.min_pitch, c.max_pitch) = (60, 59));
        error("max_pitch", |c| c.max_pitch = 127);
        error("min_pitch", |c| c.min_pitch = 0);
    }

    #[test]
    fn a_config_too_large_to_allocate_is_an_error() {
        let huge = Config {
            z_size: MAX_Z_SIZE,
            encoder: vec![MAX_LAYER_SIZE; MAX_LAYERS],
            decoder: vec![MAX_LAYER_SIZE; MAX_LAYERS],
            ..Config::latent_live_4bar()
        };
        assert!(huge.parameters() > 2_000_000_000, "{}", huge.parameters());
        assert_eq!(
            huge.validate(),
            Err(ConfigError::TooManyParameters(huge.parameters()))
        );
        let message = huge.validate().unwrap_err().to_string();
        assert!(
            message.contains("z_size") && message.contains("layer sizes"),
            "{message}"
        );
        // Saturates instead of overflowing on a config no one has bounded yet.
        assert_eq!(
            Config {
                decoder: vec![usize::MAX],
                ..Config::latent_live_2bar()
            }
            .parameters(),
            usize::MAX
        );
    }

    #[test]
    fn shipped_and_magenta_shapes_are_valid() {
        let big = Config {
            z_size: 512,
            encoder: vec![2048],
            decoder: vec![2048; 3],
            ..Config::latent_live_2bar()
        };
        let hierdec_16bar = Config {
            z_size: 512,
            encoder: vec![2048; 2],
            decoder: vec![1024; 2],
            bars: 16,
            hierarchical: true,
            ..Config::latent_live_2bar()
        };
        assert_eq!(
            (big.parameters(), hierdec_16bar.parameters()),
            (134_571_098, 176_061_530)
        );
        for config in [
            Config::latent_live_2bar(),
            Config::latent_live_4bar(),
            Config::mel_2bar_small(),
            Config::tiny(2, false),
            Config::tiny(4, true),
            big,
            hierdec_16bar,
        ] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }

    #[test]
    fn parameters_count_what_the_model_creates() {
        let tiny = Config::tiny(2, false);
        for config in [
            tiny.clone(),
            Config {
                hierarchical: true,
                ..tiny.clone()
            },
            Config {
                hierarchical: true,
                hierarchical_encoder: true,
                encoder: vec![12, 10],
                ..tiny.clone()
            },
            Config {
                encoder: Vec::new(),
                decoder: vec![24, 16, 8],
                ..tiny
            },
        ] {
            let varmap = VarMap::new();
            MusicVae::new(
                config.clone(),
                VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
            )
            .unwrap();
            let created: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
            assert_eq!(config.parameters(), created, "{config:?}");
        }
    }

    #[test]
    fn an_invalid_config_never_builds_a_model() {
        let varmap = VarMap::new();
        let config = Config {
            decoder: Vec::new(),
            ..Config::tiny(2, false)
        };
        let err = MusicVae::new(
            config,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`decoder`"), "{err}");
    }
}
