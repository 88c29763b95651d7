//! Timing each GEMM backend on a training step's shapes, once per machine:
//! the choice is cached (`<cache>/gemm-choice.json`) under a key of the CPU,
//! the thread count, this build and each library's file, and made under a
//! lock, so the processes of a sweep, started together, all wait for one
//! measurement and compute with the same arithmetic.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{openblas, other_cblas, Backend};
use crate::model::gemm::{matmul_on, View};

/// One backend's rate on the measured shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub backend: Backend,
    /// The backend and, for a library, which one and its kernels.
    pub label: String,
    /// Billions of floating-point operations per second, f32.
    pub gflops: f64,
}

/// The backend the products use, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub backend: Backend,
    pub why: String,
    /// Every candidate's rate, when they were measured (now or from the cache).
    pub candidates: Vec<Candidate>,
}

/// The products of a 2×650 training step with batch 20 and 35 steps, the
/// decoder cut to 4,000 words to keep the measurement short: the input
/// products forward, the weight gradient (a transposed operand) and the
/// decoder. (m, n, k, a transposed).
const SHAPES: [(usize, usize, usize, bool); 3] = [
    (700, 2600, 650, false),
    (650, 2600, 700, true),
    (700, 4000, 650, false),
];

fn label(b: Backend) -> String {
    match b {
        Backend::Builtin => b.to_string(),
        Backend::OpenBlas => {
            openblas().map_or(b.to_string(), |l| format!("OpenBLAS ({})", l.describe()))
        }
        Backend::Cblas => {
            other_cblas().map_or(b.to_string(), |l| format!("CBLAS ({})", l.describe()))
        }
    }
}

/// The rate of `backend` on [`SHAPES`]: the best of three after a warm-up.
pub fn rate(backend: Backend) -> f64 {
    let mut operands: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = SHAPES
        .iter()
        .map(|&(m, n, k, _)| {
            let fill = |len: usize, seed: u32| -> Vec<f32> {
                (0..len)
                    .map(|i| {
                        ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 9) as f32
                            * 1e-7
                            - 0.8
                    })
                    .collect()
            };
            (fill(m * k, 1), fill(k * n, 2), vec![0.0; m * n])
        })
        .collect();
    let flops: f64 = SHAPES
        .iter()
        .map(|&(m, n, k, _)| 2.0 * (m * n * k) as f64)
        .sum();
    let mut best = f64::INFINITY;
    for round in 0..4 {
        let start = Instant::now();
        for (&(m, n, k, transposed), (a, b, c)) in SHAPES.iter().zip(operands.iter_mut()) {
            let a = if transposed {
                View::transposed(a, m)
            } else {
                View::rows(a, k)
            };
            matmul_on(backend, c, (m, n, k), a, View::rows(b, n), false);
        }
        let took = start.elapsed().as_secs_f64();
        if round > 0 {
            best = best.min(took);
        }
    }
    flops / best / 1e9
}

/// What the cached choice is keyed by: a different CPU, thread count,
/// build, library file or OpenBLAS core type measures again.
fn key(available: &[Backend]) -> String {
    let super::Cpu {
        vendor,
        model,
        flags,
    } = super::cpu();
    let model = model.unwrap_or_else(|| std::env::consts::ARCH.into());
    let vector: Vec<&String> = flags
        .iter()
        .filter(|f| f.starts_with("avx") || f.starts_with("amx") || *f == "fma")
        .collect();
    let mut parts = vec![
        format!("{vendor} {model}"),
        format!("{vector:?}"),
        format!("threads {}", rayon::current_num_threads()),
        // the commit names the build: a new `gemm` crate is a new candidate
        format!(
            "iq-tui {} {}",
            env!("CARGO_PKG_VERSION"),
            env!("IQ_TUI_COMMIT")
        ),
        format!(
            "OPENBLAS_CORETYPE={}",
            std::env::var("OPENBLAS_CORETYPE").unwrap_or_default()
        ),
    ];
    for b in available {
        let lib = match b {
            Backend::Builtin => None,
            Backend::OpenBlas => openblas().ok(),
            Backend::Cblas => other_cblas().ok(),
        };
        if let Some(l) = lib {
            let stamp = l
                .file
                .as_ref()
                .and_then(|f| std::fs::metadata(f).ok())
                .map(|m| {
                    (
                        m.len(),
                        m.modified()
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_secs()),
                    )
                });
            parts.push(format!("{b:?} {} {:?} {stamp:?}", l.name, l.file));
        }
    }
    parts.join(" | ")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    choices: BTreeMap<String, Choice>,
}

/// The fastest of `available`, from the cache or measured now.
pub fn fastest(available: &[Backend]) -> Choice {
    if available.len() == 1 {
        return Choice {
            backend: available[0],
            why: "the only backend here (no OpenBLAS installed, IQ_TUI_CBLAS not set)".into(),
            candidates: Vec::new(),
        };
    }
    let key = key(available);
    let dir = crate::data::download::cache_root();
    let path = dir.as_ref().map(|d| d.join("gemm-choice.json"));
    // Whoever measures holds the lock; the others wait and read its answer.
    let _lock = dir.as_ref().and_then(|d| {
        std::fs::create_dir_all(d).ok()?;
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(d.join("gemm-choice.lock"))
            .ok()?;
        f.lock().ok()?;
        Some(f)
    });
    let mut cache: Cache = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(c) = cache.choices.get(&key) {
        if available.contains(&c.backend) {
            let mut c = c.clone();
            c.why = format!("{} (measured on this machine before; cached)", c.why);
            return c;
        }
    }
    let candidates: Vec<Candidate> = available
        .iter()
        .map(|&b| Candidate {
            backend: b,
            label: label(b),
            gflops: rate(b),
        })
        .collect();
    let best = candidates
        .iter()
        .max_by(|a, b| a.gflops.total_cmp(&b.gflops))
        .expect("at least the built-in backend");
    let others: Vec<String> = candidates
        .iter()
        .filter(|c| c.backend != best.backend)
        .map(|c| format!("{} {:.0}", c.label, c.gflops))
        .collect();
    let choice = Choice {
        backend: best.backend,
        why: format!(
            "fastest on a training step's products: {} {:.0} GFLOP/s against {}",
            best.label,
            best.gflops,
            others.join(", ")
        ),
        candidates: candidates.clone(),
    };
    if let Some(p) = &path {
        cache.choices.insert(key, choice.clone());
        if let Ok(json) = serde_json::to_vec_pretty(&cache) {
            let _ = crate::atomic::write(p, &json);
        }
    }
    choice
}
