//! Model files: safetensors weights with the config, the model card and the analysis
//! results in the header's metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::{Config, MusicVae};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not a model file (safetensors header unreadable, or the file is truncated): {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("model file has no `{0}` metadata; it is not a Latent Live model (Magenta checkpoints need `cargo xtask import-magenta` first)")]
    MissingMetadata(&'static str),
    #[error("model file has invalid `{key}` metadata: {source}")]
    Metadata { key: &'static str, source: serde_json::Error },
    #[error("model weights do not match the config: {0}")]
    Weights(candle_core::Error),
}

/// What a musician or researcher needs to know about a shipped model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub summary: String,
    /// Where the training data came from, with licence notes.
    pub data: String,
    pub split: String,
    pub training: String,
    /// Held-out metrics by name, e.g. `teacher_forced`, `sampled`, `active_dims`.
    pub metrics: BTreeMap<String, f64>,
}

/// A model file in memory: weights plus metadata.
pub struct ModelFile {
    pub config: Config,
    pub card: ModelCard,
    /// Other metadata (`kl_per_dim`, `neuron_ranking`, ...), JSON values by key.
    pub extra: BTreeMap<String, String>,
    pub tensors: HashMap<String, Tensor>,
}

impl ModelFile {
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
        let file = safetensors::SafeTensors::deserialize(bytes)?;
        let mut extra: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let config_json = extra.remove("config").ok_or(ModelError::MissingMetadata("config"))?;
        let config = serde_json::from_str(&config_json).map_err(|source| ModelError::Metadata { key: "config", source })?;
        let card = match extra.remove("card") {
            Some(json) => serde_json::from_str(&json).map_err(|source| ModelError::Metadata { key: "card", source })?,
            None => ModelCard::default(),
        };
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| Ok((name, view.load(&Device::Cpu)?.to_dtype(DType::F32)?)))
            .collect::<candle_core::Result<_>>()
            .map_err(ModelError::Weights)?;
        Ok(Self { config, card, extra, tensors })
    }

    /// Serialises with the weights stored as `dtype` (F16 for shipped models).
    pub fn to_bytes(&self, dtype: DType) -> Result<Vec<u8>, ModelError> {
        let tensors = self
            .tensors
            .iter()
            .map(|(name, t)| Ok((name.clone(), t.to_dtype(dtype)?)))
            .collect::<candle_core::Result<BTreeMap<_, _>>>()
            .map_err(ModelError::Weights)?;
        let mut metadata: HashMap<String, String> = self.extra.clone().into_iter().collect();
        metadata.insert("config".into(), serde_json::to_string(&self.config).expect("config serialises"));
        metadata.insert("card".into(), serde_json::to_string(&self.card).expect("card serialises"));
        Ok(safetensors::serialize(tensors, Some(metadata))?)
    }

    pub fn write(&self, path: &Path, dtype: DType) -> Result<(), ModelError> {
        let bytes = self.to_bytes(dtype)?;
        // Write then rename, so that a crash never leaves half a checkpoint behind.
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| ModelError::Io { path: path.into(), source })
    }

    pub fn model(&self, device: &Device) -> Result<MusicVae, ModelError> {
        let vb = VarBuilder::from_tensors(self.tensors.clone(), DType::F32, device);
        MusicVae::new(self.config.clone(), vb).map_err(ModelError::Weights)
    }

    /// A metadata value parsed from JSON, if present.
    pub fn extra_json<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, ModelError> {
        self.extra
            .get(key)
            .map(|json| serde_json::from_str(json).map_err(|source| ModelError::Metadata { key, source }))
            .transpose()
    }
}
