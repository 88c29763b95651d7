//! The Sparsity view: the kept fraction of the selected matrix by tile, as
//! soon as pruning starts, scaled to the panel, with a legend for the shades
//! and the four gate blocks of LSTM matrices labelled (i, f, g, o).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::empty;
use super::weights::{list_width, matrix_list};
use crate::ui::state::State;

const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
const GATES: [char; 4] = ['i', 'f', 'g', 'o'];

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_width(area)), Constraint::Min(20)]).areas(area);
    matrix_list(frame, left, state, true);
    let names = state.run.matrix_names();
    let report = names
        .get(state.selected)
        .and_then(|n| state.run.report(n))
        .filter(|m| !m.density.is_empty());
    let Some(m) = report else {
        empty(
            frame,
            right,
            "Density",
            "no pruning or quantization report of this matrix yet: the grid appears when pruning starts",
        );
        return;
    };
    let (gr, gc) = m.grid;
    // LSTM matrices stack the four gates' rows (docs/method.md §1).
    let gated = m.name.starts_with("lstm.") && m.rows % 4 == 0 && m.rows >= 4;
    let gutter = if gated { 2 } else { 0 };
    let inner_w = right.width.saturating_sub(2 + gutter) as usize;
    let inner_h = right.height.saturating_sub(3) as usize; // one line of legend
    let (h, w) = (inner_h.clamp(1, m.rows), inner_w.clamp(1, m.cols));
    let mut lines: Vec<Line> = Vec::with_capacity(h + 1);
    for y in 0..h {
        let mut spans = Vec::with_capacity(w + 1);
        if gated {
            // the screen rows where each gate's block of matrix rows starts
            let gate = y * 4 / h;
            let starts = y == 0 || (y - 1) * 4 / h != gate;
            let label = if starts { GATES[gate] } else { '│' };
            spans.push(Span::styled(format!("{label} "), Style::new().bold()));
        }
        let ty = (y * gr / h).min(gr - 1);
        let row: String = (0..w)
            .map(|x| {
                let tx = (x * gc / w).min(gc - 1);
                let d = m.density[ty * gc + tx];
                SHADES[((d * 4.0).round() as usize).min(4)]
            })
            .collect();
        spans.push(Span::styled(row, Style::new().fg(Color::Green)));
        lines.push(Line::from(spans));
    }
    lines.push(
        Line::from(vec![
            Span::raw("kept: "),
            Span::styled("' '", Style::new().fg(Color::Green)),
            Span::raw(" <13% "),
            Span::styled("░", Style::new().fg(Color::Green)),
            Span::raw(" <38% "),
            Span::styled("▒", Style::new().fg(Color::Green)),
            Span::raw(" <63% "),
            Span::styled("▓", Style::new().fg(Color::Green)),
            Span::raw(" <88% "),
            Span::styled("█", Style::new().fg(Color::Green)),
            Span::raw(" more"),
        ])
        .dim(),
    );
    let title = format!(
        " {} · {:.1}% zero · kept per tile ",
        m.name,
        m.sparsity * 100.0
    );
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(title)),
        right,
    );
}
