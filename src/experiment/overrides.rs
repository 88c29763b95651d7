//! `--set path=value` overrides, applied to the parsed experiment.
//!
//! The experiment is turned into a JSON tree, the value is written at the
//! dotted path, and the tree is deserialised again, so an override goes
//! through exactly the same type checks as the file itself. Enum variants are
//! stepped through transparently: `data.dir` reaches `data: Ptb(dir: ..)`.

use serde_json::Value;

use super::{ron_value, Experiment, Problem};

/// One value to write at a dotted path, and how to name it in an error
/// (`--set x=y`, or a sweep's axis and value).
pub struct Assignment {
    pub path: String,
    pub value: Value,
    pub label: String,
}

impl Assignment {
    /// `PATH=VALUE` as `--set` takes it.
    pub fn parse_set(spec: &str) -> Result<Self, Problem> {
        let (path, raw) = spec.split_once('=').ok_or_else(|| Problem {
            field: None,
            message: format!("--set {spec}: expected PATH=VALUE, e.g. training.epochs=1"),
            allowed: None,
            position: None,
        })?;
        Ok(Self {
            path: path.trim().to_string(),
            value: parse_value(raw.trim()),
            label: format!("--set {spec}"),
        })
    }
}

pub fn apply(experiment: Experiment, overrides: &[String]) -> Result<Experiment, Problem> {
    let assignments = overrides
        .iter()
        .map(|s| Assignment::parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    assign(experiment, &assignments)
}

/// Writes every assignment in order, checking the experiment's types after each.
pub fn assign(experiment: Experiment, assignments: &[Assignment]) -> Result<Experiment, Problem> {
    if assignments.is_empty() {
        return Ok(experiment);
    }
    let mut tree = serde_json::to_value(&experiment).expect("an experiment always serialises");
    for a in assignments {
        let path = a.path.as_str();
        let problem = |message: String| Problem {
            field: Some(path.to_string()),
            message: format!("{}: {message}", a.label),
            allowed: None,
            position: None,
        };
        let slot = find_slot(&mut tree, path).map_err(problem)?;
        *slot = a.value.clone();
        let parsed = serde_json::from_value::<Experiment>(tree.clone())
            .map_err(|e| problem(e.to_string()))?;
        // Round-trip so defaults of anything just set are in the tree for later paths.
        tree = serde_json::to_value(&parsed).expect("an experiment always serialises");
    }
    Ok(serde_json::from_value(tree).expect("checked after every assignment"))
}

/// Whether `path` names a field of the experiment (for checking a sweep's
/// axes before any value is tried).
pub fn check_path(experiment: &Experiment, path: &str) -> Result<(), String> {
    let mut tree = serde_json::to_value(experiment).expect("an experiment always serialises");
    find_slot(&mut tree, path).map(|_| ())
}

fn find_slot<'a>(tree: &'a mut Value, path: &str) -> Result<&'a mut Value, String> {
    let mut node = tree;
    for key in path.split('.') {
        if key.is_empty() {
            return Err(if path.is_empty() {
                "the path before `=` is empty; expected PATH=VALUE, e.g. training.epochs=1".into()
            } else {
                format!("`{path}` has an empty field name; fields are separated by single dots")
            });
        }
        node = step_into_variant(node, key);
        if let Value::Array(items) = node {
            let len = items.len();
            node = key
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| format!("`{key}` is not an index of this list of {len}"))?;
            continue;
        }
        let Value::Object(map) = node else {
            return Err(format!("`{key}` is not inside a structure"));
        };
        if !map.contains_key(key) {
            let mut known: Vec<&str> = map.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(format!(
                "no field `{key}` here; the fields are: {}",
                known.join(", ")
            ));
        }
        node = map.get_mut(key).expect("checked above");
    }
    Ok(node)
}

/// An externally tagged enum is `{"Variant": {..}}`; step into it when the
/// key is not found at this level.
fn step_into_variant<'a>(node: &'a mut Value, key: &str) -> &'a mut Value {
    let is_variant = matches!(node, Value::Object(m) if m.len() == 1
        && !m.contains_key(key)
        && m.keys().next().is_some_and(|k| k.starts_with(|c: char| c.is_ascii_uppercase()))
        && m.values().next().is_some_and(Value::is_object));
    if is_variant {
        let Value::Object(map) = node else {
            unreachable!()
        };
        map.values_mut().next().expect("one entry")
    } else {
        node
    }
}

/// Values are JSON when they parse as JSON (numbers, booleans, "strings",
/// objects), else RON (`Alternating(2)`, `Steps(300)`, `Some(64)`, `None`,
/// `(lr: 0.5, …)`); anything else is taken as a bare string (paths).
pub fn parse_value(raw: &str) -> Value {
    if let Ok(v) = serde_json::from_str(raw) {
        return v;
    }
    if let Some(inner) = raw.strip_prefix("Some(").and_then(|r| r.strip_suffix(')')) {
        return parse_value(inner.trim());
    }
    ron_value::to_json(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{DataSource, LossScale};

    fn base() -> Experiment {
        Experiment {
            name: "t".into(),
            seed: 1,
            data: DataSource::Ptb { dir: None },
            pretrained: None,
            model: Default::default(),
            training: Default::default(),
            eval: Default::default(),
            output: Default::default(),
            pruning: None,
            quantization: None,
        }
    }

    fn set(s: &[&str]) -> Result<Experiment, Problem> {
        apply(base(), &s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn sets_nested_scalars_options_and_unit_variants() {
        let e = set(&[
            "training.epochs=1",
            "model.dropout=0.5",
            "training.clip=None",
            "model.embed=Some(64)",
            "training.loss=MeanPerToken",
            "seed=7",
            "training.lr_policy=DecayAfter(epoch: 2, factor: 0.5)",
        ])
        .unwrap();
        assert_eq!(e.training.epochs, 1);
        assert_eq!(e.model.dropout, 0.5);
        assert_eq!(e.training.clip, None);
        assert_eq!(e.model.embed, Some(64));
        assert_eq!(e.training.loss, LossScale::MeanPerToken);
        assert_eq!(e.seed, 7);
        assert_eq!(
            e.training.lr_policy,
            crate::experiment::LrPolicy::DecayAfter {
                epoch: 2,
                factor: 0.5
            }
        );
    }

    #[test]
    fn ron_values_reach_enums_inside_lists() {
        let e = set(&[
            "quantization=(groups: [(matrices: All, bits: 1)], iterations: 2, retrain: (length: Steps(10), lr: 0.5))",
            "quantization.groups.0.method=Alternating(3)",
            "quantization.baselines=[Greedy, UniformFitted]",
            "quantization.retrain.length=Epochs(1)",
        ])
        .unwrap();
        let q = e.quantization.unwrap();
        assert_eq!(
            q.groups[0].method,
            crate::experiment::QuantMethod::Alternating(3)
        );
        assert_eq!(
            q.baselines,
            [
                crate::experiment::QuantMethod::Greedy,
                crate::experiment::QuantMethod::UniformFitted
            ]
        );
        assert_eq!(q.retrain.length, crate::experiment::Length::Epochs(1));
    }

    #[test]
    fn steps_through_enum_variants() {
        let e = set(&["data.dir=/tmp/ptb"]).unwrap();
        assert_eq!(
            e.data,
            DataSource::Ptb {
                dir: Some("/tmp/ptb".into())
            }
        );
    }

    #[test]
    fn indexes_into_lists_and_fills_options() {
        let e = set(&[
            r#"quantization={"groups":[{"matrices":"All","bits":1}],"iterations":2,"retrain":{"length":{"Steps":10},"lr":0.5}}"#,
            "quantization.groups.0.bits=3",
            "quantization.groups.0.matrices=Lstm",
            "quantization.groups.0.method=Greedy",
        ])
        .unwrap();
        let g = &e.quantization.unwrap().groups[0];
        assert_eq!(
            (g.bits, &g.matrices, g.method),
            (
                3,
                &crate::experiment::MatrixSet::Lstm,
                crate::experiment::QuantMethod::Greedy
            )
        );
        let err = set(&["quantization=None", "quantization.groups.0.bits=3"]).unwrap_err();
        assert!(
            err.message.contains("not inside a structure"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        let err = set(&["training.epochz=1"]).unwrap_err();
        assert!(err.message.contains("no field `epochz`"), "{}", err.message);
        assert!(err.message.contains("epochs"), "{}", err.message);
        let err = set(&["training.epochs=many"]).unwrap_err();
        assert!(err.message.contains("invalid type"), "{}", err.message);
        let err = set(&["training.epochs"]).unwrap_err();
        assert!(err.message.contains("PATH=VALUE"), "{}", err.message);
    }
}
