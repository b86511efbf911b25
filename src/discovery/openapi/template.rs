//! Gloo's request templates: the `:path` template, query string, header templates and the JSON
//! body template built from a request schema.
//!
//! Why a module of its own: this is the part that must match Gloo byte for byte (the text
//! lands in `serviceSpec.rest.transformations` and Gloo users compare it), so its exact
//! spellings live in one place:
//! - path variables: `{{ default(id, "") }}` (spaces inside the braces),
//! - query and header parameters: `{{default(name, "")}}` (no spaces),
//! - body fields: `"name": "{{ default(name, "")}}"` for strings, `"id": {{ default(id, "") }}`
//!   otherwise, fields sorted, joined with `,` and no spaces.
//!
//! Where Gloo goes wrong this module does better, keeping the same spelling: refs and `allOf`
//! are followed (Gloo looks the schema up by the *parameter's* name), nested objects become
//! nested JSON objects with dotted variables (`owner.name`), and cycles, depth and size are
//! bounded.

use indexmap::IndexMap;
use serde_json::Value;

use super::refs::{self, Resolved};

/// Deepest object nesting expanded into a body template; deeper objects become one variable.
pub(crate) const MAX_BODY_DEPTH: usize = 12;
/// Most fields in one body template; past that, objects become one variable each. Bounds the
/// work on schemas whose refs fan out (a DAG can be exponential when expanded as a tree).
pub(crate) const MAX_BODY_FIELDS: usize = 2000;
/// Deepest `allOf` / `oneOf` nesting followed when collecting an object's properties.
const MAX_COMPOSE_DEPTH: usize = 16;
/// Most `allOf`/`oneOf` parts visited for one body (fan-out of parts can be exponential).
const MAX_COMPOSE_STEPS: usize = 10_000;

/// Joins a base path (`/api`, already normalized: no trailing `/`) and a document path.
pub(crate) fn join_path(base: &str, path: &str) -> String {
    if path.starts_with('/') || path.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    }
}

/// Normalizes a base path: leading `/`, no trailing `/`, `""` for the root.
pub(crate) fn normalize_base(base: &str) -> String {
    let trimmed = base.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// A query parameter the `:path` template appends: its name and the value it takes when the
/// caller gives none (the schema's `default`, or its only `enum` value).
pub(crate) struct QueryParam<'a> {
    pub name: &'a str,
    pub default: Option<&'a str>,
}

/// Gloo's `:path` template: `{x}` becomes `{{ default(x, "") }}`, query parameters are
/// appended as `?a={{default(a, "")}}&b=...` (after `&` when the path key has a query
/// already; a name it has is not added twice), then the fixed parameters (`Action=X`, from a
/// `#` in the path key). Unlike Gloo (which replaces every brace), an unbalanced brace is kept
/// literally and reported.
pub(crate) fn gloo_path(
    path_template: &str,
    query: &[QueryParam<'_>],
    fixed: &[(String, String)],
    warnings: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(path_template.len() + 32);
    let mut rest = path_template;
    while let Some(open) = rest.find('{') {
        let (before, after_open) = rest.split_at(open);
        out.push_str(before);
        let inner = after_open.get(1..).unwrap_or_default();
        match inner.find(['{', '}']) {
            Some(close) if inner.as_bytes().get(close) == Some(&b'}') && close > 0 => {
                let name = inner.get(..close).unwrap_or_default();
                // `{Key+}` (AWS, RFC 6570 `{+key}`): a greedy variable named `Key`.
                let name = name.trim_matches('+');
                out.push_str(&format!("{{{{ default({}, \"\") }}}}", var_ref(&[name])));
                rest = inner.get(close + 1..).unwrap_or_default();
            }
            _ => {
                push_once(
                    warnings,
                    format!("path '{path_template}' has an unbalanced or empty '{{'; kept as text"),
                );
                out.push('{');
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    let in_key: Vec<&str> = path_template
        .split_once('?')
        .map(|(_, q)| q.split('&').filter_map(|kv| kv.split('=').next()).collect())
        .unwrap_or_default();
    let mut parts: Vec<String> = query
        .iter()
        .filter(|q| !in_key.contains(&q.name) && !fixed.iter().any(|(k, _)| k == q.name))
        .map(|q| {
            format!(
                "{}={}",
                encode_query(q.name),
                param_template(q.name, q.default)
            )
        })
        .collect();
    parts.extend(
        fixed
            .iter()
            .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v))),
    );
    if !parts.is_empty() {
        if !out.contains('?') {
            out.push('?');
        } else if !out.ends_with(['?', '&']) {
            out.push('&');
        }
        out.push_str(&parts.join("&"));
    }
    out
}

/// A path key's `#` part is not path: `/#Action=DescribeThings&Version=1` (APIs.guru's AWS
/// documents) gives the fixed query parameters `Action` and `Version`; a part without `=`
/// (`/functions/{f}#Qualifier`) only tells operations apart and is dropped.
pub(crate) fn split_fragment(doc_path: &str) -> (&str, Vec<(String, String)>) {
    let Some((path, fragment)) = doc_path.split_once('#') else {
        return (doc_path, Vec::new());
    };
    let fixed = fragment
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (path, fixed)
}

/// Characters kept as they are in a query parameter's name or fixed value: RFC 3986's
/// unreserved ones and the sub-delimiters a query may hold (`$filter`, `a:b`).
const QUERY_TEXT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b';')
    .remove(b':')
    .remove(b'@')
    .remove(b'/');

fn encode_query(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, QUERY_TEXT).to_string()
}

/// Gloo's template for a query or header parameter value: `{{default(name, "")}}`, with the
/// parameter's default in place of `""` when it has one.
pub(crate) fn param_template(name: &str, default: Option<&str>) -> String {
    format!(
        "{{{{default({}, \"{}\")}}}}",
        var_ref(&[name]),
        escape_literal(default.unwrap_or_default())
    )
}

/// How a template names the variable at `segments` (a nested body field has one per level):
/// Inja's own spelling (`user-id`, `owner.name`) when every segment is a plain Inja name,
/// else `var("@odata.type")`, which the gateway reads (Inja has no spelling for a name that
/// starts with a digit or holds a `.`, `/`, `$`, `@` or a space).
pub(crate) fn var_ref(segments: &[&str]) -> String {
    let plain = |s: &str| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !s.ends_with('-')
    };
    if segments.iter().all(|s| plain(s)) {
        return segments.join(".");
    }
    let args: Vec<String> = segments.iter().map(|s| string_literal(s)).collect();
    format!("var({})", args.join(", "))
}

/// A template string literal: JSON's quoting, with braces as `\u` escapes so that no text
/// in it reads as a tag.
fn string_literal(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace('{', "\\u007b")
        .replace('}', "\\u007d")
}

/// Text escaped to stay inside a template's `"..."` literal.
fn escape_literal(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('{', "\\u007b")
        .replace('}', "\\u007d")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// Most warnings kept in one list (a function's or the document's); the rest are counted in a
/// last line. Keeps hostile documents from making warning lists (and their de-duplication)
/// quadratic.
pub(crate) const MAX_WARNINGS: usize = 100;

/// Adds a warning unless the same text is already there, up to [`MAX_WARNINGS`].
pub(crate) fn push_once(warnings: &mut Vec<String>, w: String) {
    const MORE: &str = "further warnings suppressed";
    if warnings.len() >= MAX_WARNINGS {
        if warnings.last().is_none_or(|l| l != MORE) {
            warnings.push(MORE.to_string());
        }
        return;
    }
    if !warnings.contains(&w) {
        warnings.push(w);
    }
}

/// Builds Gloo's JSON body template for a request schema. Returns `None` when the schema is
/// not an object with properties (an array, a scalar, a free-form object): Gloo would send
/// `{}` and drop the caller's body; here the body is passed through instead, with a warning.
pub(crate) fn body_template(
    root: &Value,
    schema: &Value,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let mut ctx = BodyCtx {
        root,
        warnings,
        fields: 0,
        steps: 0,
        stack: Vec::new(),
    };
    let resolved = match refs::resolve(root, schema) {
        Ok(r) => r,
        Err(e) => {
            push_once(
                ctx.warnings,
                format!("request body schema: {e}; body passed through"),
            );
            return None;
        }
    };
    let t = ctx.object(resolved, &[], 0);
    if t.is_none() {
        push_once(
            ctx.warnings,
            "request body schema is not an object with properties; body passed through".to_string(),
        );
    }
    t
}

struct BodyCtx<'a, 'w> {
    root: &'a Value,
    warnings: &'w mut Vec<String>,
    /// Fields emitted so far (bounded by [`MAX_BODY_FIELDS`]).
    fields: usize,
    /// `allOf`/`oneOf` parts visited so far (bounded by [`MAX_COMPOSE_STEPS`]).
    steps: usize,
    /// Refs being expanded on the current branch: a ref met again is a cycle.
    stack: Vec<&'a str>,
}

impl<'a> BodyCtx<'a, '_> {
    /// Template for an object schema, or `None` if it has no properties.
    fn object(&mut self, schema: Resolved<'a>, parent: &[&'a str], depth: usize) -> Option<String> {
        let pushed = schema.via.map(|r| self.stack.push(r)).is_some();
        let mut props = IndexMap::new();
        self.collect_properties(schema.value, &mut props, 0);
        let result = if props.is_empty() {
            None
        } else {
            let mut fields = Vec::with_capacity(props.len());
            for (key, prop) in props {
                fields.push(self.field(key, prop, parent, depth));
            }
            // Gloo sorts the rendered fields for idempotency; so do we.
            fields.sort();
            Some(format!("{{{}}}", fields.join(",")))
        };
        if pushed {
            self.stack.pop();
        }
        result
    }

    /// One `"key": template` entry.
    fn field(&mut self, key: &'a str, prop: &'a Value, parent: &[&'a str], depth: usize) -> String {
        self.fields += 1;
        let mut path = parent.to_vec();
        path.push(key);
        let var = path.join(".");
        let reference = var_ref(&path);
        // A key is literal text of the template: braces as `\u` escapes cannot open a tag.
        let json_key = serde_json::to_string(key)
            .unwrap_or_default()
            .replace('{', "\\u007b");
        let resolved = match refs::resolve(self.root, prop) {
            Ok(r) => Some(r),
            Err(e) => {
                push_once(self.warnings, format!("body field '{var}': {e}"));
                None
            }
        };
        let value = resolved.map(|r| r.value).unwrap_or(&Value::Null);
        if let Some(r) = resolved.filter(|r| is_object_like(r.value)) {
            if let Some(cycle) = r.via.filter(|v| self.stack.contains(v)) {
                push_once(
                    self.warnings,
                    format!(
                        "schema cycle through '{cycle}' at body field '{var}'; left as one variable"
                    ),
                );
            } else if depth + 1 >= MAX_BODY_DEPTH || self.fields >= MAX_BODY_FIELDS {
                push_once(
                    self.warnings,
                    format!(
                        "request body schema is too deep or too large; '{var}' left as one variable"
                    ),
                );
            } else if let Some(nested) = self.object(r, &path, depth + 1) {
                return format!("{json_key}: {nested}");
            }
        }
        let default = default_text(value);
        if is_string(value) {
            format!("{json_key}: \"{{{{ default({reference}, \"{default}\")}}}}\"")
        } else {
            format!("{json_key}: {{{{ default({reference}, \"{default}\") }}}}")
        }
    }

    /// Gathers `properties`, following refs and merging `allOf`; for `oneOf`/`anyOf` without
    /// own properties, the first alternative is used (with a warning).
    fn collect_properties(
        &mut self,
        schema: &'a Value,
        out: &mut IndexMap<&'a str, &'a Value>,
        depth: usize,
    ) {
        if depth > MAX_COMPOSE_DEPTH {
            push_once(
                self.warnings,
                "request body schema: allOf/oneOf nesting too deep; truncated".to_string(),
            );
            return;
        }
        let Some(obj) = schema.as_object() else {
            return;
        };
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                out.insert(k.as_str(), v);
            }
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.collect_part(part, out, depth);
            }
        }
        if out.is_empty() {
            let alt = ["oneOf", "anyOf"]
                .into_iter()
                .find_map(|k| obj.get(k).and_then(Value::as_array).map(|a| (k, a)));
            if let Some((kind, alts)) = alt
                && let Some(first) = alts.first()
            {
                self.collect_part(first, out, depth);
                if !out.is_empty() && alts.len() > 1 {
                    push_once(
                        self.warnings,
                        format!(
                            "request body schema uses {kind}; the first alternative is templated"
                        ),
                    );
                }
            }
        }
    }

    fn collect_part(
        &mut self,
        part: &'a Value,
        out: &mut IndexMap<&'a str, &'a Value>,
        depth: usize,
    ) {
        self.steps += 1;
        if self.steps > MAX_COMPOSE_STEPS {
            push_once(
                self.warnings,
                "request body schema: too many allOf/oneOf parts; truncated".to_string(),
            );
            return;
        }
        match refs::resolve(self.root, part) {
            Ok(r) => {
                if let Some(cycle) = r.via.filter(|v| self.stack.contains(v)) {
                    push_once(
                        self.warnings,
                        format!("schema cycle through '{cycle}' in allOf/oneOf; skipped"),
                    );
                    return;
                }
                let pushed = r.via.map(|v| self.stack.push(v)).is_some();
                self.collect_properties(r.value, out, depth + 1);
                if pushed {
                    self.stack.pop();
                }
            }
            Err(e) => push_once(self.warnings, format!("request body schema: {e}")),
        }
    }
}

/// `type: string` or (3.1) `type: [string, null]`; an untyped enum of strings counts too.
fn is_string(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t.as_str() == Some("string")),
        Some(_) => false,
        None => schema
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string)),
    }
}

/// Whether a schema should be expanded as a nested object.
fn is_object_like(schema: &Value) -> bool {
    let typed_object = match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t.as_str() == Some("object")),
        _ => false,
    };
    typed_object
        || schema.get("properties").is_some()
        || schema.get("allOf").is_some()
        || (schema.get("type").is_none()
            && (schema.get("oneOf").is_some() || schema.get("anyOf").is_some()))
}

/// The schema's `default`, as Gloo prints it (Go's `%v`), escaped so it stays inside the
/// template's string literal.
fn default_text(schema: &Value) -> String {
    let raw = match schema.get("default") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    escape_literal(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_and_query() {
        let mut w = Vec::new();
        let q = |name| QueryParam {
            name,
            default: None,
        };
        assert_eq!(
            gloo_path("/api/pets/{id}", &[], &[], &mut w),
            "/api/pets/{{ default(id, \"\") }}"
        );
        assert_eq!(
            gloo_path("/p", &[q("a"), q("b")], &[], &mut w),
            "/p?a={{default(a, \"\")}}&b={{default(b, \"\")}}"
        );
        assert!(w.is_empty());
        assert_eq!(
            gloo_path("/a{b/{c}}", &[], &[], &mut w),
            "/a{b/{{ default(c, \"\") }}}"
        );
        assert_eq!(w.len(), 1);
        assert_eq!(normalize_base("/"), "");
        assert_eq!(normalize_base("v1/"), "/v1");
    }

    #[test]
    fn nested_body_and_defaults() {
        let root = json!({"definitions": {"owner": {"type": "object", "properties": {
            "name": {"type": "string", "default": "a\"b"}}}}});
        let schema = json!({"properties": {
            "owner": {"$ref": "#/definitions/owner"},
            "n": {"type": "integer", "default": 3},
        }});
        let mut w = Vec::new();
        assert_eq!(
            body_template(&root, &schema, &mut w).unwrap(),
            r#"{"n": {{ default(n, "3") }},"owner": {"name": "{{ default(owner.name, "a\"b")}}"}}"#
        );
        assert!(w.is_empty(), "{w:?}");
    }
}
