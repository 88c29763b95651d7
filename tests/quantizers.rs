//! Properties of the quantizers (docs/method.md §1), on random, realistic and
//! adversarial rows.

use iq_tui::compress::{quantize, quantize_row, quantize_warm, relative_error, Method, QuantError};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BINARY_CODING: [Method; 3] = [Method::Greedy, Method::Refined, Method::ALTERNATING];

fn row_error(w: &[f64], bits: usize, method: Method) -> f64 {
    let fit = quantize_row(w, bits, method);
    w.iter()
        .zip(&fit.codes)
        .map(|(&x, &p)| {
            let v: f64 = fit
                .alphas
                .iter()
                .enumerate()
                .map(|(i, a)| if p >> i & 1 == 1 { *a } else { -*a })
                .sum();
            (x - v) * (x - v)
        })
        .sum()
}

fn tol(w: &[f64]) -> f64 {
    1e-9 * (1.0 + w.iter().map(|x| x * x).sum::<f64>())
}

/// Rows that stress the quantizers: random, constant, zero, one huge
/// outlier, shorter than the bit count, few distinct values.
fn rows() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        4 => prop::collection::vec(-3.0f64..3.0, 1..40),
        1 => (1usize..30, -2.0f64..2.0).prop_map(|(n, c)| vec![c; n]),
        1 => (1usize..30).prop_map(|n| vec![0.0; n]),
        1 => (prop::collection::vec(-0.1f64..0.1, 1..30), 1e3f64..1e6).prop_map(|(mut v, big)| { v[0] = big; v }),
        1 => prop::collection::vec(prop::sample::select(vec![-1.5, -0.5, 0.0, 0.5, 1.5]), 1..30),
        1 => prop::collection::vec(-1.0f64..1.0, 1..4),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn error_never_increases_with_bits(w in rows()) {
        for method in BINARY_CODING {
            let errors: Vec<f64> = (1..=4).map(|k| row_error(&w, k, method)).collect();
            for k in 1..4 {
                prop_assert!(errors[k] <= errors[k - 1] + tol(&w), "{method:?}: {errors:?}");
            }
        }
    }

    #[test]
    fn alternating_never_worse_than_greedy_and_refined_not_at_two_bits(w in rows(), bits in 1usize..=4) {
        let greedy = row_error(&w, bits, Method::Greedy);
        prop_assert!(row_error(&w, bits, Method::ALTERNATING) <= greedy + tol(&w));
        if bits <= 2 {
            prop_assert!(row_error(&w, bits, Method::Refined) <= greedy + tol(&w));
        }
    }

    #[test]
    fn one_bit_is_mean_abs_times_sign_for_every_binary_method(w in rows()) {
        let mean_abs = w.iter().map(|x| x.abs()).sum::<f64>() / w.len() as f64;
        for method in BINARY_CODING {
            let fit = quantize_row(&w, 1, method);
            prop_assert!((fit.alphas[0] - mean_abs).abs() <= 1e-9 * (1.0 + mean_abs), "{method:?}");
            for (x, p) in w.iter().zip(&fit.codes) {
                prop_assert_eq!(*p == 1, *x >= 0.0 || mean_abs == 0.0);
            }
        }
    }

    #[test]
    fn alphas_are_sorted_non_negative_and_least_squares_for_their_codes(w in rows(), bits in 1usize..=4) {
        for method in [Method::Greedy, Method::Refined, Method::ALTERNATING, Method::Uniform, Method::UniformFitted] {
            let fit = quantize_row(&w, bits, method);
            prop_assert_eq!(fit.alphas.len(), bits);
            for pair in fit.alphas.windows(2) {
                prop_assert!(pair[0] >= pair[1], "{method:?}: {:?}", fit.alphas);
            }
            prop_assert!(fit.alphas.iter().all(|&a| a >= 0.0));
            if matches!(method, Method::Refined | Method::ALTERNATING) {
                // Optimality: the residual is orthogonal to every code, Bᵀ(w − Bα) = 0.
                let value = |p: u8| -> f64 { fit.alphas.iter().enumerate().map(|(i, a)| if p >> i & 1 == 1 { *a } else { -*a }).sum() };
                let scale: f64 = w.iter().map(|x| x.abs()).sum::<f64>() + 1.0;
                for i in 0..bits {
                    let g: f64 = w.iter().zip(&fit.codes).map(|(&x, &p)| {
                        let s = if p >> i & 1 == 1 { 1.0 } else { -1.0 };
                        s * (x - value(p))
                    }).sum();
                    prop_assert!(g.abs() <= 1e-6 * scale, "{method:?} bit {i}: Bᵀr = {g}");
                }
            }
        }
    }

    #[test]
    fn the_fitted_uniform_step_is_never_worse_than_the_max_scaled_one(w in rows(), bits in 1usize..=4) {
        let fitted = row_error(&w, bits, Method::UniformFitted);
        let by_max = row_error(&w, bits, Method::Uniform);
        prop_assert!(fitted <= by_max + tol(&w), "{bits} bits: fitted {fitted} > max-scaled {by_max}");
        if bits == 1 {
            // ±s with the least-squares s is the 1-bit optimum, greedy's.
            let greedy = row_error(&w, 1, Method::Greedy);
            prop_assert!((fitted - greedy).abs() <= 1e-6 * (1.0 + greedy), "{fitted} vs {greedy}");
        }
    }

    #[test]
    fn requantizing_an_alternating_or_one_bit_result_reproduces_it(w in rows(), bits in 1usize..=4) {
        // Alternating re-quantizes warm (from the earlier codes), as the
        // iterative schedule does; 1-bit methods are closed-form.
        let cols = w.len();
        let w32: Vec<f32> = w.iter().map(|&x| x as f32).collect();
        let mut methods = vec![Method::ALTERNATING];
        if bits == 1 { methods.extend([Method::Greedy, Method::Refined]); }
        for method in methods {
            let q = quantize(&w32, 1, cols, None, bits, method).unwrap();
            let again = quantize_warm(&q.values, 1, cols, None, bits, method, Some(&q)).unwrap();
            let scale = q.values.iter().fold(0.0f32, |m, x| m.max(x.abs())) + 1e-30;
            for (a, b) in q.values.iter().zip(&again.values) {
                prop_assert!((a - b).abs() <= 1e-5 * scale, "{method:?} {bits} bits: {:?} vs {:?}", q.values, again.values);
            }
        }
    }

    #[test]
    fn pruned_entries_stay_zero_and_do_not_drag_alpha(
        w in prop::collection::vec(-2.0f32..2.0, 2..40), keep_seed in any::<u64>(), bits in 1usize..=4
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(keep_seed);
        let mask: Vec<bool> = (0..w.len()).map(|_| rng.gen_bool(0.5)).collect();
        for method in [Method::Greedy, Method::Refined, Method::ALTERNATING, Method::Uniform, Method::UniformFitted] {
            let q = quantize(&w, 1, w.len(), Some(&mask), bits, method).unwrap();
            let survivors: Vec<f32> = w.iter().zip(&mask).filter(|(_, &m)| m).map(|(&x, _)| x).collect();
            let alone = quantize(&survivors, 1, survivors.len(), None, bits, method).unwrap();
            prop_assert_eq!(&q.alphas, &alone.alphas);
            let mut kept = alone.values.iter();
            for (v, &m) in q.values.iter().zip(&mask) {
                if m { prop_assert_eq!(v, kept.next().unwrap()); } else { prop_assert_eq!(*v, 0.0); }
            }
        }
    }
}

/// Rows like trained weights: Gaussian and Laplacian, a few hundred wide.
fn realistic_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * cols)
        .map(|i| {
            let u: f64 = rng.gen_range(1e-12..1.0);
            let v: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            let gauss = (-2.0 * u.ln()).sqrt() * v.cos();
            let x = if (i / cols).is_multiple_of(2) {
                gauss * 0.1
            } else {
                -0.07 * u.ln() * if v < std::f64::consts::PI { 1.0 } else { -1.0 }
            };
            x as f32
        })
        .collect()
}

#[test]
fn on_realistic_weights_alternating_beats_refined_beats_greedy_at_three_and_four_bits() {
    let (rows, cols) = (64, 300);
    let w = realistic_matrix(rows, cols, 11);
    for bits in [3, 4] {
        let e = |m| relative_error(&w, &quantize(&w, rows, cols, None, bits, m).unwrap().values);
        let (g, r, a) = (
            e(Method::Greedy),
            e(Method::Refined),
            e(Method::ALTERNATING),
        );
        assert!(
            a <= r && r <= g,
            "{bits} bits: alternating {a}, refined {r}, greedy {g}"
        );
    }
    // and at 2 bits, Xu et al.'s order (alternating < greedy) with gaps of their size
    let e2 = |m| relative_error(&w, &quantize(&w, rows, cols, None, 2, m).unwrap().values);
    assert!(e2(Method::ALTERNATING) < e2(Method::Greedy));
}

/// Cold re-quantization (no earlier codes) recovers a row's coefficients from
/// its levels when the row uses all 2^k of them, as realistic rows do.
#[test]
fn requantizing_realistic_weights_cold_reproduces_rows_that_use_every_level() {
    let (rows, cols) = (32, 300);
    let w = realistic_matrix(rows, cols, 5);
    for bits in 1..=4 {
        let q = quantize(&w, rows, cols, None, bits, Method::ALTERNATING).unwrap();
        let again = quantize(&q.values, rows, cols, None, bits, Method::ALTERNATING).unwrap();
        let mut full_rows = 0;
        for r in 0..rows {
            let row = &q.values[r * cols..(r + 1) * cols];
            let mut levels = row.to_vec();
            levels.sort_by(f32::total_cmp);
            levels.dedup();
            if levels.len() == 1 << bits {
                full_rows += 1;
                let err = relative_error(row, &again.values[r * cols..(r + 1) * cols]);
                assert!(
                    err < 1e-10,
                    "{bits} bits, row {r}: re-quantization moved it by {err}"
                );
            }
        }
        assert!(
            full_rows >= rows * 3 / 4,
            "{bits} bits: only {full_rows} rows use every level"
        );
    }
}

#[test]
fn non_finite_weights_and_bad_bits_are_rejected_clearly() {
    let w = [0.5, f32::NAN, 1.0, 2.0];
    let err = quantize(&w, 2, 2, None, 2, Method::Greedy).unwrap_err();
    assert!(
        matches!(err, QuantError::NonFinite { row: 0, col: 1, value } if value.is_nan()),
        "{err}"
    );
    assert!(err.to_string().contains("row 0, column 1"));
    let err = quantize(&[1.0, f32::INFINITY], 1, 2, None, 1, Method::ALTERNATING).unwrap_err();
    assert!(err.to_string().contains("inf"), "{err}");
    assert_eq!(
        quantize(&[1.0], 1, 1, None, 5, Method::Greedy).unwrap_err(),
        QuantError::Bits(5)
    );
    assert!(matches!(
        quantize(&[1.0; 3], 2, 2, None, 1, Method::Greedy),
        Err(QuantError::Shape { .. })
    ));
}

#[test]
fn a_fitted_step_clips_outliers_where_the_max_scaled_step_wastes_levels() {
    // Gaussian rows, 2 bits: the max-scaled grid leaves most weights on the
    // two inner levels; the fitted step lands near alternating's error.
    let (rows, cols) = (64, 2600);
    let w = realistic_matrix(rows, cols, 7);
    let err = |m| relative_error(&w, &quantize(&w, rows, cols, None, 2, m).unwrap().values);
    let (by_max, fitted, alternating) = (
        err(Method::Uniform),
        err(Method::UniformFitted),
        err(Method::ALTERNATING),
    );
    assert!(
        fitted < 0.6 * by_max,
        "fitted {fitted} vs max-scaled {by_max}"
    );
    assert!(
        fitted < 1.25 * alternating,
        "fitted {fitted} vs alternating {alternating}"
    );
}

#[test]
fn uniform_levels_are_symmetric_and_reach_the_extremes() {
    let w = [-1.0f32, -0.2, 0.1, 0.9, 1.0];
    let q = quantize(&w, 1, 5, None, 2, Method::Uniform).unwrap();
    // levels ±1/3, ±1 for max |w| = 1
    assert_eq!(q.values, [-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0, 1.0]);
}
