//! Reading resources from YAML or JSON text (single or multi-document), through the one
//! codec (`codec.rs`).

use super::codec;
use super::resource::{Kind, Resource};
use serde_json::Value;
use std::fmt;

/// Why a text could not be read as resources; names the source, the line, the column and the
/// reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    /// A file path, `-` for standard input, or another description of the text's origin.
    pub origin: String,
    /// 1-based line of the problem (or of the document that has it), when known.
    pub line: Option<usize>,
    /// 1-based column of the problem, when known.
    pub column: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.origin, self.reason),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.origin, self.reason),
            _ => write!(f, "{}: {}", self.origin, self.reason),
        }
    }
}

impl ParseError {
    fn syntax(origin: &str, e: codec::SyntaxError) -> Self {
        ParseError {
            origin: origin.to_string(),
            line: e.line.and_then(|l| usize::try_from(l).ok()),
            column: e.column.and_then(|c| usize::try_from(c).ok()),
            reason: format!("invalid {}: {}", e.format, e.message),
        }
    }
}

/// Reads every document of `text` as raw values, each with its starting line (a `List` or a
/// JSON array stands for its items).
pub fn parse_values(text: &str, source: &str) -> Result<Vec<(usize, Value)>, ParseError> {
    let docs = codec::documents(text).map_err(|e| ParseError::syntax(source, e))?;
    Ok(docs
        .into_iter()
        .flat_map(|d| flatten_lists(usize::try_from(d.line).unwrap_or(usize::MAX), d.value))
        .collect())
}

/// A Kubernetes `List` (or a bare JSON array) stands for its items.
fn flatten_lists(line: usize, v: Value) -> Vec<(usize, Value)> {
    match v {
        Value::Array(items) => items.into_iter().map(|i| (line, i)).collect(),
        Value::Object(mut m)
            if m.get("kind").and_then(Value::as_str) == Some("List")
                && m.get("items").is_some_and(Value::is_array) =>
        {
            match m.remove("items") {
                Some(Value::Array(items)) => items.into_iter().map(|i| (line, i)).collect(),
                _ => Vec::new(),
            }
        }
        other => vec![(line, other)],
    }
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
            column: None,
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
            column: None,
            reason: format!("expected one resource, found {n}"),
        }),
    }
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
        assert!(e.column.is_some(), "{e}");
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
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
