//! Getting a stopped or killed run directory ready to continue: what it
//! holds, the newest intact checkpoint, and cutting the event log back to
//! where that checkpoint was taken. The engine decides what a checkpoint
//! means; this module only deals in the run directory's files.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::checkpoint::{CheckpointError, Checkpoints, Latest};
use super::lock::{LockError, RunLock};
use super::manifest::{ResumeRecord, RunManifest};
use super::{read_events, RunDir, StoreError};
use crate::record::Record;

/// Why a run directory cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Not a run, a finished run, a damaged record, a run another process
    /// writes: the user's input.
    #[error("{0}")]
    Refused(String),
    /// A file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every line of `bytes` as a record; the first one that does not parse is
/// the error (line number and why).
fn parse_records(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not text ({e})"))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// A run directory about to be resumed.
#[derive(Debug)]
pub struct ResumePlan {
    pub run: RunDir,
    /// `experiment.ron` and its text, as the run directory holds it.
    pub experiment_file: PathBuf,
    pub experiment_text: String,
    pub manifest: RunManifest,
    /// The newest checkpoint that verifies; `None` when there is none yet.
    pub checkpoint: Option<Latest>,
    pub checkpoints: Checkpoints,
    /// This process's hold on the directory; keep it while resuming.
    pub lock: Option<RunLock>,
}

/// Reads `dir` and finds its newest intact checkpoint. Refuses a directory
/// that is not a run, a finished run, and one whose checkpoints are all
/// damaged. Temporary files left by a crash are removed.
pub fn plan(dir: &Path) -> Result<ResumePlan, ResumeError> {
    let refuse = |message: String| Err(ResumeError::Refused(message));
    let experiment_file = dir.join("experiment.ron");
    let Ok(experiment_text) = fs::read_to_string(&experiment_file) else {
        return refuse(format!(
            "{}: not a run directory (it has no readable experiment.ron)",
            dir.display()
        ));
    };
    if dir.join("summary.json").exists() {
        return refuse(format!(
            "{}: this run has finished (summary.json exists); nothing to resume",
            dir.display()
        ));
    }
    let lock = RunLock::acquire(dir).map_err(|e| match e {
        LockError::Held { .. } => ResumeError::Refused(e.to_string()),
        LockError::Store(e) => ResumeError::Store(e),
    })?;
    let manifest_path = dir.join("manifest.json");
    let manifest = match fs::read_to_string(&manifest_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => return refuse(format!("{}: {e}", manifest_path.display())),
    };
    let checkpoints = Checkpoints::new(dir);
    checkpoints.clean_partial();
    let checkpoint = match checkpoints.latest() {
        Ok(latest) => Some(latest),
        Err(CheckpointError::None { .. }) => None,
        Err(e) => return refuse(format!("no intact checkpoint to resume from: {e}")),
    };
    Ok(ResumePlan {
        run: RunDir {
            path: dir.to_path_buf(),
        },
        experiment_file,
        experiment_text,
        manifest,
        checkpoint,
        checkpoints,
        lock: Some(lock),
    })
}

impl ResumePlan {
    /// Cuts `events.jsonl` back to the `keep` bytes the checkpoint was taken
    /// at (what came after is computed again) and returns the records that
    /// stay. A log shorter than that is damaged and is left as it is.
    pub fn cut_log(&self, keep: u64) -> Result<Vec<Record>, ResumeError> {
        let events = self.run.file("events.jsonl");
        let text = fs::read(&events).unwrap_or_default();
        let len = text.len() as u64;
        if len < keep {
            return Err(ResumeError::Refused(format!(
                "{}: {len} bytes, shorter than the {keep} the checkpoint was taken at; the record is damaged",
                events.display()
            )));
        }
        // What stays must read back whole before anything is cut.
        let kept = parse_records(&text[..keep as usize]).map_err(|e| {
            ResumeError::Refused(format!(
                "{}: {e}, before the point the checkpoint was taken at; the record is damaged and was left as it is",
                events.display()
            ))
        })?;
        OpenOptions::new()
            .write(true)
            .open(&events)
            .and_then(|f| f.set_len(keep))
            .map_err(|source| StoreError {
                path: events.clone(),
                source,
            })?;
        Ok(kept)
    }

    /// The records as they are, nothing cut (to say what a run reached).
    pub fn records(&self) -> Vec<Record> {
        read_events(&self.run.file("events.jsonl")).unwrap_or_default()
    }

    /// Adds `resume` to `manifest.json`.
    pub fn record(&mut self, resume: ResumeRecord) -> Result<(), StoreError> {
        self.manifest.resumes.push(resume);
        self.run.write_json("manifest.json", &self.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("experiment.ron"), "Experiment(name: \"x\")").unwrap();
        let manifest = RunManifest::new(1, "abc".into());
        fs::write(
            dir.path().join("manifest.json"),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        dir
    }

    fn refused(result: Result<ResumePlan, ResumeError>) -> String {
        match result {
            Err(ResumeError::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_directory_without_an_experiment_or_with_a_summary_is_refused() {
        let empty = tempfile::tempdir().unwrap();
        assert!(refused(plan(empty.path())).contains("not a run directory"));
        let done = run_dir();
        fs::write(done.path().join("summary.json"), "{}").unwrap();
        assert!(refused(plan(done.path())).contains("has finished"));
    }

    #[test]
    fn a_run_without_checkpoints_plans_a_fresh_start() {
        let dir = run_dir();
        let plan = plan(dir.path()).unwrap();
        assert!(plan.checkpoint.is_none());
        assert_eq!(plan.manifest.experiment_sha256, "abc");
    }

    #[test]
    fn the_log_is_cut_to_the_checkpoint_and_a_short_log_is_left_alone() {
        let dir = run_dir();
        let events = dir.path().join("events.jsonl");
        let line = r#"{"t":0.0,"type":"paused"}"#;
        fs::write(&events, format!("{line}\n{line}\n")).unwrap();
        let plan = plan(dir.path()).unwrap();
        let keep = line.len() as u64 + 1;
        // a damaged line before the cut: refused, and the log left whole
        let damaged = format!("garbage\n{line}\n");
        fs::write(&events, &damaged).unwrap();
        assert!(matches!(plan.cut_log(keep), Err(ResumeError::Refused(m)) if m.contains("line 1")));
        assert_eq!(fs::read_to_string(&events).unwrap(), damaged);
        fs::write(&events, format!("{line}\n{line}\n")).unwrap();
        assert_eq!(plan.cut_log(keep).unwrap().len(), 1);
        assert_eq!(fs::metadata(&events).unwrap().len(), keep);
        let message = match plan.cut_log(keep + 10) {
            Err(ResumeError::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(message.contains("damaged"), "{message}");
        assert_eq!(fs::metadata(&events).unwrap().len(), keep);
    }

    #[test]
    fn a_run_another_process_holds_is_refused() {
        let dir = run_dir();
        let _held = RunLock::acquire(dir.path()).unwrap();
        assert!(refused(plan(dir.path())).contains("is in use by process"));
    }

    #[test]
    fn each_resume_is_added_to_the_manifest() {
        let dir = run_dir();
        let mut plan = plan(dir.path()).unwrap();
        plan.record(ResumeRecord {
            at: "now".into(),
            checkpoint: None,
            position: "the start".into(),
            forced: false,
            arithmetic: None,
        })
        .unwrap();
        let text = fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        let manifest: RunManifest = serde_json::from_str(&text).unwrap();
        assert_eq!(manifest.resumes.len(), 1);
    }
}
