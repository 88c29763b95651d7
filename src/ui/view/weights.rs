//! The Weights view: every weight matrix from the first step (shape, norm,
//! and once pruned or quantized its zeros and loss), and the selected one's
//! histogram now against its first, with the quantization levels once it
//! has them; or (d) its distribution over time, TensorBoard's percentile
//! bands.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition};
use ratatui::Frame;

use super::fit::{self, Column};
use super::{empty, marker};
use crate::compress::stats::Histogram;
use crate::ui::state::State;

/// The matrix list, shared with the Sparsity view: name first, then the
/// columns that fit. Returns the width it took.
pub fn matrix_list(frame: &mut Frame, area: Rect, state: &State, sparsity_first: bool) {
    let r = &state.run;
    let names = r.matrix_names();
    let shape = |n: &str| {
        r.track(n)
            .map(|t| (t.rows, t.cols))
            .or_else(|| r.report(n).map(|m| (m.rows, m.cols)))
            .map_or(String::new(), |(a, b)| format!("{a}×{b}"))
    };
    let norm = |n: &str| {
        r.track(n)
            .and_then(|t| t.history.last())
            .map_or(String::new(), |(_, s)| fit::axis(s.norm))
    };
    let zero = |n: &str| {
        r.report(n)
            .map(|m| m.sparsity)
            .or_else(|| {
                r.track(n)
                    .and_then(|t| t.history.last())
                    .map(|(_, s)| s.sparsity)
            })
            .map_or(String::new(), |s| format!("{:.1}%", s * 100.0))
    };
    let loss = |n: &str| {
        r.report(n)
            .filter(|m| m.bits.is_some())
            .map_or(String::new(), |m| fit::axis(m.quant_loss))
    };
    let col = |f: &dyn Fn(&str) -> String| names.iter().map(|n| f(n)).collect::<Vec<_>>();
    let columns = vec![
        Column::new("matrix", 0, col(&|n| n.to_string())),
        Column::new("shape", 3, col(&shape)),
        Column::new("‖W‖", if sparsity_first { 4 } else { 1 }, col(&norm)),
        Column::new("zero", if sparsity_first { 1 } else { 2 }, col(&zero)),
        Column::new("q.loss", 2, col(&loss)),
    ];
    let styles: Vec<Style> = (0..names.len())
        .map(|i| {
            if i == state.selected {
                Style::new().reversed()
            } else {
                Style::new()
            }
        })
        .collect();
    let block = Block::new().borders(Borders::ALL).title(" Matrices (j/k) ");
    frame.render_widget(fit::table(columns, area.width, &styles, block), area);
}

/// Left panel width for the matrix list: room for names and two numbers.
pub fn list_width(area: Rect) -> u16 {
    (area.width * 2 / 5).clamp(24, 52)
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, wide: bool) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_width(area)), Constraint::Min(20)]).areas(area);
    matrix_list(frame, left, state, false);
    let names = state.run.matrix_names();
    let Some(name) = names.get(state.selected) else {
        empty(frame, right, "Weights", "no weight snapshot yet");
        return;
    };
    if state.distribution {
        distribution(frame, right, state, name, wide);
    } else {
        histogram(frame, right, state, name, wide);
    }
}

/// A histogram as densities (fraction of its weights per unit of weight),
/// so two histograms over different ranges can be compared.
fn to_points(h: &Histogram) -> Vec<(f64, f64)> {
    let n = h.counts.len().max(1) as f64;
    let width = ((h.hi - h.lo) as f64 / n).max(f64::MIN_POSITIVE);
    let total = h.counts.iter().sum::<u64>().max(1) as f64;
    h.counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            (
                h.lo as f64 + (i as f64 + 0.5) * width,
                c as f64 / total / width,
            )
        })
        .collect()
}

fn histogram(frame: &mut Frame, area: Rect, state: &State, name: &str, wide: bool) {
    let r = &state.run;
    let track = r.track(name);
    let report = r.report(name);
    let (first, now) = match track {
        Some(t) => (
            t.history.first().map(|(_, s)| &s.histogram),
            t.history.last().map(|(_, s)| &s.histogram),
        ),
        None => (r.first_histograms.get(name), report.map(|m| &m.histogram)),
    };
    let (Some(first), Some(now)) = (first, now) else {
        empty(frame, area, "Weights", "no histogram of this matrix yet");
        return;
    };
    let (first_pts, now_pts) = (to_points(first), to_points(now));
    // Both on one scale, unless the first (often a narrow initialisation)
    // would flatten the histogram now: then it runs off the top.
    let peak = |pts: &[(f64, f64)]| pts.iter().fold(0.0f64, |a, p| a.max(p.1));
    let now_peak = peak(&now_pts).max(1e-12);
    let ymax = peak(&first_pts).max(now_peak).min(3.0 * now_peak) * 1.1;
    let levels: Vec<(f64, f64)> = report
        .map_or(&[][..], |m| &m.levels[..])
        .iter()
        .map(|&l| (l as f64, ymax))
        .collect();
    let lo = first.lo.min(now.lo) as f64;
    let hi = (first.hi.max(now.hi) as f64).max(lo + 1e-6);
    let at = |t: Option<f64>| t.map_or(String::new(), |x| format!(" (step {x:.0})"));
    let first_name = format!(
        "first{}",
        at(track.and_then(|t| t.history.first()).map(|p| p.0))
    );
    let now_name = format!(
        "now{}",
        at(track.and_then(|t| t.history.last()).map(|p| p.0))
    );
    let datasets = vec![
        (
            first_pts.len(),
            Dataset::default()
                .name(first_name)
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::DarkGray))
                .data(&first_pts),
        ),
        (
            now_pts.len(),
            Dataset::default()
                .name(now_name)
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Green))
                .data(&now_pts),
        ),
        (
            levels.len(),
            Dataset::default()
                .name("levels")
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Red))
                .data(&levels),
        ),
    ];
    let mut title = format!(" {name}");
    if let Some(m) = report.filter(|m| m.bits.is_some()) {
        title.push_str(&format!(
            " · {} bits · loss {}",
            m.bits.unwrap_or(32),
            fit::axis(m.quant_loss)
        ));
    }
    title.push_str(" · density of non-zero weights (d: over time) ");
    let chart = Chart::new(super::drawn(datasets))
        .block(Block::new().borders(Borders::ALL).title(title))
        .legend_position(wide.then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)))
        .x_axis(Axis::default().bounds([lo, hi]).labels(vec![
            Span::raw(fit::axis(lo)),
            Span::raw("0"),
            Span::raw(fit::axis(hi)),
        ]))
        .y_axis(
            Axis::default()
                .bounds([0.0, ymax])
                .labels(vec![Span::raw("0"), Span::raw(fit::axis(ymax))]),
        );
    frame.render_widget(chart, area);
}

/// One percentile line: its points, colour, and its band's name (on one
/// line of each pair).
type Band<'a> = (Vec<(f64, f64)>, Color, Option<&'a str>);

/// Percentile bands over the run, outermost faintest.
fn distribution(frame: &mut Frame, area: Rect, state: &State, name: &str, wide: bool) {
    let Some(track) = state.run.track(name) else {
        empty(
            frame,
            area,
            "Distribution",
            "no weight snapshots of this matrix in this run",
        );
        return;
    };
    let series = |i: usize| -> Vec<(f64, f64)> {
        track
            .history
            .iter()
            .filter_map(|(x, s)| s.percentiles.get(i).map(|&v| (*x, v as f64)))
            .collect()
    };
    let bands = [
        (0, 8, Color::DarkGray, "min / max"),
        (1, 7, Color::Blue, "±1.5σ"),
        (2, 6, Color::Cyan, "±1σ"),
        (3, 5, Color::LightCyan, "±0.5σ"),
    ];
    let lines: Vec<Band> = bands
        .iter()
        .flat_map(|&(a, b, color, label)| {
            [(series(a), color, Some(label)), (series(b), color, None)]
        })
        .chain([(series(4), Color::White, Some("median"))])
        .collect();
    let (lo, hi) = super::training::y_range(lines.iter().map(|l| l.0.as_slice()));
    let xmax = track.history.last().map_or(1.0, |p| p.0).max(1.0);
    let datasets: Vec<Dataset> = lines
        .iter()
        .map(|(pts, color, label)| {
            let d = Dataset::default()
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(pts);
            match label {
                Some(l) => d.name(*l),
                None => d,
            }
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(Block::new().borders(Borders::ALL).title(format!(
            " {name} over training · {} snapshots (d: histogram) ",
            track.history.len()
        )))
        .legend_position(wide.then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(40), Constraint::Percentage(60)))
        .x_axis(
            Axis::default()
                .title("step")
                .bounds([0.0, xmax])
                .labels(fit::labels(0.0, xmax, 3, |v| format!("{v:.0}"))),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels(fit::labels(lo, hi, 3, fit::axis)),
        );
    frame.render_widget(chart, area);
}
