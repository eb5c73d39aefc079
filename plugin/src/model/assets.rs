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
}

impl DefaultModel {
    pub const ALL: [DefaultModel; 4] = [DefaultModel::Flat2Bar, DefaultModel::Flat2BarAttributes, DefaultModel::Hier4Bar, DefaultModel::Groove2Bar];

    pub fn name(self) -> &'static str {
        match self {
            Self::Flat2Bar => "folk-2bar",
            Self::Flat2BarAttributes => "folk-2bar-ar",
            Self::Hier4Bar => "folk-4bar",
            Self::Groove2Bar => "groove-2bar",
        }
    }

    /// The embedded model called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn bytes(self) -> &'static [u8] {
        match self {
            Self::Flat2Bar => include_bytes!("../../../assets/folk-2bar.safetensors"),
            Self::Flat2BarAttributes => include_bytes!("../../../assets/folk-2bar-ar.safetensors"),
            Self::Hier4Bar => include_bytes!("../../../assets/folk-4bar.safetensors"),
            Self::Groove2Bar => include_bytes!("../../../assets/groove-2bar.safetensors"),
        }
    }

    pub fn load(self) -> Result<ModelFile, ModelError> {
        ModelFile::from_bytes(self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::latent::LatentSpace;

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
        assert!(hashes.iter().enumerate().all(|(i, h)| !hashes[..i].contains(h)), "{hashes:?}");
    }
}
