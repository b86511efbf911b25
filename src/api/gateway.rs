//! Gloo's `Gateway` (`gateway.solo.io/v1`, gateway.proto): one listener, its address, whether
//! it terminates TLS, and which virtual services it serves. What the gateway makes of it is
//! `crate::gateway::listener`; this module reads and checks it.

use super::resource::{Kind, ResourceKey};
use super::types::{Extra, ResourceRef};
use crate::policy::spec::TokenBucket;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ssl: bool,
    /// Gloo's default is `::` (every address).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bind_address: String,
    #[serde(default)]
    pub bind_port: u32,
    /// Deprecated in Gloo; the PROXY protocol, which epoxy does not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_proxy_proto: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_gateway: Option<HttpGateway>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxy_names: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Gateway.spec.httpGateway`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGateway {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_services: Vec<ResourceRef>,
    /// Labels a virtual service must all carry.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub virtual_service_selector: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_service_namespaces: Vec<String>,
    /// Gloo's `HttpListenerOptions`, checked key by key by `strict`; `httpLocalRatelimit` is
    /// read by [`local_ratelimit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `httpLocalRatelimit` (Gloo's `local_ratelimit.Settings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRatelimitSettings {
    #[serde(default)]
    pub default_limit: Option<TokenBucket>,
    #[serde(default)]
    pub local_rate_limit_per_downstream_connection: Option<bool>,
    #[serde(default)]
    pub enable_x_ratelimit_headers: Option<bool>,
}

/// Where `httpLocalRatelimit` is, for messages.
pub const LOCAL_RATELIMIT_AT: &str = "spec.httpGateway.options.httpLocalRatelimit";

impl GatewaySpec {
    /// The address to bind: `bindAddress` (`::` when empty, as in Gloo) and `bindPort`.
    pub fn address(&self) -> Result<SocketAddr, String> {
        let port = u16::try_from(self.bind_port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                format!(
                    "spec.bindPort: {} is not a port (1 to 65535)",
                    self.bind_port
                )
            })?;
        let host = match self.bind_address.trim() {
            "" => "::",
            h => h.trim_start_matches('[').trim_end_matches(']'),
        };
        let ip: IpAddr = host.parse().map_err(|_| {
            format!(
                "spec.bindAddress: `{}` is not an IP address",
                self.bind_address
            )
        })?;
        Ok(SocketAddr::new(ip, port))
    }

    /// The gateway's `httpLocalRatelimit`, if it has one.
    pub fn local_ratelimit(&self) -> Result<Option<LocalRatelimitSettings>, String> {
        let Some(v) = self
            .http_gateway
            .as_ref()
            .and_then(|h| h.options.as_ref())
            .and_then(|o| o.get("httpLocalRatelimit"))
        else {
            return Ok(None);
        };
        crate::policy::spec::read(LOCAL_RATELIMIT_AT, v).map(Some)
    }

    /// The virtual services it names, resolved in the gateway's namespace (Gloo's rule).
    pub fn virtual_service_refs(&self, namespace: &str) -> Vec<ResourceKey> {
        self.http_gateway
            .iter()
            .flat_map(|h| &h.virtual_services)
            .map(|r| ResourceKey::new(Kind::VirtualService, r.namespace_or(namespace), &r.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(addr: &str, port: u32) -> GatewaySpec {
        GatewaySpec {
            bind_address: addr.into(),
            bind_port: port,
            ..Default::default()
        }
    }

    #[test]
    fn address_defaults_to_every_address_and_needs_a_port() {
        assert_eq!(spec("", 8080).address().unwrap().to_string(), "[::]:8080");
        assert_eq!(
            spec("127.0.0.1", 1).address().unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(
            spec("[::1]", 443).address().unwrap().to_string(),
            "[::1]:443"
        );
        assert!(
            spec("127.0.0.1", 0)
                .address()
                .unwrap_err()
                .contains("bindPort")
        );
        assert!(spec("127.0.0.1", 70000).address().is_err());
        assert!(
            spec("localhost", 80)
                .address()
                .unwrap_err()
                .contains("bindAddress")
        );
    }
}
