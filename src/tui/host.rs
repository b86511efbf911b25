//! What the console hosts in its process: the control loop, function discovery and the gateway
//! on a store (the same pieces as `epoxy gateway`).

use super::app::{Ctx, Msg};
use super::feeds::Feeds;
use crate::control::reconcile::{self, Report};
use crate::discovery::fds::{self, DiscoveryState, FdsConfig};
use crate::gateway::{Gateway, GatewayConfig, GatewayHandle};
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

pub struct Host {
    pub store: Arc<dyn Store>,
    pub root: PathBuf,
    pub describe: String,
    pub gateway: Gateway,
    pub handle: GatewayHandle,
    pub reports: watch::Receiver<Arc<Report>>,
    pub discovery: watch::Receiver<Arc<DiscoveryState>>,
}

impl Host {
    /// Starts everything on the current tokio runtime, on `store`; `root` is where local
    /// state (tester history, discovery state) is kept.
    pub fn start(
        store: Arc<dyn Store>,
        root: PathBuf,
        cfg: &GatewayConfig,
        fds_cfg: FdsConfig,
    ) -> std::io::Result<Host> {
        Host::start_with(store, root, cfg, fds_cfg, true)
    }

    /// As `start`; `keep_state: false` writes no discovery state file (`--readonly`).
    pub fn start_with(
        store: Arc<dyn Store>,
        root: PathBuf,
        cfg: &GatewayConfig,
        fds_cfg: FdsConfig,
        keep_state: bool,
    ) -> std::io::Result<Host> {
        let describe = store.describe();
        let mut gateway = Gateway::new();
        gateway.connector = fds_cfg.connector.clone();
        let reports = reconcile::spawn(store.clone(), gateway.clone());
        let state = keep_state.then(|| fds::state_file(&root));
        let discovery = fds::spawn(store.clone(), fds_cfg, state);
        let handle = gateway.start(cfg)?;
        Ok(Host {
            store,
            root,
            describe,
            gateway,
            handle,
            reports,
            discovery,
        })
    }

    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// The console's context on this host.
    pub fn ctx(&self, source: &str, namespace: &str, readonly: bool) -> Ctx {
        Ctx {
            store: self.store.clone(),
            gateway: self.gateway.clone(),
            gateway_url: self.url(),
            gateway_tls: self.handle.tls_addr,
            tester_ca: None,
            source: source.to_string(),
            store_desc: self.describe.clone(),
            namespace: namespace.to_string(),
            readonly,
            history_file: Some(self.root.join(".epoxy-tester-history.json")),
            clock: None,
        }
    }

    /// The feeds of this host, with the receiver of the app's background work.
    pub fn feeds(&self, internal: mpsc::UnboundedReceiver<Msg>) -> Feeds {
        Feeds::new(
            self.store.watch(),
            self.reports.clone(),
            self.discovery.clone(),
            self.gateway.events.subscribe(),
            internal,
        )
    }
}
