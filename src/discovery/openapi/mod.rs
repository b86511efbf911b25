//! Reads an API document (Swagger 2.0, OpenAPI 3.0, OpenAPI 3.1; JSON or YAML) into
//! "functions": request templates in the shape Gloo's function discovery (FDS, swagger plugin)
//! writes into an Upstream's `serviceSpec.rest.transformations`.
//!
//! # Why a hand-written reader over `serde_json::Value`
//! Typed models split by version (`openapiv3` reads 3.0 only, Swagger 2 needs another crate,
//! 3.1 none) and fail on the first field they dislike. The parts FDS needs (paths, methods,
//! parameters, request bodies, schemas) have the same shape in all three versions, so one
//! lenient reader over the JSON tree covers them, keeps going past odd fields (each becomes
//! a warning), and never panics: every access is a checked `get`/`as_*`.
//!
//! # Layout
//! - `mod.rs`: public types, parsing (JSON then YAML), version detection, parameter merging,
//!   building and naming functions, [`transformation`].
//! - `swagger2.rs` / `openapi3.rs`: walk one version's document into operations.
//! - `refs.rs`: local `$ref` resolution with a hop limit.
//! - `template.rs`: Gloo's template text (`:path`, query, headers, JSON body).
//! - `tree.rs`: the text into a JSON tree of only the fields discovery reads.
//!
//! # Differences from Gloo (improvements)
//! - Reads 3.0 and 3.1 (Gloo reads Swagger 2.0 only); `servers[0]` gives the base path.
//! - The body template follows the body parameter's schema (refs, `allOf`, nested objects);
//!   Gloo looks up a definition named like the parameter and mangles nested objects.
//! - `$ref` parameters and path-level parameters are used (Gloo ignores both).
//! - Duplicate names get `_2`, `_3`... (Gloo silently keeps the last one).
//! - A non-JSON `consumes` is a warning, not a failure of the whole document.
//! - A body declared as non-JSON (form data, binary) is passed through without forcing
//!   `content-type: application/json` on it.
//! - Functions come in document order (Gloo's map has none).
//! - Every parameter and property name renders (`var("@odata.type")` where Inja has no
//!   spelling for it); `#` in a path key gives fixed query parameters, not path; a query in
//!   the path key is continued with `&`; a parameter's default (or only enum value) fills it.
//! - Duplicate keys: the last wins, with a warning, in JSON and YAML alike.
//!
//! Input bounds: JSON nesting is limited by `serde_json` (128 levels), YAML nesting and alias
//! expansion by `serde-saphyr`'s budget; schema expansion by limits in `template.rs`.

use crate::api::codec::{self, SyntaxError};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

mod openapi3;
mod refs;
mod swagger2;
mod template;
mod tree;

use template::push_once;

/// A read API document: its functions plus what could not be mapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiDocument {
    pub version: SpecVersion,
    /// `info.title`.
    pub title: Option<String>,
    /// Swagger `basePath` or the path part of OpenAPI's first server (`""` for the root).
    pub base_path: String,
    pub functions: Vec<Function>,
    /// Document-level warnings (each function carries its own as well).
    pub warnings: Vec<String>,
}

impl ApiDocument {
    /// Every warning, document-level first, function ones prefixed with the function's name.
    pub fn all_warnings(&self) -> Vec<String> {
        let mut all = self.warnings.clone();
        for f in &self.functions {
            all.extend(f.warnings.iter().map(|w| format!("{}: {w}", f.name)));
        }
        all
    }

    /// The function with this name, if any.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// All functions as Gloo's `serviceSpec.rest.transformations` map (name -> template).
    pub fn transformations(&self) -> Value {
        let map: Map<String, Value> = self
            .functions
            .iter()
            .map(|f| (f.name.clone(), transformation(f)))
            .collect();
        Value::Object(map)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecVersion {
    Swagger2,
    OpenApi30,
    OpenApi31,
}

/// One operation as a Gloo function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// `operationId`, else Gloo's fallback `lower(method) + path with '/' -> '.'`
    /// (`get.pets.{id}`); made unique with `_2`, `_3`...
    pub name: String,
    /// Upper-case method: `GET`, `POST`...
    pub method: String,
    /// Human form: base path + document path, `/api/pets/{id}`.
    pub path_template: String,
    /// Every declared parameter, including ones that could not be mapped (see `warnings`).
    pub parameters: Vec<Parameter>,
    /// Request header templates, excluding `:method` and `:path`. An empty value means
    /// "remove the header" (Gloo's empty template).
    pub headers: IndexMap<String, String>,
    /// Gloo template for `:path`, query parameters appended.
    pub path: String,
    /// JSON body template, or `None` (pass the body through; GET/HEAD clear it).
    pub body: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    /// The value a query or header template takes when the caller gives none: the schema's
    /// `default`, or its only `enum` value (AWS's `Version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Body,
    FormData,
    Cookie,
}

impl ParamLocation {
    /// The spelling used in documents (`in: formData`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Body => "body",
            ParamLocation::FormData => "formData",
            ParamLocation::Cookie => "cookie",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "path" => ParamLocation::Path,
            "query" => ParamLocation::Query,
            "header" => ParamLocation::Header,
            "body" => ParamLocation::Body,
            "formData" => ParamLocation::FormData,
            "cookie" => ParamLocation::Cookie,
            _ => return None,
        })
    }
}

/// Why a text is not a usable API document. Messages name what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("empty document")]
    Empty,
    /// Not well-formed JSON or YAML (the codec's error: format, line, column, reason).
    #[error(transparent)]
    Parse(#[from] SyntaxError),
    #[error("not a Swagger 2.0 / OpenAPI 3.x document: {reason}")]
    NotApiDocument { reason: String },
    #[error("unsupported '{field}' version '{version}' (supported: Swagger 2.0, OpenAPI 3.0, 3.1)")]
    UnsupportedVersion {
        field: &'static str,
        version: String,
    },
    #[error("invalid document at {at}: {message}")]
    Invalid { at: String, message: String },
}

/// Reads a Swagger 2.0 / OpenAPI 3.0 / 3.1 document (JSON or YAML) into functions.
pub fn read_document(text: &str) -> Result<ApiDocument, DocError> {
    let sink = tree::Sink::new();
    let root = parse(text, &sink)?;
    let version = detect_version(&root)?;
    let title = root
        .get("info")
        .and_then(|i| i.get("title"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut doc = DocBuilder {
        warnings: sink.into_warnings(),
        ..Default::default()
    };
    let base_path = match version {
        SpecVersion::Swagger2 => swagger2::read(&root, &mut doc)?,
        SpecVersion::OpenApi30 | SpecVersion::OpenApi31 => openapi3::read(&root, &mut doc)?,
    };
    if doc.operations.is_empty() {
        push_once(
            &mut doc.warnings,
            if root.get("paths").is_none() {
                "document has no 'paths'; no functions".to_string()
            } else {
                "document has no operations; no functions".to_string()
            },
        );
    }
    let functions = build_functions(&root, doc.operations);
    Ok(ApiDocument {
        version,
        title,
        base_path,
        functions,
        warnings: doc.warnings,
    })
}

/// Gloo's transformation template for one function, as it appears under
/// `serviceSpec.rest.transformations.NAME`: `headers` (`:method`, `:path`, the function's
/// headers; an empty text is written as `{}`, proto3's omitted default) and one of `body`
/// (GET/HEAD: empty, which clears the body; others: the JSON template) or `passthrough`
/// (POST/PUT/PATCH without a template). Keys are sorted, as Gloo's YAML has them.
pub fn transformation(f: &Function) -> Value {
    let mut headers: Vec<(&str, &str)> = vec![(":method", &f.method), (":path", &f.path)];
    headers.extend(
        f.headers
            .iter()
            .filter(|(k, _)| k.as_str() != ":method" && k.as_str() != ":path")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let headers: Map<String, Value> = headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), inja(v)))
        .collect();
    let mut out = Map::new();
    let method = f.method.as_str();
    if matches!(method, "GET" | "HEAD") {
        out.insert("body".into(), inja(""));
    } else if let Some(body) = &f.body {
        out.insert("body".into(), inja(body));
    }
    out.insert("headers".into(), Value::Object(headers));
    if !out.contains_key("body") && matches!(method, "POST" | "PUT" | "PATCH") {
        out.insert("passthrough".into(), json!({}));
    }
    Value::Object(out)
}

/// An `InjaTemplate` as proto JSON: `{text: ...}`, or `{}` when the text is empty.
fn inja(text: &str) -> Value {
    if text.is_empty() {
        json!({})
    } else {
        json!({ "text": text })
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and version detection
// ---------------------------------------------------------------------------------------------

/// The document's tree, as [`tree`] builds it (only what discovery reads; duplicate keys: the
/// last wins, with a warning in `sink`).
fn parse(text: &str, sink: &tree::Sink) -> Result<Value, DocError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(DocError::Empty);
    }
    if codec::looks_like_json(text) {
        check_json_nesting(text)?;
        match parse_json(text, sink) {
            Ok(v) => return Ok(v),
            Err(json_err) => {
                // A YAML flow mapping also starts with '{'; give YAML a chance, but report the
                // JSON error, which is what the author most likely meant.
                if let Ok(v) = parse_yaml(text, sink) {
                    return Ok(v);
                }
                return Err(SyntaxError::from_json(&json_err).into());
            }
        }
    }
    parse_yaml(text, sink).map_err(|e| SyntaxError::from_yaml(&e).into())
}

/// Deepest nesting of mappings/sequences accepted, in JSON and YAML. Building a
/// `serde_json::Value` recurses once per level, and a debug build overflows a 2 MiB thread
/// stack (tokio's and the test harness's default) somewhere past 80 levels; serde_json's own
/// limit (128) is too high for that. Real API documents stay under 30.
pub const MAX_NESTING: usize = 64;

/// Rejects JSON nested deeper than [`MAX_NESTING`] before serde_json recurses into it.
fn check_json_nesting(text: &str) -> Result<(), DocError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut line, mut column) = (1u64, 0u64);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(DocError::Parse(SyntaxError {
                        format: "JSON",
                        line: Some(line),
                        column: Some(column),
                        message: format!("nested deeper than {MAX_NESTING} levels"),
                    }));
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// YAML with serde-saphyr's budget (alias expansion, node count, nesting) widened for large
/// API documents (the defaults are sized for config files) but still bounded; nesting is
/// capped at [`MAX_NESTING`].
fn parse_yaml(text: &str, sink: &tree::Sink) -> Result<Value, serde_saphyr::Error> {
    use serde::de::DeserializeSeed;
    let options = serde_saphyr::options! {
        // Every repeated key reaches the tree, which keeps the last (as JSON does) and warns.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        budget: serde_saphyr::budget! {
            max_depth: MAX_NESTING,
            max_nodes: 2_000_000,
            max_events: 8_000_000,
            // Aliases are rare in API documents; replaying them is what a YAML bomb abuses.
            max_recorded_anchor_events: 100_000,
        },
    };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        tree::Node::root(sink).deserialize(de)
    })
}

/// JSON, read as a whole value (trailing characters refused, as `serde_json::from_str` does).
fn parse_json(text: &str, sink: &tree::Sink) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let v = tree::Node::root(sink).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

fn detect_version(root: &Value) -> Result<SpecVersion, DocError> {
    let Some(obj) = root.as_object() else {
        return Err(DocError::NotApiDocument {
            reason: format!("the top level is {}, not a mapping", kind(root)),
        });
    };
    if let Some(v) = obj.get("openapi") {
        let version = version_text(v);
        return if version.starts_with("3.0") {
            Ok(SpecVersion::OpenApi30)
        } else if version.starts_with("3.1") {
            Ok(SpecVersion::OpenApi31)
        } else {
            Err(DocError::UnsupportedVersion {
                field: "openapi",
                version,
            })
        };
    }
    if let Some(v) = obj.get("swagger") {
        let version = version_text(v);
        return if version == "2.0" || version == "2" {
            Ok(SpecVersion::Swagger2)
        } else {
            Err(DocError::UnsupportedVersion {
                field: "swagger",
                version,
            })
        };
    }
    if obj.contains_key("swaggerVersion") {
        return Err(DocError::UnsupportedVersion {
            field: "swaggerVersion",
            version: obj
                .get("swaggerVersion")
                .map(version_text)
                .unwrap_or_default(),
        });
    }
    Err(DocError::NotApiDocument {
        reason: "the top-level mapping has no 'swagger' or 'openapi' field".to_string(),
    })
}

/// `"3.0.3"`, or a YAML number (`swagger: 2.0` reads as a float).
fn version_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => {
            let s = n.to_string();
            if s.contains('.') { s } else { format!("{s}.0") }
        }
        other => other.to_string(),
    }
}

/// A word for a JSON value's kind, for messages.
/// A document path and its (resolved) path item.
pub(crate) type PathItem<'a> = (&'a String, &'a Map<String, Value>);

/// The path items of a document (`paths`), `$ref`s resolved; an item that cannot be read is
/// skipped with a warning. Shared by the Swagger 2.0 and OpenAPI 3 readers.
pub(crate) fn path_items<'a>(
    root: &'a Value,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathItem<'a>>, DocError> {
    let paths = match root.get("paths") {
        None => return Ok(Vec::new()),
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(DocError::Invalid {
                at: "/paths".to_string(),
                message: format!("must be a mapping, found {}", kind(other)),
            });
        }
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        if path.starts_with("x-") {
            continue;
        }
        let item = match refs::resolve(root, item) {
            Ok(r) => r.value,
            Err(e) => {
                push_once(warnings, format!("path '{path}' skipped: {e}"));
                continue;
            }
        };
        let Some(item_obj) = item.as_object() else {
            push_once(
                warnings,
                format!("path '{path}' is {}, not a mapping; skipped", kind(item)),
            );
            continue;
        };
        out.push((path, item_obj));
    }
    Ok(out)
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

// ---------------------------------------------------------------------------------------------
// Operations (filled by the version readers) and parameters
// ---------------------------------------------------------------------------------------------

/// What the version readers produce: one entry per operation, before templating.
#[derive(Default)]
pub(crate) struct DocBuilder<'a> {
    pub operations: Vec<RawOperation<'a>>,
    pub warnings: Vec<String>,
}

pub(crate) struct RawOperation<'a> {
    pub operation_id: Option<String>,
    /// Upper-case method.
    pub method: &'static str,
    /// The path key as written in the document (`/pets/{id}`).
    pub doc_path: &'a str,
    /// Normalized base path for this operation.
    pub base_path: String,
    pub parameters: Vec<Parameter>,
    /// Schema of the JSON request body, if any.
    pub body_schema: Option<&'a Value>,
    /// The request body is declared with a non-JSON media type (form, binary): it is passed
    /// through with the caller's own content-type instead of being labelled JSON.
    pub non_json_body: bool,
    pub warnings: Vec<String>,
}

/// Methods in Gloo's order (then TRACE, which only OpenAPI 3 has).
pub(crate) const METHODS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("trace", "TRACE"),
];

/// A parameter with its (resolved) raw object, for readers that need more (body schema).
pub(crate) struct ParamSpec<'a> {
    pub param: Parameter,
    pub raw: &'a Value,
}

/// Merges path-level and operation-level parameter lists (operation wins on the same name and
/// location), following `$ref`s. Broken entries become warnings.
pub(crate) fn collect_parameters<'a>(
    root: &'a Value,
    lists: [Option<&'a Value>; 2],
    warnings: &mut Vec<String>,
) -> Vec<ParamSpec<'a>> {
    let mut out: IndexMap<(&'a str, ParamLocation), ParamSpec<'a>> = IndexMap::new();
    for list in lists.into_iter().flatten() {
        let Some(items) = list.as_array() else {
            push_once(
                warnings,
                format!("'parameters' is {}, not a sequence; ignored", kind(list)),
            );
            continue;
        };
        for item in items {
            let raw = match refs::resolve(root, item) {
                Ok(r) => r.value,
                Err(e) => {
                    push_once(warnings, format!("parameter skipped: {e}"));
                    continue;
                }
            };
            let name = raw.get("name").and_then(Value::as_str);
            let location = raw.get("in").and_then(Value::as_str);
            let (Some(name), Some(location)) = (name, location) else {
                push_once(
                    warnings,
                    "parameter without a string 'name' and 'in' skipped".to_string(),
                );
                continue;
            };
            let Some(loc) = ParamLocation::parse(location) else {
                push_once(
                    warnings,
                    format!("parameter '{name}' has unknown location 'in: {location}'; skipped"),
                );
                continue;
            };
            let required = loc == ParamLocation::Path
                || raw
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            let param = Parameter {
                name: name.to_string(),
                location: loc,
                required,
                default: param_default(root, raw),
            };
            // Same name and location again (path level, then operation level): the later one
            // wins, in the earlier one's place.
            out.insert((name, loc), ParamSpec { param, raw });
        }
    }
    out.into_values().collect()
}

/// A parameter's `default` (Swagger 2.0: on the parameter; OpenAPI 3: on its schema), else its
/// only `enum` value, as text.
fn param_default(root: &Value, raw: &Value) -> Option<String> {
    let schema = raw
        .get("schema")
        .and_then(|s| refs::resolve(root, s).ok())
        .map(|r| r.value);
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    [Some(raw), schema].into_iter().flatten().find_map(|s| {
        s.get("default").and_then(text).or_else(|| {
            match s.get("enum").and_then(Value::as_array).map(Vec::as_slice) {
                Some([only]) => text(only),
                _ => None,
            }
        })
    })
}

/// Headers the function's template sets itself; a parameter of the same name is skipped.
const RESERVED_HEADERS: [&str; 5] = [
    ":method",
    ":path",
    "content-type",
    "content-length",
    "transfer-encoding",
];

fn build_functions(root: &Value, ops: Vec<RawOperation<'_>>) -> Vec<Function> {
    let mut functions: Vec<Function> = ops.into_iter().map(|op| build_function(root, op)).collect();
    // Unique names: later duplicates get the first free `_N` suffix (N >= 2), free meaning
    // used by no function at all, so a later literal `x_2` cannot collide either.
    let mut taken: std::collections::HashSet<String> =
        functions.iter().map(|f| f.name.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    // Next suffix to try per name, so many duplicates of one name stay linear.
    let mut next_suffix: std::collections::HashMap<String, usize> = Default::default();
    for f in &mut functions {
        if seen.insert(f.name.clone()) {
            continue;
        }
        let n = next_suffix.entry(f.name.clone()).or_insert(2);
        let new_name = loop {
            let candidate = format!("{}_{n}", f.name);
            *n += 1;
            if !taken.contains(&candidate) {
                break candidate;
            }
        };
        f.warnings.push(format!(
            "duplicate function name '{}' renamed to '{new_name}'",
            f.name
        ));
        taken.insert(new_name.clone());
        seen.insert(new_name.clone());
        f.name = new_name;
    }
    functions
}

fn build_function(root: &Value, op: RawOperation<'_>) -> Function {
    let mut warnings = op.warnings;
    let method = op.method;
    let no_body = matches!(method, "GET" | "HEAD");
    let (doc_path, fixed_query) = template::split_fragment(op.doc_path);
    let path_template = template::join_path(&op.base_path, doc_path);
    let name = match op.operation_id {
        Some(id) if !id.trim().is_empty() => id,
        _ => format!(
            "{}{}",
            method.to_ascii_lowercase(),
            op.doc_path.replace('/', ".")
        ),
    };

    let mut headers = IndexMap::new();
    if no_body {
        // Gloo: tell Envoy to drop the body and its headers entirely.
        headers.insert("content-length".to_string(), "0".to_string());
        headers.insert("content-type".to_string(), String::new());
        headers.insert("transfer-encoding".to_string(), String::new());
    } else if !op.non_json_body {
        headers.insert("content-type".to_string(), "application/json".to_string());
    }

    let mut query = Vec::new();
    for p in &op.parameters {
        match p.location {
            ParamLocation::Path => {}
            ParamLocation::Body => {}
            ParamLocation::Query => query.push(template::QueryParam {
                name: &p.name,
                default: p.default.as_deref(),
            }),
            ParamLocation::Header => {
                let lower = p.name.to_ascii_lowercase();
                if RESERVED_HEADERS.contains(&lower.as_str()) {
                    push_once(
                        &mut warnings,
                        format!(
                            "header parameter '{}' is set by the template itself; skipped",
                            p.name
                        ),
                    );
                    continue;
                }
                headers.insert(
                    p.name.clone(),
                    template::param_template(&p.name, p.default.as_deref()),
                );
            }
            ParamLocation::FormData | ParamLocation::Cookie => {
                push_once(
                    &mut warnings,
                    format!(
                        "parameter '{}' ({}) cannot be mapped; skipped",
                        p.name,
                        p.location.as_str()
                    ),
                );
            }
        }
    }
    let path = template::gloo_path(&path_template, &query, &fixed_query, &mut warnings);

    let body = match op.body_schema {
        Some(_) if no_body => {
            push_once(
                &mut warnings,
                format!("{method} cannot carry a request body; body dropped"),
            );
            None
        }
        Some(schema) => template::body_template(root, schema, &mut warnings),
        None => None,
    };

    Function {
        name,
        method: method.to_string(),
        path_template,
        parameters: op.parameters,
        headers,
        path,
        body,
        warnings,
    }
}
