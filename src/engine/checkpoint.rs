//! What a checkpoint holds, and turning the engine's state into one and back.
//! Everything that influences the arithmetic after the checkpoint is in it
//! (weights, masks, carried LSTM state, data cursor, dropout RNG, warm-start
//! codes, learning-rate state, results so far), so a resumed run computes
//! the same numbers as one that never stopped.

use std::collections::HashMap;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compress::Quantized;
use crate::data::Corpus;
use crate::model::LstmLm;
use crate::record::{EpochSummary, IterationSummary, OneShotSummary, PplPair, PrunedSummary};
use crate::store::checkpoint::{CheckpointFile, NamedTensor, TensorData};

/// One vector per LSTM layer.
pub type PerLayer = Vec<Vec<f32>>;

/// Bumped when the state's meaning changes; older checkpoints are refused.
pub const FORMAT: u32 = 1;

/// Where in the schedule a checkpoint was taken: the next thing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Pre-training epoch `epoch` (1-based) with `step` steps done; past the
    /// last epoch means pre-training is over.
    Pretrain { epoch: usize, step: usize },
    /// Pruning has started; its retraining has `step` steps done.
    Prune { step: usize },
    /// Everything before quantization is done.
    Baselines,
    /// Iterations before `j` are done; iteration `j` has not started.
    Iteration { j: usize },
    /// Iteration `j` is quantized and evaluated; its retraining has `step` steps done.
    Retrain { j: usize, step: usize },
}

/// The schedule's stages, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Pretrain,
    Prune,
    Baselines,
    Iterate,
}

impl Position {
    /// The stage this position is in.
    pub fn stage(self) -> Stage {
        match self {
            Position::Pretrain { .. } => Stage::Pretrain,
            Position::Prune { .. } => Stage::Prune,
            Position::Baselines => Stage::Baselines,
            Position::Iteration { .. } | Position::Retrain { .. } => Stage::Iterate,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Position::Pretrain { epoch, step: 0 } => format!("start of pre-training epoch {epoch}"),
            Position::Pretrain { epoch, step } => {
                format!("pre-training epoch {epoch}, step {step}")
            }
            Position::Prune { step } => format!("pruning, retraining step {step}"),
            Position::Baselines => "start of quantization".into(),
            Position::Iteration { j } => format!("start of iteration {j}"),
            Position::Retrain { j, step } => format!("iteration {j}, retraining step {step}"),
        }
    }
}

/// Results measured before the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub epochs: Vec<EpochSummary>,
    pub fp: Option<PplPair>,
    pub pruned: Option<PrunedSummary>,
    pub one_shot: Vec<OneShotSummary>,
    pub iterations: Vec<IterationSummary>,
}

/// Learning-rate state of the plateau policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    pub lr: f64,
    pub best_valid: Option<f64>,
    pub bad_epochs: usize,
}

/// The trainer's place in the data and its counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    pub cursor: usize,
    pub rng: ChaCha8Rng,
    pub done_steps: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub phase_nll: f64,
    pub phase_count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmInfo {
    pub index: usize,
    pub rows: usize,
    pub cols: usize,
    pub bits: usize,
}

/// The JSON part of a checkpoint (tensors hold the rest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    pub program_version: String,
    /// SHA-256 of the run's `experiment.ron` when it started.
    pub experiment_sha256: String,
    /// SHA-256 of the corpus' token ids and vocabulary.
    pub corpus_sha256: String,
    pub position: Position,
    /// Seconds since the run started (the event clock).
    pub t: f64,
    pub progress: Progress,
    pub plateau: Plateau,
    pub trainer: TrainerState,
    /// Parameter indices that carry a pruning mask.
    pub masked: Vec<usize>,
    pub warm: Vec<WarmInfo>,
    pub layers: usize,
    pub batch: usize,
    /// GEMM backend and threads of the process that wrote it.
    #[serde(default)]
    pub arithmetic: Option<crate::model::Arithmetic>,
}

/// A checkpoint read back for resuming.
#[derive(Debug, Clone)]
pub struct Resume {
    pub state: State,
    pub file: CheckpointFile,
}

impl Resume {
    pub fn from_file(file: CheckpointFile) -> Result<Self, String> {
        let state: State = serde_json::from_str(&file.state)
            .map_err(|e| format!("its state does not parse: {e}"))?;
        if state.format != FORMAT {
            return Err(format!(
                "written in checkpoint format {} by iq-tui {}; this is format {FORMAT}",
                state.format, state.program_version
            ));
        }
        Ok(Self { state, file })
    }

    fn f32s(&self, name: &str, len: usize) -> Result<&[f32], String> {
        match self.file.tensor(name).map(|t| &t.data) {
            Some(TensorData::F32(v)) if v.len() == len => Ok(v),
            Some(_) => Err(format!("tensor {name} has the wrong type or size")),
            None => Err(format!("tensor {name} is missing")),
        }
    }

    fn u8s(&self, name: &str, len: usize) -> Result<&[u8], String> {
        match self.file.tensor(name).map(|t| &t.data) {
            Some(TensorData::U8(v)) if v.len() == len => Ok(v),
            Some(_) => Err(format!("tensor {name} has the wrong type or size")),
            None => Err(format!("tensor {name} is missing")),
        }
    }

    /// Writes the checkpoint's weights and masks into `model`.
    pub fn restore_model(&self, model: &mut LstmLm<f32>) -> Result<(), String> {
        let params = model.params();
        for (i, p) in params.iter().enumerate() {
            let values = self.f32s(&format!("param/{}", p.name), p.rows * p.cols)?;
            model.write_param(i, values);
        }
        for &i in &self.state.masked {
            let p = params.get(i).ok_or("mask of an unknown parameter")?;
            let m = self.u8s(&format!("mask/{}", p.name), p.rows * p.cols)?;
            let mask: Vec<bool> = m.iter().map(|&b| b != 0).collect();
            model.set_mask(i, Some(&mask));
        }
        Ok(())
    }

    /// Carried LSTM state: h and c per layer, row-major batch × hidden.
    pub fn lstm_state(&self, hidden: usize) -> Result<(PerLayer, PerLayer), String> {
        let len = self.state.batch * hidden;
        let get = |what: &str| {
            (0..self.state.layers)
                .map(|l| {
                    self.f32s(&format!("state/{what}/{l}"), len)
                        .map(<[f32]>::to_vec)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((get("h")?, get("c")?))
    }

    pub fn warm(&self) -> Result<HashMap<usize, Quantized>, String> {
        let mut out = HashMap::new();
        for w in &self.state.warm {
            let n = w.rows * w.cols;
            out.insert(
                w.index,
                Quantized {
                    rows: w.rows,
                    cols: w.cols,
                    bits: w.bits,
                    values: self.f32s(&format!("warm/{}/values", w.index), n)?.to_vec(),
                    alphas: self
                        .f32s(&format!("warm/{}/alphas", w.index), w.rows * w.bits)?
                        .to_vec(),
                    codes: self.u8s(&format!("warm/{}/codes", w.index), n)?.to_vec(),
                },
            );
        }
        Ok(out)
    }
}

/// Tensors of a checkpoint: weights, masks, carried state, warm codes.
pub fn tensors(
    model: &LstmLm<f32>,
    lstm_state: (&[Vec<f32>], &[Vec<f32>]),
    batch: usize,
    warm: &HashMap<usize, Quantized>,
) -> (Vec<NamedTensor>, Vec<usize>, Vec<WarmInfo>) {
    let mut out = Vec::new();
    let mut masked = Vec::new();
    for (i, p) in model.params().iter().enumerate() {
        out.push(NamedTensor::f32(
            format!("param/{}", p.name),
            vec![p.rows, p.cols],
            model.read_param(i),
        ));
        if let Some(m) = model.mask(i) {
            masked.push(i);
            out.push(NamedTensor::u8(
                format!("mask/{}", p.name),
                vec![p.rows, p.cols],
                m.iter().map(|&k| k as u8).collect(),
            ));
        }
    }
    let hidden = model.dims().hidden;
    for (what, layers) in [("h", lstm_state.0), ("c", lstm_state.1)] {
        for (l, v) in layers.iter().enumerate() {
            out.push(NamedTensor::f32(
                format!("state/{what}/{l}"),
                vec![batch, hidden],
                v.clone(),
            ));
        }
    }
    let mut infos = Vec::new();
    let mut indices: Vec<_> = warm.keys().copied().collect();
    indices.sort_unstable();
    for index in indices {
        let q = &warm[&index];
        infos.push(WarmInfo {
            index,
            rows: q.rows,
            cols: q.cols,
            bits: q.bits,
        });
        out.push(NamedTensor::f32(
            format!("warm/{index}/values"),
            vec![q.rows, q.cols],
            q.values.clone(),
        ));
        out.push(NamedTensor::f32(
            format!("warm/{index}/alphas"),
            vec![q.rows, q.bits],
            q.alphas.clone(),
        ));
        out.push(NamedTensor::u8(
            format!("warm/{index}/codes"),
            vec![q.rows, q.cols],
            q.codes.clone(),
        ));
    }
    (out, masked, infos)
}

/// Identifies a corpus, so a run is never resumed on other data.
pub fn corpus_sha256(corpus: &Corpus) -> String {
    let mut h = Sha256::new();
    for split in [&corpus.train, &corpus.valid, &corpus.test] {
        h.update((split.len() as u64).to_le_bytes());
        for t in split.iter() {
            h.update(t.to_le_bytes());
        }
    }
    for w in corpus.vocab.words() {
        h.update(w.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
