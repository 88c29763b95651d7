//! Matrix products for the custom ops, on every core.
//!
//! dfdx 0.13 runs its GEMMs through `gemm` 0.15; in a scratch benchmark on
//! this AVX2 machine the `gemm` 0.18 kernels reached 80–90 GFLOP/s on one
//! core against about 50 for 0.15 (`iq-tui bench --gemm-peak` measures what
//! this module reaches). Each product is cut into
//! disjoint blocks of output rows or columns, one single-threaded GEMM per
//! block: no block shares a reduction, so a result never depends on which
//! thread ran it.

use rayon::prelude::*;

use super::Real;

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

    /// Panics unless an `rows × cols` matrix fits in the slice.
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "operand out of bounds");
        }
    }
}

/// The output pointer shared by column blocks, which write disjoint columns.
#[derive(Clone, Copy)]
struct Out<E>(*mut E);
// SAFETY: only used for disjoint column blocks of one output (see `matmul`).
unsafe impl<E> Send for Out<E> {}
unsafe impl<E> Sync for Out<E> {}

impl<E> Out<E> {
    /// Through a method, so closures capture the `Send` wrapper, not the field.
    fn at(self, offset: usize) -> *mut E {
        // SAFETY: callers stay inside the output (see `matmul`).
        unsafe { self.0.add(offset) }
    }
}

/// Rows per block for a caller that splits rows itself.
pub fn row_block(rows: usize) -> usize {
    block(rows, 24)
}

/// Output rows (or columns) per block: a multiple of the AVX2 kernel's 24 rows
/// or 4·8 columns, and a few blocks per thread for balance.
fn block(len: usize, unit: usize) -> usize {
    let blocks = rayon::current_num_threads().max(1) * 2;
    len.div_ceil(blocks).div_ceil(unit).max(1) * unit
}

/// `dst (m×n, row-major) = [dst +] a (m×k) · b (k×n)`.
pub fn matmul<E: Real>(
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
    if m >= n || m >= 256 {
        let rows = block(m, 24);
        dst[..m * n]
            .par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(i, out)| {
                let r0 = i * rows;
                // SAFETY: `out` holds these rows; operands were checked above.
                unsafe {
                    kernel(
                        (out.len() / n, n, k),
                        out.as_mut_ptr(),
                        n,
                        a.offset(r0, 0),
                        b,
                        accumulate,
                    )
                }
            });
    } else {
        let cols = block(n, 32);
        let out = Out(dst.as_mut_ptr());
        (0..n.div_ceil(cols)).into_par_iter().for_each(|i| {
            let c0 = i * cols;
            let width = cols.min(n - c0);
            // SAFETY: column blocks are disjoint, all inside `dst` (checked).
            unsafe { kernel((m, width, k), out.at(c0), n, a, b.offset(0, c0), accumulate) }
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
    unsafe { kernel((m, n, k), dst.as_mut_ptr(), n, a, b, accumulate) }
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
    let cols = block(width, 64);
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
    (m, n, k): (usize, usize, usize),
    dst: *mut E,
    dst_rs: usize,
    a: View<E>,
    b: View<E>,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(a: &[f64], b: &[f64], (m, n, k): (usize, usize, usize)) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    /// Row and column splits, transposed operands and accumulation, at sizes
    /// that leave ragged last blocks.
    #[test]
    fn every_split_and_layout_matches_the_naive_product() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (m, n, k) in [
            (1, 1, 1),
            (3, 70, 5),
            (70, 3, 9),
            (300, 41, 7),
            (20, 333, 17),
        ] {
            let a: Vec<f64> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f64> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let want = naive(&a, &b, (m, n, k));
            let mut c = vec![0.0; m * n];
            matmul(
                &mut c,
                (m, n, k),
                View::rows(&a, k),
                View::rows(&b, n),
                false,
            );
            let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-12);
            assert!(close(&c, &want), "{m}×{n}×{k}");
            // the same product from stored transposes, accumulated onto itself
            let at = super::super::lstm::transpose(&a, m, k);
            let bt = super::super::lstm::transpose(&b, k, n);
            matmul(
                &mut c,
                (m, n, k),
                View::transposed(&at, m),
                View::transposed(&bt, k),
                true,
            );
            let twice: Vec<f64> = want.iter().map(|x| 2.0 * x).collect();
            assert!(close(&c, &twice), "{m}×{n}×{k} transposed");
        }
    }
}
