//! What the scheduler says of a sweep's jobs: `squeue` for the jobs it
//! still holds (pending, running, and finished ones for `MinJobAge`), and
//! `sacct` for the rest when accounting is on. Every task of an array is
//! read (`squeue -r`; `sacct` rows like `13_[2-5%2]` are expanded), so a
//! pending array does not show as its first task only.

use std::collections::BTreeMap;
use std::process::Command;

/// A job's state as Slurm names it (`squeue %T`, `sacct State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Completed,
    Failed,
    Timeout,
    OutOfMemory,
    Cancelled,
    Preempted,
    NodeFail,
    /// Any other state, as Slurm spelled it (SUSPENDED, REQUEUED, …).
    Other(String),
}

impl JobState {
    pub fn parse(word: &str) -> Self {
        // sacct writes "CANCELLED by 1000".
        let word = word.split_whitespace().next().unwrap_or("");
        match word {
            "PENDING" | "CONFIGURING" => JobState::Pending,
            "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" => JobState::Running,
            "COMPLETED" => JobState::Completed,
            "FAILED" | "BOOT_FAIL" | "DEADLINE" => JobState::Failed,
            "TIMEOUT" => JobState::Timeout,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            "CANCELLED" => JobState::Cancelled,
            "PREEMPTED" => JobState::Preempted,
            "NODE_FAIL" => JobState::NodeFail,
            other => JobState::Other(other.to_string()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::Cancelled => "CANCELLED",
            JobState::Preempted => "PREEMPTED",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Other(s) => s,
        }
    }

    /// Whether the job may still run: pending or running.
    pub fn is_live(&self) -> bool {
        matches!(self, JobState::Pending | JobState::Running)
            || matches!(self, JobState::Other(s) if s == "SUSPENDED" || s == "REQUEUED" || s == "RESIZING")
    }
}

/// One array task as the scheduler reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    pub state: JobState,
    /// Why it waits (`Dependency`, `JobArrayTaskLimit`, …), for a pending task.
    pub reason: Option<String>,
}

/// Array tasks by (array job id, task index).
pub type Tasks = BTreeMap<(String, usize), TaskState>;

/// What the scheduler could be asked, and what it said.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub tasks: Tasks,
    /// `squeue` answered.
    pub squeue: bool,
    /// `sacct` answered (accounting is on).
    pub sacct: bool,
    /// Why a command did not answer, to show beside the table.
    pub note: Option<String>,
}

/// `squeue -h -r -t all -o '%i|%T|%r'` output.
pub fn parse_squeue(text: &str) -> Tasks {
    let mut out = Tasks::new();
    for line in text.lines() {
        let mut parts = line.split('|').map(str::trim);
        let (Some(id), Some(state)) = (parts.next(), parts.next()) else {
            continue;
        };
        let reason = parts
            .next()
            .filter(|r| !r.is_empty() && *r != "None")
            .map(str::to_string);
        for key in task_ids(id) {
            out.insert(
                key,
                TaskState {
                    state: JobState::parse(state),
                    reason: reason.clone(),
                },
            );
        }
    }
    out
}

/// `sacct -n -P -X -o JobID,State` output.
pub fn parse_sacct(text: &str) -> Tasks {
    let mut out = Tasks::new();
    for line in text.lines() {
        let mut parts = line.split('|').map(str::trim);
        let (Some(id), Some(state)) = (parts.next(), parts.next()) else {
            continue;
        };
        for key in task_ids(id) {
            out.insert(
                key,
                TaskState {
                    state: JobState::parse(state),
                    reason: None,
                },
            );
        }
    }
    out
}

/// `13_4` → one task; `13_[2-5,7%2]` → tasks 2, 3, 4, 5 and 7; a plain job
/// id (not an array) → none.
fn task_ids(id: &str) -> Vec<(String, usize)> {
    let Some((job, rest)) = id.split_once('_') else {
        return Vec::new();
    };
    if let Ok(i) = rest.parse::<usize>() {
        return vec![(job.to_string(), i)];
    }
    let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Vec::new();
    };
    let inner = inner.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in inner.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
            // A range this long is not an array anyone submits; refuse to
            // allocate for a corrupt line.
            if b >= a && b - a < 1_000_000 {
                out.extend((a..=b).map(|i| (job.to_string(), i)));
            }
        }
    }
    out
}

/// Asks `squeue`, then `sacct` for what `squeue` no longer holds.
pub fn query(jobs: &[String]) -> Snapshot {
    let mut snap = Snapshot::default();
    if jobs.is_empty() {
        return snap;
    }
    let list = jobs.join(",");
    match Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", &list])
        .output()
    {
        Ok(out) if out.status.success() => {
            snap.squeue = true;
            snap.tasks = parse_squeue(&String::from_utf8_lossy(&out.stdout));
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            // Every job already forgotten: an answer, and an empty one.
            if err.contains("Invalid job id") {
                snap.squeue = true;
            } else {
                snap.note = Some(format!("squeue: {}", err.trim()));
            }
        }
        Err(e) => snap.note = Some(format!("squeue cannot be run here: {e}")),
    }
    if let Ok(out) = Command::new("sacct")
        .args(["-n", "-P", "-X", "-o", "JobID,State", "-j", &list])
        .output()
    {
        if out.status.success() {
            snap.sacct = true;
            for (key, task) in parse_sacct(&String::from_utf8_lossy(&out.stdout)) {
                snap.tasks.entry(key).or_insert(task);
            }
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_name_every_task_and_why_it_waits() {
        let tasks = parse_squeue(
            "13_0|RUNNING|None\n13_2|PENDING|JobArrayTaskLimit\n12_0|COMPLETED|None\n\ngarbage\n",
        );
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[&("13".into(), 0)].state, JobState::Running);
        let pending = &tasks[&("13".into(), 2)];
        assert_eq!(pending.state, JobState::Pending);
        assert_eq!(pending.reason.as_deref(), Some("JobArrayTaskLimit"));
        assert_eq!(tasks[&("12".into(), 0)].state, JobState::Completed);
    }

    #[test]
    fn sacct_rows_of_a_pending_array_are_expanded() {
        let tasks = parse_sacct(
            "20_0|COMPLETED\n20_1|CANCELLED by 0\n20_[2-4,7%2]|PENDING\n20_5|OUT_OF_MEMORY\n21|COMPLETED\n",
        );
        let states: Vec<(usize, &str)> =
            tasks.iter().map(|(k, t)| (k.1, t.state.label())).collect();
        assert_eq!(
            states,
            vec![
                (0, "COMPLETED"),
                (1, "CANCELLED"),
                (2, "PENDING"),
                (3, "PENDING"),
                (4, "PENDING"),
                (5, "OUT_OF_MEMORY"),
                (7, "PENDING"),
            ]
        );
    }

    #[test]
    fn unknown_states_keep_their_name() {
        assert_eq!(JobState::parse("SUSPENDED").label(), "SUSPENDED");
        assert!(JobState::parse("SUSPENDED").is_live());
        assert!(!JobState::parse("TIMEOUT").is_live());
        assert!(task_ids("13_[9999999999999-1]").is_empty());
    }
}
