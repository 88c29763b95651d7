//! The LSTM language model on dfdx: the only room that touches dfdx.
//!
//! Runtime sizes, raw tensors, one tape threaded through each BPTT segment
//! (dfdx 0.13 has runtime-size layers only as raw tensors; see ARCHITECTURE.md,
//! "Runtime sizes, raw tensors, one tape"), custom ops for a whole LSTM layer over a segment and for the
//! fused decoder + softmax cross-entropy, parallel GEMMs, and plain SGD
//! with global gradient-norm clipping. Weights are reachable by name as plain
//! `f32` rows for the compression work.

pub mod backend;
mod decoder_loss;
mod embedding;
pub(crate) mod gemm;
pub mod kernels;
mod lstm;
mod lstm_layer;
mod param;
mod real;
mod recurrent_gemm;

pub use gemm::{Arithmetic, Backend as GemmBackend, BACKEND_VAR as GEMM_BACKEND_VAR};
pub use lstm::{LstmLm, LstmState, ModelDims, ParamInfo, StepOptions, StepStats};
pub use real::Real;

use dfdx::prelude::{Cpu, Device, HasShape, Shape, Tensor};

/// A tensor's values in storage order (`copy_into`: dfdx's `as_vec` walks a
/// strided iterator, measured about 2.5× slower on weight-sized tensors).
fn values<S: Shape, E: Real>(t: &Tensor<S, E, Cpu>) -> Vec<E>
where
    Cpu: Device<E>,
{
    let mut v = vec![E::default(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// Asserts that `analytic[k][i]` is the derivative of `loss` with respect to
/// `params[k][i]` for every entry, by central differences in f64.
#[cfg(test)]
fn assert_central_differences<const N: usize>(
    params: &mut [Vec<f64>; N],
    names: [&str; N],
    analytic: &[Vec<f64>; N],
    loss: impl Fn(&[Vec<f64>; N]) -> f64,
) {
    // at 1e-6 the loss's rounding (about 1e-9 in a derivative) already
    // exceeds the tolerance on the smallest gradients of a 33-unit layer
    let eps = 1e-5;
    for k in 0..N {
        for i in 0..params[k].len() {
            params[k][i] += eps;
            let up = loss(params);
            params[k][i] -= 2.0 * eps;
            let down = loss(params);
            params[k][i] += eps;
            let numeric = (up - down) / (2.0 * eps);
            let got = analytic[k][i];
            let err = (numeric - got).abs() / numeric.abs().max(got.abs()).max(1e-3);
            assert!(
                err < 1e-6,
                "{}[{i}]: analytic {got}, numeric {numeric}",
                names[k]
            );
        }
    }
}
