//! Following a run another process is writing: new records of
//! `events.jsonl` as they are appended, and the commands a watcher sends
//! back through `RUN_DIR/control`.
//!
//! The control file holds one word, `pause`, `resume` or `stop`, written
//! atomically by the watcher; the running process reads it within a fraction
//! of a second, obeys, and removes it. Its events (`paused`, `resumed`,
//! `stopped`) are the acknowledgement, so any number of watchers see the
//! same answer.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{at, StoreError};
use crate::record::Record;

pub const CONTROL_FILE: &str = "control";

/// What a watcher asks of a running run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Stop,
}

impl Command {
    pub fn word(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Stop => "stop",
        }
    }
}

/// Asks the process writing `dir` to pause, resume or stop.
pub fn send(dir: &Path, command: Command) -> Result<(), StoreError> {
    let path = dir.join(CONTROL_FILE);
    crate::atomic::write(&path, format!("{}\n", command.word()).as_bytes()).map_err(at(&path))
}

/// The command waiting in `dir`, removed as it is read. A file that holds
/// no known word is removed too and reported, so it cannot block the next.
pub fn take(dir: &Path) -> Result<Option<Command>, String> {
    let path = dir.join(CONTROL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(format!("{}: {e}", path.display()));
        }
    };
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&bytes);
    match text.trim() {
        "pause" => Ok(Some(Command::Pause)),
        "resume" => Ok(Some(Command::Resume)),
        "stop" => Ok(Some(Command::Stop)),
        other => Err(format!(
            "{}: `{other}` is not a command (pause, resume or stop); ignored",
            path.display()
        )),
    }
}

/// What a poll of the log found.
#[derive(Debug, PartialEq)]
pub enum Appended {
    /// Records after the ones read before.
    More(Vec<Record>),
    /// The log was cut back (a resume replays from a checkpoint): every
    /// record, from the start.
    Restarted(Vec<Record>),
}

/// Reads `events.jsonl` as it grows, one complete line at a time (a line
/// being written waits for its newline). A line that does not parse is
/// skipped and kept as [`EventTail::take_error`], so one damaged line
/// neither stops a watcher nor hides the records after it.
pub struct EventTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    line: usize,
    error: Option<StoreError>,
}

impl EventTail {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            line: 0,
            error: None,
        }
    }

    /// The first line that did not parse since the last call, if any.
    pub fn take_error(&mut self) -> Option<StoreError> {
        self.error.take()
    }

    pub fn poll(&mut self) -> Result<Appended, StoreError> {
        let mut file = File::open(&self.path).map_err(at(&self.path))?;
        let len = file.metadata().map_err(at(&self.path))?.len();
        let restarted = len < self.offset;
        if restarted {
            self.offset = 0;
            self.partial.clear();
            self.line = 0;
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(at(&self.path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(at(&self.path))?;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let mut records = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.line += 1;
            match serde_json::from_slice(&line) {
                Ok(record) => records.push(record),
                Err(e) if self.error.is_none() => {
                    self.error = Some(StoreError {
                        path: self.path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("line {}: {e}", self.line),
                        ),
                    })
                }
                Err(_) => {}
            }
        }
        Ok(if restarted {
            Appended::Restarted(records)
        } else {
            Appended::More(records)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Event;
    use std::io::Write;

    fn line(t: f64) -> String {
        format!(
            "{}\n",
            serde_json::to_string(&Record {
                t,
                event: Event::Paused
            })
            .unwrap()
        )
    }

    #[test]
    fn the_tail_waits_for_whole_lines_and_starts_over_when_the_log_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, line(1.0)).unwrap();
        let mut tail = EventTail::new(&path);
        assert!(matches!(tail.poll().unwrap(), Appended::More(r) if r.len() == 1));
        let two = line(2.0);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&two.as_bytes()[..5]).unwrap();
        assert_eq!(tail.poll().unwrap(), Appended::More(vec![]));
        f.write_all(&two.as_bytes()[5..]).unwrap();
        assert!(matches!(tail.poll().unwrap(), Appended::More(r) if r.len() == 1 && r[0].t == 2.0));
        std::fs::write(&path, line(3.0)).unwrap();
        assert!(
            matches!(tail.poll().unwrap(), Appended::Restarted(r) if r.len() == 1 && r[0].t == 3.0)
        );
    }

    #[test]
    fn a_command_is_read_once_and_a_bad_one_is_named_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(take(dir.path()), Ok(None));
        send(dir.path(), Command::Pause).unwrap();
        assert_eq!(take(dir.path()), Ok(Some(Command::Pause)));
        assert_eq!(take(dir.path()), Ok(None));
        std::fs::write(dir.path().join(CONTROL_FILE), "faster\n").unwrap();
        assert!(take(dir.path())
            .unwrap_err()
            .contains("`faster` is not a command"));
        assert_eq!(take(dir.path()), Ok(None));
    }
}
