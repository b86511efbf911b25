//! glooctl-style commands. Each command reads or writes the store; writes go through
//! `control::writes` so that they are validated like every other change.

mod console;
mod demo;
mod discover;
mod get;
mod output;
mod routes;
mod serve;
mod write;

use crate::api::DEFAULT_NAMESPACE;
use crate::store::dir::{DirStore, default_dir};
use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
}

impl Global {
    pub fn open_store(&self) -> Result<DirStore> {
        let dir = self.dir.clone().unwrap_or_else(default_dir);
        Ok(DirStore::open(dir)?)
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
}

/// A refused request: printed as one line (per problem) and exit code 1.
pub fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let g = cli.global;
        let Some(command) = cli.command else {
            // No subcommand: the console on the store.
            let hosting = console::Hosting {
                listen: demo::free_or("127.0.0.1:8080".parse()?),
                admin: Some(demo::free_or("127.0.0.1:9080".parse()?)),
                source: "dir",
                fds: Default::default(),
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
        }
    })
}
