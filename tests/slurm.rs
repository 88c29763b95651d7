//! Sweeps on a real Slurm cluster: the one-node cluster that
//! `scripts/local-slurm.sh up` starts (CI starts it; elsewhere the cluster
//! test skips when `sinfo` does not answer). A 4-cell sweep is submitted
//! with `--slurm --max-running 2`, watched with `iq-tui status`, one cell is
//! cancelled with `scancel` while it runs and `resume --slurm` completes
//! it; the results must equal the same sweep run here with the same
//! threads. The refusals before submitting need no cluster.

mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{iq_tui, root, text};

const SWEEP: &str = "tests/fixtures/sweeps/slurm.ron";

fn have_slurm() -> bool {
    let ok = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && text(&o.stdout).lines().any(|l| {
                    l.starts_with("idle") || l.starts_with("mix") || l.starts_with("alloc")
                })
        });
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must start the local Slurm (scripts/local-slurm.sh up)"
    );
    if !ok {
        eprintln!("skipping: no Slurm answers here (scripts/local-slurm.sh up starts one)");
    }
    ok
}

/// `iq-tui status DIR`: unit → (state, job, log).
fn status(dir: &Path) -> BTreeMap<String, (String, String, String)> {
    let o = iq_tui(&["status", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().contains("Slurm: squeue"), "{out}");
    assert!(lines.next().unwrap().starts_with("UNIT"), "{out}");
    lines
        .take_while(|l| !l.contains(" cells: "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                (f[1].to_string(), f[2].to_string(), f[3].to_string()),
            )
        })
        .collect()
}

/// Polls `status` until `done` holds, remembering every state each unit showed.
fn watch(
    dir: &Path,
    seen: &mut BTreeMap<String, BTreeSet<String>>,
    seconds: u64,
    mut done: impl FnMut(&BTreeMap<String, (String, String, String)>) -> bool,
) -> BTreeMap<String, (String, String, String)> {
    let start = Instant::now();
    loop {
        let now = status(dir);
        for (unit, (state, _, _)) in &now {
            seen.entry(unit.clone()).or_default().insert(state.clone());
        }
        if done(&now) {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(seconds),
            "gave up after {seconds} s: {now:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_sweep_on_slurm_equals_the_local_run_and_a_cancelled_cell_resumes() {
    if !have_slurm() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (local, cluster) = (tmp.path().join("local"), tmp.path().join("cluster"));
    let o = iq_tui(&[
        "sweep",
        SWEEP,
        "--headless",
        "--jobs",
        "2",
        "--threads",
        "1",
        "--out",
        local.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let o = iq_tui(&[
        "sweep",
        SWEEP,
        "--slurm",
        "--max-running",
        "2",
        "--cpus-per-task",
        "1",
        "--out",
        cluster.to_str().unwrap(),
    ]);
    let said = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{said}{}", text(&o.stderr));
    assert!(said.contains("submitted the pre-training: job "), "{said}");
    assert!(said.contains("submitted the cells: job "), "{said}");
    for stage in ["pretrain", "cells"] {
        let script =
            std::fs::read_to_string(cluster.join(format!("slurm/{stage}.sbatch"))).unwrap();
        assert!(script.contains("--stage ") && script.contains("#SBATCH --signal=B:TERM@120"));
    }
    let record = common::read_json(&cluster.join("slurm.json"));
    let cells_job = record["submissions"][1]["job"]
        .as_str()
        .unwrap()
        .to_string();
    // Running it here as well would give its cells two writers.
    let o = iq_tui(&["resume", cluster.to_str().unwrap(), "--headless"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("queued or running on Slurm"),
        "{}",
        text(&o.stderr)
    );
    // The explorer, in a real terminal, shows the scheduler's column live.
    let explorer = common::tmux::have_tmux().then(|| {
        let s = common::tmux::Session::start(
            "iq-slurm-explorer",
            &format!("{} {}", env!("CARGO_BIN_EXE_iq-tui"), cluster.display()),
        );
        s.wait_for(
            &format!(
                "Slurm jobs {}",
                record["submissions"][0]["job"].as_str().unwrap()
            ),
            30,
        );
        s.wait_for(&format!("PENDING {cells_job}_"), 30);
        s
    });

    // Watch until the last cell runs and has done some of its work, then
    // cancel it.
    let mut seen = BTreeMap::new();
    let target = "c003-bits2-methodAlternating2-lengthSteps1000";
    let events = cluster.join("cells").join(target).join("events.jsonl");
    watch(&cluster, &mut seen, 300, |now| {
        now[target].0 == "RUNNING"
            && std::fs::read_to_string(&events).is_ok_and(|t| t.lines().count() > 200)
    });
    let task = format!("{cells_job}_3");
    let o = Command::new("scancel").arg(&task).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let end = watch(&cluster, &mut seen, 300, |now| {
        now.values()
            .all(|(s, _, _)| s == "FINISHED" || s == "CANCELLED")
            && now[target].0 == "CANCELLED"
    });
    assert_eq!(end[target].1, task);
    if let Some(s) = &explorer {
        s.wait_for(&format!("CANCELLED {task}"), 30);
    }
    // Slurm's SIGTERM stopped it with a checkpoint.
    let last = std::fs::read_to_string(&events).unwrap();
    assert!(
        last.lines()
            .last()
            .unwrap()
            .contains("\"type\":\"stopped\""),
        "{}",
        last.lines().last().unwrap()
    );

    // Only the cancelled cell goes again, and continues from its checkpoint.
    let o = iq_tui(&["resume", cluster.to_str().unwrap(), "--slurm"]);
    let said = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{said}{}", text(&o.stderr));
    assert!(
        said.contains("submitted the cells: job ") && said.contains("(1 task)"),
        "{said}"
    );
    assert!(!said.contains("pre-training: job"), "{said}");
    let end = watch(&cluster, &mut seen, 300, |now| {
        now.values().all(|(s, _, _)| s == "FINISHED")
    });
    let log = cluster.join(&end[target].2);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("with 1 thread (Slurm task"), "{log_text}");
    let continued = std::fs::read_to_string(&events).unwrap();
    assert!(
        continued
            .lines()
            .any(|l| l.contains("\"type\":\"continued\"")),
        "the resumed cell did not continue from its checkpoint"
    );
    // A second resume finds nothing to do.
    let o = iq_tui(&["resume", cluster.to_str().unwrap(), "--slurm"]);
    assert!(
        text(&o.stdout).contains("nothing to submit: 4 of 4 cells finished"),
        "{}",
        text(&o.stdout)
    );

    for (unit, states) in &seen {
        if unit.starts_with("pretrain/") {
            assert!(states.contains("FINISHED"), "{unit}: {states:?}");
            continue;
        }
        for s in ["PENDING", "RUNNING", "FINISHED"] {
            assert!(states.contains(s), "{unit} never showed {s}: {states:?}");
        }
    }
    assert!(seen[target].contains("RUNNING") && seen[target].contains("CANCELLED"));

    assert_eq!(
        common::sweep_results(&local, &tmp.path().join("local-x")),
        common::sweep_results(&cluster, &tmp.path().join("cluster-x")),
        "the cluster's results differ from the local run's"
    );
}

#[test]
fn a_bad_request_is_refused_before_anything_is_submitted() {
    if !have_slurm() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let o = iq_tui(&[
        "sweep",
        SWEEP,
        "--slurm",
        "--partition",
        "no-such-partition",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("Slurm would not take the pretrain array"),
        "{err}"
    );
    assert!(err.contains("partition"), "{err}");
    assert!(!out.exists(), "a refused submission left {}", out.display());
}

#[test]
fn without_ptb_or_sbatch_or_sense_nothing_is_submitted() {
    let tmp = tempfile::tempdir().unwrap();
    // A PTB sweep when no copy is on this machine: compute nodes cannot fetch it.
    let ptb_sweep = tmp.path().join("ptb-sweep.ron");
    std::fs::write(
        &ptb_sweep,
        format!(
            "Sweep(name: \"p\", base: {:?}, grid: {{\"quantization.groups.0.bits\": [1, 2]}})",
            root().join("experiments/ptb-quick.ron")
        ),
    )
    .unwrap();
    let out = tmp.path().join("p");
    let o = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args([
            "sweep",
            ptb_sweep.to_str().unwrap(),
            "--slurm",
            "--out",
            out.to_str().unwrap(),
        ])
        .env_remove("IQ_TUI_PTB_DIR")
        .env("IQ_TUI_CACHE_DIR", tmp.path().join("empty-cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("iq-tui fetch-ptb") && err.contains("compute nodes download nothing"),
        "{err}"
    );
    assert!(!out.exists());

    // No sbatch on this machine.
    let o = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(["sweep", SWEEP, "--slurm", "--out", out.to_str().unwrap()])
        .current_dir(root())
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("sbatch cannot be run here"),
        "{}",
        text(&o.stderr)
    );
    assert!(!out.exists());

    // Options that make no sense, refused by the parser.
    for args in [
        vec!["--slurm", "--mem", "lots"],
        vec!["--slurm", "--cpus-per-task", "0"],
        vec!["--slurm", "--jobs", "2"],
        vec!["--max-running", "2"],
    ] {
        let mut all = vec!["sweep", SWEEP];
        all.extend(&args);
        let o = iq_tui(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
    // status wants a sweep directory.
    let o = iq_tui(&["status", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not a sweep directory"));
}

#[test]
fn a_failed_cell_is_named_and_goes_again_only_when_asked() {
    if !have_slurm() {
        return;
    }
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
    let dir = out.to_str().unwrap();
    let o = iq_tui(&[
        "sweep",
        file.to_str().unwrap(),
        "--slurm",
        "--cpus-per-task",
        "1",
        "--out",
        dir,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let ended = |now: &BTreeMap<String, (String, String, String)>| {
        now["c000-lr0.5"].0 == "FINISHED" && now["c001-lr1e9"].0 == "FAILED"
    };
    let mut seen = BTreeMap::new();
    let first = watch(&out, &mut seen, 300, ended);
    let said = text(&iq_tui(&["status", dir]).stdout);
    assert!(said.contains("training diverged"), "{said}");

    let o = iq_tui(&["resume", dir, "--slurm"]);
    let said = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(
        said.contains("nothing to submit") && said.contains("1 failed (--retry-failed"),
        "{said}"
    );

    let o = iq_tui(&["resume", dir, "--slurm", "--retry-failed"]);
    let said = text(&o.stdout);
    assert!(
        said.contains("submitted the cells: job ") && said.contains("(1 task)"),
        "{said}"
    );
    let again = watch(&out, &mut seen, 300, |now| {
        ended(now) && now["c001-lr1e9"].1 != first["c001-lr1e9"].1
    });
    let log = std::fs::read_to_string(out.join(&again["c001-lr1e9"].2)).unwrap();
    assert!(log.contains("error: training diverged"), "{log}");
}
