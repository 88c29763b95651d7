//! From a sweep file to its cells: every combination of the grid, times
//! every row of the zip, times every seed, each a validated experiment.

use std::collections::BTreeMap;

use super::file::{Axis, SweepFile};
use crate::experiment::{self, Assignment, Experiment, ExperimentError, Problem};

/// One experiment of the sweep.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub index: usize,
    /// Unique within the sweep and usable as a directory name.
    pub name: String,
    /// The varied fields and what their values are called (their labels,
    /// or their RON text on one line), seed last.
    pub values: Vec<(String, String)>,
    pub experiment: Experiment,
}

/// The choice of every axis for each cell, as indices: grid axes first (the
/// first varying slowest), then the zip row, then the seed.
pub fn combinations(grid: &[usize], zip: Option<usize>, seeds: usize) -> Vec<Vec<usize>> {
    let mut lens: Vec<usize> = grid.to_vec();
    lens.extend(zip);
    if seeds > 0 {
        lens.push(seeds);
    }
    let mut out = vec![Vec::new()];
    for &len in &lens {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                (0..len).map(move |i| {
                    let mut c = prefix.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    out
}

/// Every cell, or every problem found in any of them (each named once).
pub fn expand(sweep: &SweepFile) -> Result<Vec<CellSpec>, ExperimentError> {
    let mut problems = shape_problems(sweep);
    // Cells cannot be formed from an empty axis or unequal zip axes; other
    // problems are reported with those of the cells.
    let unformed = sweep
        .grid
        .iter()
        .chain(&sweep.zip)
        .any(|a| a.values.is_empty())
        || sweep
            .zip
            .iter()
            .any(|a| a.values.len() != sweep.zip[0].values.len());
    if unformed {
        return Err(ExperimentError::new(&sweep.path, &sweep.text, problems));
    }
    let reported: Vec<Option<String>> = problems.iter().map(|p| p.field.clone()).collect();
    let zip_len = sweep.zip.first().map(|a| a.values.len());
    let seed_values: Vec<String> = sweep.seeds.iter().map(u64::to_string).collect();
    let seed_axis = Axis {
        path: "seed".into(),
        labels: seed_values.clone(),
        values: seed_values,
        labelled: false,
    };
    let lens: Vec<usize> = sweep.grid.iter().map(|a| a.values.len()).collect();
    let mut cells = Vec::new();
    let mut seen = BTreeMap::new();
    for (index, choice) in combinations(&lens, zip_len, sweep.seeds.len())
        .into_iter()
        .enumerate()
    {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        let mut take = |axis: &Axis, i: usize| {
            values.push((axis.path.clone(), axis.values[i].clone()));
            labels.push((axis.path.clone(), axis.labels[i].clone()));
        };
        let mut it = choice.iter();
        for axis in &sweep.grid {
            take(axis, *it.next().unwrap());
        }
        if zip_len.is_some() {
            let row = *it.next().unwrap();
            for axis in &sweep.zip {
                take(axis, row);
            }
        }
        if !sweep.seeds.is_empty() {
            take(&seed_axis, *it.next().unwrap());
        }
        match cell_experiment(sweep, index, &values, &labels, &reported) {
            Ok((name, experiment)) => cells.push(CellSpec {
                index,
                name,
                values: labels,
                experiment,
            }),
            Err(found) => {
                for (field, message, p) in found {
                    // The same bad value fails in every cell it is in: once is enough.
                    if !reported.contains(&p.field) && seen.insert((field, message), ()).is_none() {
                        problems.push(p);
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(cells)
    } else {
        Err(ExperimentError::new(&sweep.path, &sweep.text, problems))
    }
}

fn problem(sweep: &SweepFile, path: &str, value: Option<&str>, message: String) -> Problem {
    let at = if path == "seed" && sweep.grid.iter().all(|a| a.path != "seed") {
        experiment_position(sweep, "seeds")
    } else {
        sweep.position(path, value)
    };
    Problem {
        field: Some(path.to_string()),
        message,
        allowed: None,
        position: at,
    }
}

fn experiment_position(sweep: &SweepFile, key: &str) -> Option<(usize, usize)> {
    let at = sweep.text.find(&format!("{key}:"))?;
    Some(super::file::line_col(&sweep.text, at))
}

/// Problems of the axes themselves, before any cell is built.
fn shape_problems(sweep: &SweepFile) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut paths = BTreeMap::new();
    for axis in sweep.grid.iter().chain(&sweep.zip) {
        if axis.values.is_empty() {
            problems.push(problem(
                sweep,
                &axis.path,
                None,
                "the axis has no values".into(),
            ));
        }
        if paths.insert(axis.path.as_str(), ()).is_some() {
            problems.push(problem(
                sweep,
                &axis.path,
                None,
                "the field is varied twice".into(),
            ));
        }
        let mut values = BTreeMap::new();
        for v in &axis.values {
            if values.insert(v.as_str(), ()).is_some() {
                problems.push(problem(
                    sweep,
                    &axis.path,
                    Some(v),
                    format!("the value `{v}` is listed twice"),
                ));
            }
        }
        if let Err(m) = experiment::check_path(&sweep.base, &axis.path) {
            // A field inside an Option the sweep sets elsewhere is found per cell.
            let set_above = paths
                .keys()
                .any(|p| axis.path.starts_with(&format!("{p}.")));
            if !set_above && !m.contains("not inside a structure") {
                problems.push(problem(sweep, &axis.path, None, m));
            }
        }
    }
    if !sweep.seeds.is_empty() && paths.contains_key("seed") {
        problems.push(problem(
            sweep,
            "seed",
            None,
            "the seed is varied by both `seeds` and an axis; keep one".into(),
        ));
    }
    let mut seeds = sweep.seeds.clone();
    seeds.sort_unstable();
    if seeds.windows(2).any(|w| w[0] == w[1]) {
        problems.push(problem(
            sweep,
            "seed",
            None,
            "a seed is listed twice".into(),
        ));
    }
    if let Some(first) = sweep.zip.first() {
        for axis in &sweep.zip[1..] {
            if axis.values.len() != first.values.len() {
                problems.push(problem(
                    sweep,
                    &axis.path,
                    None,
                    format!(
                        "zip axes vary together and need as many values each: `{}` has {}, `{}` has {}",
                        first.path,
                        first.values.len(),
                        axis.path,
                        axis.values.len()
                    ),
                ));
            }
        }
    }
    let name_ok = !sweep.name.is_empty()
        && sweep
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !name_ok {
        problems.push(Problem {
            field: Some("name".into()),
            message: format!("{:?} cannot be used in a directory name", sweep.name),
            allowed: Some("a non-empty name of letters, digits, '.', '_' and '-'".into()),
            position: experiment_position(sweep, "name"),
        });
    }
    problems
}

/// A problem with what makes it the same in every cell: its field and message.
type Keyed = (Option<String>, String, Problem);

fn cell_experiment(
    sweep: &SweepFile,
    index: usize,
    values: &[(String, String)],
    labels: &[(String, String)],
    reported: &[Option<String>],
) -> Result<(String, Experiment), Vec<Keyed>> {
    let keyed = |p: Problem| (p.field.clone(), p.message.clone(), p);
    let mut assignments = Vec::new();
    // An axis already found wrong is left out, so the others are still checked.
    for (path, text) in values
        .iter()
        .filter(|(p, _)| !reported.contains(&Some(p.clone())))
    {
        let value = experiment::ron_to_json(text).map_err(|m| {
            vec![keyed(problem(
                sweep,
                path,
                Some(text),
                format!("value `{text}`: {m}"),
            ))]
        })?;
        assignments.push(Assignment {
            path: path.clone(),
            value,
            label: format!("value `{text}`"),
        });
    }
    let mut e = experiment::assign(sweep.base.clone(), &assignments).map_err(|p| {
        let path = p.field.clone().unwrap_or_default();
        let text = values
            .iter()
            .find(|(a, _)| *a == path)
            .map(|(_, t)| t.as_str());
        vec![keyed(problem(sweep, &path, text, p.message))]
    })?;
    let name = cell_name(index, labels);
    e.name = format!("{}-{name}", sweep.name);
    let same = |a: &str, b: &str| {
        let named = |p: &str| -> Vec<String> {
            p.split('.')
                .filter(|k| k.parse::<usize>().is_err())
                .map(String::from)
                .collect()
        };
        let (a, b) = (named(a), named(b));
        a.starts_with(&b) || b.starts_with(&a)
    };
    let found: Vec<Keyed> = experiment::check(&e)
        .into_iter()
        .map(|p| {
            let field = p.field.clone().unwrap_or_default();
            let key = (p.field.clone(), p.message.clone());
            // Name the axis whose value made the field wrong, where one did.
            let problem = match values.iter().find(|(a, _)| same(a, &field)) {
                Some((a, t)) => {
                    let mut q = problem(sweep, a, Some(t), format!("value `{t}`: {}", p.message));
                    q.allowed = p.allowed;
                    q
                }
                None => Problem {
                    message: format!("with {}: {}", describe(labels), p.message),
                    position: None,
                    ..p
                },
            };
            (key.0, key.1, problem)
        })
        .collect();
    if found.is_empty() {
        Ok((name, e))
    } else {
        Err(found)
    }
}

/// `bits=2, rate=0.7, seed=1`: a cell's values, by the last part of each path.
pub fn describe(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(p, v)| format!("{}={v}", short_path(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last name in a path that is not an index: `quantization.groups.0.bits` → `bits`.
pub fn short_path(path: &str) -> &str {
    path.rsplit('.')
        .find(|k| k.parse::<usize>().is_err())
        .unwrap_or(path)
}

/// `c003-bits2-rate0.7-seed1`: the index keeps names unique, the values
/// make them readable; only letters, digits, '.' and '-' reach the disk.
pub fn cell_name(index: usize, values: &[(String, String)]) -> String {
    let mut name = format!("c{index:03}");
    for (path, value) in values {
        let clean: String = value
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .take(16)
            .collect();
        let key: String = short_path(path)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        name.push('-');
        name.push_str(&key);
        name.push_str(&clean);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn every_combination_once(grid in prop::collection::vec(1usize..4, 0..4), zip in prop::option::of(1usize..4), seeds in 0usize..4) {
            let c = combinations(&grid, zip, seeds);
            let expected = grid.iter().product::<usize>() * zip.unwrap_or(1) * seeds.max(1);
            prop_assert_eq!(c.len(), expected);
            let distinct: BTreeSet<_> = c.iter().cloned().collect();
            prop_assert_eq!(distinct.len(), c.len());
            let width = grid.len() + zip.iter().count() + usize::from(seeds > 0);
            let mut lens = grid.clone();
            lens.extend(zip);
            if seeds > 0 { lens.push(seeds); }
            for choice in &c {
                prop_assert_eq!(choice.len(), width);
                for (i, len) in choice.iter().zip(&lens) {
                    prop_assert!(i < len);
                }
            }
        }
    }

    #[test]
    fn names_are_short_and_safe() {
        let v = vec![
            (
                "quantization.groups.0.method".to_string(),
                "Alternating(2)".to_string(),
            ),
            ("pruning".to_string(), "None".to_string()),
            ("seed".to_string(), "3".to_string()),
        ];
        assert_eq!(
            cell_name(7, &v),
            "c007-methodAlternating2-pruningNone-seed3"
        );
        assert_eq!(describe(&v), "method=Alternating(2), pruning=None, seed=3");
    }
}
