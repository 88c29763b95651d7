//! A deterministic synthetic corpus with structure an LSTM can learn.
//!
//! Sentences of 3–16 words. Each word has four possible successors with
//! probabilities 0.55 / 0.25 / 0.12 / 0.08; which successor gets which
//! probability depends on the word two steps back, so a model that remembers
//! more than one word beats a bigram model. The entropy is about 1.2 nats per
//! word, so a good model reaches a perplexity near 3–4 whatever the
//! vocabulary size: far below it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Corpus, Vocab, EOS};

const SUCCESSOR_PROBS: [f64; 4] = [0.55, 0.25, 0.12, 0.08];

/// `sizes` are the token counts of train, valid and test.
pub fn synthetic_corpus(vocab_size: usize, sizes: [usize; 3], seed: u64) -> Corpus {
    assert!(
        vocab_size >= 4,
        "the synthetic corpus needs at least 4 words"
    );
    let words: Vec<String> = std::iter::once(EOS.to_string())
        .chain((1..vocab_size).map(|i| format!("w{i}")))
        .collect();
    let vocab = Vocab::from_words(words);
    let n_words = (vocab_size - 1) as u32; // ids 1..=n_words are words, 0 is <eos>

    // The grammar is fixed by the seed; the three splits are independent draws.
    let mut grammar_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_0FC0_A9A9);
    let successors: Vec<[u32; 4]> = (0..=n_words)
        .map(|_| std::array::from_fn(|_| 1 + grammar_rng.gen_range(0..n_words)))
        .collect();

    let split = |n: usize, stream: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(stream));
        let mut out = Vec::with_capacity(n);
        let (mut prev2, mut prev1) = (0u32, 0u32);
        let mut length = 0;
        let mut target_len = rng.gen_range(3..=16);
        while out.len() < n {
            let next = if length >= target_len {
                length = 0;
                target_len = rng.gen_range(3..=16);
                0
            } else {
                length += 1;
                let u: f64 = rng.gen();
                let mut rank = 0;
                let mut acc = SUCCESSOR_PROBS[0];
                while u > acc && rank < 3 {
                    rank += 1;
                    acc += SUCCESSOR_PROBS[rank];
                }
                // the word two back rotates which successor is most likely
                successors[prev1 as usize][(rank + prev2 as usize) % 4]
            };
            out.push(next);
            prev2 = prev1;
            prev1 = next;
        }
        out
    };
    let train = split(sizes[0], 1);
    let valid = split(sizes[1], 2);
    let test = split(sizes[2], 3);
    Corpus {
        vocab,
        train,
        valid,
        test,
        origin: format!("synthetic (vocab {vocab_size}, seed {seed})"),
        unknown: [0; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_corpus_other_seed_other_corpus() {
        let a = synthetic_corpus(50, [1000, 100, 100], 3);
        let b = synthetic_corpus(50, [1000, 100, 100], 3);
        let c = synthetic_corpus(50, [1000, 100, 100], 4);
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, c.train);
        assert_eq!(
            (a.train.len(), a.valid.len(), a.test.len()),
            (1000, 100, 100)
        );
        assert!(a.train.iter().all(|&t| (t as usize) < 50));
    }

    #[test]
    fn has_structure_a_bigram_count_already_exploits() {
        // A bigram model estimated on train must have far lower perplexity on
        // valid than the uniform vocabulary: the structure is real.
        let c = synthetic_corpus(100, [50_000, 5_000, 10], 1);
        let v = c.vocab.len();
        let mut counts = vec![1.0f64; v * v]; // add-one smoothing
        for w in c.train.windows(2) {
            counts[w[0] as usize * v + w[1] as usize] += 1.0;
        }
        let mut nll = 0.0;
        for w in c.valid.windows(2) {
            let row = &counts[w[0] as usize * v..][..v];
            nll -= (row[w[1] as usize] / row.iter().sum::<f64>()).ln();
        }
        let ppl = (nll / (c.valid.len() - 1) as f64).exp();
        assert!(
            ppl < 12.0,
            "bigram perplexity {ppl} on a 100-word vocabulary"
        );
    }
}
