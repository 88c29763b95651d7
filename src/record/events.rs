//! What the engine tells the world. Every event the dashboard shows is also
//! what the run directory records (`events.jsonl`), one JSON object a line,
//! tagged by `type`. The labels of phases and models are defined here once,
//! as `Display`, for every screen and file that names them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compress::stats::Histogram;
use crate::data::Split;
use crate::model::ModelDims;

/// An event with the seconds since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(with = "crate::record::float")]
    pub t: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// Where the schedule is (docs/method.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Full-precision training.
    Pretrain,
    /// Pruning and retraining with the mask.
    Prune,
    /// One-shot quantization baselines (no retraining).
    OneShot,
    /// Quantize, evaluate, retrain: iteration j of K.
    Iteration { j: usize, of: usize },
    /// The last quantization and the deliverable's evaluation.
    Final,
}

/// Which model a measurement is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelTag {
    /// Full precision, after pre-training.
    Fp,
    /// Pruned and retrained, full precision.
    Pruned,
    /// One-shot quantization of the pre-trained model with `method`.
    OneShot { method: String },
    /// Quantized at the start of iteration j (before its retraining).
    Iteration { j: usize },
    /// The deliverable: quantized after the last retraining.
    Final,
}

/// One matrix after quantization (or pruning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// `None` when the matrix stays in full precision.
    pub bits: Option<usize>,
    pub method: Option<String>,
    /// ‖W − Q(W)‖² / ‖W‖² (0 when not quantized).
    #[serde(with = "crate::record::float")]
    pub quant_loss: f64,
    #[serde(with = "crate::record::float")]
    pub squared_error: f64,
    #[serde(with = "crate::record::float")]
    pub squared_norm: f64,
    /// Fraction of exactly-zero weights.
    #[serde(with = "crate::record::float")]
    pub sparsity: f64,
    pub packed_bytes: u64,
    pub fp32_bytes: u64,
    /// Full-precision weights just before quantization.
    pub histogram: Histogram,
    /// The 2^k levels Σ ±ᾱ_i of the row-averaged coefficients.
    pub levels: Vec<f32>,
    /// Kept fraction per tile, `grid.0 × grid.1` row-major.
    pub density: Vec<f32>,
    pub grid: (usize, usize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        name: String,
        seed: u64,
        corpus: String,
        vocab: usize,
        train_tokens: usize,
        valid_tokens: usize,
        test_tokens: usize,
        dims: ModelDims,
        parameters: usize,
        steps_per_epoch: usize,
        epochs: usize,
        /// Training steps in the whole schedule (pre-training and retraining).
        total_steps: usize,
        /// GEMM backend and threads (absent in runs recorded before it was).
        #[serde(default)]
        arithmetic: Option<crate::model::Arithmetic>,
    },
    PhaseStarted {
        phase: Phase,
        #[serde(with = "crate::record::float")]
        lr: f64,
        steps: usize,
    },
    EpochStarted {
        epoch: usize,
        #[serde(with = "crate::record::float")]
        lr: f64,
    },
    /// Emitted every few training steps, in any phase.
    TrainProgress {
        phase: Phase,
        /// Pre-training epoch (1-based); 0 outside pre-training.
        epoch: usize,
        step: usize,
        /// Steps in this epoch (pre-training) or this phase (retraining).
        steps_in_epoch: usize,
        /// Perplexity over the steps since the last progress event.
        #[serde(with = "crate::record::float")]
        train_ppl: f64,
        #[serde(with = "crate::record::float")]
        grad_norm: f64,
        #[serde(with = "crate::record::float")]
        lr: f64,
        #[serde(with = "crate::record::float")]
        tokens_per_sec: f64,
        /// Seconds until the last training step, from the step rate after warm-up.
        #[serde(default, with = "crate::record::float::option")]
        eta_s: Option<f64>,
    },
    /// Quantization loss of the current weights, measured during retraining.
    QuantLoss {
        j: usize,
        step: usize,
        #[serde(with = "crate::record::float")]
        quant_loss: f64,
    },
    Pruned {
        #[serde(with = "crate::record::float")]
        sparsity: f64,
        matrices: Vec<MatrixReport>,
    },
    Quantized {
        model: ModelTag,
        /// Σ squared error / Σ squared norm over the quantized matrices.
        #[serde(with = "crate::record::float")]
        quant_loss: f64,
        packed_bytes: u64,
        fp32_bytes: u64,
        matrices: Vec<MatrixReport>,
    },
    Evaluated {
        split: Split,
        model: ModelTag,
        /// The pre-training epoch just finished; `None` otherwise.
        epoch: Option<usize>,
        #[serde(with = "crate::record::float")]
        ppl: f64,
        #[serde(with = "crate::record::float")]
        nll: f64,
        tokens: usize,
    },
    EpochFinished {
        epoch: usize,
        #[serde(with = "crate::record::float")]
        train_ppl: f64,
        #[serde(with = "crate::record::float")]
        valid_ppl: f64,
        #[serde(with = "crate::record::float")]
        lr: f64,
        #[serde(with = "crate::record::float")]
        seconds: f64,
    },
    /// A stopped or killed run continues from a checkpoint; the events after
    /// the checkpoint were cut from the log and are replayed from here.
    Continued {
        position: String,
        total_steps: usize,
    },
    Paused,
    Resumed,
    Log {
        level: LogLevel,
        message: String,
    },
    /// The run was stopped before its end; records so far are consistent.
    Stopped {
        reason: String,
    },
    Finished {
        #[serde(with = "crate::record::float")]
        valid_ppl: f64,
        #[serde(with = "crate::record::float")]
        test_ppl: f64,
        #[serde(with = "crate::record::float")]
        seconds: f64,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// How a phase is named on screen: `pre-training`, `iteration 2/5`, …
impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Pretrain => f.write_str("pre-training"),
            Phase::Prune => f.write_str("pruning and retraining"),
            Phase::OneShot => f.write_str("one-shot baselines"),
            Phase::Iteration { j, of } => write!(f, "iteration {j}/{of}"),
            Phase::Final => f.write_str("final quantization"),
        }
    }
}

impl Phase {
    /// A stable, machine-readable name for data files (`train_progress.csv`):
    /// `pretrain`, `prune`, `one_shot`, `iteration 2`, `final`.
    pub fn id(&self) -> String {
        match self {
            Phase::Pretrain => "pretrain".into(),
            Phase::Prune => "prune".into(),
            Phase::OneShot => "one_shot".into(),
            Phase::Iteration { j, .. } => format!("iteration {j}"),
            Phase::Final => "final".into(),
        }
    }
}

/// How a model is named in tables, logs and data files: `full precision`,
/// `pruned`, `one-shot greedy`, `iteration 3`, `final`.
impl fmt::Display for ModelTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelTag::Fp => f.write_str("full precision"),
            ModelTag::Pruned => f.write_str("pruned"),
            ModelTag::OneShot { method } => write!(f, "one-shot {method}"),
            ModelTag::Iteration { j } => write!(f, "iteration {j}"),
            ModelTag::Final => f.write_str("final"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reader_names_phases_and_models_the_same_way() {
        assert_eq!(
            Phase::Iteration { j: 2, of: 5 }.to_string(),
            "iteration 2/5"
        );
        assert_eq!(Phase::OneShot.id(), "one_shot");
        let greedy = ModelTag::OneShot {
            method: "greedy".into(),
        };
        assert_eq!(greedy.to_string(), "one-shot greedy");
        assert_eq!(ModelTag::Fp.to_string(), "full precision");
    }
}
