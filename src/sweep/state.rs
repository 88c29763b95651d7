//! The sweep directory and `sweep.json`, and each unit's state read from
//! its run directory.
//!
//! ```text
//! <sweep>/sweep.ron          the sweep, its base experiment resolved
//! <sweep>/sweep.json         every unit: name, values, run directory, status
//! <sweep>/experiments/*.ron  what each unit runs
//! <sweep>/pretrain/<p>/      shared pre-training runs
//! <sweep>/cells/<cell>/      one run directory per cell
//! <sweep>/logs/<unit>.log    each unit's output
//! <sweep>/lock               held by the process running the sweep
//! ```
//!
//! The run directories are the truth: `sweep.json`'s status is what the
//! sweep last saw, and [`observe`] reads the current one from the directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::lock;

pub const STATE_FILE: &str = "sweep.json";

/// What became of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started.
    Pending,
    /// A process is writing it.
    Running,
    /// Stopped, or its process was killed: resumable from its checkpoint.
    Stopped,
    Failed,
    /// Its pre-training failed, so it cannot start.
    Blocked,
    Finished,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Failed => "failed",
            Status::Blocked => "blocked",
            Status::Finished => "finished",
        }
    }
}

/// One unit in `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitEntry {
    pub name: String,
    /// Relative to the sweep directory.
    pub dir: PathBuf,
    /// Relative to the sweep directory: the experiment it runs.
    pub experiment: PathBuf,
    /// The varied fields and their values as RON text (empty for pre-training).
    #[serde(default)]
    pub values: Vec<(String, String)>,
    /// Index of the pre-training it starts from.
    #[serde(default)]
    pub after: Option<usize>,
    pub status: Status,
    /// The last error a failed unit printed.
    #[serde(default)]
    pub error: Option<String>,
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepState {
    pub name: String,
    /// The sweep file it was expanded from.
    pub source: PathBuf,
    pub created: String,
    /// Threads each unit runs with, kept across resumes so that a resumed
    /// sweep computes with the same arithmetic.
    pub threads: usize,
    /// The varied fields, in the file's order.
    pub axes: Vec<String>,
    pub pretrains: Vec<UnitEntry>,
    pub cells: Vec<UnitEntry>,
}

impl SweepState {
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a sweep state file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a sweep state always serialises");
        crate::atomic::write(&dir.join(STATE_FILE), &json)
    }

    /// Every unit, pre-training first.
    pub fn units(&self) -> impl Iterator<Item = &UnitEntry> {
        self.pretrains.iter().chain(&self.cells)
    }
}

/// Whether `dir` is a sweep directory.
pub fn is_sweep_dir(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file()
}

/// A unit's state as its run directory shows it now.
pub fn observe(run_dir: &Path) -> Status {
    if run_dir.join("summary.json").is_file() {
        return Status::Finished;
    }
    if !run_dir.join("events.jsonl").is_file() {
        return Status::Pending;
    }
    if lock::writer(run_dir).is_some() {
        return Status::Running;
    }
    if ends_failed(&run_dir.join("events.jsonl")) {
        Status::Failed
    } else {
        Status::Stopped
    }
}

/// The last `bytes` of a file as text (no need to read a log whole; the
/// tail may start inside a character).
fn tail(path: &Path, bytes: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(bytes))).ok()?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The last `error:` line a unit's log holds, without the prefix.
pub fn last_error(log: &Path) -> Option<String> {
    tail(log, 16 * 1024)?
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error:"))
        .map(|l| l.trim().to_string())
}

/// Whether the event log's last record is `failed`, read from its tail.
fn ends_failed(events: &Path) -> bool {
    let Some(text) = tail(events, 64 * 1024) else {
        return false;
    };
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.contains("\"type\":\"failed\""))
}

/// The seed a unit's experiment file gives it (read without the checks a
/// run makes, which its pre-training may not pass yet).
pub fn seed_of(sweep_dir: &Path, unit: &UnitEntry) -> Option<u64> {
    let text = std::fs::read_to_string(sweep_dir.join(&unit.experiment)).ok()?;
    ron::from_str::<crate::experiment::Experiment>(&text)
        .ok()
        .map(|e| e.seed)
}
