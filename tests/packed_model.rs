//! `iq-tui export-model` and `iq-tui eval`: the packed file is as large as
//! the packed size the run reported (plus its header), and its perplexity,
//! computed from the bits, is the dense quantized model's.

mod common;
use std::path::Path;

use common::{iq_tui, read_json, run_smoke, text};

fn run(out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--set", "quantization.iterations=2"];
    args.extend_from_slice(extra);
    run_smoke(out, &args);
    read_json(&out.join("summary.json"))
}

fn header_len(file: &Path) -> u64 {
    let b = std::fs::read(file).unwrap();
    assert_eq!(&b[..4], b"IQPK");
    // magic, version, header length, SHA-256, then the header
    48 + u64::from_le_bytes(b[8..16].try_into().unwrap())
}

/// `corpus_from`: an experiment file for `eval --experiment`, or none for
/// its default, the run directory's own `experiment.ron`.
fn check(dir: &Path, summary: &serde_json::Value, corpus_from: Option<&str>) {
    let o = iq_tui(&["export-model", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let file = dir.join("model.iqpk");
    let size = std::fs::metadata(&file).unwrap().len();
    let reported = summary["final"]["packed_bytes"].as_u64().unwrap();
    assert_eq!(size - header_len(&file), reported);
    // The safetensors twin holds the same weights, dequantized.
    let st = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = iq_tui::store::checkpoint::decode(&st).unwrap();
    let w = iq_tui::store::weights::load(&dir.join("weights/final")).unwrap();
    for ((name, _, _), m) in w.manifest.params.iter().zip(&w.params) {
        match &st.tensor(name).unwrap_or_else(|| panic!("no {name}")).data {
            iq_tui::store::checkpoint::TensorData::F32(v) => {
                assert!(
                    v.iter()
                        .zip(&m.values)
                        .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs())),
                    "{name}"
                )
            }
            _ => panic!("{name} is not f32"),
        }
    }

    let mut args = vec!["eval", file.to_str().unwrap(), "--split", "test"];
    if let Some(experiment) = corpus_from {
        args.extend(["--experiment", experiment]);
    }
    let o = iq_tui(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let ppl: f64 = out
        .split("perplexity ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let dense = summary["final"]["test_ppl"].as_f64().unwrap();
    assert!(
        (ppl / dense - 1.0).abs() < 1e-3,
        "packed {ppl} vs dense {dense}"
    );
}

#[test]
fn pruned_one_bit_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let summary = run(&dir, &[]);
    assert!(summary["final"]["sparsity"].as_f64().unwrap() > 0.1);
    check(&dir, &summary, Some("experiments/smoke.ron"));
}

#[test]
fn two_bits_on_the_lstm_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let summary = run(
        &dir,
        &[
            "--set",
            "quantization.groups.0.bits=2",
            "--set",
            "quantization.groups.0.matrices=Lstm",
            "--set",
            "pruning=None",
        ],
    );
    check(&dir, &summary, None);
}

#[test]
fn damaged_or_foreign_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let summary = run(&dir, &["--set", "pruning=None"]);
    check(&dir, &summary, Some("experiments/smoke.ron"));
    let file = dir.join("model.iqpk");
    let bytes = std::fs::read(&file).unwrap();
    let cut = tmp.path().join("cut.iqpk");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let o = iq_tui(&[
        "eval",
        cut.to_str().unwrap(),
        "--experiment",
        "experiments/smoke.ron",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("truncated"), "{}", text(&o.stderr));
    let o = iq_tui(&["eval", "experiments/smoke.ron"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not an iq-tui packed model"));
    // A flipped bit anywhere, header or sections, is refused: never a
    // perplexity from damaged bits, never a panic.
    let flipped = tmp.path().join("flipped.iqpk");
    for k in 0..40 {
        let at = 4 + k * (bytes.len() - 5) / 39;
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << (k % 8);
        std::fs::write(&flipped, &damaged).unwrap();
        let o = iq_tui(&[
            "eval",
            flipped.to_str().unwrap(),
            "--experiment",
            "experiments/smoke.ron",
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "bit flip at byte {at}: {err}");
        assert!(!err.contains("panicked"), "bit flip at byte {at}: {err}");
    }
    // A run that never quantized has no model to export.
    let fp = tmp.path().join("fp");
    let o = iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--out",
        fp.to_str().unwrap(),
        "--set",
        "training.epochs=1",
        "--set",
        "quantization=None",
        "--set",
        "pruning=None",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = iq_tui(&["export-model", fp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("finished run that quantized"),
        "{}",
        text(&o.stderr)
    );
}
