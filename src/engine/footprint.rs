//! What an experiment will need before anything is allocated: its parameter
//! count and an estimate of the peak memory of training and of evaluation,
//! from the sizes alone (the corpus is not read; a text corpus's sizes are
//! guessed from its files' lengths). All arithmetic is done in
//! u128 and saturates, so no size a file can hold overflows here.
//!
//! The estimate is calibrated against measured peak resident memory and
//! errs a little high: `iq-tui bench --sizes 2x650` (vocabulary 10k, batch
//! 20, BPTT 35) peaked at 242 MB against an estimate of 303 MB, 2×200 at BPTT
//! 20 at 68 MB against 95 MB.

use crate::data::text::TextSpec;
use crate::experiment::{DataSource, Experiment};
use crate::model::ModelDims;

/// PTB's vocabulary and token counts (docs/method.md §7).
const PTB_VOCAB: u128 = 10_000;
const PTB_TOKENS: u128 = 929_589 + 73_760 + 82_430;
/// WikiText-2's vocabulary and tokens per split as its paper gives them
/// (Merity et al. 2016, table 1); only an estimate's input, not checked here.
const WIKITEXT2_VOCAB: u128 = 33_278;
const WIKITEXT2_TOKENS: u128 = 2_088_628 + 217_646 + 245_569;
/// The program itself, its threads and allocator arenas.
const BASE_BYTES: u128 = 16 << 20;

/// Sizes an experiment implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub parameters: u64,
    /// Estimated peak resident memory while training, in bytes.
    pub train_bytes: u64,
    /// Estimated peak resident memory while evaluating, in bytes.
    pub eval_bytes: u64,
}

/// A text corpus's vocabulary and token count, guessed from the lengths of
/// its files: a token per 5 bytes, and (without `max_vocab`) 30·√tokens
/// words, Heaps' law fitted loosely above PTB and WikiText (10k words for
/// 1.1M tokens, 33k for 2.4M); 0 where the files cannot be found.
fn text_sizes(spec: &TextSpec) -> (u128, u128) {
    let bytes: u64 = crate::data::text::paths(spec)
        .map(|paths| {
            paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let tokens = (bytes / 5) as u128;
    let vocab = match spec.max_vocab {
        Some(v) => v as u128,
        None => ((30.0 * (tokens as f64).sqrt()) as u128).min(tokens),
    };
    (vocab, tokens)
}

impl Footprint {
    pub fn of(e: &Experiment) -> Self {
        let (vocab, tokens) = match &e.data {
            DataSource::Ptb { .. } => (PTB_VOCAB, PTB_TOKENS),
            DataSource::WikiText2 { .. } => (WIKITEXT2_VOCAB, WIKITEXT2_TOKENS),
            DataSource::Text { .. } => text_sizes(&TextSpec::of(&e.data).expect("a Text source")),
            DataSource::Synthetic {
                vocab,
                train_tokens,
                valid_tokens,
                test_tokens,
            } => (
                *vocab as u128,
                (*train_tokens as u128)
                    .saturating_add(*valid_tokens as u128)
                    .saturating_add(*test_tokens as u128),
            ),
        };
        let (layers, hidden, embed) = (
            e.model.layers as u128,
            e.model.hidden as u128,
            e.model.embed_size() as u128,
        );
        let dims = ModelDims {
            vocab: usize::try_from(vocab).unwrap_or(usize::MAX),
            embed: e.model.embed_size(),
            hidden: e.model.hidden,
            layers: e.model.layers,
            tied: e.model.tied,
        };
        let parameters = dims
            .checked_parameter_count()
            .map_or(u128::MAX, |n| n as u128);
        // Activations of one segment of `rows` = streams × BPTT positions: the
        // N×V softmax buffer (and its gradient in place), the LSTM's gates,
        // cells and outputs per layer, the embedded inputs.
        let activations = |rows: u128, taped: bool| {
            let (softmax, per_layer, inputs) = if taped { (3, 12, 2) } else { (2, 8, 1) };
            rows.saturating_mul(vocab)
                .saturating_mul(softmax)
                .saturating_div(2)
                .saturating_add(
                    rows.saturating_mul(layers)
                        .saturating_mul(hidden)
                        .saturating_mul(per_layer),
                )
                .saturating_add(rows.saturating_mul(embed).saturating_mul(inputs))
        };
        let train_rows = (e.training.batch_size as u128).saturating_mul(e.training.bptt as u128);
        let eval_rows = (e.eval.batch_size as u128).saturating_mul(e.training.bptt as u128);
        let floats = |n: u128| n.saturating_mul(4);
        let corpus = tokens.saturating_mul(4);
        // Weights, gradients and the update's temporaries: about 2.5 copies.
        let train = floats(
            parameters
                .saturating_mul(5)
                .saturating_div(2)
                .saturating_add(activations(train_rows, true)),
        )
        .saturating_add(corpus)
        .saturating_add(BASE_BYTES);
        let eval = floats(parameters.saturating_add(activations(eval_rows, false)))
            .saturating_add(corpus)
            .saturating_add(BASE_BYTES);
        let clamp = |x: u128| u64::try_from(x).unwrap_or(u64::MAX);
        Self {
            parameters: clamp(parameters),
            train_bytes: clamp(train),
            eval_bytes: clamp(eval),
        }
    }

    /// The larger of the two peaks.
    pub fn peak_bytes(&self) -> u64 {
        self.train_bytes.max(self.eval_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(text: &str) -> Experiment {
        crate::experiment::parse(std::path::Path::new("t.ron"), text, &[]).unwrap()
    }

    #[test]
    fn the_parameter_count_is_the_model_s() {
        let e = experiment(
            "Experiment(name: \"x\", data: Synthetic(vocab: 50), model: (layers: 2, hidden: 16, embed: Some(8)))",
        );
        let dims = ModelDims {
            vocab: 50,
            embed: 8,
            hidden: 16,
            layers: 2,
            tied: false,
        };
        assert_eq!(Footprint::of(&e).parameters, dims.parameter_count() as u64);
    }

    #[test]
    fn the_estimate_grows_with_the_sizes_and_never_overflows() {
        let small = Footprint::of(&experiment("Experiment(name: \"x\", data: Ptb())"));
        let big = Footprint::of(&experiment(
            "Experiment(name: \"x\", data: Ptb(), model: (layers: 2, hidden: 650))",
        ));
        assert!(big.train_bytes > small.train_bytes && big.eval_bytes > small.eval_bytes);
        // ptb-small: 2×200, batch 20, BPTT 20 peaks near 70 MB
        assert!(
            (60 << 20..200 << 20).contains(&small.train_bytes),
            "{small:?}"
        );
        let mut e = experiment("Experiment(name: \"x\", data: Ptb())");
        e.model.hidden = usize::MAX;
        e.training.batch_size = usize::MAX;
        assert_eq!(Footprint::of(&e).train_bytes, u64::MAX);
    }
}
