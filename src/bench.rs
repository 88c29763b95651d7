//! `iq-tui bench`: training throughput on synthetic tokens, at the sizes
//! people compare (vocabulary 10k, batch 20, BPTT 35).

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::Segment;
use crate::model::{LstmLm, ModelDims, StepOptions};

/// One measured configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Throughput {
    pub layers: usize,
    pub hidden: usize,
    pub vocab: usize,
    pub batch: usize,
    pub bptt: usize,
    pub threads: usize,
    pub backend: crate::model::gemm::Backend,
    /// The project's own vector kernels (recurrent products, activations).
    pub kernels: &'static str,
    /// Median over the timed steps.
    pub tokens_per_sec: f64,
    pub step_ms: f64,
    /// The fastest timed step: on a machine whose speed drifts (a shared
    /// VM), the steadier figure for comparing two builds.
    pub fastest_step_ms: f64,
    /// Matrix-product rate implied by the throughput
    /// ([`training_flops_per_token`]).
    pub gflops: f64,
}

/// Times full training steps (forward, backward, clip, SGD) after one warm-up.
pub fn training_throughput(
    layers: usize,
    hidden: usize,
    vocab: usize,
    batch: usize,
    bptt: usize,
    steps: usize,
) -> Throughput {
    let dims = ModelDims {
        vocab,
        embed: hidden,
        hidden,
        layers,
        tied: false,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut model = LstmLm::<f32>::new(dims, 0.1, &mut rng);
    let n = batch * bptt;
    let segment = |rng: &mut ChaCha8Rng| Segment {
        steps: bptt,
        streams: batch,
        inputs: (0..n).map(|_| rng.gen_range(0..vocab as u32)).collect(),
        targets: (0..n).map(|_| rng.gen_range(0..vocab as u32)).collect(),
    };
    let opts = StepOptions {
        lr: 0.1,
        clip: Some(0.25),
        loss_scale: 1.0 / n as f64,
        dropout: 0.0,
    };
    let mut state = model.zero_state(batch);
    let warm = segment(&mut rng);
    model.train_step(&warm, &mut state, &opts, &mut rng);
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        let seg = segment(&mut rng);
        let start = Instant::now();
        model.train_step(&seg, &mut state, &opts, &mut rng);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Throughput {
        layers,
        hidden,
        vocab,
        batch,
        bptt,
        threads: rayon::current_num_threads(),
        backend: crate::model::gemm::backend(),
        kernels: crate::model::kernels::vector().name(),
        tokens_per_sec: n as f64 / median,
        step_ms: median * 1e3,
        fastest_step_ms: times[0] * 1e3,
        gflops: training_flops_per_token(layers, hidden, vocab) * n as f64 / median / 1e9,
    }
}

/// The best single-precision GEMM rate the training kernels reach here.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GemmPeak {
    pub size: usize,
    pub threads: usize,
    pub backend: crate::model::gemm::Backend,
    pub gflops: f64,
}

/// Times `size`³ products through the same parallel GEMM the training ops
/// use (best of `repeats`): the ceiling a training step is measured against.
pub fn gemm_peak(size: usize, repeats: usize) -> GemmPeak {
    gemm_peak_on(crate::model::gemm::backend(), size, repeats)
}

/// [`gemm_peak`] on a given backend.
pub fn gemm_peak_on(backend: crate::model::gemm::Backend, size: usize, repeats: usize) -> GemmPeak {
    use crate::model::gemm::{matmul_on, View};
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let a: Vec<f32> = (0..size * size).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let b: Vec<f32> = (0..size * size).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut c = vec![0.0f32; size * size];
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) + 1 {
        let start = Instant::now();
        matmul_on(
            backend,
            &mut c,
            (size, size, size),
            View::rows(&a, size),
            View::rows(&b, size),
            false,
        );
        best = best.min(start.elapsed().as_secs_f64());
    }
    GemmPeak {
        size,
        threads: rayon::current_num_threads(),
        backend,
        gflops: 2.0 * (size as f64).powi(3) / best / 1e9,
    }
}

/// Floating-point operations per token of a training step (forward, and a
/// backward pass that costs two forwards): the matrix products only.
pub fn training_flops_per_token(layers: usize, hidden: usize, vocab: usize) -> f64 {
    let lstm = 2.0 * 4.0 * hidden as f64 * (2 * hidden) as f64 * layers as f64;
    let decoder = 2.0 * hidden as f64 * vocab as f64;
    3.0 * (lstm + decoder)
}
