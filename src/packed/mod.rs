//! The packed model file (`iq-tui export-model`): a quantized (and pruned)
//! LSTM language model stored the way docs/method.md §5 counts its size, and read
//! back into kernels that compute with the bits directly (`infer.rs`).
//!
//! ```text
//! "IQPK" · u32 LE version (2) · u64 LE header length · SHA-256 (32 bytes)
//!        · header (JSON) · sections
//! ```
//!
//! The SHA-256 is over the header and the sections: a file that was changed
//! or cut short is refused, and so is a header that disagrees with the model
//! its sizes describe or with the length of any section, before anything is
//! allocated from it. (Version 1 files, without the checksum, are read with
//! the same header checks.)
//!
//! The header holds the sizes, the vocabulary and, per parameter in the
//! model's order, what its section holds. Sections follow in that order:
//!
//! - **binary** (quantized) matrix: the codes as one bit stream, k bits per
//!   surviving weight, row by row, column by column, bit i of a weight set
//!   when its i-th sign is +1 (ceil(kept·k / 8) bytes); then the row
//!   coefficients α (rows × k, f32 LE); then the mask, if pruned.
//! - **dense** parameter: the surviving values (f32 LE); then the mask, if pruned.
//! - **mask**: a bitmap (rows·cols bits, row-major, set = kept) or, when
//!   smaller, per row a u32 LE count and that many u16 LE column indices;
//!   the header says which.
//!
//! The sections are exactly the packed size a run reports.

mod header;
pub mod infer;
pub mod lut;

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::compress::stats;
use crate::model::ModelDims;
use crate::store::checkpoint::{self, TensorData};
use crate::store::weights::{self, Weights};
use header::{check_header, Entry, Header};

const MAGIC: &[u8; 4] = b"IQPK";
const VERSION: u32 = 2;
/// Bytes before the header: magic, version, header length, checksum.
const PREFIX: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum PackedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
}

fn bad(path: &Path, message: impl Into<String>) -> PackedError {
    PackedError::Bad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// One parameter as the kernels use it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Binary(BinaryMatrix),
    Dense {
        name: String,
        rows: usize,
        cols: usize,
        /// All entries, pruned ones 0.
        values: Vec<f32>,
        mask: Option<Vec<bool>>,
    },
}

impl Param {
    pub fn name(&self) -> &str {
        match self {
            Param::Binary(b) => &b.name,
            Param::Dense { name, .. } => name,
        }
    }
}

/// A binary-coded matrix: row r is Σ_i α_{r,i} · b_{r,i} with b ∈ {−1, +1}
/// on surviving entries and 0 on pruned ones.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryMatrix {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: usize,
    /// rows × bits.
    pub alphas: Vec<f32>,
    /// rows × cols sign patterns (bit i set = +α_i); pruned entries 0.
    pub codes: Vec<u8>,
    pub mask: Option<Vec<bool>>,
}

impl BinaryMatrix {
    pub fn value(&self, r: usize, c: usize) -> f32 {
        if self.mask.as_ref().is_some_and(|m| !m[r * self.cols + c]) {
            return 0.0;
        }
        let p = self.codes[r * self.cols + c];
        let a = &self.alphas[r * self.bits..(r + 1) * self.bits];
        (0..self.bits)
            .map(|i| if p >> i & 1 == 1 { a[i] } else { -a[i] })
            .sum()
    }

    /// Sign bit-planes, rows × bits × ceil(cols/8) bytes: bit c % 8 of byte
    /// c / 8 of plane (r, i) is set when entry (r, c) has +α_i (pruned: 0).
    pub fn planes(&self) -> Vec<u8> {
        let groups = self.cols.div_ceil(8);
        let mut planes = vec![0u8; self.rows * self.bits * groups];
        for r in 0..self.rows {
            for c in 0..self.cols {
                let j = r * self.cols + c;
                if self.mask.as_ref().is_some_and(|m| !m[j]) {
                    continue;
                }
                for i in 0..self.bits {
                    if self.codes[j] >> i & 1 == 1 {
                        planes[(r * self.bits + i) * groups + c / 8] |= 1 << (c % 8);
                    }
                }
            }
        }
        planes
    }

    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.rows * self.cols)
            .map(|j| self.value(j / self.cols, j % self.cols))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PackedModel {
    pub dims: ModelDims,
    pub vocab: Vec<String>,
    pub params: Vec<Param>,
}

impl PackedModel {
    /// The final quantized model of a run: `weights/final` and its codes.
    pub fn from_run(run: &Path) -> Result<Self, PackedError> {
        let dir = run.join("weights").join("final");
        let w: Weights = weights::load(&dir).map_err(|e| bad(&dir, e.to_string()))?;
        let codes_path = dir.join(weights::CODES_FILE);
        let codes = checkpoint::read(&codes_path).map_err(|e| bad(&codes_path, e.to_string()))?;
        let m = &w.manifest;
        let mut params = Vec::new();
        for ((name, rows, cols), matrix) in m.params.iter().zip(&w.params) {
            let (rows, cols) = (*rows, *cols);
            let mask = match codes.tensor(&format!("{name}.mask")).map(|t| &t.data) {
                Some(TensorData::U8(m)) if m.len() == rows * cols => {
                    Some(m.iter().map(|&k| k != 0).collect::<Vec<bool>>())
                }
                Some(_) => return Err(bad(&codes_path, format!("{name}: bad mask"))),
                None => None,
            };
            let alphas = codes.tensor(&format!("{name}.alphas"));
            let pattern = codes.tensor(&format!("{name}.codes"));
            let param = match (alphas, pattern) {
                (Some(a), Some(p)) => {
                    let (TensorData::F32(alphas), TensorData::U8(codes)) = (&a.data, &p.data)
                    else {
                        return Err(bad(&codes_path, format!("{name}: wrong tensor types")));
                    };
                    let bits = a.shape.get(1).copied().unwrap_or(0);
                    if alphas.len() != rows * bits
                        || codes.len() != rows * cols
                        || !(1..=4).contains(&bits)
                    {
                        return Err(bad(
                            &codes_path,
                            format!("{name}: sizes do not match the weights"),
                        ));
                    }
                    let b = BinaryMatrix {
                        name: name.clone(),
                        rows,
                        cols,
                        bits,
                        alphas: alphas.clone(),
                        codes: codes.clone(),
                        mask,
                    };
                    // The codes must be the saved weights, or they are not this model.
                    let deq = b.dequantize();
                    if let Some(j) = (0..deq.len()).find(|&j| {
                        (deq[j] - matrix.values[j]).abs() > 1e-5 * (1.0 + matrix.values[j].abs())
                    }) {
                        return Err(bad(
                            &codes_path,
                            format!(
                                "{name}: codes give {} at entry {j}, the weights hold {}",
                                deq[j], matrix.values[j]
                            ),
                        ));
                    }
                    Param::Binary(b)
                }
                _ => Param::Dense {
                    name: name.clone(),
                    rows,
                    cols,
                    values: matrix.values.clone(),
                    mask,
                },
            };
            params.push(param);
        }
        Ok(Self {
            dims: ModelDims {
                vocab: m.vocab,
                embed: m.embed,
                hidden: m.hidden,
                layers: m.layers,
                tied: m.tied,
            },
            vocab: w.vocab,
            params,
        })
    }

    /// Bytes of everything but the header: docs/method.md §5's packed size.
    pub fn packed_bytes(&self) -> u64 {
        self.params.iter().map(|p| section(p).1.len() as u64).sum()
    }

    pub fn write(&self, path: &Path) -> Result<u64, PackedError> {
        let mut entries = Vec::new();
        let mut body = Vec::new();
        for p in &self.params {
            let (entry, bytes) = section(p);
            entries.push(entry);
            body.extend_from_slice(&bytes);
        }
        let header = serde_json::to_vec(&Header {
            vocab: self.dims.vocab,
            embed: self.dims.embed,
            hidden: self.dims.hidden,
            layers: self.dims.layers,
            tied: self.dims.tied,
            words: self.vocab.clone(),
            params: entries,
        })
        .expect("serialisable");
        let mut digest = Sha256::new();
        digest.update(&header);
        digest.update(&body);
        let mut out = Vec::with_capacity(PREFIX + header.len() + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&digest.finalize());
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        crate::atomic::write(path, &out).map_err(|source| PackedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(body.len() as u64)
    }

    /// The same model as safetensors, for PyTorch and NumPy users: every
    /// parameter dequantized (`<name>`, f32), and for quantized matrices the
    /// packed form too: `<name>.alphas` (rows × bits, f32), `<name>.planes`
    /// (rows × bits × ceil(cols/8), u8: bit c % 8 of byte c / 8 set = +α_i),
    /// `<name>.mask` (rows × cols, u8) when pruned. Metadata: sizes and the
    /// vocabulary (JSON).
    pub fn write_safetensors(&self, path: &Path) -> Result<(), PackedError> {
        use crate::store::checkpoint::NamedTensor;
        let mut tensors = Vec::new();
        for p in &self.params {
            match p {
                Param::Binary(b) => {
                    tensors.push(NamedTensor::f32(
                        b.name.clone(),
                        vec![b.rows, b.cols],
                        b.dequantize(),
                    ));
                    tensors.push(NamedTensor::f32(
                        format!("{}.alphas", b.name),
                        vec![b.rows, b.bits],
                        b.alphas.clone(),
                    ));
                    tensors.push(NamedTensor::u8(
                        format!("{}.planes", b.name),
                        vec![b.rows, b.bits, b.cols.div_ceil(8)],
                        b.planes(),
                    ));
                    if let Some(m) = &b.mask {
                        tensors.push(NamedTensor::u8(
                            format!("{}.mask", b.name),
                            vec![b.rows, b.cols],
                            m.iter().map(|&k| k as u8).collect(),
                        ));
                    }
                }
                Param::Dense {
                    name,
                    rows,
                    cols,
                    values,
                    ..
                } => tensors.push(NamedTensor::f32(
                    name.clone(),
                    vec![*rows, *cols],
                    values.clone(),
                )),
            }
        }
        let meta = serde_json::json!({
            "vocab": self.dims.vocab, "embed": self.dims.embed,
            "hidden": self.dims.hidden, "layers": self.dims.layers,
            "tied": self.dims.tied,
            "words": self.vocab,
        })
        .to_string();
        crate::store::weights::save_codes(path, meta, tensors).map_err(|e| bad(path, e.to_string()))
    }

    pub fn read(path: &Path) -> Result<Self, PackedError> {
        let bytes = fs::read(path).map_err(|source| PackedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.len() < 16 || &bytes[..4] != MAGIC {
            return Err(bad(path, "not an iq-tui packed model (no IQPK magic)"));
        }
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let prefix = match version {
            1 => 16,
            VERSION => PREFIX,
            _ => {
                return Err(bad(
                    path,
                    format!("packed format version {version}; this iq-tui reads 1 and {VERSION}"),
                ))
            }
        };
        if bytes.len() < prefix {
            return Err(bad(path, "truncated before its header"));
        }
        let header_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let header_end = usize::try_from(header_len)
            .ok()
            .and_then(|n| prefix.checked_add(n))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad(path, "truncated header"))?;
        let h: Header = serde_json::from_slice(&bytes[prefix..header_end])
            .map_err(|e| bad(path, format!("header: {e}")))?;
        check_header(&h, (bytes.len() - header_end) as u64).map_err(|m| bad(path, m))?;
        if version == VERSION {
            let digest = Sha256::digest(&bytes[PREFIX..]);
            if digest.as_slice() != &bytes[16..PREFIX] {
                return Err(bad(
                    path,
                    "checksum mismatch: the file was changed or damaged after it was written",
                ));
            }
        }
        let mut at = header_end;
        let mut params = Vec::new();
        for e in &h.params {
            let end = at
                .checked_add(e.bytes as usize)
                .filter(|&x| x <= bytes.len())
                .ok_or_else(|| bad(path, format!("{}: truncated", e.name)))?;
            params.push(
                read_section(e, &bytes[at..end])
                    .map_err(|m| bad(path, format!("{}: {m}", e.name)))?,
            );
            at = end;
        }
        if at != bytes.len() {
            return Err(bad(
                path,
                format!("{} bytes after the last section", bytes.len() - at),
            ));
        }
        Ok(Self {
            dims: ModelDims {
                vocab: h.vocab,
                embed: h.embed,
                hidden: h.hidden,
                layers: h.layers,
                tied: h.tied,
            },
            vocab: h.words,
            params,
        })
    }
}

fn encode_mask(mask: &[bool], rows: usize, cols: usize, kept: usize) -> (String, Vec<u8>) {
    let sizes = stats::packed_size(rows, cols, kept, None);
    let bitmap_len = ((rows * cols) as u64).div_ceil(8);
    if sizes.mask_bytes == bitmap_len {
        let mut out = vec![0u8; bitmap_len as usize];
        for (j, _) in mask.iter().enumerate().filter(|(_, &k)| k) {
            out[j / 8] |= 1 << (j % 8);
        }
        ("bitmap".into(), out)
    } else {
        let mut out = Vec::new();
        for r in 0..rows {
            let row = &mask[r * cols..(r + 1) * cols];
            out.extend_from_slice(&(row.iter().filter(|&&k| k).count() as u32).to_le_bytes());
            for (c, _) in row.iter().enumerate().filter(|(_, &k)| k) {
                out.extend_from_slice(&(c as u16).to_le_bytes());
            }
        }
        ("indices".into(), out)
    }
}

fn decode_mask(kind: &str, bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<bool>, String> {
    match kind {
        "bitmap" => {
            if bytes.len() < (rows * cols).div_ceil(8) {
                return Err("mask bitmap too short".into());
            }
            Ok((0..rows * cols)
                .map(|j| bytes[j / 8] >> (j % 8) & 1 == 1)
                .collect())
        }
        "indices" => {
            let mut mask = vec![false; rows * cols];
            let mut at = 0;
            let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
                let s = bytes.get(*at..*at + n).ok_or("mask indices too short")?;
                *at += n;
                Ok(s)
            };
            for r in 0..rows {
                let n = u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4")) as usize;
                for _ in 0..n {
                    let c = u16::from_le_bytes(take(&mut at, 2)?.try_into().expect("2")) as usize;
                    if c >= cols {
                        return Err(format!("mask index {c} past {cols} columns"));
                    }
                    mask[r * cols + c] = true;
                }
            }
            Ok(mask)
        }
        other => Err(format!("unknown mask kind {other:?}")),
    }
}

/// A parameter's header entry and section bytes.
fn section(p: &Param) -> (Entry, Vec<u8>) {
    let (name, rows, cols, mask) = match p {
        Param::Binary(b) => (&b.name, b.rows, b.cols, &b.mask),
        Param::Dense {
            name,
            rows,
            cols,
            mask,
            ..
        } => (name, *rows, *cols, mask),
    };
    let kept_at = |j: usize| mask.as_ref().is_none_or(|m| m[j]);
    let kept = (0..rows * cols).filter(|&j| kept_at(j)).count();
    let mut out = Vec::new();
    let bits = match p {
        Param::Binary(b) => {
            let mut stream = vec![0u8; (kept * b.bits).div_ceil(8)];
            let mut bit = 0;
            for j in (0..rows * cols).filter(|&j| kept_at(j)) {
                for i in 0..b.bits {
                    if b.codes[j] >> i & 1 == 1 {
                        stream[bit / 8] |= 1 << (bit % 8);
                    }
                    bit += 1;
                }
            }
            out.extend_from_slice(&stream);
            for a in &b.alphas {
                out.extend_from_slice(&a.to_le_bytes());
            }
            Some(b.bits)
        }
        Param::Dense { values, .. } => {
            for j in (0..rows * cols).filter(|&j| kept_at(j)) {
                out.extend_from_slice(&values[j].to_le_bytes());
            }
            None
        }
    };
    let mask_kind = mask.as_ref().map(|m| {
        let (kind, bytes) = encode_mask(m, rows, cols, kept);
        out.extend_from_slice(&bytes);
        kind
    });
    (
        Entry {
            name: name.clone(),
            rows,
            cols,
            bits,
            mask: mask_kind,
            kept,
            bytes: out.len() as u64,
        },
        out,
    )
}

fn read_section(e: &Entry, bytes: &[u8]) -> Result<Param, String> {
    let (rows, cols, kept) = (e.rows, e.cols, e.kept);
    let payload = match e.bits {
        Some(k) => (kept * k).div_ceil(8) + rows * k * 4,
        None => kept * 4,
    };
    if bytes.len() < payload || kept > rows * cols {
        return Err("section shorter than its header says".into());
    }
    let mask = match &e.mask {
        Some(kind) => {
            let m = decode_mask(kind, &bytes[payload..], rows, cols)?;
            if m.iter().filter(|&&k| k).count() != kept {
                return Err("mask does not keep the number of weights the header says".into());
            }
            Some(m)
        }
        None if kept != rows * cols => {
            return Err("weights are missing but there is no mask".into())
        }
        None => None,
    };
    let kept_at = |j: usize| mask.as_ref().is_none_or(|m| m[j]);
    let f32_at = |at: usize| f32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    match e.bits {
        Some(k) => {
            if !(1..=4).contains(&k) {
                return Err(format!("{k} bits"));
            }
            let mut codes = vec![0u8; rows * cols];
            let mut bit = 0;
            for j in (0..rows * cols).filter(|&j| kept_at(j)) {
                for i in 0..k {
                    if bytes[bit / 8] >> (bit % 8) & 1 == 1 {
                        codes[j] |= 1 << i;
                    }
                    bit += 1;
                }
            }
            let base = (kept * k).div_ceil(8);
            let alphas = (0..rows * k).map(|i| f32_at(base + 4 * i)).collect();
            Ok(Param::Binary(BinaryMatrix {
                name: e.name.clone(),
                rows,
                cols,
                bits: k,
                alphas,
                codes,
                mask,
            }))
        }
        None => {
            let mut values = vec![0.0f32; rows * cols];
            for (n, j) in (0..rows * cols).filter(|&j| kept_at(j)).enumerate() {
                values[j] = f32_at(4 * n);
            }
            Ok(Param::Dense {
                name: e.name.clone(),
                rows,
                cols,
                values,
                mask,
            })
        }
    }
}
