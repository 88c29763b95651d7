//! Matrix products for the custom ops, on every core.
//!
//! Each product is cut into disjoint blocks of output rows or columns, one
//! single-threaded GEMM per block: no block shares a reduction, so a result
//! never depends on which thread ran it.
//!
//! A block runs on the [`Backend`] that `backend.rs` chose by measuring:
//! the built-in `gemm` crate, or a CBLAS library (OpenBLAS, or the one
//! `IQ_TUI_CBLAS` names) loaded at run time, so nothing is needed to build.
//! dfdx's own `gemm` 0.15 path ran on one core at about 50 GFLOP/s.

use std::any::TypeId;
use std::ops::Range;

use rayon::prelude::*;

use super::Real;

pub use super::backend::{backend, Arithmetic, Backend, BACKEND_VAR};
use super::backend::{openblas, other_cblas, Cblas, CblasGemm};

/// A read-only matrix operand: where element (r, c) lives is
/// `ptr + r·row_stride + c·col_stride`.
#[derive(Clone, Copy)]
pub struct View<'a, E> {
    data: &'a [E],
    row_stride: usize,
    col_stride: usize,
}

impl<'a, E> View<'a, E> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [E], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix that has `cols` columns.
    pub fn transposed(data: &'a [E], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    fn offset(self, rows: usize, cols: usize) -> Self {
        Self {
            data: &self.data[rows * self.row_stride + cols * self.col_stride..],
            ..self
        }
    }

    /// The `rows × cols` operand as CBLAS sees it in a row-major call:
    /// pointer, transpose flag and leading dimension; `None` where CBLAS
    /// cannot express the strides (it rejects a leading dimension below the
    /// stored width, and then computes nothing).
    fn cblas(self, rows: usize, cols: usize) -> Option<(*const E, i32, usize)> {
        const NO_TRANS: i32 = 111;
        const TRANS: i32 = 112;
        if self.col_stride == 1 && (self.row_stride >= cols || rows == 1) {
            Some((
                self.data.as_ptr(),
                NO_TRANS,
                self.row_stride.max(cols).max(1),
            ))
        } else if self.row_stride == 1 && (self.col_stride >= rows || cols == 1) {
            Some((self.data.as_ptr(), TRANS, self.col_stride.max(rows).max(1)))
        } else {
            None
        }
    }

    /// Whether rows are contiguous.
    pub fn is_row_major(&self) -> bool {
        self.col_stride == 1
    }

    /// Element (r, c).
    pub fn at(&self, r: usize, c: usize) -> E
    where
        E: Copy,
    {
        self.data[r * self.row_stride + c * self.col_stride]
    }

    /// Panics unless an `rows × cols` matrix fits in the slice.
    pub fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "operand out of bounds");
        }
    }
}

/// The output pointer shared by parallel tasks that write disjoint columns
/// of one output (column blocks here, panels in `recurrent_gemm`).
#[derive(Clone, Copy)]
pub(super) struct Out<E>(pub(super) *mut E);
// SAFETY: an `Out` is only handed to tasks that write disjoint ranges of
// one output, which outlives them (the parallel call returns after they do).
unsafe impl<E> Send for Out<E> {}
// SAFETY: as for `Send`: shared references only ever write disjoint ranges.
unsafe impl<E> Sync for Out<E> {}

impl<E> Out<E> {
    /// The entry `offset` elements in. Through a method, so closures capture
    /// the `Send` wrapper, not the raw field.
    ///
    /// # Safety
    /// `offset` must stay inside the output this `Out` points into.
    pub(super) unsafe fn at(self, offset: usize) -> *mut E {
        // SAFETY: in bounds, as the caller guarantees.
        unsafe { self.0.add(offset) }
    }
}

/// `units` of the row that starts `at` elements into a shared output: the
/// part of it one parallel task owns.
///
/// # Safety
/// `at + units.end` must stay inside the output, and no other task may read
/// or write these entries while the slice lives.
pub(super) unsafe fn units_mut<'a, E>(
    out: Out<E>,
    at: usize,
    units: &std::ops::Range<usize>,
) -> &'a mut [E] {
    // SAFETY: in bounds and exclusive, as the caller guarantees.
    unsafe { std::slice::from_raw_parts_mut(out.at(at + units.start), units.len()) }
}

/// Rows per block for a caller that splits rows itself (the fused decoder):
/// one block per thread, since every block packs the whole right operand
/// (the 10k-row decoder weight); 1×300 training ran about 5 % faster than
/// with two blocks per thread (six interleaved `iq-tui bench` pairs).
pub fn row_block(rows: usize) -> usize {
    let blocks = rayon::current_num_threads().max(1);
    rows.div_ceil(blocks).div_ceil(ROW_UNIT).max(1) * ROW_UNIT
}

/// Row blocks are whole multiples of this (one AVX register of f32), so a
/// block's edge costs a kernel at most one short tile.
const ROW_UNIT: usize = 8;

/// Output columns per block: a multiple of `unit`, and a few blocks per
/// thread for balance.
fn block(len: usize, unit: usize) -> usize {
    let blocks = rayon::current_num_threads().max(1) * 2;
    len.div_ceil(blocks).div_ceil(unit).max(1) * unit
}

/// `0..len` cut into at most `parts` ranges, each a multiple of `unit` long
/// but the last: in halves cut at the multiple of `unit` nearest the
/// middle, then halves of halves. Rayon gives one thread the first half of
/// the blocks and the other thread the rest, so it is the halves that must
/// match: 700 rows cut into 4 equal blocks rounded up to 24 (192, 192, 192,
/// 124) left one thread 384 rows and the other 316 (on the decoder's dh
/// product the process used 179–182 % of the two cores, now 190–194 %).
fn balanced_ranges(len: usize, unit: usize, parts: usize) -> Vec<Range<usize>> {
    fn split(range: Range<usize>, unit: usize, parts: usize, out: &mut Vec<Range<usize>>) {
        let len = range.len();
        if parts <= 1 || len <= unit {
            out.push(range);
            return;
        }
        let left_parts = parts / 2;
        let middle = len * left_parts / parts;
        let left = ((middle + unit / 2) / unit * unit).clamp(unit, len);
        split(range.start..range.start + left, unit, left_parts, out);
        if left < len {
            split(range.start + left..range.end, unit, parts - left_parts, out);
        }
    }
    let mut out = Vec::with_capacity(parts);
    if len > 0 {
        split(0..len, unit.max(1), parts, &mut out);
    }
    out
}

/// The blocks [`matmul`] splits `len` output rows or columns into: two per
/// thread, so that a thread slowed down can hand its second one over.
fn blocks(len: usize, unit: usize) -> Vec<Range<usize>> {
    balanced_ranges(len, unit, rayon::current_num_threads().max(1) * 2)
}

/// Columns per block for a column-parallel pass over a row-major matrix
/// `width` wide (a few blocks per thread, whole cache lines).
pub fn column_block(width: usize) -> usize {
    block(width, 64)
}

/// `dst (m×n, row-major) = [dst +] a (m×k) · b (k×n)`.
pub fn matmul<E: Real>(
    dst: &mut [E],
    shape: (usize, usize, usize),
    a: View<E>,
    b: View<E>,
    accumulate: bool,
) {
    matmul_on(backend(), dst, shape, a, b, accumulate)
}

pub fn matmul_on<E: Real>(
    backend: Backend,
    dst: &mut [E],
    (m, n, k): (usize, usize, usize),
    a: View<E>,
    b: View<E>,
    accumulate: bool,
) {
    check(dst, (m, n, k), a, b);
    if m == 0 || n == 0 {
        return;
    }
    let out = Out(dst.as_mut_ptr());
    if m >= n || m >= 256 {
        blocks(m, ROW_UNIT).into_par_iter().for_each(|rows| {
            // SAFETY: row blocks are disjoint, all inside `dst` (checked).
            unsafe {
                kernel(
                    backend,
                    (rows.len(), n, k),
                    out.at(rows.start * n),
                    n,
                    a.offset(rows.start, 0),
                    b,
                    accumulate,
                )
            }
        });
    } else {
        blocks(n, 32).into_par_iter().for_each(|cols| {
            // SAFETY: column blocks are disjoint, all inside `dst` (checked).
            unsafe {
                kernel(
                    backend,
                    (m, cols.len(), k),
                    out.at(cols.start),
                    n,
                    a,
                    b.offset(0, cols.start),
                    accumulate,
                )
            }
        });
    }
}

/// [`matmul`] on the calling thread only, for callers that already run in
/// parallel blocks.
pub fn matmul_serial<E: Real>(
    dst: &mut [E],
    (m, n, k): (usize, usize, usize),
    a: View<E>,
    b: View<E>,
    accumulate: bool,
) {
    check(dst, (m, n, k), a, b);
    // SAFETY: all three operands were checked for an m×n×k product.
    unsafe { kernel(backend(), (m, n, k), dst.as_mut_ptr(), n, a, b, accumulate) }
}

/// Panics unless `dst`, `a` and `b` hold an m×n×k product.
fn check<E>(dst: &[E], (m, n, k): (usize, usize, usize), a: View<E>, b: View<E>) {
    assert!(dst.len() >= m * n, "output out of bounds");
    a.check(m, k);
    b.check(k, n);
}

/// `dst[c] += Σ_r rows[r][c]` for row-major `rows` as wide as `dst` (a bias
/// gradient), in parallel over blocks of columns.
pub fn add_column_sums<E: Real>(dst: &mut [E], rows: &[E]) {
    let width = dst.len();
    let cols = column_block(width);
    dst.par_chunks_mut(cols).enumerate().for_each(|(i, out)| {
        for row in rows.chunks_exact(width) {
            for (o, &x) in out.iter_mut().zip(&row[i * cols..]) {
                *o += x;
            }
        }
    });
}

/// One single-threaded GEMM into `dst` with row stride `dst_rs`.
///
/// # Safety
/// `dst` must be valid for an `m × n` matrix at that stride, and the views
/// must hold `m × k` and `k × n`.
unsafe fn kernel<E: Real>(
    backend: Backend,
    (m, n, k): (usize, usize, usize),
    dst: *mut E,
    dst_rs: usize,
    a: View<E>,
    b: View<E>,
    accumulate: bool,
) {
    // SAFETY: the caller upholds this function's contract, which is the
    // backends' (dst valid for m × n at dst_rs; views of m × k and k × n).
    unsafe {
        if m == 0 || n == 0 {
            return;
        }
        let library = match backend {
            Backend::Builtin => None,
            Backend::OpenBlas => openblas().ok(),
            Backend::Cblas => other_cblas().ok(),
        };
        if let (Some(blas), Some(a), Some(b)) = (library, a.cblas(m, k), b.cblas(k, n)) {
            cblas(blas, (m, n, k), dst, dst_rs, a, b, accumulate);
            return;
        }
        let alpha = if accumulate { E::ONE } else { E::default() };
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            alpha,
            E::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// A row-major CBLAS call: C (m×n, leading dimension `dst_rs`) =
/// A·B [+ C], for the float types CBLAS has.
///
/// # Safety
/// As for [`kernel`].
unsafe fn cblas<E: Real>(
    blas: &Cblas,
    (m, n, k): (usize, usize, usize),
    dst: *mut E,
    dst_rs: usize,
    a: (*const E, i32, usize),
    b: (*const E, i32, usize),
    accumulate: bool,
) {
    // SAFETY: as for `kernel`, which the caller upholds; `call` gets the
    // CBLAS routine of the type that E is (checked by TypeId).
    unsafe {
        /// The row-major call, whichever float type `T` is.
        ///
        /// # Safety
        /// As for [`kernel`]; `f` must be the CBLAS GEMM for `T`.
        #[allow(
            clippy::too_many_arguments,
            reason = "one argument per CBLAS parameter, in CBLAS's order"
        )]
        unsafe fn call<T: From<u8>>(
            f: CblasGemm<T>,
            (m, n, k): (usize, usize, usize),
            (a, a_trans, lda): (*const T, i32, usize),
            (b, b_trans, ldb): (*const T, i32, usize),
            dst: *mut T,
            dst_rs: usize,
            accumulate: bool,
        ) {
            // SAFETY: the caller upholds `kernel`'s contract and passes the CBLAS
            // routine for T.
            unsafe {
                const ROW_MAJOR: i32 = 101;
                let beta = T::from(accumulate as u8);
                f(
                    ROW_MAJOR,
                    a_trans,
                    b_trans,
                    m as i32,
                    n as i32,
                    k as i32,
                    T::from(1),
                    a,
                    lda as i32,
                    b,
                    ldb as i32,
                    beta,
                    dst,
                    dst_rs as i32,
                )
            }
        }
        fn cast<E, T>((p, t, ld): (*const E, i32, usize)) -> (*const T, i32, usize) {
            (p.cast(), t, ld)
        }
        if TypeId::of::<E>() == TypeId::of::<f32>() {
            call::<f32>(
                blas.sgemm,
                (m, n, k),
                cast(a),
                cast(b),
                dst.cast(),
                dst_rs,
                accumulate,
            )
        } else if TypeId::of::<E>() == TypeId::of::<f64>() {
            call::<f64>(
                blas.dgemm,
                (m, n, k),
                cast(a),
                cast(b),
                dst.cast(),
                dst_rs,
                accumulate,
            )
        } else {
            unreachable!("Real is implemented for f32 and f64 only")
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Blocks tile `0..len` in order, each a multiple of the unit but the
    /// last, and the first half of them (what one thread gets) ends within
    /// half a unit of the middle.
    #[test]
    fn balanced_ranges_tile_the_rows_in_even_halves() {
        for unit in [1, 8, 32] {
            for parts in 1..=8 {
                for len in 0..=1200 {
                    let blocks = balanced_ranges(len, unit, parts);
                    assert!(blocks.len() <= parts);
                    let mut next = 0;
                    for b in &blocks {
                        assert_eq!(b.start, next, "{len} rows, {parts} parts of {unit}");
                        assert!(!b.is_empty());
                        if b.end < len {
                            assert_eq!(b.len() % unit, 0, "{blocks:?}");
                        }
                        next = b.end;
                    }
                    assert_eq!(next, len);
                    // one thread's half ends within half a unit of the middle
                    let middle = len * (parts / 2) / parts;
                    if parts >= 2 && middle >= unit {
                        assert!(
                            blocks.iter().any(|b| b.end.abs_diff(middle) <= unit / 2),
                            "{len} rows, {parts} parts of {unit}: {blocks:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            balanced_ranges(700, 8, 4),
            [0..176, 176..352, 352..528, 528..700]
        );
    }

    /// The m×n product of row-major `a` (m×k) and `b` (k×n), by definition.
    pub(in crate::model) fn naive(
        a: &[f64],
        b: &[f64],
        (m, n, k): (usize, usize, usize),
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    /// Row and column splits, transposed operands and accumulation, at sizes
    /// that leave ragged last blocks, on every backend this machine has (CI
    /// installs OpenBLAS so both run there, and fails without it).
    #[test]
    fn every_split_and_layout_matches_the_naive_product() {
        let mut backends = vec![Backend::Builtin];
        match openblas() {
            Ok(_) => backends.push(Backend::OpenBlas),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must install OpenBLAS to test that backend: {e}"
                );
                eprintln!("skipping the OpenBLAS backend: {e}");
            }
        }
        for backend in backends {
            products_match_the_naive_one::<f64>(backend, 1e-12);
            products_match_the_naive_one::<f32>(backend, 1e-4);
        }
    }

    fn products_match_the_naive_one<E: Real>(backend: Backend, tolerance: f64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (m, n, k) in [
            (1, 1, 1),
            (1, 9, 4),
            (3, 70, 5),
            (70, 3, 9),
            (300, 41, 7),
            (20, 333, 17),
        ] {
            let a: Vec<f64> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f64> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let want = naive(&a, &b, (m, n, k));
            let real = |x: &[f64]| x.iter().map(|&v| E::of(v)).collect::<Vec<E>>();
            let (ar, br) = (real(&a), real(&b));
            let close = |x: &[E], y: &[f64]| {
                x.iter()
                    .zip(y)
                    .all(|(p, q)| (p.as_f64() - q).abs() < tolerance)
            };
            // NaN in the output must not survive a non-accumulating product
            let mut c = vec![E::of(f64::NAN); m * n];
            matmul_on(
                backend,
                &mut c,
                (m, n, k),
                View::rows(&ar, k),
                View::rows(&br, n),
                false,
            );
            assert!(close(&c, &want), "{backend:?} {m}×{n}×{k}");
            // the same product from stored transposes, accumulated onto itself
            let at = real(&super::super::lstm::transpose(&a, m, k));
            let bt = real(&super::super::lstm::transpose(&b, k, n));
            matmul_on(
                backend,
                &mut c,
                (m, n, k),
                View::transposed(&at, m),
                View::transposed(&bt, k),
                true,
            );
            let twice: Vec<f64> = want.iter().map(|x| 2.0 * x).collect();
            assert!(close(&c, &twice), "{backend:?} {m}×{n}×{k} transposed");
        }
    }
}
