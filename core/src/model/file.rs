//! Model files: safetensors weights with the config, the model card and the analysis
//! results in the header's metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, MusicVae};
use crate::files::read_capped;

/// The largest model file read: more than twice Magenta's largest melody checkpoints
/// (about 200 MB as float32).
pub const MAX_MODEL_BYTES: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a model file (safetensors header unreadable, or the file is truncated): {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error(
        "model file has no `{0}` metadata; it is not a Latent Live model (Magenta checkpoints \
         need `cargo xtask import-magenta` first)"
    )]
    MissingMetadata(&'static str),
    #[error("model file has invalid `{key}` metadata: {source}")]
    Metadata {
        key: &'static str,
        source: serde_json::Error,
    },
    #[error("model weights do not match the config: {0}")]
    Weights(candle_core::Error),
    #[error("model file has an invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error("model file stores `{tensor}` as {dtype:?}; weights are floating point")]
    Dtype {
        tensor: String,
        dtype: safetensors::Dtype,
    },
    #[error("model file's `{0}` holds NaN or infinite values")]
    NotFinite(String),
    #[error("model file has invalid `{key}` metadata: {reason}")]
    BadMetadata { key: &'static str, reason: String },
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

/// A model file in memory: weights plus metadata (a clone shares the tensors).
#[derive(Clone)]
pub struct ModelFile {
    pub config: Config,
    pub card: ModelCard,
    /// Other metadata (`kl_per_dim`, `neuron_ranking`, ...), JSON values by key.
    pub extra: BTreeMap<String, String>,
    pub tensors: HashMap<String, Tensor>,
    /// `xxh3-` and 16 hex digits: a hash of the config and of every tensor's name, shape
    /// and float32 values, and of nothing else (not the card, not the analysis results).
    /// Clips remember it: a clip's mu is reused only with the very weights that encoded
    /// it, and re-encoded from its notes under any other model, whatever its name. The
    /// same weights give the same hash whether read from a file or built in memory, and
    /// the same file rounded to f16 gives another.
    pub hash: String,
}

impl ModelFile {
    /// Validates the config, refuses weights that are not finite, and hashes the weights.
    pub fn new(
        config: Config,
        card: ModelCard,
        extra: BTreeMap<String, String>,
        tensors: HashMap<String, Tensor>,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let hash = content_hash(&config, &tensors)?;
        Ok(Self {
            config,
            card,
            extra,
            tensors,
            hash,
        })
    }

    /// A model of `config` with freshly initialised, unseeded weights: the tiny models
    /// that tests and fuzz seeds load.
    pub fn random(
        config: Config,
        card: ModelCard,
        extra: BTreeMap<String, String>,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        MusicVae::new(config.clone(), vb).map_err(ModelError::Weights)?;
        let tensors = varmap
            .data()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        Self::new(config, card, extra, tensors)
    }

    /// Reads a file of at most [`MAX_MODEL_BYTES`], if it is a regular file (see
    /// [`read_capped`]).
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = read_capped(path, MAX_MODEL_BYTES).map_err(|source| ModelError::Io {
            path: path.into(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
        let mut extra: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let config_json = extra
            .remove("config")
            .ok_or(ModelError::MissingMetadata("config"))?;
        let config: Config =
            serde_json::from_str(&config_json).map_err(|source| ModelError::Metadata {
                key: "config",
                source,
            })?;
        // Before any tensor is loaded, so that what a file asks for is bounded first.
        config.validate()?;
        let card = match extra.remove("card") {
            Some(json) => serde_json::from_str(&json).map_err(|source| ModelError::Metadata {
                key: "card",
                source,
            })?,
            None => ModelCard::default(),
        };
        let file = safetensors::SafeTensors::deserialize(bytes)?;
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                // Integers widened to f32 would take up to 4 times the file's size in memory.
                if !matches!(
                    view.dtype(),
                    safetensors::Dtype::F16
                        | safetensors::Dtype::BF16
                        | safetensors::Dtype::F32
                        | safetensors::Dtype::F64
                ) {
                    return Err(ModelError::Dtype {
                        dtype: view.dtype(),
                        tensor: name,
                    });
                }
                let tensor = view
                    .load(&Device::Cpu)
                    .and_then(|t| t.to_dtype(DType::F32))
                    .map_err(ModelError::Weights)?;
                Ok((name, tensor))
            })
            .collect::<Result<_, _>>()?;
        Self::new(config, card, extra, tensors)
    }

    /// Serialises with the weights stored as `dtype` (F16 for shipped models).
    pub fn to_bytes(&self, dtype: DType) -> Result<Vec<u8>, ModelError> {
        // JSON has no NaN: serde would write `null`, and the file would not load again.
        if let Some((name, _)) = self.card.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::BadMetadata {
                key: "card",
                reason: format!("metric `{name}` is not a finite number"),
            });
        }
        let tensors = self
            .tensors
            .iter()
            .map(|(name, t)| Ok((name.clone(), t.to_dtype(dtype)?)))
            .collect::<candle_core::Result<BTreeMap<_, _>>>()
            .map_err(ModelError::Weights)?;
        let mut metadata: HashMap<String, String> = self.extra.clone().into_iter().collect();
        metadata.insert(
            "config".into(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        metadata.insert(
            "card".into(),
            serde_json::to_string(&self.card).expect("card serialises"),
        );
        Ok(safetensors::serialize(tensors, Some(metadata))?)
    }

    pub fn write(&self, path: &Path, dtype: DType) -> Result<(), ModelError> {
        let bytes = self.to_bytes(dtype)?;
        // Write then rename, so that a crash never leaves half a checkpoint behind.
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| ModelError::Io {
                path: path.into(),
                source,
            })
    }

    pub fn model(&self, device: &Device) -> Result<MusicVae, ModelError> {
        let vb = VarBuilder::from_tensors(self.tensors.clone(), DType::F32, device);
        MusicVae::new(self.config.clone(), vb).map_err(ModelError::Weights)
    }

    /// A metadata value parsed from JSON, if present.
    pub fn extra_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, ModelError> {
        self.extra
            .get(key)
            .map(|json| {
                serde_json::from_str(json).map_err(|source| ModelError::Metadata { key, source })
            })
            .transpose()
    }
}

/// See [`ModelFile::hash`]. Refuses a tensor with a NaN or an infinity on the way: no
/// weight of a model that decodes is either.
fn content_hash(config: &Config, tensors: &HashMap<String, Tensor>) -> Result<String, ModelError> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(
        serde_json::to_string(config)
            .expect("config serialises")
            .as_bytes(),
    );
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut bytes = Vec::new();
    for name in names {
        let tensor = &tensors[name];
        let values = tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .map_err(ModelError::Weights)?;
        if !values.iter().all(|v| v.is_finite()) {
            return Err(ModelError::NotFinite(name.clone()));
        }
        // Lengths first, so that no two different lists of tensors hash the same bytes.
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(&(tensor.rank() as u64).to_le_bytes());
        tensor
            .dims()
            .iter()
            .for_each(|&d| hasher.update(&(d as u64).to_le_bytes()));
        for chunk in values.chunks(16 * 1024) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            hasher.update(&bytes);
        }
    }
    Ok(format!("xxh3-{:016x}", hasher.digest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Fresh random weights each call.
    fn tiny() -> ModelFile {
        ModelFile::random(
            Config::tiny(2, false),
            ModelCard::default(),
            BTreeMap::new(),
        )
        .unwrap()
    }

    #[test]
    fn the_hash_follows_the_weights_and_nothing_else() {
        let file = tiny();
        let bytes = file.to_bytes(DType::F32).unwrap();
        let read = ModelFile::from_bytes(&bytes).unwrap();
        assert!(
            read.hash.starts_with("xxh3-") && read.hash.len() == 21,
            "{}",
            read.hash
        );
        assert_eq!(read.hash, file.hash, "read back, or built in memory");
        assert_eq!(
            ModelFile::from_bytes(&bytes).unwrap().hash,
            read.hash,
            "the same bytes"
        );
        assert_ne!(tiny().hash, file.hash, "other weights");

        // The first weight's lowest byte: a change in the last place of one value.
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut flipped = bytes.clone();
        flipped[8 + header] ^= 1;
        assert_ne!(
            ModelFile::from_bytes(&flipped).unwrap().hash,
            read.hash,
            "one byte flipped"
        );

        let f16 = ModelFile::from_bytes(&file.to_bytes(DType::F16).unwrap()).unwrap();
        assert_ne!(f16.hash, read.hash, "rounded to f16");
        let renamed = ModelFile {
            card: ModelCard {
                name: "renamed".into(),
                ..ModelCard::default()
            },
            ..read
        };
        assert_eq!(
            ModelFile::from_bytes(&renamed.to_bytes(DType::F32).unwrap())
                .unwrap()
                .hash,
            file.hash,
            "another card"
        );
    }

    #[test]
    fn weights_that_are_not_finite_are_refused() {
        let mut file = tiny();
        let name = "decoder.output_projection.bias".to_string();
        let bias = &file.tensors[&name];
        let poisoned = bias.ones_like().unwrap().affine(f64::NAN, 0.0).unwrap();
        file.tensors.insert(name.clone(), poisoned);
        let err = ModelFile::from_bytes(&file.to_bytes(DType::F32).unwrap())
            .err()
            .unwrap();
        assert!(
            matches!(&err, ModelError::NotFinite(n) if *n == name),
            "{err}"
        );
    }

    #[test]
    fn a_metric_that_is_not_a_number_is_refused_when_writing() {
        let mut file = tiny();
        file.card
            .metrics
            .insert("held_velocity_mae".into(), f64::NAN);
        let err = file.to_bytes(DType::F32).err().unwrap();
        assert!(
            matches!(&err, ModelError::BadMetadata { key: "card", reason } if reason.contains("held_velocity_mae")),
            "{err}"
        );
    }

    #[test]
    fn a_bad_config_is_refused_before_any_weight_is_read() {
        let mut file = tiny();
        file.config.bars = 1 << 40;
        let err = ModelFile::from_bytes(&file.to_bytes(DType::F32).unwrap())
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                ModelError::Config(ConfigError::OutOfRange { field: "bars", .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn integer_tensors_are_refused() {
        let file = tiny();
        let mut tensors: BTreeMap<String, Tensor> = file.tensors.into_iter().collect();
        tensors.insert(
            "step".into(),
            Tensor::zeros(1000, DType::U8, &Device::Cpu).unwrap(),
        );
        let config = HashMap::from([(
            "config".to_string(),
            serde_json::to_string(&file.config).unwrap(),
        )]);
        let err = ModelFile::from_bytes(&safetensors::serialize(tensors, Some(config)).unwrap())
            .err()
            .unwrap();
        assert!(
            matches!(&err, ModelError::Dtype { tensor, .. } if tensor == "step"),
            "{err}"
        );
    }
}
