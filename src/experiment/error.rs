//! Errors a user can act on: file, line, column, field, what is allowed.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Dotted path of the field, e.g. `model.hidden`.
    pub field: Option<String>,
    pub message: String,
    /// What the field accepts.
    pub allowed: Option<String>,
    /// 1-based line and column in the file, where known.
    pub position: Option<(usize, usize)>,
}

impl Problem {
    pub fn field(field: &str, message: impl Into<String>, allowed: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            message: message.into(),
            allowed: Some(allowed.into()),
            position: None,
        }
    }

    pub fn io(message: String) -> Self {
        Self {
            field: None,
            message,
            allowed: None,
            position: None,
        }
    }

    pub fn from_ron(e: &ron::error::SpannedError) -> Self {
        Self {
            field: None,
            message: e.code.to_string(),
            allowed: None,
            position: Some((e.position.line, e.position.col)),
        }
    }
}

/// Everything wrong with one experiment file.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl ExperimentError {
    pub fn new(file: &Path, text: &str, mut problems: Vec<Problem>) -> Self {
        for p in &mut problems {
            if p.position.is_none() {
                p.position = p.field.as_deref().and_then(|f| locate_field(text, f));
            }
            if p.field.is_none() {
                p.field = p
                    .position
                    .and_then(|(line, col)| field_before(text, line, col));
            }
        }
        Self {
            file: file.to_path_buf(),
            problems,
        }
    }

    pub fn single(file: &Path, text: &str, problem: Problem) -> Self {
        Self::new(file, text, vec![problem])
    }
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some((line, col)) = p.position {
                write!(f, ":{line}:{col}")?;
            }
            write!(f, ": ")?;
            if let Some(field) = &p.field {
                write!(f, "{field}: ")?;
            }
            write!(f, "{}", p.message)?;
            if let Some(allowed) = &p.allowed {
                write!(f, "\n    allowed: {allowed}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ExperimentError {}

/// Finds where a dotted field path is written, by looking for each key in
/// turn (`key:`) after the previous one. Returns `None` for defaulted fields.
pub(crate) fn locate_field(text: &str, path: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    let mut found = None;
    for key in path.split('.') {
        let offset = find_key(&text[from..], key)? + from;
        found = Some(offset);
        from = offset + key.len();
    }
    found.map(|offset| {
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, col)
    })
}

/// The key written last before `line:col` (e.g. `epochs` in `epochs: "ten"`),
/// to name the field in a syntax or type error.
fn field_before(text: &str, line: usize, col: usize) -> Option<String> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let line_text = text.get(line_start..)?.lines().next().unwrap_or("");
    // include the character at the position: ron points at a key's colon
    let end = line_start
        + line_text
            .char_indices()
            .nth(col)
            .map_or(line_text.len(), |(i, _)| i);
    let before = text.get(line_start..end)?;
    let colon = before.rfind(':')?;
    let key: String = before[..colon]
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

fn find_key(text: &str, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None; // an empty key would match everywhere, forever
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(i) = text[start..].find(key) {
        let at = start + i;
        let end = at + key.len();
        let word_start = at == 0 || !is_ident(bytes[at - 1]);
        let rest = text[end..].trim_start();
        if word_start && rest.starts_with(':') && !in_comment(text, at) {
            return Some(at);
        }
        start = end;
    }
    None
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn in_comment(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at].contains("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_fields_after_their_parent() {
        let text =
            "E(\n  name: \"x\",\n  model: (\n    hidden: 0,\n  ),\n  training: (hidden: 1)\n)";
        assert_eq!(locate_field(text, "model.hidden"), Some((4, 5)));
        assert_eq!(locate_field(text, "training.hidden"), Some((6, 14)));
        assert_eq!(locate_field(text, "model.layers"), None);
    }

    #[test]
    fn names_the_key_before_an_error_position() {
        let text = "E(\n    training: (epochs: \"ten\"),\n)";
        assert_eq!(field_before(text, 2, 24), Some("epochs".into()));
        assert_eq!(field_before(text, 1, 2), None);
    }

    #[test]
    fn ignores_keys_in_comments_and_longer_names() {
        let text = "// hidden: 3\n(hidden_size: 2, hidden: 1)";
        assert_eq!(locate_field(text, "hidden"), Some((2, 18)));
    }
}
