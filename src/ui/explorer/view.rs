//! Drawing the explorer: a header that counts the runs, the table of runs
//! (or of groups over seeds), the Pareto screen and the marked runs'
//! curves, and a footer of keys from `keys.rs`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Tabs};
use ratatui::Frame;

use super::keys::KEYS;
use super::model::{Explorer, Screen};
use crate::record::format::bytes;
use crate::report::sweep::{group_label, pareto_front, CellRow, Stat};
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
        Screen::Pareto => pareto(frame, body, e),
        Screen::Compare => compare(frame, body, e),
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
    match &e.sweeper {
        Some(Some(pid)) => parts.push(format!(
            "sweep running in process {pid} (kill -TERM {pid} stops it)"
        )),
        Some(None) if e.entries.iter().any(|x| x.status != Status::Finished) => {
            parts.push("no process runs the sweep: iq-tui resume DIR".into())
        }
        _ => {}
    }
    if e.pretraining.1 > 0 {
        parts.push(format!(
            "pre-training {}/{}",
            e.pretraining.0, e.pretraining.1
        ));
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
    for (keys, hint, _) in KEYS {
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
            "bits",
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
    let styles = row_styles(shown.len(), e.selected - first, &[], &[]);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" Groups over seeds: mean ± standard deviation (g: cells) ");
    frame.render_widget(fit::table(columns, area.width, &styles, block), area);
}

fn empty(frame: &mut Frame, area: Rect, title: &str, message: &str) {
    frame.render_widget(
        Paragraph::new(message).dim().block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" {title} ")),
        ),
        area,
    );
}

fn pareto(frame: &mut Frame, area: Rect, e: &Explorer) {
    let groups = e.group_rows();
    let points: Vec<(String, f64, Stat)> = groups
        .iter()
        .filter_map(|g| {
            Some((
                group_label(&e.axes, &g.values),
                g.packed_bytes?.mean.log10(),
                g.final_test_ppl?,
            ))
        })
        .collect();
    if points.is_empty() {
        empty(
            frame,
            area,
            "Pareto",
            "no finished run yet: the chart shows final test perplexity against packed size",
        );
        return;
    }
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.1, p.2.mean)).collect();
    let front_idx = pareto_front(&xy);
    let front: Vec<(f64, f64)> = front_idx.iter().map(|&i| xy[i]).collect();
    let others: Vec<(f64, f64)> = (0..xy.len())
        .filter(|i| !front_idx.contains(i))
        .map(|i| xy[i])
        .collect();
    let fp = Stat::of(groups.iter().filter_map(|g| g.fp_test_ppl.map(|s| s.mean)));
    let bars: Vec<[(f64, f64); 2]> = points
        .iter()
        .filter(|p| p.2.n > 1)
        .map(|p| [(p.1, p.2.mean - p.2.std), (p.1, p.2.mean + p.2.std)])
        .collect();
    let (mut x0, mut x1) = bounds(xy.iter().map(|p| p.0));
    if x1 - x0 < 1e-9 {
        (x0, x1) = (x0 - 0.1, x1 + 0.1);
    }
    let pad = (x1 - x0) * 0.05;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let (y0, y1) = bounds(
        points
            .iter()
            .flat_map(|p| [p.2.mean - p.2.std, p.2.mean + p.2.std])
            .chain(fp.map(|f| f.mean)),
    );
    let ypad = ((y1 - y0) * 0.08).max(1e-6);
    let (y0, y1) = (y0 - ypad, y1 + ypad);
    let fp_line: Vec<(f64, f64)> = fp.map_or_else(Vec::new, |f| vec![(x0, f.mean), (x1, f.mean)]);
    let wide = area.width >= 100;
    let [plot, side] = if wide {
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let mut datasets = vec![
        Dataset::default()
            .name("full precision")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Red))
            .data(&fp_line),
        Dataset::default()
            .name("non-dominated")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&front),
        Dataset::default()
            .name("dominated")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Gray))
            .data(&others),
    ];
    for b in &bars {
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::DarkGray))
                .data(b),
        );
    }
    let chart = Chart::new(datasets)
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Final test perplexity against packed size "),
        )
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(40)))
        .x_axis(
            Axis::default()
                .title("packed (log)")
                .bounds([x0, x1])
                .labels(fit::labels(x0, x1, 3, |v| {
                    bytes(10f64.powf(v).round() as u64)
                })),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels(fit::labels(y0, y1, 3, fit::axis)),
        );
    frame.render_widget(chart, plot);
    if wide {
        let mut lines = vec![Line::from("non-dominated, by size:").bold()];
        for &i in &front_idx {
            let (label, x, s) = &points[i];
            let spread = if s.n > 1 {
                format!(" ± {:.2} (n={})", s.std, s.n)
            } else {
                String::new()
            };
            lines.push(Line::from(format!(
                "{} · {:.2}{spread}",
                bytes(10f64.powf(*x).round() as u64),
                s.mean
            )));
            lines.push(Line::from(format!("  {label}")).fg(Color::Cyan));
        }
        if let Some(f) = fp {
            lines.push(Line::from(format!("full precision: {:.2}", f.mean)).fg(Color::Red));
        }
        frame.render_widget(
            Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" Front ")),
            side,
        );
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

const COLOURS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightRed,
    Color::LightBlue,
];

fn compare(frame: &mut Frame, area: Rect, e: &Explorer) {
    let mut chosen: Vec<usize> = (0..e.entries.len())
        .filter(|&i| e.marked.contains(&e.entries[i].unit.name))
        .collect();
    if chosen.is_empty() {
        chosen.extend(e.current());
    }
    let series = |i: usize| -> (String, Vec<(f64, f64)>, Vec<(f64, f64)>) {
        let v = &e.entries[i].view;
        let loss: Vec<(f64, f64)> = v
            .loss_per_iteration
            .iter()
            .map(|&(x, y)| (x, y.max(1e-12).log10()))
            .collect();
        let valid: Vec<(f64, f64)> = v
            .table
            .iter()
            .filter_map(|r| {
                let j = r.label.strip_prefix("iteration ")?.parse::<f64>().ok()?;
                Some((j, r.valid?))
            })
            .collect();
        (e.entries[i].unit.name.clone(), loss, valid)
    };
    let all: Vec<_> = chosen.iter().map(|&i| series(i)).collect();
    if all.iter().all(|s| s.1.is_empty() && s.2.is_empty()) {
        empty(frame, area, "Marked", "mark runs with space to compare their quantization loss and validation perplexity per iteration");
        return;
    }
    let [left, right] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(area);
    let chart = |title: &str,
                 pick: fn(&(String, Vec<(f64, f64)>, Vec<(f64, f64)>)) -> &Vec<(f64, f64)>,
                 log: bool| {
        let (x0, x1) = bounds(all.iter().flat_map(|s| pick(s).iter().map(|p| p.0)));
        let (y0, y1) = bounds(all.iter().flat_map(|s| pick(s).iter().map(|p| p.1)));
        let (x0, x1) = if x1 > x0 {
            (x0, x1)
        } else {
            (x0 - 1.0, x0 + 1.0)
        };
        let pad = ((y1 - y0) * 0.08).max(1e-6);
        let (y0, y1) = (y0 - pad, y1 + pad);
        let datasets: Vec<Dataset> = all
            .iter()
            .enumerate()
            .filter(|(_, s)| !pick(s).is_empty())
            .map(|(k, s)| {
                Dataset::default()
                    .name(s.0.clone())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(COLOURS[k % COLOURS.len()]))
                    .data(pick(s))
            })
            .collect();
        let show = move |v: f64| {
            if log {
                fit::axis(10f64.powf(v))
            } else {
                fit::axis(v)
            }
        };
        Chart::new(datasets)
            .block(
                Block::new()
                    .borders(Borders::ALL)
                    .title(format!(" {title} ")),
            )
            .hidden_legend_constraints((Constraint::Percentage(70), Constraint::Percentage(60)))
            .x_axis(
                Axis::default()
                    .title("iteration")
                    .bounds([x0, x1])
                    .labels(fit::labels(x0, x1, 2, |v| format!("{v:.0}"))),
            )
            .y_axis(
                Axis::default()
                    .bounds([y0, y1])
                    .labels(fit::labels(y0, y1, 2, show)),
            )
    };
    frame.render_widget(chart("Quantization loss (log)", |s| &s.1, true), left);
    frame.render_widget(chart("Validation perplexity", |s| &s.2, false), right);
}
