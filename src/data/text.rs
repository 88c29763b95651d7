//! A word-level corpus of the user's own: a directory with a training,
//! validation and test file (`train.txt`, `valid.txt`, `test.txt`, or
//! WikiText's `wiki.train.tokens`, `wiki.valid.tokens`, `wiki.test.tokens`,
//! or names given in the experiment). Tokens are split on whitespace with an
//! `<eos>` at every line end, as for PTB; the vocabulary comes from the
//! training file, cut by `min_count` and `max_vocab`, and every word outside
//! it maps to the unknown token.

use std::path::{Path, PathBuf};

use super::vocab::Vocab;
use super::{Corpus, DataError, Split};
use crate::experiment::DataSource;

/// File names tried, in order, when the experiment names none.
pub const CONVENTIONS: [[&str; 3]; 2] = [
    ["train.txt", "valid.txt", "test.txt"],
    ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"],
];

/// What `data: Text(..)` says.
#[derive(Debug, Clone)]
pub struct TextSpec<'a> {
    pub dir: &'a Path,
    /// Explicit file names (relative to `dir`), per split.
    pub files: [Option<&'a str>; 3],
    pub max_vocab: Option<usize>,
    pub min_count: usize,
    pub unk: &'a str,
}

impl<'a> TextSpec<'a> {
    /// What a `data: Text(..)` source says; `None` for any other source.
    pub fn of(source: &'a DataSource) -> Option<Self> {
        match source {
            DataSource::Text {
                dir,
                train,
                valid,
                test,
                max_vocab,
                min_count,
                unk,
            } => Some(Self {
                dir,
                files: [train.as_deref(), valid.as_deref(), test.as_deref()],
                max_vocab: *max_vocab,
                min_count: *min_count,
                unk,
            }),
            _ => None,
        }
    }
}

const SPLITS: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

/// The three files of `spec`: the named ones, else the first convention
/// whose file exists for that split.
pub fn paths(spec: &TextSpec) -> Result<[PathBuf; 3], DataError> {
    let mut out: [PathBuf; 3] = Default::default();
    for (k, split) in SPLITS.into_iter().enumerate() {
        let candidates: Vec<&str> = match spec.files[k] {
            Some(name) => vec![name],
            None => CONVENTIONS.iter().map(|c| c[k]).collect(),
        };
        out[k] = candidates
            .iter()
            .map(|name| spec.dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| DataError::MissingSplit {
                split,
                dir: spec.dir.to_path_buf(),
                looked: candidates.iter().map(|s| s.to_string()).collect(),
            })?;
    }
    Ok(out)
}

/// Reads a corpus file as text: an error naming the file when it cannot be
/// read, is not UTF-8 (a binary file, say) or holds no word.
fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(DataError::NotText {
            path: path.to_path_buf(),
            detail: format!("byte {at} is NUL: a binary file, not text"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| DataError::NotText {
        path: path.to_path_buf(),
        detail: format!("not UTF-8 from byte {}", e.utf8_error().valid_up_to()),
    })?;
    if text.split_whitespace().next().is_none() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// Loads the corpus `spec` describes.
pub fn load(spec: &TextSpec) -> Result<Corpus, DataError> {
    load_as(spec, "text corpus")
}

/// [`load`], with `what` naming the corpus in its origin line.
pub(super) fn load_as(spec: &TextSpec, what: &str) -> Result<Corpus, DataError> {
    let paths = paths(spec)?;
    let texts = [
        read_text(&paths[0])?,
        read_text(&paths[1])?,
        read_text(&paths[2])?,
    ];
    let vocab = Vocab::build_limited(&texts[0], spec.max_vocab, spec.min_count, spec.unk);
    let unk = vocab.id(spec.unk);
    // valid and test may hold words the training file never had: they need
    // the unknown token even when the cut kept every training word
    let needs_unk = unk.is_none()
        && texts[1..]
            .iter()
            .any(|t| t.split_whitespace().any(|w| vocab.id(w).is_none()));
    let vocab = if needs_unk {
        vocab.with_word(spec.unk)
    } else {
        vocab
    };
    let unk = vocab.id(spec.unk);
    let mut encoded: [(Vec<u32>, usize); 3] = Default::default();
    for k in 0..3 {
        encoded[k] = vocab.encode_with_unknown(&paths[k], &texts[k], unk)?;
    }
    let rate = |k: usize| 100.0 * encoded[k].1 as f64 / encoded[k].0.len().max(1) as f64;
    let origin = format!(
        "{what} {} (train {} tokens, {:.2} % unknown; valid {}, {:.2} %; test {}, {:.2} %; vocabulary {})",
        spec.dir.display(),
        encoded[0].0.len(),
        rate(0),
        encoded[1].0.len(),
        rate(1),
        encoded[2].0.len(),
        rate(2),
        vocab.len(),
    );
    let [(train, a), (valid, b), (test, c)] = encoded;
    Ok(Corpus {
        vocab,
        train,
        valid,
        test,
        origin,
        unknown: [a, b, c],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path) -> TextSpec<'_> {
        TextSpec {
            dir,
            files: [None; 3],
            max_vocab: None,
            min_count: 1,
            unk: "<unk>",
        }
    }

    fn write(dir: &Path, files: &[(&str, &[u8])]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn plain_names_eos_and_unknown_words_of_valid_and_test() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("train.txt", b"a b a\nb c\n"),
                ("valid.txt", b"a zebra\n"),
                ("test.txt", b"c\n"),
            ],
        );
        let c = load(&spec(dir.path())).unwrap();
        // a, b twice, <eos> twice, c once; <unk> added for "zebra"
        assert_eq!(c.vocab.words(), ["<eos>", "a", "b", "c", "<unk>"]);
        assert_eq!(c.train, [1, 2, 1, 0, 2, 3, 0]);
        assert_eq!(c.valid, [1, 4, 0]);
        assert_eq!(c.test, [3, 0]);
        assert!(c.origin.contains("valid 3, 33.33 %"), "{}", c.origin);
    }

    #[test]
    fn wikitext_names_and_a_cut_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("wiki.train.tokens", b" = a = \n a a b c <unk> \n"),
                ("wiki.valid.tokens", b" a b \n"),
                ("wiki.test.tokens", b" c \n"),
            ],
        );
        let mut s = spec(dir.path());
        s.min_count = 2;
        let c = load(&s).unwrap();
        // a, <eos> and "=" have count ≥ 2; b and c fold into <unk> (its own
        // count 1 + 2), which takes its place by that count
        assert_eq!(c.vocab.words(), ["<unk>", "a", "<eos>", "="]);
        assert_eq!(c.test, [0, 2]);
        assert_eq!(c.valid, [1, 0, 2]);
        s.min_count = 1;
        s.max_vocab = Some(3);
        let c = load(&s).unwrap();
        assert_eq!(c.vocab.words(), ["<unk>", "a", "<eos>"]);
    }

    #[test]
    fn missing_empty_and_binary_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("train.txt", b"a\n"), ("valid.txt", b"a\n")]);
        let err = load(&spec(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("no test split") && err.contains("wiki.test.tokens"),
            "{err}"
        );
        write(dir.path(), &[("test.txt", b" \n\n")]);
        let err = load(&spec(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("test.txt") && err.contains("no words"),
            "{err}"
        );
        write(dir.path(), &[("test.txt", b"a\x00\x01")]);
        let err = load(&spec(dir.path())).unwrap_err().to_string();
        assert!(err.contains("test.txt") && err.contains("binary"), "{err}");
        write(dir.path(), &[("test.txt", b"a \xff\n")]);
        let err = load(&spec(dir.path())).unwrap_err().to_string();
        assert!(err.contains("not UTF-8 from byte 2"), "{err}");
        let mut s = spec(dir.path());
        s.files[2] = Some("valid.txt");
        assert!(load(&s).is_ok());
    }
}
