//! First-line policies on a matched route, in Gloo's filter order: CORS, JWT (before external
//! auth), external auth (basic, pass-through), JWT (after external auth), rate limits (local
//! token buckets, global counters in Redis).
//!
//! Each policy is a `Stage`; a route's stages are compiled once with the route table
//! (`build`), and both transports run them after routing and before acting on the route. A
//! stage either lets the request on (editing its headers, adding response headers) or answers
//! it (401, 403, 429, a CORS preflight): the upstream never sees an answered request.

pub mod apr1;
pub mod build;
pub mod check;
pub mod cors;
pub mod extauth;
pub mod jwt;
pub mod limit;
pub mod redis_limit;
pub mod runtime;
pub mod spec;

pub use build::{PolicyError, build_route};
pub use runtime::Runtime;

use crate::gateway::matcher::Headers;
use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use std::net::IpAddr;

/// Where a stage runs, in Gloo's (Envoy's) filter order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Order {
    Fault,
    Cors,
    Waf,
    JwtBeforeExtAuth,
    ExtAuth,
    JwtAfterExtAuth,
    RateLimit,
}

/// What a stage sees of a request.
pub struct Inbound<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: &'a str,
    pub headers: Headers<'a>,
    pub client: Option<IpAddr>,
}

impl Inbound<'_> {
    /// Every header as (name, value), values that are not visible ASCII left out.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        match self.headers {
            Headers::Map(m) => m
                .iter()
                .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
                .collect(),
            Headers::Raw(raw) => raw
                .iter()
                .filter_map(|h| Some((h.name, std::str::from_utf8(h.value).ok()?)))
                .collect(),
        }
    }

    /// The value of query parameter `name` (not percent-decoded: tokens are URL-safe).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// What the stages change on a request they let on.
#[derive(Debug, Default, Clone)]
pub struct Edits {
    /// Request headers to remove (the token, unless `keepToken`), before `request_set`.
    pub request_remove: Vec<HeaderName>,
    /// Request headers to set (replacing) or append.
    pub request_set: Vec<(HeaderName, HeaderValue, bool)>,
    /// Response headers added to whatever answers (CORS, rate-limit headers).
    pub response_add: Vec<(HeaderName, HeaderValue)>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.request_remove.is_empty()
            && self.request_set.is_empty()
            && self.response_add.is_empty()
    }

    /// Applies the request edits to a request's headers.
    pub fn apply_to_request(&self, h: &mut http::HeaderMap) {
        for n in &self.request_remove {
            h.remove(n);
        }
        for (n, v, append) in &self.request_set {
            if *append {
                h.append(n.clone(), v.clone());
            } else {
                h.insert(n.clone(), v.clone());
            }
        }
    }
}

/// A stage's own answer to a request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Why, for the access log and the console (`jwt: expired`).
    pub reason: String,
}

impl Answer {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Answer {
        let reason = reason.into();
        Answer {
            status,
            headers: Vec::new(),
            body: Bytes::from(format!("{reason}\n")),
            reason,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Answer {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
}

/// One policy.
#[async_trait::async_trait]
pub trait Stage: Send + Sync + std::fmt::Debug {
    fn order(&self) -> Order;
    /// A word for the console and the logs: `cors`, `jwt`, `basic-auth`, ...
    fn name(&self) -> &'static str;
    async fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer>;
}

/// A route's stages, in order.
#[derive(Debug, Default)]
pub struct Policies {
    pub stages: Vec<Box<dyn Stage>>,
}

impl Policies {
    /// Runs every stage in order; the first answer ends the request. Response headers the
    /// earlier stages added (CORS) go on that answer too.
    pub async fn run(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        for s in &self.stages {
            if let Err(mut a) = s.check(req, edits).await {
                a.headers.extend(edits.response_add.iter().cloned());
                return Err(a);
            }
        }
        Ok(())
    }

    /// The names of the stages, in order (for the console's route detail).
    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }
}
