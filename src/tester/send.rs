//! Sending a tester request: the request as it is kept (history, collection), its headers, and
//! the call itself (to the gateway's plain listener, or over TLS as `target` resolves it).

use super::target::{Target, TesterCa, client, request_error, tls_url};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The largest response body kept for display.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: String,
    #[serde(default)]
    pub body: String,
}

/// A request kept under a name (`:keep NAME`), in the store's collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
    #[serde(flatten)]
    pub request: Saved,
}

#[derive(Debug, Clone)]
pub struct TesterResponse {
    /// When the response arrived.
    pub received: SystemTime,
    pub status: u16,
    pub reason: String,
    pub elapsed: Duration,
    pub size: usize,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Saved {
    /// The headers (`name: value; ...`) as pairs.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .split(';')
            .filter_map(|h| {
                let (k, v) = h.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .filter(|(k, _)| !k.is_empty())
            .collect()
    }
}

/// The headers as an `http::HeaderMap`, or which one is not valid.
pub fn header_map(s: &Saved) -> Result<http::HeaderMap, String> {
    let mut hm = http::HeaderMap::new();
    for (k, v) in s.header_pairs() {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("header name `{k}` is not valid"))?;
        let value = http::HeaderValue::from_str(&v)
            .map_err(|_| format!("header `{k}`: value not valid"))?;
        hm.append(name, value);
    }
    Ok(hm)
}

/// Sends the request and reads the whole answer (the body kept up to `MAX_BODY`, JSON
/// pretty-printed).
pub async fn fire(
    method: http::Method,
    target: Target,
    authority: String,
    headers: http::HeaderMap,
    body: String,
    ca: Option<Arc<TesterCa>>,
) -> Result<TesterResponse, String> {
    let start = Instant::now();
    let ca = ca.as_deref();
    let (client, url, host) = match target {
        Target::Plain { uri, host } => (client(None)?, uri.to_string(), host),
        Target::Tls {
            addr, sni, path, ..
        } => (
            client(Some((&sni, addr, ca)))?,
            tls_url(&sni, addr, &path),
            Some(authority),
        ),
    };
    // The host the URL named, unless the request's own headers name one.
    let host = host.filter(|_| !headers.contains_key(http::header::HOST));
    let mut req = client.request(method, &url).headers(headers).body(body);
    if let Some(h) = host {
        req = req.header(http::header::HOST, h);
    }
    let resp = req.send().await.map_err(|e| request_error(&e, ca))?;
    let status = resp.status();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the response: {}", request_error(&e, ca)))?;
    let elapsed = start.elapsed();
    let size = bytes.len();
    let shown = &bytes[..size.min(MAX_BODY)];
    let body = match serde_json::from_slice::<serde_json::Value>(shown) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(shown).into_owned(),
    };
    Ok(TesterResponse {
        received: SystemTime::now(),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        elapsed,
        size,
        headers,
        body,
    })
}
