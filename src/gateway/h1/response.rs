//! The upstream's response: its head parsed and rewritten for the client, its body relayed as
//! it was framed, and the connection kept when the body was read to its end.

use super::super::pipeline::Edits;
use super::super::response_rules::{ResponseRules, framing};
use super::super::table::Options;
use super::super::upstream_request::connection_tokens;
use super::chunked::ChunkScanner;
use super::upstream::{HeaderAt, READ_SIZE, UpConn, UpstreamConns};
use super::{
    Call, ClientIo, Flow, MAX_HEAD, MAX_RESPONSE_HEADERS, Request, is, push_decimal, send_client,
    visible,
};
use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;

/// How an upstream response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: a response to HEAD, a 204 or a 304.
    Empty,
    Length(u64),
    Chunked,
    /// Read until the upstream closes.
    Close,
}

/// An upstream response head, parsed once: its headers' places are kept in the connection
/// ([`UpConn::headers`]), and the head is rewritten from them.
pub(super) struct UpHead {
    pub(super) len: usize,
    pub(super) status: u16,
    /// The reason phrase (byte range), when the upstream sent one.
    reason: (u32, u32),
    /// A `connection` header lists header names (beyond `close` and `keep-alive`) that are
    /// hop-by-hop for this response.
    lists_headers: bool,
    pub(super) framing: Framing,
    /// The upstream keeps the connection open after this response.
    pub(super) keep_alive: bool,
}

/// The headers as (name, value), over the head they were parsed from.
fn header_pairs<'r>(
    raw: &'r [u8],
    headers: &'r [HeaderAt],
) -> impl Iterator<Item = (&'r [u8], &'r [u8])> {
    let at = |(a, b): (u32, u32)| raw.get(a as usize..b as usize).unwrap_or_default();
    headers.iter().map(move |h| (at(h.name), at(h.value)))
}

/// The byte range of `part` within `buf` (which it was parsed from).
fn range_in(buf: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    (start as u32, (start + part.len()) as u32)
}

/// Parses a response head at the start of `buf`: `Ok(None)` when more is needed. Where its
/// headers lie goes to `places`.
pub(super) fn parse_response(
    buf: &[u8],
    is_head: bool,
    places: &mut Vec<HeaderAt>,
) -> Result<Option<UpHead>, String> {
    let mut headers =
        [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    );
    let len = match parsed {
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
    let mut lists_headers = false;
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
            for token in connection_tokens(h.value) {
                close |= is(token, "close");
                lists_headers |= !(is(token, "close") || is(token, "keep-alive"));
            }
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
    places.clear();
    places.extend(resp.headers.iter().map(|h| HeaderAt {
        name: range_in(buf, h.name.as_bytes()),
        value: range_in(buf, h.value),
    }));
    Ok(Some(UpHead {
        len,
        status,
        reason: resp.reason.map_or((0, 0), |r| range_in(buf, r.as_bytes())),
        lists_headers,
        framing,
        keep_alive: resp.version == Some(1) && !close && framing != Framing::Close,
    }))
}

/// Writes the response head (rewritten) and relays the body; returns the latency to the head
/// and what becomes of the client connection. The upstream connection goes back to the pool
/// when the body was read to its end and nothing followed it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn relay(
    io: &mut impl ClientIo,
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
        &conn.headers,
        head,
        shape,
        &call.route.options,
        call.edits,
        close,
    );
    let latency = call.started.elapsed();
    if shape == ClientBody::HeadOnly {
        // The upstream's body is not the client's: the head goes, and the connection with
        // its unread body is not kept.
        if send_client(io, out).await.is_err() {
            return (latency, Flow::Close);
        }
        if head.framing == Framing::Empty && head.keep_alive && conn.buf.len() == head.len {
            conns.put(host, conn, call.started);
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
    if send_client(io, out).await.is_err() {
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
                if send_client(io, out).await.is_err() {
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
        conns.put(host, conn, call.started);
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
                Err(bad) => {
                    // Only what the scanner accepted goes on: whatever the upstream sent from
                    // there (a forged second response, say) must not reach the client.
                    tracing::warn!("upstream sent an invalid chunked response");
                    self.reusable = false;
                    out.extend_from_slice(&data[..bad.valid.min(data.len())]);
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
#[allow(clippy::too_many_arguments)]
fn write_response_head(
    out: &mut Vec<u8>,
    raw: &[u8],
    places: &[HeaderAt],
    head: &UpHead,
    body: ClientBody,
    opts: &Options,
    edits: Option<&Edits>,
    close: bool,
) {
    let reason = match raw.get(head.reason.0 as usize..head.reason.1 as usize) {
        Some(r) if !r.is_empty() => r,
        _ => http::StatusCode::from_u16(head.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .as_bytes(),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, head.status as u64);
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    // Names the upstream's `connection` header lists: hop-by-hop too (RFC 9110, 7.6.1).
    let mut listed: smallvec::SmallVec<[&str; 4]> = smallvec::SmallVec::new();
    if head.lists_headers {
        for (n, v) in header_pairs(raw, places) {
            if is(n, "connection") {
                listed.extend(connection_tokens(v));
            }
        }
    }
    let rules = ResponseRules {
        route: Some(opts),
        edits,
    };
    // A 204 has neither framing header, a 304 no transfer coding (RFC 9112, 6.1 and 6.3).
    let unframed =
        |n: &[u8]| head.status == 204 || (head.status == 304 && is(n, "transfer-encoding"));
    let mut has_date = false;
    for (n, value) in header_pairs(raw, places) {
        let keep = if framing(n) {
            body != ClientBody::Empty
                && !unframed(n)
                && (is(n, "transfer-encoding")
                    || !matches!(head.framing, Framing::Chunked | Framing::Close))
        } else {
            rules.keeps(n) && !listed.iter().any(|t| is(n, t))
        };
        if !keep {
            continue;
        }
        has_date |= is(n, "date");
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if body == ClientBody::Empty {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    for (n, v) in rules.added() {
        has_date |= n == http::header::DATE;
        for part in [n.as_str().as_bytes(), b": ", v.as_bytes(), b"\r\n"] {
            out.extend_from_slice(part);
        }
    }
    if !has_date {
        // A proxy adds the date a response lacks (RFC 9110, 6.6.1), as hyper's server does.
        push_date(out);
    }
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_date(out: &mut Vec<u8>) {
    out.extend_from_slice(b"date: ");
    out.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing() {
        let f = |raw: &str, head: bool| {
            parse_response(raw.as_bytes(), head, &mut Vec::new())
                .map(|h| h.map(|h| (h.framing, h.keep_alive)))
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
    fn the_head_is_rewritten_from_one_parse() {
        let raw = "HTTP/1.1 201 \r\nServer: s\r\nConnection: keep-alive, X-Secret\r\n\
                   X-Secret: 1\r\nKeep-Alive: timeout=5\r\nDate: d\r\nContent-Length: 2\r\n\r\nok";
        let mut places = Vec::new();
        let head = parse_response(raw.as_bytes(), false, &mut places)
            .unwrap()
            .unwrap();
        assert!(head.lists_headers);
        assert_eq!(places.len(), 6);
        let rewrite = |body, close| {
            let mut out = Vec::new();
            let opts = Options::default();
            write_response_head(
                &mut out,
                &raw.as_bytes()[..head.len],
                &places,
                &head,
                body,
                &opts,
                None,
                close,
            );
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            rewrite(ClientBody::Relayed, false),
            "HTTP/1.1 201 Created\r\nServer: s\r\nDate: d\r\nContent-Length: 2\r\n\r\n",
            "hop-by-hop and listed headers dropped, a missing reason filled in"
        );
        assert_eq!(
            rewrite(ClientBody::Empty, true),
            "HTTP/1.1 201 Created\r\nServer: s\r\nDate: d\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
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
}
