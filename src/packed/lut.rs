//! A binary-coded matrix times a vector through lookup tables (the idea of
//! Samsung's BiQGEMM): for every few input columns the sums of all subsets
//! of x are tabulated once per input vector, after which each ±1 plane of a
//! row costs one lookup per group of columns:
//! row · x = Σ_i α_i (2 · Σ_{b_i = +1} x − Σ_{kept} x).
//!
//! The group size is set by the register: a table must fit one, so that one
//! permute does the lookups of a whole block of rows with the table in a
//! register rather than in memory. With AVX2 that is 3 columns (8 entries,
//! `vpermps` on 8 rows); with AVX-512 4 columns (16 entries, `vpermps` on a
//! 16-row zmm), a third more columns and twice the rows per instruction.
//! The signs are stored block-interleaved for the layout in use: per block
//! of rows and group of columns, every row's bits side by side.

use crate::model::kernels::{self, Vector};

/// Sign planes at most: 8 code bits (codes are bytes) and a mask.
const MAX_PLANES: usize = 9;
/// Rows per block at most (the AVX-512 layout's).
const MAX_LANES: usize = 16;

/// How the signs are laid out, for one register width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 3 columns × 8 rows a group, 24 bits from byte 3g: bit 3·lane + j.
    Ymm,
    /// 4 columns × 16 rows a group, the 64 bits from byte 8g: lane L's 4 bits
    /// at 32·(L mod 2) + 4·⌊L/2⌋, so that a broadcast 64-bit word puts the
    /// low half in even lanes and the high half in odd ones and one shift
    /// per lane brings each row's bits down.
    Zmm,
}

impl Layout {
    /// Columns per group (their signs index 2^span subset sums).
    pub fn span(self) -> usize {
        match self {
            Layout::Ymm => 3,
            Layout::Zmm => 4,
        }
    }

    /// Rows per block: one per lane of the register.
    pub fn lanes(self) -> usize {
        match self {
            Layout::Ymm => 8,
            Layout::Zmm => 16,
        }
    }

    /// Table entries per group.
    fn entries(self) -> usize {
        1 << self.span()
    }

    /// Where a group's bits start in a plane.
    fn group_start(self, g: usize) -> usize {
        match self {
            Layout::Ymm => 3 * g,
            Layout::Zmm => 8 * g,
        }
    }

    /// Bit of row `lane`, column `j` of a group, from its first byte.
    fn bit(self, lane: usize, j: usize) -> usize {
        match self {
            Layout::Ymm => 3 * lane + j,
            Layout::Zmm => 32 * (lane % 2) + 4 * (lane / 2) + j,
        }
    }

    /// Bytes per plane of a block. The AVX2 kernel loads every group as a
    /// u32, so its layout has one spare byte for the last group.
    fn stride(self, groups: usize) -> usize {
        match self {
            Layout::Ymm => 3 * groups + 1,
            Layout::Zmm => 8 * groups,
        }
    }

    /// A group's bits of one plane, as the vector kernels load them.
    fn word(self, plane: &[u8], g: usize) -> u64 {
        let at = self.group_start(g);
        match self {
            Layout::Ymm => u32::from_le_bytes(plane[at..at + 4].try_into().unwrap()) as u64,
            Layout::Zmm => u64::from_le_bytes(plane[at..at + 8].try_into().unwrap()),
        }
    }
}

/// A binary matrix laid out for table lookups, a block of rows at a time.
#[derive(Debug, Clone)]
pub struct LutMatrix {
    pub rows: usize,
    pub cols: usize,
    bits: usize,
    layout: Layout,
    kernel: Vector,
    /// Column groups: ceil(cols / span).
    groups: usize,
    /// Sign planes per block: the k code planes, then the mask if pruned.
    planes: usize,
    masked: bool,
    /// blocks × bits × lanes: α of each row of a block (0 on padding rows).
    alphas: Vec<f32>,
    /// blocks × planes × stride bytes; a set bit means a +1 (or, on the mask
    /// plane, a kept weight) at that row and column.
    signs: Vec<u8>,
}

impl LutMatrix {
    /// Laid out for the vector kernels this process uses.
    pub fn new(b: &super::BinaryMatrix) -> Self {
        Self::for_kernel(b, kernels::vector())
    }

    /// Laid out for `kernel`, which must be available on this CPU (the
    /// portable code gets the AVX2 layout).
    pub fn for_kernel(b: &super::BinaryMatrix, kernel: Vector) -> Self {
        assert!(kernel.available(), "{} kernels on this CPU", kernel.name());
        let layout = match kernel {
            Vector::Avx512 => Layout::Zmm,
            Vector::Avx2 | Vector::Portable => Layout::Ymm,
        };
        Self::with(b, layout, kernel)
    }

    fn with(b: &super::BinaryMatrix, layout: Layout, kernel: Vector) -> Self {
        let (span, lanes) = (layout.span(), layout.lanes());
        let groups = b.cols.div_ceil(span);
        let blocks = b.rows.div_ceil(lanes);
        let masked = b.mask.is_some();
        let planes = b.bits + masked as usize;
        assert!(planes <= MAX_PLANES, "codes are bytes: at most 8 bits");
        let stride = layout.stride(groups);
        let mut signs = vec![0u8; blocks * planes * stride];
        let mut alphas = vec![0.0f32; blocks * b.bits * lanes];
        for r in 0..b.rows {
            let (block, lane) = (r / lanes, r % lanes);
            for i in 0..b.bits {
                alphas[(block * b.bits + i) * lanes + lane] = b.alphas[r * b.bits + i];
            }
            for c in 0..b.cols {
                let j = r * b.cols + c;
                let kept = b.mask.as_ref().is_none_or(|m| m[j]);
                let bit = layout.bit(lane, c % span);
                let at = layout.group_start(c / span) + bit / 8;
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
            layout,
            kernel,
            groups,
            planes,
            masked,
            alphas,
            signs,
        }
    }

    /// Bytes the kernels read: the signs (and mask) and the coefficients.
    pub fn bytes(&self) -> usize {
        self.signs.len() + 4 * self.alphas.len()
    }

    /// Tabulates the subset sums of `x` (groups × 2^span): entry m of group
    /// g is Σ x[span·g + j] over the bits j of m, each entry its table's
    /// entry without m's highest bit plus that column.
    pub fn table(&self, x: &[f32], lut: &mut Vec<f32>) {
        let (span, entries) = (self.layout.span(), self.layout.entries());
        lut.clear();
        for g in 0..self.groups {
            let at = |j: usize| x.get(span * g + j).copied().unwrap_or(0.0);
            let base = lut.len();
            lut.push(0.0);
            for m in 1..entries {
                let high = usize::BITS as usize - 1 - m.leading_zeros() as usize;
                let rest = lut[base + (m ^ (1 << high))];
                lut.push(rest + at(high));
            }
        }
    }

    /// y = W x, with `lut` from [`LutMatrix::table`] of the same x.
    pub fn apply(&self, lut: &[f32], y: &mut [f32]) {
        let (lanes, entries) = (self.layout.lanes(), self.layout.entries());
        assert_eq!(lut.len(), self.groups * entries, "a table of another x");
        let all: f32 = lut.chunks_exact(entries).map(|t| t[entries - 1]).sum();
        let stride = self.layout.stride(self.groups);
        let block_bytes = self.planes * stride;
        let mut sums = [[0.0f32; MAX_LANES]; MAX_PLANES];
        let sums = &mut sums[..self.planes];
        for (block, (signs, alphas)) in self
            .signs
            .chunks_exact(block_bytes)
            .zip(self.alphas.chunks_exact(self.bits * lanes))
            .enumerate()
        {
            self.block_sums(lut, signs, sums);
            let rows = (self.rows - block * lanes).min(lanes);
            for lane in 0..rows {
                let total = if self.masked {
                    sums[self.bits][lane]
                } else {
                    all
                };
                y[block * lanes + lane] = (0..self.bits)
                    .map(|i| alphas[i * lanes + lane] * (2.0 * sums[i][lane] - total))
                    .sum();
            }
        }
    }

    /// Per plane of one block, each row's sum of the table entries its signs
    /// select (lanes beyond the layout's are left alone).
    fn block_sums(&self, lut: &[f32], signs: &[u8], out: &mut [[f32; MAX_LANES]]) {
        let (groups, stride) = (self.groups, self.layout.stride(self.groups));
        assert!(lut.len() >= groups * self.layout.entries() && signs.len() >= out.len() * stride);
        #[cfg(target_arch = "x86_64")]
        {
            let (l, s) = (lut.as_ptr(), signs.as_ptr());
            match (self.kernel, self.layout) {
                (Vector::Avx2, Layout::Ymm) => {
                    // SAFETY: the kernel was available when the matrix was
                    // laid out (asserted there); the layout has `groups`
                    // tables of 8 floats and, per plane, a u32 at every 3g
                    // (stride 3g + 1), as asserted above.
                    let done = unsafe { avx2::dispatch(l, s, stride, groups, out) };
                    if done {
                        return;
                    }
                }
                (Vector::Avx512, Layout::Zmm) => {
                    // SAFETY: as above, with tables of 16 floats and a u64 at
                    // every 8g (stride 8g).
                    let done = unsafe { avx512::dispatch(l, s, stride, groups, out) };
                    if done {
                        return;
                    }
                }
                _ => {}
            }
        }
        self.block_sums_portable(lut, signs, out)
    }

    fn block_sums_portable(&self, lut: &[f32], signs: &[u8], out: &mut [[f32; MAX_LANES]]) {
        let (layout, stride) = (self.layout, self.layout.stride(self.groups));
        let (lanes, entries) = (layout.lanes(), layout.entries());
        for (p, sums) in out.iter_mut().enumerate() {
            let sums = &mut sums[..lanes];
            sums.fill(0.0);
            let plane = &signs[p * stride..(p + 1) * stride];
            for (g, t) in lut.chunks_exact(entries).take(self.groups).enumerate() {
                let w = layout.word(plane, g);
                for (lane, s) in sums.iter_mut().enumerate() {
                    *s += t[(w >> layout.bit(lane, 0)) as usize & (entries - 1)];
                }
            }
        }
    }
}

/// The vector kernels' `dispatch` and `sums`, the same loop for both
/// register widths: `$entries` floats a table (one register), `$group` bytes
/// of signs a group, and the module's own `lookup`.
#[cfg(target_arch = "x86_64")]
macro_rules! block_sums_kernels {
    ($feature:literal, $vector:ty, $zero:ident, $load:ident, $add:ident, $store:ident,
     $entries:literal, $group:literal) => {
        /// The kernel for `out.len()` planes; false when there is none for
        /// so many (the caller falls back to the portable code).
        ///
        /// # Safety
        /// As [`sums`].
        #[target_feature(enable = $feature)]
        pub unsafe fn dispatch(
            lut: *const f32,
            signs: *const u8,
            stride: usize,
            groups: usize,
            out: &mut [[f32; MAX_LANES]],
        ) -> bool {
            // SAFETY: the caller's contract is each kernel's.
            unsafe {
                match out.len() {
                    1 => sums::<1, 4>(lut, signs, stride, groups, out),
                    2 => sums::<2, 4>(lut, signs, stride, groups, out),
                    3 => sums::<3, 2>(lut, signs, stride, groups, out),
                    4 => sums::<4, 2>(lut, signs, stride, groups, out),
                    5 => sums::<5, 2>(lut, signs, stride, groups, out),
                    _ => return false,
                }
            }
            true
        }

        /// `P` planes, `U` groups in flight (independent sums, so the adds
        /// do not wait on each other).
        ///
        /// # Safety
        /// The CPU must have the module's instructions; `lut` must hold
        /// `groups` tables of `$entries` floats and `signs` `P` planes of
        /// `stride` bytes, enough for `lookup` to read a group at every
        /// `$group · g`.
        #[target_feature(enable = $feature)]
        unsafe fn sums<const P: usize, const U: usize>(
            lut: *const f32,
            signs: *const u8,
            stride: usize,
            groups: usize,
            out: &mut [[f32; MAX_LANES]],
        ) {
            // SAFETY: the caller guarantees the instructions and the table
            // and sign lengths in this function's contract, which bound
            // every load below.
            unsafe {
                let mut acc: [[$vector; P]; U] = [[$zero(); P]; U];
                let mut g = 0;
                while g + U <= groups {
                    for (u, acc) in acc.iter_mut().enumerate() {
                        let t = $load(lut.add((g + u) * $entries));
                        for (p, a) in acc.iter_mut().enumerate() {
                            let at = signs.add(p * stride + $group * (g + u));
                            *a = $add(*a, lookup(t, at));
                        }
                    }
                    g += U;
                }
                for g in g..groups {
                    let t = $load(lut.add(g * $entries));
                    for (p, a) in acc[0].iter_mut().enumerate() {
                        *a = $add(*a, lookup(t, signs.add(p * stride + $group * g)));
                    }
                }
                for (p, out) in out.iter_mut().enumerate() {
                    let mut sum = acc[0][p];
                    for acc in &acc[1..] {
                        sum = $add(sum, acc[p]);
                    }
                    $store(out.as_mut_ptr(), sum);
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::MAX_LANES;
    use std::arch::x86_64::*;

    block_sums_kernels!(
        "avx2",
        __m256,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_add_ps,
        _mm256_storeu_ps,
        8,
        3
    );

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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::MAX_LANES;
    use std::arch::x86_64::*;

    block_sums_kernels!(
        "avx512f",
        __m512,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        16,
        8
    );

    /// Lane L gets `table[4 bits at 32·(L mod 2) + 4·⌊L/2⌋ of the 8 bytes at
    /// signs]`: the word broadcast as 64-bit lanes puts its low half in even
    /// 32-bit lanes and its high half in odd ones (`vpermps` reads only the
    /// low 4 bits of each index).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn lookup(table: __m512, signs: *const u8) -> __m512 {
        // SAFETY: the caller guarantees AVX-512 F and 8 readable bytes at
        // `signs`.
        unsafe {
            let shifts =
                _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
            let w = _mm512_set1_epi64((signs as *const i64).read_unaligned());
            _mm512_permutexvar_ps(_mm512_srlv_epi32(w, shifts), table)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::BinaryMatrix;
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every block shape (rows not a multiple of the block, columns not of
    /// the group), 1–4 bits with and without a mask, and more planes than
    /// the vector kernels take, on every kernel this CPU has: against the
    /// dequantized product, and each vector kernel against the portable code
    /// on the same layout. A kernel the CPU lacks is named on stderr.
    #[test]
    fn table_lookups_equal_the_dequantized_product() {
        let mut kernels = vec![
            (Layout::Ymm, Vector::Portable),
            (Layout::Zmm, Vector::Portable),
        ];
        for (layout, kernel) in [(Layout::Ymm, Vector::Avx2), (Layout::Zmm, Vector::Avx512)] {
            if kernel.available() {
                kernels.push((layout, kernel));
            } else {
                eprintln!("skipped: this CPU has no {} kernels to test", kernel.name());
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (rows, cols, bits, pruned) in [
            (7, 13, 1, false),
            (8, 3, 1, true),
            (16, 4, 1, false),
            (5, 64, 2, true),
            (17, 65, 2, false),
            (3, 3, 4, true),
            (9, 70, 3, false),
            (33, 70, 3, true),
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
            for &(layout, kernel) in &kernels {
                let lut = LutMatrix::with(&b, layout, kernel);
                let (mut table, mut y) = (Vec::new(), vec![f32::NAN; rows]);
                lut.table(&x, &mut table);
                lut.apply(&table, &mut y);
                for r in 0..rows {
                    let want: f32 = (0..cols).map(|c| w[r * cols + c] * x[c]).sum();
                    assert!(
                        (y[r] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{layout:?} {kernel:?} {rows}x{cols} k={bits} row {r}: {} vs {want}",
                        y[r]
                    );
                }
                let stride = layout.stride(lut.groups);
                for block in lut.signs.chunks_exact(lut.planes * stride) {
                    let mut fast = vec![[f32::NAN; MAX_LANES]; lut.planes];
                    let mut portable = fast.clone();
                    lut.block_sums(&table, block, &mut fast);
                    lut.block_sums_portable(&table, block, &mut portable);
                    let lanes = layout.lanes();
                    for (f, p) in fast.iter().zip(&portable) {
                        for (f, p) in f[..lanes].iter().zip(&p[..lanes]) {
                            assert!((f - p).abs() <= 1e-5 * (1.0 + p.abs()), "{f} vs {p}");
                        }
                    }
                }
            }
        }
    }

    /// The 3-column tables are the sums the AVX2 layout has always used.
    #[test]
    fn three_column_tables_are_the_subset_sums() {
        let b = BinaryMatrix {
            name: "w".into(),
            rows: 1,
            cols: 3,
            bits: 1,
            alphas: vec![1.0],
            codes: vec![0; 3],
            mask: None,
        };
        let lut = LutMatrix::with(&b, Layout::Ymm, Vector::Portable);
        let (a, bb, c) = (0.1f32, 0.7f32, -0.3f32);
        let mut t = Vec::new();
        lut.table(&[a, bb, c], &mut t);
        assert_eq!(t, [0.0, a, bb, a + bb, c, a + c, bb + c, a + bb + c]);
    }
}
