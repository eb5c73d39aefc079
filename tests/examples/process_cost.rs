//! What `process()` costs per 512-sample block, through the CLAP entry point, as a
//! fraction of the block's real-time budget (10.7 ms at 48 kHz).
//!
//! `cargo run --release -p latent_live_tests --example process_cost` measures the library
//! cargo builds beside it; `LATENT_LIVE_CLAP="target/bundled/Latent Live.clap"` the bundle.
//!
//! Most cases call `process()` back to back. The drift and glide cases are paced in real
//! time, as a live host calls it: drift and a glide change z every bar, and a host that
//! renders faster than real time has `process()` wait for each bar's phrase (as it should,
//! to render the same notes), which would time the decodes, not the audio thread.

use std::time::{Duration, Instant};

use latent_live_tests::{Input, Plugin, Transport};

const SR: f64 = 48_000.0;
const BLOCK: usize = 512;
const BLOCKS: usize = 20_000;

/// What plays, whether the audition synth is on, the parameters set, whether the blocks
/// are paced in real time, and whether two scenes are recalled in turn.
type Case = (
    &'static str,
    bool,
    &'static [(&'static str, f64)],
    bool,
    bool,
);
/// A scene is recalled every this many blocks: about five bars at 120 bpm (a bar is 187.5
/// blocks).
const RECALL_BLOCKS: usize = 5 * 188;
/// Blocks of a paced case: 21 s, ten bars at 120 bpm.
const PACED_BLOCKS: usize = 2_000;

fn main() {
    println!("plugin: {}", latent_live_tests::library_path().display());
    // (what plays, audition synth, the parameters set): the melody model; the drum model
    // (Model step 3) quantized and at full Groove.
    // (Drift Rate's CLAP value is its step: 3 is a 4-bar cycle.)
    let drift: &[(&str, f64)] = &[("drift", 1.0), ("drrate", 3.0)];
    // (Scene Glide's CLAP value is its step: 4 bars.)
    let drift_and_glide: &[(&str, f64)] = &[("drift", 1.0), ("drrate", 3.0), ("sglide", 4.0)];
    let cases: [Case; 8] = [
        ("melody", false, &[], false, false),
        ("melody", true, &[], false, false),
        ("drums, Groove 0", false, &[("model", 3.0)], false, false),
        (
            "drums, Groove 100 %",
            false,
            &[("model", 3.0), ("groove", 1.0)],
            false,
            false,
        ),
        (
            "drums, Groove 100 %",
            true,
            &[("model", 3.0), ("groove", 1.0)],
            false,
            false,
        ),
        ("melody, real time", false, &[], true, false),
        (
            "melody, Drift 1 σ over 4 bars, real time",
            false,
            drift,
            true,
            false,
        ),
        (
            "melody, Drift 1 σ and a 4-bar Scene Glide every 5 bars, real time",
            false,
            drift_and_glide,
            true,
            true,
        ),
    ];
    for (what, synth, set, paced, scenes) in cases {
        let mut plugin = Plugin::new();
        if scenes {
            store_two_scenes(&mut plugin);
        }
        plugin.activate(SR);
        let mut out = Vec::with_capacity(1 << 16);
        // Let the worker load the model and hand over its first phrase.
        let stopped = Transport {
            playing: false,
            tempo: 120.0,
            beats: 0.0,
            loop_range: None,
            ..Transport::default()
        };
        let setup: Vec<Input> = [("synth", if synth { 1.0 } else { 0.0 })]
            .iter()
            .chain(set)
            .map(|&(id, value)| Input::Param { time: 0, id, value })
            .collect();
        plugin.process(BLOCK, &stopped, &setup, &mut out);
        for _ in 0..200 {
            plugin.process(BLOCK, &stopped, &[], &mut out);
            std::thread::sleep(Duration::from_millis(10));
        }
        let blocks = if paced { PACED_BLOCKS } else { BLOCKS };
        let mut times = Vec::with_capacity(blocks);
        let start = Instant::now();
        for block in 0..blocks {
            if paced {
                let due = Duration::from_secs_f64((block * BLOCK) as f64 / SR);
                std::thread::sleep(due.saturating_sub(start.elapsed()));
            }
            let beats = (block * BLOCK) as f64 / SR * 2.0;
            let transport = Transport {
                playing: true,
                tempo: 120.0,
                beats,
                loop_range: None,
                ..Transport::default()
            };
            // Scenes 1 and 2 in turn, each gliding in over 4 bars.
            let recall: Vec<Input> = (scenes && block % RECALL_BLOCKS == 0)
                .then(|| Input::Param {
                    time: 0,
                    id: "scene",
                    value: (1 + block / RECALL_BLOCKS % 2) as f64,
                })
                .into_iter()
                .collect();
            out.clear();
            let started = Instant::now();
            plugin.process(BLOCK, &transport, &recall, &mut out);
            times.push(started.elapsed());
        }
        times.sort();
        let budget = Duration::from_secs_f64(BLOCK as f64 / SR);
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        let percent = |d: Duration| 100.0 * d.as_secs_f64() / budget.as_secs_f64();
        println!(
            "{what}, audition synth {}: mean {:.1} us ({:.3} % of the {:.2} ms budget), p99 {:.1} \
             us ({:.3} %), max {:.1} us ({:.2} %), {} blocks",
            if synth { "on " } else { "off" },
            mean.as_secs_f64() * 1e6,
            percent(mean),
            budget.as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e6,
            percent(at(0.99)),
            at(1.0).as_secs_f64() * 1e6,
            percent(at(1.0)),
            blocks
        );
    }
}

/// Two scenes far apart, stored in the project as the editor stores them: Latent 1 up and
/// Latent 2 down, then the other way round.
fn store_two_scenes(plugin: &mut Plugin) {
    let mut state = plugin.state_json();
    let scene = |lat1: f32, lat2: f32| serde_json::json!({"values": {"lat1": lat1, "lat2": lat2}, "clips": {"a": null, "b": null}});
    let slots = serde_json::json!({"slots": [scene(2.0, -2.0), scene(-2.0, 2.0),
        null, null, null, null, null, null]});
    state["fields"]["scenes"] = serde_json::Value::String(slots.to_string());
    plugin.load_state_json(&state);
}
