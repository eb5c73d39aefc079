//! The host's timeline as the audio thread uses it: tempo, position, meter, bar lines and
//! loop, read from whatever the host reports and made safe to compute with.
//!
//! Hosts send NaN, infinities, zero or absurd tempi, positions past any song, meters of
//! 0/0 and bar starts that do not match the position. [`TransportInfo::from_host`] turns
//! each into a value the sequencer can use without a check: a tempo in
//! [`MIN_TEMPO`]..=[`MAX_TEMPO`], a finite position, a meter of 1 to 64 beats of a power
//! of two, the start of the bar holding the position, and a loop that is a real range.
//! What the host does not report at all comes from the plugin's own [`Clock`].

use nice_plug::prelude::Transport;

use latent_live_core::music::melody::{STEPS_PER_BAR, STEPS_PER_QUARTER};

/// Grid steps (16th notes) per quarter note.
pub const STEPS_PER_BEAT: f64 = STEPS_PER_QUARTER as f64;
/// The models' bar: 16 steps of 4/4.
pub const MODEL_BAR_STEPS: u32 = STEPS_PER_BAR as u32;
/// The tempo when the host reports none, or no transport at all: the standalone's.
pub const FALLBACK_TEMPO: f64 = latent_live_core::music::midi::DEFAULT_TEMPO;
pub const MIN_TEMPO: f64 = 1.0;
pub const MAX_TEMPO: f64 = 1000.0;
/// Positions beyond this many quarter notes (about 15 years at 120 bpm) are not a song.
pub const MAX_POSITION_BEATS: f64 = 1e9;
const MIN_SAMPLE_RATE: f32 = 1_000.0;
const MAX_SAMPLE_RATE: f32 = 1_000_000.0;
/// Bar starts within this many beats of where they should be count as on time: hosts
/// round positions.
const BAR_TOLERANCE_BEATS: f64 = 1e-6;

/// A time signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    pub numerator: u32,
    pub denominator: u32,
}

impl Meter {
    pub const COMMON: Meter = Meter {
        numerator: 4,
        denominator: 4,
    };

    /// The host's meter, or 4/4 when it reports none or one that is not a time signature.
    pub fn from_host(numerator: Option<i32>, denominator: Option<i32>) -> Self {
        match (numerator, denominator) {
            (Some(n @ 1..=64), Some(d @ 1..=64)) if (d as u32).is_power_of_two() => Meter {
                numerator: n as u32,
                denominator: d as u32,
            },
            _ => Self::COMMON,
        }
    }

    /// Bar length in quarter notes: 3 for 3/4 and 6/8, 3.5 for 7/8.
    pub fn bar_beats(self) -> f64 {
        self.numerator as f64 * 4.0 / self.denominator as f64
    }

    /// Grid steps that start inside one bar: 12 for 3/4, 14 for 7/8, 24 for 12/8.
    pub fn bar_steps(self) -> u32 {
        // numerator * 16 / denominator, rounded up for bars shorter than a 16th multiple.
        (self.numerator * MODEL_BAR_STEPS).div_ceil(self.denominator)
    }
}

/// The host transport, sanitised: every field can be computed with as it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransportInfo {
    pub playing: bool,
    /// Beats per minute, in `MIN_TEMPO..=MAX_TEMPO`.
    pub tempo: f64,
    /// Position of the block's first sample, in quarter notes; finite.
    pub pos_beats: f64,
    pub sample_rate: f32,
    pub meter: Meter,
    /// Start of the bar holding `pos_beats`, in quarter notes: `<= pos_beats`, less than a
    /// bar before it.
    pub bar_start: f64,
    /// That bar's number, from 0 at the song's start.
    pub bar_number: i64,
    /// The host's loop, when it loops: `start < end`.
    pub loop_range: Option<(f64, f64)>,
    /// The plugin's own clock at the block's first sample (see [`Clock`]).
    pub clock_beats: f64,
}

impl TransportInfo {
    /// A plain 4/4 transport at `tempo`, playing from `pos_beats` (tests and tools).
    pub fn playing(tempo: f64, pos_beats: f64, sample_rate: f32) -> Self {
        let meter = Meter::COMMON;
        let bar = (pos_beats / meter.bar_beats()).floor();
        Self {
            playing: true,
            tempo,
            pos_beats,
            sample_rate,
            meter,
            bar_start: bar * meter.bar_beats(),
            bar_number: bar as i64,
            loop_range: None,
            clock_beats: pos_beats,
        }
    }

    /// What the host reports, sanitised; `clock` fills in what it does not.
    ///
    /// A host that reports no transport at all (no tempo, no position, not playing, as
    /// batch renderers without a playhead do) gets a running one at 120 bpm on the
    /// plugin's clock, as the standalone plays: the phrase is heard from the first block.
    pub fn from_host(host: &Transport, sample_rate: f32, clock: &Clock) -> Self {
        let sample_rate = if sample_rate.is_finite() {
            sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        } else {
            48_000.0
        };
        // VST3 always carries a sample position (zero from a host with no timeline), so
        // only tempo and beats tell a transport from none.
        let no_transport = !host.playing && host.tempo.is_none() && host.pos_beats.is_none();
        let tempo = host
            .tempo
            .filter(|t| t.is_finite() && *t > 0.0)
            .map_or(FALLBACK_TEMPO, |t| t.clamp(MIN_TEMPO, MAX_TEMPO));
        let sane = |beats: f64| beats.is_finite() && beats.abs() <= MAX_POSITION_BEATS;
        let pos_beats = host.pos_beats.filter(|&b| sane(b)).unwrap_or(clock.beats);
        let meter = Meter::from_host(host.time_sig_numerator, host.time_sig_denominator);
        let bar_beats = meter.bar_beats();
        // The host's bar start and number when they hold the position (a block may start
        // on the bar line the host has not moved its bar start to yet); else bars counted
        // from beat 0 in this meter.
        let number = host
            .bar_number
            .map(i64::from)
            .filter(|n| n.abs() <= MAX_POSITION_BEATS as i64);
        let (bar_start, bar_number) = match host.bar_start_pos_beats.filter(|&b| {
            sane(b)
                && (-BAR_TOLERANCE_BEATS..bar_beats + BAR_TOLERANCE_BEATS)
                    .contains(&(pos_beats - b))
        }) {
            Some(b) if pos_beats - b >= bar_beats - BAR_TOLERANCE_BEATS => {
                ((b + bar_beats).min(pos_beats), number.map(|n| n + 1))
            }
            Some(b) => (b.min(pos_beats), number),
            None => ((pos_beats / bar_beats).floor() * bar_beats, None),
        };
        let bar_number = bar_number.unwrap_or_else(|| (bar_start / bar_beats).round() as i64);
        let loop_range = host.loop_range_beats.filter(|&(start, end)| {
            sane(start) && sane(end) && end - start >= 1.0 / STEPS_PER_BEAT
        });
        Self {
            playing: host.playing || no_transport,
            tempo,
            pos_beats,
            sample_rate,
            meter,
            bar_start,
            bar_number,
            loop_range,
            clock_beats: clock.beats,
        }
    }

    pub fn samples_per_beat(&self) -> f64 {
        self.sample_rate as f64 * 60.0 / self.tempo
    }

    /// Quarter notes that `samples` samples last at this tempo.
    pub fn beats_in(&self, samples: usize) -> f64 {
        samples as f64 / self.samples_per_beat()
    }

    /// The bar grid this block's position lies on.
    pub fn bars(&self) -> Bars {
        Bars {
            origin: self.bar_start,
            number: self.bar_number,
            meter: self.meter,
        }
    }
}

/// The plugin's own beat clock: it runs whether or not the host plays, so that a riff
/// played into a stopped transport has times, and a host without a position has one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clock {
    pub beats: f64,
}

impl Clock {
    /// Moves past a block of `samples` at the block's tempo.
    pub fn advance(&mut self, transport: &TransportInfo, samples: usize) {
        let beats = self.beats + transport.beats_in(samples);
        // Wraps long before f64 loses the 16th grid; only stamps of recorded notes see it,
        // and a recording hours old is not captured.
        self.beats = if beats.abs() < MAX_POSITION_BEATS {
            beats
        } else {
            0.0
        };
    }
}

/// Where bars fall: bar `number` starts at `origin` and they follow one another at the
/// meter's length, before and after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bars {
    pub origin: f64,
    pub number: i64,
    pub meter: Meter,
}

/// A point of the 16th grid: `step` steps into bar `bar`, at quarter note `beats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridPoint {
    /// The host's bar number (from 0 at the song's start).
    pub bar: i64,
    pub step: u32,
    pub beats: f64,
}

impl Bars {
    /// The bar holding `beats`, and its start.
    pub fn bar_at(&self, beats: f64) -> (i64, f64) {
        let len = self.meter.bar_beats();
        let offset = ((beats - self.origin) / len + BAR_TOLERANCE_BEATS).floor();
        (
            self.number.saturating_add(offset as i64),
            self.origin + offset * len,
        )
    }

    /// The first grid point at or after `beats` (within float error).
    pub fn at_or_after(&self, beats: f64) -> GridPoint {
        let (bar, start) = self.bar_at(beats);
        let step = ((beats - start) * STEPS_PER_BEAT - 1e-9).ceil().max(0.0);
        if step >= self.meter.bar_steps() as f64 {
            let start = start + self.meter.bar_beats();
            GridPoint {
                bar: bar.saturating_add(1),
                step: 0,
                beats: start,
            }
        } else {
            GridPoint {
                bar,
                step: step as u32,
                beats: start + step / STEPS_PER_BEAT,
            }
        }
    }

    /// The grid point after `point`.
    pub fn after(&self, point: GridPoint) -> GridPoint {
        let bar_start = point.beats - point.step as f64 / STEPS_PER_BEAT;
        if point.step + 1 >= self.meter.bar_steps() {
            GridPoint {
                bar: point.bar.saturating_add(1),
                step: 0,
                beats: bar_start + self.meter.bar_beats(),
            }
        } else {
            GridPoint {
                bar: point.bar,
                step: point.step + 1,
                beats: bar_start + (point.step + 1) as f64 / STEPS_PER_BEAT,
            }
        }
    }
}

/// How a 4/4 phrase fills the host's bars: bar `k` of the host plays bar `k mod bars` of
/// the phrase from its downbeat. A shorter bar ends the phrase's bar early (3/4 and 6/8
/// play its first three beats, 7/8 its first seven eighths); a longer one starts it again
/// from its downbeat (5/4 plays beats 1 to 4, then beat 1 again; 12/8 plays its six beats
/// as the phrase's four and two again). So every host bar starts on a phrase downbeat,
/// and the phrase is always heard in time with the host's bars.
///
/// Returns the phrase step for grid point `point` of a phrase `steps` long, or `None` for
/// a step past the end of a phrase that is not a whole number of bars.
pub fn phrase_step(point: GridPoint, steps: u16) -> Option<u16> {
    let steps = steps.max(1) as u32;
    let bars = steps.div_ceil(MODEL_BAR_STEPS) as i64;
    let step = point.bar.rem_euclid(bars) as u32 * MODEL_BAR_STEPS + point.step % MODEL_BAR_STEPS;
    (step < steps).then_some(step as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(f: impl FnOnce(&mut Transport)) -> Transport {
        let mut t = Transport::new(48_000.0);
        t.playing = true;
        t.tempo = Some(120.0);
        t.pos_beats = Some(10.0);
        f(&mut t);
        t
    }

    #[test]
    fn hostile_values_become_usable_ones() {
        let clock = Clock { beats: 3.0 };
        for tempo in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -5.0] {
            assert_eq!(
                TransportInfo::from_host(&host(|t| t.tempo = Some(tempo)), 48_000.0, &clock).tempo,
                FALLBACK_TEMPO
            );
        }
        assert_eq!(
            TransportInfo::from_host(&host(|t| t.tempo = Some(1e300)), 48_000.0, &clock).tempo,
            MAX_TEMPO
        );
        assert_eq!(
            TransportInfo::from_host(&host(|t| t.tempo = Some(1e-9)), 48_000.0, &clock).tempo,
            MIN_TEMPO
        );
        for pos in [f64::NAN, f64::INFINITY, -1e300, 1e12] {
            let t = TransportInfo::from_host(&host(|t| t.pos_beats = Some(pos)), 48_000.0, &clock);
            assert_eq!((t.pos_beats, t.bar_start), (3.0, 0.0));
        }
        for (n, d) in [
            (0, 4),
            (4, 0),
            (4, 3),
            (-3, 4),
            (1000, 4),
            (i32::MAX, i32::MIN),
        ] {
            let t = host(|t| (t.time_sig_numerator, t.time_sig_denominator) = (Some(n), Some(d)));
            assert_eq!(
                TransportInfo::from_host(&t, 48_000.0, &clock).meter,
                Meter::COMMON
            );
        }
        assert_eq!(
            TransportInfo::from_host(&host(|_| {}), f32::NAN, &clock).sample_rate,
            48_000.0
        );
        let t = TransportInfo::from_host(
            &host(|t| t.loop_range_beats = Some((8.0, f64::NAN))),
            48_000.0,
            &clock,
        );
        assert_eq!(t.loop_range, None);
        let t = TransportInfo::from_host(
            &host(|t| t.loop_range_beats = Some((8.0, 8.0))),
            48_000.0,
            &clock,
        );
        assert_eq!(t.loop_range, None);
    }

    #[test]
    fn bar_start_follows_the_host_when_it_makes_sense() {
        let clock = Clock::default();
        // 3/4 after a 4/4 intro: the host's bar start is the truth.
        let t = host(|t| {
            (t.time_sig_numerator, t.time_sig_denominator) = (Some(3), Some(4));
            t.pos_beats = Some(18.5);
            t.bar_start_pos_beats = Some(17.0);
        });
        let info = TransportInfo::from_host(&t, 48_000.0, &clock);
        assert_eq!((info.meter.bar_beats(), info.bar_start), (3.0, 17.0));
        // A bar start that does not hold the position is recomputed from the meter.
        for wrong in [25.0, 0.0, f64::NAN] {
            let t = host(|t| {
                t.pos_beats = Some(18.5);
                t.bar_start_pos_beats = Some(wrong);
            });
            assert_eq!(
                TransportInfo::from_host(&t, 48_000.0, &clock).bar_start,
                16.0
            );
        }
    }

    #[test]
    fn no_transport_at_all_free_runs_at_120() {
        let t =
            TransportInfo::from_host(&Transport::new(44_100.0), 44_100.0, &Clock { beats: 7.5 });
        assert!(t.playing);
        assert_eq!((t.tempo, t.pos_beats, t.bar_start), (120.0, 7.5, 4.0));
        // A VST3 host with no timeline still sends a sample position.
        let mut vst3 = Transport::new(44_100.0);
        vst3.pos_samples = Some(0);
        assert!(TransportInfo::from_host(&vst3, 44_100.0, &Clock::default()).playing);
        // Stopped, but with a tempo: a host that is stopped.
        let mut stopped = Transport::new(44_100.0);
        stopped.tempo = Some(90.0);
        assert!(!TransportInfo::from_host(&stopped, 44_100.0, &Clock::default()).playing);
    }

    #[test]
    fn meters_have_their_bar_lengths_in_16ths() {
        let steps = |n, d| {
            Meter {
                numerator: n,
                denominator: d,
            }
            .bar_steps()
        };
        assert_eq!(
            [
                steps(2, 4),
                steps(3, 4),
                steps(4, 4),
                steps(5, 4),
                steps(6, 8),
                steps(7, 8),
                steps(12, 8)
            ],
            [8, 12, 16, 20, 12, 14, 24]
        );
        assert_eq!(
            steps(3, 32),
            2,
            "a bar shorter than a 16th multiple keeps its last partial step"
        );
    }

    #[test]
    fn the_grid_walks_bar_by_bar_in_any_meter() {
        let bars = Bars {
            origin: 14.0,
            number: 4,
            meter: Meter {
                numerator: 7,
                denominator: 8,
            },
        };
        let p = bars.at_or_after(14.0);
        assert_eq!((p.bar, p.step, p.beats), (4, 0, 14.0));
        let mut q = p;
        for _ in 0..14 {
            q = bars.after(q);
        }
        assert_eq!((q.bar, q.step, q.beats), (5, 0, 17.5));
        let r = bars.at_or_after(17.4);
        assert_eq!((r.bar, r.step, r.beats), (5, 0, 17.5));
        let s = bars.at_or_after(13.7);
        assert_eq!((s.bar, s.step, s.beats), (3, 13, 13.75));
        assert_eq!(bars.at_or_after(13.9).beats, 14.0);
    }

    #[test]
    fn a_4_4_phrase_fills_other_bars_from_each_downbeat() {
        let point = |bar, step| GridPoint {
            bar,
            step,
            beats: 0.0,
        };
        // 2-bar phrase: bar parity picks the phrase bar.
        assert_eq!(phrase_step(point(0, 3), 32), Some(3));
        assert_eq!(phrase_step(point(1, 0), 32), Some(16));
        assert_eq!(phrase_step(point(7, 15), 32), Some(31));
        assert_eq!(phrase_step(point(-1, 2), 32), Some(18));
        // 5/4: beat 5 plays beat 1 again.
        assert_eq!(phrase_step(point(1, 17), 32), Some(17));
        // An odd clip length leaves the missing steps silent.
        assert_eq!(phrase_step(point(1, 6), 20), None);
        assert_eq!(phrase_step(point(1, 3), 20), Some(19));
    }
}
