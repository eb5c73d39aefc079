//! Which model the worker plays: the embedded ones or the file the user chose, read where
//! a slow or hostile file cannot hold the worker up, and tried before it replaces the
//! model playing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use candle_core::Device;

use crate::link::view::ModelInfo;
use crate::params::{GrooveModelChoice, ModelChoice};
use crate::worker::error::WorkerError;
use latent_live_core::model::assets::DefaultModel;
use latent_live_core::model::latent::{self, LatentSpace};
use latent_live_core::model::{GrooveInput, ModelFile, MusicVae, Sampling};
use latent_live_core::music::groove::Groove;
use latent_live_core::music::Encoding;

/// The models the worker asks its loader for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// The pattern model that plays (the `Model` parameter).
    Pattern(ModelChoice),
    /// The groove model that humanizes drum phrases (the `Groove Model` parameter).
    Humanizer(GrooveModelChoice),
    /// The tap-to-drums model, for `Capture From = Tap`.
    Tap2Drum,
}

/// Reads the model a source names: the embedded defaults, or a file.
pub type ModelLoader =
    Arc<dyn Fn(ModelSource, Option<&str>) -> Result<ModelFile, WorkerError> + Send + Sync>;

/// The embedded models and the chosen files' paths.
pub fn default_loader() -> ModelLoader {
    Arc::new(|source, path| {
        let embedded = match source {
            ModelSource::Pattern(ModelChoice::Folk2Bar) => DefaultModel::Flat2Bar,
            ModelSource::Pattern(ModelChoice::Folk4Bar) => DefaultModel::Hier4Bar,
            ModelSource::Pattern(ModelChoice::Folk2BarAttributes) => {
                DefaultModel::Flat2BarAttributes
            }
            ModelSource::Pattern(ModelChoice::Groove2Bar) => DefaultModel::Groove2Bar,
            ModelSource::Pattern(ModelChoice::Pop2BarChords) => DefaultModel::Pop2BarChords,
            ModelSource::Humanizer(GrooveModelChoice::Humanize2Bar) => DefaultModel::Humanize2Bar,
            ModelSource::Tap2Drum => DefaultModel::Tap2Drum2Bar,
            ModelSource::Pattern(ModelChoice::File)
            | ModelSource::Humanizer(GrooveModelChoice::File) => {
                return match path {
                    Some(path) => Ok(ModelFile::read(Path::new(path))?),
                    None => Err(WorkerError::NoFileChosen),
                };
            }
        };
        Ok(embedded.load()?)
    })
}

/// The model now playing and what the controls mean for it.
pub struct Loaded {
    pub model: MusicVae,
    pub space: LatentSpace,
    /// What the editor shows it as.
    pub name: String,
    /// What clips encoded by it remember: the exact weights.
    pub hash: String,
    pub info: Arc<ModelInfo>,
}

/// A groove model the worker holds: the humanizer or the tap-to-drums model.
pub struct LoadedGroove {
    pub model: MusicVae,
    pub name: String,
}

/// Reads the file `source` names off the worker's thread. `Ok(None)`: stopped meanwhile.
fn read(
    loader: &ModelLoader,
    source: ModelSource,
    path: Option<String>,
    stop: &AtomicBool,
) -> Result<Option<ModelFile>, WorkerError> {
    let read = {
        let loader = loader.clone();
        off_thread(stop, move || loader(source, path.as_deref()))
    };
    if stop.load(Ordering::Acquire) {
        return Ok(None);
    }
    Ok(Some(read??))
}

/// Reads and builds the groove model `source` names, which must take the input
/// `input` (hits to humanize, or taps), and runs it once. `Ok(None)`: stopped meanwhile.
pub fn load_groove(
    loader: &ModelLoader,
    source: ModelSource,
    input: GrooveInput,
    path: Option<String>,
    stop: &AtomicBool,
) -> Result<Option<LoadedGroove>, WorkerError> {
    let Some(file) = read(loader, source, path.clone(), stop)? else {
        return Ok(None);
    };
    if file.config.encoding != Encoding::Groove {
        return Err(WorkerError::NotGroove(file.config.encoding.name()));
    }
    if file.config.groove_input != input {
        return Err(WorkerError::GrooveInput {
            found: file.config.groove_input,
            wanted: input,
        });
    }
    let model = file.model(&Device::Cpu)?;
    let silence = Groove::quantized(&vec![0; model.config.steps()]);
    model
        .transform(&[&silence], Sampling::new(0.0, 0))
        .map_err(WorkerError::CannotDecode)?;
    let name = match path {
        Some(path) if matches!(source, ModelSource::Humanizer(GrooveModelChoice::File)) => path,
        _ if !file.card.name.is_empty() => file.card.name.clone(),
        _ => format!("{source:?}"),
    };
    Ok(Some(LoadedGroove { model, name }))
}

/// Runs blocking work (file reads and writes) on a thread of its own, so that a file on
/// a hung network share, or one that never ends, cannot keep the worker from stopping.
/// An error when `stop` was set first (the helper thread then finishes on its own) or
/// when the work panicked.
pub fn off_thread<T: Send + 'static>(
    stop: &AtomicBool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkerError> {
    let (done, result) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("latent-live-io".into())
        .spawn(move || {
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
        })
        .map_err(WorkerError::Thread)?;
    loop {
        match result.recv_timeout(Duration::from_millis(10)) {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(panic)) => return Err(WorkerError::Panic(panic_message(panic.as_ref()))),
            Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::Acquire) => continue,
            Err(_) => return Err(WorkerError::Stopped),
        }
    }
}

/// What a caught panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Reads and builds the model `choice` names, and decodes once with it: a model that
/// cannot decode never replaces one that can. `Ok(None)`: stopped meanwhile.
pub fn load(
    loader: &ModelLoader,
    choice: ModelChoice,
    path: Option<String>,
    stop: &AtomicBool,
) -> Result<Option<Loaded>, WorkerError> {
    let Some(file) = read(loader, ModelSource::Pattern(choice), path.clone(), stop)? else {
        return Ok(None);
    };
    if file.config.encoding == Encoding::Groove {
        return Err(WorkerError::Groove);
    }
    let space = LatentSpace::of(&file)?;
    let model = file.model(&Device::Cpu)?;
    let origin = vec![0.0; space.z_size];
    latent::z_tensor(&model, std::slice::from_ref(&origin))
        .and_then(|z| model.decode(&z, Sampling::new(0.0, 0)))
        .map_err(WorkerError::CannotDecode)?;
    let name = match (&path, choice) {
        (Some(path), ModelChoice::File) => path.clone(),
        _ if !file.card.name.is_empty() => file.card.name.clone(),
        _ => format!("{choice:?}"),
    };
    let info = Arc::new(ModelInfo::of(&name, &file.card, &space, &model));
    Ok(Some(Loaded {
        model,
        space,
        name,
        hash: file.hash.clone(),
        info,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_live_core::model::{Config, ModelCard};

    /// A loader that hands out one tiny random model of `config`, whatever is asked.
    fn serving(config: Config) -> ModelLoader {
        Arc::new(move |_, _| {
            Ok(ModelFile::random(
                config.clone(),
                ModelCard::default(),
                Default::default(),
            )?)
        })
    }

    #[test]
    fn a_groove_model_file_must_be_the_kind_asked_for() {
        let stop = AtomicBool::new(false);
        let groove = |input| Config {
            encoding: Encoding::Groove,
            groove_input: input,
            ..Config::tiny(2, false)
        };
        let humanizer = ModelSource::Humanizer(GrooveModelChoice::File);
        let path = || Some("/models/x.safetensors".to_string());
        let loaded = load_groove(
            &serving(groove(GrooveInput::Humanize)),
            humanizer,
            GrooveInput::Humanize,
            path(),
            &stop,
        )
        .unwrap()
        .unwrap();
        assert_eq!(loaded.name, "/models/x.safetensors");
        let refused = |config: Config| {
            load_groove(
                &serving(config),
                humanizer,
                GrooveInput::Humanize,
                path(),
                &stop,
            )
            .err()
            .expect("refused")
        };
        assert!(
            matches!(
                refused(groove(GrooveInput::Tap)),
                WorkerError::GrooveInput {
                    found: GrooveInput::Tap,
                    wanted: GrooveInput::Humanize
                }
            ),
            "a tap model does not humanize"
        );
        assert!(
            matches!(
                refused(Config::tiny(2, false)),
                WorkerError::NotGroove("melody")
            ),
            "nor does a melody model"
        );
        let drums = Config {
            encoding: Encoding::Drums,
            ..Config::tiny(2, false)
        };
        assert!(matches!(refused(drums), WorkerError::NotGroove("drums")));
    }

    #[test]
    fn a_groove_model_file_does_not_play_patterns() {
        let humanizer = Config {
            encoding: Encoding::Groove,
            groove_input: GrooveInput::Humanize,
            ..Config::tiny(2, false)
        };
        let refused = load(
            &serving(humanizer),
            ModelChoice::File,
            Some("/models/humanize.safetensors".into()),
            &AtomicBool::new(false),
        );
        assert!(matches!(refused, Err(WorkerError::Groove)));
        let melody = load(
            &serving(Config::tiny(2, false)),
            ModelChoice::File,
            Some("/models/melody.safetensors".into()),
            &AtomicBool::new(false),
        );
        assert!(melody.unwrap().is_some());
    }
}
