//! Applying `compress` to the model: which matrices, how many bits, which
//! method; quantizing in place; pruning; and the reports that go to events.

use std::collections::HashMap;

use crate::compress::{self, prune, stats, Method, Quantized};
use crate::experiment::{
    MatrixSet, PruneScope, PruningConfig, QuantGroup, QuantMethod, QuantizationConfig,
};
use crate::model::LstmLm;

use crate::record::MatrixReport;

/// Tiles of the density heatmaps.
const GRID: (usize, usize) = (16, 32);
const HISTOGRAM_BINS: usize = 61;

pub fn method_of(m: QuantMethod) -> Method {
    match m {
        QuantMethod::Greedy => Method::Greedy,
        QuantMethod::Refined => Method::Refined,
        QuantMethod::Alternating(cycles) => Method::Alternating { cycles },
        QuantMethod::Uniform => Method::Uniform,
        QuantMethod::UniformFitted => Method::UniformFitted,
    }
}

/// A matrix the schedule quantizes.
#[derive(Debug, Clone)]
pub struct Target {
    pub index: usize,
    pub bits: usize,
    pub method: Method,
}

/// Parameter indices of the matrices a set names.
fn indices(model: &LstmLm<f32>, set: &MatrixSet) -> Vec<usize> {
    let names = set
        .resolve(model.dims().layers, model.dims().tied)
        .expect("validated");
    model
        .params()
        .iter()
        .enumerate()
        .filter(|(_, p)| names.contains(&p.name))
        .map(|(i, _)| i)
        .collect()
}

pub fn targets(model: &LstmLm<f32>, config: &QuantizationConfig) -> Vec<Target> {
    config
        .groups
        .iter()
        .flat_map(|g: &QuantGroup| {
            indices(model, &g.matrices).into_iter().map(|index| Target {
                index,
                bits: g.bits,
                method: method_of(g.method),
            })
        })
        .collect()
}

/// Everything one quantization pass measured.
pub struct Pass {
    pub matrices: Vec<MatrixReport>,
    pub squared_error: f64,
    pub squared_norm: f64,
    pub packed_bytes: u64,
    pub fp32_bytes: u64,
}

impl Pass {
    pub fn quant_loss(&self) -> f64 {
        if self.squared_norm == 0.0 {
            0.0
        } else {
            self.squared_error / self.squared_norm
        }
    }

    pub fn sparsity(&self) -> f64 {
        let (zeros, total) = self.matrices.iter().fold((0.0, 0.0), |(z, t), m| {
            let n = (m.rows * m.cols) as f64;
            (z + m.sparsity * n, t + n)
        });
        if total == 0.0 {
            0.0
        } else {
            zeros / total
        }
    }
}

/// How much a pass over the model reports per matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Loss, sizes, histogram and density grid.
    Full,
    /// Loss and sizes only (pruning: no per-matrix reports at all): for the
    /// passes made every few steps, which must stay cheap.
    Brief,
}

/// What a quantization pass does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    /// A baseline method in place of the targets' own, or `None`.
    pub method: Option<Method>,
    /// Write Q(W) into the model (`true`), or only measure the loss.
    pub replace: bool,
    pub detail: Detail,
}

impl Quantization {
    /// An iteration's (and the final) quantization: Q(W) replaces W.
    pub const ITERATE: Self = Self {
        method: None,
        replace: true,
        detail: Detail::Full,
    };
    /// The loss the weights would have if quantized now; nothing changes.
    pub const PROBE: Self = Self {
        method: None,
        replace: false,
        detail: Detail::Brief,
    };

    /// A one-shot baseline with `method` (the caller restores the weights).
    pub fn baseline(method: Method) -> Self {
        Self {
            method: Some(method),
            replace: true,
            detail: Detail::Brief,
        }
    }
}

/// Quantizes every target as `how` says. `warm` holds each matrix's
/// previous codes (the warm start of its own method) and is updated.
pub fn quantize_model(
    model: &mut LstmLm<f32>,
    targets: &[Target],
    how: Quantization,
    warm: &mut HashMap<usize, Quantized>,
) -> Result<Pass, String> {
    let with_stats = how.detail == Detail::Full;
    let params = model.params();
    let mut pass = Pass {
        matrices: Vec::new(),
        squared_error: 0.0,
        squared_norm: 0.0,
        packed_bytes: 0,
        fp32_bytes: 0,
    };
    let mut quantized_names = Vec::new();
    for t in targets {
        let info = &params[t.index];
        let w = model.read_param(t.index);
        let mask = model.mask(t.index);
        let method = how.method.unwrap_or(t.method);
        let q = compress::quantize_warm(
            &w,
            info.rows,
            info.cols,
            mask.as_deref(),
            t.bits,
            method,
            warm.get(&t.index).filter(|_| method == t.method),
        )
        .map_err(|e| format!("cannot quantize {}: {e}", info.name))?;
        let (se, sn) = compress::squared_error(&w, &q.values);
        pass.squared_error += se;
        pass.squared_norm += sn;
        let kept = mask
            .as_ref()
            .map_or(w.len(), |m| m.iter().filter(|&&k| k).count());
        let packed = stats::packed_size(info.rows, info.cols, kept, Some(t.bits)).total;
        let report = MatrixReport {
            name: info.name.clone(),
            rows: info.rows,
            cols: info.cols,
            bits: Some(t.bits),
            method: Some(method.label()),
            quant_loss: if sn == 0.0 { 0.0 } else { se / sn },
            squared_error: se,
            squared_norm: sn,
            sparsity: prune::sparsity(&q.values),
            packed_bytes: packed,
            fp32_bytes: (w.len() * 4) as u64,
            histogram: if with_stats {
                stats::histogram(&w, HISTOGRAM_BINS)
            } else {
                empty_histogram()
            },
            levels: mean_levels(&q),
            density: if with_stats {
                stats::density_grid(&q.values, info.rows, info.cols, GRID.0, GRID.1)
            } else {
                vec![]
            },
            grid: GRID,
        };
        pass.packed_bytes += report.packed_bytes;
        pass.fp32_bytes += report.fp32_bytes;
        pass.matrices.push(report);
        quantized_names.push(info.name.clone());
        if how.replace {
            model.write_param(t.index, &q.values);
        }
        if method == t.method {
            warm.insert(t.index, q);
        }
    }
    // What stays in full precision still costs bytes: survivors as f32, the mask, biases.
    for (index, info) in params.iter().enumerate() {
        if quantized_names.contains(&info.name) {
            continue;
        }
        let kept = model
            .mask(index)
            .map_or(info.rows * info.cols, |m| m.iter().filter(|&&k| k).count());
        pass.packed_bytes += stats::packed_size(info.rows, info.cols, kept, None).total;
        pass.fp32_bytes += (info.rows * info.cols * 4) as u64;
    }
    Ok(pass)
}

fn empty_histogram() -> stats::Histogram {
    stats::Histogram {
        lo: 0.0,
        hi: 0.0,
        counts: vec![],
    }
}

/// The 2^k values Σ ±ᾱ_i of the coefficients averaged over rows, sorted.
fn mean_levels(q: &Quantized) -> Vec<f32> {
    let k = q.bits;
    let mean: Vec<f64> = (0..k)
        .map(|i| {
            (0..q.rows).map(|r| q.alphas[r * k + i] as f64).sum::<f64>() / q.rows.max(1) as f64
        })
        .collect();
    let mut levels: Vec<f32> = (0..1u32 << k)
        .map(|p| {
            (0..k)
                .map(|i| if p >> i & 1 == 1 { mean[i] } else { -mean[i] })
                .sum::<f64>() as f32
        })
        .collect();
    levels.sort_by(f32::total_cmp);
    levels
}

/// Computes and installs pruning masks at `rate`; returns the report.
pub fn prune_model(
    model: &mut LstmLm<f32>,
    config: &PruningConfig,
    rate: f64,
    detail: Detail,
) -> (f64, Vec<MatrixReport>) {
    let targets = indices(model, &config.matrices);
    let weights: Vec<Vec<f32>> = targets.iter().map(|&i| model.read_param(i)).collect();
    let masks = match config.scope {
        PruneScope::PerMatrix => weights
            .iter()
            .map(|w| prune::magnitude_mask(w, rate))
            .collect(),
        PruneScope::Global => {
            let views: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
            prune::global_masks(&views, rate)
        }
    };
    let params = model.params();
    let mut reports = Vec::new();
    let (mut zeros, mut total) = (0usize, 0usize);
    for (&index, mask) in targets.iter().zip(&masks) {
        model.set_mask(index, Some(mask));
        if detail == Detail::Brief {
            continue;
        }
        let info = &params[index];
        let w = model.read_param(index);
        let kept = mask.iter().filter(|&&k| k).count();
        zeros += w.iter().filter(|&&x| x == 0.0).count();
        total += w.len();
        reports.push(MatrixReport {
            name: info.name.clone(),
            rows: info.rows,
            cols: info.cols,
            bits: None,
            method: None,
            quant_loss: 0.0,
            squared_error: 0.0,
            squared_norm: 0.0,
            sparsity: prune::sparsity(&w),
            packed_bytes: stats::packed_size(info.rows, info.cols, kept, None).total,
            fp32_bytes: (w.len() * 4) as u64,
            histogram: stats::histogram(&w, HISTOGRAM_BINS),
            levels: vec![],
            density: stats::density_grid(&w, info.rows, info.cols, GRID.0, GRID.1),
            grid: GRID,
        });
    }
    let sparsity = if total == 0 {
        0.0
    } else {
        zeros as f64 / total as f64
    };
    (sparsity, reports)
}
