//! Result snapshots worth publishing: every series and histogram as CSV and
//! JSON, the tables, charts (SVG and PNG) and a Markdown report for one run;
//! for several runs, also a comparison table and overlaid curves.
//!
//! Everything is computed from the run directory (events.jsonl and the files
//! beside it), folded by the same code as the dashboard, so the numbers on
//! screen and in the report agree. Used by `iq-tui export` and the
//! dashboard's export key.

pub mod charts;
mod figures;
mod markdown;
pub mod pareto;
pub mod sweep;
mod ticks;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::record::{Record, RunView, Series, Summary};
use crate::store::manifest::RunManifest;
use charts::{Line, LineChart, PALETTE};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot draw the chart: {message}")]
    Chart { path: PathBuf, message: String },
}

/// Everything a run directory says.
#[derive(Debug, Clone)]
pub struct RunRecords {
    pub dir: PathBuf,
    pub experiment: String,
    pub manifest: Option<RunManifest>,
    pub summary: Option<Summary>,
    pub records: Vec<Record>,
    /// The records folded, with every series.
    pub view: RunView,
    /// Set when the directory contradicts itself (see `store::cut_short`).
    pub warning: Option<String>,
}

impl RunRecords {
    pub fn name(&self) -> String {
        if self.view.name.is_empty() {
            self.dir
                .file_name()
                .map_or("run".into(), |n| n.to_string_lossy().into_owned())
        } else {
            self.view.name.clone()
        }
    }

    /// A label that tells runs apart in comparisons (the directory name).
    pub fn label(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(|| self.name(), |n| n.to_string_lossy().into_owned())
    }
}

pub fn load(dir: &Path) -> Result<RunRecords, ReportError> {
    let events = dir.join("events.jsonl");
    let records = crate::store::read_events(&events).map_err(|e| ReportError::Read {
        path: events.clone(),
        message: format!("{} (a run directory holds events.jsonl)", e.source),
    })?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let summary = match read("summary.json") {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| ReportError::Read {
            path: dir.join("summary.json"),
            message: e.to_string(),
        })?),
    };
    let manifest = read("manifest.json").and_then(|t| serde_json::from_str(&t).ok());
    let view = RunView::from_records(&records);
    let warning = crate::store::cut_short(dir, &records);
    Ok(RunRecords {
        warning,
        dir: dir.to_path_buf(),
        experiment: read("experiment.ron").unwrap_or_default(),
        manifest,
        summary,
        records,
        view,
    })
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), ReportError> {
    crate::atomic::write(path, bytes.as_ref()).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(path).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes rows as `<stem>.csv` and `<stem>.json`.
fn table<T: Serialize + Default>(dir: &Path, stem: &str, rows: &[T]) -> Result<(), ReportError> {
    let csv_path = dir.join(format!("{stem}.csv"));
    crate::atomic::write_with(&csv_path, |out| {
        use std::io::Write;
        if rows.is_empty() {
            // csv writes the header with the first row; with none, take it
            // from a row that is not written.
            let mut probe = csv::Writer::from_writer(Vec::new());
            probe
                .serialize(T::default())
                .map_err(std::io::Error::other)?;
            let bytes = probe
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let header = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            out.write_all(header)?;
            return out.write_all(b"\n");
        }
        let mut w = csv::Writer::from_writer(out);
        for r in rows {
            w.serialize(r).map_err(std::io::Error::other)?;
        }
        w.flush()
    })
    .map_err(|source| ReportError::Write {
        path: csv_path.clone(),
        source,
    })?;
    write(
        &dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(rows).expect("serialisable"),
    )
}

pub(crate) fn chart(result: Result<Vec<PathBuf>, String>, stem: &Path) -> Result<(), ReportError> {
    result.map(|_| ()).map_err(|message| ReportError::Chart {
        path: stem.to_path_buf(),
        message,
    })
}

/// A perplexity-table row for CSV.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PerplexityRow {
    pub model: String,
    pub bits: Option<usize>,
    pub valid_ppl: Option<f64>,
    pub test_ppl: Option<f64>,
    /// Test perplexity relative to full precision, in per cent.
    pub test_vs_fp_pct: Option<f64>,
    pub quant_loss: Option<f64>,
    pub sparsity: Option<f64>,
    pub packed_bytes: Option<u64>,
    pub fp32_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MatrixRow {
    pub matrix: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: Option<usize>,
    pub method: Option<String>,
    pub sparsity: f64,
    pub quant_loss: f64,
    pub packed_bytes: u64,
    pub fp32_bytes: u64,
}

pub fn perplexity_rows(run: &RunRecords) -> Vec<PerplexityRow> {
    let fp_test = run
        .view
        .table
        .iter()
        .find(|r| r.label == "full precision")
        .and_then(|r| r.test);
    run.view
        .table
        .iter()
        .map(|r| PerplexityRow {
            model: r.label.clone(),
            bits: r.bits,
            valid_ppl: r.valid,
            test_ppl: r.test,
            test_vs_fp_pct: match (r.test, fp_test) {
                (Some(t), Some(f)) => Some((t / f - 1.0) * 100.0),
                _ => None,
            },
            quant_loss: r.quant_loss,
            sparsity: r.sparsity,
            packed_bytes: r.packed_bytes,
            fp32_bytes: r.fp32_bytes,
        })
        .collect()
}

pub fn matrix_rows(run: &RunRecords) -> Vec<MatrixRow> {
    run.view
        .matrices
        .iter()
        .map(|m| MatrixRow {
            matrix: m.name.clone(),
            rows: m.rows,
            cols: m.cols,
            bits: m.bits,
            method: m.method.clone(),
            sparsity: m.sparsity,
            quant_loss: m.quant_loss,
            packed_bytes: m.packed_bytes,
            fp32_bytes: m.fp32_bytes,
        })
        .collect()
}

/// What one export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub dir: PathBuf,
    pub report: PathBuf,
    /// What the caller should tell the user (a run directory that
    /// contradicts itself); also in the report.
    pub warnings: Vec<String>,
}

/// Exports one run into `to`.
pub fn export_run(run: &RunRecords, to: &Path) -> Result<Exported, ReportError> {
    let data = to.join("data");
    let charts_dir = to.join("charts");
    mkdir(&data)?;
    mkdir(&charts_dir)?;
    let s = &run.view.series;
    table(&data, "epochs", &s.epochs)?;
    table(&data, "train_progress", &s.train_progress)?;
    table(&data, "evaluations", &s.evaluations)?;
    table(&data, "quant_loss", &s.quant_loss)?;
    table(&data, "quant_loss_live", &s.live_loss)?;
    table(&data, "histograms", &s.histogram_rows())?;
    table(&data, "density", &s.density)?;
    table(&data, "weights", &s.weights)?;
    table(&data, "perplexity", &perplexity_rows(run))?;
    table(&data, "matrices", &matrix_rows(run))?;
    write(
        &data.join("histograms_with_levels.json"),
        serde_json::to_string_pretty(&s.histograms).expect("serialisable"),
    )?;
    write(&to.join("experiment.ron"), &run.experiment)?;
    if let Some(summary) = &run.summary {
        write(
            &to.join("summary.json"),
            serde_json::to_string_pretty(summary).expect("serialisable"),
        )?;
    }
    if let Some(m) = &run.manifest {
        write(
            &to.join("manifest.json"),
            serde_json::to_string_pretty(m).expect("serialisable"),
        )?;
    }

    let drawn = figures::draw(run, &charts_dir)?;
    let report = to.join("report.md");
    write(&report, markdown::run_report(run, &drawn))?;
    Ok(Exported {
        dir: to.to_path_buf(),
        report,
        warnings: Vec::new(),
    })
}

/// One line of the comparison table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ComparisonRow {
    pub run: String,
    pub status: String,
    pub bits: Option<usize>,
    pub method: Option<String>,
    pub fp_test_ppl: Option<f64>,
    pub best_one_shot_test_ppl: Option<f64>,
    pub final_test_ppl: Option<f64>,
    pub final_vs_fp_pct: Option<f64>,
    pub final_quant_loss: Option<f64>,
    pub sparsity: Option<f64>,
    pub packed_bytes: Option<u64>,
    pub fp32_bytes: Option<u64>,
    pub compression: Option<f64>,
}

pub fn comparison_rows(runs: &[RunRecords]) -> Vec<ComparisonRow> {
    runs.iter()
        .map(|r| {
            let s = r.summary.as_ref();
            let f = s.and_then(|s| s.final_model.as_ref());
            let fp = s.map(|s| s.fp.test_ppl);
            ComparisonRow {
                run: r.label(),
                status: format!("{:?}", r.view.status()),
                bits: f.and_then(|f| f.bits),
                method: f.map(|f| f.method.clone()),
                fp_test_ppl: fp,
                best_one_shot_test_ppl: s
                    .and_then(|s| s.one_shot.iter().map(|o| o.test_ppl).min_by(f64::total_cmp)),
                final_test_ppl: f.map(|f| f.test_ppl),
                final_vs_fp_pct: match (f, fp) {
                    (Some(f), Some(fp)) => Some((f.test_ppl / fp - 1.0) * 100.0),
                    _ => None,
                },
                final_quant_loss: f.map(|f| f.quant_loss),
                sparsity: f.map(|f| f.sparsity),
                packed_bytes: f.map(|f| f.packed_bytes),
                fp32_bytes: f.map(|f| f.fp32_bytes),
                compression: f.map(|f| f.fp32_bytes as f64 / f.packed_bytes.max(1) as f64),
            }
        })
        .collect()
}

/// Exports each run into `to/<run>/` and a comparison into `to`.
pub fn export_comparison(runs: &[RunRecords], to: &Path) -> Result<Exported, ReportError> {
    mkdir(to)?;
    let mut subdirs = Vec::new();
    for r in runs {
        let mut sub = to.join(r.label());
        let mut n = 1;
        while subdirs.contains(&sub) {
            n += 1;
            sub = to.join(format!("{}-{n}", r.label()));
        }
        export_run(r, &sub)?;
        subdirs.push(sub);
    }
    table(to, "comparison", &comparison_rows(runs))?;
    let charts_dir = to.join("charts");
    mkdir(&charts_dir)?;
    let lines = |f: &dyn Fn(&Series) -> Vec<(f64, f64)>| -> Vec<Line> {
        runs.iter()
            .enumerate()
            .map(|(i, r)| Line {
                label: r.label(),
                points: f(&r.view.series),
                color: PALETTE[i % PALETTE.len()],
                markers: true,
            })
            .filter(|l| !l.points.is_empty())
            .collect()
    };
    let mut drawn = Vec::new();
    let loss = lines(&|s| s.loss_per_iteration());
    if !loss.is_empty() {
        let stem = charts_dir.join("compare_quant_loss");
        chart(
            charts::line_chart(
                &stem,
                &LineChart {
                    title: "quantization loss per iteration".into(),
                    x_label: "iteration (last point: final model)".into(),
                    y_label: "relative quantization loss (log scale)".into(),
                    log_y: true,
                    lines: loss,
                    references: vec![],
                    integer_x: true,
                    named_x: None,
                },
            ),
            &stem,
        )?;
        drawn.push("compare_quant_loss");
    }
    let valid = lines(&|s| s.valid_per_iteration());
    if !valid.is_empty() {
        let stem = charts_dir.join("compare_perplexity");
        chart(
            charts::line_chart(
                &stem,
                &LineChart {
                    title: "validation perplexity per iteration".into(),
                    x_label: "iteration".into(),
                    y_label: "validation perplexity (log scale)".into(),
                    log_y: true,
                    lines: valid,
                    references: vec![],
                    integer_x: true,
                    named_x: None,
                },
            ),
            &stem,
        )?;
        drawn.push("compare_perplexity");
    }
    let report = to.join("comparison.md");
    write(&report, markdown::comparison(runs, &subdirs, &drawn, to))?;
    Ok(Exported {
        dir: to.to_path_buf(),
        report,
        warnings: Vec::new(),
    })
}

/// Default destination: `<run>/snapshots/<UTC time>` for one run,
/// `./comparison-<UTC time>` for several.
pub fn default_destination(runs: &[PathBuf]) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f").to_string();
    match runs {
        [one] => one.join("snapshots").join(stamp),
        _ => PathBuf::from(format!("comparison-{stamp}")),
    }
}

/// Loads and exports one or several runs.
pub fn export(dirs: &[PathBuf], to: Option<&Path>) -> Result<Exported, ReportError> {
    if let [one] = dirs {
        if crate::sweep::state::is_sweep_dir(one) {
            let to = to.map_or_else(|| default_destination(dirs), Path::to_path_buf);
            return sweep::export_sweep(one, &to);
        }
        // A directory of runs (`runs/`) is compared as its runs.
        let inside = crate::store::run_dirs(one);
        if !one.join("events.jsonl").is_file() && !inside.is_empty() {
            return export(
                &inside,
                Some(&to.map_or_else(|| default_destination(&inside), Path::to_path_buf)),
            );
        }
    }
    let runs = dirs
        .iter()
        .map(|d| load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let to = to.map_or_else(|| default_destination(dirs), Path::to_path_buf);
    let mut done = match runs.as_slice() {
        [one] => export_run(one, &to),
        _ => export_comparison(&runs, &to),
    }?;
    done.warnings = runs.iter().filter_map(|r| r.warning.clone()).collect();
    Ok(done)
}
