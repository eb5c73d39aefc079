//! What moves z, read by the worker through [`ZRequest`]: the latent sliders, the
//! attribute amounts, the morph between the clips, sampling, and the XY pad's axes.

use std::ops::Deref;
use std::sync::Arc;

use nice_plug::params::internals::ParamPtr;
use nice_plug::prelude::*;

use latent_live_core::model::latent::{Controls, Drift, NUM_SLIDERS};
use latent_live_core::music::attributes::NUM_CONTROLLED;
use latent_live_core::music::chord::Chord;
use latent_live_core::music::key::{Key, Mode, ScaleLock};

use crate::params::scenes::SceneCue;
use crate::params::{share, ChordFollow, GrooveModelChoice, ModelChoice, PadParams};

/// Slider range, in sigmas of the slider's dim: its spread over real music when the
/// model has been analysed, else the prior's (z ~ N(0, 1)).
pub const SLIDER_SIGMAS: f32 = 3.0;
pub const MAX_TEMPERATURE: f32 = 1.5;
pub const MAX_SEED: i32 = 9999;
/// Attribute amounts move z by up to this many attribute vectors either way.
pub const MAX_ATTRIBUTE: f32 = 2.0;

/// Each attribute's parameter, in the order of [`crate::params::ATTRIBUTES`]: its id and its name.
const ATTRIBUTE_PARAMS: [(&str, &str); NUM_CONTROLLED] = [
    ("dens", "Note Density"),
    ("rhyth", "Rhythmic Complexity"),
    ("sync", "Syncopation"),
    ("prange", "Pitch Range"),
    ("height", "Pitch Height"),
    ("contr", "Contour"),
    ("kick", "Kick Density"),
    ("snare", "Snare Density"),
    ("hats", "Hi-Hat Density"),
    ("toms", "Tom Density"),
    ("cymb", "Cymbal Density"),
    ("dsync", "Drum Syncopation"),
    ("bback", "Backbeat"),
    ("fill", "Fill"),
];

#[derive(Params)]
pub struct LatentParams {
    #[nested(group = "Sliders")]
    pub sliders: Sliders,
    /// Sampling temperature; 0 decodes greedily (the same z always gives the same phrase).
    #[id = "temp"]
    pub temperature: FloatParam,
    /// Seed of the sampler when the temperature is above 0.
    #[id = "seed"]
    pub seed: IntParam,
    /// 0 = clip A, 1 = clip B (slerp between their means).
    #[id = "morph"]
    pub morph: FloatParam,
    #[nested(group = "Attributes")]
    pub attributes: Attributes,
    /// The editor's XY pad moves two controls: X the pad's X (0: the A-B morph) or latent
    /// slider N, Y the pad's Y (0: [`PadParams::y`]) or latent slider N. Automating the
    /// pad is automating those.
    #[id = "padx"]
    pub pad_x: IntParam,
    #[id = "pady"]
    pub pad_y: IntParam,
}

impl Default for LatentParams {
    fn default() -> Self {
        Self {
            sliders: Sliders(std::array::from_fn(|i| {
                FloatParam::new(
                    format!("Latent {}", i + 1),
                    0.0,
                    FloatRange::Linear {
                        min: -SLIDER_SIGMAS,
                        max: SLIDER_SIGMAS,
                    },
                )
                .with_step_size(0.01)
                .with_unit(" σ")
            })),
            temperature: FloatParam::new(
                "Temperature",
                0.0,
                FloatRange::Linear {
                    min: 0.0,
                    max: MAX_TEMPERATURE,
                },
            )
            .with_step_size(0.01),
            seed: IntParam::new(
                "Variation",
                0,
                IntRange::Linear {
                    min: 0,
                    max: MAX_SEED,
                },
            ),
            morph: share("Pad X (Morph A-B)"),
            attributes: Attributes(ATTRIBUTE_PARAMS.map(|(_, name)| {
                FloatParam::new(
                    name,
                    0.0,
                    FloatRange::Linear {
                        min: -MAX_ATTRIBUTE,
                        max: MAX_ATTRIBUTE,
                    },
                )
                .with_step_size(0.01)
                .with_unit("x")
            })),
            pad_x: pad_axis("Pad X Axis", 0, PAD_X),
            pad_y: pad_axis("Pad Y Axis", 0, PAD_Y),
        }
    }
}

impl LatentParams {
    /// Where the controls put z now. Equal controls must compare equal (the worker
    /// decodes when the request changes; an offline render waits for its fingerprint):
    /// -0.0, which a stepped parameter rounds to, becomes 0.0, and a non-finite value 0.0.
    pub fn controls(&self, drift: &DriftParams, pad: &PadParams) -> Controls {
        let clean = |p: &FloatParam| {
            let v = p.value();
            if v.is_finite() {
                v + 0.0
            } else {
                0.0
            }
        };
        Controls {
            morph: clean(&self.morph),
            pad_y: clean(&pad.y),
            sliders: self.sliders.each_ref().map(clean),
            attributes: self.attributes.each_ref().map(clean),
            drift: Drift {
                amount: clean(&drift.amount),
                cycle_bars: drift.cycle_bars.value().clamp(1, MAX_DRIFT_CYCLE) as u32,
                seed: self.seed.value().max(0) as u64,
                bar: 0,
            },
        }
    }
}

/// The longest drift cycle, in bars.
pub const MAX_DRIFT_CYCLE: i32 = 64;
/// The farthest drift, in sigmas of each music neuron's spread.
pub const MAX_DRIFT: f32 = 2.0;

/// Latent drift: z wanders by itself over the model's music neurons, bar by bar, along a
/// path the Variation seed sets and the song position reads (see [`Drift`]).
#[derive(Params)]
pub struct DriftParams {
    /// How far z drifts; 0 holds it where the controls put it.
    #[id = "drift"]
    pub amount: FloatParam,
    /// Bars per cycle of the drift's path.
    #[id = "drrate"]
    pub cycle_bars: IntParam,
}

impl Default for DriftParams {
    fn default() -> Self {
        Self {
            amount: FloatParam::new(
                "Drift",
                0.0,
                FloatRange::Linear {
                    min: 0.0,
                    max: MAX_DRIFT,
                },
            )
            .with_step_size(0.01)
            .with_unit(" σ"),
            cycle_bars: IntParam::new(
                "Drift Rate",
                16,
                IntRange::Linear {
                    min: 1,
                    max: MAX_DRIFT_CYCLE,
                },
            )
            .with_unit(" bars"),
        }
    }
}

/// The latent sliders, `lat1` to `lat8`: they move the model's music neurons, most
/// variable first.
pub struct Sliders([FloatParam; NUM_SLIDERS]);

/// The attribute amounts, one per entry of [`crate::params::ATTRIBUTES`].
pub struct Attributes([FloatParam; NUM_CONTROLLED]);

impl Deref for Sliders {
    type Target = [FloatParam; NUM_SLIDERS];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Deref for Attributes {
    type Target = [FloatParam; NUM_CONTROLLED];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

// SAFETY: the pointers point into `self`, which the plugin owns for as long as the host
// holds them (the same contract as the derived impls), and the ids are unique (`lat1` to
// `lat8`; the table above): `ids_are_the_released_ones` pins them.
unsafe impl Params for Sliders {
    fn param_map(&self) -> Vec<(String, ParamPtr, String)> {
        let ids = (1..=NUM_SLIDERS).map(|n| format!("lat{n}"));
        ids.zip(self.0.iter())
            .map(|(id, p)| (id, p.as_ptr(), String::new()))
            .collect()
    }
}

// SAFETY: as for `Sliders`.
unsafe impl Params for Attributes {
    fn param_map(&self) -> Vec<(String, ParamPtr, String)> {
        ATTRIBUTE_PARAMS
            .iter()
            .zip(self.0.iter())
            .map(|((id, _), p)| (id.to_string(), p.as_ptr(), String::new()))
            .collect()
    }
}

/// What the XY pad's axes move at 0: the pad's own X and Y.
const PAD_X: &str = "Morph A-B";
const PAD_Y: &str = "Morph AB-CD";

/// An XY pad axis: 0 the pad's own (named `own`), N latent slider N.
fn pad_axis(name: &str, default: i32, own: &'static str) -> IntParam {
    IntParam::new(
        name,
        default,
        IntRange::Linear {
            min: 0,
            max: NUM_SLIDERS as i32,
        },
    )
    .with_value_to_string(Arc::new(move |value| pad_axis_name(value, own)))
    .with_string_to_value(Arc::new(move |s| parse_pad_axis(s, own)))
}

/// What an XY pad axis value names: 0 the pad's own axis, N latent slider N.
fn pad_axis_name(value: i32, own: &str) -> String {
    if value == 0 {
        own.to_string()
    } else {
        format!("Latent {value}")
    }
}

/// The inverse of [`pad_axis_name`], also taking a plain number (and "morph" for 0).
pub(super) fn parse_pad_axis(text: &str, own: &str) -> Option<i32> {
    let text = text.trim();
    let value = if text.eq_ignore_ascii_case(own) || text.eq_ignore_ascii_case("morph") {
        0
    } else {
        let number = text
            .strip_prefix("Latent")
            .or_else(|| text.strip_prefix("latent"))
            .unwrap_or(text);
        number.trim().parse().ok()?
    };
    (0..=NUM_SLIDERS as i32).contains(&value).then_some(value)
}

/// Everything that decides which phrase the worker decodes, as read at one instant
/// (atomics only: the audio thread reads it too). The worker decodes when it changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZRequest {
    /// Where the morph, the latent sliders and the attribute amounts put z.
    pub controls: Controls,
    pub temperature: f32,
    pub seed: u64,
    pub model: ModelChoice,
    pub groove_model: GrooveModelChoice,
    /// The key and scale melodies are fitted into.
    pub scale: Option<ScaleLock>,
    /// The key set (in the scale's mode; major with `Scale` off): a chord model plays
    /// over its default progression when no chord is played.
    pub key: Key,
    /// The chord played in, with `Chord Input` on.
    pub chord: Option<Chord>,
    /// `Chord Fit`, 0 to 1, for models that do not read chords.
    pub chord_fit: f32,
    pub chord_follow: ChordFollow,
    /// Revisions of the persisted clips and model files: a capture, a restored project or
    /// another file changes them.
    pub clips_revision: u64,
    pub model_file_revision: u64,
    pub groove_file_revision: u64,
    /// The last scene recall, and the scenes' revision (a scene stored or cleared).
    pub cue: SceneCue,
    pub scenes_revision: u64,
    /// `Scene Glide`, in bars, and while a glide runs the song's bar the phrase takes
    /// over at (`i64::MAX` once the glide is over, or with none).
    pub glide_bars: u32,
    pub glide_at: i64,
}

impl ZRequest {
    /// A hash of the request (FNV-1a over its bits), allocation-free: rendering offline,
    /// the audio thread waits until the worker has delivered the phrase for this.
    pub fn fingerprint(&self) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        let mut mix = |x: u64| {
            hash ^= x;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        };
        let Controls {
            morph,
            pad_y,
            sliders,
            attributes,
            drift,
        } = &self.controls;
        for v in sliders
            .iter()
            .chain(attributes)
            .chain([&self.temperature, morph, pad_y])
        {
            mix(v.to_bits() as u64);
        }
        mix(self.seed);
        mix(self.model as u64);
        mix(self.groove_model as u64);
        mix(self
            .scale
            .map_or(0, |lock| 1 + lock.tonic as u64 + 12 * lock.scale as u64));
        mix(self.key.tonic as u64 + 12 * (self.key.mode == Mode::Minor) as u64);
        mix(Chord::code(self.chord) as u64);
        mix(self.chord_fit.to_bits() as u64);
        mix(self.chord_follow as u64);
        mix(self.clips_revision);
        mix(self.model_file_revision);
        mix(self.groove_file_revision);
        mix(self.cue.pack());
        mix(self.scenes_revision);
        mix(self.glide_bars as u64);
        mix(self.glide_at as u64);
        // Without drift the request is what it was before drift existed.
        if drift.amount != 0.0 {
            mix(drift.amount.to_bits() as u64);
            mix(drift.cycle_bars as u64);
            mix(drift.bar as u64);
        }
        hash
    }

    /// The request for the phrase that takes over at the song's bar `bar`: with drift,
    /// z is where the path is there; in a scene's glide, where the glide is; otherwise
    /// the bar changes nothing.
    pub fn at_bar(mut self, bar: i64) -> Self {
        if self.controls.drift.amount != 0.0 {
            self.controls.drift.bar = bar;
        }
        let gliding = self.cue.count != 0
            && (self.cue.bar..self.cue.bar.saturating_add(self.glide_bars as i64)).contains(&bar);
        self.glide_at = if gliding { bar } else { i64::MAX };
        self
    }

    /// How far a scene's glide has come at the bar the phrase takes over at: from 1 / n
    /// at its first bar to 1 at its last (n: `Scene Glide`), and 1 with no glide.
    pub fn glide(&self) -> f32 {
        if self.glide_at == i64::MAX || self.glide_bars == 0 {
            return 1.0;
        }
        ((self.glide_at - self.cue.bar + 1) as f32 / self.glide_bars as f32).clamp(0.0, 1.0)
    }
}
