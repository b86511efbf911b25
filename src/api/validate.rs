//! Validation of a whole set of resources: every problem at once, each with the resource, the
//! field path and the reason. Errors refuse a resource; warnings (a reference that a later write
//! or discovery may still satisfy) are kept on its status, as Gloo does.

use super::duration::parse_duration;
use super::naming::{name_problem, namespace_problem};
use super::resource::{Kind, Resource, ResourceKey};
use super::strict::Finding;
use super::types::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding: `virtualservices/gloo-system/default: spec.virtualHost.routes[2]...: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: ResourceKey,
    pub path: String,
    pub reason: String,
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.key, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.key, self.path, self.reason)
        }
    }
}

/// The resources a validation sees, by key.
pub type ResourceSet = BTreeMap<ResourceKey, Resource>;

/// Collects problems for one resource.
struct Sink<'a> {
    key: &'a ResourceKey,
    out: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    fn error(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(path, reason, Severity::Error);
    }
    fn warn(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(path, reason, Severity::Warning);
    }
    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>, severity: Severity) {
        self.out.push(Problem {
            key: self.key.clone(),
            path: path.into(),
            reason: reason.into(),
            severity,
        });
    }
}

/// Validates every resource of `set` against the others.
pub fn validate(set: &ResourceSet) -> Vec<Problem> {
    let mut out = Vec::new();
    for (key, r) in set {
        let mut sink = Sink { key, out: &mut out };
        validate_meta(r, &mut sink);
        validate_keys(r, &mut sink);
        for (path, reason) in crate::policy::check::problems(r, set) {
            sink.error(path, reason);
        }
        match r {
            Resource::Upstream(u) => {
                validate_upstream(&u.spec, &mut sink);
                if let Some(ssl) = &u.spec.ssl_config {
                    validate_upstream_ssl(ssl, &key.namespace, set, &mut sink);
                }
            }
            Resource::UpstreamGroup(g) => validate_weighted(
                "spec.destinations",
                &g.spec.destinations,
                &key.namespace,
                set,
                &mut sink,
            ),
            Resource::VirtualService(vs) => {
                validate_domains(&vs.spec.virtual_host.domains, &mut sink);
                if let Some(ssl) = &vs.spec.ssl_config {
                    validate_ssl(ssl, &key.namespace, set, &mut sink);
                }
                warn_shadowed(
                    "spec.virtualHost.routes",
                    &vs.spec.virtual_host.routes,
                    &mut sink,
                );
                for (i, route) in vs.spec.virtual_host.routes.iter().enumerate() {
                    validate_route(
                        &format!("spec.virtualHost.routes[{i}]"),
                        route,
                        &key.namespace,
                        set,
                        &mut sink,
                    );
                }
            }
            Resource::Secret(s) => validate_secret(s, &mut sink),
            Resource::AuthConfig(_) | Resource::RateLimitConfig(_) => {}
            Resource::Gateway(gw) => validate_gateway(&gw.spec, &key.namespace, set, &mut sink),
            Resource::RouteTable(rt) => {
                warn_shadowed("spec.routes", &rt.spec.routes, &mut sink);
                for (i, route) in rt.spec.routes.iter().enumerate() {
                    validate_route(
                        &format!("spec.routes[{i}]"),
                        route,
                        &key.namespace,
                        set,
                        &mut sink,
                    );
                }
            }
        }
    }
    validate_domain_conflicts(set, &mut out);
    validate_sni_conflicts(set, &mut out);
    validate_gateway_addresses(set, &mut out);
    validate_delegation(set, &mut out);
    out
}

fn warn_shadowed(base: &str, routes: &[Route], sink: &mut Sink) {
    for (j, i) in super::shadow::shadowed_routes(routes) {
        sink.warn(
            format!("{base}[{j}]"),
            format!("this route can never match: {base}[{i}] before it matches every request it would (reorder with `epoxy route sort`)"),
        );
    }
}

/// Typos and Gloo fields epoxy cannot honour refuse the resource; other Gloo fields it does
/// not act on are named, each at its path.
fn validate_keys(r: &Resource, sink: &mut Sink) {
    for f in super::strict::check(r) {
        match f {
            Finding::Unknown {
                path,
                key,
                hint: Some(h),
            } => sink.error(path, format!("unknown field `{key}`; {h}")),
            Finding::Unknown {
                path,
                key,
                hint: None,
            } => sink.error(
                path,
                format!("unknown field `{key}`: Gloo has no such field here"),
            ),
            Finding::Kept { path } => sink.warn(path, "kept, not acted on"),
            Finding::Refused { path, why } => sink.error(path, why),
        }
    }
}

fn validate_meta(r: &Resource, sink: &mut Sink) {
    if let Some(p) = name_problem(r.name()) {
        sink.error("metadata.name", p);
    }
    if let Some(p) = namespace_problem(r.namespace()) {
        sink.error("metadata.namespace", p);
    }
}

/// A secret's data decodes; a TLS secret's certificate and key parse and belong together, so a
/// bad one is refused here, naming it, and the last good one keeps serving.
fn validate_secret(s: &super::secret::Secret, sink: &mut Sink) {
    use super::secret::{CA_CERT, SecretError, TLS_CERT, TLS_KEY};
    let data = match s.decoded() {
        Ok(d) => d,
        Err(SecretError::Base64 { field, reason, .. }) => {
            return sink.error(
                format!("data.{field}"),
                format!("not valid base64: {reason}"),
            );
        }
        Err(e) => return sink.error("data", e.to_string()),
    };
    if !s.is_tls() {
        return;
    }
    let at = |k: &str| {
        if s.tls.is_some() && !s.data.contains_key(k) && !s.string_data.contains_key(k) {
            match k {
                TLS_CERT => "tls.certChain".to_string(),
                TLS_KEY => "tls.privateKey".to_string(),
                _ => "tls.rootCa".to_string(),
            }
        } else if s.string_data.contains_key(k) {
            format!("stringData[{k:?}]")
        } else {
            format!("data[{k:?}]")
        }
    };
    let (Some(cert), Some(key)) = (data.get(TLS_CERT), data.get(TLS_KEY)) else {
        let missing = if data.contains_key(TLS_CERT) {
            TLS_KEY
        } else {
            TLS_CERT
        };
        return sink.error(
            "data",
            format!("a TLS secret needs `{TLS_CERT}` and `{TLS_KEY}`; `{missing}` is missing"),
        );
    };
    match crate::tls::certified_key(cert, key) {
        Ok(_) => {}
        Err(e @ crate::tls::TlsError::KeyMismatch) => sink.error(at(TLS_KEY), e.to_string()),
        Err(e @ (crate::tls::TlsError::NoKey | crate::tls::TlsError::BadKey(_))) => {
            sink.error(at(TLS_KEY), e.to_string())
        }
        Err(e) => sink.error(at(TLS_CERT), e.to_string()),
    }
    if let Some(ca) = data.get(CA_CERT)
        && let Err(e) = crate::tls::parse_certs(ca)
    {
        sink.error(at(CA_CERT), e.to_string());
    }
    if let Some(w) = crate::tls::CertInfo::of_pem(cert)
        .ok()
        .and_then(|info| info.expiry_warning())
    {
        sink.warn(at(TLS_CERT), w);
    }
}

const OTHER_UPSTREAM_TYPES: [&str; 7] =
    ["azure", "consul", "pipe", "gcp", "awsEc2", "ai", "failover"];

fn validate_upstream(spec: &UpstreamSpec, sink: &mut Sink) {
    if let Some(a) = &spec.aws {
        validate_aws(a, spec, sink);
        return;
    }
    match (&spec.kube, &spec.static_) {
        (Some(_), Some(_)) => sink.error(
            "spec",
            "an upstream has one type: `kube` or `static`, not both",
        ),
        (None, None) => {
            if let Some(t) = OTHER_UPSTREAM_TYPES
                .iter()
                .find(|t| spec.extra.contains_key(**t))
            {
                sink.warn(
                    format!("spec.{t}"),
                    format!("upstream type `{t}` is kept but epoxy does not route to it"),
                );
            } else {
                sink.error(
                    "spec",
                    "an upstream needs `static` (hosts) or `kube` (a service)",
                );
            }
        }
        _ => {}
    }
    if let Some(s) = &spec.static_ {
        if s.hosts.is_empty() {
            sink.error(
                "spec.static.hosts",
                "a static upstream needs at least one host",
            );
        }
        for (i, h) in s.hosts.iter().enumerate() {
            if h.addr.trim().is_empty() {
                sink.error(
                    format!("spec.static.hosts[{i}].addr"),
                    "an address is required",
                );
            }
            if h.port == 0 || h.port > 65535 {
                sink.error(
                    format!("spec.static.hosts[{i}].port"),
                    format!("port {} is not in 1-65535", h.port),
                );
            }
        }
    }
    if let Some(k) = &spec.kube {
        if k.service_name.is_empty() {
            sink.error("spec.kube.serviceName", "a service name is required");
        }
        if k.service_namespace.is_empty() {
            sink.error(
                "spec.kube.serviceNamespace",
                "a service namespace is required",
            );
        }
        if k.service_port == 0 || k.service_port > 65535 {
            sink.error(
                "spec.kube.servicePort",
                format!("port {} is not in 1-65535", k.service_port),
            );
        }
    }
    let base = if spec.kube.is_some() {
        "spec.kube.serviceSpec"
    } else {
        "spec.static.serviceSpec"
    };
    validate_transcoder(base, spec, sink);
    if let Some(rest) = spec.service_spec().and_then(|s| s.rest.as_ref()) {
        for (name, t) in &rest.transformations {
            let at = format!("{base}.rest.transformations.{name}");
            for (h, tpl) in &t.headers {
                if let Some(text) = &tpl.text
                    && let Err(e) = check_jinja(text)
                {
                    sink.error(format!("{at}.headers.{h}"), e);
                }
            }
            if let Some(text) = t.body.as_ref().and_then(|b| b.text.as_ref())
                && let Err(e) = check_jinja(text)
            {
                sink.error(format!("{at}.body"), e);
            }
        }
    }
}

/// `serviceSpec.grpcJsonTranscoder`: the descriptor set, the services and every
/// `google.api.http` rule compile, or the upstream is refused naming the field.
fn validate_transcoder(base: &str, spec: &UpstreamSpec, sink: &mut Sink) {
    let Some(t) = spec
        .service_spec()
        .and_then(|s| s.grpc_json_transcoder.as_ref())
    else {
        return;
    };
    // Refused by the schema, with its own reason.
    if t.extra.contains_key("protoDescriptorConfigMap") {
        return;
    }
    if let Err(e) = crate::grpc::transcode::Transcoder::compile(t, &|f| std::fs::read(f)) {
        sink.error(format!("{base}.grpcJsonTranscoder.{}", e.field), e.reason);
    }
}

/// A function template must parse as Inja/Jinja (the syntax Gloo uses).
pub(crate) fn check_jinja(text: &str) -> Result<(), String> {
    let mut env = minijinja::Environment::new();
    env.add_template("t", text)
        .map(|_| ())
        .map_err(|e| format!("invalid template: {}", e.detail().unwrap_or("syntax error")))
}

fn validate_domains(domains: &[String], sink: &mut Sink) {
    let mut seen = HashSet::new();
    for (i, d) in domains.iter().enumerate() {
        let at = format!("spec.virtualHost.domains[{i}]");
        if d.is_empty() {
            sink.error(at, "a domain cannot be empty");
            continue;
        }
        let stars = d.matches('*').count();
        if stars > 1 || (stars == 1 && !(d.starts_with('*') || d.ends_with('*'))) {
            sink.error(
                &at,
                format!("`{d}`: a wildcard may only lead or end a domain (`*`, `*.example.com`)"),
            );
        }
        if !seen.insert(d.to_ascii_lowercase()) {
            sink.error(at, format!("domain `{d}` is listed twice"));
        }
    }
}

/// The effective domains of a virtual service (none means every domain, as in Gloo).
pub fn effective_domains(vs: &VirtualServiceSpec) -> Vec<String> {
    if vs.virtual_host.domains.is_empty() {
        vec!["*".to_string()]
    } else {
        vs.virtual_host
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect()
    }
}

/// Two virtual services may not serve one domain on one listener: the plain listener serves
/// those without `sslConfig`, the TLS one those with it (a domain served on both is Gloo's
/// usual HTTP-to-HTTPS redirect).
fn validate_domain_conflicts(set: &ResourceSet, out: &mut Vec<Problem>) {
    let mut owners: HashMap<(bool, String), Vec<&ResourceKey>> = HashMap::new();
    for (key, r) in set {
        if let Resource::VirtualService(vs) = r {
            let ssl = vs.spec.ssl_config.is_some();
            for d in effective_domains(&vs.spec) {
                let list = owners.entry((ssl, d)).or_default();
                if !list.contains(&key) {
                    list.push(key);
                }
            }
        }
    }
    let mut domains: Vec<_> = owners.into_iter().filter(|(_, ks)| ks.len() > 1).collect();
    domains.sort();
    for ((_, domain), keys) in domains {
        for k in &keys {
            let others: Vec<String> = keys
                .iter()
                .filter(|o| *o != k)
                .map(|o| o.to_string())
                .collect();
            out.push(Problem {
                key: (*k).clone(),
                path: "spec.virtualHost.domains".into(),
                reason: format!("domain `{domain}` is also served by {}", others.join(", ")),
                severity: Severity::Error,
            });
        }
    }
}

/// A virtual service's TLS termination: one source of certificates (a TLS secret that exists,
/// or files), versions and suites epoxy can honour, SNI names that are names.
fn validate_ssl(ssl: &super::ssl::SslConfig, ns: &str, set: &ResourceSet, sink: &mut Sink) {
    let at = "spec.sslConfig";
    check_cert_source(at, &ssl.secret_ref, &ssl.ssl_files, true, ns, set, sink);
    check_parameters(at, ssl.parameters.as_ref(), sink);
    for (i, d) in ssl.sni_domains.iter().enumerate() {
        let stars = d.matches('*').count();
        if d.is_empty() || stars > 1 || (stars == 1 && !d.starts_with("*.")) {
            sink.error(
                format!("{at}.sniDomains[{i}]"),
                format!("`{d}` is not a server name (`example.com`, `*.example.com`)"),
            );
        }
    }
    let mut warnings = Vec::new();
    crate::tls::server::alpn(&ssl.alpn_protocols, &mut warnings);
    for w in warnings {
        sink.warn(at, w);
    }
    if !ssl.verify_subject_alt_name.is_empty() && ssl.one_way_tls == Some(true) {
        sink.error(
            format!("{at}.verifySubjectAltName"),
            "client certificates are not asked for with oneWayTls: their names cannot be verified",
        );
    }
}

/// An upstream's TLS origination: where its root and client certificate come from.
fn validate_upstream_ssl(
    ssl: &super::ssl::UpstreamSslConfig,
    ns: &str,
    set: &ResourceSet,
    sink: &mut Sink,
) {
    let at = "spec.sslConfig";
    check_cert_source(at, &ssl.secret_ref, &ssl.ssl_files, false, ns, set, sink);
    check_parameters(at, ssl.parameters.as_ref(), sink);
    for (i, p) in ssl.alpn_protocols.iter().enumerate() {
        if !matches!(p.as_str(), "h2" | "http/1.1") {
            sink.warn(
                format!("{at}.alpnProtocols[{i}]"),
                format!("epoxy speaks h2 and http/1.1 to upstreams; `{p}` is not offered"),
            );
        }
    }
}

/// `secretRef` or `sslFiles` (at most one; for termination, exactly one), and a secret that
/// exists and holds a certificate.
fn check_cert_source(
    at: &str,
    secret: &Option<ResourceRef>,
    files: &Option<super::ssl::SslFiles>,
    required: bool,
    ns: &str,
    set: &ResourceSet,
    sink: &mut Sink,
) {
    match (secret, files) {
        (Some(_), Some(_)) => sink.error(at, "give secretRef or sslFiles, not both"),
        (None, None) if required => sink.error(
            at,
            "needs a certificate: secretRef (a kubernetes.io/tls Secret) or sslFiles",
        ),
        (Some(r), None) => match super::secret::lookup_secret(set, r, ns) {
            Err(e) => sink.error(format!("{at}.secretRef"), e.to_string()),
            Ok(s) if required && !s.is_tls() => sink.error(
                format!("{at}.secretRef"),
                format!(
                    "secret {} is not a TLS secret (type {}, no tls.crt)",
                    s.key(),
                    s.effective_type()
                ),
            ),
            Ok(_) => {}
        },
        (None, Some(f)) => {
            let has = |v: &Option<String>| v.as_deref().is_some_and(|p| !p.is_empty());
            if required && !(has(&f.tls_cert) && has(&f.tls_key)) {
                sink.error(format!("{at}.sslFiles"), "needs tlsCert and tlsKey");
            }
            if has(&f.tls_cert) != has(&f.tls_key) {
                sink.error(format!("{at}.sslFiles"), "tlsCert and tlsKey go together");
            }
        }
        (None, None) => {}
    }
}

fn check_parameters(at: &str, p: Option<&super::ssl::SslParameters>, sink: &mut Sink) {
    let mut warnings = Vec::new();
    if let Err(e) = crate::tls::server::versions(p, &mut warnings) {
        sink.error(at, e);
    }
    let names = p.map(|p| p.cipher_suites.as_slice()).unwrap_or(&[]);
    if let Err(e) = crate::tls::server::provider_with(names, &mut warnings) {
        sink.error(at, e);
    }
    for w in warnings {
        sink.warn(at, w);
    }
}

/// On a TLS listener the certificate is chosen by SNI: two different `sslConfig`s may not
/// claim one name, nor may two both go without `sniDomains` (Gloo refuses both).
fn validate_sni_conflicts(set: &ResourceSet, out: &mut Vec<Problem>) {
    // Identical sslConfigs (in one namespace) share a chain, as in Gloo.
    let mut chains: BTreeMap<String, (Vec<String>, Vec<&ResourceKey>)> = BTreeMap::new();
    for (key, r) in set {
        if let Resource::VirtualService(vs) = r
            && let Some(ssl) = &vs.spec.ssl_config
        {
            let id = format!(
                "{}/{}",
                key.namespace,
                serde_json::to_string(ssl).unwrap_or_default()
            );
            let names = ssl
                .sni_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect();
            chains
                .entry(id)
                .or_insert_with(|| (names, Vec::new()))
                .1
                .push(key);
        }
    }
    let mut claims: BTreeMap<String, Vec<&Vec<&ResourceKey>>> = BTreeMap::new();
    for (names, keys) in chains.values() {
        if names.is_empty() {
            claims.entry(String::new()).or_default().push(keys);
        }
        for n in names {
            claims.entry(n.clone()).or_default().push(keys);
        }
    }
    for (name, groups) in claims {
        if groups.len() < 2 {
            continue;
        }
        let all: Vec<&ResourceKey> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        for k in &all {
            let others: Vec<String> = all
                .iter()
                .filter(|o| *o != k)
                .map(|o| o.to_string())
                .collect();
            let reason = if name.is_empty() {
                format!(
                    "another virtual service with a different sslConfig has no sniDomains either ({}): on one TLS gateway only one may go without; give each its sniDomains",
                    others.join(", ")
                )
            } else {
                format!(
                    "SNI name `{name}` is also claimed by {} with a different sslConfig",
                    others.join(", ")
                )
            };
            out.push(Problem {
                key: (*k).clone(),
                path: "spec.sslConfig.sniDomains".into(),
                reason,
                severity: Severity::Error,
            });
        }
    }
}

fn lookup<'a>(set: &'a ResourceSet, kind: Kind, r: &ResourceRef, ns: &str) -> Option<&'a Resource> {
    set.get(&ResourceKey::new(kind, r.namespace_or(ns), &r.name))
}

fn validate_route(at: &str, route: &Route, ns: &str, set: &ResourceSet, sink: &mut Sink) {
    for (j, m) in route.matchers.iter().enumerate() {
        validate_matcher(&format!("{at}.matchers[{j}]"), m, sink);
    }
    let actions = [
        route.route_action.is_some(),
        route.redirect_action.is_some(),
        route.direct_response_action.is_some(),
        route.delegate_action.is_some(),
    ]
    .iter()
    .filter(|a| **a)
    .count();
    match actions {
        0 => sink.error(at, "a route needs one action: routeAction, redirectAction, directResponseAction or delegateAction"),
        1 => {}
        _ => sink.error(at, "a route has exactly one action; this one has several"),
    }
    if let Some(a) = &route.route_action {
        validate_route_action(&format!("{at}.routeAction"), a, ns, set, sink);
    }
    if let Some(r) = &route.redirect_action {
        let at = format!("{at}.redirectAction");
        if r.path_redirect.is_some() && r.prefix_rewrite.is_some() {
            sink.error(&at, "pathRedirect and prefixRewrite cannot both be set");
        }
        if r.host_redirect.is_none()
            && r.path_redirect.is_none()
            && r.prefix_rewrite.is_none()
            && r.https_redirect != Some(true)
        {
            sink.error(
                &at,
                "a redirect needs hostRedirect, pathRedirect, prefixRewrite or httpsRedirect",
            );
        }
        if let Some(code) = &r.response_code
            && redirect_status(code).is_none()
        {
            sink.error(format!("{at}.responseCode"), format!("`{code}` is not a redirect code (MOVED_PERMANENTLY, FOUND, SEE_OTHER, TEMPORARY_REDIRECT, PERMANENT_REDIRECT or 301/302/303/307/308)"));
        }
    }
    if let Some(d) = &route.direct_response_action
        && !(100..=599).contains(&d.status)
    {
        sink.error(
            format!("{at}.directResponseAction.status"),
            format!("status {} is not in 100-599", d.status),
        );
    }
    if let Some(d) = &route.delegate_action {
        let dat = format!("{at}.delegateAction");
        match (d.reference(), &d.selector) {
            (None, None) => sink.error(&dat, "delegation needs `ref` or `selector`"),
            (Some(r), _) => {
                if r.name.is_empty() {
                    sink.error(format!("{dat}.ref.name"), "a route table name is required");
                } else if lookup(set, Kind::RouteTable, &r, ns).is_none() {
                    sink.warn(
                        format!("{dat}.ref"),
                        format!(
                            "route table `{}/{}` does not exist (yet)",
                            r.namespace_or(ns),
                            r.name
                        ),
                    );
                }
            }
            (None, Some(_)) => {}
        }
        for (j, m) in route.matchers.iter().enumerate() {
            if m.exact.is_some() || m.regex.is_some() {
                sink.error(
                    format!("{at}.matchers[{j}]"),
                    "a delegating route must match on a path prefix",
                );
            }
        }
    }
    if let Some(o) = &route.options {
        validate_options(&format!("{at}.options"), o, ns, set, sink);
    }
}

/// The HTTP status of a Gloo redirect response code (enum name or number).
pub fn redirect_status(code: &serde_json::Value) -> Option<u16> {
    match code {
        serde_json::Value::String(s) => match s.as_str() {
            "MOVED_PERMANENTLY" => Some(301),
            "FOUND" => Some(302),
            "SEE_OTHER" => Some(303),
            "TEMPORARY_REDIRECT" => Some(307),
            "PERMANENT_REDIRECT" => Some(308),
            _ => None,
        },
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(c @ (301 | 302 | 303 | 307 | 308)) => Some(c as u16),
            // Gloo's enum ordinals.
            Some(0) => Some(301),
            Some(1) => Some(302),
            Some(2) => Some(303),
            Some(3) => Some(307),
            Some(4) => Some(308),
            _ => None,
        },
        _ => None,
    }
}

/// Compiles a regex the way the gateway will (whole-path match, RE2 syntax).
pub fn compile_full_regex(re: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(s) => format!(
                "invalid regex `{re}`: {}",
                s.lines().last().unwrap_or("syntax error").trim()
            ),
            other => format!("invalid regex `{re}`: {other}"),
        })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn validate_matcher(at: &str, m: &Matcher, sink: &mut Sink) {
    let kinds = [m.prefix.is_some(), m.exact.is_some(), m.regex.is_some()]
        .iter()
        .filter(|k| **k)
        .count();
    if kinds > 1 {
        sink.error(at, "a matcher has one of prefix, exact or regex");
    }
    for (field, p) in [("prefix", &m.prefix), ("exact", &m.exact)] {
        if let Some(p) = p
            && !p.is_empty()
            && !p.starts_with('/')
        {
            sink.error(
                format!("{at}.{field}"),
                format!("`{p}` must start with '/'"),
            );
        }
    }
    if let Some(re) = &m.regex
        && let Err(e) = compile_full_regex(re)
    {
        sink.error(format!("{at}.regex"), e);
    }
    for (k, h) in m.headers.iter().enumerate() {
        let hat = format!("{at}.headers[{k}]");
        if !is_token(h.name.trim_start_matches(':')) {
            sink.error(
                format!("{hat}.name"),
                format!("`{}` is not a header name", h.name),
            );
        }
        if h.regex == Some(true) {
            match &h.value {
                Some(v) => {
                    if let Err(e) = compile_full_regex(v) {
                        sink.error(format!("{hat}.value"), e);
                    }
                }
                None => sink.error(
                    format!("{hat}.value"),
                    "a regex header matcher needs a value",
                ),
            }
        }
    }
    for (k, q) in m.query_parameters.iter().enumerate() {
        let qat = format!("{at}.queryParameters[{k}]");
        if q.name.is_empty() {
            sink.error(format!("{qat}.name"), "a query parameter name is required");
        }
        if q.regex == Some(true)
            && let Some(v) = &q.value
            && let Err(e) = compile_full_regex(v)
        {
            sink.error(format!("{qat}.value"), e);
        }
    }
    for (k, method) in m.methods.iter().enumerate() {
        if !is_token(method) {
            sink.error(
                format!("{at}.methods[{k}]"),
                format!("`{method}` is not an HTTP method"),
            );
        } else if method.to_ascii_uppercase() != *method {
            sink.warn(
                format!("{at}.methods[{k}]"),
                format!(
                    "methods match exactly; `{method}` will not match `{}`",
                    method.to_ascii_uppercase()
                ),
            );
        }
    }
}

fn validate_route_action(at: &str, a: &RouteAction, ns: &str, set: &ResourceSet, sink: &mut Sink) {
    let n = [
        a.single.is_some(),
        a.multi.is_some(),
        a.upstream_group.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if n != 1 {
        sink.error(
            at,
            "routeAction needs exactly one of single, multi or upstreamGroup",
        );
    }
    if let Some(d) = &a.single {
        validate_destination(&format!("{at}.single"), d, ns, set, sink);
    }
    if let Some(m) = &a.multi {
        validate_weighted(
            &format!("{at}.multi.destinations"),
            &m.destinations,
            ns,
            set,
            sink,
        );
    }
    if let Some(g) = &a.upstream_group {
        if g.name.is_empty() {
            sink.error(
                format!("{at}.upstreamGroup.name"),
                "an upstream group name is required",
            );
        } else if lookup(set, Kind::UpstreamGroup, g, ns).is_none() {
            sink.warn(
                format!("{at}.upstreamGroup"),
                format!(
                    "upstream group `{}/{}` does not exist (yet)",
                    g.namespace_or(ns),
                    g.name
                ),
            );
        }
    }
}

fn validate_weighted(
    at: &str,
    dests: &[WeightedDestination],
    ns: &str,
    set: &ResourceSet,
    sink: &mut Sink,
) {
    if dests.is_empty() {
        sink.error(at, "at least one destination is required");
        return;
    }
    if dests.iter().all(|d| d.weight.unwrap_or(0) == 0) {
        sink.error(
            at,
            "all weights are 0: at least one destination needs a weight above 0",
        );
    }
    for (i, d) in dests.iter().enumerate() {
        validate_destination(
            &format!("{at}[{i}].destination"),
            &d.destination,
            ns,
            set,
            sink,
        );
    }
}

/// An AWS upstream: a region, and functions with names (logical names unique).
fn validate_aws(a: &crate::api::AwsUpstream, spec: &UpstreamSpec, sink: &mut Sink) {
    if spec.kube.is_some() || spec.static_.is_some() {
        sink.error(
            "spec",
            "an upstream has one type: `aws`, `kube` or `static`",
        );
    }
    if a.region.trim().is_empty() {
        sink.error("spec.aws.region", "a region is required (like us-east-1)");
    }
    let mut seen = std::collections::HashSet::new();
    for (i, f) in a.lambda_functions.iter().enumerate() {
        let at = format!("spec.aws.lambdaFunctions[{i}]");
        if f.logical_name.is_empty() {
            sink.error(format!("{at}.logicalName"), "a logical name is required");
        } else if !seen.insert(f.logical_name.as_str()) {
            sink.error(
                format!("{at}.logicalName"),
                format!("`{}` is listed twice", f.logical_name),
            );
        }
        if f.lambda_function_name.is_empty() {
            sink.error(
                format!("{at}.lambdaFunctionName"),
                "a function name is required",
            );
        }
    }
}

/// A function parameters' extractor templates (`{var}`), each checked.
fn validate_parameters(at: &str, p: &crate::api::Parameters, sink: &mut Sink) {
    for (h, tpl) in &p.headers {
        if let Err(e) = check_extractor(tpl) {
            sink.error(format!("{at}.parameters.headers.{h}"), e);
        }
    }
    if let Some(path) = &p.path
        && let Err(e) = check_extractor(path)
    {
        sink.error(format!("{at}.parameters.path"), e);
    }
}

/// `destinationSpec.grpc` and `destinationSpec.aws`: required names, and a warning when the
/// upstream does not (yet) offer the function.
fn validate_other_function(
    at: &str,
    spec: &crate::api::DestinationSpec,
    target: Option<&Resource>,
    up: &str,
    sink: &mut Sink,
) {
    let upstream = match target {
        Some(Resource::Upstream(u)) => Some(&u.spec),
        _ => None,
    };
    if let Some(g) = &spec.grpc {
        let gat = format!("{at}.destinationSpec.grpc");
        for (field, v) in [("service", &g.service), ("function", &g.function)] {
            if v.is_empty() {
                sink.error(
                    format!("{gat}.{field}"),
                    format!("a {field} name is required"),
                );
            }
        }
        let path = crate::api::GrpcService {
            package_name: g.package.clone(),
            service_name: g.service.clone(),
            ..Default::default()
        }
        .method_path(&g.function);
        if let Some(u) = upstream
            && !u
                .functions()
                .iter()
                .any(|(k, n)| *k == crate::api::FunctionKind::Grpc && *n == path)
        {
            sink.warn(
                format!("{gat}.function"),
                format!("upstream `{up}` has no gRPC method `{path}` (yet)"),
            );
        }
        if let Some(p) = &g.parameters {
            validate_parameters(&gat, p, sink);
        }
    }
    if let Some(a) = &spec.aws {
        let aat = format!("{at}.destinationSpec.aws");
        if a.logical_name.is_empty() {
            sink.error(format!("{aat}.logicalName"), "a logical name is required");
        }
        if let Some(style) = &a.invocation_style
            && !matches!(style.as_str(), "SYNC" | "ASYNC")
        {
            sink.error(
                format!("{aat}.invocationStyle"),
                format!("`{style}` is not SYNC or ASYNC"),
            );
        }
        match upstream {
            Some(u) if u.aws.is_none() => sink.error(
                &aat,
                format!("upstream `{up}` is not an AWS upstream (`spec.aws`)"),
            ),
            Some(u)
                if !u.functions().iter().any(|(k, n)| {
                    *k == crate::api::FunctionKind::Lambda && *n == a.logical_name
                }) =>
            {
                sink.warn(
                    format!("{aat}.logicalName"),
                    format!(
                        "upstream `{up}` has no Lambda function `{}` (yet)",
                        a.logical_name
                    ),
                )
            }
            _ => {}
        }
    }
}

fn validate_destination(at: &str, d: &Destination, ns: &str, set: &ResourceSet, sink: &mut Sink) {
    if let Some(k) = &d.kube {
        let kat = format!("{at}.kube");
        if d.upstream.is_some() {
            sink.error(
                &kat,
                "a destination is an upstream or a `kube` service, not both",
            );
        }
        if k.ref_.name.is_empty() {
            sink.error(format!("{kat}.ref.name"), "a service name is required");
        }
        if k.port == 0 || k.port > 65535 {
            sink.error(
                format!("{kat}.port"),
                format!("port {} is not in 1-65535", k.port),
            );
        }
        if d.destination_spec.is_some() {
            sink.error(
                format!("{at}.destinationSpec"),
                "functions live on upstreams: call one through an upstream, not a `kube` destination",
            );
        }
        return;
    }
    let Some(up) = &d.upstream else {
        if d.extra.contains_key("consul") {
            sink.warn(
                format!("{at}.consul"),
                "`consul` destinations are kept but epoxy does not route to them",
            );
        } else {
            sink.error(format!("{at}.upstream"), "a destination needs an upstream");
        }
        return;
    };
    if up.name.is_empty() {
        sink.error(
            format!("{at}.upstream.name"),
            "an upstream name is required",
        );
        return;
    }
    let target = lookup(set, Kind::Upstream, up, ns);
    if target.is_none() {
        sink.warn(
            format!("{at}.upstream"),
            format!(
                "upstream `{}/{}` does not exist (yet)",
                up.namespace_or(ns),
                up.name
            ),
        );
    }
    if let Some(spec) = &d.destination_spec {
        validate_other_function(at, spec, target, &up.name, sink);
    }
    let Some(rest) = d.destination_spec.as_ref().and_then(|s| s.rest.as_ref()) else {
        return;
    };
    let rat = format!("{at}.destinationSpec.rest");
    if rest.function_name.is_empty() {
        sink.error(format!("{rat}.functionName"), "a function name is required");
    } else if let Some(Resource::Upstream(u)) = target
        && !u
            .spec
            .function_names()
            .contains(&rest.function_name.as_str())
    {
        sink.warn(
            format!("{rat}.functionName"),
            format!(
                "upstream `{}` has no function `{}` (yet)",
                up.name, rest.function_name
            ),
        );
    }
    if let Some(p) = &rest.parameters {
        validate_parameters(&rat, p, sink);
    }
}

/// The variable names of an extractor template like `/petstore/findWithId/{id}`.
pub fn extractor_variables(tpl: &str) -> Result<Vec<String>, String> {
    let mut vars = Vec::new();
    let mut rest = tpl;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(format!("`{tpl}`: '}}' without a matching '{{'"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{tpl}`: unclosed '{{'"))?;
        let name = &after[..close];
        if name.contains('{') {
            return Err(format!("`{tpl}`: unclosed '{{'"));
        }
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(format!("`{tpl}`: `{{{name}}}` is not a variable name"));
        }
        vars.push(name.to_string());
        rest = &after[close + 1..];
    }
    Ok(vars)
}

fn check_extractor(tpl: &str) -> Result<(), String> {
    extractor_variables(tpl).map(|_| ())
}

const RETRY_ON: [&str; 8] = [
    "5xx",
    "gateway-error",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "reset",
    "retriable-headers",
];

/// Gloo's fault filter: percentages 0-100, an abort status Envoy can send (200-599), a
/// delay that parses.
fn validate_faults(at: &str, f: &crate::api::RouteFaults, sink: &mut Sink) {
    let percentage = |field: String, p: Option<f64>, sink: &mut Sink| {
        if let Some(p) = p
            && !(0.0..=100.0).contains(&p)
        {
            sink.error(field, format!("{p} is not a percentage (0-100)"));
        }
    };
    if let Some(a) = &f.abort {
        percentage(format!("{at}.abort.percentage"), a.percentage, sink);
        match a.http_status {
            Some(s) if (200..=599).contains(&s) => {}
            Some(s) => sink.error(
                format!("{at}.abort.httpStatus"),
                format!("{s} is not a status an abort can answer (200-599)"),
            ),
            None => sink.error(format!("{at}.abort.httpStatus"), "an abort needs a status"),
        }
    }
    if let Some(d) = &f.delay {
        percentage(format!("{at}.delay.percentage"), d.percentage, sink);
        match d.fixed_delay.as_deref().map(parse_duration) {
            Some(Ok(_)) => {}
            Some(Err(e)) => sink.error(format!("{at}.delay.fixedDelay"), e),
            None => sink.error(format!("{at}.delay.fixedDelay"), "a delay needs fixedDelay"),
        }
    }
}

fn validate_options(at: &str, o: &RouteOptions, ns: &str, set: &ResourceSet, sink: &mut Sink) {
    if o.prefix_rewrite.is_some() && o.regex_rewrite.is_some() {
        sink.error(at, "prefixRewrite and regexRewrite cannot both be set");
    }
    if let Some(rr) = &o.regex_rewrite
        && let Err(e) = regex::Regex::new(&rr.pattern.regex)
    {
        sink.error(
            format!("{at}.regexRewrite.pattern.regex"),
            format!(
                "invalid regex: {}",
                e.to_string().lines().last().unwrap_or("").trim()
            ),
        );
    }
    if let Some(t) = &o.timeout
        && let Err(e) = parse_duration(t)
    {
        sink.error(format!("{at}.timeout"), e);
    }
    if let Some(f) = &o.faults {
        validate_faults(&format!("{at}.faults"), f, sink);
    }
    if let Some(r) = &o.retries {
        if let Some(on) = &r.retry_on {
            for cond in on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if !RETRY_ON.contains(&cond) {
                    sink.warn(
                        format!("{at}.retries.retryOn"),
                        format!(
                            "`{cond}` is not a retry condition epoxy knows ({})",
                            RETRY_ON.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(t) = &r.per_try_timeout
            && let Err(e) = parse_duration(t)
        {
            sink.error(format!("{at}.retries.perTryTimeout"), e);
        }
        if let Some(b) = &r.retry_back_off {
            let base = b.base_interval.as_deref().map(parse_duration);
            let max = b.max_interval.as_deref().map(parse_duration);
            for (field, d) in [("baseInterval", &base), ("maxInterval", &max)] {
                match d {
                    Some(Err(e)) => {
                        sink.error(format!("{at}.retries.retryBackOff.{field}"), e.clone())
                    }
                    Some(Ok(d)) if d.is_zero() => sink.error(
                        format!("{at}.retries.retryBackOff.{field}"),
                        "must be greater than zero".to_string(),
                    ),
                    _ => {}
                }
            }
            if let (Some(Ok(base)), Some(Ok(max))) = (&base, &max)
                && max < base
            {
                sink.error(
                    format!("{at}.retries.retryBackOff.maxInterval"),
                    "must not be less than baseInterval".to_string(),
                );
            }
        }
        for (i, c) in r.retriable_status_codes.iter().enumerate() {
            if !(100..=599).contains(c) {
                sink.error(
                    format!("{at}.retries.retriableStatusCodes[{i}]"),
                    format!("{c} is not an HTTP status"),
                );
            }
        }
    }
    if let Some(h) = &o.header_manipulation {
        for (list, name) in [
            (&h.request_headers_to_add, "requestHeadersToAdd"),
            (&h.response_headers_to_add, "responseHeadersToAdd"),
        ] {
            for (i, hv) in list.iter().enumerate() {
                if !is_token(&hv.header.key) {
                    sink.error(
                        format!("{at}.headerManipulation.{name}[{i}].header.key"),
                        format!("`{}` is not a header name", hv.header.key),
                    );
                }
                if hv.header.value.contains(['\r', '\n']) {
                    sink.error(
                        format!("{at}.headerManipulation.{name}[{i}].header.value"),
                        "a header value cannot contain a line break",
                    );
                }
            }
        }
    }
    if let Some(s) = &o.shadowing {
        match &s.upstream {
            Some(u) if lookup(set, Kind::Upstream, u, ns).is_none() => {
                sink.warn(
                    format!("{at}.shadowing.upstream"),
                    format!(
                        "upstream `{}/{}` does not exist (yet)",
                        u.namespace_or(ns),
                        u.name
                    ),
                );
            }
            None => sink.error(
                format!("{at}.shadowing.upstream"),
                "shadowing needs an upstream",
            ),
            _ => {}
        }
        if let Some(p) = s.percentage
            && !(0.0..=100.0).contains(&p)
        {
            sink.error(
                format!("{at}.shadowing.percentage"),
                format!("{p} is not in 0-100"),
            );
        }
    }
}

/// Checks every delegation: the child's paths must start with the parent's prefix, and a chain
/// of delegations must not loop.
fn validate_delegation(set: &ResourceSet, out: &mut Vec<Problem>) {
    for (key, r) in set {
        let (Some(routes), base) = (r.routes(), route_base(r)) else {
            continue;
        };
        for (i, route) in routes.iter().enumerate() {
            let Some(d) = &route.delegate_action else {
                continue;
            };
            let Some(child_ref) = d.reference() else {
                continue;
            };
            let child_key = ResourceKey::new(
                Kind::RouteTable,
                child_ref.namespace_or(&key.namespace),
                &child_ref.name,
            );
            let Some(Resource::RouteTable(child)) = set.get(&child_key) else {
                continue;
            };
            let parent_prefixes: Vec<&str> = route
                .matchers
                .iter()
                // A matcher without a path is prefix `/`.
                .filter_map(|m| match m.path() {
                    PathMatch::Prefix(p) => Some(p),
                    _ => None,
                })
                .collect();
            let parent_prefixes = if route.matchers.is_empty() {
                vec!["/"]
            } else {
                parent_prefixes
            };
            for (k, croute) in child.spec.routes.iter().enumerate() {
                for (m, cm) in croute.matchers.iter().enumerate() {
                    let path = match cm.path() {
                        PathMatch::Prefix(p) | PathMatch::Exact(p) => p,
                        PathMatch::Regex(_) => continue,
                    };
                    if !parent_prefixes.iter().any(|pp| path.starts_with(pp)) {
                        out.push(Problem {
                            key: child_key.clone(),
                            path: format!("spec.routes[{k}].matchers[{m}]"),
                            reason: format!(
                                "`{path}` does not start with the prefix `{}` of its parent {key} {base}[{i}]",
                                parent_prefixes.join("` or `")
                            ),
                            severity: Severity::Error,
                        });
                    }
                }
            }
            if let Some(cycle) = find_cycle(set, &child_key, key) {
                out.push(Problem {
                    key: key.clone(),
                    path: format!("{base}[{i}].delegateAction"),
                    reason: format!("delegation loops: {cycle}"),
                    severity: Severity::Error,
                });
            }
        }
    }
}

fn route_base(r: &Resource) -> &'static str {
    match r {
        Resource::VirtualService(_) => "spec.virtualHost.routes",
        _ => "spec.routes",
    }
}

/// Follows delegations from `start`; returns a description if they lead back to `origin`.
fn find_cycle(set: &ResourceSet, start: &ResourceKey, origin: &ResourceKey) -> Option<String> {
    let mut stack = vec![(start.clone(), vec![origin.to_string(), start.to_string()])];
    let mut seen = HashSet::new();
    while let Some((key, trail)) = stack.pop() {
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(routes) = set.get(&key).and_then(Resource::routes) else {
            continue;
        };
        for route in routes {
            let Some(next) = route.delegate_action.as_ref().and_then(|d| d.reference()) else {
                continue;
            };
            let next_key = ResourceKey::new(
                Kind::RouteTable,
                next.namespace_or(&key.namespace),
                &next.name,
            );
            let mut t = trail.clone();
            t.push(next_key.to_string());
            if &next_key == origin {
                return Some(t.join(" -> "));
            }
            stack.push((next_key, t));
        }
    }
    None
}

/// A Gateway: its address, what epoxy cannot serve, the virtual services it names, and its
/// `httpLocalRatelimit` (built as the gateway builds it).
fn validate_gateway(g: &super::gateway::GatewaySpec, ns: &str, set: &ResourceSet, sink: &mut Sink) {
    use super::gateway::LOCAL_RATELIMIT_AT;
    if let Err(e) = g.address() {
        let (path, reason) = e.split_once(": ").unwrap_or(("spec", e.as_str()));
        sink.error(path, reason);
    }
    if g.use_proxy_proto == Some(true) {
        sink.error(
            "spec.useProxyProto",
            "epoxy does not read the PROXY protocol: every connection would fail to parse",
        );
    }
    for (i, k) in g.virtual_service_refs(ns).iter().enumerate() {
        if !set.contains_key(k) {
            sink.warn(
                format!("spec.httpGateway.virtualServices[{i}]"),
                format!("virtual service {}.{} does not exist", k.namespace, k.name),
            );
        }
    }
    match g.local_ratelimit() {
        Err(e) => sink.error(LOCAL_RATELIMIT_AT, e),
        Ok(None) => {}
        Ok(Some(l)) => {
            if l.local_rate_limit_per_downstream_connection == Some(true) {
                sink.error(
                    format!("{LOCAL_RATELIMIT_AT}.localRateLimitPerDownstreamConnection"),
                    "epoxy keeps one bucket per gateway, not one per connection; refused so that no other limit is applied than the one asked",
                );
            }
            if let Some(b) = &l.default_limit {
                let at = format!("{LOCAL_RATELIMIT_AT}.defaultLimit");
                let runtime = crate::policy::Runtime::default();
                if let Err(e) = crate::policy::limit::bucket(&at, "", b, &runtime) {
                    let (path, reason) = e.split_once(": ").unwrap_or((at.as_str(), e.as_str()));
                    sink.error(path, reason);
                }
            }
        }
    }
}

/// Two Gateways on one address (or one on every address and another on the same port) cannot
/// both listen: each is refused, naming the other.
fn validate_gateway_addresses(set: &ResourceSet, out: &mut Vec<Problem>) {
    let gateways: Vec<(&ResourceKey, std::net::SocketAddr)> = set
        .iter()
        .filter_map(|(k, r)| match r {
            Resource::Gateway(g) => g.spec.address().ok().map(|a| (k, a)),
            _ => None,
        })
        .collect();
    for (k, a) in &gateways {
        let clash: Vec<String> = gateways
            .iter()
            .filter(|(o, b)| {
                o != k
                    && a.port() == b.port()
                    && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
            })
            .map(|(o, b)| format!("{o} ({b})"))
            .collect();
        if !clash.is_empty() {
            out.push(Problem {
                key: (*k).clone(),
                path: "spec.bindPort".into(),
                reason: format!(
                    "{a} is also the address of {}: two Gateways cannot listen on one address",
                    clash.join(", ")
                ),
                severity: Severity::Error,
            });
        }
    }
}
