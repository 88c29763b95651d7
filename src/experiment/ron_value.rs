//! A RON value as the JSON tree serde_json gives the same value, so that
//! `--set` and sweep axes can write RON into the experiment's JSON tree.
//!
//! `ron::Value` cannot serve: it drops enum variant names (`Alternating(2)`
//! reads as `[2]`, `Greedy` as `()`), and those names are most of what a
//! sweep varies. Here an enum is written as serde's external tagging:
//! `Greedy` → `"Greedy"`, `Alternating(2)` → `{"Alternating": 2}`,
//! `Steps(300)` → `{"Steps": 300}`, `DecayAfter(epoch: 4, factor: 0.5)` →
//! `{"DecayAfter": {"epoch": 4, "factor": 0.5}}`. A structure is written
//! without a name, `(layers: 2, hidden: 200)`, and becomes an object;
//! `Some(x)` is `x` and `None` is `null`. Numbers, strings and characters are
//! read by `ron` itself.

use serde_json::{Map, Value};

/// Converts RON text holding one value.
pub fn to_json(text: &str) -> Result<Value, String> {
    let mut p = Parser { text, at: 0 };
    let value = p.value()?;
    p.skip_space();
    if p.at < text.len() {
        return Err(p.error("unexpected text after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error(&self, what: &str) -> String {
        let near: String = self.rest().chars().take(12).collect();
        if near.is_empty() {
            format!("{what} at the end of `{}`", self.text)
        } else {
            format!("{what} at `{near}` in `{}`", self.text)
        }
    }

    fn skip_space(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if let Some(after) = trimmed.strip_prefix("//") {
                self.at += 2 + after.find('\n').unwrap_or(after.len());
            } else if let Some(after) = trimmed.strip_prefix("/*") {
                self.at += 2 + after.find("*/").map_or(after.len(), |i| i + 2);
            } else {
                return;
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`")))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.peek() {
            None => Err(self.error("expected a value")),
            Some('[') => {
                self.at += 1;
                let items = self.items(']', Self::value)?;
                Ok(Value::Array(items))
            }
            Some('{') => {
                self.at += 1;
                let pairs = self.items('}', |p| {
                    let key = match p.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    p.expect(':')?;
                    Ok((key, p.value()?))
                })?;
                Ok(Value::Object(pairs.into_iter().collect()))
            }
            Some('(') => {
                self.at += 1;
                self.parenthesised()
            }
            Some('"' | '\'') => self.literal(),
            Some('r') if self.rest().starts_with("r\"") || self.rest().starts_with("r#") => {
                self.literal()
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.literal(),
            Some(c) if c.is_alphabetic() || c == '_' => self.named(),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    /// Comma-separated items up to `close`, a trailing comma allowed.
    fn items<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(out);
            }
            out.push(item(self)?);
            if !self.eat(',') {
                self.expect(close)?;
                return Ok(out);
            }
        }
    }

    /// After `(`: `(name: v, …)` is a structure, `(a, b)` a tuple.
    fn parenthesised(&mut self) -> Result<Value, String> {
        self.skip_space();
        let save = self.at;
        let is_struct = self.identifier().is_some() && self.eat(':');
        self.at = save;
        if is_struct {
            let fields = self.items(')', |p| {
                p.skip_space();
                let name = p
                    .identifier()
                    .ok_or_else(|| p.error("expected a field name"))?;
                p.expect(':')?;
                Ok((name, p.value()?))
            })?;
            Ok(Value::Object(fields.into_iter().collect::<Map<_, _>>()))
        } else {
            Ok(Value::Array(self.items(')', Self::value)?))
        }
    }

    fn identifier(&mut self) -> Option<String> {
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        if len == 0 || self.rest().starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let name = self.rest()[..len].to_string();
        self.at += len;
        Some(name)
    }

    /// `true`, `None`, `Some(x)`, `inf`, a unit variant, or `Variant(…)`.
    fn named(&mut self) -> Result<Value, String> {
        let start = self.at;
        let name = self.identifier().expect("starts with a letter");
        match name.as_str() {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "None" => return Ok(Value::Null),
            "inf" | "NaN" => {
                self.at = start;
                return self.literal();
            }
            _ => {}
        }
        if !self.eat('(') {
            return Ok(Value::String(name));
        }
        let inner = self.parenthesised()?;
        if name == "Some" {
            return match inner {
                Value::Array(mut items) if items.len() == 1 => Ok(items.remove(0)),
                _ => Err(format!("`Some` takes one value in `{}`", self.text)),
            };
        }
        // A newtype variant holds its value itself; a tuple variant a list.
        let inner = match inner {
            Value::Array(mut items) if items.len() == 1 => items.remove(0),
            other => other,
        };
        Ok(Value::Object(Map::from_iter([(name, inner)])))
    }

    /// A number, string or character: its extent found here, its value read by `ron`.
    fn literal(&mut self) -> Result<Value, String> {
        let rest = self.rest();
        let len = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => quoted_len(rest, q).ok_or_else(|| self.error("unclosed"))?,
            Some('r') => {
                let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
                let close = format!("\"{}", "#".repeat(hashes));
                let body = 2 + hashes;
                rest[body..]
                    .find(&close)
                    .map(|i| body + i + close.len())
                    .ok_or_else(|| self.error("unclosed raw string"))?
            }
            _ => rest
                .find(|c: char| !(c.is_alphanumeric() || "_.+-".contains(c)))
                .unwrap_or(rest.len()),
        };
        let token = &rest[..len];
        let value: ron::Value =
            ron::from_str(token).map_err(|e| self.error(&format!("{}", e.code)))?;
        self.at += len;
        Ok(match value {
            ron::Value::String(s) => Value::String(s),
            ron::Value::Char(c) => Value::String(c.to_string()),
            other => serde_json::to_value(&other).map_err(|e| self.error(&e.to_string()))?,
        })
    }
}

/// Length of a quoted literal including both quotes, skipping escapes.
fn quoted_len(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return Some(i + c.len_utf8()),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::to_json;
    use serde_json::json;

    #[test]
    fn enums_keep_their_variant_names() {
        assert_eq!(to_json("Greedy").unwrap(), json!("Greedy"));
        assert_eq!(
            to_json("Alternating(2)").unwrap(),
            json!({"Alternating": 2})
        );
        assert_eq!(
            to_json("DecayAfter(epoch: 4, factor: 0.5)").unwrap(),
            json!({"DecayAfter": {"epoch": 4, "factor": 0.5}})
        );
        assert_eq!(
            to_json("[Greedy, Alternating(2), Uniform]").unwrap(),
            json!(["Greedy", {"Alternating": 2}, "Uniform"])
        );
    }

    #[test]
    fn structures_options_and_scalars() {
        assert_eq!(
            to_json("(length: Steps(300), lr: 0.25, /* why */ decay: 1.0,) // x").unwrap(),
            json!({"length": {"Steps": 300}, "lr": 0.25, "decay": 1.0})
        );
        assert_eq!(to_json("Some(64)").unwrap(), json!(64));
        assert_eq!(to_json("None").unwrap(), json!(null));
        assert_eq!(to_json("-1.5e-3").unwrap(), json!(-0.0015));
        assert_eq!(to_json("1_000").unwrap(), json!(1000));
        assert_eq!(to_json(r#""a \"b\"""#).unwrap(), json!("a \"b\""));
        assert_eq!(to_json("(1, true)").unwrap(), json!([1, true]));
        assert_eq!(to_json(r#"{"x": 1}"#).unwrap(), json!({"x": 1}));
    }

    #[test]
    fn malformed_values_say_where() {
        for bad in ["(lr: 0.25", "[1, 2", "Alternating(2", "1 2", "\"open", "?"] {
            let e = to_json(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
