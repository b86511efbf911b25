//! `epoxy` (no subcommand) and `epoxy demo`: the console, hosting the control loop, discovery
//! and the gateway in the same process.

use super::Global;
use anyhow::{Result, bail};
use clap::Args;
use std::net::SocketAddr;

#[derive(Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// Colour theme (a file name in themes/, without .toml)
    #[arg(long)]
    pub theme: Option<String>,
    /// Refuse every write (look, test, but do not touch)
    #[arg(long)]
    pub readonly: bool,
}

/// What the console hosts: where its gateway listens, and how the header names the source.
#[allow(dead_code)] // Read by the console, which is being built.
pub struct Hosting {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// `demo`, or `dir` for a plain store.
    pub source: &'static str,
    pub fds: crate::discovery::fds::FdsConfig,
}

pub async fn run(_g: &Global, _args: ConsoleArgs, _hosting: Hosting) -> Result<()> {
    bail!("the console is being built; use `epoxy demo --headless` or `epoxy gateway`")
}
