//! gRPC over HTTP/2 cleartext (prior knowledge): length-prefixed messages, the status in the
//! trailers, and one multiplexed connection per upstream address kept for every call.

use super::GrpcError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer (all messages together) read from a server.
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

pub type Sender = SendRequest<Full<Bytes>>;

/// An open HTTP/2 connection to `authority` (`host:port`).
pub async fn connect(authority: &str) -> Result<Sender, GrpcError> {
    let unreachable = |reason: String| GrpcError::Unreachable {
        authority: authority.to_string(),
        reason,
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| unreachable(format!("no connection within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| unreachable(format!("HTTP/2 handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "gRPC connection ended");
        }
    });
    Ok(send)
}

thread_local! {
    /// A gateway worker's connections, one per upstream address and connection settings,
    /// shared by all its requests (HTTP/2 multiplexes calls): opened on first use, opened
    /// again once closed. Per worker thread, as the worker's runtime drives the connection.
    static POOL: RefCell<HashMap<(String, u64), Sender>> = RefCell::default();
}

/// The pooled connection to `authority` with settings `id`, opened by `open` when there is
/// none (the gateway's dialer: cleartext or TLS).
pub async fn pooled<F>(authority: &str, id: u64, open: F) -> Result<Sender, GrpcError>
where
    F: Future<Output = Result<Sender, GrpcError>>,
{
    let key = (authority.to_string(), id);
    let live = POOL.with(|p| p.borrow().get(&key).filter(|s| !s.is_closed()).cloned());
    if let Some(s) = live {
        return Ok(s);
    }
    let s = open.await?;
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.retain(|_, s| !s.is_closed());
        p.insert(key, s.clone());
    });
    Ok(s)
}

/// One message with gRPC's prefix: not compressed, its length.
pub fn frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(message.len() + 5);
    b.put_u8(0);
    b.put_u32(message.len() as u32);
    b.put_slice(message);
    b.freeze()
}

/// The messages of a response body.
pub fn unframe(mut body: Bytes) -> Result<Vec<Bytes>, GrpcError> {
    let mut out = Vec::new();
    while body.has_remaining() {
        if body.len() < 5 {
            return Err(GrpcError::Protocol("a message prefix is cut short".into()));
        }
        let compressed = body.get_u8();
        let len = body.get_u32() as usize;
        if compressed != 0 {
            return Err(GrpcError::Protocol(
                "a compressed message (epoxy asks for none)".into(),
            ));
        }
        if body.len() < len {
            return Err(GrpcError::Protocol("a message is cut short".into()));
        }
        out.push(body.split_to(len));
    }
    Ok(out)
}

/// A call: `message` sent to `/path` (`package.Service/Method`), the response messages back
/// once the server ends the call with status OK.
pub async fn call(
    send: &Sender,
    authority: &str,
    path: &str,
    message: &[u8],
    metadata: &HeaderMap,
    timeout: Duration,
) -> Result<Vec<Bytes>, GrpcError> {
    let work = async {
        let mut send = send.clone();
        send.ready().await.map_err(|e| GrpcError::Unreachable {
            authority: authority.to_string(),
            reason: e.to_string(),
        })?;
        let mut req = Request::post(format!("http://{authority}/{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)))
            .body(Full::new(frame(message)))
            .map_err(|e| GrpcError::Protocol(e.to_string()))?;
        for (k, v) in metadata {
            req.headers_mut().append(k, v.clone());
        }
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| GrpcError::Unreachable {
                authority: authority.to_string(),
                reason: e.to_string(),
            })?;
        let (parts, body) = resp.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(GrpcError::Protocol(format!("HTTP status {}", parts.status)));
        }
        // A trailers-only answer carries the status in the headers.
        if let Some(e) = status_error(&parts.headers) {
            return Err(e);
        }
        let collected = http_body_util::Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| GrpcError::Protocol(format!("reading the answer: {e}")))?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        match trailers.as_ref() {
            Some(t) if t.contains_key("grpc-status") => {
                if let Some(e) = status_error(t) {
                    return Err(e);
                }
            }
            _ if parts.headers.contains_key("grpc-status") => {}
            _ => return Err(GrpcError::Protocol("the answer has no grpc-status".into())),
        }
        unframe(data)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| GrpcError::Timeout(timeout))?
}

/// The error a `grpc-status` other than 0 in `h` says, with its `grpc-message` and
/// `grpc-status-details-bin`.
fn status_error(h: &HeaderMap) -> Option<GrpcError> {
    let code: u32 = h.get("grpc-status")?.to_str().ok()?.trim().parse().ok()?;
    if code == 0 {
        return None;
    }
    let message = h
        .get("grpc-message")
        .map(|m| {
            percent_encoding::percent_decode(m.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let details = h
        .get("grpc-status-details-bin")
        .and_then(|v| super::status::Details::from_header(v.as_bytes()))
        .map(Box::new);
    Some(GrpcError::Status {
        code,
        message,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_cut_frames_are_refused() {
        let mut body = BytesMut::new();
        body.put_slice(&frame(b"one"));
        body.put_slice(&frame(b""));
        body.put_slice(&frame(b"three"));
        let body = body.freeze();
        let msgs = unframe(body.clone()).unwrap();
        assert_eq!(msgs, vec![&b"one"[..], &b""[..], &b"three"[..]]);
        assert!(unframe(body.slice(..body.len() - 1)).is_err());
        assert!(unframe(Bytes::from_static(&[1, 0, 0, 0, 0])).is_err());
    }
}
