//! One request through the gateway: route, then answer directly, redirect, or forward (with
//! rewrites, function templates, retries, timeouts, shadowing), and report what happened.
//!
//! Errors say who failed: the client (4xx), the upstream (503 refused/reset, 504 timeout), or
//! epoxy's configuration (503 with the reason), in a small JSON body and `x-epoxy-error`.

use super::attempts::{self, Exchange, ProxyError, RetryType};
use super::forwarding::FromClient;
use super::matcher::{Headers, PathCond, RequestHead};
use super::pipeline::{Answer, Edits, Inbound};
use super::pool::{OutBody, Pool, UpstreamBody};
use super::response_rules::ResponseRules;
use super::table::{
    Action, CompiledRoute, DEFAULT_TIMEOUT, Options, Redirect, RouteTable, Target, UpstreamTarget,
};
use super::telemetry::{Outcome, Seen, outcome};
use super::telemetry::{Registry, RequestEvent};
use super::upstream_request::{
    ClientRequest, HOP_BY_HOP, HeaderRules, Planned, connection_tokens, rewrite_prefix,
};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Incoming};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// What the gateway answers with: an upstream's body, or one it made.
pub type GatewayBody = Either<UpstreamBody, Full<Bytes>>;
/// One worker's way to reach upstreams.
#[derive(Clone)]
pub struct Clients {
    /// This worker's own connections, for every upstream (cleartext or TLS, HTTP/1.1 or
    /// HTTP/2; see `super::dial`).
    pub pool: Arc<Pool>,
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
    /// The scheme clients reach this listener by (`x-forwarded-proto`): `https` on a TLS one.
    pub scheme: &'static str,
}

/// A worker's upstream connections (see `pool`); those it opens are counted in `registry`.
pub fn new_client(registry: &Registry) -> Clients {
    Clients {
        pool: Pool::counting(registry.upstream_connections.clone()),
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
    answer_response(Answer::error(status, code, message, route, upstream))
}

/// The response for an answer the gateway makes (an error, a stage's).
fn answer_response(a: Answer) -> Response<GatewayBody> {
    let mut r = Response::new(Either::Right(Full::new(a.body)));
    *r.status_mut() = a.status;
    let h = r.headers_mut();
    for (n, v) in a.headers {
        h.append(n, v);
    }
    r
}

/// Removes a response's hop-by-hop headers, and those its `connection` header lists.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let listed: smallvec::SmallVec<[HeaderName; 2]> = h
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| connection_tokens(v.as_bytes()))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    for n in listed {
        h.remove(n);
    }
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
        let head = request_head(&req);
        let authority = head.authority;
        let matched = table.route(&head);
        let no_vhost = matched.is_none() && table.vhost(authority).is_none();
        let info = want_event.then(|| Seen::of(&head));
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
            let (resp, mut outcome) = match admit(route, &req, remote).await {
                Ok(edits) => {
                    let (mut resp, o) = serve_route(
                        shared,
                        client,
                        route,
                        &m.matcher.path,
                        req,
                        remote,
                        edits.as_ref(),
                    )
                    .await;
                    ResponseRules::stages(edits.as_ref()).apply(resp.headers_mut());
                    (resp, o)
                }
                Err(answer) => {
                    let mut o = outcome(answer.status.as_u16());
                    o.bytes_out = answer.body.len() as u64;
                    o.error = Some(answer.reason.clone());
                    (answer_response(answer), o)
                }
            };
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
        if let Some(seen) = info {
            let events = shared.events.clone();
            let (route, upstream) = (
                outcome.route.map(str::to_string),
                outcome.upstream.map(str::to_string),
            );
            tokio::spawn(async move {
                let Ok(t) = report.await else { return };
                let tunnel = super::telemetry::outcome(101);
                let mut event = seen.event(&tunnel, started.elapsed(), t.from_client);
                event.route = route;
                event.upstream = upstream;
                event.bytes_out = t.to_client;
                event.error = t.error;
                let _ = events.send(event);
            });
        }
        return resp;
    }
    if let Some(seen) = info {
        let _ = shared
            .events
            .send(seen.event(&outcome, started.elapsed(), bytes_in));
    }
    resp
}

/// What a request is routed by, on hyper's side.
fn request_head<B>(req: &Request<B>) -> RequestHead<'_> {
    RequestHead {
        method: req.method().as_str(),
        authority: authority_of(req),
        path: req.uri().path(),
        query: req.uri().query(),
        headers: req.headers().into(),
    }
}

/// The host a request is routed by: its target's authority (absolute form, HTTP/2's
/// `:authority`), else `Host`.
fn authority_of<B>(req: &Request<B>) -> &str {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("")
}

/// Runs the route's stages (see `super::pipeline`) on hyper's view of the request.
async fn admit(
    route: &CompiledRoute,
    req: &Request<Incoming>,
    remote: SocketAddr,
) -> Result<Option<Edits>, Answer> {
    let Some(p) = &route.policies else {
        return Ok(None);
    };
    let inbound = Inbound {
        head: request_head(req),
        remote,
    };
    p.admit(&inbound).await.map(Some)
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

/// Serves a routed request the route's stages let through (`edits`: what they change).
async fn serve_route<'t>(
    shared: &Shared,
    client: &Clients,
    route: &'t CompiledRoute,
    matched: &PathCond,
    req: Request<Incoming>,
    remote: SocketAddr,
    edits: Option<&Edits>,
) -> (Response<GatewayBody>, Outcome<'t>) {
    match &route.action {
        Action::Direct { status, body } => {
            let mut r = Response::new(Either::Right(Full::new(body.clone())));
            *r.status_mut() = *status;
            ResponseRules::route(&route.options).apply(r.headers_mut());
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
            forward(shared, client, route, target, matched, req, remote, edits).await
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

/// Why a transcoded call routed again by its gRPC path is not sent.
enum Rerouted {
    /// No route takes the gRPC path (404), or the one that does forwards nowhere (503).
    Unroutable(StatusCode, String),
    /// The second route's stages refused it (their answer, written in the upstream's place).
    Refused(Answer),
}

/// The upstream a transcoded call goes to when its gRPC path (`POST /package.Service/Method`,
/// `content-type: application/grpc`) is routed again in the listener's table, and the edits of
/// that route's stages. Envoy runs its auth filters once, on the route the HTTP request
/// matched; epoxy also runs the second route's stages, so a gRPC route's protection holds
/// whichever HTTP path reaches it (fail closed).
async fn reroute<B>(
    shared: &Shared,
    req: &Request<B>,
    path: String,
    remote: SocketAddr,
) -> Result<(Arc<UpstreamTarget>, Option<Edits>), Rerouted> {
    let mut headers = req.headers().clone();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let head = RequestHead {
        method: "POST",
        authority: authority_of(req),
        path: &path,
        query: None,
        headers: (&headers).into(),
    };
    // Held across the stages' await: a reference count, not a guard.
    let table = shared.table.load_full();
    let Some(m) = table.route(&head) else {
        return Err(Rerouted::Unroutable(
            StatusCode::NOT_FOUND,
            format!(
                "no route takes the transcoded call `POST {path}` (matchIncomingRequestRoute is false)"
            ),
        ));
    };
    let target = match &m.route.action {
        Action::Forward(f) => f.pick(),
        _ => {
            return Err(Rerouted::Unroutable(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "route `{}` for the transcoded call `POST {path}` forwards to no upstream",
                    m.route.id
                ),
            ));
        }
    };
    let upstream = match (&target.problem, &target.upstream) {
        (None, Some(u)) => u.clone(),
        (Some(p), _) => {
            return Err(Rerouted::Unroutable(
                StatusCode::SERVICE_UNAVAILABLE,
                p.to_string(),
            ));
        }
        (None, None) => {
            return Err(Rerouted::Unroutable(
                StatusCode::SERVICE_UNAVAILABLE,
                "no upstream".into(),
            ));
        }
    };
    let edits = match &m.route.policies {
        None => None,
        Some(p) => Some(
            p.admit(&Inbound { head, remote })
                .await
                .map_err(Rerouted::Refused)?,
        ),
    };
    Ok((upstream, edits))
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
    edits: Option<&Edits>,
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
    let (parts, body) = req.into_parts();
    let bound = target.call.as_deref().and_then(|c| c.bind(&parts));
    let mut req = Request::from_parts(parts, body);
    if let Some(bound) = bound {
        // A call reads the request as the stages left it.
        if let Some(e) = edits {
            e.apply_to_request(req.headers_mut());
        }
        o.function = Some(bound.name()).filter(|n| !n.is_empty());
        // A transcoded call is routed again by its gRPC path unless the transcoder keeps the
        // route the HTTP request matched (Envoy clears its route cache).
        let (upstream, second) = if bound.keeps_route() {
            (upstream, None)
        } else {
            let path = bound.grpc_path().unwrap_or_default();
            match reroute(shared, &req, path, remote).await {
                Ok(found) => found,
                Err(Rerouted::Unroutable(status, msg)) => return fail(o, status, "no-route", &msg),
                Err(Rerouted::Refused(answer)) => {
                    o.status = answer.status.as_u16();
                    o.bytes_out = answer.body.len() as u64;
                    o.error = Some(answer.reason.clone());
                    return (answer_response(answer), o);
                }
            }
        };
        let (mut parts, body) = req.into_parts();
        if let Some(e) = &second {
            e.apply_to_request(&mut parts.headers);
        }
        let body = match Limited::new(body, shared.max_body).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                let msg = format!("the request body is larger than {} bytes", shared.max_body);
                return fail(o, StatusCode::PAYLOAD_TOO_LARGE, "too-large", &msg);
            }
            Err(e) => {
                let msg = format!("reading the request body: {e}");
                return fail(o, StatusCode::BAD_REQUEST, "bad-request", &msg);
            }
        };
        return match super::invoke::invoke(&bound, &upstream, &parts, body, route, second.as_ref())
            .await
        {
            Ok(answer) => {
                o.status = answer.status.as_u16();
                o.bytes_out = answer.body.len() as u64;
                (answer_response(answer), o)
            }
            Err(answer) => {
                o.status = answer.status.as_u16();
                o.error = Some(answer.reason.clone());
                (answer_response(answer), o)
            }
        };
    }
    let opts = &route.options;
    let (mut parts, body) = req.into_parts();
    let upgrade = upgrade_to(&parts.headers, opts);
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
    let (stream, client_body) = match body {
        RequestBody::Stream(s) => (Some(s), None),
        RequestBody::Buffered(b) => (None, Some(b)),
    };

    // What goes upstream, decided as on the fast path (`upstream_request`).
    let client_req = ClientRequest {
        method: parts.method.as_str(),
        target: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        path: parts.uri.path(),
        query: parts.uri.query(),
        authority: parts.uri.authority().map(|a| a.as_str()),
        headers: Headers::Map(&parts.headers),
        body: client_body.as_deref().unwrap_or_default(),
    };
    let function = target.function.as_deref();
    let planned = match Planned::new(&client_req, opts, matched, function, edits) {
        Ok(p) => p,
        Err((status, code, message)) => return fail(o, status, code, &message),
    };
    let Ok(method) = Method::from_bytes(planned.method().as_bytes()) else {
        let msg = format!("`{}` is not a method", planned.method());
        return fail(o, StatusCode::BAD_REQUEST, "bad-request", &msg);
    };
    let buffered = match planned.function_body() {
        Some(b) => Some(Bytes::copy_from_slice(b)),
        None => client_body.clone(),
    };
    let rules = HeaderRules {
        method: method.as_str(),
        opts,
        call: planned.call.as_ref(),
        edits,
        body_len: buffered.as_ref().map(Bytes::len),
        client_ip: &remote.ip().to_string(),
        scheme: shared.scheme,
        upgrade: upgrade.as_ref().map(HeaderValue::as_bytes),
    };
    let path_and_query = planned.path_and_query();

    // Shadowing: a copy, fire and forget, never affecting the client's answer.
    if let (Some((shadow, pct)), Some(b)) = (&opts.shadow, &buffered)
        && fastrand::f64() * 100.0 < *pct
        && let Some(host) = shadow.pick()
        && let Ok(uri) = Uri::try_from(path_and_query)
    {
        let mut sreq = Request::new(Either::Right(Full::new(b.clone())));
        *sreq.method_mut() = method.clone();
        *sreq.uri_mut() = uri;
        let mut sink = FromClient {
            client: &parts.headers,
            out: sreq.headers_mut(),
        };
        rules.write(&client_req, (host, shadow.authority_of(host)), &mut sink);
        let (pool, shadow, host) = (client.pool.clone(), shadow.clone(), host.clone());
        tokio::spawn(async move {
            if let Ok(resp) = pool.send(&shadow.dial, &host, sreq).await {
                let _ = resp.into_body().collect().await;
            }
        });
    }

    let retry = opts.retry.clone().unwrap_or_default();
    let attempts = if buffered.is_some() {
        retry.num.saturating_add(1)
    } else {
        1
    };
    let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut exchange = HyperExchange {
        client,
        upstream: &upstream,
        method: &method,
        path_and_query,
        client_req: &client_req,
        client_headers: &parts.headers,
        rules: &rules,
        stream,
        buffered,
        upgrade: upgrade.is_some(),
    };
    let result = attempts::run(&mut exchange, &upstream, &retry, attempts, deadline).await;
    drop(exchange);
    drop(planned);
    match result {
        Ok((mut resp, _host)) => {
            let status = resp.status().as_u16();
            if status == 101 {
                let Some(client) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
                    let msg = "the upstream switched protocols on a connection that cannot";
                    return fail(o, StatusCode::SERVICE_UNAVAILABLE, "upstream-reset", msg);
                };
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
                return (resp.map(Either::Left), o);
            }
            strip_hop_by_hop(resp.headers_mut());
            ResponseRules::route(opts).apply(resp.headers_mut());
            o.status = status;
            o.bytes_out = HyperExchange::size(&resp);
            (resp.map(Either::Left), o)
        }
        Err(f) => fail(o, f.status, f.code, &f.message),
    }
}

/// One attempt through hyper, on this worker's pool (origin-form target; HTTP/2 takes it with
/// the authority).
struct HyperExchange<'a> {
    client: &'a Clients,
    upstream: &'a UpstreamTarget,
    method: &'a Method,
    path_and_query: &'a str,
    client_req: &'a ClientRequest<'a>,
    /// The client's headers (those passed on are shared with the upstream request's).
    client_headers: &'a HeaderMap,
    /// The upstream request's headers, written anew for each attempt's endpoint.
    rules: &'a HeaderRules<'a>,
    /// A body sent as it comes (one attempt only), or one buffered for replays.
    stream: Option<Incoming>,
    buffered: Option<Bytes>,
    /// Whether the client asked to upgrade (a 101 is expected).
    upgrade: bool,
}

impl Exchange for HyperExchange<'_> {
    type Answer = Response<UpstreamBody>;

    async fn attempt(
        &mut self,
        host: &Arc<str>,
        until: tokio::time::Instant,
        _last: bool,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let uri = Uri::try_from(self.path_and_query)
            .map_err(|e| ProxyError::upstream(RetryType::Never, e.to_string()))?;
        let b: OutBody = match (&self.buffered, self.stream.take()) {
            (Some(b), _) => Either::Right(Full::new(b.clone())),
            (None, Some(s)) => Either::Left(s),
            (None, None) => Either::Right(Full::new(Bytes::new())),
        };
        let mut ureq = Request::new(b);
        *ureq.method_mut() = self.method.clone();
        *ureq.uri_mut() = uri;
        let endpoint = (&**host, self.upstream.authority_of(host));
        let out = ureq.headers_mut();
        out.reserve(self.client_headers.len() + 4);
        let mut sink = FromClient {
            client: self.client_headers,
            out,
        };
        self.rules.write(self.client_req, endpoint, &mut sink);
        let client = self.client;
        let sent = async {
            client
                .pool
                .send(&self.upstream.dial, host, ureq)
                .await
                .map_err(|e| fault(e.is_connect(), e.is_request_body(), &e))
        };
        let resp = tokio::time::timeout_at(until, sent)
            .await
            .map_err(|_| ProxyError::timeout())??;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS && !self.upgrade {
            let why = "the upstream switched protocols unasked";
            return Err(ProxyError::upstream(RetryType::Never, why));
        }
        Ok(resp)
    }

    fn status(answer: &Response<UpstreamBody>) -> u16 {
        answer.status().as_u16()
    }

    fn size(answer: &Response<UpstreamBody>) -> u64 {
        answer.body().size_hint().exact().unwrap_or(0)
    }
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

/// Whose fault a failed exchange is: the client's when reading its request body failed (the
/// pool knows it, `request_body`; else hyper's "user" errors among the causes say so), the
/// upstream's otherwise (`connect`: it was never reached).
fn fault(connect: bool, request_body: bool, e: &(dyn std::error::Error + 'static)) -> ProxyError {
    if request_body {
        return ProxyError::downstream(crate::cause::root_cause(e));
    }
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            return ProxyError::downstream(crate::cause::root_cause(c));
        }
        cur = c.source();
    }
    let retry = if connect {
        RetryType::Connect
    } else {
        RetryType::Reset
    };
    ProxyError::upstream(retry, crate::cause::root_cause(e))
}
