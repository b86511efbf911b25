//! Listeners: one thread per worker, each with its own single-threaded runtime, its own
//! `SO_REUSEPORT` listener and its own upstream connection pool, so that workers share nothing
//! on the hot path but the route table (read through `ArcSwap`) and atomic counters.

use super::h1::{self, Rewind, UpstreamConns};
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

/// Runs one worker until `shutdown` turns true, then drains its connections.
pub fn run_worker(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
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
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot use the gateway listener");
                return;
            }
        };
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
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
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
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let w = &*worker;
                        let read = if w.shared.fast_path {
                            let Some(read) = h1::serve(&mut stream, remote, &w.shared, &w.conns, shutdown).await else {
                                return;
                            };
                            w.shared.registry.handoffs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            read
                        } else {
                            bytes::Bytes::new()
                        };
                        // The fast path left this request to hyper: it serves the rest.
                        let svc = {
                            let worker = worker.clone();
                            service_fn(move |req| {
                                let worker = worker.clone();
                                async move { Ok::<_, std::convert::Infallible>(handle(&worker.shared, &worker.clients, req, remote).await) }
                            })
                        };
                        let io = TokioIo::new(Rewind::new(read, stream));
                        let conn = worker.builder.serve_connection_with_upgrades(io, svc).into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    });
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
