//! `iq-tui quantize`: the quantizers on a user's own matrix, read from and
//! written to NumPy `.npy` files, so weights from any framework can be tried.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use crate::compress::{self, prune, stats, Method, QuantError};

/// Why a file could not be quantized. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Quant { path: PathBuf, source: QuantError },
}

/// A 2-D `f32` matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

fn bad(path: &Path, message: impl Into<String>) -> FileError {
    FileError::Bad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a 2-D float32 `.npy` (C or Fortran order; returned row-major).
pub fn read_npy(path: &Path) -> Result<Matrix, FileError> {
    let file = File::open(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| bad(path, format!("not a readable .npy file ({e})")))?;
    let dtype = npy.dtype().descr();
    if dtype != "'<f4'" {
        return Err(bad(
            path,
            format!(
                "dtype is {dtype}; expected float32 (<f4): save it with arr.astype(np.float32)"
            ),
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let [rows, cols] = shape[..] else {
        return Err(bad(
            path,
            format!(
                "shape is {shape:?}; expected a 2-D matrix (rows × cols), quantized row by row"
            ),
        ));
    };
    let fortran = npy.order() == npyz::Order::Fortran;
    let values: Vec<f32> = npy.into_vec().map_err(|e| {
        bad(
            path,
            format!("truncated or corrupt data ({e}); expected {rows}×{cols} float32 values"),
        )
    })?;
    if values.len() != rows * cols {
        return Err(bad(
            path,
            format!(
                "holds {} values; its header says {rows}×{cols}",
                values.len()
            ),
        ));
    }
    let values = if fortran {
        let mut c = vec![0.0; values.len()];
        for r in 0..rows {
            for k in 0..cols {
                c[r * cols + k] = values[k * rows + r];
            }
        }
        c
    } else {
        values
    };
    Ok(Matrix { rows, cols, values })
}

/// Writes a row-major float32 matrix as `.npy`.
pub fn write_npy(path: &Path, m: &Matrix) -> Result<(), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    use npyz::WriterBuilder;
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[m.rows as u64, m.cols as u64])
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    writer.extend(m.values.iter().copied()).map_err(io)?;
    writer.finish().map_err(io)
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
