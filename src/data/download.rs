//! What every downloaded corpus shares: the cache directory, SHA-256 of a
//! file, and a download that is hashed on the way and committed under its
//! final name only when the hash matches, so a file with the final name is
//! always good.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::DataError;

/// iq-tui's cache directory: `IQ_TUI_CACHE_DIR`, else the user's
/// (`~/.cache/iq-tui`).
pub fn cache_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("IQ_TUI_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "iq-tui").map(|d| d.cache_dir().to_path_buf())
}

/// `IQ_TUI_OFFLINE=1`: never download.
pub fn offline() -> bool {
    std::env::var("IQ_TUI_OFFLINE").is_ok_and(|v| v == "1")
}

pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of bytes in memory, as [`sha256_file`] writes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Downloads `url` into `target` when its SHA-256 is `expected`; on any
/// error nothing is left under `target`'s name or beside it.
pub fn fetch_verified(url: &str, target: &Path, expected: &str) -> Result<(), DataError> {
    let path = target.to_path_buf();
    crate::atomic::write_via(
        target,
        |part| fetch_to(url, part, expected),
        |source| DataError::Io { path, source },
    )
}

fn fetch_to(url: &str, part: &Path, expected: &str) -> Result<(), DataError> {
    let fail = |message: String| DataError::Download {
        url: url.to_string(),
        message,
    };
    let response = ureq::get(url)
        .timeout(std::time::Duration::from_secs(120))
        .call()
        .map_err(|e| fail(e.to_string()))?;
    let mut reader = response.into_reader();
    let io = |source| DataError::Io {
        path: part.to_path_buf(),
        source,
    };
    let mut out = File::create(part).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
    }
    let actual = hex(&hasher.finalize());
    if actual != expected {
        return Err(DataError::Checksum {
            file: url.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    out.flush().map_err(io)
}
