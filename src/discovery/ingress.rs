//! Ingresses (`networking.k8s.io/v1`) as routes, as Gloo's ingress mode does, and right where
//! Gloo is not: `pathType` Exact and Prefix are honoured (Prefix matches whole path elements:
//! `/foo` matches `/foo` and `/foo/bar`, never `/foobar`), `spec.ingressClassName` and the
//! `kubernetes.io/ingress.class` annotation are both read, and `defaultBackend` becomes a
//! catch-all route. The routes live in memory (the Ingress is their source); the Ingress's
//! status gets the gateway's address.

use crate::api::naming::{sanitize_name, upstream_name};
use crate::api::sort::sort_routes;
use crate::api::{
    Destination, Kind, Matcher, Object, Resource, ResourceRef, ResourceSet, Route, RouteAction,
    VirtualHost, VirtualServiceSpec,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use kube::api::{Api, Patch, PatchParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Whether an Ingress is this gateway's: its class (field or annotation) is `class`.
pub fn is_ours(ing: &Ingress, class: &str) -> bool {
    let field = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let annotation = ing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION))
        .map(String::as_str);
    field == Some(class) || annotation == Some(class)
}

fn destination(ns: &str, backend: &IngressBackend, write_ns: &str) -> Option<RouteAction> {
    let svc = backend.service.as_ref()?;
    let port = svc.port.as_ref()?.number?;
    Some(RouteAction {
        single: Some(Destination {
            upstream: Some(ResourceRef {
                name: upstream_name(ns, &svc.name, port.max(0) as u32),
                namespace: Some(write_ns.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Matchers for an Ingress path with Kubernetes semantics.
fn matchers(path: &str, path_type: &str) -> Vec<Matcher> {
    let path = if path.is_empty() { "/" } else { path };
    match path_type {
        "Exact" => vec![Matcher {
            exact: Some(path.to_string()),
            ..Default::default()
        }],
        "Prefix" if path != "/" => {
            let p = path.trim_end_matches('/');
            vec![
                Matcher {
                    exact: Some(p.to_string()),
                    ..Default::default()
                },
                Matcher {
                    prefix: Some(format!("{p}/")),
                    ..Default::default()
                },
            ]
        }
        _ => vec![Matcher {
            prefix: Some(path.to_string()),
            ..Default::default()
        }],
    }
}

/// The virtual services the Ingresses of class `class` make, in `write_ns`.
pub fn translate(ingresses: &[Ingress], class: &str, write_ns: &str) -> ResourceSet {
    let mut by_host: BTreeMap<String, (Vec<Route>, Option<Route>)> = BTreeMap::new();
    let mut sorted: Vec<&Ingress> = ingresses.iter().filter(|i| is_ours(i, class)).collect();
    sorted.sort_by_key(|i| (i.metadata.namespace.clone(), i.metadata.name.clone()));
    for ing in sorted {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let id = format!(
            "ingress/{ns}/{}",
            ing.metadata.name.as_deref().unwrap_or("")
        );
        let Some(spec) = &ing.spec else { continue };
        let default = spec
            .default_backend
            .as_ref()
            .and_then(|b| destination(ns, b, write_ns))
            .map(|a| Route {
                matchers: vec![Matcher {
                    prefix: Some("/".into()),
                    ..Default::default()
                }],
                route_action: Some(Box::new(a)),
                name: Some(format!("{id}#default")),
                ..Default::default()
            });
        let mut hosts_seen = Vec::new();
        for (ri, rule) in spec.rules.iter().flatten().enumerate() {
            let host = rule
                .host
                .clone()
                .unwrap_or_else(|| "*".into())
                .to_ascii_lowercase();
            hosts_seen.push(host.clone());
            let entry = by_host.entry(host).or_default();
            for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let Some(action) = destination(ns, &p.backend, write_ns) else {
                    tracing::warn!(ingress = %id, "a backend with a named port or a resource backend is not supported; path skipped");
                    continue;
                };
                entry.0.push(Route {
                    matchers: matchers(p.path.as_deref().unwrap_or("/"), &p.path_type),
                    route_action: Some(Box::new(action)),
                    name: Some(format!("{id}#{ri}.{pi}")),
                    ..Default::default()
                });
            }
            if entry.1.is_none() {
                entry.1 = default.clone();
            }
        }
        if hosts_seen.is_empty()
            && let Some(d) = default
        {
            by_host.entry("*".into()).or_default().1.get_or_insert(d);
        }
    }
    let mut out = ResourceSet::new();
    for (host, (mut routes, default)) in by_host {
        // Kubernetes: the longest matching path wins; exact before prefix.
        sort_routes(&mut routes);
        routes.extend(default);
        let name = format!(
            "ingress-{}",
            sanitize_name(if host == "*" { "any" } else { &host })
        );
        let vs = Object::new(
            Kind::VirtualService,
            write_ns,
            &name,
            VirtualServiceSpec {
                virtual_host: VirtualHost {
                    domains: vec![host],
                    routes,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let r = Resource::VirtualService(vs);
        out.insert(r.key(), r);
    }
    out
}

/// Watches Ingresses and publishes the virtual services they make; writes `address` into the
/// status of each Ingress of ours.
pub fn spawn(
    client: kube::Client,
    class: String,
    write_ns: String,
    address: Option<String>,
) -> watch::Receiver<Arc<ResourceSet>> {
    let (tx, rx) = watch::channel(Arc::new(ResourceSet::new()));
    let mut ingresses = crate::kube::state::watch_state(vec![Api::<Ingress>::all(client.clone())]);
    tokio::spawn(async move {
        let id = |i: &Ingress| {
            format!(
                "{}/{}",
                i.metadata.namespace.as_deref().unwrap_or(""),
                i.metadata.name.as_deref().unwrap_or("")
            )
        };
        let mut reported: BTreeMap<String, String> = BTreeMap::new();
        while ingresses.changed().await.is_ok() {
            let Some(list) = ingresses.borrow_and_update().clone() else {
                continue;
            };
            let _ = tx.send(Arc::new(translate(&list, &class, &write_ns)));
            if let Some(addr) = &address {
                for ing in list.iter().filter(|i| is_ours(i, &class)) {
                    let key = id(ing);
                    if reported.get(&key) == Some(addr) {
                        continue;
                    }
                    let ns = ing
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into());
                    let name = ing.metadata.name.clone().unwrap_or_default();
                    let api: Api<Ingress> = Api::namespaced(client.clone(), &ns);
                    let status = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": addr}]}}});
                    match api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                    {
                        Ok(_) => {
                            reported.insert(key, addr.clone());
                        }
                        Err(e) => {
                            tracing::warn!(ingress = %key, error = %e, "could not write the ingress status")
                        }
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(yaml: &str) -> Ingress {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn translates_paths_hosts_classes_and_default_backends() {
        let ours = ingress(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop, namespace: default}\nspec:\n  ingressClassName: epoxy\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n  rules:\n  - host: shop.example.com\n    http:\n      paths:\n      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}\n      - {path: /api/health, pathType: Exact, backend: {service: {name: health, port: {number: 81}}}}\n",
        );
        let by_annotation = ingress(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: old, namespace: team, annotations: {kubernetes.io/ingress.class: epoxy}}\nspec:\n  rules:\n  - http:\n      paths:\n      - {path: /, pathType: ImplementationSpecific, backend: {service: {name: legacy, port: {number: 80}}}}\n",
        );
        let other = ingress(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: nginx, namespace: default}\nspec: {ingressClassName: nginx}\n",
        );
        let set = translate(&[ours, by_annotation, other], "epoxy", "gloo-system");
        assert_eq!(set.len(), 2);
        let shop = set
            .values()
            .find(|r| r.name() == "ingress-shop-example-com")
            .unwrap();
        let routes = shop.routes().unwrap();
        // Exact first, then the element-wise prefix (two matchers), then the default backend.
        assert_eq!(routes[0].matchers[0].exact.as_deref(), Some("/api/health"));
        assert_eq!(routes[1].matchers[0].exact.as_deref(), Some("/api"));
        assert_eq!(routes[1].matchers[1].prefix.as_deref(), Some("/api/"));
        assert_eq!(
            routes[1]
                .route_action
                .as_ref()
                .unwrap()
                .single
                .as_ref()
                .unwrap()
                .upstream
                .as_ref()
                .unwrap()
                .name,
            "default-api-8080"
        );
        assert_eq!(routes[2].matchers[0].prefix.as_deref(), Some("/"));
        assert_eq!(
            routes[2]
                .route_action
                .as_ref()
                .unwrap()
                .single
                .as_ref()
                .unwrap()
                .upstream
                .as_ref()
                .unwrap()
                .name,
            "default-web-80"
        );
        let any = set.values().find(|r| r.name() == "ingress-any").unwrap();
        assert_eq!(
            any.routes().unwrap()[0]
                .route_action
                .as_ref()
                .unwrap()
                .single
                .as_ref()
                .unwrap()
                .upstream
                .as_ref()
                .unwrap()
                .name,
            "team-legacy-80"
        );
        // What the gateway compiles accepts them.
        assert!(
            crate::api::validate(&set)
                .iter()
                .all(|p| p.severity != crate::api::Severity::Error)
        );
    }
}
