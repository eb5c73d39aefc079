//! How fast the host renders, and so how long `process()` may wait for the worker.
//!
//! A real-time host calls `process()` about once a block's duration, and a block that
//! waits is heard as a dropout. A host rendering offline says so, and may be waited on.
//! A batch renderer that does not say so (a Python script rendering 8 seconds in 12 ms)
//! is told apart by the audio clock: it runs ahead of the wall clock by far more than any
//! real-time host buffers. Waiting for the worker is then as safe as offline, for as long
//! as the lead lasts: a host that is a second ahead of real time can wait for most of a
//! second before anything it plays could be late.
//!
//! The start of a render (the first block after activation, a reset, or a pause in the
//! host's calls) has no lead to measure yet. Its parameters are the ones a batch renderer
//! set before rendering, so the block waits for them as `activate()` does for the
//! restored state: a real-time host only ever pays for it at the start of a stream, and
//! only when a parameter changed between its activation and its first block.

use std::time::{Duration, Instant};

/// A render faster than real time, or offline, goes on without a phrase the worker has
/// not delivered after this long (see `LatentLive::wait_for_worker`).
pub const OFFLINE_WAIT: Duration = Duration::from_secs(20);
/// How long the first block of a render waits: as long as `activate()` waits for the
/// restored state (the embedded models load and decode in well under it).
pub const START_WAIT: Duration = Duration::from_secs(2);
/// A pause in the host's calls this much longer than the last block's duration starts a
/// render: a real-time host never leaves its callback unserved that long.
const PAUSE: Duration = Duration::from_secs(1);
/// How far the audio clock must run ahead of the wall clock to count as faster than real
/// time; more than any real-time host buffers, anticipative processing included. Half of
/// it is kept as a margin when the lead sets how long to wait.
const LEAD: f64 = 0.25;

/// The host's pace since the render started.
#[derive(Debug, Default)]
pub struct Pace {
    /// The host said it renders offline.
    offline: bool,
    /// When the render started, and the audio it has rendered since, in seconds.
    started: Option<Instant>,
    rendered: f64,
    /// When the last block was due to end in real time.
    due: Option<Instant>,
}

impl Pace {
    /// At activation, with the host's processing mode.
    pub fn activate(&mut self, offline: bool) {
        *self = Self {
            offline,
            ..Self::default()
        };
    }

    /// The host reset the plugin: the next block starts a render.
    pub fn reset(&mut self) {
        self.activate(self.offline);
    }

    /// At the top of each block of `seconds` of audio, called at `now`: how long it may
    /// wait for the worker's phrase, if at all.
    pub fn patience(&mut self, now: Instant, seconds: f64) -> Option<Duration> {
        let starting = self.due.is_none_or(|due| now > due + PAUSE);
        let seconds = if seconds.is_finite() {
            seconds.clamp(0.0, 3600.0)
        } else {
            0.0
        };
        let started = match self.started {
            Some(started) if !starting => started,
            _ => {
                self.started = Some(now);
                self.rendered = 0.0;
                now
            }
        };
        let lead = self.rendered - now.duration_since(started).as_secs_f64();
        self.rendered += seconds;
        self.due = Some(now + Duration::from_secs_f64(seconds));
        if self.offline {
            Some(OFFLINE_WAIT)
        } else if starting {
            Some(START_WAIT)
        } else if lead > LEAD {
            Some(Duration::from_secs_f64(
                (lead - LEAD / 2.0).min(OFFLINE_WAIT.as_secs_f64()),
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: f64 = 512.0 / 48_000.0;

    #[test]
    fn a_real_time_host_waits_only_at_the_start_of_its_stream() {
        let mut pace = Pace::default();
        pace.activate(false);
        let t0 = Instant::now();
        assert_eq!(pace.patience(t0, BLOCK), Some(START_WAIT));
        // Three blocks back to back (a host filling its buffers), then one a block.
        for k in 1..3 {
            assert_eq!(
                pace.patience(t0 + Duration::from_micros(k * 50), BLOCK),
                None
            );
        }
        for k in 3..10_000u32 {
            let now = t0 + Duration::from_secs_f64((k - 2) as f64 * BLOCK);
            assert_eq!(pace.patience(now, BLOCK), None, "block {k}");
        }
    }

    #[test]
    fn a_batch_renderer_is_waited_on_for_at_most_its_lead() {
        let mut pace = Pace::default();
        pace.activate(false);
        let t0 = Instant::now();
        assert_eq!(pace.patience(t0, BLOCK), Some(START_WAIT));
        // 100 times faster than real time.
        let mut last = None;
        for k in 1..1_000u32 {
            let now = t0 + Duration::from_secs_f64(k as f64 * BLOCK / 100.0);
            last = pace.patience(now, BLOCK);
            if let Some(patience) = last {
                let lead = k as f64 * BLOCK * 0.99;
                assert!(patience.as_secs_f64() < lead, "block {k}: {patience:?}");
            } else {
                assert!(
                    k as f64 * BLOCK * 0.99 < 2.0 * LEAD,
                    "block {k} not waited on"
                );
            }
        }
        assert!(last.is_some());
    }

    #[test]
    fn a_pause_or_a_reset_starts_a_render_and_offline_always_waits() {
        let mut pace = Pace::default();
        pace.activate(false);
        let t0 = Instant::now();
        pace.patience(t0, BLOCK);
        assert_eq!(
            pace.patience(t0 + Duration::from_secs(5), BLOCK),
            Some(START_WAIT)
        );
        pace.reset();
        assert_eq!(
            pace.patience(t0 + Duration::from_secs(5), BLOCK),
            Some(START_WAIT)
        );
        pace.activate(true);
        for k in 0..10 {
            let now = t0 + Duration::from_secs(k);
            assert_eq!(pace.patience(now, BLOCK), Some(OFFLINE_WAIT));
        }
        // Hostile block lengths do not panic.
        for seconds in [f64::NAN, f64::INFINITY, -1.0, 1e300] {
            pace.patience(t0, seconds);
        }
    }
}
