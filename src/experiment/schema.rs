//! The experiment file format: what a user writes in RON, with every default.
//!
//! Defaults reproduce Zaremba et al. (2014), "small" configuration, so a file
//! that only names its data source trains the model docs/method.md §9 measures.

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
    /// Start from saved weights (a run directory, or its `weights/fp`)
    /// instead of a random initialisation; `training.epochs` more epochs
    /// follow (0 allowed).
    #[serde(default)]
    pub pretrained: Option<PathBuf>,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub output: OutputConfig,
    /// Magnitude pruning after pre-training; `None` = no pruning.
    #[serde(default)]
    pub pruning: Option<PruningConfig>,
    /// Retraining-based iterative quantization; `None` = train only.
    #[serde(default)]
    pub quantization: Option<QuantizationConfig>,
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
    /// WikiText-2 (Merity et al.), tokenised, version 1. `dir: None` looks
    /// at `IQ_TUI_WIKITEXT2_DIR`, then the user cache directory, and
    /// downloads the published archive (SHA-256 verified) if absent.
    WikiText2 {
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    /// A word-level corpus of your own: a directory with `train.txt`,
    /// `valid.txt` and `test.txt`, or WikiText's `wiki.train.tokens`,
    /// `wiki.valid.tokens` and `wiki.test.tokens`, or the file names given.
    /// The vocabulary is built from the training file.
    Text {
        dir: PathBuf,
        #[serde(default)]
        train: Option<String>,
        #[serde(default)]
        valid: Option<String>,
        #[serde(default)]
        test: Option<String>,
        /// Entries at most, `<eos>` and the unknown token included; the
        /// rarer words map to the unknown token.
        #[serde(default)]
        max_vocab: Option<usize>,
        /// Training words seen fewer times map to the unknown token.
        #[serde(default = "default_min_count")]
        min_count: usize,
        /// The unknown token's spelling (PTB and WikiText write `<unk>`).
        #[serde(default = "default_unk")]
        unk: String,
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

fn default_min_count() -> usize {
    1
}
fn default_unk() -> String {
    "<unk>".into()
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
    /// Tied embeddings (Press & Wolf 2017; `--tied` in PyTorch's
    /// `word_language_model`): the decoder is the embedding matrix, so it
    /// is trained, quantized and stored once. Needs embedding = hidden.
    pub tied: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            layers: 2,
            hidden: 200,
            embed: None,
            dropout: 0.0,
            init_range: 0.1,
            tied: false,
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

/// Loss convention; docs/method.md §8 explains why it matters.
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

/// Which weight matrices a rule applies to. Biases are never quantized or pruned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatrixSet {
    /// Embedding, every LSTM matrix and the decoder.
    All,
    /// Input-to-hidden and hidden-to-hidden matrices of every layer.
    Lstm,
    Embedding,
    Decoder,
    /// By name: `embedding`, `lstm.0.w_ih`, `lstm.0.w_hh`, …, `decoder`.
    Named(Vec<String>),
}

/// Names of the weight matrices of a model with `layers` LSTM layers, in
/// the model's order.
/// Tied, the embedding is the decoder too and there is no `decoder` matrix.
pub fn matrix_names(layers: usize, tied: bool) -> Vec<String> {
    let mut names = vec!["embedding".to_string()];
    for l in 0..layers {
        names.push(format!("lstm.{l}.w_ih"));
        names.push(format!("lstm.{l}.w_hh"));
    }
    if !tied {
        names.push("decoder".to_string());
    }
    names
}

impl MatrixSet {
    /// The matrix names this set selects, or the unknown name it mentions.
    /// Tied, `Embedding` and `Decoder` both select the one shared matrix.
    pub fn resolve(&self, layers: usize, tied: bool) -> Result<Vec<String>, String> {
        let all = matrix_names(layers, tied);
        Ok(match self {
            MatrixSet::All => all,
            MatrixSet::Lstm => all.into_iter().filter(|n| n.starts_with("lstm.")).collect(),
            MatrixSet::Embedding => vec!["embedding".into()],
            MatrixSet::Decoder if tied => vec!["embedding".into()],
            MatrixSet::Decoder => vec!["decoder".into()],
            MatrixSet::Named(names) => {
                if names.is_empty() {
                    return Err(format!(
                        "Named([]) names no matrix; the matrices are: {}",
                        all.join(", ")
                    ));
                }
                if let Some(bad) = names.iter().find(|n| !all.contains(n)) {
                    return Err(format!(
                        "no matrix named {bad:?}; the matrices are: {}",
                        all.join(", ")
                    ));
                }
                names.clone()
            }
        })
    }
}

/// A quantizer (docs/method.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuantMethod {
    Greedy,
    Refined,
    /// `Alternating(T)`: T rounds of least-squares coefficients and code
    /// assignment (Xu et al. use T = 2).
    Alternating(usize),
    /// Uniform levels, the step set by the row's largest weight.
    Uniform,
    /// Uniform levels, the step fitted to the least squared error.
    UniformFitted,
}

/// One group of matrices quantized alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantGroup {
    pub matrices: MatrixSet,
    /// 1 to 4.
    pub bits: usize,
    #[serde(default = "default_method")]
    pub method: QuantMethod,
}

fn default_method() -> QuantMethod {
    QuantMethod::Alternating(2)
}

/// How long a retraining phase lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Length {
    Steps(usize),
    Epochs(usize),
}

/// Full-precision retraining between quantizations (or after pruning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainConfig {
    pub length: Length,
    /// Learning rate of the first retraining phase.
    pub lr: f64,
    /// The rate is multiplied by this after every phase (1 = constant).
    #[serde(default = "one")]
    pub decay: f64,
}

fn one() -> f64 {
    1.0
}

/// The retraining-based iterative schedule (docs/method.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizationConfig {
    /// Which matrices get how many bits by which method. A matrix in no group
    /// stays in full precision; a matrix in two groups is an error.
    pub groups: Vec<QuantGroup>,
    /// Number of quantize → retrain iterations (K). 0 = one-shot only.
    pub iterations: usize,
    pub retrain: RetrainConfig,
    /// One-shot baselines (no retraining) from the same pre-trained model,
    /// each at the groups' bits.
    #[serde(default = "default_baselines")]
    pub baselines: Vec<QuantMethod>,
    /// Retraining steps between records of the live quantization loss.
    #[serde(default = "default_loss_every")]
    pub loss_every: usize,
}

fn default_baselines() -> Vec<QuantMethod> {
    vec![
        QuantMethod::Greedy,
        QuantMethod::Refined,
        QuantMethod::Alternating(2),
        QuantMethod::Uniform,
        QuantMethod::UniformFitted,
    ]
}

fn default_loss_every() -> usize {
    50
}

/// Magnitude pruning (docs/method.md §4), done before the quantization iterations,
/// whose mask then stays frozen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruningConfig {
    #[serde(default = "all")]
    pub matrices: MatrixSet,
    /// Final fraction of pruned weights, in [0, 1).
    pub rate: f64,
    #[serde(default)]
    pub scope: PruneScope,
    #[serde(default)]
    pub schedule: PruneSchedule,
    /// Retraining with the mask applied after every step (for `Gradual`, the
    /// rate rises during this phase).
    pub retrain: RetrainConfig,
}

fn all() -> MatrixSet {
    MatrixSet::All
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PruneScope {
    /// The same rate within every matrix.
    #[default]
    PerMatrix,
    /// One magnitude threshold across all the matrices.
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum PruneSchedule {
    /// Prune to the final rate at once, then retrain.
    #[default]
    OneShot,
    /// Zhu & Gupta's cubic schedule from `initial` to `rate`, updating the
    /// mask every `every` steps over the first `ramp` fraction of retraining.
    Gradual {
        initial: f64,
        every: usize,
        ramp: f64,
    },
}
