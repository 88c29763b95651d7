//! PyTorch's `word_language_model` state dict, both ways: a model trained
//! there (`safetensors.torch.save_file(model.state_dict(), path)`) is a
//! starting point here, and a run's final model goes back as one that
//! `model.load_state_dict(safetensors.torch.load_file(path))` loads.
//!
//! ```text
//! encoder.weight        vocab × embed        iq-tui: embedding
//! rnn.weight_ih_l{k}    4·hidden × input     lstm.{k}.w_ih
//! rnn.weight_hh_l{k}    4·hidden × hidden    lstm.{k}.w_hh
//! rnn.bias_ih_l{k}      4·hidden             lstm.{k}.bias = bias_ih + bias_hh
//! rnn.bias_hh_l{k}      4·hidden
//! decoder.weight        vocab × hidden       decoder
//! decoder.bias          vocab                decoder.bias
//! ```
//!
//! Tied embeddings (`--tied`): `decoder.weight` is `encoder.weight`, one
//! matrix here (`model.tied: true`); an import reads a state dict with both
//! names equal or with either one alone, an export writes both.
//!
//! Both order the gates i, f, g, o and keep rows as output units, so the
//! matrices go across unchanged. iq-tui keeps one bias per layer: an import
//! adds PyTorch's two, an export writes it as `bias_ih` and zeros as
//! `bias_hh`, which gives the same gates. The vocabulary is `vocab.txt`
//! beside the file, one token per line in index order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::npy::Matrix;
use super::weights::{Manifest, Weights, WeightsError};

/// The vocabulary file beside a state dict.
pub fn vocab_path(state_dict: &Path) -> PathBuf {
    state_dict.with_file_name("vocab.txt")
}

/// Whether `pretrained` names a PyTorch state dict rather than an iq-tui
/// run or weights directory.
pub fn is_state_dict(pretrained: &Path) -> bool {
    pretrained.extension().is_some_and(|e| e == "safetensors")
}

/// Reads `vocab.txt`: one token per line, in index order.
pub fn read_vocab(path: &Path) -> Result<Vec<String>, WeightsError> {
    let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let words: Vec<String> = text.lines().map(str::to_string).collect();
    let bad = |message: String| WeightsError::Bad {
        path: path.to_path_buf(),
        message,
    };
    if words.is_empty() {
        return Err(bad("no tokens".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for (n, w) in words.iter().enumerate() {
        if w.is_empty() || w.chars().any(char::is_whitespace) {
            return Err(bad(format!("line {}: {w:?} is not a token", n + 1)));
        }
        if !seen.insert(w.as_str()) {
            return Err(bad(format!("line {}: {w:?} appears twice", n + 1)));
        }
    }
    Ok(words)
}

/// The weights of a `word_language_model` LSTM state dict and its vocabulary.
pub fn import(path: &Path) -> Result<Weights, WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| WeightsError::Bad {
        path: path.to_path_buf(),
        message,
    };
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let mut left: BTreeMap<String, TensorView> = tensors.tensors().into_iter().collect();
    let mut take = |name: &str, rank: usize| -> Result<(Vec<usize>, Vec<f32>), WeightsError> {
        let t = left
            .remove(name)
            .ok_or_else(|| bad(format!("no tensor {name}")))?;
        if t.shape().len() != rank {
            return Err(bad(format!(
                "{name} has shape {:?}; a {rank}-D tensor expected",
                t.shape()
            )));
        }
        let values = match t.dtype() {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect::<Vec<f32>>(),
            other => {
                return Err(bad(format!(
                    "{name} is {other:?}; iq-tui reads float32 (model.float() before saving)"
                )))
            }
        };
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("{name}: entry {i} is {}", values[i])));
        }
        Ok((t.shape().to_vec(), values))
    };
    let mut optional = |name: &str| {
        if tensors_has(&tensors, name) {
            take(name, 2).map(Some)
        } else {
            Ok(None)
        }
    };
    let (encoder, decoder) = (optional("encoder.weight")?, optional("decoder.weight")?);
    // Tied (`--tied`), the state dict holds the one matrix under both names,
    // or under one as `safetensors.torch.save_model` keeps it.
    let (tied, (enc_shape, embedding), decoder) = match (encoder, decoder) {
        (Some(e), Some(d)) if e == d => (true, e, None),
        (Some(e), Some(d)) => (false, e, Some(d)),
        (Some(e), None) | (None, Some(e)) => (true, e, None),
        (None, None) => return Err(bad("no tensor encoder.weight".into())),
    };
    let (vocab, embed) = (enc_shape[0], enc_shape[1]);
    let mut layers = Vec::new();
    while layers.len() < 64 && tensors_has(&tensors, &format!("rnn.weight_ih_l{}", layers.len())) {
        let k = layers.len();
        let (ih_shape, w_ih) = take(&format!("rnn.weight_ih_l{k}"), 2)?;
        let (hh_shape, w_hh) = take(&format!("rnn.weight_hh_l{k}"), 2)?;
        let (bih_shape, b_ih) = take(&format!("rnn.bias_ih_l{k}"), 1)?;
        let (bhh_shape, b_hh) = take(&format!("rnn.bias_hh_l{k}"), 1)?;
        layers.push((
            ih_shape, w_ih, hh_shape, w_hh, bih_shape, b_ih, bhh_shape, b_hh,
        ));
    }
    if layers.is_empty() {
        return Err(bad(
            "no tensor rnn.weight_ih_l0: not an LSTM of word_language_model".into(),
        ));
    }
    let hidden = layers[0].2[1];
    let (decb_shape, decoder_bias) = take("decoder.bias", 1)?;
    if let Some(extra) = left.keys().next() {
        return Err(bad(format!(
            "tensor {extra} is not part of word_language_model's LSTM (other models are not read)"
        )));
    }
    // only encoder.weight alone can be of another width than the decoder
    if tied && embed != hidden {
        return Err(bad(format!(
            "no tensor decoder.weight: read as a tied model, whose embedding ({embed} wide) must be as wide as its hidden state ({hidden})"
        )));
    }
    let want = |name: &str, got: &[usize], expected: &[usize]| {
        if got == expected {
            Ok(())
        } else {
            Err(bad(format!(
                "{name} has shape {got:?}; {expected:?} expected"
            )))
        }
    };
    let g4 = 4 * hidden;
    let mut params = vec![Matrix {
        rows: vocab,
        cols: embed,
        values: embedding,
    }];
    for (k, (ih_shape, w_ih, hh_shape, w_hh, bih_shape, b_ih, bhh_shape, b_hh)) in
        layers.iter().enumerate()
    {
        let input = if k == 0 { embed } else { hidden };
        want(&format!("rnn.weight_ih_l{k}"), ih_shape, &[g4, input])?;
        want(&format!("rnn.weight_hh_l{k}"), hh_shape, &[g4, hidden])?;
        want(&format!("rnn.bias_ih_l{k}"), bih_shape, &[g4])?;
        want(&format!("rnn.bias_hh_l{k}"), bhh_shape, &[g4])?;
        params.push(Matrix {
            rows: g4,
            cols: input,
            values: w_ih.clone(),
        });
        params.push(Matrix {
            rows: g4,
            cols: hidden,
            values: w_hh.clone(),
        });
        params.push(Matrix {
            rows: 1,
            cols: g4,
            values: b_ih.iter().zip(b_hh).map(|(a, b)| a + b).collect(),
        });
    }
    want("decoder.bias", &decb_shape, &[vocab])?;
    if let Some((dec_shape, decoder)) = decoder {
        want("decoder.weight", &dec_shape, &[vocab, hidden])?;
        params.push(Matrix {
            rows: vocab,
            cols: hidden,
            values: decoder,
        });
    }
    params.push(Matrix {
        rows: 1,
        cols: vocab,
        values: decoder_bias,
    });
    let vocab_file = vocab_path(path);
    let words = read_vocab(&vocab_file)?;
    if words.len() != vocab {
        return Err(WeightsError::Bad {
            path: vocab_file,
            message: format!(
                "{} tokens; encoder.weight in {} has {vocab} rows",
                words.len(),
                path.display()
            ),
        });
    }
    let dims = crate::model::ModelDims {
        vocab,
        embed,
        hidden,
        layers: layers.len(),
        tied,
    };
    let manifest = Manifest {
        vocab,
        embed,
        hidden,
        layers: layers.len(),
        tied,
        params: dims
            .params()
            .into_iter()
            .map(|p| (p.name, p.rows, p.cols))
            .collect(),
    };
    debug_assert!(manifest
        .params
        .iter()
        .zip(&params)
        .all(|((_, r, c), m)| (*r, *c) == (m.rows, m.cols)));
    Ok(Weights {
        manifest,
        vocab: words,
        params,
    })
}

fn tensors_has(tensors: &SafeTensors, name: &str) -> bool {
    tensors.tensor(name).is_ok()
}

/// Writes `weights` as a `word_language_model` state dict at `path` and its
/// vocabulary as `vocab.txt` beside it, each atomically.
pub fn export(weights: &Weights, path: &Path) -> Result<(), WeightsError> {
    let m = &weights.manifest;
    let mut named: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let param = |i: usize| &weights.params[i];
    named.push((
        "encoder.weight".into(),
        vec![m.vocab, m.embed],
        param(0).values.clone(),
    ));
    for k in 0..m.layers {
        let (w_ih, w_hh, bias) = (param(1 + 3 * k), param(2 + 3 * k), param(3 + 3 * k));
        named.push((
            format!("rnn.weight_ih_l{k}"),
            vec![w_ih.rows, w_ih.cols],
            w_ih.values.clone(),
        ));
        named.push((
            format!("rnn.weight_hh_l{k}"),
            vec![w_hh.rows, w_hh.cols],
            w_hh.values.clone(),
        ));
        named.push((
            format!("rnn.bias_ih_l{k}"),
            vec![bias.cols],
            bias.values.clone(),
        ));
        named.push((
            format!("rnn.bias_hh_l{k}"),
            vec![bias.cols],
            vec![0.0; bias.cols],
        ));
    }
    // tied, the decoder is the embedding, written under both names as
    // PyTorch's state dict has it
    let (decoder, bias) = if m.tied {
        (param(0), param(1 + 3 * m.layers))
    } else {
        (param(1 + 3 * m.layers), param(2 + 3 * m.layers))
    };
    named.push((
        "decoder.weight".into(),
        vec![decoder.rows, decoder.cols],
        decoder.values.clone(),
    ));
    named.push(("decoder.bias".into(), vec![bias.cols], bias.values.clone()));
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = named
        .into_iter()
        .map(|(name, shape, values)| {
            let data = values.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, shape, data)
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("sizes match");
            (name.clone(), view)
        })
        .collect();
    let file = safetensors::serialize(views, None).expect("valid tensors");
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| WeightsError::Io { path, source }
    };
    crate::atomic::write(path, &file).map_err(io(path))?;
    let mut vocab = weights.vocab.join("\n");
    vocab.push('\n');
    let vocab_file = vocab_path(path);
    crate::atomic::write(&vocab_file, vocab.as_bytes()).map_err(io(&vocab_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model's weights with distinct values everywhere.
    fn weights(layers: usize) -> Weights {
        sized(layers, 3, false)
    }

    fn sized(layers: usize, embed: usize, tied: bool) -> Weights {
        let dims = crate::model::ModelDims {
            vocab: 7,
            embed,
            hidden: 2,
            layers,
            tied,
        };
        let infos = dims.params();
        let params = infos
            .iter()
            .enumerate()
            .map(|(i, p)| Matrix {
                rows: p.rows,
                cols: p.cols,
                values: (0..p.rows * p.cols)
                    .map(|j| (i * 1000 + j) as f32 / 7.0)
                    .collect(),
            })
            .collect();
        Weights {
            manifest: Manifest {
                vocab: 7,
                embed,
                hidden: 2,
                layers,
                tied,
                params: infos
                    .into_iter()
                    .map(|p| (p.name, p.rows, p.cols))
                    .collect(),
            },
            vocab: ["<eos>", "a", "b", "c", "d", "e", "<unk>"]
                .map(String::from)
                .to_vec(),
            params,
        }
    }

    /// Writes a state dict the way PyTorch names and lays it out.
    fn write_state_dict(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)], vocab: &[&str]) {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, s, v)| {
                (
                    n.to_string(),
                    s.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(n, s, d)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
                )
            })
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
        std::fs::write(vocab_path(path), vocab.join("\n") + "\n").unwrap();
    }

    #[test]
    fn export_then_import_is_the_identity_and_uses_pytorch_names() {
        let dir = tempfile::tempdir().unwrap();
        for layers in [1, 2] {
            let w = weights(layers);
            let path = dir.path().join(format!("m{layers}.safetensors"));
            export(&w, &path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let mut names: Vec<String> = st.names().iter().map(|s| s.to_string()).collect();
            names.sort();
            let mut want = vec!["decoder.bias", "decoder.weight", "encoder.weight"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
            for k in 0..layers {
                for n in ["bias_hh", "bias_ih", "weight_hh", "weight_ih"] {
                    want.push(format!("rnn.{n}_l{k}"));
                }
            }
            want.sort();
            assert_eq!(names, want);
            assert_eq!(st.tensor("rnn.weight_ih_l0").unwrap().shape(), [8, 3]);
            assert_eq!(st.tensor("rnn.bias_hh_l0").unwrap().shape(), [8]);
            let back = import(&path).unwrap();
            std::fs::remove_file(vocab_path(&path)).unwrap();
            assert_eq!(back, w);
        }
    }

    #[test]
    fn a_tied_model_goes_out_under_both_names_and_comes_back_tied() {
        let dir = tempfile::tempdir().unwrap();
        let w = sized(2, 2, true);
        assert_eq!(w.params.len(), 1 + 3 * 2 + 1);
        let path = dir.path().join("tied.safetensors");
        export(&w, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (enc, dec) = (
            st.tensor("encoder.weight").unwrap(),
            st.tensor("decoder.weight").unwrap(),
        );
        assert_eq!(enc.data(), dec.data());
        assert_eq!(dec.shape(), [7, 2]);
        // the decoder's bias is the last parameter, not the embedding's neighbour
        assert_eq!(
            st.tensor("decoder.bias").unwrap().data(),
            w.params[7]
                .values
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
        );
        assert_eq!(import(&path).unwrap(), w);
    }

    #[test]
    fn the_two_biases_are_added() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let (v, e, h) = (3, 2, 1);
        write_state_dict(
            &path,
            &[
                ("encoder.weight", vec![v, e], vec![0.5; v * e]),
                ("rnn.weight_ih_l0", vec![4 * h, e], vec![0.1; 4 * h * e]),
                ("rnn.weight_hh_l0", vec![4 * h, h], vec![0.2; 4 * h * h]),
                ("rnn.bias_ih_l0", vec![4 * h], vec![1.0, 2.0, 3.0, 4.0]),
                ("rnn.bias_hh_l0", vec![4 * h], vec![0.5, 0.25, 0.0, -1.0]),
                ("decoder.weight", vec![v, h], vec![0.3; v * h]),
                ("decoder.bias", vec![v], vec![0.0; v]),
            ],
            &["<eos>", "x", "y"],
        );
        let w = import(&path).unwrap();
        assert_eq!(w.params[3].values, [1.5, 2.25, 3.0, 3.0]);
        assert_eq!((w.manifest.layers, w.manifest.hidden), (1, 1));
        assert_eq!(w.vocab, ["<eos>", "x", "y"]);
    }

    #[test]
    fn missing_extra_misshapen_tensors_and_a_wrong_vocabulary_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let (v, e, h) = (3, 2, 1);
        let full = || {
            vec![
                ("encoder.weight", vec![v, e], vec![0.5; v * e]),
                ("rnn.weight_ih_l0", vec![4 * h, e], vec![0.1; 4 * h * e]),
                ("rnn.weight_hh_l0", vec![4 * h, h], vec![0.2; 4 * h * h]),
                ("rnn.bias_ih_l0", vec![4 * h], vec![0.0; 4 * h]),
                ("rnn.bias_hh_l0", vec![4 * h], vec![0.0; 4 * h]),
                ("decoder.weight", vec![v, h], vec![0.3; v * h]),
                ("decoder.bias", vec![v], vec![0.0; v]),
            ]
        };
        let vocab = ["<eos>", "x", "y"];
        let error = |tensors: &[(&str, Vec<usize>, Vec<f32>)], vocab: &[&str]| {
            write_state_dict(&path, tensors, vocab);
            import(&path).unwrap_err().to_string()
        };
        let mut t = full();
        t.remove(5);
        assert!(error(&t, &vocab).contains("no tensor decoder.weight"));

        let mut t = full();
        t.push(("rnn.weight_ih_l0_reverse", vec![4, 2], vec![0.0; 8]));
        assert!(error(&t, &vocab).contains("rnn.weight_ih_l0_reverse is not part"));
        let mut t = full();
        t[2] = ("rnn.weight_hh_l0", vec![3, 1], vec![0.0; 3]);
        let err = error(&t, &vocab);
        assert!(
            err.contains("rnn.weight_hh_l0 has shape [3, 1]; [4, 1] expected"),
            "{err}"
        );
        let err = error(&full(), &["<eos>", "x"]);
        assert!(
            err.contains("vocab.txt") && err.contains("2 tokens") && err.contains("3 rows"),
            "{err}"
        );
        let err = error(&full(), &["<eos>", "x", "x"]);
        assert!(err.contains("line 3") && err.contains("twice"), "{err}");
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(import(&path)
            .unwrap_err()
            .to_string()
            .contains("not a safetensors file"));
    }
}
