//! What a run leaves for later besides its records: the full-precision and
//! final weights (`weights/fp`, `weights/final`) and the final model's codes
//! and coefficients, from which `export-model` writes the packed file. A
//! failure here is a warning, not the end of the run: the checkpoints and
//! records still hold everything.

use super::compression::Target;
use super::Engine;
use crate::data::Corpus;
use crate::model::LstmLm;
use crate::record::{Event, LogLevel};
use crate::store::checkpoint::NamedTensor;
use crate::store::npy::Matrix;
use crate::store::weights::{self, Manifest, Weights};

impl Engine<'_, '_> {
    pub(super) fn save_weights(&mut self, which: &str) {
        if let Some(dir) = &self.context.weights_dir {
            let dir = dir.join(which);
            match weights::save(&dir, &weights_of(&self.trainer.model, self.corpus)) {
                Ok(()) => self
                    .out
                    .log(format!("saved {which} weights to {}", dir.display())),
                Err(e) => self.out.emit(Event::Log {
                    level: LogLevel::Warn,
                    message: format!("could not save {which} weights: {e}"),
                }),
            }
        }
    }

    /// Saves the final model's codes and coefficients (the warm start holds
    /// them after the final pass) beside its weights, for `export-model`.
    pub(super) fn save_codes(&mut self, targets: &[Target]) {
        let Some(dir) = &self.context.weights_dir else {
            return;
        };
        let params = self.trainer.model.params();
        let mut tensors = Vec::new();
        let mut matrices = Vec::new();
        for t in targets {
            let (Some(q), Some(p)) = (self.trainer.warm.get(&t.index), params.get(t.index)) else {
                continue;
            };
            matrices.push(
                serde_json::json!({"name": p.name, "bits": q.bits, "method": t.method.label()}),
            );
            tensors.push(NamedTensor::f32(
                format!("{}.alphas", p.name),
                vec![q.rows, q.bits],
                q.alphas.clone(),
            ));
            tensors.push(NamedTensor::u8(
                format!("{}.codes", p.name),
                vec![q.rows, q.cols],
                q.codes.clone(),
            ));
        }
        for (i, p) in params.iter().enumerate() {
            if let Some(m) = self.trainer.model.mask(i) {
                tensors.push(NamedTensor::u8(
                    format!("{}.mask", p.name),
                    vec![p.rows, p.cols],
                    m.iter().map(|&k| k as u8).collect(),
                ));
            }
        }
        let state = serde_json::json!({ "matrices": matrices }).to_string();
        let path = dir.join("final").join(weights::CODES_FILE);
        match weights::save_codes(&path, state, tensors) {
            Ok(()) => self
                .out
                .log(format!("saved the final codes to {}", path.display())),
            Err(e) => self.out.emit(Event::Log {
                level: LogLevel::Warn,
                message: format!("could not save the final codes: {e}"),
            }),
        }
    }
}

fn weights_of(model: &LstmLm<f32>, corpus: &Corpus) -> Weights {
    let d = model.dims();
    let params = model.params();
    Weights {
        manifest: Manifest {
            vocab: d.vocab,
            embed: d.embed,
            hidden: d.hidden,
            layers: d.layers,
            tied: d.tied,
            params: params
                .iter()
                .map(|p| (p.name.clone(), p.rows, p.cols))
                .collect(),
        },
        vocab: corpus.vocab.words().to_vec(),
        params: params
            .iter()
            .enumerate()
            .map(|(i, p)| Matrix {
                rows: p.rows,
                cols: p.cols,
                values: model.read_param(i),
            })
            .collect(),
    }
}
