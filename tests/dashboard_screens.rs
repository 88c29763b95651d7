//! Screens of the dashboard at 80×24, 120×40 and 200×60 in every phase,
//! drawn from a recorded run
//! (`tests/fixtures/runs/smoke/events.jsonl`, a real run of
//! `experiments/smoke.ron`), compared with insta snapshots.
//!
//! The records are a fixture, not a fresh run, so a change in the arithmetic
//! never touches these screens: only a change in what the dashboard draws
//! does. CONTRIBUTING.md says how to record the fixture again when the event
//! format changes.

mod common;
use iq_tui::record::{Event, ModelTag, Record, RunView};
use iq_tui::ui::keymap::Keymap;
use iq_tui::ui::state::{State, View};
use iq_tui::ui::update::{update, Action};
use iq_tui::ui::view::draw;

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
    common::render(w, h, |f| draw(f, state))
}

/// Where the fixture's records are cut to show the run in each phase: the
/// first record that matches, and how many records after it to keep.
fn cut_at(records: &[Record], phase: &str) -> usize {
    let find = |f: &dyn Fn(&Event) -> bool| {
        records
            .iter()
            .position(|r| f(&r.event))
            .unwrap_or_else(|| panic!("the fixture has no record for {phase}"))
    };
    match phase {
        // mid pre-training: the second epoch under way
        "pretrain" => find(&|e| matches!(e, Event::EpochStarted { epoch: 2, .. })) + 40,
        // pruning: the first mask installed and some retraining with it
        "prune" => find(&|e| matches!(e, Event::Pruned { .. })) + 60,
        // retraining in iteration 2
        "retrain" => {
            find(&|e| {
                matches!(
                    e,
                    Event::Quantized {
                        model: ModelTag::Iteration { j: 2 },
                        ..
                    }
                )
            }) + 30
        }
        "end" => records.len(),
        _ => unreachable!(),
    }
}

#[test]
fn every_view_in_every_phase_at_three_sizes() {
    let records = records();
    for phase in ["pretrain", "prune", "retrain", "end"] {
        let cut = cut_at(&records, phase).min(records.len());
        let mut state = state(phase == "end", &Keymap::default(), &records[..cut]);
        state.selected = 1; // lstm.0.w_ih: pruned, quantized, gated
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            for view in View::ALL {
                state.view = view;
                insta::assert_snapshot!(
                    format!("{phase}_{:?}_{w}x{h}", view).to_lowercase(),
                    screen(&state, w, h)
                );
            }
        }
    }
}

#[test]
fn help_and_the_weights_distribution() {
    let mut state = state(true, &Keymap::default(), &records());
    update(&mut state, Action::Help);
    insta::assert_snapshot!("help_80x24", screen(&state, 80, 24));
    update(&mut state, Action::Help); // closes
    state.view = View::Weights;
    update(&mut state, Action::ToggleDistribution);
    insta::assert_snapshot!("distribution_120x40", screen(&state, 120, 40));
}

/// Every number of the perplexity table is on the 80-column screen whole,
/// or its column is not there at all: a column is never cut.
#[test]
fn no_number_is_cut_at_80_columns() {
    let records = records();
    let state = state(true, &Keymap::default(), &records);
    let s = screen(&state, 80, 24);
    let table: Vec<&str> = s.lines().skip(4).take(12).collect();
    for row in &state.run.table {
        let line = table
            .iter()
            .find(|l| {
                l.contains(&format!("│{} ", row.label)) || l.contains(&format!("│{}", row.label))
            })
            .unwrap_or_else(|| panic!("row `{}` is on the screen whole\n{s}", row.label));
        if let Some(test) = row.test {
            assert!(
                line.contains(&format!("{test:.1}")),
                "test of `{}` is whole: {line}",
                row.label
            );
        }
    }
    assert!(s.contains("one-shot alternating"), "{s}");
    // the status line says what the run delivered, not a step count
    let status = s.lines().nth(1).unwrap();
    assert!(status.contains("final test ppl"), "{status}");
    assert!(!status.contains("ETA"), "{status}");
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
    update(&mut state, Action::Cancel);
    update(&mut state, Action::Stop);
    insta::assert_snapshot!("confirm_stop_80x24", screen(&state, 80, 24));
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
