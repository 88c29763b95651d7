//! `iq-tui quantize`: the quantizers on a user's own matrix, read from and
//! written to NumPy `.npy` files, so weights from any framework can be tried.

use std::path::{Path, PathBuf};

use crate::compress::{self, prune, stats, Method, QuantError};
pub use crate::store::npy::{read_npy, write_npy, Matrix, NpyError};

/// Why a file could not be quantized. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Npy(#[from] NpyError),
    #[error("{path}: {source}")]
    Quant { path: PathBuf, source: QuantError },
}

/// What quantizing a file measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub rows: usize,
    pub cols: usize,
    pub bits: usize,
    pub method: String,
    pub relative_error: f64,
    pub sparsity: f64,
    pub packed_bytes: u64,
    pub fp32_bytes: u64,
}

/// Prunes (optionally), quantizes, optionally writes the dequantized matrix.
pub fn quantize_file(
    input: &Path,
    bits: usize,
    method: Method,
    mask_rate: Option<f64>,
    output: Option<&Path>,
) -> Result<FileReport, FileError> {
    let m = read_npy(input)?;
    let mask = mask_rate.map(|rate| prune::magnitude_mask(&m.values, rate));
    let q = compress::quantize(&m.values, m.rows, m.cols, mask.as_deref(), bits, method).map_err(
        |source| FileError::Quant {
            path: input.to_path_buf(),
            source,
        },
    )?;
    let kept = mask
        .as_ref()
        .map_or(m.values.len(), |k| k.iter().filter(|&&x| x).count());
    let report = FileReport {
        rows: m.rows,
        cols: m.cols,
        bits,
        method: method.label(),
        relative_error: compress::relative_error(&m.values, &q.values),
        sparsity: prune::sparsity(&q.values),
        packed_bytes: stats::packed_size(m.rows, m.cols, kept, Some(bits)).total,
        fp32_bytes: (m.values.len() * 4) as u64,
    };
    if let Some(out) = output {
        write_npy(
            out,
            &Matrix {
                rows: m.rows,
                cols: m.cols,
                values: q.values,
            },
        )?;
    }
    Ok(report)
}
