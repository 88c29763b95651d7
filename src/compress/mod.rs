//! Compression on plain `&[f32]` matrices: quantizers (and, next, pruning,
//! packing and statistics). Knows nothing of dfdx or the terminal.

mod quantize;

pub use quantize::{
    quantize, quantize_row, quantize_warm, relative_error, squared_error, Method, QuantError,
    Quantized, RowFit,
};
