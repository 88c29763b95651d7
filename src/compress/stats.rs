//! What the dashboard and the records show of a matrix: histograms, mask
//! density by tile, and the real packed size (docs/method.md §5).

use serde::{Deserialize, Serialize};

/// Counts of values in equal-width bins over `[lo, hi]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f32,
    pub hi: f32,
    pub counts: Vec<u64>,
}

/// Histogram of the non-zero values (pruned zeros would swamp it) over their
/// own range, symmetric around 0 so before/after plots line up.
pub fn histogram(values: &[f32], bins: usize) -> Histogram {
    let bound = values.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let (lo, hi) = if bound > 0.0 {
        (-bound, bound)
    } else {
        (-1.0, 1.0)
    };
    let mut counts = vec![0u64; bins.max(1)];
    let width = (hi - lo) / counts.len() as f32;
    for &x in values.iter().filter(|&&x| x != 0.0) {
        let b = (((x - lo) / width) as usize).min(counts.len() - 1);
        counts[b] += 1;
    }
    Histogram { lo, hi, counts }
}

/// Fraction of kept (non-zero) weights in each tile of a `grid_rows ×
/// grid_cols` grid laid over a `rows × cols` matrix, row-major.
pub fn density_grid(
    w: &[f32],
    rows: usize,
    cols: usize,
    grid_rows: usize,
    grid_cols: usize,
) -> Vec<f32> {
    let (gr, gc) = (
        grid_rows.clamp(1, rows.max(1)),
        grid_cols.clamp(1, cols.max(1)),
    );
    let mut kept = vec![0u64; gr * gc];
    let mut total = vec![0u64; gr * gc];
    for r in 0..rows {
        let tr = r * gr / rows;
        for c in 0..cols {
            let t = tr * gc + c * gc / cols;
            total[t] += 1;
            if w[r * cols + c] != 0.0 {
                kept[t] += 1;
            }
        }
    }
    kept.iter()
        .zip(&total)
        .map(|(&k, &t)| if t == 0 { 0.0 } else { k as f32 / t as f32 })
        .collect()
}

/// Bytes of a matrix stored compressed: codes, coefficients and mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedSize {
    /// `bits` per surviving weight, bit-packed.
    pub code_bytes: u64,
    /// `bits` coefficients per row, stored as f32.
    pub coefficient_bytes: u64,
    /// The cheaper of a bitmap and per-row u16 column indices; 0 when dense.
    pub mask_bytes: u64,
    pub total: u64,
}

/// Packed size of a `rows × cols` matrix with `kept` surviving weights.
/// Without quantization (`bits = None`) survivors are f32.
pub fn packed_size(rows: usize, cols: usize, kept: usize, bits: Option<usize>) -> PackedSize {
    let code_bytes = match bits {
        Some(k) => (kept as u64 * k as u64).div_ceil(8),
        None => kept as u64 * 4,
    };
    let coefficient_bytes = bits.map_or(0, |k| (rows * k * 4) as u64);
    let mask_bytes = if kept == rows * cols {
        0
    } else {
        let bitmap = ((rows * cols) as u64).div_ceil(8);
        // per row: a u32 count, then u16 column indices (needs cols ≤ 65536)
        let indices = if cols <= 1 << 16 {
            rows as u64 * 4 + kept as u64 * 2
        } else {
            u64::MAX
        };
        bitmap.min(indices)
    };
    PackedSize {
        code_bytes,
        coefficient_bytes,
        mask_bytes,
        total: code_bytes + coefficient_bytes + mask_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_nonzero_value_once() {
        let h = histogram(&[-1.0, -0.5, 0.0, 0.25, 1.0], 4);
        assert_eq!((h.lo, h.hi), (-1.0, 1.0));
        assert_eq!(h.counts, [1, 1, 1, 1]);
    }

    #[test]
    fn density_grid_reports_kept_fraction_per_tile() {
        let w = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        assert_eq!(density_grid(&w, 2, 4, 2, 2), [0.5, 1.0, 0.0, 0.5]);
    }

    #[test]
    fn packed_size_counts_codes_coefficients_and_the_cheaper_mask() {
        // 1-bit dense 200×650: 130000 bits + 200 f32 coefficients
        let dense = packed_size(200, 650, 200 * 650, Some(1));
        assert_eq!(
            (dense.code_bytes, dense.coefficient_bytes, dense.mask_bytes),
            (16_250, 800, 0)
        );
        // 90 % pruned: the bitmap (16250) is cheaper than indices (200·4 + 13000·2)
        let sparse = packed_size(200, 650, 13_000, Some(1));
        assert_eq!(sparse.mask_bytes, 16_250);
        // 99 % pruned: index encoding is smaller
        let very = packed_size(200, 650, 1_300, Some(1));
        assert_eq!(very.mask_bytes, 200 * 4 + 1_300 * 2);
        assert_eq!(packed_size(2, 2, 4, None).total, 16);
    }
}
