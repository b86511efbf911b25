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
//!
//! Here: a connection's loop, reading requests, routing, and error answers; `forward` sends a
//! request upstream, `response` relays the answer, `upstream` keeps the connections, `chunked`
//! finds the end of chunked bodies, `rewind` hands a connection to hyper.

mod call;
mod chunked;
mod forward;
mod response;
mod rewind;
mod upstream;

pub use rewind::Rewind;
pub use upstream::UpstreamConns;

use super::matcher::{Headers, PathCond, RequestHead, visible_ascii as visible};
use super::pipeline::{Answer, Edits, Inbound};
use super::proxy::Shared;
use super::response_rules::ResponseRules;
use super::table::{Action, CompiledRoute, Target};
use super::telemetry::{Outcome, Seen};
use super::upstream_request::{is, request_target};
use bytes::{Buf, Bytes, BytesMut};
use response::push_date;
use std::future::Future;
use std::io::Write;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Sleep;

/// A client connection the fast path serves: TCP, or TLS over it.
pub trait ClientIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> ClientIo for T {}

/// Writes all of `out` to the client and flushes it: over TLS, written bytes can wait in the
/// session until flushed (on TCP the flush does nothing).
async fn send_client(io: &mut impl ClientIo, out: &[u8]) -> std::io::Result<()> {
    io.write_all(out).await?;
    io.flush().await
}

/// Request headers the fast path parses; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// Response headers parsed (hyper's client default).
const MAX_RESPONSE_HEADERS: usize = 100;
/// The largest request or response head the gateway reads, on either path (a larger request
/// head is answered 431, whichever way its bytes arrive).
pub const MAX_HEAD: usize = 64 * 1024;
/// Request bodies up to this size are read whole (so that they can be retried and read by
/// function templates); larger ones go to hyper, which streams them.
pub const MAX_FAST_BODY: usize = 64 * 1024;

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

/// A connection's buffered bytes, parsed.
enum Parsed<'b> {
    /// A whole request the fast path serves, head and body.
    Whole {
        head: Head<'b>,
        head_len: usize,
    },
    Not(Unserved),
}

/// Why the buffered bytes are not a request to serve yet.
enum Unserved {
    /// More bytes are needed (`want` of them at least, when the head is whole and the body is
    /// not).
    More { in_body: bool, want: usize },
    /// Hyper serves this request (and the rest of the connection).
    NotFast,
    /// The head is larger than [`MAX_HEAD`]: answered 431, and the connection closed.
    TooLarge,
}

/// Parses the request at the start of `buf` into `req`. A body over `max_body` bytes is left
/// to hyper, which streams it or answers 413.
fn parse<'h, 'b>(
    req: &mut httparse::Request<'h, 'b>,
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
    buf: &'b [u8],
    max_body: usize,
) -> Parsed<'b> {
    match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(head_len)) if head_len > MAX_HEAD => {
            Parsed::Not(Unserved::TooLarge)
        }
        Ok(httparse::Status::Complete(head_len)) => match inspect(req) {
            Some(head) if head.body_len <= max_body => {
                let total = head_len + head.body_len;
                if buf.len() >= total {
                    Parsed::Whole { head, head_len }
                } else {
                    Parsed::Not(Unserved::More {
                        in_body: true,
                        want: total - buf.len(),
                    })
                }
            }
            _ => Parsed::Not(Unserved::NotFast),
        },
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => Parsed::Not(Unserved::More {
            in_body: false,
            want: 0,
        }),
        Ok(httparse::Status::Partial) => Parsed::Not(Unserved::TooLarge),
        // Too many headers for the fast path's array: hyper takes them (or refuses them).
        Err(httparse::Error::TooManyHeaders) => Parsed::Not(Unserved::NotFast),
        // Not HTTP/1.1 as the fast path parses it (HTTP/2's preface, say): hyper decides.
        Err(_) => Parsed::Not(Unserved::NotFast),
    }
}

/// A connection's waits: one timer and one shutdown notification for its whole life, not one
/// of each per request (re-armed only when the timer fires before the deadline it enforces).
struct Waits<'a, S: Future> {
    timer: Pin<&'a mut Sleep>,
    shutdown: Pin<&'a mut S>,
    /// The shutdown future completed (it must not be polled again).
    stopping: bool,
}

/// Reads more of a request into `buf`, before `deadline`: `false` when the connection closed,
/// the deadline passed, or the gateway shuts down while nothing of a request has come.
async fn read_more<S: Future>(
    io: &mut impl ClientIo,
    buf: &mut BytesMut,
    waits: &mut Waits<'_, S>,
    deadline: tokio::time::Instant,
    want: usize,
) -> bool {
    if waits.timer.deadline() > deadline {
        waits.timer.as_mut().reset(deadline);
    }
    buf.reserve(want);
    let idle = buf.is_empty();
    loop {
        // The read first: when it is ready (the task was woken for it), the timer and the
        // shutdown wait are not polled at all.
        let read = tokio::select! {
            biased;
            r = io.read_buf(buf) => r,
            _ = waits.shutdown.as_mut(), if idle && !waits.stopping => {
                waits.stopping = true;
                return false;
            }
            _ = waits.timer.as_mut() => {
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
                waits.timer.as_mut().reset(deadline);
                continue;
            }
        };
        return matches!(read, Ok(n) if n > 0);
    }
}

/// Runs `work` until `deadline` on a connection's timer: `None` when the deadline came first.
/// (The timer is moved earlier only when it is set later than `deadline`; when it fires early,
/// it is set again.)
async fn until<F: Future>(
    mut timer: Pin<&mut Sleep>,
    deadline: tokio::time::Instant,
    work: F,
) -> Option<F::Output> {
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            done = &mut work => return Some(done),
            _ = timer.as_mut() => {
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                timer.as_mut().reset(deadline);
            }
        }
    }
}

/// Serves a connection until it closes (`None`), or until a request the fast path leaves to
/// hyper: then the bytes read and not served (that request first) are returned.
///
/// A request must start before its deadline (`KEEP_ALIVE_IDLE` after the previous one); once
/// it has started, its head must come within `header_timeout` of its first byte, and each piece
/// of its body within `header_timeout` of the one before. Each request's head is parsed once,
/// when it is whole.
pub async fn serve(
    io: &mut impl ClientIo,
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
    let mut started = false;
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
        // What became of the buffered bytes: a request served (how the connection goes on, and
        // the bytes it took), or why not.
        let step: Result<(Flow, usize), Unserved> = {
            let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut []);
            match parse(&mut req, &mut headers, &buf, max_body) {
                Parsed::Whole { head, head_len } => {
                    let total = head_len + head.body_len;
                    let r = Request {
                        head,
                        headers: req.headers,
                        body: &buf[head_len..total],
                        client_ip: &client_ip,
                        scheme: shared.scheme,
                        remote,
                        draining: &draining,
                    };
                    let timer = waits.timer.as_mut();
                    Ok((handle(io, &r, shared, conns, &mut out, timer).await, total))
                }
                Parsed::Not(why) => Err(why),
            }
        };
        match step {
            Err(Unserved::More { in_body, want }) => {
                if !buf.is_empty() && !started {
                    deadline = deadline.min(tokio::time::Instant::now() + header_timeout);
                    started = true;
                }
                if !read_more(io, &mut buf, &mut waits, deadline, want.max(4096)).await {
                    return None;
                }
                if in_body {
                    // Each piece of a body gets a fresh allowance.
                    deadline = tokio::time::Instant::now() + header_timeout;
                }
            }
            Err(Unserved::NotFast) => return Some(buf.freeze()),
            Err(Unserved::TooLarge) => {
                let message = format!("the request head is larger than {MAX_HEAD} bytes");
                refuse(
                    io,
                    http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "too-large",
                    &message,
                    &mut out,
                )
                .await;
                return None;
            }
            Ok((flow, total)) => {
                // The next request may idle this long first.
                deadline = tokio::time::Instant::now() + shared.idle_timeout;
                started = false;
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
    }
}

/// Answers a request the gateway cannot read (no route involved), and closes the connection.
async fn refuse(
    io: &mut impl ClientIo,
    status: http::StatusCode,
    code: &str,
    message: &str,
    out: &mut Vec<u8>,
) {
    out.clear();
    write_answer(
        out,
        &Answer::error(status, code, message, None, None),
        true,
        true,
    );
    if send_client(io, out).await.is_ok() {
        linger(io).await;
    }
}

/// An answer the gateway makes (an error, a stage's): its status, headers and body, the
/// framing and a date.
fn write_answer(out: &mut Vec<u8>, answer: &Answer, close: bool, with_body: bool) {
    let status = answer.status;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (n, v) in &answer.headers {
        for part in [n.as_str().as_bytes(), b": ", v.as_bytes(), b"\r\n"] {
            out.extend_from_slice(part);
        }
    }
    if status != http::StatusCode::NO_CONTENT && status != http::StatusCode::NOT_MODIFIED {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, answer.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    push_date(out);
    out.extend_from_slice(b"\r\n");
    if with_body
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED
    {
        out.extend_from_slice(&answer.body);
    }
}

/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(1);

/// Closes after a last response without cutting it off: closing a socket with unread bytes
/// from the client (a request it pipelined) sends a reset, which can destroy the response still
/// on its way. So: end our side, then read and drop what comes until the client closes too.
async fn linger(io: &mut impl ClientIo) {
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
    /// `http`, or `https` on a TLS listener (for `x-forwarded-proto`).
    scheme: &'static str,
    remote: SocketAddr,
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
    // Function calls that answer every request (gRPC methods, Lambda functions) dial their
    // own connections; forwards need a cleartext upstream; a transcoder's requests are hyper's.
    let plain = |t: &Target| {
        t.problem.is_none()
            && match &t.call {
                Some(c) => call::served_here(c) && t.upstream.is_some(),
                None => t.upstream.as_ref().is_some_and(|u| u.dial.is_plain()),
            }
    };
    (route.options.shadow.is_none() && fwd.targets.iter().all(plain)).then_some(fwd)
}

async fn handle(
    io: &mut impl ClientIo,
    req: &Request<'_, '_>,
    shared: &Shared,
    conns: &UpstreamConns,
    out: &mut Vec<u8>,
    timer: Pin<&mut Sleep>,
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
    // The route's stages (auth, limits, faults) first: an answer of theirs is the client's.
    let edits = match &route.policies {
        None => None,
        Some(p) => {
            let inbound = Inbound {
                head,
                remote: req.remote,
            };
            match p.admit(&inbound).await {
                Ok(e) => Some(e),
                Err(answer) => {
                    let (o, latency, flow) = answer_with(io, req, answer, out, started).await;
                    return finish(shared, req, route, o, latency, want_event, flow);
                }
            }
        }
    };
    let dest = fwd.pick();
    if let Some(function) = &dest.call {
        let (o, latency, flow) =
            call::serve(io, req, route, dest, function, edits.as_ref(), out, started).await;
        return finish(shared, req, route, o, latency, want_event, flow);
    }
    let call = Call {
        route,
        dest,
        matched: &m.matcher.path,
        path,
        query,
        edits: edits.as_ref(),
        started,
    };
    let (o, latency, flow) = forward::forward(io, req, &call, conns, out, timer).await;
    finish(shared, req, route, o, latency, want_event, flow)
}

/// Counts a served request and reports it to the access log.
fn finish<'t>(
    shared: &Shared,
    req: &Request<'_, '_>,
    route: &'t CompiledRoute,
    mut o: Outcome<'t>,
    latency: Duration,
    want_event: bool,
    flow: Flow,
) -> Flow {
    o.route = Some(&route.id);
    route.stats.record(o.status, latency, o.bytes_out);
    if want_event {
        let head = RequestHead {
            method: req.head.method,
            authority: req.head.host,
            path: req.head.target,
            query: None,
            headers: Headers::Raw(req.headers),
        };
        let seen = Seen::of(&head);
        let _ = shared
            .events
            .send(seen.event(&o, latency, req.body.len() as u64));
    }
    flow
}

/// Writes a stage's answer (see `super::pipeline`) in the upstream's place.
async fn answer_with<'t>(
    io: &mut impl ClientIo,
    req: &Request<'_, '_>,
    answer: Answer,
    out: &mut Vec<u8>,
    started: Instant,
) -> Served<'t> {
    out.clear();
    write_answer(out, &answer, req.closing(), req.head.method != "HEAD");
    let mut o = super::telemetry::outcome(answer.status.as_u16());
    o.bytes_out = answer.body.len() as u64;
    o.error = Some(answer.reason);
    let latency = started.elapsed();
    let flow = match send_client(io, out).await {
        Ok(()) => req.flow(),
        Err(_) => Flow::Close,
    };
    (o, latency, flow)
}

/// The route and destination a request goes to.
struct Call<'t, 'r> {
    route: &'t CompiledRoute,
    dest: &'t Target,
    matched: &'t PathCond,
    path: &'r str,
    query: Option<&'r str>,
    /// What the route's stages changed, if it has any.
    edits: Option<&'r Edits>,
    started: Instant,
}

type Served<'t> = (Outcome<'t>, Duration, Flow);

async fn fail<'t>(
    io: &mut impl ClientIo,
    req: &Request<'_, '_>,
    call: &Call<'t, '_>,
    mut o: Outcome<'t>,
    (status, code, message): (http::StatusCode, &str, &str),
    out: &mut Vec<u8>,
) -> Served<'t> {
    let mut answer = Answer::error(status, code, message, Some(&call.route.id), o.upstream);
    ResponseRules::stages(call.edits).apply_to_answer(&mut answer);
    out.clear();
    write_answer(out, &answer, req.closing(), req.head.method != "HEAD");
    o.status = status.as_u16();
    o.error = Some(message.to_string());
    let latency = call.started.elapsed();
    let flow = match send_client(io, out).await {
        Ok(()) => req.flow(),
        Err(_) => Flow::Close,
    };
    (o, latency, flow)
}

/// Writes `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
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
        let parsed = |raw: &[u8], max_body| {
            let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut []);
            match parse(&mut req, &mut headers, raw, max_body) {
                Parsed::Whole { head, head_len } => format!("whole {head_len}+{}", head.body_len),
                Parsed::Not(Unserved::More { in_body, want }) => format!("more {in_body} {want}"),
                Parsed::Not(Unserved::NotFast) => "hyper".to_string(),
                Parsed::Not(Unserved::TooLarge) => "too large".to_string(),
            }
        };
        assert_eq!(parsed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 10), "hyper");
        assert_eq!(parsed(b"", 10), "more false 0");
        assert_eq!(parsed(b"GET / HTTP/1.1\r\nHo", 10), "more false 0");
        let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(parsed(post, 10), "hyper", "a body past the limit");
        assert_eq!(parsed(post, 11), "more true 11");
        assert_eq!(parsed(&[&post[..], b"hello"].concat(), 11), "more true 6");
        assert_eq!(
            parsed(&[&post[..], b"hello world"].concat(), 11),
            "whole 48+11"
        );
        let big = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parsed(&big, 10), "too large", "a head past the limit");
        let whole_big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(
            parsed(whole_big.as_bytes(), 10),
            "too large",
            "a whole head past the limit"
        );
    }

    #[test]
    fn numbers_and_ids_as_format_would_write_them() {
        for n in [0u64, 7, 10, 204, 65_536, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
