//! Which model the worker plays: the embedded ones or the file the user chose, read where
//! a slow or hostile file cannot hold the worker up, and tried before it replaces the
//! model playing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use candle_core::Device;

use crate::model::assets::DefaultModel;
use crate::model::{ModelFile, MusicVae, Sampling};
use crate::params::ModelChoice;
use crate::worker::latent::{self, LatentSpace};
use crate::worker::view::ModelInfo;

/// Reads the model a choice names: the embedded defaults, or a file.
pub type ModelLoader = Arc<dyn Fn(ModelChoice, Option<&str>) -> Result<ModelFile, String> + Send + Sync>;

/// The embedded models and `Model File`'s path.
pub fn default_loader() -> ModelLoader {
    Arc::new(|choice, path| match choice {
        ModelChoice::Folk2Bar => DefaultModel::Flat2Bar.load().map_err(|e| e.to_string()),
        ModelChoice::Folk4Bar => DefaultModel::Hier4Bar.load().map_err(|e| e.to_string()),
        ModelChoice::Folk2BarAttributes => DefaultModel::Flat2BarAttributes.load().map_err(|e| e.to_string()),
        ModelChoice::Groove2Bar => DefaultModel::Groove2Bar.load().map_err(|e| e.to_string()),
        ModelChoice::File => match path {
            Some(path) => ModelFile::read(Path::new(path)).map_err(|e| e.to_string()),
            None => Err("no model file chosen".into()),
        },
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

/// Runs blocking work (file reads and writes) on a thread of its own, so that a file on
/// a hung network share, or one that never ends, cannot keep the worker from stopping.
/// An error when `stop` was set first (the helper thread then finishes on its own) or
/// when the work panicked.
pub fn off_thread<T: Send + 'static>(stop: &AtomicBool, work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (done, result) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("latent-live-io".into())
        .spawn(move || {
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    loop {
        match result.recv_timeout(Duration::from_millis(10)) {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(panic)) => return Err(format!("internal error: {}", panic_message(panic.as_ref()))),
            Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::Acquire) => continue,
            Err(_) => return Err("stopped".into()),
        }
    }
}

/// What a caught panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".into())
}

/// Reads and builds the model `choice` names, and decodes once with it: a model that
/// cannot decode never replaces one that can. `Ok(None)`: stopped meanwhile.
pub fn load(loader: &ModelLoader, choice: ModelChoice, path: Option<String>, stop: &AtomicBool) -> Result<Option<Loaded>, String> {
    let read = {
        let (loader, path) = (loader.clone(), path.clone());
        off_thread(stop, move || loader(choice, path.as_deref()))
    };
    if stop.load(Ordering::Acquire) {
        return Ok(None);
    }
    let file = read??;
    let space = LatentSpace::of(&file).map_err(|e| e.to_string())?;
    let model = file.model(&Device::Cpu).map_err(|e| e.to_string())?;
    let origin = vec![0.0; space.z_size];
    latent::z_tensor(&model, std::slice::from_ref(&origin))
        .and_then(|z| model.decode(&z, Sampling::new(0.0, 0)))
        .map_err(|e| format!("the model loads but cannot decode: {e}"))?;
    let name = match (&path, choice) {
        (Some(path), ModelChoice::File) => path.clone(),
        _ if !file.card.name.is_empty() => file.card.name.clone(),
        _ => format!("{choice:?}"),
    };
    let info = Arc::new(ModelInfo::of(&name, &file.card, &space, model.has_encoder(), model.config.encoding));
    Ok(Some(Loaded { model, space, name, hash: file.hash.clone(), info }))
}
