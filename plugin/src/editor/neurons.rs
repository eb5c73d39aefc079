//! The neuron view (after Immersions): the latent vector, music neurons set apart from
//! noise neurons, and the decoder's hidden activations across the phrase, lit by the
//! playhead.

use egui::{
    Align2, Color32, ColorImage, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, TextureHandle,
    TextureOptions, Ui, Vec2,
};

use crate::link::view::{Decoded, ModelInfo};

const NEGATIVE: [f32; 3] = [70.0, 140.0, 255.0];
const POSITIVE: [f32; 3] = [255.0, 150.0, 50.0];

/// Diverging colour for `x` in [-1, 1]: blue below zero, orange above, dark at zero.
pub fn diverging(x: f32) -> Color32 {
    let x = x.clamp(-1.0, 1.0);
    let base = if x < 0.0 { NEGATIVE } else { POSITIVE };
    let a = x.abs().sqrt();
    let c = |i: usize| (18.0 + (base[i] - 18.0) * a) as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

/// Every dim of z as a bar from the centre line (in sigmas of the prior, clipped at 3):
/// music neurons in rank order on the left, noise neurons dimmed on the right. The
/// sliders' dims are ticked underneath.
pub fn latent_strip(ui: &mut Ui, model: &ModelInfo, z: Option<&[f32]>, size: Vec2) {
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, Color32::from_gray(20));
    let n = model.neuron_order.len().max(1);
    let gap = 12.0;
    let width = (rect.width() - gap) / n as f32;
    let mid = rect.center().y;
    let half = rect.height() * 0.5 - 16.0;
    for (i, &dim) in model.neuron_order.iter().enumerate() {
        let music = i < model.music_neurons;
        let x = rect.left() + i as f32 * width + if music { 0.0 } else { gap };
        let value = z.and_then(|z| z.get(dim)).copied().unwrap_or(0.0) / 3.0;
        let color = if music {
            diverging(value)
        } else {
            diverging(value).gamma_multiply(0.45)
        };
        let h = value.clamp(-1.0, 1.0) * half;
        let bar = Rect::from_two_pos(
            Pos2::new(x, mid),
            Pos2::new(x + (width - 1.0).max(1.0), mid - h),
        );
        painter.rect_filled(bar.expand2(Vec2::new(0.0, 0.5)), 0.0, color);
        if model.slider_dims.contains(&dim) {
            painter.rect_filled(
                Rect::from_min_max(
                    Pos2::new(x, rect.bottom() - 6.0),
                    Pos2::new(x + (width - 1.0).max(1.0), rect.bottom() - 2.0),
                ),
                0.0,
                Color32::WHITE,
            );
        }
    }
    painter.line_segment(
        [Pos2::new(rect.left(), mid), Pos2::new(rect.right(), mid)],
        Stroke::new(1.0, Color32::from_gray(70)),
    );
    let split = rect.left() + model.music_neurons as f32 * width + gap * 0.5;
    painter.line_segment(
        [
            Pos2::new(split, rect.top()),
            Pos2::new(split, rect.bottom()),
        ],
        Stroke::new(1.0, Color32::from_gray(110)),
    );
    let label = format!(
        "z: {} music neurons | {} noise neurons (ticks: the sliders)",
        model.music_neurons,
        n - model.music_neurons
    );
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        Align2::LEFT_TOP,
        &label,
        FontId::proportional(12.0),
        Color32::from_gray(210),
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
}

/// The decoder's top layer across the phrase: one column per 16th step, one row per
/// unit (the units that change most over the phrase on top), as a texture rebuilt only
/// when a new phrase arrives. Columns away from the playhead are dimmed.
pub fn activations(
    ui: &mut Ui,
    texture: &mut Option<(u64, TextureHandle)>,
    decoded: Option<&Decoded>,
    playhead: Option<f32>,
    size: Vec2,
) {
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, Color32::from_gray(20));
    let Some(decoded) = decoded.filter(|d| d.hidden > 0 && !d.activations.is_empty()) else {
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            "decoder activations appear with the first phrase",
            FontId::proportional(13.0),
            Color32::from_gray(140),
        );
        response.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Image, true, "Decoder activations")
        });
        return;
    };
    let steps = decoded.activations.len() / decoded.hidden;
    if texture
        .as_ref()
        .is_none_or(|(generation, _)| *generation != decoded.phrase.generation)
    {
        let value = |s: usize, unit: usize| decoded.activations[s * decoded.hidden + unit];
        let variance = |unit: usize| {
            let mean = (0..steps).map(|s| value(s, unit)).sum::<f32>() / steps as f32;
            (0..steps)
                .map(|s| (value(s, unit) - mean).powi(2))
                .sum::<f32>()
        };
        let mut units: Vec<usize> = (0..decoded.hidden).collect();
        units.sort_by(|&a, &b| variance(b).total_cmp(&variance(a)));
        // Rows are units, columns steps: transpose while colouring.
        let mut pixels = Vec::with_capacity(steps * decoded.hidden);
        for unit in units {
            pixels.extend((0..steps).map(|s| diverging(value(s, unit))));
        }
        let image = ColorImage::new([steps, decoded.hidden], pixels);
        match texture {
            Some((generation, handle)) => {
                handle.set(image, TextureOptions::NEAREST);
                *generation = decoded.phrase.generation;
            }
            None => {
                *texture = Some((
                    decoded.phrase.generation,
                    ui.ctx()
                        .load_texture("activations", image, TextureOptions::NEAREST),
                ))
            }
        }
    }
    let Some((_, handle)) = texture else { return };
    let inner = rect
        .shrink2(Vec2::new(2.0, 18.0))
        .translate(Vec2::new(0.0, 8.0));
    painter.image(
        handle.id(),
        inner,
        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        Color32::WHITE,
    );
    if let Some(step) = playhead {
        let column = inner.width() / steps as f32;
        let x = inner.left() + step.floor().clamp(0.0, steps as f32 - 1.0) * column;
        let shade = Color32::from_black_alpha(150);
        painter.rect_filled(
            Rect::from_min_max(inner.left_top(), Pos2::new(x, inner.bottom())),
            0.0,
            shade,
        );
        painter.rect_filled(
            Rect::from_min_max(Pos2::new(x + column, inner.top()), inner.right_bottom()),
            0.0,
            shade,
        );
        painter.rect_stroke(
            Rect::from_min_max(
                Pos2::new(x, inner.top()),
                Pos2::new(x + column, inner.bottom()),
            ),
            0.0,
            Stroke::new(1.5, Color32::WHITE),
            StrokeKind::Outside,
        );
    }
    let label = format!("decoder: {} units x {} steps", decoded.hidden, steps);
    painter.text(
        rect.left_top() + Vec2::new(6.0, 2.0),
        Align2::LEFT_TOP,
        &label,
        FontId::proportional(12.0),
        Color32::from_gray(210),
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
}
