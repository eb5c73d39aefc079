//! The sequencer against straight runs, split and straddling blocks, loops, jumps and
//! meters: what it plays, sample for sample.

use super::*;
use crate::audio::timeline::Meter;
use latent_live_core::music::drums::Hit;
use latent_live_core::music::groove::Feel;
use latent_live_core::music::melody::Note;
use latent_live_core::music::phrase::PhraseNote;
use latent_live_core::music::Encoding;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SR: f32 = 48_000.0;
/// At 120 bpm and 48 kHz a 16th is exactly 6000 samples.
const STEP: u64 = 6000;

fn phrase(notes: &[(u8, u32, u32)], steps: usize, generation: u64) -> Phrase {
    let notes: Vec<Note> = notes
        .iter()
        .map(|&(pitch, start, end)| Note { pitch, start, end })
        .collect();
    Phrase::from_notes(&notes, steps, generation)
}

fn demo() -> Phrase {
    phrase(
        &[
            (60, 0, 4),
            (62, 4, 6),
            (64, 8, 16),
            (67, 20, 21),
            (72, 24, 32),
        ],
        32,
        1,
    )
}

/// (absolute sample, event) pairs.
type Log = Vec<(u64, SeqEvent)>;

/// Runs a host that starts at beat 0 and plays `total` samples in blocks from `sizes`.
fn run(
    seq: &mut Sequencer,
    play: &Playback,
    total: u64,
    sizes: impl FnMut() -> usize,
    log: &mut Log,
    start: u64,
) -> u64 {
    run_in(Meter::COMMON, seq, play, total, sizes, log, start)
}

/// `run` in bars of `meter`, bar 0 at beat 0.
fn run_in(
    meter: Meter,
    seq: &mut Sequencer,
    play: &Playback,
    total: u64,
    mut sizes: impl FnMut() -> usize,
    log: &mut Log,
    start: u64,
) -> u64 {
    let spb = SR as f64 * 60.0 / 120.0;
    let mut pos = start;
    while pos < start + total {
        let n = (sizes() as u64).min(start + total - pos) as usize;
        let beats = pos as f64 / spb;
        let bar = (beats / meter.bar_beats() + 1e-9).floor();
        let t = TransportInfo {
            meter,
            bar_start: bar * meter.bar_beats(),
            bar_number: bar as i64,
            ..TransportInfo::playing(120.0, beats, SR)
        };
        seq.process_block(&t, play, n, &mut |e| {
            assert!((e.timing() as usize) < n, "{e:?} outside a block of {n}");
            log.push((pos + e.timing() as u64, e));
        });
        pos += n as u64;
    }
    pos
}

fn started(p: &Phrase) -> Sequencer {
    let mut seq = Sequencer::new();
    seq.queue_phrase(p);
    seq
}

fn expected_demo_first_loop() -> Vec<(u64, SeqEvent)> {
    let v = 100.0 / 127.0;
    vec![
        (
            0,
            SeqEvent::NoteOn {
                timing: 0,
                channel: 0,
                key: 60,
                velocity: v,
            },
        ),
        (
            4 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 60,
            },
        ),
        (
            4 * STEP,
            SeqEvent::NoteOn {
                timing: 0,
                channel: 0,
                key: 62,
                velocity: v,
            },
        ),
        (
            6 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 62,
            },
        ),
        (
            8 * STEP,
            SeqEvent::NoteOn {
                timing: 0,
                channel: 0,
                key: 64,
                velocity: v,
            },
        ),
        (
            16 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 64,
            },
        ),
        (
            20 * STEP,
            SeqEvent::NoteOn {
                timing: 0,
                channel: 0,
                key: 67,
                velocity: v,
            },
        ),
        (
            21 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 67,
            },
        ),
        (
            24 * STEP,
            SeqEvent::NoteOn {
                timing: 0,
                channel: 0,
                key: 72,
                velocity: v,
            },
        ),
        (
            32 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 72,
            },
        ),
        (
            32 * STEP,
            SeqEvent::NoteOn {
                timing: 0,
                channel: 0,
                key: 60,
                velocity: v,
            },
        ),
    ]
}

/// Drops the in-block timing so logs from different block sizes compare equal.
fn normalise(log: &Log) -> Vec<(u64, SeqEvent)> {
    log.iter()
        .map(|&(at, e)| {
            let e = match e {
                SeqEvent::NoteOn {
                    key,
                    velocity,
                    channel,
                    ..
                } => SeqEvent::NoteOn {
                    timing: 0,
                    channel,
                    key,
                    velocity,
                },
                SeqEvent::NoteOff { key, channel, .. } => SeqEvent::NoteOff {
                    timing: 0,
                    channel,
                    key,
                },
                SeqEvent::AllNotesOff { channel, .. } => {
                    SeqEvent::AllNotesOff { timing: 0, channel }
                }
            };
            (at, e)
        })
        .collect()
}

#[test]
fn notes_land_on_the_right_samples_for_any_block_size() {
    for block in [1usize, 64, 512, 1000, 6000] {
        let mut seq = started(&demo());
        let mut log = Log::new();
        run(
            &mut seq,
            &Playback::default(),
            32 * STEP + 10,
            || block,
            &mut log,
            0,
        );
        assert_eq!(
            normalise(&log),
            expected_demo_first_loop(),
            "block size {block}"
        );
        for &(at, e) in &log {
            assert_eq!(
                at % block as u64,
                e.timing() as u64,
                "timing is the offset in the block"
            );
        }
    }
}

/// Onsets and offsets of a log as (step, key, on) on the 6000-sample grid.
fn on_grid(log: &Log) -> Vec<(u64, u8, bool)> {
    log.iter()
        .filter_map(|&(at, e)| match e {
            SeqEvent::NoteOn { key, .. } => Some((at / STEP, key, true)),
            SeqEvent::NoteOff { key, .. } => Some((at / STEP, key, false)),
            SeqEvent::AllNotesOff { .. } => None,
        })
        .collect()
}

#[test]
fn a_4_4_phrase_fills_the_bars_of_other_meters_from_each_downbeat() {
    // 3/4: each host bar plays the first 12 steps of its phrase bar; a note held over
    // the cut ends on the bar line.
    let mut seq = started(&demo());
    let mut log = Log::new();
    run_in(
        Meter {
            numerator: 3,
            denominator: 4,
        },
        &mut seq,
        &Playback::default(),
        24 * STEP + 10,
        || 700,
        &mut log,
        0,
    );
    let (on, off) = (true, false);
    assert_eq!(
        on_grid(&log),
        vec![
            (0, 60, on),
            (4, 60, off),
            (4, 62, on),
            (6, 62, off),
            (8, 64, on),
            (12, 64, off),
            (16, 67, on),
            (17, 67, off),
            (20, 72, on),
            (24, 72, off),
            (24, 60, on)
        ]
    );
    // 5/4: the fifth beat plays the bar's first beat again.
    let mut seq = started(&demo());
    let mut log = Log::new();
    run_in(
        Meter {
            numerator: 5,
            denominator: 4,
        },
        &mut seq,
        &Playback::default(),
        40 * STEP + 10,
        || 333,
        &mut log,
        0,
    );
    assert_eq!(
        on_grid(&log),
        vec![
            (0, 60, on),
            (4, 60, off),
            (4, 62, on),
            (6, 62, off),
            (8, 64, on),
            (16, 64, off),
            (16, 60, on),
            (20, 60, off),
            (24, 67, on),
            (25, 67, off),
            (28, 72, on),
            (36, 72, off),
            (40, 60, on)
        ]
    );
    // 6/8, 7/8 and 12/8: every host bar line is a phrase downbeat, block size aside.
    for (numerator, denominator) in [(2, 4), (6, 8), (7, 8), (12, 8)] {
        let meter = Meter {
            numerator,
            denominator,
        };
        let downbeat = phrase(&[(60, 0, 1), (62, 16, 17)], 32, 1);
        let render = |block: usize| {
            let mut seq = started(&downbeat);
            let mut log = Log::new();
            run_in(
                meter,
                &mut seq,
                &Playback::default(),
                8 * meter.bar_steps() as u64 * STEP,
                || block,
                &mut log,
                0,
            );
            on_grid(&log)
        };
        let bar = meter.bar_steps() as u64;
        let ons: Vec<u64> = render(64)
            .into_iter()
            .filter(|e| e.2 && e.1 == 60 && e.0 % bar == 0)
            .map(|e| e.0)
            .collect();
        assert_eq!(
            ons,
            (0..8).step_by(2).map(|b| b * bar).collect::<Vec<_>>(),
            "{numerator}/{denominator}"
        );
        assert_eq!(render(64), render(997), "{numerator}/{denominator}");
    }
}

#[test]
fn follows_a_meter_change_through_the_host_bar_start() {
    // Two bars of 4/4, then 3/4 from beat 8: the host's bar start says where bars are.
    let mut seq = started(&phrase(&[(60, 0, 1), (62, 16, 17)], 32, 1));
    let mut log = Vec::new();
    let spb = SR as f64 * 60.0 / 120.0;
    let mut pos = 0u64;
    while pos < 20 * 6 * STEP / 4 * 4 {
        let beats = pos as f64 / spb;
        let (meter, bar) = if beats < 8.0 {
            (Meter::COMMON, (beats / 4.0).floor())
        } else {
            (
                Meter {
                    numerator: 3,
                    denominator: 4,
                },
                2.0 + ((beats - 8.0) / 3.0).floor(),
            )
        };
        let bar_start = if bar < 2.0 {
            bar * 4.0
        } else {
            8.0 + (bar - 2.0) * 3.0
        };
        let t = TransportInfo {
            meter,
            bar_start,
            bar_number: bar as i64,
            ..TransportInfo::playing(120.0, beats, SR)
        };
        seq.process_block(&t, &Playback::default(), 480, &mut |e| {
            log.push((pos + e.timing() as u64, e))
        });
        pos += 480;
    }
    let ons: Vec<(u64, u8)> = on_grid(&log)
        .into_iter()
        .filter(|e| e.2)
        .map(|e| (e.0, e.1))
        .collect();
    // Bar lines at steps 0, 16, 32, then every 12: each starts a phrase bar.
    assert_eq!(
        &ons[..6],
        &[(0, 60), (16, 62), (32, 60), (44, 62), (56, 60), (68, 62)]
    );
}

#[test]
fn a_loop_that_wraps_inside_a_block_wraps_there() {
    // Looping beats 2..6 (steps 8..24) in blocks that straddle the loop end.
    let mut seq = started(&demo());
    let mut log = Log::new();
    let spb = SR as f64 * 60.0 / 120.0;
    let (loop_start, loop_end) = (2.0, 6.0);
    let mut beats = 2.0;
    let mut at = 0u64;
    for _ in 0..40 {
        let n = 5_000usize;
        let t = TransportInfo {
            loop_range: Some((loop_start, loop_end)),
            ..TransportInfo::playing(120.0, beats, SR)
        };
        seq.process_block(&t, &Playback::default(), n, &mut |e| {
            assert!((e.timing() as usize) < n);
            log.push((at + e.timing() as u64, e));
        });
        at += n as u64;
        beats += n as f64 / spb;
        if beats >= loop_end {
            beats = loop_start + (beats - loop_end);
        }
    }
    // Each pass plays 64 (steps 8..16) then 67 at 20; the wrap ends the note at the
    // loop end (the sample of step 24 in the pass) and 64 starts again on the spot.
    let ons: Vec<(u64, u8)> = log
        .iter()
        .filter_map(|&(at, e)| {
            if let SeqEvent::NoteOn { key, .. } = e {
                Some((at, key))
            } else {
                None
            }
        })
        .collect();
    let pass = 16 * STEP;
    assert_eq!(
        &ons[..5],
        &[
            (0, 64),
            (12 * STEP, 67),
            (pass, 64),
            (pass + 12 * STEP, 67),
            (2 * pass, 64)
        ]
    );
    let mut sounding = None;
    for &(_, e) in &log {
        match e {
            SeqEvent::NoteOn { key, .. } => assert_eq!(sounding.replace(key), None),
            SeqEvent::NoteOff { key, .. } => assert_eq!(sounding.take(), Some(key)),
            _ => {}
        }
    }
}

#[test]
fn a_block_of_minutes_is_cut_short_not_a_stall() {
    let mut seq = started(&demo());
    let mut events = 0usize;
    // 1000 bpm at 1 kHz with a 2^24-sample block: a million steps if nothing capped it.
    let t = TransportInfo {
        tempo: 1000.0,
        ..TransportInfo::playing(1000.0, 0.0, 1_000.0)
    };
    seq.process_block(&t, &Playback::default(), 1 << 24, &mut |_| events += 1);
    assert!(events <= 2 * MAX_STEPS_PER_BLOCK + 2, "{events} events");
    assert!(events > 0);
}

#[test]
fn offline_equals_realtime_with_ragged_blocks_and_odd_tempo() {
    // 133 bpm at 44.1 kHz: grid times fall between samples.
    let render = |sizes: &mut dyn FnMut() -> usize| {
        let mut seq = started(&demo());
        let play = Playback {
            length: 0.7,
            ..Playback::default()
        };
        let spb = 44_100.0 * 60.0 / 133.0;
        let mut log = Log::new();
        let mut pos = 0u64;
        while pos < 400_000 {
            let n = sizes();
            let t = TransportInfo {
                playing: true,
                ..TransportInfo::playing(133.0, pos as f64 / spb, 44_100.0)
            };
            seq.process_block(&t, &play, n, &mut |e| {
                log.push((pos + e.timing() as u64, e))
            });
            pos += n as u64;
        }
        normalise(&log)
    };
    let reference = render(&mut || 1);
    assert!(reference.len() > 20);
    assert_eq!(render(&mut || 512), reference);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    assert_eq!(render(&mut || rng.random_range(1..700)), reference);
}

#[test]
fn playback_settings_apply_at_play_time() {
    let mut seq = started(&demo());
    let play = Playback {
        transpose: 2,
        octave: -1,
        velocity: 0.5,
        length: 0.5,
        ..Playback::default()
    };
    let mut log = Log::new();
    run(&mut seq, &play, 8 * STEP, || 256, &mut log, 0);
    assert_eq!(
        normalise(&log),
        vec![
            (
                0,
                SeqEvent::NoteOn {
                    timing: 0,
                    channel: 0,
                    key: 50,
                    velocity: 0.5
                }
            ),
            (
                2 * STEP,
                SeqEvent::NoteOff {
                    timing: 0,
                    channel: 0,
                    key: 50
                }
            ),
            (
                4 * STEP,
                SeqEvent::NoteOn {
                    timing: 0,
                    channel: 0,
                    key: 52,
                    velocity: 0.5
                }
            ),
            (
                5 * STEP,
                SeqEvent::NoteOff {
                    timing: 0,
                    channel: 0,
                    key: 52
                }
            ),
        ]
    );
    // Longer than written: a note is cut by the next onset, never overlaps.
    let mut seq = started(&demo());
    let mut log = Log::new();
    run(
        &mut seq,
        &Playback {
            length: 2.0,
            ..Playback::default()
        },
        8 * STEP + 1,
        || 100,
        &mut log,
        0,
    );
    let keys: Vec<(u64, SeqEvent)> = normalise(&log);
    assert_eq!(
        keys[1],
        (
            4 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 60
            }
        )
    );
    assert_eq!(
        keys[3],
        (
            8 * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 62
            }
        )
    );
}

#[test]
fn swap_waits_for_the_next_bar() {
    let mut seq = started(&demo());
    let mut log = Log::new();
    // Play into bar 1 (step 20 sounds 67 until step 21), then queue a new phrase mid-note.
    let pos = run(
        &mut seq,
        &Playback::default(),
        20 * STEP + 100,
        || 128,
        &mut log,
        0,
    );
    let next = phrase(&[(48, 0, 2), (50, 16, 18)], 32, 2);
    seq.queue_phrase(&next);
    log.clear();
    run(
        &mut seq,
        &Playback::default(),
        48 * STEP - pos,
        || 128,
        &mut log,
        pos,
    );
    let v = 100.0 / 127.0;
    assert_eq!(
        normalise(&log),
        vec![
            (
                21 * STEP,
                SeqEvent::NoteOff {
                    timing: 0,
                    channel: 0,
                    key: 67
                }
            ),
            // The old phrase plays on until the bar line at step 32 ...
            (
                24 * STEP,
                SeqEvent::NoteOn {
                    timing: 0,
                    channel: 0,
                    key: 72,
                    velocity: v
                }
            ),
            (
                32 * STEP,
                SeqEvent::NoteOff {
                    timing: 0,
                    channel: 0,
                    key: 72
                }
            ),
            // ... where the new one takes over, on the host's bar grid.
            (
                32 * STEP,
                SeqEvent::NoteOn {
                    timing: 0,
                    channel: 0,
                    key: 48,
                    velocity: v
                }
            ),
            (
                34 * STEP,
                SeqEvent::NoteOff {
                    timing: 0,
                    channel: 0,
                    key: 48
                }
            ),
        ]
    );
    assert_eq!(seq.current().generation, 2);
}

#[test]
fn a_phrase_for_a_new_chord_followed_on_the_beat_swaps_at_the_next_beat() {
    // Queued at step 5 (inside the demo's 62, held 4..6) with Swap on Next Bar: a chord
    // phrase followed on the beat takes over at step 8 (its own step 8, as the bar
    // position stays), not at the bar line at 16.
    let mut next = phrase(&[(57, 8, 12)], 32, 2);
    next.swap_on_beat = true;
    let mut seq = started(&demo());
    let mut log = Log::new();
    let pos = run(&mut seq, &Playback::default(), 5 * STEP, || 64, &mut log, 0);
    seq.queue_phrase(&next);
    log.clear();
    run(
        &mut seq,
        &Playback::default(),
        12 * STEP - pos,
        || 64,
        &mut log,
        pos,
    );
    let log = normalise(&log);
    let first_on = log
        .iter()
        .find(|(_, e)| matches!(e, SeqEvent::NoteOn { key: 57, .. }))
        .unwrap();
    assert_eq!(first_on.0, 8 * STEP, "{log:?}");
    // The old phrase's 64 (from step 8) never starts; its 62 ended at step 6.
    assert!(!log
        .iter()
        .any(|(_, e)| matches!(e, SeqEvent::NoteOn { key: 64, .. })));
    assert_eq!(seq.current().generation, 2);
}

#[test]
fn swap_modes_phrase_and_immediately() {
    // NextPhrase: queued at step 5, waits past the bar line at 16 for the loop point at 32.
    let next = phrase(&[(48, 0, 32)], 32, 2);
    let mut seq = started(&demo());
    let play = Playback {
        swap: SwapMode::NextPhrase,
        ..Playback::default()
    };
    let mut log = Log::new();
    let pos = run(&mut seq, &play, 5 * STEP, || 64, &mut log, 0);
    seq.queue_phrase(&next);
    log.clear();
    run(&mut seq, &play, 40 * STEP - pos, || 64, &mut log, pos);
    let first_on = normalise(&log)
        .into_iter()
        .find(|(_, e)| matches!(e, SeqEvent::NoteOn { key: 48, .. }))
        .unwrap();
    assert_eq!(first_on.0, 32 * STEP);
    // Immediately: at the next 16th, ending the note that sounds.
    let next = phrase(&[(48, 10, 11)], 32, 3);
    let mut seq = started(&demo());
    let play = Playback {
        swap: SwapMode::Immediately,
        ..Playback::default()
    };
    let mut log = Log::new();
    let pos = run(&mut seq, &play, 9 * STEP + 5, || 64, &mut log, 0);
    seq.queue_phrase(&next);
    log.clear();
    run(&mut seq, &play, STEP, || 64, &mut log, pos);
    assert_eq!(
        normalise(&log),
        vec![
            (
                10 * STEP,
                SeqEvent::NoteOff {
                    timing: 0,
                    channel: 0,
                    key: 64
                }
            ),
            (
                10 * STEP,
                SeqEvent::NoteOn {
                    timing: 0,
                    channel: 0,
                    key: 48,
                    velocity: 100.0 / 127.0
                }
            ),
        ]
    );
    assert_eq!(seq.current().generation, 3);
}

#[test]
fn stop_and_jump_send_note_offs() {
    let mut seq = started(&demo());
    let mut log = Log::new();
    let play = Playback::default();
    run(&mut seq, &play, STEP, || 512, &mut log, 0);
    assert_eq!(seq.sounding_key(), Some(60));
    // Stop: note-off at the start of the first stopped block.
    let stopped = TransportInfo {
        playing: false,
        ..TransportInfo::playing(120.0, 0.5, SR)
    };
    let mut events = Vec::new();
    seq.process_block(&stopped, &play, 512, &mut |e| events.push(e));
    assert_eq!(
        events,
        vec![SeqEvent::NoteOff {
            timing: 0,
            channel: 0,
            key: 60
        }]
    );
    assert_eq!(seq.sounding_key(), None);

    // Jump: playing in the middle of note 64 (steps 8..16), the host loops back to beat 0.5.
    let mut log = Log::new();
    run(&mut seq, &play, 5 * STEP, || 512, &mut log, 8 * STEP);
    assert_eq!(seq.sounding_key(), Some(64));
    let back = TransportInfo {
        playing: true,
        ..TransportInfo::playing(120.0, 0.5, SR)
    };
    events.clear();
    seq.process_block(&back, &play, 512, &mut |e| events.push(e));
    assert_eq!(
        events,
        vec![SeqEvent::NoteOff {
            timing: 0,
            channel: 0,
            key: 64
        }]
    );
    assert_eq!(
        seq.sounding_key(),
        None,
        "a note that started before the jump target is not restarted"
    );
}

#[test]
fn bypass_and_reset_end_the_note() {
    let mut seq = started(&demo());
    let mut log = Log::new();
    run(&mut seq, &Playback::default(), 100, || 100, &mut log, 0);
    let t = TransportInfo {
        playing: true,
        ..TransportInfo::playing(120.0, 100.0 / 24_000.0, SR)
    };
    let mut events = Vec::new();
    seq.process_block(
        &t,
        &Playback {
            bypass: true,
            ..Playback::default()
        },
        64,
        &mut |e| events.push(e),
    );
    assert_eq!(
        events,
        vec![SeqEvent::NoteOff {
            timing: 0,
            channel: 0,
            key: 60
        }]
    );

    let mut seq = started(&demo());
    run(&mut seq, &Playback::default(), 100, || 100, &mut log, 0);
    seq.request_all_notes_off();
    events.clear();
    seq.process_block(&t, &Playback::default(), 64, &mut |e| events.push(e));
    assert_eq!(
        events,
        vec![
            SeqEvent::NoteOff {
                timing: 0,
                channel: 0,
                key: 60
            },
            SeqEvent::AllNotesOff {
                timing: 0,
                channel: 0
            }
        ]
    );
}

#[test]
fn no_stuck_notes_over_a_long_random_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut seq = started(&demo());
    let mut sounding: Option<u8> = None;
    let mut pos_beats = 0.0f64;
    let mut ons = 0;
    for block in 0..20_000 {
        let n = rng.random_range(1..1024usize);
        let tempo = if rng.random_bool(0.001) {
            rng.random_range(60.0..200.0)
        } else {
            120.0
        };
        let playing = !rng.random_bool(0.002);
        if rng.random_bool(0.002) {
            pos_beats = rng.random_range(-4.0..64.0);
        }
        if rng.random_bool(0.003) {
            let notes: Vec<(u8, u32, u32)> = (0..rng.random_range(0..12))
                .map(|i| {
                    (
                        rng.random_range(40..90),
                        i * 3,
                        i * 3 + rng.random_range(1..6),
                    )
                })
                .collect();
            seq.queue_phrase(&phrase(&notes, 16 * rng.random_range(1..5), block));
        }
        if rng.random_bool(0.001) {
            seq.request_all_notes_off();
        }
        let play = Playback {
            length: rng.random_range(0.1..2.0),
            swap: [
                SwapMode::NextBar,
                SwapMode::NextPhrase,
                SwapMode::Immediately,
            ][rng.random_range(0..3)],
            bypass: rng.random_bool(0.001),
            ..Playback::default()
        };
        let t = TransportInfo {
            playing,
            ..TransportInfo::playing(tempo, pos_beats, SR)
        };
        let mut last_timing = 0;
        seq.process_block(&t, &play, n, &mut |e| {
            assert!(e.timing() >= last_timing, "events in time order");
            last_timing = e.timing();
            match e {
                SeqEvent::NoteOn { key, .. } => {
                    assert_eq!(
                        sounding, None,
                        "monophonic: the previous note was ended first"
                    );
                    sounding = Some(key);
                    ons += 1;
                }
                SeqEvent::NoteOff { key, .. } => {
                    assert_eq!(sounding, Some(key), "note-off for the sounding note");
                    sounding = None;
                }
                SeqEvent::AllNotesOff { .. } => assert_eq!(sounding, None),
            }
        });
        assert_eq!(sounding, seq.sounding_key());
        if playing {
            pos_beats += n as f64 * tempo / 60.0 / SR as f64;
        }
    }
    assert!(ons > 100, "the run played notes ({ons})");
    let stop = TransportInfo {
        playing: false,
        ..TransportInfo::playing(120.0, pos_beats, SR)
    };
    seq.process_block(&stop, &Playback::default(), 64, &mut |e| {
        if let SeqEvent::NoteOff { key, .. } = e {
            assert_eq!(sounding, Some(key));
            sounding = None;
        }
    });
    assert_eq!(sounding, None, "nothing sounds after the transport stops");
}

fn groove() -> Phrase {
    let hit = |step, class| Hit { step, class };
    // Kick and closed hat together, snare and hat, the hat alone, a crash with a kick.
    Phrase::from_drums(
        &[
            hit(0, 0),
            hit(0, 2),
            hit(2, 2),
            hit(4, 1),
            hit(4, 2),
            hit(6, 2),
            hit(8, 0),
            hit(8, 7),
        ],
        16,
        5,
    )
}

#[test]
fn drum_hits_of_a_step_sound_together_on_the_drum_channel() {
    let mut seq = started(&groove());
    let mut log = Log::new();
    // A kit whose kick is on note 24 and whose crash shares the hat's note.
    let mut play = Playback {
        transpose: 7,
        ..Playback::default()
    };
    play.drum_notes[0] = 24;
    play.drum_notes[7] = play.drum_notes[2];
    run(&mut seq, &play, 16 * STEP, || 512, &mut log, 0);
    let events = normalise(&log);
    let on = |at: u64, key: u8, accent: u8| (at * STEP, 9, key, accent);
    let off = |at: u64, key: u8| {
        (
            at * STEP,
            SeqEvent::NoteOff {
                timing: 0,
                channel: 9,
                key,
            },
        )
    };
    let ons: Vec<_> = events
        .iter()
        .filter_map(|&(at, e)| match e {
            SeqEvent::NoteOn {
                channel,
                key,
                velocity,
                ..
            } => Some((at, channel, key, (velocity * 127.0).round() as u8)),
            _ => None,
        })
        .collect();
    let v = |class: u8, step: u32| drums::accent(&Hit { step, class });
    // Untransposed, mapped, and the shared note struck once on step 8.
    assert_eq!(
        ons,
        vec![
            on(0, 24, v(0, 0)),
            on(0, 42, v(2, 0)),
            on(2, 42, v(2, 2)),
            on(4, 38, v(1, 4)),
            on(4, 42, v(2, 4)),
            on(6, 42, v(2, 6)),
            on(8, 24, v(0, 8)),
            on(8, 42, v(7, 8))
        ]
    );
    // Each hit ends after its step, before the next hits start.
    assert!(
        events.contains(&off(1, 24))
            && events.contains(&off(1, 42))
            && events.contains(&off(9, 42))
    );
    let offs = events
        .iter()
        .filter(|(_, e)| matches!(e, SeqEvent::NoteOff { .. }))
        .count();
    assert_eq!(offs, ons.len(), "every hit is ended");
    // All notes off goes to the drum channel too.
    let mut events = Vec::new();
    seq.request_all_notes_off();
    let t = TransportInfo::playing(120.0, 0.0, SR);
    seq.process_block(&t, &play, 64, &mut |e| events.push(e));
    assert!(
        events.contains(&SeqEvent::AllNotesOff {
            timing: 0,
            channel: 0
        }) && events.contains(&SeqEvent::AllNotesOff {
            timing: 0,
            channel: 9
        })
    );
}

#[test]
fn no_drum_hit_is_left_sounding_over_a_random_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut seq = started(&groove());
    let mut sounding: std::collections::BTreeMap<(u8, u8), i32> = Default::default();
    let mut pos_beats = 0.0f64;
    for block in 0..5_000 {
        let n = rng.random_range(1..2048usize);
        if rng.random_bool(0.003) {
            pos_beats = rng.random_range(-4.0..64.0);
        }
        if rng.random_bool(0.01) {
            let hits: Vec<Hit> = (0..rng.random_range(0..40))
                .map(|_| Hit {
                    step: rng.random_range(0..32),
                    class: rng.random_range(0..9),
                })
                .collect();
            seq.queue_phrase(&Phrase::from_drums(&hits, 32, block));
        }
        let mut play = Playback {
            length: rng.random_range(0.1..2.0),
            bypass: rng.random_bool(0.002),
            ..Playback::default()
        };
        if rng.random_bool(0.5) {
            play.drum_notes[rng.random_range(0..9)] = rng.random_range(30..60);
        }
        let t = TransportInfo {
            playing: !rng.random_bool(0.003),
            ..TransportInfo::playing(120.0, pos_beats, SR)
        };
        seq.process_block(&t, &play, n, &mut |e| match e {
            SeqEvent::NoteOn { channel, key, .. } => {
                *sounding.entry((channel, key)).or_default() += 1
            }
            SeqEvent::NoteOff { channel, key, .. } => {
                *sounding.entry((channel, key)).or_default() -= 1
            }
            SeqEvent::AllNotesOff { .. } => {}
        });
        assert!(
            sounding.values().all(|&c| (0..=1).contains(&c)),
            "{sounding:?}"
        );
        if t.playing {
            pos_beats += n as f64 * 2.0 / SR as f64;
        }
    }
    let stop = TransportInfo {
        playing: false,
        ..TransportInfo::playing(120.0, pos_beats, SR)
    };
    seq.process_block(&stop, &Playback::default(), 64, &mut |e| {
        if let SeqEvent::NoteOff { channel, key, .. } = e {
            *sounding.entry((channel, key)).or_default() -= 1;
        }
    });
    assert!(
        sounding.values().all(|&c| c == 0),
        "nothing sounds after the transport stops: {sounding:?}"
    );
}

/// `groove()` with a feel: the downbeat kick early (it plays in the bar before), the
/// hats late and soft, the snare early and loud.
fn felt_groove() -> Phrase {
    let mut p = groove();
    let mut feel = vec![[Feel::default(); drums::NUM_DRUM_CLASSES]; 16];
    feel[0][0] = Feel {
        velocity: 120,
        shift: -0.4,
    };
    feel[0][2] = Feel {
        velocity: 50,
        shift: 0.25,
    };
    feel[2][2] = Feel {
        velocity: 40,
        shift: 0.5,
    };
    feel[4][1] = Feel {
        velocity: 127,
        shift: -0.5,
    };
    feel[4][2] = Feel {
        velocity: 60,
        shift: 0.1,
    };
    feel[6][2] = Feel {
        velocity: 45,
        shift: -0.2,
    };
    feel[8][0] = Feel {
        velocity: 90,
        shift: 0.05,
    };
    feel[8][7] = Feel {
        velocity: 110,
        shift: -0.05,
    };
    p.set_feel(&feel);
    p
}

/// Renders `phrase` from beat 0 for `beats` at `bpm` and `rate` in blocks from `sizes`:
/// (absolute sample, event).
fn render(
    phrase: &Phrase,
    play: &Playback,
    bpm: f64,
    rate: f32,
    beats: f64,
    sizes: impl FnMut() -> usize,
) -> Log {
    render_looped(phrase, play, bpm, rate, beats, sizes, None)
}

/// [`render`] by a host looping beats `(start, end)` (from 0, so `end` must be after
/// it), which ends a block at the loop's end when `split` (as most hosts do) and else
/// wraps inside the block. Loop ends fall on samples.
fn render_looped(
    phrase: &Phrase,
    play: &Playback,
    bpm: f64,
    rate: f32,
    beats: f64,
    mut sizes: impl FnMut() -> usize,
    host_loop: Option<((f64, f64), bool)>,
) -> Log {
    let mut seq = started(phrase);
    let spb = rate as f64 * 60.0 / bpm;
    let total = (beats * spb) as u64;
    let (mut log, mut pos, mut host) = (Log::new(), 0u64, 0u64);
    while pos < total {
        let mut n = (sizes() as u64).min(total - pos);
        if let Some(((_, end), true)) = host_loop {
            n = n.min((end * spb) as u64 - host);
        }
        let t = TransportInfo {
            loop_range: host_loop.map(|(range, _)| range),
            ..TransportInfo::playing(bpm, host as f64 / spb, rate)
        };
        seq.process_block(&t, play, n as usize, &mut |e| {
            assert!((e.timing() as u64) < n, "{e:?} outside a block of {n}");
            log.push((pos + e.timing() as u64, e));
        });
        pos += n;
        host += n;
        if let Some(((start, end), _)) = host_loop {
            if host >= (end * spb) as u64 {
                host = (start * spb) as u64 + host - (end * spb) as u64;
            }
        }
    }
    let stop = TransportInfo {
        playing: false,
        ..TransportInfo::playing(bpm, host as f64 / spb, rate)
    };
    seq.process_block(&stop, play, 64, &mut |e| {
        log.push((pos + e.timing() as u64, e))
    });
    log
}

/// Every key's note-ons and note-offs alternate, and none is left on.
fn assert_no_stuck_notes(log: &Log) {
    let mut on = std::collections::BTreeMap::<(u8, u8), bool>::new();
    for &(at, e) in log {
        match e {
            SeqEvent::NoteOn { channel, key, .. } => assert!(
                !on.insert((channel, key), true).unwrap_or(false),
                "{key} struck twice at {at}"
            ),
            SeqEvent::NoteOff { channel, key, .. } => assert!(
                on.insert((channel, key), false).unwrap_or(false),
                "{key} ended twice at {at}"
            ),
            SeqEvent::AllNotesOff { .. } => {}
        }
    }
    assert!(on.values().all(|&o| !o), "stuck: {on:?}");
    assert!(
        log.windows(2).all(|w| w[0].0 <= w[1].0),
        "events in time order"
    );
}

#[test]
fn groove_zero_plays_exactly_the_quantized_pattern() {
    for block in [1usize, 100, 512, 4096] {
        let quantized = render(&groove(), &Playback::default(), 120.0, SR, 12.0, || block);
        assert_eq!(
            render(
                &felt_groove(),
                &Playback::default(),
                120.0,
                SR,
                12.0,
                || block
            ),
            quantized,
            "block {block}"
        );
        assert!(
            quantized
                .iter()
                .filter(|(_, e)| matches!(e, SeqEvent::NoteOn { .. }))
                .count()
                > 16
        );
    }
}

#[test]
fn early_and_late_notes_land_on_their_sample_at_any_tempo_rate_and_block_size() {
    let phrase = felt_groove();
    for (bpm, rate) in [
        (120.0, 48_000.0),
        (87.5, 44_100.0),
        (173.0, 96_000.0),
        (60.0, 22_050.0),
    ] {
        let groove = 0.8f32;
        let play = Playback {
            groove,
            ..Playback::default()
        };
        let spb = rate as f64 * 60.0 / bpm;
        // Two loops of the 16-step phrase (one bar each), and the downbeat of a third.
        let beats = 8.5;
        // Where each hit should start: its step plus its scaled shift, on the first
        // sample at or after that time; one before the start plays on the first sample.
        let mut expected: Vec<(u64, u8, u8)> = Vec::new();
        for bar in 0..3u32 {
            for note in phrase.notes() {
                let at_beats = (bar * 16 + note.start as u32) as f64 / 4.0
                    + (note.shift * groove) as f64 / 4.0;
                if at_beats * spb < beats * spb - 1.0 {
                    let (_, key, velocity) = play.voice(Encoding::Drums, note);
                    expected.push((
                        ((at_beats * spb - EPS_SAMPLES).ceil().max(0.0)) as u64,
                        key,
                        (velocity * 127.0).round() as u8,
                    ));
                }
            }
        }
        expected.sort();
        // The crash shares no note with the hat here; each note is struck once per hit.
        for block in [1usize, 64, 511, 4096] {
            let log = render(&phrase, &play, bpm, rate, beats, || block);
            assert_no_stuck_notes(&log);
            let mut ons: Vec<(u64, u8, u8)> = log
                .iter()
                .filter_map(|&(at, e)| match e {
                    SeqEvent::NoteOn { key, velocity, .. } => {
                        Some((at, key, (velocity * 127.0).round() as u8))
                    }
                    _ => None,
                })
                .collect();
            ons.sort();
            assert_eq!(ons, expected, "{bpm} bpm at {rate} Hz in blocks of {block}");
        }
    }
}

#[test]
fn a_host_loop_plays_its_early_first_hits_early_as_a_straight_run_does() {
    // The phrase is one bar: looping bars 1 or 2 must sound exactly like playing on,
    // the downbeat's early kick before each loop start included.
    let phrase = felt_groove();
    let play = Playback {
        groove: 0.8,
        ..Playback::default()
    };
    for rate in [48_000.0, 44_100.0] {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let straight = render(&phrase, &play, 120.0, rate, 16.5, || 512);
        assert_no_stuck_notes(&straight);
        let bar = 2 * rate as u64;
        let early_kick = straight.iter().any(|&(at, e)| {
            matches!(e, SeqEvent::NoteOn { key: 36, .. }) && at % bar > bar - bar / 16
        });
        assert!(early_kick, "the downbeat's kick plays in the bar before");
        // The last loop's ends are a fraction of a sample off the grid, as a host's
        // rounding leaves them: its first point is still read, its end's not twice.
        for range in [(0.0, 4.0), (0.0, 8.0), (1e-5, 4.0 + 1e-5)] {
            for split in [true, false]
                .into_iter()
                .filter(|&split| split || range.0 == 0.0)
            {
                for block in [1usize, 64, 511, 4096, 0] {
                    let sizes = || {
                        if block == 0 {
                            rng.random_range(1..3000)
                        } else {
                            block
                        }
                    };
                    let looped = render_looped(
                        &phrase,
                        &play,
                        120.0,
                        rate,
                        16.5,
                        sizes,
                        Some((range, split)),
                    );
                    assert_eq!(
                        normalise(&looped),
                        normalise(&straight),
                        "{rate} Hz, loop {range:?}, split {split}, blocks of {block}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_groove_amount_blends_velocity_and_timing() {
    let phrase = felt_groove();
    let kick = phrase.notes()[0];
    let accent = drums::accent(&Hit { step: 0, class: 0 }) as f32;
    for groove in [0.0f32, 0.5, 1.0] {
        let play = Playback {
            groove,
            ..Playback::default()
        };
        let (_, _, velocity) = play.voice(Encoding::Drums, &kick);
        let want = (accent + (120.0 - accent) * groove) / 127.0 * (100.0 / 127.0) * 127.0 / 100.0;
        assert!(
            (velocity - want).abs() < 1e-6,
            "groove {groove}: {velocity} vs {want}"
        );
        assert_eq!(
            play.shift_steps(Encoding::Drums, &kick),
            (-0.4 * groove) as f64
        );
        // Melodies are not moved.
        assert_eq!(play.shift_steps(Encoding::Melody, &kick), 0.0);
    }
    // A NaN amount or shift plays on the grid.
    let play = Playback {
        groove: f32::NAN,
        ..Playback::default()
    };
    assert_eq!(play.shift_steps(Encoding::Drums, &kick), 0.0);
    let nan = PhraseNote {
        shift: f32::NAN,
        ..kick
    };
    assert_eq!(
        Playback {
            groove: 1.0,
            ..Playback::default()
        }
        .shift_steps(Encoding::Drums, &nan),
        0.0
    );
}

#[test]
fn no_felt_hit_is_left_sounding_through_swaps_jumps_loops_and_stops() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut seq = started(&felt_groove());
    let mut log = Log::new();
    let (mut pos, mut beats) = (0u64, 0.0f64);
    for block in 0..6_000u64 {
        let n = rng.random_range(1..1500usize);
        if rng.random_bool(0.003) {
            beats = rng.random_range(-2.0..40.0);
        }
        if rng.random_bool(0.01) {
            let hits: Vec<Hit> = (0..rng.random_range(0..40))
                .map(|_| Hit {
                    step: rng.random_range(0..32),
                    class: rng.random_range(0..9),
                })
                .collect();
            let mut p = Phrase::from_drums(&hits, 32, block);
            let feel: Vec<[Feel; drums::NUM_DRUM_CLASSES]> = (0..32)
                .map(|_| {
                    std::array::from_fn(|_| Feel {
                        velocity: rng.random_range(1..128),
                        shift: rng.random_range(-0.5..=0.5),
                    })
                })
                .collect();
            p.set_feel(&feel);
            seq.queue_phrase(&p);
        }
        let mut play = Playback {
            groove: rng.random_range(0.0..=1.0),
            length: rng.random_range(0.1..2.0),
            ..Playback::default()
        };
        play.swap = [
            SwapMode::NextBar,
            SwapMode::Immediately,
            SwapMode::NextPhrase,
        ][rng.random_range(0..3)];
        if rng.random_bool(0.3) {
            play.drum_notes[rng.random_range(0..9)] = play.drum_notes[rng.random_range(0..9)];
        }
        let looping = rng
            .random_bool(0.2)
            .then_some((beats.floor(), beats.floor() + rng.random_range(0.25..3.0)));
        let t = TransportInfo {
            playing: !rng.random_bool(0.003),
            loop_range: looping,
            ..TransportInfo::playing(rng.random_range(60.0..200.0), beats, SR)
        };
        seq.process_block(&t, &play, n, &mut |e| {
            assert!((e.timing() as usize) < n);
            log.push((pos + e.timing() as u64, e));
        });
        pos += n as u64;
        if t.playing {
            beats += n as f64 * t.tempo / 60.0 / SR as f64;
            if let Some((start, end)) = looping {
                if beats >= end {
                    beats = start + (beats - end);
                }
            }
        }
    }
    let stop = TransportInfo {
        playing: false,
        ..TransportInfo::playing(120.0, beats, SR)
    };
    seq.process_block(&stop, &Playback::default(), 64, &mut |e| {
        log.push((pos + e.timing() as u64, e))
    });
    assert_no_stuck_notes(&log);
}

#[test]
fn process_block_does_not_allocate() {
    let demo = demo();
    let mut seq = started(&demo);
    let mut count = 0usize;
    // Under a groove, so that the lookahead and the waiting notes are exercised.
    let play = Playback {
        length: 0.8,
        groove: 1.0,
        ..Playback::default()
    };
    let next = phrase(&[(50, 0, 3), (55, 8, 12)], 16, 9);
    let felt = felt_groove();
    nice_assert_no_alloc::assert_no_alloc(|| {
        let mut pos = 0u64;
        for block in 0..20_000u64 {
            if block % 2_000 == 0 {
                seq.queue_phrase([&next, &demo, &felt][(block / 2_000 % 3) as usize]);
            }
            if block == 10_000 {
                seq.request_all_notes_off();
            }
            let t = TransportInfo {
                playing: block % 1_000 != 999,
                ..TransportInfo::playing(120.0, pos as f64 / 24_000.0, SR)
            };
            seq.process_block(&t, &play, 256, &mut |_| count += 1);
            pos += 256;
        }
    });
    assert!(count > 100);
}

/// A 16-bar phrase whose bar `b` opens with pitch `base + b`, so that what plays names
/// the phrase and the bar it plays.
fn bar_marked(base: u8, generation: u64) -> Phrase {
    let notes: Vec<(u8, u32, u32)> = (0..16u32)
        .map(|b| (base + b as u8, 16 * b, 16 * b + 1))
        .collect();
    phrase(&notes, 256, generation)
}

#[test]
fn sixteen_bar_swaps_keep_the_bar_position_in_every_mode_meter_and_across_the_loop() {
    let three_four = Meter {
        numerator: 3,
        denominator: 4,
    };
    // (swap mode, meter, host bar the new phrase is queued in): the host bars that play
    // the old phrase, and the first that plays the new one.
    for (swap, meter, queued_in, takes_over) in [
        // Moving a slider in bar 11 of 16 does not restart the tune: bar 12 plays the new
        // phrase's bar 12.
        (SwapMode::NextBar, Meter::COMMON, 10, 11),
        (SwapMode::NextBar, three_four, 10, 11),
        // Queued in the last bar, it takes over at the loop, at its bar 1.
        (SwapMode::NextBar, Meter::COMMON, 15, 16),
        // Next phrase waits for the end of all 16 bars.
        (SwapMode::NextPhrase, Meter::COMMON, 10, 16),
        (SwapMode::NextPhrase, three_four, 3, 16),
    ] {
        let bar_steps = meter.bar_steps() as u64;
        let play = Playback {
            swap,
            ..Playback::default()
        };
        let mut seq = started(&bar_marked(40, 1));
        let mut log = Log::new();
        // Into the queued bar, past its downbeat.
        let pos = run_in(
            meter,
            &mut seq,
            &play,
            (queued_in * bar_steps + 3) * STEP,
            || 500,
            &mut log,
            0,
        );
        seq.queue_phrase(&bar_marked(70, 2));
        let end = (takes_over + 3) * bar_steps * STEP;
        run_in(meter, &mut seq, &play, end - pos, || 500, &mut log, pos);
        let ons: Vec<(u64, u8)> = on_grid(&log)
            .into_iter()
            .filter(|e| e.2)
            .map(|e| (e.0, e.1))
            .collect();
        let want: Vec<(u64, u8)> = (0..takes_over + 3)
            .map(|bar| {
                let base = if bar < takes_over { 40 } else { 70 };
                (bar * bar_steps, base + (bar % 16) as u8)
            })
            .collect();
        assert_eq!(
            ons, want,
            "{swap:?} in {meter:?}, queued in bar {queued_in}"
        );
    }
}

#[test]
fn the_next_swap_bar_is_where_a_phrase_queued_now_takes_over() {
    let mut seq = started(&bar_marked(40, 1));
    let at = |beats: f64| TransportInfo::playing(120.0, beats, SR);
    // Not yet in place: a phrase would start the bar the host is in.
    assert_eq!(seq.next_swap_bar(&at(41.0), SwapMode::NextBar), 10);
    let mut log = Log::new();
    // Playing bar 10 of the song (beat 41): the next bar line, or the phrase's end.
    run(
        &mut seq,
        &Playback::default(),
        41 * 2 * STEP,
        || 500,
        &mut log,
        0,
    );
    assert_eq!(seq.next_swap_bar(&at(41.0), SwapMode::NextBar), 11);
    assert_eq!(seq.next_swap_bar(&at(41.0), SwapMode::Immediately), 11);
    assert_eq!(seq.next_swap_bar(&at(41.0), SwapMode::NextPhrase), 16);
    assert_eq!(seq.next_swap_bar(&at(70.0), SwapMode::NextPhrase), 32);
    // A host loop over bars 8 to 11 comes back to bar 8 at its end.
    let looping = TransportInfo {
        loop_range: Some((32.0, 48.0)),
        ..at(45.0)
    };
    assert_eq!(seq.next_swap_bar(&looping, SwapMode::NextBar), 8);
    let inside = TransportInfo {
        loop_range: Some((32.0, 48.0)),
        ..at(41.0)
    };
    assert_eq!(seq.next_swap_bar(&inside, SwapMode::NextBar), 11);
    // Stopped: where it would start again.
    let stopped = TransportInfo {
        playing: false,
        ..at(41.0)
    };
    assert_eq!(seq.next_swap_bar(&stopped, SwapMode::NextBar), 10);
}
