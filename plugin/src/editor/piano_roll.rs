//! The piano roll: the phrase playing, the one queued ghosted over it, the playhead, the
//! rows of the scale and the chord tones under each step; and the small rolls that show
//! clips A and B.

use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Sense, Stroke, StrokeKind, Ui, Vec2};

use latent_live_core::music::chord::Chord;
use latent_live_core::music::key::{ScaleLock, NOTE_NAMES};
use latent_live_core::music::melody::{Note, STEPS_PER_BAR};
use latent_live_core::music::phrase::Phrase;

use super::panel::Panel;

pub const PLAYING: Color32 = Color32::from_rgb(255, 168, 64);
pub const QUEUED: Color32 = Color32::from_rgb(120, 200, 255);
const GRID: Color32 = Color32::from_gray(52);
const BAR_LINE: Color32 = Color32::from_gray(96);
/// A row of the scale set, and a chord tone under its chord.
const SCALE_ROW: Color32 = Color32::from_rgba_premultiplied(40, 56, 72, 255);
const CHORD_TONE: Color32 = Color32::from_rgba_premultiplied(90, 64, 24, 255);
/// The fewest semitones shown, so that a one-note phrase is not one fat bar.
const MIN_SPAN: u8 = 14;

/// What the roll marks behind the notes: the rows of the scale set, and under each step
/// the rows of the chord the phrase plays over there (one chord per step; empty for none).
pub struct Harmony<'a> {
    pub scale: Option<ScaleLock>,
    pub chords: &'a [Option<Chord>],
}

/// Draws the phrase playing and the queued one over the full width; `playhead` is the
/// playing phrase's step (fractional) while the transport runs.
pub fn show(
    ui: &mut Ui,
    playing: Option<&Phrase>,
    queued: Option<&Phrase>,
    playhead: Option<f32>,
    harmony: &Harmony,
    height: f32,
) {
    let panel = Panel {
        name: "Piano roll",
        waiting: "waiting for the first phrase",
        caption_top: 6.0,
        playing,
        queued,
        playhead,
    };
    panel.show(ui, height, |painter, rect, steps| {
        let notes = |p: Option<&Phrase>| p.map(|p| p.melody_notes()).unwrap_or_default();
        let (now, next) = (notes(playing), notes(queued));
        let range = pitch_range(now.iter().chain(&next));
        // Below the caption, a keyboard down the left edge names the rows.
        let body = Rect::from_min_max(rect.left_top() + Vec2::new(0.0, 22.0), rect.right_bottom());
        let (keys, roll) = body.split_left_right_at_x(body.left() + KEYBOARD_WIDTH);
        keyboard(painter, keys, range);
        grid(painter, roll, steps, range);
        paint_harmony(painter, roll, steps, range, harmony);
        paint_notes(painter, roll, &now, steps, range, Fill::Solid(PLAYING));
        paint_notes(painter, roll, &next, steps, range, Fill::Ghost(QUEUED));
        roll
    });
}

/// The width of the keyboard beside the roll.
const KEYBOARD_WIDTH: f32 = 34.0;

/// A key for each row of `lo..=hi`, black keys dark and narrower, every C named (C4 is
/// middle C), and every row named where the rows are tall enough to read.
fn keyboard(painter: &Painter, rect: Rect, (lo, hi): (u8, u8)) {
    let row = rect.height() / (hi - lo + 1) as f32;
    let font = FontId::proportional((row * 0.8).clamp(7.0, 11.0));
    for pitch in lo..=hi {
        let black = matches!(pitch % 12, 1 | 3 | 6 | 8 | 10);
        let y = rect.bottom() - (pitch - lo + 1) as f32 * row;
        let width = if black {
            rect.width() * 0.6
        } else {
            rect.width()
        };
        let key = Rect::from_min_size(Pos2::new(rect.left(), y), Vec2::new(width, row));
        let fill = if black {
            Color32::from_gray(40)
        } else {
            Color32::from_gray(200)
        };
        painter.rect_filled(key.shrink2(Vec2::new(0.0, 0.5)), 1.0, fill);
        if pitch % 12 == 0 || (row >= 11.0 && !black) {
            painter.text(
                Pos2::new(rect.right() - 2.0, y + row / 2.0),
                Align2::RIGHT_CENTER,
                note_name(pitch),
                font.clone(),
                Color32::from_gray(30),
            );
        }
    }
}

/// "C4" for 60, "F#5" for 78, as most hosts name their keys.
fn note_name(pitch: u8) -> String {
    format!(
        "{}{}",
        NOTE_NAMES[pitch as usize % 12],
        pitch as i32 / 12 - 1
    )
}

/// A clip as a small roll, for the clip slots.
pub fn thumbnail(
    ui: &mut Ui,
    notes: &[Note],
    steps: u32,
    size: Vec2,
    color: Color32,
    label: &str,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 3.0, Color32::from_gray(24));
    let steps = steps.max(1);
    let range = pitch_range(notes.iter());
    grid(&painter, rect, steps, range);
    paint_notes(&painter, rect, notes, steps, range, Fill::Solid(color));
    if notes.is_empty() {
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            "empty",
            FontId::proportional(13.0),
            Color32::from_gray(120),
        );
    }
    painter.rect_stroke(
        rect,
        3.0,
        Stroke::new(1.0, color.gamma_multiply(0.6)),
        StrokeKind::Inside,
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
    response
}

/// A phrase drawn solid (playing) or as an outline (queued).
pub(super) enum Fill {
    Solid(Color32),
    Ghost(Color32),
}

/// The lowest and highest pitch shown.
fn pitch_range<'a>(notes: impl Iterator<Item = &'a Note>) -> (u8, u8) {
    let (lo, hi) = notes.fold((u8::MAX, 0u8), |(lo, hi), n| {
        (lo.min(n.pitch), hi.max(n.pitch))
    });
    let (lo, hi) = if lo > hi { (60, 72) } else { (lo, hi) };
    let pad = MIN_SPAN.saturating_sub(hi - lo) / 2 + 1;
    (lo.saturating_sub(pad), hi.saturating_add(pad).min(127))
}

fn grid(painter: &Painter, rect: Rect, steps: u32, (lo, hi): (u8, u8)) {
    let row = rect.height() / (hi - lo + 1) as f32;
    for pitch in lo..=hi {
        if matches!(pitch % 12, 1 | 3 | 6 | 8 | 10) {
            let y = rect.bottom() - (pitch - lo + 1) as f32 * row;
            painter.rect_filled(
                Rect::from_min_size(Pos2::new(rect.left(), y), Vec2::new(rect.width(), row)),
                0.0,
                Color32::from_gray(30),
            );
        }
    }
    for step in (0..steps).step_by(4) {
        let x = rect.left() + rect.width() * step as f32 / steps as f32;
        let color = if (step as usize).is_multiple_of(STEPS_PER_BAR) {
            BAR_LINE
        } else {
            GRID
        };
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(1.0, color),
        );
    }
}

/// The scale's rows across the roll, and each chord's tones over the steps it lasts.
fn paint_harmony(painter: &Painter, rect: Rect, steps: u32, (lo, hi): (u8, u8), harmony: &Harmony) {
    let row = rect.height() / (hi - lo + 1) as f32;
    let step_width = rect.width() / steps as f32;
    let band = |pitch: u8, from: u32, to: u32, color: Color32| {
        let y = rect.bottom() - (pitch - lo + 1) as f32 * row;
        let x = |step: u32| rect.left() + step.min(steps) as f32 * step_width;
        painter.rect_filled(
            Rect::from_min_max(Pos2::new(x(from), y + 1.0), Pos2::new(x(to), y + row - 1.0)),
            0.0,
            color,
        );
    };
    if let Some(scale) = harmony.scale {
        for pitch in (lo..=hi).filter(|&p| scale.contains(p)) {
            band(pitch, 0, steps, SCALE_ROW);
        }
    }
    // One band per run of steps under the same chord.
    let mut start = 0;
    while start < harmony.chords.len().min(steps as usize) {
        let chord = harmony.chords[start];
        let end = (start..harmony.chords.len())
            .find(|&t| harmony.chords[t] != chord)
            .unwrap_or(harmony.chords.len());
        if let Some(chord) = chord {
            for pitch in (lo..=hi).filter(|&p| chord.has_tone(p)) {
                band(pitch, start as u32, end as u32, CHORD_TONE);
            }
        }
        start = end;
    }
}

fn paint_notes(
    painter: &Painter,
    rect: Rect,
    notes: &[Note],
    steps: u32,
    (lo, hi): (u8, u8),
    fill: Fill,
) {
    let row = rect.height() / (hi - lo + 1) as f32;
    let step_width = rect.width() / steps as f32;
    for note in notes {
        if note.pitch < lo || note.pitch > hi {
            continue;
        }
        let x0 = rect.left() + note.start.min(steps) as f32 * step_width;
        let x1 = rect.left() + note.end.min(steps) as f32 * step_width;
        let y = rect.bottom() - (note.pitch - lo + 1) as f32 * row;
        // Rows in a thumbnail are a pixel or two high: no gap between them there.
        let inset = (row * 0.2).min(1.0);
        let r = Rect::from_min_max(
            Pos2::new(x0 + 1.0, y + inset),
            Pos2::new((x1 - 1.0).max(x0 + 2.0), (y + row - inset).max(y + 1.5)),
        );
        match fill {
            Fill::Solid(color) => {
                painter.rect_filled(r, 2.0, color);
            }
            Fill::Ghost(color) => {
                painter.rect_filled(r, 2.0, color.gamma_multiply(0.18));
                painter.rect_stroke(r, 2.0, Stroke::new(1.5, color), StrokeKind::Inside);
            }
        }
    }
}
