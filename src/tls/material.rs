//! PEM certificates and keys: parsed, matched (the key belongs to the certificate) and
//! described (subject, names, expiry) without ever printing the key.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// Why a certificate or key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("the certificate does not parse: {0}")]
    BadCertificate(String),
    #[error("no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    #[error("the private key is not usable: {0}")]
    BadKey(String),
    #[error("the private key does not match the certificate")]
    KeyMismatch,
}

/// Every certificate of a PEM text, in order (leaf first for a chain).
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut out = Vec::new();
    for c in CertificateDer::pem_slice_iter(pem) {
        let c = c.map_err(|e| TlsError::BadCertificate(e.to_string()))?;
        // A PEM block is not yet a certificate: its DER must parse as X.509.
        x509_parser::parse_x509_certificate(&c)
            .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
        out.push(c);
    }
    if out.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(out)
}

/// The private key of a PEM text.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
        e => TlsError::BadKey(e.to_string()),
    })
}

/// A certificate chain with its key, checked to belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = parse_certs(cert_pem)?;
    let key = parse_key(key_pem)?;
    let signing = super::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey(e.to_string()))?;
    let ck = CertifiedKey::new(certs, signing);
    match ck.keys_match() {
        Ok(()) => Ok(Arc::new(ck)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch)
        }
        // A key type whose public half rustls cannot derive: the handshake will tell.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(ck)),
        Err(e) => Err(TlsError::BadCertificate(e.to_string())),
    }
}

/// What a user wants to know about a certificate: who it names and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub sans: Vec<String>,
    /// The end of validity, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Within this many days of expiry a certificate is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

impl CertInfo {
    /// The leaf (first) certificate of a PEM text.
    pub fn of_pem(pem: &[u8]) -> Result<CertInfo, TlsError> {
        let certs = parse_certs(pem)?;
        CertInfo::of_der(&certs[0])
    }

    pub fn of_der(der: &[u8]) -> Result<CertInfo, TlsError> {
        let (_, c) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = c.subject_alternative_name() {
            for n in &ext.value.general_names {
                match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => sans.push(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            sans.push(std::net::IpAddr::from(a).to_string());
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            sans.push(std::net::IpAddr::from(a).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(CertInfo {
            subject: c.subject().to_string(),
            sans,
            not_after: c.validity().not_after.timestamp(),
        })
    }

    /// Whole days left until expiry (negative once expired).
    pub fn days_left(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (self.not_after - now).div_euclid(86_400)
    }

    /// `the certificate (CN=a) expires in 3 days` within [`EXPIRY_WARNING_DAYS`], or that it
    /// has expired; `None` when it has longer.
    pub fn expiry_warning(&self) -> Option<String> {
        let days = self.days_left();
        if days < 0 {
            Some(format!("the certificate ({}) has expired", self.subject))
        } else if days < EXPIRY_WARNING_DAYS {
            Some(format!(
                "the certificate ({}) expires in {days} days",
                self.subject
            ))
        } else {
            None
        }
    }

    /// The end of validity as RFC 3339 (`2027-01-01T00:00:00Z`).
    pub fn not_after_text(&self) -> String {
        crate::api::time::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.not_after.max(0) as u64),
        )
    }

    /// `CN=a, expires in 30 days`, the few words a listing shows.
    pub fn summary(&self) -> String {
        let days = self.days_left();
        if days < 0 {
            format!("{} (expired)", self.subject)
        } else {
            format!("{} ({days}d left)", self.subject)
        }
    }
}

/// The PEM an `sslConfig` names (a certificate, its key, a root CA), each as it is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Pems {
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub ca: Option<Vec<u8>>,
}

/// Reads the PEM of an `sslConfig`: from its Secret (`tls.crt`, `tls.key`, `ca.crt`), or from
/// its files (each file read is added to `watched`, so that a rotation is noticed). Messages
/// name the field or the secret.
pub fn read_pems(
    secret_ref: Option<&crate::api::ResourceRef>,
    files: Option<&crate::api::ssl::SslFiles>,
    ns: &str,
    set: &crate::api::ResourceSet,
    watched: &mut Vec<std::path::PathBuf>,
) -> Result<Pems, String> {
    use crate::api::secret::{CA_CERT, TLS_CERT, TLS_KEY, lookup_secret};
    match (secret_ref, files) {
        (Some(r), None) => {
            let s = lookup_secret(set, r, ns).map_err(|e| e.to_string())?;
            let mut d = s.decoded().map_err(|e| e.to_string())?;
            Ok(Pems {
                cert: d.remove(TLS_CERT),
                key: d.remove(TLS_KEY),
                ca: d.remove(CA_CERT),
            })
        }
        (None, Some(f)) => {
            let mut read = |p: &Option<String>, what: &str| -> Result<Option<Vec<u8>>, String> {
                let Some(p) = p.as_deref().filter(|p| !p.is_empty()) else {
                    return Ok(None);
                };
                watched.push(std::path::PathBuf::from(p));
                std::fs::read(p)
                    .map(Some)
                    .map_err(|e| format!("sslFiles.{what} `{p}`: {e}"))
            };
            Ok(Pems {
                cert: read(&f.tls_cert, "tlsCert")?,
                key: read(&f.tls_key, "tlsKey")?,
                ca: read(&f.root_ca, "rootCa")?,
            })
        }
        (Some(_), Some(_)) => Err("give secretRef or sslFiles, not both".into()),
        (None, None) => Ok(Pems::default()),
    }
}
