//! The one fold of a run's records into what the run looks like: the
//! dashboard draws it, `open` rebuilds it from `events.jsonl`, the headless
//! printer and the report read the same labels, and the report exports its
//! series. A live run and a reopened one therefore look the same.

use std::collections::BTreeMap;

use serde::Serialize;

use super::events::{Event, MatrixReport, ModelTag, Phase, Record, WeightSnapshot};
use super::milestone;
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

/// One training-progress point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrainPoint {
    /// Training steps done in the whole run.
    pub x: f64,
    pub phase: Phase,
    pub ppl: f64,
    pub grad_norm: f64,
    pub lr: f64,
}

/// One weight matrix over the run: its shape and every snapshot of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixTrack {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// (training steps done, snapshot), oldest first.
    pub history: Vec<(f64, WeightSnapshot)>,
}

/// How the run ended, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ending {
    pub valid_ppl: f64,
    pub test_ppl: f64,
    pub seconds: f64,
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
    /// Training progress over the run, every point recorded.
    pub train: Vec<TrainPoint>,
    /// Validation perplexity after each pre-training epoch: (steps done, ppl).
    pub valid_curve: Vec<(f64, f64)>,
    /// The gradient-norm clip threshold.
    pub clip: Option<f64>,
    /// Every weight matrix's snapshots, in model order.
    pub tracks: Vec<MatrixTrack>,
    /// Set once the run finished.
    pub ending: Option<Ending>,
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
        self.series.apply(record, self.iterations, self.steps_done);
        self.log.extend(milestone::lines(&record.event));
    }

    /// Names of the matrices to list: every weight matrix once snapshots
    /// exist, else those with a pruning or quantization report.
    pub fn matrix_names(&self) -> Vec<&str> {
        if self.tracks.is_empty() {
            self.matrices.iter().map(|m| m.name.as_str()).collect()
        } else {
            self.tracks.iter().map(|t| t.name.as_str()).collect()
        }
    }

    pub fn report(&self, name: &str) -> Option<&MatrixReport> {
        self.matrices.iter().find(|m| m.name == name)
    }

    pub fn track(&self, name: &str) -> Option<&MatrixTrack> {
        self.tracks.iter().find(|t| t.name == name)
    }

    fn fold(&mut self, record: &Record) {
        match &record.event {
            Event::Weights {
                steps_done,
                matrices,
                ..
            } => {
                for m in matrices {
                    let i = match self.tracks.iter().position(|t| t.name == m.name) {
                        Some(i) => i,
                        None => {
                            self.tracks.push(MatrixTrack {
                                name: m.name.clone(),
                                rows: m.rows,
                                cols: m.cols,
                                history: Vec::new(),
                            });
                            self.tracks.len() - 1
                        }
                    };
                    self.tracks[i].history.push((*steps_done as f64, m.clone()));
                }
            }
            Event::RunStarted {
                name,
                corpus,
                parameters,
                total_steps,
                epochs,
                clip,
                ..
            } => {
                self.clip = *clip;
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
                phase,
                step,
                grad_norm,
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
                self.train.push(TrainPoint {
                    x: self.steps_done as f64,
                    phase: *phase,
                    ppl: *train_ppl,
                    grad_norm: *grad_norm,
                    lr: *lr,
                });
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
            Event::EpochFinished { valid_ppl, .. } => {
                self.valid_curve.push((self.steps_done as f64, *valid_ppl));
            }
            Event::Continued { total_steps, .. } => {
                self.total_steps = *total_steps;
                self.status = Some(RunStatus::Running);
            }
            Event::Paused => self.status = Some(RunStatus::Paused),
            Event::Resumed => self.status = Some(RunStatus::Running),
            Event::Log { message, .. } => self.log.push(message.clone()),
            Event::Stopped { reason } => {
                self.status = Some(RunStatus::Stopped(reason.clone()));
            }
            Event::Finished {
                valid_ppl,
                test_ppl,
                seconds,
            } => {
                self.ending = Some(Ending {
                    valid_ppl: *valid_ppl,
                    test_ppl: *test_ppl,
                    seconds: *seconds,
                });
                self.status = Some(RunStatus::Finished);
                self.eta_s = Some(0.0);
            }
            Event::Failed { error } => {
                self.status = Some(RunStatus::Failed(error.clone()));
            }
        }
    }
}
