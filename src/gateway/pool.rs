//! Plain HTTP/1.1 connections to upstreams, kept per worker thread.
//!
//! The common case of a gateway (cleartext HTTP/1.1 to a service) does not need a general
//! client: one worker's connections are used by that worker only, so the pool is a map of idle
//! connections by `host:port` behind a lock nobody else takes. A connection goes back to the
//! pool when its response body has been read to the end (a response cut short closes it), and
//! requests go out in origin form (`GET /path HTTP/1.1`) without building an absolute URI.
//! TLS upstreams and shadow copies use the general client (`crate::net`).

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The body of a request sent upstream: the client's, streamed, or one the gateway made.
pub type OutBody = http_body_util::Either<Incoming, http_body_util::Full<Bytes>>;

/// How long connecting to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per upstream host.
const MAX_IDLE_PER_HOST: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Handshake(hyper::Error),
    #[error("{0}")]
    Request(hyper::Error),
}

impl SendError {
    /// Whether the upstream was never reached (safe to retry elsewhere, nothing was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_) | SendError::Handshake(_))
    }
}

type Idle = HashMap<Arc<str>, Vec<SendRequest<OutBody>>>;

/// One worker's idle upstream connections.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Idle>,
}

impl Pool {
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool::default())
    }

    fn take(&self, host: &str) -> Option<SendRequest<OutBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(host)?;
        while let Some(s) = list.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, host: Arc<str>, sender: SendRequest<OutBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(host).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(sender);
        }
    }

    async fn connect(host: &str) -> Result<SendRequest<OutBody>, SendError> {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(host)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(SendError::Connect(e)),
                Err(_) => {
                    return Err(SendError::Connect(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {CONNECT_TIMEOUT:?}"),
                    )));
                }
            };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (origin-form URI, headers as they go) to `host` (`host:port`) on an idle
    /// connection, or a new one. An idle connection the upstream closed in the meantime is
    /// replaced without the request being lost.
    pub async fn send(
        self: &Arc<Self>,
        host: &Arc<str>,
        req: Request<OutBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let mut req = req;
        while let Some(mut sender) = self.take(host) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(host, sender, resp)),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection was gone; try another.
                    Some(back) => req = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let mut sender = Self::connect(host).await?;
        let resp = sender.send_request(req).await.map_err(SendError::Request)?;
        Ok(self.wrap(host, sender, resp))
    }

    fn wrap(
        self: &Arc<Self>,
        host: &Arc<str>,
        sender: SendRequest<OutBody>,
        resp: Response<Incoming>,
    ) -> Response<UpstreamBody> {
        resp.map(|inner| UpstreamBody {
            inner,
            done: false,
            back: Some((self.clone(), host.clone(), sender)),
        })
    }
}

/// A response body from upstream; when it was read to the end, its connection goes back to
/// the pool it came from.
pub struct UpstreamBody {
    inner: Incoming,
    /// Seen the end (a chunked body does not say so through `is_end_stream`).
    done: bool,
    back: Option<(Arc<Pool>, Arc<str>, SendRequest<OutBody>)>,
}

impl UpstreamBody {
    /// A body whose connection is not the pool's (the general client's).
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
        if let Some((pool, host, sender)) = self.back.take()
            && (self.done || self.inner.is_end_stream())
        {
            pool.put(host, sender);
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
