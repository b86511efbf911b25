//! The compiled route table: immutable, built from a validated snapshot, swapped in whole.
//!
//! Virtual hosts are found by domain (exact, then the longest wildcard suffix, then the longest
//! wildcard prefix, then `*`). Within a host, routes keep their order and the first match wins,
//! but a request does not walk every route: exact paths and prefixes are indexed by hash, so
//! only the routes that can match (plus regex routes) are checked, in order.

use super::calls::{Call, GrpcCall, LambdaCall};
use super::dial::Dial;
use super::function::{FunctionCall, Templates};
use super::matcher::{CompiledMatcher, PathCond, RequestHead};
use super::pipeline::fault::Faults;
use super::pipeline::{Policies, Stage};
use super::telemetry::{Registry, Stats};
use crate::api::duration::parse_duration;
use crate::api::naming::route_identity;
use crate::api::validate::{effective_domains, redirect_status};
use crate::api::{
    AwsDestination, Destination, GrpcDestination, Kind, Resource, ResourceKey, ResourceRef,
    ResourceSet, Route, Transformation, WeightedDestination,
};
use crate::grpc::transcode::Transcoder;
use crate::net::{ClusterDns, Connector};
use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use regex::Regex;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Envoy's default route timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// How the gateway reaches an upstream's hosts.
#[derive(Debug)]
pub struct UpstreamTarget {
    pub name: Arc<str>,
    /// `host:port` of each endpoint, tried in round robin.
    pub hosts: Vec<Arc<str>>,
    /// What `autoHostRewrite` sends as `Host` for each endpoint (by position): its configured
    /// name (a kube service's DNS name, however it is reached), without a default port.
    pub authorities: Vec<Arc<str>>,
    /// How connections to it are opened: TLS, HTTP/2.
    pub dial: Dial,
    next: AtomicUsize,
    pub stats: Arc<Stats>,
}

impl UpstreamTarget {
    pub fn new(
        name: Arc<str>,
        hosts: Vec<Arc<str>>,
        authorities: Vec<Arc<str>>,
        dial: Dial,
        stats: Arc<Stats>,
    ) -> UpstreamTarget {
        UpstreamTarget {
            name,
            hosts,
            authorities,
            dial,
            next: AtomicUsize::new(0),
            stats,
        }
    }

    /// The next endpoint, round robin.
    pub fn pick(&self) -> Option<&Arc<str>> {
        if self.hosts.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.hosts.len();
        self.hosts.get(i)
    }

    /// The `Host` that `autoHostRewrite` gives a request sent to `host` (one of `hosts`).
    pub fn authority_of<'a>(&'a self, host: &'a Arc<str>) -> &'a str {
        self.hosts
            .iter()
            .position(|h| Arc::ptr_eq(h, host))
            .and_then(|i| self.authorities.get(i))
            .map_or(host, |a| a)
    }
}

/// A `Host` value for `name` on `port`: the port left out when it is the scheme's default.
fn authority(name: &str, port: u32, tls: bool) -> Arc<str> {
    let default = if tls { 443 } else { 80 };
    if port == default {
        Arc::from(
            host_port(name, port)
                .rsplit_once(':')
                .map_or(name, |(h, _)| h),
        )
    } else {
        Arc::from(host_port(name, port).as_str())
    }
}

/// One weighted destination; `problem` says why it cannot be served (answered with 503).
#[derive(Debug, Clone)]
pub struct Target {
    pub weight: u32,
    pub upstream: Option<Arc<UpstreamTarget>>,
    pub function: Option<Arc<FunctionCall>>,
    /// A gRPC method or Lambda function (served by hyper, never the fast path).
    pub call: Option<Arc<Call>>,
    pub problem: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
pub struct Forward {
    pub targets: Vec<Target>,
    pub total_weight: u32,
}

impl Forward {
    /// Picks a target by weight (shares of the sum).
    pub fn pick(&self) -> &Target {
        if self.targets.len() == 1 || self.total_weight == 0 {
            return &self.targets[0];
        }
        let mut n = fastrand::u32(0..self.total_weight);
        for t in &self.targets {
            if n < t.weight {
                return t;
            }
            n -= t.weight;
        }
        &self.targets[self.targets.len() - 1]
    }
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub host: Option<String>,
    pub path: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub https: bool,
    pub strip_query: bool,
    pub status: StatusCode,
}

#[derive(Debug, Clone)]
pub enum Action {
    Forward(Forward),
    Redirect(Redirect),
    Direct { status: StatusCode, body: Bytes },
}

#[derive(Debug, Clone)]
pub struct Retry {
    pub num: u32,
    pub per_try: Option<Duration>,
    pub on_connect_failure: bool,
    pub on_5xx: bool,
    pub on_gateway_error: bool,
    pub on_reset: bool,
    pub statuses: Vec<u16>,
    /// The back-off's base and cap (Envoy: 25 ms and 10 times the base).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// Envoy's default retry back-off base.
pub const BACKOFF_BASE: Duration = Duration::from_millis(25);

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix_rewrite: None,
            regex_rewrite: None,
            host_rewrite: None,
            auto_host_rewrite: false,
            timeout: None,
            retry: None,
            request_add: Vec::new(),
            request_remove: Vec::new(),
            response_add: Vec::new(),
            response_remove: Vec::new(),
            shadow: None,
            websocket: true,
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            num: 0,
            per_try: None,
            on_connect_failure: false,
            on_5xx: false,
            on_gateway_error: false,
            on_reset: false,
            statuses: Vec::new(),
            backoff_base: BACKOFF_BASE,
            backoff_max: BACKOFF_BASE * 10,
        }
    }
}

impl Retry {
    /// The pause before retry `n` (1 for the first): fully jittered, random in
    /// [0, base * 2^(n-1)), capped at the maximum (Envoy's back-off). Both transports use it.
    pub fn backoff(&self, n: u32) -> Duration {
        let ceiling = self
            .backoff_base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.backoff_max);
        ceiling.mul_f64(fastrand::f64())
    }

    pub fn retry_status(&self, s: u16) -> bool {
        (self.on_5xx && s >= 500)
            || (self.on_gateway_error && matches!(s, 502..=504))
            || self.statuses.contains(&s)
    }
}

#[derive(Debug, Clone)]
pub struct HeaderAdd {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub append: bool,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub prefix_rewrite: Option<String>,
    /// The pattern and its substitution in the regex crate's syntax (`${1}`, converted from
    /// Envoy's `\1` when the table is compiled).
    pub regex_rewrite: Option<(Regex, String)>,
    pub host_rewrite: Option<HeaderValue>,
    /// `autoHostRewrite`: `Host` becomes the upstream endpoint's name.
    pub auto_host_rewrite: bool,
    pub timeout: Option<Duration>,
    pub retry: Option<Retry>,
    pub request_add: Vec<HeaderAdd>,
    pub request_remove: Vec<HeaderName>,
    pub response_add: Vec<HeaderAdd>,
    pub response_remove: Vec<HeaderName>,
    pub shadow: Option<(Arc<UpstreamTarget>, f64)>,
    /// Clients may upgrade to WebSocket (Gloo's default; a route's `upgrades` can turn it off).
    pub websocket: bool,
}

#[derive(Debug)]
pub struct CompiledRoute {
    /// `gloo-system/default#3`, or the route's name.
    pub id: Arc<str>,
    pub matchers: Vec<CompiledMatcher>,
    pub action: Action,
    pub options: Options,
    /// The stages in front of the action (auth, limits, faults); `None` for most routes.
    pub policies: Option<Arc<Policies>>,
    pub stats: Arc<Stats>,
}

#[derive(Debug, Default)]
struct RouteIndex {
    /// (route, matcher) in table order.
    entries: Vec<(u32, u16)>,
    exact: FastMap<String, SmallVec<[u32; 2]>>,
    exact_ci: FastMap<String, SmallVec<[u32; 2]>>,
    prefix: FastMap<String, SmallVec<[u32; 2]>>,
    prefix_ci: FastMap<String, SmallVec<[u32; 2]>>,
    /// Distinct prefix lengths, ascending.
    prefix_lens: Vec<usize>,
    has_ci: bool,
    /// Entries that must always be checked (regex).
    always: Vec<u32>,
}

#[derive(Debug)]
pub struct VirtualHostTable {
    pub key: ResourceKey,
    pub domains: Vec<String>,
    pub routes: Vec<CompiledRoute>,
    index: RouteIndex,
}

/// The result of routing a request: the route and the matcher that matched.
pub struct Matched<'t> {
    pub vhost: &'t VirtualHostTable,
    pub route: &'t CompiledRoute,
    pub matcher: &'t CompiledMatcher,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    pub generation: u64,
    pub vhosts: Vec<VirtualHostTable>,
    exact_domains: FastMap<String, usize>,
    /// (`.example.com`, vhost) longest first.
    suffix_wildcards: Vec<(String, usize)>,
    /// (`example.`, vhost) longest first.
    prefix_wildcards: Vec<(String, usize)>,
    catch_all: Option<usize>,
    /// What could not be compiled (should be rare: validation comes first).
    pub problems: Vec<String>,
    /// Certificate files the upstreams' TLS was built from, watched for a rotation.
    pub watched: Vec<std::path::PathBuf>,
}

impl RouteTable {
    /// A table that routes nothing, as of `generation`.
    pub fn empty(generation: u64) -> RouteTable {
        RouteTable {
            generation,
            ..Default::default()
        }
    }

    /// The virtual host for a `Host` (with or without the port).
    pub fn vhost(&self, host: &str) -> Option<&VirtualHostTable> {
        let host_l;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host_l = host.to_ascii_lowercase();
            host_l.as_str()
        } else {
            host
        };
        // A fully qualified name (`admin.example.`) is the same host (RFC 3986, 3.2.2).
        let host_fq;
        let host = match strip_port(host).strip_suffix('.') {
            Some(name) if !name.is_empty() => {
                host_fq = format!("{name}{}", &host[name.len() + 1..]);
                host_fq.as_str()
            }
            _ => host,
        };
        let bare = strip_port(host);
        let i = self
            .exact_domains
            .get(host)
            .or_else(|| self.exact_domains.get(bare))
            .copied()
            .or_else(|| {
                self.suffix_wildcards
                    .iter()
                    .find(|(s, _)| bare.ends_with(s.as_str()) && bare.len() > s.len())
                    .map(|(_, i)| *i)
            })
            .or_else(|| {
                self.prefix_wildcards
                    .iter()
                    .find(|(p, _)| bare.starts_with(p.as_str()) && bare.len() > p.len())
                    .map(|(_, i)| *i)
            })
            .or(self.catch_all)?;
        self.vhosts.get(i)
    }

    /// Routes a request: the first route (in order) whose matcher accepts it.
    pub fn route<'t>(&'t self, req: &RequestHead<'_>) -> Option<Matched<'t>> {
        let vh = self.vhost(req.authority)?;
        vh.find(req).map(|(route, matcher)| Matched {
            vhost: vh,
            route,
            matcher,
        })
    }

    pub fn route_count(&self) -> usize {
        self.vhosts.iter().map(|v| v.routes.len()).sum()
    }
}

/// Host without `:port` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return &host[..end + 2];
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl VirtualHostTable {
    fn find<'t>(
        &'t self,
        req: &RequestHead<'_>,
    ) -> Option<(&'t CompiledRoute, &'t CompiledMatcher)> {
        let idx = &self.index;
        let mut cand: SmallVec<[u32; 16]> = SmallVec::new();
        let path = req.path;
        if let Some(v) = idx.exact.get(path) {
            cand.extend_from_slice(v);
        }
        let lower_owned;
        let lower = if idx.has_ci {
            lower_owned = path.to_ascii_lowercase();
            Some(lower_owned.as_str())
        } else {
            None
        };
        if let Some(l) = lower
            && let Some(v) = idx.exact_ci.get(l)
        {
            cand.extend_from_slice(v);
        }
        for &len in &idx.prefix_lens {
            if len > path.len() {
                break;
            }
            if !path.is_char_boundary(len) {
                continue;
            }
            if let Some(v) = idx.prefix.get(&path[..len]) {
                cand.extend_from_slice(v);
            }
            if let Some(l) = lower
                && let Some(v) = idx.prefix_ci.get(&l[..len])
            {
                cand.extend_from_slice(v);
            }
        }
        cand.extend_from_slice(&idx.always);
        cand.sort_unstable();
        for e in cand {
            let (r, m) = idx.entries[e as usize];
            let route = &self.routes[r as usize];
            let matcher = &route.matchers[m as usize];
            if matcher.check(req).is_ok() {
                return Some((route, matcher));
            }
        }
        None
    }

    /// For the tester: each route in order, and why it did or did not match.
    pub fn explain(&self, req: &RequestHead<'_>) -> Vec<(Arc<str>, Result<(), String>)> {
        let mut out = Vec::new();
        for r in &self.routes {
            let verdict = if r.matchers.iter().any(|m| m.check(req).is_ok()) {
                Ok(())
            } else {
                Err(r
                    .matchers
                    .iter()
                    .filter_map(|m| m.check(req).err().map(|e| e.to_string()))
                    .collect::<Vec<_>>()
                    .join("; "))
            };
            let matched = verdict.is_ok();
            out.push((r.id.clone(), verdict));
            if matched {
                break;
            }
        }
        out
    }

    fn build_index(&mut self) {
        let mut idx = RouteIndex::default();
        let mut lens = std::collections::BTreeSet::new();
        for (ri, r) in self.routes.iter().enumerate() {
            for (mi, m) in r.matchers.iter().enumerate() {
                let e = idx.entries.len() as u32;
                idx.entries.push((ri as u32, mi as u16));
                match (&m.path, m.case_sensitive) {
                    (PathCond::Exact(p), true) => idx.exact.entry(p.clone()).or_default().push(e),
                    (PathCond::Exact(p), false) => {
                        idx.has_ci = true;
                        idx.exact_ci.entry(p.clone()).or_default().push(e)
                    }
                    (PathCond::Prefix(p), cs) => {
                        lens.insert(p.len());
                        if cs {
                            idx.prefix.entry(p.clone()).or_default().push(e)
                        } else {
                            idx.has_ci = true;
                            idx.prefix_ci.entry(p.clone()).or_default().push(e)
                        }
                    }
                    (PathCond::Regex(_), _) => idx.always.push(e),
                }
            }
        }
        idx.prefix_lens = lens.into_iter().collect();
        self.index = idx;
    }
}

/// Compiles a set of (accepted) resources into a table.
pub fn compile(set: &ResourceSet, registry: &Registry, generation: u64) -> RouteTable {
    compile_with(set, registry, generation, &ClusterDns)
}

/// Compiles, reaching kube upstreams through `connector`.
pub fn compile_with(
    set: &ResourceSet,
    registry: &Registry,
    generation: u64,
    connector: &dyn Connector,
) -> RouteTable {
    compile_only(set, registry, generation, connector, &|_, _| true)
}

/// Compiles the virtual services `keep` picks (a listener's: see `listener`).
pub fn compile_only(
    set: &ResourceSet,
    registry: &Registry,
    generation: u64,
    connector: &dyn Connector,
    keep: &dyn Fn(&ResourceKey, &crate::api::resource::VirtualService) -> bool,
) -> RouteTable {
    compile_listener(set, registry, generation, connector, keep, None)
}

/// Compiles a listener's table: the virtual services `keep` picks, each route with the
/// listener's rate limit (`default_limit`: a Gateway's `httpLocalRatelimit`) where neither
/// the route nor its virtual host has a local limit of its own (Gloo: those override it).
pub fn compile_listener(
    set: &ResourceSet,
    registry: &Registry,
    generation: u64,
    connector: &dyn Connector,
    keep: &dyn Fn(&ResourceKey, &crate::api::resource::VirtualService) -> bool,
    default_limit: Option<Arc<dyn Stage>>,
) -> RouteTable {
    let mut c = Compiler {
        default_limit,
        set,
        registry,
        connector,
        kube_services: RefCell::default(),
        upstreams: HashMap::new(),
        problems: Vec::new(),
        templates: RefCell::default(),
        regexes: RefCell::default(),
        vhost: None,
        descriptors: RefCell::default(),
        transcoders: RefCell::default(),
    };
    let mut watched = Vec::new();
    for r in set.values() {
        if let Resource::Upstream(u) = r {
            let name: Arc<str> = Arc::from(u.metadata.name.as_str());
            let asks_tls = speaks_tls(u);
            let mut sni = None;
            let (hosts, authorities, use_tls) = match (&u.spec.static_, &u.spec.kube) {
                (Some(s), _) => {
                    let tls = speaks_tls(u);
                    (
                        s.hosts
                            .iter()
                            .map(|h| Arc::from(host_port(&h.addr, h.port).as_str()))
                            .collect(),
                        s.hosts
                            .iter()
                            .map(|h| authority(&h.addr, h.port, tls))
                            .collect(),
                        tls,
                    )
                }
                (None, Some(k)) => {
                    let dns = kube_server_name(k);
                    // Over TLS, the service is named by its cluster DNS name, however reached.
                    sni = asks_tls.then(|| kube_server_name(k));
                    match connector.service(&k.service_namespace, &k.service_name, k.service_port) {
                        Ok(address) => (
                            vec![Arc::from(address.as_str())],
                            vec![authority(&dns, k.service_port, asks_tls)],
                            asks_tls,
                        ),
                        // No hosts: requests get 503 naming the upstream; the reason is logged.
                        Err(e) => {
                            c.problems.push(format!("upstream {}: {e}", r.key()));
                            (Vec::new(), Vec::new(), false)
                        }
                    }
                }
                _ => (Vec::new(), Vec::new(), false),
            };
            let dial = upstream_dial(u, &r.key().namespace, use_tls, sni, set, &mut watched);
            let (hosts, authorities, dial) = match dial {
                Ok(dial) => (hosts, authorities, dial),
                // Never in clear what asks for TLS: no hosts, so requests get 503 naming it.
                Err(e) => {
                    c.problems.push(format!("upstream {}: {e}", r.key()));
                    (Vec::new(), Vec::new(), Dial::default())
                }
            };
            let stats = registry.upstream(&name);
            c.upstreams.insert(
                r.key(),
                Arc::new(UpstreamTarget::new(name, hosts, authorities, dial, stats)),
            );
        }
    }
    let mut table = RouteTable {
        generation,
        ..Default::default()
    };
    for r in set.values() {
        let Resource::VirtualService(vs) = r else {
            continue;
        };
        let key = r.key();
        if !keep(&key, vs) {
            continue;
        }
        let mut routes = Vec::new();
        c.vhost = vs
            .spec
            .virtual_host
            .options
            .clone()
            .map(|o| (o, key.namespace.clone(), key.to_string()));
        for route in &vs.spec.virtual_host.routes {
            let id = route_identity(&key.namespace, &key.name, route);
            c.add_route(&mut routes, route, &id, &key.namespace, 0, None);
        }
        let mut vh = VirtualHostTable {
            key: key.clone(),
            domains: effective_domains(&vs.spec),
            routes,
            index: RouteIndex::default(),
        };
        vh.build_index();
        let vi = table.vhosts.len();
        for d in &vh.domains {
            let d = d.to_ascii_lowercase();
            if d == "*" {
                table.catch_all.get_or_insert(vi);
            } else if let Some(s) = d.strip_prefix('*') {
                table.suffix_wildcards.push((s.to_string(), vi));
            } else if let Some(p) = d.strip_suffix('*') {
                table.prefix_wildcards.push((p.to_string(), vi));
            } else {
                table.exact_domains.entry(d).or_insert(vi);
            }
        }
        table.vhosts.push(vh);
    }
    table
        .suffix_wildcards
        .sort_by_key(|w| std::cmp::Reverse(w.0.len()));
    table
        .prefix_wildcards
        .sort_by_key(|w| std::cmp::Reverse(w.0.len()));
    table.problems = c.problems;
    table.watched = watched;
    table
}

/// Whether connections to upstream `u` speak TLS, as Gloo decides: when `sslConfig` or
/// `useTls` asks, or by default when every static host listens on 443. The gateway and
/// function discovery both ask here, so discovery never speaks in clear to what the gateway
/// reaches over TLS.
pub fn speaks_tls(u: &crate::api::resource::Upstream) -> bool {
    let asks = u.spec.ssl_config.is_some();
    match &u.spec.static_ {
        Some(s) => {
            asks || s
                .use_tls
                .unwrap_or(!s.hosts.is_empty() && s.hosts.iter().all(|h| h.port == 443))
        }
        None => asks,
    }
}

/// The name a kube upstream's service is asked for over TLS: its cluster DNS name, however it
/// is reached.
fn kube_server_name(k: &crate::api::types::KubeUpstream) -> String {
    format!(
        "{}.{}.svc.cluster.local",
        k.service_name, k.service_namespace
    )
}

/// The TLS client the gateway uses for upstream `u` (in namespace `ns`, its `sslConfig`
/// material read from `set`), for function discovery, which must reach the upstream as the
/// gateway does: offering HTTP/2 by ALPN for gRPC reflection (`http2`), else as the upstream
/// asks.
pub fn upstream_tls(
    u: &crate::api::resource::Upstream,
    ns: &str,
    set: &ResourceSet,
    http2: bool,
) -> Result<crate::tls::client::UpstreamTls, String> {
    let sni = u.spec.kube.as_ref().map(kube_server_name);
    let mut u = u.clone();
    if http2 {
        u.spec.use_http2 = Some(true);
    }
    let dial = upstream_dial(&u, ns, true, sni, set, &mut Vec::new())?;
    dial.tls
        .ok_or_else(|| "the upstream's TLS settings could not be built".to_string())
}

/// How connections to upstream `u` are opened: TLS (`use_tls`, with its `sslConfig` if any,
/// `sni` the default server name) and HTTP/2 (`useHttp2`, or gRPC services).
fn upstream_dial(
    u: &crate::api::resource::Upstream,
    ns: &str,
    use_tls: bool,
    sni: Option<String>,
    set: &ResourceSet,
    watched: &mut Vec<std::path::PathBuf>,
) -> Result<Dial, String> {
    use std::hash::{Hash, Hasher};
    let grpc = u
        .spec
        .service_spec()
        .is_some_and(|s| s.grpc.is_some() || s.grpc_json_transcoder.is_some());
    let http2 = u.spec.use_http2.unwrap_or(false) || grpc;
    if !use_tls {
        return Ok(Dial {
            tls: None,
            http2,
            id: u64::from(http2),
        });
    }
    let ssl = u.spec.ssl_config.as_ref();
    let pems = crate::tls::material::read_pems(
        ssl.and_then(|s| s.secret_ref.as_ref()),
        ssl.and_then(|s| s.ssl_files.as_ref()),
        ns,
        set,
        watched,
    )
    .map_err(|e| format!("sslConfig: {e}"))?;
    let mut warnings = Vec::new();
    let mut tls = crate::tls::client::build(ssl, &pems, http2, &mut warnings)
        .map_err(|e| format!("sslConfig: {e}"))?;
    for w in warnings {
        tracing::warn!(upstream = %u.metadata.name, "sslConfig.{w}");
    }
    tls.sni = tls.sni.or(sni);
    // Settings that differ never share a connection.
    let mut h = std::hash::DefaultHasher::new();
    serde_json::to_string(&ssl).unwrap_or_default().hash(&mut h);
    (&pems, http2, &tls.sni).hash(&mut h);
    Ok(Dial {
        tls: Some(tls),
        http2,
        id: h.finish() | 2,
    })
}

fn host_port(addr: &str, port: u32) -> String {
    if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// A compiled piece of configuration, or why it could not be.
type Compiled<T> = Result<T, String>;

struct Compiler<'a> {
    set: &'a ResourceSet,
    registry: &'a Registry,
    connector: &'a dyn Connector,
    /// Targets of `kube` destinations by service port: routes to one service share one.
    kube_services: RefCell<HashMap<(String, String, u32), Arc<UpstreamTarget>>>,
    upstreams: HashMap<ResourceKey, Arc<UpstreamTarget>>,
    problems: Vec<String>,
    /// Compiled templates by the function's content: identical functions share one.
    templates: RefCell<HashMap<String, Result<Arc<Templates>, String>>>,
    /// Compiled extractor regexes by pattern, shared the same way.
    regexes: RefCell<HashMap<String, Arc<Regex>>>,
    /// The options of the virtual host being compiled, its namespace and key.
    vhost: Option<(serde_json::Map<String, serde_json::Value>, String, String)>,
    /// Each gRPC upstream's descriptors, decoded once for all the routes that call it.
    descriptors: RefCell<HashMap<ResourceKey, Result<prost_reflect::DescriptorPool, String>>>,
    /// Each upstream's gRPC-JSON transcoder, compiled once for all the routes to it.
    transcoders: RefCell<HashMap<ResourceKey, Option<Compiled<Arc<Call>>>>>,
    /// The listener's local rate limit, for routes without one of their own.
    default_limit: Option<Arc<dyn Stage>>,
}

impl Compiler<'_> {
    fn templates(&self, t: &Transformation) -> Result<Arc<Templates>, String> {
        let key = serde_json::to_string(t).map_err(|e| e.to_string())?;
        self.templates
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| Templates::compile(t).map(Arc::new))
            .clone()
    }

    fn regex(&self, pattern: &str) -> Result<Arc<Regex>, String> {
        if let Some(r) = self.regexes.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = Arc::new(Regex::new(pattern).map_err(|e| e.to_string())?);
        self.regexes
            .borrow_mut()
            .insert(pattern.to_string(), r.clone());
        Ok(r)
    }

    /// A `kube` destination: the service's endpoints as a kube upstream of it reaches them
    /// (through the gateway's connector); no hosts, so 503, when the connector cannot.
    fn kube_service(&self, ns: &str, name: &str, port: u32) -> Arc<UpstreamTarget> {
        let key = (ns.to_string(), name.to_string(), port);
        if let Some(t) = self.kube_services.borrow().get(&key) {
            return t.clone();
        }
        let label: Arc<str> = Arc::from(format!("kube:{ns}/{name}:{port}").as_str());
        let hosts = match self.connector.service(ns, name, port) {
            Ok(authority) => vec![Arc::from(authority.as_str())],
            Err(e) => {
                tracing::warn!(destination = %label, error = %e, "kube destination unreachable");
                Vec::new()
            }
        };
        let dns = format!("{name}.{ns}.svc.cluster.local");
        let authorities = hosts.iter().map(|_| authority(&dns, port, false)).collect();
        let stats = self.registry.upstream(&label);
        let t = Arc::new(UpstreamTarget::new(
            label,
            hosts,
            authorities,
            Dial::default(),
            stats,
        ));
        self.kube_services.borrow_mut().insert(key, t.clone());
        t
    }

    fn upstream(&self, r: &ResourceRef, ns: &str) -> Option<Arc<UpstreamTarget>> {
        self.upstreams
            .get(&ResourceKey::new(
                Kind::Upstream,
                r.namespace_or(ns),
                &r.name,
            ))
            .cloned()
    }

    fn target(&self, d: &Destination, weight: u32, ns: &str) -> Target {
        let mut t = Target {
            weight,
            upstream: None,
            function: None,
            call: None,
            problem: None,
        };
        if let (None, Some(k)) = (&d.upstream, &d.kube) {
            t.upstream = Some(self.kube_service(k.ref_.namespace_or(ns), &k.ref_.name, k.port));
            return t;
        }
        let Some(uref) = &d.upstream else {
            t.problem = Some(Arc::from("the destination names no upstream"));
            return t;
        };
        t.upstream = self.upstream(uref, ns);
        if t.upstream.is_none() {
            t.problem = Some(Arc::from(
                format!("upstream `{}` does not exist", uref.name).as_str(),
            ));
            return t;
        }
        let key = ResourceKey::new(Kind::Upstream, uref.namespace_or(ns), &uref.name);
        let spec = d.destination_spec.as_ref();
        let other = match (
            spec.and_then(|s| s.grpc.as_ref()),
            spec.and_then(|s| s.aws.as_ref()),
        ) {
            (Some(g), _) => Some(self.grpc_call(&key, g)),
            (None, Some(a)) => Some(self.lambda_call(&key, a)),
            (None, None) => match self.set.get(&key) {
                Some(Resource::Upstream(u)) if u.spec.aws.is_some() => Some(Err(
                    "an AWS upstream is called through a Lambda function (`destinationSpec.aws`)"
                        .to_string(),
                )),
                _ => None,
            },
        };
        match other {
            Some(Ok(call)) => t.call = Some(Arc::new(call)),
            Some(Err(e)) => t.problem = Some(Arc::from(e.as_str())),
            None if spec.is_none_or(|s| s.rest.is_none()) => match self.transcoder(&key) {
                Some(Ok(call)) => t.call = Some(call),
                Some(Err(e)) => t.problem = Some(Arc::from(e.as_str())),
                None => {}
            },
            None => {}
        }
        if let Some(rest) = d.destination_spec.as_ref().and_then(|s| s.rest.as_ref()) {
            let transformation = match self.set.get(&key) {
                Some(Resource::Upstream(u)) => u
                    .spec
                    .service_spec()
                    .and_then(|s| s.rest.as_ref())
                    .and_then(|r| r.transformations.get(&rest.function_name)),
                _ => None,
            };
            match transformation {
                None => {
                    t.problem = Some(Arc::from(
                        format!(
                            "upstream `{}` has no function `{}`",
                            uref.name, rest.function_name
                        )
                        .as_str(),
                    ));
                }
                Some(tr) => {
                    let call = self.templates(tr).and_then(|templates| {
                        FunctionCall::with_templates(
                            &rest.function_name,
                            templates,
                            rest.parameters.as_ref(),
                            &|p| self.regex(p),
                        )
                    });
                    match call {
                        Ok(f) => t.function = Some(Arc::new(f)),
                        Err(e) => {
                            t.problem = Some(Arc::from(
                                format!("function `{}`: {e}", rest.function_name).as_str(),
                            ))
                        }
                    }
                }
            }
        }
        t
    }

    /// The upstream's `grpcJsonTranscoder`, if it has one, compiled on first use.
    fn transcoder(&self, key: &ResourceKey) -> Option<Compiled<Arc<Call>>> {
        self.transcoders
            .borrow_mut()
            .entry(key.clone())
            .or_insert_with(|| {
                let Some(Resource::Upstream(u)) = self.set.get(key) else {
                    return None;
                };
                let spec = u.spec.service_spec()?.grpc_json_transcoder.as_ref()?;
                Some(
                    Transcoder::compile(spec, &|f| std::fs::read(f))
                        .map(|t| Arc::new(Call::Transcode(Arc::new(t))))
                        .map_err(|e| format!("upstream `{}`: grpcJsonTranscoder.{e}", key.name)),
                )
            })
            .clone()
    }

    /// A gRPC method of the upstream's descriptors, with the route's parameters.
    fn grpc_call(&self, key: &ResourceKey, g: &GrpcDestination) -> Result<Call, String> {
        let pool = self
            .descriptors
            .borrow_mut()
            .entry(key.clone())
            .or_insert_with(|| match self.set.get(key) {
                Some(Resource::Upstream(u)) => {
                    match u.spec.service_spec().and_then(|s| s.grpc.as_ref()) {
                        Some(spec) => crate::grpc::method::pool(&spec.descriptors),
                        None => Err("it has no gRPC descriptors (`serviceSpec.grpc`)".into()),
                    }
                }
                _ => Err("it does not exist".into()),
            })
            .clone()
            .map_err(|e| format!("upstream `{}`: {e}", key.name))?;
        let method = crate::grpc::method::Method::find(&pool, &g.package, &g.service, &g.function)
            .map_err(|e| format!("upstream `{}`: {e}", key.name))?;
        let extractors = super::function::extractors(g.parameters.as_ref(), &|p| self.regex(p))
            .map_err(|e| format!("function `{}`: {e}", method.path))?;
        Ok(Call::Grpc(GrpcCall { method, extractors }))
    }

    /// A Lambda function of the upstream, with the credentials it is invoked with.
    fn lambda_call(&self, key: &ResourceKey, a: &AwsDestination) -> Result<Call, String> {
        let Some(Resource::Upstream(u)) = self.set.get(key) else {
            return Err(format!("upstream `{}` does not exist", key.name));
        };
        let Some(aws) = &u.spec.aws else {
            return Err(format!("upstream `{}` is not an AWS upstream", key.name));
        };
        let f = aws
            .lambda_functions
            .iter()
            .find(|f| f.logical_name == a.logical_name)
            .ok_or_else(|| {
                format!(
                    "upstream `{}` has no Lambda function `{}`",
                    key.name, a.logical_name
                )
            })?;
        let credentials = crate::aws::upstream_credentials(aws, self.set, &key.namespace)
            .map_err(|e| format!("upstream `{}`: {e}", key.name))?;
        Ok(Call::Lambda(LambdaCall {
            logical_name: a.logical_name.clone(),
            function: crate::aws::Function {
                endpoint: crate::aws::lambda_endpoint(&aws.region),
                region: aws.region.clone(),
                name: f.lambda_function_name.clone(),
                qualifier: Some(f.qualifier.clone()).filter(|q| !q.is_empty()),
            },
            credentials,
            asynchronous: a.invocation_style.as_deref() == Some("ASYNC"),
            unwrap_as_api_gateway: a.unwrap_as_api_gateway,
            wrap_as_api_gateway: a.wrap_as_api_gateway,
        }))
    }

    fn weighted(&self, ds: &[WeightedDestination], ns: &str) -> Forward {
        let mut targets: Vec<Target> = ds
            .iter()
            .map(|d| self.target(&d.destination, d.weight.unwrap_or(0), ns))
            .collect();
        if targets.is_empty() {
            // Validation refuses this; a table never holds a forward with nowhere to go.
            targets.push(Target {
                weight: 1,
                upstream: None,
                function: None,
                call: None,
                problem: Some(Arc::from("no destinations")),
            });
        }
        let total_weight = targets
            .iter()
            .fold(0u32, |sum, t| sum.saturating_add(t.weight));
        Forward {
            targets,
            total_weight,
        }
    }

    fn action(&self, route: &Route, ns: &str) -> Option<Action> {
        if let Some(a) = &route.route_action {
            if let Some(d) = &a.single {
                return Some(Action::Forward(Forward {
                    targets: vec![self.target(d, 1, ns)],
                    total_weight: 1,
                }));
            }
            if let Some(m) = &a.multi {
                return Some(Action::Forward(self.weighted(&m.destinations, ns)));
            }
            if let Some(g) = &a.upstream_group {
                let key = ResourceKey::new(Kind::UpstreamGroup, g.namespace_or(ns), &g.name);
                return Some(Action::Forward(match self.set.get(&key) {
                    Some(Resource::UpstreamGroup(ug)) => {
                        self.weighted(&ug.spec.destinations, &key.namespace)
                    }
                    _ => Forward {
                        targets: vec![Target {
                            weight: 1,
                            upstream: None,
                            function: None,
                            call: None,
                            problem: Some(Arc::from(
                                format!("upstream group `{}` does not exist", g.name).as_str(),
                            )),
                        }],
                        total_weight: 1,
                    },
                }));
            }
        }
        if let Some(d) = &route.direct_response_action {
            return Some(Action::Direct {
                status: StatusCode::from_u16(d.status as u16).unwrap_or(StatusCode::OK),
                body: Bytes::from(d.body.clone().unwrap_or_default()),
            });
        }
        if let Some(r) = &route.redirect_action {
            let status = r
                .response_code
                .as_ref()
                .and_then(redirect_status)
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::MOVED_PERMANENTLY);
            return Some(Action::Redirect(Redirect {
                host: r.host_redirect.clone(),
                path: r.path_redirect.clone(),
                prefix_rewrite: r.prefix_rewrite.clone(),
                https: r.https_redirect == Some(true),
                strip_query: r.strip_query == Some(true),
                status,
            }));
        }
        None
    }

    /// The request pipeline's stages a route's options ask for (see `super::pipeline`).
    fn stages(&self, route: &Route) -> Vec<Arc<dyn Stage>> {
        let mut stages: Vec<Arc<dyn Stage>> = Vec::new();
        let Some(ro) = &route.options else {
            return stages;
        };
        if let Some(f) = ro.faults.as_ref().and_then(Faults::compile) {
            stages.push(Arc::new(f));
        }
        stages
    }

    fn options(&self, route: &Route, ns: &str) -> Options {
        let mut o = Options::default();
        let Some(ro) = &route.options else { return o };
        o.prefix_rewrite = ro.prefix_rewrite.clone();
        // The substitution in the regex crate's syntax, converted once here, not per request.
        o.regex_rewrite = ro.regex_rewrite.as_ref().and_then(|r| {
            Regex::new(&r.pattern.regex).ok().map(|re| {
                let sub = super::upstream_request::envoy_substitution(&r.substitution);
                (re, sub.into_owned())
            })
        });
        o.host_rewrite = ro
            .host_rewrite
            .as_deref()
            .and_then(|h| HeaderValue::from_str(h).ok());
        o.auto_host_rewrite = ro.auto_host_rewrite == Some(true);
        if let Some(ws) = ro
            .upgrades
            .iter()
            .flatten()
            .filter_map(|u| u.websocket.as_ref())
            .next_back()
        {
            o.websocket = ws.enabled != Some(false);
        }
        o.timeout = ro.timeout.as_deref().and_then(|t| parse_duration(t).ok());
        if let Some(r) = &ro.retries {
            let on = r.retry_on.as_deref().unwrap_or("");
            let has = |c: &str| on.split(',').any(|x| x.trim() == c);
            o.retry = Some(Retry {
                num: r.num_retries.unwrap_or(1),
                per_try: r
                    .per_try_timeout
                    .as_deref()
                    .and_then(|t| parse_duration(t).ok()),
                on_connect_failure: has("connect-failure") || has("5xx") || has("gateway-error"),
                on_5xx: has("5xx"),
                on_gateway_error: has("gateway-error"),
                on_reset: has("reset") || has("5xx"),
                statuses: if has("retriable-status-codes") {
                    r.retriable_status_codes.iter().map(|c| *c as u16).collect()
                } else {
                    Vec::new()
                },
                ..Retry::default()
            });
            if let (Some(retry), Some(b)) = (&mut o.retry, &r.retry_back_off) {
                let d = |v: &Option<String>| v.as_deref().and_then(|t| parse_duration(t).ok());
                retry.backoff_base = d(&b.base_interval).unwrap_or(BACKOFF_BASE);
                retry.backoff_max = d(&b.max_interval).unwrap_or(retry.backoff_base * 10);
            }
        }
        if let Some(h) = &ro.header_manipulation {
            let adds = |list: &[crate::api::HeaderValueOption]| -> Vec<HeaderAdd> {
                list.iter()
                    .filter_map(|hv| {
                        Some(HeaderAdd {
                            name: HeaderName::from_bytes(
                                hv.header.key.to_ascii_lowercase().as_bytes(),
                            )
                            .ok()?,
                            value: HeaderValue::from_str(&hv.header.value).ok()?,
                            append: hv.append.unwrap_or(true),
                        })
                    })
                    .collect()
            };
            let names = |list: &[String]| -> Vec<HeaderName> {
                list.iter()
                    .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok())
                    .collect()
            };
            o.request_add = adds(&h.request_headers_to_add);
            o.request_remove = names(&h.request_headers_to_remove);
            o.response_add = adds(&h.response_headers_to_add);
            o.response_remove = names(&h.response_headers_to_remove);
        }
        if let Some(s) = &ro.shadowing
            && let Some(u) = s.upstream.as_ref().and_then(|u| self.upstream(u, ns))
        {
            o.shadow = Some((u, s.percentage.unwrap_or(100.0)));
        }
        o
    }

    /// The route's policies under the virtual host being compiled. One that cannot be built
    /// (validation comes first, so rarely) refuses every request: never served unprotected.
    fn policies(&mut self, route: &Route, id: &str, ns: &str) -> Vec<Arc<dyn Stage>> {
        use crate::policy::build::{Broken, Level, build_route};
        let (vopts, vns, vid) = match &self.vhost {
            Some((o, n, k)) => (Some(o), n.as_str(), k.as_str()),
            None => (None, ns, ""),
        };
        let ropts = route.options.as_ref().map(|o| &o.extra.0);
        if vopts.is_none_or(|o| o.is_empty()) && ropts.is_none_or(|o| o.is_empty()) {
            return Vec::new();
        }
        let vhost = Level {
            at: "virtualHost.options",
            options: vopts,
            namespace: vns,
            id: vid,
        };
        let level = Level {
            at: "options",
            options: ropts,
            namespace: ns,
            id,
        };
        let set = self.set;
        let resolve = |u: &ResourceRef| crate::policy::check::upstream_address(set, u, ns);
        match build_route(&vhost, &level, set, &self.registry.policy, &resolve) {
            Ok(stages) => stages,
            Err(e) => {
                self.problems.push(format!("{id}: {e}"));
                vec![Arc::new(Broken(e.0))]
            }
        }
    }

    /// Adds a route (or, for a delegation, the delegated routes in its place).
    fn add_route(
        &mut self,
        out: &mut Vec<CompiledRoute>,
        route: &Route,
        id: &str,
        ns: &str,
        depth: usize,
        inherited: Option<&Route>,
    ) {
        if let Some(d) = &route.delegate_action {
            if depth >= 8 {
                self.problems
                    .push(format!("{id}: delegation deeper than 8 levels"));
                return;
            }
            for (rt_key, child_routes) in self.delegated(d, ns) {
                for child in child_routes.iter() {
                    let cid = route_identity(&rt_key.namespace, &rt_key.name, child);
                    self.add_route(out, child, &cid, &rt_key.namespace, depth + 1, Some(route));
                }
            }
            return;
        }
        let mut matchers = Vec::new();
        for m in &route.matchers {
            match CompiledMatcher::compile(m) {
                Ok(cm) => matchers.push(cm),
                Err(e) => self.problems.push(format!("{id}: {e}")),
            }
        }
        if route.matchers.is_empty() {
            // No matcher: prefix `/`.
            if let Ok(cm) = CompiledMatcher::compile(&Default::default()) {
                matchers.push(cm);
            }
        }
        if matchers.is_empty() {
            return;
        }
        let Some(action) = self.action(route, ns) else {
            self.problems.push(format!("{id}: no action"));
            return;
        };
        // A delegated route inherits its parent's options where it has none of its own.
        let options_of = match (&route.options, inherited) {
            (None, Some(parent)) => parent,
            _ => route,
        };
        let options = self.options(options_of, ns);
        let mut stages = self.stages(options_of);
        stages.extend(self.policies(options_of, id, ns));
        if let Some(limit) = &self.default_limit {
            let own = |o: Option<&serde_json::Map<String, serde_json::Value>>| {
                o.and_then(|o| o.get("ratelimit"))
                    .and_then(|r| r.get("localRatelimit"))
                    .is_some()
            };
            let vhost = self.vhost.as_ref().map(|(o, _, _)| o);
            if !own(vhost) && !own(options_of.options.as_ref().map(|o| &o.extra.0)) {
                stages.push(limit.clone());
            }
        }
        let policies = Policies::new(stages);
        out.push(CompiledRoute {
            id: Arc::from(id),
            matchers,
            action,
            options,
            policies,
            stats: self.registry.route(id),
        });
    }

    /// The route tables a delegation names: by reference, or by selector (labels, namespaces),
    /// ordered by weight then name.
    fn delegated(
        &self,
        d: &crate::api::DelegateAction,
        ns: &str,
    ) -> Vec<(ResourceKey, Vec<Route>)> {
        if let Some(r) = d.reference() {
            let key = ResourceKey::new(Kind::RouteTable, r.namespace_or(ns), &r.name);
            return match self.set.get(&key) {
                Some(Resource::RouteTable(rt)) => vec![(key, rt.spec.routes.clone())],
                _ => Vec::new(),
            };
        }
        let Some(sel) = &d.selector else {
            return Vec::new();
        };
        let mut found: Vec<(i32, ResourceKey, Vec<Route>)> = self
            .set
            .iter()
            .filter_map(|(k, r)| match r {
                Resource::RouteTable(rt) => {
                    let ns_ok = if sel.namespaces.is_empty() {
                        k.namespace == ns
                    } else {
                        sel.namespaces.iter().any(|n| n == "*" || *n == k.namespace)
                    };
                    let labels_ok = sel
                        .labels
                        .iter()
                        .all(|(lk, lv)| rt.metadata.labels.get(lk) == Some(lv));
                    (ns_ok && labels_ok).then(|| {
                        (
                            rt.spec.weight.unwrap_or(0),
                            k.clone(),
                            rt.spec.routes.clone(),
                        )
                    })
                }
                _ => None,
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        found.into_iter().map(|(_, k, r)| (k, r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_resources;

    /// The upstreams' `autoHostRewrite` names, by the routes `/s`, `/t`, `/k` that lead to them.
    fn authorities(yaml: &str) -> Vec<Vec<String>> {
        let set: ResourceSet = parse_resources(yaml, "test")
            .unwrap()
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        let t = compile(&set, &Registry::default(), 1);
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        t.vhosts[0]
            .routes
            .iter()
            .map(|r| match &r.action {
                Action::Forward(f) => f.targets[0]
                    .upstream
                    .as_ref()
                    .map(|u| u.authorities.iter().map(|a| a.to_string()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn auto_host_rewrite_names_the_endpoint_without_a_default_port() {
        let upstream = |name: &str, spec: &str| {
            format!(
                "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec: {spec}\n---\n"
            )
        };
        let route = |name: &str| {
            format!(
                "    - matchers: [{{prefix: /{name}}}]\n      routeAction: {{single: {{upstream: {{name: {name}}}}}}}\n"
            )
        };
        let yaml = [
            upstream("s", "{static: {hosts: [{addr: web.example, port: 80}, {addr: '::1', port: 8080}]}}"),
            upstream("t", "{static: {hosts: [{addr: api.example, port: 443}]}}"),
            upstream("k", "{kube: {serviceName: pets, serviceNamespace: shop, servicePort: 8080}}"),
            format!(
                "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n{}{}{}",
                route("s"),
                route("t"),
                route("k")
            ),
        ]
        .concat();
        assert_eq!(
            authorities(&yaml),
            [
                vec!["web.example".to_string(), "[::1]:8080".into()],
                vec!["api.example".into()],
                vec!["pets.shop.svc.cluster.local:8080".into()],
            ]
        );
    }

    #[test]
    fn retries_back_off_with_full_jitter_under_a_growing_ceiling() {
        let r = Retry::default();
        for n in 1..=8u32 {
            let ceiling = (BACKOFF_BASE * (1 << (n - 1))).min(BACKOFF_BASE * 10);
            let pauses: Vec<Duration> = (0..200).map(|_| r.backoff(n)).collect();
            assert!(pauses.iter().all(|p| *p < ceiling), "retry {n}");
            // Jittered: not one fixed value, and some pauses in the upper half.
            assert!(pauses.iter().any(|p| *p > ceiling / 2), "retry {n}");
            assert!(pauses.iter().any(|p| *p < ceiling / 2), "retry {n}");
        }
        assert!(r.backoff(u32::MAX) < BACKOFF_BASE * 10, "no overflow");
    }
}
