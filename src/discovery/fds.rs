//! Function discovery (FDS): for every selected upstream, find its API document (given inline,
//! at `swaggerInfo.url`, or by probing well-known paths), turn it into functions, and write
//! them into the upstream when they changed.
//!
//! Probes run concurrently with a bound and short timeouts, so one dead upstream never delays
//! the others. The state of each upstream (document URL, function count, last error, last
//! poll) is published for the console and saved next to the store for `epoxy get`.

use super::openapi::{ApiDocument, read_document, transformation};
use crate::api::resource::Upstream;
use crate::api::{Resource, ResourceKey, ResourceSet, SwaggerInfo, Transformation};
use crate::control::writes::WriteError;
use crate::grpc::reflection::Discovered;
use crate::store::Store;
use http_body_util::{BodyExt, Limited};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, watch};

/// The label Gloo reads on upstreams (and their namespaces) to opt in or out.
pub const FDS_LABEL: &str = "discovery.solo.io/function_discovery";

/// Gloo's probe paths, then the common modern ones.
pub const PROBE_PATHS: [&str; 10] = [
    "/swagger.json",
    "/swagger/docs/v1",
    "/swagger/docs/v2",
    "/v1/swagger",
    "/v2/swagger",
    "/openapi.json",
    "/openapi.yaml",
    "/v3/api-docs",
    "/swagger/v1/swagger.json",
    "/api-docs",
];

/// Gloo's FDS modes: which upstreams are selected when they carry no label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Every upstream unless labelled (or in a namespace labelled) `disabled` (Gloo's default).
    #[default]
    Blacklist,
    /// Only upstreams labelled (or in a namespace labelled) `enabled`.
    Whitelist,
    /// No function discovery.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct FdsConfig {
    pub mode: Mode,
    pub poll_interval: Duration,
    pub probe_timeout: Duration,
    pub concurrency: usize,
    /// Largest document read, in bytes (`--fds-max-document`, `EPOXY_FDS_MAX_DOCUMENT`).
    pub max_document: usize,
    /// Labels of namespaces (kube mode); empty in directory mode.
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// How kube upstreams are reached (the gateway's connector).
    pub connector: std::sync::Arc<dyn crate::net::Connector>,
    /// With several replicas: whether this one leads (only the leader writes results).
    pub leader: Option<watch::Receiver<bool>>,
}

impl Default for FdsConfig {
    fn default() -> Self {
        FdsConfig {
            mode: Mode::Blacklist,
            poll_interval: Duration::from_secs(15),
            probe_timeout: Duration::from_secs(2),
            concurrency: 16,
            max_document: std::env::var(MAX_DOCUMENT_ENV)
                .ok()
                .and_then(|v| parse_size(&v).ok())
                .unwrap_or(DEFAULT_MAX_DOCUMENT),
            namespace_labels: BTreeMap::new(),
            connector: crate::net::default_connector(),
            leader: None,
        }
    }
}

/// The largest API document discovery reads by default: Microsoft Graph's beta document is
/// 47 MB, so larger APIs need the setting raised.
pub const DEFAULT_MAX_DOCUMENT: usize = 32 * 1024 * 1024;

/// The environment variable that sets the largest document (every command that runs discovery,
/// the console included; `--fds-max-document` wins where a command has it).
pub const MAX_DOCUMENT_ENV: &str = "EPOXY_FDS_MAX_DOCUMENT";

/// A size: bytes (`33554432`), or a number with a unit: `kB`, `MB`, `GB` (powers of 1000) or
/// `KiB`, `MiB`, `GiB` (powers of 1024), e.g. `64MiB`, `100MB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (like 33554432, 64MiB, 100MB)"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000 * 1000,
        "g" | "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit (kB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a size above 0"))
}

/// What discovery knows about one upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpstreamDiscovery {
    /// What was found: `rest`, `grpc` or `lambda`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Where the document came from (`inline` for an inline one; `grpc://HOST:PORT` for
    /// reflection, `grpcs://` over TLS; the Lambda endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_url: Option<String>,
    pub functions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::api::time::opt_rfc3339"
    )]
    pub last_poll: Option<SystemTime>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_duration_ms: Option<u64>,
}

/// Discovery state of every selected upstream, by key.
pub type DiscoveryState = BTreeMap<ResourceKey, UpstreamDiscovery>;

/// Whether FDS runs on an upstream, by Gloo's rules.
pub fn selected(u: &Upstream, cfg: &FdsConfig) -> bool {
    if cfg.mode == Mode::Disabled {
        return false;
    }
    let ns = u.metadata.namespace.as_deref().unwrap_or("");
    let label = u
        .metadata
        .labels
        .get(FDS_LABEL)
        .or_else(|| cfg.namespace_labels.get(ns).and_then(|l| l.get(FDS_LABEL)));
    match label.map(String::as_str) {
        Some("enabled") => true,
        Some("disabled") => false,
        _ => cfg.mode == Mode::Blacklist,
    }
}

/// The base URL to probe an upstream at (its first host).
fn probe_base(u: &Upstream, cfg: &FdsConfig) -> Result<String, String> {
    let no_address = || "the upstream has no address to probe".to_string();
    // TLS exactly when the gateway speaks it to the upstream.
    let tls = crate::gateway::table::speaks_tls(u);
    if let Some(s) = &u.spec.static_ {
        let h = s.hosts.first().ok_or_else(no_address)?;
        let host = if h.addr.contains(':') && !h.addr.starts_with('[') {
            format!("[{}]", h.addr)
        } else {
            h.addr.clone()
        };
        return Ok(format!(
            "{}://{}:{}",
            if tls { "https" } else { "http" },
            host,
            h.port
        ));
    }
    if let Some(k) = &u.spec.kube {
        let a = cfg
            .connector
            .service(&k.service_namespace, &k.service_name, k.service_port)?;
        let scheme = if tls { "https" } else { "http" };
        return Ok(format!("{scheme}://{a}"));
    }
    Err(no_address())
}

type HttpClient = reqwest::Client;

#[derive(Debug)]
enum Fetch {
    Document(String),
    /// Not there (404 or similar): try the next path.
    Missing(String),
    /// The host cannot be reached: no point trying other paths.
    Unreachable(String),
    /// A document is there but larger than the setting allows: the answer for this upstream.
    TooLarge(String),
}

async fn fetch(client: &HttpClient, url: &str, cfg: &FdsConfig) -> Fetch {
    let req = client.get(url).header(
        "accept",
        "application/json, application/yaml;q=0.9, */*;q=0.5",
    );
    let resp = match tokio::time::timeout(cfg.probe_timeout, req.send()).await {
        Err(_) => {
            return Fetch::Unreachable(format!("{url}: no answer within {:?}", cfg.probe_timeout));
        }
        Ok(Err(e)) if e.is_builder() => return Fetch::Unreachable(format!("{url}: {e}")),
        Ok(Err(e)) if e.is_connect() => {
            return Fetch::Unreachable(format!("{url}: cannot connect"));
        }
        Ok(Err(e)) => {
            return Fetch::Missing(format!("{url}: {}", crate::cause::with_root_cause(&e)));
        }
        Ok(Ok(r)) => r,
    };
    if !resp.status().is_success() {
        return Fetch::Missing(format!("{url}: {}", resp.status()));
    }
    let max = cfg.max_document;
    let body = tokio::time::timeout(
        cfg.probe_timeout * 4,
        Limited::new(reqwest::Body::from(resp), cfg.max_document).collect(),
    )
    .await;
    match body {
        Ok(Ok(b)) => match String::from_utf8(b.to_bytes().to_vec()) {
            Ok(s) => Fetch::Document(s),
            Err(_) => Fetch::Missing(format!("{url}: not UTF-8 text")),
        },
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Fetch::TooLarge(format!(
            "{url}: the document is larger than {max} bytes (raise --fds-max-document or {MAX_DOCUMENT_ENV})"
        )),
        Ok(Err(e)) => Fetch::Missing(format!("{url}: {e}")),
        Err(_) => Fetch::Missing(format!("{url}: the document took too long")),
    }
}

/// Finds and reads the document of one upstream: (where it came from, the document).
/// `upstream`: how the upstream's own documents are probed when not with `client` at
/// `probe_base`: one reached over TLS, with its TLS client, at its server name. (A
/// `swaggerInfo.url` may be anywhere: `client` fetches it.)
async fn discover_document(
    client: &HttpClient,
    u: &Upstream,
    cfg: &FdsConfig,
    upstream: Result<Option<(&HttpClient, &str)>, String>,
) -> Result<(String, ApiDocument), String> {
    let info: Option<&SwaggerInfo> = u
        .spec
        .service_spec()
        .and_then(|s| s.rest.as_ref())
        .and_then(|r| r.swagger_info.as_ref());
    if let Some(inline) = info.and_then(|i| i.inline.as_ref()) {
        return read_document(inline)
            .map(|d| ("inline".to_string(), d))
            .map_err(|e| format!("inline document: {e}"));
    }
    if let Some(url) = info.and_then(|i| i.url.as_ref()) {
        return match fetch(client, url, cfg).await {
            Fetch::Document(text) => read_document(&text)
                .map(|d| (url.to_string(), d))
                .map_err(|e| format!("{url}: {e}")),
            Fetch::Missing(e) | Fetch::Unreachable(e) | Fetch::TooLarge(e) => Err(e),
        };
    }
    let (client, base) = match upstream? {
        Some((c, b)) => (c, b.to_string()),
        None => (client, probe_base(u, cfg)?),
    };
    let mut last = String::new();
    for path in PROBE_PATHS {
        let url = format!("{base}{path}");
        match fetch(client, &url, cfg).await {
            Fetch::Document(text) => match read_document(&text) {
                Ok(d) => return Ok((url, d)),
                Err(e) => last = format!("{url}: {e}"),
            },
            Fetch::Missing(e) => last = e,
            Fetch::Unreachable(e) | Fetch::TooLarge(e) => return Err(e),
        }
    }
    Err(format!(
        "no API document found at {base} (tried {}; last: {last})",
        PROBE_PATHS.join(", ")
    ))
}

/// The TLS clients for an upstream the gateway reaches over TLS, as the gateway would build
/// them: for its documents (HTTP as the upstream asks) and for gRPC reflection (HTTP/2).
struct UpstreamTlsClients {
    documents: crate::tls::client::UpstreamTls,
    reflection: crate::tls::client::UpstreamTls,
}

/// The base URL of an upstream reached over TLS by a server name other than its address:
/// that name at the address's port, and the name to resolve to the address's IP addresses (a
/// host name is looked up here, as the gateway's dialer looks it up). A name that does not
/// resolve keeps the base as it is: the fetch then fails saying so.
async fn named_base(
    base: &str,
    sni: Option<&str>,
) -> (String, Option<(String, Vec<std::net::SocketAddr>)>) {
    let (Some(name), Some(authority)) = (sni, base.strip_prefix("https://")) else {
        return (base.to_string(), None);
    };
    let addrs: Vec<std::net::SocketAddr> = match authority.parse::<std::net::SocketAddr>() {
        Ok(a) => vec![a],
        Err(_) => match tokio::net::lookup_host(authority).await {
            Ok(a) => a.collect(),
            Err(_) => Vec::new(),
        },
    };
    match addrs.first() {
        Some(a) => (
            format!("https://{name}:{}", a.port()),
            Some((name.to_string(), addrs)),
        ),
        None => (base.to_string(), None),
    }
}

/// What discovery found on an upstream.
enum Found {
    /// An API document (where it came from, the document).
    Rest(String, ApiDocument),
    /// A gRPC server's services, by reflection at a URL (`grpc://HOST:PORT`, or `grpcs://`
    /// over TLS).
    Grpc(String, Discovered),
    /// The functions of an AWS upstream's region (the endpoint asked).
    Lambda(String, Vec<crate::aws::Listed>),
}

/// The authority (`host:port`) a gRPC server is reached at (the upstream's first host), and
/// whether over TLS.
fn grpc_authority(u: &Upstream, cfg: &FdsConfig) -> Result<(String, bool), String> {
    let base = probe_base(u, cfg)?;
    match base.split_once("://") {
        Some(("https", a)) => Ok((a.to_string(), true)),
        Some((_, a)) => Ok((a.to_string(), false)),
        None => Ok((base, false)),
    }
}

/// Discovers an upstream's functions: Lambda's for an AWS upstream; gRPC's by reflection for
/// one that has gRPC services already; else REST's, and gRPC's when no document is found.
/// `creds`: an AWS upstream's credentials, `tls` the TLS clients of one the gateway reaches
/// over TLS (its `sslConfig`; for its documents, and HTTP/2 for reflection), resolved from
/// the store before the task started.
async fn discover_one(
    client: &HttpClient,
    u: &Upstream,
    cfg: &FdsConfig,
    creds: Option<Result<crate::aws::Credentials, String>>,
    tls: Option<Result<UpstreamTlsClients, String>>,
) -> Result<Found, String> {
    if let Some(aws) = &u.spec.aws {
        let creds = creds.unwrap_or_else(|| Err("no credentials resolved".into()))?;
        let endpoint = crate::aws::lambda_endpoint(&aws.region);
        return match crate::aws::list_functions(
            &endpoint,
            &aws.region,
            &creds,
            cfg.probe_timeout * 4,
        )
        .await
        {
            Ok(l) => Ok(Found::Lambda(endpoint, l)),
            Err(e) => Err(format!("ListFunctions at {endpoint}: {e}")),
        };
    }
    let spec = u.spec.service_spec();
    // The documents of an upstream reached over TLS: with its own TLS client, by its server
    // name when it has one. (TLS settings that cannot be built fail what needs them: a
    // probe, a reflection; not an inline document.)
    let (documents, base) = match &tls {
        Some(Ok(t)) => {
            let base = probe_base(u, cfg)?;
            let (base, resolve) = named_base(&base, t.documents.sni.as_deref()).await;
            let resolve = resolve.as_ref().map(|(n, a)| (n.as_str(), a.as_slice()));
            let c = crate::net::document_client_with((*t.documents.config).clone(), resolve, 0)?;
            (Some(c), Some(base))
        }
        _ => (None, None),
    };
    let tls_error = match &tls {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    // Reflection over TLS with the gateway's own TLS client for the upstream, never in clear.
    let grpc = || async {
        let (authority, over_tls) = grpc_authority(u, cfg)?;
        let found = if over_tls {
            let t = tls.unwrap_or_else(|| Err("no TLS settings resolved".into()))?;
            super::functions::grpc_tls(&authority, t.reflection, cfg.probe_timeout).await
        } else {
            super::functions::grpc(&authority, cfg.probe_timeout).await
        };
        let scheme = if over_tls { "grpcs" } else { "grpc" };
        found.map(|d| Found::Grpc(format!("{scheme}://{authority}"), d))
    };
    if spec.is_some_and(|s| s.grpc.is_some() && s.rest.is_none()) {
        return grpc().await;
    }
    let explicit = spec
        .and_then(|s| s.rest.as_ref())
        .is_some_and(|r| r.swagger_info.is_some());
    let upstream = match tls_error {
        Some(e) => Err(e),
        None => Ok(documents.as_ref().zip(base.as_deref())),
    };
    match discover_document(client, u, cfg, upstream).await {
        Ok((url, doc)) => Ok(Found::Rest(url, doc)),
        Err(e) if explicit => Err(e),
        Err(e) => grpc().await.map_err(|g| format!("{e}; {g}")),
    }
}

/// The transformations a document gives, in Gloo's shape, and a warning for each function
/// left out: one whose templates do not build is skipped by name, never sinking the others
/// (a whole upstream with one bad template would be refused by validation).
fn transformations_of(doc: &ApiDocument) -> (IndexMap<String, Transformation>, Vec<String>) {
    let mut out = IndexMap::new();
    let mut skipped = Vec::new();
    for f in &doc.functions {
        let built = serde_json::from_value::<Transformation>(transformation(f))
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let texts = t.headers.values().chain(t.body.as_ref());
                for text in texts.filter_map(|tpl| tpl.text.as_deref()) {
                    crate::api::validate::check_jinja(text)?;
                }
                crate::gateway::function::Templates::compile(&t)?;
                Ok(t)
            });
        match built {
            Ok(t) => {
                out.insert(f.name.clone(), t);
            }
            Err(e) => skipped.push(format!("function {} skipped: {e}", f.name)),
        }
    }
    (out, skipped)
}

/// Applies a discovery result to an upstream; returns the new upstream if anything changed,
/// and the functions left out.
fn updated(
    u: &Upstream,
    url: &str,
    doc: &ApiDocument,
) -> Result<(Option<Upstream>, Vec<String>), String> {
    let mut next = u.clone();
    let (transformations, skipped) = transformations_of(doc);
    let Some(spec) = next.spec.service_spec_mut() else {
        return Err("the upstream type has no service spec".into());
    };
    let rest = spec.rest.get_or_insert_with(Default::default);
    if url != "inline" {
        let info = rest.swagger_info.get_or_insert_with(Default::default);
        info.url = Some(url.to_string());
    }
    rest.transformations = transformations;
    Ok(((next != *u).then_some(next), skipped))
}

/// Runs one discovery pass over `set`; writes changed upstreams through `store`.
pub async fn poll_once(
    store: &dyn Store,
    set: &ResourceSet,
    cfg: &FdsConfig,
    client: &HttpClient,
    only: Option<&[ResourceKey]>,
) -> DiscoveryState {
    let sem = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = Vec::new();
    for (key, r) in set {
        let Resource::Upstream(u) = r else { continue };
        if !selected(u, cfg) || only.is_some_and(|o| !o.contains(key)) {
            continue;
        }
        let creds = u.spec.aws.as_ref().map(|a| {
            crate::aws::upstream_credentials(a, set, &key.namespace).map_err(|e| e.to_string())
        });
        let tls = crate::gateway::table::speaks_tls(u).then(|| {
            let ns = &key.namespace;
            Ok(UpstreamTlsClients {
                documents: crate::gateway::table::upstream_tls(u, ns, set, false)?,
                reflection: crate::gateway::table::upstream_tls(u, ns, set, true)?,
            })
        });
        let (sem, client, cfg, u, key) = (
            sem.clone(),
            client.clone(),
            cfg.clone(),
            u.clone(),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let started = std::time::Instant::now();
            let result = discover_one(&client, &u, &cfg, creds, tls).await;
            (key, u, result, started.elapsed())
        }));
    }
    let mut state = DiscoveryState::new();
    let mut writes = Vec::new();
    for t in tasks {
        let Ok((key, u, result, took)) = t.await else {
            continue;
        };
        let mut s = UpstreamDiscovery {
            last_poll: Some(SystemTime::now()),
            poll_duration_ms: Some(took.as_millis() as u64),
            ..Default::default()
        };
        let result = result.and_then(|found| match found {
            Found::Rest(url, doc) => {
                s.kind = Some("rest".into());
                s.document_url = Some(url.clone());
                s.functions = doc.functions.len();
                s.warnings = doc.all_warnings();
                updated(&u, &url, &doc).map(|(next, skipped)| {
                    s.functions -= skipped.len();
                    s.warnings.extend(skipped);
                    next
                })
            }
            Found::Grpc(url, d) => {
                s.kind = Some("grpc".into());
                s.document_url = Some(url);
                s.functions = d.services.iter().map(|s| s.methods.len()).sum();
                super::functions::with_grpc(&u, &d)
            }
            Found::Lambda(endpoint, listed) => {
                s.kind = Some("lambda".into());
                s.document_url = Some(endpoint);
                s.functions = listed.len();
                Ok(super::functions::with_lambda(
                    &u,
                    super::functions::lambda_functions(&listed),
                ))
            }
        });
        match result {
            Err(e) => s.last_error = Some(e),
            Ok(None) => {}
            Ok(Some(_)) if cfg.leader.as_ref().is_some_and(|l| !*l.borrow()) => {
                // Another replica leads and writes; this one only serves.
            }
            Ok(Some(next)) => writes.push(Resource::Upstream(next)),
        }
        state.insert(key, s);
    }
    for (key, error) in write_upstreams(store, set, writes).await {
        if let Some(s) = state.get_mut(&key) {
            s.last_error = Some(error);
        }
    }
    state
}

/// Writes the upstreams a pass changed as one batch validated like the CLI's
/// (`control::writes`), against the listing the pass read (`set`): one that would be invalid
/// is not written and is logged; a conflict means someone else changed it and the next poll
/// tries again. Returns the upstreams not written, with why.
async fn write_upstreams(
    store: &dyn Store,
    set: &ResourceSet,
    writes: Vec<Resource>,
) -> Vec<(ResourceKey, String)> {
    if writes.is_empty() {
        return Vec::new();
    }
    let keys: Vec<ResourceKey> = writes.iter().map(Resource::key).collect();
    let results = match crate::control::writes::write_batch_on(store, set, writes).await {
        Ok(outcome) => outcome.results,
        Err(e) => return keys.into_iter().map(|k| (k, e.to_string())).collect(),
    };
    let mut failed = Vec::new();
    for (key, result) in keys.into_iter().zip(results) {
        let error = match result {
            Ok(_) => continue,
            Err(WriteError::Invalid(problems)) => {
                let reason = problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::warn!(upstream = %key, %reason, "discovered functions refused: the upstream would be invalid");
                format!("discovered functions are invalid: {reason}")
            }
            Err(e) => e.to_string(),
        };
        failed.push((key, error));
    }
    failed
}

/// What decides whether an upstream must be probed again before the next timer tick.
fn probe_identity(u: &Upstream, cfg: &FdsConfig) -> String {
    let info = u
        .spec
        .service_spec()
        .and_then(|s| s.rest.as_ref())
        .and_then(|r| r.swagger_info.as_ref());
    let aws = u.spec.aws.as_ref();
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        aws.map(|a| (&a.region, a.secret_ref.as_ref().map(|r| &r.name))),
        probe_base(u, cfg),
        info.and_then(|i| i.url.as_ref()),
        info.and_then(|i| i.inline.as_ref()).map(|s| s.len()),
        u.metadata.labels.get(FDS_LABEL)
    )
}

/// Runs discovery until the store's watch ends: at every interval for all selected upstreams,
/// and at once for upstreams that are new or whose address or document changed.
pub fn spawn(
    store: Arc<dyn Store>,
    cfg: FdsConfig,
    state_file: Option<std::path::PathBuf>,
) -> watch::Receiver<Arc<DiscoveryState>> {
    let (tx, rx) = watch::channel(Arc::new(DiscoveryState::new()));
    if cfg.mode == Mode::Disabled {
        return rx;
    }
    let mut changes = store.watch();
    tokio::spawn(async move {
        let client: HttpClient = match crate::net::document_client(0) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "function discovery cannot run");
                return;
            }
        };
        let mut seen: BTreeMap<ResourceKey, String> = BTreeMap::new();
        let mut all = DiscoveryState::new();
        let mut next_full = tokio::time::Instant::now();
        loop {
            // The listing is shared, not copied: a store of 10,000 routes is not duplicated
            // at every change.
            let listing = changes.borrow_and_update().clone();
            let set = &listing.resources;
            let now = tokio::time::Instant::now();
            let full = now >= next_full;
            let fresh: Vec<ResourceKey> = set
                .iter()
                .filter_map(|(k, r)| match r {
                    Resource::Upstream(u) if seen.get(k) != Some(&probe_identity(u, &cfg)) => {
                        Some(k.clone())
                    }
                    _ => None,
                })
                .collect();
            if full || !fresh.is_empty() {
                let only = if full { None } else { Some(fresh.as_slice()) };
                let found = poll_once(store.as_ref(), set, &cfg, &client, only).await;
                all.retain(|k, _| {
                    set.contains_key(k)
                        && set.get(k).is_some_and(
                            |r| matches!(r, Resource::Upstream(u) if selected(u, &cfg)),
                        )
                });
                all.extend(found);
                for (k, r) in set {
                    if let Resource::Upstream(u) = r {
                        seen.insert(k.clone(), probe_identity(u, &cfg));
                    }
                }
                seen.retain(|k, _| set.contains_key(k));
                if full {
                    next_full = now + cfg.poll_interval;
                }
                if let Some(f) = &state_file {
                    save_state(f, &all);
                }
                let _ = tx.send(Arc::new(all.clone()));
                drop(listing);
                crate::memory::give_back();
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(next_full) => {}
            }
        }
    });
    rx
}

/// Saves the state for other processes (`epoxy get upstream -o yaml`).
pub fn save_state(path: &std::path::Path, state: &DiscoveryState) {
    let m: BTreeMap<String, &UpstreamDiscovery> =
        state.iter().map(|(k, v)| (k.to_string(), v)).collect();
    if let Ok(text) = serde_json::to_string_pretty(&m) {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// Reads what a running discovery saved, by `upstreams/NS/NAME`.
pub fn load_state(path: &std::path::Path) -> BTreeMap<String, UpstreamDiscovery> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The file next to a directory store where discovery state is saved.
pub fn state_file(store_root: &std::path::Path) -> std::path::PathBuf {
    store_root.join(".epoxy-discovery.json")
}
