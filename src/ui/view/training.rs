//! The Training view (and the Overview's lower band): training perplexity
//! over the run's steps, raw and smoothed, with each epoch's validation
//! perplexity on the same axes; the learning rate and the gradient norm
//! (with the clip threshold) beside it. Every point stays in the fold; only
//! what is drawn is thinned to the panel's width.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition};
use ratatui::Frame;

use super::{empty, fit, marker};
use crate::record::series::thin;
use crate::ui::state::State;

/// Log or linear, as the user chose: values and how to label them.
#[derive(Clone, Copy)]
pub struct Scale {
    pub log: bool,
}

impl Scale {
    pub fn to(self, v: f64) -> f64 {
        if self.log {
            v.max(1e-12).log10()
        } else {
            v
        }
    }

    pub fn label(self, v: f64) -> String {
        fit::axis(if self.log { 10f64.powf(v) } else { v })
    }
}

/// An exponential moving average with TensorBoard's debiasing, so the
/// first points are not pulled towards zero.
pub fn smooth(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let (mut avg, mut norm) = (0.0, 0.0);
    points
        .iter()
        .map(|&(x, y)| {
            avg = weight * avg + (1.0 - weight) * y;
            norm = weight * norm + (1.0 - weight);
            (x, avg / norm)
        })
        .collect()
}

/// The y range of all the series, widened when flat.
pub fn y_range<'a>(series: impl IntoIterator<Item = &'a [(f64, f64)]>) -> (f64, f64) {
    let (lo, hi) = series
        .into_iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    }
}

fn legend(wide: bool) -> Option<LegendPosition> {
    wide.then_some(LegendPosition::TopRight)
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, wide: bool) {
    let r = &state.run;
    if r.train.is_empty() {
        empty(frame, area, "Training", "no training step recorded yet");
        return;
    }
    if area.height < 14 {
        perplexity(frame, area, state, wide);
        return;
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
    perplexity(frame, top, state, wide);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    learning_rate(frame, left, state);
    gradient_norm(frame, right, state, wide);
}

/// The steps recorded so far: the x range of every training chart.
fn steps_shown(state: &State) -> f64 {
    state.run.train.last().map_or(1.0, |p| p.x).max(1.0)
}

fn x_axis(xmax: f64) -> Axis<'static> {
    Axis::default()
        .title("step")
        .bounds([0.0, xmax])
        .labels(fit::labels(0.0, xmax, 3, |v| format!("{v:.0}")))
}

fn perplexity(frame: &mut Frame, area: Rect, state: &State, wide: bool) {
    let r = &state.run;
    let scale = Scale {
        log: state.log_scale,
    };
    let width = area.width.saturating_sub(10) as usize * 2;
    let raw: Vec<(f64, f64)> = r.train.iter().map(|p| (p.x, p.ppl)).collect();
    let smoothed = thin(&smooth(&raw, 0.9), width);
    let tf = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().map(|&(x, y)| (x, scale.to(y))).collect()
    };
    let raw = tf(&thin(&raw, width));
    let smoothed = tf(&smoothed);
    let valid = tf(&r.valid_curve);
    let (lo, hi) = y_range([raw.as_slice(), &smoothed, &valid]);
    let xmax = steps_shown(state);
    let datasets = vec![
        (
            raw.len(),
            Dataset::default()
                .name("train (raw)")
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::DarkGray))
                .data(&raw),
        ),
        (
            smoothed.len(),
            Dataset::default()
                .name("train (smoothed)")
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Yellow))
                .data(&smoothed),
        ),
        (
            valid.len(),
            Dataset::default()
                .name("valid, per epoch")
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))
                .data(&valid),
        ),
    ];
    let title = format!(
        " Perplexity{} (g: {}) ",
        if scale.log { ", log scale" } else { "" },
        if scale.log { "linear" } else { "log" }
    );
    let chart = Chart::new(super::drawn(datasets))
        .block(Block::new().borders(Borders::ALL).title(title))
        .legend_position(legend(wide))
        .hidden_legend_constraints((Constraint::Percentage(45), Constraint::Percentage(60)))
        .x_axis(x_axis(xmax))
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels(fit::labels(lo, hi, 3, |v| scale.label(v))),
        );
    frame.render_widget(chart, area);
}

fn learning_rate(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    let points = thin(
        &r.train.iter().map(|p| (p.x, p.lr)).collect::<Vec<_>>(),
        area.width as usize * 2,
    );
    let hi = points.iter().fold(0.0f64, |m, p| m.max(p.1));
    let now = r.train.last().map_or(r.lr, |p| p.lr);
    let xmax = steps_shown(state);
    let chart = Chart::new(vec![Dataset::default()
        .marker(marker(state))
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Green))
        .data(&points)])
    .block(
        Block::new()
            .borders(Borders::ALL)
            .title(format!(" Learning rate: {} ", fit::axis(now))),
    )
    .x_axis(x_axis(xmax))
    .y_axis(
        Axis::default()
            .bounds([0.0, hi.max(1e-12)])
            .labels(vec![Span::raw("0"), Span::raw(fit::axis(hi))]),
    );
    frame.render_widget(chart, area);
}

fn gradient_norm(frame: &mut Frame, area: Rect, state: &State, wide: bool) {
    let r = &state.run;
    let points = thin(
        &r.train
            .iter()
            .map(|p| (p.x, p.grad_norm))
            .collect::<Vec<_>>(),
        area.width as usize * 2,
    );
    let xmax = steps_shown(state);
    let clip: Vec<(f64, f64)> = r.clip.map_or(vec![], |c| vec![(0.0, c), (xmax, c)]);
    let (_, hi) = y_range([points.as_slice(), &clip]);
    let hi = hi * 1.05;
    let clip_name = r
        .clip
        .map_or(String::new(), |c| format!("clip {}", fit::axis(c)));
    let chart = Chart::new(super::drawn(vec![
        (
            points.len(),
            Dataset::default()
                .name("gradient norm")
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Magenta))
                .data(&points),
        ),
        (
            clip.len(),
            Dataset::default()
                .name(clip_name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Red))
                .data(&clip),
        ),
    ]))
    .block(Block::new().borders(Borders::ALL).title(match r.clip {
        Some(_) => format!(" Gradient norm (red: {clip_name}) "),
        None => " Gradient norm (no clipping) ".to_string(),
    }))
    .legend_position(legend(wide))
    .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)))
    .x_axis(x_axis(xmax))
    .y_axis(
        Axis::default()
            .bounds([0.0, hi.max(1e-12)])
            .labels(vec![Span::raw("0"), Span::raw(fit::axis(hi))]),
    );
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_mean_and_smoothing_starts_at_the_first_point() {
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, (i % 2) as f64)).collect();
        let thin = thin(&pts, 10);
        assert_eq!(thin.len(), 10);
        assert!(thin.iter().all(|p| (p.1 - 0.5).abs() < 1e-12));
        let s = smooth(&[(0.0, 5.0), (1.0, 5.0)], 0.9);
        assert!((s[0].1 - 5.0).abs() < 1e-12 && (s[1].1 - 5.0).abs() < 1e-12);
    }
}
