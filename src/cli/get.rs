//! `epoxy get KIND [NAME]` and `epoxy get vs route [VS]`.

use super::output::{Table, print_values, with_status};
use super::{Global, OutputFormat};
use crate::api::status::{Status, statuses};
use crate::api::{Kind, Matcher, PathMatch, Resource, ResourceKey, Route, validate};

use crate::tls::describe::VsTls;
use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct GetArgs {
    /// upstreams (us), virtualservices (vs), routetables (rt), upstreamgroups (ug), secrets,
    /// gateways (gw), authconfigs (ac), ratelimitconfigs (rlc)
    pub kind: String,
    /// A name; or, after `vs`: `route [VS]` for the route table of a virtual service
    pub args: Vec<String>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

pub async fn run(g: &Global, a: GetArgs) -> Result<()> {
    let Some(kind) = Kind::parse(&a.kind) else {
        bail!(
            "unknown kind `{}`: use upstreams (us), virtualservices (vs), routetables (rt), upstreamgroups (ug), secrets, gateways (gw), authconfigs (ac) or ratelimitconfigs (rlc)",
            a.kind
        );
    };
    let store = g.store().await?;
    let listing = store.list().await?;
    for e in &listing.errors {
        eprintln!("warning: {e} (skipped)");
    }
    for note in listing.unavailable_notes() {
        eprintln!("note: {note}");
    }
    let problems = validate(&listing.resources);
    let status_of = statuses(listing.resources.keys(), &problems);
    let accepted = Status::accepted();
    // Discovery that fails is the upstream's warning, in full (its functions may be stale).
    let discovery =
        crate::discovery::fds::load_state(&crate::discovery::fds::state_file(&g.state_dir()));
    // A virtual service's listener and certificate, read as the gateway would read it.
    let tls_of = |k: &ResourceKey| match listing.resources.get(k) {
        Some(Resource::VirtualService(vs)) => Some(VsTls::from_store(k, vs, &listing.resources)),
        _ => None,
    };
    let status = |k: &ResourceKey| {
        let mut st = status_of.get(k).unwrap_or(&accepted).clone();
        // A certificate about to expire is the virtual service's warning too (as the gateway
        // reports it), where the user looks.
        if st.state != crate::api::status::State::Rejected
            && let Some(w) = tls_of(k).and_then(|t| t.warning())
        {
            if st.state == crate::api::status::State::Accepted {
                st.state = crate::api::status::State::Warning;
            }
            st.warnings.push(format!("spec.sslConfig: {w}"));
        }
        if let Some(err) = discovery
            .get(&k.to_string())
            .and_then(|d| d.last_error.as_ref())
        {
            if st.state == crate::api::status::State::Accepted {
                st.state = crate::api::status::State::Warning;
            }
            st.warnings.push(format!("discovery failed: {err}"));
        }
        st
    };

    if matches!(kind, Kind::VirtualService | Kind::RouteTable)
        && matches!(a.args.first().map(String::as_str), Some("route" | "routes"))
    {
        let name = match a.args.get(1) {
            Some(n) => n.clone(),
            None => super::routes::default_vs_name(&listing, &g.namespace).ok_or_else(|| {
                anyhow::anyhow!("no virtual service in namespace {}; name one", g.namespace)
            })?,
        };
        let key = ResourceKey::new(kind, &g.namespace, &name);
        let Some(r) = listing.resources.get(&key) else {
            bail!("{key} not found");
        };
        let routes = r.routes().cloned().unwrap_or_default();
        match a.output {
            OutputFormat::Table => print!("{}", routes_table(&routes)),
            f => print_values(
                routes
                    .iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect(),
                f,
                false,
            ),
        }
        return Ok(());
    }

    let name = a.args.first();
    let selected: Vec<&Resource> = listing
        .of_kind(kind)
        .filter(|r| r.namespace() == g.namespace)
        .filter(|r| name.is_none_or(|n| r.name() == n))
        .collect();
    if let Some(n) = name
        && selected.is_empty()
    {
        bail!("{} not found", ResourceKey::new(kind, &g.namespace, n));
    }
    match a.output {
        OutputFormat::Table => {
            let mut t = match kind {
                Kind::Upstream => {
                    Table::new(&["UPSTREAM", "TYPE", "STATUS", "ADDRESS", "FUNCTIONS"])
                }
                Kind::VirtualService => Table::new(&[
                    "VIRTUAL SERVICE",
                    "DOMAINS",
                    "ROUTES",
                    "LISTENER",
                    "CERTIFICATE",
                    "STATUS",
                ]),
                Kind::RouteTable => Table::new(&["ROUTE TABLE", "ROUTES", "STATUS"]),
                Kind::UpstreamGroup => Table::new(&["UPSTREAM GROUP", "DESTINATIONS", "STATUS"]),
                Kind::Secret => Table::new(&["SECRET", "TYPE", "KEYS", "CERTIFICATE", "STATUS"]),
                Kind::AuthConfig => Table::new(&["AUTH CONFIG", "CONFIGS", "STATUS"]),
                Kind::RateLimitConfig => Table::new(&["RATE LIMIT CONFIG", "STATUS"]),
                Kind::Gateway => {
                    Table::new(&["GATEWAY", "ADDRESS", "SSL", "VIRTUAL SERVICES", "STATUS"])
                }
            };
            for r in &selected {
                let st = status(&r.key()).state.as_str().to_string();
                t.row(match r {
                    Resource::Upstream(u) => {
                        let (ty, addr) = match (&u.spec.kube, &u.spec.static_) {
                            (Some(k), _) => (
                                "kube",
                                format!(
                                    "{}.{}:{}",
                                    k.service_name, k.service_namespace, k.service_port
                                ),
                            ),
                            (None, Some(s)) => (
                                "static",
                                s.hosts
                                    .iter()
                                    .map(|h| format!("{}:{}", h.addr, h.port))
                                    .collect::<Vec<_>>()
                                    .join(","),
                            ),
                            _ if u.spec.aws.is_some() => (
                                "aws",
                                u.spec
                                    .aws
                                    .as_ref()
                                    .map(|a| a.region.clone())
                                    .unwrap_or_default(),
                            ),
                            _ => ("other", String::new()),
                        };
                        vec![
                            r.name().into(),
                            ty.into(),
                            st,
                            addr,
                            functions_column(&u.spec),
                        ]
                    }
                    Resource::VirtualService(vs) => {
                        let tls = VsTls::from_store(&r.key(), vs, &listing.resources);
                        vec![
                            r.name().into(),
                            vs.spec.virtual_host.domains.join(", "),
                            vs.spec.virtual_host.routes.len().to_string(),
                            tls.listener.clone(),
                            tls.certificate(),
                            st,
                        ]
                    }
                    Resource::RouteTable(rt) => {
                        vec![r.name().into(), rt.spec.routes.len().to_string(), st]
                    }
                    Resource::Secret(s) => vec![
                        r.name().into(),
                        s.effective_type().into(),
                        s.key_names().join(","),
                        secret_certificate(s),
                        st,
                    ],
                    Resource::UpstreamGroup(ug) => vec![
                        r.name().into(),
                        ug.spec
                            .destinations
                            .iter()
                            .map(|d| {
                                format!(
                                    "{}({})",
                                    d.destination
                                        .upstream
                                        .as_ref()
                                        .map(|u| u.name.as_str())
                                        .unwrap_or("?"),
                                    d.weight.unwrap_or(0)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        st,
                    ],
                    Resource::AuthConfig(ac) => vec![
                        r.name().into(),
                        crate::policy::spec::auth_config_kinds(&ac.spec).join(", "),
                        st,
                    ],
                    Resource::RateLimitConfig(_) => vec![r.name().into(), st],
                    Resource::Gateway(g) => vec![
                        r.name().into(),
                        g.spec
                            .address()
                            .map(|a| a.to_string())
                            .unwrap_or_else(|_| "?".into()),
                        if g.spec.ssl { "yes" } else { "no" }.into(),
                        gateway_selection(&g.spec, r.namespace()),
                        st,
                    ],
                });
            }
            print!("{}", t.render());
            for r in &selected {
                for w in status(&r.key()).warnings {
                    if w.starts_with("discovery failed") || w.starts_with("spec.sslConfig: ") {
                        eprintln!("warning: {}: {w}", r.key());
                    }
                }
            }
        }
        f => print_values(
            selected
                .iter()
                .map(|r| {
                    let mut v = with_status(r, &status(&r.key()));
                    if let Some(d) = discovery.get(&r.key().to_string()) {
                        v["status"]["discovery"] = serde_json::to_value(d).unwrap_or_default();
                    }
                    if let Some(t) = tls_of(&r.key()) {
                        v["status"]["tls"] = t.to_json();
                    }
                    v
                })
                .collect(),
            f,
            name.is_some(),
        ),
    }
    Ok(())
}

/// A TLS secret's certificate in a few words (subject, days left); `-` for other secrets.
fn secret_certificate(s: &crate::api::Secret) -> String {
    if !s.is_tls() {
        return "-".into();
    }
    let cert = s.value(crate::api::secret::TLS_CERT);
    match cert.map(|c| crate::tls::CertInfo::of_pem(&c)) {
        Ok(Ok(info)) => info.summary(),
        Ok(Err(e)) => format!("unreadable: {e}"),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// glooctl's route table: index, matcher, type, methods, headers, query, destination,
/// function; a route with several matchers has a line for each (any of them matches).
pub fn routes_table(routes: &[Route]) -> String {
    let mut t = Table::new(&[
        "#",
        "MATCHER",
        "TYPE",
        "METHODS",
        "HEADERS",
        "QUERY",
        "DESTINATION",
        "FUNCTION",
    ]);
    let catch_all = [Matcher::default()];
    for (i, r) in routes.iter().enumerate() {
        let (dest, function) = describe_action(r);
        let matchers = if r.matchers.is_empty() {
            &catch_all[..]
        } else {
            &r.matchers
        };
        for m in matchers {
            let (kind, path) = match m.path() {
                PathMatch::Prefix(p) => ("Prefix", p),
                PathMatch::Exact(p) => ("Exact", p),
                PathMatch::Regex(p) => ("Regex", p),
            };
            let kind = if m.case_sensitive == Some(false) {
                format!("{kind} (any case)")
            } else {
                kind.to_string()
            };
            let headers = m.headers.iter().map(|h| {
                let not = if h.invert_match == Some(true) {
                    "!"
                } else {
                    ""
                };
                condition(&format!("{not}{}", h.name), h.value.as_deref(), h.regex)
            });
            let query = m
                .query_parameters
                .iter()
                .map(|q| condition(&q.name, q.value.as_deref(), q.regex));
            t.row(vec![
                i.to_string(),
                path.to_string(),
                kind,
                m.methods.join(","),
                headers.collect::<Vec<_>>().join(","),
                query.collect::<Vec<_>>().join(","),
                dest.clone(),
                function.clone(),
            ]);
        }
    }
    t.render()
}

/// `name=value`, `name~regex`, or `name` when any value will do.
fn condition(name: &str, value: Option<&str>, regex: Option<bool>) -> String {
    match value.filter(|v| !v.is_empty()) {
        None => name.to_string(),
        Some(v) if regex == Some(true) => format!("{name}~{v}"),
        Some(v) => format!("{name}={v}"),
    }
}

/// A route's destination and function, in a few words.
pub fn describe_action(r: &Route) -> (String, String) {
    r.describe_destination()
        .unwrap_or_else(|| ("-".into(), String::new()))
}

/// The FUNCTIONS column: REST functions by name; gRPC methods, Lambda functions and the
/// methods a gRPC-JSON transcoder serves by kind, count and names (`grpc 4:
/// shop.v1.Pets/GetPet, ...`). A transcoder's `protoDescriptor` file is read from this
/// machine (none listed when it cannot be).
fn functions_column(spec: &crate::api::UpstreamSpec) -> String {
    use crate::api::FunctionKind;
    let all = spec.functions_reading(&|p| std::fs::read(p));
    let mut parts = Vec::new();
    let rest: Vec<&str> = all
        .iter()
        .filter(|(k, _)| *k == FunctionKind::Rest)
        .map(|(_, n)| n.as_str())
        .collect();
    if !rest.is_empty() {
        parts.push(rest.join(", "));
    }
    for kind in [
        FunctionKind::Grpc,
        FunctionKind::Lambda,
        FunctionKind::GrpcJson,
    ] {
        let names: Vec<&str> = all
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.as_str())
            .collect();
        if !names.is_empty() {
            parts.push(format!(
                "{} {}: {}",
                kind.as_str(),
                names.len(),
                names.join(", ")
            ));
        }
    }
    parts.join("; ")
}

/// Which virtual services a Gateway serves, as its table row says it.
fn gateway_selection(g: &crate::api::gateway::GatewaySpec, ns: &str) -> String {
    let Some(h) = &g.http_gateway else {
        return "all".into();
    };
    if !h.virtual_services.is_empty() {
        return g
            .virtual_service_refs(ns)
            .iter()
            .map(|k| format!("{}.{}", k.namespace, k.name))
            .collect::<Vec<_>>()
            .join(", ");
    }
    if !h.virtual_service_selector.is_empty() {
        return h
            .virtual_service_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
    }
    if !h.virtual_service_namespaces.is_empty() {
        return format!("namespaces {}", h.virtual_service_namespaces.join(", "));
    }
    "all".into()
}
