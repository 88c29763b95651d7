//! One LSTM layer over a whole BPTT segment, as a single custom dfdx op.
//!
//! Built from stock dfdx ops, a 35-step segment records a dozen small tensors
//! per step and runs each recurrent GEMM on one core; here the forward pass is
//! one input GEMM for all steps plus one recurrent product per step, and the
//! backward pass keeps only the per-step `dh · W_hhᵀ` inside the time loop:
//! the weight gradients are two GEMMs over the whole segment afterwards.
//! Inside the loop each parallel task owns a range of hidden units: it
//! computes their recurrent products and then their cells (forward) or gate
//! gradients (backward), so a time step is one parallel region, not two.
//! Gates are fused in the order i, f, g, o (PyTorch's).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::gemm::{add_column_sums, matmul, units_mut, Out, View};
use super::param::Param;
use super::recurrent_gemm::{chunk_panels, panel_chunks, panels_product, PackedRhs};
use super::{values, Real};

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;

/// A layer's parameters, stored for products without transposes:
/// `w_ih` is input × 4·hidden, `w_hh` hidden × 4·hidden, `bias` 1 × 4·hidden.
pub struct Weights<'a, E: Real> {
    pub w_ih: &'a Param<E>,
    pub w_hh: &'a Param<E>,
    pub bias: &'a Param<E>,
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
    assert_eq!(weights.w_ih.shape(), (input, g4));
    assert_eq!(weights.w_hh.shape(), (hid, g4));
    assert_eq!(weights.bias.shape(), (1, g4));
    assert_eq!(n % batch, 0, "rows are whole time steps");
    assert_eq!((h0.len(), c0.len()), (batch * hid, batch * hid));
    let steps = n / batch;
    let xv = values(&x);
    let (w_ih, w_hh, bias) = (
        weights.w_ih.values(),
        weights.w_hh.values(),
        weights.bias.values(),
    );

    // gates: pre-activations, then (in place) the activations i, f, g, o
    let mut gates = vec![E::default(); n * g4];
    gates
        .par_chunks_mut(g4)
        .for_each(|row| row.copy_from_slice(bias));
    matmul(
        &mut gates,
        (n, g4, input),
        View::rows(&xv, input),
        View::rows(w_ih, g4),
        true,
    );
    let mut hs = vec![E::default(); n * hid];
    let mut cs = vec![E::default(); n * hid];
    // tanh(c), kept for the backward pass
    let mut tcs = vec![E::default(); n * hid];
    let step = batch * hid;
    // W_hh one gate at a time (columns q·hid.. of the stored matrix), so
    // that a task owns all four gates of its units and finishes their cells
    // without waiting for the other tasks: one parallel region a time step
    let w_hh_gates: Vec<PackedRhs<E>> = (0..4)
        .map(|q| PackedRhs::pack(View::rows(&w_hh[q * hid..], g4), hid, hid))
        .collect();
    let chunks = panel_chunks(hid);
    for t in 0..steps {
        let (h_done, h_now) = hs.split_at_mut(t * step);
        let (c_done, c_now) = cs.split_at_mut(t * step);
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
        let g = Out(gates[t * batch * g4..(t + 1) * batch * g4].as_mut_ptr());
        let (h_out, c_out) = (Out(h_now.as_mut_ptr()), Out(c_now.as_mut_ptr()));
        let tc_out = Out(tcs[t * step..].as_mut_ptr());
        (0..chunks).into_par_iter().for_each(|chunk| {
            let (panels, units) = chunk_panels(hid, chunk);
            for (q, w) in w_hh_gates.iter().enumerate() {
                // SAFETY: gate q's columns of this step's batch × g4 gate
                // rows; tasks own disjoint units, so disjoint columns.
                unsafe {
                    panels_product(
                        Out(g.at(q * hid)),
                        g4,
                        batch,
                        h_prev,
                        w,
                        panels.clone(),
                        true,
                    )
                };
            }
            // SAFETY: for every call, `at` is a row start of a batch-row output
            // (gates: g4 wide; h, c, tanh c: hid wide), so the units stay in
            // it, and tasks own disjoint units, so no other task touches them.
            let own = |out: Out<E>, at: usize| unsafe { units_mut(out, at, &units) };
            for r in 0..batch {
                let gate = |q: usize| own(g, r * g4 + q * hid);
                let (i, f, gg, o) = (gate(0), gate(1), gate(2), gate(3));
                E::sigmoid_all(i);
                E::sigmoid_all(f);
                E::tanh_all(gg);
                E::sigmoid_all(o);
                let (c, tc, h) = (
                    own(c_out, r * hid),
                    own(tc_out, r * hid),
                    own(h_out, r * hid),
                );
                let c_prev = &c_prev[r * hid + units.start..];
                for j in 0..units.len() {
                    c[j] = f[j] * c_prev[j] + i[j] * gg[j];
                }
                tc.copy_from_slice(c);
                E::tanh_all(tc);
                for j in 0..units.len() {
                    h[j] = o[j] * tc[j];
                }
            }
        });
    }
    let h_last = hs[(steps - 1) * step..].to_vec();
    let c_last = cs[(steps - 1) * step..].to_vec();
    let dev = x.device().clone();
    let out = dev.tensor_from_vec(hs.clone(), (n, hid));
    if T::OWNS_TAPE {
        let (x_id, out_id) = (x.clone(), out.clone());
        let (w_ih, w_hh, bias) = (
            weights.w_ih.share(),
            weights.w_hh.share(),
            weights.bias.share(),
        );
        let (h0, c0) = (h0.to_vec(), c0.to_vec());
        tape.add_backward_op(move |grads| {
            let dout = E::grad_slice(grads.get_or_alloc_mut(&out_id)?).to_vec();
            let mut dgates = vec![E::default(); n * g4];
            let mut dh_next = vec![E::default(); step];
            let mut dc_next = vec![E::default(); step];
            let w_hh_t = PackedRhs::pack(View::transposed(w_hh.values(), g4), g4, hid);
            // step t's task for some units first finishes dh for those units
            // (dgates_{t+1} · W_hhᵀ, its columns only), then their gate
            // gradients: one parallel region a time step
            for t in (0..steps).rev() {
                let rows = t * step..(t + 1) * step;
                let c_prev = if t == 0 {
                    &c0[..]
                } else {
                    &cs[rows.start - step..rows.start]
                };
                let (dg_upto, dg_later) = dgates.split_at_mut((t + 1) * batch * g4);
                let dg_out = Out(dg_upto[t * batch * g4..].as_mut_ptr());
                let dg_next = (t + 1 < steps).then(|| &dg_later[..batch * g4]);
                let (dh_out, dc_out) = (Out(dh_next.as_mut_ptr()), Out(dc_next.as_mut_ptr()));
                let g_now = &gates[t * batch * g4..(t + 1) * batch * g4];
                let (dout, tcs) = (&dout[rows.clone()], &tcs[rows]);
                (0..chunks).into_par_iter().for_each(|chunk| {
                    let (panels, units) = chunk_panels(hid, chunk);
                    if let Some(dg_next) = dg_next {
                        // SAFETY: dh is batch × hid; tasks own disjoint columns.
                        unsafe {
                            panels_product(dh_out, hid, batch, dg_next, &w_hh_t, panels, false)
                        };
                    }
                    // SAFETY: for every call, `at` is a row start of dgates (g4
                    // wide) or dc / dh (hid wide), so the units stay in it;
                    // tasks own disjoint units, touched by no other task.
                    let own = |out: Out<E>, at: usize| unsafe { units_mut(out, at, &units) };
                    for r in 0..batch {
                        let gate = |q: usize| units_of(g_now, r * g4 + q * hid, &units);
                        let (i, f, gg, o) = (gate(0), gate(1), gate(2), gate(3));
                        let dgate = |q: usize| own(dg_out, r * g4 + q * hid);
                        let (di, df, dgg, d_og) = (dgate(0), dgate(1), dgate(2), dgate(3));
                        let dc_next = own(dc_out, r * hid);
                        // SAFETY: as `own`, read only
                        let dh_next = &*own(dh_out, r * hid);
                        let (dout, tc) = (
                            units_of(dout, r * hid, &units),
                            units_of(tcs, r * hid, &units),
                        );
                        let c_prev = units_of(c_prev, r * hid, &units);
                        for j in 0..units.len() {
                            let dh = dout[j] + dh_next[j];
                            let d_o = dh * tc[j];
                            let dc = dh * o[j] * (E::ONE - tc[j] * tc[j]) + dc_next[j];
                            dc_next[j] = dc * f[j];
                            di[j] = dc * gg[j] * i[j] * (E::ONE - i[j]);
                            df[j] = dc * c_prev[j] * f[j] * (E::ONE - f[j]);
                            dgg[j] = dc * i[j] * (E::ONE - gg[j] * gg[j]);
                            d_og[j] = d_o * o[j] * (E::ONE - o[j]);
                        }
                    }
                });
            }
            // dW_hh += Σ_t h_{t-1}ᵀ · dgates_t, h_{-1} being the carried-in state
            w_hh.add_grad(|gw_hh| {
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
            });
            w_ih.add_grad(|gw_ih| {
                matmul(
                    gw_ih,
                    (input, g4, n),
                    View::transposed(&xv, input),
                    View::rows(&dgates, g4),
                    true,
                )
            });
            bias.add_grad(|gb| add_column_sums(gb, &dgates));
            let gx = E::grad_slice(grads.get_or_alloc_mut(&x_id)?);
            matmul(
                gx,
                (n, input, g4),
                View::rows(&dgates, g4),
                View::transposed(w_ih.values(), g4),
                true,
            );
            Ok(())
        });
    }
    (out.put_tape(tape), h_last, c_last)
}

/// The entries `at + units` of `v`: some units of one row.
fn units_of<'a, E>(v: &'a [E], at: usize, units: &std::ops::Range<usize>) -> &'a [E] {
    &v[at + units.start..at + units.end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The op on its own: the gradient of L = Σ out ⊙ R (random R) with
    /// respect to every entry of x, W_ih, W_hh and the bias, against central
    /// differences in f64, from a non-zero carried-in state: one layer
    /// narrow enough for a single task, one whose units span several tasks
    /// (33 units: three panels, the last one ragged).
    #[test]
    fn layer_gradients_match_finite_differences() {
        assert!(panel_chunks(33) > 1, "33 units must split");
        for (batch, steps, input, hid) in [(3, 4, 5, 2), (2, 3, 3, 33)] {
            check_layer_gradients(batch, steps, input, hid);
        }
    }

    fn check_layer_gradients(batch: usize, steps: usize, input: usize, hid: usize) {
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
                Param::new(p[1].clone(), input, g4),
                Param::new(p[2].clone(), hid, g4),
                Param::new(p[3].clone(), 1, g4),
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
            w_ih.take_grad(),
            w_hh.take_grad(),
            bias.take_grad(),
        ];

        super::super::assert_central_differences(
            &mut params,
            ["x", "w_ih", "w_hh", "bias"],
            &analytic,
            loss,
        );
    }
}
