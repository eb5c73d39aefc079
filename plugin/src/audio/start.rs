//! What starts the phrase (`Play`): the host's transport as it is; the plugin's own clock
//! from activation (Free-run); or a note held on the trigger channel (Note Trigger),
//! whose note-on is the phrase's downbeat and whose pitch its tonic. Each gives the
//! sequencer the transport it plays on; stopping, or switching from one to another, is a
//! stop or a jump to it, and it ends every note. Plain data, no allocation.

use nice_plug::prelude::NoteEvent;

use crate::audio::output::note_of;
use crate::audio::timeline::{Meter, TransportInfo, STEPS_PER_BEAT};
use crate::params::{PlayMode, StartParams};

/// The note that started the phrase, and where: on the plugin's clock, in quarter notes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Trigger {
    channel: u8,
    key: u8,
    start: f64,
}

#[derive(Debug, Default)]
pub struct Starter {
    trigger: Option<Trigger>,
    /// The held trigger was let go at this sample of the block: it plays until then.
    release: Option<u32>,
}

impl Starter {
    /// Takes `event` if it is a trigger: a note on the trigger channel with `Play` on Note
    /// Trigger, or the note-off of the held trigger. Returns whether it did. A new note
    /// restarts the phrase from its downbeat, as a phrase instrument does.
    pub fn hear(
        &mut self,
        event: &NoteEvent<()>,
        params: &StartParams,
        transport: &TransportInfo,
    ) -> bool {
        let Some((channel, key, on)) = note_of(event) else {
            return false;
        };
        if !on {
            let held = self
                .trigger
                .is_some_and(|t| (t.channel, t.key) == (channel, key));
            if held {
                self.release = Some(event.timing());
            }
            return held;
        }
        if params.mode.value() != PlayMode::NoteTrigger
            || channel as i32 + 1 != params.trigger_channel.value()
        {
            return false;
        }
        let offset = transport.beats_in(event.timing() as usize);
        // On a running transport the phrase keeps the host's 16th grid: its downbeat is
        // the grid point nearest the note.
        let snap = if transport.playing {
            let at = transport.pos_beats + offset;
            (at * STEPS_PER_BEAT).round() / STEPS_PER_BEAT - at
        } else {
            0.0
        };
        self.trigger = Some(Trigger {
            channel,
            key,
            start: transport.clock_beats + offset + snap,
        });
        self.release = None;
        true
    }

    /// Where in this block the trigger was let go, in Note Trigger: the phrase plays on
    /// the block's first `release` samples and stops there.
    pub fn release(&self, mode: PlayMode) -> Option<usize> {
        self.release
            .filter(|_| mode == PlayMode::NoteTrigger)
            .map(|at| at as usize)
    }

    /// After the block: a trigger let go in it is gone.
    pub fn end_block(&mut self) {
        if self.release.take().is_some() {
            self.trigger = None;
        }
    }

    /// The transport the sequencer plays this block on, in `mode`, from the host's.
    pub fn transport(&self, host: &TransportInfo, mode: PlayMode) -> TransportInfo {
        match mode {
            PlayMode::HostTransport => *host,
            PlayMode::FreeRun => own_bars(host, host.clock_beats),
            PlayMode::NoteTrigger => match self.trigger {
                Some(t) => own_bars(host, host.clock_beats - t.start),
                None => TransportInfo {
                    playing: false,
                    ..*host
                },
            },
        }
    }

    /// Semitones that move a phrase with `tonic` (a pitch) to the held trigger note; 0
    /// without either, or outside Note Trigger.
    pub fn shift(&self, mode: PlayMode, tonic: Option<u8>) -> i32 {
        match (mode, self.trigger, tonic) {
            (PlayMode::NoteTrigger, Some(t), Some(tonic)) => t.key as i32 - tonic as i32,
            _ => 0,
        }
    }

    /// Lets go of the trigger (a reset: its note-off will not come).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// A running 4/4 transport at the host's tempo, at `beats` (bar 0 at beat 0), with the
/// host's block clock: the phrase's own timeline.
fn own_bars(host: &TransportInfo, beats: f64) -> TransportInfo {
    let meter = Meter::COMMON;
    let bar = (beats / meter.bar_beats()).floor();
    TransportInfo {
        playing: true,
        pos_beats: beats,
        meter,
        bar_start: bar * meter.bar_beats(),
        bar_number: bar as i64,
        loop_range: None,
        ..*host
    }
}
