//! Fitting text to the cells it has: tables whose columns drop in order of
//! importance instead of cutting numbers, status lines that drop their last
//! parts, and numbers short enough for an axis.

use ratatui::layout::Constraint;
use ratatui::style::{Style, Stylize};
use ratatui::widgets::{Block, Row, Table};

/// One column of a table: its header, its cells, and how much it matters
/// (0 is kept first).
pub struct Column {
    pub header: String,
    pub cells: Vec<String>,
    pub priority: u8,
}

impl Column {
    pub fn new(header: &str, priority: u8, cells: Vec<String>) -> Self {
        Self {
            header: header.into(),
            cells,
            priority,
        }
    }

    fn width(&self) -> u16 {
        self.cells
            .iter()
            .map(|c| c.chars().count())
            .chain([self.header.chars().count()])
            .max()
            .unwrap_or(0) as u16
    }
}

/// The columns that fit in `width` cells whole (one space between two),
/// taken by priority and shown in their own order; the first column is
/// always kept.
pub fn fit(columns: Vec<Column>, width: u16) -> Vec<Column> {
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| (columns[i].priority, i));
    let mut used = 0u16;
    let mut keep = vec![false; columns.len()];
    for (n, &i) in order.iter().enumerate() {
        let w = columns[i].width() + if n == 0 { 0 } else { 1 };
        if n == 0 || used + w <= width {
            keep[i] = true;
            used += w;
        }
    }
    columns
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

/// A table of the columns that fit inside `block` at `width` cells (the
/// block's borders included); `styles` gives each row's style.
pub fn table<'a>(
    columns: Vec<Column>,
    width: u16,
    styles: &[Style],
    block: Block<'a>,
) -> Table<'a> {
    let columns = fit(columns, width.saturating_sub(2));
    let rows = styles.len();
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|c| Constraint::Length(c.width()))
        .collect();
    let header = Row::new(columns.iter().map(|c| c.header.clone())).style(Style::new().bold());
    let body: Vec<Row> = (0..rows)
        .map(|r| {
            Row::new(
                columns
                    .iter()
                    .map(|c| c.cells.get(r).cloned().unwrap_or_default()),
            )
            .style(styles[r])
        })
        .collect();
    Table::new(body, widths).header(header).block(block)
}

/// `parts` joined with ` · `, dropping the last ones until the line fits.
pub fn parts(parts: &[String], width: usize) -> String {
    let mut n = parts.len();
    loop {
        let line = parts[..n].join(" · ");
        if n <= 1 || line.chars().count() <= width {
            return line;
        }
        n -= 1;
    }
}

/// A number for an axis label: three significant figures, scientific when
/// small, so a loss of 0.0004 is not shown as 0.000.
pub fn axis(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-2..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Evenly spaced labels over `[lo, hi]`, `n` of them, shown through `show`.
pub fn labels(lo: f64, hi: f64, n: usize, show: impl Fn(f64) -> String) -> Vec<String> {
    let n = n.max(2);
    (0..n)
        .map(|i| show(lo + (hi - lo) * i as f64 / (n - 1) as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_drop_by_priority_and_keep_their_order() {
        let cols = vec![
            Column::new("model", 0, vec!["one-shot alternating".into()]),
            Column::new("valid", 5, vec!["123.4".into()]),
            Column::new("test", 1, vec!["120.1".into()]),
        ];
        let kept: Vec<String> = fit(cols, 27).into_iter().map(|c| c.header).collect();
        assert_eq!(kept, ["model", "test"]);
    }

    #[test]
    fn a_status_line_drops_its_last_parts_and_axis_numbers_stay_readable() {
        let p = ["a".to_string(), "bb".into(), "ccc".into()];
        assert_eq!(parts(&p, 8), "a · bb");
        assert_eq!(parts(&p, 1), "a");
        assert_eq!(axis(0.0004), "4.0e-4");
        assert_eq!(axis(648.3), "648");
        assert_eq!(axis(0.25), "0.250");
    }
}
