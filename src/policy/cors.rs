//! CORS (Gloo's `cors`, Envoy's CORS filter): a preflight from an allowed origin is answered by
//! the gateway (200 with the allowed methods, headers and max age); an actual request from an
//! allowed origin goes on and its response says so (`access-control-allow-origin`, exposed
//! headers, credentials). A request from another origin goes on undecorated: the browser
//! refuses it.

use super::runtime::Runtime;
use super::spec::CorsPolicy;
use super::{Answer, Edits, Inbound, Order, Stage};
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use regex::Regex;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Debug)]
pub struct CorsStage {
    exact: Vec<String>,
    any: bool,
    regexes: Vec<Regex>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
    runtime: Arc<Runtime>,
}

fn joined(at: &str, items: &[String]) -> Result<Option<HeaderValue>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&items.join(","))
        .map(Some)
        .map_err(|_| format!("{at}: not a header value"))
}

impl CorsStage {
    pub fn build(at: &str, p: &CorsPolicy, runtime: &Arc<Runtime>) -> Result<CorsStage, String> {
        let mut regexes = Vec::new();
        for (i, r) in p.allow_origin_regex.iter().enumerate() {
            regexes.push(
                crate::api::validate::compile_full_regex(r)
                    .map_err(|e| format!("{at}.allowOriginRegex[{i}]: {e}"))?,
            );
        }
        let max_age = match p.max_age.as_deref() {
            None | Some("") => None,
            Some(m) => {
                if !m.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{at}.maxAge: `{m}` is not a number of seconds"));
                }
                HeaderValue::from_str(m).ok()
            }
        };
        Ok(CorsStage {
            any: p.allow_origin.iter().any(|o| o == "*"),
            exact: p.allow_origin.clone(),
            regexes,
            allow_methods: joined(&format!("{at}.allowMethods"), &p.allow_methods)?,
            allow_headers: joined(&format!("{at}.allowHeaders"), &p.allow_headers)?,
            expose_headers: joined(&format!("{at}.exposeHeaders"), &p.expose_headers)?,
            max_age,
            credentials: p.allow_credentials,
            runtime: runtime.clone(),
        })
    }

    fn allowed(&self, origin: &str) -> bool {
        self.any
            || self.exact.iter().any(|o| o == origin)
            || self.regexes.iter().any(|r| r.is_match(origin))
    }
}

const CREDENTIALS: HeaderName = HeaderName::from_static("access-control-allow-credentials");
const ALLOW_ORIGIN: HeaderName = HeaderName::from_static("access-control-allow-origin");

#[async_trait::async_trait]
impl Stage for CorsStage {
    fn order(&self) -> Order {
        Order::Cors
    }

    async fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        let Some(origin) = req.head.headers.get("origin") else {
            return Ok(());
        };
        if !self.allowed(origin) {
            return Ok(());
        }
        let Ok(origin_value) = HeaderValue::from_str(origin) else {
            return Ok(());
        };
        let preflight = req.head.method == "OPTIONS"
            && req
                .head
                .headers
                .get("access-control-request-method")
                .is_some();
        if preflight {
            self.runtime
                .counters
                .cors_preflights
                .fetch_add(1, Ordering::Relaxed);
            let mut a = super::answer(StatusCode::OK, "cors: preflight");
            a.body = bytes::Bytes::new();
            a.headers.push((ALLOW_ORIGIN, origin_value));
            for (name, v) in [
                ("access-control-allow-methods", &self.allow_methods),
                ("access-control-allow-headers", &self.allow_headers),
                ("access-control-max-age", &self.max_age),
            ] {
                if let Some(v) = v {
                    a.headers.push((HeaderName::from_static(name), v.clone()));
                }
            }
            if self.credentials {
                a.headers
                    .push((CREDENTIALS, HeaderValue::from_static("true")));
            }
            return Err(a);
        }
        edits.response_set.push((ALLOW_ORIGIN, origin_value));
        if self.credentials {
            edits
                .response_set
                .push((CREDENTIALS, HeaderValue::from_static("true")));
        }
        if let Some(v) = &self.expose_headers {
            edits.response_set.push((
                HeaderName::from_static("access-control-expose-headers"),
                v.clone(),
            ));
        }
        Ok(())
    }
}
