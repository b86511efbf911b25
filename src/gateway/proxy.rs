//! One request through the gateway: route, then answer directly, redirect, or forward (with
//! rewrites, function templates, retries, timeouts, shadowing), and report what happened.
//!
//! Errors say who failed: the client (4xx), the upstream (503 refused/reset, 504 timeout), or
//! epoxy's configuration (503 with the reason), in a small JSON body and `x-epoxy-error`.

use super::matcher::{PathCond, RequestHead};
use super::pool::{OutBody, Pool, UpstreamBody};
use super::table::{Action, CompiledRoute, DEFAULT_TIMEOUT, Options, Redirect, RouteTable, Target};
use super::telemetry::{Registry, RequestEvent};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Incoming};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast;

/// What the gateway answers with: an upstream's body, or one it made.
pub type GatewayBody = Either<UpstreamBody, Full<Bytes>>;
/// The general client: TLS upstreams (HTTP/1.1 or HTTP/2 by ALPN) and shadow copies.
pub type UpstreamClient = crate::net::Client<OutBody>;

/// One worker's ways to reach upstreams.
#[derive(Clone)]
pub struct Clients {
    /// Cleartext HTTP/1.1, the common case: this worker's own pool.
    pub pool: Arc<Pool>,
    pub general: UpstreamClient,
}

/// What every worker shares (a TLS connection gets a copy with its chain's table).
#[derive(Clone)]
pub struct Shared {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub registry: Arc<Registry>,
    pub events: broadcast::Sender<RequestEvent>,
    /// The largest request body the gateway buffers or accepts.
    pub max_body: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub fast_path: bool,
}

/// A worker's upstream clients (see `pool` and `crate::net::client`); the connections its pool
/// opens are counted in `registry`.
pub fn new_client(registry: &Registry) -> Clients {
    Clients {
        pool: Pool::counting(registry.upstream_connections.clone()),
        general: crate::net::client(),
    }
}

/// An error response: `{"error": ..., "route": ..., "upstream": ...}` with `x-epoxy-error`.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    route: Option<&str>,
    upstream: Option<&str>,
) -> Response<GatewayBody> {
    let body = error_body(code, message, route, upstream);
    let mut r = Response::new(Either::Right(Full::new(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert(X_EPOXY_ERROR, v);
    }
    r
}

/// The JSON body of an error response.
pub fn error_body(code: &str, message: &str, route: Option<&str>, upstream: Option<&str>) -> Bytes {
    let body = serde_json::json!({
        "error": code,
        "message": message,
        "route": route,
        "upstream": upstream,
    });
    Bytes::from(body.to_string())
}

// Header names as constants: a name given as a string is parsed and hashed at every use,
// and these are used on every request.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHENTICATE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_EPOXY_ERROR: HeaderName = HeaderName::from_static("x-epoxy-error");

fn strip_hop_by_hop(h: &mut HeaderMap) {
    if !h.contains_key(header::CONNECTION) {
        for n in &HOP_BY_HOP[1..] {
            h.remove(n);
        }
        return;
    }
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect();
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
    for n in listed {
        h.remove(n);
    }
}

/// What a request did, for the event and the counters (borrowed from the route table).
pub(super) struct Outcome<'t> {
    pub status: u16,
    pub route: Option<&'t str>,
    pub upstream: Option<&'t str>,
    pub function: Option<&'t str>,
    pub error: Option<String>,
    pub bytes_out: u64,
}

/// Handles one request.
pub async fn handle(
    shared: &Shared,
    client: &Clients,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Response<GatewayBody> {
    let started = Instant::now();
    // A guard, not a clone: no reference count touched on the hot path.
    let table = shared.table.load();
    // What the access log needs is copied only when someone is listening.
    let want_event = shared.events.receiver_count() > 0;
    let (matched, no_vhost, info) = {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or("");
        let head = RequestHead {
            method: req.method().as_str(),
            authority,
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers().into(),
        };
        let matched = table.route(&head);
        let no_vhost = matched.is_none() && table.vhost(authority).is_none();
        let info = want_event.then(|| {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            (
                req.method().to_string(),
                authority.to_string(),
                pq.to_string(),
            )
        });
        (matched, no_vhost, info)
    };
    let bytes_in = req.body().size_hint().exact().unwrap_or(0);
    let refused = unreadable_head(&req);
    let (resp, outcome) = match (refused, matched) {
        (Some((status, code, why)), _) => {
            let mut o = outcome(status.as_u16());
            o.error = Some(why.into());
            (error_response(status, code, why, None, None), o)
        }
        (None, None) => {
            shared.registry.no_route.record(404, started.elapsed(), 0);
            let why = if no_vhost {
                "no virtual host serves this host"
            } else {
                "no route matches"
            };
            let mut o = outcome(404);
            o.error = Some(why.into());
            (
                error_response(StatusCode::NOT_FOUND, "no-route", why, None, None),
                o,
            )
        }
        (None, Some(m)) => {
            let route = m.route;
            let (resp, mut outcome) =
                serve_route(shared, client, route, &m.matcher.path, req, remote).await;
            outcome.route = Some(&route.id);
            route
                .stats
                .record(outcome.status, started.elapsed(), outcome.bytes_out);
            (resp, outcome)
        }
    };
    let mut resp = resp;
    if let Some(report) = resp
        .extensions_mut()
        .remove::<super::tunnel::TunnelReport>()
        .and_then(|r| r.take())
    {
        // An upgraded connection: its event comes when it ends, with what it carried.
        if let Some((method, host, path)) = info {
            let events = shared.events.clone();
            let (route, upstream) = (
                outcome.route.map(str::to_string),
                outcome.upstream.map(str::to_string),
            );
            tokio::spawn(async move {
                let Ok(t) = report.await else { return };
                let _ = events.send(RequestEvent {
                    time: SystemTime::now(),
                    method,
                    host,
                    path,
                    route,
                    upstream,
                    function: None,
                    status: 101,
                    latency: started.elapsed(),
                    bytes_in: t.from_client,
                    bytes_out: t.to_client,
                    error: t.error,
                });
            });
        }
        return resp;
    }
    if let Some((method, host, path)) = info {
        let _ = shared.events.send(RequestEvent {
            time: SystemTime::now(),
            method,
            host,
            path,
            route: outcome.route.map(str::to_string),
            upstream: outcome.upstream.map(str::to_string),
            function: outcome.function.map(str::to_string),
            status: outcome.status,
            latency: started.elapsed(),
            bytes_in,
            bytes_out: outcome.bytes_out,
            error: outcome.error,
        });
    }
    resp
}

/// Why a request head is refused before routing, if it is: no `Host` on HTTP/1.1, two of them
/// (RFC 9112, 3.2), or a head larger than the gateway reads ([`super::h1::MAX_HEAD`]; hyper
/// refuses larger ones it has not parsed whole, this the ones it has).
fn unreadable_head<B>(req: &Request<B>) -> Option<(StatusCode, &'static str, &'static str)> {
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Some((
            StatusCode::BAD_REQUEST,
            "bad-request",
            "more than one host header",
        ));
    }
    if hosts == 0 && req.version() == http::Version::HTTP_11 && req.uri().authority().is_none() {
        return Some((StatusCode::BAD_REQUEST, "bad-request", "no host header"));
    }
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len() + 8);
    let line = req.method().as_str().len() + target + 12;
    let size = req
        .headers()
        .iter()
        .fold(line + 2, |n, (k, v)| n + k.as_str().len() + v.len() + 4);
    if size > super::h1::MAX_HEAD {
        return Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too-large",
            "the request head is larger than the gateway reads",
        ));
    }
    None
}

pub(super) fn outcome<'t>(status: u16) -> Outcome<'t> {
    Outcome {
        status,
        route: None,
        upstream: None,
        function: None,
        error: None,
        bytes_out: 0,
    }
}

async fn serve_route<'t>(
    shared: &Shared,
    client: &Clients,
    route: &'t CompiledRoute,
    matched: &PathCond,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> (Response<GatewayBody>, Outcome<'t>) {
    match &route.action {
        Action::Direct { status, body } => {
            let mut r = Response::new(Either::Right(Full::new(body.clone())));
            *r.status_mut() = *status;
            apply_response_headers(r.headers_mut(), &route.options);
            let mut o = outcome(status.as_u16());
            o.bytes_out = body.len() as u64;
            (r, o)
        }
        Action::Redirect(rd) => {
            let r = redirect(rd, matched, &req);
            let o = outcome(r.status().as_u16());
            (r, o)
        }
        Action::Forward(fwd) => {
            let target = fwd.pick();
            forward(shared, client, route, target, matched, req, remote).await
        }
    }
}

fn redirect(rd: &Redirect, matched: &PathCond, req: &Request<Incoming>) -> Response<GatewayBody> {
    let uri = req.uri();
    let host = rd
        .host
        .clone()
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let mut path = match (&rd.path, &rd.prefix_rewrite) {
        (Some(p), _) => p.clone(),
        (None, Some(rw)) => rewrite_prefix(uri.path(), matched, rw),
        _ => uri.path().to_string(),
    };
    if !rd.strip_query
        && let Some(q) = uri.query()
    {
        path = format!("{path}?{q}");
    }
    let scheme = if rd.https { "https" } else { "http" };
    let location = format!("{scheme}://{host}{path}");
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = rd.status;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Envoy's prefix rewrite: the matched prefix (or the whole path, for exact and regex) is
/// replaced by `rewrite`.
pub(super) fn rewrite_prefix(path: &str, matched: &PathCond, rewrite: &str) -> String {
    match matched {
        PathCond::Prefix(p) if path.len() >= p.len() => format!("{rewrite}{}", &path[p.len()..]),
        _ => rewrite.to_string(),
    }
}

/// Envoy writes `\1` for a capture group; the regex crate writes `${1}`.
pub(super) fn envoy_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let d = chars.next().unwrap_or('0');
            out.push_str(&format!("${{{d}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

fn apply_response_headers(h: &mut HeaderMap, o: &Options) {
    for n in &o.response_remove {
        h.remove(n);
    }
    for a in &o.response_add {
        if a.append {
            h.append(a.name.clone(), a.value.clone());
        } else {
            h.insert(a.name.clone(), a.value.clone());
        }
    }
}

/// The request body, buffered when it must be replayed or read; refused past `max`.
enum RequestBody {
    Stream(Incoming),
    Buffered(Bytes),
}

#[allow(clippy::too_many_arguments)]
async fn forward<'t>(
    shared: &Shared,
    client: &Clients,
    route: &'t CompiledRoute,
    target: &'t Target,
    matched: &PathCond,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> (Response<GatewayBody>, Outcome<'t>) {
    let rid = Some(&*route.id);
    let up_name: Option<&'t str> = target.upstream.as_ref().map(|u| &*u.name);
    let mut o = outcome(0);
    o.upstream = up_name;
    o.function = target.function.as_ref().map(|f| f.name.as_str());
    let fail = |mut o: Outcome<'t>, status: StatusCode, code: &str, msg: &str| {
        o.status = status.as_u16();
        o.error = Some(msg.to_string());
        (error_response(status, code, msg, rid, up_name), o)
    };
    if let Some(p) = &target.problem {
        return fail(o, StatusCode::SERVICE_UNAVAILABLE, "no-upstream", p);
    }
    let Some(upstream) = target.upstream.clone() else {
        return fail(
            o,
            StatusCode::SERVICE_UNAVAILABLE,
            "no-upstream",
            "no upstream",
        );
    };
    let opts = &route.options;
    let (mut parts, body) = req.into_parts();
    let upgrade = upgrade_to(&parts.headers, opts);
    // An HTTP/2 client names the host in `:authority` (an HTTP/1.1 one in `Host`, kept below).
    let parts_authority = parts.uri.authority().map(|a| a.to_string());
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > shared.max_body as u64
    {
        return fail(
            o,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            &format!("the request body is larger than {} bytes", shared.max_body),
        );
    }
    let must_buffer = target.function.is_some()
        || opts.retry.as_ref().is_some_and(|r| r.num > 0)
        || opts.shadow.is_some();
    let body = if must_buffer {
        match Limited::new(body, shared.max_body).collect().await {
            Ok(c) => RequestBody::Buffered(c.to_bytes()),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return fail(
                    o,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    &format!("the request body is larger than {} bytes", shared.max_body),
                );
            }
            Err(e) => {
                return fail(
                    o,
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    &format!("reading the request body: {e}"),
                );
            }
        }
    } else {
        RequestBody::Stream(body)
    };

    // Method, path, headers and body of the upstream request.
    let mut method = parts.method.clone();
    let original_pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    // The request was routed by its target's authority (absolute form, or HTTP/2's
    // `:authority`): the upstream gets that host, not a `Host` that says otherwise
    // (RFC 9112, 3.2.2).
    if let Some(v) = parts_authority
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        headers.insert(header::HOST, v);
    }
    let mut path_and_query = {
        let path = parts.uri.path();
        let mut p = if let Some(rw) = &opts.prefix_rewrite {
            rewrite_prefix(path, matched, rw)
        } else if let Some((re, sub)) = &opts.regex_rewrite {
            re.replace_all(path, envoy_substitution(sub).as_str())
                .into_owned()
        } else {
            path.to_string()
        };
        if let Some(q) = parts.uri.query() {
            p.push('?');
            p.push_str(q);
        }
        p
    };
    let mut body = body;
    if let Some(f) = &target.function {
        let raw: &[u8] = match &body {
            RequestBody::Buffered(b) => b,
            RequestBody::Stream(_) => &[],
        };
        match f.render(&original_pq, (&headers).into(), raw) {
            Ok(call) => {
                if let Some(m) = call
                    .method
                    .as_deref()
                    .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                {
                    method = m;
                }
                if let Some(p) = call.path {
                    path_and_query = if p.starts_with('/') {
                        p
                    } else {
                        format!("/{p}")
                    };
                }
                for h in call.remove_headers {
                    headers.remove(h);
                }
                for (h, v) in call.set_headers {
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        headers.insert(h, v);
                    }
                }
                if let Some(b) = call.body {
                    body = RequestBody::Buffered(Bytes::from(b));
                }
            }
            Err(e) => {
                let (status, code, message) = e.answer(&f.name);
                return fail(o, status, code, &message);
            }
        }
    }
    headers.remove(header::CONTENT_LENGTH);
    if let RequestBody::Buffered(b) = &body
        && (!b.is_empty() || method_has_body(&method))
    {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
    }
    if let Some(h) = &opts.host_rewrite {
        headers.insert(header::HOST, h.clone());
    }
    let client_ip = remote.ip().to_string();
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if !headers.contains_key(&X_REQUEST_ID) {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert(X_REQUEST_ID, v);
        }
    }
    for n in &opts.request_remove {
        headers.remove(n);
    }
    for a in &opts.request_add {
        if a.append {
            headers.append(a.name.clone(), a.value.clone());
        } else {
            headers.insert(a.name.clone(), a.value.clone());
        }
    }

    // Shadowing: a copy, fire and forget, never affecting the client's answer.
    if let (Some((shadow, pct)), RequestBody::Buffered(b)) = (&opts.shadow, &body)
        && fastrand::f64() * 100.0 < *pct
        && let Some(host) = shadow.pick()
    {
        let scheme = if shadow.use_tls { "https" } else { "http" };
        if let Ok(uri) = format!("{scheme}://{host}{path_and_query}").parse::<Uri>() {
            let mut sreq = Request::new(Either::Right(Full::new(b.clone())));
            *sreq.method_mut() = method.clone();
            *sreq.uri_mut() = uri;
            *sreq.headers_mut() = headers.clone();
            let c = client.general.clone();
            tokio::spawn(async move {
                if let Ok(resp) = c.request(sreq).await {
                    let _ = resp.into_body().collect().await;
                }
            });
        }
    }

    let retry = opts.retry.clone().unwrap_or_default();
    let replayable = matches!(body, RequestBody::Buffered(_));
    let attempts = if replayable {
        retry.num.saturating_add(1)
    } else {
        1
    };
    let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut stream, buffered) = match body {
        RequestBody::Stream(s) => (Some(s), None),
        RequestBody::Buffered(b) => (None, Some(b)),
    };
    let mut last_error = no_attempt();
    for attempt in 0..attempts {
        if attempt > 0 {
            // Envoy's jittered back-off before a retry, within the request's deadline.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(retry.backoff(attempt).min(left)).await;
        }
        let Some(host) = upstream.pick() else {
            return fail(
                o,
                StatusCode::SERVICE_UNAVAILABLE,
                "no-upstream",
                "the upstream has no hosts",
            );
        };
        // Cleartext upstreams get the origin form (`/path?query`) on this worker's pool; TLS
        // ones an absolute URI on the general client.
        let uri: Result<Uri, _> = if upstream.use_tls {
            format!("https://{host}{path_and_query}").parse()
        } else {
            Uri::try_from(path_and_query.as_str())
        };
        let uri = match uri {
            Ok(u) => u,
            Err(e) => {
                return fail(
                    o,
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    &format!("cannot build the upstream URI: {e}"),
                );
            }
        };
        let b: OutBody = match (&buffered, stream.take()) {
            (Some(b), _) => Either::Right(Full::new(b.clone())),
            (None, Some(s)) => Either::Left(s),
            (None, None) => Either::Right(Full::new(Bytes::new())),
        };
        let mut ureq = Request::new(b);
        *ureq.method_mut() = method.clone();
        *ureq.uri_mut() = uri;
        let last = attempt + 1 == attempts;
        // The last (usually the only) attempt takes the headers instead of copying them.
        *ureq.headers_mut() = if last {
            std::mem::take(&mut headers)
        } else {
            headers.clone()
        };
        let per_try = retry
            .per_try
            .map(|p| deadline.min(tokio::time::Instant::now() + p))
            .unwrap_or(deadline);
        if opts.auto_host_rewrite
            && opts.host_rewrite.is_none()
            && let Ok(v) = HeaderValue::from_str(upstream.authority_of(host))
        {
            ureq.headers_mut().insert(header::HOST, v);
        }
        if !upstream.use_tls && !ureq.headers().contains_key(header::HOST) {
            // An HTTP/2 client gives `:authority`, not `Host`; HTTP/1.1 needs one.
            if let Ok(v) = HeaderValue::from_str(parts_authority.as_deref().unwrap_or(host)) {
                ureq.headers_mut().insert(header::HOST, v);
            }
        }
        let sent = async {
            if upstream.use_tls {
                client
                    .general
                    .request(ureq)
                    .await
                    .map(|r| r.map(UpstreamBody::unpooled))
                    .map_err(|e| Fault::of(e.is_connect(), false, &e))
            } else {
                client
                    .pool
                    .send(host, ureq)
                    .await
                    .map_err(|e| Fault::of(e.is_connect(), e.is_request_body(), &e))
            }
        };
        match tokio::time::timeout_at(per_try, sent).await {
            Ok(Ok(mut resp)) => {
                let status = resp.status().as_u16();
                if !last && retry.retry_status(status) {
                    last_error = failure(host, Failure::Status(status));
                    continue;
                }
                if status == 101 {
                    let client = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
                    match (&upgrade, client) {
                        (Some(_), Some(client)) => {
                            let protocol = resp.headers().get(header::UPGRADE).cloned();
                            strip_hop_by_hop(resp.headers_mut());
                            if let Some(p) = protocol {
                                let h = resp.headers_mut();
                                h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                                h.insert(header::UPGRADE, p);
                            }
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            tokio::spawn(super::tunnel::relay(
                                client,
                                hyper::upgrade::on(&mut resp),
                                shared.stream_idle_timeout,
                                shared.registry.clone(),
                                tx,
                            ));
                            resp.extensions_mut()
                                .insert(super::tunnel::TunnelReport::new(rx));
                            o.status = status;
                            upstream.stats.record(status, Duration::ZERO, 0);
                            return (resp.map(Either::Left), o);
                        }
                        _ => {
                            let why = "the upstream switched protocols unasked";
                            last_error = failure(host, Failure::Reset(why));
                            break;
                        }
                    }
                }
                strip_hop_by_hop(resp.headers_mut());
                apply_response_headers(resp.headers_mut(), opts);
                o.status = status;
                o.bytes_out = resp.body().size_hint().exact().unwrap_or(0);
                upstream.stats.record(status, Duration::ZERO, o.bytes_out);
                return (resp.map(Either::Left), o);
            }
            Ok(Err(Fault::Client(cause))) => {
                // The client's body broke off or was malformed: its fault, not the upstream's
                // (not counted against it, not retried).
                let msg = format!("the request body could not be read: {cause}");
                return fail(o, StatusCode::BAD_REQUEST, "bad-request", &msg);
            }
            Ok(Err(Fault::Upstream(connect, cause))) => {
                last_error = if connect {
                    failure(host, Failure::Connect(&cause))
                } else {
                    failure(host, Failure::Reset(&cause))
                };
                let retry_it =
                    (connect && retry.on_connect_failure) || (!connect && retry.on_reset);
                if !retry_it || last {
                    break;
                }
            }
            Err(_) => {
                last_error = failure(host, Failure::Timeout);
                if tokio::time::Instant::now() >= deadline || last {
                    break;
                }
            }
        }
    }
    upstream
        .stats
        .record(last_error.0.as_u16(), Duration::ZERO, 0);
    fail(o, last_error.0, last_error.1, &last_error.2)
}

/// The protocol a request asks to upgrade to, when the route lets it: WebSocket only, on
/// HTTP/1.1 (`Connection: upgrade` and `Upgrade: websocket`). Any other upgrade is dropped
/// with the hop-by-hop headers, and the request goes on as plain HTTP.
fn upgrade_to(h: &HeaderMap, opts: &Options) -> Option<HeaderValue> {
    let asks = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let protocol = h.get(header::UPGRADE)?;
    let websocket = protocol
        .to_str()
        .ok()?
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"));
    (asks && websocket && opts.websocket).then(|| protocol.clone())
}

/// The error before any attempt (never answered: there is always at least one attempt).
pub(super) fn no_attempt() -> (StatusCode, &'static str, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream-unavailable",
        "no attempt made".into(),
    )
}

/// How an attempt to reach an upstream failed.
pub(super) enum Failure<'a> {
    /// No connection (nothing was sent); the cause.
    Connect(&'a str),
    /// The connection failed, or the answer was no HTTP; the cause.
    Reset(&'a str),
    Timeout,
    /// The upstream answered with a status the route retries on.
    Status(u16),
}

/// What a failed attempt answers with, if it is the last: status, `x-epoxy-error`, message.
/// Both paths (this one and `h1`) answer alike.
pub(super) fn failure(host: &str, f: Failure<'_>) -> (StatusCode, &'static str, String) {
    match f {
        Failure::Connect(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream-connect-failure",
            format!("cannot connect to upstream {host}: {cause}"),
        ),
        Failure::Reset(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream-reset",
            format!("upstream {host} reset the request: {cause}"),
        ),
        Failure::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            format!("upstream {host} did not answer in time"),
        ),
        Failure::Status(s) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
            "upstream-status",
            format!("upstream answered {s}"),
        ),
    }
}

fn method_has_body(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::PATCH)
}

/// Who an exchange with an upstream failed for.
enum Fault {
    /// The upstream: (whether it was never reached, the cause).
    Upstream(bool, String),
    /// The client: reading its request body failed (bad chunked framing, say).
    Client(String),
}

impl Fault {
    /// `request_body`: the error is known to come from the request's body; else hyper's
    /// "user" errors in `e`'s causes say so.
    fn of(connect: bool, request_body: bool, e: &(dyn std::error::Error + 'static)) -> Fault {
        if request_body {
            return Fault::Client(root_cause(e));
        }
        let mut cur = Some(e);
        while let Some(c) = cur {
            if c.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_user)
            {
                return Fault::Client(root_cause(c));
            }
            cur = c.source();
        }
        Fault::Upstream(connect, root_cause(e))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
