//! Sixteen instances in one host process: how long each takes to load (construct and
//! activate, which waits for its first phrase), and the CPU the process uses with all
//! sixteen at rest (activated, transport stopped) and playing, the host calling
//! `process()` in real time.
//!
//! `cargo run --release -p latent_live_tests --example instances`; the CPU is the
//! process's user + system time over wall time, from `/proc/self/stat` (Linux), so it
//! counts the workers, the audio calls and this host's own loop.

use std::time::{Duration, Instant};

use latent_live_tests::{Plugin, Transport};

const SR: f64 = 48_000.0;
const BLOCK: usize = 512;
const INSTANCES: usize = 16;
const SECONDS: f64 = 10.0;

/// The process's CPU time so far (utime + stime in clock ticks, 100 per second).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Plays every instance in real time for `SECONDS`; the process's CPU over that time, in
/// percent of one core.
fn run(plugins: &mut [Plugin], playing: bool) -> f64 {
    let (cpu_start, started) = (cpu(), Instant::now());
    let block = Duration::from_secs_f64(BLOCK as f64 / SR);
    let mut out = Vec::with_capacity(1 << 12);
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < SECONDS {
        let beats = (n * BLOCK as u64) as f64 / SR * 2.0;
        let transport = Transport {
            playing,
            beats,
            ..Transport::default()
        };
        for plugin in plugins.iter_mut() {
            out.clear();
            plugin.process(BLOCK, &transport, &[], &mut out);
        }
        n += 1;
        // Paced like an audio device: block n is due at n * block.
        if let Some(wait) = (block * n as u32).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    100.0 * (cpu() - cpu_start).as_secs_f64() / started.elapsed().as_secs_f64()
}

fn main() {
    println!("plugin: {}", latent_live_tests::library_path().display());
    let mut plugins = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..INSTANCES {
        let started = Instant::now();
        let mut plugin = Plugin::new();
        plugin.activate(SR);
        loads.push(started.elapsed());
        plugins.push(plugin);
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let mean = loads.iter().sum::<Duration>() / INSTANCES as u32;
    println!(
        "{INSTANCES} instances loaded: mean {:.1} ms each, max {:.1} ms, total {:.2} s",
        ms(&mean),
        ms(loads.iter().max().unwrap()),
        loads.iter().sum::<Duration>().as_secs_f64()
    );
    // Let the first decodes and the workers' busy second pass.
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "at rest (activated, transport stopped), {SECONDS} s: {:.2} % of one core",
        run(&mut plugins, false)
    );
    println!(
        "playing, {SECONDS} s: {:.2} % of one core",
        run(&mut plugins, true)
    );
    for plugin in &mut plugins {
        plugin.deactivate();
    }
    let (cpu_start, started) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(SECONDS));
    println!(
        "deactivated, {SECONDS} s: {:.2} % of one core",
        100.0 * (cpu() - cpu_start).as_secs_f64() / started.elapsed().as_secs_f64()
    );
}
