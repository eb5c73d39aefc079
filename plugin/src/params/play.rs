//! How the phrase is played, read by the audio thread (and the editor) through
//! [`Playback`]: pitch, level, length, swap point, MIDI channels, and the drums' notes and
//! feel; and the key and scale melodies keep to, which the worker fits each phrase into
//! ([`PitchParams::lock`]).

use nice_plug::prelude::*;

use latent_live_core::music::drums::{self, Hit};
use latent_live_core::music::key::{Key, Mode, Scale, ScaleLock};
use latent_live_core::music::phrase::PhraseNote;
use latent_live_core::music::Encoding;

use crate::params::{share, GrooveModelChoice, LatentLiveParams, SwapMode};

#[derive(Params)]
pub struct PlayParams {
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
}

impl Default for PlayParams {
    fn default() -> Self {
        Self {
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
        }
    }
}

/// The key and scale every melody note keeps to (drums are never touched).
#[derive(Params)]
pub struct PitchParams {
    #[id = "key"]
    pub key: EnumParam<KeyName>,
    #[id = "scale"]
    pub scale: EnumParam<ScaleChoice>,
}

impl Default for PitchParams {
    fn default() -> Self {
        Self {
            key: EnumParam::new("Key", KeyName::C),
            scale: EnumParam::new("Scale", ScaleChoice::Off),
        }
    }
}

impl PitchParams {
    /// The key set, in the mode of the scale (major with `Scale` off).
    pub fn key(&self) -> Key {
        Key {
            tonic: self.key.value() as u8,
            mode: self.scale.value().scale().map_or(Mode::Major, Scale::mode),
        }
    }

    /// The key and scale set, or `None` with `Scale` off.
    pub fn lock(&self) -> Option<ScaleLock> {
        Some(ScaleLock {
            tonic: self.key.value() as u8,
            scale: self.scale.value().scale()?,
        })
    }
}

/// A key's tonic, C to B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum KeyName {
    #[id = "c"]
    C,
    #[id = "cs"]
    #[name = "C#"]
    CSharp,
    #[id = "d"]
    D,
    #[id = "eb"]
    #[name = "Eb"]
    EFlat,
    #[id = "e"]
    E,
    #[id = "f"]
    F,
    #[id = "fs"]
    #[name = "F#"]
    FSharp,
    #[id = "g"]
    G,
    #[id = "ab"]
    #[name = "Ab"]
    AFlat,
    #[id = "a"]
    A,
    #[id = "bb"]
    #[name = "Bb"]
    BFlat,
    #[id = "b"]
    B,
}

/// `Scale`: off, or one of [`Scale::ALL`], in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ScaleChoice {
    #[id = "off"]
    Off,
    #[id = "major"]
    Major,
    #[id = "nmin"]
    #[name = "Natural minor"]
    NaturalMinor,
    #[id = "hmin"]
    #[name = "Harmonic minor"]
    HarmonicMinor,
    #[id = "mmin"]
    #[name = "Melodic minor"]
    MelodicMinor,
    #[id = "dorian"]
    Dorian,
    #[id = "phryg"]
    Phrygian,
    #[id = "lydian"]
    Lydian,
    #[id = "mixo"]
    Mixolydian,
    #[id = "majpen"]
    #[name = "Major pentatonic"]
    MajorPentatonic,
    #[id = "minpen"]
    #[name = "Minor pentatonic"]
    MinorPentatonic,
    #[id = "blues"]
    Blues,
}

impl ScaleChoice {
    pub fn scale(self) -> Option<Scale> {
        (self as usize).checked_sub(1).map(|i| Scale::ALL[i])
    }
}

#[derive(Params)]
pub struct DrumParams {
    /// The MIDI channel a drum model's phrase is sent on (GM's 10 by default).
    #[id = "dchan"]
    pub channel: IntParam,
    /// The note each drum class plays, in [`drums::CLASSES`] order.
    #[nested(array, group = "Drum Notes")]
    pub notes: [DrumNote; drums::NUM_DRUM_CLASSES],
    /// How much of the groove model's feel drum phrases play with: 0 the quantized
    /// pattern at its accents, 1 the humanized velocities and timing.
    #[id = "groove"]
    pub groove: FloatParam,
    #[id = "gmodel"]
    pub groove_model: EnumParam<GrooveModelChoice>,
}

impl Default for DrumParams {
    fn default() -> Self {
        Self {
            channel: IntParam::new(
                "Drum Channel",
                drums::GM_CHANNEL as i32 + 1,
                IntRange::Linear { min: 1, max: 16 },
            ),
            notes: std::array::from_fn(DrumNote::new),
            groove: share("Groove"),
            groove_model: EnumParam::new("Groove Model", GrooveModelChoice::Humanize2Bar),
        }
    }
}

impl DrumParams {
    /// The note each drum class plays now, in [`drums::CLASSES`] order.
    pub fn note_values(&self) -> [u8; drums::NUM_DRUM_CLASSES] {
        std::array::from_fn(|c| self.notes[c].note.value().clamp(0, 127) as u8)
    }
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

/// Playback settings applied to the phrase as it plays (read from the params each block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Semitones, or scale steps with a scale set.
    pub transpose: i32,
    pub octave: i32,
    /// Semitones a melody moves after all that: to the trigger note (`Play` on Note
    /// Trigger), 0 otherwise.
    pub shift: i32,
    /// The key and scale melodies keep to: `transpose` walks its steps.
    pub scale: Option<ScaleLock>,
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
            transpose: 0,
            octave: 0,
            shift: 0,
            scale: None,
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
        let play = &params.play;
        Self {
            transpose: play.transpose.value(),
            octave: play.octave.value(),
            shift: 0,
            scale: params.pitch.lock(),
            velocity: play.velocity.value() as f32 / 127.0,
            length: play.length.value(),
            swap: play.swap.value(),
            bypass: params.bypass.value(),
            channel: (play.channel.value() - 1).clamp(0, 15) as u8,
            drum_channel: (params.drums.channel.value() - 1).clamp(0, 15) as u8,
            drum_notes: params.drums.note_values(),
            groove: params.drums.groove.value(),
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

    /// The key a phrase pitch sounds as: moved by `transpose` semitones, or scale steps
    /// with a scale set, by `octave` octaves, and by `shift`.
    pub fn key(&self, pitch: u8) -> u8 {
        let transposed = match self.scale {
            Some(lock) => lock.step(pitch, self.transpose) as i32,
            None => (pitch as i32).saturating_add(self.transpose),
        };
        transposed
            .saturating_add(self.octave.saturating_mul(12))
            .saturating_add(self.shift)
            .clamp(0, 127) as u8
    }

    /// How many 16th steps a note written `note.end - note.start` steps long sounds for
    /// (the next onset may still cut it).
    pub fn sounding_steps(&self, note: &PhraseNote) -> f64 {
        note.end.saturating_sub(note.start) as f64 * self.length.clamp(0.0, 16.0) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use latent_live_core::model::{Config, ModelCard, ModelFile, Sampling};
    use latent_live_core::music::melody;

    #[test]
    fn every_melody_note_sounds_in_the_key_and_scale() {
        // A random model writes anything; every scale of every key must hold all of it,
        // through the fit and then every transposition in scale steps.
        let model = ModelFile::random(
            Config::tiny(2, false),
            ModelCard::default(),
            Default::default(),
        )
        .unwrap()
        .model(&Device::Cpu)
        .unwrap();
        let z = Tensor::randn(0f32, 1.0, (1000, model.config.z_size), &Device::Cpu).unwrap();
        let mut phrases = Vec::new();
        for temperature in [0.0, 0.5, 1.0, 2.0] {
            for events in model.decode(&z, Sampling::new(temperature, 11)).unwrap() {
                phrases.push(melody::decode(&events));
            }
        }
        let notes: usize = phrases.iter().map(Vec::len).sum();
        assert!(notes > 10_000, "the phrases hold notes to fit: {notes}");
        for scale in Scale::ALL {
            for tonic in 0..12 {
                let lock = ScaleLock { tonic, scale };
                for phrase in &phrases {
                    let mut fitted = phrase.clone();
                    lock.fit(&mut fitted);
                    for transpose in [-5, 0, 3] {
                        let play = Playback {
                            transpose,
                            octave: 1,
                            scale: Some(lock),
                            ..Playback::default()
                        };
                        for n in &fitted {
                            let key = play.key(n.pitch);
                            assert!(
                                lock.contains(key),
                                "{scale:?} on {tonic}: {} as {key}",
                                n.pitch
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn scale_choices_are_the_scales_in_order() {
        assert_eq!(ScaleChoice::Off.scale(), None);
        assert_eq!(ScaleChoice::Major.scale(), Some(Scale::Major));
        assert_eq!(ScaleChoice::Blues.scale(), Some(Scale::Blues));
        assert_eq!(ScaleChoice::variants().len(), Scale::ALL.len() + 1);
        for (i, scale) in Scale::ALL.iter().enumerate() {
            assert_eq!(ScaleChoice::variants()[i + 1], scale.name());
        }
    }
}
