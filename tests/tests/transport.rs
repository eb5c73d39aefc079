//! The plugin under any transport a host can send: 1,000 random sequences through the
//! CLAP entry point, mixing block sizes of 1 to 8192 samples, sample rates of 22.05 to
//! 192 kHz, tempo ramps and jumps, NaN, infinite and huge values, loops that wrap inside a
//! block, meter changes, stop and start, bypass, automation, notes played in, and blocks
//! with no transport at all.
//!
//! Each block must come back (no panic crossed the FFI boundary: the test process would
//! be gone), with its events inside the block and in time order, at most a bounded number
//! of them, and within a sanity bound of wall time (a hang detector, not a benchmark). The
//! library is built with `assert_process_allocs`: an allocation aborts the run. At the end
//! of every sequence the notes played in are released and the transport stops: nothing
//! may still sound.

use std::time::{Duration, Instant};

use latent_live_tests::{exclusive, sounding, Input, Output, Plugin, Transport, MAX_BLOCK};

const SEQUENCES: usize = 1_000;
const SAMPLE_RATES: [f64; 7] = [
    22_050.0, 44_100.0, 48_000.0, 88_200.0, 96_000.0, 176_400.0, 192_000.0,
];
/// A block that takes longer than this is hung, on any machine.
const HANG: Duration = Duration::from_secs(2);
/// What one block may send: the phrase is monophonic and a block plays at most 512 grid
/// steps (two events each), plus the notes played in and owed note-offs.
const MAX_EVENTS_PER_BLOCK: usize = 2 * 512 + 64 + 2 * 128 + 16;

/// A small deterministic generator: the run is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const HOSTILE: [f64; 9] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -120.0,
    1e300,
    -1e300,
    1e-300,
    4e18,
];
const METERS: [(u16, u16); 10] = [
    (4, 4),
    (2, 4),
    (3, 4),
    (5, 4),
    (6, 8),
    (7, 8),
    (12, 8),
    (0, 0),
    (9, 16),
    (u16::MAX, 3),
];
/// Parameters automated, with the number of steps of their CLAP value (0: continuous).
const AUTOMATED: [(&str, f64); 18] = [
    ("lat1", 0.0),
    ("lat2", 0.0),
    ("lat5", 0.0),
    ("morph", 0.0),
    ("temp", 0.0),
    ("seed", 9999.0),
    ("trans", 24.0),
    ("oct", 6.0),
    ("vel", 126.0),
    ("len", 0.0),
    ("swap", 2.0),
    ("chan", 15.0),
    ("thru", 1.0),
    ("key", 11.0),
    ("scale", 11.0),
    ("synth", 1.0),
    ("bypass", 1.0),
    ("dens", 0.0),
];

#[test]
fn a_thousand_hostile_transport_sequences_play_safely_and_end_silent() {
    let _turn = exclusive();
    let mut rng = Rng(0x1a7e_171e);
    let mut plugin = Plugin::new();
    let mut slowest = Duration::ZERO;
    let mut blocks = 0usize;
    let mut notes = 0usize;
    for sequence in 0..SEQUENCES {
        let sample_rate = rng.pick(&SAMPLE_RATES);
        if sequence % 50 == 0 || rng.chance(20) {
            plugin.deactivate();
            plugin.activate(sample_rate);
        }
        let sample_rate = plugin.sample_rate;
        let mut t = Transport {
            tempo: 60.0 + rng.unit() * 180.0,
            beats: rng.unit() * 64.0 - 8.0,
            ..Transport::default()
        };
        let mut held: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let length = 5 + rng.below(60);
        for _ in 0..length {
            let frames = match rng.below(10) {
                0 => 1,
                1 => MAX_BLOCK,
                2 => 1 + rng.below(16) as usize,
                _ => 1 + rng.below(MAX_BLOCK as u64) as usize,
            };
            // What the host does this block.
            match rng.below(40) {
                0 => t.tempo = rng.pick(&HOSTILE),
                1 => t.tempo = 20.0 + rng.unit() * 400.0,
                2 => t.beats = rng.pick(&HOSTILE),
                3 => t.beats = rng.unit() * 1e6,
                4 => t.playing = !t.playing,
                5 => t.meter = rng.pick(&METERS),
                6 => t.bar = Some((rng.pick(&HOSTILE), rng.next() as i32)),
                7 => t.bar = None,
                8 => {
                    let start = (t.beats.max(0.0) * 4.0).floor() / 4.0;
                    t.loop_range = Some((start, start + 0.25 + rng.below(16) as f64 * 0.25));
                }
                9 => t.loop_range = Some((rng.pick(&HOSTILE), rng.pick(&HOSTILE))),
                10 => t.loop_range = None,
                11 => t.beats -= rng.unit() * 8.0,
                _ => {}
            }
            if t.tempo.is_finite() && t.tempo > 0.0 && t.tempo < 1000.0 && rng.chance(300) {
                // A ramp.
                t.tempo = (t.tempo * (0.97 + rng.unit() * 0.06)).clamp(20.0, 999.0);
            }
            let mut inputs = Vec::new();
            for _ in 0..rng.below(3) {
                let (id, steps) = rng.pick(&AUTOMATED);
                let value = if steps == 0.0 {
                    rng.unit()
                } else {
                    rng.below(steps as u64 + 1) as f64
                };
                inputs.push(Input::Param {
                    time: rng.below(frames as u64) as u32,
                    id,
                    value,
                });
            }
            let key = 36 + rng.below(48) as u8;
            // A keyboard: a key is pressed again only once let go.
            if rng.chance(100) && !held.contains(&key) {
                inputs.push(Input::NoteOn {
                    time: rng.below(frames as u64) as u32,
                    key,
                });
                held.push(key);
            }
            if !held.is_empty() && rng.chance(100) {
                let key = held.swap_remove(rng.below(held.len() as u64) as usize);
                inputs.push(Input::NoteOff {
                    time: (frames - 1) as u32,
                    key,
                });
            }
            let mut block_out = Vec::new();
            let started = Instant::now();
            if rng.chance(30) {
                plugin.process_with(frames, None, &inputs, &mut block_out);
            } else {
                plugin.process(frames, &t, &inputs, &mut block_out);
            }
            let took = started.elapsed();
            slowest = slowest.max(took);
            assert!(
                took < HANG,
                "sequence {sequence}: a block of {frames} took {took:?} with {t:?}"
            );
            check_block(
                &block_out,
                plugin.position - frames as u64,
                frames,
                sequence,
                &t,
            );
            notes += block_out
                .iter()
                .filter(|e| matches!(e, Output::NoteOn { .. }))
                .count();
            out.extend(block_out);
            blocks += 1;
            // A host that knows its timeline moves it on.
            if t.beats.is_finite() && t.tempo.is_finite() && t.playing {
                t.beats += frames as f64 / sample_rate * t.tempo / 60.0;
                if let Some((start, end)) = t
                    .loop_range
                    .filter(|(s, e)| s.is_finite() && e.is_finite() && e > s)
                {
                    if t.beats >= end && t.beats < end + (end - start) {
                        t.beats = start + (t.beats - end);
                    }
                }
            }
        }
        // The end of a sequence: keys let go, transport stopped, bypass off.
        let release: Vec<Input> = held
            .drain(..)
            .map(|key| Input::NoteOff { time: 0, key })
            .chain([Input::Param {
                time: 0,
                id: "bypass",
                value: 0.0,
            }])
            .collect();
        let stopped = Transport {
            playing: false,
            tempo: 120.0,
            ..Transport::default()
        };
        plugin.process(64, &stopped, &release, &mut out);
        plugin.process(64, &stopped, &[], &mut out);
        assert!(
            sounding(&out).is_empty(),
            "sequence {sequence}: {:?} still sounding after {:?}",
            sounding(&out),
            &out[out.len().saturating_sub(12)..]
        );
    }
    assert!(
        notes > 1_000,
        "the runs played notes ({notes} in {blocks} blocks)"
    );
    eprintln!("{SEQUENCES} sequences, {blocks} blocks, {notes} notes; slowest block {slowest:?}");
}

/// Events inside the block, in time order, bounded in number.
fn check_block(events: &[Output], block_start: u64, frames: usize, sequence: usize, t: &Transport) {
    assert!(
        events.len() <= MAX_EVENTS_PER_BLOCK,
        "sequence {sequence}: {} events in one block with {t:?}",
        events.len()
    );
    let mut last = block_start;
    for e in events {
        assert!(
            e.at() >= block_start && e.at() < block_start + frames as u64,
            "sequence {sequence}: {e:?} outside the block"
        );
        assert!(e.at() >= last, "sequence {sequence}: {e:?} out of order");
        last = e.at();
    }
}
