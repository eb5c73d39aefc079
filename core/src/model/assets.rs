//! The models shipped inside the binary, trained here by `cargo xtask train` (their cards
//! are in `assets/`).

use crate::model::{ModelError, ModelFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultModel {
    /// Flat 2-bar melody model, z = 128.
    Flat2Bar,
    /// The same, trained with attribute regularisation: z0..z3 follow note density,
    /// rhythmic complexity, pitch range and contour.
    Flat2BarAttributes,
    /// Hierarchical 4-bar melody model (a conductor plans each bar), z = 128.
    Hier4Bar,
    /// Flat 2-bar drum model from the Groove MIDI Dataset, z = 256.
    Groove2Bar,
    /// GrooVAE humanize, 2 bars: velocities and timing for a drum pattern's hits.
    Humanize2Bar,
    /// GrooVAE tap-to-drums, 2 bars: a beat from a tapped rhythm.
    Tap2Drum2Bar,
    /// Flat 2-bar melody model over chords (POP909), z = 128.
    Pop2BarChords,
}

impl DefaultModel {
    /// The pattern models, which the `Model` parameter plays.
    pub const ALL: [DefaultModel; 5] = [
        DefaultModel::Flat2Bar,
        DefaultModel::Flat2BarAttributes,
        DefaultModel::Hier4Bar,
        DefaultModel::Groove2Bar,
        DefaultModel::Pop2BarChords,
    ];
    /// The groove models, which play a drum pattern's feel and turn taps into beats.
    pub const GROOVES: [DefaultModel; 2] = [DefaultModel::Humanize2Bar, DefaultModel::Tap2Drum2Bar];

    pub fn name(self) -> &'static str {
        match self {
            Self::Flat2Bar => "folk-2bar",
            Self::Flat2BarAttributes => "folk-2bar-ar",
            Self::Hier4Bar => "folk-4bar",
            Self::Groove2Bar => "groove-2bar",
            Self::Humanize2Bar => "groove-humanize-2bar",
            Self::Tap2Drum2Bar => "tap2drum-2bar",
            Self::Pop2BarChords => "pop-2bar-chords",
        }
    }

    /// The embedded model called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::GROOVES)
            .find(|m| m.name() == name)
    }

    pub fn bytes(self) -> &'static [u8] {
        match self {
            Self::Flat2Bar => include_bytes!("../../../assets/folk-2bar.safetensors"),
            Self::Flat2BarAttributes => include_bytes!("../../../assets/folk-2bar-ar.safetensors"),
            Self::Hier4Bar => include_bytes!("../../../assets/folk-4bar.safetensors"),
            Self::Groove2Bar => include_bytes!("../../../assets/groove-2bar.safetensors"),
            Self::Humanize2Bar => {
                include_bytes!("../../../assets/groove-humanize-2bar.safetensors")
            }
            Self::Tap2Drum2Bar => include_bytes!("../../../assets/tap2drum-2bar.safetensors"),
            Self::Pop2BarChords => include_bytes!("../../../assets/pop-2bar-chords.safetensors"),
        }
    }

    /// The model file, checked as any file is.
    ///
    /// ```
    /// use latent_live_core::model::assets::DefaultModel;
    ///
    /// let file = DefaultModel::Flat2Bar.load()?;
    /// assert_eq!(file.config.bars, 2);
    /// # Ok::<(), latent_live_core::model::ModelError>(())
    /// ```
    pub fn load(self) -> Result<ModelFile, ModelError> {
        ModelFile::from_bytes(self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::latent::LatentSpace;

    #[test]
    fn every_embedded_model_passes_the_checks_a_model_file_gets() {
        let hashes: Vec<String> = DefaultModel::ALL
            .iter()
            .map(|m| {
                let file = m.load().unwrap_or_else(|e| panic!("{}: {e}", m.name()));
                file.model(&candle_core::Device::Cpu).unwrap();
                LatentSpace::of(&file).unwrap_or_else(|e| panic!("{}: {e}", m.name()));
                file.hash
            })
            .collect();
        assert!(
            hashes
                .iter()
                .enumerate()
                .all(|(i, h)| !hashes[..i].contains(h)),
            "{hashes:?}"
        );
    }

    #[test]
    fn the_embedded_groove_models_take_the_input_they_are_for() {
        use crate::model::GrooveInput;
        for (model, input) in DefaultModel::GROOVES
            .into_iter()
            .zip([GrooveInput::Humanize, GrooveInput::Tap])
        {
            let file = model
                .load()
                .unwrap_or_else(|e| panic!("{}: {e}", model.name()));
            assert_eq!(file.config.groove_input, input, "{}", model.name());
            file.model(&candle_core::Device::Cpu).unwrap();
        }
    }
}
