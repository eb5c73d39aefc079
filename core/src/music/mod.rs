//! Music as the model sees it: the 16th-note melody and drum encodings, their musical
//! attributes, keys, scales and chords, and MIDI files in and out.

pub mod attributes;
pub mod chord;
pub mod drums;
pub mod groove;
pub mod key;
pub mod melody;
pub mod midi;
pub mod phrase;

use serde::{Deserialize, Serialize};

/// One step of an encoded phrase: a class index of the model's encoding (90 melody
/// classes, or 512 drum combinations).
pub type Event = u16;

/// What a model's classes mean (Magenta's data converters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `MelodyConverter`: one monophonic voice, 90 classes.
    #[default]
    Melody,
    /// `DrumsConverter`: 9 drum classes, one of 512 combinations per step.
    Drums,
    /// `GrooveConverter`: the drum classes' hits, velocities and offsets per step
    /// ([`groove::ROW`] values); its events are the hits, as drum combinations.
    Groove,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Melody => "melody",
            Encoding::Drums => "drums",
            Encoding::Groove => "groove",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Encoding::Melody, Encoding::Drums, Encoding::Groove]
            .into_iter()
            .find(|e| e.name() == name)
    }

    /// The decoder's output classes.
    pub fn num_classes(self) -> usize {
        match self {
            Encoding::Melody => melody::NUM_CLASSES,
            Encoding::Drums | Encoding::Groove => drums::NUM_CLASSES,
        }
    }

    /// A text picture of a phrase: a piano roll, or a drum grid.
    pub fn render(self, events: &[Event]) -> String {
        match self {
            Encoding::Melody => melody::piano_roll(events),
            Encoding::Drums | Encoding::Groove => drums::grid(events),
        }
    }

    /// `true` for an event that sounds something new: a note onset or a drum hit.
    pub fn is_onset(self, event: Event) -> bool {
        match self {
            Encoding::Melody => melody::class_pitch(event).is_some(),
            Encoding::Drums | Encoding::Groove => event != drums::NO_HITS,
        }
    }

    /// `true` for the encodings played on a drum kit.
    pub fn is_drums(self) -> bool {
        matches!(self, Encoding::Drums | Encoding::Groove)
    }
}
