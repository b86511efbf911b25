//! One request upstream: its head written by the rules of `upstream_request` (the same as
//! hyper's), sent on a pooled (or new) connection, and the response head read, with the
//! retries and timeouts of the route.

use super::super::attempts::{self, Exchange, Failed, ProxyError, RetryType};
use super::super::matcher::Headers;
use super::super::table::{DEFAULT_TIMEOUT, Retry, UpstreamTarget};
use super::super::telemetry::outcome;
use super::super::upstream_request::{ClientRequest, HeaderRules, Planned};
use super::response::{Framing, UpHead, parse_response, relay};
use super::upstream::{READ_SIZE, UpConn, UpstreamConns};
use super::{Call, ClientIo, Request, Served, fail, until as until_or_timer};
use bytes::Buf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

/// Methods a request may be sent again for when a kept-alive connection turned out closed
/// before any answer (RFC 9110, 9.2.2, allows it; nginx does it too). A request of another
/// method is sent again only when nothing of it could be written.
fn idempotent(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

/// Forwards a request to its destination: what goes upstream decided
/// (`upstream_request`: the function's call rendered, rewrites, header rules), the attempts
/// the route allows, and the answer relayed (or an error answered).
pub(super) async fn forward<'t>(
    io: &mut impl ClientIo,
    req: &Request<'_, '_>,
    call: &Call<'t, '_>,
    conns: &UpstreamConns,
    out: &mut Vec<u8>,
    mut timer: Pin<&mut Sleep>,
) -> Served<'t> {
    let dest = call.dest;
    let mut o = outcome(0);
    o.upstream = dest.upstream.as_ref().map(|u| &*u.name);
    o.function = dest.function.as_ref().map(|f| f.name.as_str());
    let Some(upstream) = dest.upstream.as_deref() else {
        let f = Failed::no_upstream("no upstream");
        return fail(io, req, call, o, (f.status, f.code, &f.message), out).await;
    };
    let opts = &call.route.options;
    let client = ClientRequest {
        method: req.head.method,
        target: req.head.target,
        path: call.path,
        query: call.query,
        authority: None,
        headers: Headers::Raw(req.headers),
        body: req.body,
    };
    let function = dest.function.as_deref();
    let planned = match Planned::new(&client, opts, call.matched, function, call.edits) {
        Ok(p) => p,
        Err((status, code, message)) => {
            return fail(io, req, call, o, (status, code, &message), out).await;
        }
    };
    let method = planned.method();
    let body = planned.function_body().unwrap_or(req.body);
    let rules = HeaderRules {
        method,
        opts,
        call: planned.call.as_ref(),
        edits: call.edits,
        body_len: Some(body.len()),
        client_ip: req.client_ip,
        scheme: req.scheme,
        upgrade: None,
    };

    let no_retry = Retry::default();
    let retry = opts.retry.as_ref().unwrap_or(&no_retry);
    let deadline = Instant::from_std(call.started) + opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    // The upstream's response is framed by the method it was sent (a function may change it).
    let is_head = method == "HEAD";
    let mut exchange = FastExchange {
        conns,
        out: &mut *out,
        timer: timer.as_mut(),
        upstream,
        client: &client,
        rules: &rules,
        path_and_query: planned.path_and_query(),
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
struct FastExchange<'a> {
    conns: &'a UpstreamConns,
    out: &'a mut Vec<u8>,
    timer: Pin<&'a mut Sleep>,
    upstream: &'a UpstreamTarget,
    client: &'a ClientRequest<'a>,
    rules: &'a HeaderRules<'a>,
    path_and_query: &'a str,
    body: &'a [u8],
    is_head: bool,
}

impl Exchange for FastExchange<'_> {
    type Answer = (UpConn, UpHead);

    async fn attempt(
        &mut self,
        host: &Arc<str>,
        until: Instant,
        _last: bool,
    ) -> Result<(UpConn, UpHead), ProxyError> {
        let method = self.rules.method;
        self.out.clear();
        for part in [method, " ", self.path_and_query, " HTTP/1.1\r\n"] {
            self.out.extend_from_slice(part.as_bytes());
        }
        let endpoint = (&**host, self.upstream.authority_of(host));
        self.rules.write(self.client, endpoint, self.out);
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(self.body);
        let sent = exchange(self.conns, host, self.out, self.is_head, idempotent(method));
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
