//! Inference straight from the bits. A binary-coded matrix times a vector
//! uses lookup tables (the idea of Samsung's BiQGEMM): for every 8 input
//! columns the 256 sums of subsets of x are tabulated once per input vector,
//! after which each row's ±1 plane costs one lookup per 8 columns:
//! row · x = Σ_i α_i (2 · Σ_{b_i = +1} x − Σ_{kept} x).

use rayon::prelude::*;

use super::{BinaryMatrix, PackedModel, Param};
use crate::data::{Segments, IGNORE};

/// A binary matrix laid out for table lookups: byte g of a row's plane i
/// holds the signs of columns 8g..8g+8.
#[derive(Debug, Clone)]
pub struct LutMatrix {
    pub rows: usize,
    pub cols: usize,
    bits: usize,
    groups: usize,
    alphas: Vec<f32>,
    /// rows × bits × groups.
    planes: Vec<u8>,
    /// rows × groups, when pruned.
    mask: Option<Vec<u8>>,
}

impl LutMatrix {
    pub fn new(b: &BinaryMatrix) -> Self {
        let groups = b.cols.div_ceil(8);
        // Kept entries per row, as a plane of their own (the Σ_kept x term).
        let mask = b.mask.as_ref().map(|m| {
            let mut bytes = vec![0u8; b.rows * groups];
            for (j, _) in m.iter().enumerate().filter(|(_, &k)| k) {
                bytes[(j / b.cols) * groups + (j % b.cols) / 8] |= 1 << (j % b.cols % 8);
            }
            bytes
        });
        Self {
            rows: b.rows,
            cols: b.cols,
            bits: b.bits,
            groups,
            alphas: b.alphas.clone(),
            planes: b.planes(),
            mask,
        }
    }

    /// Tabulates the subset sums of `x` (groups × 256).
    pub fn table(&self, x: &[f32], lut: &mut Vec<f32>) {
        lut.clear();
        lut.resize(self.groups * 256, 0.0);
        for g in 0..self.groups {
            let t = &mut lut[g * 256..(g + 1) * 256];
            for m in 1..256usize {
                let c = 8 * g + m.trailing_zeros() as usize;
                let xc = if c < self.cols { x[c] } else { 0.0 };
                t[m] = t[m & (m - 1)] + xc;
            }
        }
    }

    /// y = W x, with `lut` from [`LutMatrix::table`] of the same x.
    pub fn apply(&self, lut: &[f32], y: &mut [f32]) {
        let all: f32 = (0..self.groups).map(|g| lut[g * 256 + 255]).sum();
        // Four independent sums, so the lookups are not one serial chain.
        let sum = |bytes: &[u8]| -> f32 {
            let mut acc = [0.0f32; 4];
            let chunks = bytes.chunks_exact(4);
            let rest = chunks.remainder();
            for (q, ch) in chunks.enumerate() {
                let t = &lut[q * 1024..(q + 1) * 1024];
                acc[0] += t[ch[0] as usize];
                acc[1] += t[256 + ch[1] as usize];
                acc[2] += t[512 + ch[2] as usize];
                acc[3] += t[768 + ch[3] as usize];
            }
            let base = bytes.len() - rest.len();
            for (k, &b) in rest.iter().enumerate() {
                acc[k] += lut[(base + k) * 256 + b as usize];
            }
            (acc[0] + acc[1]) + (acc[2] + acc[3])
        };
        for (r, out) in y.iter_mut().enumerate().take(self.rows) {
            let total = match &self.mask {
                Some(m) => sum(&m[r * self.groups..(r + 1) * self.groups]),
                None => all,
            };
            let mut acc = 0.0;
            for i in 0..self.bits {
                let p = (r * self.bits + i) * self.groups;
                acc += self.alphas[r * self.bits + i]
                    * (2.0 * sum(&self.planes[p..p + self.groups]) - total);
            }
            *out = acc;
        }
    }
}

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
        let decoder = Kernel::new(find("decoder")?);
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
/// carried state as the dense evaluation (METHOD.md §5). Returns (ppl,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn table_lookups_equal_the_dequantized_product() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (rows, cols, bits, pruned) in [
            (7, 13, 1, false),
            (5, 64, 2, true),
            (3, 3, 4, true),
            (9, 70, 3, false),
        ] {
            let b = BinaryMatrix {
                name: "w".into(),
                rows,
                cols,
                bits,
                alphas: (0..rows * bits).map(|_| rng.gen_range(0.0..1.0)).collect(),
                codes: (0..rows * cols)
                    .map(|_| rng.gen_range(0..1u8 << bits))
                    .collect(),
                mask: pruned.then(|| (0..rows * cols).map(|_| rng.gen_bool(0.6)).collect()),
            };
            let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let w = b.dequantize();
            let lut = LutMatrix::new(&b);
            let (mut table, mut y) = (Vec::new(), vec![0.0; rows]);
            lut.table(&x, &mut table);
            lut.apply(&table, &mut y);
            for r in 0..rows {
                let want: f32 = (0..cols).map(|c| w[r * cols + c] * x[c]).sum();
                assert!(
                    (y[r] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{rows}x{cols} k={bits} row {r}: {} vs {want}",
                    y[r]
                );
            }
        }
    }
}
