//! The frame the piano roll and the drum grid share: the panel, what fills it (each
//! draws its own), the playhead across it, and the caption saying what plays and what is
//! queued, which the accessibility tree reads too.

use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Sense, Stroke, Ui, Vec2};

use latent_live_core::music::phrase::Phrase;

/// A phrase panel: the phrase playing, the one queued, and the playhead (the playing
/// phrase's step, fractional, while the transport runs).
pub(super) struct Panel<'a> {
    /// What the panel is called, for the accessibility tree.
    pub name: &'static str,
    /// The caption before the first phrase.
    pub waiting: &'static str,
    pub caption_top: f32,
    pub playing: Option<&'a Phrase>,
    pub queued: Option<&'a Phrase>,
    pub playhead: Option<f32>,
}

impl Panel<'_> {
    /// Draws the panel over the full width: `contents` paints the phrases into the
    /// panel's rect for a phrase of the given steps, and returns the rect the playhead
    /// crosses.
    pub fn show(
        &self,
        ui: &mut Ui,
        height: f32,
        contents: impl FnOnce(&Painter, Rect, u32) -> Rect,
    ) {
        let (rect, response) =
            ui.allocate_exact_size(Vec2::new(ui.available_width(), height), Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_gray(24));
        let steps = self
            .playing
            .or(self.queued)
            .map_or(32, |p| p.steps as u32)
            .max(1);
        let played_across = contents(&painter, rect, steps);
        if let Some(step) = self.playhead {
            playhead_line(&painter, played_across, step, steps);
        }
        let caption = caption(self.playing, self.queued, self.waiting);
        painter.text(
            rect.left_top() + Vec2::new(8.0, self.caption_top),
            Align2::LEFT_TOP,
            &caption,
            FontId::proportional(13.0),
            Color32::from_gray(200),
        );
        let name = self.name;
        response.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Image, true, format!("{name}: {caption}"))
        });
    }
}

/// What plays and what is queued, in words: the caption of the piano roll and the grid.
fn caption(playing: Option<&Phrase>, queued: Option<&Phrase>, waiting: &str) -> String {
    match (playing, queued) {
        (None, None) => waiting.to_string(),
        (Some(p), None) => format!("playing #{}", p.generation),
        (Some(p), Some(q)) => format!(
            "playing #{}  ·  queued #{} (ghosted)",
            p.generation, q.generation
        ),
        (None, Some(q)) => format!("queued #{} (starts with the transport)", q.generation),
    }
}

/// The playhead at (fractional) `step` of `steps` across `rect`.
fn playhead_line(painter: &Painter, rect: Rect, step: f32, steps: u32) {
    let x = rect.left() + rect.width() * step / steps.max(1) as f32;
    painter.line_segment(
        [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
        Stroke::new(2.0, Color32::WHITE),
    );
}
