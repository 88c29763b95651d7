//! The Markdown reports: what was run, where, the tables and the charts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{comparison_rows, matrix_rows, perplexity_rows, RunRecords};

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn bytes(x: Option<u64>) -> String {
    x.map_or("–".into(), crate::record::format::bytes)
}

fn chart_caption(name: &str) -> &'static str {
    match name {
        "pretraining" => "Pre-training: training and validation perplexity per epoch.",
        "quant_loss" => "Quantization loss of the weights each time they are quantized (blue), and their distance from their quantized version while retraining in full precision (green); dashed: one-shot quantization of the pre-trained model.",
        "perplexity" => "Validation perplexity of the quantized model at each iteration, against the full-precision model (dashed).",
        "histograms" => "Weight distribution per matrix before the first quantization and after the last retraining, with the final quantization levels (averaged over rows).",
        "sparsity" => "Fraction of non-zero weights per tile of each matrix.",
        "compare_quant_loss" => "Quantization loss per iteration, all runs.",
        "compare_perplexity" => "Validation perplexity of the quantized model per iteration, all runs.",
        _ => "",
    }
}

pub fn run_report(run: &RunRecords, charts: &[&str]) -> String {
    let mut md = String::new();
    let name = run.name();
    let _ = writeln!(md, "# {name}\n");
    let v = &run.view;
    let _ = writeln!(
        md,
        "Status: **{:?}**. Corpus: {}. {} parameters.\n",
        v.status(),
        if v.corpus.is_empty() {
            "–"
        } else {
            &v.corpus
        },
        v.parameters
    );
    if let Some(w) = &run.warning {
        let _ = writeln!(md, "> **Warning:** {w}.\n");
    }
    if let Some(m) = &run.manifest {
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(
            md,
            "| program | iq-tui {}{} |",
            m.version,
            m.git_commit
                .as_ref()
                .map_or(String::new(), |c| format!(" (commit {c})"))
        );
        let _ = writeln!(md, "| started | {} |", m.started);
        let _ = writeln!(md, "| seed | {} |", m.seed);
        let _ = writeln!(
            md,
            "| machine | {} {}, {} logical cores, {} threads{} |",
            m.machine.os,
            m.machine.arch,
            m.machine.logical_cores,
            m.machine.threads,
            m.machine
                .cpu
                .as_ref()
                .map_or(String::new(), |c| format!(", {c}"))
        );
        if !m.resumes.is_empty() {
            let _ = writeln!(
                md,
                "| resumed | {} time(s): {} |",
                m.resumes.len(),
                m.resumes
                    .iter()
                    .map(|r| format!("{} at {}", r.at, r.position))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let _ = writeln!(md);
    }
    if let Some(s) = &run.summary {
        let _ = writeln!(
            md,
            "Training: {:.0} s in training steps, {:.0} tokens/s on average{}.\n",
            s.train_seconds,
            s.train_tokens_per_sec,
            s.arithmetic.map(|a| format!(" ({a})")).unwrap_or_default()
        );
    }

    let _ = writeln!(md, "## Perplexity\n");
    let _ = writeln!(
        md,
        "| model | bits | valid | test | Δtest vs fp | quant. loss | sparsity | packed | fp32 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in perplexity_rows(run) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.model,
            r.bits.map_or("–".into(), |b| b.to_string()),
            num(r.valid_ppl, 2),
            num(r.test_ppl, 2),
            r.test_vs_fp_pct
                .map_or("–".into(), |p| format!("{p:+.1} %")),
            r.quant_loss.map_or("–".into(), |q| format!("{q:.4}")),
            r.sparsity
                .map_or("–".into(), |s| format!("{:.1} %", s * 100.0)),
            bytes(r.packed_bytes),
            bytes(r.fp32_bytes),
        );
    }
    let per_iteration = run.view.series.loss_per_iteration();
    if !per_iteration.is_empty() {
        let valid = run.view.series.valid_per_iteration();
        let _ = writeln!(md, "\n## Quantization loss per iteration\n");
        let _ = writeln!(
            md,
            "| iteration | quantization loss | valid perplexity |\n|---:|---:|---:|"
        );
        let last = per_iteration.len();
        for (i, (x, loss)) in per_iteration.iter().enumerate() {
            let ppl = valid.iter().find(|(j, _)| j == x).map(|p| p.1).or_else(|| {
                (i + 1 == last)
                    .then(|| run.view.series.eval("final", "valid"))
                    .flatten()
            });
            let label = if i + 1 == last && valid.iter().all(|(j, _)| j != x) {
                "final".to_string()
            } else {
                format!("{x:.0}")
            };
            let _ = writeln!(md, "| {label} | {loss:.5} | {} |", num(ppl, 2));
        }
    }
    let matrices = matrix_rows(run);
    if !matrices.is_empty() {
        let _ = writeln!(md, "\n## Matrices\n");
        let _ = writeln!(
            md,
            "| matrix | shape | bits | method | sparsity | quant. loss | packed | fp32 |\n|---|---|---:|---|---:|---:|---:|---:|"
        );
        for m in matrices {
            let _ = writeln!(
                md,
                "| {} | {}×{} | {} | {} | {:.1} % | {:.5} | {} | {} |",
                m.matrix,
                m.rows,
                m.cols,
                m.bits.map_or("fp32".into(), |b| b.to_string()),
                m.method.as_deref().unwrap_or("–"),
                m.sparsity * 100.0,
                m.quant_loss,
                bytes(Some(m.packed_bytes)),
                bytes(Some(m.fp32_bytes)),
            );
        }
    }
    if !charts.is_empty() {
        let _ = writeln!(md, "\n## Charts\n");
        for c in charts {
            let _ = writeln!(md, "![{c}](charts/{c}.svg)\n\n{}\n", chart_caption(c));
        }
    }
    let _ = writeln!(
        md,
        "## Experiment\n\n```ron\n{}\n```\n",
        run.experiment.trim_end()
    );
    let _ = writeln!(
        md,
        "## Files\n\n`data/` holds every series as CSV and JSON: `epochs`, `train_progress`, `evaluations`, `quant_loss` (per model and matrix), `quant_loss_live` (during retraining), `histograms` (every recorded histogram, one row per bin; `histograms_with_levels.json` adds the quantization levels), `density` (heatmap tiles), `perplexity`, `matrices`. `charts/` has each chart as SVG and PNG."
    );
    md
}

pub fn comparison(runs: &[RunRecords], subdirs: &[PathBuf], charts: &[&str], to: &Path) -> String {
    let mut md = String::from("# Comparison\n\n");
    let _ = writeln!(
        md,
        "| run | bits | method | fp test | best 1-shot test | final test | vs fp | quant. loss | sparsity | packed | compression |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in comparison_rows(runs) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.run,
            r.bits.map_or("–".into(), |b| b.to_string()),
            r.method.as_deref().unwrap_or("–"),
            num(r.fp_test_ppl, 2),
            num(r.best_one_shot_test_ppl, 2),
            num(r.final_test_ppl, 2),
            r.final_vs_fp_pct
                .map_or("–".into(), |p| format!("{p:+.1} %")),
            r.final_quant_loss.map_or("–".into(), |q| format!("{q:.4}")),
            r.sparsity
                .map_or("–".into(), |s| format!("{:.1} %", s * 100.0)),
            bytes(r.packed_bytes),
            r.compression.map_or("–".into(), |c| format!("{c:.1}×")),
        );
    }
    let _ = writeln!(md);
    for c in charts {
        let _ = writeln!(md, "![{c}](charts/{c}.svg)\n\n{}\n", chart_caption(c));
    }
    let _ = writeln!(md, "## Runs\n");
    for (r, d) in runs.iter().zip(subdirs) {
        let rel = d.strip_prefix(to).unwrap_or(d);
        let _ = writeln!(
            md,
            "- [{}]({}/report.md) from `{}`",
            r.label(),
            rel.display(),
            r.dir.display()
        );
    }
    md
}

fn stat(s: Option<super::sweep::Stat>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n > 1 => format!("{:.digits$} ± {:.digits$} (n={})", s.mean, s.std, s.n),
        Some(s) => format!("{:.digits$} (n=1)", s.mean),
    }
}

/// `sweep.md`: the groups (mean ± standard deviation over seeds), the
/// Pareto chart, every cell, and links to the cells' reports.
pub fn sweep_report(
    state: &crate::sweep::SweepState,
    rows: &[super::sweep::CellRow],
    groups: &[super::sweep::GroupRow],
    pareto: bool,
    reports: &[(String, PathBuf)],
) -> String {
    use crate::sweep::expand::short_path;
    let mut md = format!("# Sweep {}\n\n", state.name);
    let finished = rows.iter().filter(|r| r.status == "finished").count();
    let _ = writeln!(
        md,
        "{finished} of {} cells finished; created {}; each unit ran on {} thread{}.\n",
        rows.len(),
        state.created,
        state.threads,
        if state.threads == 1 { "" } else { "s" }
    );
    let named: Vec<&str> = super::sweep::group_axes(&state.axes)
        .iter()
        .map(|(i, _)| short_path(&state.axes[*i]))
        .collect();
    let _ = writeln!(md, "## Groups (mean ± standard deviation over seeds)\n");
    let mut head = named.iter().map(|n| format!("| {n} ")).collect::<String>();
    head.push_str("| fp test | final test | vs fp (%) | quant. loss | packed |\n");
    head.push_str(&"|---".repeat(named.len() + 5));
    let _ = writeln!(md, "{head}|");
    for g in groups {
        let vals: String = g.values.iter().map(|v| format!("| `{v}` ")).collect();
        let _ = writeln!(
            md,
            "{vals}| {} | {} | {} | {} | {} |",
            stat(g.fp_test_ppl, 2),
            stat(g.final_test_ppl, 2),
            stat(g.final_vs_fp_pct, 1),
            stat(g.quant_loss, 4),
            bytes(g.packed_bytes.map(|s| s.mean.round() as u64)),
        );
    }
    if pareto {
        let _ = writeln!(
            md,
            "\n![Pareto chart](pareto.svg)\n\nFinal test perplexity against packed size; the joined points are those no other beats on both.\n"
        );
    }
    let _ = writeln!(md, "## Cells\n");
    let mut head = String::from("| cell ");
    for (_, a) in super::sweep::group_axes(&state.axes) {
        let _ = write!(head, "| {} ", short_path(&a));
    }
    head.push_str("| seed | status | fp test | best one-shot test | final test | vs fp | packed | compression |\n");
    head.push_str(&"|---".repeat(super::sweep::group_axes(&state.axes).len() + 9));
    let _ = writeln!(md, "{head}|");
    let keep = super::sweep::group_axes(&state.axes);
    for r in rows {
        let report = reports.iter().find(|(c, _)| *c == r.cell);
        let cell = match report {
            Some((_, path)) => format!("[{}]({})", r.cell, path.display()),
            None => r.cell.clone(),
        };
        let vals: String = keep
            .iter()
            .map(|(i, _)| format!("| `{}` ", r.values[*i]))
            .collect();
        let _ = writeln!(
            md,
            "| {cell} {vals}| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.seed.map_or("–".into(), |s| s.to_string()),
            r.status,
            num(r.fp_test_ppl, 2),
            num(r.one_shot_test_ppl, 2),
            num(r.final_test_ppl, 2),
            r.final_vs_fp_pct
                .map_or("–".into(), |p| format!("{p:+.1} %")),
            bytes(r.packed_bytes),
            r.compression.map_or("–".into(), |c| format!("{c:.1}×")),
        );
    }
    md
}
