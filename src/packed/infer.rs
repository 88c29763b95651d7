//! Inference straight from the bits: the packed model run token by token,
//! its binary-coded matrices multiplied through lookup tables
//! ([`super::lut`]), its biases and any full-precision parameters dense.

use rayon::prelude::*;

pub use super::lut::LutMatrix;
use super::{PackedModel, Param};
use crate::data::{Segments, IGNORE};

/// A parameter ready for inference.
#[derive(Debug, Clone)]
enum Kernel {
    Lut(LutMatrix),
    Dense {
        rows: usize,
        cols: usize,
        values: Vec<f32>,
    },
}

impl Kernel {
    fn new(p: &Param) -> Self {
        match p {
            Param::Binary(b) => Kernel::Lut(LutMatrix::new(b)),
            Param::Dense {
                rows, cols, values, ..
            } => Kernel::Dense {
                rows: *rows,
                cols: *cols,
                values: values.clone(),
            },
        }
    }

    fn rows(&self) -> usize {
        match self {
            Kernel::Lut(m) => m.rows,
            Kernel::Dense { rows, .. } => *rows,
        }
    }

    /// y = W x (`lut` is scratch).
    fn matvec(&self, x: &[f32], lut: &mut Vec<f32>, y: &mut [f32]) {
        match self {
            Kernel::Lut(m) => {
                m.table(x, lut);
                m.apply(lut, y);
            }
            Kernel::Dense { rows, cols, values } => {
                for r in 0..*rows {
                    let row = &values[r * cols..(r + 1) * cols];
                    y[r] = row.iter().zip(x).map(|(a, b)| a * b).sum();
                }
            }
        }
    }
}

/// One embedding row, dequantized.
fn embedding_row(p: &Param, token: usize, out: &mut [f32]) {
    match p {
        Param::Binary(b) => {
            for (c, o) in out.iter_mut().enumerate() {
                *o = b.value(token, c);
            }
        }
        Param::Dense { cols, values, .. } => {
            out.copy_from_slice(&values[token * cols..(token + 1) * cols])
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The model, ready to run token by token.
pub struct Runner<'a> {
    model: &'a PackedModel,
    layers: Vec<(Kernel, Kernel, Vec<f32>)>,
    decoder: Kernel,
    decoder_bias: Vec<f32>,
}

/// One stream's recurrent state and scratch space.
#[derive(Debug, Clone)]
pub struct Stream {
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    lut: Vec<f32>,
    gates: Vec<f32>,
    tmp: Vec<f32>,
    logits: Vec<f32>,
}

impl<'a> Runner<'a> {
    pub fn new(model: &'a PackedModel) -> Result<Self, String> {
        let find = |name: &str| {
            model
                .params
                .iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| format!("the model has no {name}"))
        };
        let dense = |name: &str| match find(name)? {
            Param::Dense { values, .. } => Ok(values.clone()),
            Param::Binary(_) => Err(format!(
                "{name} is quantized; biases stay in full precision"
            )),
        };
        let mut layers = Vec::new();
        for l in 0..model.dims.layers {
            layers.push((
                Kernel::new(find(&format!("lstm.{l}.w_ih"))?),
                Kernel::new(find(&format!("lstm.{l}.w_hh"))?),
                dense(&format!("lstm.{l}.bias"))?,
            ));
        }
        find("embedding")?;
        // tied, the embedding's bits are the decoder's too
        let decoder = Kernel::new(find(if model.dims.tied {
            "embedding"
        } else {
            "decoder"
        })?);
        if decoder.rows() != model.dims.vocab {
            return Err("the decoder does not match the vocabulary".into());
        }
        Ok(Self {
            model,
            layers,
            decoder,
            decoder_bias: dense("decoder.bias")?,
        })
    }

    pub fn stream(&self) -> Stream {
        let d = self.model.dims;
        Stream {
            h: vec![vec![0.0; d.hidden]; d.layers],
            c: vec![vec![0.0; d.hidden]; d.layers],
            lut: Vec::new(),
            gates: vec![0.0; 4 * d.hidden],
            tmp: vec![0.0; 4 * d.hidden],
            logits: vec![0.0; d.vocab],
        }
    }

    /// Feeds one token; leaves the next-token logits in the stream.
    pub fn step(&self, s: &mut Stream, token: usize) {
        let d = self.model.dims;
        let hid = d.hidden;
        let mut x = vec![0.0f32; d.embed];
        embedding_row(&self.model.params[0], token, &mut x);
        for (l, (w_ih, w_hh, bias)) in self.layers.iter().enumerate() {
            w_ih.matvec(&x, &mut s.lut, &mut s.gates);
            w_hh.matvec(&s.h[l], &mut s.lut, &mut s.tmp);
            for ((g, t), b) in s.gates.iter_mut().zip(&s.tmp).zip(bias) {
                *g += t + b;
            }
            for j in 0..hid {
                let i = sigmoid(s.gates[j]);
                let f = sigmoid(s.gates[hid + j]);
                let g = s.gates[2 * hid + j].tanh();
                let o = sigmoid(s.gates[3 * hid + j]);
                s.c[l][j] = f * s.c[l][j] + i * g;
                s.h[l][j] = o * s.c[l][j].tanh();
            }
            x.clone_from(&s.h[l]);
        }
        self.decoder.matvec(&x, &mut s.lut, &mut s.logits);
        for (z, b) in s.logits.iter_mut().zip(&self.decoder_bias) {
            *z += b;
        }
    }

    /// −log p(target) from the stream's logits.
    pub fn nll(s: &Stream, target: usize) -> f64 {
        let max = s.logits.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z)) as f64;
        let sum: f64 = s.logits.iter().map(|&z| (z as f64 - max).exp()).sum();
        max + sum.ln() - s.logits[target] as f64
    }
}

/// Perplexity of `tokens` under the packed model, with the same streams and
/// carried state as the dense evaluation (docs/method.md §6). Returns (ppl,
/// mean NLL, targets).
pub fn evaluate(
    model: &PackedModel,
    tokens: &[u32],
    batch: usize,
    bptt: usize,
) -> Result<(f64, f64, usize), String> {
    let runner = Runner::new(model)?;
    let mut streams: Vec<Stream> = (0..batch).map(|_| runner.stream()).collect();
    let (mut nll, mut count) = (0.0, 0usize);
    for seg in Segments::new(tokens, batch, bptt).iter() {
        let per_stream: Vec<(f64, usize)> = streams
            .par_iter_mut()
            .enumerate()
            .take(seg.streams)
            .map(|(k, s)| {
                let (mut sum, mut n) = (0.0, 0);
                for t in 0..seg.steps {
                    let at = t * seg.streams + k;
                    runner.step(s, seg.inputs[at] as usize);
                    let target = seg.targets[at];
                    if target != IGNORE {
                        sum += Runner::nll(s, target as usize);
                        n += 1;
                    }
                }
                (sum, n)
            })
            .collect();
        for (s, n) in per_stream {
            nll += s;
            count += n;
        }
    }
    let mean = nll / count.max(1) as f64;
    Ok((mean.exp(), mean, count))
}
