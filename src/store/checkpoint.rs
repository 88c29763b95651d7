//! Checkpoint files: what the engine needs to continue a run exactly, as
//! safetensors (so they open from Python too) with a SHA-256 over everything
//! in them, written atomically. The engine decides what goes in (its state as
//! JSON plus named tensors); this module only keeps it safe on disk.
//!
//! ```text
//! <run>/checkpoints/ckpt-000007.safetensors   newest
//! <run>/checkpoints/ckpt-000006.safetensors   kept until a newer one is complete
//! ```
//!
//! Metadata keys: `iq_tui_state` (the engine's JSON), `events_len` (bytes of
//! `events.jsonl` written when the checkpoint was taken: a resume cuts the
//! log back to it), `sha256` (hex, over the state, `events_len`, and every
//! tensor's name, shape and bytes in name order).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

/// Checkpoints kept on disk: the newest, and the one before it in case the
/// newest turns out damaged.
const KEEP: usize = 2;
const PREFIX: &str = "ckpt-";
const SUFFIX: &str = ".safetensors";

#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl NamedTensor {
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::F32(values),
        }
    }

    pub fn u8(name: impl Into<String>, shape: Vec<usize>, values: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::U8(values),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U8(v) => v.clone(),
        }
    }

    fn dtype(&self) -> Dtype {
        match self.data {
            TensorData::F32(_) => Dtype::F32,
            TensorData::U8(_) => Dtype::U8,
        }
    }
}

/// One checkpoint's content.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointFile {
    /// The engine's state, JSON.
    pub state: String,
    /// Length of `events.jsonl` when it was taken.
    pub events_len: u64,
    pub tensors: Vec<NamedTensor>,
}

impl CheckpointFile {
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: damaged checkpoint: {why}")]
    Damaged { path: PathBuf, why: String },
    #[error("{dir}: no checkpoint in it")]
    None { dir: PathBuf },
}

fn digest(state: &str, events_len: u64, tensors: &[(String, Vec<usize>, &[u8])]) -> String {
    let mut h = Sha256::new();
    h.update(state.as_bytes());
    h.update(events_len.to_le_bytes());
    let mut sorted: Vec<_> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, shape, bytes) in sorted {
        h.update(name.as_bytes());
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Serializes a checkpoint (safetensors bytes).
pub fn encode(file: &CheckpointFile) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = file.tensors.iter().map(NamedTensor::bytes).collect();
    let parts: Vec<(String, Vec<usize>, &[u8])> = file
        .tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| (t.name.clone(), t.shape.clone(), b.as_slice()))
        .collect();
    let sha = digest(&file.state, file.events_len, &parts);
    let views: Vec<(String, TensorView)> = file
        .tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let view = TensorView::new(t.dtype(), t.shape.clone(), b).expect("shape matches data");
            (t.name.clone(), view)
        })
        .collect();
    let metadata = HashMap::from([
        ("iq_tui_state".to_string(), file.state.clone()),
        ("events_len".to_string(), file.events_len.to_string()),
        ("sha256".to_string(), sha),
    ]);
    safetensors::serialize(views, Some(metadata)).expect("valid tensors")
}

/// Parses and verifies a checkpoint's bytes.
pub fn decode(bytes: &[u8]) -> Result<CheckpointFile, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("{e:?}"))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| format!("{e:?}"))?;
    let info = meta.metadata().as_ref().ok_or("no metadata")?;
    let get = |key: &str| {
        info.get(key)
            .ok_or_else(|| format!("metadata has no {key:?}"))
    };
    let state = get("iq_tui_state")?.clone();
    let events_len: u64 = get("events_len")?
        .parse()
        .map_err(|_| "events_len is not a number".to_string())?;
    let expected = get("sha256")?.clone();
    let views = tensors.tensors();
    let parts: Vec<(String, Vec<usize>, &[u8])> = views
        .iter()
        .map(|(n, v)| (n.clone(), v.shape().to_vec(), v.data()))
        .collect();
    if digest(&state, events_len, &parts) != expected {
        return Err("checksum mismatch (the file was changed or only partly written)".into());
    }
    let mut out = Vec::with_capacity(views.len());
    for (name, view) in views {
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(
                view.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::U8 => TensorData::U8(view.data().to_vec()),
            other => return Err(format!("tensor {name}: unexpected dtype {other:?}")),
        };
        out.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CheckpointFile {
        state,
        events_len,
        tensors: out,
    })
}

pub fn read(path: &Path) -> Result<CheckpointFile, CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes).map_err(|why| CheckpointError::Damaged {
        path: path.to_path_buf(),
        why,
    })
}

/// A run's checkpoint directory, and the event log the checkpoints point into.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub dir: PathBuf,
    pub events: PathBuf,
}

/// A checkpoint read back, and the newer ones that could not be.
#[derive(Debug)]
pub struct Latest {
    pub path: PathBuf,
    pub file: CheckpointFile,
    pub skipped: Vec<CheckpointError>,
}

impl Checkpoints {
    pub fn new(run: &Path) -> Self {
        Self {
            dir: run.join("checkpoints"),
            events: run.join("events.jsonl"),
        }
    }

    /// Checkpoint files by sequence number, newest first.
    pub fn list(&self) -> Vec<(u64, PathBuf)> {
        let mut found: Vec<(u64, PathBuf)> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name
                    .strip_prefix(PREFIX)?
                    .strip_suffix(SUFFIX)?
                    .parse()
                    .ok()?;
                Some((seq, e.path()))
            })
            .collect();
        found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        found
    }

    /// Writes a new checkpoint (temporary file, fsync, rename, fsync of the
    /// directory), then removes all but the newest [`KEEP`]. `events_len` is
    /// taken from the event log now. Returns the new file's path.
    pub fn save(
        &self,
        state: String,
        tensors: Vec<NamedTensor>,
    ) -> Result<PathBuf, CheckpointError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let events_len = fs::metadata(&self.events).map(|m| m.len()).unwrap_or(0);
        let seq = self.list().first().map_or(1, |(s, _)| s + 1);
        let path = self.dir.join(format!("{PREFIX}{seq:06}{SUFFIX}"));
        let bytes = encode(&CheckpointFile {
            state,
            events_len,
            tensors,
        });
        crate::atomic::write(&path, &bytes).map_err(io(&path))?;
        for (_, old) in self.list().into_iter().skip(KEEP) {
            let _ = fs::remove_file(old);
        }
        Ok(path)
    }

    /// The newest checkpoint that reads back intact; damaged newer ones are
    /// reported in `skipped` (and left on disk for inspection).
    pub fn latest(&self) -> Result<Latest, CheckpointError> {
        let mut skipped = Vec::new();
        for (_, path) in self.list() {
            match read(&path) {
                Ok(file) => {
                    return Ok(Latest {
                        path,
                        file,
                        skipped,
                    })
                }
                Err(e) => skipped.push(e),
            }
        }
        match skipped.pop() {
            Some(e) => Err(e),
            None => Err(CheckpointError::None {
                dir: self.dir.clone(),
            }),
        }
    }

    /// Removes temporary files left by a checkpoint write that was killed.
    pub fn clean_partial(&self) {
        for e in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if crate::atomic::is_temporary(&e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (String, Vec<NamedTensor>) {
        (
            r#"{"position":"x"}"#.into(),
            vec![
                NamedTensor::f32(
                    "param/a",
                    vec![2, 3],
                    vec![0.5, -1.0, 2.0, 3.0, 1e-30, -0.0],
                ),
                NamedTensor::u8("mask/a", vec![2, 3], vec![1, 0, 1, 1, 1, 0]),
            ],
        )
    }

    #[test]
    fn round_trips_and_keeps_two() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("events.jsonl"), "{}\n").unwrap();
        let c = Checkpoints::new(dir.path());
        let (state, tensors) = sample();
        for _ in 0..3 {
            c.save(state.clone(), tensors.clone()).unwrap();
        }
        let seqs: Vec<u64> = c.list().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![3, 2]);
        let latest = c.latest().unwrap();
        assert!(latest.skipped.is_empty());
        assert_eq!(latest.file.state, state);
        assert_eq!(latest.file.events_len, 3);
        let mut want = tensors;
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(latest.file.tensors, want);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_caught() {
        let (state, tensors) = sample();
        let bytes = encode(&CheckpointFile {
            state,
            events_len: 7,
            tensors,
        });
        assert!(decode(&bytes).is_ok());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            // A flip inside the JSON header's whitespace padding is harmless;
            // anything else must be refused.
            if let Ok(f) = decode(&bad) {
                assert_eq!(encode(&f).len(), bytes.len(), "byte {i}");
                assert!(bytes[i] == b' ' || bad[i] == b' ', "byte {i} accepted");
            }
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn falls_back_past_a_damaged_newest() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path());
        let (state, tensors) = sample();
        let first = c.save(state.clone(), tensors.clone()).unwrap();
        let second = c.save(state, tensors).unwrap();
        let len = fs::metadata(&second).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&second)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let latest = c.latest().unwrap();
        assert_eq!(latest.path, first);
        assert_eq!(latest.skipped.len(), 1);
        assert!(latest.skipped[0].to_string().contains("damaged"));
        fs::write(&first, b"garbage").unwrap();
        assert!(matches!(c.latest(), Err(CheckpointError::Damaged { .. })));
    }
}
