//! Screens of the dashboard at 80×24 and 120×40, drawn from a recorded run
//! (`tests/fixtures/runs/smoke/events.jsonl`, a real run of
//! `experiments/smoke.ron`), compared with insta snapshots.
//!
//! The records are a fixture, not a fresh run, so a change in the arithmetic
//! never touches these screens: only a change in what the dashboard draws
//! does. CONTRIBUTING.md says how to record the fixture again when the event
//! format changes.

use iq_tui::record::{Event, ModelTag, Record, RunView};
use iq_tui::ui::keymap::Keymap;
use iq_tui::ui::state::{State, View};
use iq_tui::ui::update::{update, Action};
use iq_tui::ui::view::draw;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn records() -> Vec<Record> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runs/smoke/events.jsonl");
    iq_tui::store::read_events(&path).expect("the fixture reads with today's event format")
}

fn state(read_only: bool, keymap: &Keymap, records: &[Record]) -> State {
    let mut state = State::new(read_only, keymap.describe());
    state.run = RunView::from_records(records);
    state
}

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
    out
}

#[test]
fn every_view_at_two_sizes() {
    let mut state = state(true, &Keymap::default(), &records());
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
    // the state just after the first quantization iteration was recorded
    let cut = records
        .iter()
        .position(|r| {
            matches!(
                &r.event,
                Event::Quantized {
                    model: ModelTag::Iteration { j: 1 },
                    ..
                }
            )
        })
        .unwrap();
    let mut state = state(false, &Keymap::default(), &records[..=cut]);
    state.run.apply(&Record {
        t: 0.0,
        event: Event::Paused,
    });
    let s = screen(&state, 80, 24);
    assert!(s.lines().next().unwrap().contains("PAUSED"), "{s}");
    insta::assert_snapshot!("paused_80x24", s);
    update(&mut state, Action::Quit);
    insta::assert_snapshot!("confirm_quit_80x24", screen(&state, 80, 24));
}

#[test]
fn the_footer_names_the_keys_of_the_keymap_in_force() {
    let keymap = Keymap::parse(
        std::path::Path::new("keymap.ron"),
        r#"{ TogglePause: ["x"], Quit: ["f10"] }"#,
    )
    .unwrap();
    let records = records();
    let state = state(false, &keymap, &records[..records.len() / 2]);
    let s = screen(&state, 120, 40);
    let footer = s.lines().last().unwrap();
    assert!(footer.contains("x pause"), "{footer}");
    assert!(footer.contains("F10 quit"), "{footer}");
    assert!(!footer.contains("p pause"), "{footer}");
}
