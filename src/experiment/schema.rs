//! The experiment file format: what a user writes in RON, with every default.
//!
//! Defaults reproduce Zaremba et al. (2014), "small" configuration, so a file
//! that only names its data source trains the model METHOD.md §7 measures.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One experiment, as parsed from a RON file (after `--set` overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name of the run; used in the run directory name. Letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// The one seed that drives initialisation, dropout and synthetic data.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Where the corpus comes from.
    pub data: DataSource,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub output: OutputConfig,
}

fn default_seed() -> u64 {
    1
}

/// The corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DataSource {
    /// Mikolov's word-level Penn Treebank. `dir: None` looks at `IQ_TUI_PTB_DIR`,
    /// then the user cache directory, and downloads (SHA-256 verified) if absent.
    Ptb {
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    /// A generated corpus with learnable structure (no download needed).
    Synthetic {
        /// Vocabulary size including `<eos>`.
        #[serde(default = "default_synthetic_vocab")]
        vocab: usize,
        #[serde(default = "default_synthetic_train")]
        train_tokens: usize,
        #[serde(default = "default_synthetic_eval")]
        valid_tokens: usize,
        #[serde(default = "default_synthetic_eval")]
        test_tokens: usize,
    },
}

fn default_synthetic_vocab() -> usize {
    200
}
fn default_synthetic_train() -> usize {
    100_000
}
fn default_synthetic_eval() -> usize {
    10_000
}

/// The LSTM language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of stacked LSTM layers.
    pub layers: usize,
    /// Hidden units per LSTM layer.
    pub hidden: usize,
    /// Embedding width; `None` means equal to `hidden`.
    pub embed: Option<usize>,
    /// Dropout probability on non-recurrent connections (0 disables it).
    pub dropout: f64,
    /// Every parameter starts uniform in [-init_range, init_range].
    pub init_range: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            layers: 2,
            hidden: 200,
            embed: None,
            dropout: 0.0,
            init_range: 0.1,
        }
    }
}

impl ModelConfig {
    pub fn embed_size(&self) -> usize {
        self.embed.unwrap_or(self.hidden)
    }
}

/// Full-precision training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Truncated back-propagation length (time steps per segment).
    pub bptt: usize,
    /// Learning rate of plain SGD, in the units of `loss`.
    pub lr: f64,
    pub lr_policy: LrPolicy,
    /// Global gradient-norm clip, in the units of `loss`; `None` disables it.
    pub clip: Option<f64>,
    /// How the loss is scaled, which fixes what `lr` and `clip` mean.
    pub loss: LossScale,
    /// Cap on steps per epoch (smoke tests and quick looks); `None` = whole epoch.
    pub max_steps_per_epoch: Option<usize>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 13,
            batch_size: 20,
            bptt: 20,
            lr: 1.0,
            lr_policy: LrPolicy::DecayAfter {
                epoch: 4,
                factor: 0.5,
            },
            clip: Some(5.0),
            loss: LossScale::SumOverTime,
            max_steps_per_epoch: None,
        }
    }
}

/// Learning-rate schedule across epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LrPolicy {
    /// The same rate every epoch.
    Constant,
    /// Zaremba: keep `lr` for the first `epoch` epochs, then multiply by
    /// `factor` at the start of every later epoch.
    DecayAfter { epoch: usize, factor: f64 },
    /// Multiply by `factor` whenever validation perplexity fails to improve
    /// for `patience` + 1 consecutive epochs.
    Plateau {
        factor: f64,
        #[serde(default)]
        patience: usize,
    },
}

/// Loss convention; METHOD.md §7 explains why it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossScale {
    /// Zaremba's code: cross-entropy summed over the BPTT steps, averaged over
    /// the batch. `lr 1, clip 5` here equals `lr bptt, clip 5/bptt` per token.
    SumOverTime,
    /// Cross-entropy averaged over every token of the batch.
    MeanPerToken,
}

/// Evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Parallel streams while evaluating; 1 gives the exact one-stream PPL.
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { batch_size: 10 }
    }
}

/// Where runs are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Parent directory of run directories (`<dir>/<name>-<timestamp>`).
    pub dir: PathBuf,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("runs"),
        }
    }
}
