//! The plugin's parameters: every way of moving z, and how the phrase is played.
//!
//! IDs are at most 6 characters and are never renamed (hosts store automation by them).
//! The inference worker polls the values that decide z and sampling ([`LatentLiveParams::z_request`]);
//! the audio thread reads the playback ones.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use nice_plug::prelude::*;

use latent_live_core::model::latent::Controls;
use latent_live_core::music::drums::{self, Hit};
use latent_live_core::music::phrase::PhraseNote;
use latent_live_core::music::Encoding;

use crate::state::clips::{Clips, Persisted};
use crate::state::StateVersion;

/// Slider range, in sigmas of the slider's dim: its spread over real music when the
/// model has been analysed, else the prior's (z ~ N(0, 1)).
pub const SLIDER_SIGMAS: f32 = 3.0;
pub const MAX_TEMPERATURE: f32 = 1.5;
pub const MAX_SEED: i32 = 9999;
/// Attribute amounts move z by up to this many attribute vectors either way.
pub const MAX_ATTRIBUTE: f32 = 2.0;

pub use latent_live_core::model::latent::NUM_SLIDERS;
/// The attributes z can be pushed along, one parameter each, in this order.
pub use latent_live_core::music::attributes::{
    CONTROLLED as ATTRIBUTES, NUM_CONTROLLED as NUM_ATTRIBUTES,
};

/// Which model the worker plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ModelChoice {
    #[id = "f2bar"]
    #[name = "Folk 2-bar"]
    Folk2Bar,
    #[id = "f4bar"]
    #[name = "Folk 4-bar (hierarchical)"]
    Folk4Bar,
    /// Attribute-regularised: the attribute sliders move dedicated dimensions.
    #[id = "f2ar"]
    #[name = "Folk 2-bar, attribute axes"]
    Folk2BarAttributes,
    /// Drums from the Groove MIDI Dataset.
    #[id = "g2bar"]
    #[name = "Groove 2-bar (drums)"]
    Groove2Bar,
    /// The file in [`LatentLiveParams::model_file`].
    #[id = "file"]
    #[name = "Model File"]
    File,
}

/// Which groove model humanizes the drum phrases (the `Groove` amount sets how much).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum GrooveModelChoice {
    /// GrooVAE humanize, trained on the Groove MIDI Dataset.
    #[id = "h2bar"]
    #[name = "Humanize 2-bar"]
    Humanize2Bar,
    /// The file in [`LatentLiveParams::groove_file`].
    #[id = "file"]
    #[name = "Groove File"]
    File,
}

/// Where Capture A / B take their clip from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CaptureSource {
    /// The notes played into the plugin during the last phrase.
    #[id = "input"]
    #[name = "Played In"]
    Input,
    /// The phrase playing now.
    #[id = "play"]
    #[name = "Playing"]
    Playing,
    /// A rhythm tapped on any key, which the tap-to-drums model turns into a beat (drum
    /// models only).
    #[id = "tap"]
    #[name = "Tap"]
    Tap,
}

/// When a newly decoded phrase replaces the one playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum SwapMode {
    /// At the next 4/4 bar line of the host timeline.
    #[id = "bar"]
    #[name = "Next Bar"]
    NextBar,
    /// When the playing phrase loops back to its start.
    #[id = "phrase"]
    #[name = "Next Phrase"]
    NextPhrase,
    /// At the next 16th step.
    #[id = "now"]
    #[name = "Immediately"]
    Immediately,
}

/// The note one drum class plays: GM by default, any note for kits that are not GM.
#[derive(Params)]
pub struct DrumNote {
    #[id = "dn"]
    pub note: IntParam,
}

impl DrumNote {
    fn new(class: usize) -> Self {
        let c = &drums::CLASSES[class];
        Self {
            note: IntParam::new(
                format!("{} Note", c.name),
                drums::GM_NOTES[class] as i32,
                IntRange::Linear { min: 0, max: 127 },
            )
            .with_value_to_string(formatters::v2s_i32_key_formatter())
            .with_string_to_value(formatters::s2v_i32_key_formatter()),
        }
    }
}

#[derive(Params)]
pub struct LatentLiveParams {
    #[id = "lat1"]
    pub lat1: FloatParam,
    #[id = "lat2"]
    pub lat2: FloatParam,
    #[id = "lat3"]
    pub lat3: FloatParam,
    #[id = "lat4"]
    pub lat4: FloatParam,
    #[id = "lat5"]
    pub lat5: FloatParam,
    #[id = "lat6"]
    pub lat6: FloatParam,
    #[id = "lat7"]
    pub lat7: FloatParam,
    #[id = "lat8"]
    pub lat8: FloatParam,

    /// Sampling temperature; 0 decodes greedily (the same z always gives the same phrase).
    #[id = "temp"]
    pub temperature: FloatParam,
    /// Seed of the sampler when the temperature is above 0.
    #[id = "seed"]
    pub seed: IntParam,
    /// 0 = clip A, 1 = clip B (slerp between their means).
    #[id = "morph"]
    pub morph: FloatParam,

    /// Amounts along the model's attribute vectors ([`ATTRIBUTES`], in order).
    #[id = "dens"]
    pub note_density: FloatParam,
    #[id = "rhyth"]
    pub rhythm_complexity: FloatParam,
    #[id = "sync"]
    pub syncopation: FloatParam,
    #[id = "prange"]
    pub pitch_range: FloatParam,
    #[id = "height"]
    pub mean_pitch: FloatParam,
    #[id = "contr"]
    pub contour: FloatParam,
    #[id = "kick"]
    pub kick_density: FloatParam,
    #[id = "snare"]
    pub snare_density: FloatParam,
    #[id = "hats"]
    pub hat_density: FloatParam,
    #[id = "toms"]
    pub tom_density: FloatParam,
    #[id = "cymb"]
    pub cymbal_density: FloatParam,
    #[id = "dsync"]
    pub drum_syncopation: FloatParam,
    #[id = "bback"]
    pub backbeat: FloatParam,
    #[id = "fill"]
    pub fill: FloatParam,

    /// The editor's XY pad moves two of the controls above: X is the morph (0) or latent
    /// slider N, Y latent slider N. Automating the pad is automating those.
    #[id = "padx"]
    pub pad_x: IntParam,
    #[id = "pady"]
    pub pad_y: IntParam,

    #[id = "model"]
    pub model: EnumParam<ModelChoice>,
    /// A rising edge captures clip A (a button in the editor, a footswitch via MIDI learn).
    #[id = "capa"]
    pub capture_a: BoolParam,
    #[id = "capb"]
    pub capture_b: BoolParam,
    #[id = "capsrc"]
    pub capture_source: EnumParam<CaptureSource>,

    #[id = "trans"]
    pub transpose: IntParam,
    #[id = "oct"]
    pub octave: IntParam,
    #[id = "vel"]
    pub velocity: IntParam,
    /// Note length scale applied at playback.
    #[id = "len"]
    pub length: FloatParam,
    #[id = "swap"]
    pub swap: EnumParam<SwapMode>,

    /// The MIDI channel the phrase is sent on, 1 to 16.
    #[id = "chan"]
    pub channel: IntParam,
    /// Forwards the notes played in to the MIDI output (they are recorded for Capture
    /// either way).
    #[id = "thru"]
    pub thru: BoolParam,
    /// The MIDI channel a drum model's phrase is sent on (GM's 10 by default).
    #[id = "dchan"]
    pub drum_channel: IntParam,
    /// The note each drum class plays, in [`drums::CLASSES`] order.
    #[nested(array, group = "Drum Notes")]
    pub drum_notes: [DrumNote; drums::NUM_DRUM_CLASSES],

    /// How much of the groove model's feel drum phrases play with: 0 the quantized
    /// pattern at its accents, 1 the humanized velocities and timing.
    #[id = "groove"]
    pub groove: FloatParam,
    #[id = "gmodel"]
    pub groove_model: EnumParam<GrooveModelChoice>,

    /// Audition synth: lets the plugin be heard without a second instrument.
    #[id = "synth"]
    pub synth: BoolParam,
    #[id = "gain"]
    pub gain: FloatParam,
    /// The host's bypass: ends the sounding note, then stays silent.
    #[id = "bypass"]
    pub bypass: BoolParam,

    /// The captured clips and their latent means.
    #[persist = "clips"]
    pub clips: Persisted<Clips>,
    /// The model file played when `model` is [`ModelChoice::File`].
    #[persist = "mfile"]
    pub model_file: Persisted<Option<String>>,
    /// The groove model file used when `groove_model` is [`GrooveModelChoice::File`].
    #[persist = "gfile"]
    pub groove_file: Persisted<Option<String>>,
    /// The state's version (see [`crate::state`]), and what restoring the project
    /// repaired or dropped.
    #[persist = "ver"]
    pub state_version: StateVersion,

    /// Presses of Capture A and B, counted where the host sets them: parameters reach
    /// `process()` once per block, so a press released within one block would be missed.
    pub capture_presses: [Arc<AtomicU32>; 2],
}

/// Playback settings applied to the phrase as it plays (read from the params each block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Transpose plus 12 x octave.
    pub semitones: i32,
    /// Normalised 0..=1, as nice-plug's note events. Drum hits play their accent
    /// ([`drums::accent`]) scaled by it, 100 leaving the accent as it is.
    pub velocity: f32,
    /// Scales each note's length; notes still end at the next onset (monophonic).
    pub length: f32,
    pub swap: SwapMode,
    /// Bypassed: end the sounding note, then stay silent.
    pub bypass: bool,
    /// MIDI channel, 0 = channel 1.
    pub channel: u8,
    /// The channel drum phrases play on, 0-based (GM: 9).
    pub drum_channel: u8,
    /// The note each drum class plays.
    pub drum_notes: [u8; drums::NUM_DRUM_CLASSES],
    /// How much of a drum phrase's feel plays, 0 (the quantized pattern at its accents)
    /// to 1 (the humanizer's velocities and timing).
    pub groove: f32,
}

impl Default for Playback {
    fn default() -> Self {
        Self {
            semitones: 0,
            velocity: 100.0 / 127.0,
            length: 1.0,
            swap: SwapMode::NextBar,
            bypass: false,
            channel: 0,
            drum_channel: drums::GM_CHANNEL,
            drum_notes: drums::GM_NOTES,
            groove: 0.0,
        }
    }
}

impl Playback {
    /// The settings the parameters make now (atomics only: the audio thread reads them).
    pub fn from_params(params: &LatentLiveParams) -> Self {
        Self {
            semitones: params.transpose.value() + 12 * params.octave.value(),
            velocity: params.velocity.value() as f32 / 127.0,
            length: params.length.value(),
            swap: params.swap.value(),
            bypass: params.bypass.value(),
            channel: (params.channel.value() - 1).clamp(0, 15) as u8,
            drum_channel: (params.drum_channel.value() - 1).clamp(0, 15) as u8,
            drum_notes: params.drum_note_values(),
            groove: params.groove.value(),
        }
    }

    /// `(channel, key, velocity)` a note of a phrase in `encoding` sounds as. Drums are not
    /// transposed.
    pub fn voice(&self, encoding: Encoding, note: &PhraseNote) -> (u8, u8, f32) {
        match encoding {
            Encoding::Melody => (self.channel, self.key(note.pitch), self.velocity),
            Encoding::Drums | Encoding::Groove => {
                let accent = drums::accent(&Hit {
                    step: note.start as u32,
                    class: note.pitch,
                }) as f32;
                let felt = if note.velocity > 0 {
                    accent + (note.velocity as f32 - accent) * self.groove_amount()
                } else {
                    accent
                };
                let key = self
                    .drum_notes
                    .get(note.pitch as usize)
                    .copied()
                    .unwrap_or(0)
                    .min(127);
                (
                    self.drum_channel,
                    key,
                    (felt / 127.0 * self.velocity * 127.0 / 100.0).clamp(1.0 / 127.0, 1.0),
                )
            }
        }
    }

    /// Where a note sounds around its step, in steps (negative early): a drum hit's shift
    /// scaled by the groove amount (melodies play on the grid).
    pub fn shift_steps(&self, encoding: Encoding, note: &PhraseNote) -> f64 {
        match encoding {
            Encoding::Melody => 0.0,
            Encoding::Drums | Encoding::Groove if note.shift.is_finite() => {
                (note.shift.clamp(-0.5, 0.5) * self.groove_amount()) as f64
            }
            Encoding::Drums | Encoding::Groove => 0.0,
        }
    }

    /// The groove amount, NaN-safe.
    fn groove_amount(&self) -> f32 {
        if self.groove.is_finite() {
            self.groove.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The key a phrase pitch sounds as.
    pub fn key(&self, pitch: u8) -> u8 {
        (pitch as i32).saturating_add(self.semitones).clamp(0, 127) as u8
    }

    /// How many 16th steps a note written `note.end - note.start` steps long sounds for
    /// (the next onset may still cut it).
    pub fn sounding_steps(&self, note: &PhraseNote) -> f64 {
        note.end.saturating_sub(note.start) as f64 * self.length.clamp(0.0, 16.0) as f64
    }
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
    /// Revisions of the persisted clips and model files: a capture, a restored project or
    /// another file changes them.
    pub clips_revision: u64,
    pub model_file_revision: u64,
    pub groove_file_revision: u64,
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
            sliders,
            attributes,
        } = &self.controls;
        for v in sliders
            .iter()
            .chain(attributes)
            .chain([&self.temperature, morph])
        {
            mix(v.to_bits() as u64);
        }
        mix(self.seed);
        mix(self.model as u64);
        mix(self.groove_model as u64);
        mix(self.clips_revision);
        mix(self.model_file_revision);
        mix(self.groove_file_revision);
        hash
    }
}

pub fn slider_range() -> FloatRange {
    FloatRange::Linear {
        min: -SLIDER_SIGMAS,
        max: SLIDER_SIGMAS,
    }
}

fn attribute(name: &str) -> FloatParam {
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
}

fn latent_slider(index: usize) -> FloatParam {
    FloatParam::new(format!("Latent {}", index + 1), 0.0, slider_range())
        .with_step_size(0.01)
        .with_unit(" σ")
}

/// What an XY pad axis value names: 0 the morph, N latent slider N.
fn pad_axis_name(value: i32) -> String {
    if value == 0 {
        "Morph A-B".to_string()
    } else {
        format!("Latent {value}")
    }
}

/// The inverse of [`pad_axis_name`], also taking a plain number; `None` below `min`.
fn parse_pad_axis(text: &str, min: i32) -> Option<i32> {
    let text = text.trim();
    let value = if text.eq_ignore_ascii_case("Morph A-B") || text.eq_ignore_ascii_case("morph") {
        0
    } else {
        let number = text
            .strip_prefix("Latent")
            .or_else(|| text.strip_prefix("latent"))
            .unwrap_or(text);
        number.trim().parse().ok()?
    };
    (min..=NUM_SLIDERS as i32).contains(&value).then_some(value)
}

/// A button: counts its presses into `presses`.
fn button(name: &str, presses: &Arc<AtomicU32>) -> BoolParam {
    let presses = presses.clone();
    BoolParam::new(name, false).with_callback(Arc::new(move |on| {
        if on {
            presses.fetch_add(1, Ordering::AcqRel);
        }
    }))
}

impl Default for LatentLiveParams {
    fn default() -> Self {
        let capture_presses = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
        Self {
            lat1: latent_slider(0),
            lat2: latent_slider(1),
            lat3: latent_slider(2),
            lat4: latent_slider(3),
            lat5: latent_slider(4),
            lat6: latent_slider(5),
            lat7: latent_slider(6),
            lat8: latent_slider(7),
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
            morph: FloatParam::new("Morph A-B", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            note_density: attribute("Note Density"),
            rhythm_complexity: attribute("Rhythmic Complexity"),
            syncopation: attribute("Syncopation"),
            pitch_range: attribute("Pitch Range"),
            mean_pitch: attribute("Pitch Height"),
            contour: attribute("Contour"),
            kick_density: attribute("Kick Density"),
            snare_density: attribute("Snare Density"),
            hat_density: attribute("Hi-Hat Density"),
            tom_density: attribute("Tom Density"),
            cymbal_density: attribute("Cymbal Density"),
            drum_syncopation: attribute("Drum Syncopation"),
            backbeat: attribute("Backbeat"),
            fill: attribute("Fill"),
            pad_x: IntParam::new(
                "Pad X Axis",
                0,
                IntRange::Linear {
                    min: 0,
                    max: NUM_SLIDERS as i32,
                },
            )
            .with_value_to_string(Arc::new(pad_axis_name))
            .with_string_to_value(Arc::new(|s| parse_pad_axis(s, 0))),
            pad_y: IntParam::new(
                "Pad Y Axis",
                1,
                IntRange::Linear {
                    min: 1,
                    max: NUM_SLIDERS as i32,
                },
            )
            .with_value_to_string(Arc::new(pad_axis_name))
            .with_string_to_value(Arc::new(|s| parse_pad_axis(s, 1))),
            model: EnumParam::new("Model", ModelChoice::Folk2Bar),
            capture_a: button("Capture A", &capture_presses[0]),
            capture_b: button("Capture B", &capture_presses[1]),
            capture_source: EnumParam::new("Capture From", CaptureSource::Input),
            transpose: IntParam::new("Transpose", 0, IntRange::Linear { min: -12, max: 12 })
                .with_unit(" st"),
            octave: IntParam::new("Octave", 0, IntRange::Linear { min: -3, max: 3 }),
            velocity: IntParam::new("Velocity", 100, IntRange::Linear { min: 1, max: 127 }),
            length: FloatParam::new(
                "Note Length",
                1.0,
                FloatRange::Linear { min: 0.1, max: 2.0 },
            )
            .with_step_size(0.01)
            .with_unit("x"),
            swap: EnumParam::new("Swap", SwapMode::NextBar),
            channel: IntParam::new("MIDI Channel", 1, IntRange::Linear { min: 1, max: 16 }),
            // On: a riff played in to be captured is heard through the instrument the
            // output drives, which is where a musician listens.
            thru: BoolParam::new("MIDI Thru", true),
            drum_channel: IntParam::new(
                "Drum Channel",
                drums::GM_CHANNEL as i32 + 1,
                IntRange::Linear { min: 1, max: 16 },
            ),
            drum_notes: std::array::from_fn(DrumNote::new),
            groove: FloatParam::new("Groove", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            groove_model: EnumParam::new("Groove Model", GrooveModelChoice::Humanize2Bar),
            synth: BoolParam::new("Audition Synth", false),
            gain: FloatParam::new(
                "Synth Gain",
                util::db_to_gain(-12.0),
                FloatRange::Skewed {
                    min: util::db_to_gain(-60.0),
                    max: util::db_to_gain(0.0),
                    factor: FloatRange::gain_skew_factor(-60.0, 0.0),
                },
            )
            .with_smoother(SmoothingStyle::Logarithmic(50.0))
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            clips: Persisted::default(),
            model_file: Persisted::default(),
            groove_file: Persisted::default(),
            state_version: StateVersion::default(),
            capture_presses,
        }
    }
}

impl LatentLiveParams {
    pub fn sliders(&self) -> [&FloatParam; NUM_SLIDERS] {
        [
            &self.lat1, &self.lat2, &self.lat3, &self.lat4, &self.lat5, &self.lat6, &self.lat7,
            &self.lat8,
        ]
    }

    pub fn slider_values(&self) -> [f32; NUM_SLIDERS] {
        self.sliders().map(|p| p.value())
    }

    /// The parameters the XY pad's axes move now.
    pub fn pad_axes(&self) -> (&FloatParam, &FloatParam) {
        let sliders = self.sliders();
        let x = match self.pad_x.value() {
            n @ 1.. => sliders[(n as usize - 1).min(NUM_SLIDERS - 1)],
            _ => &self.morph,
        };
        (
            x,
            sliders[(self.pad_y.value().max(1) as usize - 1).min(NUM_SLIDERS - 1)],
        )
    }

    /// In the order of [`ATTRIBUTES`].
    pub fn attributes(&self) -> [&FloatParam; NUM_ATTRIBUTES] {
        [
            &self.note_density,
            &self.rhythm_complexity,
            &self.syncopation,
            &self.pitch_range,
            &self.mean_pitch,
            &self.contour,
            &self.kick_density,
            &self.snare_density,
            &self.hat_density,
            &self.tom_density,
            &self.cymbal_density,
            &self.drum_syncopation,
            &self.backbeat,
            &self.fill,
        ]
    }

    /// The note each drum class plays now, in [`drums::CLASSES`] order.
    pub fn drum_note_values(&self) -> [u8; drums::NUM_DRUM_CLASSES] {
        std::array::from_fn(|c| self.drum_notes[c].note.value().clamp(0, 127) as u8)
    }

    /// What the worker needs to decide whether to decode again.
    pub fn z_request(&self) -> ZRequest {
        // Equal requests must have equal fingerprints (the worker decodes when the
        // request changes; an offline render waits for the fingerprint): -0.0, which a
        // stepped parameter rounds to, becomes 0.0, and a non-finite value 0.0.
        let clean = |v: f32| if v.is_finite() { v + 0.0 } else { 0.0 };
        ZRequest {
            controls: Controls {
                morph: clean(self.morph.value()),
                sliders: self.slider_values().map(clean),
                attributes: self.attributes().map(|p| clean(p.value())),
            },
            temperature: clean(self.temperature.value()),
            seed: self.seed.value().max(0) as u64,
            model: self.model.value(),
            groove_model: self.groove_model.value(),
            clips_revision: self.clips.revision(),
            model_file_revision: self.model_file.revision(),
            groove_file_revision: self.groove_file.revision(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_unique() {
        let params = LatentLiveParams::default();
        let map = params.param_map();
        let mut ids: Vec<&str> = map.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(
            ids.len(),
            NUM_SLIDERS + NUM_ATTRIBUTES + 22 + drums::NUM_DRUM_CLASSES
        );
        assert!(ids.iter().all(|id| id.len() <= 6), "{ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            NUM_SLIDERS + NUM_ATTRIBUTES + 22 + drums::NUM_DRUM_CLASSES
        );
        assert!(ids.contains(&"dn_1") && ids.contains(&"dn_9") && ids.contains(&"dchan"));
        assert!(
            ids.contains(&"lat8")
                && ids.contains(&"swap")
                && ids.contains(&"capa")
                && ids.contains(&"model")
        );
        assert!(ids.contains(&"groove") && ids.contains(&"gmodel"));
    }

    #[test]
    fn every_shown_value_parses_back() {
        // What hosts check (clap-validator's param-conversions): text to value and back.
        let params = LatentLiveParams::default();
        for (id, ptr, _) in params.param_map() {
            // SAFETY: `params` owns the parameter and outlives the loop (so for every call
            // on `ptr` below).
            let steps = unsafe { ptr.step_count() }.unwrap_or(100).min(1000);
            for i in 0..=steps {
                let normalized = i as f32 / steps as f32;
                // SAFETY: as above.
                let text = unsafe { ptr.normalized_value_to_string(normalized, true) };
                // SAFETY: as above.
                let back = unsafe { ptr.string_to_normalized_value(&text) };
                // SAFETY: as above.
                let again = back.map(|n| unsafe { ptr.normalized_value_to_string(n, true) });
                assert_eq!(
                    again.as_deref(),
                    Some(text.as_str()),
                    "{id}: {text:?} does not parse back"
                );
            }
        }
        assert_eq!(parse_pad_axis("Latent 3", 1), Some(3));
        assert_eq!(parse_pad_axis("morph a-b", 0), Some(0));
        assert_eq!(parse_pad_axis("Morph A-B", 1), None);
        assert_eq!(parse_pad_axis("Latent 99", 1), None);
    }

    #[test]
    fn equal_requests_have_equal_fingerprints() {
        let params = LatentLiveParams::default();
        let zero = params.z_request();
        // A stepped slider rounds a value just below 0 to -0.0.
        crate::testing::set_normalized(&params.lat1, params.lat1.preview_normalized(-0.004));
        assert_eq!(
            params.lat1.value().to_bits(),
            (-0.0f32).to_bits(),
            "the case this guards"
        );
        let negative_zero = params.z_request();
        assert_eq!(negative_zero, zero);
        assert_eq!(negative_zero.fingerprint(), zero.fingerprint());
    }

    #[test]
    fn defaults_leave_z_at_the_origin_and_greedy() {
        let r = LatentLiveParams::default().z_request();
        assert_eq!(r.controls.sliders, [0.0; NUM_SLIDERS]);
        assert_eq!(r.temperature, 0.0);
        assert_eq!(r.controls.morph, 0.0);
    }
}
