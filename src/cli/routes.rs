//! Route commands: `add route`, `remove route`, `route create`, `route sort`.

use super::Global;
use super::write::{print_warnings, refusal};
use crate::api::{
    Destination, DestinationSpec, HeaderMatcher, Kind, Matcher, Parameters, QueryParameterMatcher,
    Resource, ResourceKey, ResourceRef, RestDestination, Route, RouteAction, RouteOptions,
};
use crate::control::routes::{self, Applied, Position, RouteEdit, RouteError};
use crate::store::{Listing, Store};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use indexmap::IndexMap;

#[derive(Subcommand, Debug)]
pub enum AddCommand {
    /// Add a route (at --index, default 0: first) to a virtual service
    Route(AddRoute),
}

#[derive(Subcommand, Debug)]
pub enum RemoveCommand {
    /// Remove a route (by --index or --route-name) from a virtual service
    Route {
        #[arg(long, short = 'x', required_unless_present = "route_name")]
        index: Option<usize>,
        /// The route's name (epoxy names the routes it creates)
        #[arg(long, conflicts_with = "index")]
        route_name: Option<String>,
        /// Virtual service [default: the first with domain `*`]
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// Create a route (the original walkthrough's form)
    Create(RouteCreate),
    /// Sort routes so that the more specific match first (glooctl's order)
    Sort {
        /// Virtual service [default: the first with domain `*`]
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Args, Debug, Default)]
#[group(id = "path", multiple = false)]
pub struct PathFlags {
    /// Match this exact path
    #[arg(long, group = "path")]
    pub path_exact: Option<String>,
    /// Match paths that start with this prefix
    #[arg(long, group = "path")]
    pub path_prefix: Option<String>,
    /// Match paths that this regex matches whole (RE2 syntax)
    #[arg(long, group = "path")]
    pub path_regex: Option<String>,
}

#[derive(Args, Debug)]
pub struct AddRoute {
    #[command(flatten)]
    pub path: PathFlags,
    /// HTTP methods to match (repeat or comma-separate)
    #[arg(long, value_delimiter = ',')]
    pub method: Vec<String>,
    /// Header to match: NAME=VALUE, or NAME alone for presence
    #[arg(long)]
    pub header: Vec<String>,
    /// Query parameter to match: NAME=VALUE
    #[arg(long = "queryParameter", alias = "query-parameter")]
    pub query_parameter: Vec<String>,
    /// Destination upstream
    #[arg(long, short = 'u')]
    pub dest_name: Option<String>,
    /// Namespace of the destination upstream [default: --namespace]
    #[arg(long)]
    pub dest_namespace: Option<String>,
    /// Destination upstream group (instead of --dest-name)
    #[arg(long, conflicts_with = "dest_name")]
    pub upstream_group_name: Option<String>,
    #[arg(long)]
    pub upstream_group_namespace: Option<String>,
    /// The REST function to call on the destination
    #[arg(long, short = 'f', requires = "dest_name")]
    pub rest_function_name: Option<String>,
    /// Where the function's variables come from: HEADER=TEMPLATE, e.g. ':path=/pets/{id}'
    #[arg(long, value_delimiter = ',', requires = "rest_function_name")]
    pub rest_parameters: Vec<String>,
    /// Replace the matched prefix with this
    #[arg(long)]
    pub prefix_rewrite: Option<String>,
    /// Position of the new route (0 = first)
    #[arg(long, short = 'x', default_value_t = 0)]
    pub index: usize,
    /// The route's name, unique in its virtual service [default: from its path]
    #[arg(long)]
    pub route_name: Option<String>,
    /// Virtual service [default: the first with domain `*`, else a new `default`]
    #[arg(long)]
    pub name: Option<String>,
    /// Print the virtual service that would be written, and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct RouteCreate {
    #[command(flatten)]
    pub path: PathFlags,
    /// Destination upstream
    #[arg(long)]
    pub upstream: String,
    /// The REST function to call
    #[arg(long)]
    pub function: Option<String>,
    #[arg(long)]
    pub prefix_rewrite: Option<String>,
    /// HTTP method to match (repeat or comma-separate)
    #[arg(long, value_delimiter = ',')]
    pub http_method: Vec<String>,
    /// YAML file (or `-`) with route extensions, e.g. `parameters: {headers: {x-pet: '{id}'}}`
    #[arg(long)]
    pub extensions: Option<String>,
    /// Position of the new route (0 = first)
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Virtual service [default: the first with domain `*`, else a new `default`]
    #[arg(long)]
    pub name: Option<String>,
}

/// The virtual service a route command acts on when none is named: the first (by name) in the
/// namespace that serves every domain.
pub fn default_vs_name(listing: &Listing, ns: &str) -> Option<String> {
    listing
        .of_kind(Kind::VirtualService)
        .filter(|r| r.namespace() == ns)
        .find(|r| match r {
            Resource::VirtualService(vs) => {
                vs.spec.virtual_host.domains.is_empty()
                    || vs.spec.virtual_host.domains.iter().any(|d| d == "*")
            }
            _ => false,
        })
        .map(|r| r.name().to_string())
}

/// The virtual service a route command acts on: the one named, else the default one, else
/// (when `create` allows it) `default`, created by the write.
async fn target_vs(
    store: &dyn Store,
    ns: &str,
    name: Option<String>,
    create: bool,
) -> Result<ResourceKey> {
    let listing = store.list().await?;
    let name = match name.or_else(|| default_vs_name(&listing, ns)) {
        Some(n) => n,
        None if create => "default".to_string(),
        None => {
            bail!("no virtual service in namespace {ns} serves domain `*`; name one with --name")
        }
    };
    Ok(ResourceKey::new(Kind::VirtualService, ns, &name))
}

/// Applies a route edit through the one place route edits live; a refusal exits 1.
async fn edit(
    store: &dyn Store,
    key: &ResourceKey,
    e: &RouteEdit,
    create: bool,
) -> Result<Applied> {
    match routes::apply(store, key, e, create).await {
        Ok(a) => {
            print_warnings(&a.written.warnings);
            Ok(a)
        }
        Err(RouteError::Write(w)) => Err(refusal(w)),
        Err(e) => Err(anyhow!("refused: {e}")),
    }
}

fn matcher(
    path: &PathFlags,
    methods: &[String],
    headers: &[String],
    query: &[String],
) -> Result<Matcher> {
    let mut m = Matcher::default();
    match (&path.path_exact, &path.path_prefix, &path.path_regex) {
        (Some(e), _, _) => m.exact = Some(e.clone()),
        (_, Some(p), _) => m.prefix = Some(p.clone()),
        (_, _, Some(r)) => m.regex = Some(r.clone()),
        _ => m.prefix = Some("/".into()),
    }
    m.methods = methods
        .iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    for h in headers {
        let (name, value) = match h.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (h.as_str(), None),
        };
        m.headers.push(HeaderMatcher {
            name: name.to_string(),
            value,
            ..Default::default()
        });
    }
    for q in query {
        let (name, value) = q
            .split_once('=')
            .ok_or_else(|| anyhow!("--queryParameter `{q}`: expected NAME=VALUE"))?;
        m.query_parameters.push(QueryParameterMatcher {
            name: name.to_string(),
            value: Some(value.to_string()),
            ..Default::default()
        });
    }
    Ok(m)
}

fn rest_destination(
    function: Option<String>,
    parameters: Option<Parameters>,
) -> Option<DestinationSpec> {
    function.map(|f| DestinationSpec {
        rest: Some(RestDestination {
            function_name: f,
            parameters,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn upstream_action(name: String, ns: Option<String>, spec: Option<DestinationSpec>) -> RouteAction {
    RouteAction {
        single: Some(Destination {
            upstream: Some(ResourceRef {
                name,
                namespace: ns,
                ..Default::default()
            }),
            destination_spec: spec,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rewrite_options(prefix_rewrite: Option<String>) -> Option<Box<RouteOptions>> {
    prefix_rewrite.map(|p| {
        Box::new(RouteOptions {
            prefix_rewrite: Some(p),
            ..Default::default()
        })
    })
}

/// Inserts `route` into the virtual service at `index` and writes it.
async fn insert_route(
    g: &Global,
    name: Option<String>,
    index: usize,
    route: Route,
    dry_run: bool,
) -> Result<()> {
    let store = g.store().await?;
    let key = target_vs(store.as_ref(), &g.namespace, name, true).await?;
    let e = RouteEdit::Insert {
        route: Box::new(route),
        at: Position::Index(index),
    };
    if dry_run {
        let vs = routes::preview(store.as_ref(), &key, &e)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        print!("{}", vs.to_yaml());
        return Ok(());
    }
    let a = edit(store.as_ref(), &key, &e, true).await?;
    let name = a.route.and_then(|r| r.name).unwrap_or_default();
    println!("route {} added to {key} (named {name})", a.index);
    Ok(())
}

pub async fn add(g: &Global, c: AddCommand) -> Result<()> {
    let AddCommand::Route(a) = c;
    let m = matcher(&a.path, &a.method, &a.header, &a.query_parameter)?;
    let action = if let Some(group) = a.upstream_group_name {
        RouteAction {
            upstream_group: Some(ResourceRef {
                name: group,
                namespace: a.upstream_group_namespace.or(Some(g.namespace.clone())),
                ..Default::default()
            }),
            ..Default::default()
        }
    } else {
        let dest = a.dest_name.ok_or_else(|| {
            anyhow!(
                "a destination is required: --dest-name UPSTREAM or --upstream-group-name GROUP"
            )
        })?;
        let mut headers = IndexMap::new();
        for p in &a.rest_parameters {
            let (h, t) = p
                .split_once('=')
                .ok_or_else(|| anyhow!("--rest-parameters `{p}`: expected HEADER=TEMPLATE"))?;
            headers.insert(h.to_string(), t.to_string());
        }
        let params = (!headers.is_empty()).then(|| Parameters {
            headers,
            ..Default::default()
        });
        upstream_action(
            dest,
            a.dest_namespace.or(Some(g.namespace.clone())),
            rest_destination(a.rest_function_name, params),
        )
    };
    let route = Route {
        matchers: vec![m],
        route_action: Some(Box::new(action)),
        options: rewrite_options(a.prefix_rewrite),
        name: a.route_name,
        ..Default::default()
    };
    insert_route(g, a.name, a.index, route, a.dry_run).await
}

/// The old walkthrough's extensions file: `parameters: {headers: {...}, path: ...}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Extensions {
    #[serde(default)]
    parameters: Option<Parameters>,
}

pub async fn route(g: &Global, c: RouteCommand) -> Result<()> {
    match c {
        RouteCommand::Create(a) => {
            let params = match &a.extensions {
                None => None,
                Some(file) => {
                    let text = if file == "-" {
                        let mut s = String::new();
                        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                        s
                    } else {
                        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
                    };
                    let ext: Extensions = if text.trim().is_empty() {
                        Extensions { parameters: None }
                    } else {
                        crate::api::codec::from_yaml(&text)
                            .map_err(|e| anyhow!("--extensions {file}: {e}"))?
                    };
                    ext.parameters
                }
            };
            if params.is_some() && a.function.is_none() {
                bail!("--extensions parameters need --function");
            }
            let m = matcher(&a.path, &a.http_method, &[], &[])?;
            let route = Route {
                matchers: vec![m],
                route_action: Some(Box::new(upstream_action(
                    a.upstream,
                    Some(g.namespace.clone()),
                    rest_destination(a.function, params),
                ))),
                options: rewrite_options(a.prefix_rewrite),
                ..Default::default()
            };
            insert_route(g, a.name, a.index, route, false).await
        }
        RouteCommand::Sort { name } => {
            let store = g.store().await?;
            let key = target_vs(store.as_ref(), &g.namespace, name, false).await?;
            edit(store.as_ref(), &key, &RouteEdit::Sort, false).await?;
            println!("routes of {key} sorted");
            Ok(())
        }
    }
}

pub async fn remove(g: &Global, c: RemoveCommand) -> Result<()> {
    let RemoveCommand::Route {
        index,
        route_name,
        name,
    } = c;
    let store = g.store().await?;
    let key = target_vs(store.as_ref(), &g.namespace, name, false).await?;
    let vs = store.get(&key).await?;
    let current = vs.routes().map_or(&[][..], Vec::as_slice);
    let route = match (index, &route_name) {
        (_, Some(n)) => current
            .iter()
            .find(|r| r.name.as_deref() == Some(n))
            .ok_or_else(|| anyhow!("{key} has no route named `{n}`"))?,
        (Some(i), None) => current
            .get(i)
            .ok_or_else(|| anyhow!("{key} has {} routes; there is no route {i}", current.len()))?,
        (None, None) => bail!("name the route: --index N or --route-name NAME"),
    };
    let what = routes::label(route);
    let e = RouteEdit::Delete {
        route: Box::new(route.clone()),
    };
    let a = edit(store.as_ref(), &key, &e, false).await?;
    println!("route {} removed from {key} ({what})", a.index);
    Ok(())
}
