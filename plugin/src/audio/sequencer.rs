//! The audio-thread player: loops the current [`Phrase`] locked to the host timeline.
//!
//! Phrase step = `floor(pos_beats * 4) mod phrase.steps`, so the loop follows the host's
//! bars, loops and jumps. Events carry the sample offset inside the block of the first
//! sample at or after their grid time, computed from the absolute beat position, so the
//! events are the same whatever the block size (offline renders = realtime).
//!
//! The output is monophonic: one note sounds at a time, and it is always ended: on the
//! next onset, at its (scaled) end, on a phrase swap, on transport stop, on a position
//! jump, on bypass and after [`Sequencer::request_all_notes_off`] (reset, deactivate).
//!
//! No allocation, lock or syscall: `Sequencer` is plain data and `process_block` only
//! calls `out`.

use crate::audio::handoff::{Phrase, PhraseConsumer};
use crate::music::melody::STEPS_PER_BAR;
use crate::params::SwapMode;

/// Grid resolution: 16th notes.
const STEPS_PER_BEAT: f64 = 4.0;
/// Slack for float error when a grid time falls exactly on a sample, in samples.
const EPS_SAMPLES: f64 = 1e-4;
/// A block starting further than this from where the last one ended is a jump.
/// Generous enough for hosts that round positions or change tempo inside a block.
const JUMP_TOLERANCE_BEATS: f64 = 0.01;

/// The host transport, as much of it as the sequencer needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransportInfo {
    pub playing: bool,
    /// Beats per minute.
    pub tempo: f64,
    /// Position of the block's first sample, in quarter notes.
    pub pos_beats: f64,
    pub sample_rate: f32,
}

/// Playback settings applied to the phrase as it plays (read from the params each block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Transpose plus 12 x octave.
    pub semitones: i32,
    /// Normalised 0..=1, as nice-plug's note events.
    pub velocity: f32,
    /// Scales each note's length; notes still end at the next onset (monophonic).
    pub length: f32,
    pub swap: SwapMode,
    /// Bypassed: end the sounding note, then stay silent.
    pub bypass: bool,
}

impl Default for Playback {
    fn default() -> Self {
        Self { semitones: 0, velocity: 100.0 / 127.0, length: 1.0, swap: SwapMode::NextBar, bypass: false }
    }
}

/// What the sequencer emits; `timing` is the sample offset inside the block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqEvent {
    NoteOn { timing: u32, key: u8, velocity: f32 },
    NoteOff { timing: u32, key: u8 },
    /// Sent after a reset or deactivation, when the host may have lost track of notes:
    /// becomes MIDI CC 123 (all notes off).
    AllNotesOff { timing: u32 },
}

impl SeqEvent {
    pub fn timing(&self) -> u32 {
        match *self {
            SeqEvent::NoteOn { timing, .. } | SeqEvent::NoteOff { timing, .. } | SeqEvent::AllNotesOff { timing } => timing,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sounding {
    key: u8,
    /// Absolute position of its note-off, in 16th steps of the host timeline.
    off_step: f64,
}

pub struct Sequencer {
    current: Phrase,
    pending: Phrase,
    has_pending: bool,
    sounding: Option<Sounding>,
    /// Where the last block ended, to detect jumps; `None` when stopped.
    expected_beats: Option<f64>,
    /// The first grid step not yet played; `None` after a stop or jump.
    next_step: Option<i64>,
    all_off_requested: bool,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequencer {
    pub fn new() -> Self {
        Self {
            current: Phrase::EMPTY,
            pending: Phrase::EMPTY,
            has_pending: false,
            sounding: None,
            expected_beats: None,
            next_step: None,
            all_off_requested: false,
        }
    }

    pub fn current(&self) -> &Phrase {
        &self.current
    }

    /// The key sounding now, if any.
    pub fn sounding_key(&self) -> Option<u8> {
        self.sounding.map(|s| s.key)
    }

    /// Takes the newest phrase from the worker's queue, if any, as the pending phrase.
    pub fn receive(&mut self, queue: &mut PhraseConsumer) {
        if queue.pop_newest(&mut self.pending) {
            self.has_pending = true;
        }
    }

    /// Queues a phrase to replace the current one at the next swap point.
    pub fn queue_phrase(&mut self, phrase: &Phrase) {
        self.pending = *phrase;
        self.has_pending = true;
    }

    /// Ends the sounding note and sends all-notes-off at the start of the next block
    /// (reset and deactivate can't send events themselves). Real-time safe.
    pub fn request_all_notes_off(&mut self) {
        self.all_off_requested = true;
    }

    pub fn process_block(&mut self, transport: &TransportInfo, play: &Playback, samples: usize, out: &mut impl FnMut(SeqEvent)) {
        if self.all_off_requested {
            self.all_off_requested = false;
            self.silence(0, out);
            out(SeqEvent::AllNotesOff { timing: 0 });
            self.expected_beats = None;
            self.next_step = None;
        }
        if samples == 0 {
            return;
        }
        if !transport.playing || play.bypass || !(transport.tempo > 0.0) || !(transport.sample_rate > 0.0) {
            self.silence(0, out);
            self.expected_beats = None;
            self.next_step = None;
            // Nothing sounds, so a waiting phrase can come in now.
            if self.has_pending {
                self.swap();
            }
            return;
        }

        let samples_per_beat = transport.sample_rate as f64 * 60.0 / transport.tempo;
        let b0 = transport.pos_beats;
        if let Some(expected) = self.expected_beats {
            if (b0 - expected).abs() > JUMP_TOLERANCE_BEATS + 1.0 / samples_per_beat {
                self.silence(0, out);
                self.next_step = None;
            }
        }
        self.expected_beats = Some(b0 + samples as f64 / samples_per_beat);

        let n = samples as i64;
        let offset_of = |step: f64| -> i64 { ((step / STEPS_PER_BEAT - b0) * samples_per_beat - EPS_SAMPLES).ceil() as i64 };
        // First step whose offset can be >= 0: those within one sample before b0 land on 0.
        let first = ((b0 - 1.0 / samples_per_beat) * STEPS_PER_BEAT).floor() as i64;
        let mut p = match self.next_step {
            // Continuing: play every step not yet played, late by at most a sample or
            // two if the tempo changed between blocks.
            Some(next) => next.max(first - 1),
            None => first,
        };
        loop {
            let at = offset_of(p as f64);
            if at >= n {
                break;
            }
            if at >= 0 || self.next_step.is_some() {
                let at = at.max(0);
                self.flush_off(at, &offset_of, out);
                self.step(p, at as u32, play, out);
                self.next_step = Some(p + 1);
            }
            p += 1;
        }
        self.flush_off(n - 1, &offset_of, out);
    }

    /// Plays grid step `p` (absolute, on the host timeline) at sample `timing`.
    fn step(&mut self, p: i64, timing: u32, play: &Playback, out: &mut impl FnMut(SeqEvent)) {
        if self.has_pending && self.swap_due(p, play.swap) {
            self.silence(timing, out);
            self.swap();
        }
        let steps = self.current.steps.max(1) as i64;
        let s = p.rem_euclid(steps) as u16;
        let notes = self.current.notes();
        let Ok(i) = notes.binary_search_by_key(&s, |n| n.start) else {
            return;
        };
        let note = notes[i];
        self.silence(timing, out);
        let key = (note.pitch as i32 + play.semitones).clamp(0, 127) as u8;
        out(SeqEvent::NoteOn { timing, key, velocity: play.velocity });
        let length = (note.end - note.start) as f64 * play.length.max(0.0) as f64;
        self.sounding = Some(Sounding { key, off_step: p as f64 + length });
    }

    fn swap_due(&self, p: i64, mode: SwapMode) -> bool {
        if self.current.is_empty() && self.sounding.is_none() {
            return true;
        }
        match mode {
            SwapMode::NextBar => p.rem_euclid(STEPS_PER_BAR as i64) == 0,
            SwapMode::NextPhrase => p.rem_euclid(self.current.steps.max(1) as i64) == 0,
            SwapMode::Immediately => true,
        }
    }

    fn swap(&mut self) {
        self.current = self.pending;
        self.has_pending = false;
    }

    /// Ends the sounding note if its off time falls at or before sample `limit`.
    fn flush_off(&mut self, limit: i64, offset_of: &impl Fn(f64) -> i64, out: &mut impl FnMut(SeqEvent)) {
        if let Some(s) = self.sounding {
            let at = offset_of(s.off_step);
            if at <= limit {
                self.silence(at.clamp(0, limit) as u32, out);
            }
        }
    }

    /// Ends the sounding note now.
    fn silence(&mut self, timing: u32, out: &mut impl FnMut(SeqEvent)) {
        if let Some(s) = self.sounding.take() {
            out(SeqEvent::NoteOff { timing, key: s.key });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::melody::Note;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const SR: f32 = 48_000.0;
    /// At 120 bpm and 48 kHz a 16th is exactly 6000 samples.
    const STEP: u64 = 6000;

    fn phrase(notes: &[(u8, u32, u32)], steps: usize, generation: u64) -> Phrase {
        let notes: Vec<Note> = notes.iter().map(|&(pitch, start, end)| Note { pitch, start, end }).collect();
        Phrase::from_notes(&notes, steps, generation)
    }

    fn demo() -> Phrase {
        phrase(&[(60, 0, 4), (62, 4, 6), (64, 8, 16), (67, 20, 21), (72, 24, 32)], 32, 1)
    }

    /// (absolute sample, event) pairs.
    type Log = Vec<(u64, SeqEvent)>;

    /// Runs a host that starts at beat 0 and plays `total` samples in blocks from `sizes`.
    fn run(seq: &mut Sequencer, play: &Playback, total: u64, mut sizes: impl FnMut() -> usize, log: &mut Log, start: u64) -> u64 {
        let spb = SR as f64 * 60.0 / 120.0;
        let mut pos = start;
        while pos < start + total {
            let n = (sizes() as u64).min(start + total - pos) as usize;
            let t = TransportInfo { playing: true, tempo: 120.0, pos_beats: pos as f64 / spb, sample_rate: SR };
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
            (0, SeqEvent::NoteOn { timing: 0, key: 60, velocity: v }),
            (4 * STEP, SeqEvent::NoteOff { timing: 0, key: 60 }),
            (4 * STEP, SeqEvent::NoteOn { timing: 0, key: 62, velocity: v }),
            (6 * STEP, SeqEvent::NoteOff { timing: 0, key: 62 }),
            (8 * STEP, SeqEvent::NoteOn { timing: 0, key: 64, velocity: v }),
            (16 * STEP, SeqEvent::NoteOff { timing: 0, key: 64 }),
            (20 * STEP, SeqEvent::NoteOn { timing: 0, key: 67, velocity: v }),
            (21 * STEP, SeqEvent::NoteOff { timing: 0, key: 67 }),
            (24 * STEP, SeqEvent::NoteOn { timing: 0, key: 72, velocity: v }),
            (32 * STEP, SeqEvent::NoteOff { timing: 0, key: 72 }),
            (32 * STEP, SeqEvent::NoteOn { timing: 0, key: 60, velocity: v }),
        ]
    }

    /// Drops the in-block timing so logs from different block sizes compare equal.
    fn normalise(log: &Log) -> Vec<(u64, SeqEvent)> {
        log.iter()
            .map(|&(at, e)| {
                let e = match e {
                    SeqEvent::NoteOn { key, velocity, .. } => SeqEvent::NoteOn { timing: 0, key, velocity },
                    SeqEvent::NoteOff { key, .. } => SeqEvent::NoteOff { timing: 0, key },
                    SeqEvent::AllNotesOff { .. } => SeqEvent::AllNotesOff { timing: 0 },
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
            run(&mut seq, &Playback::default(), 32 * STEP + 10, || block, &mut log, 0);
            assert_eq!(normalise(&log), expected_demo_first_loop(), "block size {block}");
            for &(at, e) in &log {
                assert_eq!(at % block as u64, e.timing() as u64, "timing is the offset in the block");
            }
        }
    }

    #[test]
    fn offline_equals_realtime_with_ragged_blocks_and_odd_tempo() {
        // 133 bpm at 44.1 kHz: grid times fall between samples.
        let render = |sizes: &mut dyn FnMut() -> usize| {
            let mut seq = started(&demo());
            let play = Playback { length: 0.7, ..Playback::default() };
            let spb = 44_100.0 * 60.0 / 133.0;
            let mut log = Log::new();
            let mut pos = 0u64;
            while pos < 400_000 {
                let n = sizes();
                let t = TransportInfo { playing: true, tempo: 133.0, pos_beats: pos as f64 / spb, sample_rate: 44_100.0 };
                seq.process_block(&t, &play, n, &mut |e| log.push((pos + e.timing() as u64, e)));
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
        let play = Playback { semitones: -12 + 2, velocity: 0.5, length: 0.5, ..Playback::default() };
        let mut log = Log::new();
        run(&mut seq, &play, 8 * STEP, || 256, &mut log, 0);
        assert_eq!(
            normalise(&log),
            vec![
                (0, SeqEvent::NoteOn { timing: 0, key: 50, velocity: 0.5 }),
                (2 * STEP, SeqEvent::NoteOff { timing: 0, key: 50 }),
                (4 * STEP, SeqEvent::NoteOn { timing: 0, key: 52, velocity: 0.5 }),
                (5 * STEP, SeqEvent::NoteOff { timing: 0, key: 52 }),
            ]
        );
        // Longer than written: a note is cut by the next onset, never overlaps.
        let mut seq = started(&demo());
        let mut log = Log::new();
        run(&mut seq, &Playback { length: 2.0, ..Playback::default() }, 8 * STEP + 1, || 100, &mut log, 0);
        let keys: Vec<(u64, SeqEvent)> = normalise(&log);
        assert_eq!(keys[1], (4 * STEP, SeqEvent::NoteOff { timing: 0, key: 60 }));
        assert_eq!(keys[3], (8 * STEP, SeqEvent::NoteOff { timing: 0, key: 62 }));
    }

    #[test]
    fn swap_waits_for_the_next_bar() {
        let mut seq = started(&demo());
        let mut log = Log::new();
        // Play into bar 1 (step 20 sounds 67 until step 21), then queue a new phrase mid-note.
        let pos = run(&mut seq, &Playback::default(), 20 * STEP + 100, || 128, &mut log, 0);
        let next = phrase(&[(48, 0, 2), (50, 16, 18)], 32, 2);
        seq.queue_phrase(&next);
        log.clear();
        run(&mut seq, &Playback::default(), 48 * STEP - pos, || 128, &mut log, pos);
        let v = 100.0 / 127.0;
        assert_eq!(
            normalise(&log),
            vec![
                (21 * STEP, SeqEvent::NoteOff { timing: 0, key: 67 }),
                // The old phrase plays on until the bar line at step 32 ...
                (24 * STEP, SeqEvent::NoteOn { timing: 0, key: 72, velocity: v }),
                (32 * STEP, SeqEvent::NoteOff { timing: 0, key: 72 }),
                // ... where the new one takes over, on the host's bar grid.
                (32 * STEP, SeqEvent::NoteOn { timing: 0, key: 48, velocity: v }),
                (34 * STEP, SeqEvent::NoteOff { timing: 0, key: 48 }),
            ]
        );
        assert_eq!(seq.current().generation, 2);
    }

    #[test]
    fn swap_modes_phrase_and_immediately() {
        // NextPhrase: queued at step 5, waits past the bar line at 16 for the loop point at 32.
        let next = phrase(&[(48, 0, 32)], 32, 2);
        let mut seq = started(&demo());
        let play = Playback { swap: SwapMode::NextPhrase, ..Playback::default() };
        let mut log = Log::new();
        let pos = run(&mut seq, &play, 5 * STEP, || 64, &mut log, 0);
        seq.queue_phrase(&next);
        log.clear();
        run(&mut seq, &play, 40 * STEP - pos, || 64, &mut log, pos);
        let first_on = normalise(&log).into_iter().find(|(_, e)| matches!(e, SeqEvent::NoteOn { key: 48, .. })).unwrap();
        assert_eq!(first_on.0, 32 * STEP);
        // Immediately: at the next 16th, ending the note that sounds.
        let next = phrase(&[(48, 10, 11)], 32, 3);
        let mut seq = started(&demo());
        let play = Playback { swap: SwapMode::Immediately, ..Playback::default() };
        let mut log = Log::new();
        let pos = run(&mut seq, &play, 9 * STEP + 5, || 64, &mut log, 0);
        seq.queue_phrase(&next);
        log.clear();
        run(&mut seq, &play, STEP, || 64, &mut log, pos);
        assert_eq!(
            normalise(&log),
            vec![
                (10 * STEP, SeqEvent::NoteOff { timing: 0, key: 64 }),
                (10 * STEP, SeqEvent::NoteOn { timing: 0, key: 48, velocity: 100.0 / 127.0 }),
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
        let stopped = TransportInfo { playing: false, tempo: 120.0, pos_beats: 0.5, sample_rate: SR };
        let mut events = Vec::new();
        seq.process_block(&stopped, &play, 512, &mut |e| events.push(e));
        assert_eq!(events, vec![SeqEvent::NoteOff { timing: 0, key: 60 }]);
        assert_eq!(seq.sounding_key(), None);

        // Jump: playing in the middle of note 64 (steps 8..16), the host loops back to beat 0.5.
        let mut log = Log::new();
        run(&mut seq, &play, 5 * STEP, || 512, &mut log, 8 * STEP);
        assert_eq!(seq.sounding_key(), Some(64));
        let back = TransportInfo { playing: true, tempo: 120.0, pos_beats: 0.5, sample_rate: SR };
        events.clear();
        seq.process_block(&back, &play, 512, &mut |e| events.push(e));
        assert_eq!(events, vec![SeqEvent::NoteOff { timing: 0, key: 64 }]);
        assert_eq!(seq.sounding_key(), None, "a note that started before the jump target is not restarted");
    }

    #[test]
    fn bypass_and_reset_end_the_note() {
        let mut seq = started(&demo());
        let mut log = Log::new();
        run(&mut seq, &Playback::default(), 100, || 100, &mut log, 0);
        let t = TransportInfo { playing: true, tempo: 120.0, pos_beats: 100.0 / 24_000.0, sample_rate: SR };
        let mut events = Vec::new();
        seq.process_block(&t, &Playback { bypass: true, ..Playback::default() }, 64, &mut |e| events.push(e));
        assert_eq!(events, vec![SeqEvent::NoteOff { timing: 0, key: 60 }]);

        let mut seq = started(&demo());
        run(&mut seq, &Playback::default(), 100, || 100, &mut log, 0);
        seq.request_all_notes_off();
        events.clear();
        seq.process_block(&t, &Playback::default(), 64, &mut |e| events.push(e));
        assert_eq!(events, vec![SeqEvent::NoteOff { timing: 0, key: 60 }, SeqEvent::AllNotesOff { timing: 0 }]);
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
            let tempo = if rng.random_bool(0.001) { rng.random_range(60.0..200.0) } else { 120.0 };
            let playing = !rng.random_bool(0.002);
            if rng.random_bool(0.002) {
                pos_beats = rng.random_range(-4.0..64.0);
            }
            if rng.random_bool(0.003) {
                let notes: Vec<(u8, u32, u32)> = (0..rng.random_range(0..12)).map(|i| (rng.random_range(40..90), i * 3, i * 3 + rng.random_range(1..6))).collect();
                seq.queue_phrase(&phrase(&notes, 16 * rng.random_range(1..5), block));
            }
            if rng.random_bool(0.001) {
                seq.request_all_notes_off();
            }
            let play = Playback {
                length: rng.random_range(0.1..2.0),
                swap: [SwapMode::NextBar, SwapMode::NextPhrase, SwapMode::Immediately][rng.random_range(0..3)],
                bypass: rng.random_bool(0.001),
                ..Playback::default()
            };
            let t = TransportInfo { playing, tempo, pos_beats, sample_rate: SR };
            let mut last_timing = 0;
            seq.process_block(&t, &play, n, &mut |e| {
                assert!(e.timing() >= last_timing, "events in time order");
                last_timing = e.timing();
                match e {
                    SeqEvent::NoteOn { key, .. } => {
                        assert_eq!(sounding, None, "monophonic: the previous note was ended first");
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
        let stop = TransportInfo { playing: false, tempo: 120.0, pos_beats, sample_rate: SR };
        seq.process_block(&stop, &Playback::default(), 64, &mut |e| {
            if let SeqEvent::NoteOff { key, .. } = e {
                assert_eq!(sounding, Some(key));
                sounding = None;
            }
        });
        assert_eq!(sounding, None, "nothing sounds after the transport stops");
    }

    #[test]
    fn process_block_does_not_allocate() {
        let demo = demo();
        let mut seq = started(&demo);
        let mut count = 0usize;
        let play = Playback { length: 0.8, ..Playback::default() };
        let next = phrase(&[(50, 0, 3), (55, 8, 12)], 16, 9);
        nice_assert_no_alloc::assert_no_alloc(|| {
            let mut pos = 0u64;
            for block in 0..20_000u64 {
                if block % 2_000 == 0 {
                    seq.queue_phrase(if block % 4_000 == 0 { &next } else { &demo });
                }
                if block == 10_000 {
                    seq.request_all_notes_off();
                }
                let t = TransportInfo { playing: block % 1_000 != 999, tempo: 120.0, pos_beats: pos as f64 / 24_000.0, sample_rate: SR };
                seq.process_block(&t, &play, 256, &mut |_| count += 1);
                pos += 256;
            }
        });
        assert!(count > 100);
    }
}
