//! `epoxy gateway` (the control loop and the gateway, headless) and `epoxy proxy url`.

use super::Global;
use crate::control::reconcile;
use crate::discovery::fds;
use crate::gateway::{Gateway, GatewayConfig};
use crate::store::Store;
use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Address to serve traffic on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address to serve TLS on (the virtual services with sslConfig); `off` to disable
    /// [default: 127.0.0.1:8443, skipped with a warning when taken]
    #[arg(long)]
    pub listen_tls: Option<String>,
    /// Admin address (/metrics, /ready, /routes); `off` to disable
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub admin: String,
    /// Worker threads [default: one per core]
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest request body accepted, in bytes
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body: usize,
    /// How long a client's keep-alive connection may sit idle between requests
    #[arg(long, default_value = "75s", value_parser = parse_interval)]
    pub idle_timeout: std::time::Duration,
    /// How long a client may take to send a request's head
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub header_timeout: std::time::Duration,
    /// How long an upgraded connection (a WebSocket) may carry nothing either way
    #[arg(long, default_value = "5m", value_parser = parse_interval)]
    pub stream_idle_timeout: std::time::Duration,
    /// Serve every request with the general HTTP server (no HTTP/1.1 fast path): the same
    /// answers, more CPU per request
    #[arg(long)]
    pub no_fast_path: bool,
    /// The Redis global rate limits (RateLimitConfig) count in, shared by every gateway
    /// pointed at it: redis://HOST:PORT
    #[arg(long)]
    pub redis: Option<String>,
    /// Deny (500) requests a global rate limit cannot count because Redis fails (Gloo's
    /// denyOnFail) [default: let them through, logged and counted in /metrics]
    #[arg(long)]
    pub ratelimit_deny_on_fail: bool,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// How to reach kube upstreams: auto (direct in a cluster, else apiserver), direct
    /// (service DNS), apiserver (the API server's service proxy), port-forward (to a ready pod)
    #[arg(long, value_enum, default_value_t = Connect::Auto)]
    pub connect: Connect,
    /// In kube mode: do not discover upstreams from Services
    #[arg(long)]
    pub no_upstream_discovery: bool,
    /// In kube mode: the Ingress class this gateway serves (spec.ingressClassName or the
    /// kubernetes.io/ingress.class annotation); `none` to ignore Ingresses
    #[arg(long, default_value = "epoxy")]
    pub ingress_class: String,
    /// The address written into the status of the Ingresses served [default: the listen IP]
    #[arg(long)]
    pub ingress_address: Option<String>,
    /// In kube mode: how long a replica leads (writes discovery results) without renewing
    #[arg(long, default_value = "15s", value_parser = parse_interval)]
    pub lease_duration: std::time::Duration,
    /// In kube mode: namespaces whose Services are discovered (repeat or comma-separate) [default: all]
    #[arg(long, value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connect {
    #[default]
    Auto,
    Direct,
    Apiserver,
    PortForward,
}

/// The connector that reaches kube upstreams of cluster `t`.
pub async fn connector(
    t: &crate::kube::Target,
    choice: Connect,
) -> Result<Arc<dyn crate::net::Connector>> {
    use crate::kube::connect::{ApiserverProxy, PortForward};
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    Ok(match choice {
        Connect::Direct => Arc::new(crate::net::ClusterDns),
        Connect::Auto if in_cluster => Arc::new(crate::net::ClusterDns),
        Connect::Auto | Connect::Apiserver => Arc::new(ApiserverProxy::new(t.client().await?)),
        Connect::PortForward => Arc::new(PortForward::new(t.client().await?)),
    })
}

#[derive(Args, Debug, Clone)]
pub struct DiscoveryArgs {
    /// Function discovery mode (Gloo's): blacklist (every upstream unless labelled disabled),
    /// whitelist (only upstreams labelled enabled), disabled
    #[arg(long, value_enum, default_value_t = fds::Mode::Blacklist)]
    pub fds_mode: fds::Mode,
    /// How often function discovery polls, e.g. 15s
    #[arg(long, default_value = "15s", value_parser = parse_interval)]
    pub fds_interval: std::time::Duration,
    /// The largest API document function discovery reads: bytes, or with a unit (64MiB,
    /// 100MB); default 32MiB
    #[arg(long, env = fds::MAX_DOCUMENT_ENV, value_parser = fds::parse_size)]
    pub fds_max_document: Option<usize>,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    crate::api::duration::parse_duration(s)
}

impl DiscoveryArgs {
    pub fn config(&self) -> fds::FdsConfig {
        fds::FdsConfig {
            mode: self.fds_mode,
            poll_interval: self.fds_interval,
            max_document: self.fds_max_document.unwrap_or(fds::DEFAULT_MAX_DOCUMENT),
            ..Default::default()
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ProxyCommand {
    /// Print the URL of the gateway running on this store
    Url {
        /// Which listener (as glooctl's `--port`): http, or https (the TLS listener)
        #[arg(long, default_value = "http", value_parser = ["http", "https"])]
        port: String,
    },
    /// Print the URL of the running gateway's admin listener
    AdminUrl,
}

/// Where a running gateway records its addresses, so that `proxy url` finds it.
pub fn address_file(store: &Path) -> PathBuf {
    store.join(".epoxy-gateway.json")
}

/// Where each running gateway on a store records its address, so that `proxy url` still finds
/// one when another (that wrote `address_file` last) exits.
fn address_dir(store: &Path) -> PathBuf {
    store.join(".epoxy-gateways")
}

/// This process's address records; `remove` takes them back on exit.
#[derive(Clone)]
pub struct AddressRecord {
    store: PathBuf,
}

/// Records where this process's gateway listens: the store's latest record, and its own.
pub fn record_address(
    store: &Path,
    url: &str,
    tls_url: Option<&str>,
    admin: Option<&str>,
) -> Result<AddressRecord> {
    let record = serde_json::json!({"url": url, "url_tls": tls_url, "admin": admin, "pid": std::process::id()});
    let dir = address_dir(store);
    std::fs::create_dir_all(&dir).context("recording the gateway's address")?;
    std::fs::write(
        dir.join(format!("{}.json", std::process::id())),
        record.to_string(),
    )
    .context("recording the gateway's address")?;
    std::fs::write(address_file(store), record.to_string())
        .context("recording the gateway's address")?;
    Ok(AddressRecord {
        store: store.to_path_buf(),
    })
}

impl AddressRecord {
    pub fn remove(&self) {
        let pid = std::process::id() as u64;
        let _ = std::fs::remove_file(address_dir(&self.store).join(format!("{pid}.json")));
        let main = address_file(&self.store);
        let ours = std::fs::read_to_string(&main)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["pid"].as_u64() == Some(pid));
        if ours {
            let _ = std::fs::remove_file(main);
        }
    }
}

/// The record of a gateway running on the store: the latest, else any other still alive.
fn running_record(store: &Path) -> Option<serde_json::Value> {
    let read = |p: &Path| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    let alive = |v: &serde_json::Value| v["pid"].as_u64().is_some_and(pid_alive);
    if let Some(v) = read(&address_file(store)).filter(alive) {
        return Some(v);
    }
    let mut others: Vec<(std::time::SystemTime, serde_json::Value)> =
        std::fs::read_dir(address_dir(store))
            .ok()?
            .flatten()
            .filter_map(|e| {
                let t = e.metadata().ok()?.modified().ok()?;
                Some((t, read(&e.path()).filter(alive)?))
            })
            .collect();
    others.sort_by_key(|(t, _)| *t);
    others.pop().map(|(_, v)| v)
}

pub async fn gateway(g: &Global, a: GatewayArgs) -> Result<()> {
    let store = g.store().await?;
    // In a cluster, the gateway is the controller: it discovers upstreams from Services and
    // writes them (as Gloo's discovery pod does).
    // With several replicas, one (the holder of a Lease) writes discovery results.
    let leader = match g.kube_target() {
        Some(t) => Some(crate::kube::lease::spawn(
            t.client().await?,
            &g.namespace,
            "epoxy-discovery",
            a.lease_duration,
        )),
        None => None,
    };
    let _uds = match g.kube_target() {
        Some(t) if !a.no_upstream_discovery => {
            let client = t.client().await?;
            Some(crate::discovery::uds::spawn(
                client,
                store.clone(),
                g.namespace.clone(),
                a.watch_namespaces.clone(),
                leader.clone(),
            ))
        }
        _ => None,
    };
    let cfg = GatewayConfig {
        listen: a.listen,
        listen_tls: listen_tls(a.listen_tls.as_deref())?,
        admin: if a.admin == "off" {
            None
        } else {
            Some(
                a.admin
                    .parse()
                    .context("--admin: expected HOST:PORT or off")?,
            )
        },
        workers: a
            .workers
            .unwrap_or_else(|| GatewayConfig::default().workers),
        max_body: a.max_body,
        idle_timeout: a.idle_timeout,
        header_read_timeout: a.header_timeout,
        stream_idle_timeout: a.stream_idle_timeout,
        fast_path: !a.no_fast_path,
        redis: a.redis.clone(),
        ratelimit_deny_on_fail: a.ratelimit_deny_on_fail,
    };
    // Ingresses of our class become routes, kept in memory over the cluster's resources.
    let store: Arc<dyn Store> = match g.kube_target() {
        Some(t) if a.ingress_class != "none" => {
            let client = t.client().await?;
            let address = a
                .ingress_address
                .clone()
                .or_else(|| (!a.listen.ip().is_unspecified()).then(|| a.listen.ip().to_string()));
            let routes = crate::discovery::ingress::spawn(
                client,
                a.ingress_class.clone(),
                g.namespace.clone(),
                address,
            );
            Arc::new(crate::store::overlay::OverlayStore::new(store, routes))
        }
        _ => store,
    };
    let mut fds_cfg = a.discovery.config();
    fds_cfg.leader = leader;
    if let Some(t) = g.kube_target() {
        fds_cfg.connector = connector(&t, a.connect).await?;
        tracing::info!(connector = fds_cfg.connector.name(), "kube upstreams");
    }
    serve(store, &g.state_dir(), cfg, fds_cfg, "epoxy gateway").await
}

/// Gloo's default TLS gateway address.
pub const DEFAULT_LISTEN_TLS: &str = "127.0.0.1:8443";

/// The TLS listener's address: the one given (or none for `off`); unsaid, Gloo's default port
/// when it is free (a gateway without TLS virtual services must not fail for want of it).
pub fn listen_tls(asked: Option<&str>) -> Result<Option<SocketAddr>> {
    match asked {
        Some("off") => Ok(None),
        Some(a) => Ok(Some(
            a.parse()
                .context("--listen-tls: expected HOST:PORT or off")?,
        )),
        None => {
            let default: SocketAddr = DEFAULT_LISTEN_TLS.parse()?;
            match std::net::TcpListener::bind(default) {
                Ok(_) => Ok(Some(default)),
                Err(e) => {
                    tracing::warn!(address = %default, error = %e, "TLS listener not started (give --listen-tls)");
                    eprintln!("warning: TLS not served: {default}: {e} (give --listen-tls ADDR)");
                    Ok(None)
                }
            }
        }
    }
}

/// Runs the control loop, function discovery and the gateway on `store` until a signal.
pub async fn serve(
    store: Arc<dyn Store>,
    state_dir: &Path,
    cfg: GatewayConfig,
    fds_cfg: fds::FdsConfig,
    what: &str,
) -> Result<()> {
    let root = state_dir.to_path_buf();
    let mut gw = Gateway::new();
    gw.connector = fds_cfg.connector.clone();
    let mut reports = reconcile::spawn(store.clone(), gw.clone());
    // The store's Gateways (or the default pair) are the listeners bound at the start.
    while reports.borrow_and_update().generation == 0 {
        if reports.changed().await.is_err() {
            break;
        }
    }
    let _discovery = fds::spawn(store.clone(), fds_cfg, Some(fds::state_file(&root)));
    let handle = gw
        .start(&cfg)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let url = handle.url();
    let admin = handle.admin_addr.map(|a| format!("http://{a}"));
    let tls_url = handle.tls_addr.map(|a| format!("https://{a}"));
    let record = record_address(&root, &url, tls_url.as_deref(), admin.as_deref())?;
    // A server must not die because whoever started it closed its output: ignore write errors.
    {
        use std::io::Write;
        let admin_note = admin
            .as_ref()
            .map(|a| format!(" (admin {a})"))
            .unwrap_or_default();
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{what} on {url}{admin_note}");
        for (name, addr) in &handle.listeners {
            let _ = writeln!(out, "listener {name} on {addr}");
        }
        let _ = writeln!(out, "store: {}", root.display());
        let _ = out.flush();
    }
    // Report rejections and unreadable files when they come and go, once each (not again
    // at every reconcile).
    let reporter = tokio::spawn(async move {
        use crate::control::reconcile::Change;
        let mut prev = None;
        while reports.changed().await.is_ok() {
            let r = reports.borrow_and_update().clone();
            for change in r.changes_since(prev.as_deref()) {
                match change {
                    Change::Rejected { key, reason } => {
                        tracing::warn!(resource = %key, %reason, "rejected")
                    }
                    Change::Cleared(key) => tracing::info!(resource = %key, "no longer rejected"),
                    Change::Unreadable(error) => {
                        tracing::warn!(%error, "unreadable file skipped")
                    }
                    Change::Readable(file) => tracing::info!(%file, "file read again"),
                }
            }
            prev = Some(r);
        }
    });
    wait_for_signal().await;
    reporter.abort();
    eprintln!("{what}: draining in-flight requests");
    tokio::task::spawn_blocking(move || handle.shutdown()).await?;
    record.remove();
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn pid_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

pub fn proxy(g: &Global, c: ProxyCommand) -> Result<()> {
    let dir = g.state_dir();
    let none = || {
        anyhow!(
            "no gateway is running on store {} (start one with `epoxy gateway` or `epoxy demo`)",
            dir.display()
        )
    };
    let v = running_record(&dir).ok_or_else(none)?;
    let url = match c {
        ProxyCommand::Url { port } if port == "https" => {
            v["url_tls"].as_str().ok_or_else(|| {
                anyhow!("the gateway running on store {} serves no TLS (start it with --listen-tls ADDR)", dir.display())
            })?
        }
        ProxyCommand::Url { .. } => v["url"].as_str().ok_or_else(none)?,
        ProxyCommand::AdminUrl => v["admin"].as_str().ok_or_else(none)?,
    };
    println!("{url}");
    Ok(())
}
