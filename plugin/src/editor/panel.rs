//! The frame the piano roll and the drum grid share: the panel, what fills it (each
//! draws its own), the playhead across it, and the caption saying what plays and what is
//! queued, which the accessibility tree reads too.

use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Sense, Stroke, Ui, Vec2};

use latent_live_core::music::melody::STEPS_PER_BAR;
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
        // The bar playing, lit across the panel, so that a long phrase is read bar by bar.
        let bar = self.playhead.map(|step| {
            let bar = (step.max(0.0) as u32 / STEPS_PER_BAR as u32)
                .min(steps.div_ceil(STEPS_PER_BAR as u32) - 1);
            light_bar(&painter, played_across, bar, steps);
            playhead_line(&painter, played_across, step, steps);
            (bar, steps.div_ceil(STEPS_PER_BAR as u32))
        });
        let caption = caption(self.playing, self.queued, self.waiting, bar);
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
/// `bar` is the bar playing (from 0) and how many the phrase has, while it plays.
fn caption(
    playing: Option<&Phrase>,
    queued: Option<&Phrase>,
    waiting: &str,
    bar: Option<(u32, u32)>,
) -> String {
    let at = |generation: u64| match bar {
        Some((bar, bars)) => format!("playing #{generation}, bar {} of {bars}", bar + 1),
        None => format!("playing #{generation}"),
    };
    match (playing, queued) {
        (None, None) => waiting.to_string(),
        (Some(p), None) => at(p.generation),
        (Some(p), Some(q)) => format!(
            "{}  ·  queued #{} (ghosted)",
            at(p.generation),
            q.generation
        ),
        (None, Some(q)) => format!("queued #{} (starts with the transport)", q.generation),
    }
}

/// Bar `bar` of a phrase of `steps` across `rect`, lit.
fn light_bar(painter: &Painter, rect: Rect, bar: u32, steps: u32) {
    let x = |step: u32| rect.left() + rect.width() * step.min(steps) as f32 / steps.max(1) as f32;
    let from = bar * STEPS_PER_BAR as u32;
    painter.rect_filled(
        Rect::from_x_y_ranges(x(from)..=x(from + STEPS_PER_BAR as u32), rect.y_range()),
        0.0,
        Color32::from_white_alpha(18),
    );
}

/// The playhead at (fractional) `step` of `steps` across `rect`.
fn playhead_line(painter: &Painter, rect: Rect, step: f32, steps: u32) {
    let x = rect.left() + rect.width() * step / steps.max(1) as f32;
    painter.line_segment(
        [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
        Stroke::new(2.0, Color32::WHITE),
    );
}
