//! `apply`, `delete` and `create`: writes from files and flags.

use super::Global;
use crate::api::{
    Kind, KubeUpstream, Object, Resource, ResourceKey, StaticHost, StaticUpstream, UpstreamSpec,
    VirtualHost, VirtualServiceSpec, parse_resources,
};
use crate::control::writes::{self, WriteError};
use crate::store::{Precondition, StoreError};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use std::io::Read;

#[derive(Subcommand, Debug)]
pub enum CreateCommand {
    /// Create an upstream: `create upstream static NAME --static-hosts H:P` or `create upstream kube NAME ...`
    #[command(subcommand, visible_alias = "us")]
    Upstream(CreateUpstream),
    /// Create a virtual service: `create virtualservice NAME --domains a,b`
    #[command(visible_alias = "vs")]
    Virtualservice {
        name: String,
        /// Domains it serves [default: *]
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreateUpstream {
    /// An upstream of fixed hosts
    Static {
        name: String,
        /// HOST:PORT,... (round robin)
        #[arg(long, value_delimiter = ',', required = true)]
        static_hosts: Vec<String>,
        /// Connect with TLS
        #[arg(long)]
        use_tls: bool,
    },
    /// An upstream for a Kubernetes service port
    Kube {
        name: String,
        #[arg(long)]
        kube_service: String,
        #[arg(long, default_value = "default")]
        kube_service_namespace: String,
        #[arg(long, default_value_t = 80)]
        kube_service_port: u32,
    },
}

/// Prints a write's warnings to stderr.
pub fn print_warnings(w: &[crate::api::Problem]) {
    for p in w {
        eprintln!("warning: {p}");
    }
}

/// Turns a write error into the CLI's one-line-per-problem message.
pub fn refusal(e: WriteError) -> anyhow::Error {
    match e {
        WriteError::Invalid(ps) => anyhow!(
            "refused, {} problem{}:\n{}",
            ps.len(),
            if ps.len() == 1 { "" } else { "s" },
            ps.iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        WriteError::Store(s) => anyhow!(s),
    }
}

fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
    }
}

fn kind_order(k: Kind) -> u8 {
    match k {
        // What others refer to first: a certificate before the virtual service using it.
        Kind::Secret => 0,
        Kind::Upstream | Kind::AuthConfig | Kind::RateLimitConfig => 0,
        Kind::UpstreamGroup => 1,
        Kind::RouteTable => 2,
        Kind::VirtualService => 3,
        // The listeners that select the virtual services.
        Kind::Gateway => 4,
    }
}

pub async fn apply(g: &Global, file: &str) -> Result<()> {
    let text = read_input(file)?;
    let origin = if file == "-" { "<stdin>" } else { file };
    // Fields kept but not acted on are named, each at its path, in the write's warnings.
    let mut resources = parse_resources(&text, origin)?;
    if resources.is_empty() {
        bail!("{origin}: no resources found");
    }
    // Targets first, so that references in the same file resolve.
    resources.sort_by_key(|r| kind_order(r.kind()));
    let store = g.store().await?;
    // What each resource does (created, configured or unchanged), then the changed ones
    // validated together and written.
    let listing = store.list().await.map_err(|e| refusal(e.into()))?;
    let mut changes = Vec::new();
    let mut verbs = Vec::new();
    for mut r in resources {
        if r.namespace().is_empty() {
            r.meta_mut().namespace = Some(g.namespace.clone());
        }
        // Apply replaces whatever is there; a version in the file is not a precondition.
        r.meta_mut().resource_version = None;
        let key = r.key();
        let verb = match listing.resources.get(&key) {
            None => "created",
            Some(e) => {
                let mut e = e.clone();
                e.meta_mut().resource_version = None;
                if e == r { "unchanged" } else { "configured" }
            }
        };
        if verb == "unchanged" {
            println!("{key} unchanged");
            continue;
        }
        let kube_note = if g.kube_target().is_none() {
            kube_destination_notes(&r)
        } else {
            Vec::new()
        };
        verbs.push((key, verb, kube_note));
        changes.push(r);
    }
    let mut failed = 0;
    let outcome = writes::write_batch_on(store.as_ref(), &listing.resources, changes)
        .await
        .map_err(refusal)?;
    for ((key, verb, kube_note), result) in verbs.into_iter().zip(outcome.results) {
        match result {
            Ok(w) => {
                print_warnings(&w.warnings);
                for n in kube_note {
                    eprintln!("warning: {key}: {n}");
                }
                println!("{key} {verb}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", refusal(e));
            }
        }
    }
    print_warnings(&outcome.other_warnings);
    if failed > 0 {
        bail!(
            "{failed} resource{} not applied",
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// Outside Kubernetes mode a `kube` destination has no cluster to go through: say where its
/// requests will go instead (the service's cluster DNS name, as for a kube upstream).
fn kube_destination_notes(r: &Resource) -> Vec<String> {
    use crate::net::Connector;
    r.kube_destinations()
        .into_iter()
        .map(|(path, k)| {
            let ns = k.ref_.namespace_or(r.namespace());
            let to = crate::net::ClusterDns
                .service(ns, &k.ref_.name, k.port)
                .unwrap_or_default();
            format!("{path}: a `kube` destination without --kube: requests go to {to} (the service's cluster DNS name)")
        })
        .collect()
}

pub async fn delete(g: &Global, kind: &str, name: &str) -> Result<()> {
    let kind = Kind::parse(kind).ok_or_else(|| anyhow!("unknown kind `{kind}`"))?;
    let store = g.store().await?;
    let key = ResourceKey::new(kind, &g.namespace, name);
    let warnings = writes::delete(store.as_ref(), &key)
        .await
        .map_err(refusal)?;
    print_warnings(&warnings);
    println!("{key} deleted");
    Ok(())
}

fn parse_host(h: &str) -> Result<StaticHost> {
    let (addr, port) = h
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("`{h}`: expected HOST:PORT"))?;
    let port: u32 = port
        .parse()
        .map_err(|_| anyhow!("`{h}`: the port is not a number"))?;
    Ok(StaticHost {
        addr: addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        extra: Default::default(),
    })
}

pub async fn create(g: &Global, c: CreateCommand) -> Result<()> {
    let ns = &g.namespace;
    let r = match c {
        CreateCommand::Upstream(CreateUpstream::Static {
            name,
            static_hosts,
            use_tls,
        }) => Resource::Upstream(Object::new(
            Kind::Upstream,
            ns,
            &name,
            UpstreamSpec {
                static_: Some(StaticUpstream {
                    hosts: static_hosts
                        .iter()
                        .map(|h| parse_host(h))
                        .collect::<Result<_>>()?,
                    use_tls: use_tls.then_some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
        CreateCommand::Upstream(CreateUpstream::Kube {
            name,
            kube_service,
            kube_service_namespace,
            kube_service_port,
        }) => Resource::Upstream(Object::new(
            Kind::Upstream,
            ns,
            &name,
            UpstreamSpec {
                kube: Some(KubeUpstream {
                    service_name: kube_service,
                    service_namespace: kube_service_namespace,
                    service_port: kube_service_port,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
        CreateCommand::Virtualservice { name, domains } => Resource::VirtualService(Object::new(
            Kind::VirtualService,
            ns,
            &name,
            VirtualServiceSpec {
                virtual_host: VirtualHost {
                    domains: if domains.is_empty() {
                        vec!["*".into()]
                    } else {
                        domains
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
        )),
    };
    let key = r.key();
    let w = writes::write(g.store().await?.as_ref(), r, Precondition::Absent)
        .await
        .map_err(|e| match e {
            WriteError::Store(StoreError::AlreadyExists(k)) => anyhow!("{k} already exists"),
            e => refusal(e),
        })?;
    print_warnings(&w.warnings);
    println!("{key} created");
    Ok(())
}
