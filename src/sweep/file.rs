//! The sweep file: a base experiment and the axes varied over it.
//!
//! Axis values are kept as RON text (`ron::value::RawValue`), not parsed into
//! `ron::Value`, which would lose enum variant names; each is converted only
//! when it is written into an experiment.

use std::fmt;
use std::path::{Path, PathBuf};

use ron::value::RawValue;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::experiment::{self, Experiment, ExperimentError, Problem};

/// What the file says, before expansion.
#[derive(Debug, Deserialize)]
#[serde(rename = "Sweep", deny_unknown_fields)]
struct Raw {
    name: String,
    base: Box<RawValue>,
    #[serde(default)]
    grid: Axes,
    #[serde(default)]
    zip: Axes,
    #[serde(default)]
    seeds: Vec<u64>,
}

/// Axes in the order the file lists them.
#[derive(Debug, Default)]
struct Axes(Vec<(String, Values)>);

/// An axis's values: a list, or a map from a label to each value (for
/// values too long to name a cell by, e.g. a whole pruning configuration).
#[derive(Debug, Default)]
struct Values(Vec<(Option<String>, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a list of values, e.g. [1, 2], or a map from labels to values, e.g. {"none": None, "70%": Some((…))}"#)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Values, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<Box<RawValue>>()? {
                    v.push((None, x));
                }
                Ok(Values(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = map.next_entry::<String, Box<RawValue>>()? {
                    v.push((Some(k), x));
                }
                Ok(Values(v))
            }
        }
        d.deserialize_any(Either)
    }
}

impl<'de> Deserialize<'de> for Axes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Axes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    r#"a map from a field path to its values, e.g. {"training.lr": [0.5, 1.0]}"#,
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Axes, A::Error> {
                let mut axes = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Values>()? {
                    axes.push((k, v));
                }
                Ok(Axes(axes))
            }
        }
        d.deserialize_map(Ordered)
    }
}

/// One varied field and its values, as RON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<String>,
    /// What each value is called in cell names, tables and charts: its
    /// label when the file gives one, else its RON text on one line.
    pub labels: Vec<String>,
    /// Whether the file gave the labels (a map of values).
    pub labelled: bool,
}

/// RON text on one line: runs of white space become one space, none after
/// an opening or before a closing bracket, no trailing commas; string
/// literals are kept as written.
pub fn compact(text: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut space = false;
    for c in text.trim().chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if matches!(c, ')' | ']' | '}') && out.ends_with(',') {
            out.pop();
        } else if space
            && !out.ends_with(['(', '[', '{'])
            && !matches!(c, ')' | ']' | '}' | ',')
            && !out.is_empty()
        {
            out.push(' ');
        }
        space = false;
        if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

/// A parsed sweep file, its base experiment loaded and validated.
#[derive(Debug, Clone)]
pub struct SweepFile {
    pub path: PathBuf,
    pub text: String,
    pub name: String,
    pub base: Experiment,
    /// Every combination of these.
    pub grid: Vec<Axis>,
    /// Varied together: the i-th values of every zip axis make one choice.
    pub zip: Vec<Axis>,
    pub seeds: Vec<u64>,
}

/// Reads a sweep file and its base experiment.
pub fn load(path: &Path) -> Result<SweepFile, ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ExperimentError::single(path, "", Problem::io(format!("cannot read the file: {e}")))
    })?;
    parse(path, &text)
}

/// Whether RON text is a sweep (starts with `Sweep(`) rather than an experiment.
pub fn is_sweep(text: &str) -> bool {
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return rest.starts_with("Sweep") && rest[5..].trim_start().starts_with('(');
        }
    }
}

pub fn parse(path: &Path, text: &str) -> Result<SweepFile, ExperimentError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw: Raw = ron::Options::default()
        .from_str(text)
        .map_err(|e| ExperimentError::single(path, text, Problem::from_ron(&e)))?;
    let base_text = raw.base.get_ron().trim();
    let base = match ron::from_str::<String>(base_text) {
        Ok(relative) => {
            experiment::load(&path.parent().unwrap_or(Path::new(".")).join(relative), &[])?
        }
        Err(_) => {
            // An inline Experiment(...): its errors point into this file.
            let offset = text.find(base_text).unwrap_or(0);
            experiment::parse(path, base_text, &[]).map_err(|mut e| {
                let (line0, col0) = line_col(text, offset);
                for p in &mut e.problems {
                    p.position = p
                        .position
                        .map(|(l, c)| (l + line0 - 1, if l == 1 { c + col0 - 1 } else { c }));
                }
                e
            })?
        }
    };
    let axes = |a: Axes| -> Vec<Axis> {
        a.0.into_iter()
            .map(|(path, values)| Axis {
                path,
                labelled: values.0.iter().any(|(l, _)| l.is_some()),
                labels: values
                    .0
                    .iter()
                    .map(|(l, v)| l.clone().unwrap_or_else(|| compact(v.get_ron())))
                    .collect(),
                values: values.0.iter().map(|(_, v)| compact(v.get_ron())).collect(),
            })
            .collect()
    };
    Ok(SweepFile {
        path: path.to_path_buf(),
        text: text.to_string(),
        name: raw.name,
        base,
        grid: axes(raw.grid),
        zip: axes(raw.zip),
        seeds: raw.seeds,
    })
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl SweepFile {
    /// Where in the file an axis (and one of its values) is written.
    pub fn position(&self, path: &str, value: Option<&str>) -> Option<(usize, usize)> {
        let key = self.text.find(&format!("\"{path}\""))?;
        let at = match value {
            Some(v) => self.text[key..].find(v).map_or(key, |i| key + i),
            None => key,
        };
        Some(line_col(&self.text, at))
    }
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn values_are_written_on_one_line() {
        assert_eq!(
            compact("Some((\n    matrices: All,\n    rate: 0.7,\n))"),
            "Some((matrices: All, rate: 0.7))"
        );
        assert_eq!(compact("[ 1,  2 ]"), "[1, 2]");
        assert_eq!(compact(r#""a  b""#), r#""a  b""#);
    }
}
