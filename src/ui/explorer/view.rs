//! Drawing the explorer: a header that counts the runs, the table of runs
//! (or of groups over seeds), the Pareto screen and the marked runs'
//! curves, and a footer of keys from `keys.rs`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Tabs};
use ratatui::Frame;

use super::keys::KEYS;
use super::model::{Explorer, Screen};
use crate::record::format::bytes;
use crate::report::sweep::{CellRow, Stat};
use crate::sweep::Status;
use crate::ui::view::fit::{self, Column};

pub fn draw(frame: &mut Frame, e: &Explorer) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(header_line(e, header.width as usize)),
        header,
    );
    let titles: Vec<Line> = Screen::ALL.iter().map(|s| Line::from(s.title())).collect();
    let at = Screen::ALL.iter().position(|s| *s == e.screen).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(at)
            .highlight_style(Style::new().bold().reversed()),
        tabs,
    );
    match e.screen {
        Screen::Table if e.grouped => group_table(frame, body, e),
        Screen::Table => cell_table(frame, body, e),
        Screen::Pareto => super::charts::pareto(frame, body, e),
        Screen::Compare => super::charts::compare(frame, body, e),
    }
    frame.render_widget(
        Paragraph::new(footer_line(e, footer.width as usize)),
        footer,
    );
}

fn header_line(e: &Explorer, width: usize) -> String {
    let count = |s: Status| e.entries.iter().filter(|x| x.status == s).count();
    let mut states: Vec<String> = [
        Status::Finished,
        Status::Running,
        Status::Stopped,
        Status::Pending,
        Status::Failed,
        Status::Blocked,
    ]
    .iter()
    .filter(|s| count(**s) > 0)
    .map(|s| format!("{} {}", count(*s), s.label()))
    .collect();
    if states.is_empty() {
        states.push("no runs".into());
    }
    let mut parts = vec![
        e.title.clone(),
        format!("{} runs: {}", e.entries.len(), states.join(", ")),
    ];
    if e.pretraining.1 > 0 {
        parts.push(format!(
            "pre-training {}/{}",
            e.pretraining.0, e.pretraining.1
        ));
    }
    match &e.sweeper {
        _ if e.slurm.is_some() => parts.push(e.slurm.clone().unwrap_or_default()),
        Some(Some(pid)) => parts.push(format!("sweep running in process {pid}")),
        Some(None) if e.entries.iter().any(|x| x.status != Status::Finished) => {
            parts.push("not running: `iq-tui resume` continues it".into())
        }
        _ => {}
    }
    if let Some(c) = e.columns().get(e.sort) {
        parts.push(format!(
            "sorted by {} {}",
            c.header,
            if e.descending { "↓" } else { "↑" }
        ));
    }
    if !e.marked.is_empty() {
        parts.push(format!("{} marked", e.marked.len()));
    }
    if let Some(n) = &e.notice {
        parts.insert(1, n.clone());
    }
    fit::parts(&parts, width)
}

fn footer_line(e: &Explorer, width: usize) -> Line<'static> {
    if e.editing {
        return Line::from(vec![
            Span::raw("filter: ").bold(),
            Span::raw(format!("{}▏", e.filter)),
            Span::raw("  Enter keeps it, Esc clears it").dim(),
        ]);
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for (keys, hint) in KEYS.iter().filter_map(|b| b.hint) {
        let n = keys.chars().count() + hint.chars().count() + 3;
        if used + n > width {
            break;
        }
        used += n;
        spans.push(Span::raw(keys).bold());
        spans.push(Span::raw(format!(" {hint}  ")));
    }
    if !e.filter.is_empty() && used + 12 + e.filter.len() <= width {
        spans.push(Span::raw(format!("filter: {}", e.filter)).fg(Color::Yellow));
    }
    Line::from(spans)
}

fn ppl(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.2}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:+.1} %"))
}

fn stat(s: Option<Stat>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n > 1 => format!("{:.digits$} ± {:.digits$}", s.mean, s.std),
        Some(s) => format!("{:.digits$}", s.mean),
    }
}

/// The first row to show so that `selected` is on screen.
fn window(selected: usize, rows: usize, height: usize) -> usize {
    if rows <= height || selected < height / 2 {
        0
    } else {
        (selected - height / 2).min(rows - height)
    }
}

fn row_styles(n: usize, selected: usize, marked: &[bool], status: &[Status]) -> Vec<Style> {
    (0..n)
        .map(|i| {
            let mut s = match status.get(i) {
                Some(Status::Failed | Status::Blocked) => Style::new().fg(Color::Red),
                Some(Status::Running) => Style::new().fg(Color::Yellow),
                Some(Status::Pending) => Style::new().dim(),
                _ => Style::new(),
            };
            if marked.get(i).copied().unwrap_or(false) {
                s = s.fg(Color::Cyan);
            }
            if i == selected {
                s = s.add_modifier(Modifier::REVERSED);
            }
            s
        })
        .collect()
}

fn cell_text(row: &CellRow, header: &str, axis: Option<usize>) -> String {
    if let Some(i) = axis {
        return row.values[i].clone();
    }
    match header {
        "run" => row.cell.clone(),
        "status" => row.status.clone(),
        "slurm" => row.scheduler.clone().unwrap_or_else(|| "–".into()),
        "done" => row.progress.map_or_else(
            || {
                if row.status == "finished" {
                    "100 %".into()
                } else {
                    "–".into()
                }
            },
            |p| format!("{:.0} %", 100.0 * p),
        ),
        "fp test" => ppl(row.fp_test_ppl),
        "1-shot test" => ppl(row.one_shot_test_ppl),
        "final test" => ppl(row.final_test_ppl),
        "vs fp" => pct(row.final_vs_fp_pct),
        "bits" => row.bits.map_or("–".into(), |b| b.to_string()),
        "sparsity" => row
            .sparsity
            .map_or("–".into(), |s| format!("{:.1} %", 100.0 * s)),
        "packed" => row.packed_bytes.map_or("–".into(), bytes),
        "×" => row.compression.map_or("–".into(), |c| format!("{c:.1}×")),
        _ => String::new(),
    }
}

fn cell_table(frame: &mut Frame, area: Rect, e: &Explorer) {
    let rows = e.rows();
    let height = area.height.saturating_sub(3) as usize;
    let first = window(e.selected, rows.len(), height);
    let shown = &rows[first..rows.len().min(first + height)];
    let defs = e.columns();
    let mut columns = vec![Column::new(
        " ",
        0,
        shown
            .iter()
            .map(|(i, _)| {
                if e.marked.contains(&e.entries[*i].unit.name) {
                    "*"
                } else {
                    " "
                }
                .into()
            })
            .collect(),
    )];
    for (k, d) in defs.iter().enumerate() {
        let axis = (1..=e.axes.len()).contains(&k).then(|| k - 1);
        let header = if k == e.sort {
            format!("{}{}", d.header, if e.descending { "↓" } else { "↑" })
        } else {
            d.header.clone()
        };
        columns.push(Column {
            header,
            priority: d.priority,
            cells: shown
                .iter()
                .map(|(_, r)| cell_text(r, &d.header, axis))
                .collect(),
        });
    }
    let marked: Vec<bool> = shown
        .iter()
        .map(|(i, _)| e.marked.contains(&e.entries[*i].unit.name))
        .collect();
    let status: Vec<Status> = shown.iter().map(|(i, _)| e.entries[*i].status).collect();
    let styles = row_styles(shown.len(), e.selected - first, &marked, &status);
    let title = if rows.len() > shown.len() {
        format!(
            " Runs {}–{} of {} ",
            first + 1,
            first + shown.len(),
            rows.len()
        )
    } else {
        " Runs ".into()
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    frame.render_widget(fit::table(columns, area.width, &styles, block), area);
}

fn group_table(frame: &mut Frame, area: Rect, e: &Explorer) {
    let groups = e.group_rows();
    let height = area.height.saturating_sub(3) as usize;
    let first = window(e.selected, groups.len(), height);
    let shown = &groups[first..groups.len().min(first + height)];
    let keep = crate::report::sweep::group_axes(&e.axes);
    let varied_bits = keep
        .iter()
        .any(|(_, a)| crate::sweep::expand::short_path(a) == "bits");
    let mut columns = Vec::new();
    for (j, (_, a)) in keep.iter().enumerate() {
        columns.push(Column::new(
            crate::sweep::expand::short_path(a),
            0,
            shown.iter().map(|g| g.values[j].clone()).collect(),
        ));
    }
    columns.extend([
        Column::new(
            "n",
            0,
            shown
                .iter()
                .map(|g| format!("{}/{}", g.finished, g.cells.len()))
                .collect(),
        ),
        Column::new(
            "fp test",
            3,
            shown.iter().map(|g| stat(g.fp_test_ppl, 2)).collect(),
        ),
        Column::new(
            "1-shot test",
            4,
            shown.iter().map(|g| stat(g.one_shot_test_ppl, 2)).collect(),
        ),
        Column::new(
            "final test",
            0,
            shown.iter().map(|g| stat(g.final_test_ppl, 2)).collect(),
        ),
        Column::new(
            "vs fp (%)",
            1,
            shown.iter().map(|g| stat(g.final_vs_fp_pct, 1)).collect(),
        ),
        Column::new(
            if varied_bits { "" } else { "bits" },
            3,
            shown
                .iter()
                .map(|g| g.bits.map_or("–".into(), |b| b.to_string()))
                .collect(),
        ),
        Column::new(
            "packed",
            1,
            shown
                .iter()
                .map(|g| {
                    g.packed_bytes
                        .map_or("–".into(), |s| bytes(s.mean.round() as u64))
                })
                .collect(),
        ),
    ]);
    // Bits varied by an axis are already a column.
    columns.retain(|c| !c.header.is_empty());
    let styles = row_styles(shown.len(), e.selected - first, &[], &[]);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" Groups over seeds: mean ± standard deviation (g: cells) ");
    frame.render_widget(fit::table(columns, area.width, &styles, block), area);
}
