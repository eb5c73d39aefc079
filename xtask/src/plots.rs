//! The analysis report's PNG plots (plotters, with egui's embedded Ubuntu font, so no
//! system fonts are needed).

use std::path::Path;
use std::sync::Once;

use latent_live_training::analysis::{Analysis, Sweep};
use latent_live_training::eval::ACTIVE_VARIANCE;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only for bytes that are not a font; these are.
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// The variance of mu of every dimension, sorted: music neurons above the line, noise below.
pub fn variance_spectrum(path: &Path, a: &Analysis) -> anyhow::Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (900, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let values: Vec<f64> = a
        .ranking
        .iter()
        .map(|&d| a.mu_variance[d].max(1e-4))
        .collect();
    let top = values.iter().cloned().fold(ACTIVE_VARIANCE, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Variance of mu per dimension ({} music neurons of {})",
                a.music_neurons,
                values.len()
            ),
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..values.len(), (1e-4..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("dimensions, most variable first")
        .y_desc("variance of mu")
        .label_style((FONT, 14))
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
        let color = if v > ACTIVE_VARIANCE {
            BLUE
        } else {
            RGBColor(170, 170, 170)
        };
        Rectangle::new([(i, 1e-4), (i + 1, v)], color.filled())
    }))?;
    chart.draw_series(LineSeries::new(
        [(0, ACTIVE_VARIANCE), (values.len(), ACTIVE_VARIANCE)],
        RED.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

/// Spearman correlation of each top neuron with each attribute: red positive, blue negative.
pub fn correlation_heat_map(path: &Path, a: &Analysis) -> anyhow::Result<()> {
    register_font();
    let rows = a.relations.len();
    let cols = a.attributes.len();
    let root = BitMapBackend::new(path, (1000, 140 + 34 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Spearman correlation of the top neurons with the attributes",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((0..cols).into_segmented(), (0..rows).into_segmented())?;
    // Neuron 1 on the top row.
    let neuron = |y: usize| rows - 1 - y;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => Some(*i),
        SegmentValue::Last => None,
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_label_formatter(&|v| {
            label(v)
                .and_then(|c| a.attributes.get(c))
                .map_or(String::new(), |n| n.replace('_', " "))
        })
        .y_label_formatter(&|v| {
            label(v).filter(|&y| y < rows).map_or(String::new(), |y| {
                format!("N{} z{}", neuron(y) + 1, a.ranking[neuron(y)])
            })
        })
        .label_style((FONT, 13))
        .draw()?;
    let cells = || (0..rows).flat_map(|y| (0..cols).map(move |c| (y, c)));
    chart.draw_series(cells().map(|(y, c)| {
        let s = a.relations[neuron(y)][c].spearman;
        let fade = (255.0 * (1.0 - s.abs().min(1.0))) as u8;
        let color = if s >= 0.0 {
            RGBColor(255, fade, fade)
        } else {
            RGBColor(fade, fade, 255)
        };
        Rectangle::new(
            [
                (SegmentValue::Exact(c), SegmentValue::Exact(y)),
                (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1)),
            ],
            color.filled(),
        )
    }))?;
    chart.draw_series(cells().map(|(y, c)| {
        let text = format!("{:+.2}", a.relations[neuron(y)][c].spearman);
        Text::new(
            text,
            (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y)),
            TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// For each attribute vector, the attribute measured on the decodes against the amount.
pub fn sweeps(path: &Path, sweeps: &[Sweep]) -> anyhow::Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1200, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    for (i, (area, sweep)) in root.split_evenly((3, 3)).iter().zip(sweeps).enumerate() {
        let values: Vec<f64> = sweep.means.iter().map(|m| m[i]).collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!(
                    "{} (Spearman {:.2})",
                    sweep.attributes[i].replace('_', " "),
                    sweep.spearman[i]
                ),
                (FONT, 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(-2.0..2.0, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("amount along the vector")
            .label_style((FONT, 12))
            .draw()?;
        chart.draw_series(LineSeries::new(
            sweep.amounts.iter().cloned().zip(values.iter().cloned()),
            BLUE.stroke_width(2),
        ))?;
        chart.draw_series(
            sweep
                .amounts
                .iter()
                .zip(&values)
                .map(|(&x, &y)| Circle::new((x, y), 3, BLUE.filled())),
        )?;
    }
    root.present()?;
    Ok(())
}
