//! Screens of the dashboard at 80×24 and 120×40, driven by the records of a
//! real (tiny) run, compared with insta snapshots.

use iq_tui::engine::{self, Control, Record, RunContext};
use iq_tui::experiment;
use iq_tui::ui::state::{State, View};
use iq_tui::ui::update::{update, Action};
use iq_tui::ui::view::draw;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Records of the smoke experiment, run in-process (deterministic).
fn records() -> Vec<Record> {
    // The numbers on screen depend on summation order, which differs between
    // GEMM backends: pin the built-in one (read at the first product) so the
    // snapshots hold with or without OpenBLAS installed.
    std::env::set_var(iq_tui::model::GEMM_BACKEND_VAR, "builtin");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let e = experiment::load(&root.join("experiments/smoke.ron"), &[]).unwrap();
    let corpus = iq_tui::data::load(&e.data, e.seed).unwrap();
    let mut all = Vec::new();
    let mut keep = |r: &Record| all.push(r.clone());
    let control = Control::new();
    engine::run(
        &e,
        &corpus,
        &RunContext::default(),
        vec![&mut keep],
        &control,
    );
    all
}

/// Renders with times and throughputs, which vary run to run, masked.
fn screen(state: &State, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| draw(f, state)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    mask_timings(&out)
}

/// Masks `12345 tok/s` and `ETA 1m02s` (the only timing-dependent text) and
/// the length of the rule after them.
fn mask_timings(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        for i in 0..words.len() {
            if i + 1 < words.len() && words[i + 1].starts_with("tok/s") {
                words[i] = "N".into();
            }
            if i > 0 && words[i - 1] == "ETA" {
                words[i] = "T".into();
            }
        }
        let mut line = words.join(" ");
        if line.contains("tok/s") {
            // the rule that fills the status line is as long as the masked
            // text left room for, so it varies with the number's width too
            let kept = line.trim_end_matches('─').trim_end().len();
            if kept < line.len() {
                line.truncate(kept);
                line.push_str(" ─…");
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn every_view_at_two_sizes() {
    let records = records();
    let mut state = State::new(true);
    for r in &records {
        state.run.apply(r);
    }
    for (w, h) in [(80, 24), (120, 40)] {
        for view in View::ALL {
            state.view = view;
            insta::assert_snapshot!(
                format!("{:?}_{w}x{h}", view).to_lowercase(),
                screen(&state, w, h)
            );
        }
    }
    state.view = View::Overview;
    update(&mut state, Action::Help);
    insta::assert_snapshot!("help_80x24", screen(&state, 80, 24));
}

#[test]
fn paused_and_confirm_quit_screens() {
    let records = records();
    let mut state = State::new(false);
    // the state just after the first quantization iteration was recorded
    let cut = records
        .iter()
        .position(|r| {
            matches!(
                &r.event,
                iq_tui::engine::Event::Quantized {
                    model: iq_tui::engine::ModelTag::Iteration { j: 1 },
                    ..
                }
            )
        })
        .unwrap();
    for r in &records[..=cut] {
        state.run.apply(r);
    }
    state.run.apply(&Record {
        t: 0.0,
        event: iq_tui::engine::Event::Paused,
    });
    let s = screen(&state, 80, 24);
    assert!(s.lines().next().unwrap().contains("PAUSED"), "{s}");
    insta::assert_snapshot!("paused_80x24", s);
    update(&mut state, Action::Quit);
    insta::assert_snapshot!("confirm_quit_80x24", screen(&state, 80, 24));
}
