//! Screens of the explorer at 80×24 and 120×30, drawn from a recorded sweep
//! (`tests/fixtures/sweeps/recorded/`, a real sweep of
//! `tests/fixtures/sweeps/seeds.ron` killed during its last cell;
//! `scripts/record-sweep-fixture.sh` records it again), compared with insta
//! snapshots.

mod common;
use iq_tui::ui::explorer::model::{Ask, Explorer};
use iq_tui::ui::explorer::{load, view};

fn fixture() -> Explorer {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweeps/recorded");
    load(&dir).expect("the fixture sweep reads")
}

fn screen(e: &Explorer, w: u16, h: u16) -> String {
    common::render(w, h, |f| view::draw(f, e))
}

fn asks(e: &mut Explorer, asks: &[Ask]) {
    for a in asks {
        e.update(a.clone());
    }
}

#[test]
fn the_fixture_is_what_the_screens_say_it_is() {
    let e = fixture();
    let states: Vec<&str> = e.entries.iter().map(|x| x.status.label()).collect();
    assert_eq!(states, ["finished", "finished", "finished", "stopped"]);
    assert!(e.grouped, "cells that differ only in seed open grouped");
    assert_eq!(e.pretraining, (2, 2));
}

#[test]
fn groups_over_seeds() {
    let e = fixture();
    insta::assert_snapshot!("groups_80x24", screen(&e, 80, 24));
    insta::assert_snapshot!("groups_120x30", screen(&e, 120, 30));
}

#[test]
fn cells_sorted_filtered_and_marked() {
    let mut e = fixture();
    asks(&mut e, &[Ask::ToggleGroups]);
    insta::assert_snapshot!("cells_80x24", screen(&e, 80, 24));
    // sort by final test perplexity, best first; mark the two best
    let final_test = e
        .columns()
        .iter()
        .position(|c| c.header == "final test")
        .unwrap();
    for _ in 0..final_test {
        e.update(Ask::NextSort);
    }
    asks(&mut e, &[Ask::Mark, Ask::Mark]);
    insta::assert_snapshot!("cells_sorted_marked_120x30", screen(&e, 120, 30));
    asks(
        &mut e,
        &[
            Ask::StartFilter,
            Ask::Type('s'),
            Ask::Type('t'),
            Ask::Type('o'),
        ],
    );
    insta::assert_snapshot!("cells_filtering_120x30", screen(&e, 120, 30));
}

#[test]
fn pareto_and_marked_runs() {
    let mut e = fixture();
    asks(&mut e, &[Ask::NextScreen]);
    insta::assert_snapshot!("pareto_80x24", screen(&e, 80, 24));
    insta::assert_snapshot!("pareto_120x30", screen(&e, 120, 30));
    asks(
        &mut e,
        &[
            Ask::PrevScreen,
            Ask::ToggleGroups,
            Ask::Mark,
            Ask::Mark,
            Ask::NextScreen,
            Ask::NextScreen,
        ],
    );
    insta::assert_snapshot!("marked_120x30", screen(&e, 120, 30));
}
