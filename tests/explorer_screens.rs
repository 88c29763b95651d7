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

#[test]
fn a_slurm_sweep_shows_each_cells_state_and_job() {
    use iq_tui::slurm::queue::{parse_squeue, Snapshot};
    use iq_tui::slurm::record::SeenCache;
    use iq_tui::slurm::{status::views, Board, SlurmRecord};
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweeps/recorded");
    let mut e = fixture();
    asks(&mut e, &[Ask::ToggleGroups]);
    let state = iq_tui::sweep::SweepState::read(&dir).unwrap();
    let record: SlurmRecord = serde_json::from_value(serde_json::json!({
        "options": {"partition": null, "time": null, "cpus_per_task": 1, "mem": "400M",
                    "max_running": 2, "sbatch_args": []},
        "executable": "/usr/local/bin/iq-tui",
        "submissions": [
            {"job": "41", "stage": "pretrain", "indices": [0, 1], "command": [], "submitted": ""},
            {"job": "42", "stage": "cells", "indices": [0, 1, 2, 3], "command": [], "submitted": ""}
        ]
    }))
    .unwrap();
    // The last cell stopped with a checkpoint and its task waits again.
    let snapshot = Snapshot {
        tasks: parse_squeue("42_0|COMPLETED|None\n42_1|COMPLETED|None\n42_3|PENDING|Priority\n"),
        squeue: true,
        sacct: false,
        note: None,
    };
    let units = views(
        &dir,
        &state,
        Some(&record),
        &snapshot,
        &SeenCache::default(),
    );
    iq_tui::ui::explorer::show_scheduler(
        &mut e,
        &Board {
            units,
            record: Some(record),
            snapshot,
        },
    );
    let shown: Vec<&str> = e
        .entries
        .iter()
        .map(|x| x.scheduler.as_deref().unwrap())
        .collect();
    assert_eq!(
        shown,
        [
            "FINISHED 42_0",
            "FINISHED 42_1",
            "FINISHED 42_2",
            "PENDING 42_3"
        ]
    );
    insta::assert_snapshot!("slurm_cells_120x30", screen(&e, 120, 30));
}
