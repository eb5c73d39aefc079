//! The `latent-live` standalone opens a real window: run under Xvfb with no audio device
//! (nice-plug's dummy backend), its editor must map a top-level window named
//! "Latent Live" (found with xwininfo), and it must keep running without a panic.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command, what: &str) -> Killed {
    Killed(
        command.stdout(Stdio::null()).spawn().unwrap_or_else(|e| {
            panic!("cannot start {what} ({e}); CI installs xvfb and x11-utils")
        }),
    )
}

fn windows(display: &str) -> String {
    let out = Command::new("xwininfo")
        .args(["-root", "-tree"])
        .env("DISPLAY", display)
        .output()
        .expect("xwininfo (x11-utils) is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_standalone_opens_its_editor_window_under_xvfb() {
    // A display number of our own, so parallel runs and a developer's X server are left alone.
    let display = format!(":{}", 90 + std::process::id() % 400);
    let _server = spawn(
        Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1600x1000x24",
                "-nolisten",
                "tcp",
            ])
            .stderr(Stdio::null()),
        "Xvfb",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Command::new("xwininfo")
        .args(["-root"])
        .env("DISPLAY", &display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success())
    {
        assert!(Instant::now() < deadline, "Xvfb did not start on {display}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut app = spawn(
        Command::new(env!("CARGO_BIN_EXE_latent-live"))
            .args([
                "--backend",
                "dummy",
                "--sample-rate",
                "48000",
                "--period-size",
                "512",
            ])
            .env("DISPLAY", &display)
            .stderr(Stdio::piped()),
        "the standalone",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let tree = loop {
        let tree = windows(&display);
        if tree.contains("\"Latent Live\"") || Instant::now() > deadline {
            break tree;
        }
        assert!(
            app.0.try_wait().unwrap().is_none(),
            "the standalone exited before opening its window"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let line = tree
        .lines()
        .find(|l| l.contains("\"Latent Live\""))
        .unwrap_or_else(|| panic!("no Latent Live window on {display}:\n{tree}"));
    // Its size is the editor's (the window manager-less server keeps what was asked).
    let (w, h) = latent_live::editor::DEFAULT_SIZE;
    assert!(line.contains(&format!("{w}x{h}")), "{line}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "the standalone keeps running with its window open"
    );
    app.0.kill().unwrap();
    app.0.wait().unwrap();
    let mut stderr = String::new();
    app.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
