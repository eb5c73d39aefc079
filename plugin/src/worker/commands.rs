//! The worker's work on clips: captures from the audio thread, the editor's commands
//! (MIDI files in and out, refine, clear), and encoding clips with the model playing.
//!
//! Files are read and written on a helper thread ([`models::off_thread`]) and latent
//! inversion checks the worker's stop flag, so none of this can hold up shutdown.

use std::path::Path;
use std::sync::atomic::Ordering;

use candle_core::Tensor;

use crate::link::capture::CaptureRequest;
use crate::link::Command;
use crate::params::CaptureSource;
use crate::params::Playback;
use crate::state::clips::{Clip, ClipSource, Slot};
use crate::state::scenes::Scene;
use crate::worker::error::WorkerError;
use crate::worker::inference::Worker;
use crate::worker::models::{self, Loaded, ModelSource};
use latent_live_core::model::inversion::{self, InversionConfig};
use latent_live_core::model::MAX_STEPS;
use latent_live_core::model::{Config, GrooveInput, Sampling};
use latent_live_core::music::chord::Chord;
use latent_live_core::music::groove::{Groove, Stroke};
use latent_live_core::music::melody::{self, Note};
use latent_live_core::music::phrase::Phrase;
use latent_live_core::music::{drums, midi, Encoding, Event};

impl Worker {
    pub(super) fn handle(&mut self, command: Command) {
        match command {
            Command::CaptureFile { slot, path } => {
                let clip = self.clip_from_file(&path);
                self.keep_capture(slot, clip);
            }
            Command::ClearClip(slot) => self.store(slot, None),
            Command::RefineClip(slot) => {
                let result = self.refine(slot);
                self.shared.status.report(
                    result
                        .err()
                        .map(|e| format!("cannot refine clip {slot:?}: {e}")),
                );
            }
            Command::ExportMidi(path) => {
                let result = self.export(&path);
                self.shared.status.report(
                    result
                        .err()
                        .map(|e| format!("cannot export {}: {e}", path.display())),
                );
            }
            Command::StoreScene(n) => {
                let live = self.shared.status.request(&self.params);
                let scene = Scene {
                    values: self.played(&live).scene_values(),
                    clips: self.clips.clone(),
                };
                self.params.scene_store.update(|s| s.set(n, Some(scene)));
            }
            Command::ClearScene(n) => {
                self.params.scene_store.update(|s| s.set(n, None));
            }
        }
    }

    pub(super) fn capture(&mut self, request: CaptureRequest) {
        let phrase = &request.phrase;
        let clip = match request.source {
            _ if phrase.is_empty() => Err(WorkerError::NothingCaptured(match request.source {
                CaptureSource::Input => "nothing was played in during the last phrase",
                CaptureSource::Tap => "nothing was tapped during the last phrase",
                CaptureSource::Playing => "the phrase playing is silent",
            })),
            CaptureSource::Tap => self.beat_of_taps(phrase),
            source => {
                let steps = phrase.steps as usize;
                // The chords played in beside the notes, or those the phrase was decoded
                // over.
                let (source, chords) = if source == CaptureSource::Input {
                    (ClipSource::Input, request.chords[..steps].to_vec())
                } else {
                    let decoded = self
                        .recent
                        .iter()
                        .find(|d| d.phrase.generation == phrase.generation);
                    let chords = decoded.map_or_else(Vec::new, |d| {
                        d.chords.iter().map(|&c| Chord::code(c)).collect()
                    });
                    (ClipSource::Playing, chords)
                };
                let heard = phrase.encoding == Encoding::Melody
                    && chords.len() == steps
                    && chords.iter().any(|&c| c != 0);
                Ok(Clip {
                    notes: phrase.melody_notes(),
                    steps: phrase.steps as u32,
                    source,
                    mu: Vec::new(),
                    model: String::new(),
                    encoding: phrase.encoding,
                    chords: if heard { chords } else { Vec::new() },
                })
            }
        };
        self.keep_capture(request.slot, clip);
    }

    /// The beat the tap-to-drums model hears in the taps of `taps` (read at the first
    /// tap capture), as a drum clip.
    fn beat_of_taps(&mut self, taps: &Phrase) -> Result<Clip, WorkerError> {
        if !self
            .loaded
            .as_ref()
            .is_some_and(|l| l.model.config.encoding.is_drums())
        {
            return Err(WorkerError::TapNeedsDrums);
        }
        if self.tap2drum.is_none() {
            self.tap2drum = models::load_groove(
                &self.loader,
                ModelSource::Tap2Drum,
                GrooveInput::Tap,
                None,
                &self.shared.stop,
            )
            .map_err(|e| WorkerError::Tap2Drum(Box::new(e)))?;
        }
        let tap2drum = self.tap2drum.as_ref().ok_or(WorkerError::Stopped)?;
        let times: Vec<f64> = taps
            .notes()
            .iter()
            .map(|n| n.start as f64 + n.shift as f64)
            .collect();
        let beat = tap2drum.model.transform_windows(
            &Groove::from_taps(&times, taps.steps as usize),
            Sampling::Greedy,
        )?;
        let notes = Clip::hit_notes(&beat.hits());
        if notes.is_empty() {
            return Err(WorkerError::NoBeat);
        }
        Ok(Clip {
            notes,
            steps: taps.steps as u32,
            source: ClipSource::Tap,
            mu: Vec::new(),
            model: String::new(),
            encoding: Encoding::Drums,
            chords: Vec::new(),
        })
    }

    /// Clips encoded by other weights (or restored without their mu) are encoded again
    /// by the model playing, from their notes.
    pub(super) fn reencode_clips(&mut self) {
        let Some(loaded) = &self.loaded else { return };
        let mut encoded = Vec::new();
        for slot in Slot::ALL {
            let Some(clip) = self.clips.get(slot) else {
                continue;
            };
            if clip.model == loaded.hash && clip.mu.len() == loaded.space.z_size {
                continue;
            }
            let mut clip = clip.clone();
            match self.encode(loaded, &clip) {
                Ok(mu) => {
                    clip.mu = mu;
                    clip.model = loaded.hash.clone();
                    encoded.push((slot, clip));
                }
                Err(e) => self
                    .shared
                    .status
                    .report(Some(format!("cannot encode clip {slot:?}: {e}"))),
            }
        }
        for (slot, clip) in encoded {
            self.store(slot, Some(clip));
        }
    }

    fn store(&mut self, slot: Slot, clip: Option<Clip>) {
        self.clips.set(slot, clip.clone());
        self.clips_revision = Some(self.params.clips.update(|clips| clips.set(slot, clip)));
    }

    /// Encodes a captured clip and stores it, or reports why not.
    fn keep_capture(&mut self, slot: Slot, clip: Result<Clip, WorkerError>) {
        let Some(loaded) = &self.loaded else {
            self.shared
                .status
                .report(Some(WorkerError::NoModel.to_string()));
            return;
        };
        let encoded = clip.and_then(|mut clip| {
            clip.mu = self.encode(loaded, &clip)?;
            clip.model = loaded.hash.clone();
            Ok(clip)
        });
        match encoded {
            Ok(clip) => {
                self.store(slot, Some(clip));
                self.shared.status.report(None);
            }
            Err(e) => self
                .shared
                .status
                .report(Some(format!("capture {slot:?}: {e}"))),
        }
    }

    /// The clip's point in the loaded model's latent space: the encoder's mean, or for a
    /// decoder-only model the z that latent inversion finds.
    fn encode(&self, loaded: &Loaded, clip: &Clip) -> Result<Vec<f32>, WorkerError> {
        let events = events_for(&loaded.model.config, clip)?;
        let z = if loaded.model.has_encoder() {
            loaded.model.encode(&[&events])
        } else {
            inversion::invert(
                &loaded.model,
                &[&events],
                None,
                InversionConfig::default(),
                &self.shared.stop,
            )
        };
        Ok(z.and_then(|z| z.squeeze(0)?.to_vec1::<f32>())?)
    }

    fn refine(&mut self, slot: Slot) -> Result<(), WorkerError> {
        let loaded = self.loaded.as_ref().ok_or(WorkerError::NoModel)?;
        let mut clip = self
            .params
            .clips
            .get()
            .get(slot)
            .cloned()
            .ok_or(WorkerError::EmptySlot)?;
        let events = events_for(&loaded.model.config, &clip)?;
        let start =
            Tensor::new(clip.mu.as_slice(), loaded.model.device()).and_then(|mu| mu.unsqueeze(0));
        let z = start.and_then(|start| {
            inversion::invert(
                &loaded.model,
                &[&events],
                Some(start),
                InversionConfig::default(),
                &self.shared.stop,
            )
        });
        clip.mu = z.and_then(|z| z.squeeze(0)?.to_vec1::<f32>())?;
        self.store(slot, Some(clip));
        Ok(())
    }

    /// The file's first window as long as the model's phrases (the whole file when it is
    /// shorter), as a melody or as drums, whichever the model plays. A model that reads
    /// chords reads a lead sheet's melody and keeps its chords with the clip.
    fn clip_from_file(&self, path: &Path) -> Result<Clip, WorkerError> {
        let (steps, encoding, reads_chords) =
            self.loaded
                .as_ref()
                .map_or((32, Encoding::Melody, false), |l| {
                    let config = &l.model.config;
                    (config.steps(), config.encoding, config.chords.is_some())
                });
        let bars = steps / melody::STEPS_PER_BAR;
        let owned = path.to_path_buf();
        let sheet = if reads_chords {
            // A file that is no lead sheet is read as any melody file, below.
            models::off_thread(&self.shared.stop, move || {
                midi::import_lead_sheet_file(&owned)
            })?
            .ok()
        } else {
            None
        };
        let owned = path.to_path_buf();
        let (notes, clip_steps, chords) = match (sheet, encoding) {
            (Some(sheet), _) => {
                let (notes, mut chords, clip_steps) =
                    match midi::lead_sheet_slices(&sheet, bars).first() {
                        Some((window, chords)) => {
                            (melody::decode(window), chords.clone(), steps as u32)
                        }
                        None => (
                            sheet.melody.notes.clone(),
                            sheet.chords.clone(),
                            sheet.melody.steps.clamp(1, MAX_STEPS as u32),
                        ),
                    };
                chords.truncate(clip_steps as usize);
                let chords = if chords.iter().all(Option::is_none) {
                    Vec::new()
                } else {
                    chords.iter().map(|&c| Chord::code(c)).collect()
                };
                (notes, clip_steps, chords)
            }
            (None, Encoding::Melody) => {
                let imported =
                    models::off_thread(&self.shared.stop, move || midi::import_file(&owned))??;
                let (notes, clip_steps) = match midi::slices(&imported, bars).first() {
                    Some(window) => (melody::decode(window), steps as u32),
                    None => (
                        imported.notes.clone(),
                        imported.steps.clamp(1, MAX_STEPS as u32),
                    ),
                };
                (notes, clip_steps, Vec::new())
            }
            (None, Encoding::Drums | Encoding::Groove) => {
                let imported = models::off_thread(&self.shared.stop, move || {
                    midi::import_drums_file(&owned)
                })??;
                let hits = match midi::drum_slices(&imported, bars).first() {
                    Some(window) => drums::decode(window),
                    None => imported.hits.clone(),
                };
                let clip_steps = if imported.steps as usize >= steps {
                    steps as u32
                } else {
                    imported.steps.clamp(1, MAX_STEPS as u32)
                };
                (Clip::hit_notes(&hits), clip_steps, Vec::new())
            }
        };
        if notes.is_empty() {
            return Err(WorkerError::NoNotes(path.to_path_buf()));
        }
        Ok(Clip {
            notes,
            steps: clip_steps,
            source: ClipSource::File(path.display().to_string()),
            mu: Vec::new(),
            model: String::new(),
            encoding,
            chords,
        })
    }

    /// Writes the phrase playing, as the sequencer plays it ([`Playback`]), on the grid.
    fn export(&self, path: &Path) -> Result<(), WorkerError> {
        let status = &self.shared.status;
        let playing = status.playing_generation.load(Ordering::Acquire);
        let decoded = self
            .recent
            .iter()
            .rev()
            .find(|d| d.phrase.generation == playing)
            .or(self.recent.last())
            .ok_or(WorkerError::NothingDecoded)?;
        let play = Playback::from_params(&self.params);
        let tempo = status.tempo.load(Ordering::Acquire);
        let bpm = if tempo > 0.0 {
            tempo
        } else {
            midi::DEFAULT_TEMPO
        };
        let phrase = &decoded.phrase;
        if phrase.encoding == Encoding::Drums {
            // As heard: each hit's velocity and timing at the Groove amount playing.
            let strokes: Vec<Stroke> = phrase
                .notes()
                .iter()
                .map(|n| Stroke {
                    class: n.pitch,
                    time: n.start as f64 + play.shift_steps(Encoding::Drums, n),
                    velocity: (play.voice(Encoding::Drums, n).2 * 127.0).round() as u8,
                })
                .collect();
            let bytes = midi::export_groove(&strokes, bpm, &play.drum_notes);
            let path = path.to_path_buf();
            return Ok(models::off_thread(&self.shared.stop, move || {
                std::fs::write(path, bytes)
            })??);
        }
        let notes = phrase.notes();
        let heard: Vec<Note> = notes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let next = notes.get(i + 1).map_or(u32::MAX, |m| m.start as u32);
                let length = play.sounding_steps(n).round().max(1.0) as u32;
                Note {
                    pitch: play.key(n.pitch),
                    start: n.start as u32,
                    end: (n.start as u32 + length).min(next),
                }
            })
            .collect();
        let velocity = (play.velocity * 127.0).round() as u8;
        // A phrase decoded over chords goes out as a lead sheet, its chords in a second
        // track, as the chord models read files back.
        let bytes = if decoded.chords.iter().any(Option::is_some) {
            midi::export_lead_sheet(&heard, velocity, &decoded.chords, bpm)
        } else {
            midi::export_with_velocity(&heard, bpm, velocity)
        };
        let path = path.to_path_buf();
        Ok(models::off_thread(&self.shared.stop, move || {
            std::fs::write(path, bytes)
        })??)
    }
}

/// `clip` as the events the model `config` reads: refused when it holds the other kind of
/// notes, or is not as long as the model's phrases.
fn events_for(config: &Config, clip: &Clip) -> Result<Vec<Event>, WorkerError> {
    if clip.encoding != config.encoding {
        return Err(WorkerError::Encoding {
            clip: clip.encoding.name(),
            model: config.encoding.name(),
        });
    }
    if clip.steps as usize != config.steps() {
        return Err(WorkerError::ClipLength {
            clip: clip.steps as usize,
            model: config.steps(),
        });
    }
    Ok(clip.events(config.min_pitch, config.max_pitch))
}
