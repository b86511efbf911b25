//! `epoxy` (no subcommand) and `epoxy demo`: the console, hosting the control loop, discovery
//! and the gateway in the same process.

use super::Global;
use crate::discovery::uds;
use crate::gateway::GatewayConfig;
use crate::store::Store;
use crate::store::kube::KubeStore;
use crate::store::overlay::OverlayStore;
use crate::store::scratch::ScratchStore;
use crate::tui;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// Colour theme: dark (default), light, gruvbox, high-contrast, or a file NAME.toml in
    /// ./themes or ~/.config/epoxy/themes
    #[arg(long)]
    pub theme: Option<String>,
    /// Refuse every write (look, test, but do not touch)
    #[arg(long)]
    pub readonly: bool,
    /// On a cluster, how to reach its services: auto (direct in a cluster, else apiserver),
    /// direct, apiserver, port-forward
    #[arg(long, value_enum, default_value_t = super::serve::Connect::Auto)]
    pub connect: super::serve::Connect,
    /// The CA certificate (PEM) the tester trusts when it calls an HTTPS route [default: the
    /// usual public roots]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// What the console hosts: where its gateway listens, and how the header names the source.
pub struct Hosting {
    pub listen: SocketAddr,
    /// Where TLS is served (the virtual services with sslConfig); none: not served.
    pub listen_tls: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// `demo`, or `dir` for a plain store.
    pub source: &'static str,
    pub fds: crate::discovery::fds::FdsConfig,
    /// Shown on the message line at start (e.g. why the console is not on a cluster).
    pub note: Option<String>,
    /// The store, when the caller opened it already (the demo, which writes its upstream).
    pub store: Option<Arc<dyn Store>>,
}

pub async fn run(g: &Global, args: ConsoleArgs, hosting: Hosting) -> Result<()> {
    // Everything that can be refused is refused before the terminal changes.
    let theme = tui::theme::Theme::select(args.theme.as_deref()).map_err(|e| anyhow!(e))?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the console needs a terminal; run `epoxy demo --headless` or `epoxy gateway` for no console"
        );
    }
    if let Some(why) = tui::unusable_term(std::env::var("TERM").ok().as_deref()) {
        bail!("{why}");
    }
    let tester_ca = match &args.ca {
        Some(p) => Some(Arc::new(
            crate::tester::target::TesterCa::read(p.clone()).map_err(|e| anyhow!(e))?,
        )),
        None => None,
    };
    let (keymap, notes) = tui::keymap::Keymap::load();
    let mut fds_cfg = hosting.fds;
    let (store, root, source): (Arc<dyn Store>, PathBuf, &str) = match g.kube_target() {
        // On a cluster: read and edit its resources; keep what discovery finds in memory
        // (shown and routable here, never written to the cluster).
        Some(t) => {
            let client = t.client().await?;
            let kube: Arc<dyn Store> = Arc::new(KubeStore::new(client.clone(), t.describe()));
            let discovered = uds::spawn_in_memory(client, g.namespace.clone(), Vec::new());
            fds_cfg.connector = super::serve::connector(&t, args.connect).await?;
            (
                Arc::new(OverlayStore::new(kube, discovered)),
                g.state_dir(),
                "kube",
            )
        }
        None => match hosting.store {
            Some(s) => (s, g.state_dir(), hosting.source),
            None => {
                let dir = g.open_store()?;
                let root = dir.root().to_path_buf();
                let dir: Arc<dyn Store> = Arc::new(dir);
                // Read-only: what this process writes (discovered functions) stays in memory.
                let store: Arc<dyn Store> = if args.readonly {
                    Arc::new(ScratchStore::new(dir))
                } else {
                    dir
                };
                (store, root, hosting.source)
            }
        },
    };
    let cfg = GatewayConfig {
        listen: hosting.listen,
        listen_tls: hosting.listen_tls,
        admin: hosting.admin,
        ..GatewayConfig::default()
    };
    let host = tui::host::Host::start_with(store, root, &cfg, fds_cfg, !args.readonly)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let admin = host.handle.admin_addr.map(|a| format!("http://{a}"));
    let tls_url = host.handle.tls_addr.map(|a| format!("https://{a}"));
    let record = super::serve::record_address(
        &host.root,
        &host.url(),
        tls_url.as_deref(),
        admin.as_deref(),
    )?;
    // Read-only touches no file of the store: the log goes to the temporary directory.
    let log = if args.readonly {
        std::env::temp_dir().join(format!("epoxy-console-{}.log", std::process::id()))
    } else {
        host.root.join(".epoxy-console.log")
    };
    let _ = tui::logfile::to_file(&log);
    let mut ctx = host.ctx(source, &g.namespace, args.readonly);
    ctx.tester_ca = tester_ca;
    if args.readonly {
        ctx.history_file = None;
    }
    let (mut app, rx) = tui::app::App::new(ctx, theme, keymap);
    if let Some(note) = &hosting.note {
        app.info(note.clone());
    }
    if source == "demo" {
        app.info("welcome: :fn lists the petstore's functions; r on findPetById routes to it, t calls it");
    }
    if !notes.is_empty() {
        app.error(notes.join("; "));
    }
    let feeds = host.feeds(rx);
    let forced = record.clone();
    let lifeline = tui::lifeline::Lifeline::start(Box::new(move || forced.remove()));
    let result = tui::run(app, feeds, lifeline).await;
    tui::logfile::to_stderr();
    record.remove();
    let handle = host.handle;
    tokio::task::spawn_blocking(move || handle.shutdown()).await?;
    result
}
