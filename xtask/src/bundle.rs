//! `cargo xtask bundle` (nice-plug-xtask: CLAP and VST3 bundles in `target/bundled/`)
//! and `cargo xtask install` (copies them where hosts look for plugins).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The bundle names `bundler.toml` gives.
const BUNDLES: [&str; 2] = ["Latent Live.clap", "Latent Live.vst3"];

/// `cargo xtask bundle <package> [cargo build args]`, e.g. `bundle latent_live --release`.
///
/// The bundles hold the plugin library alone, so only it is built, with its editor: not
/// the standalone binary, nor the audio and MIDI backends that only the standalone links.
pub fn bundle(args: Vec<String>) -> anyhow::Result<()> {
    let library_only = ["--lib", "--no-default-features", "--features", "editor"].map(String::from);
    nice_plug_xtask::main_with_args(
        "cargo xtask",
        std::iter::once("bundle".to_string())
            .chain(args)
            .chain(library_only),
    )
}

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Where the CLAP bundle goes (default: the user's CLAP folder for this system).
    #[arg(long)]
    clap_dir: Option<PathBuf>,
    /// Where the VST3 bundle goes (default: the user's VST3 folder).
    #[arg(long)]
    vst3_dir: Option<PathBuf>,
}

/// Copies the bundles built by `cargo xtask bundle latent_live --release` into the
/// per-user plugin folders the CLAP and VST3 specifications name.
pub fn install(args: &InstallArgs) -> anyhow::Result<()> {
    let bundled = workspace_root().join("target/bundled");
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let (clap_default, vst3_default) = user_plugin_dirs(home.as_deref())?;
    let destinations = [
        args.clap_dir.clone().unwrap_or(clap_default),
        args.vst3_dir.clone().unwrap_or(vst3_default),
    ];
    for (name, dir) in BUNDLES.iter().zip(destinations) {
        let source = bundled.join(name);
        if !source.exists() {
            bail!(
                "{} is missing: run `cargo xtask bundle latent_live --release` first",
                source.display()
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let target = dir.join(name);
        if target.is_dir() {
            std::fs::remove_dir_all(&target)?;
        }
        copy_recursively(&source, &target)
            .with_context(|| format!("copying to {}", target.display()))?;
        println!("installed {}", target.display());
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// `~/.clap` and `~/.vst3` on Linux; the Plug-Ins folders on macOS; the Common Files
/// folders on Windows (which need an elevated prompt).
fn user_plugin_dirs(home: Option<&Path>) -> anyhow::Result<(PathBuf, PathBuf)> {
    if cfg!(target_os = "windows") {
        let common = std::env::var_os("COMMONPROGRAMFILES")
            .map(PathBuf::from)
            .context("COMMONPROGRAMFILES is not set")?;
        return Ok((common.join("CLAP"), common.join("VST3")));
    }
    let home = home.context("HOME is not set")?;
    Ok(if cfg!(target_os = "macos") {
        let plugins = home.join("Library/Audio/Plug-Ins");
        (plugins.join("CLAP"), plugins.join("VST3"))
    } else {
        (home.join(".clap"), home.join(".vst3"))
    })
}

fn copy_recursively(source: &Path, target: &Path) -> std::io::Result<()> {
    if source.is_dir() {
        std::fs::create_dir_all(target)?;
        for entry in std::fs::read_dir(source)? {
            let entry = entry?;
            copy_recursively(&entry.path(), &target.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(source, target).map(|_| ())
    }
}
