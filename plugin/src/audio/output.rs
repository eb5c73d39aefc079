//! The plugin's MIDI output: the phrase's events and the MIDI played in (MIDI Thru),
//! merged in time order, and every note-off the host's queue refused, owed until it
//! takes one.
//!
//! A host's output queue can be full. A lost note-on is a missed note; a lost note-off is
//! a note stuck downstream, so refused note-offs (and all-notes-off) are kept, by channel
//! and key, and sent again at the start of the next block. Forwarded notes still held are
//! ended when forwarding stops, so switching Thru off never strands one either.
//! Fixed-size state only: nothing here allocates.

use nice_plug::midi::control_change::ALL_NOTES_OFF;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::NoteEvent;

/// Events played in that one block forwards; more in one block (a flood of MIDI) are not
/// forwarded.
pub const MAX_THRU_PER_BLOCK: usize = 512;

type Event = NoteEvent<()>;

/// One bit per key, per MIDI channel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeySet([u128; 16]);

impl KeySet {
    pub fn set(&mut self, channel: u8, key: u8, on: bool) {
        let (channel, bit) = ((channel & 15) as usize, 1u128 << (key & 127));
        if on {
            self.0[channel] |= bit;
        } else {
            self.0[channel] &= !bit;
        }
    }

    pub fn contains(&self, channel: u8, key: u8) -> bool {
        self.0[(channel & 15) as usize] & (1u128 << (key & 127)) != 0
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&keys| keys == 0)
    }

    /// Every (channel, key) in the set.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        self.0.iter().enumerate().flat_map(|(channel, &keys)| {
            (0..128u8)
                .filter(move |&key| keys & (1 << key) != 0)
                .map(move |key| (channel as u8, key))
        })
    }
}

/// A note event on `channel` (0 = channel 1).
pub fn note(on: bool, timing: u32, channel: u8, key: u8) -> Event {
    let (voice_id, channel, key) = (
        VoiceID::Wildcard,
        Channel::Number(channel),
        Key::Number(key),
    );
    if on {
        NoteEvent::NoteOn {
            timing,
            voice_id,
            channel,
            key,
            velocity: 1.0,
        }
    } else {
        NoteEvent::NoteOff {
            timing,
            voice_id,
            channel,
            key,
            velocity: 0.0,
        }
    }
}

/// MIDI CC 123 on `channel`.
pub fn all_notes_off(timing: u32, channel: u8) -> Event {
    NoteEvent::MidiCC {
        timing,
        channel,
        cc: ALL_NOTES_OFF,
        value: 0.0,
    }
}

/// (channel, key, is a note-on) of a note event, `None` for any other event.
pub fn note_of(event: &Event) -> Option<(u8, u8, bool)> {
    match *event {
        NoteEvent::NoteOn {
            channel: Channel::Number(channel),
            key: Key::Number(key),
            velocity,
            ..
        } => Some((channel, key, velocity > 0.0)),
        NoteEvent::NoteOff {
            channel: Channel::Number(channel),
            key: Key::Number(key),
            ..
        } => Some((channel, key, false)),
        _ => None,
    }
}

/// The notes played in this block, waiting for their place among the phrase's events,
/// and those forwarded and still held.
pub struct Thru {
    queue: [Event; MAX_THRU_PER_BLOCK],
    len: usize,
    sent: usize,
    held: KeySet,
}

impl Default for Thru {
    fn default() -> Self {
        Self {
            queue: [note(false, 0, 0, 0); MAX_THRU_PER_BLOCK],
            len: 0,
            sent: 0,
            held: KeySet::default(),
        }
    }
}

impl Thru {
    /// A note or a channel message (controller, pitch bend, pressure, program) played
    /// in, to be forwarded at its time in this block.
    pub fn forward(&mut self, event: &Event) {
        let midi = note_of(event).is_some()
            || matches!(
                event,
                NoteEvent::MidiCC { .. }
                    | NoteEvent::MidiPitchBend { .. }
                    | NoteEvent::MidiChannelPressure { .. }
                    | NoteEvent::PolyPressure { .. }
                    | NoteEvent::MidiProgramChange { .. }
            );
        if midi && self.len < MAX_THRU_PER_BLOCK {
            self.queue[self.len] = *event;
            self.len += 1;
        }
    }

    /// The forwarded notes up to sample `timing`, in order, through `emit`; `None` sends
    /// the rest of the block's and starts the next block's queue.
    pub fn until(&mut self, timing: Option<u32>, emit: &mut impl FnMut(Event)) {
        while self.sent < self.len {
            let event = self.queue[self.sent];
            if timing.is_some_and(|t| event.timing() > t) {
                return;
            }
            self.sent += 1;
            if let Some((channel, key, on)) = note_of(&event) {
                // A note-off for a note that was not forwarded (Thru was off when it
                // started) has nothing to end downstream.
                if !on && !self.held.contains(channel, key) {
                    continue;
                }
                self.held.set(channel, key, on);
            }
            emit(event);
        }
        if timing.is_none() {
            (self.len, self.sent) = (0, 0);
        }
    }

    /// The forwarded notes still held, forgotten: the caller ends them (Thru switched
    /// off, a recovered panic).
    pub fn take_held(&mut self) -> KeySet {
        std::mem::take(&mut self.held)
    }
}

/// What the host's queue refused that must still reach it.
#[derive(Default)]
pub struct Outbox {
    offs: KeySet,
    /// All-notes-off, by channel bit.
    all_off: u16,
}

impl Outbox {
    /// Starts a block: sends what the host refused before. `send` hands one event to the
    /// host and says whether it took it.
    pub fn begin_block(&mut self, send: &mut impl FnMut(Event) -> bool) {
        if self.offs.is_empty() && self.all_off == 0 {
            return;
        }
        let offs = std::mem::take(&mut self.offs);
        for (channel, key) in offs.iter() {
            self.send(note(false, 0, channel, key), send);
        }
        let all_off = std::mem::take(&mut self.all_off);
        for channel in (0..16u8).filter(|c| all_off & (1 << c) != 0) {
            self.send(all_notes_off(0, channel), send);
        }
    }

    /// Hands `event` to the host; a refused note-off or all-notes-off is owed.
    pub fn send(&mut self, event: Event, send: &mut impl FnMut(Event) -> bool) {
        if send(event) {
            return;
        }
        match (event, note_of(&event)) {
            (_, Some((channel, key, false))) => self.offs.set(channel, key, true),
            (
                NoteEvent::MidiCC {
                    channel,
                    cc: ALL_NOTES_OFF,
                    ..
                },
                _,
            ) => self.all_off |= 1 << (channel & 15),
            // A refused note-on is a note not heard: its note-off is harmless.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_note_offs_are_sent_in_a_later_block() {
        let mut out = Outbox::default();
        let mut taken = Vec::new();
        let mut full = |_: Event| false;
        out.begin_block(&mut full);
        out.send(note(true, 3, 0, 60), &mut full);
        out.send(note(false, 7, 0, 60), &mut full);
        out.send(note(false, 8, 4, 61), &mut full);
        out.send(all_notes_off(9, 2), &mut full);
        // Still full next block: still owed.
        out.begin_block(&mut full);
        let mut take = |e: Event| {
            taken.push(e);
            true
        };
        out.begin_block(&mut take);
        out.begin_block(&mut take);
        assert_eq!(
            taken,
            vec![
                note(false, 0, 0, 60),
                note(false, 0, 4, 61),
                all_notes_off(0, 2)
            ],
            "each sent once, the note-on not at all"
        );
    }

    #[test]
    fn forwarded_notes_merge_in_time_order_and_are_released() {
        let mut thru = Thru::default();
        thru.forward(&note(true, 2, 0, 60));
        thru.forward(&note(true, 10, 1, 64));
        thru.forward(&note(false, 20, 0, 60));
        thru.forward(&note(false, 21, 0, 62));
        let mut emitted = Vec::new();
        thru.until(Some(5), &mut |e| emitted.push(e.timing()));
        emitted.push(5); // the phrase's event
        thru.until(None, &mut |e| emitted.push(e.timing()));
        assert_eq!(
            emitted,
            vec![2, 5, 10, 20],
            "the note-off of a note never forwarded is not sent"
        );
        assert_eq!(
            thru.take_held().iter().collect::<Vec<_>>(),
            vec![(1, 64)],
            "only the note still held"
        );
        assert_eq!(thru.take_held().iter().count(), 0);
        thru.until(None, &mut |_| panic!("the queue starts empty each block"));
    }

    #[test]
    fn controllers_played_beside_the_notes_are_forwarded() {
        let mut thru = Thru::default();
        let pedal = NoteEvent::MidiCC {
            timing: 1,
            channel: 0,
            cc: 64,
            value: 1.0,
        };
        let bend = NoteEvent::MidiPitchBend {
            timing: 3,
            channel: 0,
            value: 0.75,
        };
        let tuning = NoteEvent::PolyTuning {
            timing: 4,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(0),
            key: Key::Number(60),
            tuning: 0.5,
        };
        for event in [pedal, note(true, 2, 0, 60), bend, tuning] {
            thru.forward(&event);
        }
        let mut emitted = Vec::new();
        thru.until(None, &mut |e| emitted.push(e));
        assert_eq!(
            emitted,
            vec![pedal, note(true, 2, 0, 60), bend],
            "MIDI, not CLAP's note expressions"
        );
    }
}
