//! Scenes on stage: the parameters that recall them (`Scene`, a note or a Program Change
//! on `Scene Channel`), `Scene Glide`, the cue the audio thread hands the worker, and which
//! parameters a scene holds ([`SCENE_IDS`]) and how a recalled one plays over them.

use std::collections::BTreeMap;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use nice_plug::prelude::*;

use crate::params::ZRequest;

/// The ids of the parameters a scene holds: everything that moves z. In the order of
/// the released ids: the latent sliders, temperature, variation, the morph, the
/// attributes from index [`FIRST_ATTRIBUTE`] (as [`ZRequest`] holds them), then the
/// pad's Y and the drift.
pub const SCENE_IDS: [&str; 28] = [
    "lat1", "lat2", "lat3", "lat4", "lat5", "lat6", "lat7", "lat8", "temp", "seed", "morph",
    "dens", "rhyth", "sync", "prange", "height", "contr", "kick", "snare", "hats", "toms", "cymb",
    "dsync", "bback", "fill", "pady2", "drift", "drrate",
];

const FIRST_ATTRIBUTE: usize = 11;

/// The longest glide into a scene, in bars.
pub const MAX_GLIDE: i32 = 8;

#[derive(Params)]
pub struct SceneParams {
    /// The scene playing, 1 to 8 (0: the controls as they are). A change recalls it.
    #[id = "scene"]
    pub scene: IntParam,
    /// The channel whose notes and program changes recall scenes, 1 to 16 (0: none).
    #[id = "scnch"]
    pub channel: IntParam,
    /// The note that recalls scene 1; the seven above it recall 2 to 8.
    #[id = "scnnt"]
    pub first_note: IntParam,
    /// Bars a recall takes to slerp from the z playing to the scene's (0: it jumps).
    #[id = "sglide"]
    pub glide: IntParam,
    /// The editor's recalls: a count in the high bits, the scene (0 to 8) in the low
    /// four. A click on the scene the parameter already names (or on Live, after a note
    /// recalled one) changes no parameter, and is a recall all the same.
    pub clicked: AtomicU32,
}

impl Default for SceneParams {
    fn default() -> Self {
        Self {
            scene: zero_named("Scene", 0, 8, "Live"),
            channel: zero_named("Scene Channel", 15, 16, "Off"),
            first_note: IntParam::new(
                "Scene First Note",
                24,
                IntRange::Linear { min: 0, max: 120 },
            )
            .with_value_to_string(formatters::v2s_i32_key_formatter())
            .with_string_to_value(formatters::s2v_i32_key_formatter()),
            glide: IntParam::new(
                "Scene Glide",
                0,
                IntRange::Linear {
                    min: 0,
                    max: MAX_GLIDE,
                },
            )
            .with_unit(" bars"),
            clicked: AtomicU32::new(0),
        }
    }
}

/// A parameter from 0 to `max` whose 0 has a name (`Live`, `Off`).
fn zero_named(name: &str, default: i32, max: i32, zero: &'static str) -> IntParam {
    IntParam::new(name, default, IntRange::Linear { min: 0, max })
        .with_value_to_string(Arc::new(move |n| match n {
            0 => zero.to_string(),
            n => n.to_string(),
        }))
        .with_string_to_value(Arc::new(move |s| match s.trim() {
            s if s.eq_ignore_ascii_case(zero) => Some(0),
            s => s.parse().ok().filter(|n| (0..=max).contains(n)),
        }))
}

impl SceneParams {
    /// A recall from the editor (from the GUI thread).
    pub fn click(&self, scene: u8) {
        let count = (self.clicked.load(Ordering::Acquire) >> 4).wrapping_add(1);
        self.clicked
            .store(count << 4 | scene.min(8) as u32, Ordering::Release);
    }

    /// The scene a note recalls, 1 to 8: a note on `Scene Channel` (0-based `channel`)
    /// from `Scene First Note` up.
    pub fn scene_of_note(&self, channel: u8, key: u8) -> Option<u8> {
        let first = self.first_note.value();
        (self.channel.value() == channel as i32 + 1)
            .then(|| key as i32 - first)
            .filter(|n| (0..8).contains(n))
            .map(|n| n as u8 + 1)
    }

    /// The scene a Program Change recalls, 1 to 8: programs 1 to 8 (0 to 7 on the wire)
    /// on `Scene Channel` (0-based `channel`).
    pub fn scene_of_program(&self, channel: u8, program: u8) -> Option<u8> {
        (self.channel.value() == channel as i32 + 1 && program < 8).then_some(program + 1)
    }
}

/// A recall, as the audio thread cues it for the worker: the scene (0: the controls as
/// they are), a count of recalls (recalling the scene playing again is a new recall),
/// the song bar it takes over at (the next swap point when it was cued), and whether a
/// restored project named it (its clips are then the project's, saved as they were).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SceneCue {
    pub scene: u8,
    pub count: u32,
    pub bar: i64,
    pub restored: bool,
}

/// Recalls counted before the count wraps.
pub const CUE_COUNTS: u32 = 1 << 19;

impl SceneCue {
    /// In one atomic word: the scene in 4 bits, the count in 19 (it wraps), whether
    /// restored in 1, the bar in 40 (signed: more than ten million years of bars at any
    /// tempo).
    pub fn pack(self) -> u64 {
        (self.scene as u64 & 0xF)
            | ((self.count % CUE_COUNTS) as u64) << 4
            | (self.restored as u64) << 23
            | (self.bar as u64) << 24
    }

    pub fn unpack(bits: u64) -> Self {
        Self {
            scene: (bits & 0xF) as u8,
            count: ((bits >> 4) % CUE_COUNTS as u64) as u32,
            restored: bits >> 23 & 1 == 1,
            // The arithmetic shift brings the bar's sign back.
            bar: (bits as i64) >> 24,
        }
    }
}

impl ZRequest {
    /// What the request plays of the parameters a scene holds, by id (plain values).
    pub fn scene_values(&self) -> BTreeMap<String, f32> {
        let c = &self.controls;
        let mut values = BTreeMap::new();
        for (&v, id) in c.sliders.iter().zip(&SCENE_IDS) {
            values.insert(id.to_string(), v);
        }
        for (&v, id) in c.attributes.iter().zip(&SCENE_IDS[FIRST_ATTRIBUTE..]) {
            values.insert(id.to_string(), v);
        }
        values.insert("temp".into(), self.temperature);
        values.insert("seed".into(), self.seed as f32);
        values.insert("morph".into(), c.morph);
        values.insert("pady2".into(), c.pad_y);
        values.insert("drift".into(), c.drift.amount);
        values.insert("drrate".into(), c.drift.cycle_bars as f32);
        values
    }

    /// The request with a scene's `values` (by id, plain; ids a scene does not hold are
    /// ignored) played over it: each control the performer has moved since the recall
    /// (its value now is not its value in `at_recall`) plays where it is now, every other
    /// plays the scene's value, as a hardware synth's knob takes over from a recalled
    /// patch once it is turned.
    pub fn with_scene(
        &self,
        values: &BTreeMap<String, f32>,
        at_recall: &BTreeMap<String, f32>,
    ) -> ZRequest {
        let now = self.scene_values();
        let played = |id: &str| -> Option<f32> {
            let value = *now.get(id)?;
            Some(match values.get(id) {
                Some(&scene) if at_recall.get(id) == Some(&value) => scene,
                _ => value,
            })
        };
        let mut request = *self;
        let c = &mut request.controls;
        for (v, id) in c.sliders.iter_mut().zip(&SCENE_IDS) {
            *v = played(id).unwrap_or(*v);
        }
        for (v, id) in c.attributes.iter_mut().zip(&SCENE_IDS[FIRST_ATTRIBUTE..]) {
            *v = played(id).unwrap_or(*v);
        }
        let or = |id, value: f32| played(id).unwrap_or(value);
        c.morph = or("morph", c.morph);
        c.pad_y = or("pady2", c.pad_y);
        c.drift.amount = or("drift", c.drift.amount);
        c.drift.cycle_bars = or("drrate", c.drift.cycle_bars as f32).max(1.0) as u32;
        request.temperature = or("temp", self.temperature);
        request.seed = or("seed", self.seed as f32).max(0.0) as u64;
        request.controls.drift.seed = request.seed;
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::LatentLiveParams;

    #[test]
    fn the_scene_ids_are_parameters_and_the_values_name_each_once() {
        let params = LatentLiveParams::default();
        let ids = crate::testing::param_ids(&params);
        for id in SCENE_IDS {
            assert!(ids.iter().any(|i| i == id), "{id}");
        }
        let values = params.z_request().scene_values();
        assert_eq!(values.len(), SCENE_IDS.len());
        assert!(SCENE_IDS.iter().all(|id| values.contains_key(*id)));
    }

    #[test]
    fn a_scene_plays_over_the_controls_that_have_not_moved_since_its_recall() {
        let live = LatentLiveParams::default().z_request();
        let at_recall = live.scene_values();
        let mut scene = at_recall.clone();
        scene.insert("lat3".into(), 1.5);
        scene.insert("dens".into(), -1.0);
        scene.insert("morph".into(), 0.75);
        scene.insert("temp".into(), 0.4);
        scene.insert("seed".into(), 12.0);
        scene.insert("drrate".into(), 4.0);
        // Nothing moved: the scene, exactly.
        assert_eq!(live.with_scene(&scene, &at_recall).scene_values(), scene);
        // Latent 3 and the temperature moved since: they play where they are now.
        let mut moved = live;
        moved.controls.sliders[2] = -0.5;
        moved.temperature = 0.9;
        let played = moved.with_scene(&scene, &at_recall);
        assert_eq!(
            (played.controls.sliders[2], played.temperature),
            (-0.5, 0.9)
        );
        assert_eq!(
            (
                played.controls.morph,
                played.controls.attributes[0],
                played.seed,
                played.controls.drift.seed,
                played.controls.drift.cycle_bars
            ),
            (0.75, -1.0, 12, 12, 4)
        );
    }

    #[test]
    fn cues_pack_into_one_word_and_back() {
        for cue in [
            SceneCue::default(),
            SceneCue {
                scene: 8,
                count: CUE_COUNTS - 1,
                bar: -3,
                restored: true,
            },
            SceneCue {
                scene: 3,
                count: 17,
                bar: 1 << 38,
                restored: false,
            },
        ] {
            assert_eq!(SceneCue::unpack(cue.pack()), cue);
        }
    }

    #[test]
    fn notes_on_the_scene_channel_name_scenes() {
        let params = SceneParams::default();
        // Channel 15 (0-based 14), C1 (24) to G1 (31).
        assert_eq!(params.scene_of_note(14, 24), Some(1));
        assert_eq!(params.scene_of_note(14, 31), Some(8));
        assert_eq!(params.scene_of_note(14, 32), None);
        assert_eq!(params.scene_of_note(14, 23), None);
        assert_eq!(params.scene_of_note(0, 24), None);
        // Programs 1 to 8 (0 to 7 on the wire) on that channel.
        assert_eq!(params.scene_of_program(14, 0), Some(1));
        assert_eq!(params.scene_of_program(14, 7), Some(8));
        assert_eq!(params.scene_of_program(14, 8), None);
        assert_eq!(params.scene_of_program(13, 0), None);
    }
}
