//! The audition synth: a small polyphonic saw/triangle voice bank, and a synthesised drum
//! kit ([`DrumKit`]) for what is sent on the drum channel, so the plugin can be heard on a
//! track without routing its MIDI to another instrument.
//!
//! Fed the events the plugin sends (the phrase and the notes played in), in time order.
//! The caller renders up to each event's timing, applies it, and renders the rest
//! ([`AuditionSynth::render`] / [`AuditionSynth::handle`]). Fixed arrays only: nothing
//! here allocates.

use nice_plug::midi::control_change::ALL_NOTES_OFF;
use nice_plug::midi::Key;
use nice_plug::prelude::NoteEvent;

use crate::audio::drum_kit::DrumKit;
use latent_live_core::music::drums;

pub const NUM_VOICES: usize = 8;
const ATTACK_SECONDS: f32 = 0.005;
const RELEASE_SECONDS: f32 = 0.08;
/// Per-voice level before the gain parameter, so 8 full voices stay below clipping.
const VOICE_LEVEL: f32 = 0.25;

#[derive(Debug, Clone, Copy)]
struct Voice {
    key: u8,
    /// Phase in 0..1.
    phase: f32,
    phase_step: f32,
    velocity: f32,
    envelope: f32,
    releasing: bool,
    /// Start order, to steal the oldest voice.
    age: u64,
}

pub struct AuditionSynth {
    voices: [Option<Voice>; NUM_VOICES],
    kit: DrumKit,
    /// The drum channel (0-based) and the note each class plays there, as the plugin
    /// sends them: what arrives on that channel strikes the kit.
    drum_channel: u8,
    drum_notes: [u8; drums::NUM_DRUM_CLASSES],
    sample_rate: f32,
    attack_step: f32,
    release_step: f32,
    next_age: u64,
}

impl AuditionSynth {
    pub fn new(sample_rate: f32) -> Self {
        let mut synth = Self {
            voices: [None; NUM_VOICES],
            kit: DrumKit::new(sample_rate),
            drum_channel: drums::GM_CHANNEL,
            drum_notes: drums::GM_NOTES,
            sample_rate: 48_000.0,
            attack_step: 0.0,
            release_step: 0.0,
            next_age: 0,
        };
        synth.set_sample_rate(sample_rate);
        synth
    }

    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        self.sample_rate = sample_rate.max(1.0);
        self.attack_step = 1.0 / (ATTACK_SECONDS * self.sample_rate);
        self.release_step = 1.0 / (RELEASE_SECONDS * self.sample_rate);
        self.kit.set_sample_rate(self.sample_rate);
    }

    /// Where drums arrive and how their notes map to classes (read from the params each
    /// block). A note of no class of the mapping plays its GM class, if it has one.
    pub fn set_drum_kit(&mut self, channel: u8, notes: [u8; drums::NUM_DRUM_CLASSES]) {
        self.drum_channel = channel;
        self.drum_notes = notes;
    }

    /// Silences every voice at once (reset).
    pub fn reset(&mut self) {
        self.voices = [None; NUM_VOICES];
        self.kit.reset();
    }

    pub fn active_voices(&self) -> usize {
        self.voices.iter().flatten().count() + self.kit.active_voices()
    }

    /// Plays what the plugin sends to the host, so what is heard is what is sent.
    pub fn handle(&mut self, event: &NoteEvent<()>) {
        if event.channel().and_then(|c| c.number()) == Some(self.drum_channel) {
            match *event {
                NoteEvent::NoteOn {
                    key: Key::Number(key),
                    velocity,
                    ..
                } if velocity > 0.0 => {
                    if let Some(class) = self
                        .drum_notes
                        .iter()
                        .position(|&n| n == key)
                        .or_else(|| drums::class_of(key))
                    {
                        self.kit.hit(class, velocity);
                    }
                }
                NoteEvent::MidiCC {
                    cc: ALL_NOTES_OFF, ..
                } => self.kit.all_off(),
                _ => {}
            }
            return;
        }
        match *event {
            NoteEvent::NoteOn {
                key: Key::Number(key),
                velocity,
                ..
            } if velocity > 0.0 => self.note_on(key, velocity),
            NoteEvent::NoteOn {
                key: Key::Number(key),
                ..
            }
            | NoteEvent::NoteOff {
                key: Key::Number(key),
                ..
            } => {
                for voice in self.voices.iter_mut().flatten() {
                    if voice.key == key {
                        voice.releasing = true;
                    }
                }
            }
            NoteEvent::MidiCC {
                cc: ALL_NOTES_OFF, ..
            } => {
                for voice in self.voices.iter_mut().flatten() {
                    voice.releasing = true;
                }
            }
            _ => {}
        }
    }

    fn note_on(&mut self, key: u8, velocity: f32) {
        let freq = 440.0 * 2f32.powf((key as f32 - 69.0) / 12.0);
        let voice = Voice {
            key,
            phase: 0.0,
            phase_step: freq / self.sample_rate,
            velocity: velocity.clamp(0.0, 1.0),
            envelope: 0.0,
            releasing: false,
            age: self.next_age,
        };
        self.next_age += 1;
        let slot = match self.voices.iter().position(Option::is_none) {
            Some(free) => free,
            // Steal the oldest voice.
            None => (0..NUM_VOICES)
                .min_by_key(|&i| self.voices[i].map_or(0, |v| v.age))
                .unwrap_or(0),
        };
        self.voices[slot] = Some(voice);
    }

    /// Adds the voices into `left`/`right` (same length), scaled by `gain(i)` for sample `i`.
    pub fn render(
        &mut self,
        left: &mut [f32],
        right: &mut [f32],
        mut gain: impl FnMut(usize) -> f32,
    ) {
        debug_assert_eq!(left.len(), right.len());
        if self.active_voices() == 0 {
            return;
        }
        for i in 0..left.len().min(right.len()) {
            let mut sum = self.kit.sample();
            for slot in self.voices.iter_mut() {
                let Some(voice) = slot else { continue };
                if voice.releasing {
                    voice.envelope -= self.release_step;
                    if voice.envelope <= 0.0 {
                        *slot = None;
                        continue;
                    }
                } else if voice.envelope < 1.0 {
                    voice.envelope = (voice.envelope + self.attack_step).min(1.0);
                }
                // Half saw, half triangle: bright enough to hear pitch, soft enough to audition.
                let saw = 2.0 * voice.phase - 1.0;
                let tri = 1.0 - 4.0 * (voice.phase - 0.5).abs();
                sum += (0.5 * saw + 0.5 * tri) * voice.envelope * voice.velocity * VOICE_LEVEL;
                voice.phase += voice.phase_step;
                if voice.phase >= 1.0 {
                    voice.phase -= 1.0;
                }
            }
            let g = gain(i);
            left[i] += sum * g;
            right[i] += sum * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::output::{all_notes_off, note};

    fn on(key: u8) -> NoteEvent<()> {
        note(true, 0, 0, key)
    }

    #[test]
    fn note_sounds_then_releases_to_silence() {
        let mut synth = AuditionSynth::new(48_000.0);
        let (mut l, mut r) = ([0.0f32; 4800], [0.0f32; 4800]);
        synth.render(&mut l, &mut r, |_| 1.0);
        assert!(l.iter().all(|&x| x == 0.0), "silent with no notes");
        synth.handle(&on(69));
        synth.render(&mut l, &mut r, |_| 1.0);
        let peak = l.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.1 && peak <= VOICE_LEVEL + 1e-6, "peak {peak}");
        assert_eq!(l, r);
        synth.handle(&note(false, 0, 0, 69));
        let (mut l, mut r) = ([0.0f32; 4800], [0.0f32; 4800]);
        synth.render(&mut l, &mut r, |_| 1.0);
        assert_eq!(synth.active_voices(), 0, "released within 80 ms");
        assert!(l[4000..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn voices_are_stolen_oldest_first() {
        let mut synth = AuditionSynth::new(48_000.0);
        for key in 60..70 {
            synth.handle(&on(key));
        }
        assert_eq!(synth.active_voices(), NUM_VOICES);
        let keys: Vec<u8> = synth.voices.iter().flatten().map(|v| v.key).collect();
        assert!(!keys.contains(&60) && !keys.contains(&61) && keys.contains(&69));
        synth.handle(&all_notes_off(0, 0));
        let (mut l, mut r) = ([0.0f32; 8000], [0.0f32; 8000]);
        synth.render(&mut l, &mut r, |_| 1.0);
        assert_eq!(synth.active_voices(), 0);
    }

    #[test]
    fn rendering_does_not_allocate() {
        let mut synth = AuditionSynth::new(44_100.0);
        let (mut l, mut r) = ([0.0f32; 512], [0.0f32; 512]);
        nice_assert_no_alloc::assert_no_alloc(|| {
            for block in 0..2_000u32 {
                if block % 7 == 0 {
                    synth.handle(&on(40 + (block % 40) as u8));
                }
                if block % 11 == 0 {
                    synth.handle(&note(false, 0, 0, 40 + (block % 40) as u8));
                }
                synth.render(&mut l, &mut r, |_| 0.5);
            }
        });
        assert!(l.iter().any(|&x| x != 0.0));
    }

    #[test]
    fn the_drum_channel_plays_the_kit_through_the_mapping() {
        let mut synth = AuditionSynth::new(48_000.0);
        let mut notes = drums::GM_NOTES;
        notes[1] = 60; // the snare on C4
        synth.set_drum_kit(9, notes);
        synth.handle(&note(true, 0, 9, 60));
        synth.handle(&note(true, 0, 9, 36));
        assert_eq!(
            (
                synth.kit.active_voices(),
                synth.voices.iter().flatten().count()
            ),
            (2, 0)
        );
        // A note-off leaves a drum ringing; C4 on channel 1 is a melody note.
        synth.handle(&note(false, 0, 9, 60));
        synth.handle(&on(60));
        assert_eq!(
            (
                synth.kit.active_voices(),
                synth.voices.iter().flatten().count()
            ),
            (2, 1)
        );
        let (mut l, mut r) = ([0.0f32; 4800], [0.0f32; 4800]);
        synth.render(&mut l, &mut r, |_| 1.0);
        assert!(l.iter().any(|x| x.abs() > 0.05));
        synth.handle(&all_notes_off(0, 9));
        assert_eq!(synth.kit.active_voices(), 0);
    }
}
