//! A sweep's results: one row per cell, cells that differ only in seed
//! grouped (mean, standard deviation, n), the Pareto front of perplexity
//! against packed size, and the files `export` writes for them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{mkdir, write, Exported, ReportError};
use crate::record::{RunView, Summary};
use crate::sweep::{expand::short_path, observe, Status, SweepState, UnitEntry};

/// One cell, as the explorer's table and `sweep.csv` show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CellRow {
    pub cell: String,
    /// The value of every varied field (RON text), in the sweep's axis order.
    pub values: Vec<String>,
    pub seed: Option<u64>,
    pub status: String,
    /// Fraction of the run's training steps done (live runs).
    pub progress: Option<f64>,
    pub fp_valid_ppl: Option<f64>,
    pub fp_test_ppl: Option<f64>,
    /// The one-shot baseline with the best validation perplexity.
    pub one_shot_method: Option<String>,
    pub one_shot_valid_ppl: Option<f64>,
    pub one_shot_test_ppl: Option<f64>,
    pub final_valid_ppl: Option<f64>,
    pub final_test_ppl: Option<f64>,
    pub final_vs_fp_pct: Option<f64>,
    pub bits: Option<usize>,
    pub quant_loss: Option<f64>,
    pub sparsity: Option<f64>,
    pub packed_bytes: Option<u64>,
    pub fp32_bytes: Option<u64>,
    pub compression: Option<f64>,
    pub train_seconds: Option<f64>,
    /// What Slurm says of the cell's job (`RUNNING 13_2`), for the
    /// explorer of a Slurm sweep; not part of the exports, whose numbers
    /// are the same wherever the cell ran.
    #[serde(skip)]
    pub scheduler: Option<String>,
}

impl CellRow {
    /// From what the cell's run directory holds: its summary once
    /// finished, else its records so far.
    pub fn of(
        axes: &[String],
        entry: &UnitEntry,
        status: Status,
        summary: Option<&Summary>,
        view: Option<&RunView>,
    ) -> Self {
        let values: Vec<String> = axes
            .iter()
            .map(|a| {
                entry
                    .values
                    .iter()
                    .find(|(p, _)| p == a)
                    .map_or_else(String::new, |(_, v)| v.clone())
            })
            .collect();
        let seed_value = entry
            .values
            .iter()
            .find(|(p, _)| p == "seed")
            .and_then(|(_, v)| v.parse().ok());
        let mut row = CellRow {
            cell: entry.name.clone(),
            values,
            seed: summary.map(|s| s.seed).or(seed_value),
            status: status.label().into(),
            ..Default::default()
        };
        if let Some(v) = view {
            if v.total_steps > 0 && status != Status::Finished {
                row.progress = Some(v.steps_done as f64 / v.total_steps as f64);
            }
            if let Some(fp) = v.table.iter().find(|r| r.label == "full precision") {
                row.fp_valid_ppl = fp.valid;
                row.fp_test_ppl = fp.test;
            }
        }
        let Some(s) = summary else {
            return row;
        };
        row.fp_valid_ppl = Some(s.fp.valid_ppl);
        row.fp_test_ppl = Some(s.fp.test_ppl);
        if let Some(best) = s
            .one_shot
            .iter()
            .min_by(|a, b| a.valid_ppl.total_cmp(&b.valid_ppl))
        {
            row.one_shot_method = Some(best.method.clone());
            row.one_shot_valid_ppl = Some(best.valid_ppl);
            row.one_shot_test_ppl = Some(best.test_ppl);
        }
        if let Some(f) = &s.final_model {
            row.final_valid_ppl = Some(f.valid_ppl);
            row.final_test_ppl = Some(f.test_ppl);
            row.final_vs_fp_pct = Some(100.0 * (f.test_ppl / s.fp.test_ppl - 1.0));
            row.bits = f.bits;
            row.quant_loss = Some(f.quant_loss);
            row.sparsity = Some(f.sparsity);
            row.packed_bytes = Some(f.packed_bytes);
            row.fp32_bytes = Some(f.fp32_bytes);
            row.compression = Some(f.fp32_bytes as f64 / f.packed_bytes.max(1) as f64);
        }
        row.train_seconds = Some(s.train_seconds);
        row
    }
}

/// Mean, sample standard deviation and count of the values present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Self> {
        let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Self {
            mean,
            std: var.sqrt(),
            n,
        })
    }
}

/// Cells that differ only in their seed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRow {
    /// The varied values other than the seed, in axis order.
    pub values: Vec<String>,
    pub cells: Vec<String>,
    pub finished: usize,
    pub fp_test_ppl: Option<Stat>,
    pub one_shot_test_ppl: Option<Stat>,
    pub final_valid_ppl: Option<Stat>,
    pub final_test_ppl: Option<Stat>,
    pub final_vs_fp_pct: Option<Stat>,
    pub quant_loss: Option<Stat>,
    pub sparsity: Option<Stat>,
    pub packed_bytes: Option<Stat>,
    pub bits: Option<usize>,
}

/// The axes other than the seed, and where they are among all.
pub fn group_axes(axes: &[String]) -> Vec<(usize, String)> {
    axes.iter()
        .enumerate()
        .filter(|(_, a)| a.as_str() != "seed")
        .map(|(i, a)| (i, a.clone()))
        .collect()
}

pub fn groups(axes: &[String], rows: &[CellRow]) -> Vec<GroupRow> {
    let keep = group_axes(axes);
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut members: BTreeMap<Vec<String>, Vec<&CellRow>> = BTreeMap::new();
    for r in rows {
        let key: Vec<String> = keep.iter().map(|(i, _)| r.values[*i].clone()).collect();
        if !members.contains_key(&key) {
            order.push(key.clone());
        }
        members.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .map(|key| {
            let m = &members[&key];
            let stat = |f: fn(&CellRow) -> Option<f64>| Stat::of(m.iter().filter_map(|r| f(r)));
            GroupRow {
                cells: m.iter().map(|r| r.cell.clone()).collect(),
                finished: m.iter().filter(|r| r.final_test_ppl.is_some()).count(),
                fp_test_ppl: stat(|r| r.fp_test_ppl),
                one_shot_test_ppl: stat(|r| r.one_shot_test_ppl),
                final_valid_ppl: stat(|r| r.final_valid_ppl),
                final_test_ppl: stat(|r| r.final_test_ppl),
                final_vs_fp_pct: stat(|r| r.final_vs_fp_pct),
                quant_loss: stat(|r| r.quant_loss),
                sparsity: stat(|r| r.sparsity),
                packed_bytes: stat(|r| r.packed_bytes.map(|b| b as f64)),
                bits: m.iter().find_map(|r| r.bits),
                values: key,
            }
        })
        .collect()
}

/// Indices of the points no other point beats on both size and perplexity
/// (smaller or equal on both, smaller on one), by increasing size.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[a].1.total_cmp(&points[b].1))
    });
    let mut front = Vec::new();
    let mut best = f64::INFINITY;
    for i in order {
        if points[i].1 < best {
            best = points[i].1;
            front.push(i);
        }
    }
    front
}

/// `bits=2, rate=0.7`: a group's values by the last part of each path.
pub fn group_label(axes: &[String], values: &[String]) -> String {
    let keep = group_axes(axes);
    keep.iter()
        .zip(values)
        .map(|((_, a), v)| format!("{}={v}", short_path(a)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every cell's row, read from the sweep directory now.
pub fn rows(root: &Path, state: &SweepState) -> Vec<CellRow> {
    state
        .cells
        .iter()
        .map(|c| {
            let dir = root.join(&c.dir);
            let status = observe(&dir);
            let summary: Option<Summary> = std::fs::read_to_string(dir.join("summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            let mut row = CellRow::of(&state.axes, c, status, summary.as_ref(), None);
            row.seed = row.seed.or_else(|| crate::sweep::state::seed_of(root, c));
            row
        })
        .collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

fn csv_file(path: &Path, header: Vec<String>, rows: Vec<Vec<String>>) -> Result<(), ReportError> {
    crate::atomic::write_with(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(&header).map_err(std::io::Error::other)?;
        for r in rows {
            w.write_record(&r).map_err(std::io::Error::other)?;
        }
        w.flush()
    })
    .map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The CSV column name of an axis: its path (`quantization.groups.0.bits`).
fn axis_columns(axes: &[String]) -> Vec<String> {
    axes.iter()
        .filter(|a| a.as_str() != "seed")
        .cloned()
        .collect()
}

fn write_cells(path: &Path, axes: &[String], rows: &[CellRow]) -> Result<(), ReportError> {
    let mut header = vec!["cell".to_string()];
    header.extend(axis_columns(axes));
    header.extend(
        [
            "seed",
            "status",
            "fp_valid_ppl",
            "fp_test_ppl",
            "one_shot_method",
            "one_shot_valid_ppl",
            "one_shot_test_ppl",
            "final_valid_ppl",
            "final_test_ppl",
            "final_vs_fp_pct",
            "bits",
            "quant_loss",
            "sparsity",
            "packed_bytes",
            "fp32_bytes",
            "compression",
            "train_seconds",
        ]
        .map(String::from),
    );
    let keep = group_axes(axes);
    let body = rows
        .iter()
        .map(|r| {
            let mut v = vec![r.cell.clone()];
            v.extend(keep.iter().map(|(i, _)| r.values[*i].clone()));
            v.extend([
                opt(r.seed),
                r.status.clone(),
                opt(r.fp_valid_ppl),
                opt(r.fp_test_ppl),
                opt(r.one_shot_method.clone()),
                opt(r.one_shot_valid_ppl),
                opt(r.one_shot_test_ppl),
                opt(r.final_valid_ppl),
                opt(r.final_test_ppl),
                opt(r.final_vs_fp_pct),
                opt(r.bits),
                opt(r.quant_loss),
                opt(r.sparsity),
                opt(r.packed_bytes),
                opt(r.fp32_bytes),
                opt(r.compression),
                opt(r.train_seconds),
            ]);
            v
        })
        .collect();
    csv_file(path, header, body)
}

fn write_groups(path: &Path, axes: &[String], groups: &[GroupRow]) -> Result<(), ReportError> {
    let mut header = axis_columns(axes);
    header.extend(["n", "finished", "bits"].map(String::from));
    let stats = [
        "fp_test_ppl",
        "one_shot_test_ppl",
        "final_valid_ppl",
        "final_test_ppl",
        "final_vs_fp_pct",
        "quant_loss",
        "sparsity",
        "packed_bytes",
    ];
    for s in stats {
        header.push(format!("{s}_mean"));
        header.push(format!("{s}_std"));
    }
    let body = groups
        .iter()
        .map(|g| {
            let mut v = g.values.clone();
            v.extend([
                g.cells.len().to_string(),
                g.finished.to_string(),
                opt(g.bits),
            ]);
            for s in [
                g.fp_test_ppl,
                g.one_shot_test_ppl,
                g.final_valid_ppl,
                g.final_test_ppl,
                g.final_vs_fp_pct,
                g.quant_loss,
                g.sparsity,
                g.packed_bytes,
            ] {
                v.push(opt(s.map(|s| s.mean)));
                v.push(opt(s.map(|s| s.std)));
            }
            v
        })
        .collect();
    csv_file(path, header, body)
}

/// Writes a sweep's tables, Markdown, Pareto chart and every finished
/// cell's own report (in `cells/<cell>/`).
pub fn export_sweep(root: &Path, to: &Path) -> Result<Exported, ReportError> {
    let state = SweepState::read(root).map_err(|message| ReportError::Read {
        path: root.join(crate::sweep::state::STATE_FILE),
        message,
    })?;
    mkdir(to)?;
    let rows = rows(root, &state);
    let groups = groups(&state.axes, &rows);
    write_cells(&to.join("sweep.csv"), &state.axes, &rows)?;
    write_groups(&to.join("sweep_groups.csv"), &state.axes, &groups)?;
    let chart = super::pareto::draw(&to.join("pareto"), &state, &groups)?;
    let mut warnings = Vec::new();
    let mut reports: Vec<(String, PathBuf)> = Vec::new();
    for (c, r) in state.cells.iter().zip(&rows) {
        if r.status != Status::Finished.label() {
            continue;
        }
        let dest = to.join("cells").join(&c.name);
        match super::load(&root.join(&c.dir)) {
            Ok(run) => {
                super::export_run(&run, &dest)?;
                reports.push((
                    c.name.clone(),
                    PathBuf::from("cells").join(&c.name).join("report.md"),
                ));
            }
            Err(e) => warnings.push(e.to_string()),
        }
    }
    let report = to.join("sweep.md");
    write(
        &report,
        super::markdown::sweep_report(&state, &rows, &groups, chart, &reports),
    )?;
    Ok(Exported {
        dir: to.to_path_buf(),
        report,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_keeps_what_nothing_beats() {
        let p = [
            (10.0, 5.0),
            (20.0, 4.0),
            (15.0, 6.0),
            (30.0, 4.0),
            (5.0, 9.0),
        ];
        assert_eq!(pareto_front(&p), vec![4, 0, 1]);
        assert!(pareto_front(&[]).is_empty());
    }

    #[test]
    fn stats_are_mean_and_sample_deviation() {
        let s = Stat::of([1.0, 2.0, 3.0, f64::NAN].into_iter()).unwrap();
        assert_eq!((s.mean, s.n), (2.0, 3));
        assert!((s.std - 1.0).abs() < 1e-12);
        assert_eq!(Stat::of([4.0].into_iter()).unwrap().std, 0.0);
    }
}
