//! Scenes: eight stored states of the parameters that move z, with the clips they moved
//! between, saved in the project. The worker is the only writer (the editor's Store and
//! Clear are commands), the host's state restore the other, after [`Scenes::validated`].
//! Which parameters a scene holds, and how a recalled one plays, is
//! [`crate::params::scenes`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::clips::Clips;

/// Scene slots, recalled as 1 to 8.
pub const NUM_SCENES: usize = 8;

/// One scene: the plain values of the parameters that move z, by parameter id (ids are
/// never renamed, so a scene saved by an older build means the same), and the clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub values: BTreeMap<String, f32>,
    pub clips: Clips,
}

/// The eight slots, as saved in the project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scenes {
    pub slots: [Option<Scene>; NUM_SCENES],
}

impl Scenes {
    /// Scene `n`, 1 to 8.
    pub fn get(&self, n: u8) -> Option<&Scene> {
        self.slots.get((n as usize).checked_sub(1)?)?.as_ref()
    }

    /// Stores or clears scene `n`, 1 to 8; other numbers name no scene.
    pub fn set(&mut self, n: u8, scene: Option<Scene>) {
        if let Some(slot) = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.slots.get_mut(i))
        {
            *slot = scene;
        }
    }

    /// Every scene's clips through [`Clips::validated`], and its values through `valid`
    /// (by id: the value in the parameter's range, or `None` for an id that names no
    /// parameter a scene holds, or a value that is not a number).
    pub fn validated(self, valid: impl Fn(&str, f32) -> Option<f32>) -> (Scenes, Vec<String>) {
        let mut messages = Vec::new();
        let mut scenes = Scenes::default();
        for (i, scene) in self.slots.into_iter().enumerate() {
            scenes.slots[i] = scene.map(|scene| {
                let (clips, said) = scene.clips.validated();
                messages.extend(said.into_iter().map(|s| format!("scene {}: {s}", i + 1)));
                let values: BTreeMap<String, f32> = scene
                    .values
                    .iter()
                    .filter_map(|(id, &v)| Some((id.clone(), valid(id, v)?)))
                    .collect();
                let dropped = scene.values.len() - values.len();
                if dropped > 0 {
                    let (what, verb) = if dropped == 1 {
                        ("value that names no control or is not a number", "was")
                    } else {
                        ("values that name no control or are not numbers", "were")
                    };
                    messages.push(format!("scene {}: {dropped} {what} {verb} dropped", i + 1));
                }
                Scene { values, clips }
            });
        }
        (scenes, messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_scenes_keep_what_validates_and_say_what_they_dropped() {
        let mut scenes = Scenes::default();
        let values = BTreeMap::from([
            ("lat1".to_string(), 9.0),
            ("nope".to_string(), 1.0),
            ("temp".to_string(), f32::NAN),
        ]);
        scenes.set(
            8,
            Some(Scene {
                values,
                clips: Clips::default(),
            }),
        );
        // Numbers past the slots name none.
        scenes.set(9, None);
        scenes.set(0, None);
        let (valid, said) = scenes.validated(|id, v| {
            (id.starts_with("lat") || id == "temp")
                .then_some(v)
                .filter(|v| v.is_finite())
                .map(|v| v.clamp(-3.0, 3.0))
        });
        let kept = &valid.get(8).unwrap().values;
        assert_eq!(kept, &BTreeMap::from([("lat1".to_string(), 3.0)]));
        assert_eq!(
            said,
            ["scene 8: 2 values that name no control or are not numbers were dropped"],
        );
        assert!(valid.get(1).is_none() && valid.get(0).is_none() && valid.get(9).is_none());
    }
}
