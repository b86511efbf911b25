//! One request upstream: its head written with the same header rules as the general path,
//! sent on a pooled (or new) connection, and the response head read, with the retries and
//! timeouts of the route.

use super::super::attempts::{self, Exchange, Failed, ProxyError, RetryType};
use super::super::forwarding::Forwarding;
use super::super::function::RenderedCall;
use super::super::matcher::Headers;
use super::super::pipeline::Edits;
use super::super::proxy::{envoy_substitution, rewrite_prefix};
use super::super::table::{DEFAULT_TIMEOUT, Options, Retry, UpstreamTarget};
use super::super::telemetry::outcome;
use super::response::{Framing, UpHead, parse_response, relay};
use super::upstream::{READ_SIZE, UpConn, UpstreamConns};
use super::{
    Call, ClientIo, Request, Served, fail, hop_by_hop, is, push_decimal, request_target,
    until as until_or_timer, visible,
};
use bytes::Buf;
use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

fn method_has_body(m: &str) -> bool {
    matches!(m, "POST" | "PUT" | "PATCH")
}

/// Methods a request may be sent again for when a kept-alive connection turned out closed
/// before any answer (RFC 9110, 9.2.2, allows it; nginx does it too). A request of another
/// method is sent again only when nothing of it could be written.
fn idempotent(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

/// Forwards a request to its destination: the function's call rendered, the head written, the
/// attempts the route allows, and the answer relayed (or an error answered).
pub(super) async fn forward<'t>(
    io: &mut impl ClientIo,
    req: &Request<'_, '_>,
    call: &Call<'t, '_>,
    conns: &UpstreamConns,
    out: &mut Vec<u8>,
    mut timer: Pin<&mut Sleep>,
) -> Served<'t> {
    use http::StatusCode;
    let dest = call.dest;
    let mut o = outcome(0);
    o.upstream = dest.upstream.as_ref().map(|u| &*u.name);
    o.function = dest.function.as_ref().map(|f| f.name.as_str());
    let Some(upstream) = dest.upstream.as_deref() else {
        let f = Failed::no_upstream("no upstream");
        return fail(io, req, call, o, (f.status, f.code, &f.message), out).await;
    };
    let opts = &call.route.options;

    // A function renders the method, path, headers and body of its call. Its extractors see
    // the headers that go upstream: not the hop-by-hop ones (the general path strips them
    // first, too; a `connection` header listing other names sends a request to hyper), and
    // with the stages' edits made (a claim set as a header, a token removed), as hyper's side
    // applies them before it renders.
    let end_to_end: smallvec::SmallVec<[httparse::Header<'_>; 16]>;
    let edits = call.edits.filter(|_| dest.function.is_some());
    let fn_headers = if dest.function.is_some()
        && (edits.is_some() || req.headers.iter().any(|h| hop_by_hop(h.name)))
    {
        let from_stages = edits.into_iter().flat_map(|e| &e.request_set);
        end_to_end = req
            .headers
            .iter()
            .filter(|h| {
                !hop_by_hop(h.name) && !edits.is_some_and(|e| e.replaces_request(h.name.as_bytes()))
            })
            .copied()
            .chain(from_stages.map(|(n, v)| httparse::Header {
                name: n.as_str(),
                value: v.as_bytes(),
            }))
            .collect();
        &end_to_end[..]
    } else {
        req.headers
    };
    let rendered = match &dest.function {
        None => None,
        Some(f) => match f.render(req.head.target, Headers::Raw(fn_headers), req.body) {
            Ok(c) => Some(c),
            Err(e) => {
                let (status, code, message) = e.answer(&f.name);
                return fail(io, req, call, o, (status, code, &message), out).await;
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
    let deadline = Instant::from_std(call.started) + opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    // The upstream's response is framed by the method it was sent (a function may change it).
    let is_head = method == "HEAD";
    let mut exchange = FastExchange {
        req,
        call,
        conns,
        out: &mut *out,
        timer: timer.as_mut(),
        upstream,
        method,
        path_and_query: &path_and_query,
        rendered: rendered.as_ref(),
        body,
        is_head,
    };
    let attempts = retry.num.saturating_add(1);
    match attempts::run(&mut exchange, upstream, retry, attempts, deadline).await {
        Ok((answer, host)) => {
            o.bytes_out = FastExchange::size(&answer);
            let (conn, head) = answer;
            o.status = head.status;
            let (latency, flow) =
                relay(io, req, call, conn, &head, &host, is_head, conns, out).await;
            (o, latency, flow)
        }
        Err(f) => fail(io, req, call, o, (f.status, f.code, &f.message), out).await,
    }
}

/// One attempt on the fast path: the head written for the endpoint, sent with the body on a
/// pooled (or new) connection, and the response head read, under the connection's one timer.
struct FastExchange<'a, 'b, 't, 'r> {
    req: &'a Request<'b, 'b>,
    call: &'a Call<'t, 'r>,
    conns: &'a UpstreamConns,
    out: &'a mut Vec<u8>,
    timer: Pin<&'a mut Sleep>,
    upstream: &'a UpstreamTarget,
    method: &'a str,
    path_and_query: &'a str,
    rendered: Option<&'a RenderedCall>,
    body: &'a [u8],
    is_head: bool,
}

impl Exchange for FastExchange<'_, '_, '_, '_> {
    type Answer = (UpConn, UpHead);

    async fn attempt(
        &mut self,
        host: &Arc<str>,
        until: Instant,
        _last: bool,
    ) -> Result<(UpConn, UpHead), ProxyError> {
        let opts = &self.call.route.options;
        let host_header = match &opts.host_rewrite {
            Some(h) => Some(h.as_bytes()),
            None if opts.auto_host_rewrite => Some(self.upstream.authority_of(host).as_bytes()),
            None => None,
        };
        self.out.clear();
        write_request_head(
            self.out,
            self.req,
            self.method,
            self.path_and_query,
            opts,
            self.rendered,
            self.call.edits,
            (host, host_header),
            self.body.len(),
        );
        self.out.extend_from_slice(self.body);
        let sent = exchange(
            self.conns,
            host,
            self.out,
            self.is_head,
            idempotent(self.method),
        );
        match until_or_timer(self.timer.as_mut(), until, sent).await {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(UpError::Connect(cause))) => {
                Err(ProxyError::upstream(RetryType::Connect, cause.to_string()))
            }
            Some(Err(UpError::Reset(cause))) => Err(ProxyError::upstream(RetryType::Reset, cause)),
            None => Err(ProxyError::timeout()),
        }
    }

    fn status(answer: &(UpConn, UpHead)) -> u16 {
        answer.1.status
    }

    fn size(answer: &(UpConn, UpHead)) -> u64 {
        match answer.1.framing {
            Framing::Length(n) => n,
            _ => 0,
        }
    }
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

/// Writes the upstream request's head, with the same header rules as the general path
/// (`proxy::forward`): hop-by-hop headers dropped, the function's headers, `content-length`
/// for the body sent, `hostRewrite` or `autoHostRewrite` (`rewritten_host`), `x-forwarded-for`
/// / `-proto`, `x-request-id`, then the route's removals and additions. `host` is the
/// endpoint's address, the `Host` of last resort.
#[allow(clippy::too_many_arguments)]
fn write_request_head(
    out: &mut Vec<u8>,
    req: &Request<'_, '_>,
    method: &str,
    path_and_query: &str,
    opts: &Options,
    call: Option<&RenderedCall>,
    edits: Option<&Edits>,
    (host, rewritten_host): (&str, Option<&[u8]>),
    body_len: usize,
) {
    for part in [method, " ", path_and_query, " HTTP/1.1\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    // Replaced by the route's stages or the route (removed, or set anew rather than appended).
    // (The stages' edits come first and the route's rules after, as on the general path.)
    let route_replaces = |name: &str| {
        opts.request_remove.iter().any(|n| is(name, n.as_str()))
            || opts
                .request_add
                .iter()
                .any(|a| !a.append && is(name, a.name.as_str()))
    };
    let by_route = |name: &str| {
        edits.is_some_and(|e| e.replaces_request(name.as_bytes())) || route_replaces(name)
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
        host_rewritten: rewritten_host.is_some(),
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
    if let Some(h) = rewritten_host
        && !by_route("host")
    {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(h);
        out.extend_from_slice(b"\r\n");
        has_host = true;
    }
    Forwarding {
        previous: prev_xff.map(str::as_bytes),
        client_ip: req.client_ip,
        scheme: req.scheme,
        has_request_id,
    }
    .write(by_route, out);
    let from_stages = edits.into_iter().flat_map(|e| &e.request_set);
    for (n, v) in from_stages.filter(|(n, _)| !managed(n.as_str()) && !route_replaces(n.as_str())) {
        has_host |= n == http::header::HOST;
        for part in [n.as_str().as_bytes(), b": ", v.as_bytes(), b"\r\n"] {
            out.extend_from_slice(part);
        }
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

enum UpError {
    Connect(std::io::Error),
    Reset(String),
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
            Err(SendFailed::Closed { written, .. }) if reused && (idempotent || !written) => {
                conn = conns.connect(host).await.map_err(UpError::Connect)?;
                reused = false;
            }
            Err(SendFailed::Closed { cause, .. }) => {
                let why = "the connection closed before a response";
                return Err(UpError::Reset(match cause {
                    Some(e) => format!("{why}: {e}"),
                    None => why.into(),
                }));
            }
            Err(SendFailed::Io(e)) => return Err(UpError::Reset(e.to_string())),
            Err(SendFailed::Invalid(e)) => return Err(UpError::Reset(e)),
        }
    }
}

enum SendFailed {
    /// The connection closed (or was reset) before any byte of a response.
    Closed {
        written: bool,
        /// The reset the OS reported, if it was one (`Connection reset by peer`).
        cause: Option<std::io::Error>,
    },
    Io(std::io::Error),
    Invalid(String),
}

async fn send(conn: &mut UpConn, request: &[u8], is_head: bool) -> Result<UpHead, SendFailed> {
    conn.buf.clear();
    if conn.stream.write_all(request).await.is_err() {
        return Err(SendFailed::Closed {
            written: false,
            cause: None,
        });
    }
    let mut received = false;
    loop {
        if !conn.buf.is_empty() {
            match parse_response(&conn.buf, is_head, &mut conn.headers)
                .map_err(SendFailed::Invalid)?
            {
                Some(h) if (100..200).contains(&h.status) && h.status != 101 => {
                    // An interim response (102, 103): the final one follows.
                    conn.buf.advance(h.len);
                    continue;
                }
                Some(h) if h.status == 101 => {
                    return Err(SendFailed::Invalid(
                        "the upstream switched protocols".into(),
                    ));
                }
                Some(h) => return Ok(h),
                None => {}
            }
        }
        if conn.buf.capacity() - conn.buf.len() < 1024 {
            conn.buf.reserve(READ_SIZE);
        }
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) if !received => {
                return Err(SendFailed::Closed {
                    written: true,
                    cause: None,
                });
            }
            Err(e) if !received && is_reset(&e) => {
                return Err(SendFailed::Closed {
                    written: true,
                    cause: Some(e),
                });
            }
            Ok(0) => {
                return Err(SendFailed::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed in the middle of the response head",
                )));
            }
            Err(e) => return Err(SendFailed::Io(e)),
            Ok(_) => received = true,
        }
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}
