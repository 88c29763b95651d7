use std::collections::HashMap;
use std::path::Path;

use super::DataError;

/// End of sentence: appended at every line end (docs/method.md §6).
pub const EOS: &str = "<eos>";

/// Word ↔ id, ordered by training frequency (most frequent first, ties
/// alphabetically), so ids are the same on every machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    words: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocab {
    pub fn build(train: &str) -> Self {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for line in train.lines() {
            for w in line.split_whitespace() {
                *counts.entry(w).or_default() += 1;
            }
            *counts.entry(EOS).or_default() += 1;
        }
        let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
        by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Self::from_words(by_count.into_iter().map(|(w, _)| w.to_string()).collect())
    }

    pub fn from_words(words: Vec<String>) -> Self {
        let ids = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Self { words, ids }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    pub fn word(&self, id: u32) -> &str {
        &self.words[id as usize]
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Word ids of `text`, one `<eos>` after every line.
    pub fn encode(&self, path: &Path, text: &str) -> Result<Vec<u32>, DataError> {
        let eos = self.id(EOS).expect("the vocabulary always holds <eos>");
        let mut out = Vec::with_capacity(text.len() / 5);
        for (n, line) in text.lines().enumerate() {
            for w in line.split_whitespace() {
                out.push(self.id(w).ok_or_else(|| DataError::OutOfVocabulary {
                    path: path.to_path_buf(),
                    line: n + 1,
                    word: w.to_string(),
                })?);
            }
            out.push(eos);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_ends_every_line_and_ids_follow_frequency() {
        let v = Vocab::build(" a b a \n b a \n");
        assert_eq!(v.words(), ["a", "<eos>", "b"]);
        let ids = v.encode(Path::new("x"), " a b \n a\n").unwrap();
        assert_eq!(ids, [0, 2, 1, 0, 1]);
    }

    #[test]
    fn unknown_words_are_reported_with_their_line() {
        let v = Vocab::build("a\n");
        let err = v
            .encode(Path::new("valid.txt"), "a\na zebra\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "valid.txt:2: word \"zebra\" is not in the training vocabulary"
        );
    }
}
