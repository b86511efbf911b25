//! Where a tester request goes. A path (`/pets`) goes to the gateway's plain listener; a URL
//! (`http://pets.example.com/pets`) too, with its host as the `Host`; an `https://` URL goes
//! to the TLS listener with its host as the SNI name (which picks the virtual service's
//! certificate and routes), trusting the CA given with `--ca` (else the public roots).

use crate::gateway::Gateway;
use crate::gateway::table::RouteTable;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The CA the tester trusts for HTTPS (`--ca FILE`): where it was read from, and its PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TesterCa {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

impl TesterCa {
    /// Reads and checks the file (at least one PEM certificate), naming it when it fails.
    pub fn read(path: PathBuf) -> Result<TesterCa, String> {
        let pem = std::fs::read(&path).map_err(|e| format!("--ca {}: {e}", path.display()))?;
        crate::tls::parse_certs(&pem).map_err(|e| format!("--ca {}: {e}", path.display()))?;
        Ok(TesterCa { path, pem })
    }
}

/// The gateway as the tester reaches it.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// The plain listener's URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// The TLS listener's address, when one is served.
    pub tls: Option<SocketAddr>,
    pub ca: Option<Arc<TesterCa>>,
}

/// A request's destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The plain listener: the full URI to ask, and the host the URL named (if it was one).
    Plain {
        uri: http::Uri,
        host: Option<String>,
    },
    /// The TLS listener at `addr`, with SNI `sni`; `authority` as the URL gave it; `path` with
    /// its query.
    Tls {
        addr: SocketAddr,
        sni: String,
        authority: String,
        path: String,
    },
}

impl Target {
    /// The destination of the tester's path field.
    pub fn resolve(field: &str, ep: &Endpoint) -> Result<Target, String> {
        let lower = field.get(..8).unwrap_or("").to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let uri: http::Uri = field.parse().map_err(|e| format!("URL: {e}"))?;
            let authority = uri
                .authority()
                .ok_or_else(|| "the URL names no host".to_string())?
                .as_str()
                .to_ascii_lowercase();
            let host = uri.host().unwrap_or_default().to_ascii_lowercase();
            let path = uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string();
            if uri.scheme_str() == Some("https") {
                let addr = ep.tls.ok_or_else(|| {
                    "the gateway serves no TLS here (start it with a TLS listener)".to_string()
                })?;
                return Ok(Target::Tls {
                    addr,
                    sni: host.trim_matches(|c| c == '[' || c == ']').to_string(),
                    authority,
                    path,
                });
            }
            let uri = format!("{}{path}", ep.url)
                .parse()
                .map_err(|e| format!("path: {e}"))?;
            return Ok(Target::Plain {
                uri,
                host: Some(authority),
            });
        }
        if !field.starts_with('/') {
            return Err("the path must start with / (or be an http:// or https:// URL)".into());
        }
        let uri = format!("{}{field}", ep.url)
            .parse()
            .map_err(|e| format!("path: {e}"))?;
        Ok(Target::Plain { uri, host: None })
    }

    /// The path (and query) asked.
    pub fn path(&self) -> &str {
        match self {
            Target::Plain { uri, .. } => uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            Target::Tls { path, .. } => path,
        }
    }

    /// The authority the gateway routes on: the `Host` header, else the URL's host, else the
    /// gateway's own address.
    pub fn authority(&self, headers: &http::HeaderMap) -> String {
        if let Some(h) = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            return h.to_string();
        }
        match self {
            Target::Plain {
                host: Some(host), ..
            } => host.clone(),
            Target::Plain { uri, .. } => uri.authority().map(|a| a.to_string()).unwrap_or_default(),
            Target::Tls { authority, .. } => authority.clone(),
        }
    }

    /// The route table that will see the request: the plain listener's, or the one of the TLS
    /// chain its SNI name selects (none: no certificate for that name).
    pub fn table(&self, gateway: &Gateway) -> Option<Arc<RouteTable>> {
        match self {
            Target::Plain { .. } => Some(gateway.table.load_full()),
            Target::Tls { sni, .. } => gateway
                .listeners
                .list()
                .iter()
                .filter(|l| l.spec.ssl)
                .find_map(|l| {
                    l.chains
                        .load()
                        .for_sni(Some(sni))
                        .map(|c| c.table.load_full())
                }),
        }
    }

    /// The same request as curl arguments (before the method, headers and body).
    pub fn curl_args(&self, ca: Option<&TesterCa>) -> Vec<String> {
        match self {
            Target::Plain { uri, host } => {
                let mut out = Vec::new();
                if let Some(h) = host {
                    out.push("-H".into());
                    out.push(format!("Host: {h}"));
                }
                out.push(uri.to_string());
                out
            }
            Target::Tls {
                addr,
                sni,
                authority,
                path,
            } => {
                let mut out = Vec::new();
                if let Some(ca) = ca {
                    out.push("--cacert".into());
                    out.push(ca.path.display().to_string());
                }
                let port = authority
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .unwrap_or(443);
                out.push("--connect-to".into());
                out.push(format!("{sni}:{port}:{}:{}", addr.ip(), addr.port()));
                out.push(format!("https://{authority}{path}"));
                out
            }
        }
    }
}

/// The client configuration: the given CA, else the public roots; HTTP/1.1.
fn client_config(ca: Option<&TesterCa>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for c in CertificateDer::pem_slice_iter(&ca.pem) {
                let c = c.map_err(|e| format!("--ca {}: {e}", ca.path.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("--ca {}: {e}", ca.path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut c = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}

/// The tester's HTTP client (reqwest, never on the gateway's request path): redirects are
/// shown, not followed (the tester is there to see what the gateway answers); for an
/// `https://` target, the TLS listener at `addr` is reached under the URL's host name (the
/// SNI name), trusting `ca` (else the public roots).
pub fn client(
    tls: Option<(&str, SocketAddr, Option<&TesterCa>)>,
) -> Result<reqwest::Client, String> {
    // The TLS configuration is always given (ring's, as everywhere in epoxy): reqwest has no
    // provider of its own here.
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .tls_backend_preconfigured(client_config(tls.and_then(|(_, _, ca)| ca))?);
    if let Some((sni, addr, _)) = tls
        && sni.parse::<std::net::IpAddr>().is_err()
    {
        b = b.resolve(sni, addr);
    }
    b.build().map_err(|e| format!("the tester's client: {e}"))
}

/// The URL a TLS target is asked at: the SNI name at the listener's port (resolved to the
/// listener's address by [`client`]); an IP address names no SNI, so the listener's own.
pub fn tls_url(sni: &str, addr: SocketAddr, path: &str) -> String {
    if sni.parse::<std::net::IpAddr>().is_ok() {
        format!("https://{addr}{path}")
    } else {
        format!("https://{sni}:{}{path}", addr.port())
    }
}

/// What a failed request says, down to its cause (a TLS handshake's included), with the hint
/// an unknown issuer calls for.
pub fn request_error(e: &reqwest::Error, ca: Option<&TesterCa>) -> String {
    if e.is_timeout() {
        return "no response within 30s".into();
    }
    let why = crate::cause::with_root_cause(e);
    let hint = if ca.is_none() && why.contains("UnknownIssuer") {
        " (trust the gateway's CA with --ca FILE)"
    } else {
        ""
    };
    format!("request failed: {why}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint {
            url: "http://127.0.0.1:8080".into(),
            tls: Some("127.0.0.1:8443".parse().unwrap()),
            ca: Some(Arc::new(TesterCa {
                path: "/tmp/ca.pem".into(),
                pem: Vec::new(),
            })),
        }
    }

    #[test]
    fn a_path_goes_to_the_plain_listener_and_an_https_url_to_the_tls_one() {
        let t = Target::resolve("/pets?x=1", &ep()).unwrap();
        assert_eq!(t.path(), "/pets?x=1");
        assert_eq!(t.authority(&http::HeaderMap::new()), "127.0.0.1:8080");
        assert_eq!(t.curl_args(None), ["http://127.0.0.1:8080/pets?x=1"]);

        let t = Target::resolve("http://pets.example.com/pets", &ep()).unwrap();
        assert_eq!(t.authority(&http::HeaderMap::new()), "pets.example.com");
        assert_eq!(
            t.curl_args(None),
            ["-H", "Host: pets.example.com", "http://127.0.0.1:8080/pets"]
        );

        let t = Target::resolve("HTTPS://Pets.example.com/api/pets/1", &ep()).unwrap();
        assert_eq!(
            t,
            Target::Tls {
                addr: "127.0.0.1:8443".parse().unwrap(),
                sni: "pets.example.com".into(),
                authority: "pets.example.com".into(),
                path: "/api/pets/1".into(),
            }
        );
        let mut h = http::HeaderMap::new();
        assert_eq!(t.authority(&h), "pets.example.com");
        h.insert(http::header::HOST, "other.example.com".parse().unwrap());
        assert_eq!(t.authority(&h), "other.example.com", "the Host header wins");
        let ca = ep().ca.unwrap();
        assert_eq!(
            t.curl_args(Some(&ca)),
            [
                "--cacert",
                "/tmp/ca.pem",
                "--connect-to",
                "pets.example.com:443:127.0.0.1:8443",
                "https://pets.example.com/api/pets/1"
            ]
        );
    }

    #[test]
    fn what_cannot_be_sent_says_why() {
        let mut plain_only = ep();
        plain_only.tls = None;
        let e = Target::resolve("https://a.example.com/", &plain_only).unwrap_err();
        assert!(e.contains("serves no TLS"), "{e}");
        let e = Target::resolve("pets", &ep()).unwrap_err();
        assert!(e.contains("must start with /"), "{e}");
        let e = Target::resolve("https:///x", &ep()).unwrap_err();
        assert!(e.contains("URL"), "{e}");
    }
}
