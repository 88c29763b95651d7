//! What a finished run measured: `summary.json`. Written by the engine the
//! moment a run ends; read by the report, `export-model` and the explorer.

use serde::{Deserialize, Serialize};

use crate::model::Arithmetic;

/// What a finished run measured (`summary.json`; README documents every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub seed: u64,
    /// Full-precision model after pre-training.
    pub fp: PplPair,
    pub epochs: Vec<EpochSummary>,
    /// After pruning and its retraining (full precision), if the run prunes.
    pub pruned: Option<PrunedSummary>,
    /// One-shot quantization of the same model, per baseline method.
    pub one_shot: Vec<OneShotSummary>,
    /// Iteration j: quantization loss of the weights before quantizing, and
    /// the quantized model's validation perplexity.
    pub iterations: Vec<IterationSummary>,
    /// The deliverable: quantized after the last retraining.
    #[serde(rename = "final")]
    pub final_model: Option<FinalSummary>,
    /// Seconds spent in training steps (all phases).
    #[serde(with = "crate::record::float")]
    pub train_seconds: f64,
    /// Mean training throughput over all steps.
    #[serde(with = "crate::record::float")]
    pub train_tokens_per_sec: f64,
    /// The GEMM backend and threads that finished the run.
    #[serde(default)]
    pub arithmetic: Option<Arithmetic>,
    /// The corpus the run read (absent in runs from before it was recorded).
    #[serde(default)]
    pub corpus: Option<CorpusSummary>,
}

/// A corpus as a run read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusSummary {
    /// Where it came from, with its counts.
    pub source: String,
    /// Entries, `<eos>` and any unknown token included.
    pub vocabulary: usize,
    /// Tokens of train, valid and test, an `<eos>` per line included.
    pub tokens: [usize; 3],
    /// The fraction of each split's tokens read as the unknown token.
    pub unknown_rate: [f64; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunedSummary {
    #[serde(with = "crate::record::float")]
    pub sparsity: f64,
    #[serde(with = "crate::record::float")]
    pub valid_ppl: f64,
    #[serde(with = "crate::record::float")]
    pub test_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneShotSummary {
    /// Bits when every group has the same; `None` for mixed groups.
    pub bits: Option<usize>,
    pub method: String,
    #[serde(with = "crate::record::float")]
    pub quant_loss: f64,
    #[serde(with = "crate::record::float")]
    pub valid_ppl: f64,
    #[serde(with = "crate::record::float")]
    pub test_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationSummary {
    pub iteration: usize,
    #[serde(with = "crate::record::float")]
    pub quant_loss: f64,
    #[serde(with = "crate::record::float")]
    pub valid_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalSummary {
    pub bits: Option<usize>,
    pub method: String,
    #[serde(with = "crate::record::float")]
    pub quant_loss: f64,
    #[serde(with = "crate::record::float")]
    pub valid_ppl: f64,
    #[serde(with = "crate::record::float")]
    pub test_ppl: f64,
    /// Fraction of zero weights over all weight matrices.
    #[serde(with = "crate::record::float")]
    pub sparsity: f64,
    /// Real packed size: codes, coefficients (f32), masks, full-precision
    /// matrices and biases (docs/method.md §5).
    pub packed_bytes: u64,
    pub fp32_bytes: u64,
    pub matrices: Vec<MatrixSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixSummary {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: Option<usize>,
    #[serde(with = "crate::record::float")]
    pub sparsity: f64,
    #[serde(with = "crate::record::float")]
    pub quant_loss: f64,
    pub packed_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PplPair {
    #[serde(with = "crate::record::float")]
    pub valid_ppl: f64,
    #[serde(with = "crate::record::float")]
    pub test_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: usize,
    #[serde(with = "crate::record::float")]
    pub lr: f64,
    #[serde(with = "crate::record::float")]
    pub train_ppl: f64,
    #[serde(with = "crate::record::float")]
    pub valid_ppl: f64,
    #[serde(with = "crate::record::float")]
    pub seconds: f64,
}
