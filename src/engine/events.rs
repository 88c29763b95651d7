//! What the engine tells the world. Every event the dashboard shows is also
//! what the run directory records (`events.jsonl`), one JSON object a line,
//! tagged by `type`.

use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::model::ModelDims;

/// An event with the seconds since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub t: f64,
    #[serde(flatten)]
    pub event: Event,
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
    },
    EpochStarted {
        epoch: usize,
        lr: f64,
    },
    /// Emitted every few steps while training.
    TrainProgress {
        epoch: usize,
        step: usize,
        steps_in_epoch: usize,
        /// Perplexity over the steps since the last progress event.
        train_ppl: f64,
        grad_norm: f64,
        lr: f64,
        tokens_per_sec: f64,
        /// Seconds until training ends, from the step rate after warm-up.
        eta_s: Option<f64>,
    },
    Evaluated {
        split: Split,
        /// The epoch just finished; `None` for the final evaluation.
        epoch: Option<usize>,
        ppl: f64,
        nll: f64,
        tokens: usize,
    },
    EpochFinished {
        epoch: usize,
        train_ppl: f64,
        valid_ppl: f64,
        lr: f64,
        seconds: f64,
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
        valid_ppl: f64,
        test_ppl: f64,
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
