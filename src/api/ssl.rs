//! Gloo's TLS settings (gloo/api/v1/ssl/ssl.proto): a virtual service's `sslConfig`
//! (termination) and an upstream's `sslConfig` (origination), field for field.

use super::types::{Extra, ResourceRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Certificates and keys read from the gateway's file system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SslFiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Protocol versions and cipher suites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SslParameters {
    /// `TLS_AUTO`, `TLSv1_0` ... `TLSv1_3` (or the enum's number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_protocol_version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_protocol_version: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecdh_curves: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A TLS protocol version as Gloo names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Auto,
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

impl TlsVersion {
    /// Reads Gloo's enum, by name or number.
    pub fn parse(v: &Value) -> Result<TlsVersion, String> {
        Ok(match v {
            Value::String(s) => match s.as_str() {
                "TLS_AUTO" => TlsVersion::Auto,
                "TLSv1_0" => TlsVersion::V1_0,
                "TLSv1_1" => TlsVersion::V1_1,
                "TLSv1_2" => TlsVersion::V1_2,
                "TLSv1_3" => TlsVersion::V1_3,
                other => {
                    return Err(format!(
                        "`{other}` is not a TLS version (TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3)"
                    ));
                }
            },
            Value::Number(n) => match n.as_u64() {
                Some(0) => TlsVersion::Auto,
                Some(1) => TlsVersion::V1_0,
                Some(2) => TlsVersion::V1_1,
                Some(3) => TlsVersion::V1_2,
                Some(4) => TlsVersion::V1_3,
                _ => return Err(format!("{n} is not a TLS version (0-4)")),
            },
            other => return Err(format!("{other} is not a TLS version")),
        })
    }
}

/// A virtual service's TLS termination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SslConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_files: Option<SslFiles>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_subject_alt_name: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<SslParameters>,
    /// Empty: `h2`, `http/1.1`; `[allow_empty]`: no ALPN at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_way_tls: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An upstream's TLS origination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSslConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_files: Option<SslFiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_subject_alt_name: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<SslParameters>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
