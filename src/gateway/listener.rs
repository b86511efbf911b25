//! Listeners: where the gateway accepts connections and which virtual services each serves.
//!
//! A plain listener serves the virtual services without `sslConfig`, a TLS one those with it
//! (Gloo's rule). A TLS listener has one *chain* per distinct `sslConfig` (as Envoy has one
//! filter chain each): the certificate and TLS settings, chosen by the client's SNI, and the
//! route table of that chain's virtual services only, so that a connection made under one
//! chain's terms (say, without a client certificate) never reaches another chain's routes.
//!
//! The control loop rebuilds the chains on every change; a chain whose certificate cannot be
//! built keeps its last good configuration (its virtual services' status says why). New
//! connections take the chains of the moment; open connections keep theirs.

use super::pipeline::Stage;
use super::pipeline::listener_limit::ListenerLimit;
use super::table::{RouteTable, compile_listener};
use super::telemetry::Registry;
use crate::api::gateway::GatewaySpec;
use crate::api::resource::VirtualService;
use crate::api::ssl::SslConfig;
use crate::api::{Resource, ResourceKey, ResourceSet};
use crate::net::Connector;
use crate::tls::CertInfo;
use crate::tls::material::read_pems;
use crate::tls::server::{Material, build};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// Which virtual services a listener serves (Gloo's `HttpGateway`: a label selector first,
/// else refs, else every one; `namespaces` restricts the selector and "every one", all
/// namespaces when empty or `*`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub refs: Vec<ResourceKey>,
    pub labels: BTreeMap<String, String>,
    pub namespaces: Vec<String>,
}

impl Selection {
    /// Whether the virtual service `key` is selected (whatever its TLS).
    pub fn selects(&self, key: &ResourceKey, vs: &VirtualService) -> bool {
        let in_namespaces = || {
            self.namespaces.is_empty()
                || self
                    .namespaces
                    .iter()
                    .any(|n| n == "*" || *n == key.namespace)
        };
        if !self.labels.is_empty() {
            return in_namespaces()
                && self
                    .labels
                    .iter()
                    .all(|(k, v)| vs.metadata.labels.get(k) == Some(v));
        }
        if !self.refs.is_empty() {
            return self.refs.contains(key);
        }
        in_namespaces()
    }
}

/// A listener's identity and what it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    /// `http`, `https`, or the Gateway resource's key.
    pub name: String,
    /// The address; `None` takes `GatewayConfig::listen` (plain) or `listen_tls` (TLS).
    pub addr: Option<SocketAddr>,
    pub ssl: bool,
    pub select: Selection,
    /// The Gateway resource it comes from (its options are read from the set at each build).
    pub gateway: Option<ResourceKey>,
}

impl ListenerSpec {
    /// Gloo's default install: `gateway-proxy` (plain) and `gateway-proxy-ssl`.
    pub fn default_pair() -> Vec<ListenerSpec> {
        vec![
            ListenerSpec {
                name: "http".into(),
                addr: None,
                ssl: false,
                select: Selection::default(),
                gateway: None,
            },
            ListenerSpec {
                name: "https".into(),
                addr: None,
                ssl: true,
                select: Selection::default(),
                gateway: None,
            },
        ]
    }

    /// Whether it is the same socket as `other` (name, address and TLS): what a changed
    /// Gateway keeps without being bound again.
    pub fn same_socket(&self, other: &ListenerSpec) -> bool {
        self.name == other.name && self.addr == other.addr && self.ssl == other.ssl
    }

    /// The listener of an (accepted) Gateway resource.
    pub fn of_gateway(key: &ResourceKey, g: &GatewaySpec) -> Result<ListenerSpec, String> {
        let h = g.http_gateway.clone().unwrap_or_default();
        Ok(ListenerSpec {
            name: format!("{}.{}", key.namespace, key.name),
            addr: Some(g.address()?),
            ssl: g.ssl,
            select: Selection {
                refs: g.virtual_service_refs(&key.namespace),
                labels: h.virtual_service_selector.into_iter().collect(),
                namespaces: h.virtual_service_namespaces,
            },
            gateway: Some(key.clone()),
        })
    }

    /// The listeners of a configuration: one per Gateway of `set`; with none in the store
    /// (`store_has_gateways` false), Gloo's default pair.
    pub fn of_set(set: &ResourceSet, store_has_gateways: bool) -> Vec<ListenerSpec> {
        if !store_has_gateways {
            return ListenerSpec::default_pair();
        }
        set.iter()
            .filter_map(|(k, r)| match r {
                Resource::Gateway(g) => match ListenerSpec::of_gateway(k, &g.spec) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(gateway = %k, error = %e, "not served");
                        None
                    }
                },
                _ => None,
            })
            .collect()
    }
}

/// One certificate and its settings, with the routes of the virtual services using it.
pub struct Chain {
    /// What makes chains distinct: the `sslConfig` (and its namespace); empty for plain.
    pub key: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub table: Arc<ArcSwap<RouteTable>>,
    pub vhosts: Vec<ResourceKey>,
    /// SNI names; none: the chain for clients that name no other.
    pub sni: Vec<String>,
    pub cert: Option<CertInfo>,
    /// What the configuration was built from, to reuse it while that does not change.
    material: Option<(SslConfig, Material)>,
}

/// A listener's chains, found by SNI.
#[derive(Default)]
pub struct Chains {
    pub list: Vec<Arc<Chain>>,
    exact: HashMap<String, usize>,
    /// (`.example.com`, chain) longest first.
    wildcards: Vec<(String, usize)>,
    default: Option<usize>,
}

impl Chains {
    fn index(list: Vec<Arc<Chain>>) -> Chains {
        let mut c = Chains {
            list,
            ..Default::default()
        };
        for (i, ch) in c.list.iter().enumerate() {
            if ch.sni.is_empty() {
                c.default.get_or_insert(i);
            }
            for d in &ch.sni {
                let d = d.to_ascii_lowercase();
                match d.strip_prefix('*') {
                    Some(suffix) => c.wildcards.push((suffix.to_string(), i)),
                    None => {
                        c.exact.entry(d).or_insert(i);
                    }
                }
            }
        }
        c.wildcards.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        c
    }

    /// The chain for a client's SNI (exact, then the longest wildcard, then the default).
    pub fn for_sni(&self, sni: Option<&str>) -> Option<&Arc<Chain>> {
        let i = sni
            .map(|s| s.to_ascii_lowercase())
            .and_then(|s| {
                self.exact.get(&s).copied().or_else(|| {
                    self.wildcards
                        .iter()
                        .find(|(w, _)| s.ends_with(w.as_str()) && s.len() > w.len())
                        .map(|(_, i)| *i)
                })
            })
            .or(self.default)?;
        self.list.get(i)
    }
}

/// A listener as the gateway runs it. Its socket identity (`spec`'s name, address, TLS) is
/// fixed; which virtual services it serves (`select`) changes with its Gateway.
pub struct Listener {
    pub spec: ListenerSpec,
    pub select: ArcSwap<Selection>,
    pub chains: ArcSwap<Chains>,
}

impl Listener {
    /// A listener with one (plain) chain on `table`, or none yet (TLS).
    pub fn new(spec: ListenerSpec, table: Arc<ArcSwap<RouteTable>>) -> Listener {
        let chains = if spec.ssl {
            Chains::default()
        } else {
            Chains::index(vec![Arc::new(Chain {
                key: String::new(),
                tls: None,
                table,
                vhosts: Vec::new(),
                sni: Vec::new(),
                cert: None,
                material: None,
            })])
        };
        Listener {
            select: ArcSwap::from_pointee(spec.select.clone()),
            spec,
            chains: ArcSwap::from_pointee(chains),
        }
    }

    /// Whether the virtual service `key` binds to this listener now (Gloo: a plain listener
    /// serves those without `sslConfig`, a TLS one those with it).
    pub fn binds(&self, key: &ResourceKey, vs: &VirtualService) -> bool {
        vs.spec.ssl_config.is_some() == self.spec.ssl && self.select.load().selects(key, vs)
    }

    /// The table its plain connections route with (`None` for TLS: one per chain).
    pub fn plain_table(&self) -> Option<Arc<ArcSwap<RouteTable>>> {
        if self.spec.ssl {
            return None;
        }
        self.chains.load().list.first().map(|c| c.table.clone())
    }

    /// A listener that is closed: its open connections route nothing any more.
    pub fn retire(&self, generation: u64) {
        for c in &self.chains.load().list {
            c.table.store(Arc::new(RouteTable::empty(generation)));
        }
    }

    /// Its Gateway's rate limit stage (`httpLocalRatelimit`), built from `set`.
    fn default_limit(
        &self,
        set: &ResourceSet,
        registry: &Registry,
        problems: &mut Vec<BindProblem>,
    ) -> Option<Arc<dyn Stage>> {
        let key = self.spec.gateway.as_ref()?;
        let Some(Resource::Gateway(g)) = set.get(key) else {
            return None;
        };
        let built = g.spec.local_ratelimit().and_then(|s| match s {
            Some(s) => ListenerLimit::build(key, &s, &registry.policy),
            None => Ok(None),
        });
        match built {
            Ok(l) => l.map(|l| Arc::new(l) as Arc<dyn Stage>),
            Err(e) => {
                // Validation refuses this first; never served without the limit asked for.
                problems.push(BindProblem {
                    key: key.clone(),
                    message: e.clone(),
                    error: true,
                });
                Some(Arc::new(crate::policy::build::Broken(e)))
            }
        }
    }
}

/// A problem found while building the listeners, on the virtual service it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindProblem {
    pub key: ResourceKey,
    pub message: String,
    /// An error: the chain is not served (or serves its last good configuration).
    pub error: bool,
}

/// What building the listeners found: problems, and the certificate files to watch.
#[derive(Debug, Default)]
pub struct Built {
    pub problems: Vec<BindProblem>,
    pub files: Vec<PathBuf>,
    pub routes: usize,
}

/// The (modification time, length) of each file, to notice a rotated certificate.
pub fn fingerprint(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// Compiles every listener's chains from an accepted set.
pub fn build_all(
    listeners: &[Arc<Listener>],
    set: &ResourceSet,
    registry: &Registry,
    generation: u64,
    connector: &dyn Connector,
) -> Built {
    let mut out = Built::default();
    for l in listeners {
        let limit = l.default_limit(set, registry, &mut out.problems);
        if l.spec.ssl {
            build_tls(l, set, registry, generation, connector, limit, &mut out);
        } else {
            let table = compile_listener(
                set,
                registry,
                generation,
                connector,
                &|k, vs| l.binds(k, vs),
                limit,
            );
            out.routes += table.route_count();
            out.files.extend(table.watched.iter().cloned());
            for p in &table.problems {
                tracing::warn!(problem = %p, "route not compiled");
            }
            if let Some(ch) = l.chains.load().list.first() {
                ch.table.store(Arc::new(table));
            }
        }
    }
    out.files.sort();
    out.files.dedup();
    out
}

fn build_tls(
    l: &Listener,
    set: &ResourceSet,
    registry: &Registry,
    generation: u64,
    connector: &dyn Connector,
    limit: Option<Arc<dyn Stage>>,
    out: &mut Built,
) {
    // Virtual services by their sslConfig (identical ones share a chain, as in Gloo).
    let mut groups: BTreeMap<String, (SslConfig, String, Vec<ResourceKey>)> = BTreeMap::new();
    for (key, r) in set {
        let Resource::VirtualService(vs) = r else {
            continue;
        };
        let Some(ssl) = &vs.spec.ssl_config else {
            continue;
        };
        if !l.binds(key, vs) {
            continue;
        }
        let id = format!(
            "{}/{}",
            key.namespace,
            serde_json::to_string(ssl).unwrap_or_default()
        );
        groups
            .entry(id)
            .or_insert_with(|| (ssl.clone(), key.namespace.clone(), Vec::new()))
            .2
            .push(key.clone());
    }
    let old = l.chains.load();
    let mut list = Vec::new();
    for (id, (ssl, ns, vhosts)) in groups {
        let prev = old.list.iter().find(|c| c.key == id);
        let table = prev
            .map(|c| c.table.clone())
            .unwrap_or_else(|| Arc::new(ArcSwap::from_pointee(RouteTable::default())));
        let problem = |message: String, error: bool| {
            vhosts
                .iter()
                .map(|k| BindProblem {
                    key: k.clone(),
                    message: message.clone(),
                    error,
                })
                .collect::<Vec<_>>()
        };
        let material = material(&ssl, &ns, set, &mut out.files);
        let built = match material {
            Ok(m) => match prev.and_then(|c| c.material.as_ref()) {
                // Unchanged: the same configuration (and its session cache) goes on.
                Some((s, pm)) if *s == ssl && *pm == m => prev
                    .and_then(|c| c.tls.clone().map(|t| (t, c.cert.clone(), m.clone())))
                    .ok_or_else(|| "no configuration".to_string()),
                _ => build(&ssl, &m).map(|b| {
                    for w in b.warnings {
                        out.problems
                            .extend(problem(format!("sslConfig.{w}"), false));
                    }
                    (b.config, CertInfo::of_pem(&m.cert).ok(), m)
                }),
            },
            Err(e) => Err(e),
        };
        let (tls, cert, material) = match built {
            Ok((t, c, m)) => (t, c, Some((ssl.clone(), m))),
            Err(e) => match prev.and_then(|c| c.tls.clone().map(|t| (t, c))) {
                // The last good certificate keeps serving.
                Some((t, c)) => {
                    out.problems.extend(problem(
                        format!("sslConfig: {e}; the last good certificate keeps serving"),
                        true,
                    ));
                    (t, c.cert.clone(), c.material.clone())
                }
                None => {
                    out.problems
                        .extend(problem(format!("sslConfig: {e}; not served"), true));
                    continue;
                }
            },
        };
        if let Some(w) = cert.as_ref().and_then(CertInfo::expiry_warning) {
            out.problems
                .extend(problem(format!("sslConfig: {w}"), false));
        }
        let keep: std::collections::HashSet<&ResourceKey> = vhosts.iter().collect();
        let compiled = compile_listener(
            set,
            registry,
            generation,
            connector,
            &|k, _| keep.contains(k),
            limit.clone(),
        );
        out.routes += compiled.route_count();
        out.files.extend(compiled.watched.iter().cloned());
        table.store(Arc::new(compiled));
        list.push(Arc::new(Chain {
            key: id,
            tls: Some(tls),
            table,
            sni: ssl.sni_domains.clone(),
            vhosts,
            cert,
            material,
        }));
    }
    // Connections of a chain that is gone route nothing any more.
    for c in &old.list {
        if !list.iter().any(|n| n.key == c.key) {
            c.table.store(Arc::new(RouteTable::empty(generation)));
        }
    }
    l.chains.store(Arc::new(Chains::index(list)));
}

/// The PEM of an `sslConfig`: from its Secret, or from its files (noted in `files`); a
/// listener needs a certificate and its key.
pub fn material(
    ssl: &SslConfig,
    ns: &str,
    set: &ResourceSet,
    files: &mut Vec<PathBuf>,
) -> Result<Material, String> {
    if ssl.secret_ref.is_none() && ssl.ssl_files.is_none() {
        return Err("needs a certificate: secretRef or sslFiles".into());
    }
    let p = read_pems(
        ssl.secret_ref.as_ref(),
        ssl.ssl_files.as_ref(),
        ns,
        set,
        files,
    )?;
    let whose = || match &ssl.secret_ref {
        Some(r) => format!("secret {}", r.name),
        None => "sslFiles".to_string(),
    };
    match (p.cert, p.key) {
        (Some(cert), Some(key)) => Ok(Material {
            cert,
            key,
            ca: p.ca,
        }),
        (None, _) => Err(format!(
            "{} has no certificate (`tls.crt`, tlsCert)",
            whose()
        )),
        (_, None) => Err(format!("{} has no key (`tls.key`, tlsKey)", whose())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_resources;

    fn set(yaml: &str) -> ResourceSet {
        parse_resources(yaml, "t")
            .unwrap()
            .into_iter()
            .map(|r| (r.key(), r))
            .collect()
    }

    const VS: &str = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: apps, labels: {team: a}}\nspec: {virtualHost: {domains: [a]}}\n---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: b, namespace: other, labels: {team: a}}\nspec: {virtualHost: {domains: [b]}}\n";

    /// The virtual services a Gateway's listener selects, by name.
    fn selected(gateway_spec: &str) -> Vec<String> {
        let s = set(&format!(
            "{VS}---\napiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: g, namespace: apps}}\nspec:\n  bindPort: 8080\n{gateway_spec}"
        ));
        let specs = ListenerSpec::of_set(&s, true);
        assert_eq!(specs.len(), 1);
        let l = Listener::new(
            specs[0].clone(),
            Arc::new(ArcSwap::from_pointee(RouteTable::default())),
        );
        s.iter()
            .filter_map(|(k, r)| match r {
                Resource::VirtualService(vs) if l.binds(k, vs) => Some(k.name.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn gloos_selection_priority() {
        assert_eq!(selected(""), ["a", "b"], "no httpGateway: every one");
        assert_eq!(
            selected("  httpGateway: {virtualServices: [{name: a}]}\n"),
            ["a"],
            "refs in the Gateway's namespace"
        );
        // The selector wins over refs, and namespaces restrict it.
        assert_eq!(
            selected(
                "  httpGateway: {virtualServices: [{name: a}], virtualServiceSelector: {team: a}, virtualServiceNamespaces: [other]}\n"
            ),
            ["b"]
        );
        assert_eq!(
            selected("  httpGateway: {virtualServiceNamespaces: ['*']}\n"),
            ["a", "b"]
        );
        assert!(
            selected("  ssl: true\n").is_empty(),
            "no sslConfig: plain only"
        );
    }

    #[test]
    fn the_default_pair_only_without_gateways() {
        let s = set(VS);
        assert_eq!(
            ListenerSpec::of_set(&s, false),
            ListenerSpec::default_pair()
        );
        // Gateways in the store, none accepted: nothing is served on --listen.
        assert!(ListenerSpec::of_set(&s, true).is_empty());
    }
}
