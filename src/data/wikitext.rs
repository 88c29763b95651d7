//! WikiText-2 (Merity et al. 2016) by name: a local copy, or the published
//! archive downloaded into the cache, verified by SHA-256 and unpacked.
//!
//! Resolution order, as for PTB: the experiment's `data.dir`;
//! `IQ_TUI_WIKITEXT2_DIR`; `<cache>/wikitext-2`, downloading into it when a
//! file is missing unless `IQ_TUI_OFFLINE=1`. The archive is committed under
//! its name only once its hash matches, each member is unpacked (its CRC-32
//! checked by the reader) and committed atomically, their SHA-256 go into
//! `SHA256SUMS` after them, and the archive is removed last, so a crash at
//! any point leaves either a complete directory or one the next run
//! completes from what is there. A cached file that no longer matches its
//! sum is unpacked again (offline: an error naming it).
//!
//! The text is read as any `Text` corpus with the defaults: `<eos>` at every
//! line end (blank lines included, as PyTorch's `word_language_model` reads
//! it), the vocabulary from the training file, `<unk>` already in the text.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::download::{self, sha256_file, sha256_hex};
use super::text::{self, TextSpec};
use super::{Corpus, DataError};

/// The tokenised (not raw) WikiText-2, version 1, from its author's site.
pub const DEFAULT_URL: &str = "https://wikitext.smerity.com/wikitext-2-v1.zip";

/// SHA-256 of `wikitext-2-v1.zip` as published with the archive's original
/// S3 address by the dataset registries that pin it (Julia's DataDeps
/// registration for WikiText-2, among others). The author's site is where
/// the archive is offered since that address closed; a file there (or at a
/// mirror) with another hash is refused.
pub const ARCHIVE_SHA256: &str = "92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c";

/// The archive's name in the cache while it is being unpacked.
const ARCHIVE: &str = "wikitext-2-v1.zip";

/// The three files, train, valid and test, as the archive names them
/// (inside its `wikitext-2/` folder).
pub const FILES: [&str; 3] = ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"];

/// Members larger than this are refused: the real ones are under 11 MB,
/// and a damaged or hostile archive must not fill the disk.
const MAX_MEMBER_BYTES: u64 = 256 << 20;

/// The cache directory WikiText-2 is unpacked into.
pub fn cache_dir() -> Option<PathBuf> {
    download::cache_root().map(|d| d.join("wikitext-2"))
}

fn has_files(dir: &Path) -> bool {
    FILES.iter().all(|name| dir.join(name).is_file())
}

/// The unpacked files' SHA-256, written into the cache after them (in
/// `sha256sum`'s format), so a later run can tell a damaged cache.
const SUMS: &str = "SHA256SUMS";

/// Whether the cache's three files are the ones unpacked there: `Ok` when
/// they match the sums, the first mismatch otherwise, `Ok(false)` when a
/// file or the sums are missing (an unpacking that did not finish).
fn check_cache(dir: &Path) -> Result<bool, DataError> {
    let Ok(sums) = fs::read_to_string(dir.join(SUMS)) else {
        return Ok(false);
    };
    if !has_files(dir) {
        return Ok(false);
    }
    for name in FILES {
        let Some(expected) = sums
            .lines()
            .find_map(|l| l.strip_suffix(name)?.strip_suffix("  "))
        else {
            return Ok(false);
        };
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
    Ok(true)
}

/// Where to look for WikiText-2; [`Lookup::from_env`] reads the environment.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The experiment's `data.dir`.
    pub explicit: Option<PathBuf>,
    /// `IQ_TUI_WIKITEXT2_DIR`.
    pub env_dir: Option<PathBuf>,
    /// `<cache>/wikitext-2`.
    pub cache: Option<PathBuf>,
    /// `IQ_TUI_OFFLINE=1`: never download.
    pub offline: bool,
    /// `IQ_TUI_WIKITEXT2_URL` (a mirror of the same archive), else [`DEFAULT_URL`].
    pub url: String,
    /// The archive's SHA-256: [`ARCHIVE_SHA256`] (tests serve their own).
    pub sha256: String,
}

impl Lookup {
    pub fn from_env(explicit: Option<&Path>) -> Self {
        Self {
            explicit: explicit.map(Path::to_path_buf),
            env_dir: std::env::var_os("IQ_TUI_WIKITEXT2_DIR").map(PathBuf::from),
            cache: cache_dir(),
            offline: download::offline(),
            url: std::env::var("IQ_TUI_WIKITEXT2_URL").unwrap_or_else(|_| DEFAULT_URL.into()),
            sha256: ARCHIVE_SHA256.into(),
        }
    }

    /// Finds (or downloads) WikiText-2; returns the directory of the three files.
    pub fn resolve(&self) -> Result<PathBuf, DataError> {
        let mut looked = Vec::new();
        if let Some(dir) = &self.explicit {
            if has_files(dir) {
                return Ok(dir.clone());
            }
            looked.push(dir.clone());
            return Err(not_found(
                looked,
                "The experiment's data.dir must hold wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens.",
            ));
        }
        if let Some(dir) = &self.env_dir {
            if has_files(dir) {
                return Ok(dir.clone());
            }
            looked.push(dir.clone());
        }
        if let Some(cache) = &self.cache {
            match check_cache(cache) {
                Ok(true) => return Ok(cache.clone()),
                Ok(false) => looked.push(cache.clone()),
                // a damaged cache is unpacked again where that is allowed
                Err(e) if self.offline => return Err(e),
                Err(e) => tracing::warn!("{e}; unpacking WikiText-2 again"),
            }
        }
        match &self.cache {
            Some(cache) if !self.offline => {
                tracing::info!(
                    "downloading WikiText-2 from {} into {}",
                    self.url,
                    cache.display()
                );
                fetch(&self.url, &self.sha256, cache)?;
                Ok(cache.clone())
            }
            _ => Err(not_found(
                looked,
                "Downloading is off (IQ_TUI_OFFLINE=1). Set IQ_TUI_WIKITEXT2_DIR or data.dir to a directory with the three files, or run `iq-tui fetch-wikitext2` where the network is reachable.",
            )),
        }
    }
}

fn not_found(looked: Vec<PathBuf>, hint: &str) -> DataError {
    DataError::NotFound {
        corpus: "WikiText-2",
        looked,
        hint: format!(
            "{hint}\nThe files are in {DEFAULT_URL} (SHA-256 {ARCHIVE_SHA256}), folder wikitext-2/."
        ),
    }
}

/// Downloads the archive at `url` (SHA-256 `sha256`) into `dir` and unpacks
/// the three files there. Files already there and matching the sums written
/// with them are kept, as is an archive already downloaded with the right
/// hash.
pub fn fetch(url: &str, sha256: &str, dir: &Path) -> Result<(), DataError> {
    if matches!(check_cache(dir), Ok(true)) {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let archive = dir.join(ARCHIVE);
    if !(archive.is_file() && sha256_file(&archive)? == sha256) {
        download::fetch_verified(url, &archive, sha256)?;
    }
    unpack(&archive, dir)?;
    // The three files and their sums are committed; the archive is no
    // longer needed, and a failure to remove it costs only disk space.
    let _ = fs::remove_file(&archive);
    Ok(())
}

/// Writes the archive's three members into `dir`, each atomically, then
/// their SHA-256 (hashed from the bytes written) as `SHA256SUMS`.
pub fn unpack(archive: &Path, dir: &Path) -> Result<(), DataError> {
    let bad = |message: String| DataError::Archive {
        archive: archive.to_path_buf(),
        message,
    };
    let file = fs::File::open(archive).map_err(|source| DataError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    // all three or none: a wrong archive leaves nothing behind
    let missing: Vec<String> = FILES
        .iter()
        .map(|name| format!("wikitext-2/{name}"))
        .filter(|wanted| zip.index_for_name(wanted).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "not WikiText-2: it holds no {}",
            missing.join(", ")
        )));
    }
    let write = |target: &Path, bytes: &[u8]| {
        crate::atomic::write(target, bytes).map_err(|source| DataError::Io {
            path: target.to_path_buf(),
            source,
        })
    };
    let mut sums = String::new();
    for name in FILES {
        let wanted = format!("wikitext-2/{name}");
        let mut member = zip
            .by_name(&wanted)
            .map_err(|e| bad(format!("{wanted}: {e}")))?;
        if member.size() > MAX_MEMBER_BYTES {
            return Err(bad(format!(
                "{wanted} unpacks to {} bytes, more than WikiText-2's files can be",
                member.size()
            )));
        }
        let mut bytes = Vec::with_capacity(member.size() as usize);
        // Reading to the end checks the member's CRC-32; the limit guards
        // against a size field that lies.
        (&mut member)
            .take(MAX_MEMBER_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{wanted}: {e}")))?;
        if bytes.len() as u64 > MAX_MEMBER_BYTES {
            return Err(bad(format!("{wanted} unpacks to more than it says")));
        }
        sums.push_str(&format!("{}  {name}\n", sha256_hex(&bytes)));
        write(&dir.join(name), &bytes)?;
    }
    write(&dir.join(SUMS), sums.as_bytes())
}

/// Loads WikiText-2 from wherever [`Lookup`] finds it.
pub fn load(explicit: Option<&Path>) -> Result<Corpus, DataError> {
    let dir = Lookup::from_env(explicit).resolve()?;
    read(&dir)
}

/// Reads the three files of `dir` as WikiText-2.
pub fn read(dir: &Path) -> Result<Corpus, DataError> {
    text::load_as(
        &TextSpec {
            dir,
            files: FILES.map(Some),
            max_vocab: None,
            min_count: 1,
            unk: "<unk>",
        },
        "WikiText-2",
    )
}
