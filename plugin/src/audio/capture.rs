//! Capturing clips on the audio thread: [`Capturer`] records the notes played in and turns
//! Capture presses into [`CaptureRequest`]s, which carry the phrase to the worker.
//!
//! Notes are stamped on the plugin's own beat clock ([`crate::audio::timeline::Clock`]),
//! which runs whether or not the host plays, so a riff played into a stopped transport can
//! be captured too. A capture lays the host's bars onto the phrase's as playback does
//! ([`crate::audio::timeline::phrase_step`]): host bar `j` of the window becomes bar `j`
//! of the clip, from its downbeat; the beats a bar longer than 4/4 has past the fourth
//! are not captured, and a shorter bar leaves the rest of its clip bar silent.
//! Everything here is fixed-size: recording and capturing never allocate.

use nice_plug::midi::Key;
use nice_plug::prelude::NoteEvent;
use std::sync::atomic::Ordering;

use crate::audio::chords::ChordListener;
use crate::audio::timeline::{Meter, TransportInfo, MODEL_BAR_STEPS, STEPS_PER_BEAT};
use crate::link::capture::CaptureRequest;
use crate::params::{CaptureSource, LatentLiveParams};
use crate::state::clips::Slot;
use latent_live_core::model::MAX_STEPS;
use latent_live_core::music::phrase::{Phrase, PhraseNote};
use latent_live_core::music::Encoding;
use latent_live_core::music::{drums, groove};

/// Notes remembered, oldest overwritten first: minutes of playing.
pub const MAX_RECORDED: usize = 1024;

/// The audio thread's side of Capture: it records what is played in, and turns presses
/// of Capture A to D into requests for the worker.
#[derive(Default)]
pub struct Capturer {
    recorder: InputRecorder,
    /// Capture A to D press counts as last acted on.
    presses: [u32; 4],
    /// Input and tap captures waiting for their bar line, by slot: the clock beat it
    /// falls on, the meter of the bars before it, and what is captured.
    due: [Option<(f64, Meter, CaptureSource)>; 4],
}

impl Capturer {
    /// Records a note played in during the block about to be processed.
    pub fn record(&mut self, event: &NoteEvent<()>, transport: &TransportInfo) {
        let at = |timing: u32| transport.clock_beats + transport.beats_in(timing as usize);
        match *event {
            NoteEvent::NoteOn {
                timing,
                key: Key::Number(key),
                velocity,
                ..
            } if velocity > 0.0 => self.recorder.note_on(key, at(timing)),
            NoteEvent::NoteOn {
                timing,
                key: Key::Number(key),
                ..
            }
            | NoteEvent::NoteOff {
                timing,
                key: Key::Number(key),
                ..
            } => self.recorder.note_off(key, at(timing)),
            _ => {}
        }
    }

    /// Acts on Capture A to D presses (one capture per block, however many presses). The
    /// phrase `playing` is taken at once. Notes played in are taken over as many host
    /// bars as the phrase playing has, ending on a bar line of the host's timeline: the
    /// one just passed when pressed in the first half of a bar, else the next one (the
    /// capture waits for it), so a press a little early or late takes the phrase the
    /// musician just played. With the transport stopped there is no bar line: the clip
    /// starts on the first note played in that length of time.
    pub fn process(
        &mut self,
        params: &LatentLiveParams,
        transport: &TransportInfo,
        playing: &Phrase,
        chords: &ChordListener,
        send: &mut impl FnMut(CaptureRequest),
    ) {
        let steps = playing.steps;
        let bars = (steps.max(1) as u32).div_ceil(MODEL_BAR_STEPS) as f64;
        let now = transport.clock_beats;
        for (i, slot) in Slot::ALL.into_iter().enumerate() {
            let presses = params.capture_button(slot).1.load(Ordering::Acquire);
            if presses != self.presses[i] {
                self.presses[i] = presses;
                let (meter, source) = (transport.meter, params.capture.source.value());
                if source == CaptureSource::Playing {
                    send(CaptureRequest {
                        slot,
                        source,
                        phrase: *playing,
                        chords: [0; MAX_STEPS],
                    });
                } else if transport.playing {
                    let bar = meter.bar_beats();
                    let phase = transport.pos_beats - transport.bar_start;
                    self.due[i] = Some((
                        if phase < bar / 2.0 {
                            now - phase
                        } else {
                            now + bar - phase
                        },
                        meter,
                        source,
                    ));
                } else {
                    let length = bars * meter.bar_beats();
                    let start = self
                        .recorder
                        .first_onset(now - length, now)
                        .unwrap_or(now - length);
                    send(CaptureRequest {
                        slot,
                        source,
                        phrase: self.recorder.capture(
                            source,
                            start,
                            steps,
                            meter,
                            playing.encoding,
                            params,
                        ),
                        chords: chords_from(chords, start, steps),
                    });
                }
            }
            if let Some((end, meter, source)) = self.due[i].filter(|&(end, _, _)| end <= now) {
                self.due[i] = None;
                let start = end - bars * meter.bar_beats();
                send(CaptureRequest {
                    slot,
                    source,
                    phrase: self.recorder.capture(
                        source,
                        start,
                        steps,
                        meter,
                        playing.encoding,
                        params,
                    ),
                    chords: chords_from(chords, start, steps),
                });
            }
        }
    }

    /// Forgets what was played in and any capture waiting for its bar line (reset).
    pub fn clear(&mut self) {
        self.recorder.clear();
        self.due = [None; 4];
    }
}

/// The chords played over a capture of `steps` from `start` (beats on the plugin's
/// clock), a chord a 16th.
fn chords_from(chords: &ChordListener, start: f64, steps: u16) -> [u16; MAX_STEPS] {
    let mut out = [0; MAX_STEPS];
    chords.chords_over(start, &mut out[..(steps as usize).min(MAX_STEPS)]);
    out
}

#[derive(Debug, Clone, Copy, Default)]
struct Recorded {
    pitch: u8,
    start: f64,
    /// `f64::INFINITY` while the key is held.
    end: f64,
}

/// The notes played in, on the plugin's clock.
pub struct InputRecorder {
    notes: [Recorded; MAX_RECORDED],
    /// Index of the next slot to write.
    head: usize,
    len: usize,
}

impl Default for InputRecorder {
    fn default() -> Self {
        Self {
            notes: [Recorded::default(); MAX_RECORDED],
            head: 0,
            len: 0,
        }
    }
}

impl InputRecorder {
    pub fn note_on(&mut self, pitch: u8, beat: f64) {
        self.notes[self.head] = Recorded {
            pitch,
            start: beat,
            end: f64::INFINITY,
        };
        self.head = (self.head + 1) % MAX_RECORDED;
        self.len = (self.len + 1).min(MAX_RECORDED);
    }

    /// Ends the latest held note of `pitch`.
    pub fn note_off(&mut self, pitch: u8, beat: f64) {
        if let Some(note) = self
            .recent_mut()
            .find(|n| n.pitch == pitch && n.end.is_infinite())
        {
            note.end = beat.max(note.start);
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Newest first.
    fn recent(&self) -> impl Iterator<Item = &Recorded> {
        (1..=self.len)
            .map(move |back| &self.notes[(self.head + MAX_RECORDED - back) % MAX_RECORDED])
    }

    fn recent_mut(&mut self) -> impl Iterator<Item = &mut Recorded> {
        let (head, len) = (self.head, self.len);
        let (newer, older) = self.notes.split_at_mut(head);
        newer
            .iter_mut()
            .rev()
            .chain(older.iter_mut().rev())
            .take(len)
    }

    /// The onset of the first note that starts in `[from, to)`, if any.
    pub fn first_onset(&self, from: f64, to: f64) -> Option<f64> {
        self.recent()
            .map(|n| n.start)
            .filter(|&s| s >= from && s < to)
            .reduce(f64::min)
    }

    /// The clip a capture of what was played in makes: taps ([`Self::tap_phrase`]), or
    /// notes like the phrase playing's (melody or drums: [`Self::phrase`] or
    /// [`Self::drum_phrase`] with the kit mapping of `params`).
    pub fn capture(
        &self,
        source: CaptureSource,
        start: f64,
        steps: u16,
        meter: Meter,
        encoding: Encoding,
        params: &LatentLiveParams,
    ) -> Phrase {
        match (source, encoding) {
            (CaptureSource::Tap, _) => self.tap_phrase(start, steps, meter, 0),
            (_, Encoding::Melody) => self.phrase(start, steps, meter, 0),
            (_, Encoding::Drums | Encoding::Groove) => {
                self.drum_phrase(start, steps, meter, &params.drums.note_values(), 0)
            }
        }
    }

    /// Where an onset at beat `onset` of a window from beat `start` lands in the clip:
    /// `(clip step, start of its host bar from the window start)`, `None` outside the
    /// window or past what a clip bar holds.
    fn clip_step(onset: f64, start: f64, steps: usize, meter: Meter) -> Option<(usize, f64)> {
        Self::clip_time(onset, start, steps, meter).map(|(at, _, bar_start)| (at, bar_start))
    }

    /// [`Self::clip_step`], with the onset's shift off that step in steps (negative early).
    fn clip_time(onset: f64, start: f64, steps: usize, meter: Meter) -> Option<(usize, f64, f64)> {
        let bar_beats = meter.bar_beats();
        // Steps of a host bar that a clip bar has room for.
        let kept = meter.bar_steps().min(MODEL_BAR_STEPS) as f64;
        let from_start = onset - start;
        // An onset a little early for a bar line belongs to that bar.
        let bar = ((from_start + 0.5 / STEPS_PER_BEAT) / bar_beats).floor();
        let bar_start = bar * bar_beats;
        let exact = (from_start - bar_start) * STEPS_PER_BEAT;
        let step = exact.round().max(0.0);
        let at = bar * MODEL_BAR_STEPS as f64 + step;
        (step < kept && (0.0..steps as f64).contains(&at)).then_some((
            at as usize,
            exact - step,
            bar_start,
        ))
    }

    /// The clip of `steps` 16ths played from beat `start` in bars of `meter`, quantized
    /// to the grid and reduced to one voice: on each step the highest onset wins, and
    /// every onset ends the note before it. Notes still held end with the window.
    pub fn phrase(&self, start: f64, steps: u16, meter: Meter, generation: u64) -> Phrase {
        let steps = (steps as usize).clamp(1, MAX_STEPS);
        // A 4/4 bar's notes may be held into the next bar, any other bar's end with it.
        let kept = meter.bar_steps().min(MODEL_BAR_STEPS) as f64;
        let contiguous = meter.bar_steps() == MODEL_BAR_STEPS;
        // (pitch, end step) of the onset kept on each step.
        let mut onsets = [None::<(u8, usize)>; MAX_STEPS];
        for note in self.recent() {
            let Some((at, bar_start)) = Self::clip_step(note.start, start, steps, meter) else {
                continue;
            };
            let (at, bar) = (at as f64, (at / MODEL_BAR_STEPS as usize) as f64);
            let end = if note.end.is_finite() {
                let end = ((note.end - start - bar_start) * STEPS_PER_BEAT).round();
                bar * MODEL_BAR_STEPS as f64 + if contiguous { end } else { end.min(kept) }
            } else {
                steps as f64
            };
            let (at, end) = (at as usize, end.max(at + 1.0).min(steps as f64) as usize);
            if onsets[at].is_none_or(|(pitch, _)| note.pitch > pitch) {
                onsets[at] = Some((note.pitch, end));
            }
        }
        let mut phrase = Phrase::silent(steps as u16, generation);
        let mut steps_iter = (0..steps)
            .filter_map(|s| onsets[s].map(|o| (s, o)))
            .peekable();
        while let Some((s, (pitch, end))) = steps_iter.next() {
            let next = steps_iter.peek().map_or(steps, |&(n, _)| n);
            phrase.push(PhraseNote::new(pitch, s as u16, end.min(next) as u16));
        }
        phrase
    }

    /// The rhythm tapped from beat `start`, as [`Self::phrase`] lays it on the clip's bars:
    /// any key, one tap per step (the earliest), each on [`groove::TAP_CLASS`] with its
    /// timing off the step as its shift (the tap-to-drums model reads it). Velocity does
    /// not count, as in Magenta's `fixed_velocities`.
    pub fn tap_phrase(&self, start: f64, steps: u16, meter: Meter, generation: u64) -> Phrase {
        let steps = (steps as usize).clamp(1, MAX_STEPS);
        // The earliest onset of each step, as (onset, shift).
        let mut taps = [None::<(f64, f32)>; MAX_STEPS];
        for note in self.recent() {
            if let Some((at, shift, _)) = Self::clip_time(note.start, start, steps, meter) {
                if taps[at].is_none_or(|(onset, _)| note.start < onset) {
                    taps[at] = Some((note.start, (shift as f32).clamp(-0.5, 0.5)));
                }
            }
        }
        let mut phrase = Phrase::silent(steps as u16, generation);
        phrase.encoding = Encoding::Drums;
        for (step, tap) in taps[..steps].iter().enumerate() {
            if let Some((_, shift)) = *tap {
                phrase.push(PhraseNote {
                    shift,
                    ..PhraseNote::new(groove::TAP_CLASS as u8, step as u16, step as u16 + 1)
                });
            }
        }
        phrase
    }

    /// The drums played from beat `start`, as [`Self::phrase`] lays them on the clip's
    /// bars: every onset is a hit of the class whose note (`kit`) it is, or else of its
    /// GM class; notes of neither are left out. Hits of one class on one step are one.
    pub fn drum_phrase(
        &self,
        start: f64,
        steps: u16,
        meter: Meter,
        kit: &[u8; drums::NUM_DRUM_CLASSES],
        generation: u64,
    ) -> Phrase {
        let steps = (steps as usize).clamp(1, MAX_STEPS);
        // The classes hit on each step, one bit each.
        let mut classes = [0u16; MAX_STEPS];
        for note in self.recent() {
            let Some(class) = kit
                .iter()
                .position(|&k| k == note.pitch)
                .or_else(|| drums::class_of(note.pitch))
            else {
                continue;
            };
            if let Some((at, _)) = Self::clip_step(note.start, start, steps, meter) {
                classes[at] |= 1 << class;
            }
        }
        let mut phrase = Phrase::silent(steps as u16, generation);
        phrase.encoding = Encoding::Drums;
        for (step, &bits) in classes[..steps].iter().enumerate() {
            for class in drums::classes_in(bits) {
                phrase.push(PhraseNote::new(class as u8, step as u16, step as u16 + 1));
            }
        }
        phrase
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_reduces_to_one_voice_and_closes_held_notes() {
        let mut r = InputRecorder::default();
        // Before the window: ignored.
        r.note_on(50, 9.0);
        r.note_off(50, 9.5);
        // A chord on beat 10 (step 0): the top note wins; played slightly late.
        r.note_on(60, 10.02);
        r.note_on(64, 10.03);
        r.note_off(60, 10.5);
        r.note_off(64, 10.98);
        // Step 6, cut by the onset on step 8.
        r.note_on(67, 11.49);
        r.note_on(72, 12.0);
        r.note_off(67, 13.0);
        // Still held when captured.
        r.note_on(71, 13.5);
        let p = r.phrase(10.0, 32, Meter::COMMON, 1);
        assert_eq!(
            p.notes(),
            &[
                PhraseNote::new(64, 0, 4),
                PhraseNote::new(67, 6, 8),
                PhraseNote::new(72, 8, 14),
                PhraseNote::new(71, 14, 32),
            ]
        );
        assert_eq!(r.first_onset(10.0, 20.0), Some(10.02));
    }

    #[test]
    fn keeps_the_newest_notes_when_full() {
        let mut r = InputRecorder::default();
        for i in 0..(MAX_RECORDED + 10) {
            r.note_on(60, i as f64);
            r.note_off(60, i as f64 + 0.25);
        }
        assert_eq!(r.first_onset(0.0, 1e9), Some(10.0));
        let p = r.phrase(MAX_RECORDED as f64 + 6.0, 16, Meter::COMMON, 0);
        assert_eq!(p.notes().len(), 4);
        assert_eq!(p.notes()[0], PhraseNote::new(60, 0, 1));
    }

    #[test]
    fn host_bars_of_other_meters_become_clip_bars_from_their_downbeats() {
        let mut r = InputRecorder::default();
        // 3/4 from beat 0: bar 0 = beats 0..3, bar 1 = beats 3..6.
        r.note_on(60, 0.0);
        r.note_off(60, 2.9);
        r.note_on(62, 2.98); // early for bar 1's downbeat
        r.note_off(62, 3.5);
        r.note_on(64, 5.5);
        r.note_off(64, 7.0); // held over the bar line: ends with its bar
        let p = r.phrase(
            0.0,
            32,
            Meter {
                numerator: 3,
                denominator: 4,
            },
            0,
        );
        assert_eq!(
            p.notes(),
            &[
                PhraseNote::new(60, 0, 12),
                PhraseNote::new(62, 16, 18),
                PhraseNote::new(64, 26, 28)
            ]
        );
        // 5/4: the fifth beat does not fit a clip bar.
        let mut r = InputRecorder::default();
        r.note_on(67, 4.0);
        r.note_off(67, 4.5);
        r.note_on(69, 5.0);
        r.note_off(69, 5.5);
        let p = r.phrase(
            0.0,
            32,
            Meter {
                numerator: 5,
                denominator: 4,
            },
            0,
        );
        assert_eq!(p.notes(), &[PhraseNote::new(69, 16, 18)]);
    }

    #[test]
    fn drums_played_on_pads_or_keys_become_hits_of_their_classes() {
        use latent_live_core::music::drums::Hit;
        let mut r = InputRecorder::default();
        let mut kit = drums::GM_NOTES;
        kit[0] = 24; // a kit whose kick is on C0
        for (pitch, beat) in [
            (24, 0.0),
            (42, 0.02),
            (42, 0.49),
            (38, 1.0),
            (40, 1.03),
            (36, 2.0),
            (60, 2.5),
            (49, 3.75),
        ] {
            r.note_on(pitch, beat);
            r.note_off(pitch, beat + 0.1);
        }
        let p = r.drum_phrase(0.0, 16, Meter::COMMON, &kit, 0);
        assert_eq!(p.encoding, Encoding::Drums);
        // The mapped kick, GM hats and snares (a flam is one hit), the GM kick 36 as a kick
        // too, pitch 60 as GM's mid tom, and the crash on the last 16th.
        assert_eq!(
            p.drum_hits(),
            vec![
                Hit { step: 0, class: 0 },
                Hit { step: 0, class: 2 },
                Hit { step: 2, class: 2 },
                Hit { step: 4, class: 1 },
                Hit { step: 8, class: 0 },
                Hit { step: 10, class: 5 },
                Hit { step: 15, class: 7 }
            ]
        );
    }
}
