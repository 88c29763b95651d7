//! Fused decoder + softmax cross-entropy, as a custom dfdx op.
//!
//! The decoder GEMM and the softmax over the vocabulary are most of a
//! training step (ARCHITECTURE.md, "Fused decoder"). Stock dfdx materialises logits, log-softmax
//! and their gradients separately and runs its GEMMs on one core here; this
//! op keeps one N×V buffer (unnormalised softmax, then its gradient in
//! place) and splits every GEMM into disjoint row blocks run in parallel.
//! Blocks never share a reduction, so results do not depend on thread
//! timing. The buffer is swept three times a step besides the GEMMs (bias
//! and max; shift, exp and sum; gradient and bias-gradient sums), each
//! rounding exactly as the seven separate sweeps before it did.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::gemm::{column_block, matmul, matmul_serial, row_block, Out, View};
use super::param::Param;
use super::{values, Real};
use crate::data::IGNORE;

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;

/// The softmax of `h · Wᵀ + b`, unnormalised: `exps` (N×V) gets e^(z − max)
/// of each row's logits z and `inv` (N) each row's 1 / Σ, so a probability is
/// `exps · inv`. Returns Σ NLL and the number of real targets. `w` is V×H
/// (one row per word). Normalising is left to the backward pass, which
/// touches every entry anyway (and evaluation never needs it).
pub fn softmax_nll<E: Real>(
    h: &[E],
    hidden: usize,
    w: &[E],
    b: &[E],
    targets: &[u32],
    exps: &mut [E],
    inv: &mut [E],
) -> (f64, usize) {
    let v = b.len();
    let n = targets.len();
    debug_assert_eq!(h.len(), n * hidden);
    debug_assert_eq!((exps.len(), inv.len()), (n * v, n));
    let rows = row_block(n);
    let per_block: Vec<(f64, usize)> = exps
        .par_chunks_mut(rows * v)
        .zip(inv.par_chunks_mut(rows))
        .zip(h.par_chunks(rows * hidden))
        .zip(targets.par_chunks(rows))
        .map(|(((p, inv), hb), tb)| {
            // logits of this block, then its softmax while they are recent
            matmul_serial(
                p,
                (tb.len(), v, hidden),
                View::rows(hb, hidden),
                View::transposed(w, hidden),
                false,
            );
            let mut nll = 0.0;
            let mut count = 0;
            for ((row, &t), inv) in p.chunks_mut(v).zip(tb).zip(inv) {
                let max = add_bias_and_max(row, b);
                *inv = E::ONE / E::exp_shifted_sum(row, max);
                if t != IGNORE {
                    nll -= (row[t as usize] * *inv).as_f64().ln();
                    count += 1;
                }
            }
            (nll, count)
        })
        .collect();
    // Summed in block order, so the total is the same on every run.
    per_block
        .into_iter()
        .fold((0.0, 0), |(a, c), (x, k)| (a + x, c + k))
}

/// `row += bias`, returning the row's largest entry. The maximum is taken
/// in sixteen running maxima, which the compiler keeps in vector registers;
/// a maximum does not depend on the order it is taken in.
fn add_bias_and_max<E: Real>(row: &mut [E], bias: &[E]) -> E {
    let mut lanes = [E::of(f64::NEG_INFINITY); 16];
    let mut rows = row.chunks_exact_mut(16);
    let mut biases = bias.chunks_exact(16);
    for (xs, bs) in (&mut rows).zip(&mut biases) {
        for ((x, &b), m) in xs.iter_mut().zip(bs).zip(lanes.iter_mut()) {
            *x += b;
            *m = if *x > *m { *x } else { *m };
        }
    }
    for ((x, &b), m) in rows
        .into_remainder()
        .iter_mut()
        .zip(biases.remainder())
        .zip(lanes.iter_mut())
    {
        *x += b;
        *m = if *x > *m { *x } else { *m };
    }
    lanes
        .iter()
        .fold(E::of(f64::NEG_INFINITY), |m, &x| if x > m { x } else { m })
}

/// `exps ← coef · (softmax − onehot(target))` (0 on padded rows) and
/// `bias_grad += its column sums`, in one pass over blocks of columns; each
/// column adds its rows in order, so the sums do not depend on the split.
fn logit_gradients<E: Real>(
    exps: &mut [E],
    inv: &[E],
    targets: &[u32],
    coef: E,
    bias_grad: &mut [E],
) {
    let v = bias_grad.len();
    let cols = column_block(v);
    let out = Out(exps.as_mut_ptr());
    bias_grad
        .par_chunks_mut(cols)
        .enumerate()
        .for_each(|(i, gb)| {
            let c0 = i * cols;
            for (r, (&t, &inv)) in targets.iter().zip(inv).enumerate() {
                // SAFETY: column blocks are disjoint, and row r's columns
                // c0..c0 + gb.len() lie inside `exps` (N×V).
                let row = unsafe { std::slice::from_raw_parts_mut(out.at(r * v + c0), gb.len()) };
                if t == IGNORE {
                    row.fill(E::default());
                } else {
                    let t = (t as usize).wrapping_sub(c0);
                    for (c, (x, g)) in row.iter_mut().zip(gb.iter_mut()).enumerate() {
                        let mut p = *x * inv;
                        if c == t {
                            p -= E::ONE;
                        }
                        *x = p * coef;
                        *g += *x;
                    }
                }
            }
        });
}

/// The op: returns `scale · Σ NLL` as a scalar on `h`'s tape, and Σ NLL and
/// the target count for reporting. Gradients reach `h`, `w` and `b`.
pub fn forward<E: Real, T: Tape<E, Cpu>>(
    h: Mat<E, T>,
    w: &Param<E>,
    b: &Param<E>,
    targets: &[u32],
    scale: f64,
) -> (Tensor<(), E, Cpu, T>, f64, usize)
where
    Cpu: Device<E>,
{
    let (h, mut tape) = h.split_tape();
    let (n, hidden) = *h.shape();
    let v = w.shape().0;
    assert_eq!((w.shape(), b.shape()), ((v, hidden), (1, v)));
    let hv = values(&h);
    let mut exps = vec![E::default(); n * v];
    let mut inv = vec![E::default(); n];
    let (nll, count) = softmax_nll(
        &hv,
        hidden,
        w.values(),
        b.values(),
        targets,
        &mut exps,
        &mut inv,
    );
    let dev = h.device().clone();
    let loss = dev.tensor(E::of(scale * nll));
    if T::OWNS_TAPE {
        let (loss_id, h_id, w, b) = (loss.clone(), h.clone(), w.share(), b.share());
        let targets = targets.to_vec();
        tape.add_backward_op(move |grads| {
            let upstream = E::grad_slice(grads.get_or_alloc_mut(&loss_id)?)[0];
            let coef = upstream * E::of(scale);
            // d loss / d logits = coef · (softmax − onehot), in place
            b.add_grad(|gb| logit_gradients(&mut exps, &inv, &targets, coef, gb));
            let dlogits = &exps;

            // dW (V×H) += dlogitsᵀ (V×N) · h (N×H)
            w.add_grad(|gw| {
                matmul(
                    gw,
                    (v, hidden, n),
                    View::transposed(dlogits, v),
                    View::rows(&hv, hidden),
                    true,
                )
            });
            // dh (N×H) += dlogits (N×V) · W (V×H)
            let gh = E::grad_slice(grads.get_or_alloc_mut(&h_id)?);
            matmul(
                gh,
                (n, hidden, v),
                View::rows(dlogits, v),
                View::rows(w.values(), hidden),
                true,
            );
            Ok(())
        });
    }
    (loss.put_tape(tape), nll, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The op on its own: the gradient of scale · Σ NLL with respect to every
    /// entry of h, W and b against central differences in f64, with a padded
    /// target that must contribute nothing.
    #[test]
    fn decoder_gradients_match_finite_differences() {
        let (n, hidden, vocab, scale) = (7, 4, 9, 0.3);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut random =
            |len: usize| -> Vec<f64> { (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        let mut params = [random(n * hidden), random(vocab * hidden), random(vocab)];
        let mut targets: Vec<u32> = (0..n as u32).map(|i| (i * 5) % vocab as u32).collect();
        targets[3] = IGNORE;
        let loss = |p: &[Vec<f64>; 3]| -> f64 {
            let (mut exps, mut inv) = (vec![0.0; n * vocab], vec![0.0; n]);
            scale * softmax_nll(&p[0], hidden, &p[1], &p[2], &targets, &mut exps, &mut inv).0
        };
        let dev = Cpu::default();
        let h = dev.tensor_from_vec(params[0].clone(), (n, hidden));
        let w = Param::new(params[1].clone(), vocab, hidden);
        let b = Param::new(params[2].clone(), 1, vocab);
        let (l, _, count) = forward(h.leaky_trace(), &w, &b, &targets, scale);
        assert_eq!(count, n - 1);
        let grads = l.backward();
        let analytic = [grads.get(&h).as_vec(), w.take_grad(), b.take_grad()];
        super::super::assert_central_differences(&mut params, ["h", "w", "b"], &analytic, loss);
        // the padded row's h gets no gradient
        assert!(analytic[0][3 * hidden..4 * hidden]
            .iter()
            .all(|&g| g == 0.0));
    }

    /// The sixteen-lane bias pass and maximum against a serial loop, on
    /// lengths with and without a tail: the same row and the same maximum.
    #[test]
    fn bias_and_max_equal_a_serial_pass() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for v in [1, 15, 16, 33, 1000] {
            let row: Vec<f32> = (0..v).map(|_| rng.gen_range(-5.0..5.0)).collect();
            let bias: Vec<f32> = (0..v).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut want = row.clone();
            let mut want_max = f32::NEG_INFINITY;
            for (x, b) in want.iter_mut().zip(&bias) {
                *x += b;
                want_max = want_max.max(*x);
            }
            let mut got = row;
            assert_eq!(add_bias_and_max(&mut got, &bias), want_max, "length {v}");
            assert_eq!(got, want);
        }
    }

    /// The column-blocked gradient pass against the same arithmetic done
    /// row by row: equal to the last bit, over a vocabulary of several
    /// blocks with a target in each and a padded row.
    #[test]
    fn logit_gradients_equal_a_serial_pass() {
        let (n, v, coef) = (13, 1000, 0.7f32);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let exps: Vec<f32> = (0..n * v).map(|_| rng.gen_range(0.0..1.0)).collect();
        let inv: Vec<f32> = (0..n).map(|_| rng.gen_range(0.0..0.01)).collect();
        let mut targets: Vec<u32> = (0..n as u32).map(|i| (i * 331) % v as u32).collect();
        targets[4] = IGNORE;
        let (mut want, mut want_bias) = (exps.clone(), vec![0.5f32; v]);
        for (r, &t) in targets.iter().enumerate() {
            let row = &mut want[r * v..(r + 1) * v];
            for (c, x) in row.iter_mut().enumerate() {
                *x = if t == IGNORE {
                    0.0
                } else {
                    let p = *x * inv[r];
                    (if c == t as usize { p - 1.0 } else { p }) * coef
                };
                want_bias[c] += *x;
            }
        }
        let (mut got, mut got_bias) = (exps, vec![0.5f32; v]);
        logit_gradients(&mut got, &inv, &targets, coef, &mut got_bias);
        assert!(
            column_block(v) < v,
            "one block only: the test would not cover the split"
        );
        assert_eq!(got, want);
        assert_eq!(got_bias, want_bias);
    }
}
