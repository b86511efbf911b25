//! Reading resources from YAML or JSON text (single or multi-document) and writing them back.

use super::resource::{Kind, Resource};
use serde_json::Value;
use std::fmt;

/// Why a text could not be read as resources; names the source, the line and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    /// A file path, `-` for standard input, or another description of the text's origin.
    pub origin: String,
    /// 1-based line of the problem (or of the document that has it), when known.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.origin, l, self.reason),
            None => write!(f, "{}: {}", self.origin, self.reason),
        }
    }
}

/// One document of a multi-document text, with the line it starts on.
struct Chunk<'a> {
    start_line: usize,
    text: &'a str,
}

/// Splits YAML text at `---` document markers (and `...` ends), keeping line numbers.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let is_marker = trimmed == "---"
            || trimmed.starts_with("--- ")
            || trimmed == "..."
            || trimmed.starts_with("---\t");
        if is_marker {
            chunks.push(Chunk {
                start_line,
                text: &text[start..offset],
            });
            // Content after `--- ` on the marker line belongs to the next document.
            let rest = trimmed.strip_prefix("---").unwrap_or("");
            if rest.trim().is_empty() || trimmed == "..." {
                start = offset + line.len();
                start_line = i + 2;
            } else {
                start = offset + 3;
                start_line = i + 1;
            }
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        start_line,
        text: &text[start..],
    });
    chunks
}

fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t.starts_with('%')
    })
}

/// Reads every document of `text` as raw values, each with its starting line.
pub fn parse_values(text: &str, source: &str) -> Result<Vec<(usize, Value)>, ParseError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON (also valid YAML, but serde_json's messages are clearer for it).
        let v: Value = serde_json::from_str(text).map_err(|e| ParseError {
            origin: source.to_string(),
            line: Some(e.line()),
            reason: format!("invalid JSON: {e}"),
        })?;
        return Ok(flatten_lists(1, v));
    }
    let mut out = Vec::new();
    for chunk in split_documents(text) {
        if is_blank_yaml(chunk.text) {
            continue;
        }
        // Pad with the lines before the chunk so the parser reports absolute line numbers.
        let padded = "\n".repeat(chunk.start_line - 1) + chunk.text;
        let v: Value = serde_saphyr::from_str(&padded).map_err(|e| ParseError {
            origin: source.to_string(),
            line: error_line(&e.to_string()).or(Some(chunk.start_line)),
            reason: format!(
                "invalid YAML: {}",
                first_line(&e.to_string()).trim_start_matches("error: ")
            ),
        })?;
        if v.is_null() {
            continue;
        }
        out.extend(flatten_lists(chunk.start_line, v));
    }
    Ok(out)
}

/// A Kubernetes `List` (or a bare JSON array) stands for its items.
fn flatten_lists(line: usize, v: Value) -> Vec<(usize, Value)> {
    match v {
        Value::Array(items) => items.into_iter().map(|i| (line, i)).collect(),
        Value::Object(ref m)
            if m.get("kind").and_then(Value::as_str) == Some("List")
                && m.get("items").is_some_and(Value::is_array) =>
        {
            match v {
                Value::Object(mut m) => match m.remove("items") {
                    Some(Value::Array(items)) => items.into_iter().map(|i| (line, i)).collect(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            }
        }
        other => vec![(line, other)],
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Finds "line N" in a parser message.
fn error_line(msg: &str) -> Option<usize> {
    let idx = msg.find("line ")?;
    let digits: String = msg[idx + 5..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Reads the kind of a raw document, checking Gloo's apiVersion.
pub fn kind_of(v: &Value) -> Result<Kind, String> {
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| "missing `kind`".to_string())?;
    let k = match kind {
        "Upstream" => Kind::Upstream,
        "UpstreamGroup" => Kind::UpstreamGroup,
        "VirtualService" => Kind::VirtualService,
        "RouteTable" => Kind::RouteTable,
        "AuthConfig" => Kind::AuthConfig,
        "RateLimitConfig" => Kind::RateLimitConfig,
        "Secret" => Kind::Secret,
        "Gateway" => Kind::Gateway,
        other => {
            return Err(format!(
                "unsupported kind `{other}` (epoxy reads Upstream, UpstreamGroup, VirtualService, RouteTable, Secret, AuthConfig, RateLimitConfig, Gateway)"
            ));
        }
    };
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api != k.api_version() {
        return Err(format!(
            "{kind} needs apiVersion `{}`, found `{api}`",
            k.api_version()
        ));
    }
    Ok(k)
}

/// Reads every resource in `text` (YAML or JSON, one or many documents).
pub fn parse_resources(text: &str, source: &str) -> Result<Vec<Resource>, ParseError> {
    let mut out = Vec::new();
    for (line, v) in parse_values(text, source)? {
        let err = |reason: String| ParseError {
            origin: source.to_string(),
            line: Some(line),
            reason,
        };
        if !v.is_object() {
            return Err(err(
                "a document must be a mapping with apiVersion, kind, metadata and spec (or data, for a Secret)".into(),
            ));
        }
        let kind = kind_of(&v).map_err(err)?;
        let r = Resource::from_value(kind, v).map_err(err)?;
        out.push(r);
    }
    Ok(out)
}

/// Reads exactly one resource (the store's files hold one each).
pub fn parse_one(text: &str, source: &str) -> Result<Resource, ParseError> {
    let mut all = parse_resources(text, source)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        n => Err(ParseError {
            origin: source.to_string(),
            line: None,
            reason: format!("expected one resource, found {n}"),
        }),
    }
}

/// Writes a JSON value as YAML.
pub fn value_to_yaml(v: &Value) -> String {
    // Serializing a JSON value cannot fail; fall back to JSON (valid YAML) just in case.
    let mut s = serde_saphyr::to_string(v)
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default());
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_documents_with_lines() {
        let text = "a: 1\n---\nb: 2\n--- \n# only a comment\n---\nc: 3\n";
        let vals = parse_values(text, "t").unwrap();
        assert_eq!(vals.len(), 3);
        assert_eq!(vals[0].0, 1);
        assert_eq!(vals[1].0, 3);
        assert_eq!(vals[2].0, 7);
    }

    #[test]
    fn yaml_error_names_line() {
        let text = "a: 1\n---\nb: [1, 2\nc: 3\n";
        let e = parse_values(text, "f.yaml").unwrap_err();
        assert_eq!(e.origin, "f.yaml");
        assert!(e.line.unwrap() >= 3, "{e}");
    }

    #[test]
    fn unknown_kind_is_refused() {
        let e = parse_resources("apiVersion: v1\nkind: Pod\n", "x").unwrap_err();
        assert!(e.reason.contains("unsupported kind `Pod`"), "{e}");
    }

    #[test]
    fn type_error_names_field_path() {
        let text = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  virtualHost:\n    routes: 5\n";
        let e = parse_resources(text, "x").unwrap_err();
        assert!(e.reason.contains("spec.virtualHost.routes"), "{e}");
    }

    #[test]
    fn json_list_is_read() {
        let text = r#"{"kind":"List","items":[{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"a"},"spec":{"static":{"hosts":[{"addr":"1.2.3.4","port":80}]}}}]}"#;
        let r = parse_resources(text, "x").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name(), "a");
    }
}
