//! The charts of one run's export: training (from the first step, so an
//! unfinished run has them too), pre-training per epoch, quantization loss
//! and perplexity per iteration, weight histograms and sparsity maps. Each
//! is drawn only when the run has its data.

use std::path::Path;

use super::charts::{self, Line, LineChart, PALETTE};
use super::{chart, ReportError, RunRecords};
use crate::record::series::{thin, HistogramSet};
use crate::record::{ModelTag, Series};

/// Points a training curve is drawn with: more than a PNG has pixels
/// across is ink, not information (every point stays in the CSV).
const CURVE_POINTS: usize = 1500;

/// Draws every chart the run has data for into `charts_dir`; returns their
/// names, for the report.
pub fn draw(run: &RunRecords, charts_dir: &Path) -> Result<Vec<&'static str>, ReportError> {
    let s = &run.view.series;
    let name = run.name();
    let mut drawn = Vec::new();
    training(run, charts_dir, &mut drawn)?;
    if !s.epochs.is_empty() {
        let stem = charts_dir.join("pretraining");
        let pts = |f: fn(&crate::record::series::EpochRow) -> f64| {
            s.epochs.iter().map(|e| (e.epoch as f64, f(e))).collect()
        };
        chart(
            charts::line_chart(
                &stem,
                &LineChart {
                    title: format!("{name}: pre-training"),
                    x_label: "epoch".into(),
                    y_label: "perplexity (log scale)".into(),
                    log_y: true,
                    integer_x: true,
                    named_x: None,
                    lines: vec![
                        Line {
                            label: "training".into(),
                            points: pts(|e| e.train_ppl),
                            color: PALETTE[0],
                            markers: true,
                        },
                        Line {
                            label: "validation".into(),
                            points: pts(|e| e.valid_ppl),
                            color: PALETTE[1],
                            markers: true,
                        },
                    ],
                    references: vec![],
                },
            ),
            &stem,
        )?;
        drawn.push("pretraining");
    }
    let per_iteration = s.loss_per_iteration();
    // The final model is quantized once more after the last iteration.
    let final_x = s
        .quant_loss
        .iter()
        .find(|r| r.model == "final")
        .and_then(|r| r.iteration)
        .map(|i| i as f64);
    if !per_iteration.is_empty() {
        let stem = charts_dir.join("quant_loss");
        let mut references = Vec::new();
        for (i, method) in ["greedy", "alternating"].into_iter().enumerate() {
            let m = ModelTag::OneShot {
                method: method.into(),
            }
            .to_string();
            if let Some(r) = s
                .quant_loss
                .iter()
                .find(|r| r.model == m && r.matrix == "total")
            {
                references.push((format!("{m} (no retraining)"), r.quant_loss, PALETTE[4 + i]));
            }
        }
        chart(
            charts::line_chart(
                &stem,
                &LineChart {
                    title: format!("{name}: quantization loss ‖W − Q(W)‖² / ‖W‖²"),
                    x_label: "iteration".into(),
                    y_label: "relative quantization loss (log scale)".into(),
                    log_y: true,
                    integer_x: true,
                    named_x: final_x.map(|x| (x, "final".to_string())),
                    lines: vec![
                        Line {
                            label: "when quantized".into(),
                            points: per_iteration.clone(),
                            color: PALETTE[0],
                            markers: true,
                        },
                        Line {
                            label: "during retraining".into(),
                            points: s.live_curve(),
                            color: PALETTE[2],
                            markers: false,
                        },
                    ],
                    references,
                },
            ),
            &stem,
        )?;
        drawn.push("quant_loss");
    }
    let valid = s.valid_per_iteration();
    if !valid.is_empty() {
        let stem = charts_dir.join("perplexity");
        let mut references = Vec::new();
        if let Some(fp) = s.eval("full precision", "valid") {
            references.push(("full precision".to_string(), fp, PALETTE[7]));
        }
        if let Some(p) = s.eval("pruned", "valid") {
            references.push(("pruned (full precision)".to_string(), p, PALETTE[5]));
        }
        let mut lines = vec![Line {
            label: "iterative: quantized model".into(),
            points: valid.clone(),
            color: PALETTE[0],
            markers: true,
        }];
        if let (Some(f), Some(last)) = (s.eval("final", "valid"), valid.last()) {
            lines.push(Line {
                label: "final quantized model".into(),
                points: vec![(last.0 + 1.0, f)],
                color: PALETTE[3],
                markers: true,
            });
        }
        chart(
            charts::line_chart(
                &stem,
                &LineChart {
                    title: format!("{name}: validation perplexity per iteration"),
                    x_label: "iteration".into(),
                    y_label: "validation perplexity (log scale)".into(),
                    log_y: true,
                    integer_x: true,
                    named_x: final_x.map(|x| (x, "final".to_string())),
                    lines,
                    references,
                },
            ),
            &stem,
        )?;
        drawn.push("perplexity");
    }
    let pairs = histogram_pairs(s);
    if !pairs.is_empty() {
        let stem = charts_dir.join("histograms");
        chart(
            charts::histograms(&stem, &format!("{name}: weight distributions"), &pairs),
            &stem,
        )?;
        drawn.push("histograms");
    }
    let g = grids(run);
    if !g.is_empty() {
        let stem = charts_dir.join("sparsity");
        chart(
            charts::heatmaps(
                &stem,
                &format!("{name}: where the non-zero weights are"),
                &g,
            ),
            &stem,
        )?;
        drawn.push("sparsity");
    }
    Ok(drawn)
}

/// Training perplexity over every step of the run (with each epoch's
/// validation perplexity), and the learning rate and gradient norm.
fn training(
    run: &RunRecords,
    dir: &Path,
    drawn: &mut Vec<&'static str>,
) -> Result<(), ReportError> {
    let s = &run.view.series;
    if s.train_progress.is_empty() {
        return Ok(());
    }
    let name = run.name();
    let of = |f: fn(&crate::record::series::ProgressRow) -> f64| -> Vec<(f64, f64)> {
        thin(
            &s.train_progress
                .iter()
                .map(|r| (r.steps_done as f64, f(r)))
                .collect::<Vec<_>>(),
            CURVE_POINTS,
        )
    };
    let stem = dir.join("training");
    chart(
        charts::line_chart(
            &stem,
            &LineChart {
                title: format!("{name}: training"),
                x_label: "training step (all phases)".into(),
                y_label: "perplexity (log scale)".into(),
                log_y: true,
                integer_x: false,
                named_x: None,
                lines: vec![
                    Line {
                        label: "training (between reports)".into(),
                        points: of(|r| r.train_ppl),
                        color: PALETTE[0],
                        markers: false,
                    },
                    Line {
                        label: "validation, per epoch".into(),
                        points: s
                            .epochs
                            .iter()
                            .map(|e| (e.steps_done as f64, e.valid_ppl))
                            .collect(),
                        color: PALETTE[1],
                        markers: true,
                    },
                ],
                references: vec![],
            },
        ),
        &stem,
    )?;
    drawn.push("training");
    let stem = dir.join("optimizer");
    let clip = run.view.clip;
    chart(
        charts::line_chart(
            &stem,
            &LineChart {
                title: format!("{name}: gradient norm and learning rate"),
                x_label: "training step (all phases)".into(),
                y_label: "value (log scale)".into(),
                log_y: true,
                integer_x: false,
                named_x: None,
                lines: vec![
                    Line {
                        label: "gradient norm (before clipping)".into(),
                        points: of(|r| r.grad_norm),
                        color: PALETTE[2],
                        markers: false,
                    },
                    Line {
                        label: "learning rate".into(),
                        points: of(|r| r.lr).into_iter().filter(|p| p.1 > 0.0).collect(),
                        color: PALETTE[4],
                        markers: false,
                    },
                ],
                references: clip.map_or(vec![], |c| {
                    vec![(format!("clip threshold {c}"), c, PALETTE[3])]
                }),
            },
        ),
        &stem,
    )?;
    drawn.push("optimizer");
    Ok(())
}

/// Before (first quantized model) and after (last) histograms per matrix.
fn histogram_pairs(s: &Series) -> Vec<(String, Option<HistogramSet>, Option<HistogramSet>)> {
    let quantized = |h: &&HistogramSet| h.model.starts_with("iteration") || h.model == "final";
    let mut names: Vec<String> = Vec::new();
    for h in s.histograms.iter().filter(quantized) {
        if !names.contains(&h.matrix) {
            names.push(h.matrix.clone());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let mine: Vec<&HistogramSet> = s
                .histograms
                .iter()
                .filter(quantized)
                .filter(|h| h.matrix == n)
                .collect();
            let before = mine.first().map(|h| (*h).clone());
            let after = if mine.len() > 1 {
                mine.last().map(|h| (*h).clone())
            } else {
                None
            };
            (n, before, after)
        })
        .collect()
}

/// Density grids of the newest report per matrix that has them.
fn grids(run: &RunRecords) -> Vec<charts::Grid> {
    run.view
        .matrices
        .iter()
        .filter(|m| m.density.len() == m.grid.0 * m.grid.1 && !m.density.is_empty())
        .map(|m| (m.name.clone(), m.sparsity, m.grid, m.density.clone()))
        .collect()
}
