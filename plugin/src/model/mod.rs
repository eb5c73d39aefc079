//! MusicVAE in candle: a bidirectional LSTM encoder, a latent head (mu and a softplus
//! sigma) and a categorical LSTM decoder, flat or under a conductor.
//!
//! Ports magenta/models/music_vae (`base_model.py`, `lstm_models.py`). Tensor names follow
//! Magenta's TensorFlow variable names, so Google's checkpoints map onto ours by name.

pub mod assets;
pub mod decoder;
pub mod encoder;
pub mod file;
pub mod inversion;
pub mod lstm;
pub mod magenta;
pub mod ops;
pub mod vae;

pub use decoder::{Decoder, Sampling};
pub use encoder::{Encoder, Posterior};
pub use file::{ModelCard, ModelError, ModelFile};
pub use vae::MusicVae;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::music::melody;

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
    #[serde(default = "default_min_pitch")]
    pub min_pitch: u8,
    #[serde(default = "default_max_pitch")]
    pub max_pitch: u8,
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
            min_pitch: melody::MIN_PITCH,
            max_pitch: melody::MAX_PITCH,
        }
    }

    /// Latent Live's hierarchical 4-bar default: `hierdec-mel_16bar` in miniature.
    pub fn latent_live_4bar() -> Self {
        Self { bars: 4, hierarchical: true, ..Self::latent_live_2bar() }
    }

    /// Magenta's `cat-mel_2bar_small`.
    pub fn mel_2bar_small() -> Self {
        Self { z_size: 256, encoder: vec![512], ..Self::latent_live_2bar() }
    }

    pub fn steps(&self) -> usize {
        self.bars * self.steps_per_bar
    }

    pub fn num_classes(&self) -> usize {
        (self.max_pitch - self.min_pitch) as usize + 3
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
        let kernel = vb.get_with_hints((input, output), "kernel", candle_nn::init::DEFAULT_KAIMING_UNIFORM)?;
        let bias = vb.get_with_hints(output, "bias", candle_nn::init::ZERO)?;
        Ok(Self { kernel, bias })
    }

    /// Applies to the last dimension of an input of any rank.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (lead, input) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let y = add_row(&x.reshape((rows, input[0]))?.matmul(&self.kernel)?, &self.bias)?;
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

/// `log(1 + e^x)`, written to stay finite for large `|x|`.
fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}
