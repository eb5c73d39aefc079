//! The plugin's parameters: every way of moving z, and how the phrase is played.
//!
//! IDs are at most 6 characters and are never renamed (hosts store automation by them).
//! The inference worker polls the values that decide z and sampling ([`LatentLiveParams::z_request`]);
//! the audio thread reads the playback ones.

use nice_plug::prelude::*;

/// Number of latent sliders. They move the model's most informative dims, best first.
pub const NUM_SLIDERS: usize = 8;
/// Slider range, in units of the prior's sigma (z ~ N(0, 1)).
pub const SLIDER_SIGMAS: f32 = 3.0;
pub const MAX_TEMPERATURE: f32 = 1.5;
pub const MAX_SEED: i32 = 9999;

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

    /// Audition synth: lets the plugin be heard without a second instrument.
    #[id = "synth"]
    pub synth: BoolParam,
    #[id = "gain"]
    pub gain: FloatParam,
    /// The host's bypass: ends the sounding note, then stays silent.
    #[id = "bypass"]
    pub bypass: BoolParam,
}

/// Everything that decides which phrase the worker decodes, as read at one instant.
/// The worker compares successive requests to know when to decode again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZRequest {
    pub sliders: [f32; NUM_SLIDERS],
    pub temperature: f32,
    pub seed: u64,
    pub morph: f32,
}

pub fn slider_range() -> FloatRange {
    FloatRange::Linear { min: -SLIDER_SIGMAS, max: SLIDER_SIGMAS }
}

fn latent_slider(index: usize) -> FloatParam {
    FloatParam::new(format!("Latent {}", index + 1), 0.0, slider_range())
        .with_step_size(0.01)
        .with_unit(" σ")
}

impl Default for LatentLiveParams {
    fn default() -> Self {
        Self {
            lat1: latent_slider(0),
            lat2: latent_slider(1),
            lat3: latent_slider(2),
            lat4: latent_slider(3),
            lat5: latent_slider(4),
            lat6: latent_slider(5),
            lat7: latent_slider(6),
            lat8: latent_slider(7),
            temperature: FloatParam::new("Temperature", 0.0, FloatRange::Linear { min: 0.0, max: MAX_TEMPERATURE })
                .with_step_size(0.01),
            seed: IntParam::new("Variation", 0, IntRange::Linear { min: 0, max: MAX_SEED }),
            morph: FloatParam::new("Morph A-B", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            transpose: IntParam::new("Transpose", 0, IntRange::Linear { min: -12, max: 12 }).with_unit(" st"),
            octave: IntParam::new("Octave", 0, IntRange::Linear { min: -3, max: 3 }),
            velocity: IntParam::new("Velocity", 100, IntRange::Linear { min: 1, max: 127 }),
            length: FloatParam::new("Note Length", 1.0, FloatRange::Linear { min: 0.1, max: 2.0 })
                .with_step_size(0.01)
                .with_unit("x"),
            swap: EnumParam::new("Swap", SwapMode::NextBar),
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
        }
    }
}

impl LatentLiveParams {
    pub fn sliders(&self) -> [&FloatParam; NUM_SLIDERS] {
        [&self.lat1, &self.lat2, &self.lat3, &self.lat4, &self.lat5, &self.lat6, &self.lat7, &self.lat8]
    }

    pub fn slider_values(&self) -> [f32; NUM_SLIDERS] {
        self.sliders().map(|p| p.value())
    }

    /// What the worker needs to decide whether to decode again.
    pub fn z_request(&self) -> ZRequest {
        ZRequest {
            sliders: self.slider_values(),
            temperature: self.temperature.value(),
            seed: self.seed.value().max(0) as u64,
            morph: self.morph.value(),
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
        assert_eq!(ids.len(), NUM_SLIDERS + 11);
        assert!(ids.iter().all(|id| id.len() <= 6), "{ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), NUM_SLIDERS + 11);
        assert!(ids.contains(&"lat8") && ids.contains(&"swap") && ids.contains(&"gain"));
    }

    #[test]
    fn defaults_leave_z_at_the_origin_and_greedy() {
        let r = LatentLiveParams::default().z_request();
        assert_eq!(r.sliders, [0.0; NUM_SLIDERS]);
        assert_eq!(r.temperature, 0.0);
        assert_eq!(r.morph, 0.0);
    }
}
