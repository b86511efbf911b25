//! A virtual service's `sslConfig` as a rustls server configuration: its certificate, the
//! protocol versions and cipher suites it allows, ALPN, and client certificates (mTLS).

use super::material::{TlsError, certified_key, parse_certs};
use crate::api::ssl::{SslConfig, SslParameters, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use std::sync::Arc;

/// The PEM a configuration is built from (from a Secret or from files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// The CA that signs client certificates (`ca.crt`, `rootCa`).
    pub ca: Option<Vec<u8>>,
}

/// A server configuration and what could not be honoured exactly but is no weaker (warnings).
pub struct Built {
    pub config: Arc<ServerConfig>,
    pub warnings: Vec<String>,
}

/// The protocol versions between `min` and `max` that rustls offers (1.2 and 1.3).
pub fn versions(
    p: Option<&SslParameters>,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let read = |v: Option<&serde_json::Value>| v.map(TlsVersion::parse).transpose();
    let min = read(p.and_then(|p| p.minimum_protocol_version.as_ref()))
        .map_err(|e| format!("parameters.minimumProtocolVersion: {e}"))?
        .unwrap_or(TlsVersion::Auto);
    let max = read(p.and_then(|p| p.maximum_protocol_version.as_ref()))
        .map_err(|e| format!("parameters.maximumProtocolVersion: {e}"))?
        .unwrap_or(TlsVersion::Auto);
    if matches!(min, TlsVersion::V1_0 | TlsVersion::V1_1) {
        warnings.push(
            "parameters.minimumProtocolVersion: epoxy offers TLS 1.2 and 1.3 only; older versions are refused".into(),
        );
    }
    if matches!(max, TlsVersion::V1_0 | TlsVersion::V1_1) {
        return Err("parameters.maximumProtocolVersion: epoxy does not serve TLS below 1.2".into());
    }
    let max = if max == TlsVersion::Auto {
        TlsVersion::V1_3
    } else {
        max
    };
    let mut out = Vec::new();
    if min <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        out.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::V1_3 {
        out.push(&rustls::version::TLS13);
    }
    if out.is_empty() {
        return Err("parameters: the minimum protocol version is above the maximum".into());
    }
    Ok(out)
}

/// OpenSSL's (Envoy's) name of each suite rustls offers with ring.
fn openssl_name(s: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite::*;
    match s {
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        _ => "",
    }
}

/// The ring provider with the cipher suites `names` allows. As in Envoy, the list restricts
/// TLS 1.2; TLS 1.3 suites are restricted only when the list names some. Names epoxy does not
/// offer are warnings (the rest is no weaker than asked); none offered at all is an error.
pub fn provider_with(
    names: &[String],
    warnings: &mut Vec<String>,
) -> Result<CryptoProvider, String> {
    let mut p = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(p);
    }
    // Envoy's lists may group equal preferences: `[A|B]`.
    let wanted: Vec<&str> = names
        .iter()
        .flat_map(|n| n.trim_matches(|c| c == '[' || c == ']').split('|'))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let known: Vec<&str> = p
        .cipher_suites
        .iter()
        .map(|s| openssl_name(s.suite()))
        .collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !known.contains(w))
        .collect();
    if !unknown.is_empty() {
        warnings.push(format!(
            "parameters.cipherSuites: epoxy does not offer {} (left out)",
            unknown.join(", ")
        ));
    }
    let names_tls13 = wanted.iter().any(|w| w.starts_with("TLS_"));
    p.cipher_suites.retain(|s| {
        let tls13 = matches!(s, rustls::SupportedCipherSuite::Tls13(_));
        (tls13 && !names_tls13) || wanted.contains(&openssl_name(s.suite()))
    });
    if p.cipher_suites.is_empty() {
        return Err("parameters.cipherSuites: none of these suites is one epoxy offers".into());
    }
    Ok(p)
}

/// The ALPN protocols to offer: Gloo's default `h2`, `http/1.1`; `allow_empty` for none.
pub fn alpn(asked: &[String], warnings: &mut Vec<String>) -> Vec<Vec<u8>> {
    if asked.is_empty() {
        return vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    if asked.iter().any(|a| a == "allow_empty") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for a in asked {
        match a.as_str() {
            "h2" | "http/1.1" => out.push(a.as_bytes().to_vec()),
            other => warnings.push(format!(
                "alpnProtocols: epoxy does not serve `{other}` (left out)"
            )),
        }
    }
    out
}

/// Builds the configuration of one `sslConfig` with its material.
pub fn build(ssl: &SslConfig, m: &Material) -> Result<Built, String> {
    let mut warnings = Vec::new();
    let key = certified_key(&m.cert, &m.key).map_err(|e| e.to_string())?;
    let versions = versions(ssl.parameters.as_ref(), &mut warnings)?;
    let names = ssl
        .parameters
        .as_ref()
        .map(|p| p.cipher_suites.as_slice())
        .unwrap_or(&[]);
    let provider = Arc::new(provider_with(names, &mut warnings)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("parameters: {e}"))?;
    let mutual = m.ca.is_some() && ssl.one_way_tls != Some(true);
    if !ssl.verify_subject_alt_name.is_empty() && !mutual {
        return Err(
            "verifySubjectAltName needs client certificates: a root CA (ca.crt or sslFiles.rootCa) and no oneWayTls"
                .into(),
        );
    }
    let builder = match (&m.ca, mutual) {
        (Some(ca), true) => {
            let mut roots = RootCertStore::empty();
            for c in parse_certs(ca).map_err(|e| format!("root CA: {e}"))? {
                roots.add(c).map_err(|e| format!("root CA: {e}"))?;
            }
            let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("root CA: {e}"))?;
            let verifier: Arc<dyn ClientCertVerifier> = if ssl.verify_subject_alt_name.is_empty() {
                inner
            } else {
                Arc::new(SanCheck {
                    inner,
                    names: ssl.verify_subject_alt_name.clone(),
                })
            };
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(Fixed(key)));
    config.alpn_protocols = alpn(&ssl.alpn_protocols, &mut warnings);
    Ok(Built {
        config: Arc::new(config),
        warnings,
    })
}

/// Always the one certificate (the listener chose the configuration by SNI already).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A client verifier that also wants one of `names` among the certificate's SANs.
#[derive(Debug)]
struct SanCheck {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

/// Whether the certificate names one of `names` (DNS names, IP addresses, URIs, e-mail).
pub fn has_san(cert: &[u8], names: &[String]) -> Result<bool, TlsError> {
    let (_, c) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    let Ok(Some(ext)) = c.subject_alternative_name() else {
        return Ok(false);
    };
    use x509_parser::extensions::GeneralName::*;
    Ok(ext.value.general_names.iter().any(|n| {
        let s = match n {
            DNSName(d) | URI(d) | RFC822Name(d) => d.to_string(),
            IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .map(|a| std::net::IpAddr::from(a).to_string())
                    .unwrap_or_default(),
                16 => <[u8; 16]>::try_from(*b)
                    .map(|a| std::net::IpAddr::from(a).to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        !s.is_empty() && names.iter().any(|want| want.eq_ignore_ascii_case(&s))
    }))
}

impl ClientCertVerifier for SanCheck {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match has_san(end_entity, &self.names) {
            Ok(true) => Ok(ok),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
