//! LSTM language model: embedding → N LSTM layers (fused gates i, f, g, o)
//! → linear decoder, with dropout on the non-recurrent connections.

use dfdx::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{decoder_loss, lstm_layer, values, Real};
use crate::data::Segment;

type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
type Vector<E> = Tensor<(usize,), E, Cpu>;

/// Sizes of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelDims {
    pub vocab: usize,
    pub embed: usize,
    pub hidden: usize,
    pub layers: usize,
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
        let mut n = v.checked_mul(e.checked_add(h)?.checked_add(1)?)?;
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
        out.push(m("decoder".into(), d.vocab, d.hidden));
        out.push(b("decoder.bias".into(), d.vocab));
        out
    }
}

struct LstmLayer<E: Real> {
    /// Stored input × 4·hidden so `x · w_ih` needs no transpose.
    w_ih: Mat<E>,
    /// Stored hidden × 4·hidden.
    w_hh: Mat<E>,
    bias: Vector<E>,
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
    /// vocab × embed.
    embedding: Mat<E>,
    layers: Vec<LstmLayer<E>>,
    /// vocab × hidden.
    decoder: Mat<E>,
    decoder_bias: Vector<E>,
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
        let dev = Cpu::default();
        let mut uniform = |rows: usize, cols: usize| -> Vec<E> {
            (0..rows * cols)
                .map(|_| E::of(rng.gen_range(-init_range..=init_range)))
                .collect()
        };
        let embedding =
            dev.tensor_from_vec(uniform(dims.vocab, dims.embed), (dims.vocab, dims.embed));
        let layers = (0..dims.layers)
            .map(|l| {
                let input = if l == 0 { dims.embed } else { dims.hidden };
                let g = 4 * dims.hidden;
                LstmLayer {
                    w_ih: dev.tensor_from_vec(uniform(input, g), (input, g)),
                    w_hh: dev.tensor_from_vec(uniform(dims.hidden, g), (dims.hidden, g)),
                    bias: dev.tensor_from_vec(uniform(1, g), (g,)),
                }
            })
            .collect();
        let decoder =
            dev.tensor_from_vec(uniform(dims.vocab, dims.hidden), (dims.vocab, dims.hidden));
        let decoder_bias = dev.tensor_from_vec(uniform(1, dims.vocab), (dims.vocab,));
        let masks = vec![None; 3 + 3 * dims.layers];
        Self {
            dev,
            dims,
            embedding,
            layers,
            decoder,
            decoder_bias,
            masks,
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
        let ids = self
            .dev
            .tensor_from_vec(seg.inputs.iter().map(|&t| t as usize).collect(), (n,));
        let mut x: Mat<E, T> = self.embedding.clone().put_tape(tape).gather(ids);
        x = self.dropout(x, dropout, rng);
        for (l, layer) in self.layers.iter().enumerate() {
            let weights = lstm_layer::Weights {
                w_ih: &layer.w_ih,
                w_hh: &layer.w_hh,
                bias: &layer.bias,
            };
            let (h0, c0) = (values(&state.h[l]), values(&state.c[l]));
            let (out, h, c) = lstm_layer::forward(x, weights, (&h0, &c0), batch);
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
        let (loss, nll, count) = decoder_loss::forward(
            h,
            &self.decoder,
            &self.decoder_bias,
            &seg.targets,
            loss_scale,
        );
        let mut grads = loss.backward();
        let mut out = Vec::with_capacity(2 + 3 * self.layers.len() + 1);
        // moved out of dfdx's map, not copied: 80 MB a step at 2×650
        let mut take = |g: &mut <Cpu as Storage<E>>::Vec| out.push(E::take_grad(g));
        take(grads.get_or_alloc_mut(&self.embedding).expect("cpu alloc"));
        for layer in &self.layers {
            take(grads.get_or_alloc_mut(&layer.w_ih).expect("cpu alloc"));
            take(grads.get_or_alloc_mut(&layer.w_hh).expect("cpu alloc"));
            take(grads.get_or_alloc_mut(&layer.bias).expect("cpu alloc"));
        }
        take(grads.get_or_alloc_mut(&self.decoder).expect("cpu alloc"));
        take(
            grads
                .get_or_alloc_mut(&self.decoder_bias)
                .expect("cpu alloc"),
        );
        (out, nll, count)
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
            decoder_loss::softmax_nll(
                &values(&h),
                hidden,
                &values(&self.decoder),
                &values(&self.decoder_bias),
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

    /// `w ← w − step · g` for every parameter, in place (each tensor keeps its
    /// id). Pruned weights get no gradient, so they stay exactly zero.
    fn descend(&mut self, mut grads: Vec<Vec<E>>, step: f64) {
        fn visit<S: Shape, E: Real>(t: &mut Tensor<S, E, Cpu>, grad: Vec<E>, step: f64)
        where
            Cpu: Device<E>,
        {
            let grad = t.device().tensor_from_vec(grad, *t.shape());
            t.axpy(1.0, &grad, -step);
        }
        for (grad, mask) in grads.iter_mut().zip(&self.masks) {
            if let Some(mask) = mask {
                zero_pruned(grad, mask);
            }
        }
        // one update per tensor, run side by side: dfdx's axpy is a serial loop
        let mut grads = grads.into_iter();
        let mut next = || grads.next().expect("a gradient per parameter");
        rayon::scope(|s| {
            let (g, embedding) = (next(), &mut self.embedding);
            s.spawn(move |_| visit(embedding, g, step));
            for LstmLayer { w_ih, w_hh, bias } in &mut self.layers {
                let (g_ih, g_hh, g_b) = (next(), next(), next());
                s.spawn(move |_| visit(w_ih, g_ih, step));
                s.spawn(move |_| visit(w_hh, g_hh, step));
                s.spawn(move |_| visit(bias, g_b, step));
            }
            let (g, decoder) = (next(), &mut self.decoder);
            s.spawn(move |_| visit(decoder, g, step));
            let (g, bias) = (next(), &mut self.decoder_bias);
            s.spawn(move |_| visit(bias, g, step));
        });
    }

    /// Runs `f` on parameter `index`'s values in storage order and writes them
    /// back in place, touching no other parameter.
    fn update_param(&mut self, index: usize, f: impl FnOnce(&mut [E])) {
        fn visit<S: Shape, E: Real>(t: &mut Tensor<S, E, Cpu>, f: impl FnOnce(&mut [E]))
        where
            Cpu: Device<E>,
        {
            let mut buf = vec![E::default(); t.shape().num_elements()];
            t.copy_into(&mut buf);
            f(&mut buf);
            t.copy_from(&buf);
        }
        let layers = self.dims.layers;
        match index {
            0 => visit(&mut self.embedding, f),
            i if i == 3 * layers + 1 => visit(&mut self.decoder, f),
            i if i == 3 * layers + 2 => visit(&mut self.decoder_bias, f),
            i => {
                let layer = &mut self.layers[(i - 1) / 3];
                match (i - 1) % 3 {
                    0 => visit(&mut layer.w_ih, f),
                    1 => visit(&mut layer.w_hh, f),
                    _ => visit(&mut layer.bias, f),
                }
            }
        }
    }

    /// Storage of parameter `index` is transposed relative to [`ParamInfo`]
    /// (true for the LSTM matrices, stored input-major for dfdx's matmul).
    fn is_transposed(&self, index: usize) -> bool {
        index >= 1 && index <= 3 * self.dims.layers && (index - 1) % 3 != 2
    }

    /// Values of parameter `index` as `rows × cols` row-major `f32`.
    pub fn read_param(&self, index: usize) -> Vec<f32> {
        let info = &self.params()[index];
        let mut raw = vec![E::default(); info.rows * info.cols];
        match index {
            0 => self.embedding.copy_into(&mut raw),
            i if i > 3 * self.dims.layers => {
                if i == 3 * self.dims.layers + 1 {
                    self.decoder.copy_into(&mut raw)
                } else {
                    self.decoder_bias.copy_into(&mut raw)
                }
            }
            i => {
                let layer = &self.layers[(i - 1) / 3];
                match (i - 1) % 3 {
                    0 => layer.w_ih.copy_into(&mut raw),
                    1 => layer.w_hh.copy_into(&mut raw),
                    _ => layer.bias.copy_into(&mut raw),
                }
            }
        }
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
