//! The SVG latency plot: percentile curves per payload, one panel per receive mode, plus one
//! for fan-out.
//!
//! The x axis is the percentile on the usual "nines" scale (x = −log10(1 − q): 0 → p0, 1 → p90,
//! 2 → p99, 3 → p99.9, 4 → p99.99), so tails get room; the y axis is one-way latency in µs on a
//! log scale. Baselines are dashed in black and grey; the iceoryx2 comparison (when it ran) is
//! dashed in the colour of our curve of the same payload. A curve stops at the percentile its
//! sample count supports.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::Result;
use crate::messages::PayloadKind;
use crate::ours::Mode;
use crate::report::{Case, Results};

/// How a curve is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Ours: solid, in colour.
    Ours,
    /// A baseline: dashed, black then grey.
    Baseline,
    /// The iceoryx2 comparison: dashed, in the colour of our curve of the same payload.
    Comparison,
}

/// A curve ready to draw: its case, its style, its points.
type Curve = (Case, Style, Vec<(f64, f64)>);

/// One panel: a title and its curves.
struct Panel {
    title: String,
    curves: Vec<(Case, Style)>,
}

fn panels() -> Vec<Panel> {
    let mut panels = Vec::new();
    for (mode, baselines) in
        [(Mode::Busy, vec![Case::RawAtomic]), (Mode::Blocking, vec![Case::Uds, Case::Pipe])]
    {
        let mut curves: Vec<(Case, Style)> =
            PayloadKind::ALL.iter().map(|&k| (Case::PingPong(k, mode), Style::Ours)).collect();
        curves.extend(baselines.into_iter().map(|c| (c, Style::Baseline)));
        curves.extend(
            Case::ICEORYX2_SIZES
                .map(|n| (Case::Iox2PingPong(PayloadKind::Fixed(n), mode), Style::Comparison)),
        );
        panels.push(Panel { title: format!("ping-pong, {} receive", mode.label()), curves });
    }
    panels.push(Panel {
        title: "fan-out, blocking, last receiver".into(),
        curves: [1, 4, 16]
            .iter()
            .map(|&n| (Case::FanOut(n), Style::Ours))
            .chain([(Case::FanOutPublish(16), Style::Baseline)])
            .collect(),
    });
    panels
}

/// Highest x (nines) a histogram of `len` samples supports, at most 4 (p99.99).
fn x_end(len: u64) -> f64 {
    (len.max(10) as f64).log10().min(4.0)
}

/// (x, µs) points of a percentile curve.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let end = x_end(h.len());
    let steps = (end * 50.0).ceil() as usize;
    (0..=steps)
        .map(|i| {
            let x = end * i as f64 / steps as f64;
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q).max(1) as f64 / 1e3)
        })
        .collect()
}

/// `p0`, `p90`, `p99`, `p99.9`, `p99.99` for the nines scale.
fn percentile_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("{q:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("p{text}")
}

/// Writes the plot to `path` (creating its directory).
pub fn write_svg(results: &Results, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let panels = panels();
    let root = SVGBackend::new(path, (640 * panels.len() as u32, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, panel) in areas.iter().zip(&panels) {
        let curves: Vec<Curve> = panel
            .curves
            .iter()
            .filter_map(|&(case, style)| {
                results.hist(case).filter(|h| !h.is_empty()).map(|h| (case, style, curve(h)))
            })
            .collect();
        let values = curves.iter().flat_map(|(_, _, points)| points.iter().map(|p| p.1));
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo <= hi { (lo * 0.8, hi * 1.25) } else { (0.1, 100.0) };
        let x_max = curves
            .iter()
            .filter_map(|(_, _, points)| points.last().map(|p| p.0))
            .fold(1.0, f64::max)
            .ceil();
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("one-way latency (µs, log)")
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y}"))
            .draw()?;
        let drawn: Vec<Case> = curves.iter().map(|c| c.0).collect();
        let mut baselines = 0;
        for (i, (case, kind, points)) in curves.into_iter().enumerate() {
            let color = match (kind, case) {
                (Style::Baseline, _) => {
                    baselines += 1;
                    if baselines == 1 { BLACK.mix(1.0) } else { RGBColor(120, 120, 120).mix(1.0) }
                }
                (Style::Comparison, Case::Iox2PingPong(payload, mode)) => {
                    let ours = drawn.iter().position(|&c| c == Case::PingPong(payload, mode));
                    Palette99::pick(ours.unwrap_or(i)).mix(1.0)
                }
                _ => Palette99::pick(i).mix(1.0),
            };
            let style = color.stroke_width(2);
            let label = case.label();
            if kind != Style::Ours {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(points, style))?
            }
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis_labels() {
        assert_eq!(percentile_label(0.0), "p0");
        assert_eq!(percentile_label(1.0), "p90");
        assert_eq!(percentile_label(3.0), "p99.9");
        assert_eq!(x_end(20_000), 4.0);
        assert!((x_end(1_000) - 3.0).abs() < 1e-9);
    }
}
