//! TLS: certificates and keys read from PEM (Secrets, files), the listener's certificate
//! choice by SNI, and the upstream connector's configuration. rustls with the ring provider.

pub mod client;
pub mod describe;
pub mod material;
pub mod server;

pub use material::{CertInfo, TlsError, certified_key, parse_certs, parse_key};

/// The one crypto provider epoxy uses (ring; never aws-lc-rs, which would clash at start).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
