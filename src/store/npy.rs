//! NumPy `.npy` files of 2-D float32 matrices (the format every framework
//! can read and write).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Why a `.npy` file could not be read or written. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn bad(path: &Path, message: impl Into<String>) -> NpyError {
    NpyError::Bad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A 2-D `f32` matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

/// Reads a 2-D float32 `.npy` (C or Fortran order; returned row-major).
pub fn read_npy(path: &Path) -> Result<Matrix, NpyError> {
    let mut file = File::open(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // The header is believed only as far as the file backs it, before the
    // reader sees it: nothing is allocated (or multiplied) for values the
    // file cannot hold.
    let file_len = file.metadata().map_or(0, |m| m.len());
    if let Some(shape) = declared_shape(&mut file) {
        let bytes = shape
            .iter()
            .try_fold(4u64, |acc, &d| acc.checked_mul(d))
            .filter(|&b| b <= file_len);
        if bytes.is_none() {
            return Err(bad(
                path,
                format!(
                    "its header declares a {shape:?} array of float32, more than the file's {file_len} bytes hold"
                ),
            ));
        }
    }
    use std::io::Seek;
    file.rewind().map_err(|source| NpyError::Io {
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
pub fn write_npy(path: &Path, m: &Matrix) -> Result<(), NpyError> {
    let io = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    use npyz::WriterBuilder;
    crate::atomic::write_with(path, |out| {
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[m.rows as u64, m.cols as u64])
            .writer(out)
            .begin_nd()?;
        writer.extend(m.values.iter().copied())?;
        writer.finish()
    })
    .map_err(io)
}

/// The `shape` an `.npy` header declares, read without trusting it; `None`
/// when the header is not one this can read (the `.npy` reader then says why).
fn declared_shape(file: &mut File) -> Option<Vec<u64>> {
    use std::io::Read;
    let mut start = [0u8; 12];
    file.read_exact(&mut start).ok()?;
    if &start[..6] != b"\x93NUMPY" {
        return None;
    }
    let (len, skip) = match start[6] {
        1 => (u16::from_le_bytes([start[8], start[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([start[8], start[9], start[10], start[11]]) as usize,
            12,
        ),
    };
    if len < 12 - skip {
        return None;
    }
    let mut header = vec![0u8; len.min(1 << 16)];
    header[..12 - skip].copy_from_slice(&start[skip..]);
    file.read_exact(&mut header[12 - skip..]).ok()?;
    let text = String::from_utf8_lossy(&header);
    let after = &text[text.find("'shape'")? + 7..];
    let inner = &after[after.find('(')? + 1..];
    let inner = &inner[..inner.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<u64>().ok())
        .collect()
}
