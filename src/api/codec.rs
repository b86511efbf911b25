//! The one YAML/JSON codec: every resource, listing, route and API document epoxy reads or
//! prints goes through here (the store's files, `epoxy apply`, the console's editor, discovery,
//! `-o yaml|json`), so they share one multi-document reader, one set of limits and one error
//! shape naming the line and column.
//!
//! JSON text (it starts with `{` or `[`) is read by `serde_json`, whose messages are clearer
//! for JSON; anything else by `serde_saphyr`'s multi-document reader, which gives every
//! document's line and every error's line and column.

use serde::Serialize;
use serde_json::Value;

/// A text that is not well-formed JSON or YAML: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {format}{}: {message}", at(*line, *column))]
pub struct SyntaxError {
    /// `"JSON"` or `"YAML"`.
    pub format: &'static str,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The parser's reason, without its own location or source snippet.
    pub message: String,
}

fn at(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl SyntaxError {
    pub fn from_json(e: &serde_json::Error) -> Self {
        SyntaxError {
            format: "JSON",
            line: u64::try_from(e.line()).ok().filter(|l| *l > 0),
            column: u64::try_from(e.column()).ok().filter(|c| *c > 0),
            message: strip_location(&e.to_string()).to_string(),
        }
    }

    pub fn from_yaml(e: &serde_saphyr::Error) -> Self {
        let loc = e.location();
        SyntaxError {
            format: "YAML",
            line: loc.map(|l| l.line()).filter(|l| *l > 0),
            column: loc.map(|l| l.column()).filter(|c| *c > 0),
            message: yaml_message(e),
        }
    }
}

/// `msg at line 2 column 13` -> `msg` (the location is reported separately).
fn strip_location(msg: &str) -> &str {
    msg.find(" at line ")
        .map_or(msg, |i| msg.get(..i).unwrap_or(msg))
}

/// serde-saphyr's message without its source snippet and location, e.g.
/// `unclosed bracket '['`.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.without_snippet().to_string();
    let first = full.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim_start();
    let msg =
        strip_location(first).trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable");
    if msg.starts_with("budget breached") {
        format!("document too large or nested too deeply ({msg})")
    } else if msg.is_empty() {
        full
    } else {
        msg.to_string()
    }
}

/// Whether the text is JSON rather than YAML (JSON is YAML too, but reads better as JSON).
pub fn looks_like_json(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('{') || t.starts_with('[')
}

/// One document of a text, with the line its content starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub line: u64,
    pub value: Value,
}

/// Limits for resource texts: roomy enough for `epoxy apply` of tens of thousands of
/// resources in one file, still bounded (alias expansion keeps serde-saphyr's default caps).
fn resource_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1_000_000,
            max_nodes: 50_000_000,
            max_events: 200_000_000,
        },
    }
}

/// Every document of `text` (JSON: one; YAML: `---`-separated, empty ones skipped).
pub fn documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    if looks_like_json(text) {
        let value: Value = serde_json::from_str(text).map_err(|e| SyntaxError::from_json(&e))?;
        let line = text
            .lines()
            .position(|l| !l.trim().is_empty())
            .map_or(1, |i| i as u64 + 1);
        return Ok(vec![Document { line, value }]);
    }
    let docs: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, resource_options())
            .map_err(|e| SyntaxError::from_yaml(&e))?;
    Ok(docs
        .into_iter()
        .filter(|d| !d.value.is_null())
        .map(|d| Document {
            line: d.referenced.line().max(1),
            value: d.value,
        })
        .collect())
}

/// One YAML text (no document markers expected) into a typed value, e.g. a CLI flag's file.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SyntaxError> {
    serde_saphyr::from_str_with_options(text, resource_options())
        .map_err(|e| SyntaxError::from_yaml(&e))
}

/// A value as YAML, ending in a newline.
pub fn to_yaml<T: Serialize>(v: &T) -> String {
    // Serializing a JSON-shaped value cannot fail; fall back to JSON (valid YAML) just in case.
    let mut s = serde_saphyr::to_string(v)
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default());
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// A value as indented JSON (no trailing newline).
pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Values as a YAML stream (`---` between documents).
pub fn to_yaml_stream(values: &[Value]) -> String {
    values.iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_their_lines() {
        let text = "a: 1\n---\nb: 2\n--- \n# only a comment\n---\nc: 3\n";
        let docs = documents(text).unwrap();
        let lines: Vec<u64> = docs.iter().map(|d| d.line).collect();
        assert_eq!(lines, [1, 3, 7]);
        assert_eq!(docs[2].value["c"], 3);
    }

    #[test]
    fn yaml_errors_name_line_and_column() {
        let e = documents("a: 1\n---\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!(e.format, "YAML");
        assert!(e.line.unwrap() >= 3, "{e}");
        assert!(e.column.is_some(), "{e}");
        assert!(!e.message.contains("line"), "{e}");
    }

    #[test]
    fn json_errors_name_line_and_column() {
        let e = documents("{\n  \"a\": [1,\n}").unwrap_err();
        assert_eq!((e.format, e.line), ("JSON", Some(3)));
        assert!(
            e.to_string()
                .starts_with("invalid JSON at line 3, column 1: "),
            "{e}"
        );
    }

    #[test]
    fn many_documents_fit_the_budget() {
        let text: String = (0..5_000)
            .map(|i| format!("---\nname: n{i}\nx: [1, 2]\n"))
            .collect();
        assert_eq!(documents(&text).unwrap().len(), 5_000);
    }

    #[test]
    fn yaml_round_trips() {
        let v = serde_json::json!({"a": [1, {"b": "x: y"}], "c": null});
        let back = documents(&to_yaml(&v)).unwrap();
        assert_eq!(back[0].value, v);
        let stream = to_yaml_stream(&[v.clone(), v.clone()]);
        assert_eq!(documents(&stream).unwrap().len(), 2);
    }
}
