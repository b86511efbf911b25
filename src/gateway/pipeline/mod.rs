//! The stages a request passes after its route matched and before the route acts, in Gloo's
//! filter order: fault, CORS, WAF, early rate limit, JWT, external auth, JWT after it, rate
//! limit.
//!
//! A route's stages are compiled once per configuration into [`Policies`] (none: no cost on
//! the request path). Both transports, the HTTP/1.1 fast path (`super::h1`) and hyper
//! (`super::proxy`), call [`Policies::admit`] with the same [`Inbound`] view of the request and
//! act on its verdict the same way: an [`Answer`] is written as it is and the upstream never
//! sees the request; [`Edits`] change the request's headers before the route's own header rules
//! and add to the response's.

pub mod fault;
pub mod listener_limit;

use super::matcher::RequestHead;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use smallvec::SmallVec;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a stage runs, in Gloo's (Envoy's) filter chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Order {
    Fault,
    Cors,
    Waf,
    /// Gloo's early rate-limit stage (`rateLimitEarlyConfigs`): before authentication.
    RateLimitEarly,
    JwtBeforeExtAuth,
    ExtAuth,
    JwtAfterExtAuth,
    RateLimit,
}

/// What a stage sees of a request: the same on both transports.
pub struct Inbound<'a> {
    /// What the request was routed by: method, host (`Host` or the target's authority), path,
    /// query, headers.
    pub head: RequestHead<'a>,
    /// The client's address (the TCP peer).
    pub remote: SocketAddr,
}

/// A header a stage sets.
pub type HeaderPair = (HeaderName, HeaderValue);

/// How stages change a request they let through, and its response.
#[derive(Debug, Default)]
pub struct Edits {
    /// Set on the request (replacing the client's value): claims, an auth service's headers.
    pub request_set: SmallVec<[HeaderPair; 2]>,
    /// Removed from the request (a token not to be passed on).
    pub request_remove: SmallVec<[HeaderName; 2]>,
    /// Set on the response (replacing the upstream's value): CORS, rate-limit headers.
    pub response_set: SmallVec<[HeaderPair; 2]>,
    /// Who external auth found the client to be (Gloo's `UserInfo.UserID`: a basic-auth user,
    /// an API key's Secret), for the limits that count per user (`ratelimitBasic`).
    pub user: Option<String>,
}

impl Edits {
    /// Whether the request's header `name` (lower-case) is the stages' to set or remove.
    pub fn replaces_request(&self, name: &[u8]) -> bool {
        let is = |n: &HeaderName| n.as_str().as_bytes().eq_ignore_ascii_case(name);
        self.request_remove.iter().any(is) || self.request_set.iter().any(|(n, _)| is(n))
    }

    /// Whether the response's header `name` is the stages' to set.
    pub fn replaces_response(&self, name: &[u8]) -> bool {
        self.response_set
            .iter()
            .any(|(n, _)| n.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Applies the request side to a `HeaderMap` (the hyper transport; the fast path applies
    /// the same rules while writing the head, see `h1::forward`).
    pub fn apply_to_request(&self, h: &mut http::HeaderMap) {
        for n in &self.request_remove {
            h.remove(n);
        }
        for (n, v) in &self.request_set {
            h.insert(n.clone(), v.clone());
        }
    }
}

/// A stage's answer in the upstream's place.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: SmallVec<[HeaderPair; 2]>,
    pub body: Bytes,
    /// Why, for the access log and `/metrics` (never sent to the client beyond the body).
    pub reason: String,
}

impl Answer {
    /// The gateway's JSON error (`{"error", "message", "route", "upstream"}`,
    /// `x-epoxy-error: CODE`).
    pub fn error(
        status: StatusCode,
        code: &str,
        message: &str,
        route: Option<&str>,
        upstream: Option<&str>,
    ) -> Answer {
        Answer::error_with_details(status, code, message, route, upstream, None)
    }

    /// The gateway's JSON error with what the upstream said beyond its usual fields (a gRPC
    /// status's details, `"details": [...]`).
    pub fn error_with_details(
        status: StatusCode,
        code: &str,
        message: &str,
        route: Option<&str>,
        upstream: Option<&str>,
        details: Option<serde_json::Value>,
    ) -> Answer {
        let mut headers = SmallVec::new();
        headers.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if let Ok(v) = HeaderValue::from_str(code) {
            headers.push((X_EPOXY_ERROR, v));
        }
        Answer {
            status,
            headers,
            body: error_body(code, message, route, upstream, details),
            reason: message.to_string(),
        }
    }
}

/// The header naming the gateway's error code (a name parsed once, not at every use).
pub const X_EPOXY_ERROR: http::HeaderName = http::HeaderName::from_static("x-epoxy-error");

fn error_body(
    code: &str,
    message: &str,
    route: Option<&str>,
    upstream: Option<&str>,
    details: Option<serde_json::Value>,
) -> Bytes {
    let mut body = serde_json::json!({
        "error": code,
        "message": message,
        "route": route,
        "upstream": upstream,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    Bytes::from(body.to_string())
}

/// One stage: a rule a route's options asked for.
#[async_trait]
pub trait Stage: Send + Sync + std::fmt::Debug {
    fn order(&self) -> Order;
    /// Lets the request through (possibly with edits) or answers it.
    async fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer>;
}

/// A route's stages, in order.
#[derive(Debug)]
pub struct Policies {
    stages: Vec<Arc<dyn Stage>>,
}

impl Policies {
    /// The stages sorted into Gloo's order; `None` when there are none (the common case,
    /// which then costs the request path nothing).
    pub fn new(mut stages: Vec<Arc<dyn Stage>>) -> Option<Arc<Policies>> {
        if stages.is_empty() {
            return None;
        }
        stages.sort_by_key(|s| s.order());
        Some(Arc::new(Policies { stages }))
    }

    /// Runs the stages in order: the first answer wins; otherwise the edits of all of them.
    pub async fn admit(&self, req: &Inbound<'_>) -> Result<Edits, Answer> {
        let mut edits = Edits::default();
        for s in &self.stages {
            if let Err(mut a) = s.check(req, &mut edits).await {
                // What the stages before set on the response (CORS) goes on an answer too, as
                // Envoy's filters decorate its local replies: a browser can read a 401.
                a.headers.extend(edits.response_set.drain(..));
                return Err(a);
            }
        }
        Ok(edits)
    }
}
