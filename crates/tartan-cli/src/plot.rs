//! SVG plots of the sweep (plotters): quality against a cost on a log axis, the Pareto front
//! drawn as a line through its points.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::sweep::Row;

/// Colours of tartan's points by nbits, and of the reference systems.
fn colour(r: &Row) -> RGBColor {
    match (r.system.as_str(), r.nbits) {
        ("tartan", Some(1)) => RGBColor(31, 119, 180),
        ("tartan", Some(2)) => RGBColor(44, 160, 44),
        ("tartan", Some(4)) => RGBColor(214, 39, 40),
        ("tartan", _) => RGBColor(148, 103, 189),
        ("exact", _) => BLACK,
        ("float16", _) => RGBColor(127, 127, 127),
        _ => RGBColor(255, 127, 14),
    }
}

/// Draws `rows` as quality (y) against `cost` (x, log scale) into an SVG at `path`.
pub fn tradeoff(
    path: &Path,
    rows: &[&Row],
    (quality, score): (&str, impl Fn(&Row) -> f64),
    x_label: &str,
    cost: impl Fn(&Row) -> f64,
) -> Result<()> {
    let front_flags = crate::sweep::pareto(rows, &cost, &score);
    let on_front = |i: usize| front_flags[i];
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let xs: Vec<f64> = rows.iter().map(|r| cost(r).max(1e-3)).collect();
    let ys: Vec<f64> = rows.iter().map(|r| score(r)).collect();
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
        (0..rows.len()).filter(|&i| on_front(i)).map(|i| (xs[i], ys[i])).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front, BLACK.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));

    // (legend, system, nbits): one series each, so each gets a legend entry.
    let groups = [
        ("tartan 1-bit", "tartan", Some(1)),
        ("tartan 2-bit", "tartan", Some(2)),
        ("tartan 4-bit", "tartan", Some(4)),
        ("tartan 8-bit", "tartan", Some(8)),
        ("exact MaxSim", "exact", None),
        ("float16 MaxSim", "float16", None),
        ("bi-encoder (mean-pooled)", "bi-encoder", None),
    ];
    for (name, system, nbits) in groups {
        let pts: Vec<(f64, f64, RGBColor, bool)> = (0..rows.len())
            .filter(|&i| rows[i].system == system && (nbits.is_none() || rows[i].nbits == nbits))
            .map(|i| (xs[i], ys[i], colour(rows[i]), on_front(i)))
            .collect();
        let Some(&(_, _, c, _)) = pts.first() else { continue };
        chart
            .draw_series(pts.into_iter().map(|(x, y, c, front)| {
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
