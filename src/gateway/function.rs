//! Function calls: the route's parameters extract variables from the request (headers, path),
//! the JSON body adds its keys, and the function's templates (Gloo's Inja syntax, rendered by
//! minijinja) build the upstream request.
//!
//! Values taken from the request are escaped for where they land: percent-encoded in the path,
//! stripped of line breaks in headers, JSON-escaped in the body.

use super::inja::Json;
use crate::api::validate::extractor_variables;
use crate::api::{Parameters, Transformation};
use http::header::HeaderName;
use minijinja::Environment;
use minijinja::value::Value as JValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything but RFC 3986's unreserved characters is encoded, so a value is one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where an extractor reads from.
#[derive(Debug, Clone)]
pub enum Source {
    Header(HeaderName),
    /// The request path (`:path`, with the query string as Gloo sees it).
    Path,
}

/// One `{var}` template of a route's parameters, as a regex.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub source: Source,
    regex: Arc<Regex>,
    vars: Vec<String>,
}

/// Compiles a regex, or hands out one compiled before.
pub type RegexCache<'a> = &'a dyn Fn(&str) -> Result<Arc<Regex>, String>;

impl Extractor {
    fn compile(source: Source, template: &str, regexes: RegexCache) -> Result<Self, String> {
        let vars = extractor_variables(template)?;
        let mut re = String::from("^");
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            re.push_str(&regex::escape(&rest[..open]));
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .unwrap_or(rest.len() - 1);
            // Gloo's variable class: one path segment.
            re.push_str(r"([^/?&#]+)");
            rest = &rest[close + 1..];
        }
        re.push_str(&regex::escape(rest));
        // A path template also matches when a query string follows.
        if matches!(source, Source::Path) {
            re.push_str(r"(?:\?.*)?");
        }
        re.push('$');
        let regex = regexes(&re)?;
        Ok(Extractor {
            source,
            regex,
            vars,
        })
    }

    /// Adds the variables this extractor finds in `value` to `out`.
    fn extract(&self, value: &str, out: &mut BTreeMap<String, String>) {
        if let Some(c) = self.regex.captures(value) {
            for (i, var) in self.vars.iter().enumerate() {
                if let Some(m) = c.get(i + 1) {
                    let decoded =
                        percent_encoding::percent_decode_str(m.as_str()).decode_utf8_lossy();
                    out.insert(var.clone(), decoded.into_owned());
                }
            }
        }
    }
}

/// A route's parameters compiled: the extractors that take variables from its path and
/// headers (REST and gRPC functions alike).
pub fn extractors(
    params: Option<&Parameters>,
    regexes: RegexCache,
) -> Result<Vec<Extractor>, String> {
    let mut out = Vec::new();
    if let Some(p) = params {
        for (h, tpl) in &p.headers {
            let source = if h == ":path" {
                Source::Path
            } else {
                Source::Header(
                    HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                        .map_err(|_| format!("`{h}` is not a header name"))?,
                )
            };
            out.push(Extractor::compile(source, tpl, regexes)?);
        }
        if let Some(path) = &p.path {
            out.push(Extractor::compile(Source::Path, path, regexes)?);
        }
    }
    Ok(out)
}

/// The variables `extractors` find in a request (`path_and_query` is the client's `:path`).
pub fn extract(
    extractors: &[Extractor],
    path_and_query: &str,
    headers: super::matcher::Headers<'_>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for x in extractors {
        let value = match &x.source {
            Source::Path => Some(path_and_query),
            Source::Header(h) => headers.get(h.as_str()),
        };
        if let Some(v) = value {
            x.extract(v, &mut out);
        }
    }
    out
}

/// How the function's body is made.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyMode {
    /// `body: {text: ...}`: rendered.
    Template,
    /// `body: {}`: no body.
    Empty,
    /// No `body` key (or Gloo's `passthrough`): the client's body goes on.
    Passthrough,
}

/// A function's compiled templates. Shared by every route that calls an identical function
/// (one document served by many upstreams compiles once), so a table of thousands of function
/// routes holds a handful of template environments.
pub struct Templates {
    env: Environment<'static>,
    /// Templates without tags (`GET`, `/api/pets`), by name: their text is what they render,
    /// with no template engine (nor variables) involved.
    literals: Vec<(String, String)>,
    /// Headers the template sets (`Some` template name) or removes (`None`).
    headers: Vec<(HeaderName, Option<String>)>,
    has_method: bool,
    has_path: bool,
    body: BodyMode,
}

/// A compiled function call: the function's templates plus the route's extractors.
pub struct FunctionCall {
    pub name: String,
    templates: Arc<Templates>,
    extractors: Vec<Extractor>,
}

impl std::fmt::Debug for FunctionCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionCall")
            .field("name", &self.name)
            .finish()
    }
}

/// Gloo's Inja helper: `default(x, "")` is `x` unless it is undefined or null.
fn default_fn(v: JValue, fallback: JValue) -> JValue {
    if v.is_undefined() || v.is_none() {
        fallback
    } else {
        v
    }
}

/// The request after the function's templates: what goes upstream.
#[derive(Debug)]
pub struct RenderedCall {
    pub method: Option<String>,
    pub path: Option<String>,
    pub set_headers: Vec<(HeaderName, String)>,
    pub remove_headers: Vec<HeaderName>,
    pub body: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the request body is not JSON: {0}")]
    BodyNotJson(String),
    #[error("function template failed: {0}")]
    Template(String),
    /// A value `.` or `..` would be a dot-segment of the upstream path, which the upstream
    /// resolves against the function's path (`/api/pets/../admin`): refused, not sent.
    #[error("a parameter value `.` or `..` cannot be a path segment")]
    DotSegment,
}

impl CallError {
    /// The answer to a request whose function call `function` failed so: status,
    /// `x-epoxy-error` code, message. Both transports answer with it.
    pub fn answer(&self, function: &str) -> (http::StatusCode, &'static str, String) {
        use http::StatusCode;
        match self {
            CallError::DotSegment => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("function `{function}`: {self}"),
            ),
            CallError::BodyNotJson(e) => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("function `{function}` needs a JSON body: {e}"),
            ),
            CallError::Template(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "function-error",
                self.to_string(),
            ),
        }
    }
}

impl Templates {
    pub fn compile(t: &Transformation) -> Result<Self, String> {
        // An empty environment (no builtin filter tables per function: a table of thousands of
        // function routes stays small) with Inja's functions that templates use.
        let mut env = Environment::empty();
        let mut literals = Vec::new();
        let mut add = |name: String, text: &str, env: &mut Environment<'static>| {
            if is_literal(text) {
                literals.push((name, text.to_string()));
                Ok(())
            } else {
                env.add_template_owned(name, super::inja::to_minijinja(text).into_owned())
            }
        };
        env.add_function("default", default_fn);
        // Booleans as Inja (and JSON) write them: `true`, not minijinja's `True`, which would
        // make a JSON body invalid.
        env.set_formatter(|out, state, value| {
            if value.kind() == minijinja::value::ValueKind::Bool {
                let text = if value.is_true() { "true" } else { "false" };
                out.write_str(text).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_function("var", super::inja::var);
        env.add_function("upper", |s: String| s.to_uppercase());
        env.add_function("lower", |s: String| s.to_lowercase());
        env.add_function("length", |v: JValue| v.len().unwrap_or(0));
        let mut headers = Vec::new();
        let mut has_method = false;
        let mut has_path = false;
        for (h, tpl) in &t.headers {
            let lower = h.to_ascii_lowercase();
            match lower.as_str() {
                ":method" | ":path" => {
                    if let Some(text) = &tpl.text {
                        add(lower.clone(), text, &mut env).map_err(|e| format!("{h}: {e}"))?;
                        if lower == ":method" {
                            has_method = true;
                        } else {
                            has_path = true;
                        }
                    }
                }
                // The gateway frames the body itself.
                "content-length" | "transfer-encoding" => {}
                _ => {
                    let hn = HeaderName::from_bytes(lower.as_bytes())
                        .map_err(|_| format!("`{h}` is not a header name"))?;
                    match &tpl.text {
                        Some(text) => {
                            let tname = format!("h:{lower}");
                            add(tname.clone(), text, &mut env).map_err(|e| format!("{h}: {e}"))?;
                            headers.push((hn, Some(tname)));
                        }
                        None => headers.push((hn, None)),
                    }
                }
            }
        }
        let body = match &t.body {
            Some(b) => match &b.text {
                Some(text) => {
                    add("body".into(), text, &mut env).map_err(|e| format!("body: {e}"))?;
                    BodyMode::Template
                }
                None if b.extra.contains_key("passthrough") => BodyMode::Passthrough,
                None => BodyMode::Empty,
            },
            None if t.extra.contains_key("passthrough") => BodyMode::Passthrough,
            None => BodyMode::Passthrough,
        };
        Ok(Templates {
            env,
            literals,
            headers,
            has_method,
            has_path,
            body,
        })
    }
}

impl FunctionCall {
    /// Compiles the function's templates and the route's parameters.
    pub fn compile(
        name: &str,
        t: &Transformation,
        params: Option<&Parameters>,
    ) -> Result<Self, String> {
        let regexes = |p: &str| Regex::new(p).map(Arc::new).map_err(|e| e.to_string());
        Self::with_templates(name, Arc::new(Templates::compile(t)?), params, &regexes)
    }

    /// A call of already compiled templates, with the route's parameters; the extractors'
    /// regexes come from `regexes` (a table of thousands of function routes with the same
    /// parameters holds one compiled regex, not thousands).
    pub fn with_templates(
        name: &str,
        templates: Arc<Templates>,
        params: Option<&Parameters>,
        regexes: RegexCache,
    ) -> Result<Self, String> {
        Ok(FunctionCall {
            name: name.to_string(),
            templates,
            extractors: extractors(params, regexes)?,
        })
    }

    /// Whether the body template needs the request body to be JSON.
    pub fn reads_body(&self) -> bool {
        self.templates.body == BodyMode::Template
    }

    /// Renders the call for a request: `path_and_query` is the client's `:path`.
    pub fn render(
        &self,
        path_and_query: &str,
        headers: super::matcher::Headers<'_>,
        body: &[u8],
    ) -> Result<RenderedCall, CallError> {
        let mut vars: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        // Body keys first; extractors override them (they are the route's explicit choice).
        // A body that is not a JSON object is an error only where the body template needs it.
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(serde_json::Value::Object(m)) => vars.extend(m),
                Ok(_) if self.reads_body() => {
                    return Err(CallError::BodyNotJson("expected a JSON object".into()));
                }
                Err(e) if self.reads_body() => return Err(CallError::BodyNotJson(e.to_string())),
                _ => {}
            }
        }
        for (k, v) in extract(&self.extractors, path_and_query, headers) {
            // `{id}` from a header or path is a string; numbers stay numbers in JSON bodies.
            let value = v
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::String(v));
            vars.insert(k, value);
        }
        let ctx = |escape: fn(&str) -> String, raw: bool| -> JValue {
            let m: BTreeMap<String, JValue> = vars
                .iter()
                .map(|(k, v)| (k.clone(), Json::convert(v, escape, raw)))
                .collect();
            JValue::from(m)
        };
        // The variables escaped for where they go (header values, the path, a JSON body),
        // built only for the places a template (not a literal) renders into.
        let contexts: [OnceCell<JValue>; 3] = Default::default();
        let escapes: [fn(&str) -> String; 3] = [
            |s| s.replace(['\r', '\n', '\0'], ""),
            path_segment,
            json_escape,
        ];
        let t = &*self.templates;
        let render = |name: &str, into: Place| -> Result<String, CallError> {
            if let Some((_, text)) = t.literals.iter().find(|(n, _)| n == name) {
                return Ok(text.clone());
            }
            let c = contexts[into as usize]
                .get_or_init(|| ctx(escapes[into as usize], matches!(into, Place::Body)));
            t.env
                .get_template(name)
                .and_then(|t| t.render(c))
                .map_err(|e| CallError::Template(e.to_string()))
        };
        let method = if t.has_method {
            Some(render(":method", Place::Header)?.trim().to_string())
        } else {
            None
        };
        let path = if t.has_path {
            let p = render(":path", Place::Path)?;
            if p.contains(DOT_SEGMENT) {
                return Err(CallError::DotSegment);
            }
            Some(p)
        } else {
            None
        };
        let mut set_headers = Vec::new();
        let mut remove_headers = Vec::new();
        for (h, name) in &t.headers {
            match name {
                Some(template) => {
                    let v = render(template, Place::Header)?;
                    if v.is_empty() {
                        remove_headers.push(h.clone());
                    } else {
                        set_headers.push((h.clone(), v.replace(['\r', '\n'], "")));
                    }
                }
                None => remove_headers.push(h.clone()),
            }
        }
        let body = match t.body {
            BodyMode::Template => Some(render("body", Place::Body)?),
            BodyMode::Empty => Some(String::new()),
            BodyMode::Passthrough => None,
        };
        Ok(RenderedCall {
            method,
            path,
            set_headers,
            remove_headers,
            body,
        })
    }
}

/// Where a template's output goes, which says how variables are escaped in it.
#[derive(Clone, Copy)]
enum Place {
    Header = 0,
    Path = 1,
    Body = 2,
}

/// Whether a template is its own output: no tags, and no trailing newline (which the engine
/// would drop).
fn is_literal(text: &str) -> bool {
    !(["{{", "{%", "{#"].iter().any(|tag| text.contains(tag)) || text.ends_with('\n'))
}

/// What a path value `.` or `..` renders as: a byte percent-encoding never yields, found after
/// rendering and refused ([`CallError::DotSegment`]).
const DOT_SEGMENT: char = '\0';

/// A value as one path segment: percent-encoded, and never a dot-segment (`%2e%2e` from a
/// request is decoded to `..` before this).
fn path_segment(s: &str) -> String {
    if s == "." || s == ".." {
        DOT_SEGMENT.to_string()
    } else {
        utf8_percent_encode(s, SEGMENT).to_string()
    }
}

/// A string as it goes between the quotes of a JSON string.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Template;
    use indexmap::IndexMap;

    fn tpl(s: &str) -> Template {
        Template {
            text: Some(s.into()),
            extra: Default::default(),
        }
    }

    fn find_pet() -> Transformation {
        let mut headers = IndexMap::new();
        headers.insert(":method".into(), tpl("GET"));
        headers.insert(":path".into(), tpl(r#"/api/pets/{{ default(id, "") }}"#));
        headers.insert("content-type".into(), Template::default());
        Transformation {
            headers,
            body: Some(Template::default()),
            extra: Default::default(),
        }
    }

    #[test]
    fn path_variable_is_percent_encoded() {
        let mut p = Parameters::default();
        p.headers
            .insert(":path".into(), "/petstore/findWithId/{id}".into());
        let f = FunctionCall::compile("findPetById", &find_pet(), Some(&p)).unwrap();
        let r = f
            .render(
                "/petstore/findWithId/1",
                (&http::HeaderMap::new()).into(),
                b"",
            )
            .unwrap();
        assert_eq!(r.path.as_deref(), Some("/api/pets/1"));
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert_eq!(r.body.as_deref(), Some(""));
        let r = f
            .render(
                "/petstore/findWithId/..%2F..%2Fadmin%3Fx",
                (&http::HeaderMap::new()).into(),
                b"",
            )
            .unwrap();
        assert_eq!(r.path.as_deref(), Some("/api/pets/..%2F..%2Fadmin%3Fx"));
    }

    #[test]
    fn header_variable_and_body_variable() {
        let mut p = Parameters::default();
        p.headers.insert("x-pet".into(), "{id}".into());
        let mut t = find_pet();
        t.body = Some(tpl(
            r#"{"id": {{ default(id, "") }},"name": "{{ default(name, "")}}"}"#,
        ));
        let f = FunctionCall::compile("f", &t, Some(&p)).unwrap();
        let mut h = http::HeaderMap::new();
        h.insert("x-pet", "7".parse().unwrap());
        let r = f
            .render("/x", (&h).into(), br#"{"name": "a\"b\nc"}"#)
            .unwrap();
        assert_eq!(r.path.as_deref(), Some("/api/pets/7"));
        let body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["id"], 7);
        assert_eq!(body["name"], "a\"b\nc");
        assert!(matches!(
            f.render("/x", (&h).into(), b"not json"),
            Err(CallError::BodyNotJson(_))
        ));
    }

    #[test]
    fn literals_render_as_the_engine_would() {
        let env = Environment::empty();
        for text in [
            "GET",
            "/api/pets",
            r#"{"name": "x", "tags": {"a": 1}}"#,
            "a } b { c",
            "",
            "trailing\n",
            "{{ 1 }}",
        ] {
            let engine = env.render_str(text, ()).unwrap();
            if is_literal(text) {
                assert_eq!(engine, text, "{text:?}");
            } else {
                assert!(text.contains("{{") || text.ends_with('\n'), "{text:?}");
            }
        }
        // A literal method with a templated path: both as before.
        let mut t = find_pet();
        t.headers.insert("x-kind".into(), tpl("pet"));
        let f = FunctionCall::compile("f", &t, None).unwrap();
        assert_eq!(f.templates.literals.len(), 2, "`GET` and `pet`");
        let r = f
            .render("/x", (&http::HeaderMap::new()).into(), br#"{"id": 7}"#)
            .unwrap();
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert_eq!(r.path.as_deref(), Some("/api/pets/7"));
        assert!(
            r.set_headers
                .iter()
                .any(|(n, v)| n == "x-kind" && v == "pet")
        );
    }

    #[test]
    fn inja_names_nested_members_and_dot_segments() {
        let mut p = Parameters::default();
        p.headers.insert(":path".into(), "/u/{user-id}".into());
        p.headers.insert("x-amz-date".into(), "{X-Amz-Date}".into());
        let mut t = find_pet();
        t.headers.insert(
            ":path".into(),
            tpl(r#"/users/{{ default(user-id, "") }}?d={{default(X-Amz-Date, "")}}"#),
        );
        t.body = Some(tpl(
            r#"{"t": "{{ default(var("@odata.type"), "")}}","n": "{{ default(owner.name, "")}}","o": {{ default(owner, "") }}}"#,
        ));
        let f = FunctionCall::compile("f", &t, Some(&p)).unwrap();
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-date", "2026".parse().unwrap());
        let body = br##"{"@odata.type": "#x", "owner": {"name": "a\"b"}}"##;
        let r = f.render("/u/me", (&h).into(), body).unwrap();
        assert_eq!(r.path.as_deref(), Some("/users/me?d=2026"));
        let text = r.body.as_deref().unwrap();
        let b: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(b["t"], "#x");
        assert_eq!(b["n"], "a\"b");
        assert_eq!(b["o"]["name"], "a\"b");
        for v in ["..", "%2e%2E", "."] {
            let e = f.render(&format!("/u/{v}"), (&h).into(), b"").unwrap_err();
            assert!(matches!(e, CallError::DotSegment), "{v}: {e}");
        }
        let r = f.render("/u/...", (&h).into(), b"").unwrap();
        assert_eq!(r.path.as_deref(), Some("/users/...?d=2026"));
        // A member of an object the body does not have is empty, as in Inja; a loop still
        // sees `loop`.
        assert_eq!(r.body.as_deref(), Some(r#"{"t": "","n": "","o": }"#));
        let env = Templates::compile(&Transformation {
            headers: [(
                ":path".to_string(),
                tpl("{% for x in [5, 6] %}{{ loop.index }}{{ x }}{% endfor %}"),
            )]
            .into_iter()
            .collect(),
            body: None,
            extra: Default::default(),
        })
        .unwrap();
        let f = FunctionCall::with_templates("l", Arc::new(env), None, &|p: &str| {
            Regex::new(p).map(Arc::new).map_err(|e| e.to_string())
        })
        .unwrap();
        let r = f.render("/", (&h).into(), b"").unwrap();
        assert_eq!(r.path.as_deref(), Some("1526"));
    }
}
