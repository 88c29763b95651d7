//! Runs that survive: kill a headless run at several points, resume it, and
//! get the same results as a run that never stopped; damaged checkpoints,
//! edited experiments and unwritable disks get clear answers.
//!
//! The arithmetic is deterministic (fixed seed, fixed thread count, no
//! data-dependent reduction order), so the comparison is exact; only wall
//! times may differ.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{assert_ok, iq_tui, read_json, text};
use serde_json::Value;

fn start(out: &Path) -> Child {
    start_with(out, &[])
}

fn start_with(out: &Path, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(["run", "experiments/smoke.ron", "--headless", "--out"])
        .arg(out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IQ_TUI_OFFLINE", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start iq-tui")
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until an event matches, then kills the run with `signal`.
fn kill_when(dir: &Path, signal: &str, want: impl Fn(&Value) -> bool) {
    kill_child_when(start(dir), dir, signal, want)
}

fn kill_child_when(mut child: Child, dir: &Path, signal: &str, want: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if events(dir).iter().any(&want) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before the kill point");
        }
        assert!(Instant::now() < deadline, "kill point never reached");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    child.wait().unwrap();
    assert!(
        !dir.join("summary.json").exists(),
        "the run finished before the kill landed"
    );
}

fn resume(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["resume", dir.to_str().unwrap(), "--headless"];
    args.extend_from_slice(extra);
    iq_tui(&args)
}

/// Summary without wall-clock fields.
fn numbers(summary: Value) -> Value {
    match summary {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "seconds" | "train_seconds" | "train_tokens_per_sec"
                    )
                })
                .map(|(k, v)| (k, numbers(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers).collect()),
        v => v,
    }
}

/// The evaluations a log records, in order: no duplicates, none missing.
fn evaluations(dir: &Path) -> Vec<Value> {
    events(dir)
        .into_iter()
        .filter(|e| {
            e["type"] == "evaluated" || e["type"] == "quantized" || e["type"] == "epoch_finished"
        })
        .map(|mut e| {
            let m = e.as_object_mut().unwrap();
            m.remove("t");
            m.remove("seconds");
            e
        })
        .collect()
}

struct Reference {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    summary: Value,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("whole");
        let o = iq_tui(&[
            "run",
            "experiments/smoke.ron",
            "--headless",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let summary = numbers(read_json(&dir.join("summary.json")));
        Reference {
            _tmp: tmp,
            dir,
            summary,
        }
    })
}

fn assert_resumes_exactly(dir: &Path) {
    let o = resume(dir, &[]);
    assert_ok(&o);
    let r = reference();
    assert_eq!(numbers(read_json(&dir.join("summary.json"))), r.summary);
    // Every line parses: nothing torn; one start, one end, one continuation.
    let raw = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(raw.ends_with('\n'));
    let all = events(dir);
    assert_eq!(all.len(), raw.lines().count(), "a line does not parse");
    let count = |t: &str| all.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("run_started"), 1);
    assert_eq!(count("finished"), 1);
    assert_eq!(count("continued"), 1);
    assert_eq!(evaluations(dir), evaluations(&r.dir));
}

fn is(e: &Value, kind: &str) -> bool {
    e["type"] == kind
}

#[test]
fn killed_mid_epoch_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    kill_when(&dir, "KILL", |e| {
        is(e, "train_progress")
            && e["phase"] == "pretrain"
            && e["epoch"] == 2
            && e["step"].as_u64() > Some(50)
    });
    assert_resumes_exactly(&dir);
}

#[test]
fn killed_during_pruning_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    kill_when(&dir, "KILL", |e| {
        is(e, "train_progress") && e["phase"] == "prune"
    });
    assert_resumes_exactly(&dir);
}

#[test]
fn killed_during_an_evaluation_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // One-shot baselines are quantize-and-evaluate, back to back.
    kill_when(&dir, "KILL", |e| {
        is(e, "quantized") && e["model"]["one_shot"].is_object()
    });
    assert_resumes_exactly(&dir);
}

#[test]
fn killed_mid_iteration_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    kill_when(&dir, "KILL", |e| {
        is(e, "quant_loss") && e["j"] == 2 && e["step"] == 40
    });
    assert_resumes_exactly(&dir);
}

#[test]
fn stopped_mid_iteration_resumes_from_the_exact_step() {
    let tmp = tempfile::tempdir().unwrap();
    // The stop lands at the next step after the signal; on a loaded machine
    // the run can finish iteration 3's last 60 steps first (seen once, under
    // a concurrent build), so a stop past iteration 3 is run again.
    let mut attempt = 0;
    let dir = loop {
        attempt += 1;
        let dir = tmp.path().join(format!("run{attempt}"));
        kill_when(&dir, "TERM", |e| {
            is(e, "quant_loss") && e["j"] == 3 && e["step"] == 20
        });
        let past = std::fs::read_to_string(dir.join("events.jsonl"))
            .unwrap()
            .contains(r#""phase":{"iteration":{"j":4"#);
        if !past || attempt == 3 {
            break dir;
        }
        eprintln!("attempt {attempt}: the stop landed after iteration 3; again");
    };
    let last = events(&dir).pop().unwrap();
    assert_eq!(last["type"], "stopped", "{last}");
    let o = resume(&dir, &[]);
    assert!(
        text(&o.stdout).contains("iteration 3, retraining step"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        numbers(read_json(&dir.join("summary.json"))),
        reference().summary
    );
}

#[test]
fn a_checkpoint_write_cut_short_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    kill_when(&dir, "KILL", |e| is(e, "epoch_started") && e["epoch"] == 4);
    // What a kill in the middle of writing leaves: a temporary file, and
    // (had the write not been atomic) a truncated newest checkpoint.
    let ckpts = dir.join("checkpoints");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ckpts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let newest = files.last().unwrap();
    let bytes = std::fs::read(newest).unwrap();
    std::fs::write(newest, &bytes[..bytes.len() * 2 / 3]).unwrap();
    std::fs::write(ckpts.join(".ckpt-999999.safetensors.tmp"), b"half").unwrap();
    let o = resume(&dir, &[]);
    assert!(
        text(&o.stderr).contains("damaged checkpoint"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        numbers(read_json(&dir.join("summary.json"))),
        reference().summary
    );
    assert!(!ckpts.join(".ckpt-999999.safetensors.tmp").exists());
}

#[test]
fn a_flipped_byte_is_caught_and_all_damaged_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    kill_when(&dir, "KILL", |e| is(e, "epoch_started") && e["epoch"] == 3);
    for e in std::fs::read_dir(dir.join("checkpoints")).unwrap() {
        let path = e.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let i = bytes.len() - 100; // inside the tensor data
        bytes[i] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    }
    let o = resume(&dir, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("no intact checkpoint") && err.contains("checksum mismatch"),
        "{err}"
    );
}

#[test]
fn an_edited_experiment_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    kill_when(&dir, "KILL", |e| is(e, "epoch_started") && e["epoch"] == 2);
    let file = dir.join("experiment.ron");
    let ron = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, ron.replace("iterations: 4", "iterations: 2")).unwrap();
    let o = resume(&dir, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("was changed after the run started"),
        "{}",
        text(&o.stderr)
    );
    let o = resume(&dir, &["--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        read_json(&dir.join("summary.json"))["iterations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let manifest = read_json(&dir.join("manifest.json"));
    assert_eq!(manifest["resumes"][0]["forced"], true, "{manifest}");
    assert!(
        manifest["resumes"][0]["checkpoint"].is_string(),
        "{manifest}"
    );
    // A finished run has nothing to resume.
    let o = resume(&dir, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("has finished"));
}

#[test]
fn a_full_disk_stops_the_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // Checkpoints go to a filesystem of one page: the first one fills it.
    let Some(_full) = common::TinyFilesystem::mount(&dir.join("checkpoints")) else {
        return;
    };
    let o = iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot write a checkpoint") && err.contains("No space left"),
        "{err}"
    );
    assert_eq!(events(&dir).last().unwrap()["type"], "failed");
    assert!(!dir.join("summary.json").exists());
}

#[test]
fn a_run_directory_lists_its_manifest_and_checkpoints() {
    let r = reference();
    let m = read_json(&r.dir.join("manifest.json"));
    assert_eq!(m["program"], "iq-tui");
    assert_eq!(m["seed"], 3);
    assert!(m["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(m["started"].as_str().unwrap().ends_with('Z'));
    let n = std::fs::read_dir(r.dir.join("checkpoints"))
        .unwrap()
        .count();
    assert_eq!(n, 2, "the newest checkpoint and the one before it");
}

#[test]
fn periodic_checkpoints_bound_what_a_kill_loses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // A checkpoint after every 0.05 s of training: mid-epoch ones exist.
    let child = start_with(&dir, &[("IQ_TUI_CHECKPOINT_SECONDS", "0.05")]);
    kill_child_when(child, &dir, "KILL", |e| {
        is(e, "train_progress")
            && e["phase"] == "pretrain"
            && e["epoch"] == 2
            && e["step"].as_u64() > Some(150)
    });
    let o = resume(&dir, &[]);
    assert!(
        text(&o.stdout).contains("pre-training epoch 2, step"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        numbers(read_json(&dir.join("summary.json"))),
        reference().summary
    );
    assert_eq!(evaluations(&dir), evaluations(&reference().dir));
}

/// Another thread count (or GEMM backend) sums in another order, so a
/// resume on it cannot promise the uninterrupted run's last digits: it
/// says so in the log, and the manifest records what each part ran on.
#[test]
fn a_resume_on_other_arithmetic_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let child = start_with(&dir, &[("RAYON_NUM_THREADS", "2")]);
    kill_child_when(child, &dir, "KILL", |e| {
        is(e, "train_progress") && e["phase"] == "pretrain" && e["epoch"] == 2
    });
    let o = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(["resume", dir.to_str().unwrap(), "--headless"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IQ_TUI_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let warnings: Vec<String> = events(&dir)
        .iter()
        .filter(|e| is(e, "log") && e["level"] == "warn")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|m| m.contains("2 threads") && m.contains("1 thread:")),
        "{warnings:?}"
    );
    let m = read_json(&dir.join("manifest.json"));
    assert_eq!(m["machine"]["threads"], 2);
    assert_eq!(m["resumes"][0]["arithmetic"]["threads"], 1);
    assert_eq!(
        read_json(&dir.join("summary.json"))["arithmetic"]["threads"],
        1
    );
}
