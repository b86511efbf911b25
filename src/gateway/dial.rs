//! How the gateway opens a connection to one upstream's endpoint: TCP, then TLS when the
//! upstream asks for it (its `sslConfig`, `useTls`), then HTTP/1.1 or HTTP/2 (`useHttp2`: by
//! ALPN over TLS, with prior knowledge in clear). Every path to an upstream (the hyper proxy's
//! pool, gRPC calls) connects through here, so that an upstream's TLS settings hold on all.

use super::pool::SendError;
use crate::tls::client::UpstreamTls;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;

/// How long connecting (TCP and the TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An upstream's connection settings, built once per configuration.
#[derive(Debug, Default)]
pub struct Dial {
    pub tls: Option<UpstreamTls>,
    /// `useHttp2`.
    pub http2: bool,
    /// Tells apart the pooled connections of different settings to one address (0: plain).
    pub id: u64,
}

/// An open connection, ready for requests.
pub enum Sender<B> {
    /// One request at a time; back to the pool when its response is read.
    H1(http1::SendRequest<B>),
    /// Shared by every request (HTTP/2 multiplexes).
    H2(http2::SendRequest<B>),
}

impl Dial {
    /// Plain HTTP/1.1 over TCP: what most upstreams are.
    pub fn is_plain(&self) -> bool {
        self.tls.is_none() && !self.http2
    }

    /// The scheme of requests to this upstream.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Opens a connection to `host` (`host:port`); `http2` overrides `useHttp2` (gRPC).
    pub async fn connect<B>(&self, host: &str, http2: bool) -> Result<Sender<B>, SendError>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let late = || {
            SendError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            ))
        };
        let tcp = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(host))
            .await
            .map_err(|_| late())?
            .map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let want_h2 = http2 || self.http2;
        let Some(tls) = &self.tls else {
            return handshake(TokioIo::new(tcp), want_h2).await;
        };
        let name = tls.server_name(host).map_err(SendError::Tls)?;
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let stream = tokio::time::timeout_at(deadline, connector.connect(name, tcp))
            .await
            .map_err(|_| late())?
            .map_err(|e| SendError::Tls(format!("TLS handshake with {host}: {e}")))?;
        // Over TLS the server chooses: HTTP/2 only when it agreed to by ALPN (or when the
        // caller needs it and the server named nothing, as gRPC servers without ALPN do).
        let h2 = match stream.get_ref().1.alpn_protocol() {
            Some(p) => p == b"h2",
            None => http2,
        };
        handshake(TokioIo::new(stream), h2).await
    }
}

async fn handshake<B, IO>(io: TokioIo<IO>, h2: bool) -> Result<Sender<B>, SendError>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(SendError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream HTTP/2 connection ended with an error");
            }
        });
        return Ok(Sender::H2(sender));
    }
    let (sender, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(SendError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(Sender::H1(sender))
}
