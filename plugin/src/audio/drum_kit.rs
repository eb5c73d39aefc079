//! The audition synth's drum kit: one synthesised voice per drum class, no samples, so a
//! drum model is heard in hosts that do not route MIDI.
//!
//! Kick and toms are sines swept down in pitch; the snare is a tone under noise; hats and
//! cymbals are high-passed noise over a few inharmonic square partials (the metal), short
//! for a closed hat, long for a crash. A closed hat chokes the open one, as on a kit. Each
//! class retriggers its own voice, so nine voices always suffice. Plain data: nothing here
//! allocates.

use latent_live_core::music::drums::NUM_DRUM_CLASSES;

/// The level of a full-velocity hit before the gain parameter.
const KIT_LEVEL: f32 = 0.5;
/// Below this a voice is silent and freed.
const SILENT: f32 = 1e-4;

/// How one class sounds.
#[derive(Debug, Clone, Copy)]
struct Sound {
    /// Sine frequency at the end of the sweep, in Hz (0: no tone).
    tone: f32,
    /// Start of the sweep, as a multiple of `tone`.
    sweep: f32,
    /// Seconds for the sweep to fall by 1/e.
    sweep_seconds: f32,
    /// Seconds for the tone to decay by 1/e.
    tone_seconds: f32,
    /// Level of the noise beside the tone.
    noise: f32,
    /// Seconds for the noise to decay by 1/e.
    noise_seconds: f32,
    /// Level of the metallic partials.
    metal: f32,
    level: f32,
}

/// Kick, snare, closed hat, open hat, low / mid / high tom, crash, ride.
const SOUNDS: [Sound; NUM_DRUM_CLASSES] = [
    Sound {
        tone: 50.0,
        sweep: 3.0,
        sweep_seconds: 0.03,
        tone_seconds: 0.28,
        noise: 0.05,
        noise_seconds: 0.01,
        metal: 0.0,
        level: 1.0,
    },
    Sound {
        tone: 185.0,
        sweep: 1.4,
        sweep_seconds: 0.02,
        tone_seconds: 0.08,
        noise: 0.8,
        noise_seconds: 0.15,
        metal: 0.0,
        level: 0.8,
    },
    Sound {
        tone: 0.0,
        sweep: 1.0,
        sweep_seconds: 1.0,
        tone_seconds: 1.0,
        noise: 0.6,
        noise_seconds: 0.035,
        metal: 0.4,
        level: 0.45,
    },
    Sound {
        tone: 0.0,
        sweep: 1.0,
        sweep_seconds: 1.0,
        tone_seconds: 1.0,
        noise: 0.6,
        noise_seconds: 0.32,
        metal: 0.4,
        level: 0.4,
    },
    Sound {
        tone: 82.0,
        sweep: 1.6,
        sweep_seconds: 0.08,
        tone_seconds: 0.38,
        noise: 0.1,
        noise_seconds: 0.04,
        metal: 0.0,
        level: 0.8,
    },
    Sound {
        tone: 118.0,
        sweep: 1.6,
        sweep_seconds: 0.07,
        tone_seconds: 0.32,
        noise: 0.1,
        noise_seconds: 0.04,
        metal: 0.0,
        level: 0.75,
    },
    Sound {
        tone: 165.0,
        sweep: 1.6,
        sweep_seconds: 0.06,
        tone_seconds: 0.27,
        noise: 0.1,
        noise_seconds: 0.04,
        metal: 0.0,
        level: 0.7,
    },
    Sound {
        tone: 0.0,
        sweep: 1.0,
        sweep_seconds: 1.0,
        tone_seconds: 1.0,
        noise: 0.7,
        noise_seconds: 1.1,
        metal: 0.3,
        level: 0.4,
    },
    Sound {
        tone: 0.0,
        sweep: 1.0,
        sweep_seconds: 1.0,
        tone_seconds: 1.0,
        noise: 0.25,
        noise_seconds: 0.7,
        metal: 0.6,
        level: 0.35,
    },
];

/// The metal's partials, in Hz: the ratios of the TR-808's six cymbal oscillators.
const METAL: [f32; 6] = [205.3, 304.4, 369.6, 522.7, 540.0, 800.0];
const CLOSED_HAT: usize = 2;
const OPEN_HAT: usize = 3;

#[derive(Debug, Clone, Copy, Default)]
struct Voice {
    velocity: f32,
    tone_env: f32,
    noise_env: f32,
    /// Sweep multiplier above 1, decaying towards 0.
    sweep: f32,
    phase: f32,
    metal_phases: [f32; 6],
    /// One-pole high-pass state for the noise.
    last_noise: f32,
    high_passed: f32,
}

/// Per-sample decay factors of a class at the current sample rate.
#[derive(Debug, Clone, Copy, Default)]
struct Decays {
    tone: f32,
    noise: f32,
    sweep: f32,
}

pub struct DrumKit {
    voices: [Option<Voice>; NUM_DRUM_CLASSES],
    decays: [Decays; NUM_DRUM_CLASSES],
    sample_rate: f32,
    /// xorshift32 state: white noise without a syscall or a table.
    noise: u32,
}

impl DrumKit {
    pub fn new(sample_rate: f32) -> Self {
        let mut kit = Self {
            voices: [None; NUM_DRUM_CLASSES],
            decays: [Decays::default(); NUM_DRUM_CLASSES],
            sample_rate: 48_000.0,
            noise: 0x9E37_79B9,
        };
        kit.set_sample_rate(sample_rate);
        kit
    }

    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        self.sample_rate = sample_rate.max(1.0);
        let factor = |seconds: f32| (-1.0 / (seconds * self.sample_rate)).exp();
        for (decay, sound) in self.decays.iter_mut().zip(&SOUNDS) {
            *decay = Decays {
                tone: factor(sound.tone_seconds),
                noise: factor(sound.noise_seconds),
                sweep: factor(sound.sweep_seconds),
            };
        }
    }

    pub fn reset(&mut self) {
        self.voices = [None; NUM_DRUM_CLASSES];
    }

    pub fn active_voices(&self) -> usize {
        self.voices.iter().flatten().count()
    }

    /// Strikes class `class` (out of range: nothing).
    pub fn hit(&mut self, class: usize, velocity: f32) {
        if class >= NUM_DRUM_CLASSES {
            return;
        }
        if class == CLOSED_HAT {
            self.voices[OPEN_HAT] = None;
        }
        let sound = &SOUNDS[class];
        self.voices[class] = Some(Voice {
            velocity: velocity.clamp(0.0, 1.0),
            tone_env: 1.0,
            noise_env: 1.0,
            sweep: sound.sweep - 1.0,
            ..Voice::default()
        });
    }

    /// Drums ring out on their own: a note-off changes nothing, all-notes-off (a reset, a
    /// stop) silences the kit.
    pub fn all_off(&mut self) {
        self.reset();
    }

    fn white(&mut self) -> f32 {
        let mut x = self.noise;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.noise = x;
        x as f32 / u32::MAX as f32 * 2.0 - 1.0
    }

    /// The kit's next sample, mono: the audition synth spreads it over both channels.
    pub fn sample(&mut self) -> f32 {
        if self.active_voices() == 0 {
            return 0.0;
        }
        let step = 1.0 / self.sample_rate;
        let white = self.white();
        let mut sum = 0.0;
        for (class, slot) in self.voices.iter_mut().enumerate() {
            let Some(voice) = slot else { continue };
            let (sound, decay) = (&SOUNDS[class], &self.decays[class]);
            let mut value = 0.0;
            if sound.tone > 0.0 {
                let freq = sound.tone * (1.0 + voice.sweep);
                value += (voice.phase * std::f32::consts::TAU).sin() * voice.tone_env;
                voice.phase = (voice.phase + freq * step).fract();
                voice.sweep *= decay.sweep;
                voice.tone_env *= decay.tone;
            }
            // A one-pole high-pass (x - x[-1] + 0.9 y[-1]) keeps the hiss of the noise.
            voice.high_passed = white - voice.last_noise + 0.9 * voice.high_passed;
            voice.last_noise = white;
            let mut noise = voice.high_passed * 0.5;
            if sound.metal > 0.0 {
                let mut metal = 0.0;
                for (phase, &freq) in voice.metal_phases.iter_mut().zip(&METAL) {
                    metal += if *phase < 0.5 { 1.0 } else { -1.0 };
                    // Cymbals sit an octave and a half above the 808's base partials.
                    *phase = (*phase + freq * 2.8 * step).fract();
                }
                noise = noise * (1.0 - sound.metal) + metal / METAL.len() as f32 * sound.metal;
            }
            value += noise * sound.noise * voice.noise_env;
            voice.noise_env *= decay.noise;
            sum += value * sound.level * voice.velocity;
            let tone_left = if sound.tone > 0.0 {
                voice.tone_env
            } else {
                0.0
            };
            if tone_left.max(voice.noise_env) * voice.velocity < SILENT {
                *slot = None;
            }
        }
        sum * KIT_LEVEL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(kit: &mut DrumKit, samples: usize) -> Vec<f32> {
        (0..samples).map(|_| kit.sample()).collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn every_class_sounds_and_dies_away() {
        for class in 0..NUM_DRUM_CLASSES {
            let mut kit = DrumKit::new(48_000.0);
            kit.hit(class, 1.0);
            let first = rendered(&mut kit, 4_800);
            assert!(
                rms(&first) > 0.01,
                "class {class} is heard: {}",
                rms(&first)
            );
            assert!(
                first.iter().all(|x| x.abs() <= 1.0),
                "class {class} stays in range"
            );
            // The crash rings longest: gone within 15 s.
            let _ = rendered(&mut kit, 48_000 * 15);
            assert_eq!(kit.active_voices(), 0, "class {class} frees its voice");
        }
    }

    #[test]
    fn kicks_are_low_and_hats_are_high() {
        // Zero crossings per second, a rough pitch.
        let crossings = |class: usize| {
            let mut kit = DrumKit::new(48_000.0);
            kit.hit(class, 1.0);
            let x = rendered(&mut kit, 4_800);
            x.windows(2)
                .filter(|w| w[0].signum() != w[1].signum())
                .count()
                * 10
        };
        let (kick, snare, hat) = (crossings(0), crossings(1), crossings(2));
        assert!(
            kick < 400 && kick < snare && snare < hat && hat > 3_000,
            "kick {kick}, snare {snare}, hat {hat}"
        );
    }

    #[test]
    fn a_closed_hat_chokes_the_open_one_and_all_off_silences() {
        let mut kit = DrumKit::new(44_100.0);
        kit.hit(OPEN_HAT, 1.0);
        kit.hit(0, 0.5);
        assert_eq!(kit.active_voices(), 2);
        kit.hit(CLOSED_HAT, 1.0);
        assert!(kit.voices[OPEN_HAT].is_none() && kit.voices[CLOSED_HAT].is_some());
        kit.all_off();
        assert_eq!(kit.active_voices(), 0);
        assert!(rendered(&mut kit, 64).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn rendering_does_not_allocate() {
        let mut kit = DrumKit::new(44_100.0);
        let mut heard = 0.0f32;
        nice_assert_no_alloc::assert_no_alloc(|| {
            for block in 0..2_000usize {
                if block % 5 == 0 {
                    kit.hit(block % NUM_DRUM_CLASSES, 0.8);
                }
                for _ in 0..512 {
                    heard = heard.max(kit.sample().abs());
                }
            }
        });
        assert!(heard > 0.01);
    }
}
