//! An HTTPS client for tests (rustls over tokio, hyper on top): a chosen SNI, ALPN, protocol
//! versions and client certificate, and what the server presented.
#![allow(dead_code)]

use super::certs::Leaf;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;

/// How to connect.
#[derive(Clone, Default)]
pub struct Client {
    /// PEM of the CA to trust.
    pub ca: String,
    pub sni: String,
    pub alpn: Vec<&'static str>,
    pub client_cert: Option<Leaf>,
    /// Only TLS 1.2 (else 1.2 and 1.3).
    pub tls12_only: bool,
}

/// An open HTTPS connection.
pub struct Conn {
    pub alpn: Option<String>,
    /// The subject of the certificate the server presented.
    pub subject: String,
    /// The certificate the server presented (DER), to tell two of one subject apart.
    pub cert: Vec<u8>,
    pub version: rustls::ProtocolVersion,
    sni: String,
    send: Sender,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Client {
    pub fn new(ca: &str, sni: &str) -> Client {
        Client {
            ca: ca.to_string(),
            sni: sni.to_string(),
            alpn: vec!["http/1.1"],
            ..Default::default()
        }
    }

    fn config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut c = match &self.client_cert {
            Some(l) => b
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(l.cert.as_bytes())
                        .map(|c| c.unwrap())
                        .collect(),
                    PrivateKeyDer::from_pem_slice(l.key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        c.alpn_protocols = self.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        c
    }

    /// Connects and completes the handshake; the error is the handshake's (or the first
    /// read's: a TLS 1.3 server refuses a client certificate after the client thinks it is done).
    pub async fn connect(&self, addr: SocketAddr) -> Result<Conn, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.config()));
        let name = ServerName::try_from(self.sni.clone()).map_err(|e| e.to_string())?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, session) = tls.get_ref();
        let alpn = session
            .alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned());
        let version = session.protocol_version().unwrap();
        let cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let subject = x509_parser::parse_x509_certificate(&cert)
            .map(|(_, x)| x.subject().to_string())
            .unwrap_or_default();
        let io = TokioIo::new(tls);
        let send = if alpn.as_deref() == Some("h2") {
            let (s, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("https client (h2): {e:?}");
                }
            });
            Sender::H2(s)
        } else {
            let (s, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("https client (http/1.1): {e:?}");
                }
            });
            Sender::H1(s)
        };
        Ok(Conn {
            alpn,
            subject,
            cert,
            version,
            sni: self.sni.clone(),
            send,
        })
    }

    /// One GET on a new connection: (status, body), or the connection's error.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
        self.connect(addr).await?.get(path).await
    }
}

impl Conn {
    /// A GET on this connection, with `Host: SNI`.
    pub async fn get_host(&mut self, host: &str, path: &str) -> Result<(u16, String), String> {
        let req = hyper::Request::get(format!("https://{host}{path}"))
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = match &mut self.send {
            Sender::H1(s) => {
                let mut req = req;
                *req.uri_mut() = path.parse().unwrap();
                // The connection takes the next request only once it is done with the last.
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                let (mut parts, body) = req.into_parts();
                parts.headers.remove("host");
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(hyper::Request::from_parts(parts, body))
                    .await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// A GET on this connection, with `Host` the name it was made for.
    pub async fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        let host = self.sni.clone();
        self.get_host(&host, path).await
    }
}

/// A server configuration for a test upstream: `leaf`'s certificate, ALPN `h2` and `http/1.1`,
/// and client certificates signed by `client_ca` required when given.
pub fn server_config(leaf: &Leaf, client_ca: Option<&str>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    let mut c = b
        .with_single_cert(
            CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
                .map(|c| c.unwrap())
                .collect(),
            PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
        )
        .unwrap();
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(c)
}
