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

/// Runs one worker until `shutdown` turns true, then drains its connections. Its listeners
/// come through `adds` (at the start and whenever one is bound); each accepts until its own
/// close signal or the shutdown.
pub fn run_worker(
    mut adds: tokio::sync::mpsc::UnboundedReceiver<Handoff>,
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
        // What a connection needs, behind one reference count.
        let worker = Arc::new(Worker::new(shared.clone()));
        let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
        let mut accepting = tokio::task::JoinSet::new();
        while !*shutdown.borrow() {
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                add = adds.recv() => {
                    let Some((l, listener, close)) = add else { break };
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
                        close,
                    ));
                }
                Some(_) = accepting.join_next(), if !accepting.is_empty() => {}
            }
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
    mut close: watch::Receiver<bool>,
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
            // Its Gateway is gone or moved (or the sender dropped): the socket closes.
            _ = close.changed() => return,
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
        scheme: "https",
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

impl Worker {
    fn new(shared: Arc<Shared>) -> Worker {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Hyper's header timeout runs from the end of one request to the head of the next, so
        // it is the idle timeout too; the first request's head is timed by the fast path,
        // which reads it before handing a connection over.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.idle_timeout.max(shared.header_read_timeout))
            .max_buf_size(h1::MAX_HEAD)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        Worker {
            clients: new_client(&shared.registry),
            conns: UpstreamConns::counting(shared.registry.upstream_connections.clone()),
            shared,
            builder,
        }
    }
}

/// Serves one connection that is any byte stream (an in-memory pipe in tests), on a worker of
/// its own, until it closes.
pub async fn serve_stream<IO>(io: IO, remote: SocketAddr, shared: Arc<Shared>, fast: bool)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let worker = Arc::new(Worker::new(shared.clone()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Never sent: the connection ends when its client closes it.
    let (_never, shutdown) = watch::channel(false);
    serve_connection(
        io,
        remote,
        shared,
        worker,
        graceful.watcher(),
        shutdown,
        fast,
    )
    .await;
}

/// A listener's socket handed to a worker, with the signal that closes it.
pub type Handoff = (std::net::TcpListener, Arc<Listener>, watch::Receiver<bool>);

/// A listener that could not be bound (its port is taken, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindFailure {
    /// The listener's name (`http`, `https`, or `namespace.name` of its Gateway).
    pub name: String,
    pub gateway: Option<crate::api::ResourceKey>,
    pub message: String,
}

/// How the running workers take new listeners.
struct Binder {
    workers: Vec<tokio::sync::mpsc::UnboundedSender<Handoff>>,
    listen: SocketAddr,
    listen_tls: Option<SocketAddr>,
}

/// A bound listener: where, and the sender whose dropping (or `true`) closes it.
struct Bound {
    addr: SocketAddr,
    close: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    binder: Option<Binder>,
    bound: std::collections::HashMap<String, Bound>,
    failed: Vec<BindFailure>,
}

/// Every listener of the gateway: the control loop sets them from the store's Gateways
/// (`update`), and once the workers run, each is bound, rebound or closed in place, without
/// a restart; connections already open stay on their worker.
pub struct Listeners {
    current: arc_swap::ArcSwap<Vec<Arc<Listener>>>,
    state: std::sync::Mutex<State>,
    /// Told when binding changed what the statuses should say (the workers started).
    pub rebound: tokio::sync::Notify,
}

impl Listeners {
    pub fn new(listeners: Vec<Arc<Listener>>) -> Listeners {
        Listeners {
            current: arc_swap::ArcSwap::from_pointee(listeners),
            state: Default::default(),
            rebound: tokio::sync::Notify::new(),
        }
    }

    /// The listeners of the moment.
    pub fn list(&self) -> Arc<Vec<Arc<Listener>>> {
        self.current.load_full()
    }

    /// Each bound listener's name, TLS and address.
    pub fn bound(&self) -> Vec<(String, bool, SocketAddr)> {
        let st = self.lock();
        self.list()
            .iter()
            .filter_map(|l| {
                st.bound
                    .get(&l.spec.name)
                    .map(|b| (l.spec.name.clone(), l.spec.ssl, b.addr))
            })
            .collect()
    }

    /// The listeners that could not be bound, as of the last attempt.
    pub fn failures(&self) -> Vec<BindFailure> {
        self.lock().failed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the listeners to `specs`: one with the same name, address and TLS as before is
    /// kept (its selection updated); the others are closed (their open connections route
    /// nothing from `generation` on) and the new ones bound, once the workers run. Returns
    /// what could not be bound.
    pub fn update(
        &self,
        specs: Vec<super::listener::ListenerSpec>,
        generation: u64,
    ) -> Vec<BindFailure> {
        let mut st = self.lock();
        let old = self.list();
        let next: Vec<Arc<Listener>> = specs
            .into_iter()
            .map(
                |spec| match old.iter().find(|l| l.spec.same_socket(&spec)) {
                    Some(l) => {
                        l.select.store(Arc::new(spec.select));
                        l.clone()
                    }
                    None => Arc::new(Listener::new(
                        spec,
                        Arc::new(arc_swap::ArcSwap::from_pointee(
                            super::table::RouteTable::default(),
                        )),
                    )),
                },
            )
            .collect();
        for l in old.iter() {
            if !next.iter().any(|n| Arc::ptr_eq(n, l)) {
                if let Some(b) = st.bound.remove(&l.spec.name) {
                    let _ = b.close.send(true);
                    tracing::info!(listener = %l.spec.name, address = %b.addr, "listener closed");
                }
                l.retire(generation);
            }
        }
        self.current.store(Arc::new(next));
        self.bind_pending(&mut st)
    }

    /// Binds every listener, each socket handed to a worker through `workers`, and every one
    /// `update` sets from now on; returns what failed.
    pub fn start(
        &self,
        workers: Vec<tokio::sync::mpsc::UnboundedSender<Handoff>>,
        listen: SocketAddr,
        listen_tls: Option<SocketAddr>,
    ) -> Vec<BindFailure> {
        let mut st = self.lock();
        st.binder = Some(Binder {
            workers,
            listen,
            listen_tls,
        });
        let failed = self.bind_pending(&mut st);
        self.rebound.notify_one();
        failed
    }

    fn bind_pending(&self, st: &mut State) -> Vec<BindFailure> {
        st.failed.clear();
        let Some(b) = &st.binder else {
            return Vec::new();
        };
        let mut failed = Vec::new();
        let mut added = Vec::new();
        for l in self.list().iter() {
            if st.bound.contains_key(&l.spec.name) {
                continue;
            }
            let at = match (l.spec.addr, l.spec.ssl) {
                (Some(a), _) => a,
                (None, false) => b.listen,
                (None, true) => match b.listen_tls {
                    Some(a) => a,
                    None => continue,
                },
            };
            match bind_all(at, b.workers.len()) {
                Ok((actual, socks)) => {
                    let (close, closed) = watch::channel(false);
                    for (w, s) in b.workers.iter().zip(socks) {
                        let _ = w.send((s, l.clone(), closed.clone()));
                    }
                    tracing::info!(listener = %l.spec.name, address = %actual, tls = l.spec.ssl, "listening");
                    added.push((
                        l.spec.name.clone(),
                        Bound {
                            addr: actual,
                            close,
                        },
                    ));
                }
                Err(e) => {
                    tracing::warn!(listener = %l.spec.name, address = %at, error = %e, "cannot listen");
                    failed.push(BindFailure {
                        name: l.spec.name.clone(),
                        gateway: l.spec.gateway.clone(),
                        message: format!("cannot listen on {at}: {e}"),
                    });
                }
            }
        }
        st.bound.extend(added);
        st.failed = failed.clone();
        failed
    }

    /// Closes every listener (the gateway is stopping, or did not start).
    pub fn stop(&self) {
        let mut st = self.lock();
        st.binder = None;
        for (_, b) in st.bound.drain() {
            let _ = b.close.send(true);
        }
    }
}
