//! Inference straight from the bits. A binary-coded matrix times a vector
//! uses lookup tables (the idea of Samsung's BiQGEMM): for every 3 input
//! columns the 8 sums of subsets of x are tabulated once per input vector,
//! after which each ±1 plane of a row costs one lookup per 3 columns:
//! row · x = Σ_i α_i (2 · Σ_{b_i = +1} x − Σ_{kept} x).
//!
//! Why 3 columns: 8 table entries are one AVX register, so one `vpermps`
//! does the lookups of 8 rows at once, with the table in a register rather
//! than in memory. For that the signs are stored 8 rows interleaved: per
//! block of 8 rows and group of 3 columns, 24 bits, row by row.

use rayon::prelude::*;

use super::{BinaryMatrix, PackedModel, Param};
use crate::data::{Segments, IGNORE};

/// Columns per table: their signs index 2³ subset sums.
const SPAN: usize = 3;
/// Rows per block: one per lane of an AVX register of f32.
const LANES: usize = 8;
/// Sign planes at most: 8 code bits (codes are bytes) and a mask.
const MAX_PLANES: usize = 9;

/// A binary matrix laid out for table lookups, 8 rows at a time.
#[derive(Debug, Clone)]
pub struct LutMatrix {
    pub rows: usize,
    pub cols: usize,
    bits: usize,
    /// Column groups: ceil(cols / 3).
    groups: usize,
    /// Sign planes per block: the k code planes, then the mask if pruned.
    planes: usize,
    masked: bool,
    /// blocks × bits × LANES: α of each row of a block (0 on padding rows).
    alphas: Vec<f32>,
    /// blocks × planes × `stride` bytes. Group g of a plane is the 24 bits
    /// from byte 3g: bit 3·lane + j set when row `lane` of the block has a
    /// +1 (or, on the mask plane, is kept) at column 3g + j.
    signs: Vec<u8>,
}

impl LutMatrix {
    pub fn new(b: &BinaryMatrix) -> Self {
        let groups = b.cols.div_ceil(SPAN);
        let blocks = b.rows.div_ceil(LANES);
        let masked = b.mask.is_some();
        let planes = b.bits + masked as usize;
        assert!(planes <= MAX_PLANES, "codes are bytes: at most 8 bits");
        let stride = Self::stride(groups);
        let mut signs = vec![0u8; blocks * planes * stride];
        let mut alphas = vec![0.0f32; blocks * b.bits * LANES];
        for r in 0..b.rows {
            let (block, lane) = (r / LANES, r % LANES);
            for i in 0..b.bits {
                alphas[(block * b.bits + i) * LANES + lane] = b.alphas[r * b.bits + i];
            }
            for c in 0..b.cols {
                let j = r * b.cols + c;
                let kept = b.mask.as_ref().is_none_or(|m| m[j]);
                let bit = 3 * lane + c % SPAN;
                let at = SPAN * (c / SPAN) + bit / 8;
                let mut set = |plane: usize| {
                    signs[(block * planes + plane) * stride + at] |= 1 << (bit % 8);
                };
                if kept {
                    (0..b.bits)
                        .filter(|i| b.codes[j] >> i & 1 == 1)
                        .for_each(&mut set);
                    if masked {
                        set(b.bits);
                    }
                }
            }
        }
        Self {
            rows: b.rows,
            cols: b.cols,
            bits: b.bits,
            groups,
            planes,
            masked,
            alphas,
            signs,
        }
    }

    /// Bytes per plane of a block; one spare so the last group also loads
    /// as a whole u32.
    fn stride(groups: usize) -> usize {
        SPAN * groups + 1
    }

    /// Bytes the kernels read: the signs (and mask) and the coefficients.
    pub fn bytes(&self) -> usize {
        self.signs.len() + 4 * self.alphas.len()
    }

    /// Tabulates the subset sums of `x` (groups × 8).
    pub fn table(&self, x: &[f32], lut: &mut Vec<f32>) {
        lut.clear();
        for g in 0..self.groups {
            let at = |j: usize| x.get(SPAN * g + j).copied().unwrap_or(0.0);
            let (a, b, c) = (at(0), at(1), at(2));
            lut.extend_from_slice(&[0.0, a, b, a + b, c, a + c, b + c, a + b + c]);
        }
    }

    /// y = W x, with `lut` from [`LutMatrix::table`] of the same x.
    pub fn apply(&self, lut: &[f32], y: &mut [f32]) {
        assert_eq!(lut.len(), self.groups * LANES, "a table of another x");
        let all: f32 = lut.chunks_exact(LANES).map(|t| t[LANES - 1]).sum();
        let stride = Self::stride(self.groups);
        let block_bytes = self.planes * stride;
        let mut sums = [[0.0f32; LANES]; MAX_PLANES];
        let sums = &mut sums[..self.planes];
        for (block, (signs, alphas)) in self
            .signs
            .chunks_exact(block_bytes)
            .zip(self.alphas.chunks_exact(self.bits * LANES))
            .enumerate()
        {
            block_sums(lut, signs, stride, self.groups, sums);
            let rows = (self.rows - block * LANES).min(LANES);
            for lane in 0..rows {
                let total = if self.masked {
                    sums[self.bits][lane]
                } else {
                    all
                };
                y[block * LANES + lane] = (0..self.bits)
                    .map(|i| alphas[i * LANES + lane] * (2.0 * sums[i][lane] - total))
                    .sum();
            }
        }
    }
}

/// Per plane of one block, the 8 rows' sums of the table entries their
/// signs select.
fn block_sums(lut: &[f32], signs: &[u8], stride: usize, groups: usize, out: &mut [[f32; LANES]]) {
    assert!(lut.len() >= groups * LANES && signs.len() >= out.len() * stride);
    assert!(stride > SPAN * groups, "every group must load as a u32");
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX2: OnceLock<bool> = OnceLock::new();
        if *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2")) {
            let (l, s) = (lut.as_ptr(), signs.as_ptr());
            // SAFETY: the CPU has AVX2 (checked); the kernel reads `groups`
            // tables of 8 floats and, per plane, 4 bytes from 3g < stride - 3
            // (both asserted above).
            unsafe {
                match out.len() {
                    1 => return avx2::sums::<1, 4>(l, s, stride, groups, out),
                    2 => return avx2::sums::<2, 4>(l, s, stride, groups, out),
                    3 => return avx2::sums::<3, 2>(l, s, stride, groups, out),
                    4 => return avx2::sums::<4, 2>(l, s, stride, groups, out),
                    5 => return avx2::sums::<5, 2>(l, s, stride, groups, out),
                    _ => {}
                }
            }
        }
    }
    block_sums_portable(lut, signs, stride, groups, out)
}

fn block_sums_portable(
    lut: &[f32],
    signs: &[u8],
    stride: usize,
    groups: usize,
    out: &mut [[f32; LANES]],
) {
    for (p, sums) in out.iter_mut().enumerate() {
        *sums = [0.0; LANES];
        let plane = &signs[p * stride..(p + 1) * stride];
        for (g, t) in lut.chunks_exact(LANES).take(groups).enumerate() {
            let w = u32::from_le_bytes(plane[SPAN * g..SPAN * g + 4].try_into().unwrap());
            for (lane, s) in sums.iter_mut().enumerate() {
                *s += t[(w >> (SPAN * lane)) as usize & (LANES - 1)];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{LANES, SPAN};
    use std::arch::x86_64::*;

    /// `P` planes, `U` groups in flight (independent sums, so the adds do
    /// not wait on each other).
    ///
    /// # Safety
    /// AVX2 must be available; `lut` must hold `groups` tables of 8 and
    /// `signs` `P` planes of `stride` > 3 · groups bytes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sums<const P: usize, const U: usize>(
        lut: *const f32,
        signs: *const u8,
        stride: usize,
        groups: usize,
        out: &mut [[f32; LANES]],
    ) {
        // SAFETY: the caller guarantees AVX2 and the table and sign lengths in
        // this function's contract, which bound every load below.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); P]; U];
            let mut g = 0;
            while g + U <= groups {
                for (u, acc) in acc.iter_mut().enumerate() {
                    let t = _mm256_loadu_ps(lut.add((g + u) * LANES));
                    for (p, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_add_ps(*a, lookup(t, signs.add(p * stride + SPAN * (g + u))));
                    }
                }
                g += U;
            }
            for g in g..groups {
                let t = _mm256_loadu_ps(lut.add(g * LANES));
                for (p, a) in acc[0].iter_mut().enumerate() {
                    *a = _mm256_add_ps(*a, lookup(t, signs.add(p * stride + SPAN * g)));
                }
            }
            for (p, out) in out.iter_mut().enumerate() {
                let mut sum = acc[0][p];
                for acc in &acc[1..] {
                    sum = _mm256_add_ps(sum, acc[p]);
                }
                _mm256_storeu_ps(out.as_mut_ptr(), sum);
            }
        }
    }

    /// Lane r gets `table[bits 3r..3r+3 of the 4 bytes at signs]`
    /// (`vpermps` reads only the low 3 bits of each index).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lookup(table: __m256, signs: *const u8) -> __m256 {
        // SAFETY: the caller guarantees AVX2 and 4 readable bytes at `signs`.
        unsafe {
            let shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
            let w = _mm256_set1_epi32((signs as *const i32).read_unaligned());
            _mm256_permutevar8x32_ps(table, _mm256_srlv_epi32(w, shifts))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every block shape (rows not a multiple of 8, columns not of 3),
    /// 1–4 bits with and without a mask on the vector kernel, and more
    /// planes than it takes; the portable kernel on the same layouts.
    #[test]
    fn table_lookups_equal_the_dequantized_product() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (rows, cols, bits, pruned) in [
            (7, 13, 1, false),
            (8, 3, 1, true),
            (5, 64, 2, true),
            (17, 65, 2, false),
            (3, 3, 4, true),
            (9, 70, 3, false),
            (9, 70, 3, true),
            (24, 31, 4, false),
            (11, 7, 5, true),
        ] {
            let b = BinaryMatrix {
                name: "w".into(),
                rows,
                cols,
                bits,
                alphas: (0..rows * bits).map(|_| rng.gen_range(0.0..1.0)).collect(),
                codes: (0..rows * cols)
                    .map(|_| rng.gen_range(0..1u16 << bits) as u8)
                    .collect(),
                mask: pruned.then(|| (0..rows * cols).map(|_| rng.gen_bool(0.6)).collect()),
            };
            let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let w = b.dequantize();
            let lut = LutMatrix::new(&b);
            let (mut table, mut y) = (Vec::new(), vec![f32::NAN; rows]);
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
            let stride = LutMatrix::stride(lut.groups);
            for block in lut.signs.chunks_exact(lut.planes * stride) {
                let mut fast = vec![[f32::NAN; LANES]; lut.planes];
                let mut portable = fast.clone();
                block_sums(&table, block, stride, lut.groups, &mut fast);
                block_sums_portable(&table, block, stride, lut.groups, &mut portable);
                for (f, p) in fast.iter().flatten().zip(portable.iter().flatten()) {
                    assert!((f - p).abs() <= 1e-5 * (1.0 + p.abs()), "{f} vs {p}");
                }
            }
        }
    }
}
