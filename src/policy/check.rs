//! Validation of policies, by building them as the gateway would (`build`): a virtual
//! service's or route table's options, AuthConfigs and RateLimitConfigs. Each finding is a
//! field path and a reason.

use super::build::{Level, auth_config, build_route, rate_limit_config};
use super::runtime::Runtime;
use crate::api::{Kind, Resource, ResourceKey, ResourceRef, ResourceSet, Route};
use std::sync::{Arc, OnceLock};

/// Where the policies being checked keep their state (nothing here is ever started).
fn runtime() -> &'static Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(Arc::default)
}

/// `host:port` of the first endpoint of the upstream `r` names (for `jwks.remote.upstreamRef`).
pub fn upstream_address(set: &ResourceSet, r: &ResourceRef, ns: &str) -> Option<String> {
    let key = ResourceKey::new(Kind::Upstream, r.namespace_or(ns), &r.name);
    let Some(Resource::Upstream(u)) = set.get(&key) else {
        return None;
    };
    if let Some(s) = &u.spec.static_ {
        let h = s.hosts.first()?;
        return Some(if h.addr.contains(':') && !h.addr.starts_with('[') {
            format!("[{}]:{}", h.addr, h.port)
        } else {
            format!("{}:{}", h.addr, h.port)
        });
    }
    let k = u.spec.kube.as_ref()?;
    Some(format!(
        "{}.{}.svc.cluster.local:{}",
        k.service_name, k.service_namespace, k.service_port
    ))
}

/// Splits `path: reason`.
fn split(e: &str) -> (String, String) {
    match e.split_once(": ") {
        Some((p, r)) => (p.to_string(), r.to_string()),
        None => (String::new(), e.to_string()),
    }
}

/// The policy problems of a resource, as (path, reason).
pub fn problems(r: &Resource, set: &ResourceSet) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let ns = r.namespace();
    let resolve = |u: &ResourceRef| upstream_address(set, u, ns);
    let route_level = |base: &str,
                       i: usize,
                       route: &Route|
     -> (String, Option<serde_json::Map<String, serde_json::Value>>) {
        (
            format!("{base}[{i}].options"),
            route.options.as_ref().map(|o| o.extra.0.clone()),
        )
    };
    let mut check = |vhost: &Level<'_>, routes: &[Route], base: &str| {
        if routes.is_empty() || vhost.options.is_some() {
            let none = Level {
                at: "",
                options: None,
                namespace: ns,
                id: "",
            };
            if let Err(e) = build_route(vhost, &none, set, runtime(), &resolve) {
                out.push(split(&e.0));
                return;
            }
        }
        for (i, route) in routes.iter().enumerate() {
            let (at, opts) = route_level(base, i, route);
            if opts.as_ref().is_none_or(|o| o.is_empty()) {
                continue;
            }
            let level = Level {
                at: &at,
                options: opts.as_ref(),
                namespace: ns,
                id: "",
            };
            if let Err(e) = build_route(vhost, &level, set, runtime(), &resolve) {
                out.push(split(&e.0));
            }
        }
    };
    match r {
        Resource::VirtualService(vs) => {
            let vh = &vs.spec.virtual_host;
            let vhost = Level {
                at: "spec.virtualHost.options",
                options: vh.options.as_ref(),
                namespace: ns,
                id: "",
            };
            check(&vhost, &vh.routes, "spec.virtualHost.routes");
        }
        Resource::RouteTable(rt) => {
            let vhost = Level {
                at: "",
                options: None,
                namespace: ns,
                id: "",
            };
            check(&vhost, &rt.spec.routes, "spec.routes");
        }
        Resource::AuthConfig(_) => {
            if let Err(e) = auth_config(r, set) {
                out.push(split(&e));
            }
        }
        Resource::RateLimitConfig(_) => {
            if let Err(e) = rate_limit_config(r) {
                out.push(split(&e));
            }
        }
        Resource::Upstream(_)
        | Resource::UpstreamGroup(_)
        | Resource::Secret(_)
        | Resource::Gateway(_) => {}
    }
    // One finding per path (every route repeats a virtual host's problem).
    out.sort();
    out.dedup();
    out
}

/// Options that protect a route (auth, JWT, rate limits).
const PROTECTION: [&str; 9] = [
    "jwt",
    "jwtStaged",
    "jwtProvidersStaged",
    "extauth",
    "ratelimit",
    "rateLimitConfigs",
    "rateLimitEarlyConfigs",
    "rateLimitRegularConfigs",
    "ratelimitBasic",
];

/// Whether a resource asks for protection: a virtual service or route table for auth or rate
/// limits anywhere, a virtual service or upstream for TLS. Rejected, it is not served as an
/// older version, which may lack them.
pub fn asks_protection(r: &Resource) -> bool {
    let asks = |o: Option<&serde_json::Map<String, serde_json::Value>>| {
        o.is_some_and(|o| PROTECTION.iter().any(|k| o.contains_key(*k)))
    };
    let routes = match r {
        Resource::Upstream(u) => return u.spec.ssl_config.is_some(),
        Resource::VirtualService(vs) => {
            if vs.spec.ssl_config.is_some() || asks(vs.spec.virtual_host.options.as_ref()) {
                return true;
            }
            &vs.spec.virtual_host.routes
        }
        Resource::RouteTable(rt) => &rt.spec.routes,
        _ => return false,
    };
    routes
        .iter()
        .any(|route| asks(route.options.as_ref().map(|o| &o.extra.0)))
}
