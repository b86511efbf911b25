//! A route matcher compiled for the request path: Gloo/Envoy semantics, and a reason for every
//! mismatch so that the tester can explain why a route did not match.

use crate::api::validate::compile_full_regex;
use crate::api::{Matcher, PathMatch};
use http::HeaderMap;
use regex::Regex;
use std::fmt;

/// The parts of a request that routing (and the pipeline's stages) look at, parsed once.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// Host without port, lower-case.
    pub authority: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: Headers<'a>,
}

/// A request's headers, as hyper parsed them or as the HTTP/1.1 fast path read them off the
/// wire (`super::h1`), so that matching needs no `HeaderMap` built for it.
#[derive(Clone, Copy)]
pub enum Headers<'a> {
    Map(&'a HeaderMap),
    Raw(&'a [httparse::Header<'a>]),
}

impl<'a> From<&'a HeaderMap> for Headers<'a> {
    fn from(h: &'a HeaderMap) -> Self {
        Headers::Map(h)
    }
}

impl<'a> Headers<'a> {
    /// Every header, name and value, in the order they came (no map built for it).
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        let (map, raw) = match self {
            Headers::Map(m) => (Some(m), None),
            Headers::Raw(r) => (None, Some(r)),
        };
        let from_map = map
            .into_iter()
            .flat_map(|m| m.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
        let from_raw = raw
            .into_iter()
            .flat_map(|r| r.iter().map(|h| (h.name, h.value)));
        from_map.chain(from_raw)
    }

    /// The first value of `name` (lower-case), if it is visible ASCII (as `HeaderValue::to_str`).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match self {
            Headers::Map(m) => m.get(name).and_then(|v| v.to_str().ok()),
            Headers::Raw(raw) => raw
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| visible_ascii(h.value)),
        }
    }
}

/// A header value as text, if it is visible ASCII (or tabs), as `HeaderValue::to_str` takes it.
pub(super) fn visible_ascii(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub enum PathCond {
    Prefix(String),
    Exact(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub enum ValueCond {
    Present,
    Exact(String),
    Regex(Regex),
}

impl ValueCond {
    fn matches(&self, v: &str) -> bool {
        match self {
            ValueCond::Present => true,
            ValueCond::Exact(e) => e == v,
            ValueCond::Regex(r) => r.is_match(v),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeaderCond {
    pub name: String,
    pub value: ValueCond,
    pub invert: bool,
}

#[derive(Debug, Clone)]
pub struct QueryCond {
    pub name: String,
    pub value: ValueCond,
}

#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    pub path: PathCond,
    pub case_sensitive: bool,
    pub headers: Vec<HeaderCond>,
    pub query: Vec<QueryCond>,
    pub methods: Vec<String>,
}

/// Why a request did not match; no allocation on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch<'m> {
    Path,
    Method,
    Header(&'m str),
    Query(&'m str),
}

impl fmt::Display for Mismatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Path => f.write_str("path does not match"),
            Mismatch::Method => f.write_str("method does not match"),
            Mismatch::Header(h) => write!(f, "header `{h}` does not match"),
            Mismatch::Query(q) => write!(f, "query parameter `{q}` does not match"),
        }
    }
}

fn value_cond(value: Option<&str>, regex: bool) -> Result<ValueCond, String> {
    match value {
        None | Some("") if !regex => Ok(ValueCond::Present),
        None => Ok(ValueCond::Present),
        Some(v) if regex => compile_full_regex(v).map(ValueCond::Regex),
        Some(v) => Ok(ValueCond::Exact(v.to_string())),
    }
}

impl CompiledMatcher {
    pub fn compile(m: &Matcher) -> Result<Self, String> {
        let case_sensitive = m.case_sensitive.unwrap_or(true);
        let path = match m.path() {
            PathMatch::Prefix(p) => PathCond::Prefix(if case_sensitive {
                p.to_string()
            } else {
                p.to_ascii_lowercase()
            }),
            PathMatch::Exact(p) => PathCond::Exact(if case_sensitive {
                p.to_string()
            } else {
                p.to_ascii_lowercase()
            }),
            PathMatch::Regex(r) => PathCond::Regex(compile_full_regex(&if case_sensitive {
                r.to_string()
            } else {
                format!("(?i:{r})")
            })?),
        };
        let headers = m
            .headers
            .iter()
            .map(|h| {
                Ok(HeaderCond {
                    name: h.name.to_ascii_lowercase(),
                    value: value_cond(h.value.as_deref(), h.regex == Some(true))?,
                    invert: h.invert_match == Some(true),
                })
            })
            .collect::<Result<_, String>>()?;
        let query = m
            .query_parameters
            .iter()
            .map(|q| {
                Ok(QueryCond {
                    name: q.name.clone(),
                    value: value_cond(q.value.as_deref(), q.regex == Some(true))?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(CompiledMatcher {
            path,
            case_sensitive,
            headers,
            query,
            methods: m.methods.clone(),
        })
    }

    fn path_matches(&self, path: &str) -> bool {
        match &self.path {
            PathCond::Prefix(p) => {
                if self.case_sensitive {
                    path.starts_with(p.as_str())
                } else {
                    path.len() >= p.len()
                        && path.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
                }
            }
            PathCond::Exact(p) => {
                if self.case_sensitive {
                    path == p
                } else {
                    path.eq_ignore_ascii_case(p)
                }
            }
            PathCond::Regex(r) => r.is_match(path),
        }
    }

    /// Checks the request; the first condition that fails is the reason.
    pub fn check(&self, req: &RequestHead<'_>) -> Result<(), Mismatch<'_>> {
        if !self.path_matches(req.path) {
            return Err(Mismatch::Path);
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == req.method) {
            return Err(Mismatch::Method);
        }
        for h in &self.headers {
            let found = header_value(req, &h.name);
            let ok = match found {
                Some(v) => h.value.matches(v),
                None => false,
            };
            if ok == h.invert {
                return Err(Mismatch::Header(&h.name));
            }
        }
        for q in &self.query {
            let ok = query_values(req.query, &q.name).any(|v| q.value.matches(&v));
            if !ok {
                return Err(Mismatch::Query(&q.name));
            }
        }
        Ok(())
    }
}

/// A header's value; `:authority`, `:method` and `:path` are the pseudo-headers Envoy exposes.
fn header_value<'a>(req: &RequestHead<'a>, name: &str) -> Option<&'a str> {
    match name {
        ":authority" | "host" => Some(req.authority),
        ":method" => Some(req.method),
        ":path" => Some(req.path),
        _ => req.headers.get(name),
    }
}

/// Decoded values of a query parameter.
pub fn query_values<'a>(
    query: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(move |pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_encoding::percent_decode_str(&k.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            (k == name).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
}
