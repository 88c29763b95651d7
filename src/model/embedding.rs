//! The embedding lookup as a custom dfdx op over a [`Param`], so the table
//! is read in place like every other parameter.
//!
//! Its backward pass adds each output row's gradient into the row of its
//! word, rows in order, as dfdx's own gather does, so the bits are the same.

use dfdx::prelude::*;

use super::param::Param;
use super::Real;

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;

/// Rows `ids` of `table` (vocab × embed), on `tape`.
pub fn lookup<E: Real, T: Tape<E, Cpu>>(
    dev: &Cpu,
    table: &Param<E>,
    ids: &[u32],
    mut tape: T,
) -> Mat<E, T>
where
    Cpu: Device<E>,
{
    let (vocab, embed) = table.shape();
    let values = table.values();
    let mut rows = Vec::with_capacity(ids.len() * embed);
    for &id in ids {
        let id = id as usize;
        assert!(id < vocab, "token {id} outside a vocabulary of {vocab}");
        rows.extend_from_slice(&values[id * embed..(id + 1) * embed]);
    }
    let out = dev.tensor_from_vec(rows, (ids.len(), embed));
    if T::OWNS_TAPE {
        let (out_id, table, ids) = (out.clone(), table.share(), ids.to_vec());
        tape.add_backward_op(move |grads| {
            let dout = E::grad_slice(grads.get_or_alloc_mut(&out_id)?);
            table.add_grad(|g| {
                for (&id, d) in ids.iter().zip(dout.chunks(embed)) {
                    let row = &mut g[id as usize * embed..][..embed];
                    for (g, &d) in row.iter_mut().zip(d) {
                        *g += d;
                    }
                }
            });
            Ok(())
        });
    }
    out.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Against dfdx's own gather, forward and backward, bit for bit, with
    /// repeated words.
    #[test]
    fn lookup_equals_dfdx_gather() {
        let (vocab, embed) = (7, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let values: Vec<f32> = (0..vocab * embed)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let ids: Vec<u32> = vec![3, 0, 3, 6, 3, 1];
        let r: Vec<f32> = (0..ids.len() * embed)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let dev = Cpu::default();
        let weight = |x: Mat<f32, OwnedTape<f32, Cpu>>| {
            (x * dev.tensor_from_vec(r.clone(), (ids.len(), embed))).sum()
        };

        let table = Param::new(values.clone(), vocab, embed);
        let ours = lookup(&dev, &table, &ids, OwnedTape::default());
        assert_eq!(ours.as_vec().len(), ids.len() * embed);
        let ours_out = ours.as_vec();
        let _ = weight(ours).backward();
        let ours_grad = table.take_grad();

        let t = dev.tensor_from_vec(values, (vocab, embed));
        let idx = dev.tensor_from_vec(ids.iter().map(|&i| i as usize).collect(), (ids.len(),));
        let theirs = t.clone().leaky_trace().gather(idx);
        assert_eq!(ours_out, theirs.as_vec());
        let grads = weight(theirs).backward();
        assert_eq!(ours_grad, grads.get(&t).as_vec());
        assert!(ours_grad[2 * embed..3 * embed].iter().all(|&g| g == 0.0));
    }
}
