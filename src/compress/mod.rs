//! Compression on plain `&[f32]` matrices: quantizers, pruning, packed
//! sizes and statistics. Knows nothing of dfdx or the terminal.

pub mod prune;
mod quantize;
pub mod stats;

pub use quantize::{
    quantize, quantize_row, quantize_warm, relative_error, squared_error, Method, QuantError,
    Quantized, RowFit,
};
