//! Connections to upstreams, kept per worker thread.
//!
//! A gateway does not need a general client: one worker's connections are used by that worker
//! only, so the pool is a map of idle connections by endpoint (`host:port` and the upstream's
//! connection settings, `Dial`) behind a lock nobody else takes. An HTTP/1.1 connection goes
//! back to the pool when its response body has been read to the end (a response cut short
//! closes it), and requests go out in origin form (`GET /path HTTP/1.1`) without building an
//! absolute URI. An HTTP/2 connection is shared by every request to its endpoint.
//! Connections are opened by `super::dial` (TCP, TLS, HTTP/1.1 or HTTP/2).

use super::dial::{Dial, Sender};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::http2;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The body of a request sent upstream: the client's, streamed, or one the gateway made.
pub type OutBody = http_body_util::Either<Incoming, http_body_util::Full<Bytes>>;

/// Idle connections kept per upstream host (by every pool of the gateway's).
pub const MAX_IDLE_PER_HOST: usize = 256;
/// How long a connection may sit idle before the pool closes it (as hyper-util's client does):
/// upstreams that left the configuration do not keep sockets open forever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// On a tokio runtime, spawns a task that every `IDLE_TIMEOUT / 3` has `close` drop the
/// connections of `pool` idle since before `IDLE_TIMEOUT` ago; the task ends with the pool.
pub(super) fn close_idle_regularly<P: Send + Sync + 'static>(
    pool: &Arc<P>,
    close: fn(&P, Instant),
) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let weak = Arc::downgrade(pool);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDLE_TIMEOUT / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = weak.upgrade() else { return };
            // `checked_sub`: the monotonic clock starts at boot, and a process may start sooner.
            if let Some(cutoff) = Instant::now().checked_sub(IDLE_TIMEOUT) {
                close(&pool, cutoff);
            }
        }
    });
}

/// Why a request could not be exchanged; the cause is kept as the error's source, so that
/// messages (`x-epoxy-error`) reach the root cause, not this wrapper.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed, or its settings do not fit this endpoint.
    #[error("{0}")]
    Tls(String),
    #[error("the HTTP handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("{0}")]
    Request(#[source] hyper::Error),
}

impl SendError {
    /// Whether the upstream was never reached (safe to retry elsewhere, nothing was sent).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            SendError::Connect(_) | SendError::Tls(_) | SendError::Handshake(_)
        )
    }

    /// Whether the request's own body failed (the client's fault, not the upstream's).
    pub fn is_request_body(&self) -> bool {
        matches!(self, SendError::Request(e) if e.is_user())
    }

    /// The message with its root cause: hyper's own messages (`connection error`) stop short
    /// of why (`Connection reset by peer`), which is what an operator needs.
    pub fn explain(&self) -> String {
        crate::cause::with_root_cause(self)
    }
}

/// An endpoint: `host:port` and the `Dial::id` of the settings it is reached with.
type Key = (Arc<str>, u64);
/// Idle HTTP/1.1 connections by endpoint, each with the time it went idle.
type Idle = HashMap<Key, Vec<(SendRequest<OutBody>, Instant)>>;

/// One worker's upstream connections.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Idle>,
    /// The HTTP/2 connection of each endpoint that has one.
    shared: Mutex<HashMap<Key, http2::SendRequest<OutBody>>>,
    /// Connections opened, for the metrics (shared by every worker's pool).
    opened: Arc<std::sync::atomic::AtomicU64>,
}

impl Pool {
    /// A pool, and (on a tokio runtime) a task that closes connections idle for longer than
    /// `IDLE_TIMEOUT`; the task ends with the pool.
    pub fn new() -> Arc<Pool> {
        Self::counting(Arc::default())
    }

    /// A pool that counts the connections it opens in `opened`.
    pub fn counting(opened: Arc<std::sync::atomic::AtomicU64>) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            idle: Mutex::default(),
            shared: Mutex::default(),
            opened,
        });
        close_idle_regularly(&pool, Pool::close_idle_since);
        pool
    }

    /// Closes the connections idle since before `cutoff`, and those the upstream closed.
    pub fn close_idle_since(&self, cutoff: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain(|(s, since)| *since >= cutoff && !s.is_closed());
            !list.is_empty()
        });
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.retain(|_, s| !s.is_closed());
    }

    /// Idle connections, all hosts together.
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }

    fn take(&self, key: &Key) -> Option<SendRequest<OutBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(key)?;
        while let Some((s, _)) = list.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, key: Key, sender: SendRequest<OutBody>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((sender, now));
        }
    }

    /// The endpoint's HTTP/2 connection, if it has one still open.
    fn shared(&self, key: &Key) -> Option<http2::SendRequest<OutBody>> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.get(key).filter(|s| !s.is_closed()).cloned()
    }

    /// Sends `req` (origin-form URI, headers as they go) to `host` (`host:port`) reached as
    /// `dial` says: on its HTTP/2 connection, an idle HTTP/1.1 one, or a new one. A connection
    /// the upstream closed in the meantime is replaced without the request being lost.
    pub async fn send(
        self: &Arc<Self>,
        dial: &Dial,
        host: &Arc<str>,
        req: Request<OutBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let key = (host.clone(), dial.id);
        let mut req = req;
        if !dial.is_plain()
            && let Some(mut sender) = self.shared(&key)
            && sender.ready().await.is_ok()
        {
            to_absolute(&mut req, dial.scheme(), host);
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp.map(UpstreamBody::unpooled)),
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        while let Some(mut sender) = self.take(&key) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(key, sender, resp)),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection was gone; try another.
                    Some(back) => req = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let sender = dial.connect(host, false).await?;
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match sender {
            Sender::H1(mut sender) => {
                let resp = sender.send_request(req).await.map_err(SendError::Request)?;
                Ok(self.wrap(key, sender, resp))
            }
            Sender::H2(mut sender) => {
                self.shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, sender.clone());
                to_absolute(&mut req, dial.scheme(), host);
                let resp = sender.send_request(req).await.map_err(SendError::Request)?;
                Ok(resp.map(UpstreamBody::unpooled))
            }
        }
    }

    fn wrap(
        self: &Arc<Self>,
        key: Key,
        sender: SendRequest<OutBody>,
        resp: Response<Incoming>,
    ) -> Response<UpstreamBody> {
        resp.map(|inner| UpstreamBody {
            inner,
            done: false,
            back: Some((self.clone(), key, sender)),
        })
    }
}

/// HTTP/2 names the target in `:scheme` and `:authority`: the request's `Host` (or the
/// endpoint) becomes its authority.
fn to_absolute(req: &mut Request<OutBody>, scheme: &str, host: &str) {
    if req.uri().scheme().is_some() {
        return;
    }
    let authority = req
        .headers_mut()
        .remove(http::header::HOST)
        .and_then(|h| h.to_str().ok().map(str::to_string))
        .unwrap_or_else(|| host.to_string());
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if let Ok(uri) = format!("{scheme}://{authority}{pq}").parse() {
        *req.uri_mut() = uri;
    }
}

/// A response body from upstream; when it was read to the end, its connection goes back to
/// the pool it came from.
pub struct UpstreamBody {
    inner: Incoming,
    /// Seen the end (a chunked body does not say so through `is_end_stream`).
    done: bool,
    back: Option<(Arc<Pool>, Key, SendRequest<OutBody>)>,
}

impl UpstreamBody {
    /// A body whose connection does not go back to a pool (an HTTP/2 stream, the general
    /// client's).
    pub fn unpooled(inner: Incoming) -> Self {
        UpstreamBody {
            inner,
            done: false,
            back: None,
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Some((pool, key, sender)) = self.back.take()
            && (self.done || self.inner.is_end_stream())
        {
            pool.put(key, sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.done = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;

    /// An upstream answering `ok` on every request of every connection.
    async fn upstream() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        addr
    }

    fn get() -> Request<OutBody> {
        let mut r = Request::new(http_body_util::Either::Right(http_body_util::Full::new(
            Bytes::new(),
        )));
        *r.uri_mut() = "/".parse().unwrap();
        r.headers_mut()
            .insert(http::header::HOST, http::HeaderValue::from_static("x"));
        r
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_kept_and_closed_once_idle_too_long() {
        use http_body_util::BodyExt;
        let host: Arc<str> = Arc::from(upstream().await.as_str());
        let pool = Pool::new();
        let plain = Dial::default();
        let body = pool.send(&plain, &host, get()).await.unwrap().into_body();
        assert_eq!(pool.idle_count(), 0, "in use until its body is read");
        assert_eq!(body.collect().await.unwrap().to_bytes(), "ok");
        assert_eq!(pool.idle_count(), 1, "back once read to the end");
        // A response dropped before its end takes its connection with it.
        let unread = pool.send(&plain, &host, get()).await.unwrap();
        drop(unread);
        let read = pool.send(&plain, &host, get()).await.unwrap();
        let _ = read.into_body().collect().await.unwrap();
        assert_eq!(pool.idle_count(), 1);
        pool.close_idle_since(Instant::now() - IDLE_TIMEOUT);
        assert_eq!(pool.idle_count(), 1, "idle for less than the timeout: kept");
        pool.close_idle_since(Instant::now() + Duration::from_millis(1));
        assert_eq!(pool.idle_count(), 0, "idle for longer: closed");
    }

    /// An upstream that takes the request, then resets the connection (SO_LINGER 0): the
    /// error keeps hyper's cause, so its explanation names the reset, not only hyper's wrapper.
    #[tokio::test]
    async fn a_reset_is_explained_down_to_its_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host: Arc<str> = Arc::from(listener.local_addr().unwrap().to_string().as_str());
        std::thread::spawn(move || {
            use std::io::Read;
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            }
        });
        let Err(e) = Pool::new().send(&Dial::default(), &host, get()).await else {
            panic!("a reset connection gave an answer");
        };
        assert!(!e.is_connect() && !e.is_request_body(), "{e:?}");
        let reset = std::io::Error::from_raw_os_error(libc::ECONNRESET).to_string();
        assert!(!e.to_string().contains(&reset), "hyper's own message: {e}");
        let explained = e.explain();
        assert!(explained.starts_with(&e.to_string()), "{explained}");
        assert!(explained.ends_with(&reset), "{explained}");
        assert_eq!(crate::cause::root_cause(&e), reset);
    }
}
