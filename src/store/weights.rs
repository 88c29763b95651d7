//! Model weights on disk: one `.npy` per parameter (rows = output units, as
//! `LstmLm::read_param` gives them), the sizes, and the vocabulary, so a
//! trained model can be the starting point of later experiments and its
//! matrices can be opened from NumPy or PyTorch.
//!
//! ```text
//! <dir>/model.json       sizes and the parameter list
//! <dir>/vocab.txt        one word per line, in id order
//! <dir>/<param>.npy      e.g. lstm.0.w_ih.npy (4·hidden × input), decoder.npy
//! <dir>/codes.safetensors   quantized models: per matrix `<name>.alphas`
//!                        (rows × bits, f32) and `<name>.codes` (rows × cols,
//!                        u8: bit i set = +α_i), SHA-256 checked
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::npy::{read_npy, write_npy, Matrix, NpyError};

/// A model's parameters by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub manifest: Manifest,
    pub vocab: Vec<String>,
    /// In manifest order.
    pub params: Vec<Matrix>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub vocab: usize,
    pub embed: usize,
    pub hidden: usize,
    pub layers: usize,
    /// The decoder is the embedding matrix (no `decoder` parameter).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tied: bool,
    /// (name, rows, cols) in the model's order.
    pub params: Vec<(String, usize, usize)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error(transparent)]
    Npy(#[from] NpyError),
}

pub fn save(dir: &Path, weights: &Weights) -> Result<(), WeightsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WeightsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    for ((name, _, _), m) in weights.manifest.params.iter().zip(&weights.params) {
        write_npy(&dir.join(format!("{name}.npy")), m)?;
    }
    let mut vocab = weights.vocab.join("\n");
    vocab.push('\n');
    let vocab_path = dir.join("vocab.txt");
    crate::atomic::write(&vocab_path, vocab.as_bytes()).map_err(io(&vocab_path))?;
    // The manifest goes last: a directory without it is incomplete.
    let manifest = serde_json::to_string_pretty(&weights.manifest).expect("serialisable");
    let manifest_path = dir.join("model.json");
    crate::atomic::write(&manifest_path, manifest.as_bytes()).map_err(io(&manifest_path))
}

/// Loads weights from `dir`, or from `dir/weights/fp` when `dir` is a run directory.
pub fn load(dir: &Path) -> Result<Weights, WeightsError> {
    let dir = if dir.join("model.json").is_file() {
        dir.to_path_buf()
    } else {
        dir.join("weights").join("fp")
    };
    let manifest_path = dir.join("model.json");
    let text = fs::read_to_string(&manifest_path).map_err(|source| WeightsError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| WeightsError::Bad {
        path: manifest_path.clone(),
        message: format!("not a weights manifest: {e}"),
    })?;
    let vocab_path = dir.join("vocab.txt");
    let vocab: Vec<String> = fs::read_to_string(&vocab_path)
        .map_err(|source| WeightsError::Io {
            path: vocab_path.clone(),
            source,
        })?
        .lines()
        .map(str::to_string)
        .collect();
    if vocab.len() != manifest.vocab {
        return Err(WeightsError::Bad {
            path: vocab_path,
            message: format!("{} words; model.json says {}", vocab.len(), manifest.vocab),
        });
    }
    let mut params = Vec::with_capacity(manifest.params.len());
    for (name, rows, cols) in &manifest.params {
        let path = dir.join(format!("{name}.npy"));
        let m = read_npy(&path)?;
        if (m.rows, m.cols) != (*rows, *cols) {
            return Err(WeightsError::Bad {
                path,
                message: format!("is {}×{}; model.json says {rows}×{cols}", m.rows, m.cols),
            });
        }
        if let Some(i) = m.values.iter().position(|x| !x.is_finite()) {
            return Err(WeightsError::Bad {
                path,
                message: format!("entry {i} is {}", m.values[i]),
            });
        }
        params.push(m);
    }
    Ok(Weights {
        manifest,
        vocab,
        params,
    })
}

/// File name of a quantized model's codes beside its weights.
pub const CODES_FILE: &str = "codes.safetensors";

/// Writes codes atomically (see `store::checkpoint` for the format).
pub fn save_codes(
    path: &Path,
    state: String,
    tensors: Vec<super::checkpoint::NamedTensor>,
) -> Result<(), WeightsError> {
    let bytes = super::checkpoint::encode(&super::checkpoint::CheckpointFile {
        state,
        events_len: 0,
        tensors,
    });
    crate::atomic::write(path, &bytes).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })
}
