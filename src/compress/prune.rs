//! Magnitude pruning (docs/method.md §4): masks, per matrix or with one global
//! threshold, and Zhu & Gupta's gradual cubic schedule.

/// Keeps the largest-magnitude weights: prunes ⌊rate · n⌋ of them, smallest
/// |w| first (ties by position, so masks are reproducible). true = kept.
pub fn magnitude_mask(w: &[f32], rate: f64) -> Vec<bool> {
    let prune = ((rate.clamp(0.0, 1.0)) * w.len() as f64).floor() as usize;
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| w[a].abs().total_cmp(&w[b].abs()).then(a.cmp(&b)));
    let mut mask = vec![true; w.len()];
    for &i in &order[..prune] {
        mask[i] = false;
    }
    mask
}

/// One threshold across all matrices: prunes ⌊rate · Σn⌋ weights, smallest
/// |w| first over the union.
pub fn global_masks(matrices: &[&[f32]], rate: f64) -> Vec<Vec<bool>> {
    let total: usize = matrices.iter().map(|m| m.len()).sum();
    let prune = ((rate.clamp(0.0, 1.0)) * total as f64).floor() as usize;
    let mut order: Vec<(usize, usize)> = matrices
        .iter()
        .enumerate()
        .flat_map(|(m, w)| (0..w.len()).map(move |i| (m, i)))
        .collect();
    order.sort_by(|&(ma, a), &(mb, b)| {
        matrices[ma][a]
            .abs()
            .total_cmp(&matrices[mb][b].abs())
            .then((ma, a).cmp(&(mb, b)))
    });
    let mut masks: Vec<Vec<bool>> = matrices.iter().map(|m| vec![true; m.len()]).collect();
    for &(m, i) in &order[..prune] {
        masks[m][i] = false;
    }
    masks
}

/// Zhu & Gupta (2017): s_t = s_f + (s_i − s_f)(1 − (t − t_0)/(nΔt))³ for
/// t_0 ≤ t ≤ t_0 + nΔt; `progress` = (t − t_0)/(nΔt), clamped to [0, 1].
pub fn cubic_sparsity(initial: f64, target: f64, progress: f64) -> f64 {
    let p = progress.clamp(0.0, 1.0);
    target + (initial - target) * (1.0 - p).powi(3)
}

/// Zeroes the pruned entries.
pub fn apply_mask(w: &mut [f32], mask: &[bool]) {
    for (x, &keep) in w.iter_mut().zip(mask) {
        if !keep {
            *x = 0.0;
        }
    }
}

/// Fraction of entries that are exactly zero.
pub fn sparsity(w: &[f32]) -> f64 {
    if w.is_empty() {
        return 0.0;
    }
    w.iter().filter(|&&x| x == 0.0).count() as f64 / w.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn masks_prune_exactly_the_smallest_fraction(
            w in prop::collection::vec(-1.0f32..1.0, 1..200), rate in 0.0f64..1.0
        ) {
            let mask = magnitude_mask(&w, rate);
            let pruned = mask.iter().filter(|&&k| !k).count();
            prop_assert_eq!(pruned, (rate * w.len() as f64).floor() as usize);
            let max_pruned = w.iter().zip(&mask).filter(|(_, &k)| !k).map(|(x, _)| x.abs()).fold(0.0, f32::max);
            let min_kept = w.iter().zip(&mask).filter(|(_, &k)| k).map(|(x, _)| x.abs()).fold(f32::INFINITY, f32::min);
            prop_assert!(max_pruned <= min_kept);
            let mut pruned_w = w.clone();
            apply_mask(&mut pruned_w, &mask);
            // reported sparsity is the true fraction of zeros (no weight was 0 before, almost surely)
            let zeros_before = w.iter().filter(|&&x| x == 0.0).count();
            if zeros_before == 0 {
                prop_assert_eq!(sparsity(&pruned_w), pruned as f64 / w.len() as f64);
            }
        }

        #[test]
        fn a_global_threshold_prunes_the_smallest_weights_overall(
            a in prop::collection::vec(-1.0f32..1.0, 1..80),
            b in prop::collection::vec(-0.1f32..0.1, 1..80),
            rate in 0.0f64..1.0
        ) {
            let masks = global_masks(&[&a, &b], rate);
            let pruned = masks.iter().flatten().filter(|&&k| !k).count();
            prop_assert_eq!(pruned, (rate * (a.len() + b.len()) as f64).floor() as usize);
            let all: Vec<(f32, bool)> = a.iter().chain(&b).copied().zip(masks.concat()).collect();
            let max_pruned = all.iter().filter(|(_, k)| !k).map(|(x, _)| x.abs()).fold(0.0, f32::max);
            let min_kept = all.iter().filter(|(_, k)| *k).map(|(x, _)| x.abs()).fold(f32::INFINITY, f32::min);
            prop_assert!(max_pruned <= min_kept);
        }
    }

    #[test]
    fn cubic_schedule_runs_from_initial_to_target_and_front_loads() {
        assert_eq!(cubic_sparsity(0.0, 0.8, 0.0), 0.0);
        assert!((cubic_sparsity(0.0, 0.8, 1.0) - 0.8).abs() < 1e-12);
        assert!((cubic_sparsity(0.0, 0.8, 0.5) - 0.7).abs() < 1e-12);
        assert_eq!(cubic_sparsity(0.1, 0.8, 7.0), 0.8);
    }
}
