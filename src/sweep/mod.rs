//! Sweeps: a grid of experiments from one file (`file.rs`), expanded into
//! cells (`expand.rs`), planned so that shared pre-training runs once
//! (`plan.rs`), and kept in a sweep directory whose `sweep.json` lists every
//! unit and its run directory (`state.rs`). Running the units is the
//! command line's; every unit is an ordinary run directory.

pub mod expand;
pub mod file;
pub mod plan;
pub mod state;

use std::path::Path;

pub use expand::{describe, CellSpec};
pub use file::{is_sweep, SweepFile};
pub use plan::{Plan, Unit};
pub use state::{observe, Status, SweepState, UnitEntry};

use crate::experiment::{self, ExperimentError};

/// Reads, expands and checks a sweep file: every cell is a valid experiment.
pub fn load(path: &Path) -> Result<(SweepFile, Vec<CellSpec>), ExperimentError> {
    let sweep = file::load(path)?;
    let cells = expand::expand(&sweep)?;
    Ok((sweep, cells))
}

/// The sweep as RON with its base experiment written out, so that it reads
/// the same wherever the sweep directory goes.
pub fn resolved_ron(sweep: &SweepFile) -> String {
    let axes = |axes: &[file::Axis]| -> String {
        if axes.is_empty() {
            return "{}".into();
        }
        let lines: Vec<String> = axes
            .iter()
            .map(|a| {
                if a.labelled {
                    let pairs: Vec<String> = a
                        .labels
                        .iter()
                        .zip(&a.values)
                        .map(|(l, v)| format!("{l:?}: {v}"))
                        .collect();
                    format!("        {:?}: {{{}}},", a.path, pairs.join(", "))
                } else {
                    format!("        {:?}: [{}],", a.path, a.values.join(", "))
                }
            })
            .collect();
        format!("{{\n{}\n    }}", lines.join("\n"))
    };
    let base = experiment::to_ron(&sweep.base).replace('\n', "\n    ");
    let seeds: Vec<String> = sweep.seeds.iter().map(u64::to_string).collect();
    format!(
        "Sweep(\n    name: {:?},\n    base: {base},\n    grid: {},\n    zip: {},\n    seeds: [{}],\n)\n",
        sweep.name,
        axes(&sweep.grid),
        axes(&sweep.zip),
        seeds.join(", ")
    )
}

/// The state a new sweep directory starts with.
pub fn initial_state(
    sweep: &SweepFile,
    plan: &Plan,
    cells: &[CellSpec],
    threads: usize,
) -> SweepState {
    let entry = |u: &Unit, values: Vec<(String, String)>| UnitEntry {
        name: u.name.clone(),
        dir: u.dir.clone(),
        experiment: Path::new("experiments").join(format!("{}.ron", u.name)),
        values,
        after: u.after,
        status: Status::Pending,
        error: None,
    };
    SweepState {
        name: sweep.name.clone(),
        source: sweep.path.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        threads,
        axes: sweep
            .grid
            .iter()
            .chain(&sweep.zip)
            .map(|a| a.path.clone())
            .chain((!sweep.seeds.is_empty()).then(|| "seed".to_string()))
            .collect(),
        pretrains: plan
            .pretrains
            .iter()
            .map(|u| entry(u, Vec::new()))
            .collect(),
        cells: plan
            .cells
            .iter()
            .zip(cells)
            .map(|(u, c)| entry(u, c.values.clone()))
            .collect(),
    }
}
