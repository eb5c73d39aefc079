//! The drum grid: nine rows of drum classes by the phrase's steps, the groove playing lit
//! as the playhead passes, the one queued ghosted over it; and the small grids that show
//! drum clips. It takes the piano roll's place when a drum model plays. Each hit is drawn
//! as it is played: brighter the louder, and shifted inside its cell as far off the grid
//! as the `Groove` amount puts it.

use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Sense, Stroke, StrokeKind, Ui, Vec2};

use super::panel::Panel;
use super::piano_roll::{Fill, PLAYING, QUEUED};
use crate::params::Playback;
use latent_live_core::music::drums::{Hit, CLASSES, NUM_DRUM_CLASSES};
use latent_live_core::music::melody::STEPS_PER_BAR;
use latent_live_core::music::phrase::{Phrase, PhraseNote};
use latent_live_core::music::Encoding;

const CELL: Color32 = Color32::from_gray(34);
const BEAT_CELL: Color32 = Color32::from_gray(42);
const BAR_LINE: Color32 = Color32::from_gray(110);
/// Width of the row labels on the full-size grid.
const LABELS: f32 = 34.0;

/// Draws the groove playing and the queued one over the full width; `playhead` is the
/// playing phrase's step (fractional) while the transport runs.
pub fn show(
    ui: &mut Ui,
    playing: Option<&Phrase>,
    queued: Option<&Phrase>,
    playhead: Option<f32>,
    play: &Playback,
    height: f32,
) {
    let panel = Panel {
        name: "Drum grid",
        waiting: "waiting for the first groove",
        caption_top: 4.0,
        playing,
        queued,
        playhead,
    };
    panel.show(ui, height, |painter, rect, steps| {
        let caption_height = 22.0;
        let grid_rect = Rect::from_min_max(
            Pos2::new(rect.left() + LABELS, rect.top() + caption_height),
            rect.right_bottom() - Vec2::new(4.0, 4.0),
        );
        let row = grid_rect.height() / NUM_DRUM_CLASSES as f32;
        for (class, c) in CLASSES.iter().enumerate() {
            let y = row_top(grid_rect, class, row) + row / 2.0;
            painter.text(
                Pos2::new(rect.left() + 6.0, y),
                Align2::LEFT_CENTER,
                c.short,
                FontId::monospace(11.0),
                Color32::from_gray(170),
            );
        }
        cells(painter, grid_rect, steps);
        let lit = playhead.map(|p| p.floor() as u32);
        if let Some(p) = playing {
            let hits = played(p, play);
            paint_hits(painter, grid_rect, &hits, steps, Fill::Solid(PLAYING), lit);
        }
        if let Some(q) = queued {
            let hits = played(q, play);
            paint_hits(painter, grid_rect, &hits, steps, Fill::Ghost(QUEUED), None);
        }
        grid_rect
    });
}

/// A drum clip as a small grid, for the clip slots.
pub fn thumbnail(
    ui: &mut Ui,
    hits: &[Hit],
    steps: u32,
    size: Vec2,
    color: Color32,
    label: &str,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 3.0, Color32::from_gray(24));
    let steps = steps.max(1);
    let inner = rect.shrink(2.0);
    cells(&painter, inner, steps);
    let marks: Vec<Mark> = hits
        .iter()
        .map(|&hit| Mark {
            hit,
            level: 1.0,
            shift: 0.0,
        })
        .collect();
    paint_hits(&painter, inner, &marks, steps, Fill::Solid(color), None);
    painter.rect_stroke(
        rect,
        3.0,
        Stroke::new(1.0, color.gamma_multiply(0.6)),
        StrokeKind::Inside,
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
    response
}

/// Kick at the bottom, cymbals at the top, as drum machines lay them out.
fn row_top(rect: Rect, class: usize, row: f32) -> f32 {
    rect.bottom() - (class + 1) as f32 * row
}

fn cell_rect(rect: Rect, step: u32, class: usize, steps: u32) -> Rect {
    let (width, row) = (
        rect.width() / steps as f32,
        rect.height() / NUM_DRUM_CLASSES as f32,
    );
    let min = Pos2::new(rect.left() + step as f32 * width, row_top(rect, class, row));
    Rect::from_min_size(min, Vec2::new(width, row)).shrink((width.min(row) * 0.08).max(0.5))
}

/// The empty cells, beats a shade lighter, and bar lines.
fn cells(painter: &Painter, rect: Rect, steps: u32) {
    for step in 0..steps {
        let color = if step % 4 == 0 { BEAT_CELL } else { CELL };
        for class in 0..NUM_DRUM_CLASSES {
            painter.rect_filled(cell_rect(rect, step, class, steps), 1.0, color);
        }
    }
    for step in (0..steps).step_by(STEPS_PER_BAR).skip(1) {
        let x = rect.left() + rect.width() * step as f32 / steps as f32;
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(1.0, BAR_LINE),
        );
    }
}

/// A hit as drawn: `level` its loudness as played (0..=1), `shift` its offset in steps.
struct Mark {
    hit: Hit,
    level: f32,
    shift: f32,
}

/// The hits of a drum phrase as `play` plays them: the velocity and timing the sequencer
/// gives each ([`Playback::voice`], [`Playback::shift_steps`]).
fn played(phrase: &Phrase, play: &Playback) -> Vec<Mark> {
    let encoding = Encoding::Drums;
    let mark = |n: &PhraseNote| Mark {
        hit: Hit {
            step: n.start as u32,
            class: n.pitch,
        },
        level: play.voice(encoding, n).2,
        shift: play.shift_steps(encoding, n) as f32,
    };
    phrase.notes().iter().map(mark).collect()
}

/// The hits; those on step `lit` (the playhead's) glow white. A solid hit's brightness
/// follows its velocity, from a third of its colour for the softest.
fn paint_hits(
    painter: &Painter,
    rect: Rect,
    marks: &[Mark],
    steps: u32,
    fill: Fill,
    lit: Option<u32>,
) {
    for mark in marks
        .iter()
        .filter(|m| m.hit.step < steps && (m.hit.class as usize) < NUM_DRUM_CLASSES)
    {
        let cell = cell_rect(rect, mark.hit.step, mark.hit.class as usize, steps);
        let r = cell.translate(Vec2::new(mark.shift * rect.width() / steps as f32, 0.0));
        match fill {
            Fill::Solid(color) => {
                let color = if lit == Some(mark.hit.step) {
                    Color32::WHITE
                } else {
                    color.gamma_multiply(0.35 + 0.65 * mark.level.clamp(0.0, 1.0))
                };
                painter.rect_filled(r, 2.0, color);
            }
            Fill::Ghost(color) => {
                painter.rect_stroke(r, 2.0, Stroke::new(1.5, color), StrokeKind::Inside);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_live_core::music::groove::Feel;

    #[test]
    fn hits_are_drawn_as_played_brighter_the_louder_and_shifted_by_the_groove() {
        let mut phrase = Phrase::from_drums(
            &[Hit { step: 0, class: 0 }, Hit { step: 4, class: 1 }],
            16,
            1,
        );
        let mut feel = vec![[Feel::default(); NUM_DRUM_CLASSES]; 16];
        feel[0][0] = Feel {
            velocity: 127,
            shift: -0.3,
        };
        feel[4][1] = Feel {
            velocity: 20,
            shift: 0.2,
        };
        phrase.set_feel(&feel);
        let quantized = played(&phrase, &Playback::default());
        assert!(
            quantized.iter().all(|m| m.shift == 0.0),
            "Groove 0 draws the grid"
        );
        let grooved = played(
            &phrase,
            &Playback {
                groove: 1.0,
                ..Playback::default()
            },
        );
        assert_eq!(
            grooved.iter().map(|m| m.shift).collect::<Vec<_>>(),
            vec![-0.3, 0.2]
        );
        assert!(
            grooved[0].level > quantized[0].level && grooved[1].level < quantized[1].level,
            "the loud kick brighter, the ghost snare dimmer"
        );
    }
}
