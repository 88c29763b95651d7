//! The Pareto chart of a sweep: final test perplexity against packed size
//! (log scale), one point per group of cells that differ only in seed, with
//! ±1 standard deviation bars, the non-dominated points joined and named,
//! and the full-precision perplexity as a reference line.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::charts::{
    bounds, draw_key, err, padded, tick_label, Both, DrawResult, KeyLayout, Ticked, FONT, PALETTE,
    SIZE,
};
use super::sweep::{group_label, pareto_front, GroupRow, Stat};
use super::ReportError;
use crate::sweep::SweepState;

/// One point of the chart.
#[derive(Debug, Clone)]
pub struct Point {
    pub label: String,
    pub bytes: f64,
    pub ppl: Stat,
}

/// The points a sweep's groups give: those with a finished cell.
pub fn points(state: &SweepState, groups: &[GroupRow]) -> Vec<Point> {
    groups
        .iter()
        .filter_map(|g| {
            Some(Point {
                label: group_label(&state.axes, &g.values),
                bytes: g.packed_bytes?.mean,
                ppl: g.final_test_ppl?,
            })
        })
        .collect()
}

struct Chart {
    title: String,
    points: Vec<Point>,
    front: Vec<usize>,
    fp: Option<(f64, f64)>,
}

/// Draws `<stem>.svg` and `<stem>.png`; `false` when no cell has finished.
pub fn draw(stem: &Path, state: &SweepState, groups: &[GroupRow]) -> Result<bool, ReportError> {
    let points = points(state, groups);
    if points.is_empty() {
        return Ok(false);
    }
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.bytes, p.ppl.mean)).collect();
    let fp_ppl = Stat::of(groups.iter().filter_map(|g| g.fp_test_ppl.map(|s| s.mean)));
    let chart = Chart {
        title: format!("{}: final test perplexity against packed size", state.name),
        front: pareto_front(&xy),
        fp: fp_ppl.map(|s| (s.mean, s.std)),
        points,
    };
    super::chart(
        Both(chart).save(stem, SIZE, |c, a| plot(a, c), |c, a| plot(a, c)),
        stem,
    )?;
    Ok(true)
}

fn plot<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let xs = chart.points.iter().map(|p| p.bytes.log10());
    let ys = chart
        .points
        .iter()
        .flat_map(|p| [p.ppl.mean - p.ppl.std, p.ppl.mean + p.ppl.std])
        .chain(chart.fp.map(|f| f.0));
    let (Some((x0, x1)), Some((y0, y1))) = (bounds(xs), bounds(ys)) else {
        return Ok(());
    };
    let (x0, x1) = if x1 - x0 < 1e-9 {
        (x0 - 0.2, x1 + 0.2)
    } else {
        padded(x0, x1, 0.08)
    };
    let (y0, y1) = padded(y0, y1, 0.1);
    let area = area.titled(&chart.title, (FONT, 24)).map_err(err)?;
    let (plot, key_area) = area.split_horizontally(area.dim_in_pixel().0 * 70 / 100);
    let mut c = ChartBuilder::on(&plot)
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(76)
        .build_cartesian_2d(
            Ticked::new(x0, x1, super::ticks::log10(x0, x1)),
            Ticked::new(y0, y1, super::ticks::nice(y0, y1, 6)),
        )
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("packed size (bytes, log scale)")
        .y_desc("final test perplexity (mean ± 1 s.d. over seeds)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&|v| crate::record::format::bytes(10f64.powf(*v).round() as u64))
        .y_label_formatter(&|v| tick_label(*v))
        .draw()
        .map_err(err)?;
    let (dominated, front_colour, fp_colour) = (PALETTE[7], PALETTE[0], PALETTE[3]);
    let mut key = Vec::new();
    if let Some((fp, _)) = chart.fp {
        c.draw_series(DashedLineSeries::new(
            vec![(x0, fp), (x1, fp)],
            8,
            5,
            fp_colour.stroke_width(2),
        ))
        .map_err(err)?;
        key.push((format!("full precision ({fp:.2})"), fp_colour, true));
    }
    let front: Vec<(f64, f64)> = chart
        .front
        .iter()
        .map(|&i| (chart.points[i].bytes.log10(), chart.points[i].ppl.mean))
        .collect();
    c.draw_series(LineSeries::new(front.clone(), front_colour.stroke_width(2)))
        .map_err(err)?;
    for (i, p) in chart.points.iter().enumerate() {
        let on_front = chart.front.contains(&i);
        let colour = if on_front { front_colour } else { dominated };
        let x = p.bytes.log10();
        if p.ppl.n > 1 {
            c.draw_series(std::iter::once(ErrorBar::new_vertical(
                x,
                p.ppl.mean - p.ppl.std,
                p.ppl.mean,
                p.ppl.mean + p.ppl.std,
                colour.stroke_width(2),
                10,
            )))
            .map_err(err)?;
        }
        c.draw_series(std::iter::once(Circle::new(
            (x, p.ppl.mean),
            5,
            colour.filled(),
        )))
        .map_err(err)?;
        if on_front {
            // Right of its point and above it, clear of the next point down
            // the front; the last (lowest) point's label goes below it.
            let last = chart.front.last() == Some(&i);
            let dy = if last { 6 } else { -20 };
            let label = EmptyElement::at((x, p.ppl.mean))
                + Text::new(
                    p.label.clone(),
                    (8, dy),
                    TextStyle::from((FONT, 14).into_font()).color(&BLACK),
                );
            c.draw_series(std::iter::once(label)).map_err(err)?;
        }
    }
    key.push(("non-dominated (named)".into(), front_colour, false));
    key.push(("dominated".into(), dominated, false));
    draw_key(&key_area, &key, KeyLayout::Column)
}
