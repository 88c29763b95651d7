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

/// Runs `iq-tui args` and checks it is refused as bad input with a message
/// that contains `says`, without a panic.
fn refused(args: &[&str], says: &str) {
    let o = iq_tui(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}: {err}", args.join(" "));
    assert!(err.contains(says), "{}: {err}", args.join(" "));
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sizes_that_cannot_fit_are_refused_before_anything_is_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out = out.to_str().unwrap();
    for set in [
        "model.hidden=100000",
        "data.train_tokens=100000000000",
        "eval.batch_size=100000000",
    ] {
        refused(
            &[
                "run",
                "experiments/smoke.ron",
                "--headless",
                "--out",
                out,
                "--set",
                set,
            ],
            "--force",
        );
    }
    assert!(!tmp.path().join("run").exists(), "nothing was created");
    refused(
        &[
            "validate",
            "experiments/smoke.ron",
            "--set",
            "training.batch_size=9223372036854775808",
        ],
        "does not fit in any corpus",
    );
    // found by tests/fuzz.rs: matrix names were listed for every layer
    refused(
        &[
            "validate",
            "experiments/smoke.ron",
            "--set",
            "model.layers=4294967296",
        ],
        "model.layers",
    );
    let o = iq_tui(&["validate", "experiments/smoke.ron"]);
    let said = text(&o.stdout);
    assert!(
        said.contains("parameters: ") && said.contains("estimated peak memory"),
        "{said}"
    );
}

#[test]
fn a_set_path_with_an_empty_field_is_refused_at_once() {
    for set in ["=1", ".=1", "training..epochs=1"] {
        refused(
            &["validate", "experiments/smoke.ron", "--set", set],
            "empty",
        );
    }
}

#[test]
fn an_experiment_file_with_a_byte_order_mark_reads_like_one_without() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bom.ron");
    let smoke = std::fs::read_to_string(common::root().join("experiments/smoke.ron")).unwrap();
    std::fs::write(&file, format!("\u{feff}{smoke}")).unwrap();
    let o = iq_tui(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn a_npy_header_larger_than_its_file_is_refused_without_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("huge.npy");
    std::fs::write(&file, common::npy_header("(4294967296, 4294967296)")).unwrap();
    refused(
        &["quantize", file.to_str().unwrap()],
        "more than the file's",
    );
}

#[test]
fn one_writer_per_run_directory_and_the_lock_goes_with_a_killed_process() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut first = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(["run", "experiments/smoke.ron", "--headless", "--out"])
        .arg(&dir)
        .args(["--set", "training.epochs=40"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IQ_TUI_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // until its first checkpoint is on disk
    let start = std::time::Instant::now();
    while std::fs::read_dir(dir.join("checkpoints")).map_or(true, |d| d.count() == 0) {
        assert!(start.elapsed().as_secs() < 60, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = iq_tui(&["resume", dir.to_str().unwrap(), "--headless"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("in use by process {}", first.id())),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // the kernel let go of the lock with the process
    iq_tui::store::lock::RunLock::acquire(&dir).expect("free once its holder is gone");
}

#[test]
fn a_run_never_writes_into_a_directory_that_holds_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    refused(
        &[
            "run",
            "experiments/smoke.ron",
            "--headless",
            "--out",
            dir.to_str().unwrap(),
        ],
        "is not empty",
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn a_closed_standard_output_stops_a_run_with_a_checkpoint_instead_of_killing_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(["run", "experiments/smoke.ron", "--headless", "--out"])
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IQ_TUI_OFFLINE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read one line, then close the pipe, as `| head -1` does
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
    let records = iq_tui::store::read_events(&dir.join("events.jsonl")).unwrap();
    assert!(matches!(
        records.last().unwrap().event,
        iq_tui::record::Event::Stopped { .. }
    ));
    let o = iq_tui(&["resume", dir.to_str().unwrap(), "--headless"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn resume_without_an_intact_checkpoint_says_what_it_found_and_needs_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    common::run_smoke(
        &dir,
        &["--set", "quantization=None", "--set", "pruning=None"],
    );
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    std::fs::remove_dir_all(dir.join("checkpoints")).unwrap();
    let before = std::fs::read(dir.join("events.jsonl")).unwrap();
    refused(
        &["resume", dir.to_str().unwrap(), "--headless"],
        "--restart",
    );
    let o = iq_tui(&["resume", dir.to_str().unwrap(), "--headless"]);
    assert!(text(&o.stderr).contains("epoch 2"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(dir.join("events.jsonl")).unwrap(), before);
    let o = iq_tui(&["resume", dir.to_str().unwrap(), "--headless", "--restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn export_model_never_writes_its_two_files_to_one_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.safetensors");
    refused(
        &[
            "export-model",
            "tests/fixtures/runs/smoke",
            "--out",
            out.to_str().unwrap(),
        ],
        ".iqpk",
    );
    assert!(!out.exists());
}

#[test]
fn a_record_cut_short_of_the_end_its_summary_proves_is_reported_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = common::root().join("tests/fixtures/runs/smoke");
    for name in ["summary.json", "experiment.ron"] {
        std::fs::copy(fixture.join(name), dir.join(name)).unwrap();
    }
    let events = std::fs::read_to_string(fixture.join("events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    std::fs::write(
        dir.join("events.jsonl"),
        lines[..lines.len() / 2].join("\n") + "\n",
    )
    .unwrap();
    let to = tmp.path().join("export");
    let o = iq_tui(&[
        "export",
        dir.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("events.jsonl ends before"),
        "{}",
        text(&o.stderr)
    );
    let report = std::fs::read_to_string(to.join("report.md")).unwrap();
    assert!(report.contains("**Warning:**"), "{report}");
}

#[test]
fn a_directory_of_runs_opens_in_the_explorer_which_needs_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    refused(
        &["open", tmp.path().to_str().unwrap()],
        "not a run directory, and it holds no run directories or sweep.json",
    );
    let run = tmp.path().join("smoke-1");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("events.jsonl"), "").unwrap();
    refused(
        &["open", tmp.path().to_str().unwrap()],
        "the explorer needs a terminal",
    );
    // `iq-tui DIR` reads a directory as `open`
    refused(
        &[tmp.path().to_str().unwrap()],
        "writes the same tables as files",
    );
}
