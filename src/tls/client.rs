//! An upstream's `sslConfig` as a rustls client configuration: the roots its certificate is
//! verified against, the names it must carry, the client certificate to present, versions,
//! cipher suites and ALPN.
//!
//! Names: the certificate must be valid for the name the gateway connects with (`sni`, else
//! the host's address), unless `verifySubjectAltName` is given: then one of those names must be
//! among its SANs instead (Envoy's rule, which lets an upstream reached by IP present its
//! service name). Roots: `rootCa` / `ca.crt`, else the public web roots: a certificate is never
//! accepted unverified.

use super::material::{Pems, certified_key, parse_certs};
use super::server::{has_san, provider_with, versions};
use crate::api::ssl::UpstreamSslConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// How the gateway speaks TLS to one upstream.
#[derive(Debug)]
pub struct UpstreamTls {
    pub config: Arc<ClientConfig>,
    /// The name sent and verified (`sni`); `None`: each host's own address.
    pub sni: Option<String>,
}

impl UpstreamTls {
    /// The server name for a connection to `host` (`host:port`).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = match &self.sni {
            Some(s) => s.as_str(),
            None => host_only(host),
        };
        ServerName::try_from(name.to_string()).map_err(|e| format!("server name `{name}`: {e}"))
    }
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_only(host_port: &str) -> &str {
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The configuration for `ssl` (none: plain `useTls`, public roots) with its PEM; `http2`
/// offers `h2` by ALPN first. Warnings are what could not be honoured exactly but is no weaker.
pub fn build(
    ssl: Option<&UpstreamSslConfig>,
    pems: &Pems,
    http2: bool,
    warnings: &mut Vec<String>,
) -> Result<UpstreamTls, String> {
    let params = ssl.and_then(|s| s.parameters.as_ref());
    let versions = versions(params, warnings)?;
    let suites = params.map(|p| p.cipher_suites.as_slice()).unwrap_or(&[]);
    let provider = Arc::new(provider_with(suites, warnings)?);
    let mut roots = RootCertStore::empty();
    match &pems.ca {
        Some(ca) => {
            for c in parse_certs(ca).map_err(|e| format!("root CA: {e}"))? {
                roots.add(c).map_err(|e| format!("root CA: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let verifier = Arc::new(Verifier {
        roots: Arc::new(roots),
        names: ssl
            .map(|s| s.verify_subject_alt_name.clone())
            .unwrap_or_default(),
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("parameters: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&pems.cert, &pems.key) {
        (Some(cert), Some(key)) => {
            let ck = certified_key(cert, key).map_err(|e| format!("client certificate: {e}"))?;
            builder
                .with_client_auth_cert(
                    ck.cert.clone(),
                    super::parse_key(key).map_err(|e| e.to_string())?,
                )
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err("a client certificate without its key".into()),
        (None, Some(_)) => return Err("a client key without its certificate".into()),
    };
    let asked = ssl.map(|s| s.alpn_protocols.as_slice()).unwrap_or(&[]);
    config.alpn_protocols = if asked.is_empty() {
        if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        }
    } else {
        asked
            .iter()
            .filter(|a| matches!(a.as_str(), "h2" | "http/1.1"))
            .map(|a| a.as_bytes().to_vec())
            .collect()
    };
    Ok(UpstreamTls {
        config: Arc::new(config),
        sni: ssl.and_then(|s| s.sni.clone()).filter(|s| !s.is_empty()),
    })
}

/// Verifies an upstream's certificate: its chain up to `roots`, then its name (see the module).
#[derive(Debug)]
struct Verifier {
    roots: Arc<RootCertStore>,
    /// `verifySubjectAltName`: one of these must be a SAN (instead of the server name).
    names: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.names.is_empty() {
            rustls::client::verify_server_name(&cert, server_name)?;
        } else if !has_san(end_entity, &self.names).unwrap_or(false) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_sni_else_the_host() {
        let tls = build(None, &Pems::default(), false, &mut Vec::new()).unwrap();
        assert_eq!(
            tls.server_name("pets.example.com:443").unwrap(),
            ServerName::try_from("pets.example.com").unwrap()
        );
        assert_eq!(
            tls.server_name("[::1]:8443").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        let ssl = UpstreamSslConfig {
            sni: Some("api.internal".into()),
            ..Default::default()
        };
        let tls = build(Some(&ssl), &Pems::default(), true, &mut Vec::new()).unwrap();
        assert_eq!(
            tls.server_name("10.0.0.1:443").unwrap(),
            ServerName::try_from("api.internal").unwrap()
        );
        assert_eq!(
            tls.config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn half_a_client_certificate_is_an_error() {
        let pems = Pems {
            key: Some(b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_vec()),
            ..Default::default()
        };
        let e = build(None, &pems, false, &mut Vec::new()).unwrap_err();
        assert!(e.contains("without its certificate"), "{e}");
        let pems = Pems {
            ca: Some(b"not a pem".to_vec()),
            ..Default::default()
        };
        let e = build(None, &pems, false, &mut Vec::new()).unwrap_err();
        assert!(e.starts_with("root CA:"), "{e}");
    }
}
