//! Every scalar series and every histogram a run recorded, as flat rows that
//! go to CSV and JSON alike; filled by the run's fold ([`super::RunView`]).

use serde::Serialize;

use super::events::{Event, MatrixReport, ModelTag, Record};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EpochRow {
    pub epoch: usize,
    /// Training steps done in the whole run at the end of the epoch.
    pub steps_done: usize,
    pub lr: f64,
    pub train_ppl: f64,
    pub valid_ppl: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProgressRow {
    pub t: f64,
    /// Training steps done in the whole run: the x axis of training charts.
    pub steps_done: usize,
    pub phase: String,
    pub epoch: usize,
    pub step: usize,
    pub train_ppl: f64,
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens_per_sec: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvaluationRow {
    pub t: f64,
    pub split: String,
    pub model: String,
    pub epoch: Option<usize>,
    pub ppl: f64,
    pub nll: f64,
    pub tokens: usize,
}

/// Quantization loss of one matrix (or `total`) in one quantized model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuantLossRow {
    pub model: String,
    /// 1..K for the iterations, K + 1 for the final model; empty for one-shot.
    pub iteration: Option<usize>,
    pub matrix: String,
    pub quant_loss: f64,
}

/// Distance from the quantized version, measured during retraining.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveLossRow {
    pub iteration: usize,
    pub step: usize,
    pub quant_loss: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistogramRow {
    /// The model the weights were measured in (before quantizing them).
    pub model: String,
    pub matrix: String,
    pub bin: usize,
    pub lo: f32,
    pub hi: f32,
    pub count: u64,
}

/// One weight snapshot of one matrix: its norm, sparsity and percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WeightRow {
    pub steps_done: usize,
    pub phase: String,
    pub matrix: String,
    pub norm: f64,
    pub sparsity: f64,
    pub p0: f32,
    pub p6_7: f32,
    pub p15_9: f32,
    pub p30_9: f32,
    pub p50: f32,
    pub p69_1: f32,
    pub p84_1: f32,
    pub p93_3: f32,
    pub p100: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DensityRow {
    pub model: String,
    pub matrix: String,
    pub tile_row: usize,
    pub tile_col: usize,
    pub density: f32,
}

/// A histogram with the quantization levels fitted to it, for charts and JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistogramSet {
    pub model: String,
    pub matrix: String,
    pub lo: f32,
    pub hi: f32,
    pub counts: Vec<u64>,
    pub levels: Vec<f32>,
    /// Fraction of exactly-zero weights, which the counts leave out.
    pub sparsity: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    pub epochs: Vec<EpochRow>,
    pub train_progress: Vec<ProgressRow>,
    pub evaluations: Vec<EvaluationRow>,
    pub quant_loss: Vec<QuantLossRow>,
    pub live_loss: Vec<LiveLossRow>,
    pub histograms: Vec<HistogramSet>,
    pub density: Vec<DensityRow>,
    pub weights: Vec<WeightRow>,
}

/// At most `n` points, each the mean of its share of `points` (in order):
/// what a chart draws of a long series, whose every point stays in the data.
pub fn thin(points: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    let n = n.max(1);
    if points.len() <= n {
        return points.to_vec();
    }
    (0..n)
        .filter_map(|i| {
            let part = &points[i * points.len() / n..(i + 1) * points.len() / n];
            (!part.is_empty()).then(|| {
                let k = part.len() as f64;
                (
                    part.iter().map(|p| p.0).sum::<f64>() / k,
                    part.iter().map(|p| p.1).sum::<f64>() / k,
                )
            })
        })
        .collect()
}

impl Series {
    /// Folds one record in; `iterations` is K once an iteration has started.
    pub(super) fn apply(&mut self, r: &Record, iterations: usize, steps_done: usize) {
        match &r.event {
            Event::Weights {
                steps_done,
                phase,
                matrices,
            } => {
                for m in matrices {
                    let p = |i: usize| m.percentiles.get(i).copied().unwrap_or(f32::NAN);
                    self.weights.push(WeightRow {
                        steps_done: *steps_done,
                        phase: phase.id(),
                        matrix: m.name.clone(),
                        norm: m.norm,
                        sparsity: m.sparsity,
                        p0: p(0),
                        p6_7: p(1),
                        p15_9: p(2),
                        p30_9: p(3),
                        p50: p(4),
                        p69_1: p(5),
                        p84_1: p(6),
                        p93_3: p(7),
                        p100: p(8),
                    });
                }
            }
            Event::EpochFinished {
                epoch,
                train_ppl,
                valid_ppl,
                lr,
                seconds,
            } => self.epochs.push(EpochRow {
                epoch: *epoch,
                steps_done,
                lr: *lr,
                train_ppl: *train_ppl,
                valid_ppl: *valid_ppl,
                seconds: *seconds,
            }),
            Event::TrainProgress {
                phase,
                epoch,
                step,
                train_ppl,
                grad_norm,
                lr,
                tokens_per_sec,
                ..
            } => self.train_progress.push(ProgressRow {
                t: r.t,
                steps_done,
                phase: phase.id(),
                epoch: *epoch,
                step: *step,
                train_ppl: *train_ppl,
                grad_norm: *grad_norm,
                lr: *lr,
                tokens_per_sec: *tokens_per_sec,
            }),
            Event::Evaluated {
                split,
                model,
                epoch,
                ppl,
                nll,
                tokens,
            } => self.evaluations.push(EvaluationRow {
                t: r.t,
                split: split.to_string(),
                model: model.to_string(),
                epoch: *epoch,
                ppl: *ppl,
                nll: *nll,
                tokens: *tokens,
            }),
            Event::QuantLoss {
                j,
                step,
                quant_loss,
            } => self.live_loss.push(LiveLossRow {
                iteration: *j,
                step: *step,
                quant_loss: *quant_loss,
            }),
            Event::Quantized {
                model,
                quant_loss,
                matrices,
                ..
            } => {
                let iteration = match model {
                    ModelTag::Iteration { j } => Some(*j),
                    ModelTag::Final => Some(iterations + 1),
                    _ => None,
                };
                let name = model.to_string();
                self.quant_loss.push(QuantLossRow {
                    model: name.clone(),
                    iteration,
                    matrix: "total".into(),
                    quant_loss: *quant_loss,
                });
                for m in matrices {
                    self.quant_loss.push(QuantLossRow {
                        model: name.clone(),
                        iteration,
                        matrix: m.name.clone(),
                        quant_loss: m.quant_loss,
                    });
                }
                self.add_reports(&name, matrices);
            }
            Event::Pruned { matrices, .. } => {
                self.add_reports(&ModelTag::Pruned.to_string(), matrices)
            }
            _ => {}
        }
    }

    fn add_reports(&mut self, model: &str, matrices: &[MatrixReport]) {
        for m in matrices {
            if !m.histogram.counts.is_empty() {
                self.histograms.push(HistogramSet {
                    model: model.into(),
                    matrix: m.name.clone(),
                    lo: m.histogram.lo,
                    hi: m.histogram.hi,
                    counts: m.histogram.counts.clone(),
                    levels: m.levels.clone(),
                    sparsity: m.sparsity,
                });
            }
            let (rows, cols) = m.grid;
            if m.density.len() == rows * cols {
                for (i, d) in m.density.iter().enumerate() {
                    self.density.push(DensityRow {
                        model: model.into(),
                        matrix: m.name.clone(),
                        tile_row: i / cols,
                        tile_col: i % cols,
                        density: *d,
                    });
                }
            }
        }
    }

    /// Histogram rows (one per bin) for CSV.
    pub fn histogram_rows(&self) -> Vec<HistogramRow> {
        let mut out = Vec::new();
        for h in &self.histograms {
            let width = (h.hi - h.lo) / h.counts.len().max(1) as f32;
            for (bin, &count) in h.counts.iter().enumerate() {
                out.push(HistogramRow {
                    model: h.model.clone(),
                    matrix: h.matrix.clone(),
                    bin,
                    lo: h.lo + width * bin as f32,
                    hi: h.lo + width * (bin + 1) as f32,
                    count,
                });
            }
        }
        out
    }

    /// Total quantization loss per iteration (x = iteration, final = K + 1).
    pub fn loss_per_iteration(&self) -> Vec<(f64, f64)> {
        self.quant_loss
            .iter()
            .filter(|r| r.matrix == "total")
            .filter_map(|r| r.iteration.map(|i| (i as f64, r.quant_loss)))
            .collect()
    }

    /// The live loss as (fractional iteration, loss).
    pub fn live_curve(&self) -> Vec<(f64, f64)> {
        let mut last_step = std::collections::HashMap::new();
        for r in &self.live_loss {
            let e = last_step.entry(r.iteration).or_insert(0);
            *e = (*e).max(r.step);
        }
        self.live_loss
            .iter()
            .map(|r| {
                let steps = last_step[&r.iteration].max(1) as f64;
                (r.iteration as f64 + r.step as f64 / steps, r.quant_loss)
            })
            .collect()
    }

    /// Validation perplexity of each iteration's quantized model.
    pub fn valid_per_iteration(&self) -> Vec<(f64, f64)> {
        self.evaluations
            .iter()
            .filter(|e| e.split == "valid" && e.epoch.is_none())
            .filter_map(|e| {
                e.model
                    .strip_prefix("iteration ")
                    .and_then(|j| j.parse::<f64>().ok())
                    .map(|j| (j, e.ppl))
            })
            .collect()
    }

    pub fn eval(&self, model: &str, split: &str) -> Option<f64> {
        self.evaluations
            .iter()
            .rev()
            .find(|e| e.model == model && e.split == split && e.epoch.is_none())
            .map(|e| e.ppl)
    }
}
