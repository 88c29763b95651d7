//! The whole model's gradient check, masks that hold through training, and
//! the row-per-unit layout of named weights.

use super::*;
use crate::data::IGNORE;
use rand::SeedableRng;

/// Central differences in f64 against the taped gradient, for every
/// entry of every parameter, with dropout, a carried-in state, two layers
/// and a padded target.
#[test]
fn gradients_match_finite_differences_for_every_parameter() {
    check_gradients(ModelDims {
        vocab: 11,
        embed: 5,
        hidden: 4,
        layers: 2,
        tied: false,
    });
}

/// Tied, the embedding's gradient is the lookup's plus the decoder's: the
/// finite differences see both uses of the one matrix.
#[test]
fn tied_gradients_match_finite_differences() {
    let dims = ModelDims {
        vocab: 11,
        embed: 4,
        hidden: 4,
        layers: 2,
        tied: true,
    };
    assert_eq!(dims.params().len(), 1 + 3 * 2 + 1);
    assert_eq!(
        dims.parameter_count(),
        ModelDims {
            tied: false,
            ..dims
        }
        .parameter_count()
            - 11 * 4
    );
    check_gradients(dims);
}

fn check_gradients(dims: ModelDims) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut model = LstmLm::<f64>::new(dims, 0.5, &mut rng);
    let (batch, steps) = (3, 4);
    let n = batch * steps;
    let mut targets: Vec<u32> = (0..n).map(|_| rng.gen_range(0..11)).collect();
    targets[n - 1] = IGNORE;
    let seg = Segment {
        steps,
        streams: batch,
        inputs: (0..n).map(|_| rng.gen_range(0..11)).collect(),
        targets,
    };
    let rand_state = |rng: &mut ChaCha8Rng| -> Vec<Vec<f64>> {
        (0..2)
            .map(|_| {
                (0..batch * dims.hidden)
                    .map(|_| rng.gen_range(-0.5..0.5))
                    .collect()
            })
            .collect()
    };
    let (h0, c0) = (rand_state(&mut rng), rand_state(&mut rng));
    let (scale, dropout, mask_seed) = (1.0 / 3.0, 0.3, 99);

    let mut state = model.state_from(batch, &h0, &c0);
    let mut masks = ChaCha8Rng::seed_from_u64(mask_seed);
    let (grads, _, count) = model.gradients(&seg, &mut state, scale, dropout, &mut masks);
    assert_eq!(count, n - 1);

    let loss = |m: &LstmLm<f64>| {
        let mut state = m.state_from(batch, &h0, &c0);
        let mut masks = ChaCha8Rng::seed_from_u64(mask_seed);
        scale * m.segment_nll_with(&seg, &mut state, dropout, &mut masks).0
    };
    let eps = 1e-5;
    let mut worst: f64 = 0.0;
    let mut checked = 0;
    for (index, info) in model.params().iter().enumerate() {
        assert_eq!(grads[index].len(), info.rows * info.cols, "{}", info.name);
        for (offset, &analytic) in grads[index].iter().enumerate() {
            model.nudge(index, offset, eps);
            let up = loss(&model);
            model.nudge(index, offset, -2.0 * eps);
            let down = loss(&model);
            model.nudge(index, offset, eps);
            let numeric = (up - down) / (2.0 * eps);
            let err = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-3);
            assert!(
                err < 1e-6,
                "{}[{offset}]: analytic {analytic}, numeric {numeric}",
                info.name
            );
            worst = worst.max(err);
            checked += 1;
        }
    }
    assert_eq!(checked, dims.parameter_count());
    assert!(
        grads.iter().all(|g| g.iter().any(|&x| x != 0.0)),
        "a parameter got no gradient"
    );
    eprintln!("checked {checked} entries, worst relative error {worst:.2e}");
}

#[test]
fn masked_weights_stay_exactly_zero_after_every_step() {
    let dims = ModelDims {
        vocab: 9,
        embed: 4,
        hidden: 3,
        layers: 2,
        tied: false,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut model = LstmLm::<f32>::new(dims, 0.3, &mut rng);
    let params = model.params();
    for (index, info) in params.iter().enumerate().filter(|(_, p)| p.is_matrix) {
        let mask: Vec<bool> = (0..info.rows * info.cols).map(|i| i % 3 != 0).collect();
        model.set_mask(index, Some(&mask));
        assert_eq!(model.mask(index).as_deref(), Some(&mask[..]));
        let w = model.read_param(index);
        assert!(
            w.iter()
                .enumerate()
                .all(|(i, x)| (*x == 0.0) == (i % 3 == 0)),
            "{} right after set_mask: {w:?}",
            info.name
        );
    }
    let seg = Segment {
        steps: 3,
        streams: 2,
        inputs: vec![1, 2, 3, 4, 5, 6],
        targets: vec![2, 3, 4, 5, 6, 7],
    };
    let mut state = model.zero_state(2);
    let opts = StepOptions {
        lr: 1.0,
        clip: None,
        loss_scale: 1.0,
        dropout: 0.0,
    };
    for _ in 0..3 {
        model.train_step(&seg, &mut state, &opts, &mut rng);
        for (index, info) in params.iter().enumerate().filter(|(_, p)| p.is_matrix) {
            let w = model.read_param(index);
            for (i, x) in w.iter().enumerate() {
                assert_eq!(*x == 0.0, i % 3 == 0, "{}[{i}] = {x}", info.name);
            }
        }
    }
}

#[test]
fn named_weights_round_trip_in_row_per_unit_layout() {
    let dims = ModelDims {
        vocab: 7,
        embed: 3,
        hidden: 2,
        layers: 1,
        tied: false,
    };
    let mut model = LstmLm::<f32>::new(dims, 0.1, &mut ChaCha8Rng::seed_from_u64(1));
    for (index, info) in model.params().iter().enumerate() {
        let values: Vec<f32> = (0..info.rows * info.cols).map(|i| i as f32).collect();
        model.write_param(index, &values);
        assert_eq!(model.read_param(index), values, "{}", info.name);
    }
    let names: Vec<_> = model
        .params()
        .into_iter()
        .map(|p| (p.name, p.rows, p.cols))
        .collect();
    assert_eq!(names[1], ("lstm.0.w_ih".to_string(), 8, 3));
    assert_eq!(names[4], ("decoder".to_string(), 7, 2));
}
