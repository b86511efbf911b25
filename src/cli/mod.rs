//! glooctl-style commands. Each command reads or writes the store; writes go through
//! `control::writes` so that they are validated like every other change.

mod console;
mod demo;
mod discover;
mod get;
mod install;
mod output;
mod routes;
mod serve;
mod write;

use crate::api::DEFAULT_NAMESPACE;
use crate::store::Store;
use crate::store::dir::{DirStore, default_dir};
use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "epoxy",
    version,
    about = "A function gateway with a terminal console, speaking Gloo's resources",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub console: console::ConsoleArgs,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Store directory [default: $EPOXY_DIR, else $XDG_DATA_HOME/epoxy/store]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Namespace to read and write
    #[arg(short = 'n', long, global = true, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Use the Kubernetes cluster (Gloo's CRDs) as the store
    #[arg(long, global = true)]
    pub kube: bool,
    /// Kubernetes context to use (implies --kube)
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Kubeconfig file to use (implies --kube)
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl Global {
    /// The directory store (the embedded default).
    pub fn open_store(&self) -> Result<DirStore> {
        let dir = self.dir.clone().unwrap_or_else(default_dir);
        Ok(DirStore::open(dir)?)
    }

    /// The cluster to use, when `--kube`, `--context` or `--kubeconfig` says so.
    pub fn kube_target(&self) -> Option<crate::kube::Target> {
        (self.kube || self.context.is_some() || self.kubeconfig.is_some()).then(|| {
            crate::kube::Target {
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
            }
        })
    }

    /// The store commands read and write: the cluster's CRDs in kube mode, else the directory.
    pub async fn store(&self) -> Result<Arc<dyn Store>> {
        match self.kube_target() {
            Some(t) => {
                let client = t.client().await?;
                Ok(Arc::new(crate::store::kube::KubeStore::new(
                    client,
                    t.describe(),
                )))
            }
            None => Ok(Arc::new(self.open_store()?)),
        }
    }

    /// Where this machine keeps state next to the store (the running gateway's address,
    /// discovery state): the store directory, or a folder per cluster context in kube mode.
    pub fn state_dir(&self) -> PathBuf {
        match self.kube_target() {
            Some(t) => {
                let name: String = t
                    .context
                    .clone()
                    .unwrap_or_else(|| "current".into())
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let base = default_dir();
                let dir = base.parent().unwrap_or(&base).join("kube").join(name);
                let _ = std::fs::create_dir_all(&dir);
                dir
            }
            None => {
                let dir = self.dir.clone().unwrap_or_else(default_dir);
                let _ = std::fs::create_dir_all(&dir);
                dir
            }
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or update resources from a YAML or JSON file (`-` for standard input)
    Apply {
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: String,
    },
    /// Delete a resource: `epoxy delete upstream NAME`
    Delete {
        /// upstream (us), virtualservice (vs), routetable (rt), upstreamgroup (ug)
        kind: String,
        name: String,
    },
    /// Show resources: upstreams (us), virtualservices (vs), `vs route [VS]`, routetables (rt), upstreamgroups (ug)
    Get(get::GetArgs),
    /// Create a resource from flags
    #[command(subcommand)]
    Create(write::CreateCommand),
    /// Add a route to a virtual service (glooctl's `add route`)
    #[command(subcommand)]
    Add(routes::AddCommand),
    /// Remove a route from a virtual service
    #[command(subcommand)]
    Remove(routes::RemoveCommand),
    /// Route commands of the original walkthrough: `route create`, `route sort`
    #[command(subcommand)]
    Route(routes::RouteCommand),
    /// Run the control loop and the gateway without a console, until SIGINT or SIGTERM
    Gateway(serve::GatewayArgs),
    /// Where the running gateway listens: `proxy url`
    #[command(subcommand)]
    Proxy(serve::ProxyCommand),
    /// Run everything on this machine: the petstore, discovery, the gateway (and console)
    Demo(demo::DemoArgs),
    /// Show what discovery finds, without touching the store: `discover openapi FILE|URL`
    #[command(subcommand)]
    Discover(discover::DiscoverCommand),
    /// Install into a cluster: `install crds [--dry-run]`
    #[command(subcommand)]
    Install(install::InstallCommand),
}

/// Whether the kubeconfig's current context answers, within two seconds.
async fn reachable_context() -> Result<(), String> {
    let has_config = std::env::var_os("KUBECONFIG").is_some()
        || std::env::var_os("HOME").is_some_and(|h| PathBuf::from(h).join(".kube/config").exists());
    if !has_config {
        return Err("no Kubernetes context is configured".into());
    }
    let client = crate::kube::Target::default()
        .client()
        .await
        .map_err(|e| format!("{e:#}"))?;
    match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        client.apiserver_version(),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the current Kubernetes context is not reachable ({e})"
        )),
        Err(_) => Err("the current Kubernetes context did not answer within 2s".into()),
    }
}

/// A refused request: printed as one line (per problem) and exit code 1.
pub fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let g = cli.global;
        let Some(command) = cli.command else {
            // No subcommand: the console, on the current cluster context when one is
            // configured and reachable (and no store directory was asked for), else on the store.
            let mut g = g;
            let mut note = None;
            if g.kube_target().is_none()
                && g.dir.is_none()
                && std::env::var_os("EPOXY_DIR").is_none()
            {
                match reachable_context().await {
                    Ok(()) => g.kube = true,
                    Err(why) => note = Some(format!("on the store directory: {why}")),
                }
            }
            let hosting = console::Hosting {
                listen: demo::free_or("127.0.0.1:8080".parse()?),
                listen_tls: Some(demo::free_or(serve::DEFAULT_LISTEN_TLS.parse()?)),
                admin: Some(demo::free_or("127.0.0.1:9080".parse()?)),
                source: "dir",
                fds: Default::default(),
                note,
                store: None,
            };
            return console::run(&g, cli.console, hosting).await;
        };
        match command {
            Command::Apply { file } => write::apply(&g, &file).await,
            Command::Delete { kind, name } => write::delete(&g, &kind, &name).await,
            Command::Get(args) => get::run(&g, args).await,
            Command::Create(c) => write::create(&g, c).await,
            Command::Add(c) => routes::add(&g, c).await,
            Command::Remove(c) => routes::remove(&g, c).await,
            Command::Route(c) => routes::route(&g, c).await,
            Command::Gateway(a) => serve::gateway(&g, a).await,
            Command::Proxy(c) => serve::proxy(&g, c),
            Command::Demo(a) => demo::demo(&g, a).await,
            Command::Discover(c) => discover::run(c).await,
            Command::Install(c) => install::run(&g, c).await,
        }
    })
}
