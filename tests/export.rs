//! `iq-tui export`: series as CSV and JSON that agree with the run's records,
//! charts as SVG and PNG, a Markdown report, and a comparison of runs.

mod common;
use std::path::Path;

use common::{iq_tui, read_json, run_smoke as smoke, text};

fn csv_rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .records()
        .map(|r| r.unwrap())
        .collect()
}

fn column(path: &Path, name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let i = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|x| x.unwrap()[i].to_string()).collect()
}

#[test]
fn one_run_and_a_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one-bit"), tmp.path().join("two-bit"));
    smoke(&one, &[]);
    smoke(&two, &["--set", "quantization.groups.0.bits=2"]);

    // One run.
    let to = tmp.path().join("snap");
    let o = iq_tui(&[
        "export",
        one.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let summary = read_json(&one.join("summary.json"));
    let data = to.join("data");
    assert_eq!(csv_rows(&data.join("epochs.csv")).len(), 2);
    // quant_loss: per quantized model, a total row and one per matrix.
    let models = 3 + 4 + 1; // baselines, iterations, final
    assert_eq!(
        csv_rows(&data.join("quant_loss.csv")).len(),
        models * (1 + 6)
    );
    let totals: Vec<f64> = csv_rows(&data.join("quant_loss.csv"))
        .iter()
        .filter(|r| &r[2] == "total" && !r[1].is_empty())
        .map(|r| r[3].parse().unwrap())
        .collect();
    let from_summary: Vec<f64> = summary["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["quant_loss"].as_f64().unwrap())
        .chain([summary["final"]["quant_loss"].as_f64().unwrap()])
        .collect();
    assert_eq!(totals, from_summary);
    let bins = column(&data.join("histograms.csv"), "bin").len();
    let sets = read_json(&data.join("histograms_with_levels.json"));
    let per_set: usize = sets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["counts"].as_array().unwrap().len())
        .sum();
    assert_eq!(bins, per_set, "every histogram bin has a CSV row");
    assert!(sets
        .as_array()
        .unwrap()
        .iter()
        .any(|s| !s["levels"].as_array().unwrap().is_empty()));
    let final_test = summary["final"]["test_ppl"].as_f64().unwrap();
    let table = column(&data.join("perplexity.csv"), "test_ppl");
    assert!(table
        .iter()
        .any(|t| t.parse::<f64>().ok() == Some(final_test)));
    assert_eq!(csv_rows(&data.join("matrices.csv")).len(), 6);
    for chart in [
        "pretraining",
        "quant_loss",
        "perplexity",
        "histograms",
        "sparsity",
    ] {
        let svg = std::fs::read_to_string(to.join(format!("charts/{chart}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<text"), "{chart}.svg");
        let png = std::fs::read(to.join(format!("charts/{chart}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{chart}.png"
        );
    }
    let svg = std::fs::read_to_string(to.join("charts/quant_loss.svg")).unwrap();
    for label in [
        "iteration",
        "relative quantization loss",
        "when quantized",
        "during retraining",
    ] {
        assert!(svg.contains(label), "quant_loss.svg lacks {label:?}");
    }
    let report = std::fs::read_to_string(to.join("report.md")).unwrap();
    assert!(report.contains("| final | 1 |"), "{report}");
    assert!(report.contains(&format!("{final_test:.2}")));
    assert!(report.contains("![quant_loss](charts/quant_loss.svg)"));
    assert!(report.contains("```ron"));

    // Several runs: one table, overlaid curves, each run's own report.
    let cmp = tmp.path().join("cmp");
    let o = iq_tui(&[
        "export",
        one.to_str().unwrap(),
        two.to_str().unwrap(),
        "--to",
        cmp.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let rows = csv_rows(&cmp.join("comparison.csv"));
    assert_eq!(rows.len(), 2);
    assert_eq!(column(&cmp.join("comparison.csv"), "bits"), ["1", "2"]);
    let two_final = read_json(&two.join("summary.json"))["final"]["test_ppl"]
        .as_f64()
        .unwrap();
    let finals: Vec<f64> = column(&cmp.join("comparison.csv"), "final_test_ppl")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(finals, [final_test, two_final]);
    let svg = std::fs::read_to_string(cmp.join("charts/compare_quant_loss.svg")).unwrap();
    assert!(svg.contains("one-bit") && svg.contains("two-bit"));
    assert!(cmp.join("one-bit/report.md").is_file() && cmp.join("two-bit/report.md").is_file());
    let md = std::fs::read_to_string(cmp.join("comparison.md")).unwrap();
    assert!(md.contains("[two-bit](two-bit/report.md)"), "{md}");
}

#[test]
fn not_a_run_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = iq_tui(&["export", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("events.jsonl") && err.contains("run directory"),
        "{err}"
    );
}

/// A run cut short in pre-training exports what it has: the training
/// charts, and tables with the rows that exist; a table with none yet still
/// has its header.
#[test]
fn an_unfinished_run_exports_what_it_has() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs/smoke");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(fixture.join("experiment.ron"), run.join("experiment.ron")).unwrap();
    let events = std::fs::read_to_string(fixture.join("events.jsonl")).unwrap();
    let cut = events
        .lines()
        .position(|l| l.contains(r#""type":"epoch_started""#) && l.contains(r#""epoch":2"#))
        .unwrap();
    let kept: String = events
        .lines()
        .take(cut + 30)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(run.join("events.jsonl"), kept).unwrap();
    let to = tmp.path().join("snap");
    let o = iq_tui(&[
        "export",
        run.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for chart in ["training", "optimizer", "pretraining"] {
        assert!(
            to.join(format!("charts/{chart}.svg")).is_file(),
            "no {chart} chart"
        );
    }
    assert!(
        !to.join("charts/quant_loss.svg").exists(),
        "nothing quantized yet"
    );
    let quant = std::fs::read_to_string(to.join("data/quant_loss.csv")).unwrap();
    assert_eq!(quant, "model,iteration,matrix,quant_loss\n");
    assert_eq!(csv_rows(&to.join("data/epochs.csv")).len(), 1);
    assert!(!csv_rows(&to.join("data/weights.csv")).is_empty());
}
