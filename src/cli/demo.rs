//! `epoxy demo`: the whole thing on this machine, with no cluster: the embedded petstore, its
//! upstream `default-petstore-8080` in the store, function discovery, the control loop and the
//! gateway.

use super::Global;
use super::serve::{DiscoveryArgs, serve};
use crate::api::{Kind, Object, Resource, ResourceKey, StaticHost, StaticUpstream, UpstreamSpec};
use crate::demo::petstore;
use crate::gateway::GatewayConfig;
use crate::store::scratch::ScratchStore;
use crate::store::{Precondition, Store, StoreError};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;

/// The label that marks the demo's own upstream (its address is refreshed at each start).
pub const DEMO_LABEL: &str = "epoxy.dev/demo";
/// The name the original walkthrough uses.
pub const DEMO_UPSTREAM: &str = "default-petstore-8080";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Run without the console; print the gateway URL
    #[arg(long)]
    pub headless: bool,
    /// Gateway address [default: 127.0.0.1:8080, or a free port when that is taken]
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// TLS address, for virtual services with sslConfig [default: 127.0.0.1:8443, or a free
    /// port when that is taken]
    #[arg(long)]
    pub listen_tls: Option<SocketAddr>,
    /// Admin address [default: 127.0.0.1:9080, or a free port when that is taken]
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub console: super::console::ConsoleArgs,
}

/// `preferred` if it can be bound now, else a free port on the same host.
pub fn free_or(preferred: SocketAddr) -> SocketAddr {
    match std::net::TcpListener::bind(preferred) {
        Ok(_) => preferred,
        Err(_) => SocketAddr::new(preferred.ip(), 0),
    }
}

/// Points the demo upstream at the petstore's address, keeping whatever else it has (functions
/// discovered earlier, user labels). An upstream of that name that is not the demo's is left alone.
async fn upsert_demo_upstream(store: &dyn Store, ns: &str, addr: SocketAddr) -> Result<()> {
    let key = ResourceKey::new(Kind::Upstream, ns, DEMO_UPSTREAM);
    let host = StaticHost {
        addr: addr.ip().to_string(),
        port: addr.port() as u32,
        extra: Default::default(),
    };
    let (resource, pre) = match store.get(&key).await {
        Ok(Resource::Upstream(mut u)) => {
            if u.metadata.labels.get(DEMO_LABEL).map(String::as_str) != Some("true") {
                bail!(
                    "{key} exists and is not the demo's (no label {DEMO_LABEL}=true); remove it or use another --dir"
                );
            }
            let pre = Precondition::from_read(&Resource::Upstream(u.clone()));
            let s = u.spec.static_.get_or_insert_with(Default::default);
            let old: Vec<String> = s
                .hosts
                .iter()
                .map(|h| format!("{}:{}", h.addr, h.port))
                .collect();
            s.hosts = vec![host];
            // The document is served by the petstore too: a URL at its old address would fail
            // discovery on every restart.
            if let Some(info) = u
                .spec
                .service_spec_mut()
                .and_then(|ss| ss.rest.as_mut())
                .and_then(|r| r.swagger_info.as_mut())
                && let Some(url) = &mut info.url
            {
                for o in &old {
                    if let Some(rest) = url.strip_prefix(&format!("http://{o}/")) {
                        *url = format!("http://{addr}/{rest}");
                        break;
                    }
                }
            }
            (Resource::Upstream(u), pre)
        }
        Ok(_) => unreachable!("a get by upstream key returns an upstream"),
        Err(StoreError::NotFound(_)) => {
            let mut u = Object::new(
                Kind::Upstream,
                ns,
                DEMO_UPSTREAM,
                UpstreamSpec {
                    static_: Some(StaticUpstream {
                        hosts: vec![host],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            u.metadata.labels.insert(DEMO_LABEL.into(), "true".into());
            (Resource::Upstream(u), Precondition::Absent)
        }
        Err(e) => return Err(e.into()),
    };
    // Validated like any other write: the demo's store may hold the user's resources too.
    crate::control::writes::write(store, resource, pre)
        .await
        .with_context(|| format!("writing {key}"))?;
    Ok(())
}

pub async fn demo(g: &Global, a: DemoArgs) -> Result<()> {
    if g.kube_target().is_some() {
        bail!(
            "the demo runs on this machine with a directory store; drop --kube/--context/--kubeconfig"
        );
    }
    let dir = g.open_store()?;
    let state_dir = dir.root().to_path_buf();
    let dir: Arc<dyn Store> = Arc::new(dir);
    // Read-only: the upstream follows this run's petstore in memory; no file changes.
    let store: Arc<dyn Store> = if a.console.readonly && !a.headless {
        Arc::new(ScratchStore::new(dir))
    } else {
        dir
    };
    let pets = petstore::start("127.0.0.1:0".parse()?)
        .await
        .context("starting the petstore")?;
    upsert_demo_upstream(store.as_ref(), &g.namespace, pets.addr).await?;
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "petstore on http://{} (upstream {DEMO_UPSTREAM})",
            pets.addr
        );
    }
    let cfg = GatewayConfig {
        listen: a
            .listen
            .unwrap_or_else(|| free_or("127.0.0.1:8080".parse().expect("literal address"))),
        listen_tls: Some(a.listen_tls.unwrap_or_else(|| {
            free_or(
                super::serve::DEFAULT_LISTEN_TLS
                    .parse()
                    .expect("literal address"),
            )
        })),
        admin: Some(
            a.admin
                .unwrap_or_else(|| free_or("127.0.0.1:9080".parse().expect("literal address"))),
        ),
        ..GatewayConfig::default()
    };
    if !a.headless {
        let hosting = super::console::Hosting {
            listen: cfg.listen,
            listen_tls: cfg.listen_tls,
            admin: cfg.admin,
            source: "demo",
            fds: a.discovery.config(),
            note: None,
            store: Some(store),
        };
        let result = super::console::run(g, a.console, hosting).await;
        drop(pets);
        return result;
    }
    let result = serve(
        store,
        &state_dir,
        cfg,
        a.discovery.config(),
        "epoxy demo: gateway",
    )
    .await;
    drop(pets);
    result
}
