//! The data plane: a compiled route table swapped in whole, served by hyper.

pub mod admin;
pub mod attempts;
pub mod calls;
pub mod dial;
pub mod forwarding;
pub mod function;
pub mod h1;
pub mod inja;
pub mod invoke;
pub mod listener;
pub mod matcher;
pub mod pipeline;
pub mod pool;
pub mod proxy;
pub mod response_rules;
pub mod server;
pub mod table;
pub mod telemetry;
pub mod tunnel;
pub mod upstream_request;

use arc_swap::ArcSwap;
use proxy::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use table::RouteTable;
use telemetry::{Registry, RequestEvent};
use tokio::sync::{broadcast, watch};

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Plain HTTP: the virtual services without `sslConfig` (Gloo's `gateway-proxy`).
    pub listen: SocketAddr,
    /// TLS: the virtual services with `sslConfig` (Gloo's `gateway-proxy-ssl`); `None`, not
    /// served. Listeners of Gloo `Gateway` resources have their own addresses.
    pub listen_tls: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// Worker threads (each with its own listener and connection pool); default: one per core.
    pub workers: usize,
    pub max_body: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: std::time::Duration,
    /// How long a keep-alive connection may sit idle between requests.
    pub idle_timeout: std::time::Duration,
    /// How long an upgraded connection (a WebSocket) may carry nothing either way.
    pub stream_idle_timeout: std::time::Duration,
    /// Serve plain HTTP/1.1 forwarding on the fast path (`h1`); off, hyper serves everything
    /// (the same answers, more work per request: an escape hatch, and how tests run both).
    pub fast_path: bool,
    /// The Redis that global rate limits (RateLimitConfig) count in: `redis://host:port`.
    pub redis: Option<String>,
    /// Gloo's `denyOnFail`: deny (500) what a global limit cannot count, instead of allowing it.
    pub ratelimit_deny_on_fail: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            listen_tls: None,
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 9080))),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            max_body: 16 * 1024 * 1024,
            header_read_timeout: server::HEADER_READ_TIMEOUT,
            idle_timeout: server::IDLE_TIMEOUT,
            stream_idle_timeout: server::STREAM_IDLE_TIMEOUT,
            fast_path: true,
            redis: None,
            ratelimit_deny_on_fail: false,
        }
    }
}

/// The gateway's shared state: the table the control loop swaps, counters, the event stream.
#[derive(Clone)]
pub struct Gateway {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub registry: Arc<Registry>,
    pub events: broadcast::Sender<RequestEvent>,
    /// How kube upstreams are reached (cluster DNS unless told otherwise).
    pub connector: Arc<dyn crate::net::Connector>,
    /// The listeners and the virtual services each serves; `table` mirrors the first plain
    /// one's (what `/routes` shows and `/ready` waits for).
    pub listeners: Arc<server::Listeners>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new()
    }
}

impl Gateway {
    pub fn new() -> Self {
        Self::with_listeners(listener::ListenerSpec::default_pair())
    }

    /// A gateway serving these listeners (until the control loop sets them from the store).
    pub fn with_listeners(specs: Vec<listener::ListenerSpec>) -> Self {
        let listeners = specs
            .into_iter()
            .map(|spec| {
                Arc::new(listener::Listener::new(
                    spec,
                    Arc::new(ArcSwap::from_pointee(RouteTable::default())),
                ))
            })
            .collect();
        Gateway {
            table: Arc::new(ArcSwap::from_pointee(RouteTable::default())),
            registry: Arc::new(Registry::default()),
            events: broadcast::channel(4096).0,
            connector: crate::net::default_connector(),
            listeners: Arc::new(server::Listeners::new(listeners)),
        }
    }

    /// What every connection of a plain listener serving `table` shares.
    fn shared(&self, cfg: &GatewayConfig, table: Arc<ArcSwap<RouteTable>>) -> Shared {
        Shared {
            table,
            registry: self.registry.clone(),
            events: self.events.clone(),
            max_body: cfg.max_body,
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            stream_idle_timeout: cfg.stream_idle_timeout,
            fast_path: cfg.fast_path,
            scheme: "http",
        }
    }

    /// Serves one connection given as a byte stream, as the first plain listener would (its
    /// table; `cfg`'s limits and transport), until it closes: the whole request pipeline in
    /// process, with no socket between the client and the gateway (tests, in axum's `oneshot`
    /// manner). Forwards still dial their upstreams.
    pub async fn serve_stream<IO>(&self, io: IO, remote: SocketAddr, cfg: &GatewayConfig)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let table = self
            .listeners
            .list()
            .iter()
            .find(|l| !l.spec.ssl)
            .and_then(|l| l.chains.load().list.first().map(|c| c.table.clone()))
            .unwrap_or_else(|| self.table.clone());
        let shared = Arc::new(self.shared(cfg, table));
        server::serve_stream(io, remote, shared, cfg.fast_path).await;
    }

    /// Binds and starts serving on worker threads. A listener of the default pair that
    /// cannot be bound fails the start; a Gateway's is reported on its status (see
    /// `server::Listeners`) and the others serve.
    pub fn start(&self, cfg: &GatewayConfig) -> std::io::Result<GatewayHandle> {
        if let Some(url) = &cfg.redis {
            self.registry
                .policy
                .set_redis(url, cfg.ratelimit_deny_on_fail)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        }
        let workers = cfg.workers.max(1);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| tokio::sync::mpsc::unbounded_channel())
            .unzip();
        let failed = self.listeners.start(senders, cfg.listen, cfg.listen_tls);
        if let Some(f) = failed.iter().find(|f| f.gateway.is_none()) {
            self.listeners.stop();
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("listener {}: {}", f.name, f.message),
            ));
        }
        let bound = self.listeners.bound();
        // The first plain listener is `addr` (what `url()` gives); the first TLS one `tls_addr`.
        let addr = bound
            .iter()
            .find(|b| !b.1)
            .or(bound.first())
            .map(|b| b.2)
            .unwrap_or(cfg.listen);
        let tls_addr = bound.iter().find(|b| b.1).map(|b| b.2);
        let admin = match cfg.admin {
            Some(a) => match std::net::TcpListener::bind(a).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => Some(l),
                Err(e) => {
                    self.listeners.stop();
                    return Err(e);
                }
            },
            None => None,
        };
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(self.shared(cfg, self.table.clone()));
        let mut threads = Vec::new();
        for (i, adds) in receivers.into_iter().enumerate() {
            let shared = shared.clone();
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("epoxy-gw-{i}"))
                    .spawn(move || server::run_worker(adds, shared, rx))?,
            );
        }
        if let Some(l) = admin {
            let (t, r, rx) = (self.table.clone(), self.registry.clone(), rx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("epoxy-admin".into())
                    .spawn(move || admin::run_admin(l, t, r, rx))?,
            );
        }
        Ok(GatewayHandle {
            addr,
            tls_addr,
            listeners: bound.into_iter().map(|(n, _, a)| (n, a)).collect(),
            admin_addr,
            all: self.listeners.clone(),
            shutdown: tx,
            threads,
        })
    }
}

/// A running gateway; `shutdown` stops accepting, drains in-flight requests, and joins.
pub struct GatewayHandle {
    /// The (first) plain listener's address.
    pub addr: SocketAddr,
    /// The (first) TLS listener's address, if one is served.
    pub tls_addr: Option<SocketAddr>,
    /// Every listener's name and address.
    pub listeners: Vec<(String, SocketAddr)>,
    pub admin_addr: Option<SocketAddr>,
    /// The listeners as they are now (Gateways come and go while it runs).
    pub all: Arc<server::Listeners>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl GatewayHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops and waits (blocking) until in-flight requests are done.
    pub fn shutdown(mut self) {
        self.all.stop();
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

impl Drop for GatewayHandle {
    /// A dropped handle stops the gateway (without waiting for the drain).
    fn drop(&mut self) {
        self.all.stop();
        let _ = self.shutdown.send(true);
    }
}
