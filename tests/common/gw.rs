//! An in-process gateway on a temporary directory store, driven through the real control loop.
#![allow(dead_code)]

use epoxy::api::parse_resources;
use epoxy::control::reconcile::{self, Report};
use epoxy::control::writes;
use epoxy::gateway::{Gateway, GatewayConfig, GatewayHandle};
use epoxy::store::dir::DirStore;
use epoxy::store::{Precondition, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<DirStore>,
    pub gw: Gateway,
    pub handle: GatewayHandle,
    pub reports: watch::Receiver<Arc<Report>>,
    pub url: String,
    pub admin: String,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut GatewayConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DirStore::open(dir.path()).unwrap());
        let gw = Gateway::new();
        let reports = reconcile::spawn(store.clone(), gw.clone());
        let mut cfg = GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: Some("127.0.0.1:0".parse().unwrap()),
            workers: 2,
            ..GatewayConfig::default()
        };
        tweak(&mut cfg);
        let handle = gw.start(&cfg).unwrap();
        // The first table (of the empty store) is in before any test writes.
        let mut rx = reports.clone();
        while rx.borrow_and_update().generation == 0 {
            rx.changed().await.unwrap();
        }
        let url = handle.url();
        let admin = format!("http://{}", handle.admin_addr.unwrap());
        Harness {
            dir,
            store,
            gw,
            handle,
            reports,
            url,
            admin,
        }
    }

    pub fn generation(&self) -> u64 {
        self.gw.table.load().generation
    }

    /// Writes resources (validated, like the CLI) and waits until the gateway serves them.
    pub async fn apply(&self, yaml: &str) {
        apply(&self.store, &self.reports, yaml).await;
    }

    /// Applies a static upstream `upstream` on `hosts` and the virtual service `default` (all
    /// domains) with `routes`.
    pub async fn serve(&self, upstream: &str, hosts: &[String], routes: &str) {
        self.apply(&format!(
            "{}---\n{}",
            static_upstream(upstream, hosts),
            vs("default", "['*']", routes)
        ))
        .await;
    }

    /// Serves everything from one static upstream: `upstream` on `hosts`, every path to it.
    pub async fn forward_all(&self, upstream: &str, hosts: &[String]) {
        let route = format!(
            "    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: {upstream}}}}}}}\n"
        );
        self.serve(upstream, hosts, &route).await;
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        Self::client()
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `/metrics` once `done` holds for it, or after 3 s (for the caller's assertion to show
    /// it). A request is counted when its response has been written, as nginx counts in its
    /// log phase, so a client can hold its answer a moment before the count moves.
    pub async fn metrics_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let m = self.metrics().await;
            if done(&m) || std::time::Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Writes without validation (as an external edit would) and waits until it is processed.
    pub async fn put_raw(&self, yaml: &str) {
        let mut written = Vec::new();
        for r in parse_resources(yaml, "test").unwrap() {
            written.push(self.store.put(r, Precondition::Any).await.unwrap());
        }
        self.wait_for(&written).await;
    }

    /// Waits until the control loop has processed these versions (and swapped the table).
    pub async fn wait_for(&self, written: &[epoxy::api::Resource]) {
        wait_for(&self.reports, written).await;
    }

    pub fn client() -> reqwest::Client {
        super::http()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

/// Writes resources (validated, like the CLI) and waits until the control loop has taken them.
async fn apply(store: &Arc<DirStore>, reports: &watch::Receiver<Arc<Report>>, yaml: &str) {
    let mut written = Vec::new();
    for r in parse_resources(yaml, "test").unwrap() {
        let w = writes::write(store.as_ref(), r, Precondition::Any)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        written.push(w.resource);
    }
    wait_for(reports, &written).await;
}

/// Waits until the control loop's report has these versions of `written`.
async fn wait_for(reports: &watch::Receiver<Arc<Report>>, written: &[epoxy::api::Resource]) {
    let mut rx = reports.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        {
            let r = rx.borrow_and_update();
            if written
                .iter()
                .all(|w| r.versions.get(&w.key()).map(String::as_str) == w.resource_version())
            {
                return;
            }
        }
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("the gateway did not reload")
            .unwrap();
    }
}

/// A gateway that listens on no socket: the real control loop over a directory store sets its
/// tables, and requests reach it through an in-memory pipe (`Gateway::serve_stream`).
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub store: Arc<DirStore>,
    pub gw: Gateway,
    pub reports: watch::Receiver<Arc<Report>>,
}

impl InProcess {
    pub async fn start() -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DirStore::open(dir.path()).unwrap());
        let gw = Gateway::new();
        let reports = reconcile::spawn(store.clone(), gw.clone());
        let mut rx = reports.clone();
        while rx.borrow_and_update().generation == 0 {
            rx.changed().await.unwrap();
        }
        InProcess {
            dir,
            store,
            gw,
            reports,
        }
    }

    pub async fn apply(&self, yaml: &str) {
        apply(&self.store, &self.reports, yaml).await;
    }

    /// Sends one raw request (it should ask to close the connection) on a new in-memory
    /// connection, on the fast path or on hyper alone, and reads the raw answer to its end.
    pub async fn send(&self, raw: &[u8], fast_path: bool) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let gw = self.gw.clone();
        let cfg = GatewayConfig {
            fast_path,
            ..GatewayConfig::default()
        };
        let served = tokio::spawn(async move {
            let remote = "127.0.0.1:40000".parse().unwrap();
            gw.serve_stream(server, remote, &cfg).await;
        });
        client.write_all(raw).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .expect("no answer within 5 s")
            .unwrap();
        // Closed as a client does once it has the answer (the gateway lingers until then).
        drop(client);
        served.await.unwrap();
        out
    }
}

/// A static upstream resource for `addr`.
pub fn static_upstream(name: &str, hosts: &[String]) -> String {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| {
            let (a, p) = h.rsplit_once(':').unwrap();
            format!("{{addr: '{a}', port: {p}}}")
        })
        .collect();
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{}]\n",
        hosts.join(", ")
    )
}

/// A virtual service with `domains` and the given routes (YAML list items, indented by 4).
pub fn vs(name: &str, domains: &str, routes: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: {domains}\n    routes:\n{routes}"
    )
}
