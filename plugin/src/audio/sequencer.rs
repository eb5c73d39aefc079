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

    /// The event `samples` later: one of a part of a block that starts there.
    pub fn delayed(mut self, samples: u32) -> Self {
        match &mut self {
            SeqEvent::NoteOn { timing, .. }
            | SeqEvent::NoteOff { timing, .. }
            | SeqEvent::AllNotesOff { timing, .. } => *timing += samples,
        }
        self
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

    /// The song's bar a phrase queued now takes over at: the bar where the host plays when
    /// the phrase would start there (stopped, or not yet in place), else the next swap
    /// point's bar, where a host loop ending on that bar line comes back to its start.
    pub fn next_swap_bar(&self, transport: &TransportInfo, mode: SwapMode) -> i64 {
        let bars = transport.bars();
        let (bar, start) = bars.bar_at(transport.pos_beats);
        if !transport.playing || self.expected_beats.is_none() {
            return bar;
        }
        let ahead = match mode {
            SwapMode::NextPhrase => {
                let length = (self.current.steps.max(1) as u32).div_ceil(MODEL_BAR_STEPS) as i64;
                length - bar.rem_euclid(length)
            }
            SwapMode::NextBar | SwapMode::Immediately => 1,
        };
        let line = start + ahead as f64 * transport.meter.bar_beats();
        match transport.loop_range {
            Some((loop_start, loop_end))
                if transport.pos_beats < loop_end && line >= loop_end - 1e-6 =>
            {
                bars.bar_at(loop_start).0
            }
            _ => bar.saturating_add(ahead),
        }
    }

    fn swap_due(&self, point: GridPoint, mode: SwapMode) -> bool {
        // Nothing has played yet: the first phrase starts at once. A phrase that rests
        // (a decode may) is played out to its swap point like any other.
        if self.current.generation == Phrase::EMPTY.generation
            && self.current.is_empty()
            && self.is_silent()
        {
            return true;
        }
        if self.pending.swap_on_beat && point.step.is_multiple_of(STEPS_PER_BEAT as u32) {
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
mod tests;
