//! Quantizer speed on every weight matrix of the 2×650 PTB model (vocabulary
//! 10k): greedy, refined and alternating at 1–4 bits, in weights per second,
//! beside the machine's memory read bandwidth for scale.
//!
//! `cargo bench --bench quantizers` (add `-- alternating/2` to pick one).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use iq_tui::compress::{quantize, Method};

/// (name, rows, cols) of the 2×650 model's matrices, rows = output units.
const SHAPES: [(&str, usize, usize); 6] = [
    ("embedding", 10_000, 650),
    ("lstm.0.w_ih", 2_600, 650),
    ("lstm.0.w_hh", 2_600, 650),
    ("lstm.1.w_ih", 2_600, 650),
    ("lstm.1.w_hh", 2_600, 650),
    ("decoder", 10_000, 650),
];

/// Bell-shaped weights (sum of uniforms) like a trained LSTM's.
fn matrices() -> Vec<(usize, usize, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    SHAPES
        .iter()
        .map(|&(_, r, c)| {
            let w = (0..r * c)
                .map(|_| (0..4).map(|_| rng.gen_range(-0.05f32..0.05)).sum())
                .collect();
            (r, c, w)
        })
        .collect()
}

fn quantizers(c: &mut Criterion) {
    let ms = matrices();
    let weights: usize = ms.iter().map(|m| m.2.len()).sum();
    let mut g = c.benchmark_group("2x650 all matrices");
    g.sample_size(10);
    g.throughput(Throughput::Elements(weights as u64));
    for (label, method) in [
        ("greedy", Method::Greedy),
        ("refined", Method::Refined),
        ("alternating", Method::Alternating { cycles: 2 }),
    ] {
        for bits in 1..=4 {
            g.bench_function(format!("{label}/{bits}"), |b| {
                b.iter(|| {
                    for (r, c, w) in &ms {
                        black_box(quantize(w, *r, *c, None, bits, method).unwrap());
                    }
                })
            });
        }
    }
    g.finish();
}

/// Reading the same weights once on every core, eight independent sums per
/// chunk so adds do not serialise: the memory-bound floor the quantizers are
/// compared with.
fn read_bandwidth(c: &mut Criterion) {
    use rayon::prelude::*;
    let ms = matrices();
    let bytes: usize = ms.iter().map(|m| m.2.len() * 4).sum();
    let mut g = c.benchmark_group("memory read");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("sum of all weights", |b| {
        b.iter(|| {
            let s: f32 = ms
                .iter()
                .map(|m| {
                    m.2.par_chunks(1 << 16)
                        .map(|chunk| {
                            let mut acc = [0.0f32; 8];
                            for v in chunk.chunks_exact(8) {
                                for k in 0..8 {
                                    acc[k] += v[k];
                                }
                            }
                            acc.iter().sum::<f32>()
                        })
                        .sum::<f32>()
                })
                .sum();
            black_box(s)
        })
    });
    g.finish();
}

criterion_group!(benches, read_bandwidth, quantizers);
criterion_main!(benches);
