//! The audio-thread player: loops the current [`Phrase`] locked to the host's bars.
//!
//! Grid point by grid point (16th notes counted from each host bar line), the phrase step
//! to play comes from [`timeline::phrase_step`]: bar `k` of the host plays bar
//! `k mod bars` of the phrase, whatever the meter. Events carry the sample offset inside
//! the block of the first sample at or after their grid time, computed from the host's
//! position, so the events are the same whatever the block size (offline renders =
//! real time). A loop that wraps inside the block is followed where it wraps.
//!
//! Each grid point is read half a step ahead of its time ([`LOOKAHEAD_BEATS`]): its notes
//! wait in fixed slots for their own time, so a drum hit the groove plays early (up to half
//! a 16th, [`Playback::groove`] times its shift) sounds before its step on the exact
//! sample, across block and bar boundaries, and a late one after it. At a host loop's end
//! the lookahead reads on from the loop's start ([`Ahead`]), so the loop's first hits play
//! early too, whether the host loops back inside a block or between two. At Groove 0
//! every note is on the grid and the output is the quantized pattern's, event for event.
//!
//! A melody sounds one note at a time; a drum phrase sounds every hit of a step at once,
//! on the drum channel, each class as the note the kit mapping gives it. Every note is
//! always ended: at the next onset, at its (scaled) end, where the phrase does not go on
//! to its next step (a bar cut short by the meter, a loop, a swap), on transport stop, on
//! a position jump, on bypass and after [`Sequencer::request_all_notes_off`] (reset,
//! deactivate).
//!
//! No allocation, lock or syscall, and no panic whatever the transport: `Sequencer` is
//! plain data, the transport comes sanitised ([`TransportInfo::from_host`]), and a block
//! plays at most [`MAX_STEPS_PER_BLOCK`] grid steps.

use crate::audio::timeline::{
    self, Bars, GridPoint, TransportInfo, MODEL_BAR_STEPS, STEPS_PER_BEAT,
};
use crate::params::{Playback, SwapMode};
use latent_live_core::music::drums;
use latent_live_core::music::phrase::Phrase;

/// Slack for float error when a grid time falls exactly on a sample, in samples.
const EPS_SAMPLES: f64 = 1e-4;
/// A block starting further than this from where the last one ended is a jump.
/// Generous enough for hosts that round positions or change tempo inside a block.
const JUMP_TOLERANCE_BEATS: f64 = 0.01;
/// Grid steps one block may play: 1000 bpm at 22.05 kHz plays 25 in 8192 samples. A
/// host past it (a block of minutes) has the rest of the block skipped, not a stall.
pub const MAX_STEPS_PER_BLOCK: usize = 512;
/// Loop wraps followed inside one block; the shortest loop is a 16th.
const MAX_LOOP_WRAPS: usize = 64;
/// Grid points are read this far ahead of their time, so that a note played early (by up
/// to half a 16th, as a groove places it) is known before its time comes.
const LOOKAHEAD_BEATS: f64 = 0.5 / STEPS_PER_BEAT;
/// The most notes sounding at once: every drum class of one step, and under a groove the
/// previous step's still ringing (a melody sounds one).
const MAX_VOICES: usize = 2 * drums::NUM_DRUM_CLASSES;
/// Notes struck but not yet on: a grid point's late notes and the next one's early notes,
/// with room for a third point where float ties put two points' reads together.
const MAX_WAITING: usize = 3 * drums::NUM_DRUM_CLASSES;

/// What the sequencer emits; `timing` is the sample offset inside the block, `channel`
/// the MIDI channel (0 = channel 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqEvent {
    NoteOn {
        timing: u32,
        channel: u8,
        key: u8,
        velocity: f32,
    },
    NoteOff {
        timing: u32,
        channel: u8,
        key: u8,
    },
    /// Sent after a reset or deactivation, when the host may have lost track of notes:
    /// becomes MIDI CC 123 (all notes off).
    AllNotesOff {
        timing: u32,
        channel: u8,
    },
}

impl SeqEvent {
    pub fn timing(&self) -> u32 {
        match *self {
            SeqEvent::NoteOn { timing, .. }
            | SeqEvent::NoteOff { timing, .. }
            | SeqEvent::AllNotesOff { timing, .. } => timing,
        }
    }
}

/// A note struck by the sequencer: waiting for its time, then sounding until its end.
#[derive(Debug, Clone, Copy)]
struct Voice {
    key: u8,
    channel: u8,
    velocity: f32,
    /// Host positions of its note-on and note-off, in quarter notes.
    on_beats: f64,
    off_beats: f64,
    /// The grid point that struck it, counted since the sequencer was made.
    point: u64,
}

/// The lookahead has read past a host loop's end, from the loop's start: those grid
/// points are placed at `end + (beats - start)`, where the host will play them once it
/// has looped back.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    /// The loop's `(start, end)`.
    range: (f64, f64),
    /// The number of the last grid point read before the loop's end (`Sequencer::points`
    /// then): its voices, and those before it, end where the host loops back.
    last_before: u64,
    /// The loop's first grid point as read ahead, checked against the host's bars when
    /// it loops back between blocks (a meter change inside the loop moves it).
    first: Option<GridPoint>,
}

impl Ahead {
    fn length(&self) -> f64 {
        self.range.1 - self.range.0
    }
}

/// Where a grid point ends the notes struck before it (a new onset, a swap, a step that
/// does not follow): at host position `beats`, the voices of points before `point`.
/// Two can be pending: the loop's start read ahead may come before the cut of the last
/// point before the loop's end.
#[derive(Debug, Clone, Copy)]
struct Cut {
    beats: f64,
    point: u64,
}

pub struct Sequencer {
    current: Phrase,
    pending: Phrase,
    has_pending: bool,
    /// Notes struck ahead of their time (the lookahead), not yet on.
    waiting: [Option<Voice>; MAX_WAITING],
    sounding: [Option<Voice>; MAX_VOICES],
    cuts: [Option<Cut>; 2],
    ahead: Option<Ahead>,
    /// Grid points played so far: numbers the voices.
    points: u64,
    /// Channels played on since the last all-notes-off, one bit each: where the next
    /// one is sent.
    played_channels: u16,
    /// Where the last block ended, to detect jumps; `None` when stopped.
    expected_beats: Option<f64>,
    /// Host position of the first grid point not yet played (past the loop's end while
    /// reading [`Ahead`]); `None` after a stop or jump.
    next_beats: Option<f64>,
    /// The phrase step played at the last grid point: one that does not follow it ends
    /// the sounding note.
    last_step: Option<u16>,
    all_off_requested: bool,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

/// Where one stretch of a block lies: `samples` samples from sample `offset`, starting
/// at host position `beats` (a loop that wraps inside the block makes two stretches).
/// `loop_range` is the host's loop when the host loops back at its end after `beats`.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    beats: f64,
    offset: usize,
    samples: usize,
    samples_per_beat: f64,
    loop_range: Option<(f64, f64)>,
}

impl Stretch {
    /// The first sample at or after host position `beats`, in block samples.
    fn sample_of(&self, beats: f64) -> i64 {
        // Positions are bounded (sanitised transport), so the product fits an i64.
        self.offset as i64
            + ((beats - self.beats) * self.samples_per_beat - EPS_SAMPLES).ceil() as i64
    }

    fn end(&self) -> usize {
        self.offset + self.samples
    }
}

/// The next thing [`Sequencer::flush`] emits; at one sample, note-offs come first, then
/// cuts, then note-ons (the order the grid plays them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Off(usize),
    Cut(usize),
    On(usize),
}

impl Sequencer {
    pub fn new() -> Self {
        Self {
            current: Phrase::EMPTY,
            pending: Phrase::EMPTY,
            has_pending: false,
            waiting: [None; MAX_WAITING],
            sounding: [None; MAX_VOICES],
            cuts: [None; 2],
            ahead: None,
            points: 0,
            played_channels: 0,
            expected_beats: None,
            next_beats: None,
            last_step: None,
            all_off_requested: false,
        }
    }

    pub fn current(&self) -> &Phrase {
        &self.current
    }

    /// The (first) key sounding now, if any.
    pub fn sounding_key(&self) -> Option<u8> {
        self.sounding.iter().flatten().map(|s| s.key).next()
    }

    fn is_silent(&self) -> bool {
        self.sounding
            .iter()
            .chain(&self.waiting)
            .all(Option::is_none)
    }

    /// Takes the newest phrase from the worker's queue, if any, as the pending phrase.
    pub fn receive(&mut self, queue: &mut crate::link::phrase::PhraseConsumer) {
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

    /// Whether the next block starts by ending every note (reset, deactivate).
    pub fn all_notes_off_requested(&self) -> bool {
        self.all_off_requested
    }

    pub fn process_block(
        &mut self,
        transport: &TransportInfo,
        play: &Playback,
        samples: usize,
        out: &mut impl FnMut(SeqEvent),
    ) {
        if self.all_off_requested {
            self.all_off_requested = false;
            self.silence(0, out);
            let channels = self.played_channels | 1 << play.channel;
            for channel in (0..16u8).filter(|c| channels >> c & 1 == 1) {
                out(SeqEvent::AllNotesOff { timing: 0, channel });
            }
            self.played_channels = 0;
            self.lose_place();
        }
        if samples == 0 {
            return;
        }
        if !transport.playing || play.bypass {
            self.silence(0, out);
            self.lose_place();
            // Nothing sounds, so a waiting phrase can come in now.
            if self.has_pending {
                self.swap();
            }
            return;
        }

        let samples_per_beat = transport.samples_per_beat();
        let bars = transport.bars();
        let mut stretch = Stretch {
            beats: transport.pos_beats,
            offset: 0,
            samples,
            samples_per_beat,
            loop_range: None,
        };
        if let Some(expected) = self.expected_beats {
            let tolerance = JUMP_TOLERANCE_BEATS + 1.0 / samples_per_beat;
            let near = |a: f64, b: f64| (a - b).abs() <= tolerance;
            let ahead = self.ahead.filter(|a| {
                transport
                    .loop_range
                    .is_some_and(|(start, end)| near(start, a.range.0) && near(end, a.range.1))
            });
            let first_in_place = |a: &Ahead| {
                a.first.is_none_or(|p| {
                    let host = bars.at_or_after(p.beats - 1.0 / samples_per_beat);
                    (host.bar, host.step) == (p.bar, p.step)
                })
            };
            if ahead.is_some_and(|a| {
                near(expected, a.range.1) && near(stretch.beats, a.range.0) && first_in_place(&a)
            }) {
                // The host looped back between two blocks, where the lookahead expected.
                self.wrap(0, expected - stretch.beats, out);
            } else if !near(stretch.beats, expected)
                || self.ahead.is_some() && ahead.is_none_or(|a| stretch.beats >= a.range.1)
            {
                // A jump, or the loop read ahead is not the host's any more.
                self.silence(0, out);
                self.lose_place();
            }
        }
        let mut budget = MAX_STEPS_PER_BLOCK;
        for _ in 0..MAX_LOOP_WRAPS {
            let end_beats = stretch.beats + stretch.samples as f64 / samples_per_beat;
            let wrap = transport
                .loop_range
                .filter(|&(_, end)| stretch.beats < end && end_beats > end);
            stretch.loop_range = transport.loop_range.filter(|&(_, end)| stretch.beats < end);
            if let Some((_, end)) = wrap {
                stretch.samples = (stretch.sample_of(end) - stretch.offset as i64)
                    .clamp(0, stretch.samples as i64) as usize;
            }
            self.play_stretch(&bars, &stretch, play, &mut budget, out);
            let done = stretch.end();
            match wrap {
                Some((start, end)) if done < samples => {
                    // The host jumps back to the loop start here.
                    self.wrap(done as u32, end - start, out);
                    stretch = Stretch {
                        beats: start,
                        offset: done,
                        samples: samples - done,
                        samples_per_beat,
                        loop_range: None,
                    };
                }
                _ => break,
            }
        }
        self.expected_beats = Some(stretch.beats + stretch.samples as f64 / samples_per_beat);
    }

    /// Plays the grid points of one stretch of the block. Each point is read
    /// [`LOOKAHEAD_BEATS`] before its time, so that its early notes can sound before it;
    /// past the end of the host's loop, the points of the loop's start are read instead.
    fn play_stretch(
        &mut self,
        bars: &Bars,
        stretch: &Stretch,
        play: &Playback,
        budget: &mut usize,
        out: &mut impl FnMut(SeqEvent),
    ) {
        if stretch.samples == 0 {
            return;
        }
        let end = stretch.end() as i64;
        // Continuing: every grid point not yet played, late by at most a sample or two if
        // the tempo changed between blocks. Else those from one sample before the start,
        // which land on its first sample.
        let from = match self.next_beats {
            Some(next) => next.max(stretch.beats - 1.0 / STEPS_PER_BEAT),
            None => stretch.beats - 1.0 / stretch.samples_per_beat,
        };
        // `point` is in the host's time; it plays `shift` later (the loop's length, once
        // reading ahead).
        let mut shift = self.ahead.map_or(0.0, |a| a.length());
        let mut point = bars.at_or_after(from - shift);
        // Within a sample of the loop's ends counts as on them, as the host rounds.
        let sample = 1.0 / stretch.samples_per_beat;
        loop {
            match (self.ahead, stretch.loop_range) {
                (None, Some((start, loop_end))) if point.beats >= loop_end - sample => {
                    let ahead = Ahead {
                        range: (start, loop_end),
                        last_before: self.points,
                        first: None,
                    };
                    self.ahead = Some(ahead);
                    shift = ahead.length();
                    point = bars.at_or_after(start - sample);
                    self.next_beats = Some(point.beats + shift);
                }
                // One pass of the loop is read ahead, however short.
                (Some(ahead), _) if point.beats >= ahead.range.1 - sample => break,
                _ => {}
            }
            let point_played = GridPoint {
                beats: point.beats + shift,
                ..point
            };
            let at = stretch.sample_of(point_played.beats - LOOKAHEAD_BEATS);
            if at >= end {
                break;
            }
            let at = at.max(stretch.offset as i64);
            if *budget == 0 {
                // A block longer than any host's: skip the rest, start afresh next block
                // (and end what was read ahead of a loop, which the host may not reach).
                if self.ahead.is_some() {
                    self.flush(at, stretch, out);
                    self.silence(at as u32, out);
                    self.lose_place();
                }
                self.next_beats = None;
                break;
            }
            *budget -= 1;
            self.flush(at, stretch, out);
            if let Some(ahead) = self.ahead.as_mut().filter(|a| a.first.is_none()) {
                ahead.first = Some(point);
            }
            self.step(point_played, play);
            point = bars.after(point);
            self.next_beats = Some(point.beats + shift);
        }
        self.flush(end - 1, stretch, out);
    }

    /// Reads grid point `point` of the host timeline: strikes its notes, to sound at their
    /// time, and schedules the end of those before it.
    fn step(&mut self, point: GridPoint, play: &Playback) {
        self.points += 1;
        if self.has_pending && self.swap_due(point, play.swap) {
            self.cut_at(point.beats);
            self.swap();
        }
        let Some(step) = timeline::phrase_step(point, self.current.steps) else {
            self.cut_at(point.beats);
            self.last_step = None;
            return;
        };
        let follows = self.last_step.is_some_and(|last| {
            (last as u32 + 1) % self.current.steps.max(1) as u32 == step as u32
        });
        if !follows {
            self.cut_at(point.beats);
        }
        self.last_step = Some(step);
        let notes = self.current.notes();
        let first = notes.partition_point(|n| n.start < step);
        let count = notes[first..]
            .iter()
            .take_while(|n| n.start == step)
            .count();
        for i in first..first + count {
            let note = self.current.notes()[i];
            let (channel, key, velocity) = play.voice(self.current.encoding, &note);
            let on_beats =
                point.beats + play.shift_steps(self.current.encoding, &note) / STEPS_PER_BEAT;
            // A new onset ends what sounds, from its earliest note on.
            self.cut_at(on_beats);
            // Two classes mapped to one note strike it once.
            let this_point = |v: &Option<Voice>| {
                v.is_some_and(|v| v.point == self.points && v.key == key && v.channel == channel)
            };
            if self.waiting.iter().any(this_point) {
                continue;
            }
            let voice = Voice {
                key,
                channel,
                velocity,
                on_beats,
                off_beats: on_beats + play.sounding_steps(&note) / STEPS_PER_BEAT,
                point: self.points,
            };
            // Full only if a host jitters the grid past reason: the note is dropped, never stuck.
            if let Some(free) = self.waiting.iter_mut().find(|v| v.is_none()) {
                *free = Some(voice);
            }
        }
    }

    /// Ends the voices of earlier grid points at host position `beats`, or earlier if
    /// this point already ends them earlier.
    fn cut_at(&mut self, beats: f64) {
        let point = self.points;
        if let Some(cut) = self.cuts.iter_mut().flatten().find(|c| c.point == point) {
            cut.beats = cut.beats.min(beats);
        } else if let Some(free) = self.cuts.iter_mut().find(|c| c.is_none()) {
            *free = Some(Cut { beats, point });
        } else {
            // Not reached with one pass read ahead; if it were, merged cuts end notes
            // early, never late.
            self.cuts = [
                Some(Cut {
                    beats: self
                        .cuts
                        .iter()
                        .flatten()
                        .map(|c| c.beats)
                        .fold(beats, f64::min),
                    point,
                }),
                None,
            ];
        }
    }

    fn swap_due(&self, point: GridPoint, mode: SwapMode) -> bool {
        if self.current.is_empty() && self.is_silent() {
            return true;
        }
        match mode {
            SwapMode::NextBar => point.step == 0,
            SwapMode::NextPhrase => {
                let bars = (self.current.steps.max(1) as u32).div_ceil(MODEL_BAR_STEPS) as i64;
                point.step == 0 && point.bar.rem_euclid(bars) == 0
            }
            SwapMode::Immediately => true,
        }
    }

    fn swap(&mut self) {
        self.current = self.pending;
        self.has_pending = false;
        self.last_step = None;
    }

    /// The host loops back by `length` beats to its loop's start at sample `timing`: the
    /// notes of the points before the loop's end end here, and those read ahead come back
    /// to the host's time. Without a read-ahead, everything ends and the loop's start is
    /// played afresh.
    fn wrap(&mut self, timing: u32, length: f64, out: &mut impl FnMut(SeqEvent)) {
        let Some(ahead) = self.ahead.take() else {
            self.silence(timing, out);
            self.lose_place();
            return;
        };
        let before = |v: &Voice| v.point <= ahead.last_before;
        for slot in &mut self.sounding {
            if let Some(v) = slot.take_if(|v| before(v)) {
                out(SeqEvent::NoteOff {
                    timing,
                    channel: v.channel,
                    key: v.key,
                });
            }
        }
        for slot in &mut self.waiting {
            slot.take_if(|v| before(v));
        }
        for v in self.sounding.iter_mut().chain(&mut self.waiting).flatten() {
            v.on_beats -= length;
            v.off_beats -= length;
        }
        for slot in &mut self.cuts {
            *slot = slot.filter(|c| c.point > ahead.last_before).map(|c| Cut {
                beats: c.beats - length,
                ..c
            });
        }
        self.next_beats = self.next_beats.map(|next| next - length);
    }

    /// Forgets where the transport was: after a stop, a jump, or a loop it did not read
    /// ahead.
    fn lose_place(&mut self) {
        self.expected_beats = None;
        self.next_beats = None;
        self.last_step = None;
        self.ahead = None;
    }

    /// Emits, in time order, the note-offs, cuts and note-ons due at or before sample
    /// `limit` of the stretch.
    fn flush(&mut self, limit: i64, stretch: &Stretch, out: &mut impl FnMut(SeqEvent)) {
        let from = stretch.offset as i64;
        loop {
            let sounding = self
                .sounding
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (stretch.sample_of(v.off_beats), Due::Off(i))));
            let waiting = self
                .waiting
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (stretch.sample_of(v.on_beats), Due::On(i))));
            let cuts = self
                .cuts
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.map(|c| (stretch.sample_of(c.beats), Due::Cut(i))));
            let Some((at, due)) = sounding
                .chain(waiting)
                .chain(cuts)
                .map(|(at, due)| (at.max(from), due))
                .min()
            else {
                return;
            };
            if at > limit {
                return;
            }
            let timing = at as u32;
            match due {
                Due::Off(i) => {
                    if let Some(v) = self.sounding[i].take() {
                        out(SeqEvent::NoteOff {
                            timing,
                            channel: v.channel,
                            key: v.key,
                        });
                    }
                }
                Due::Cut(i) => {
                    if let Some(cut) = self.cuts[i].take() {
                        for slot in &mut self.sounding {
                            if let Some(v) = slot.take_if(|v| v.point < cut.point) {
                                out(SeqEvent::NoteOff {
                                    timing,
                                    channel: v.channel,
                                    key: v.key,
                                });
                            }
                        }
                    }
                }
                Due::On(i) => {
                    let Some(v) = self.waiting[i].take() else {
                        continue;
                    };
                    // A key struck again while it sounds (a late hit under an early one) is
                    // ended first: one note-on per note-off, per key.
                    for slot in &mut self.sounding {
                        if let Some(old) =
                            slot.take_if(|s| s.key == v.key && s.channel == v.channel)
                        {
                            out(SeqEvent::NoteOff {
                                timing,
                                channel: old.channel,
                                key: old.key,
                            });
                        }
                    }
                    if let Some(free) = self.sounding.iter_mut().find(|s| s.is_none()) {
                        out(SeqEvent::NoteOn {
                            timing,
                            channel: v.channel,
                            key: v.key,
                            velocity: v.velocity,
                        });
                        self.played_channels |= 1 << (v.channel & 15);
                        *free = Some(v);
                    }
                }
            }
        }
    }

    /// Ends every sounding note now, and forgets the notes waiting to start.
    fn silence(&mut self, timing: u32, out: &mut impl FnMut(SeqEvent)) {
        for s in self.sounding.iter_mut().filter_map(Option::take) {
            out(SeqEvent::NoteOff {
                timing,
                channel: s.channel,
                key: s.key,
            });
        }
        self.waiting = [None; MAX_WAITING];
        self.cuts = [None; 2];
    }
}

#[cfg(test)]
mod tests {
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
            semitones: -12 + 2,
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
            semitones: 7,
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
            let want =
                (accent + (120.0 - accent) * groove) / 127.0 * (100.0 / 127.0) * 127.0 / 100.0;
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
}
