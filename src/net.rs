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
        .pool_max_idle_per_host(256)
        .build(https)
}

/// How to reach a Kubernetes service from outside the cluster: the API server's service proxy
/// (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/...`) with the API server's credentials.
#[derive(Debug, Clone)]
pub struct ApiserverProxy {
    /// `host:port` of the API server.
    pub authority: String,
    pub tls: bool,
    pub authorization: Option<http::HeaderValue>,
}

impl ApiserverProxy {
    pub fn service_path(&self, namespace: &str, service: &str, port: u32) -> String {
        format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy")
    }

    /// The base URL a client uses for a service.
    pub fn service_url(&self, namespace: &str, service: &str, port: u32) -> String {
        format!(
            "{}://{}{}",
            if self.tls { "https" } else { "http" },
            self.authority,
            self.service_path(namespace, service, port)
        )
    }
}
