//! What `process()` costs per 512-sample block, through the CLAP entry point, as a
//! fraction of the block's real-time budget (10.7 ms at 48 kHz).
//!
//! `cargo run --release -p latent_live_tests --example process_cost` measures the library
//! cargo builds beside it; `LATENT_LIVE_CLAP="target/bundled/Latent Live.clap"` the bundle.

use std::time::{Duration, Instant};

use latent_live_tests::{Input, Plugin, Transport};

const SR: f64 = 48_000.0;
const BLOCK: usize = 512;
const BLOCKS: usize = 20_000;

/// What plays, whether the audition synth is on, and the parameters set.
type Case = (&'static str, bool, &'static [(&'static str, f64)]);

fn main() {
    println!("plugin: {}", latent_live_tests::library_path().display());
    // (what plays, audition synth, the parameters set): the melody model; the drum model
    // (Model step 3) quantized and at full Groove.
    let cases: [Case; 5] = [
        ("melody", false, &[]),
        ("melody", true, &[]),
        ("drums, Groove 0", false, &[("model", 3.0)]),
        (
            "drums, Groove 100 %",
            false,
            &[("model", 3.0), ("groove", 1.0)],
        ),
        (
            "drums, Groove 100 %",
            true,
            &[("model", 3.0), ("groove", 1.0)],
        ),
    ];
    for (what, synth, set) in cases {
        let mut plugin = Plugin::new();
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
        let mut times = Vec::with_capacity(BLOCKS);
        for block in 0..BLOCKS {
            let beats = (block * BLOCK) as f64 / SR * 2.0;
            let transport = Transport {
                playing: true,
                tempo: 120.0,
                beats,
                loop_range: None,
                ..Transport::default()
            };
            out.clear();
            let started = Instant::now();
            plugin.process(BLOCK, &transport, &[], &mut out);
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
            BLOCKS
        );
    }
}
