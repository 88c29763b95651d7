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

/// Percentiles recorded for each weight snapshot: TensorBoard's
/// distribution bands (min, ±1.5σ, ±1σ, ±0.5σ of a normal, median, max).
pub const PERCENTILES: [f64; 9] = [0.0, 6.68, 15.87, 30.85, 50.0, 69.15, 84.13, 93.32, 100.0];

/// One matrix's weights at one moment of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightSnapshot {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// Frobenius norm ‖W‖.
    #[serde(with = "crate::record::float")]
    pub norm: f64,
    /// Fraction of exactly-zero weights.
    #[serde(with = "crate::record::float")]
    pub sparsity: f64,
    /// The non-zero weights at [`PERCENTILES`].
    pub percentiles: Vec<f32>,
    /// Histogram of the non-zero weights over their symmetric range.
    pub histogram: Histogram,
}

impl WeightSnapshot {
    /// Bins of a snapshot's histogram: fine enough to see the shape, small
    /// enough that a few hundred snapshots of every matrix stay a few MB.
    pub const BINS: usize = 41;

    /// The snapshot of a `rows × cols` matrix's values.
    pub fn of(name: &str, rows: usize, cols: usize, values: &[f32]) -> Self {
        let mut nonzero: Vec<f32> = values.iter().copied().filter(|&x| x != 0.0).collect();
        // Each percentile by selection within what is right of the last,
        // not a full sort: a snapshot of a 10k × 650 decoder stays cheap.
        let n = nonzero.len();
        let mut from = 0;
        let percentiles = PERCENTILES
            .iter()
            .map(|&p| {
                if n == 0 {
                    return 0.0;
                }
                let k = ((p / 100.0 * (n - 1) as f64).round() as usize).clamp(from, n - 1);
                let (_, v, _) = nonzero[from..].select_nth_unstable_by(k - from, f32::total_cmp);
                let v = *v;
                from = k;
                v
            })
            .collect();
        let norm = values
            .iter()
            .map(|&x| x as f64 * x as f64)
            .sum::<f64>()
            .sqrt();
        Self {
            name: name.to_string(),
            rows,
            cols,
            norm,
            sparsity: 1.0 - nonzero.len() as f64 / values.len().max(1) as f64,
            percentiles,
            histogram: crate::compress::stats::histogram(values, Self::BINS),
        }
    }
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
        /// The gradient-norm clip threshold, if any (absent in older runs).
        #[serde(default, with = "crate::record::float::option")]
        clip: Option<f64>,
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
        /// Seconds until the last training step, from this process's wall-clock
        /// rate per step after warm-up (evaluations included, pauses not).
        #[serde(default, with = "crate::record::float::option")]
        eta_s: Option<f64>,
    },
    /// The weight matrices as they train: recorded at the start of training
    /// and every few steps after (a few hundred times over a whole run).
    Weights {
        /// Training steps done in the whole run.
        steps_done: usize,
        phase: Phase,
        matrices: Vec<WeightSnapshot>,
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

    proptest::proptest! {
        #[test]
        fn percentiles_by_selection_are_those_of_the_sorted_weights(
            values in proptest::collection::vec(-3.0f32..3.0, 1..400)
        ) {
            let s = WeightSnapshot::of("w", 1, values.len(), &values);
            let mut sorted: Vec<f32> = values.iter().copied().filter(|&x| x != 0.0).collect();
            sorted.sort_by(f32::total_cmp);
            for (p, got) in PERCENTILES.iter().zip(&s.percentiles) {
                let want = match sorted.len() {
                    0 => 0.0,
                    n => sorted[((p / 100.0 * (n - 1) as f64).round() as usize).min(n - 1)],
                };
                proptest::prop_assert_eq!(*got, want);
            }
        }
    }

    #[test]
    fn a_snapshot_counts_zeros_apart_and_orders_its_percentiles() {
        let values: Vec<f32> = (0..100)
            .map(|i| if i % 4 == 0 { 0.0 } else { i as f32 - 49.5 })
            .collect();
        let s = WeightSnapshot::of("w", 10, 10, &values);
        assert!((s.sparsity - 0.25).abs() < 1e-12);
        assert_eq!(s.percentiles.len(), PERCENTILES.len());
        assert!(s.percentiles.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!((s.percentiles[0], s.percentiles[8]), (-48.5, 49.5));
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 75);
        let norm: f64 = values.iter().map(|&x| (x * x) as f64).sum::<f64>().sqrt();
        assert!((s.norm - norm).abs() < 1e-9);
    }
}
