//! Helpers of the gRPC tests (tests/grpc.rs against grpcio, tests/grpc_tonic.rs against
//! tonic): an upstream opted into discovery, one discovery pass, routes to the `shop`
//! upstream's methods, and JSON calls through the gateway.
#![allow(dead_code)]

use super::gw::Harness;
use epoxy::api::{Kind, ResourceKey};
use epoxy::discovery::fds::{self, FdsConfig};
use epoxy::store::Store;
use serde_json::Value;
use std::time::Duration;

pub fn key(name: &str) -> ResourceKey {
    ResourceKey::new(Kind::Upstream, "gloo-system", name)
}

/// An upstream for the server, opted into discovery by Gloo's label.
pub fn upstream(name: &str, addr: &str) -> String {
    let (a, p) = addr.rsplit_once(':').unwrap();
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: {name}\n  namespace: gloo-system\n  labels: {{discovery.solo.io/function_discovery: enabled}}\nspec:\n  static:\n    hosts: [{{addr: '{a}', port: {p}}}]\n"
    )
}

pub fn cfg() -> FdsConfig {
    FdsConfig {
        mode: fds::Mode::Whitelist,
        probe_timeout: Duration::from_secs(2),
        ..FdsConfig::default()
    }
}

/// Discovers the store's upstreams once and waits until the gateway serves what was written.
pub async fn discover(h: &Harness) -> fds::DiscoveryState {
    let set = h.store.list().await.unwrap().resources;
    let state = fds::poll_once(h.store.as_ref(), &set, &cfg(), &epoxy::net::client(), None).await;
    let mut written = Vec::new();
    for k in state.keys() {
        written.push(h.store.get(k).await.unwrap());
    }
    h.wait_for(&written).await;
    state
}

/// A route on `prefix` calling `service/function` of upstream `shop`.
pub fn route(prefix: &str, service: &str, function: &str, params: &str) -> String {
    format!(
        "    - matchers: [{{prefix: '{prefix}'}}]\n      routeAction:\n        single:\n          upstream: {{name: shop}}\n          destinationSpec:\n            grpc: {{package: shop.v1, service: {service}, function: {function}{params}}}\n"
    )
}

pub async fn call(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Harness::client()
        .request(method, format!("{}{path}", h.url))
        .header("x-tenant", "acme");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}
