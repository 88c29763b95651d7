use std::path::PathBuf;

/// Why a corpus could not be had. Every variant says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{corpus} not found. Looked in:\n{}\n{hint}", looked.iter().map(|p| format!("  - {}", p.display())).collect::<Vec<_>>().join("\n"))]
    NotFound {
        corpus: &'static str,
        looked: Vec<PathBuf>,
        hint: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: SHA-256 is {actual}, expected {expected}; the file is corrupt or not the published one")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{archive}: {message}")]
    Archive { archive: PathBuf, message: String },
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
    #[error("{dir}: no {split} split: looked for {}", looked.join(", "))]
    MissingSplit {
        split: super::Split,
        dir: PathBuf,
        looked: Vec<String>,
    },
    #[error("{path}: {detail}")]
    NotText { path: PathBuf, detail: String },
    #[error("{path}: the corpus has {word:?}, which is not among these tokens, and no unknown token {unk:?} to read it as")]
    NotInVocabulary {
        path: PathBuf,
        word: String,
        unk: String,
    },
    #[error("{path}: no words in it")]
    Empty { path: PathBuf },
    #[error("{path}:{line}: word {word:?} is not in the training vocabulary")]
    OutOfVocabulary {
        path: PathBuf,
        line: usize,
        word: String,
    },
}
