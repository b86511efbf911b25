//! `epoxy` (no subcommand) and `epoxy demo`: the console, hosting the control loop, discovery
//! and the gateway in the same process.

use super::Global;
use crate::gateway::GatewayConfig;
use crate::tui;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use std::io::IsTerminal;
use std::net::SocketAddr;

#[derive(Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// Colour theme: dark (default), light, gruvbox, high-contrast, or a file NAME.toml in
    /// ./themes or ~/.config/epoxy/themes
    #[arg(long)]
    pub theme: Option<String>,
    /// Refuse every write (look, test, but do not touch)
    #[arg(long)]
    pub readonly: bool,
}

/// What the console hosts: where its gateway listens, and how the header names the source.
pub struct Hosting {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// `demo`, or `dir` for a plain store.
    pub source: &'static str,
    pub fds: crate::discovery::fds::FdsConfig,
}

pub async fn run(g: &Global, args: ConsoleArgs, hosting: Hosting) -> Result<()> {
    // Everything that can be refused is refused before the terminal changes.
    let theme = tui::theme::Theme::select(args.theme.as_deref()).map_err(|e| anyhow!(e))?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the console needs a terminal; run `epoxy demo --headless` or `epoxy gateway` for no console"
        );
    }
    let (keymap, notes) = tui::keymap::Keymap::load();
    let store = g.open_store()?;
    let cfg = GatewayConfig {
        listen: hosting.listen,
        admin: hosting.admin,
        ..GatewayConfig::default()
    };
    let host = tui::host::Host::start(store, &cfg, hosting.fds)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let address_file = super::serve::address_file(&host.root);
    let admin = host.handle.admin_addr.map(|a| format!("http://{a}"));
    let record = serde_json::json!({"url": host.url(), "admin": admin, "pid": std::process::id()});
    std::fs::write(&address_file, record.to_string()).context("recording the gateway's address")?;
    let _ = tui::logfile::to_file(&host.root.join(".epoxy-console.log"));
    let ctx = host.ctx(hosting.source, &g.namespace, args.readonly);
    let (mut app, rx) = tui::app::App::new(ctx, theme, keymap);
    if hosting.source == "demo" {
        app.info("welcome: :fn lists the petstore's functions; r on findPetById routes to it, t calls it");
    }
    if !notes.is_empty() {
        app.error(notes.join("; "));
    }
    let feeds = host.feeds(rx);
    let result = tui::run(app, feeds).await;
    tui::logfile::to_stderr();
    let _ = std::fs::remove_file(&address_file);
    let handle = host.handle;
    tokio::task::spawn_blocking(move || handle.shutdown()).await?;
    result
}
