//! The plugin's parameters, in groups by who reads them: [`latent`] (what moves z, read
//! by the worker through [`ZRequest`]), [`play`] (how the phrase is played, read by the
//! audio thread through [`Playback`]), [`chords`] (the chords played in: heard by the
//! audio thread, played over by the worker), [`start`] (what starts the phrase), and
//! here the model choice, capture, the audition synth and the state the project persists.
//!
//! IDs are at most 6 characters and are never renamed (hosts store automation by them);
//! `ids_are_the_released_ones` pins every one, in order. The groups are the host's
//! folders: they change no id.

pub mod chords;
pub mod latent;
pub mod play;
pub mod scenes;
pub mod start;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use nice_plug::prelude::*;

pub use chords::{ChordFollow, ChordInput, ChordParams};
pub use latent::{
    DriftParams, LatentParams, ZRequest, MAX_ATTRIBUTE, MAX_SEED, MAX_TEMPERATURE, SLIDER_SIGMAS,
};
pub use latent_live_core::model::latent::NUM_SLIDERS;
/// The attributes z can be pushed along, one parameter each, in this order.
pub use latent_live_core::music::attributes::{
    CONTROLLED as ATTRIBUTES, NUM_CONTROLLED as NUM_ATTRIBUTES,
};
pub use play::{DrumParams, KeyName, PitchParams, PlayParams, Playback, ScaleChoice};
pub use scenes::{SceneCue, SceneParams};
pub use start::{PlayMode, StartParams};

use crate::state::clips::{Clips, Persisted, Slot};
use crate::state::scenes::Scenes;
use crate::state::StateVersion;

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
    /// Pop melodies over the chords played (POP909). After `File`, so that the values
    /// hosts saved for the others keep their meaning.
    #[id = "p2ch"]
    #[name = "Pop 2-bar over chords"]
    Pop2BarChords,
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

#[derive(Params)]
pub struct LatentLiveParams {
    #[nested(group = "Latent")]
    pub latent: LatentParams,
    #[id = "model"]
    pub model: EnumParam<ModelChoice>,
    #[nested(group = "Capture")]
    pub capture: CaptureParams,
    #[nested(group = "Play")]
    pub play: PlayParams,
    #[nested(group = "Drums")]
    pub drums: DrumParams,
    #[nested(group = "Audition")]
    pub audition: AuditionParams,
    /// The host's bypass: ends the sounding note, then stays silent.
    #[id = "bypass"]
    pub bypass: BoolParam,
    #[nested(group = "Pitch")]
    pub pitch: PitchParams,
    #[nested(group = "Chords")]
    pub chords: ChordParams,
    #[nested(group = "Start")]
    pub start: StartParams,
    #[nested(group = "Drift")]
    pub drift: DriftParams,
    #[nested(group = "Pad")]
    pub pad: PadParams,
    #[nested(group = "Scenes")]
    pub scenes: SceneParams,

    /// The captured clips and their latent means.
    #[persist = "clips"]
    pub clips: Persisted<Clips>,
    /// The model file played when `model` is [`ModelChoice::File`].
    #[persist = "mfile"]
    pub model_file: Persisted<Option<String>>,
    /// The groove model file used when the groove model is [`GrooveModelChoice::File`].
    #[persist = "gfile"]
    pub groove_file: Persisted<Option<String>>,
    /// The eight scenes.
    #[persist = "scenes"]
    pub scene_store: Persisted<Scenes>,
    /// The state's version (see [`crate::state`]), and what restoring the project
    /// repaired or dropped.
    #[persist = "ver"]
    pub state_version: StateVersion,
}

/// Capture A and B, read by the audio thread's capturer.
#[derive(Params)]
pub struct CaptureParams {
    /// A rising edge captures clip A (a button in the editor, a footswitch via MIDI learn).
    #[id = "capa"]
    pub a: BoolParam,
    #[id = "capb"]
    pub b: BoolParam,
    #[id = "capsrc"]
    pub source: EnumParam<CaptureSource>,
    /// Presses of Capture A and B, counted where the host sets them: parameters reach
    /// `process()` once per block, so a press released within one block would be missed.
    pub presses: [Arc<AtomicU32>; 2],
}

impl Default for CaptureParams {
    fn default() -> Self {
        let presses = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
        Self {
            a: button("Capture A", &presses[0]),
            b: button("Capture B", &presses[1]),
            source: EnumParam::new("Capture From", CaptureSource::Input),
            presses,
        }
    }
}

/// The XY pad's top edge, added after the released parameters: the pad's Y, and the
/// Capture buttons of clips C and D, its top corners (its X is the A-B morph; A and B
/// are its bottom corners).
#[derive(Params)]
pub struct PadParams {
    /// 0 the pad's bottom edge (A-B), 1 its top edge (C-D).
    #[id = "pady2"]
    pub y: FloatParam,
    #[id = "capc"]
    pub capture_c: BoolParam,
    #[id = "capd"]
    pub capture_d: BoolParam,
    /// Presses of Capture C and D, as [`CaptureParams::presses`].
    pub presses: [Arc<AtomicU32>; 2],
}

impl Default for PadParams {
    fn default() -> Self {
        let presses = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
        Self {
            y: share("Pad Y (Morph AB-CD)"),
            capture_c: button("Capture C", &presses[0]),
            capture_d: button("Capture D", &presses[1]),
            presses,
        }
    }
}

/// The audition synth: lets the plugin be heard without a second instrument.
#[derive(Params)]
pub struct AuditionParams {
    #[id = "synth"]
    pub on: BoolParam,
    #[id = "gain"]
    pub gain: FloatParam,
}

impl Default for AuditionParams {
    fn default() -> Self {
        Self {
            on: BoolParam::new("Audition Synth", false),
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
        }
    }
}

/// A share from 0 to 100 %, starting at 0 (a morph, a pad axis, an amount).
fn share(name: &str) -> FloatParam {
    FloatParam::new(name, 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
        .with_unit(" %")
        .with_value_to_string(formatters::v2s_f32_percentage(0))
        .with_string_to_value(formatters::s2v_f32_percentage())
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
        Self {
            latent: LatentParams::default(),
            model: EnumParam::new("Model", ModelChoice::Folk2Bar),
            capture: CaptureParams::default(),
            play: PlayParams::default(),
            drums: DrumParams::default(),
            audition: AuditionParams::default(),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            pitch: PitchParams::default(),
            chords: ChordParams::default(),
            start: StartParams::default(),
            drift: DriftParams::default(),
            pad: PadParams::default(),
            scenes: SceneParams::default(),
            clips: Persisted::default(),
            model_file: Persisted::default(),
            groove_file: Persisted::default(),
            scene_store: Persisted::default(),
            state_version: StateVersion::default(),
        }
    }
}

/// A host value as the worker reads it: -0.0 and non-finite values are 0.0.
fn finite_or_zero(value: f32) -> f32 {
    if value.is_finite() {
        value + 0.0
    } else {
        0.0
    }
}

impl LatentLiveParams {
    /// The parameters the XY pad's axes move now (see [`LatentParams::pad_x`]).
    pub fn pad_axes(&self) -> (&FloatParam, &FloatParam) {
        let axis = |n: i32, own| match n {
            1.. => &self.latent.sliders[(n as usize - 1).min(NUM_SLIDERS - 1)],
            _ => own,
        };
        (
            axis(self.latent.pad_x.value(), &self.latent.morph),
            axis(self.latent.pad_y.value(), &self.pad.y),
        )
    }

    /// The Capture button of each clip, A to D, and the count of its presses.
    pub fn capture_button(&self, slot: Slot) -> (&BoolParam, &AtomicU32) {
        match slot {
            Slot::A => (&self.capture.a, &self.capture.presses[0]),
            Slot::B => (&self.capture.b, &self.capture.presses[1]),
            Slot::C => (&self.pad.capture_c, &self.pad.presses[0]),
            Slot::D => (&self.pad.capture_d, &self.pad.presses[1]),
        }
    }

    /// What the worker needs to decide whether to decode again.
    pub fn z_request(&self) -> ZRequest {
        let temperature = self.latent.temperature.value();
        ZRequest {
            controls: self.latent.controls(&self.drift, &self.pad),
            // As the controls.
            temperature: finite_or_zero(temperature),
            seed: self.latent.seed.value().max(0) as u64,
            model: self.model.value(),
            groove_model: self.drums.groove_model.value(),
            scale: self.pitch.lock(),
            key: self.pitch.key(),
            chord: self.chords.chord(),
            chord_fit: finite_or_zero(self.chords.fit.value()),
            chord_follow: self.chords.follow.value(),
            clips_revision: self.clips.revision(),
            model_file_revision: self.model_file.revision(),
            groove_file_revision: self.groove_file.revision(),
            cue: SceneCue::default(),
            scenes_revision: self.scene_store.revision(),
            glide_bars: self.scenes.glide.value().clamp(0, scenes::MAX_GLIDE) as u32,
            glide_at: i64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id and persisted key of the released builds, in order, and the ones added
    /// since at the end: hosts store automation and projects by them, so none may change,
    /// move or go.
    #[test]
    fn ids_are_the_released_ones() {
        let params = LatentLiveParams::default();
        let ids = crate::testing::param_ids(&params);
        let released = [
            "lat1", "lat2", "lat3", "lat4", "lat5", "lat6", "lat7", "lat8", "temp", "seed",
            "morph", "dens", "rhyth", "sync", "prange", "height", "contr", "kick", "snare", "hats",
            "toms", "cymb", "dsync", "bback", "fill", "padx", "pady", "model", "capa", "capb",
            "capsrc", "trans", "oct", "vel", "len", "swap", "chan", "thru", "dchan", "dn_1",
            "dn_2", "dn_3", "dn_4", "dn_5", "dn_6", "dn_7", "dn_8", "dn_9", "groove", "gmodel",
            "synth", "gain", "bypass", "key", "scale", "chin", "chch", "split", "chfol", "chthru",
            "chfit", "play", "trgch", "drift", "drrate", "pady2", "capc", "capd", "scene", "scnch",
            "scnnt", "sglide",
        ];
        assert_eq!(ids, released);
        assert!(ids.iter().all(|id| id.len() <= 6), "{ids:?}");
        let persisted: Vec<String> = params.serialize_fields().into_keys().collect();
        assert_eq!(persisted, ["clips", "gfile", "mfile", "scenes", "ver"]);
        // The groups are folders for the host, named once.
        let groups: Vec<String> = params.param_map().into_iter().map(|(_, _, g)| g).collect();
        assert_eq!(groups[0], "Latent/Sliders");
        assert_eq!(groups[11], "Latent/Attributes");
        assert_eq!(groups[27], "");
        assert_eq!(groups[39], "Drums/Drum Notes 1");
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
        assert_eq!(latent::parse_pad_axis("Latent 3", "Morph A-B"), Some(3));
        assert_eq!(latent::parse_pad_axis("morph a-b", "Morph A-B"), Some(0));
        assert_eq!(
            latent::parse_pad_axis("Morph AB-CD", "Morph AB-CD"),
            Some(0)
        );
        assert_eq!(latent::parse_pad_axis("Latent 99", "Morph A-B"), None);
    }

    #[test]
    fn equal_requests_have_equal_fingerprints() {
        let params = LatentLiveParams::default();
        let zero = params.z_request();
        // A stepped slider rounds a value just below 0 to -0.0.
        let lat1 = &params.latent.sliders[0];
        crate::testing::set_normalized(lat1, lat1.preview_normalized(-0.004));
        assert_eq!(
            lat1.value().to_bits(),
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
