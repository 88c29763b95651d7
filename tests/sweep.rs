//! Sweeps end to end on the smoke experiment: expansion and its errors,
//! shared pre-training, exports, a killed sweep resumed to the same
//! results, and failed cells reported and retried.

mod common;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{iq_tui, root, text};

fn sweep(file: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", file, "--headless", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    iq_tui(&args)
}

fn state(dir: &Path) -> serde_json::Value {
    common::read_json(&dir.join("sweep.json"))
}

fn statuses(dir: &Path) -> Vec<String> {
    let s = state(dir);
    s["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn four_cells_over_quantization_settings_pretrain_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let o = sweep(
        "experiments/smoke-sweep.ron",
        &out,
        &["--jobs", "2", "--threads", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_dir(out.join("pretrain")).unwrap().count(), 1);
    assert_eq!(statuses(&out), ["finished"; 4]);
    let s = state(&out);
    assert_eq!(s["threads"], 1);
    // Every cell starts from the one pre-training, with no epochs of its own.
    let mut fp = Vec::new();
    for c in s["cells"].as_array().unwrap() {
        let dir = out.join(c["dir"].as_str().unwrap());
        let e = std::fs::read_to_string(dir.join("experiment.ron")).unwrap();
        assert!(e.contains("pretrain/p0-seed3/weights/fp"), "{e}");
        assert!(e.contains("epochs: 0"), "{e}");
        fp.push(common::read_json(&dir.join("summary.json"))["fp"]["test_ppl"].clone());
    }
    assert!(fp.windows(2).all(|w| w[0] == w[1]), "{fp:?}");

    let x = tmp.path().join("x");
    let rows = common::sweep_results(&out, &x);
    assert_eq!(
        rows[0][..4],
        [
            "cell",
            "quantization.groups.0.bits",
            "quantization.groups.0.method",
            "seed"
        ]
    );
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[1][1..3], ["1", "Greedy"]);
    assert_eq!(rows[4][1..3], ["2", "Alternating(2)"]);
    for f in ["sweep_groups.csv", "sweep.md", "pareto.svg", "pareto.png"] {
        assert!(x.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(x.join("sweep.md")).unwrap();
    assert!(md.contains("4 of 4 cells finished"), "{md}");
    for c in s["cells"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        assert!(
            x.join("cells").join(name).join("report.md").is_file(),
            "{name}"
        );
    }
}

#[test]
fn seeds_and_zips_expand_and_group_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let o = sweep(
        "tests/fixtures/sweeps/inline.ron",
        &out,
        &["--threads", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_dir(out.join("pretrain")).unwrap().count(), 3);
    assert_eq!(statuses(&out), ["finished"; 6]);
    let x = tmp.path().join("x");
    common::sweep_results(&out, &x);
    let mut r = csv::Reader::from_path(x.join("sweep_groups.csv")).unwrap();
    let groups: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(groups.len(), 2);
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    for g in &groups {
        assert_eq!(&g[col("n")], "3");
        let std: f64 = g[col("final_test_ppl_std")].parse().unwrap();
        assert!(std > 0.0, "three seeds should not agree to the last digit");
    }
    // The resolved sweep reads back as the same sweep.
    let o = iq_tui(&["validate", out.join("sweep.ron").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("6 cells, 3 shared pre-training runs"));
}

#[test]
fn invalid_sweeps_name_the_axis_the_value_and_the_place() {
    let o = iq_tui(&["validate", "tests/fixtures/sweeps/invalid.ron"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    for expected in [
        "invalid.ron:7:9: training.epochz: no field `epochz`",
        "invalid.ron:11:5: seed: a seed is listed twice",
        "invalid.ron:8:31: pruning.rate: value `1.5`: 1.5 is not a pruning rate",
        "invalid.ron:6:43: quantization.groups.0.bits: value `5`: group 1: 5 bits",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
    let o = iq_tui(&[
        "sweep",
        "tests/fixtures/sweeps/unequal-zip.ron",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("`training.lr` has 2, `training.bptt` has 1"));
    // A sweep file given to `run` is run as a sweep, and refuses --set.
    let o = iq_tui(&[
        "run",
        "experiments/smoke-sweep.ron",
        "--headless",
        "--set",
        "seed=2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("vary the field in `grid`"));
}

#[test]
fn a_dry_run_lists_the_cells_and_the_shared_work() {
    let o = iq_tui(&[
        "sweep",
        "experiments/smoke-sweep.ron",
        "--dry-run",
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "c003-bits2-methodAlternating2  bits=2, method=Alternating(2)  (from p0-seed3)"
        ),
        "{out}"
    );
    assert!(
        out.contains("shared work: 1 pre-training run instead of 4"),
        "{out}"
    );
}

#[test]
fn a_killed_sweep_resumes_to_the_results_of_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let o = sweep(
        "experiments/smoke-sweep.ron",
        &whole,
        &["--jobs", "1", "--threads", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let cut = tmp.path().join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args([
            "sweep",
            "experiments/smoke-sweep.ron",
            "--headless",
            "--jobs",
            "1",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&cut)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL once the second cell has begun: the first is finished, the
    // second mid-run, two not started.
    let second = cut.join("cells/c001-bits1-methodAlternating2/events.jsonl");
    let start = Instant::now();
    while !second.is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the second cell never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The cell's process learns that its parent died and stops.
    let start = Instant::now();
    while iq_tui::store::lock::writer(second.parent().unwrap()).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the orphaned cell kept running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = statuses(&cut);
    assert_eq!(before[0], "finished", "{before:?}");
    assert!(before[2..].iter().all(|s| s == "pending"), "{before:?}");

    let o = iq_tui(&["resume", cut.to_str().unwrap(), "--headless"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let said = text(&o.stderr) + &text(&o.stdout);
    assert!(
        !said.contains("start c000"),
        "a finished cell ran again:\n{said}"
    );
    assert_eq!(statuses(&cut), ["finished"; 4]);
    assert_eq!(
        common::sweep_results(&whole, &tmp.path().join("xw")),
        common::sweep_results(&cut, &tmp.path().join("xc"))
    );
}

#[test]
fn a_failed_cell_is_reported_the_others_finish_and_retry_runs_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("fail.ron");
    std::fs::write(
        &file,
        format!(
            r#"Sweep(name: "fail", base: "{}", grid: {{ "quantization.retrain.lr": [0.5, 1e9] }})"#,
            root().join("experiments/smoke.ron").display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("s");
    let o = sweep(file.to_str().unwrap(), &out, &["--threads", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let said = text(&o.stderr) + &text(&o.stdout);
    assert!(said.contains("FAILED c001-lr1e9"), "{said}");
    assert!(said.contains("training diverged"), "{said}");
    assert!(said.contains("--retry-failed"), "{said}");
    assert_eq!(statuses(&out), ["finished", "failed"]);
    let s = state(&out);
    assert!(s["cells"][1]["error"]
        .as_str()
        .unwrap()
        .contains("diverged"));

    // Without --retry-failed nothing is left to do; with it, the cell runs again.
    let o = iq_tui(&["resume", out.to_str().unwrap(), "--headless"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(!(text(&o.stderr) + &text(&o.stdout)).contains("start c001"));
    let o = iq_tui(&[
        "resume",
        out.to_str().unwrap(),
        "--headless",
        "--retry-failed",
    ]);
    let said = text(&o.stderr) + &text(&o.stdout);
    assert!(said.contains("start c001-lr1e9"), "{said}");
    assert_eq!(o.status.code(), Some(1), "{said}");
    let log = std::fs::read_to_string(out.join("logs/c001-lr1e9.log")).unwrap();
    assert_eq!(log.matches("error: training diverged").count(), 2, "{log}");
}
