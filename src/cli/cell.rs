//! `iq-tui run-cell`: one unit of a sweep directory, started or continued,
//! headless. It is what a local sweep starts for each unit and what each
//! task of a Slurm job array runs, so both leave the same run directory.

use std::fs;
use std::path::PathBuf;

use super::args::{ResumeArgs, RunArgs, SetArgs, StageArg};
use super::error::{CliError, CliResult, Done};
use crate::headless::say;
use crate::sweep::{observe, Status, SweepState, UnitEntry};

/// Runs the unit named `unit`, or unit `index` of `stage`.
pub(super) fn run_cell(
    sweep_dir: PathBuf,
    unit: Option<String>,
    index: Option<usize>,
    stage: StageArg,
) -> CliResult {
    let state = SweepState::read(&sweep_dir).map_err(CliError::bad)?;
    let entry = match (&unit, index) {
        (Some(name), _) => state.units().find(|u| &u.name == name).ok_or_else(|| {
            CliError::bad(format!(
                "{}: no unit named {name} in this sweep",
                sweep_dir.display()
            ))
        })?,
        (None, Some(i)) => {
            let (units, what) = match stage {
                StageArg::Cells => (&state.cells, "cell"),
                StageArg::Pretrain => (&state.pretrains, "pre-training run"),
            };
            units.get(i).ok_or_else(|| {
                CliError::bad(format!(
                    "{}: no {what} {i}; the sweep has {} (0 to {})",
                    sweep_dir.display(),
                    units.len(),
                    units.len().saturating_sub(1)
                ))
            })?
        }
        (None, None) => return Err(CliError::bad("run-cell needs --unit NAME or --index I")),
    };
    if let Some(k) = entry.after {
        let p = &state.pretrains[k];
        if observe(&sweep_dir.join(&p.dir)) != Status::Finished {
            return Err(CliError::bad(format!(
                "{} starts from the pre-training {}, which has not finished",
                entry.name, p.name
            )));
        }
    }
    say(&format!(
        "{} with {} thread{}{}",
        entry.name,
        rayon::current_num_threads(),
        if rayon::current_num_threads() == 1 {
            ""
        } else {
            "s"
        },
        slurm_task()
            .map(|j| format!(" (Slurm task {j} on {})", hostname()))
            .unwrap_or_default()
    ));
    let run_dir = sweep_dir.join(&entry.dir);
    let result = run_unit(&sweep_dir, entry, run_dir);
    if matches!(result, Ok(Done::Stopped)) && slurm_task().is_some() {
        say(&format!(
            "the sweep continues with `iq-tui resume {} --slurm`",
            sweep_dir.display()
        ));
    }
    result
}

fn run_unit(sweep_dir: &std::path::Path, entry: &UnitEntry, run_dir: PathBuf) -> CliResult {
    match observe(&run_dir) {
        Status::Finished => {
            say(&format!("{} has finished already", run_dir.display()));
            Ok(Done::Finished)
        }
        Status::Pending => {
            if run_dir.exists() && !run_dir.join("checkpoints").exists() {
                // Left by a start that died before its first record: nothing to keep.
                fs::remove_dir_all(&run_dir).map_err(|e| {
                    CliError::failed(format!("cannot clear {}: {e}", run_dir.display()))
                })?;
            }
            super::run::run(RunArgs {
                file: sweep_dir.join(&entry.experiment),
                headless: true,
                dry_run: false,
                out: Some(run_dir),
                force: false,
                set: SetArgs { set: Vec::new() },
            })
        }
        _ => super::run::resume(ResumeArgs {
            run_dir,
            headless: true,
            force: false,
            restart: true,
            retry_failed: false,
            jobs: None,
            slurm: Default::default(),
        }),
    }
}

/// `13_2` inside an array task, the job id inside a plain job.
fn slurm_task() -> Option<String> {
    let var = |v: &str| std::env::var(v).ok();
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this node".into())
}
