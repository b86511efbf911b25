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

use super::table::{RouteTable, compile_only};
use super::telemetry::Registry;
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

/// Which virtual services a listener serves (Gloo's `Gateway`: refs, else a label selector,
/// else every one in `namespaces`, all namespaces when empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub refs: Vec<ResourceKey>,
    pub labels: BTreeMap<String, String>,
    pub namespaces: Vec<String>,
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
            },
            ListenerSpec {
                name: "https".into(),
                addr: None,
                ssl: true,
                select: Selection::default(),
            },
        ]
    }

    /// Whether the virtual service `key` binds to this listener.
    pub fn binds(&self, key: &ResourceKey, vs: &VirtualService) -> bool {
        if vs.spec.ssl_config.is_some() != self.ssl {
            return false;
        }
        let s = &self.select;
        if !s.refs.is_empty() {
            return s.refs.contains(key);
        }
        if !s.labels.is_empty() {
            return s
                .labels
                .iter()
                .all(|(k, v)| vs.metadata.labels.get(k) == Some(v));
        }
        s.namespaces.is_empty() || s.namespaces.iter().any(|n| n == "*" || *n == key.namespace)
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

/// A listener as the gateway runs it.
pub struct Listener {
    pub spec: ListenerSpec,
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
            spec,
            chains: ArcSwap::from_pointee(chains),
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
        if l.spec.ssl {
            build_tls(l, set, registry, generation, connector, &mut out);
        } else {
            let table = compile_only(set, registry, generation, connector, &|k, vs| {
                l.spec.binds(k, vs)
            });
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
        if !l.spec.binds(key, vs) {
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
        let compiled = compile_only(set, registry, generation, connector, &|k, _| {
            keep.contains(k)
        });
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
