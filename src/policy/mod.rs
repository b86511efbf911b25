//! First-line policies on a matched route, in Gloo's filter order: CORS, early rate limits,
//! JWT (before external auth), external auth (basic, API keys, pass-through), JWT (after
//! external auth), rate limits (local token buckets, global counters in Redis).
//!
//! Each policy is a `Stage`; a route's stages are compiled once with the route table
//! (`build`), and both transports run them after routing and before acting on the route. A
//! stage either lets the request on (editing its headers, adding response headers) or answers
//! it (401, 403, 429, a CORS preflight): the upstream never sees an answered request.

pub mod apikey;
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

pub use crate::gateway::pipeline::{Answer, Edits, Inbound, Order, Stage};

use crate::gateway::matcher::Headers;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};

impl Inbound<'_> {
    /// Every header as (name, value), values that are not visible ASCII left out.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        match self.head.headers {
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
        self.head
            .query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A policy's answer: `status`, the reason as a one-line text body.
pub fn answer(status: StatusCode, reason: impl Into<String>) -> Answer {
    let reason = reason.into();
    Answer {
        status,
        headers: Default::default(),
        body: bytes::Bytes::from(format!("{reason}\n")),
        reason,
    }
}

/// Adds headers to a policy's answer.
pub trait WithHeader {
    fn header(self, name: &'static str, value: &str) -> Self;
}

impl WithHeader for Answer {
    fn header(mut self, name: &'static str, value: &str) -> Answer {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
}
