//! One writer per run directory: an advisory lock on `RUN_DIR/lock`, held
//! for as long as the process that writes the run lives. The kernel releases
//! it when that process ends, however it ends, so a crash never leaves a run
//! locked. The file holds the holder's process id, to name it to whoever is
//! turned away.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::StoreError;

pub const LOCK_FILE: &str = "lock";

/// Held while a process writes a run directory.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a run directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir} is in use by process {holder}: a run directory has one writer at a time; wait for that process to end or stop it")]
    Held { dir: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RunLock {
    /// Locks `dir` for this process, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let at = |source| StoreError {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(at)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    dir: dir.display().to_string(),
                    holder: if holder.is_empty() {
                        "(unknown)".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(at(e).into()),
        }
        file.set_len(0).map_err(at)?;
        file.rewind().map_err(at)?;
        writeln!(file, "{}", std::process::id()).map_err(at)?;
        file.flush().map_err(at)?;
        Ok(Self { _file: file })
    }
}

/// The process writing `dir`, if one is: the lock is held. Probes with a
/// shared lock, released at once, so a watcher never holds the run.
pub fn writer(dir: &Path) -> Option<String> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None, // released when `file` drops
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Some(holder.trim().to_string())
        }
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_turned_away_with_the_first_one_s_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_watcher_sees_the_writer_without_taking_the_run() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writer(dir.path()), None, "no lock file: nobody writes");
        let held = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(writer(dir.path()), Some(std::process::id().to_string()));
        assert_eq!(writer(dir.path()), Some(std::process::id().to_string()));
        drop(held);
        assert_eq!(writer(dir.path()), None);
        RunLock::acquire(dir.path()).unwrap();
    }
}
