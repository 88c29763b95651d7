//! The run directory: everything a run leaves behind.
//!
//! ```text
//! <run>/experiment.ron   the resolved experiment (after defaults and --set)
//! <run>/events.jsonl     every engine event, one JSON object a line
//! <run>/summary.json     what the run measured (written when it finishes)
//! <run>/run.log          human-readable log
//! <run>/lock             held by the process writing the run (`lock.rs`)
//! <run>/control          a watcher's pause / resume / stop (`follow.rs`)
//! <run>/weights/         saved weights (`weights.rs`): fp/ and final/
//! <run>/snapshots/       exports from the dashboard
//! ```

pub mod checkpoint;
pub mod follow;
pub mod lock;
pub mod manifest;
pub mod npy;
pub mod resume;
pub mod torch;
pub mod weights;

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::record::{Listener, Record};

/// The run directories directly inside `dir`, by name.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("events.jsonl").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Why the run directory could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct StoreError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError {
        path: path.to_path_buf(),
        source,
    }
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// `explicit` if given (must be absent or empty), else a fresh
    /// `<root>/<name>-<UTC timestamp>`.
    pub fn create(root: &Path, name: &str, explicit: Option<&Path>) -> Result<Self, StoreError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
                let mut path = root.join(format!("{name}-{stamp}"));
                let mut n = 1;
                while path.exists() {
                    n += 1;
                    path = root.join(format!("{name}-{stamp}-{n}"));
                }
                path
            }
        };
        let refuse = |message: &str| {
            Err(StoreError {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, message.to_string()),
            })
        };
        if path.join("events.jsonl").exists() {
            return refuse(
                "already holds a run; choose another --out, or continue it with `iq-tui resume`",
            );
        }
        if holds_files(&path) {
            return refuse("is not empty; choose another --out or an empty directory (nothing in it is overwritten)");
        }
        fs::create_dir_all(&path).map_err(at(&path))?;
        Ok(Self { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` atomically ([`crate::atomic`]).
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let target = self.file(name);
        crate::atomic::write(&target, bytes).map_err(at(&target))
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let mut text = serde_json::to_string_pretty(value).expect("serialisable");
        text.push('\n');
        self.write_atomic(name, text.as_bytes())
    }

    /// Opens `events.jsonl` for appending.
    pub fn event_log(&self) -> Result<EventLog, StoreError> {
        let path = self.file("events.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(at(&path))?;
        Ok(EventLog {
            path,
            out: BufWriter::new(file),
            error: None,
            on_error: None,
        })
    }
}

/// Whether `dir` holds any file, at any depth (empty directories hold
/// nothing that a run could overwrite).
fn holds_files(dir: &Path) -> bool {
    fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let p = e.path();
        if p.is_dir() && !e.file_type().is_ok_and(|t| t.is_symlink()) {
            holds_files(&p)
        } else {
            true
        }
    })
}

/// Appends each event as one JSON line, flushed at once so a crash loses at
/// most the line being written. The first write error is kept and reported.
pub struct EventLog {
    path: PathBuf,
    out: BufWriter<File>,
    error: Option<StoreError>,
    on_error: Option<Box<dyn Fn() + Send>>,
}

impl EventLog {
    /// Calls `stop` if a record cannot be written (the caller stops the run
    /// with it), so a full disk never lets a run go on unrecorded.
    pub fn on_error(mut self, stop: impl Fn() + Send + 'static) -> Self {
        self.on_error = Some(Box::new(stop));
        self
    }

    /// The first write error, if any happened.
    pub fn take_error(&mut self) -> Option<StoreError> {
        self.error.take()
    }
}

impl Listener for EventLog {
    fn on_event(&mut self, record: &Record) {
        if self.error.is_some() {
            return;
        }
        let mut line = serde_json::to_string(record).expect("serialisable");
        line.push('\n');
        let result = self
            .out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.flush());
        if let Err(source) = result {
            if let Some(stop) = &self.on_error {
                stop();
            }
            self.error = Some(StoreError {
                path: self.path.clone(),
                source,
            });
        }
    }
}

/// Says so when a run directory contradicts itself: `summary.json` proves
/// the run finished, but `events.jsonl` ends before its `finished` record
/// (cut short by a copy, a full disk, an edit). Readers then warn and use
/// what is intact.
pub fn cut_short(dir: &Path, records: &[Record]) -> Option<String> {
    let finished = records
        .iter()
        .any(|r| matches!(r.event, crate::record::Event::Finished { .. }));
    (!finished && dir.join("summary.json").is_file()).then(|| {
        format!(
            "{}: events.jsonl ends before the end of the run that summary.json records; what is shown from the log is only what it kept, and summary.json holds the final numbers",
            dir.display()
        )
    })
}

/// Reads `events.jsonl`, tolerating a torn last line (a crash mid-write).
pub fn read_events(path: &Path) -> Result<Vec<Record>, StoreError> {
    let text = fs::read_to_string(path).map_err(at(path))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(StoreError {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line {}: {e}", i + 1),
                    ),
                })
            }
        }
    }
    Ok(out)
}
