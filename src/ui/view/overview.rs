//! The Overview: the perplexity table and the quantization loss per
//! iteration above, the training curves below. Before anything is evaluated
//! the training curves take the whole view; on a short terminal the band
//! that matches what the run is doing gets it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition};
use ratatui::Frame;

use super::fit::{self, Column};
use super::training::{self, Scale};
use super::{empty, marker};
use crate::record::format::bytes as format_bytes;
use crate::record::{Phase, RunStatus};
use crate::ui::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, wide: bool) {
    let r = &state.run;
    if r.table.is_empty() {
        training::draw(frame, area, state, wide);
        return;
    }
    let table_height = r.table.len() as u16 + 3;
    let training_now = state.is_running()
        && matches!(
            r.phase,
            Some(Phase::Pretrain | Phase::Prune | Phase::Iteration { .. })
        );
    let top_height = if r.train.is_empty() || (!training_now && area.height < 28) {
        area.height
    } else {
        table_height.clamp(6, (area.height / 2).max(6))
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(0)]).areas(area);
    if r.loss_per_iteration.is_empty() && r.live_loss.is_empty() {
        perplexity_table(frame, top, state);
    } else {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(top);
        perplexity_table(frame, left, state);
        loss_chart(frame, right, state, wide);
    }
    if bottom.height > 0 {
        training::draw(frame, bottom, state, wide);
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn perplexity_table(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    let fp = r
        .table
        .iter()
        .find(|row| row.label == "full precision")
        .and_then(|row| row.test);
    let best = r
        .table
        .iter()
        .filter(|row| row.bits.is_some())
        .filter_map(|row| row.test.map(|t| (row.label.clone(), t)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(l, _)| l);
    let pruned = r
        .table
        .iter()
        .any(|row| row.sparsity.is_some_and(|s| s > 0.0));
    let col = |f: &dyn Fn(&crate::record::PplRow) -> String| -> Vec<String> {
        r.table.iter().map(f).collect()
    };
    let mut columns = vec![
        Column::new("model", 0, col(&|row| row.label.clone())),
        Column::new("test", 1, col(&|row| opt(row.test, 1))),
        // Relative, as in the exported report: (test / full precision − 1).
        Column::new(
            "Δtest",
            3,
            col(&|row| match (row.test, fp) {
                (Some(t), Some(f)) if row.label != "full precision" => {
                    format!("{:+.1}%", (t / f - 1.0) * 100.0)
                }
                _ => String::new(),
            }),
        ),
        Column::new(
            "bits",
            4,
            col(&|row| row.bits.map_or("32".into(), |b| b.to_string())),
        ),
        Column::new(
            "packed",
            5,
            col(&|row| row.packed_bytes.map_or(String::new(), format_bytes)),
        ),
        Column::new("valid", 2, col(&|row| opt(row.valid, 1))),
        Column::new(
            "q.loss",
            7,
            col(&|row| row.quant_loss.map_or(String::new(), fit::axis)),
        ),
    ];
    if pruned {
        columns.insert(
            5,
            Column::new(
                "zero",
                6,
                col(&|row| {
                    row.sparsity
                        .map_or(String::new(), |s| format!("{:.0}%", s * 100.0))
                }),
            ),
        );
    }
    let styles: Vec<Style> = r
        .table
        .iter()
        .map(|row| {
            if Some(&row.label) == best.as_ref() {
                Style::new().add_modifier(Modifier::BOLD).fg(Color::Green)
            } else {
                Style::new()
            }
        })
        .collect();
    let block = Block::new().borders(Borders::ALL).title(" Perplexity ");
    frame.render_widget(fit::table(columns, area.width, &styles, block), area);
}

fn loss_chart(frame: &mut Frame, area: Rect, state: &State, wide: bool) {
    let r = &state.run;
    let scale = Scale {
        log: state.log_scale,
    };
    let tf = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().map(|&(x, y)| (x, scale.to(y))).collect()
    };
    let points = tf(&r.loss_per_iteration);
    let live = tf(&r.live_loss);
    let names = r.matrix_names();
    let selected = names.get(state.selected).map(|n| n.to_string());
    let per_matrix = selected
        .as_ref()
        .and_then(|n| r.matrix_loss.get(n))
        .map(|pts| tf(pts))
        .unwrap_or_default();
    if points.is_empty() && live.is_empty() {
        empty(frame, area, "Quantization loss", "no quantization yet");
        return;
    }
    let (lo, hi) = training::y_range([points.as_slice(), &live, &per_matrix]);
    // The final model sits one past the last iteration.
    let last = points
        .iter()
        .chain(&live)
        .fold(2.0f64, |m, p| m.max(p.0))
        .ceil();
    let finished = r.status() == RunStatus::Finished;
    let n = last as usize;
    let inner = area.width.saturating_sub(8) as usize;
    let x_labels: Vec<String> = if n * 6 <= inner {
        (1..=n)
            .map(|i| {
                if i == n && finished {
                    "final".into()
                } else {
                    i.to_string()
                }
            })
            .collect()
    } else {
        vec![
            "1".into(),
            if finished {
                "final".into()
            } else {
                n.to_string()
            },
        ]
    };
    let datasets = vec![
        (
            live.len(),
            Dataset::default()
                .name("retraining")
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Yellow))
                .data(&live),
        ),
        (
            per_matrix.len(),
            Dataset::default()
                .name(selected.unwrap_or_default())
                .marker(marker(state))
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Magenta))
                .data(&per_matrix),
        ),
        (
            points.len(),
            Dataset::default()
                .name("quantized")
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))
                .data(&points),
        ),
    ];
    let title = format!(
        " Quantization loss{} ",
        if scale.log { " (log)" } else { "" }
    );
    let chart = Chart::new(super::drawn(datasets))
        .block(Block::new().borders(Borders::ALL).title(title))
        .legend_position(wide.then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(50)))
        .x_axis(
            Axis::default()
                .title("iteration")
                .bounds([1.0, last])
                .labels(x_labels),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels(fit::labels(lo, hi, 2, |v| scale.label(v))),
        );
    frame.render_widget(chart, area);
}
