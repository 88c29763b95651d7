//! Draws the dashboard of a recorded run into a PNG, cell by cell, with the
//! bundled font: the README's screenshot comes from a real run this way.
//!
//! ```sh
//! cargo run --release -- run experiments/demo.ron --headless --out runs/demo
//! cargo run --release --example screenshot -- runs/demo docs/screenshot.png
//! ```

use std::path::PathBuf;

use iq_tui::record::RunView;
use iq_tui::ui::keymap::Keymap;
use iq_tui::ui::state::State;
use iq_tui::ui::view::draw;
use plotters::prelude::*;
use plotters::style::{Color as _, FontStyle};
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

const COLS: u16 = 120;
const ROWS: u16 = 36;
const CELL: (i32, i32) = (9, 19);
const FONT: &str = "iq-tui-screenshot";

fn rgb(c: Color, default: RGBColor) -> RGBColor {
    match c {
        Color::Reset => default,
        Color::Black => RGBColor(0, 0, 0),
        Color::Red => RGBColor(205, 49, 49),
        Color::Green => RGBColor(13, 188, 121),
        Color::Yellow => RGBColor(229, 229, 16),
        Color::Blue => RGBColor(36, 114, 200),
        Color::Magenta => RGBColor(188, 63, 188),
        Color::Cyan => RGBColor(17, 168, 205),
        Color::Gray => RGBColor(204, 204, 204),
        Color::DarkGray => RGBColor(118, 118, 118),
        Color::LightRed => RGBColor(241, 76, 76),
        Color::LightGreen => RGBColor(35, 209, 139),
        Color::LightYellow => RGBColor(245, 245, 67),
        Color::LightBlue => RGBColor(59, 142, 234),
        Color::LightMagenta => RGBColor(214, 112, 214),
        Color::LightCyan => RGBColor(41, 184, 219),
        Color::White => RGBColor(242, 242, 242),
        Color::Rgb(r, g, b) => RGBColor(r, g, b),
        Color::Indexed(_) => default,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(run), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: screenshot RUN_DIR OUT.png");
        std::process::exit(2);
    };
    let records = iq_tui::store::read_events(&PathBuf::from(run).join("events.jsonl"))?;
    let mut state = State::new(true, Keymap::default().describe());
    state.run = RunView::from_records(&records);
    let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS))?;
    terminal.draw(|f| draw(f, &state))?;
    let buffer = terminal.backend().buffer().clone();

    let font: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
    plotters::style::register_font(FONT, FontStyle::Normal, font)
        .map_err(|_| "the bundled font does not parse")?;
    let size = (
        (COLS as i32 * CELL.0) as u32 + 16,
        (ROWS as i32 * CELL.1) as u32 + 16,
    );
    let root = BitMapBackend::new(&out, size).into_drawing_area();
    let (fg0, bg0) = (RGBColor(220, 220, 220), RGBColor(24, 24, 28));
    root.fill(&bg0)?;
    for y in 0..ROWS {
        for x in 0..COLS {
            let cell = &buffer[(x, y)];
            let (mut fg, mut bg) = (rgb(cell.fg, fg0), rgb(cell.bg, bg0));
            if cell.modifier.contains(Modifier::REVERSED) {
                std::mem::swap(&mut fg, &mut bg);
            }
            if cell.modifier.contains(Modifier::DIM) {
                fg = RGBColor(fg.0 / 2 + 20, fg.1 / 2 + 20, fg.2 / 2 + 20);
            }
            let (px, py) = (8 + x as i32 * CELL.0, 8 + y as i32 * CELL.1);
            if bg != bg0 {
                root.draw(&Rectangle::new(
                    [(px, py), (px + CELL.0, py + CELL.1)],
                    bg.filled(),
                ))?;
            }
            let symbol = cell.symbol();
            if symbol.trim().is_empty() {
                continue;
            }
            let style = (FONT, 15.0).into_font().color(&fg);
            root.draw(&Text::new(symbol.to_string(), (px, py + 1), style))?;
        }
    }
    root.present()?;
    println!("wrote {out}");
    Ok(())
}
