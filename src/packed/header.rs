//! The packed file's header: what it says (the model's sizes, the
//! vocabulary, one entry per parameter) and the checks it must pass before
//! anything is read or allocated from it.

use serde::{Deserialize, Serialize};

use crate::model::ModelDims;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) vocab: usize,
    pub(super) embed: usize,
    pub(super) hidden: usize,
    pub(super) layers: usize,
    /// The decoder is the embedding matrix, stored once; absent = false,
    /// so untied files read as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) tied: bool,
    pub(super) words: Vec<String>,
    pub(super) params: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// Bits per weight; none for a dense parameter.
    pub(super) bits: Option<usize>,
    /// "bitmap" or "indices"; none when nothing is pruned.
    pub(super) mask: Option<String>,
    pub(super) kept: usize,
    /// Bytes of its section.
    pub(super) bytes: u64,
}

/// Checks a header against the model its sizes describe and against the
/// `body` bytes that follow it, so nothing is allocated from a size the file
/// does not back.
pub(super) fn check_header(h: &Header, body: u64) -> Result<(), String> {
    if !(1..=16).contains(&h.layers) || h.vocab == 0 || h.embed == 0 || h.hidden == 0 {
        return Err(format!(
            "header: {} layers of {} units, embedding {}, vocabulary {} is not a model",
            h.layers, h.hidden, h.embed, h.vocab
        ));
    }
    if h.words.len() != h.vocab {
        return Err(format!(
            "header: a vocabulary of {} words, but {} are listed",
            h.vocab,
            h.words.len()
        ));
    }
    // The weights are expanded to one byte each (codes) plus their mask and
    // the dense values: refuse what cannot fit before trying.
    let dims = ModelDims {
        vocab: h.vocab,
        embed: h.embed,
        hidden: h.hidden,
        layers: h.layers,
        tied: h.tied,
    };
    let weights = dims
        .checked_parameter_count()
        .filter(|&n| n <= 1 << 40)
        .ok_or_else(|| {
            format!(
                "header: {} layers of {} units with a vocabulary of {} is larger than any model",
                h.layers, h.hidden, h.vocab
            )
        })?;
    let needed = weights as u64 * 6;
    if let Some(available) = crate::store::manifest::available_memory() {
        if needed > available {
            return Err(format!(
                "header: a model of about {weights} weights needs about {needed} bytes to load, more than the {available} available"
            ));
        }
    }
    let expected = dims.params();
    if h.params.len() != expected.len() {
        return Err(format!(
            "header: {} parameters, but a {}-layer model has {}",
            h.params.len(),
            h.layers,
            expected.len()
        ));
    }
    let mut total = 0u64;
    for (e, want) in h.params.iter().zip(&expected) {
        if e.name != want.name || e.rows != want.rows || e.cols != want.cols {
            return Err(format!(
                "header: parameter {} is {}×{}, where the model has {} of {}×{}",
                e.name, e.rows, e.cols, want.name, want.rows, want.cols
            ));
        }
        if e.bits.is_some() && !want.is_matrix {
            return Err(format!(
                "header: {} is a bias and cannot be quantized",
                e.name
            ));
        }
        let n = e.rows * e.cols;
        if e.kept > n {
            return Err(format!(
                "header: {} keeps {} of {n} weights",
                e.name, e.kept
            ));
        }
        let payload = match e.bits {
            Some(k) if (1..=4).contains(&k) => (e.kept * k).div_ceil(8) + e.rows * k * 4,
            Some(k) => return Err(format!("header: {} has {k} bits", e.name)),
            None => e.kept * 4,
        };
        let mask = match e.mask.as_deref() {
            None if e.kept == n => 0,
            None => return Err(format!("header: {} is pruned but has no mask", e.name)),
            Some("bitmap") => n.div_ceil(8),
            Some("indices") => e.rows * 4 + e.kept * 2,
            Some(other) => return Err(format!("header: {}: unknown mask kind {other:?}", e.name)),
        };
        if e.bytes != (payload + mask) as u64 {
            return Err(format!(
                "header: {} says its section is {} bytes; its sizes make it {}",
                e.name,
                e.bytes,
                payload + mask
            ));
        }
        total += e.bytes;
    }
    if total > body {
        return Err(format!(
            "truncated: the header describes {total} bytes of sections, the file holds {body}"
        ));
    }
    if total < body {
        return Err(format!("{} bytes after the last section", body - total));
    }
    Ok(())
}
