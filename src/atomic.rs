//! The one way iq-tui writes a file: into a temporary file beside the target,
//! fsync it, rename it over the target, fsync the directory. A crash at any
//! moment leaves either the old file or the new one under the final name,
//! never a torn one, and the rename survives a power cut once this returns.
//!
//! Every writer uses it: checkpoints, `summary.json`, `manifest.json`,
//! `experiment.ron`, saved weights, packed models, downloads and exports.
//! The temporary name carries the process id and a counter, so two processes
//! (or threads) writing the same target never share a temporary file.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Marks a temporary file: `.<pid>-<n>.tmp.<name>`. The target's name comes
/// last so that libraries which pick a format by extension still can.
const MARK: &str = ".tmp.";

/// Whether a directory entry is a temporary file left by a crash (also the
/// `.<name>.tmp` that versions before 0.2 wrote).
pub fn is_temporary(file_name: &str) -> bool {
    file_name.starts_with('.') && (file_name.contains(MARK) || file_name.ends_with(".tmp"))
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// Streams the contents into `path` atomically through a buffered writer.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    write_via(
        path,
        |tmp| {
            let mut out = BufWriter::new(File::create(tmp)?);
            fill(&mut out)?;
            out.flush()
        },
        |e| e,
    )
}

/// Lets `fill` create and write the temporary file itself (for libraries
/// that take a path, such as plotters' bitmap backend), then commits it as
/// [`write`] does; `commit_error` turns a failure of that last part into the
/// caller's error type. The temporary file is removed on any error.
pub fn write_via<E>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
    commit_error: impl FnOnce(io::Error) -> E,
) -> Result<(), E> {
    let tmp = temporary_path(path);
    let result = fill(&tmp).and_then(|()| commit(&tmp, path).map_err(commit_error));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `.<pid>-<n>.tmp.<name>` in the target's directory: same filesystem, so
/// the rename is atomic; unique, so concurrent writers never collide.
fn temporary_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{}-{n}{MARK}{name}", std::process::id()))
}

fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    fs::rename(tmp, path)?;
    sync_dir(path)
}

/// Makes a rename (or a removal) in `path`'s directory durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Directories cannot be opened for syncing on every platform; where they
    // can (Linux, macOS), a failure is real.
    match File::open(dir) {
        Ok(d) => d.sync_all(),
        Err(_) if cfg!(not(unix)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_target_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write(&target, b"one").unwrap();
        write(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write(&target, b"old").unwrap();
        let err = write_with(&target, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn concurrent_writers_of_one_target_use_distinct_temporary_files() {
        let a = temporary_path(Path::new("/x/summary.json"));
        let b = temporary_path(Path::new("/x/summary.json"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x")));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_temporary(&name), "{name}");
        assert!(name.ends_with(".summary.json") || name.ends_with("summary.json"));
        assert!(!is_temporary("summary.json"));
    }
}
