//! The `latent-live` standalone binary runs with no audio device (nice-plug's dummy
//! backend): it starts the worker, plays, and keeps running until stopped.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn standalone_runs_on_the_dummy_backend() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latent-live"))
        .args(["--backend", "dummy", "--sample-rate", "48000", "--period-size", "512"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the standalone starts");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("the standalone exited with {status}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
