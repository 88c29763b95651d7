//! The LSTM language model on dfdx: the only room that touches dfdx.
//!
//! Runtime sizes, raw tensors, one tape threaded through each BPTT segment
//! (DFDX.md §1), custom ops for a whole LSTM layer over a segment and for the
//! fused decoder + softmax cross-entropy, parallel GEMMs, and plain SGD
//! with global gradient-norm clipping. Weights are reachable by name as plain
//! `f32` rows for the compression work.

mod decoder_loss;
pub(crate) mod gemm;
mod lstm;
mod lstm_layer;
mod real;

pub use lstm::{LstmLm, LstmState, ModelDims, ParamInfo, StepOptions, StepStats};
pub use real::Real;
