//! LSTM language model: embedding → N LSTM layers (fused gates i, f, g, o)
//! → linear decoder, with dropout on the non-recurrent connections.

use dfdx::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::param::Param;
use super::{decoder_loss, embedding, lstm_layer, values, Real};
use crate::data::Segment;

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;

/// Sizes of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelDims {
    pub vocab: usize,
    pub embed: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Tied embeddings (Press & Wolf 2017): the decoder is the embedding
    /// matrix, one parameter (`embed` = `hidden`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tied: bool,
}

impl ModelDims {
    /// Parameters (weights and biases).
    pub fn parameter_count(&self) -> usize {
        self.checked_parameter_count()
            .expect("the sizes of a built model have a parameter count")
    }

    /// Parameters, or `None` when the sizes (from a file, say) overflow.
    pub fn checked_parameter_count(&self) -> Option<usize> {
        let (v, e, h) = (self.vocab, self.embed, self.hidden);
        let decoder = if self.tied { 0 } else { h };
        let mut n = v.checked_mul(e.checked_add(decoder)?.checked_add(1)?)?;
        for l in 0..self.layers {
            let input = if l == 0 { e } else { h };
            let gates = h.checked_mul(4)?;
            n = n.checked_add(gates.checked_mul(input.checked_add(h)?.checked_add(1)?)?)?;
        }
        Some(n)
    }

    /// Every parameter, in the model's order, with its name and shape
    /// (rows = output units).
    pub fn params(&self) -> Vec<ParamInfo> {
        let d = *self;
        let m = |name: String, rows, cols| ParamInfo {
            name,
            rows,
            cols,
            is_matrix: true,
        };
        let b = |name: String, cols| ParamInfo {
            name,
            rows: 1,
            cols,
            is_matrix: false,
        };
        let mut out = vec![m("embedding".into(), d.vocab, d.embed)];
        for l in 0..d.layers {
            let input = if l == 0 { d.embed } else { d.hidden };
            out.push(m(format!("lstm.{l}.w_ih"), 4 * d.hidden, input));
            out.push(m(format!("lstm.{l}.w_hh"), 4 * d.hidden, d.hidden));
            out.push(b(format!("lstm.{l}.bias"), 4 * d.hidden));
        }
        if !d.tied {
            out.push(m("decoder".into(), d.vocab, d.hidden));
        }
        out.push(b("decoder.bias".into(), d.vocab));
        out
    }
}

/// A parameter as the rest of the program sees it: `rows × cols`, rows are
/// output units (PyTorch's layout), so row-wise quantization means per unit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamInfo {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// A weight matrix (quantizable); false for biases.
    pub is_matrix: bool,
}

/// Recurrent state carried across BPTT segments (detached: it holds no tape).
#[derive(Clone)]
pub struct LstmState<E: Real> {
    h: Vec<Mat<E>>,
    c: Vec<Mat<E>>,
}

/// What one training step needs besides the data.
#[derive(Debug, Clone, Copy)]
pub struct StepOptions {
    pub lr: f64,
    /// Global gradient-norm bound, in units of the scaled loss.
    pub clip: Option<f64>,
    /// Loss = scale · Σ NLL over the segment's targets.
    pub loss_scale: f64,
    pub dropout: f64,
}

/// What one training step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub nll_sum: f64,
    pub targets: usize,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// The language model, generic over `f32` (work) and `f64` (gradient checks).
pub struct LstmLm<E: Real> {
    dev: Cpu,
    dims: ModelDims,
    /// Every parameter in [`ModelDims::params`] order. The LSTM matrices are
    /// stored transposed (input × 4·hidden, hidden × 4·hidden) so `x · w`
    /// needs no transpose; see [`Self::is_transposed`].
    params: Vec<Param<E>>,
    /// Pruning masks per parameter, in storage order (true = kept),
    /// re-applied after every optimizer step.
    masks: Vec<Option<Vec<bool>>>,
}

impl<E: Real> LstmLm<E>
where
    Cpu: Device<E>,
{
    /// Every parameter uniform in [-init_range, init_range] (Zaremba et al.).
    pub fn new(dims: ModelDims, init_range: f64, rng: &mut ChaCha8Rng) -> Self {
        let mut uniform = |rows: usize, cols: usize| -> Param<E> {
            let values = (0..rows * cols)
                .map(|_| E::of(rng.gen_range(-init_range..=init_range)))
                .collect();
            Param::new(values, rows, cols)
        };
        let g = 4 * dims.hidden;
        let mut params = vec![uniform(dims.vocab, dims.embed)];
        for l in 0..dims.layers {
            let input = if l == 0 { dims.embed } else { dims.hidden };
            params.push(uniform(input, g));
            params.push(uniform(dims.hidden, g));
            params.push(uniform(1, g));
        }
        if !dims.tied {
            params.push(uniform(dims.vocab, dims.hidden));
        }
        params.push(uniform(1, dims.vocab));
        let masks = vec![None; params.len()];
        Self {
            dev: Cpu::default(),
            dims,
            params,
            masks,
        }
    }

    /// Layer `l`'s parameters.
    fn layer(&self, l: usize) -> lstm_layer::Weights<'_, E> {
        let p = &self.params[1 + 3 * l..4 + 3 * l];
        lstm_layer::Weights {
            w_ih: &p[0],
            w_hh: &p[1],
            bias: &p[2],
        }
    }

    /// The decoder's weights (vocab × hidden) and bias. Tied, the weights
    /// are the embedding's: its backward pass adds into the same gradient
    /// slot as the lookup's, so the step sees the sum of both.
    fn decoder(&self) -> (&Param<E>, &Param<E>) {
        let l = self.dims.layers;
        if self.dims.tied {
            (&self.params[0], &self.params[3 * l + 1])
        } else {
            (&self.params[3 * l + 1], &self.params[3 * l + 2])
        }
    }

    pub fn dims(&self) -> ModelDims {
        self.dims
    }

    /// Zero state for `batch` parallel streams.
    pub fn zero_state(&self, batch: usize) -> LstmState<E> {
        let z = || self.dev.zeros_like(&(batch, self.dims.hidden));
        LstmState {
            h: (0..self.dims.layers).map(|_| z()).collect(),
            c: (0..self.dims.layers).map(|_| z()).collect(),
        }
    }

    /// The values of a carried state: (h, c) per layer, row-major batch × hidden.
    pub fn state_values(&self, state: &LstmState<E>) -> (Vec<Vec<E>>, Vec<Vec<E>>) {
        let values = |ts: &Vec<Mat<E>>| {
            ts.iter()
                .map(|t| {
                    let (b, h) = *t.shape();
                    let mut v = vec![E::default(); b * h];
                    t.copy_into(&mut v);
                    v
                })
                .collect()
        };
        (values(&state.h), values(&state.c))
    }

    /// A state with given values (row-major batch × hidden per layer): tests,
    /// and resuming from a checkpoint.
    pub fn state_from(&self, batch: usize, h: &[Vec<E>], c: &[Vec<E>]) -> LstmState<E> {
        let t = |v: &Vec<E>| {
            self.dev
                .tensor_from_vec(v.clone(), (batch, self.dims.hidden))
        };
        LstmState {
            h: h.iter().map(t).collect(),
            c: c.iter().map(t).collect(),
        }
    }

    /// Multiplies by a fresh inverted-dropout mask (p = 0: identity).
    fn dropout<T: Tape<E, Cpu>>(&self, x: Mat<E, T>, p: f64, rng: &mut ChaCha8Rng) -> Mat<E, T> {
        if p <= 0.0 {
            return x;
        }
        let shape = *x.shape();
        let keep = E::of(1.0 / (1.0 - p));
        let mask: Vec<E> = (0..shape.0 * shape.1)
            .map(|_| {
                if rng.gen::<f64>() < p {
                    E::default()
                } else {
                    keep
                }
            })
            .collect();
        x * self.dev.tensor_from_vec(mask, shape)
    }

    /// Top-layer outputs for a segment (time-major rows: t · batch + s), on
    /// `tape`; advances `state` to the segment's end, detached.
    fn hidden_states<T: Tape<E, Cpu>>(
        &self,
        tape: T,
        seg: &Segment,
        state: &mut LstmState<E>,
        dropout: f64,
        rng: &mut ChaCha8Rng,
    ) -> Mat<E, T> {
        let (steps, batch, hid) = (seg.steps, seg.streams, self.dims.hidden);
        let n = steps * batch;
        debug_assert_eq!(seg.inputs.len(), n);
        let mut x: Mat<E, T> = embedding::lookup(&self.dev, &self.params[0], &seg.inputs, tape);
        x = self.dropout(x, dropout, rng);
        for l in 0..self.dims.layers {
            let (h0, c0) = (values(&state.h[l]), values(&state.c[l]));
            let (out, h, c) = lstm_layer::forward(x, self.layer(l), (&h0, &c0), batch);
            state.h[l] = self.dev.tensor_from_vec(h, (batch, hid));
            state.c[l] = self.dev.tensor_from_vec(c, (batch, hid));
            x = out;
            x = self.dropout(x, dropout, rng);
        }
        x
    }

    /// Forward and backward over one segment: the gradients of
    /// `opts.loss_scale · Σ NLL`, one `Vec` per parameter in [`Self::params`] order.
    pub fn gradients(
        &self,
        seg: &Segment,
        state: &mut LstmState<E>,
        loss_scale: f64,
        dropout: f64,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<Vec<E>>, f64, usize) {
        let h = self.hidden_states(OwnedTape::<E, Cpu>::default(), seg, state, dropout, rng);
        let (decoder, decoder_bias) = self.decoder();
        let (loss, nll, count) =
            decoder_loss::forward(h, decoder, decoder_bias, &seg.targets, loss_scale);
        // every parameter's gradient lands in its own slot, not in this map
        let _activations = loss.backward();
        let grads = self.params.iter().map(Param::take_grad).collect();
        (grads, nll, count)
    }

    /// One SGD step with global gradient-norm clipping.
    pub fn train_step(
        &mut self,
        seg: &Segment,
        state: &mut LstmState<E>,
        opts: &StepOptions,
        rng: &mut ChaCha8Rng,
    ) -> StepStats {
        on_pool(|| self.train_step_here(seg, state, opts, rng))
    }

    fn train_step_here(
        &mut self,
        seg: &Segment,
        state: &mut LstmState<E>,
        opts: &StepOptions,
        rng: &mut ChaCha8Rng,
    ) -> StepStats {
        let (grads, nll_sum, targets) =
            self.gradients(seg, state, opts.loss_scale, opts.dropout, rng);
        let grad_norm = norm(&grads);
        let factor = match opts.clip {
            Some(clip) if grad_norm > clip => clip / grad_norm,
            _ => 1.0,
        };
        self.descend(grads, opts.lr * factor);
        StepStats {
            nll_sum,
            targets,
            grad_norm,
        }
    }

    /// Σ NLL and target count of a segment, without gradients or dropout.
    pub fn segment_nll(&self, seg: &Segment, state: &mut LstmState<E>) -> (f64, usize) {
        let mut unused = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        self.segment_nll_with(seg, state, 0.0, &mut unused)
    }

    /// Σ NLL and target count of a segment, with training-time dropout.
    pub fn segment_nll_with(
        &self,
        seg: &Segment,
        state: &mut LstmState<E>,
        dropout: f64,
        rng: &mut ChaCha8Rng,
    ) -> (f64, usize) {
        on_pool(|| {
            let h = self.hidden_states(NoneTape, seg, state, dropout, rng);
            let (n, hidden) = *h.shape();
            let mut exps = vec![E::default(); n * self.dims.vocab];
            let mut inv = vec![E::default(); n];
            let (decoder, decoder_bias) = self.decoder();
            decoder_loss::softmax_nll(
                &values(&h),
                hidden,
                decoder.values(),
                decoder_bias.values(),
                &seg.targets,
                &mut exps,
                &mut inv,
            )
        })
    }

    /// Adds `delta` to element `offset` (storage order, as in
    /// [`Self::gradients`]) of parameter `index`; for gradient checks.
    pub fn nudge(&mut self, index: usize, offset: usize, delta: E) {
        self.update_param(index, |data| data[offset] += delta);
    }

    /// Names and shapes of every parameter, in a fixed order.
    pub fn params(&self) -> Vec<ParamInfo> {
        self.dims.params()
    }

    /// `w ← w − step · g` for every parameter, in place. Pruned weights get
    /// no gradient, so they stay exactly zero.
    fn descend(&mut self, mut grads: Vec<Vec<E>>, step: f64) {
        for (grad, mask) in grads.iter_mut().zip(&self.masks) {
            if let Some(mask) = mask {
                zero_pruned(grad, mask);
            }
        }
        // rounded as dfdx's axpy did (w · 1 + g · (−step)), in parallel blocks:
        // each element's update is independent, so the split changes no bit
        const BLOCK: usize = 1 << 14;
        let (one, minus_step) = (E::ONE, E::of(-step));
        let mut blocks: Vec<(&mut [E], &[E])> = Vec::new();
        for (param, grad) in self.params.iter_mut().zip(&grads) {
            let values = param.values_mut();
            assert_eq!(values.len(), grad.len(), "a gradient per parameter");
            blocks.extend(values.chunks_mut(BLOCK).zip(grad.chunks(BLOCK)));
        }
        blocks.into_par_iter().for_each(|(w, g)| {
            for (w, &g) in w.iter_mut().zip(g) {
                *w = *w * one + g * minus_step;
            }
        });
    }

    /// Runs `f` on parameter `index`'s values in storage order, in place,
    /// touching no other parameter.
    fn update_param(&mut self, index: usize, f: impl FnOnce(&mut [E])) {
        f(self.params[index].values_mut())
    }

    /// Storage of parameter `index` is transposed relative to [`ParamInfo`]
    /// (true for the LSTM matrices, stored input-major for dfdx's matmul).
    fn is_transposed(&self, index: usize) -> bool {
        index >= 1 && index <= 3 * self.dims.layers && (index - 1) % 3 != 2
    }

    /// Values of parameter `index` as `rows × cols` row-major `f32`.
    pub fn read_param(&self, index: usize) -> Vec<f32> {
        let info = &self.params()[index];
        let raw = self.params[index].values();
        let values: Vec<f32> = raw.iter().map(|x| x.as_f64() as f32).collect();
        if self.is_transposed(index) {
            transpose(&values, info.cols, info.rows)
        } else {
            values
        }
    }

    /// Sets (or clears) the pruning mask of parameter `index`, given as
    /// `rows × cols` row-major (true = kept), and zeroes the pruned weights now.
    pub fn set_mask(&mut self, index: usize, mask: Option<&[bool]>) {
        let info = self.params()[index].clone();
        self.masks[index] = mask.map(|m| {
            assert_eq!(m.len(), info.rows * info.cols, "mask of {}", info.name);
            if self.is_transposed(index) {
                transpose(m, info.rows, info.cols)
            } else {
                m.to_vec()
            }
        });
        if let Some(mask) = self.masks[index].take() {
            self.update_param(index, |data| zero_pruned(data, &mask));
            self.masks[index] = Some(mask);
        }
    }

    /// The mask of parameter `index` as `rows × cols` row-major, if any.
    pub fn mask(&self, index: usize) -> Option<Vec<bool>> {
        let info = &self.params()[index];
        self.masks[index].as_ref().map(|m| {
            if self.is_transposed(index) {
                transpose(m, info.cols, info.rows)
            } else {
                m.clone()
            }
        })
    }

    /// Overwrites parameter `index` from `rows × cols` row-major values.
    pub fn write_param(&mut self, index: usize, values: &[f32]) {
        let info = self.params()[index].clone();
        assert_eq!(
            values.len(),
            info.rows * info.cols,
            "{} has {}×{} values",
            info.name,
            info.rows,
            info.cols
        );
        let stored = if self.is_transposed(index) {
            transpose(values, info.rows, info.cols)
        } else {
            values.to_vec()
        };
        let mask = self.masks[index].take();
        self.update_param(index, |data| {
            for (d, &s) in data.iter_mut().zip(&stored) {
                *d = E::of(s as f64);
            }
            // a pruned weight stays zero whatever is written
            if let Some(mask) = &mask {
                zero_pruned(data, mask);
            }
        });
        self.masks[index] = mask;
    }
}

/// Runs `f` on a thread of rayon's pool. A step makes a few hundred parallel
/// calls; made from outside the pool, each one hands the work to the pool and
/// sleeps until it is done (two wake-ups), while from a pool thread the
/// caller works on one half itself. Which thread runs a block does not
/// change what it computes.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// The global L2 norm of all gradients, summed in fixed-size chunks so the
/// result does not depend on the number of threads.
fn norm<E: Real>(grads: &[Vec<E>]) -> f64 {
    const CHUNK: usize = 1 << 16;
    let partial: Vec<f64> = grads
        .iter()
        .flat_map(|g| g.chunks(CHUNK))
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|c| {
            // eight running sums, so the adds do not wait on each other
            let mut lanes = [0.0f64; 8];
            let mut groups = c.chunks_exact(8);
            for g in &mut groups {
                for (s, &x) in lanes.iter_mut().zip(g) {
                    *s += x.as_f64() * x.as_f64();
                }
            }
            let tail: f64 = groups
                .remainder()
                .iter()
                .map(|&x| x.as_f64() * x.as_f64())
                .sum();
            lanes.iter().sum::<f64>() + tail
        })
        .collect();
    partial.iter().sum::<f64>().sqrt()
}

fn zero_pruned<E: Real>(data: &mut [E], mask: &[bool]) {
    for (w, &keep) in data.iter_mut().zip(mask) {
        if !keep {
            *w = E::default();
        }
    }
}

/// Transposes a `rows × cols` row-major matrix.
pub(super) fn transpose<T: Copy + Default>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = vec![T::default(); values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests;
