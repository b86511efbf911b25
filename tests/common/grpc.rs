//! Helpers of the gRPC tests (tests/grpc.rs against grpcio, tests/grpc_tonic.rs against
//! tonic): an upstream opted into discovery, one discovery pass, routes to the `shop`
//! upstream's methods, and JSON calls through the gateway.
#![allow(dead_code)]

use super::gw::Harness;
use epoxy::api::{Kind, Resource, ResourceKey};
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
    let state = fds::poll_once(
        h.store.as_ref(),
        &set,
        &cfg(),
        &epoxy::net::document_client(0).unwrap(),
        None,
    )
    .await;
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

/// Routes to the methods of shop.proto on upstream `shop`: `/pets/{id}` GetPet, `/list`
/// ListPets, `/create` CreatePet, `/admin` Ping.
pub fn shop_routes() -> String {
    [
        route(
            "/pets/",
            "Pets",
            "GetPet",
            ", parameters: {path: '/pets/{id}'}",
        ),
        route("/list", "Pets", "ListPets", ""),
        route("/create", "Pets", "CreatePet", ""),
        route("/admin", "Admin", "Ping", ""),
    ]
    .concat()
}

/// A server-streaming call asking for newline-delimited JSON: the messages, one a line.
pub async fn call_ndjson(h: &Harness, path: &str, body: Value) -> Vec<Value> {
    let resp = Harness::client()
        .post(format!("{}{path}", h.url))
        .header("accept", "application/x-ndjson")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}: {l}")))
        .collect()
}

/// `shop` discovered on `addr` (shop.proto's server): checks the pass found its 4 methods and
/// wrote HTTP/2 on; the upstream and its services as (package, service, methods).
pub async fn discover_shop(
    h: &Harness,
    addr: &str,
) -> (
    epoxy::api::resource::Upstream,
    Vec<(String, String, Vec<String>)>,
) {
    h.apply(&upstream("shop", addr)).await;
    let state = discover(h).await;
    let s = &state[&key("shop")];
    assert_eq!(s.last_error, None);
    assert_eq!(s.kind.as_deref(), Some("grpc"));
    assert_eq!(s.functions, 4, "GetPet, ListPets, CreatePet, Ping");
    let Ok(Resource::Upstream(u)) = h.store.get(&key("shop")).await else {
        panic!("no upstream")
    };
    assert_eq!(u.spec.use_http2, Some(true));
    let grpc = u.spec.service_spec().unwrap().grpc.clone().unwrap();
    assert!(
        !grpc.descriptors.is_empty(),
        "the descriptors are kept on the upstream"
    );
    let services = grpc
        .grpc_services
        .iter()
        .map(|s| {
            (
                s.package_name.clone(),
                s.service_name.clone(),
                s.function_names.clone(),
            )
        })
        .collect();
    (u, services)
}
