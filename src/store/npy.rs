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
    let file = File::open(path).map_err(|source| NpyError::Io {
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
