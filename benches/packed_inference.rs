//! Batch-1 inference (one stream, one token at a time): the matrix work of
//! the 2×650 PTB model per token (two LSTM layers' W_ih·x and W_hh·h, and
//! the 10k × 650 decoder) with f32 weights against packed 1- and 2-bit
//! weights through lookup tables. Prints each representation's bytes.
//!
//! `cargo bench --bench packed_inference`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use iq_tui::packed::lut::LutMatrix;
use iq_tui::packed::BinaryMatrix;

const HIDDEN: usize = 650;
const VOCAB: usize = 10_000;

/// (rows, cols) of the matrices one token passes through.
fn shapes() -> Vec<(usize, usize)> {
    let mut s = Vec::new();
    for _ in 0..2 {
        s.push((4 * HIDDEN, HIDDEN)); // w_ih
        s.push((4 * HIDDEN, HIDDEN)); // w_hh
    }
    s.push((VOCAB, HIDDEN)); // decoder
    s
}

/// y = W x for a row-major f32 matrix: the dense baseline, in the form the
/// compiler vectorises (independent partial sums).
fn dense_matvec(w: &[f32], cols: usize, x: &[f32], y: &mut [f32]) {
    for (r, out) in y.iter_mut().enumerate() {
        let row = &w[r * cols..(r + 1) * cols];
        let mut acc = [0.0f32; 8];
        let chunks = row.chunks_exact(8);
        let tail: f32 = chunks
            .remainder()
            .iter()
            .zip(&x[cols - cols % 8..])
            .map(|(a, b)| a * b)
            .sum();
        for (c, ws) in chunks.enumerate() {
            for k in 0..8 {
                acc[k] += ws[k] * x[8 * c + k];
            }
        }
        *out = acc.iter().sum::<f32>() + tail;
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let shapes = shapes();
    let weights: usize = shapes.iter().map(|(r, c)| r * c).sum();
    let dense: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(r, c)| (0..r * c).map(|_| rng.gen_range(-0.1..0.1)).collect())
        .collect();
    let x: Vec<f32> = (0..HIDDEN).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut g = c.benchmark_group("batch-1 matrix work per token, 2x650");
    g.sample_size(30);
    g.throughput(Throughput::Elements(weights as u64));
    eprintln!("f32 weights: {:.1} MB", (weights * 4) as f64 / 1e6);
    g.bench_function("f32", |b| {
        let mut y = vec![0.0f32; VOCAB];
        b.iter(|| {
            for (w, &(rows, cols)) in dense.iter().zip(&shapes) {
                dense_matvec(w, cols, &x, &mut y[..rows]);
            }
            black_box(&y);
        })
    });
    for bits in [1usize, 2] {
        let packed: Vec<LutMatrix> = shapes
            .iter()
            .map(|&(rows, cols)| {
                LutMatrix::new(&BinaryMatrix {
                    name: "w".into(),
                    rows,
                    cols,
                    bits,
                    alphas: (0..rows * bits).map(|_| rng.gen_range(0.0..0.1)).collect(),
                    codes: (0..rows * cols)
                        .map(|_| rng.gen_range(0..1u8 << bits))
                        .collect(),
                    mask: None,
                })
            })
            .collect();
        let bytes: usize = packed.iter().map(LutMatrix::bytes).sum();
        eprintln!("{bits}-bit packed weights: {:.2} MB", bytes as f64 / 1e6);
        g.bench_function(format!("packed {bits}-bit"), |b| {
            let (mut y, mut lut) = (vec![0.0f32; VOCAB], Vec::new());
            b.iter(|| {
                for m in &packed {
                    m.table(&x, &mut lut);
                    m.apply(&lut, &mut y[..m.rows]);
                }
                black_box(&y);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
