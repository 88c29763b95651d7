//! Fuzzing every file the program reads: experiment files, `--set`
//! arguments, `.npy` matrices, packed models, checkpoints and event logs are
//! mutated (truncated, bits flipped, numbers replaced by huge or negative
//! ones, garbage inserted) and handed to the real binary, each case under a
//! memory limit and a time limit. Every case must end with exit 0 (the
//! mutation left a valid file) or 2 with a message: never a panic, an abort,
//! an out-of-memory kill or a hang.
//!
//! `cargo test --test fuzz`; more cases with `PROPTEST_CASES=1000`.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use proptest::prelude::*;

/// Address space a case may use: far above what the smoke files need, far
/// below what an allocation from a forged size would ask for.
const MEMORY_LIMIT: &str = "--as=8000000000";
const SECONDS: &str = "60";

/// Cases per input kind: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the binary on `args` under the limits; returns (exit status, stderr).
fn limited(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new("timeout")
        .args([
            SECONDS,
            "prlimit",
            MEMORY_LIMIT,
            env!("CARGO_BIN_EXE_iq-tui"),
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IQ_TUI_OFFLINE", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("timeout and prlimit (coreutils, util-linux) run the binary");
    (o.status.code(), common::text(&o.stderr))
}

fn assert_handled(what: &str, (code, err): (Option<i32>, String)) {
    assert_ne!(code, Some(124), "{what}: hung");
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "{what}: {err}"
    );
    match code {
        Some(0) => {}
        Some(2) => assert!(err.contains("error:"), "{what}: exit 2 without a message"),
        other => panic!("{what}: exit {other:?}: {err}"),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    FlipBit(usize, u8),
    Insert(usize, Vec<u8>),
    /// Replace the n-th run of digits by this text.
    Number(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let texts = prop::sample::select(vec![
        "0",
        "-1",
        "18446744073709551616",
        "9223372036854775807",
        "4294967296",
        "1e308",
        "NaN",
        "\"x\"",
        "",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, junk)| Mutation::Insert(at, junk)),
        (any::<usize>(), texts).prop_map(|(n, t)| Mutation::Number(n, t)),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match m {
        Mutation::Truncate(at) => out.truncate(at % (bytes.len() + 1)),
        Mutation::FlipBit(at, bit) => {
            let i = at % bytes.len();
            out[i] ^= 1 << bit;
        }
        Mutation::Insert(at, junk) => {
            let i = at % (bytes.len() + 1);
            out.splice(i..i, junk.iter().copied());
        }
        Mutation::Number(n, text) => {
            let runs: Vec<(usize, usize)> = {
                let mut runs = Vec::new();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i].is_ascii_digit() {
                        let start = i;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                        runs.push((start, i));
                    } else {
                        i += 1;
                    }
                }
                runs
            };
            if let Some(&(a, b)) = runs.get(n % runs.len().max(1)) {
                out.splice(a..b, text.bytes());
            }
        }
    }
    out
}

/// A finished smoke run with a packed model, made once for all cases.
fn finished_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("iq-tui-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        common::run_smoke(
            &dir,
            &[
                "--set",
                "quantization.iterations=1",
                "--set",
                "pruning=None",
            ],
        );
        let o = common::iq_tui(&["export-model", dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", common::text(&o.stderr));
        dir
    })
}

fn scratch(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(48)))]

    #[test]
    fn experiment_files(m in mutation()) {
        let text = std::fs::read(common::root().join("experiments/smoke.ron")).unwrap();
        let (_dir, path) = scratch("x.ron", &apply(&text, &m));
        assert_handled(&format!("{m:?}"), limited(&["validate", path.to_str().unwrap()]));
    }

    #[test]
    fn set_arguments(path in "[a-z_.0-9]{0,24}", value in "[-\"a-zA-Z0-9.{}\\[\\]:,]{0,16}") {
        let spec = format!("{path}={value}");
        assert_handled(&spec, limited(&["validate", "experiments/smoke.ron", "--set", &spec]));
    }

    #[test]
    fn sweep_files(m in mutation()) {
        let text = std::fs::read(common::root().join("tests/fixtures/sweeps/inline.ron")).unwrap();
        let (_dir, path) = scratch("s.ron", &apply(&text, &m));
        assert_handled(&format!("{m:?}"), limited(&["validate", path.to_str().unwrap()]));
        assert_handled(&format!("dry run, {m:?}"), limited(&["sweep", path.to_str().unwrap(), "--dry-run"]));
    }

    #[test]
    fn npy_matrices(m in mutation()) {
        let mut bytes = common::npy_header("(3, 4)");
        for i in 0..12 {
            bytes.extend_from_slice(&(i as f32 - 5.5).to_le_bytes());
        }
        let (_dir, path) = scratch("w.npy", &apply(&bytes, &m));
        assert_handled(&format!("{m:?}"), limited(&["quantize", path.to_str().unwrap()]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    #[test]
    fn packed_models(m in mutation()) {
        let bytes = std::fs::read(finished_run().join("model.iqpk")).unwrap();
        let (_dir, path) = scratch("m.iqpk", &apply(&bytes, &m));
        let experiment = finished_run().join("experiment.ron");
        assert_handled(
            &format!("{m:?}"),
            limited(&["eval", path.to_str().unwrap(), "--experiment", experiment.to_str().unwrap()]),
        );
    }

    #[test]
    fn event_logs(m in mutation()) {
        let run = finished_run();
        let dir = tempfile::tempdir().unwrap();
        for name in ["experiment.ron", "manifest.json", "summary.json"] {
            std::fs::copy(run.join(name), dir.path().join(name)).unwrap();
        }
        let events = std::fs::read(run.join("events.jsonl")).unwrap();
        std::fs::write(dir.path().join("events.jsonl"), apply(&events, &m)).unwrap();
        let to = dir.path().join("export");
        assert_handled(
            &format!("{m:?}"),
            limited(&["export", dir.path().to_str().unwrap(), "--to", to.to_str().unwrap()]),
        );
        // `open` reads the log before it needs a terminal (here it has none).
        let (code, err) = limited(&["open", dir.path().to_str().unwrap()]);
        assert_handled(&format!("open, {m:?}"), (code, err.clone()));
        assert_eq!(code, Some(2), "{m:?}: {err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    /// The recorded fixture sweep with its `sweep.json` mutated: exported,
    /// and opened in the explorer (which reads it before it needs a terminal).
    #[test]
    fn sweep_states(m in mutation()) {
        let fixture = common::root().join("tests/fixtures/sweeps/recorded");
        let dir = tempfile::tempdir().unwrap();
        let sweep = dir.path().join("sweep");
        copy_tree(&fixture, &sweep);
        let state = std::fs::read(sweep.join("sweep.json")).unwrap();
        std::fs::write(sweep.join("sweep.json"), apply(&state, &m)).unwrap();
        let to = dir.path().join("export");
        assert_handled(
            &format!("{m:?}"),
            limited(&["export", sweep.to_str().unwrap(), "--to", to.to_str().unwrap()]),
        );
        let (code, err) = limited(&["open", sweep.to_str().unwrap()]);
        assert_handled(&format!("open, {m:?}"), (code, err.clone()));
        assert_eq!(code, Some(2), "{m:?}: {err}");
    }
}

/// A `slurm.json` for the recorded sweep, as `sweep --slurm` writes one,
/// and the cache of states `status` keeps beside it.
fn slurm_files() -> (Vec<u8>, Vec<u8>) {
    let record = serde_json::json!({
        "options": {
            "partition": null, "time": "1:00:00", "cpus_per_task": 1,
            "mem": "400M", "max_running": 2, "sbatch_args": ["--account=lab"]
        },
        "executable": "/usr/local/bin/iq-tui",
        "submissions": [
            {"job": "990001", "stage": "pretrain", "indices": [0],
             "command": ["sbatch", "--parsable", "--array=0", "pretrain.sbatch"],
             "submitted": "2026-12-01T10:00:00Z"},
            {"job": "990002", "stage": "cells", "indices": [0, 1, 2, 3],
             "command": ["sbatch", "--parsable", "--array=0-3%2", "cells.sbatch"],
             "submitted": "2026-12-01T10:00:01Z"}
        ]
    });
    let seen = serde_json::json!({"tasks": {
        "990002_3": {"state": "CANCELLED", "at": "2026-12-01T10:05:00Z"},
        "990002_1": {"state": "TIMEOUT", "at": "2026-12-01T10:05:00Z"}
    }});
    (
        serde_json::to_vec_pretty(&record).unwrap(),
        serde_json::to_vec_pretty(&seen).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    /// A Slurm sweep's `slurm.json` or `slurm-seen.json` mutated: `status`
    /// reads both (and asks squeue, where there is one, about the jobs).
    #[test]
    fn slurm_records(m in mutation(), which in 0..2usize) {
        let fixture = common::root().join("tests/fixtures/sweeps/recorded");
        let dir = tempfile::tempdir().unwrap();
        let sweep = dir.path().join("sweep");
        copy_tree(&fixture, &sweep);
        let (record, seen) = slurm_files();
        let (record, seen) = if which == 0 { (apply(&record, &m), seen) } else { (record, apply(&seen, &m)) };
        std::fs::write(sweep.join("slurm.json"), record).unwrap();
        std::fs::write(sweep.join("slurm-seen.json"), seen).unwrap();
        assert_handled(&format!("{which} {m:?}"), limited(&["status", sweep.to_str().unwrap()]));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(8)))]

    /// A run stopped after its first epoch, with its newest checkpoint
    /// mutated: resume falls back to the older one or refuses.
    #[test]
    fn checkpoints(m in mutation()) {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        common::run_smoke(
            &run,
            &["--set", "quantization=None", "--set", "pruning=None"],
        );
        std::fs::remove_file(run.join("summary.json")).unwrap();
        let mut ckpts: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        ckpts.sort();
        let newest = ckpts.last().unwrap();
        let bytes = std::fs::read(newest).unwrap();
        std::fs::write(newest, apply(&bytes, &m)).unwrap();
        assert_handled(
            &format!("{m:?}"),
            limited(&["resume", run.to_str().unwrap(), "--headless"]),
        );
    }
}
