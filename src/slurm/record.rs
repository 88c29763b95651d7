//! What was submitted (`slurm.json`, written only by the command that
//! submits, under the sweep's lock) and the last state the scheduler gave
//! each unit (`slurm-seen.json`, a cache any reader may rewrite), so that a
//! cancelled or timed-out task still says so after `squeue` forgets it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const RECORD_FILE: &str = "slurm.json";
pub const SEEN_FILE: &str = "slurm-seen.json";

/// The resources every task asks for; kept so that a resubmission asks for
/// the same unless told otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub partition: Option<String>,
    /// `--time`, as Slurm reads it (`2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: usize,
    /// `--mem`, as Slurm reads it (`4G`, `800M`).
    pub mem: String,
    /// The `%P` of `--array=…%P`: tasks of an array running at once.
    pub max_running: Option<usize>,
    /// Further `#SBATCH` lines, as given (`--account=abc`).
    pub sbatch_args: Vec<String>,
}

/// Which units a job array runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Pretrain,
    Cells,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Cells => "cells",
        }
    }
}

/// One `sbatch` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The array's job id.
    pub job: String,
    pub stage: Stage,
    /// The array's task ids: indices into the stage's units in `sweep.json`.
    pub indices: Vec<usize>,
    /// The command line, as run.
    pub command: Vec<String>,
    pub submitted: String,
}

/// `slurm.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmRecord {
    pub options: Options,
    /// The iq-tui executable the scripts run.
    pub executable: PathBuf,
    pub submissions: Vec<Submission>,
}

/// A unit's latest array task: (array job id, task id).
pub type TaskRef = (String, usize);

impl SlurmRecord {
    pub fn read(dir: &Path) -> Result<Option<Self>, String> {
        read_json(&dir.join(RECORD_FILE))
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a Slurm record always serialises");
        crate::atomic::write(&dir.join(RECORD_FILE), &json)
    }

    /// The task that last ran (or will run) unit `index` of `stage`.
    pub fn task_of(&self, stage: Stage, index: usize) -> Option<TaskRef> {
        self.submissions
            .iter()
            .rev()
            .find(|s| s.stage == stage && s.indices.contains(&index))
            .map(|s| (s.job.clone(), index))
    }

    /// Every array job id, oldest first.
    pub fn jobs(&self) -> Vec<String> {
        self.submissions.iter().map(|s| s.job.clone()).collect()
    }
}

/// The last state the scheduler reported for a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub state: String,
    pub at: String,
}

/// `slurm-seen.json`: `"<job>_<task>"` → what was last seen of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeenCache {
    pub tasks: BTreeMap<String, Seen>,
}

impl SeenCache {
    /// The cache, or an empty one if it is missing or unreadable: it only
    /// remembers, and is rebuilt from what the scheduler says next.
    pub fn read(dir: &Path) -> Self {
        read_json(&dir.join(SEEN_FILE))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a cache always serialises");
        crate::atomic::write(&dir.join(SEEN_FILE), &json)
    }
}

pub fn task_name(task: &TaskRef) -> String {
    format!("{}_{}", task.0, task.1)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{}:{}:{}: not a Slurm record: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}
