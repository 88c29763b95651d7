//! Runs that go wrong on their own: a diverging run ends as a failure that
//! says where and what to change, and leaves a run directory that every
//! reader still reads.

mod common;
use common::{iq_tui, text};

#[test]
fn a_diverging_run_fails_with_directions_and_stays_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--out",
        dir.to_str().unwrap(),
        "--set",
        "training.lr=1000000",
        "--set",
        "training.clip=None",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("training diverged at pre-training epoch 1"),
        "{err}"
    );
    assert!(err.contains("training.clip"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let records = iq_tui::store::read_events(&dir.join("events.jsonl")).unwrap();
    assert!(matches!(
        records.last().unwrap().event,
        iq_tui::record::Event::Failed { .. }
    ));
    let exported = tmp.path().join("export");
    let o = iq_tui(&[
        "export",
        dir.to_str().unwrap(),
        "--to",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report = std::fs::read_to_string(exported.join("report.md")).unwrap();
    assert!(report.contains("diverged"), "{report}");
}
