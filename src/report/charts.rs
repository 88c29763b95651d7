//! Charts for reports, drawn with plotters as SVG and PNG from the same code.
//! Text uses a bundled DejaVu Sans, so PNGs look the same on any machine.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use crate::record::series::HistogramSet;

pub(super) const FONT: &str = "sans-serif";
pub(super) const SIZE: (u32, u32) = (1100, 560);

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes)
            .unwrap_or_else(|_| panic!("the bundled font parses"));
    });
}

/// Distinct colours for overlaid lines (Tableau 10).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub markers: bool,
}

#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Plot log10(y), labelled with the real values.
    pub log_y: bool,
    pub lines: Vec<Line>,
    /// Horizontal reference lines: (label, y, colour).
    pub references: Vec<(String, f64, RGBColor)>,
    /// Ticks on whole numbers only (epochs, iterations).
    pub integer_x: bool,
    /// An x value labelled by name instead of its number (the final model).
    pub named_x: Option<(f64, String)>,
}

pub(super) type DrawResult = Result<(), String>;

pub(super) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// What a chart draws; written once as SVG and once as PNG (`<stem>.svg`,
/// `<stem>.png`) by the same generic drawing function.
pub(super) struct Both<F>(pub F);

impl<F> Both<F> {
    pub(super) fn save(
        self,
        stem: &Path,
        size: (u32, u32),
        svg: impl Fn(&F, &DrawingArea<SVGBackend, Shift>) -> DrawResult,
        png: impl Fn(&F, &DrawingArea<BitMapBackend, Shift>) -> DrawResult,
    ) -> Result<Vec<PathBuf>, String> {
        ensure_font();
        let svg_path = stem.with_extension("svg");
        let png_path = stem.with_extension("png");
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            svg(&self.0, &root)?;
            root.present().map_err(err)?;
        }
        crate::atomic::write(&svg_path, text.as_bytes())
            .map_err(|e| format!("{}: {e}", svg_path.display()))?;
        crate::atomic::write_via(
            &png_path,
            |tmp| {
                let root = BitMapBackend::new(tmp, size).into_drawing_area();
                root.fill(&WHITE).map_err(err)?;
                png(&self.0, &root)?;
                root.present().map_err(err)
            },
            |e| format!("{}: {e}", png_path.display()),
        )?;
        Ok(vec![svg_path, png_path])
    }
}

pub(super) fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

pub(super) fn padded(lo: f64, hi: f64, fraction: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1e-9);
    (lo - span * fraction, hi + span * fraction)
}

pub fn line_chart(stem: &Path, chart: &LineChart) -> Result<Vec<PathBuf>, String> {
    Both(chart).save(stem, SIZE, |c, a| draw_lines(a, c), |c, a| draw_lines(a, c))
}

/// A linear f64 axis whose ticks are exactly `ticks` (see `report::ticks`).
#[derive(Clone)]
pub(super) struct Ticked {
    inner: plotters::coord::types::RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    pub(super) fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Self {
            inner: (lo..hi).into(),
            ticks,
        }
    }
}

impl plotters::coord::ranged1d::Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

impl plotters::coord::ranged1d::ValueFormatter<f64> for Ticked {
    fn format(value: &f64) -> String {
        tick_label(*value)
    }
}

/// A value as a tick label: short, and never rounded to zero.
pub(super) fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.0e}");
        s.replace("e", "×10^")
    } else if (v - v.round()).abs() < 1e-9 * a.max(1.0) {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `text` in lines of at most `width` characters, broken between words
/// (a word longer than that gets a line of its own).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width.max(1) => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// How a key lays out its entries.
#[derive(Clone, Copy)]
pub(super) enum KeyLayout {
    /// Top to bottom, beside a plot.
    Column,
    /// Left to right, above a set of panels.
    Row,
}

/// A key, never over the data: a stroke of colour (dashed for reference
/// lines) and the name of each series.
pub(super) fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
    layout: KeyLayout,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = TextStyle::from((FONT, 15).into_font()).color(&BLACK);
    let (mut x, mut y) = match layout {
        KeyLayout::Column => (8, 70),
        KeyLayout::Row => (20, 12),
    };
    for (label, color, dashed) in entries {
        let stroke = color.stroke_width(2);
        let dashes: &[(i32, i32)] = if *dashed {
            &[(0, 6), (12, 18)]
        } else {
            &[(0, 20)]
        };
        for &(a, b) in dashes {
            area.draw(&PathElement::new(vec![(x + a, y), (x + b, y)], stroke))
                .map_err(err)?;
        }
        // Beside a plot, a long name wraps at words to the key's width.
        let lines = match layout {
            KeyLayout::Column => wrap_words(
                label,
                (area.dim_in_pixel().0 as usize).saturating_sub(x as usize + 36) / 8,
            ),
            KeyLayout::Row => vec![label.clone()],
        };
        for (i, line) in lines.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (x + 28, y - 8 + 19 * i as i32),
                style.clone(),
            ))
            .map_err(err)?;
        }
        match layout {
            KeyLayout::Column => y += 7 + 19 * lines.len() as i32,
            KeyLayout::Row => x += 40 + 8 * label.len() as i32,
        }
    }
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &LineChart) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let ty = |y: f64| if chart.log_y { y.max(1e-12).log10() } else { y };
    let xs = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| ty(p.1)))
        .chain(chart.references.iter().map(|r| ty(r.1)));
    let (Some((x0, x1)), Some((y0, y1))) = (bounds(xs), bounds(ys)) else {
        return Ok(());
    };
    let (x0, x1) = if x1 - x0 < 1e-9 {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0, x1)
    };
    let (x0, x1) = padded(x0, x1, 0.03);
    let (y0, y1) = padded(y0, y1, 0.08);
    let x_ticks = if chart.integer_x {
        super::ticks::integers(x0, x1, 12)
    } else {
        super::ticks::nice(x0, x1, 8)
    };
    let y_ticks = if chart.log_y {
        super::ticks::log10(y0, y1)
    } else {
        super::ticks::nice(y0, y1, 6)
    };
    let area = area.titled(&chart.title, (FONT, 24)).map_err(err)?;
    let (plot, legend_area) = area.split_horizontally(area.dim_in_pixel().0 * 70 / 100);
    let mut c = ChartBuilder::on(&plot)
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(76)
        .build_cartesian_2d(Ticked::new(x0, x1, x_ticks), Ticked::new(y0, y1, y_ticks))
        .map_err(err)?;
    let log = chart.log_y;
    let named = chart.named_x.clone();
    c.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(TRANSPARENT)
        .y_label_formatter(&|v| tick_label(if log { 10f64.powf(*v) } else { *v }))
        .x_label_formatter(&|v| match &named {
            Some((x, name)) if (v - x).abs() < 1e-9 => name.clone(),
            _ => tick_label(*v),
        })
        .draw()
        .map_err(err)?;
    let mut legend = Vec::new();
    for line in &chart.lines {
        let color = line.color;
        let points: Vec<(f64, f64)> = line.points.iter().map(|&(x, y)| (x, ty(y))).collect();
        if points.is_empty() {
            continue; // not named in the legend either
        }
        c.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?;
        if line.markers {
            c.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
        }
        legend.push((line.label.clone(), color, false));
    }
    // References at one value are drawn once and named together: a line
    // hidden under another would be named in the key and not seen.
    let mut references: Vec<(String, f64, RGBColor)> = Vec::new();
    for (label, y, color) in &chart.references {
        match references
            .iter_mut()
            .find(|r| (r.1 - y).abs() <= 1e-9 * y.abs().max(1e-12))
        {
            Some(r) => r.0 = format!("{} = {label}", r.0),
            None => references.push((label.clone(), *y, *color)),
        }
    }
    for (label, y, color) in &references {
        let y = ty(*y);
        c.draw_series(DashedLineSeries::new(
            vec![(x0, y), (x1, y)],
            8,
            5,
            color.stroke_width(2),
        ))
        .map_err(err)?;
        legend.push((label.clone(), *color, true));
    }
    draw_key(&legend_area, &legend, KeyLayout::Column)
}

/// One panel per matrix: the weight distribution before the first
/// quantization and after the last retraining, with the final levels.
pub fn histograms(
    stem: &Path,
    title: &str,
    pairs: &[(String, Option<HistogramSet>, Option<HistogramSet>)],
) -> Result<Vec<PathBuf>, String> {
    let cols = 2usize.min(pairs.len().max(1));
    let rows = pairs.len().div_ceil(cols).max(1);
    let size = (SIZE.0, 60 + rows as u32 * 300);
    Both((title, pairs)).save(
        stem,
        size,
        |(t, p), a| draw_histograms(a, t, p, rows, cols),
        |(t, p), a| draw_histograms(a, t, p, rows, cols),
    )
}

fn draw_histograms<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    pairs: &[(String, Option<HistogramSet>, Option<HistogramSet>)],
    rows: usize,
    cols: usize,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let area = area.titled(title, (FONT, 24)).map_err(err)?;
    // One key for every panel, above them, so no panel's data is covered.
    let (key, area) = area.split_vertically(28);
    draw_key(
        &key,
        &[
            ("before quantization".into(), PALETTE[0], false),
            ("after retraining".into(), PALETTE[1], false),
            ("quantization levels".into(), PALETTE[3], true),
        ],
        KeyLayout::Row,
    )?;
    let panels = area.split_evenly((rows, cols));
    let before_color = PALETTE[0];
    let after_color = PALETTE[1];
    let level_color = PALETTE[3];
    for ((name, before, after), panel) in pairs.iter().zip(panels.iter()) {
        let sets: Vec<&HistogramSet> = [before.as_ref(), after.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        let Some((range, beyond, total)) = bulk(&sets) else {
            continue;
        };
        let zeros = sets.iter().map(|h| h.sparsity).fold(0.0, f64::max);
        let mut caption = name.clone();
        if beyond > 0 {
            caption.push_str(&format!(
                " · {beyond} of {total} beyond the axis ({:.2}%)",
                beyond as f64 / total.max(1) as f64 * 100.0
            ));
        }
        if zeros > 0.0 {
            caption.push_str(&format!(" · {:.1}% pruned zeros not drawn", zeros * 100.0));
        }
        let fraction = |h: &HistogramSet| {
            let total = h.counts.iter().sum::<u64>().max(1) as f64;
            let width = (h.hi - h.lo) as f64 / h.counts.len().max(1) as f64;
            let mut pts = Vec::new();
            for (i, &c) in h.counts.iter().enumerate() {
                let x = h.lo as f64 + width * i as f64;
                let y = c as f64 / total;
                pts.push((x, y));
                pts.push((x + width, y));
            }
            pts
        };
        let y_max = sets
            .iter()
            .flat_map(|h| fraction(h).into_iter().map(|p| p.1))
            .fold(0.0, f64::max)
            .max(1e-6)
            * 1.1;
        let mut c = ChartBuilder::on(panel)
            .caption(&caption, (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(range.0..range.1, 0.0..y_max)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("weight value")
            .y_desc("fraction of non-zero weights")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(err)?;
        if let Some(h) = before {
            c.draw_series(LineSeries::new(fraction(h), before_color.stroke_width(2)))
                .map_err(err)?;
        }
        if let Some(h) = after {
            c.draw_series(LineSeries::new(fraction(h), after_color.stroke_width(2)))
                .map_err(err)?;
            for &l in &h.levels {
                c.draw_series(DashedLineSeries::new(
                    vec![(l as f64, 0.0), (l as f64, y_max)],
                    5,
                    4,
                    level_color.stroke_width(1),
                ))
                .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// The range holding 99.8 % of the weights of every set (bin edges), the
/// weights outside it and the weights in all; `None` when nothing is counted.
fn bulk(sets: &[&HistogramSet]) -> Option<((f64, f64), u64, u64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let (mut beyond, mut total) = (0u64, 0u64);
    for h in sets {
        let n: u64 = h.counts.iter().sum();
        if n == 0 {
            continue;
        }
        let width = (h.hi - h.lo) as f64 / h.counts.len() as f64;
        let tail = n / 1000;
        let (mut below, mut first) = (0u64, 0usize);
        while first < h.counts.len() && below + h.counts[first] <= tail {
            below += h.counts[first];
            first += 1;
        }
        let (mut above, mut last) = (0u64, h.counts.len());
        while last > first + 1 && above + h.counts[last - 1] <= tail {
            above += h.counts[last - 1];
            last -= 1;
        }
        lo = lo.min(h.lo as f64 + width * first as f64);
        hi = hi.max(h.lo as f64 + width * last as f64);
        total += n;
    }
    // Counted against the range all the sets share.
    for h in sets {
        let width = (h.hi - h.lo) as f64 / h.counts.len().max(1) as f64;
        for (i, &c) in h.counts.iter().enumerate() {
            let centre = h.lo as f64 + width * (i as f64 + 0.5);
            if centre < lo || centre > hi {
                beyond += c;
            }
        }
    }
    (total > 0 && lo < hi).then_some(((lo, hi), beyond, total))
}

/// A density grid: (matrix, overall sparsity, tiles rows × cols, values).
pub type Grid = (String, f64, (usize, usize), Vec<f32>);

/// One heatmap per matrix: the fraction of weights kept per tile.
pub fn heatmaps(stem: &Path, title: &str, grids: &[Grid]) -> Result<Vec<PathBuf>, String> {
    let cols = 2usize.min(grids.len().max(1));
    let rows = grids.len().div_ceil(cols).max(1);
    let size = (SIZE.0 + 90, 60 + rows as u32 * 260);
    Both((title, grids)).save(
        stem,
        size,
        |(t, g), a| draw_heatmaps(a, t, g, rows, cols),
        |(t, g), a| draw_heatmaps(a, t, g, rows, cols),
    )
}

fn draw_heatmaps<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    grids: &[Grid],
    rows: usize,
    cols: usize,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let area = area.titled(title, (FONT, 24)).map_err(err)?;
    let (main, bar) = area.split_horizontally(area.dim_in_pixel().0 as i32 - 90);
    for ((name, sparsity, (gr, gc), values), panel) in
        grids.iter().zip(main.split_evenly((rows, cols)).iter())
    {
        let mut c = ChartBuilder::on(panel)
            .caption(
                format!("{name}: {:.1} % zeros", sparsity * 100.0),
                (FONT, 16),
            )
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(0..*gc, 0..*gr)
            .map_err(err)?;
        c.configure_mesh()
            .disable_mesh()
            .x_desc("input tile")
            .y_desc("output tile")
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()
            .map_err(err)?;
        c.draw_series(values.iter().enumerate().map(|(i, &d)| {
            let (r, col) = (i / gc, i % gc);
            let color = ViridisRGB::get_color(d.clamp(0.0, 1.0));
            Rectangle::new([(col, gr - r - 1), (col + 1, gr - r)], color.filled())
        }))
        .map_err(err)?;
    }
    // Colour scale: fraction of weights kept in a tile.
    let mut c = ChartBuilder::on(&bar)
        .margin_top(40)
        .margin_bottom(40)
        .y_label_area_size(40)
        .build_cartesian_2d(0..1, 0.0..1.0)
        .map_err(err)?;
    c.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("fraction kept")
        .label_style((FONT, 11))
        .axis_desc_style((FONT, 12))
        .draw()
        .map_err(err)?;
    c.draw_series((0..50).map(|i| {
        let v = i as f64 / 50.0;
        Rectangle::new(
            [(0, v), (1, v + 0.02)],
            ViridisRGB::get_color(v as f32).filled(),
        )
    }))
    .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wrap_words;

    #[test]
    fn key_names_wrap_between_words() {
        assert_eq!(
            wrap_words("one-shot greedy (no retraining) = one-shot alternating", 20),
            [
                "one-shot greedy (no",
                "retraining) =",
                "one-shot alternating"
            ]
        );
        assert_eq!(wrap_words("short", 20), ["short"]);
    }
}
