//! Result snapshots: the dashboard's tables and series as JSON and CSV.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::state::RunView;

/// Writes `snapshot.json`, `perplexity.csv`, `quant_loss.csv` and
/// `matrices.csv` into a fresh `<dir>/snapshots/<UTC timestamp>/`.
pub fn export(run_dir: &Path, run: &RunView) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f");
    let dir = run_dir.join("snapshots").join(stamp.to_string());
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("snapshot.json"),
        serde_json::to_string_pretty(run).expect("serialisable"),
    )?;

    let opt = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    let mut ppl =
        String::from("model,bits,valid_ppl,test_ppl,quant_loss,sparsity,packed_bytes,fp32_bytes\n");
    for r in &run.table {
        let _ = writeln!(
            ppl,
            "{},{},{},{},{},{},{},{}",
            r.label,
            r.bits.map_or(String::new(), |b| b.to_string()),
            opt(r.valid),
            opt(r.test),
            opt(r.quant_loss),
            opt(r.sparsity),
            r.packed_bytes.map_or(String::new(), |b| b.to_string()),
            r.fp32_bytes.map_or(String::new(), |b| b.to_string()),
        );
    }
    std::fs::write(dir.join("perplexity.csv"), ppl)?;

    let mut loss = String::from("series,matrix,iteration,quant_loss\n");
    for (x, y) in &run.loss_per_iteration {
        let _ = writeln!(loss, "quantized,total,{x},{y}");
    }
    for (x, y) in &run.live_loss {
        let _ = writeln!(loss, "retraining,total,{x},{y}");
    }
    for (name, points) in &run.matrix_loss {
        for (x, y) in points {
            let _ = writeln!(loss, "quantized,{name},{x},{y}");
        }
    }
    std::fs::write(dir.join("quant_loss.csv"), loss)?;

    let mut m = String::from("matrix,rows,cols,bits,sparsity,quant_loss,packed_bytes,fp32_bytes\n");
    for r in &run.matrices {
        let _ = writeln!(
            m,
            "{},{},{},{},{},{},{},{}",
            r.name,
            r.rows,
            r.cols,
            r.bits.map_or(String::new(), |b| b.to_string()),
            r.sparsity,
            r.quant_loss,
            r.packed_bytes,
            r.fp32_bytes
        );
    }
    std::fs::write(dir.join("matrices.csv"), m)?;
    Ok(dir)
}
