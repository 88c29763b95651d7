//! The per-time-step recurrent products: a few rows (the batch) times a
//! weight matrix that stays the same for the whole segment.
//!
//! A general GEMM repacks the weight on every call, 35 times a segment per
//! layer and direction, and with batch 20 it spends its time on that copy
//! and on ragged row blocks (perf on 2×650: OpenBLAS's copy routines were
//! 15 % of a step). Here the weight is packed once per segment into panels
//! of [`PANEL`] columns, each stored k-major, and every step streams the
//! panels through a register-blocked kernel that keeps a few rows × 16
//! columns of the output in registers. Panels are split over the cores; each
//! output element is one running sum in k order, so results do not depend on
//! the split or on thread timing.

use std::any::TypeId;
use std::ops::Range;

use rayon::prelude::*;

use super::gemm::{Out, View};
use super::Real;

/// Output columns per panel: two AVX vectors of f32.
pub const PANEL: usize = 16;

/// Rows of the output a kernel call keeps in registers.
pub const ROWS: usize = 5;

/// A `k × n` right operand packed into panels of [`PANEL`] columns, each
/// panel stored k-major (`PANEL` values per k), the last one zero-padded.
pub struct PackedRhs<E> {
    data: Vec<E>,
    /// Where the 64-byte-aligned panels start in `data`.
    start: usize,
    k: usize,
    n: usize,
}

impl<E: Real> PackedRhs<E> {
    /// Packs the `k × n` matrix `b`.
    pub fn pack(b: View<E>, k: usize, n: usize) -> Self {
        b.check(k, n);
        let panels = n.div_ceil(PANEL);
        let len = panels * k * PANEL;
        // 64-byte alignment puts every k-row of a panel in one cache line
        let slack = 64 / std::mem::size_of::<E>();
        let mut data = vec![E::default(); len + slack];
        let start = data.as_ptr().align_offset(64).min(slack);
        data[start..start + len]
            .par_chunks_mut(k * PANEL)
            .enumerate()
            .for_each(|(p, panel)| {
                let c0 = p * PANEL;
                let width = PANEL.min(n - c0);
                // read the source along its contiguous direction
                if b.is_row_major() {
                    for (kk, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                        for (j, x) in row[..width].iter_mut().enumerate() {
                            *x = b.at(kk, c0 + j);
                        }
                    }
                } else {
                    for j in 0..width {
                        for kk in 0..k {
                            panel[kk * PANEL + j] = b.at(kk, c0 + j);
                        }
                    }
                }
            });
        Self { data, start, k, n }
    }

    fn panel(&self, p: usize) -> &[E] {
        let len = self.k * PANEL;
        &self.data[self.start + p * len..self.start + (p + 1) * len]
    }
}

/// Panels per chunk when parallel callers split a product `n` wide: a few
/// chunks per thread, for balance.
fn chunk_size(n: usize) -> usize {
    n.div_ceil(PANEL)
        .div_ceil(rayon::current_num_threads().max(1) * 2)
        .max(1)
}

/// How many chunks of panels a product `n` wide splits into.
pub fn panel_chunks(n: usize) -> usize {
    n.div_ceil(PANEL).div_ceil(chunk_size(n))
}

/// The panels of chunk `chunk` (of [`panel_chunks`]) of a product `n` wide,
/// and the output columns they cover.
pub fn chunk_panels(n: usize, chunk: usize) -> (Range<usize>, Range<usize>) {
    let (size, panels) = (chunk_size(n), n.div_ceil(PANEL));
    let p = (chunk * size).min(panels)..((chunk + 1) * size).min(panels);
    let columns = (p.start * PANEL).min(n)..(p.end * PANEL).min(n);
    (p, columns)
}

/// `dst (m×n, row-major) = [dst +] a (m×k, row-major) · b`, for small `m`:
/// [`panels_product`] over all chunks in parallel (the LSTM layer runs its
/// own chunks, to finish each chunk's cells in the same task).
#[cfg(test)]
pub fn matmul_packed<E: Real>(
    dst: &mut [E],
    m: usize,
    a: &[E],
    b: &PackedRhs<E>,
    accumulate: bool,
) {
    let (k, n) = (b.k, b.n);
    assert!(dst.len() >= m * n, "output out of bounds");
    assert!(a.len() >= m * k, "left operand out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    let out = Out(dst.as_mut_ptr());
    (0..panel_chunks(n)).into_par_iter().for_each(|chunk| {
        // SAFETY: `dst` holds m rows of n (asserted above), and chunks are
        // disjoint column ranges, so no two tasks write the same element.
        unsafe { panels_product(out, n, m, a, b, chunk_panels(n, chunk).0, accumulate) }
    });
}

/// `dst[r·stride + c] = [dst[r·stride + c] +] Σ_kk a[r·k + kk] · b[kk][c]`
/// for `r < m` and the columns `c` of `panels`, on the calling thread; each
/// element is one running sum in k order.
///
/// # Safety
/// `dst` must be valid for writes at `r · stride + c` for every such `r`
/// and `c < n` (`b`'s columns), and no other thread may access those elements
/// meanwhile.
pub(super) unsafe fn panels_product<E: Real>(
    dst: Out<E>,
    stride: usize,
    m: usize,
    a: &[E],
    b: &PackedRhs<E>,
    panels: Range<usize>,
    accumulate: bool,
) {
    let (k, n) = (b.k, b.n);
    assert!(a.len() >= m * k, "left operand out of bounds");
    let pairs = pairs_here::<E>();
    let mut tiles = [[[E::default(); PANEL]; ROWS]; 2];
    let mut p = panels.start;
    while p < panels.end {
        let both = pairs && p + 1 < panels.end;
        for r0 in (0..m).step_by(ROWS) {
            let rows = ROWS.min(m - r0);
            if both {
                let panels = [b.panel(p), b.panel(p + 1)];
                panel_pair_product(&a[r0 * k..], k, rows, panels, &mut tiles);
            } else {
                panel_product(&a[r0 * k..], k, rows, b.panel(p), &mut tiles[0]);
            }
            for (q, tile) in tiles[..1 + both as usize].iter().enumerate() {
                let c0 = (p + q) * PANEL;
                let width = PANEL.min(n - c0);
                for (r, values) in tile[..rows].iter().enumerate() {
                    // SAFETY: inside `dst` and written by this caller only
                    // (the function's contract).
                    let row = unsafe {
                        std::slice::from_raw_parts_mut(dst.at((r0 + r) * stride + c0), width)
                    };
                    if accumulate {
                        row.iter_mut().zip(values).for_each(|(d, &v)| *d += v);
                    } else {
                        row.copy_from_slice(&values[..width]);
                    }
                }
            }
        }
        p += 1 + both as usize;
    }
}

/// Whether [`panel_pair_product`] runs here: f32 on AVX-512, whose one
/// zmm per row and panel gives 5 independent sums, too few to hide the
/// fused multiply-add's latency; two panels at once give 10.
fn pairs_here<E: Real>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        TypeId::of::<E>() == TypeId::of::<f32>()
            && super::kernels::vector() == super::kernels::Vector::Avx512
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// [`panel_product`] for two panels at once, each sum the same chain as on
/// one panel (so the same bits). Only where [`pairs_here`] says so.
fn panel_pair_product<E: Real>(
    a: &[E],
    k: usize,
    rows: usize,
    panels: [&[E]; 2],
    tiles: &mut [Tile<E>; 2],
) {
    assert!(pairs_here::<E>(), "two-panel products are AVX-512 f32 only");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: E is f32 (checked through `pairs_here`), so each cast is
        // the identity.
        let (a, p0, p1, tiles) = unsafe {
            (
                &*(a as *const [E] as *const [f32]),
                &*(panels[0] as *const [E] as *const [f32]),
                &*(panels[1] as *const [E] as *const [f32]),
                &mut *(tiles as *mut [Tile<E>; 2] as *mut [Tile<f32>; 2]),
            )
        };
        assert!(a.len() >= rows * k && p0.len() >= k * PANEL && p1.len() >= k * PANEL);
        let (a, p0, p1) = (a.as_ptr(), p0.as_ptr(), p1.as_ptr());
        // SAFETY: the CPU has AVX-512 F (`pairs_here`), and the kernel reads
        // `rows` rows of `k` from `a` and `k` rows of PANEL from each panel
        // (asserted above).
        unsafe {
            match rows {
                5 => avx512::rows_pair::<5>(a, k, p0, p1, tiles),
                4 => avx512::rows_pair::<4>(a, k, p0, p1, tiles),
                3 => avx512::rows_pair::<3>(a, k, p0, p1, tiles),
                2 => avx512::rows_pair::<2>(a, k, p0, p1, tiles),
                1 => avx512::rows_pair::<1>(a, k, p0, p1, tiles),
                _ => unreachable!("at most {ROWS} rows a call"),
            }
        }
    }
}

/// The block of output a kernel call fills.
pub type Tile<E> = [[E; PANEL]; ROWS];

/// `tile[r][j] = Σ_kk a[r·k + kk] · panel[kk·PANEL + j]` for `r < rows`, on
/// the fastest kernel for E and this CPU.
fn panel_product<E: Real>(a: &[E], k: usize, rows: usize, panel: &[E], tile: &mut Tile<E>) {
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        // SAFETY: E is f32 (the same TypeId), so each cast is the identity.
        let (a, panel, tile) = unsafe {
            (
                &*(a as *const [E] as *const [f32]),
                &*(panel as *const [E] as *const [f32]),
                &mut *(tile as *mut Tile<E> as *mut Tile<f32>),
            )
        };
        return panel_product_f32(a, k, rows, panel, tile);
    }
    panel_product_portable(a, k, rows, panel, tile)
}

/// `tile[r][j] = Σ_kk a[r·k + kk] · panel[kk·PANEL + j]` for `r < rows`, in
/// k order: the portable kernel, for f64 and for CPUs without AVX2/FMA.
fn panel_product_portable<E: Real>(
    a: &[E],
    k: usize,
    rows: usize,
    panel: &[E],
    tile: &mut Tile<E>,
) {
    for (r, acc) in tile[..rows].iter_mut().enumerate() {
        *acc = [E::default(); PANEL];
        let a_row = &a[r * k..(r + 1) * k];
        for (&x, b_row) in a_row.iter().zip(panel.chunks_exact(PANEL)) {
            for (s, &y) in acc.iter_mut().zip(b_row) {
                *s += x * y;
            }
        }
    }
}

/// The f32 kernel for this CPU: `rows` × 16 sums in registers, one
/// broadcast per row for every k, and two 8-lane (AVX2 + FMA) or one
/// 16-lane (AVX-512) panel load. Every sum is the same chain of fused
/// multiply-adds in k order on both, so the two give identical bits.
#[cfg(target_arch = "x86_64")]
fn panel_product_f32(a: &[f32], k: usize, rows: usize, panel: &[f32], tile: &mut Tile<f32>) {
    let kernel = super::kernels::vector();
    if kernel == super::kernels::Vector::Portable {
        return panel_product_portable(a, k, rows, panel, tile);
    }
    panel_product_on(kernel, a, k, rows, panel, tile)
}

/// [`panel_product_f32`] on the given vector kernel, which the CPU must have.
#[cfg(target_arch = "x86_64")]
fn panel_product_on(
    kernel: super::kernels::Vector,
    a: &[f32],
    k: usize,
    rows: usize,
    panel: &[f32],
    tile: &mut Tile<f32>,
) {
    use super::kernels::Vector;
    assert!(a.len() >= rows * k && panel.len() >= k * PANEL);
    assert!(
        kernel.available(),
        "{kernel:?} kernels on a CPU without them"
    );
    macro_rules! on {
        ($module:ident) => {
            // SAFETY: the CPU has the kernel's instructions (asserted), and
            // the kernels read `rows` rows of `k` from `a` and `k` rows of
            // PANEL from `panel` (asserted above).
            unsafe {
                match rows {
                    5 => $module::rows::<5>(a.as_ptr(), k, panel.as_ptr(), tile),
                    4 => $module::rows::<4>(a.as_ptr(), k, panel.as_ptr(), tile),
                    3 => $module::rows::<3>(a.as_ptr(), k, panel.as_ptr(), tile),
                    2 => $module::rows::<2>(a.as_ptr(), k, panel.as_ptr(), tile),
                    1 => $module::rows::<1>(a.as_ptr(), k, panel.as_ptr(), tile),
                    _ => unreachable!("at most {ROWS} rows a call"),
                }
            }
        };
    }
    match kernel {
        Vector::Avx512 => on!(avx512),
        Vector::Avx2 => on!(avx2),
        Vector::Portable => panel_product_portable(a, k, rows, panel, tile),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::PANEL;
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX2 and FMA must be available; `a` must hold `R` rows of `k`
    /// floats and `panel` `k` rows of [`PANEL`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn rows<const R: usize>(
        a: *const f32,
        k: usize,
        panel: *const f32,
        tile: &mut super::Tile<f32>,
    ) {
        // SAFETY: the caller guarantees AVX2 and FMA and that `a` holds R rows
        // of k floats and `panel` k rows of PANEL, so every load is in bounds.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for kk in 0..k {
                let b0 = _mm256_loadu_ps(panel.add(kk * PANEL));
                let b1 = _mm256_loadu_ps(panel.add(kk * PANEL + 8));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_broadcast_ss(&*a.add(r * k + kk));
                    acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
                }
            }
            for (out, acc) in tile.iter_mut().zip(&acc) {
                _mm256_storeu_ps(out.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::PANEL;
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512 F must be available; `a` must hold `R` rows of `k` floats
    /// and `panel` `k` rows of [`PANEL`].
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rows<const R: usize>(
        a: *const f32,
        k: usize,
        panel: *const f32,
        tile: &mut super::Tile<f32>,
    ) {
        // SAFETY: the caller guarantees AVX-512 F and that `a` holds R rows
        // of k floats and `panel` k rows of PANEL, so every load is in bounds.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); R];
            for kk in 0..k {
                let b = _mm512_loadu_ps(panel.add(kk * PANEL));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * k + kk));
                    *acc = _mm512_fmadd_ps(x, b, *acc);
                }
            }
            for (out, acc) in tile.iter_mut().zip(&acc) {
                _mm512_storeu_ps(out.as_mut_ptr(), *acc);
            }
        }
    }

    /// [`rows`] on two panels at once: 2·R independent sums.
    ///
    /// # Safety
    /// As [`rows`], for each of the two panels.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rows_pair<const R: usize>(
        a: *const f32,
        k: usize,
        panel0: *const f32,
        panel1: *const f32,
        tiles: &mut [super::Tile<f32>; 2],
    ) {
        // SAFETY: the caller guarantees AVX-512 F and that `a` holds R rows
        // of k floats and each panel k rows of PANEL, so every load is in
        // bounds.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            for kk in 0..k {
                let b0 = _mm512_loadu_ps(panel0.add(kk * PANEL));
                let b1 = _mm512_loadu_ps(panel1.add(kk * PANEL));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * k + kk));
                    acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(tiles[0][r].as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(tiles[1][r].as_mut_ptr(), acc[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemm::tests::naive;
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every row count a kernel call can get, ragged last panels, packed
    /// from a stored matrix and from a transposed one, overwrite and
    /// accumulate, in f64 (portable kernel) and f32 (AVX2 where present).
    #[test]
    fn packed_products_match_the_naive_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (m, n, k) in [
            (1, 1, 1),
            (4, 17, 3),
            (5, 16, 9),
            (20, 130, 33),
            (23, 47, 70),
        ] {
            let a: Vec<f64> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f64> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let want = naive(&a, &b, (m, n, k));
            check::<f64>(&a, &b, &want, (m, n, k), 1e-12);
            check::<f32>(&a, &b, &want, (m, n, k), 1e-4);
        }
    }

    fn check<E: Real>(
        a: &[f64],
        b: &[f64],
        want: &[f64],
        (m, n, k): (usize, usize, usize),
        tolerance: f64,
    ) {
        let real = |x: &[f64]| x.iter().map(|&v| E::of(v)).collect::<Vec<E>>();
        let (a, b) = (real(a), real(b));
        let close = |x: &[E], scale: f64| {
            x.iter()
                .zip(want)
                .all(|(p, q)| (p.as_f64() - scale * q).abs() < tolerance)
        };
        let packed = PackedRhs::pack(View::rows(&b, n), k, n);
        let mut c = vec![E::of(f64::NAN); m * n];
        matmul_packed(&mut c, m, &a, &packed, false);
        assert!(close(&c, 1.0), "{m}×{n}×{k}");
        let bt = super::super::lstm::transpose(&b, k, n);
        let packed = PackedRhs::pack(View::transposed(&bt, k), k, n);
        matmul_packed(&mut c, m, &a, &packed, true);
        assert!(close(&c, 2.0), "{m}×{n}×{k} from a transpose, accumulated");
    }

    /// The AVX-512 and AVX2 kernels give the same bits, and both the
    /// portable kernel's sums to rounding, on every row count.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_kernels_agree_bit_for_bit() {
        use super::super::kernels::Vector;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let k = 650;
        let a: Vec<f32> = (0..ROWS * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * PANEL).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let packed = PackedRhs::pack(View::rows(&b, PANEL), k, PANEL);
        let kernels: Vec<Vector> = [Vector::Avx2, Vector::Avx512]
            .into_iter()
            .filter(|v| {
                let ok = v.available();
                if !ok {
                    eprintln!("skipping the {v:?} recurrent kernel: this CPU lacks it");
                }
                ok
            })
            .collect();
        for rows in 1..=ROWS {
            let mut portable = [[0.0f32; PANEL]; ROWS];
            panel_product_portable(&a, k, rows, packed.panel(0), &mut portable);
            let mut first: Option<Tile<f32>> = None;
            for &v in &kernels {
                let mut tile = [[0.0f32; PANEL]; ROWS];
                panel_product_on(v, &a, k, rows, packed.panel(0), &mut tile);
                for r in 0..rows {
                    for j in 0..PANEL {
                        assert!((tile[r][j] - portable[r][j]).abs() < 1e-3, "{v:?}");
                    }
                }
                match &first {
                    Some(f) => assert_eq!(&f[..rows], &tile[..rows], "{v:?} against AVX2"),
                    None => first = Some(tile),
                }
            }
        }
        if !Vector::Avx512.available() || super::super::kernels::vector() != Vector::Avx512 {
            eprintln!("skipping the two-panel AVX-512 kernel: not in use here");
            return;
        }
        let b: Vec<f32> = (0..k * 2 * PANEL)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let packed = PackedRhs::pack(View::rows(&b, 2 * PANEL), k, 2 * PANEL);
        for rows in 1..=ROWS {
            let mut pair = [[[0.0f32; PANEL]; ROWS]; 2];
            panel_pair_product(&a, k, rows, [packed.panel(0), packed.panel(1)], &mut pair);
            for (q, got) in pair.iter().enumerate() {
                let mut one = [[0.0f32; PANEL]; ROWS];
                panel_product_on(Vector::Avx512, &a, k, rows, packed.panel(q), &mut one);
                assert_eq!(
                    &one[..rows],
                    &got[..rows],
                    "panel {q} of a pair, {rows} rows"
                );
            }
        }
    }
}
