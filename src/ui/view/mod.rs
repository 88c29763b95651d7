//! The pure view: draws a `State` into a frame. Works from 80×24 up: tables
//! drop columns rather than cut numbers (`fit.rs`), and charts name their
//! series from 100 columns up.
//!
//! One file per view (`overview.rs`, `training.rs`, `weights.rs`,
//! `sparsity.rs`); this one draws the frame around them: status, progress
//! or result, tabs, the log pane, the key hints and the overlays.

pub(crate) mod fit;
mod overview;
mod sparsity;
mod training;
mod weights;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, LineGauge, Paragraph, Tabs};
use ratatui::Frame;

use super::action::Action;
use super::state::{Confirm, State, View};
use crate::record::format::{bytes as format_bytes, duration as format_duration};
use crate::record::{Phase, RunStatus};

/// Terminal width from which charts carry legends.
const LEGEND_WIDTH: u16 = 100;

pub fn draw(frame: &mut Frame, state: &State) {
    let area = frame.area();
    let log_height = if state.view == View::Log || area.height < 20 {
        0
    } else {
        (area.height / 5).clamp(5, 14)
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
    let wide = area.width >= LEGEND_WIDTH;
    match state.view {
        View::Overview => overview::draw(frame, body, state, wide),
        View::Training => training::draw(frame, body, state, wide),
        View::Weights => weights::draw(frame, body, state, wide),
        View::Sparsity => sparsity::draw(frame, body, state),
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
    if let Some(question) = state.confirm {
        draw_confirm(frame, area, question, state.watching);
    }
}

fn stopped_span() -> Span<'static> {
    Span::styled(" STOPPED ", Style::new().white().on_magenta().bold())
}

fn status_span(status: &RunStatus) -> Span<'static> {
    match status {
        RunStatus::Starting => Span::styled(" STARTING ", Style::new().black().on_gray()),
        RunStatus::Running => Span::styled(" RUNNING ", Style::new().black().on_green()),
        RunStatus::Paused => Span::styled(" PAUSED ", Style::new().black().on_yellow().bold()),
        RunStatus::Stopped(_) => stopped_span(),
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

/// A followed run whose process died before recording its end.
fn orphaned(state: &State) -> bool {
    state.watching && state.writer.is_none() && state.is_running()
}

fn draw_header(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    // the records end mid-run, but nothing writes them any more: the run
    // is stopped, as the explorer and `iq-tui status` say too
    let badge = if orphaned(state) {
        stopped_span()
    } else {
        status_span(&r.status())
    };
    let mut spans = vec![
        badge,
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
    if state.watching {
        let (text, style) = match &state.writer {
            Some(pid) => (format!(" · following process {pid}"), Style::new().dim()),
            None if orphaned(state) => (" · its process is gone".into(), Style::new().red()),
            None => (" · read from disk".into(), Style::new().dim()),
        };
        spans.push(Span::styled(text, style));
    }
    if let Some(notice) = &state.notice {
        spans.push(Span::styled(format!(" · {notice}"), Style::new().italic()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The progress bar while the run goes; its result once it is over.
fn draw_progress(frame: &mut Frame, area: Rect, state: &State) {
    let r = &state.run;
    let width = area.width as usize;
    let over =
        |parts: Vec<String>, style: Style| Paragraph::new(fit::parts(&parts, width)).style(style);
    if orphaned(state) {
        let p = over(
            vec![
                "no last record (killed?)".into(),
                "`iq-tui resume RUN_DIR` continues from its last checkpoint".into(),
            ],
            Style::new().red(),
        );
        frame.render_widget(p, area);
        return;
    }
    match r.status() {
        RunStatus::Finished => {
            frame.render_widget(over(result_parts(state), Style::new().bold()), area);
            return;
        }
        RunStatus::Stopped(reason) => {
            let parts = vec![
                reason.to_string(),
                format!("{}/{} training steps", r.steps_done, r.total_steps),
                "`iq-tui resume RUN_DIR` continues it".into(),
            ];
            frame.render_widget(over(parts, Style::new()), area);
            return;
        }
        RunStatus::Failed(error) => {
            frame.render_widget(
                over(vec![format!("failed: {error}")], Style::new().red()),
                area,
            );
            return;
        }
        _ => {}
    }
    let ratio = if r.total_steps == 0 {
        0.0
    } else {
        (r.steps_done as f64 / r.total_steps as f64).clamp(0.0, 1.0)
    };
    let mut parts = vec![format!("step {}/{}", r.step, r.steps_in_phase)];
    if let Some(p) = r.train_ppl {
        parts.push(format!("ppl {p:.1}"));
    }
    parts.push(format!(
        "ETA {}",
        r.eta_s.map_or("–".to_string(), format_duration)
    ));
    if let Some(t) = r.tokens_per_sec {
        parts.push(format!("{t:.0} tok/s"));
    }
    // The gauge's line takes about half the row; the label the rest.
    let label = fit::parts(&parts, width.saturating_sub(12));
    frame.render_widget(
        LineGauge::default()
            .ratio(ratio)
            .label(label)
            .filled_style(Style::new().fg(Color::Green))
            .unfilled_style(Style::new().fg(Color::DarkGray)),
        area,
    );
}

/// What a finished run delivered: the final model's test perplexity, its
/// change against full precision, its packed size and the wall time.
fn result_parts(state: &State) -> Vec<String> {
    let r = &state.run;
    let row = |label: &str| r.table.iter().find(|row| row.label == label);
    let fp = row("full precision").and_then(|row| row.test);
    let mut parts = Vec::new();
    match &r.ending {
        Some(end) => {
            parts.push(format!("final test ppl {:.2}", end.test_ppl));
            if let Some(fp) = fp {
                parts.push(format!(
                    "Δtest {:+.1} % vs full precision {fp:.2}",
                    (end.test_ppl / fp - 1.0) * 100.0
                ));
            }
        }
        None => parts.push("finished".into()),
    }
    if let Some(last) = row("final").or_else(|| row("pruned")) {
        if let (Some(packed), Some(fp32)) = (last.packed_bytes, last.fp32_bytes) {
            parts.push(format!(
                "packed {} ({:.1}× smaller)",
                format_bytes(packed),
                fp32 as f64 / packed.max(1) as f64
            ));
        }
    }
    if let Some(end) = &r.ending {
        parts.push(format!("wall time {}", format_duration(end.seconds)));
    }
    parts
}

/// Chart marker: braille, or plain blocks for terminals without it.
fn marker(state: &State) -> Marker {
    if state.blocks {
        Marker::Block
    } else {
        Marker::Braille
    }
}

/// The datasets that have points: one without any would be named in the
/// legend and not be seen.
fn drawn(sets: Vec<(usize, ratatui::widgets::Dataset<'_>)>) -> Vec<ratatui::widgets::Dataset<'_>> {
    sets.into_iter()
        .filter(|(points, _)| *points > 0)
        .map(|(_, d)| d)
        .collect()
}

/// A bordered panel that says why it is empty.
pub(crate) fn empty(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(
                Block::new()
                    .borders(Borders::ALL)
                    .title(format!(" {title} ")),
            ),
        area,
    );
}

fn draw_log(frame: &mut Frame, area: Rect, state: &State) {
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2).max(1) as usize;
    let log = &state.run.log;
    let end = log.len().saturating_sub(state.log_scroll.min(log.len()));
    // Long lines wrap at the pane's width: take lines from the end while
    // their rows fit, and drop the top rows of the first if it overflows.
    let rows = |l: &String| l.chars().count().div_ceil(width).max(1);
    let (mut start, mut used) = (end, 0);
    while start > 0 && used < height {
        start -= 1;
        used += rows(&log[start]);
    }
    let lines: Vec<Line> = log[start..end]
        .iter()
        .flat_map(|l| {
            let chars: Vec<char> = l.chars().collect();
            chars
                .chunks(width)
                .map(|c| Line::from(c.iter().collect::<String>()))
                .collect::<Vec<_>>()
        })
        .skip(used.saturating_sub(height))
        .collect();
    let title = if state.log_scroll > 0 {
        format!(
            " Log (lines {}–{} of {}; ] forward) ",
            start + 1,
            end,
            log.len()
        )
    } else {
        " Log ".to_string()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(title)),
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
/// Controls that cannot act now (a run that is over, one no process
/// writes) are not offered.
fn footer(state: &State) -> String {
    use Action::*;
    let mut groups: Vec<&[Action]> = Vec::new();
    if state.controllable() {
        groups.push(&[TogglePause]);
        groups.push(&[Stop]);
    }
    groups.extend::<[&[Action]; 5]>([
        &[Export],
        &[NextView],
        &[NextMatrix, PrevMatrix],
        &[Help],
        &[Quit],
    ]);
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
            let hint = match group[0] {
                TogglePause if state.run.status() == RunStatus::Paused => "resume",
                other => other.hint(),
            };
            (!keys.is_empty()).then(|| format!("{} {hint}", keys.join("/")))
        })
        .collect();
    format!(" {}", hints.join(" · "))
}

fn draw_help(frame: &mut Frame, area: Rect, state: &State) {
    let popup = centered(area, 76, state.keys.len() as u16 + 2);
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
                Span::styled(format!("{keys:>22}  "), Style::new().bold()),
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

fn draw_confirm(frame: &mut Frame, area: Rect, question: Confirm, watching: bool) {
    let text = match question {
        Confirm::Quit => {
            "The run is still going. Quit and stop it?\n(it keeps a checkpoint)\n  y: stop and quit    n: keep going"
        }
        Confirm::Stop if watching => {
            "Stop the run you are following?\n(it keeps a checkpoint)\n  y: stop it    n: keep going"
        }
        Confirm::Stop => "Stop the run?\n(it keeps a checkpoint)\n  y: stop it    n: keep going",
    };
    let popup = centered(area, 50, 5);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::ALL).title(" Sure? ")),
        popup,
    );
}
