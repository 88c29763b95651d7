//! Slurm: a sweep directory's units as job arrays, one task per unit.
//!
//! `iq-tui sweep --slurm` makes the sweep directory as a local sweep does,
//! then writes one sbatch script per stage (`script.rs`), submits the
//! shared pre-training as one array and the cells as another that waits
//! for it (`--dependency=afterok`), and records the job ids in
//! `slurm.json` (`record.rs`). Each task runs `iq-tui run-cell` on the
//! shared filesystem, so the run directories stay the truth; `squeue` and
//! `sacct` (`queue.rs`) add what only the scheduler knows, and
//! `status.rs` reads the two as one state per unit.

pub mod queue;
pub mod record;
pub mod script;
pub mod status;

use std::path::Path;
use std::process::Command;

pub use record::{Options, SlurmRecord, Stage, Submission};
pub use status::{board, Board, UnitView};

/// Whether this machine can submit: `sbatch` answers.
pub fn check_sbatch() -> Result<String, String> {
    match Command::new("sbatch").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).trim().into()),
        Ok(out) => Err(format!(
            "sbatch --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!(
            "sbatch cannot be run here ({e}); --slurm submits from a machine of a Slurm cluster (its login node)"
        )),
    }
}

/// A memory request with room above the estimated peak: half as much again
/// and 256 MB more, in whole megabytes.
pub fn default_mem(peak_bytes: u64) -> String {
    let mb = (peak_bytes as f64 * 1.5 / 1e6).ceil() as u64 + 256;
    format!("{mb}M")
}

/// `0-3`, `1,4-6`: task ids as `--array` reads them.
pub fn array_spec(indices: &[usize], max_running: Option<usize>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    let mut spec = parts.join(",");
    if let Some(p) = max_running {
        spec.push_str(&format!("%{p}"));
    }
    spec
}

/// Asks the scheduler whether it would take the stage's array as the
/// script asks for it (`sbatch --test-only`): a wrong partition, time or
/// memory is refused before anything is submitted.
pub fn test_only(
    sweep_dir: &Path,
    stage: Stage,
    indices: &[usize],
    options: &Options,
) -> Result<(), String> {
    let out = Command::new("sbatch")
        .arg("--test-only")
        .arg(format!(
            "--array={}",
            array_spec(indices, options.max_running)
        ))
        .arg(script::path(sweep_dir, stage))
        .current_dir(sweep_dir)
        .output()
        .map_err(|e| format!("cannot run sbatch: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "Slurm would not take the {} array ({}): {}",
            stage.name(),
            script::path(sweep_dir, stage).display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Submits `indices` of `stage` as one array, after `after` (job ids) have
/// all succeeded.
pub fn submit(
    sweep_dir: &Path,
    stage: Stage,
    indices: &[usize],
    options: &Options,
    after: &[String],
) -> Result<Submission, String> {
    let mut command = vec![
        "sbatch".to_string(),
        "--parsable".into(),
        format!("--array={}", array_spec(indices, options.max_running)),
    ];
    if !after.is_empty() {
        command.push(format!("--dependency=afterok:{}", after.join(":")));
    }
    command.push(script::path(sweep_dir, stage).display().to_string());
    let out = Command::new(&command[0])
        .args(&command[1..])
        .current_dir(sweep_dir)
        .output()
        .map_err(|e| format!("cannot run sbatch: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sbatch refused the {} array: {}",
            stage.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job = stdout
        .trim()
        .split(';')
        .next()
        .filter(|j| !j.is_empty() && j.chars().all(|c| c.is_ascii_digit()))
        .ok_or_else(|| format!("sbatch printed no job id: {:?}", stdout.trim()))?
        .to_string();
    Ok(Submission {
        job,
        stage,
        indices: indices.to_vec(),
        command,
        submitted: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_join_runs_of_indices() {
        assert_eq!(array_spec(&[0, 1, 2, 3], Some(2)), "0-3%2");
        assert_eq!(array_spec(&[1, 3, 4, 5, 9], None), "1,3-5,9");
        assert_eq!(array_spec(&[7], None), "7");
    }

    #[test]
    fn memory_requests_leave_room_above_the_estimate() {
        assert_eq!(default_mem(0), "256M");
        assert_eq!(default_mem(1_000_000_000), "1756M");
    }
}
