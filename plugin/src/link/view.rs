//! What the editor sees of the worker: the loaded model and every decoded phrase, with
//! the z it came from and the decoder's activations while it was written.
//!
//! The worker publishes through a triple buffer (wait-free on both sides): it never
//! waits for the GUI, and the GUI reads the newest [`View`] without ever blocking the
//! worker. The payloads are behind `Arc`s, so publishing a phrase moves pointers and the
//! GUI keeps whatever it still draws.

use std::sync::Arc;

use triple_buffer::triple_buffer;

use crate::params::NUM_ATTRIBUTES;
use latent_live_core::model::latent::{LatentSpace, MUSIC_NEURON_STD};
use latent_live_core::model::{ModelCard, MusicVae};
use latent_live_core::music::chord::Chord;
use latent_live_core::music::phrase::Phrase;
use latent_live_core::music::Encoding;

/// The loaded model, as the editor shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub card: ModelCard,
    pub z_size: usize,
    pub has_encoder: bool,
    /// The latent sliders' dims and labels (e.g. "N1 · pitch height"), best first.
    pub slider_dims: Vec<usize>,
    pub slider_labels: Vec<String>,
    /// What one slider unit is on each slider's dim (see [`LatentSpace::slider_scales`]).
    pub slider_scales: Vec<f32>,
    /// Every dim, music neurons first (by rank), then the noise neurons.
    pub neuron_order: Vec<usize>,
    /// How many of `neuron_order` are music neurons.
    pub music_neurons: usize,
    /// Whether the model has a vector for each attribute slider.
    pub attributes: [bool; NUM_ATTRIBUTES],
    pub encoding: Encoding,
    /// Whether the model reads chords (it plays over them, rather than being fitted).
    pub chords: bool,
    /// The length of its phrases.
    pub bars: usize,
}

impl ModelInfo {
    pub fn of(name: &str, card: &ModelCard, space: &LatentSpace, model: &MusicVae) -> Self {
        let z_size = space.z_size;
        let is_music = |d: usize| {
            space
                .mu_std
                .as_ref()
                .is_none_or(|s| s[d] >= MUSIC_NEURON_STD)
        };
        let mut neuron_order: Vec<usize> = space
            .ranking
            .iter()
            .copied()
            .filter(|&d| is_music(d))
            .collect();
        let music_neurons = neuron_order.len();
        neuron_order.extend(space.ranking.iter().copied().filter(|&d| !is_music(d)));
        Self {
            name: name.to_string(),
            card: card.clone(),
            z_size,
            has_encoder: model.has_encoder(),
            slider_dims: space.slider_dims.clone(),
            slider_labels: space.slider_labels.clone(),
            slider_scales: space.slider_scales.clone(),
            neuron_order,
            music_neurons,
            attributes: space.attribute_vectors.each_ref().map(Option::is_some),
            encoding: model.config.encoding,
            chords: model.config.chords.is_some(),
            bars: model.config.bars,
        }
    }
}

/// One decode: the phrase, the z it came from, the decoder's top-layer output at every
/// step (`[phrase.steps, hidden]`, row-major), and the chord of every step the phrase
/// plays over (empty where no chord shaped it: a model without chords, no chord played).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub phrase: Phrase,
    pub z: Vec<f32>,
    pub activations: Vec<f32>,
    pub hidden: usize,
    pub chords: Vec<Option<Chord>>,
}

/// What the worker last published.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub model: Option<Arc<ModelInfo>>,
    /// The last few decodes, oldest first: the phrase playing may be one of the older
    /// ones until the next swap point.
    pub recent: Vec<Arc<Decoded>>,
}

pub type ViewPublisher = triple_buffer::Input<View>;
pub type ViewReader = triple_buffer::Output<View>;

pub fn view_channel() -> (ViewPublisher, ViewReader) {
    triple_buffer(&View::default())
}
