//! Listeners: one thread per worker, each with its own single-threaded runtime, its own
//! `SO_REUSEPORT` listener and its own upstream connection pool, so that workers share nothing
//! on the hot path but the route table (read through `ArcSwap`) and atomic counters.

use super::h1::{self, Rewind, UpstreamConns};
use super::listener::Listener;
use super::proxy::{Clients, Shared, handle, new_client};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a keep-alive connection may sit idle between requests (nginx's default; clients
/// that reuse a connection after a pause must not find it closed under them).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long an upgraded connection may carry nothing (Envoy's stream idle timeout).
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long in-flight requests get to finish on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv6() {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// Binds `workers` listeners on one address (the first picks the port when it is 0).
pub fn bind_all(
    addr: SocketAddr,
    workers: usize,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = bind(addr)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(bind(actual)?);
    }
    Ok((actual, all))
}

/// Runs one worker (its listeners) until `shutdown` turns true, then drains its connections.
pub fn run_worker(
    listeners: Vec<(std::net::TcpListener, Arc<Listener>)>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a gateway worker");
            return;
        }
    };
    rt.block_on(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Hyper's header timeout runs from the end of one request to the head of the next, so it is
        // the idle timeout too; the first request's head is timed by the fast path, which
        // reads it before handing a connection over.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.idle_timeout.max(shared.header_read_timeout))
            .max_buf_size(h1::MAX_HEAD)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        // What a connection needs, behind one reference count.
        let worker = Arc::new(Worker {
            clients: new_client(&shared.registry),
            conns: UpstreamConns::counting(shared.registry.upstream_connections.clone()),
            shared: shared.clone(),
            builder,
        });
        let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
        let mut accepting = tokio::task::JoinSet::new();
        for (l, listener) in listeners {
            let l = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot use the gateway listener");
                    continue;
                }
            };
            accepting.spawn(accept_loop(
                l,
                listener,
                worker.clone(),
                graceful.clone(),
                shutdown.clone(),
            ));
        }
        while accepting.join_next().await.is_some() {}
        // Every accept loop is done (and its listener closed): the connections drain.
        drop(worker);
        if let Ok(graceful) = Arc::try_unwrap(graceful) {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
        }
    });
}

/// Accepts on one listener until shutdown; each connection is served on its own task.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    spec: Arc<Listener>,
    worker: Arc<Worker>,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A plain listener has one table for good: its connections share one `Shared`.
    let plain = (!spec.spec.ssl).then(|| {
        let chains = spec.chains.load();
        match chains.list.first() {
            Some(c) if !Arc::ptr_eq(&c.table, &worker.shared.table) => Arc::new(Shared {
                table: c.table.clone(),
                ..(*worker.shared).clone()
            }),
            _ => worker.shared.clone(),
        }
    });
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let worker = worker.clone();
                let watcher = graceful.watcher();
                let shutdown = shutdown.clone();
                match &plain {
                    Some(shared) => {
                        let shared = shared.clone();
                        let fast = shared.fast_path;
                        tokio::spawn(serve_connection(stream, remote, shared, worker, watcher, shutdown, fast));
                    }
                    None => {
                        let spec = spec.clone();
                        tokio::spawn(async move {
                            let Some((tls, shared, h2)) = handshake(stream, &spec, &worker.shared).await else {
                                return;
                            };
                            // HTTP/1.1 over TLS takes the fast path too; HTTP/2 is hyper's.
                            let fast = shared.fast_path && !h2;
                            serve_connection(tls, remote, shared, worker, watcher, shutdown, fast).await;
                        });
                    }
                }
            }
        }
    }
}

/// A TLS handshake: the chain is chosen by the client's SNI, then the handshake completes with
/// its configuration; `None` when it fails (logged) or no chain serves that name. Returns the
/// connection, the `Shared` with the chain's routes, and whether ALPN chose HTTP/2.
async fn handshake(
    stream: tokio::net::TcpStream,
    listener: &Listener,
    base: &Arc<Shared>,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Arc<Shared>,
    bool,
)> {
    let deadline = base.header_read_timeout;
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout(deadline, acceptor).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS client hello refused");
            return None;
        }
        Err(_) => return None,
    };
    let sni = start.client_hello().server_name().map(str::to_owned);
    let chain = listener.chains.load().for_sni(sni.as_deref()).cloned();
    let Some((chain, config)) = chain.and_then(|c| c.tls.clone().map(|t| (c, t))) else {
        tracing::debug!(sni = ?sni, listener = %listener.spec.name, "no certificate for this name; connection closed");
        return None;
    };
    let tls = match tokio::time::timeout(deadline, start.into_stream(config)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, sni = ?sni, "TLS handshake failed");
            return None;
        }
        Err(_) => return None,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let shared = Arc::new(Shared {
        table: chain.table.clone(),
        ..(**base).clone()
    });
    Some((tls, shared, h2))
}

/// Serves one connection: the fast path first (when `fast`), then hyper for the rest.
async fn serve_connection<IO>(
    mut io: IO,
    remote: SocketAddr,
    shared: Arc<Shared>,
    worker: Arc<Worker>,
    watcher: hyper_util::server::graceful::Watcher,
    shutdown: watch::Receiver<bool>,
    fast: bool,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let w = &*worker;
    let read = if fast {
        let Some(read) = h1::serve(&mut io, remote, &shared, &w.conns, shutdown).await else {
            return;
        };
        w.shared
            .registry
            .handoffs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        read
    } else {
        bytes::Bytes::new()
    };
    // The fast path left this request to hyper: it serves the rest.
    let svc = {
        let worker = worker.clone();
        service_fn(move |req| {
            let worker = worker.clone();
            let shared = shared.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    handle(&shared, &worker.clients, req, remote).await,
                )
            }
        })
    };
    let io = TokioIo::new(Rewind::new(read, io));
    let conn = worker
        .builder
        .serve_connection_with_upgrades(io, svc)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// One worker's state, shared by its connections.
struct Worker {
    shared: Arc<Shared>,
    clients: Clients,
    /// The fast path's upstream connections (`h1`).
    conns: Arc<UpstreamConns>,
    /// Serves what the fast path leaves: HTTP/2, upgrades, and the rest (see `h1`).
    builder: auto::Builder<TokioExecutor>,
}
