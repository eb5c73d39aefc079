//! Scene recalls on the audio thread: a note or a Program Change on `Scene Channel`, or
//! a change of the `Scene` parameter, cues a scene for the worker ([`SceneCue`]) to play
//! from the next swap point.

use std::sync::atomic::Ordering;

use nice_plug::prelude::NoteEvent;

use crate::audio::output::note_of;
use crate::params::scenes::CUE_COUNTS;
use crate::params::{SceneCue, SceneParams};

#[derive(Debug, Default)]
pub struct SceneListener {
    /// The `Scene` parameter as last seen; `None` before the first block.
    param: Option<i32>,
    /// A scene a note or program change recalled in this block, cued at the block's swap
    /// point.
    heard: Option<u8>,
    /// The editor's recalls as last seen ([`SceneParams::clicked`]).
    clicked: u32,
    cue: SceneCue,
}

impl SceneListener {
    /// Whether `event` is a scene's note, on or off, or its Program Change (a note-on or
    /// the program change recalls the scene). Such an event is neither melody nor chord,
    /// and is not passed on.
    pub fn hear(&mut self, event: &NoteEvent<()>, params: &SceneParams) -> bool {
        let (scene, recalls) = match *event {
            NoteEvent::MidiProgramChange {
                channel, program, ..
            } => (params.scene_of_program(channel, program), true),
            _ => match note_of(event) {
                Some((channel, key, on)) => (params.scene_of_note(channel, key), on),
                None => (None, false),
            },
        };
        let Some(scene) = scene else {
            return false;
        };
        if recalls {
            self.heard = Some(scene);
        }
        true
    }

    /// Once a block, after its events: the cue the worker serves. A note heard, a click
    /// in the editor, or a change of the `Scene` parameter (0 recalls the controls as they are; the value a
    /// project restores recalls its scene), cues a recall that takes over at `swap_bar`,
    /// the song's bar of the next swap point.
    pub fn cue(&mut self, params: &SceneParams, swap_bar: i64) -> SceneCue {
        let value = params.scene.value().clamp(0, 8);
        // The first block only learns where the editor's count is.
        let first = self.param.is_none();
        let changed = match self.param.replace(value) {
            None => value != 0,
            Some(before) => before != value,
        };
        let clicked = params.clicked.load(Ordering::Acquire);
        let click = (std::mem::replace(&mut self.clicked, clicked) != clicked && !first)
            .then_some((clicked & 0xF) as u8);
        if let Some(scene) = self
            .heard
            .take()
            .or(click)
            .or(changed.then_some(value as u8))
        {
            // Wrapping, never 0 (no recall yet).
            let count = (self.cue.count + 1) % CUE_COUNTS;
            self.cue = SceneCue {
                scene,
                count: count.max(1),
                bar: swap_bar,
                restored: first,
            };
        }
        self.cue
    }

    /// Forgets a note heard (the host reset the plugin); the recall playing plays on.
    pub fn clear(&mut self) {
        self.heard = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::output;
    use crate::testing::set_normalized;
    use nice_plug::prelude::Param;

    #[test]
    fn notes_program_changes_and_the_scene_parameter_cue_recalls_at_the_swap_point() {
        let params = SceneParams::default();
        let mut listener = SceneListener::default();
        assert_eq!(listener.cue(&params, 0), SceneCue::default(), "nothing yet");
        // D1 on channel 15 (0-based 14): scene 3, from the bar of the next swap point.
        assert!(listener.hear(&output::note(true, 0, 14, 26), &params));
        assert!(listener.hear(&output::note(false, 9, 14, 26), &params));
        assert!(!listener.hear(&output::note(true, 0, 0, 26), &params));
        let cue = listener.cue(&params, 5);
        assert_eq!(
            (cue.scene, cue.count, cue.bar, cue.restored),
            (3, 1, 5, false)
        );
        assert_eq!(listener.cue(&params, 6), cue, "one recall per note");
        // The same scene again is a new recall.
        listener.hear(&output::note(true, 0, 14, 26), &params);
        assert_eq!(listener.cue(&params, 7).count, 2);
        // Program 6 (5 on the wire) on the scene channel: scene 6; on another, nothing.
        let program = |channel, program| NoteEvent::MidiProgramChange {
            timing: 0,
            channel,
            program,
        };
        assert!(!listener.hear(&program(0, 5), &params));
        assert!(!listener.hear(&program(14, 8), &params));
        assert!(listener.hear(&program(14, 5), &params));
        let cue = listener.cue(&params, 8);
        assert_eq!((cue.scene, cue.count, cue.bar), (6, 3, 8));
        // The parameter: a change recalls its value, 0 the controls as they are.
        set_normalized(&params.scene, params.scene.preview_normalized(8));
        let cue = listener.cue(&params, 9);
        assert_eq!((cue.scene, cue.count, cue.bar), (8, 4, 9));
        set_normalized(&params.scene, 0.0);
        assert_eq!(listener.cue(&params, 10).scene, 0);
        // The editor's click on Live, the parameter unchanged: a recall all the same.
        params.click(0);
        let cue = listener.cue(&params, 11);
        assert_eq!((cue.scene, cue.count, cue.bar), (0, 6, 11));
        params.click(4);
        assert_eq!(listener.cue(&params, 12).scene, 4);
        // A project restored with a scene playing recalls it at the first block.
        let mut restored = SceneListener::default();
        set_normalized(&params.scene, params.scene.preview_normalized(2));
        let cue = restored.cue(&params, 0);
        assert_eq!((cue.scene, cue.restored), (2, true));
    }
}
