//! Fused decoder + softmax cross-entropy, as a custom dfdx op.
//!
//! The decoder GEMM and the softmax over the vocabulary are most of a
//! training step (DFDX.md §2). Stock dfdx materialises logits, log-softmax
//! and their gradients separately and runs its GEMMs on one core here; this
//! op keeps one N×V buffer (probabilities, then their gradient in place) and
//! splits every GEMM into disjoint row blocks run in parallel. Blocks never
//! share a reduction, so results do not depend on thread timing.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::gemm::{add_column_sums, matmul, matmul_serial, row_block, View};
use super::{values, Real};
use crate::data::IGNORE;

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
type Vector<E> = Tensor<(usize,), E, Cpu>;

/// Softmax of `h · Wᵀ + b` into `probs` (N×V), returning Σ NLL and the number
/// of real targets. `w` is V×H (one row per word).
pub fn softmax_nll<E: Real>(
    h: &[E],
    hidden: usize,
    w: &[E],
    b: &[E],
    targets: &[u32],
    probs: &mut [E],
) -> (f64, usize) {
    let v = b.len();
    let n = targets.len();
    debug_assert_eq!(h.len(), n * hidden);
    debug_assert_eq!(probs.len(), n * v);
    let rows = row_block(n);
    let per_block: Vec<(f64, usize)> = probs
        .par_chunks_mut(rows * v)
        .zip(h.par_chunks(rows * hidden))
        .zip(targets.par_chunks(rows))
        .map(|((p, hb), tb)| {
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
            for (row, &t) in p.chunks_mut(v).zip(tb) {
                let mut max = E::of(f64::NEG_INFINITY);
                for (x, &bias) in row.iter_mut().zip(b) {
                    *x += bias;
                    if *x > max {
                        max = *x;
                    }
                }
                row.iter_mut().for_each(|x| *x -= max);
                E::exp_all(row);
                let sum = row.iter().fold(E::default(), |a, &x| a + x);
                let inv = E::ONE / sum;
                if t != IGNORE {
                    nll -= (row[t as usize] * inv).as_f64().ln();
                    count += 1;
                }
                for x in row.iter_mut() {
                    *x *= inv;
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

/// The op: returns `scale · Σ NLL` as a scalar on `h`'s tape, and Σ NLL and
/// the target count for reporting. Gradients reach `h`, `w` and `b`.
pub fn forward<E: Real, T: Tape<E, Cpu>>(
    h: Mat<E, T>,
    w: &Mat<E>,
    b: &Vector<E>,
    targets: &[u32],
    scale: f64,
) -> (Tensor<(), E, Cpu, T>, f64, usize)
where
    Cpu: Device<E>,
{
    let (h, mut tape) = h.split_tape();
    let (n, hidden) = *h.shape();
    let v = w.shape().0;
    let hv = values(&h);
    let wv = values(w);
    let bv = values(b);
    let mut probs = vec![E::default(); n * v];
    let (nll, count) = softmax_nll(&hv, hidden, &wv, &bv, targets, &mut probs);
    let dev = h.device().clone();
    let loss = dev.tensor(E::of(scale * nll));
    if T::OWNS_TAPE {
        let (loss_id, h_id, w_id, b_id) = (loss.clone(), h.clone(), w.clone(), b.clone());
        let targets = targets.to_vec();
        tape.add_backward_op(move |grads| {
            let upstream = E::grad_slice(grads.get_or_alloc_mut(&loss_id)?)[0];
            let coef = upstream * E::of(scale);
            // d loss / d logits = coef · (softmax − onehot), in place
            probs
                .par_chunks_mut(v)
                .zip(targets.par_iter())
                .for_each(|(row, &t)| {
                    if t == IGNORE {
                        row.fill(E::default());
                    } else {
                        row[t as usize] -= E::ONE;
                        row.iter_mut().for_each(|x| *x *= coef);
                    }
                });
            let dlogits = &probs;

            let gb = E::grad_slice(grads.get_or_alloc_mut(&b_id)?);
            add_column_sums(gb, dlogits);

            // dW (V×H) += dlogitsᵀ (V×N) · h (N×H)
            let gw = E::grad_slice(grads.get_or_alloc_mut(&w_id)?);
            matmul(
                gw,
                (v, hidden, n),
                View::transposed(dlogits, v),
                View::rows(&hv, hidden),
                true,
            );
            // dh (N×H) += dlogits (N×V) · W (V×H)
            let gh = E::grad_slice(grads.get_or_alloc_mut(&h_id)?);
            matmul(
                gh,
                (n, hidden, v),
                View::rows(dlogits, v),
                View::rows(&wv, hidden),
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
            let mut probs = vec![0.0; n * vocab];
            scale * softmax_nll(&p[0], hidden, &p[1], &p[2], &targets, &mut probs).0
        };
        let dev = Cpu::default();
        let h = dev.tensor_from_vec(params[0].clone(), (n, hidden));
        let w = dev.tensor_from_vec(params[1].clone(), (vocab, hidden));
        let b = dev.tensor_from_vec(params[2].clone(), (vocab,));
        let (l, _, count) = forward(h.leaky_trace(), &w, &b, &targets, scale);
        assert_eq!(count, n - 1);
        let grads = l.backward();
        let analytic = [
            grads.get(&h).as_vec(),
            grads.get(&w).as_vec(),
            grads.get(&b).as_vec(),
        ];
        super::super::assert_central_differences(&mut params, ["h", "w", "b"], &analytic, loss);
        // the padded row's h gets no gradient
        assert!(analytic[0][3 * hidden..4 * hidden]
            .iter()
            .all(|&g| g == 0.0));
    }
}
