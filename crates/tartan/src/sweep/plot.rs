//! SVG plots of the sweep (plotters): quality against a cost on a log axis, the Pareto front
//! drawn as a line through its points.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// One point of a trade-off plot.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    /// Cost (log axis).
    pub x: f64,
    /// Quality.
    pub y: f64,
    /// Legend entry it belongs to (one series, one colour each).
    pub series: &'static str,
    /// On the Pareto front (drawn filled, joined by the front's line).
    pub on_front: bool,
}

/// Legend entries in drawing order, with their colours.
const SERIES: [(&str, RGBColor); 8] = [
    ("tartan 1-bit", RGBColor(31, 119, 180)),
    ("tartan 2-bit", RGBColor(44, 160, 44)),
    ("tartan 4-bit", RGBColor(214, 39, 40)),
    ("tartan 8-bit", RGBColor(148, 103, 189)),
    ("exact MaxSim", BLACK),
    ("float16 MaxSim", RGBColor(127, 127, 127)),
    ("bi-encoder (mean-pooled)", RGBColor(255, 127, 14)),
    ("exact + cross-encoder", RGBColor(23, 190, 207)),
];

/// Draws `points` as quality (`y`, named `quality`) against cost (`x`, log scale, named
/// `x_label`) into an SVG at `path`.
pub(crate) fn tradeoff(path: &Path, points: &[Point], quality: &str, x_label: &str) -> Result<()> {
    let err =
        |e: &dyn std::fmt::Display| Error::Plot { path: path.to_path_buf(), reason: e.to_string() };
    let xs: Vec<f64> = points.iter().map(|p| p.x.max(1e-3)).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.y).collect();
    let (x_lo, x_hi) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (y_lo, y_hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    let pad = ((y_hi - y_lo) * 0.08).max(0.005);
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{quality} against {x_label}"), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(((x_lo / 1.5)..(x_hi * 1.5)).log_scale(), (y_lo - pad)..(y_hi + pad))
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc(x_label).y_desc(quality).draw().map_err(|e| err(&e))?;

    let mut front: Vec<(f64, f64)> =
        (0..points.len()).filter(|&i| points[i].on_front).map(|i| (xs[i], ys[i])).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front, BLACK.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));

    for (name, c) in SERIES {
        let pts: Vec<(f64, f64, bool)> = (0..points.len())
            .filter(|&i| points[i].series == name)
            .map(|i| (xs[i], ys[i], points[i].on_front))
            .collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(pts.into_iter().map(|(x, y, front)| {
                let style = if front { c.filled() } else { c.stroke_width(2) };
                Circle::new((x, y), 5, style)
            }))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
