//! The work a sweep does: shared pre-training runs, then its cells.
//!
//! Cells whose experiments agree on everything before pruning and
//! quantization (model, data, training, seed) would train the same
//! full-precision model; that training runs once, as its own run, and each
//! such cell starts from its weights with no pre-training epochs of its own
//! (the `pretrained` mechanism). A cell's compression phases therefore start
//! from a fresh dropout stream rather than the one its pre-training left,
//! which is the only way its numbers can differ from the same experiment run
//! alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::expand::CellSpec;
use crate::experiment::{self, Experiment, OutputConfig};

/// Where the pre-training weights of a unit are, inside its run directory.
const FP_WEIGHTS: &str = "weights/fp";

/// A run the sweep does: a shared pre-training or a cell.
#[derive(Debug, Clone)]
pub struct Unit {
    pub name: String,
    /// Relative to the sweep directory.
    pub dir: PathBuf,
    /// What it runs, `pretrained` already pointing at its pre-training.
    pub experiment: Experiment,
    /// The pre-training (index into `Plan::pretrains`) it waits for.
    pub after: Option<usize>,
}

/// All of a sweep's work.
#[derive(Debug, Clone)]
pub struct Plan {
    pub pretrains: Vec<Unit>,
    pub cells: Vec<Unit>,
}

/// The experiment a cell's pre-training is: the cell without compression.
fn pretraining_of(e: &Experiment) -> Option<Experiment> {
    let compresses = e.pruning.is_some() || e.quantization.is_some();
    if !compresses || e.training.epochs == 0 || e.pretrained.is_some() {
        return None;
    }
    let mut p = e.clone();
    p.pruning = None;
    p.quantization = None;
    p.output = OutputConfig::default();
    p.name = String::new();
    Some(p)
}

/// Groups the cells by the pre-training they share. `root` is the sweep
/// directory (absolute, so the cells' `pretrained` paths hold from anywhere).
pub fn plan(sweep_name: &str, cells: &[CellSpec], root: &Path) -> Plan {
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut pretrains: Vec<Unit> = Vec::new();
    let mut units = Vec::new();
    for cell in cells {
        let mut e = cell.experiment.clone();
        let after = pretraining_of(&e).map(|mut p| {
            let key = experiment::to_ron(&p);
            *keys.entry(key).or_insert_with(|| {
                let k = pretrains.len();
                let name = format!("p{k}-seed{}", p.seed);
                p.name = format!("{sweep_name}-{name}");
                pretrains.push(Unit {
                    dir: PathBuf::from("pretrain").join(&name),
                    name,
                    experiment: p,
                    after: None,
                });
                k
            })
        });
        if let Some(k) = after {
            e.pretrained = Some(root.join(&pretrains[k].dir).join(FP_WEIGHTS));
            e.training.epochs = 0;
        }
        units.push(Unit {
            name: cell.name.clone(),
            dir: PathBuf::from("cells").join(&cell.name),
            experiment: e,
            after,
        });
    }
    Plan {
        pretrains,
        cells: units,
    }
}
