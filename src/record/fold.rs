//! The one fold of a run's records into what the run looks like: the
//! dashboard draws it, `open` rebuilds it from `events.jsonl`, the headless
//! printer and the report read the same labels, and the report exports its
//! series. A live run and a reopened one therefore look the same.

use std::collections::BTreeMap;

use serde::Serialize;

use super::events::{Event, MatrixReport, ModelTag, Phase, Record};
use super::series::Series;
use crate::compress::stats::Histogram;
use crate::data::Split;

/// How the run stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RunStatus {
    Starting,
    Running,
    Paused,
    Stopped(String),
    Finished,
    Failed(String),
}

/// One row of the perplexity table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PplRow {
    pub label: String,
    pub valid: Option<f64>,
    pub test: Option<f64>,
    pub bits: Option<usize>,
    pub quant_loss: Option<f64>,
    pub sparsity: Option<f64>,
    pub packed_bytes: Option<u64>,
    pub fp32_bytes: Option<u64>,
}

/// What the records say about the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunView {
    pub name: String,
    pub corpus: String,
    pub parameters: usize,
    pub total_steps: usize,
    pub phase: Option<Phase>,
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_in_phase: usize,
    /// Training steps done in the whole run.
    pub steps_done: usize,
    pub train_ppl: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub eta_s: Option<f64>,
    pub lr: f64,
    pub status: Option<RunStatus>,
    pub table: Vec<PplRow>,
    /// (iteration, total quantization loss) when each model was quantized;
    /// the final model is iteration K + 1.
    pub loss_per_iteration: Vec<(f64, f64)>,
    /// (iteration + fraction of its retraining, loss) measured while retraining.
    pub live_loss: Vec<(f64, f64)>,
    /// Per matrix: (iteration, loss).
    pub matrix_loss: BTreeMap<String, Vec<(f64, f64)>>,
    /// Training perplexity over the run: (steps done, ppl).
    pub train_curve: Vec<(f64, f64)>,
    /// Latest report per matrix (quantized or pruned), in model order.
    pub matrices: Vec<MatrixReport>,
    /// Histogram of each matrix before its first quantization.
    pub first_histograms: BTreeMap<String, Histogram>,
    pub log: Vec<String>,
    /// Every series as flat rows, for exports.
    pub series: Series,
    iterations: usize,
}

impl RunView {
    pub fn status(&self) -> RunStatus {
        self.status.clone().unwrap_or(RunStatus::Starting)
    }

    fn row(&mut self, label: String) -> &mut PplRow {
        if let Some(i) = self.table.iter().position(|r| r.label == label) {
            return &mut self.table[i];
        }
        self.table.push(PplRow {
            label,
            valid: None,
            test: None,
            bits: None,
            quant_loss: None,
            sparsity: None,
            packed_bytes: None,
            fp32_bytes: None,
        });
        self.table.last_mut().expect("just pushed")
    }

    fn merge_matrices(&mut self, reports: &[MatrixReport]) {
        for r in reports {
            match self.matrices.iter_mut().find(|m| m.name == r.name) {
                Some(m) => *m = r.clone(),
                None => self.matrices.push(r.clone()),
            }
        }
    }

    /// The fold of a whole record.
    pub fn from_records(records: &[Record]) -> Self {
        let mut view = Self::default();
        for r in records {
            view.apply(r);
        }
        view
    }

    /// Folds one record in.
    pub fn apply(&mut self, record: &Record) {
        self.fold(record);
        self.series.apply(record, self.iterations);
    }

    fn fold(&mut self, record: &Record) {
        match &record.event {
            Event::RunStarted {
                name,
                corpus,
                parameters,
                total_steps,
                epochs,
                ..
            } => {
                self.name = name.clone();
                self.corpus = corpus.clone();
                self.parameters = *parameters;
                self.total_steps = *total_steps;
                self.epochs = *epochs;
                self.status = Some(RunStatus::Running);
            }
            Event::PhaseStarted { phase, lr, steps } => {
                self.phase = Some(*phase);
                self.lr = *lr;
                self.step = 0;
                self.steps_in_phase = *steps;
                if let Phase::Iteration { of, .. } = phase {
                    self.iterations = *of;
                }
            }
            Event::EpochStarted { epoch, lr } => {
                self.epoch = *epoch;
                self.lr = *lr;
                self.step = 0;
            }
            Event::TrainProgress {
                step,
                steps_in_epoch,
                train_ppl,
                lr,
                tokens_per_sec,
                eta_s,
                ..
            } => {
                if *step > self.step {
                    self.steps_done += step - self.step;
                }
                self.step = *step;
                self.steps_in_phase = *steps_in_epoch;
                self.train_ppl = Some(*train_ppl);
                self.tokens_per_sec = Some(*tokens_per_sec);
                self.eta_s = *eta_s;
                self.lr = *lr;
                self.train_curve.push((self.steps_done as f64, *train_ppl));
            }
            Event::QuantLoss {
                j,
                step,
                quant_loss,
            } => {
                let x = (*j - 1) as f64 + *step as f64 / self.steps_in_phase.max(1) as f64;
                self.live_loss.push((x + 1.0, *quant_loss));
            }
            Event::Pruned { sparsity, matrices } => {
                self.merge_matrices(matrices);
                self.row("pruned".into()).sparsity = Some(*sparsity);
            }
            Event::Quantized {
                model,
                quant_loss,
                packed_bytes,
                fp32_bytes,
                matrices,
            } => {
                let label = model.to_string();
                let iteration = match model {
                    ModelTag::Iteration { j } => Some(*j as f64),
                    ModelTag::Final => Some((self.iterations + 1) as f64),
                    _ => None,
                };
                if let Some(x) = iteration {
                    self.loss_per_iteration.push((x, *quant_loss));
                    for m in matrices {
                        self.matrix_loss
                            .entry(m.name.clone())
                            .or_default()
                            .push((x, m.quant_loss));
                        if !m.histogram.counts.is_empty() {
                            self.first_histograms
                                .entry(m.name.clone())
                                .or_insert_with(|| m.histogram.clone());
                        }
                    }
                    self.merge_matrices(matrices);
                }
                let (zeros, total) = matrices.iter().fold((0.0, 0.0), |(z, t), m| {
                    let n = (m.rows * m.cols) as f64;
                    (z + m.sparsity * n, t + n)
                });
                let row = self.row(label);
                row.bits = matrices
                    .first()
                    .and_then(|m| m.bits)
                    .filter(|b| matrices.iter().all(|m| m.bits == Some(*b)));
                row.quant_loss = Some(*quant_loss);
                row.packed_bytes = Some(*packed_bytes);
                row.fp32_bytes = Some(*fp32_bytes);
                row.sparsity = Some(if total > 0.0 { zeros / total } else { 0.0 });
            }
            Event::Evaluated {
                split,
                model,
                epoch: None,
                ppl,
                ..
            } => {
                let row = self.row(model.to_string());
                match split {
                    Split::Valid => row.valid = Some(*ppl),
                    Split::Test => row.test = Some(*ppl),
                    Split::Train => {}
                }
            }
            Event::Evaluated { .. } => {}
            Event::EpochFinished {
                epoch,
                train_ppl,
                valid_ppl,
                ..
            } => {
                self.log.push(format!(
                    "epoch {epoch}: train ppl {train_ppl:.2}, valid ppl {valid_ppl:.2}"
                ));
            }
            Event::Continued {
                position,
                total_steps,
            } => {
                self.log
                    .push(format!("resumed from a checkpoint: {position}"));
                self.total_steps = *total_steps;
                self.status = Some(RunStatus::Running);
            }
            Event::Paused => self.status = Some(RunStatus::Paused),
            Event::Resumed => self.status = Some(RunStatus::Running),
            Event::Log { message, .. } => self.log.push(message.clone()),
            Event::Stopped { reason } => {
                self.log.push(format!("stopped: {reason}"));
                self.status = Some(RunStatus::Stopped(reason.clone()));
            }
            Event::Finished { .. } => {
                self.log.push("finished".into());
                self.status = Some(RunStatus::Finished);
                self.eta_s = Some(0.0);
            }
            Event::Failed { error } => {
                self.log.push(format!("failed: {error}"));
                self.status = Some(RunStatus::Failed(error.clone()));
            }
        }
    }
}
