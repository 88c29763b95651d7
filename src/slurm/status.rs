//! Every unit's state, from its run directory and the scheduler together.
//!
//! The run directory says whether a unit finished, stopped with a
//! checkpoint or failed; the scheduler says whether it waits, runs, or was
//! cancelled, timed out or ran out of memory. A finished run directory wins
//! (its summary is written last); a live job comes next; then the job's
//! end, read with the run directory (a task that stopped on Slurm's
//! `SIGTERM` before its time limit ends `FAILED` with status 130 but holds
//! a checkpoint: it is `STOPPED`).

use std::path::{Path, PathBuf};

use super::queue::{self, JobState, Snapshot};
use super::record::{self, Seen, SeenCache, SlurmRecord, Stage};
use super::script;
use crate::sweep::{observe, Status, SweepState};

/// What `iq-tui status` prints for a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitView {
    pub name: String,
    pub stage: Stage,
    pub index: usize,
    pub state: String,
    /// Its latest array task, `13_2`.
    pub job: Option<String>,
    /// The task's Slurm log, or the local sweep's log of the unit.
    pub log: Option<PathBuf>,
    /// Why it waits, or its run's error.
    pub detail: Option<String>,
    /// Its run directory's own reading.
    pub run: Status,
}

/// A sweep as the scheduler and the run directories show it now.
#[derive(Debug, Clone)]
pub struct Board {
    pub units: Vec<UnitView>,
    pub record: Option<SlurmRecord>,
    pub snapshot: Snapshot,
}

/// The state a unit shows: the rules in the module's comment.
pub fn combine(run: Status, job: Option<&JobState>) -> String {
    let state = match (run, job) {
        (Status::Finished, _) => "FINISHED",
        (_, Some(JobState::Pending)) => "PENDING",
        (_, Some(JobState::Running)) => "RUNNING",
        (_, Some(s)) if s.is_live() => return s.label().to_string(),
        (Status::Stopped, Some(JobState::Failed | JobState::Completed)) => "STOPPED",
        (Status::Failed, Some(JobState::Completed)) => "FAILED",
        (_, Some(JobState::Completed)) => "STOPPED",
        (_, Some(s)) => return s.label().to_string(),
        (Status::Pending, None) => "PENDING",
        (Status::Running, None) => "RUNNING",
        (Status::Stopped, None) => "STOPPED",
        (Status::Failed, None) => "FAILED",
        (Status::Blocked, None) => "BLOCKED",
    };
    state.to_string()
}

/// Reads the sweep, asks the scheduler about its jobs, and remembers what
/// it said in `slurm-seen.json` (best effort: a reader that cannot write
/// still gets the answer).
pub fn board(sweep_dir: &Path, state: &SweepState) -> Result<Board, String> {
    let record = SlurmRecord::read(sweep_dir)?;
    let snapshot = match &record {
        Some(r) => queue::query(&r.jobs()),
        None => Snapshot::default(),
    };
    let mut seen = SeenCache::read(sweep_dir);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut changed = false;
    for ((job, index), task) in &snapshot.tasks {
        let key = record::task_name(&(job.clone(), *index));
        let label = task.state.label().to_string();
        if seen.tasks.get(&key).is_none_or(|s| s.state != label) {
            seen.tasks.insert(
                key,
                Seen {
                    state: label,
                    at: now.clone(),
                },
            );
            changed = true;
        }
    }
    if changed {
        let _ = seen.write(sweep_dir);
    }
    let units = views(sweep_dir, state, record.as_ref(), &snapshot, &seen);
    Ok(Board {
        units,
        record,
        snapshot,
    })
}

/// Every unit, pre-training first, as `combine` reads it.
pub fn views(
    sweep_dir: &Path,
    state: &SweepState,
    record: Option<&SlurmRecord>,
    snapshot: &Snapshot,
    seen: &SeenCache,
) -> Vec<UnitView> {
    let pretrain_runs: Vec<Status> = state
        .pretrains
        .iter()
        .map(|p| observe(&sweep_dir.join(&p.dir)))
        .collect();
    let stages = state
        .pretrains
        .iter()
        .map(|u| (Stage::Pretrain, u))
        .enumerate()
        .chain(state.cells.iter().map(|u| (Stage::Cells, u)).enumerate());
    let mut out = Vec::new();
    for (index, (stage, unit)) in stages {
        let mut run = match stage {
            Stage::Pretrain => pretrain_runs[index],
            Stage::Cells => observe(&sweep_dir.join(&unit.dir)),
        };
        if run == Status::Pending
            && unit
                .after
                .is_some_and(|k| pretrain_runs[k] == Status::Failed)
        {
            run = Status::Blocked;
        }
        let task = record.and_then(|r| r.task_of(stage, index));
        let job_state = task.as_ref().and_then(|t| {
            snapshot.tasks.get(t).map(|s| s.state.clone()).or_else(|| {
                seen.tasks
                    .get(&record::task_name(t))
                    .map(|s| JobState::parse(&s.state))
            })
        });
        let reason = task
            .as_ref()
            .and_then(|t| snapshot.tasks.get(t))
            .and_then(|s| s.reason.clone());
        let state = combine(run, job_state.as_ref());
        let log = match &task {
            Some((job, i)) => Some(script::log_path(sweep_dir, stage, job, *i)),
            None => {
                let local = sweep_dir.join("logs").join(format!("{}.log", unit.name));
                local.is_file().then_some(local)
            }
        };
        let detail = match state.as_str() {
            "PENDING" => reason,
            "FAILED" | "OUT_OF_MEMORY" | "NODE_FAIL" => log
                .as_deref()
                .and_then(crate::sweep::state::last_error)
                .or_else(|| unit.error.clone()),
            _ => None,
        };
        out.push(UnitView {
            name: unit.name.clone(),
            stage,
            index,
            state,
            job: task.as_ref().map(record::task_name),
            log,
            detail,
            run,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_directory_and_the_scheduler_agree_on_one_state() {
        use JobState as J;
        use Status as S;
        let cases = [
            (S::Finished, Some(J::Running), "FINISHED"),
            (S::Pending, Some(J::Pending), "PENDING"),
            (S::Stopped, Some(J::Pending), "PENDING"),
            (S::Running, Some(J::Running), "RUNNING"),
            (S::Stopped, Some(J::Cancelled), "CANCELLED"),
            (S::Stopped, Some(J::Timeout), "TIMEOUT"),
            (S::Running, Some(J::OutOfMemory), "OUT_OF_MEMORY"),
            (S::Stopped, Some(J::Failed), "STOPPED"),
            (S::Failed, Some(J::Failed), "FAILED"),
            (S::Failed, Some(J::Completed), "FAILED"),
            (S::Stopped, None, "STOPPED"),
            (S::Blocked, None, "BLOCKED"),
            (S::Pending, Some(J::Other("SUSPENDED".into())), "SUSPENDED"),
        ];
        for (run, job, want) in cases {
            assert_eq!(combine(run, job.as_ref()), want, "{run:?} with {job:?}");
        }
    }
}
