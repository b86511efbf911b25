//! The HTTP client every part of epoxy uses to reach upstreams: pooled keep-alive
//! connections, HTTP/1.1 and HTTP/2 (ALPN), TLS through rustls with the ring provider only.

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::Arc;
use std::time::Duration;

pub type Client<B> = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, B>;

fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // The ring provider supports the default versions; this branch is not reached.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    }
}

/// A new client (one per worker thread in the gateway, so pools are not shared across threads).
pub fn client<B>() -> Client<B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    client_keeping(256)
}

/// A client that keeps at most `idle_per_host` idle connections per host. Function discovery
/// keeps none: it polls every upstream once in a while, and a pooled connection to each of
/// a thousand upstreams would hold a thousand sockets and their buffers between polls.
pub fn client_keeping<B>(idle_per_host: usize) -> Client<B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config())
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(idle_per_host)
        .build(https)
}

/// A client for fetching documents (function discovery, `epoxy discover`): redirects followed
/// (at most 10), HTTP/2 by ALPN, TLS with the same ring-only rustls configuration, keeping at
/// most `idle_per_host` idle connections per host. Never on the gateway's request path.
pub fn document_client(idle_per_host: usize) -> Result<reqwest::Client, String> {
    document_client_with(tls_config(), None, idle_per_host)
}

/// A document client with its own TLS configuration (an upstream's `sslConfig`: its root CA
/// and client certificate) and, when the upstream is asked for by a name other than its
/// address (`sni`), that name resolved to the address's IP addresses.
pub fn document_client_with(
    tls: rustls::ClientConfig,
    resolve: Option<(&str, &[std::net::SocketAddr])>,
    idle_per_host: usize,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::limited(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(idle_per_host);
    if let Some((name, addrs)) = resolve {
        builder = builder.resolve_to_addrs(name, addrs);
    }
    builder.build().map_err(|e| {
        format!(
            "cannot build the document client: {}",
            crate::cause::with_root_cause(&e)
        )
    })
}

/// How the gateway and function discovery reach a Kubernetes service (`kube` upstreams):
/// directly by cluster DNS, through the API server's service proxy, or through a port-forward
/// to a pod. The implementations that need a cluster live in `crate::kube::connect`; they hand
/// out a local relay's address, so the gateway and discovery always speak cleartext HTTP to the
/// address they get and never carry the cluster's credentials themselves.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// `direct`, `apiserver` or `port-forward`, for messages.
    fn name(&self) -> &'static str;
    /// The `host:port` where requests for `namespace/service:port` go (cleartext HTTP), or
    /// why they cannot go anywhere.
    fn service(&self, namespace: &str, service: &str, port: u32) -> Result<String, String>;
}

/// In the cluster: the service's cluster DNS name (`NAME.NS.svc.cluster.local:PORT`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterDns;

impl Connector for ClusterDns {
    fn name(&self) -> &'static str {
        "direct"
    }

    fn service(&self, namespace: &str, service: &str, port: u32) -> Result<String, String> {
        Ok(format!("{service}.{namespace}.svc.cluster.local:{port}"))
    }
}

/// The connector used when none is chosen: cluster DNS.
pub fn default_connector() -> Arc<dyn Connector> {
    Arc::new(ClusterDns)
}
