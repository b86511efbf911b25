//! Upstream discovery (UDS) from Kubernetes Services, as Gloo's discovery does it: one
//! Upstream per service port, named `NAMESPACE-SERVICE-PORT`, labelled
//! `discovered_by: kubernetesplugin`, with the service's labels in `discoveryMetadata.labels`.
//! Functions found later (FDS) are kept when the service changes; the upstream goes with its
//! service.
//!
//! This writes to the store, so it runs only where epoxy is the cluster's controller
//! (`epoxy gateway --kube`) or is told to: no surprise writes to a cluster. Its writes are
//! validated like the CLI's (`control::writes`): an upstream that would be invalid is refused
//! and logged, never stored.

use crate::api::naming::upstream_name;
use crate::api::resource::Upstream;
use crate::api::{
    DiscoveryMetadata, Kind, KubeUpstream, Object, Resource, ResourceKey, UpstreamSpec,
};
use crate::store::{Precondition, Store};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

pub const DISCOVERED_BY: &str = "discovered_by";
pub const KUBERNETES_PLUGIN: &str = "kubernetesplugin";

/// The upstreams Gloo's discovery makes of one service, in `namespace` (the write namespace).
pub fn upstreams_for(svc: &Service, namespace: &str) -> Vec<Upstream> {
    let ns = svc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = svc.metadata.name.clone().unwrap_or_default();
    let labels: indexmap::IndexMap<String, String> = svc
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let selector: indexmap::IndexMap<String, String> = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    ports
        .iter()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .map(|p| {
            let port = p.port.max(0) as u32;
            let mut u = Object::new(
                Kind::Upstream,
                namespace,
                &upstream_name(&ns, &name, port),
                UpstreamSpec {
                    kube: Some(KubeUpstream {
                        service_name: name.clone(),
                        service_namespace: ns.clone(),
                        service_port: port,
                        selector: selector.clone(),
                        ..Default::default()
                    }),
                    discovery_metadata: Some(DiscoveryMetadata {
                        labels: labels.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            u.metadata
                .labels
                .insert(DISCOVERED_BY.into(), KUBERNETES_PLUGIN.into());
            u
        })
        .collect()
}

/// Brings a discovered upstream's service fields into the stored one, keeping its functions
/// and anything else users or FDS added. None when nothing changes.
fn merged(existing: &Upstream, discovered: &Upstream) -> Option<Upstream> {
    let mut next = existing.clone();
    let d = discovered.spec.kube.as_ref()?;
    let k = next.spec.kube.get_or_insert_with(Default::default);
    k.service_name = d.service_name.clone();
    k.service_namespace = d.service_namespace.clone();
    k.service_port = d.service_port;
    k.selector = d.selector.clone();
    next.spec.discovery_metadata = discovered.spec.discovery_metadata.clone();
    next.metadata
        .labels
        .insert(DISCOVERED_BY.into(), KUBERNETES_PLUGIN.into());
    (next != *existing).then_some(next)
}

/// What one reconcile did: how many upstreams it wrote or removed, and the ones it could not
/// write because they would be invalid (each with why; logged too).
#[derive(Debug, Default)]
pub struct Reconciled {
    pub changes: usize,
    pub refused: BTreeMap<ResourceKey, String>,
}

/// One reconcile: make the store's discovered upstreams match the services. The upstreams to
/// create or update are written as one batch validated like the CLI's (`control::writes`),
/// against the listing they were computed from: one that would be invalid (a service port out
/// of range, say) is refused and reported, the others are written.
pub async fn reconcile(
    store: &dyn Store,
    services: &[Service],
    namespace: &str,
) -> Result<Reconciled, String> {
    let listing = store.list().await.map_err(|e| e.to_string())?;
    let mut desired: BTreeMap<ResourceKey, Upstream> = BTreeMap::new();
    for s in services {
        for u in upstreams_for(s, namespace) {
            desired.insert(
                ResourceKey::new(Kind::Upstream, namespace, &u.metadata.name),
                u,
            );
        }
    }
    let mut writes = Vec::new();
    for (key, want) in &desired {
        match listing.resources.get(key) {
            Some(Resource::Upstream(have)) => {
                if let Some(next) = merged(have, want) {
                    writes.push(Resource::Upstream(next));
                }
            }
            _ => writes.push(Resource::Upstream(want.clone())),
        }
    }
    let mut done = Reconciled::default();
    let mut failed = Vec::new();
    if !writes.is_empty() {
        let keys: Vec<ResourceKey> = writes.iter().map(Resource::key).collect();
        let outcome = crate::control::writes::write_batch_on(store, &listing.resources, writes)
            .await
            .map_err(|e| e.to_string())?;
        for (key, result) in keys.into_iter().zip(outcome.results) {
            match result {
                Ok(_) => done.changes += 1,
                Err(crate::control::writes::WriteError::Invalid(problems)) => {
                    let reason = problems
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    tracing::warn!(upstream = %key, %reason, "discovered upstream refused: it would be invalid");
                    done.refused.insert(key, reason);
                }
                Err(e) => failed.push(e.to_string()),
            }
        }
    }
    // Upstreams this discovery made whose service (or port) is gone.
    for (key, r) in &listing.resources {
        if let Resource::Upstream(u) = r
            && key.namespace == namespace
            && u.metadata.labels.get(DISCOVERED_BY).map(String::as_str) == Some(KUBERNETES_PLUGIN)
            && !desired.contains_key(key)
        {
            match store.delete(key, Precondition::from_read(r)).await {
                Ok(()) => done.changes += 1,
                Err(e) => failed.push(e.to_string()),
            }
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(failed.join("; "))
    }
}

/// The services in `watch_namespaces` (or all), published whole after every change once the
/// first list is complete (None until then).
pub fn watch_services(
    client: kube::Client,
    watch_namespaces: Vec<String>,
) -> watch::Receiver<Option<Arc<Vec<Service>>>> {
    let apis: Vec<Api<Service>> = if watch_namespaces.is_empty() {
        vec![Api::all(client)]
    } else {
        watch_namespaces
            .iter()
            .map(|n| Api::namespaced(client.clone(), n))
            .collect()
    };
    crate::kube::state::watch_state(apis)
}

/// Keeps the discovered upstreams in `namespace` of the store in step with the services,
/// writing only while this replica leads (when `leader` is given).
pub fn spawn(
    client: kube::Client,
    store: Arc<dyn Store>,
    namespace: String,
    watch_namespaces: Vec<String>,
    leader: Option<watch::Receiver<bool>>,
) -> tokio::task::JoinHandle<()> {
    let mut services = watch_services(client, watch_namespaces);
    // Without an election this replica always leads (the sender stays alive with the task).
    let (always, leads_alone) = watch::channel(true);
    let mut leader = leader.unwrap_or(leads_alone);
    tokio::spawn(async move {
        let _always = always;
        loop {
            tokio::select! {
                r = services.changed() => if r.is_err() { return },
                r = leader.changed() => if r.is_err() { return },
            }
            let list = services.borrow_and_update().clone();
            let leads = *leader.borrow_and_update();
            if let (Some(list), true) = (list, leads)
                && let Err(e) = reconcile(store.as_ref(), &list, &namespace).await
            {
                tracing::warn!(error = %e, "upstream discovery could not write; will retry on the next change");
            }
        }
    })
}

/// Discovered upstreams kept in memory (for a console on a cluster: no surprise writes).
pub fn spawn_in_memory(
    client: kube::Client,
    namespace: String,
    watch_namespaces: Vec<String>,
) -> watch::Receiver<Arc<crate::api::ResourceSet>> {
    let mut services = watch_services(client, watch_namespaces);
    let (tx, rx) = watch::channel(Arc::new(crate::api::ResourceSet::new()));
    tokio::spawn(async move {
        while services.changed().await.is_ok() {
            let Some(list) = services.borrow_and_update().clone() else {
                continue;
            };
            let set: crate::api::ResourceSet = list
                .iter()
                .flat_map(|s| upstreams_for(s, &namespace))
                .map(|u| {
                    let r = Resource::Upstream(u);
                    (r.key(), r)
                })
                .collect();
            if tx.send(Arc::new(set)).is_err() {
                return;
            }
        }
    });
    rx
}
