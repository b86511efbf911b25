//! Envoy's gRPC-JSON transcoder, as Gloo configures it on an upstream
//! (`serviceSpec.grpcJsonTranscoder`): an HTTP request matching a method's `google.api.http`
//! rule (a verb and a path template, the body or one of its fields, query parameters into
//! fields) becomes a call of that method, and the response message comes back as JSON.
//!
//! The rules are read from the descriptor set's method options and compiled once per
//! configuration: path templates into segment matchers, every field path resolved against
//! the request message. A request then costs a walk over the bindings and one JSON object.

use super::method::{self, Method};
use crate::api::GrpcJsonTranscoder;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// A transcoder setting that cannot be served; `field` is its name in Gloo's YAML.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn config(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

/// The compiled transcoder of one upstream.
#[derive(Debug)]
pub struct Transcoder {
    /// Most specific first (more literal segments, no `**`), then in declaration order.
    bindings: Vec<Binding>,
    print: SerializeOptions,
    pretty: bool,
    preserve_names: bool,
    ignored_query: Vec<String>,
    ignore_unknown_query: bool,
    /// Errors answer a `google.rpc.Status` as JSON.
    pub convert_grpc_status: bool,
    /// The call goes to the upstream of the route the HTTP request matched (else the gRPC
    /// path is routed again, as Envoy clears its route cache).
    pub match_incoming_request_route: bool,
}

/// One HTTP rule of a method (its own or an additional binding, or the automatic mapping).
#[derive(Debug)]
struct Binding {
    verb: http::Method,
    template: Template,
    /// The template as written, and the rule's place in the descriptor set (the bindings
    /// are matched most specific first, listed in this order).
    text: String,
    order: usize,
    method: Method,
    body: BodyRule,
    /// The response field answered instead of the whole message.
    response_body: Option<FieldDescriptor>,
}

#[derive(Debug)]
enum BodyRule {
    /// The body is not read (GET and the like).
    None,
    /// `body: "*"`: the body is the request message.
    Whole,
    /// `body: "field"`: the body is that field's value.
    Field(Vec<FieldDescriptor>),
}

/// A method the transcoder serves, by its first HTTP rule: how `get upstreams` and the
/// console list the upstream's functions.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// `package.Service/Method`.
    pub path: String,
    /// The request message's type: `books.v1.GetBookRequest`.
    pub input: String,
    pub verb: http::Method,
    /// The rule's path template as written: `/v1/shelves/{shelf}/books/{id}`.
    pub template: String,
    /// The request fields the path's variables set (`shelf`, `book.id`), in order.
    pub variables: Vec<String>,
    /// What the body is: `*` (the request message) or a field of it; `None`: not read.
    pub body: Option<String>,
}

/// A path template: `/v1/{name=shelves/*}/books/{id}:verb`.
#[derive(Debug)]
struct Template {
    segments: Vec<Segment>,
    verb: Option<String>,
    variables: Vec<Variable>,
    literals: usize,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    /// `*`: one segment.
    One,
    /// `**`: the rest of the path (the template's last segment).
    Rest,
}

/// A variable over segments `start..end` (`end` past the last segment for `**`).
#[derive(Debug)]
struct Variable {
    field: Vec<FieldDescriptor>,
    start: usize,
    end: usize,
}

/// A request matched to a binding, with its path variables' values.
#[derive(Debug)]
pub struct Bound<'t> {
    binding: &'t Binding,
    values: Vec<(&'t [FieldDescriptor], String)>,
}

impl<'t> Bound<'t> {
    /// The gRPC method called, `package.Service/Method`.
    pub fn method_path(&self) -> &'t str {
        &self.binding.method.path
    }

    /// The gRPC method called.
    pub fn method(&self) -> &'t Method {
        &self.binding.method
    }
}

/// The `google.api.http` extension's fields (google/api/http.proto, `HttpRule`).
const VERBS: [(&str, http::Method); 5] = [
    ("get", http::Method::GET),
    ("put", http::Method::PUT),
    ("post", http::Method::POST),
    ("delete", http::Method::DELETE),
    ("patch", http::Method::PATCH),
];

impl Transcoder {
    /// Compiles Gloo's settings; `read` reads a `protoDescriptor` file.
    pub fn compile(
        spec: &GrpcJsonTranscoder,
        read: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<Transcoder, ConfigError> {
        let (field, pool) = match (&spec.proto_descriptor_bin, &spec.proto_descriptor) {
            (Some(b64), None) => (
                "protoDescriptorBin",
                method::pool(b64).map_err(|e| config("protoDescriptorBin", e))?,
            ),
            (None, Some(file)) => {
                let raw =
                    read(file).map_err(|e| config("protoDescriptor", format!("{file}: {e}")))?;
                (
                    "protoDescriptor",
                    method::pool_of_bytes(&raw)
                        .map_err(|e| config("protoDescriptor", format!("{file}: {e}")))?,
                )
            }
            (Some(_), Some(_)) => {
                return Err(config(
                    "protoDescriptor",
                    "give the descriptor set once: `protoDescriptor` or `protoDescriptorBin`",
                ));
            }
            (None, None) => {
                return Err(config(
                    "protoDescriptorBin",
                    "a descriptor set is required (`protoDescriptorBin` or `protoDescriptor`)",
                ));
            }
        };
        if spec.services.is_empty() {
            return Err(config("services", "name at least one service to transcode"));
        }
        let mut bindings = Vec::new();
        for name in &spec.services {
            let svc = pool.get_service_by_name(name).ok_or_else(|| {
                config(
                    "services",
                    format!(
                        "the descriptor set defines no service `{name}` (give `package.Service`)"
                    ),
                )
            })?;
            for m in svc.methods() {
                let rules = http_rules(&pool, &m.options());
                if rules.is_empty() && !spec.auto_mapping {
                    continue;
                }
                let method = Method::of(&m).map_err(|e| config(field, e))?;
                if rules.is_empty() {
                    // `autoMapping`: POST /package.Service/Method with the message as body.
                    let text = format!("/{}", method.path);
                    let template = Template::parse(&text, &method.input)
                        .map_err(|e| config(field, format!("`{}`: {e}", method.path)))?;
                    bindings.push(Binding {
                        verb: http::Method::POST,
                        template,
                        text,
                        order: bindings.len(),
                        method,
                        body: BodyRule::Whole,
                        response_body: None,
                    });
                    continue;
                }
                for rule in rules {
                    let b = Binding::compile(&rule, method.clone(), bindings.len())
                        .map_err(|e| config(field, format!("`{}`: {e}", method.path)))?;
                    bindings.push(b);
                }
            }
        }
        bindings.sort_by_key(|b| {
            let rest = b.template.segments.last() == Some(&Segment::Rest);
            (rest, std::cmp::Reverse(b.template.literals))
        });
        let p = spec.print_options.clone().unwrap_or_default();
        Ok(Transcoder {
            bindings,
            print: SerializeOptions::new()
                .skip_default_fields(!p.always_print_primitive_fields)
                .use_enum_numbers(p.always_print_enums_as_ints)
                .use_proto_field_name(p.preserve_proto_field_names),
            pretty: p.add_whitespace,
            preserve_names: p.preserve_proto_field_names,
            ignored_query: spec.ignored_query_parameters.clone(),
            ignore_unknown_query: spec.ignore_unknown_query_parameters,
            convert_grpc_status: spec.convert_grpc_status,
            match_incoming_request_route: spec.match_incoming_request_route,
        })
    }

    /// How answers are printed as JSON (the spec's `printOptions`).
    pub fn print_options(&self) -> &SerializeOptions {
        &self.print
    }

    /// The methods served, in the descriptor set's order, each by its first rule.
    pub fn served(&self) -> Vec<Served> {
        let mut rules: Vec<&Binding> = self.bindings.iter().collect();
        rules.sort_by_key(|b| b.order);
        let mut out: Vec<Served> = Vec::new();
        for b in rules {
            if out.iter().any(|s| s.path == b.method.path) {
                continue;
            }
            let name = |path: &[FieldDescriptor]| {
                path.iter().map(|f| f.name()).collect::<Vec<_>>().join(".")
            };
            out.push(Served {
                path: b.method.path.clone(),
                input: b.method.input.full_name().to_string(),
                verb: b.verb.clone(),
                template: b.text.clone(),
                variables: b
                    .template
                    .variables
                    .iter()
                    .map(|v| name(&v.field))
                    .collect(),
                body: match &b.body {
                    BodyRule::None => None,
                    BodyRule::Whole => Some("*".into()),
                    BodyRule::Field(path) => Some(name(path)),
                },
            });
        }
        out
    }

    /// How many HTTP rules were compiled.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The binding a request matches, if any; gRPC requests themselves are not transcoded.
    pub fn bind(
        &self,
        verb: &http::Method,
        path: &str,
        content_type: Option<&str>,
    ) -> Option<Bound<'_>> {
        if content_type.is_some_and(|c| c.starts_with("application/grpc")) {
            return None;
        }
        let segments = split(path)?;
        self.bindings.iter().find_map(|b| {
            if b.verb != *verb {
                return None;
            }
            let values = b.template.matches(&segments)?;
            Some(Bound { binding: b, values })
        })
    }

    /// The request message for a bound request: its body as the rule says, the query
    /// parameters, then the path variables; an error says why it is not the message (400).
    pub fn request(
        &self,
        bound: &Bound<'_>,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        let b = bound.binding;
        let input = &b.method.input;
        let blank = body.iter().all(u8::is_ascii_whitespace);
        let parsed = || -> Result<Value, String> {
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
        };
        let mut obj = Map::new();
        match &b.body {
            BodyRule::Whole if !blank => match parsed()? {
                Value::Object(m) => obj = m,
                _ => {
                    return Err(format!(
                        "the body is not a JSON object (a `{}`)",
                        input.full_name()
                    ));
                }
            },
            BodyRule::Field(path) if !blank => set(&mut obj, path, parsed()?),
            _ => {}
        }
        // With `body: "*"` every field comes from the body (google/api/http.proto).
        if !matches!(b.body, BodyRule::Whole) {
            for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
                if self.ignored_query.iter().any(|i| *i == k) {
                    continue;
                }
                match resolve_json(input, &k) {
                    Some(path) => {
                        let leaf = &path[path.len() - 1];
                        set(&mut obj, &path, scalar(leaf, &v));
                    }
                    None if self.ignore_unknown_query => {}
                    None => {
                        return Err(format!(
                            "query parameter `{k}` is no field of `{}`",
                            input.full_name()
                        ));
                    }
                }
            }
        }
        for (path, v) in &bound.values {
            let leaf = &path[path.len() - 1];
            set(&mut obj, path, scalar(leaf, v));
        }
        b.method.request(Value::Object(obj))
    }

    /// The response messages as the JSON body (print options honoured).
    pub fn response(
        &self,
        bound: &Bound<'_>,
        messages: &[bytes::Bytes],
    ) -> Result<Vec<u8>, String> {
        let b = bound.binding;
        let mut json = b.method.response_with(messages, &self.print)?;
        if let Some(f) = &b.response_body {
            let key = if self.preserve_names {
                f.name()
            } else {
                f.json_name()
            };
            let pick = |v: Value| match v {
                Value::Object(mut m) => m.remove(key).unwrap_or(Value::Null),
                other => other,
            };
            json = match json {
                Value::Array(items) if b.method.server_streaming => {
                    Value::Array(items.into_iter().map(pick).collect())
                }
                v => pick(v),
            };
        }
        let out = if self.pretty {
            serde_json::to_vec_pretty(&json)
        } else {
            serde_json::to_vec(&json)
        };
        out.map_err(|e| e.to_string())
    }
}

/// The methods `spec` serves (none when it does not compile: validation says why); `read`
/// reads a `protoDescriptor` file, every time. The list of a `protoDescriptorBin` set is kept
/// by a hash of what decides it, so listing an upstream's functions (the console does it for
/// every row it draws) costs a hash, not a decoding.
pub fn served(
    spec: &GrpcJsonTranscoder,
    read: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Arc<[Served]> {
    use std::hash::BuildHasher;
    static KEPT: Mutex<Vec<(u64, Arc<[Served]>)>> = Mutex::new(Vec::new());
    /// Sets kept at most (the least recently made go first).
    const KEEP: usize = 64;
    let compile = || -> Arc<[Served]> {
        Transcoder::compile(spec, read)
            .map(|t| t.served().into())
            .unwrap_or_else(|_| Arc::from([]))
    };
    if spec.proto_descriptor.is_some() {
        return compile();
    }
    let key = foldhash::fast::FixedState::default().hash_one((
        &spec.proto_descriptor_bin,
        &spec.services,
        spec.auto_mapping,
    ));
    let found = KEPT
        .lock()
        .ok()
        .and_then(|k| k.iter().find(|(h, _)| *h == key).map(|(_, s)| s.clone()));
    if let Some(s) = found {
        return s;
    }
    let s = compile();
    if let Ok(mut k) = KEPT.lock() {
        if k.len() >= KEEP {
            k.remove(0);
        }
        k.push((key, s.clone()));
    }
    s
}

/// The method's `google.api.http` rule and its additional bindings (none when the pool does
/// not define the extension or the method has no rule).
fn http_rules(pool: &DescriptorPool, options: &DynamicMessage) -> Vec<DynamicMessage> {
    let Some(ext) = pool.get_extension_by_name("google.api.http") else {
        return Vec::new();
    };
    if !options.has_extension(&ext) {
        return Vec::new();
    }
    let Some(rule) = options.get_extension(&ext).as_message().cloned() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(more) = rule.get_field_by_name("additional_bindings") {
        for m in more.as_list().unwrap_or_default() {
            if let Some(m) = m.as_message() {
                out.push(m.clone());
            }
        }
    }
    out.insert(0, rule);
    out
}

fn text_field(m: &DynamicMessage, name: &str) -> Option<String> {
    m.has_field_by_name(name)
        .then(|| m.get_field_by_name(name)?.as_str().map(str::to_string))
        .flatten()
}

impl Binding {
    fn compile(rule: &DynamicMessage, method: Method, order: usize) -> Result<Binding, String> {
        let mut pattern = VERBS
            .iter()
            .find_map(|(name, verb)| text_field(rule, name).map(|p| (verb.clone(), p)));
        if pattern.is_none()
            && rule.has_field_by_name("custom")
            && let Some(c) = rule
                .get_field_by_name("custom")
                .and_then(|c| c.as_message().cloned())
        {
            let kind = text_field(&c, "kind").unwrap_or_default();
            let verb = http::Method::from_bytes(kind.as_bytes())
                .map_err(|_| format!("custom kind `{kind}` is not an HTTP method"))?;
            pattern = Some((verb, text_field(&c, "path").unwrap_or_default()));
        }
        let (verb, path) = pattern.ok_or("a google.api.http rule without a pattern")?;
        let template =
            Template::parse(&path, &method.input).map_err(|e| format!("`{path}`: {e}"))?;
        let body = match text_field(rule, "body").as_deref() {
            None | Some("") => BodyRule::None,
            Some("*") => BodyRule::Whole,
            Some(f) => BodyRule::Field(
                resolve(&method.input, f, true).map_err(|e| format!("body `{f}`: {e}"))?,
            ),
        };
        let response_body = match text_field(rule, "response_body").as_deref() {
            None | Some("") => None,
            Some(f) => Some(method.output.get_field_by_name(f).ok_or_else(|| {
                format!(
                    "response_body `{f}` is no field of `{}`",
                    method.output.full_name()
                )
            })?),
        };
        Ok(Binding {
            verb,
            template,
            text: path,
            order,
            method,
            body,
            response_body,
        })
    }
}

/// A field path (`a.b.c`, proto names) in `msg`: messages on the way, a singular field at
/// the end unless `any_leaf` (a body field may be a message or repeated).
fn resolve(
    msg: &MessageDescriptor,
    path: &str,
    any_leaf: bool,
) -> Result<Vec<FieldDescriptor>, String> {
    let mut out = Vec::new();
    let mut at = msg.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for (i, name) in parts.iter().enumerate() {
        let f = at
            .get_field_by_name(name)
            .ok_or_else(|| format!("`{name}` is no field of `{}`", at.full_name()))?;
        let last = i + 1 == parts.len();
        if (!last || !any_leaf) && (f.is_list() || f.is_map()) {
            return Err(format!("`{name}` is repeated"));
        }
        if !last {
            match f.kind() {
                Kind::Message(m) => at = m,
                _ => return Err(format!("`{name}` is not a message")),
            }
        } else if !any_leaf && matches!(f.kind(), Kind::Message(_)) {
            return Err(format!("`{name}` is a message, not a value"));
        }
        out.push(f);
    }
    Ok(out)
}

/// A query parameter's name as a field path: proto or JSON names, any scalar leaf (repeated
/// fields take every value).
fn resolve_json(msg: &MessageDescriptor, path: &str) -> Option<Vec<FieldDescriptor>> {
    let mut out = Vec::new();
    let mut at = msg.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for (i, name) in parts.iter().enumerate() {
        let f = at
            .get_field_by_name(name)
            .or_else(|| at.get_field_by_json_name(name))?;
        let last = i + 1 == parts.len();
        match f.kind() {
            Kind::Message(m) if !last && !f.is_list() && !f.is_map() => at = m,
            Kind::Message(_) => return None,
            _ if !last || f.is_map() => return None,
            _ => {}
        }
        out.push(f);
    }
    Some(out)
}

/// A text value as JSON for the field's kind (proto3's JSON mapping takes numbers as
/// strings too, so only booleans and numbers that parse are turned into JSON values).
fn scalar(f: &FieldDescriptor, text: &str) -> Value {
    match f.kind() {
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_string()),
        },
        Kind::String | Kind::Bytes => Value::String(text.to_string()),
        _ => serde_json::from_str::<serde_json::Number>(text)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.to_string())),
    }
}

/// Sets `v` at `path` in `obj` (by proto names, creating objects on the way); a repeated
/// leaf collects values. The field's JSON name, if the body used it, gives way.
fn set(obj: &mut Map<String, Value>, path: &[FieldDescriptor], v: Value) {
    let Some((leaf, parents)) = path.split_last() else {
        return;
    };
    let mut at = obj;
    for p in parents {
        if p.json_name() != p.name()
            && let Some(moved) = at.remove(p.json_name())
        {
            at.insert(p.name().to_string(), moved);
        }
        let slot = at
            .entry(p.name().to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        at = next;
    }
    if leaf.json_name() != leaf.name() {
        at.remove(leaf.json_name());
    }
    if leaf.is_list() && !v.is_array() {
        match at
            .entry(leaf.name().to_string())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(v),
            slot => *slot = Value::Array(vec![v]),
        }
    } else {
        at.insert(leaf.name().to_string(), v);
    }
}

/// A request path's segments (without the query), each still percent-encoded.
fn split(path: &str) -> Option<Vec<&str>> {
    let path = path.split('?').next()?.strip_prefix('/')?;
    Some(path.split('/').collect())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Template {
    /// Parses `/seg/{field=pattern}/…[:verb]` (google/api/http.proto's grammar), the
    /// variables' fields resolved in `input`.
    fn parse(text: &str, input: &MessageDescriptor) -> Result<Template, String> {
        let body = text.strip_prefix('/').ok_or("a template starts with `/`")?;
        // The verb follows the last segment, outside any variable.
        let (body, verb) = match body.rfind(':') {
            Some(i) if !body[i..].contains('}') && !body[i..].contains('/') => {
                (&body[..i], Some(body[i + 1..].to_string()))
            }
            _ => (body, None),
        };
        let mut t = Template {
            segments: Vec::new(),
            verb,
            variables: Vec::new(),
            literals: 0,
        };
        let mut rest = body;
        while !rest.is_empty() || t.segments.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                let close = inner.find('}').ok_or("a variable is not closed")?;
                let (field, pattern) = match inner[..close].split_once('=') {
                    Some((f, p)) => (f, p),
                    None => (&inner[..close], "*"),
                };
                let start = t.segments.len();
                for p in pattern.split('/') {
                    t.push(p)?;
                }
                let end = if t.segments.last() == Some(&Segment::Rest) {
                    usize::MAX
                } else {
                    t.segments.len()
                };
                let field = resolve(input, field.trim(), false)
                    .map_err(|e| format!("variable `{field}`: {e}"))?;
                if t.variables.iter().any(|v| v.field == field) {
                    return Err("a field is bound twice".into());
                }
                t.variables.push(Variable { field, start, end });
                rest = &inner[close + 1..];
            } else {
                let end = rest.find('/').unwrap_or(rest.len());
                if rest[..end].contains(['{', '}']) {
                    return Err(format!(
                        "segment `{}` mixes text and a variable",
                        &rest[..end]
                    ));
                }
                t.push(&rest[..end])?;
                rest = &rest[end..];
            }
            match rest.strip_prefix('/') {
                Some(r) => rest = r,
                None if rest.is_empty() => break,
                None => return Err(format!("unexpected `{rest}`")),
            }
        }
        Ok(t)
    }

    fn push(&mut self, p: &str) -> Result<(), String> {
        if self.segments.last() == Some(&Segment::Rest) {
            return Err("`**` must be the last segment".into());
        }
        self.segments.push(match p {
            "*" => Segment::One,
            "**" => Segment::Rest,
            "" => return Err("an empty segment".into()),
            lit => {
                self.literals += 1;
                Segment::Literal(lit.to_string())
            }
        });
        Ok(())
    }

    /// The variables' values when the path's segments match.
    fn matches<'t>(&'t self, path: &[&str]) -> Option<Vec<(&'t [FieldDescriptor], String)>> {
        let mut path = path.to_vec();
        if let Some(verb) = &self.verb {
            let last = path.last_mut()?;
            let text: &str = last;
            *last = text.strip_suffix(verb.as_str())?.strip_suffix(':')?;
        }
        let rest = self.segments.last() == Some(&Segment::Rest);
        let fixed = self.segments.len() - usize::from(rest);
        if path.len() < fixed || (!rest && path.len() != fixed) {
            return None;
        }
        for (s, p) in self.segments.iter().zip(&path) {
            match s {
                Segment::Literal(l) if l.as_str() != *p => return None,
                Segment::One if p.is_empty() => return None,
                _ => {}
            }
        }
        let mut out = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let end = v.end.min(path.len());
            let value = path[v.start..end]
                .iter()
                .map(|s| decode(s))
                .collect::<Vec<_>>()
                .join("/");
            out.push((v.field.as_slice(), value));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, field_descriptor_proto,
    };

    /// `t.Req {string name = 1; int64 id = 2; t.Req inner = 3; repeated string tags = 4;}`
    fn input() -> MessageDescriptor {
        use field_descriptor_proto::{Label, Type};
        let field = |name: &str, n: i32, t: Type, label: Label| FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(n),
            r#type: Some(t as i32),
            label: Some(label as i32),
            type_name: (t == Type::Message).then(|| ".t.Req".into()),
            json_name: None,
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("Req".into()),
                field: vec![
                    field("name", 1, Type::String, Label::Optional),
                    field("id", 2, Type::Int64, Label::Optional),
                    field("inner", 3, Type::Message, Label::Optional),
                    field("tags", 4, Type::String, Label::Repeated),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let pool = DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet {
            file: vec![file],
        })
        .unwrap();
        pool.get_message_by_name("t.Req").unwrap()
    }

    fn values(t: &Template, path: &str) -> Option<Vec<(String, String)>> {
        let segs = split(path)?;
        t.matches(&segs).map(|vs| {
            vs.into_iter()
                .map(|(f, v)| (f.iter().map(|f| f.name()).collect::<Vec<_>>().join("."), v))
                .collect()
        })
    }

    #[test]
    fn templates_match_segments_variables_and_verbs() {
        let m = input();
        let t = Template::parse("/v1/{name=shelves/*}/books/{id}", &m).unwrap();
        assert_eq!(
            values(&t, "/v1/shelves/s1/books/7"),
            Some(vec![
                ("name".into(), "shelves/s1".into()),
                ("id".into(), "7".into())
            ])
        );
        assert_eq!(values(&t, "/v1/shelves/s1/books"), None);
        assert_eq!(values(&t, "/v1/shelves/s1/books/7/x"), None);
        assert_eq!(values(&t, "/v1/shelves//books/7"), None);
        let t = Template::parse("/files/{inner.name=**}", &m).unwrap();
        assert_eq!(
            values(&t, "/files/a/b%20c/d"),
            Some(vec![("inner.name".into(), "a/b c/d".into())])
        );
        let t = Template::parse("/v1/{id}:cancel", &m).unwrap();
        assert_eq!(
            values(&t, "/v1/5:cancel"),
            Some(vec![("id".into(), "5".into())])
        );
        assert_eq!(values(&t, "/v1/5"), None);
        for (bad, why) in [
            ("v1/{id}", "starts with `/`"),
            ("/v1/{nope}", "`nope` is no field"),
            ("/v1/{inner}", "is a message"),
            ("/v1/{tags}", "repeated"),
            ("/v1/**/x", "`**` must be the last"),
            ("/v1/{id", "not closed"),
            ("/v1/a{id}", "mixes text"),
            ("/v1//x", "empty segment"),
            ("/{id}/{id}", "bound twice"),
        ] {
            let e = Template::parse(bad, &m).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn fields_are_set_by_path_and_repeated_fields_collect() {
        let m = input();
        let mut obj = Map::new();
        obj.insert("tags".into(), Value::Array(vec!["a".into()]));
        let tags = resolve_json(&m, "tags").unwrap();
        set(&mut obj, &tags, scalar(&tags[0], "b"));
        let inner_id = resolve_json(&m, "inner.id").unwrap();
        set(&mut obj, &inner_id, scalar(&inner_id[1], "12"));
        assert_eq!(
            Value::Object(obj),
            serde_json::json!({"tags": ["a", "b"], "inner": {"id": 12}})
        );
        assert!(resolve_json(&m, "inner").is_none());
        assert!(resolve_json(&m, "nope").is_none());
    }
}
