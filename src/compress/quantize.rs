//! Row-wise binary-coding quantization (docs/method.md §1).
//!
//! A row `w` (length n) becomes `Σ_{i<k} α_i · b_i` with `b_i ∈ {−1, +1}^n`
//! and `α_1 ≥ … ≥ α_k ≥ 0`. With a mask, α and codes are fitted on the
//! surviving entries only and pruned entries stay exactly 0.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How the codes and coefficients are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// Guo et al. 2017: sign of the residual, coefficient = its mean magnitude.
    Greedy,
    /// Greedy, refitting all coefficients by least squares after each bit.
    Refined,
    /// Xu et al. 2018: from greedy, `cycles` rounds of least-squares α and
    /// optimal code assignment, then a final least-squares α.
    Alternating { cycles: usize },
    /// Baseline: symmetric uniform levels `s·(2j − (2^k − 1))`, `s` per row
    /// so the extreme levels are ±max|w|. Also a binary code (α_i = s·2^(k−i)).
    Uniform,
    /// Baseline: the same uniform levels with the step `s` fitted per row to
    /// the least squared error (Lloyd iterations from the best of a grid of
    /// clipping ranges), so outliers are clipped instead of wasting levels.
    UniformFitted,
}

impl Method {
    pub const ALTERNATING: Method = Method::Alternating { cycles: 2 };

    pub fn label(&self) -> String {
        match self {
            Method::Greedy => "greedy".into(),
            Method::Refined => "refined".into(),
            Method::Alternating { cycles: 2 } => "alternating".into(),
            Method::Alternating { cycles } => format!("alternating(T={cycles})"),
            Method::Uniform => "uniform".into(),
            Method::UniformFitted => "uniform-fitted".into(),
        }
    }
}

/// Why a matrix cannot be quantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    #[error("bits must be 1 to 4, got {0}")]
    Bits(usize),
    #[error("weight at row {row}, column {col} is {value}: quantization needs finite weights")]
    NonFinite { row: usize, col: usize, value: f32 },
    #[error("{what} has {got} entries, expected {rows}×{cols} = {}", rows * cols)]
    Shape {
        what: &'static str,
        got: usize,
        rows: usize,
        cols: usize,
    },
}

/// A quantized matrix: dequantized values and the code that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub rows: usize,
    pub cols: usize,
    pub bits: usize,
    /// `rows × cols` dequantized values (pruned entries exactly 0).
    pub values: Vec<f32>,
    /// `rows × bits` coefficients, each row sorted descending, all ≥ 0.
    pub alphas: Vec<f32>,
    /// `rows × cols` sign patterns: bit i set means b_i = +1. Pruned entries are 0.
    pub codes: Vec<u8>,
}

impl Quantized {
    pub fn row_alphas(&self, row: usize) -> &[f32] {
        &self.alphas[row * self.bits..(row + 1) * self.bits]
    }
}

/// Quantizes a `rows × cols` row-major matrix row by row. `mask` (same
/// shape, true = kept) restricts the fit to surviving weights.
pub fn quantize(
    w: &[f32],
    rows: usize,
    cols: usize,
    mask: Option<&[bool]>,
    bits: usize,
    method: Method,
) -> Result<Quantized, QuantError> {
    quantize_warm(w, rows, cols, mask, bits, method, None)
}

/// [`quantize`], with alternating also started from `warm`'s codes (an
/// earlier quantization of the same matrix at the same bits); the better
/// result is kept. Re-quantizing a result with itself as `warm` reproduces it
/// exactly, which is what the iterative schedule relies on.
pub fn quantize_warm(
    w: &[f32],
    rows: usize,
    cols: usize,
    mask: Option<&[bool]>,
    bits: usize,
    method: Method,
    warm: Option<&Quantized>,
) -> Result<Quantized, QuantError> {
    let warm = warm.filter(|q| q.rows == rows && q.cols == cols && q.bits == bits);
    if !(1..=4).contains(&bits) {
        return Err(QuantError::Bits(bits));
    }
    if w.len() != rows * cols {
        return Err(QuantError::Shape {
            what: "the matrix",
            got: w.len(),
            rows,
            cols,
        });
    }
    if let Some(m) = mask {
        if m.len() != rows * cols {
            return Err(QuantError::Shape {
                what: "the mask",
                got: m.len(),
                rows,
                cols,
            });
        }
    }
    if let Some(i) = w.iter().position(|x| !x.is_finite()) {
        return Err(QuantError::NonFinite {
            row: i / cols.max(1),
            col: i % cols.max(1),
            value: w[i],
        });
    }
    let mut out = Quantized {
        rows,
        cols,
        bits,
        values: vec![0.0; rows * cols],
        alphas: vec![0.0; rows * bits],
        codes: vec![0; rows * cols],
    };
    // Rows are independent: each is fitted and written by one task, so the
    // result does not depend on the thread count.
    out.values
        .par_chunks_mut(cols.max(1))
        .zip(out.codes.par_chunks_mut(cols.max(1)))
        .zip(out.alphas.par_chunks_mut(bits))
        .enumerate()
        .for_each(|(r, ((values, codes), alphas))| {
            let row = &w[r * cols..(r + 1) * cols];
            let row_mask = mask.map(|m| &m[r * cols..(r + 1) * cols]);
            // the kept entries and where they sit (all of them without a mask)
            let kept_idx: Option<Vec<usize>> =
                row_mask.map(|m| (0..cols).filter(|&c| m[c]).collect());
            let kept: Vec<f64> = match &kept_idx {
                Some(idx) => idx.iter().map(|&c| row[c] as f64).collect(),
                None => row.iter().map(|&x| x as f64).collect(),
            };
            let fit = match (warm, method) {
                (Some(q), Method::Alternating { cycles }) => {
                    let warm_row = &q.codes[r * cols..(r + 1) * cols];
                    let warm_codes: Vec<u8> = match &kept_idx {
                        Some(idx) => idx.iter().map(|&c| warm_row[c]).collect(),
                        None => warm_row.to_vec(),
                    };
                    let mut fit = alternating(&kept, bits, cycles, Some(&warm_codes));
                    normalise(&mut fit);
                    fit
                }
                _ => quantize_row(&kept, bits, method),
            };
            let t = fit.table();
            let mut place = |j: usize, c: usize| {
                values[c] = t[fit.codes[j] as usize] as f32;
                codes[c] = fit.codes[j];
            };
            match &kept_idx {
                Some(idx) => idx.iter().enumerate().for_each(|(j, &c)| place(j, c)),
                None => (0..cols).for_each(|c| place(c, c)),
            }
            for (o, &a) in alphas.iter_mut().zip(&fit.alphas) {
                *o = a as f32;
            }
        });
    Ok(out)
}

/// ‖W − Q‖² / ‖W‖² (0 for an all-zero matrix).
pub fn relative_error(w: &[f32], q: &[f32]) -> f64 {
    let (err, norm) = squared_error(w, q);
    if norm == 0.0 {
        0.0
    } else {
        err / norm
    }
}

/// (‖W − Q‖², ‖W‖²), for summing over matrices.
pub fn squared_error(w: &[f32], q: &[f32]) -> (f64, f64) {
    w.iter().zip(q).fold((0.0, 0.0), |(e, n), (&a, &b)| {
        let d = a as f64 - b as f64;
        (e + d * d, n + a as f64 * a as f64)
    })
}

/// One row's code: coefficients (descending, ≥ 0) and sign patterns.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFit {
    pub alphas: Vec<f64>,
    pub codes: Vec<u8>,
}

impl RowFit {
    /// The value of every sign pattern: entry j's value is `table[codes[j]]`.
    fn table(&self) -> [f64; 16] {
        let mut t = [0.0; 16];
        for (p, v) in t.iter_mut().enumerate().take(1 << self.alphas.len()) {
            *v = pattern_value(&self.alphas, p as u8);
        }
        t
    }
}

fn sign(bit_set: bool) -> f64 {
    if bit_set {
        1.0
    } else {
        -1.0
    }
}

fn pattern_value(alphas: &[f64], pattern: u8) -> f64 {
    alphas
        .iter()
        .enumerate()
        .map(|(i, a)| a * sign(pattern >> i & 1 == 1))
        .sum()
}

/// Quantizes one row (all entries count).
pub fn quantize_row(w: &[f64], bits: usize, method: Method) -> RowFit {
    let mut fit = match method {
        Method::Greedy => greedy(w, bits, false),
        Method::Refined => greedy(w, bits, true),
        Method::Alternating { cycles } => alternating(w, bits, cycles, None),
        Method::Uniform => uniform(w, bits),
        Method::UniformFitted => uniform_fitted(w, bits),
    };
    normalise(&mut fit);
    fit
}

/// Alternating minimisation from several starts, keeping the best: greedy
/// codes (so it is never worse than greedy); the (k−1)-bit alternating
/// result plus one greedy bit on its residual (so error never rises with k);
/// and `warm` codes when given.
fn alternating(w: &[f64], bits: usize, cycles: usize, warm: Option<&[u8]>) -> RowFit {
    if bits == 1 {
        // mean |w| · sign(w) is the 1-bit optimum: nothing to alternate.
        return greedy(w, 1, false);
    }
    let refine = |mut fit: RowFit| {
        for _ in 0..cycles {
            least_squares_alphas(w, &mut fit);
            assign_codes(w, &mut fit);
        }
        least_squares_alphas(w, &mut fit);
        let err = row_error(w, &fit);
        (fit, err)
    };
    let mut best = refine(greedy(w, bits, false));
    let mut consider = |candidate: (RowFit, f64)| {
        if candidate.1 < best.1 {
            best = candidate;
        }
    };
    // At 2 bits this start is the greedy one again (1-bit alternating is
    // greedy, plus a greedy bit), so it is only worth fitting from 3 bits.
    if bits > 2 {
        let mut grown = alternating(w, bits - 1, cycles, None);
        add_greedy_bit(w, &mut grown);
        consider(refine(grown));
    }
    if let Some(alphas) = alphas_from_levels(w, bits) {
        let mut fit = RowFit {
            alphas,
            codes: vec![0; w.len()],
        };
        assign_codes(w, &mut fit);
        consider(refine(fit));
    }
    if let Some(codes) = warm {
        let start = RowFit {
            alphas: vec![0.0; bits],
            codes: codes.to_vec(),
        };
        let mut fit = start;
        least_squares_alphas(w, &mut fit);
        consider(refine(fit));
    }
    best.0
}

/// When a row takes exactly 2^k distinct values that are all the sums
/// Σ ±α_i of some α (as a quantized row does), recovers α; this start makes
/// re-quantizing a quantized row reproduce it. The smallest α is half the gap
/// between the two largest levels; pairing every level with the one 2α
/// below it leaves the levels of the other k − 1 coefficients.
fn alphas_from_levels(w: &[f64], bits: usize) -> Option<Vec<f64>> {
    // Most rows are not quantized: find a (2^k + 1)-th distinct value
    // before paying for a sort.
    let scale = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut seen: Vec<f64> = Vec::with_capacity((1 << bits) + 1);
    for &x in w {
        if !seen.iter().any(|&v| (v - x).abs() <= 1e-6 * scale) {
            seen.push(x);
            if seen.len() > 1 << bits {
                return None;
            }
        }
    }
    let mut levels = w.to_vec();
    levels.sort_by(|a, b| b.total_cmp(a));
    let scale = levels.first()?.abs().max(levels.last()?.abs());
    let tol = 1e-6 * scale;
    levels.dedup_by(|a, b| (*a - *b).abs() <= tol);
    if levels.len() != 1 << bits || scale == 0.0 {
        return None;
    }
    let mut alphas = Vec::with_capacity(bits);
    while levels.len() > 1 {
        let gap = levels[0] - levels[1];
        let mut upper = Vec::with_capacity(levels.len() / 2);
        let mut used = vec![false; levels.len()];
        for i in 0..levels.len() {
            if used[i] {
                continue;
            }
            used[i] = true;
            let partner = (i + 1..levels.len())
                .find(|&j| !used[j] && (levels[i] - gap - levels[j]).abs() <= tol)?;
            used[partner] = true;
            upper.push(levels[i] - gap / 2.0);
        }
        alphas.push(gap / 2.0);
        levels = upper;
    }
    if levels[0].abs() > tol {
        return None; // the sums of ±α are symmetric around 0
    }
    alphas.reverse();
    Some(alphas)
}

fn row_error(w: &[f64], fit: &RowFit) -> f64 {
    let t = fit.table();
    w.iter()
        .zip(&fit.codes)
        .map(|(&x, &p)| (x - t[p as usize]).powi(2))
        .sum()
}

/// Appends one bit: the residual's sign, coefficient its mean magnitude.
fn add_greedy_bit(w: &[f64], fit: &mut RowFit) {
    let i = fit.alphas.len();
    let n = w.len().max(1) as f64;
    let mut sum = 0.0;
    let t = fit.table();
    for (j, &x) in w.iter().enumerate() {
        let r = x - t[fit.codes[j] as usize];
        sum += r.abs();
        if r >= 0.0 {
            fit.codes[j] |= 1 << i;
        }
    }
    fit.alphas.push(sum / n);
}

fn greedy(w: &[f64], bits: usize, refit: bool) -> RowFit {
    let n = w.len();
    let mut fit = RowFit {
        alphas: Vec::with_capacity(bits),
        codes: vec![0; n],
    };
    let mut residual = w.to_vec();
    for i in 0..bits {
        let mean_abs = if n == 0 {
            0.0
        } else {
            residual.iter().map(|r| r.abs()).sum::<f64>() / n as f64
        };
        for (j, r) in residual.iter().enumerate() {
            if *r >= 0.0 {
                fit.codes[j] |= 1 << i; // sign(0) = +1
            }
        }
        fit.alphas.push(mean_abs);
        if refit {
            least_squares_alphas(w, &mut fit);
        }
        let t = fit.table();
        for (j, r) in residual.iter_mut().enumerate() {
            *r = w[j] - t[fit.codes[j] as usize];
        }
    }
    fit
}

/// α = argmin ‖w − Bα‖² for the current codes B (normal equations,
/// Cholesky with a tiny ridge so duplicate codes share their coefficient).
#[allow(
    clippy::needless_range_loop,
    reason = "index loops read like the k×k algebra they implement"
)]
fn least_squares_alphas(w: &[f64], fit: &mut RowFit) {
    let k = fit.alphas.len();
    let mut gram = [[0.0f64; 4]; 4];
    let mut rhs = [0.0f64; 4];
    // BᵀB and Bᵀw from each pattern's count and sum: O(n + 2^k·k²),
    // without building B.
    let (mut count, mut sum) = ([0.0f64; 16], [0.0f64; 16]);
    for (&x, &p) in w.iter().zip(&fit.codes) {
        count[p as usize] += 1.0;
        sum[p as usize] += x;
    }
    for p in 0..1usize << k {
        if count[p] == 0.0 {
            continue;
        }
        for a in 0..k {
            let sa = sign(p >> a & 1 == 1);
            rhs[a] += sa * sum[p];
            for b in a..k {
                gram[a][b] += sa * sign(p >> b & 1 == 1) * count[p];
            }
        }
    }
    let trace: f64 = (0..k).map(|a| gram[a][a]).sum();
    if trace == 0.0 {
        return;
    }
    for a in 0..k {
        for b in 0..a {
            gram[a][b] = gram[b][a];
        }
        gram[a][a] += 1e-12 * trace;
    }
    if let Some(alphas) = solve_spd(&gram, &rhs, k) {
        fit.alphas.copy_from_slice(&alphas[..k]);
    }
}

/// Solves G x = r for a symmetric positive-definite k×k G (k ≤ 4).
#[allow(
    clippy::needless_range_loop,
    reason = "the Cholesky recurrences index rows and columns of one matrix"
)]
fn solve_spd(g: &[[f64; 4]; 4], r: &[f64; 4], k: usize) -> Option<[f64; 4]> {
    let mut l = [[0.0f64; 4]; 4];
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = g[i][j] - (0..j).map(|m| l[i][m] * l[j][m]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut y = [0.0f64; 4];
    for i in 0..k {
        y[i] = (r[i] - (0..i).map(|m| l[i][m] * y[m]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0f64; 4];
    for i in (0..k).rev() {
        x[i] = (y[i] - (i + 1..k).map(|m| l[m][i] * x[m]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

/// Gives every entry the nearest of the 2^k values Σ ±α_i (binary search on
/// midpoints between sorted values).
fn assign_codes(w: &[f64], fit: &mut RowFit) {
    let k = fit.alphas.len();
    let mut levels: Vec<(f64, u8)> = (0..1u8 << k)
        .map(|p| (pattern_value(&fit.alphas, p), p))
        .collect();
    levels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mids: Vec<f64> = levels.windows(2).map(|p| 0.5 * (p[0].0 + p[1].0)).collect();
    // An entry's slot is how many midpoints are ≤ it (ties go up: sign(0) =
    // +1), counted one midpoint at a time over the whole row: branch-free
    // passes the compiler vectorizes, unlike a binary search per entry.
    let slots = &mut fit.codes;
    slots.fill(0);
    for &m in &mids {
        for (slot, &x) in slots.iter_mut().zip(w) {
            *slot += u8::from(m <= x);
        }
    }
    let mut pattern = [0u8; 16];
    for (slot, &(_, p)) in levels.iter().enumerate() {
        pattern[slot] = p;
    }
    for code in slots.iter_mut() {
        *code = pattern[*code as usize];
    }
}

fn uniform(w: &[f64], bits: usize) -> RowFit {
    let max = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    uniform_with_step(w, bits, max / ((1usize << bits) - 1) as f64)
}

/// The uniform code of `w` with step `s`: level `s·(2j − top)` nearest each
/// entry, j clamped to 0..=top.
fn uniform_with_step(w: &[f64], bits: usize, s: f64) -> RowFit {
    let top = ((1usize << bits) - 1) as f64;
    // Level j·2 − top for j in 0..2^k is Σ_i s·2^(k−1−i)·b_i for the bits of j.
    let alphas: Vec<f64> = (0..bits)
        .map(|i| s * (1u64 << (bits - 1 - i)) as f64)
        .collect();
    let codes = w
        .iter()
        .map(|&x| {
            let j = uniform_level(x, s, top);
            // bit (k−1−i) of j is b_i's sign
            (0..bits).fold(0u8, |p, i| p | (((j >> (bits - 1 - i)) & 1) as u8) << i)
        })
        .collect();
    RowFit { alphas, codes }
}

fn uniform_level(x: f64, s: f64, top: f64) -> usize {
    if s == 0.0 {
        top as usize
    } else {
        (((x / s) + top) / 2.0).round().clamp(0.0, top) as usize
    }
}

/// Squared error of `w` on the uniform grid of step `s`.
fn uniform_error(w: &[f64], s: f64, top: f64) -> f64 {
    w.iter()
        .map(|&x| {
            let v = s * (2.0 * uniform_level(x, s, top) as f64 - top);
            (x - v) * (x - v)
        })
        .sum()
}

/// The step with the least squared error: the best of 32 clipping ranges
/// (a fraction of max |w|), then Lloyd iterations (assign the nearest
/// level, refit s by least squares), which never raise the error.
fn uniform_fitted(w: &[f64], bits: usize) -> RowFit {
    const RANGES: usize = 32;
    const LLOYD: usize = 20;
    let top = ((1usize << bits) - 1) as f64;
    let max = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return uniform_with_step(w, bits, 0.0);
    }
    let mut best = (max / top, uniform_error(w, max / top, top));
    for r in 1..RANGES {
        let s = max / top * r as f64 / RANGES as f64;
        let e = uniform_error(w, s, top);
        if e < best.1 {
            best = (s, e);
        }
    }
    let mut s = best.0;
    for _ in 0..LLOYD {
        // s = Σ w·l / Σ l² over the levels l = 2j − top the entries took
        let (wl, ll) = w.iter().fold((0.0, 0.0), |(wl, ll), &x| {
            let l = 2.0 * uniform_level(x, s, top) as f64 - top;
            (wl + x * l, ll + l * l)
        });
        if ll == 0.0 {
            break;
        }
        let next = wl / ll;
        let e = uniform_error(w, next, top);
        if e >= best.1 {
            break;
        }
        best = (next, e);
        s = next;
    }
    uniform_with_step(w, bits, best.0)
}

/// Makes α non-negative (flipping the code's sign) and sorted descending
/// (permuting code bits alongside). The values are unchanged.
fn normalise(fit: &mut RowFit) {
    let k = fit.alphas.len();
    let mut flip = 0u8;
    for (i, a) in fit.alphas.iter_mut().enumerate() {
        if *a < 0.0 {
            *a = -*a;
            flip |= 1 << i;
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| fit.alphas[b].total_cmp(&fit.alphas[a]));
    let alphas: Vec<f64> = order.iter().map(|&i| fit.alphas[i]).collect();
    for p in fit.codes.iter_mut() {
        let flipped = *p ^ flip;
        *p = order
            .iter()
            .enumerate()
            .fold(0u8, |acc, (new, &old)| acc | ((flipped >> old) & 1) << new);
    }
    fit.alphas = alphas;
}
