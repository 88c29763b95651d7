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
        Self::by_count(word_counts(train).into_iter().collect())
    }

    /// Words with their counts, ordered most frequent first, ties
    /// alphabetically.
    fn by_count(mut words: Vec<(&str, usize)>) -> Self {
        words.sort_unstable_by(most_frequent_first);
        Self::from_words(words.into_iter().map(|(w, _)| w.to_string()).collect())
    }

    /// The vocabulary of `train` with every word outside it mapped to
    /// `unk`: words are kept by count (at least `min_count`) up to
    /// `max_vocab` entries in all, `<eos>` always, and `unk` counted with
    /// every word it stands for, then ordered as [`Vocab::build`] orders
    /// (so with nothing cut it is `build`'s vocabulary).
    pub fn build_limited(
        train: &str,
        max_vocab: Option<usize>,
        min_count: usize,
        unk: &str,
    ) -> Self {
        let mut counts = word_counts(train);
        let mut unk_count = counts.remove(unk).unwrap_or(0);
        let eos = (EOS, counts.remove(EOS).unwrap_or(0));
        let mut words: Vec<(&str, usize)> = counts.into_iter().collect();
        words.sort_unstable_by(most_frequent_first);
        let passing = words.iter().take_while(|w| w.1 >= min_count).count();
        // room for <eos>, and for the unknown token once anything is cut
        let room = max_vocab.map_or(usize::MAX, |m| m.saturating_sub(1));
        let keep = if passing < words.len() || room < passing || unk_count > 0 {
            passing.min(room.saturating_sub(1))
        } else {
            passing
        };
        unk_count += words[keep..].iter().map(|w| w.1).sum::<usize>();
        words.truncate(keep);
        words.push(eos);
        if unk_count > 0 {
            words.push((unk, unk_count));
        }
        Self::by_count(words)
    }

    /// The same vocabulary with `word` added at the end.
    pub fn with_word(mut self, word: &str) -> Self {
        let mut words = std::mem::take(&mut self.words);
        words.push(word.to_string());
        Self::from_words(words)
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

    /// Word ids of `text`, one `<eos>` after every line, words outside the
    /// vocabulary as `unk` (an error without one); also how many were.
    pub fn encode_with_unknown(
        &self,
        path: &Path,
        text: &str,
        unk: Option<u32>,
    ) -> Result<(Vec<u32>, usize), DataError> {
        let eos = self.id(EOS).expect("the vocabulary always holds <eos>");
        let mut out = Vec::with_capacity(text.len() / 5);
        let mut unknown = 0;
        for (n, line) in text.lines().enumerate() {
            for w in line.split_whitespace() {
                let id = match (self.id(w), unk) {
                    (Some(id), _) => id,
                    (None, Some(unk)) => {
                        unknown += 1;
                        unk
                    }
                    (None, None) => {
                        return Err(DataError::OutOfVocabulary {
                            path: path.to_path_buf(),
                            line: n + 1,
                            word: w.to_string(),
                        })
                    }
                };
                out.push(id);
            }
            out.push(eos);
        }
        Ok((out, unknown))
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

/// Vocabulary order: higher count first, ties alphabetically.
fn most_frequent_first(a: &(&str, usize), b: &(&str, usize)) -> std::cmp::Ordering {
    b.1.cmp(&a.1).then(a.0.cmp(b.0))
}

/// How often each word of `text` occurs, with an `<eos>` per line.
fn word_counts(text: &str) -> HashMap<&str, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        for w in line.split_whitespace() {
            *counts.entry(w).or_default() += 1;
        }
        *counts.entry(EOS).or_default() += 1;
    }
    counts
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
    fn with_nothing_cut_the_limited_vocabulary_is_the_plain_one() {
        let text = "the cat <unk> sat\n the mat <unk>\n";
        assert_eq!(
            Vocab::build_limited(text, None, 1, "<unk>"),
            Vocab::build(text)
        );
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
