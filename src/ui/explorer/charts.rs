//! The explorer's charts: the Pareto screen (final test perplexity against
//! packed size, groups over seeds with ±1 s.d. bars) and the marked runs'
//! quantization loss and validation perplexity per iteration.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::model::Explorer;
use crate::record::format::bytes;
use crate::report::sweep::{group_label, pareto_front, Stat};
use crate::ui::view::{empty, fit};

/// A run's curves: its name, (iteration, log10 loss), (iteration, valid ppl).
type Curves = (String, Vec<(f64, f64)>, Vec<(f64, f64)>);

pub(super) fn pareto(frame: &mut Frame, area: Rect, e: &Explorer) {
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

pub(super) fn compare(frame: &mut Frame, area: Rect, e: &Explorer) {
    let mut chosen: Vec<usize> = (0..e.entries.len())
        .filter(|&i| e.marked.contains(&e.entries[i].unit.name))
        .collect();
    if chosen.is_empty() {
        chosen.extend(e.current());
    }
    let series = |i: usize| -> Curves {
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
    let chart = |title: &str, pick: fn(&Curves) -> &Vec<(f64, f64)>, log: bool| {
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
