//! One LSTM layer over a whole BPTT segment, as a single custom dfdx op.
//!
//! Built from stock dfdx ops, a 35-step segment records a dozen small tensors
//! per step and runs each recurrent GEMM on one core; here the forward pass is
//! one input GEMM for all steps plus one recurrent GEMM per step, and the
//! backward pass keeps only the per-step `dh · W_hhᵀ` inside the time loop:
//! the weight gradients are two GEMMs over the whole segment afterwards.
//! Gates are fused in the order i, f, g, o (PyTorch's).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::gemm::{add_column_sums, matmul, View};
use super::recurrent_gemm::{matmul_packed, PackedRhs};
use super::{values, Real};

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
type Vector<E> = Tensor<(usize,), E, Cpu>;

/// A layer's parameters, stored for products without transposes:
/// `w_ih` is input × 4·hidden, `w_hh` hidden × 4·hidden.
pub struct Weights<'a, E: Real> {
    pub w_ih: &'a Mat<E>,
    pub w_hh: &'a Mat<E>,
    pub bias: &'a Vector<E>,
}

/// Runs the layer over `x` (time-major rows `t · batch + s`, input columns)
/// from the state `(h0, c0)` (batch × hidden, row-major). Returns the outputs
/// (same rows, hidden columns) on `x`'s tape and the final `(h, c)`.
pub fn forward<E: Real, T: Tape<E, Cpu>>(
    x: Mat<E, T>,
    weights: Weights<E>,
    (h0, c0): (&[E], &[E]),
    batch: usize,
) -> (Mat<E, T>, Vec<E>, Vec<E>)
where
    Cpu: Device<E>,
{
    let (x, mut tape) = x.split_tape();
    let (n, input) = *x.shape();
    let hid = weights.w_hh.shape().0;
    let g4 = 4 * hid;
    assert_eq!(weights.w_ih.shape(), &(input, g4));
    assert_eq!(weights.w_hh.shape(), &(hid, g4));
    assert_eq!(n % batch, 0, "rows are whole time steps");
    assert_eq!((h0.len(), c0.len()), (batch * hid, batch * hid));
    let steps = n / batch;
    let xv = values(&x);
    let w_ih = values(weights.w_ih);
    let w_hh = values(weights.w_hh);
    let bias = values(weights.bias);

    // gates: pre-activations, then (in place) the activations i, f, g, o
    let mut gates = vec![E::default(); n * g4];
    gates
        .par_chunks_mut(g4)
        .for_each(|row| row.copy_from_slice(&bias));
    matmul(
        &mut gates,
        (n, g4, input),
        View::rows(&xv, input),
        View::rows(&w_ih, g4),
        true,
    );
    let mut hs = vec![E::default(); n * hid];
    let mut cs = vec![E::default(); n * hid];
    // tanh(c), kept for the backward pass
    let mut tcs = vec![E::default(); n * hid];
    let step = batch * hid;
    let w_hh_packed = PackedRhs::pack(View::rows(&w_hh, g4), hid, g4);
    for t in 0..steps {
        let (h_done, h_now) = hs.split_at_mut(t * step);
        let (c_done, c_now) = cs.split_at_mut(t * step);
        let tc_now = &mut tcs[t * step..];
        let h_prev = if t == 0 {
            h0
        } else {
            &h_done[(t - 1) * step..]
        };
        let c_prev = if t == 0 {
            c0
        } else {
            &c_done[(t - 1) * step..]
        };
        let g = &mut gates[t * batch * g4..(t + 1) * batch * g4];
        matmul_packed(g, batch, h_prev, &w_hh_packed, true);
        g.par_chunks_mut(g4)
            .zip(h_now[..step].par_chunks_mut(hid))
            .zip(c_now[..step].par_chunks_mut(hid))
            .zip(tc_now[..step].par_chunks_mut(hid))
            .zip(c_prev[..step].par_chunks(hid))
            .for_each(|((((g, h), c), tc), c_prev)| {
                E::sigmoid_all(&mut g[..2 * hid]);
                E::tanh_all(&mut g[2 * hid..3 * hid]);
                E::sigmoid_all(&mut g[3 * hid..]);
                let (i, f, gg, o) = (
                    &g[..hid],
                    &g[hid..2 * hid],
                    &g[2 * hid..3 * hid],
                    &g[3 * hid..],
                );
                for j in 0..hid {
                    c[j] = f[j] * c_prev[j] + i[j] * gg[j];
                }
                tc.copy_from_slice(c);
                E::tanh_all(tc);
                for j in 0..hid {
                    h[j] = o[j] * tc[j];
                }
            });
    }
    let h_last = hs[(steps - 1) * step..].to_vec();
    let c_last = cs[(steps - 1) * step..].to_vec();
    let dev = x.device().clone();
    let out = dev.tensor_from_vec(hs.clone(), (n, hid));
    if T::OWNS_TAPE {
        let (x_id, out_id) = (x.clone(), out.clone());
        let (w_ih_id, w_hh_id, b_id) = (
            weights.w_ih.clone(),
            weights.w_hh.clone(),
            weights.bias.clone(),
        );
        let (h0, c0) = (h0.to_vec(), c0.to_vec());
        tape.add_backward_op(move |grads| {
            let dout = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
            let mut dgates = vec![E::default(); n * g4];
            let mut dh_next = vec![E::default(); step];
            let mut dc_next = vec![E::default(); step];
            let w_hh_t = PackedRhs::pack(View::transposed(&w_hh, g4), g4, hid);
            for t in (0..steps).rev() {
                let rows = t * step..(t + 1) * step;
                let c_prev = if t == 0 {
                    &c0[..]
                } else {
                    &cs[rows.start - step..rows.start]
                };
                let dg = &mut dgates[t * batch * g4..(t + 1) * batch * g4];
                dg.par_chunks_mut(g4)
                    .zip(gates[t * batch * g4..].par_chunks(g4))
                    .zip(dc_next.par_chunks_mut(hid))
                    .zip(dh_next.par_chunks(hid))
                    .zip(dout[rows.clone()].par_chunks(hid))
                    .zip(tcs[rows.clone()].par_chunks(hid))
                    .zip(c_prev.par_chunks(hid))
                    .for_each(|((((((dg, g), dc_next), dh_next), dout), tc), c_prev)| {
                        let (i, f, gg, o) = (
                            &g[..hid],
                            &g[hid..2 * hid],
                            &g[2 * hid..3 * hid],
                            &g[3 * hid..],
                        );
                        for j in 0..hid {
                            let dh = dout[j] + dh_next[j];
                            let d_o = dh * tc[j];
                            let dc = dh * o[j] * (E::ONE - tc[j] * tc[j]) + dc_next[j];
                            dc_next[j] = dc * f[j];
                            dg[j] = dc * gg[j] * i[j] * (E::ONE - i[j]);
                            dg[hid + j] = dc * c_prev[j] * f[j] * (E::ONE - f[j]);
                            dg[2 * hid + j] = dc * i[j] * (E::ONE - gg[j] * gg[j]);
                            dg[3 * hid + j] = d_o * o[j] * (E::ONE - o[j]);
                        }
                    });
                // dh for the step before: dgates_t · W_hhᵀ
                matmul_packed(&mut dh_next, batch, dg, &w_hh_t, false);
            }
            // dW_hh += Σ_t h_{t-1}ᵀ · dgates_t, h_{-1} being the carried-in state
            let gw_hh = E::grad_slice(grads.get_or_alloc_mut(&w_hh_id)?);
            matmul(
                gw_hh,
                (hid, g4, batch),
                View::transposed(&h0, hid),
                View::rows(&dgates[..batch * g4], g4),
                true,
            );
            matmul(
                gw_hh,
                (hid, g4, n - batch),
                View::transposed(&hs[..(n - batch) * hid], hid),
                View::rows(&dgates[batch * g4..], g4),
                true,
            );
            let gw_ih = E::grad_slice(grads.get_or_alloc_mut(&w_ih_id)?);
            matmul(
                gw_ih,
                (input, g4, n),
                View::transposed(&xv, input),
                View::rows(&dgates, g4),
                true,
            );
            let gb = E::grad_slice(grads.get_or_alloc_mut(&b_id)?);
            add_column_sums(gb, &dgates);
            let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
            matmul(
                gx,
                (n, input, g4),
                View::rows(&dgates, g4),
                View::transposed(&w_ih, g4),
                true,
            );
            Ok(())
        });
    }
    (out.put_tape(tape), h_last, c_last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The op on its own: the gradient of L = Σ out ⊙ R (random R) with
    /// respect to every entry of x, W_ih, W_hh and the bias, against central
    /// differences in f64, from a non-zero carried-in state.
    #[test]
    fn layer_gradients_match_finite_differences() {
        let (batch, steps, input, hid) = (3, 4, 5, 2);
        let (n, g4) = (batch * steps, 4 * hid);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut random =
            |len: usize| -> Vec<f64> { (0..len).map(|_| rng.gen_range(-0.8..0.8)).collect() };
        let mut params = [
            random(n * input),
            random(input * g4),
            random(hid * g4),
            random(g4),
        ];
        let (h0, c0, r) = (random(batch * hid), random(batch * hid), random(n * hid));
        let dev = Cpu::default();
        let tensors = |p: &[Vec<f64>; 4]| {
            (
                dev.tensor_from_vec(p[0].clone(), (n, input)),
                dev.tensor_from_vec(p[1].clone(), (input, g4)),
                dev.tensor_from_vec(p[2].clone(), (hid, g4)),
                dev.tensor_from_vec(p[3].clone(), (g4,)),
            )
        };
        let loss = |p: &[Vec<f64>; 4]| -> f64 {
            let (x, w_ih, w_hh, bias) = tensors(p);
            let weights = Weights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                bias: &bias,
            };
            let (out, _, _) = forward(x, weights, (&h0, &c0), batch);
            out.as_vec().iter().zip(&r).map(|(o, r)| o * r).sum()
        };

        let (x, w_ih, w_hh, bias) = tensors(&params);
        let weights = Weights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            bias: &bias,
        };
        let (out, _, _) = forward(x.leaky_trace(), weights, (&h0, &c0), batch);
        let l: Tensor<(), f64, Cpu, _> = (out * dev.tensor_from_vec(r.clone(), (n, hid))).sum();
        let grads = l.backward();
        let analytic = [
            grads.get(&x).as_vec(),
            grads.get(&w_ih).as_vec(),
            grads.get(&w_hh).as_vec(),
            grads.get(&bias).as_vec(),
        ];

        super::super::assert_central_differences(
            &mut params,
            ["x", "w_ih", "w_hh", "bias"],
            &analytic,
            loss,
        );
    }
}
