//! Experiments: the RON schema, `--set` overrides and validation.
//!
//! Every failure becomes an [`ExperimentError`] that names the file, the
//! line and column where the format allows, the field and what is allowed.

mod error;
mod overrides;
mod ron_value;
mod schema;
mod validate;

use std::path::Path;

pub use error::{ExperimentError, Problem};
pub use overrides::{assign, check_path, parse_value, Assignment};
pub use ron_value::to_json as ron_to_json;
pub use schema::*;

/// Reads, overrides and validates an experiment file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Experiment, ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ExperimentError::single(path, "", Problem::io(format!("cannot read the file: {e}")))
    })?;
    parse(path, &text, overrides)
}

/// Parses experiment text (the file's contents), then applies overrides and validates.
pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<Experiment, ExperimentError> {
    // Editors on Windows may start a UTF-8 file with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let experiment: Experiment = ron::Options::default()
        .from_str(text)
        .map_err(|e| ExperimentError::single(path, text, Problem::from_ron(&e)))?;
    let experiment = overrides::apply(experiment, overrides)
        .map_err(|p| ExperimentError::single(path, text, p))?;
    let problems = validate::check(&experiment);
    if problems.is_empty() {
        Ok(experiment)
    } else {
        Err(ExperimentError::new(path, text, problems))
    }
}

/// The semantic checks `load` runs, for experiments built in code (a sweep's cells).
pub fn check(experiment: &Experiment) -> Vec<Problem> {
    validate::check(experiment)
}

/// The resolved experiment as RON: every value after defaults and overrides.
/// Parsing this text gives back the same experiment.
pub fn to_ron(experiment: &Experiment) -> String {
    let config = ron::ser::PrettyConfig::new()
        .struct_names(true)
        .depth_limit(4);
    ron::ser::to_string_pretty(experiment, config).expect("an experiment always serialises")
}
