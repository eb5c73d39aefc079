//! The groove of a drum pattern, as GrooVAE's `GrooveConverter` sees it: per 16th step
//! and per drum class, a hit, its velocity, and where it lands around its step.
//!
//! A [`Groove`] is a drum pattern (its [`Event`]s, as in [`drums`]) plus a [`Feel`] for
//! every hit. The model reads and writes it as rows of [`ROW`] values per step, grouped
//! by feature as Magenta groups them: nine hits, nine velocities (`v / 127`), nine
//! offsets (`2 * (grid - onset) / step`, so positive is early, in -1..=1).

use super::drums::{self, Hit, NUM_DRUM_CLASSES};
use super::Event;

/// The values per step of a groove row: hits, velocities and offsets of the nine classes.
pub const ROW: usize = 3 * NUM_DRUM_CLASSES;
/// The class Magenta's `tapify` puts every tap on: the open hi-hat.
pub const TAP_CLASS: usize = 3;
/// A model's hit probability above which a step is hit (Magenta's `from_tensors`).
pub const HIT_THRESHOLD: f32 = 0.5;

/// One drum note as played: its class, its onset in (fractional) 16th steps from the
/// start, and its MIDI velocity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stroke {
    pub class: u8,
    pub time: f64,
    pub velocity: u8,
}

impl Stroke {
    /// The step a stroke belongs to: its nearest, halves rounding up (note_seq's
    /// `quantize_to_step`). Times before the start count as step 0's.
    pub fn step(&self) -> u32 {
        (self.time + 0.5).floor().max(0.0) as u32
    }
}

/// How one hit is played: its MIDI velocity, and its shift off the grid in steps, from
/// -0.5 (half a 16th early) to 0.5 (half a 16th late).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Feel {
    pub velocity: u8,
    pub shift: f32,
}

/// A drum pattern and how each of its hits is played. `feel[step][class]` is the
/// default (velocity 0, on the grid) where `events[step]` has no hit of `class`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Groove {
    pub events: Vec<Event>,
    pub feel: Vec<[Feel; NUM_DRUM_CLASSES]>,
}

impl Groove {
    /// A quantized pattern with no feel: velocity 0 and on the grid, as the humanize
    /// model's input is.
    pub fn quantized(events: &[Event]) -> Self {
        Self {
            events: events.to_vec(),
            feel: vec![[Feel::default(); NUM_DRUM_CLASSES]; events.len()],
        }
    }

    /// The strokes within `steps` steps, each on its nearest step. Of several strokes of
    /// one class on one step (a flam, a double) the loudest is kept, the earliest of
    /// equals, as Magenta keeps it.
    pub fn from_strokes(strokes: &[Stroke], steps: usize) -> Self {
        let mut groove = Self::quantized(&vec![drums::NO_HITS; steps]);
        let mut sorted: Vec<&Stroke> = strokes
            .iter()
            .filter(|s| (s.class as usize) < NUM_DRUM_CLASSES)
            .collect();
        sorted.sort_by(|a, b| a.time.total_cmp(&b.time));
        for stroke in sorted {
            let (step, class) = (stroke.step() as usize, stroke.class as usize);
            if step >= steps {
                continue;
            }
            let hit = groove.events[step] >> class & 1 == 1;
            if !hit || stroke.velocity > groove.feel[step][class].velocity {
                groove.events[step] |= 1 << class;
                let shift = (stroke.time - step as f64).clamp(-0.5, 0.5) as f32;
                groove.feel[step][class] = Feel {
                    velocity: stroke.velocity,
                    shift,
                };
            }
        }
        groove
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Steps `start..start + len`.
    pub fn window(&self, start: usize, len: usize) -> Self {
        Self {
            events: self.events[start..start + len].to_vec(),
            feel: self.feel[start..start + len].to_vec(),
        }
    }

    /// The hits, sorted by step then class.
    pub fn hits(&self) -> Vec<Hit> {
        drums::decode(&self.events)
    }

    /// Every hit as played.
    pub fn strokes(&self) -> Vec<Stroke> {
        self.hits()
            .into_iter()
            .map(|h| {
                let feel = self.feel[h.step as usize][h.class as usize];
                Stroke {
                    class: h.class,
                    time: h.step as f64 + feel.shift as f64,
                    velocity: feel.velocity,
                }
            })
            .collect()
    }

    /// The humanize model's input: the hits alone (Magenta's `humanize`).
    pub fn humanize_input(&self) -> Self {
        Self::quantized(&self.events)
    }

    /// The tap model's input (Magenta's `tapify` with `fixed_velocities`): every step
    /// with a hit becomes one tap on [`TAP_CLASS`], at the timing of its loudest hit
    /// (the lowest class of equals), with velocity 0.
    pub fn tap_input(&self) -> Self {
        let mut tapped = Self::quantized(&vec![drums::NO_HITS; self.len()]);
        for (step, (&event, feel)) in self.events.iter().zip(&self.feel).enumerate() {
            let loudest =
                drums::classes_in(event).fold(None, |best: Option<usize>, c| match best {
                    Some(b) if feel[b].velocity >= feel[c].velocity => Some(b),
                    _ => Some(c),
                });
            if let Some(c) = loudest {
                tapped.events[step] = 1 << TAP_CLASS;
                tapped.feel[step][TAP_CLASS] = Feel {
                    velocity: 0,
                    shift: feel[c].shift,
                };
            }
        }
        tapped
    }

    /// The tap model's input from taps played at `times` (in steps): any key, and
    /// velocity does not count.
    pub fn from_taps(times: &[f64], steps: usize) -> Self {
        let strokes: Vec<Stroke> = times
            .iter()
            .map(|&time| Stroke {
                class: TAP_CLASS as u8,
                time,
                velocity: 1,
            })
            .collect();
        Self::from_strokes(&strokes, steps).tap_input()
    }

    /// The model's rows, `[steps * ROW]`.
    pub fn rows(&self) -> Vec<f32> {
        let mut rows = vec![0.0; self.len() * ROW];
        for (row, (&event, feel)) in rows
            .chunks_exact_mut(ROW)
            .zip(self.events.iter().zip(&self.feel))
        {
            for c in drums::classes_in(event) {
                row[c] = 1.0;
                row[NUM_DRUM_CLASSES + c] = feel[c].velocity as f32 / 127.0;
                row[2 * NUM_DRUM_CLASSES + c] = -2.0 * feel[c].shift;
            }
        }
        rows
    }

    /// A groove from a model's rows (hits as probabilities, or 0 / 1): a class is hit
    /// above [`HIT_THRESHOLD`], its velocity and offset clamped to their ranges
    /// (Magenta's `from_tensors`). A hit never plays at velocity 0: it would be a note off.
    pub fn from_rows(rows: &[f32]) -> Self {
        let steps = rows.len() / ROW;
        let mut groove = Self::quantized(&vec![drums::NO_HITS; steps]);
        for (step, row) in rows.chunks_exact(ROW).enumerate() {
            for c in 0..NUM_DRUM_CLASSES {
                if row[c] > HIT_THRESHOLD {
                    groove.events[step] |= 1 << c;
                    let velocity = ((row[NUM_DRUM_CLASSES + c] * 127.0)
                        .round()
                        .clamp(1.0, 127.0) as u8)
                        .max(1);
                    let shift = (-row[2 * NUM_DRUM_CLASSES + c] / 2.0).clamp(-0.5, 0.5);
                    groove.feel[step][c] = Feel {
                        velocity,
                        shift: if shift.is_finite() { shift } else { 0.0 },
                    };
                }
            }
        }
        groove
    }
}

/// How a performance survives the groove encoding ([`round_trip`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RoundTrip {
    pub strokes: usize,
    /// Strokes that came back from the model's rows.
    pub kept: usize,
    /// Quieter strokes of a class on a step another stroke of it holds (flams, doubles):
    /// the encoding keeps one hit per class and step.
    pub merged: usize,
    /// The largest timing and velocity errors of the strokes kept, in steps and in MIDI
    /// velocity.
    pub max_time_error: f64,
    pub max_velocity_error: u8,
}

impl RoundTrip {
    pub fn add(&mut self, other: &RoundTrip) {
        self.strokes += other.strokes;
        self.kept += other.kept;
        self.merged += other.merged;
        self.max_time_error = self.max_time_error.max(other.max_time_error);
        self.max_velocity_error = self.max_velocity_error.max(other.max_velocity_error);
    }
}

/// Encodes `strokes` into rows and back: which come back, and how far off.
pub fn round_trip(strokes: &[Stroke], steps: usize) -> RoundTrip {
    let back = Groove::from_rows(&Groove::from_strokes(strokes, steps).rows()).strokes();
    let mut report = RoundTrip {
        strokes: strokes.len(),
        kept: back.len(),
        ..RoundTrip::default()
    };
    report.merged = strokes
        .iter()
        .filter(|s| (s.step() as usize) < steps && (s.class as usize) < NUM_DRUM_CLASSES)
        .count()
        - back.len();
    for b in &back {
        // The stroke a hit came from: the loudest of its class on its step, the earliest of equals.
        let source = strokes
            .iter()
            .filter(|s| s.class == b.class && s.step() == (b.time + 0.5).floor().max(0.0) as u32)
            .fold(None, |best: Option<&Stroke>, s| match best {
                Some(x) if x.velocity >= s.velocity => Some(x),
                _ => Some(s),
            });
        if let Some(s) = source {
            report.max_time_error = report.max_time_error.max((s.time - b.time).abs());
            report.max_velocity_error = report
                .max_velocity_error
                .max(s.velocity.abs_diff(b.velocity));
        }
    }
    report
}

/// The length of a 16th at `bpm`, in milliseconds.
pub fn step_ms(bpm: f64) -> f64 {
    60_000.0 / bpm / super::melody::STEPS_PER_QUARTER as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stroke(class: u8, time: f64, velocity: u8) -> Stroke {
        Stroke {
            class,
            time,
            velocity,
        }
    }

    #[test]
    fn strokes_round_trip_through_the_rows() {
        let strokes = vec![
            stroke(0, -0.2, 100),
            stroke(2, 0.1, 40),
            stroke(1, 3.6, 127),
            stroke(8, 31.49, 1),
        ];
        let groove = Groove::from_strokes(&strokes, 32);
        assert_eq!(groove.events[0], 0b101);
        assert_eq!(groove.events[4], 0b10);
        assert_eq!(groove.events[31], 1 << 8);
        let back = Groove::from_rows(&groove.rows());
        assert_eq!(back.events, groove.events);
        // The rows hold velocity as v / 127 and the offset as a float: both come back.
        let played = back.strokes();
        assert_eq!(played.len(), 4);
        for (s, t) in played.iter().zip([
            stroke(0, -0.2, 100),
            stroke(2, 0.1, 40),
            stroke(1, 3.6, 127),
            stroke(8, 31.49, 1),
        ]) {
            assert_eq!((s.class, s.velocity), (t.class, t.velocity));
            assert!((s.time - t.time).abs() < 1e-6, "{s:?} vs {t:?}");
        }
    }

    #[test]
    fn offsets_follow_magentas_sign_and_scale() {
        // Magenta's data_test: 120 qpm, a note at 0.26125 s is step 2 played 0.09 of a
        // step late, and its offset reads -0.18.
        let step_seconds = step_ms(120.0) / 1000.0;
        let groove = Groove::from_strokes(&[stroke(1, 0.26125 / step_seconds, 80)], 4);
        assert_eq!(groove.events[2], 0b10);
        let rows = groove.rows();
        assert!((rows[2 * ROW + 2 * NUM_DRUM_CLASSES + 1] + 0.18).abs() < 1e-5);
        assert!((rows[2 * ROW + NUM_DRUM_CLASSES + 1] - 80.0 / 127.0).abs() < 1e-6);
        // Half a step rounds up, as note_seq rounds.
        assert_eq!(stroke(0, 2.5, 1).step(), 3);
        assert_eq!(stroke(0, 2.4999, 1).step(), 2);
    }

    #[test]
    fn the_loudest_of_a_flam_wins_and_late_strokes_are_dropped() {
        let groove = Groove::from_strokes(
            &[
                stroke(1, 1.9, 60),
                stroke(1, 2.1, 90),
                stroke(1, 2.2, 90),
                stroke(0, 7.6, 100),
            ],
            8,
        );
        assert_eq!(groove.hits(), vec![Hit { step: 2, class: 1 }]);
        assert_eq!(groove.feel[2][1].velocity, 90);
        assert!((groove.feel[2][1].shift - 0.1).abs() < 1e-6);
    }

    #[test]
    fn humanize_and_tap_inputs() {
        let strokes = [
            stroke(0, 0.1, 100),
            stroke(2, -0.05, 110),
            stroke(1, 4.2, 90),
            stroke(2, 4.0, 50),
        ];
        let groove = Groove::from_strokes(&strokes, 8);
        let humanize = groove.humanize_input();
        assert_eq!(humanize.events, groove.events);
        assert!(humanize
            .feel
            .iter()
            .flatten()
            .all(|f| *f == Feel::default()));
        let tap = groove.tap_input();
        let tap_bit = 1 << TAP_CLASS;
        assert_eq!(tap.events, vec![tap_bit, 0, 0, 0, tap_bit, 0, 0, 0]);
        // Each tap keeps the timing of the step's loudest hit, and no velocity.
        assert!((tap.feel[0][TAP_CLASS].shift + 0.05).abs() < 1e-6);
        assert!((tap.feel[4][TAP_CLASS].shift - 0.2).abs() < 1e-6);
        assert_eq!(tap.feel[4][TAP_CLASS].velocity, 0);
        // Taps played on keys make the same input.
        assert_eq!(Groove::from_taps(&[-0.05, 4.2], 8), tap);
    }

    #[test]
    fn performances_round_trip_but_for_flams() {
        let strokes = [
            stroke(0, 0.1, 100),
            stroke(1, 3.6, 64),
            stroke(1, 4.2, 90),
            stroke(2, 7.49, 3),
            stroke(8, 31.5, 127),
        ];
        let report = round_trip(&strokes, 32);
        // The step-4 snare pair is one hit; 31.5 rounds to step 32, past the window.
        assert_eq!((report.strokes, report.kept, report.merged), (5, 3, 1));
        assert!(report.max_time_error < 1e-6, "{report:?}");
        assert_eq!(report.max_velocity_error, 0);
    }

    #[test]
    fn hostile_rows_stay_playable() {
        let mut rows = vec![0.0; 2 * ROW];
        rows[0] = 0.9;
        rows[NUM_DRUM_CLASSES] = f32::NAN;
        rows[2 * NUM_DRUM_CLASSES] = f32::NAN;
        rows[ROW + 1] = 1.0;
        rows[ROW + NUM_DRUM_CLASSES + 1] = 9.0;
        rows[ROW + 2 * NUM_DRUM_CLASSES + 1] = -7.0;
        let g = Groove::from_rows(&rows);
        assert_eq!(g.events, vec![1, 2]);
        assert!(g.feel[0][0].velocity >= 1 && g.feel[0][0].shift == 0.0);
        assert_eq!(
            g.feel[1][1],
            Feel {
                velocity: 127,
                shift: 0.5
            }
        );
    }
}
