//! The pure view: draws a `State` into a frame. Works from 80×24 up.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, LineGauge, Paragraph, Row, Table,
    Tabs, Wrap,
};
use ratatui::Frame;

use super::action::Action;
use super::state::{State, View};
use crate::record::format::{bytes as format_bytes, duration as format_duration};
use crate::record::Phase;
use crate::record::RunStatus;

pub fn draw(frame: &mut Frame, state: &State) {
    let area = frame.area();
    let log_height = if state.view == View::Log || area.height < 20 {
        0
    } else {
        5
    };
    let [header, progress, tabs, body, log, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(log_height),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state);
    draw_progress(frame, progress, state);
    let titles: Vec<Line> = View::ALL.iter().map(|v| Line::from(v.title())).collect();
    let selected = View::ALL.iter().position(|v| *v == state.view).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().bold().reversed()),
        tabs,
    );
    match state.view {
        View::Overview => draw_overview(frame, body, state),
        View::Weights => draw_weights(frame, body, state),
        View::Sparsity => draw_sparsity(frame, body, state),
        View::Log => draw_log(frame, body, state),
    }
    if log_height > 0 {
        draw_log(frame, log, state);
    }
    frame.render_widget(
        Paragraph::new(footer(state)).style(Style::new().dim()),
        keys,
    );
    if state.help {
        draw_help(frame, area, state);
    }
    if state.confirm_quit {
        draw_confirm(frame, area);
    }
}

fn status_span(status: &RunStatus) -> Span<'static> {
    match status {
        RunStatus::Starting => Span::styled(" STARTING ", Style::new().black().on_gray()),
        RunStatus::Running => Span::styled(" RUNNING ", Style::new().black().on_green()),
        RunStatus::Paused => Span::styled(" PAUSED ", Style::new().black().on_yellow().bold()),
        RunStatus::Stopped(_) => {
            Span::styled(" STOPPED ", Style::new().white().on_magenta().bold())
        }
        RunStatus::Finished => Span::styled(" FINISHED ", Style::new().black().on_cyan().bold()),
        RunStatus::Failed(_) => Span::styled(" FAILED ", Style::new().white().on_red().bold()),
    }
}

fn phase_text(state: &State) -> String {
    let r = &state.run;
    match r.phase {
        None => "starting".into(),
        Some(phase @ Phase::Pretrain) => format!("{phase} · epoch {}/{}", r.epoch, r.epochs),
        Some(phase @ Phase::Iteration { .. }) => format!("{phase}: quantize, retrain"),
        Some(phase) => phase.to_string(),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    let mut spans = vec![
        status_span(&r.status()),
        Span::raw(" "),
        Span::styled(
            if r.name.is_empty() {
                "iq-tui".to_string()
            } else {
                r.name.clone()
            },
            Style::new().bold(),
        ),
        Span::raw(format!(" · {}", phase_text(state))),
    ];
    if let Some(notice) = &state.notice {
        spans.push(Span::styled(format!(" · {notice}"), Style::new().italic()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_progress(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    let ratio = if r.total_steps == 0 {
        0.0
    } else {
        (r.steps_done as f64 / r.total_steps as f64).clamp(0.0, 1.0)
    };
    let mut label = format!("step {}/{}", r.step, r.steps_in_phase);
    if let Some(p) = r.train_ppl {
        label.push_str(&format!(" · ppl {p:.1}"));
    }
    if let Some(t) = r.tokens_per_sec {
        label.push_str(&format!(" · {t:.0} tok/s"));
    }
    label.push_str(&format!(
        " · ETA {}",
        r.eta_s.map_or("–".to_string(), format_duration)
    ));
    frame.render_widget(
        LineGauge::default()
            .ratio(ratio)
            .label(label)
            .filled_style(Style::new().fg(Color::Green))
            .unfilled_style(Style::new().fg(Color::DarkGray)),
        area,
    );
}

fn marker(state: &State) -> Marker {
    if state.blocks {
        Marker::Block
    } else {
        Marker::Braille
    }
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn draw_overview(frame: &mut Frame, area: Rect, state: &State) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
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
    // The sparsity column only when something is pruned.
    let pruned = r
        .table
        .iter()
        .any(|row| row.sparsity.is_some_and(|s| s > 0.0));
    let rows = r.table.iter().map(|row| {
        let delta = match (row.test, fp) {
            (Some(t), Some(f)) if row.label != "full precision" => format!("{:+.1}", t - f),
            _ => "".into(),
        };
        let style = if Some(&row.label) == best.as_ref() {
            Style::new().bold().fg(Color::Green)
        } else {
            Style::new()
        };
        let mut cells = vec![
            Cell::from(row.label.clone()),
            Cell::from(row.bits.map_or("32".into(), |b| b.to_string())),
            Cell::from(fmt_opt(row.valid, 1)),
            Cell::from(fmt_opt(row.test, 1)),
            Cell::from(delta),
        ];
        if pruned {
            cells.push(Cell::from(
                row.sparsity
                    .map_or("".into(), |s| format!("{:.0}%", s * 100.0)),
            ));
        }
        cells.push(Cell::from(row.packed_bytes.map_or("".into(), format_bytes)));
        Row::new(cells).style(style)
    });
    let mut widths = vec![
        Constraint::Min(14),
        Constraint::Length(4),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let mut header = vec!["model", "bits", "valid", "test", "Δtest"];
    if pruned {
        widths.push(Constraint::Length(4));
        header.push("zero");
    }
    widths.push(Constraint::Length(8));
    header.push("packed");
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold()))
        .block(Block::new().borders(Borders::ALL).title(" Perplexity "));
    frame.render_widget(table, left);
    draw_loss_chart(frame, right, state);
}

fn draw_loss_chart(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    let tf = |v: f64| {
        if state.log_scale {
            v.max(1e-12).log10()
        } else {
            v
        }
    };
    let points: Vec<(f64, f64)> = r
        .loss_per_iteration
        .iter()
        .map(|&(x, y)| (x, tf(y)))
        .collect();
    let live: Vec<(f64, f64)> = r.live_loss.iter().map(|&(x, y)| (x, tf(y))).collect();
    let selected = r.matrices.get(state.selected).map(|m| m.name.clone());
    let per_matrix: Vec<(f64, f64)> = selected
        .as_ref()
        .and_then(|n| r.matrix_loss.get(n))
        .map(|pts| pts.iter().map(|&(x, y)| (x, tf(y))).collect())
        .unwrap_or_default();
    let all = points.iter().chain(&live).chain(&per_matrix);
    let (ymin, ymax) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let xmax = all.fold(1.0f64, |m, p| m.max(p.0));
    let title = if state.log_scale {
        " Quantization loss (log scale, g) "
    } else {
        " Quantization loss (g: log) "
    };
    let shown = |v: f64| if state.log_scale { 10f64.powf(v) } else { v };
    let block = Block::new().borders(Borders::ALL).title(title);
    if points.is_empty() && live.is_empty() {
        frame.render_widget(
            Paragraph::new("no quantization yet")
                .block(block)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let (ymin, ymax) = if ymin < ymax {
        (ymin, ymax)
    } else {
        (ymin - 1.0, ymax + 1.0)
    };
    let datasets = vec![
        Dataset::default()
            .name("retraining")
            .marker(marker(state))
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Yellow))
            .data(&live),
        Dataset::default()
            .name(selected.unwrap_or_default())
            .marker(marker(state))
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Magenta))
            .data(&per_matrix),
        Dataset::default()
            .name("quantized")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))
            .data(&points),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title("iteration")
                .bounds([1.0, xmax])
                .labels(vec![Span::raw("1"), Span::raw(format!("{xmax:.0}"))]),
        )
        .y_axis(Axis::default().bounds([ymin, ymax]).labels(vec![
            Span::raw(format!("{:.3}", shown(ymin))),
            Span::raw(format!("{:.3}", shown(ymax))),
        ]));
    frame.render_widget(chart, area);
}

fn matrix_list(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    value: impl Fn(&crate::record::MatrixReport) -> String,
) {
    let rows = state.run.matrices.iter().enumerate().map(|(i, m)| {
        let style = if i == state.selected {
            Style::new().reversed()
        } else {
            Style::new()
        };
        Row::new(vec![Cell::from(m.name.clone()), Cell::from(value(m))]).style(style)
    });
    let table = Table::new(rows, [Constraint::Min(12), Constraint::Length(8)])
        .block(Block::new().borders(Borders::ALL).title(" Matrices (j/k) "));
    frame.render_widget(table, area);
}

fn draw_weights(frame: &mut Frame, area: Rect, state: &State) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(26), Constraint::Min(20)]).areas(area);
    matrix_list(frame, left, state, |m| format!("{:.4}", m.quant_loss));
    let Some(m) = state.run.matrices.get(state.selected) else {
        frame.render_widget(
            Paragraph::new("no quantized matrix yet")
                .block(Block::new().borders(Borders::ALL).title(" Weights ")),
            right,
        );
        return;
    };
    let to_points = |h: &crate::compress::stats::Histogram| -> Vec<(f64, f64)> {
        let n = h.counts.len().max(1) as f64;
        let width = (h.hi - h.lo) as f64 / n;
        h.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (h.lo as f64 + (i as f64 + 0.5) * width, c as f64))
            .collect()
    };
    let now = to_points(&m.histogram);
    let before = state
        .run
        .first_histograms
        .get(&m.name)
        .map(to_points)
        .unwrap_or_default();
    let ymax = now.iter().chain(&before).fold(1.0f64, |a, p| a.max(p.1));
    let levels: Vec<(f64, f64)> = m.levels.iter().map(|&l| (l as f64, ymax)).collect();
    let (lo, hi) = (
        m.histogram.lo as f64,
        m.histogram.hi.max(m.histogram.lo + 1e-6) as f64,
    );
    let datasets = vec![
        Dataset::default()
            .name("before 1st quantization")
            .marker(marker(state))
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::DarkGray))
            .data(&before),
        Dataset::default()
            .name("now (before quantizing)")
            .marker(marker(state))
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(&now),
        Dataset::default()
            .name("levels")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Red))
            .data(&levels),
    ];
    let title = format!(
        " {} {}×{} · {} bits · loss {:.4} ",
        m.name,
        m.rows,
        m.cols,
        m.bits.map_or("32".into(), |b| b.to_string()),
        m.quant_loss
    );
    let chart = Chart::new(datasets)
        .block(Block::new().borders(Borders::ALL).title(title))
        .x_axis(Axis::default().bounds([lo, hi]).labels(vec![
            Span::raw(format!("{lo:.3}")),
            Span::raw("0"),
            Span::raw(format!("{hi:.3}")),
        ]))
        .y_axis(
            Axis::default()
                .bounds([0.0, ymax])
                .labels(vec![Span::raw("0"), Span::raw(format!("{ymax:.0}"))]),
        );
    frame.render_widget(chart, right);
}

fn draw_sparsity(frame: &mut Frame, area: Rect, state: &State) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(26), Constraint::Min(20)]).areas(area);
    matrix_list(frame, left, state, |m| {
        format!("{:.1}%", m.sparsity * 100.0)
    });
    let Some(m) = state.run.matrices.get(state.selected) else {
        frame.render_widget(
            Paragraph::new("no matrix report yet")
                .block(Block::new().borders(Borders::ALL).title(" Density ")),
            right,
        );
        return;
    };
    let (gr, gc) = m.grid;
    let shades = [' ', '░', '▒', '▓', '█'];
    let lines: Vec<Line> = m
        .density
        .chunks(gc.max(1))
        .take(gr)
        .map(|row| {
            Line::from(
                row.iter()
                    .map(|&d| {
                        let c = shades[((d * 4.0).round() as usize).min(4)];
                        Span::styled(c.to_string(), Style::new().fg(Color::Green))
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let title = format!(
        " {}: kept fraction per tile ({}×{}), sparsity {:.1}% ",
        m.name,
        gr,
        gc,
        m.sparsity * 100.0
    );
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(title)),
        right,
    );
}

fn draw_log(frame: &mut Frame, area: Rect, state: &State) {
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = state
        .run
        .log
        .iter()
        .rev()
        .take(height)
        .rev()
        .map(|l| Line::from(l.as_str()))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" Log ")),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The footer's key hints, from the keymap in force: `p pause · s stop · …`.
/// Controls that cannot act on a reopened run are not offered there.
fn footer(state: &State) -> String {
    use Action::*;
    let groups: &[&[Action]] = if state.read_only {
        &[
            &[NextView],
            &[NextMatrix, PrevMatrix],
            &[ToggleLogScale],
            &[Export],
            &[Help],
            &[Quit],
        ]
    } else {
        &[
            &[TogglePause],
            &[Stop],
            &[Export],
            &[NextView],
            &[NextMatrix, PrevMatrix],
            &[Help],
            &[Quit],
        ]
    };
    let first_key = |action: Action| {
        state
            .keys
            .iter()
            .find(|k| k.action == action)
            .and_then(|k| k.keys.first().cloned())
    };
    let hints: Vec<String> = groups
        .iter()
        .filter_map(|group| {
            let keys: Vec<String> = group.iter().filter_map(|&a| first_key(a)).collect();
            (!keys.is_empty()).then(|| format!("{} {}", keys.join("/"), group[0].hint()))
        })
        .collect();
    format!(" {}", hints.join(" · "))
}

fn draw_help(frame: &mut Frame, area: Rect, state: &State) {
    let popup = centered(area, 72, state.keys.len() as u16 + 2);
    let lines: Vec<Line> = state
        .keys
        .iter()
        .map(|k| {
            let keys = if k.keys.is_empty() {
                "(unbound)".to_string()
            } else {
                k.keys.join(", ")
            };
            Line::from(vec![
                Span::styled(format!("{keys:>28}  "), Style::new().bold()),
                Span::raw(k.action.description()),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Keys (any key closes) "),
        ),
        popup,
    );
}

fn draw_confirm(frame: &mut Frame, area: Rect) {
    let popup = centered(area, 48, 5);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(
            "The run is still going. Quit and stop it?\n\n  y: stop and quit    n: keep going",
        )
        .block(Block::new().borders(Borders::ALL).title(" Quit? ")),
        popup,
    );
}
