//! The HTTP/1.1 fast path: the gateway's common case (an HTTP/1.1 client, a forwarding route, a
//! cleartext upstream) served with less work per request than hyper's general machinery.
//!
//! A connection starts here. Requests are parsed in place with `httparse`, routed on the parsed
//! bytes (no `Uri`, no `HeaderMap`), and written upstream as one buffer; the upstream's response
//! head is parsed and rewritten the same way and its body relayed as it comes (a chunked body
//! keeps its chunks). Everything else goes to hyper, which takes the connection over with the
//! bytes already read put back in front ([`Rewind`]) and serves it to its end: HTTP/2, HTTP/1.0,
//! upgrades, `Expect`, chunked or large (over [`MAX_FAST_BODY`]) request bodies, redirects,
//! direct responses, unknown hosts and routes, TLS upstreams, shadowing, and anything the fast
//! path does not parse. Both paths give the same answers (`tests/gateway.rs` runs through both).

mod chunked;
mod rewind;
mod upstream;

pub use rewind::Rewind;
pub use upstream::UpstreamConns;

use super::function::{CallError, RenderedCall};
use super::matcher::{Headers, PathCond, RequestHead};
use super::proxy::{
    Failure, Outcome, Shared, envoy_substitution, error_body, failure, no_attempt, outcome,
    rewrite_prefix,
};
use super::table::{Action, CompiledRoute, DEFAULT_TIMEOUT, Options, Retry, Target};
use super::telemetry::RequestEvent;
use bytes::{Buf, Bytes, BytesMut};
use chunked::ChunkScanner;
use std::borrow::Cow;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use upstream::{READ_SIZE, UpConn};

/// Request headers the fast path parses; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// Response headers parsed (hyper's client default).
const MAX_RESPONSE_HEADERS: usize = 100;
/// The largest request or response head the fast path reads.
const MAX_HEAD: usize = 64 * 1024;
/// Request bodies up to this size are read whole (so that they can be retried and read by
/// function templates); larger ones go to hyper, which streams them.
pub const MAX_FAST_BODY: usize = 64 * 1024;
/// How long a keep-alive connection may sit idle between requests (nginx's default).
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(75);

/// What the fast path saw of a request head, if it can serve it.
struct Head<'b> {
    method: &'b str,
    /// Origin-form request target: path and query.
    target: &'b str,
    host: &'b str,
    body_len: usize,
    /// The client asked to close the connection after this request.
    close: bool,
}

fn visible(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// Whether `t` is an origin-form request target the `http` crate would take as it is: ASCII,
/// the same bytes allowed in the path and in the query, no fragment, under its length limit.
/// (Anything else goes to hyper, which refuses it or drops the fragment.)
fn request_target(t: &str) -> bool {
    fn path_byte(b: u8) -> bool {
        matches!(b, 0x21..=0x22 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7E) && b != b'`'
    }
    fn query_byte(b: u8) -> bool {
        matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E)
    }
    let (path, query) = t.split_once('?').unwrap_or((t, ""));
    t.starts_with('/')
        && t.len() < u16::MAX as usize
        && path.bytes().all(path_byte)
        && query.bytes().all(query_byte)
}

#[inline]
fn is(name: &str, lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower)
}

/// The request's head if the fast path serves it, `None` to leave it to hyper.
fn inspect<'b>(req: &httparse::Request<'_, 'b>) -> Option<Head<'b>> {
    if req.version != Some(1) {
        return None;
    }
    let method = req.method?;
    let target = req.path?;
    if method == "CONNECT" || !request_target(target) {
        return None;
    }
    let (mut host, mut body_len, mut close) = (None, None, false);
    for h in req.headers.iter() {
        let n = h.name;
        if is(n, "host") {
            if host.is_some() {
                return None;
            }
            host = Some(visible(h.value)?);
        } else if is(n, "content-length") {
            let v = visible(h.value)?.trim();
            if body_len.is_some() || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            body_len = Some(v.parse::<usize>().ok()?);
        } else if is(n, "connection") {
            for token in visible(h.value)?.split(',').map(str::trim) {
                if is(token, "close") {
                    close = true;
                } else if !(token.is_empty() || is(token, "keep-alive")) {
                    return None;
                }
            }
        } else if is(n, "transfer-encoding")
            || is(n, "upgrade")
            || is(n, "expect")
            || is(n, "http2-settings")
        {
            return None;
        }
    }
    Some(Head {
        method,
        target,
        host: host?,
        body_len: body_len.unwrap_or(0),
        close,
    })
}

enum Probe {
    Partial,
    Ready { head: usize, body: usize },
    NotFast,
}

/// Whether `buf` starts with a whole head the fast path serves, with a body of at most
/// `max_body` bytes (larger ones go to hyper, which streams them or answers 413).
fn probe(buf: &[u8], max_body: usize) -> Probe {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => Probe::Partial,
        Ok(httparse::Status::Complete(n)) => match inspect(&req) {
            Some(h) if h.body_len <= max_body => Probe::Ready {
                head: n,
                body: h.body_len,
            },
            _ => Probe::NotFast,
        },
        _ => Probe::NotFast,
    }
}

enum Read {
    Request { head: usize, body: usize },
    Closed,
    NotFast,
}

/// A connection's waits: one timer and one shutdown notification for its whole life, not one
/// of each per request (re-armed only when the timer fires before the deadline it enforces).
struct Waits<'a, S: Future> {
    timer: Pin<&'a mut tokio::time::Sleep>,
    shutdown: Pin<&'a mut S>,
    /// The shutdown future completed (it must not be polled again).
    stopping: bool,
}

/// Reads until `buf` holds a whole request (head and body). The request must start before
/// `deadline`; once it has started, its head must come within `header_timeout` of its first
/// byte, and each piece of its body within `header_timeout` of the one before.
async fn read_request<S: Future>(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    waits: &mut Waits<'_, S>,
    mut deadline: tokio::time::Instant,
    header_timeout: Duration,
    max_body: usize,
) -> Read {
    let mut started = false;
    loop {
        let mut want = 4096;
        let mut in_body = false;
        if !buf.is_empty() {
            match probe(buf, max_body) {
                Probe::Ready { head, body } if buf.len() >= head + body => {
                    return Read::Request { head, body };
                }
                Probe::Ready { head, body } => {
                    in_body = true;
                    want = want.max(head + body - buf.len());
                }
                Probe::Partial => {}
                Probe::NotFast => return Read::NotFast,
            }
            if !started {
                deadline = deadline.min(tokio::time::Instant::now() + header_timeout);
                started = true;
            }
        }
        if waits.timer.deadline() > deadline {
            waits.timer.as_mut().reset(deadline);
        }
        buf.reserve(want);
        let idle = buf.is_empty();
        let read = tokio::select! {
            biased;
            _ = waits.shutdown.as_mut(), if idle && !waits.stopping => {
                waits.stopping = true;
                return Read::Closed;
            }
            _ = waits.timer.as_mut() => {
                if tokio::time::Instant::now() >= deadline {
                    return Read::Closed;
                }
                waits.timer.as_mut().reset(deadline);
                continue;
            }
            r = io.read_buf(buf) => r,
        };
        match read {
            // Each piece of a body gets a fresh allowance.
            Ok(n) if n > 0 && in_body => deadline = tokio::time::Instant::now() + header_timeout,
            Ok(n) if n > 0 => {}
            _ => return Read::Closed,
        }
    }
}

/// Serves a connection until it closes (`None`), or until a request the fast path leaves to
/// hyper: then the bytes read and not served (that request first) are returned.
pub async fn serve(
    io: &mut TcpStream,
    remote: SocketAddr,
    shared: &Shared,
    conns: &UpstreamConns,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    let max_body = shared.max_body.min(MAX_FAST_BODY);
    let client_ip = remote.ip().to_string();
    let header_timeout = shared.header_read_timeout;
    // The first request must come within `header_timeout` of the connection.
    let mut deadline = tokio::time::Instant::now() + header_timeout;
    let draining = shutdown.clone();
    let timer = tokio::time::sleep_until(deadline);
    let stop = shutdown.changed();
    let (timer, stop) = (std::pin::pin!(timer), std::pin::pin!(stop));
    let mut waits = Waits {
        timer,
        shutdown: stop,
        stopping: false,
    };
    loop {
        let read = read_request(io, &mut buf, &mut waits, deadline, header_timeout, max_body);
        let (head_len, body_len) = match read.await {
            Read::Request { head, body } => (head, body),
            Read::Closed => return None,
            Read::NotFast => return Some(buf.freeze()),
        };
        let total = head_len + body_len;
        let flow = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let parsed = matches!(req.parse(&buf), Ok(httparse::Status::Complete(_)));
            match inspect(&req) {
                Some(head) if parsed => {
                    let r = Request {
                        head,
                        headers: req.headers,
                        body: &buf[head_len..total],
                        client_ip: &client_ip,
                        draining: &draining,
                    };
                    handle(io, &r, shared, conns, &mut out).await
                }
                _ => Flow::HandOff,
            }
        };
        // The next request may idle this long first.
        deadline = tokio::time::Instant::now() + KEEP_ALIVE_IDLE;
        match flow {
            Flow::KeepAlive if !*draining.borrow() => buf.advance(total),
            Flow::KeepAlive | Flow::Close => {
                linger(io).await;
                return None;
            }
            Flow::HandOff => return Some(buf.freeze()),
        }
    }
}

/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(1);

/// Closes after a last response without cutting it off: closing a socket with unread bytes
/// from the client (a request it pipelined) sends a reset, which can destroy the response still
/// on its way. So: end our side, then read and drop what comes until the client closes too.
async fn linger(io: &mut TcpStream) {
    let _ = io.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    let drain = async {
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// What happens to the connection after a request.
enum Flow {
    KeepAlive,
    Close,
    /// Nothing was written: hyper serves this request and the rest of the connection.
    HandOff,
}

struct Request<'a, 'b> {
    head: Head<'b>,
    headers: &'a [httparse::Header<'b>],
    body: &'a [u8],
    /// The client's address as `x-forwarded-for` gives it (formatted once per connection).
    client_ip: &'a str,
    /// Turns true when the gateway shuts down: the response then closes the connection.
    draining: &'a watch::Receiver<bool>,
}

impl Request<'_, '_> {
    /// Whether the response says `connection: close` and the connection ends after it: the
    /// client asked, or the gateway is shutting down.
    fn closing(&self) -> bool {
        self.head.close || *self.draining.borrow()
    }

    fn flow(&self) -> Flow {
        if self.closing() {
            Flow::Close
        } else {
            Flow::KeepAlive
        }
    }
}

/// Whether every destination of the route is one the fast path forwards to.
fn fast_route(route: &CompiledRoute) -> Option<&super::table::Forward> {
    let Action::Forward(fwd) = &route.action else {
        return None;
    };
    let plain = |t: &Target| t.problem.is_none() && t.upstream.as_ref().is_some_and(|u| !u.use_tls);
    (route.options.shadow.is_none() && fwd.targets.iter().all(plain)).then_some(fwd)
}

async fn handle(
    io: &mut TcpStream,
    req: &Request<'_, '_>,
    shared: &Shared,
    conns: &UpstreamConns,
    out: &mut Vec<u8>,
) -> Flow {
    let started = Instant::now();
    let table = shared.table.load();
    let target = req.head.target;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let head = RequestHead {
        method: req.head.method,
        authority: req.head.host,
        path,
        query,
        headers: Headers::Raw(req.headers),
    };
    let Some(m) = table.route(&head) else {
        return Flow::HandOff;
    };
    let route = m.route;
    let Some(fwd) = fast_route(route) else {
        return Flow::HandOff;
    };
    let want_event = shared.events.receiver_count() > 0;
    let dest = fwd.pick();
    let call = Call {
        route,
        dest,
        matched: &m.matcher.path,
        path,
        query,
        started,
    };
    let (mut o, latency, flow) = forward(io, req, &call, conns, out).await;
    o.route = Some(&route.id);
    route.stats.record(o.status, latency, o.bytes_out);
    if want_event {
        let _ = shared.events.send(RequestEvent {
            time: SystemTime::now(),
            method: req.head.method.to_string(),
            host: req.head.host.to_string(),
            path: target.to_string(),
            route: o.route.map(str::to_string),
            upstream: o.upstream.map(str::to_string),
            function: o.function.map(str::to_string),
            status: o.status,
            latency,
            bytes_in: req.body.len() as u64,
            bytes_out: o.bytes_out,
            error: o.error,
        });
    }
    flow
}

/// The route and destination a request goes to.
struct Call<'t, 'r> {
    route: &'t CompiledRoute,
    dest: &'t Target,
    matched: &'t PathCond,
    path: &'r str,
    query: Option<&'r str>,
    started: Instant,
}

type Served<'t> = (Outcome<'t>, Duration, Flow);

async fn fail<'t>(
    io: &mut TcpStream,
    req: &Request<'_, '_>,
    call: &Call<'t, '_>,
    mut o: Outcome<'t>,
    (status, code, message): (http::StatusCode, &str, &str),
    out: &mut Vec<u8>,
) -> Served<'t> {
    let body = error_body(code, message, Some(&call.route.id), o.upstream);
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nx-epoxy-error: {code}\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if req.closing() {
        out.extend_from_slice(b"connection: close\r\n");
    }
    push_date(out);
    out.extend_from_slice(b"\r\n");
    if req.head.method != "HEAD" {
        out.extend_from_slice(&body);
    }
    o.status = status.as_u16();
    o.error = Some(message.to_string());
    let latency = call.started.elapsed();
    let flow = match io.write_all(out).await {
        Ok(()) => req.flow(),
        Err(_) => Flow::Close,
    };
    (o, latency, flow)
}

/// Writes `n` in decimal (what `write!` does, without the formatting machinery).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes a new request id: 128 random bits in hex.
fn push_request_id(out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for mut word in [fastrand::u64(..), fastrand::u64(..)] {
        let mut digits = [0u8; 16];
        for d in digits.iter_mut().rev() {
            *d = HEX[(word & 0xf) as usize];
            word >>= 4;
        }
        out.extend_from_slice(&digits);
    }
}

fn method_has_body(m: &str) -> bool {
    matches!(m, "POST" | "PUT" | "PATCH")
}

/// Methods a request may be sent again for when a kept-alive connection turned out closed.
fn idempotent(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

async fn forward<'t>(
    io: &mut TcpStream,
    req: &Request<'_, '_>,
    call: &Call<'t, '_>,
    conns: &UpstreamConns,
    out: &mut Vec<u8>,
) -> Served<'t> {
    use http::StatusCode;
    let dest = call.dest;
    let mut o = outcome(0);
    o.upstream = dest.upstream.as_ref().map(|u| &*u.name);
    o.function = dest.function.as_ref().map(|f| f.name.as_str());
    let Some(upstream) = dest.upstream.as_deref() else {
        let msg = "no upstream";
        return fail(
            io,
            req,
            call,
            o,
            (StatusCode::SERVICE_UNAVAILABLE, "no-upstream", msg),
            out,
        )
        .await;
    };
    let opts = &call.route.options;

    // A function renders the method, path, headers and body of its call.
    let rendered = match &dest.function {
        None => None,
        Some(f) => match f.render(req.head.target, Headers::Raw(req.headers), req.body) {
            Ok(c) => Some(c),
            Err(CallError::BodyNotJson(e)) => {
                let msg = format!("function `{}` needs a JSON body: {e}", f.name);
                return fail(
                    io,
                    req,
                    call,
                    o,
                    (StatusCode::BAD_REQUEST, "bad-request", &msg),
                    out,
                )
                .await;
            }
            Err(e) => {
                let msg = e.to_string();
                let code = "function-error";
                return fail(
                    io,
                    req,
                    call,
                    o,
                    (StatusCode::INTERNAL_SERVER_ERROR, code, &msg),
                    out,
                )
                .await;
            }
        },
    };
    let method = rendered
        .as_ref()
        .and_then(|c| c.method.as_deref())
        .filter(|m| http::Method::from_bytes(m.as_bytes()).is_ok())
        .unwrap_or(req.head.method);
    let path_and_query: Cow<'_, str> = match rendered.as_ref().and_then(|c| c.path.as_deref()) {
        Some(p) if p.starts_with('/') => Cow::Borrowed(p),
        Some(p) => Cow::Owned(format!("/{p}")),
        None => rewritten(call, opts).map_or(Cow::Borrowed(req.head.target), Cow::Owned),
    };
    // A rewritten or rendered target goes on the request line as it is: it must be one.
    if (matches!(path_and_query, Cow::Owned(_)) || rendered.is_some())
        && !request_target(&path_and_query)
    {
        let msg = format!(
            "cannot build the upstream URI from `{}`",
            path_and_query.escape_debug()
        );
        let why = (StatusCode::BAD_REQUEST, "bad-request", msg.as_str());
        return fail(io, req, call, o, why, out).await;
    }
    let body: &[u8] = match rendered.as_ref().and_then(|c| c.body.as_deref()) {
        Some(b) => b.as_bytes(),
        None => req.body,
    };

    let no_retry = Retry::default();
    let retry = opts.retry.as_ref().unwrap_or(&no_retry);
    let attempts = retry.num.saturating_add(1);
    let deadline = tokio::time::Instant::now() + opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    // The upstream's response is framed by the method it was sent (a function may change it).
    let is_head = method == "HEAD";
    let mut last_error = no_attempt();
    for attempt in 0..attempts {
        let Some(host) = upstream.pick() else {
            let msg = "the upstream has no hosts";
            return fail(
                io,
                req,
                call,
                o,
                (StatusCode::SERVICE_UNAVAILABLE, "no-upstream", msg),
                out,
            )
            .await;
        };
        let last = attempt + 1 == attempts;
        out.clear();
        write_request_head(
            out,
            req,
            method,
            &path_and_query,
            opts,
            rendered.as_ref(),
            host,
            body.len(),
        );
        out.extend_from_slice(body);
        let per_try = retry
            .per_try
            .map(|p| deadline.min(tokio::time::Instant::now() + p))
            .unwrap_or(deadline);
        let sent = exchange(conns, host, out, is_head, idempotent(method));
        match tokio::time::timeout_at(per_try, sent).await {
            Ok(Ok((conn, head))) => {
                if !last && retry.retry_status(head.status) {
                    last_error = failure(host, Failure::Status(head.status));
                    continue;
                }
                o.status = head.status;
                o.bytes_out = match head.framing {
                    Framing::Length(n) => n,
                    _ => 0,
                };
                upstream
                    .stats
                    .record(head.status, Duration::ZERO, o.bytes_out);
                let (latency, flow) =
                    relay(io, req, call, conn, &head, host, is_head, conns, out).await;
                return (o, latency, flow);
            }
            Ok(Err(UpError::Connect(cause))) => {
                last_error = failure(host, Failure::Connect(&cause.to_string()));
                if !retry.on_connect_failure || last {
                    break;
                }
            }
            Ok(Err(UpError::Reset(cause))) => {
                last_error = failure(host, Failure::Reset(&cause));
                if !retry.on_reset || last {
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
    fail(
        io,
        req,
        call,
        o,
        (last_error.0, last_error.1, &last_error.2),
        out,
    )
    .await
}

/// The path and query after the route's prefix or regex rewrite, if it has one.
fn rewritten(call: &Call<'_, '_>, opts: &Options) -> Option<String> {
    let mut p = if let Some(rw) = &opts.prefix_rewrite {
        rewrite_prefix(call.path, call.matched, rw)
    } else if let Some((re, sub)) = &opts.regex_rewrite {
        re.replace_all(call.path, envoy_substitution(sub).as_str())
            .into_owned()
    } else {
        return None;
    };
    if let Some(q) = call.query {
        p.push('?');
        p.push_str(q);
    }
    Some(p)
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-authenticate",
];

#[inline]
fn hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| is(name, h))
}

/// Writes the upstream request's head, with the same header rules as the general path
/// (`proxy::forward`): hop-by-hop headers dropped, the function's headers, `content-length`
/// for the body sent, `hostRewrite`, `x-forwarded-for` / `-proto`, `x-request-id`, then the
/// route's removals and additions.
#[allow(clippy::too_many_arguments)]
fn write_request_head(
    out: &mut Vec<u8>,
    req: &Request<'_, '_>,
    method: &str,
    path_and_query: &str,
    opts: &Options,
    call: Option<&RenderedCall>,
    host: &str,
    body_len: usize,
) {
    for part in [method, " ", path_and_query, " HTTP/1.1\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    // Replaced by the route (removed, or set anew rather than appended).
    let by_route = |name: &str| {
        opts.request_remove.iter().any(|n| is(name, n.as_str()))
            || opts
                .request_add
                .iter()
                .any(|a| !a.append && is(name, a.name.as_str()))
    };
    // Values `HeaderValue` would refuse are left out, as the general path does.
    let valid = |v: &str| v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    let by_function = |name: &str| {
        call.is_some_and(|c| {
            c.remove_headers.iter().any(|n| is(name, n.as_str()))
                || c.set_headers
                    .iter()
                    .any(|(n, v)| is(name, n.as_str()) && valid(v))
        })
    };
    // Framing is the gateway's to write: neither the client, a function nor the route sets it.
    let framing = |name: &str| hop_by_hop(name) || is(name, "content-length");
    let managed = |name: &str| framing(name) || is(name, "x-forwarded-proto");
    let mut w = HeaderWriter {
        out,
        by_route: &by_route,
        host_rewritten: opts.host_rewrite.is_some(),
        prev_xff: None,
        has_host: false,
        has_request_id: false,
    };
    for h in req.headers {
        if managed(h.name) || by_function(h.name) {
            continue;
        }
        w.header(h.name, h.value);
    }
    if let Some(c) = call {
        for (n, v) in &c.set_headers {
            if !managed(n.as_str()) && valid(v) {
                w.header(n.as_str(), v.as_bytes());
            }
        }
    }
    let HeaderWriter {
        out,
        prev_xff,
        mut has_host,
        has_request_id,
        ..
    } = w;
    if body_len > 0 || method_has_body(method) {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, body_len as u64);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(h) = &opts.host_rewrite
        && !by_route("host")
    {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
        has_host = true;
    }
    if !by_route("x-forwarded-for") {
        out.extend_from_slice(b"x-forwarded-for: ");
        if let Some(prev) = prev_xff {
            out.extend_from_slice(prev.as_bytes());
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(req.client_ip.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !by_route("x-forwarded-proto") {
        out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
    if !has_request_id && !by_route("x-request-id") {
        out.extend_from_slice(b"x-request-id: ");
        push_request_id(out);
        out.extend_from_slice(b"\r\n");
    }
    for a in opts
        .request_add
        .iter()
        .filter(|a| !framing(a.name.as_str()))
    {
        has_host |= a.name == http::header::HOST;
        out.extend_from_slice(a.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(a.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        // Every HTTP/1.1 request names a host; the route removed the client's.
        for part in ["host: ", host, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Copies request headers, remembering what the later steps need to know.
struct HeaderWriter<'o, 'v, F: Fn(&str) -> bool> {
    out: &'o mut Vec<u8>,
    by_route: &'o F,
    host_rewritten: bool,
    prev_xff: Option<&'v str>,
    has_host: bool,
    has_request_id: bool,
}

impl<'v, F: Fn(&str) -> bool> HeaderWriter<'_, 'v, F> {
    fn header(&mut self, name: &str, value: &'v [u8]) {
        if is(name, "host") {
            if self.host_rewritten {
                return;
            }
            self.has_host |= !(self.by_route)(name);
        }
        if is(name, "x-forwarded-for") {
            if self.prev_xff.is_none() {
                self.prev_xff = visible(value);
            }
            return;
        }
        if is(name, "x-request-id") {
            self.has_request_id = true;
        }
        if (self.by_route)(name) {
            return;
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
    }
}

/// How an upstream response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body: a response to HEAD, a 204 or a 304.
    Empty,
    Length(u64),
    Chunked,
    /// Read until the upstream closes.
    Close,
}

/// An upstream response head, parsed.
struct UpHead {
    len: usize,
    status: u16,
    framing: Framing,
    /// The upstream keeps the connection open after this response.
    keep_alive: bool,
}

enum UpError {
    Connect(std::io::Error),
    Reset(String),
}

/// Parses a response head at the start of `buf`: `Ok(None)` when more is needed.
fn parse_response(buf: &[u8], is_head: bool) -> Result<Option<UpHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err("response head too large".into()),
        Err(e) => return Err(format!("invalid response: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    if status < 100 {
        return Err(format!("invalid status code {status}"));
    }
    let (mut chunked, mut other_coding, mut length, mut close) = (false, false, None, false);
    for h in resp.headers.iter() {
        if is(h.name, "transfer-encoding") {
            let last = visible(h.value)
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim);
            chunked = last.is_some_and(|c| is(c, "chunked"));
            other_coding = !chunked;
        } else if is(h.name, "content-length") {
            let n = visible(h.value)
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or("invalid content-length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting content-length headers".into());
            }
            length = Some(n);
        } else if is(h.name, "connection") {
            close |= visible(h.value).is_some_and(|v| v.split(',').any(|t| is(t.trim(), "close")));
        }
    }
    let framing = if is_head || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if other_coding {
        Framing::Close
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some(UpHead {
        len,
        status,
        framing,
        keep_alive: resp.version == Some(1) && !close && framing != Framing::Close,
    }))
}

/// Sends a request (head and body in `request`) and reads the response head. A kept-alive
/// connection the upstream closed before answering is replaced by a new one, and the request
/// sent again, when that is safe: the method is idempotent, or nothing could be written.
async fn exchange(
    conns: &UpstreamConns,
    host: &str,
    request: &[u8],
    is_head: bool,
    idempotent: bool,
) -> Result<(UpConn, UpHead), UpError> {
    let (mut conn, mut reused) = match conns.take(host) {
        Some(c) => (c, true),
        None => (conns.connect(host).await.map_err(UpError::Connect)?, false),
    };
    loop {
        match send(&mut conn, request, is_head).await {
            Ok(head) => return Ok((conn, head)),
            Err(Failed::Closed { written }) if reused && (idempotent || !written) => {
                conn = conns.connect(host).await.map_err(UpError::Connect)?;
                reused = false;
            }
            Err(Failed::Closed { .. }) => {
                return Err(UpError::Reset(
                    "the connection closed before a response".into(),
                ));
            }
            Err(Failed::Io(e)) => return Err(UpError::Reset(e.to_string())),
            Err(Failed::Invalid(e)) => return Err(UpError::Reset(e)),
        }
    }
}

enum Failed {
    /// The connection closed (or was reset) before any byte of a response.
    Closed {
        written: bool,
    },
    Io(std::io::Error),
    Invalid(String),
}

async fn send(conn: &mut UpConn, request: &[u8], is_head: bool) -> Result<UpHead, Failed> {
    conn.buf.clear();
    if conn.stream.write_all(request).await.is_err() {
        return Err(Failed::Closed { written: false });
    }
    let mut received = false;
    loop {
        if !conn.buf.is_empty() {
            match parse_response(&conn.buf, is_head).map_err(Failed::Invalid)? {
                Some(h) if (100..200).contains(&h.status) && h.status != 101 => {
                    // An interim response (102, 103): the final one follows.
                    conn.buf.advance(h.len);
                    continue;
                }
                Some(h) if h.status == 101 => {
                    return Err(Failed::Invalid("the upstream switched protocols".into()));
                }
                Some(h) => return Ok(h),
                None => {}
            }
        }
        if conn.buf.capacity() - conn.buf.len() < 1024 {
            conn.buf.reserve(READ_SIZE);
        }
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) if !received => return Err(Failed::Closed { written: true }),
            Err(e) if !received && is_reset(&e) => return Err(Failed::Closed { written: true }),
            Ok(0) => {
                return Err(Failed::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed in the middle of the response head",
                )));
            }
            Err(e) => return Err(Failed::Io(e)),
            Ok(_) => received = true,
        }
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

/// Writes the response head (rewritten) and relays the body; returns the latency to the head
/// and what becomes of the client connection. The upstream connection goes back to the pool
/// when the body was read to its end and nothing followed it.
#[allow(clippy::too_many_arguments)]
async fn relay(
    io: &mut TcpStream,
    req: &Request<'_, '_>,
    call: &Call<'_, '_>,
    mut conn: UpConn,
    head: &UpHead,
    host: &std::sync::Arc<str>,
    upstream_head: bool,
    conns: &UpstreamConns,
    out: &mut Vec<u8>,
) -> (Duration, Flow) {
    let shape = client_body(req.head.method, upstream_head, head);
    let close = req.closing() || (head.framing == Framing::Close && shape == ClientBody::Relayed);
    out.clear();
    write_response_head(
        out,
        &conn.buf[..head.len],
        head,
        shape,
        &call.route.options,
        close,
    );
    let latency = call.started.elapsed();
    if shape == ClientBody::HeadOnly {
        // The upstream's body is not the client's: the head goes, and the connection with
        // its unread body is not kept.
        if io.write_all(out).await.is_err() {
            return (latency, Flow::Close);
        }
        if head.framing == Framing::Empty && head.keep_alive && conn.buf.len() == head.len {
            conns.put(host, conn);
        }
        return (latency, if close { Flow::Close } else { Flow::KeepAlive });
    }
    let mut body = Body {
        framing: head.framing,
        left: match head.framing {
            Framing::Length(n) => n,
            _ => 0,
        },
        chunks: ChunkScanner::default(),
        reusable: head.keep_alive,
    };
    let flow = if close { Flow::Close } else { Flow::KeepAlive };
    let (mut done, mut ok) = body.take(&conn.buf[head.len..], out);
    // A malformed body: the client gets what came, and the connection ends.
    done |= !ok;
    if io.write_all(out).await.is_err() {
        return (latency, Flow::Close);
    }
    while !done {
        conn.buf.clear();
        conn.buf.reserve(READ_SIZE);
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(n) if n > 0 => {
                out.clear();
                let (d, o) = body.take(&conn.buf, out);
                done = d || !o;
                ok = o;
                if io.write_all(out).await.is_err() {
                    return (latency, Flow::Close);
                }
            }
            _ => {
                // The upstream closed: the end of a close-delimited body, or a body cut short
                // (the client sees the connection close before the length it was promised).
                done = true;
                ok = body.framing == Framing::Close;
                body.reusable = false;
            }
        }
    }
    if !ok {
        return (latency, Flow::Close);
    }
    if body.reusable {
        conns.put(host, conn);
    }
    (latency, flow)
}

/// A response body being relayed.
struct Body {
    framing: Framing,
    left: u64,
    chunks: ChunkScanner,
    /// The upstream connection can serve another request afterwards.
    reusable: bool,
}

impl Body {
    /// Copies the part of `data` that belongs to the body into `out`: (done, well-formed).
    fn take(&mut self, data: &[u8], out: &mut Vec<u8>) -> (bool, bool) {
        let used = match self.framing {
            Framing::Empty => 0,
            Framing::Length(_) => {
                let n = data.len().min(self.left as usize);
                self.left -= n as u64;
                n
            }
            Framing::Chunked => match self.chunks.feed(data) {
                Ok(Some(end)) => {
                    self.framing = Framing::Empty;
                    end
                }
                Ok(None) => data.len(),
                Err(_) => {
                    self.reusable = false;
                    out.extend_from_slice(data);
                    return (true, false);
                }
            },
            Framing::Close => data.len(),
        };
        out.extend_from_slice(&data[..used]);
        if used < data.len() {
            // Bytes after the response: the connection is in a state we do not know.
            self.reusable = false;
        }
        let done = match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked | Framing::Close => false,
        };
        (done, true)
    }
}

/// What the client's response says about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientBody {
    /// The body as the upstream framed it.
    Relayed,
    /// The client asked with HEAD and a function sent another method: the head only.
    HeadOnly,
    /// A function sent HEAD for a client that did not: an empty body, `content-length: 0`.
    Empty,
}

/// How the client's response is framed, given the methods on both sides.
fn client_body(client_method: &str, upstream_head: bool, head: &UpHead) -> ClientBody {
    let bodiless_status = head.status == 204 || head.status == 304;
    match (client_method == "HEAD", upstream_head) {
        (true, false) => ClientBody::HeadOnly,
        (false, true) if !bodiless_status => ClientBody::Empty,
        _ => ClientBody::Relayed,
    }
}

/// The client's response head: the upstream's status and headers, hop-by-hop headers dropped
/// (and those its `connection` header lists), the route's response headers applied, and a
/// `date` when the upstream sent none. The framing headers (`content-length`,
/// `transfer-encoding`) describe the body as relayed: no list or route rule touches them.
fn write_response_head(
    out: &mut Vec<u8>,
    raw: &[u8],
    head: &UpHead,
    body: ClientBody,
    opts: &Options,
    close: bool,
) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let _ = resp.parse(raw);
    let reason = match resp.reason {
        Some(r) if !r.is_empty() => r,
        _ => http::StatusCode::from_u16(head.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, head.status as u64);
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let listed: smallvec::SmallVec<[&str; 4]> = resp
        .headers
        .iter()
        .filter(|h| is(h.name, "connection"))
        .filter_map(|h| visible(h.value))
        .flat_map(|v| v.split(',').map(str::trim))
        .filter(|t| !t.is_empty())
        .collect();
    let framing = |n: &str| is(n, "content-length") || is(n, "transfer-encoding");
    let mut has_date = false;
    for h in resp.headers.iter() {
        let n = h.name;
        let keep = if framing(n) {
            body != ClientBody::Empty
                && (is(n, "transfer-encoding")
                    || !matches!(head.framing, Framing::Chunked | Framing::Close))
        } else {
            !(hop_by_hop(n)
                || listed.iter().any(|t| is(n, t))
                || opts.response_remove.iter().any(|r| is(n, r.as_str()))
                || opts
                    .response_add
                    .iter()
                    .any(|a| !a.append && is(n, a.name.as_str())))
        };
        if !keep {
            continue;
        }
        has_date |= is(n, "date");
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if body == ClientBody::Empty {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    for a in &opts.response_add {
        let n = a.name.as_str();
        if framing(n) || hop_by_hop(n) {
            continue;
        }
        has_date |= n == "date";
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(a.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        // A proxy adds the date a response lacks (RFC 9110, 6.6.1), as hyper's server does.
        push_date(out);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_date(out: &mut Vec<u8>) {
    out.extend_from_slice(b"date: ");
    out.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(raw: &str) -> Option<(String, String, String, usize, bool)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        req.parse(raw.as_bytes()).ok()?;
        inspect(&req).map(|h| {
            (
                h.method.to_string(),
                h.target.to_string(),
                h.host.to_string(),
                h.body_len,
                h.close,
            )
        })
    }

    #[test]
    fn serves_plain_http11_requests_and_leaves_the_rest() {
        let h = head_of("GET /a?b=1 HTTP/1.1\r\nHost: x:80\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(
            h,
            Some(("GET".into(), "/a?b=1".into(), "x:80".into(), 0, false))
        );
        let h = head_of(
            "POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 12\r\nconnection: close\r\n\r\n",
        );
        assert_eq!(h.map(|h| (h.3, h.4)), Some((12, true)));
        for raw in [
            "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(head_of(raw), None, "{raw:?}");
        }
        assert!(matches!(
            probe(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 10),
            Probe::NotFast
        ));
        assert!(matches!(probe(b"GET / HTTP/1.1\r\nHo", 10), Probe::Partial));
        let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
        assert!(
            matches!(probe(post, 10), Probe::NotFast),
            "a body past the limit"
        );
        assert!(matches!(
            probe(post, 11),
            Probe::Ready { head: 48, body: 11 }
        ));
    }

    #[test]
    fn response_framing() {
        let f = |raw: &str, head: bool| {
            parse_response(raw.as_bytes(), head).map(|h| h.map(|h| (h.framing, h.keep_alive)))
        };
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            Ok(Some((Framing::Length(2), true)))
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
                false
            ),
            Ok(Some((Framing::Chunked, true)))
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\n\r\n", false),
            Ok(Some((Framing::Close, false)))
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
                false
            ),
            Ok(Some((Framing::Length(5), false)))
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
            Ok(Some((Framing::Empty, true)))
        );
        assert_eq!(
            f("HTTP/1.1 304 Not Modified\r\n\r\n", false),
            Ok(Some((Framing::Empty, true)))
        );
        assert_eq!(
            f("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false),
            Ok(Some((Framing::Length(1), false)))
        );
        assert_eq!(f("HTTP/1.1 200 OK\r\nContent-Le", false), Ok(None));
        assert!(
            f(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            )
            .is_err()
        );
        assert!(f("SSH-2.0\r\n\r\n", false).is_err());
    }

    #[test]
    fn body_pieces_end_where_the_framing_says() {
        let mut out = Vec::new();
        let mut b = Body {
            framing: Framing::Length(5),
            left: 5,
            chunks: ChunkScanner::default(),
            reusable: true,
        };
        assert_eq!(b.take(b"abc", &mut out), (false, true));
        assert_eq!(b.take(b"deXX", &mut out), (true, true));
        assert_eq!(out, b"abcde");
        assert!(!b.reusable, "bytes after the body");
        let mut out = Vec::new();
        let mut b = Body {
            framing: Framing::Chunked,
            left: 0,
            chunks: ChunkScanner::default(),
            reusable: true,
        };
        assert_eq!(b.take(b"2\r\nok\r\n", &mut out), (false, true));
        assert_eq!(b.take(b"0\r\n\r\n", &mut out), (true, true));
        assert_eq!(out, b"2\r\nok\r\n0\r\n\r\n");
        assert!(b.reusable);
    }

    #[test]
    fn numbers_and_ids_as_format_would_write_them() {
        for n in [0u64, 7, 10, 204, 65_536, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
        let mut out = Vec::new();
        push_request_id(&mut out);
        assert_eq!(out.len(), 32);
        assert!(
            out.iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
