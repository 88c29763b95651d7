//! Corpora: Penn Treebank and WikiText-2 (local or downloaded, SHA-256
//! verified), a
//! word-level corpus of the user's own, a synthetic corpus, the vocabulary
//! and batching into BPTT segments.

mod batch;
pub mod download;
mod error;
pub mod ptb;
mod synthetic;
pub mod text;
mod vocab;
pub mod wikitext;

pub use batch::{Segment, Segments, IGNORE};
pub use error::DataError;
pub use synthetic::synthetic_corpus;
pub use vocab::{Vocab, EOS};

use std::path::Path;

use crate::experiment::DataSource;

/// A tokenised corpus: every split as word ids, with `<eos>` at each line end.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub vocab: Vocab,
    pub train: Vec<u32>,
    pub valid: Vec<u32>,
    pub test: Vec<u32>,
    /// Where it came from, for logs and records.
    pub origin: String,
    /// Tokens of train, valid and test read as the unknown token because
    /// their word is outside the vocabulary (0 where none can be).
    pub unknown: [usize; 3],
}

impl Corpus {
    /// Builds the vocabulary from `train` and tokenises all three texts.
    pub fn from_texts(
        train: (&Path, &str),
        valid: (&Path, &str),
        test: (&Path, &str),
        origin: String,
    ) -> Result<Self, DataError> {
        let vocab = Vocab::build(train.1);
        Ok(Self {
            train: vocab.encode(train.0, train.1)?,
            valid: vocab.encode(valid.0, valid.1)?,
            test: vocab.encode(test.0, test.1)?,
            vocab,
            origin,
            unknown: [0; 3],
        })
    }

    /// The same text through another vocabulary (an imported model's, in
    /// its index order, from `vocab_file`): a word it lacks reads as `unk`,
    /// an error when `unk` is not in it either.
    pub fn through(
        self,
        words: Vec<String>,
        unk: &str,
        vocab_file: &Path,
    ) -> Result<Corpus, DataError> {
        let vocab = Vocab::from_words(words);
        let unk_id = vocab.id(unk);
        let missing = |word: &str| DataError::NotInVocabulary {
            path: vocab_file.to_path_buf(),
            word: word.to_string(),
            unk: unk.to_string(),
        };
        if vocab.id(EOS).is_none() {
            return Err(missing(EOS));
        }
        // per old id: the new id, and whether it reads a word as unknown
        let mut map = Vec::with_capacity(self.vocab.len());
        for w in self.vocab.words() {
            match (vocab.id(w), unk_id) {
                (Some(id), _) => map.push((id, false)),
                (None, Some(u)) => map.push((u, true)),
                (None, None) => return Err(missing(w)),
            }
        }
        let mut unknown = [0usize; 3];
        let mut remap = |ids: Vec<u32>, k: usize| -> Vec<u32> {
            ids.into_iter()
                .map(|i| {
                    let (id, unk) = map[i as usize];
                    unknown[k] += unk as usize;
                    id
                })
                .collect()
        };
        let (train, valid, test) = (
            remap(self.train, 0),
            remap(self.valid, 1),
            remap(self.test, 2),
        );
        let unknown = [
            self.unknown[0] + unknown[0],
            self.unknown[1] + unknown[1],
            self.unknown[2] + unknown[2],
        ];
        Ok(Corpus {
            origin: format!(
                "{}, read through the vocabulary of {} ({} tokens)",
                self.origin,
                vocab_file.display(),
                vocab.len()
            ),
            vocab,
            train,
            valid,
            test,
            unknown,
        })
    }

    pub fn split(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }
}

/// The three standard splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        })
    }
}

/// Loads the corpus an experiment names.
pub fn load(source: &DataSource, seed: u64) -> Result<Corpus, DataError> {
    match source {
        DataSource::Ptb { dir } => ptb::load(dir.as_deref()),
        DataSource::WikiText2 { dir } => wikitext::load(dir.as_deref()),
        DataSource::Text { .. } => text::load(&text::TextSpec::of(source).expect("a Text source")),
        DataSource::Synthetic {
            vocab,
            train_tokens,
            valid_tokens,
            test_tokens,
        } => Ok(synthetic_corpus(
            *vocab,
            [*train_tokens, *valid_tokens, *test_tokens],
            seed,
        )),
    }
}
