//! The Kubernetes store: Gloo's kinds as CRDs through kube-rs. Reads and watches come from
//! kube-runtime's reflectors (one per kind; each event applied to the listing), writes replace objects with their resourceVersion, so a write that
//! lost a race is refused, and every field of the object (including ones epoxy does not model,
//! and the cluster's own bookkeeping) is sent back as it was read.
//!
//! When the API server goes away, the watchers retry with backoff and the last complete state
//! stays published: the gateway keeps serving it, then reconverges when the server is back.
//!
//! A kind whose CRD the cluster lacks (a list answers 404: no `Gateway`, no `AuthConfig`) is
//! empty and ready, said once in the log and in the listing (`Listing::unavailable`), and
//! looked for again every [`CRD_PROBE`]: a cluster without one of Gloo's CRDs still serves.

use super::{Listing, Precondition, Result, Store, StoreError};
use crate::api::{Kind, ParseError, Resource, ResourceKey};
use futures_util::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams, Preconditions,
};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub struct KubeStore {
    client: kube::Client,
    describe: String,
    watch: Mutex<Option<watch::Receiver<Arc<Listing>>>>,
    /// How often a kind whose CRD is missing is looked for again.
    crd_probe: Duration,
}

/// kube-rs's description of one of Gloo's kinds.
pub fn api_resource(kind: Kind) -> ApiResource {
    let (group, version) = kind.api_version().split_once('/').unwrap_or(("", "v1"));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind.name()),
        kind.plural(),
    )
}

fn origin(kind: Kind, obj: &DynamicObject) -> String {
    format!(
        "{}/{}/{}",
        kind.plural(),
        obj.metadata.namespace.as_deref().unwrap_or(""),
        obj.metadata.name.as_deref().unwrap_or("")
    )
}

/// A cluster object as a resource; an object epoxy cannot read is reported, not dropped silently.
fn to_resource(kind: Kind, obj: &DynamicObject) -> std::result::Result<Resource, ParseError> {
    let mut v = serde_json::to_value(obj).map_err(|e| ParseError {
        origin: origin(kind, obj),
        line: None,
        column: None,
        reason: e.to_string(),
    })?;
    // The list API may omit apiVersion/kind on items.
    if let Some(m) = v.as_object_mut() {
        m.entry("apiVersion")
            .or_insert_with(|| kind.api_version().into());
        m.entry("kind").or_insert_with(|| kind.name().into());
    }
    Resource::from_value(kind, v).map_err(|reason| ParseError {
        origin: origin(kind, obj),
        line: None,
        column: None,
        reason,
    })
}

fn to_object(r: &Resource) -> Result<DynamicObject> {
    serde_json::from_value(r.to_value())
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", r.key())))
}

fn api_error(key: &ResourceKey, e: kube::Error, expected: Option<&str>) -> StoreError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => StoreError::NotFound(key.clone()),
        kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists" => {
            StoreError::AlreadyExists(key.clone())
        }
        kube::Error::Api(s) if s.code == 409 => StoreError::Conflict {
            key: key.clone(),
            expected: expected.unwrap_or("?").to_string(),
            found: "a newer version".into(),
        },
        _ => StoreError::Invalid(format!("{key}: the Kubernetes API answered: {e}")),
    }
}

impl KubeStore {
    pub fn new(client: kube::Client, describe: String) -> Self {
        KubeStore {
            client,
            describe,
            watch: Mutex::new(None),
            crd_probe: CRD_PROBE,
        }
    }

    /// Looks for missing CRDs every `every` instead of [`CRD_PROBE`] (for tests).
    pub fn with_crd_probe(mut self, every: Duration) -> Self {
        self.crd_probe = every;
        self
    }

    fn api(&self, kind: Kind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &api_resource(kind))
    }

    /// Starts one reflector per kind; publishes the whole state once every kind is listed (or
    /// found absent: its CRD is not installed), then on every change. Each event is applied
    /// to the listing (one object converted), not the listing rebuilt; a relist replaces its
    /// kind whole.
    fn start_watch(&self) -> watch::Receiver<Arc<Listing>> {
        let (tx, rx) = watch::channel(Arc::new(Listing::default()));
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel::<(Kind, KindEvent)>();
        for kind in Kind::ALL {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource(kind));
            tokio::spawn(watch_kind(kind, api, self.crd_probe, ev_tx.clone()));
        }
        tokio::spawn(async move {
            let mut listing = Listing::default();
            let mut ready: BTreeSet<Kind> = BTreeSet::new();
            let mut absent: BTreeSet<Kind> = BTreeSet::new();
            while let Some((kind, ev)) = ev_rx.recv().await {
                let whole = matches!(ev, KindEvent::Listed(_) | KindEvent::Absent);
                let changed = match ev {
                    KindEvent::Absent => {
                        // No CRD, no objects: the kind is empty and ready, so the rest serves.
                        replace_kind(&mut listing, kind, &[]);
                        ready.insert(kind);
                        if absent.insert(kind) {
                            tracing::warn!(kind = %kind, "{}", absent_note(kind));
                        }
                        true
                    }
                    KindEvent::Listed(objects) => {
                        // A relist replaces the kind's state whole (objects deleted meanwhile go).
                        replace_kind(&mut listing, kind, &objects);
                        ready.insert(kind);
                        if absent.remove(&kind) {
                            tracing::info!(kind = %kind, "the cluster now has the CRD of {kind}: its resources are read");
                        }
                        true
                    }
                    KindEvent::Applied(o) => apply_object(&mut listing, kind, &o),
                    KindEvent::Deleted(o) => remove_object(&mut listing, kind, &o),
                };
                listing.unavailable = absent.iter().copied().collect();
                if !changed || ready.len() < Kind::ALL.len() {
                    continue;
                }
                if whole {
                    tx.send_if_modified(|cur| {
                        if **cur == listing {
                            false
                        } else {
                            *cur = Arc::new(listing.clone());
                            true
                        }
                    });
                } else {
                    tx.send_replace(Arc::new(listing.clone()));
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        rx
    }
}

/// The key an object has (or had) in the listing.
fn key_of(kind: Kind, o: &DynamicObject) -> ResourceKey {
    ResourceKey::new(
        kind,
        o.metadata.namespace.as_deref().unwrap_or(""),
        o.metadata.name.as_deref().unwrap_or(""),
    )
}

/// Forgets what the listing says about one object (its resource or its read error); whether
/// it said anything.
fn remove_object(listing: &mut Listing, kind: Kind, o: &DynamicObject) -> bool {
    let at = origin(kind, o);
    let errors = listing.errors.len();
    listing.errors.retain(|e| e.origin != at);
    listing.resources.remove(&key_of(kind, o)).is_some() || listing.errors.len() != errors
}

/// Puts one object's current state into the listing; whether anything changed.
fn apply_object(listing: &mut Listing, kind: Kind, o: &DynamicObject) -> bool {
    match to_resource(kind, o) {
        Ok(r) => {
            let key = r.key();
            if listing.resources.get(&key) == Some(&r) {
                return false;
            }
            let at = origin(kind, o);
            listing.errors.retain(|e| e.origin != at);
            listing.resources.insert(key, r);
        }
        Err(e) => {
            remove_object(listing, kind, o);
            listing.errors.push(e);
        }
    }
    true
}

/// Replaces everything the listing holds of `kind` with `objects`.
fn replace_kind(listing: &mut Listing, kind: Kind, objects: &[Arc<DynamicObject>]) {
    let prefix = format!("{}/", kind.plural());
    listing.resources.retain(|k, _| k.kind != kind);
    listing.errors.retain(|e| !e.origin.starts_with(&prefix));
    for o in objects {
        apply_object(listing, kind, o);
    }
}

/// What one kind's reflector tells the store. (`Absent` is rare and small; boxing the
/// objects would cost an allocation each for nothing.)
#[allow(clippy::large_enum_variant)]
enum KindEvent {
    /// The kind was listed (first, or again after an expired watch): the reflector's state.
    Listed(Vec<Arc<DynamicObject>>),
    Applied(DynamicObject),
    Deleted(DynamicObject),
    /// The cluster has no such resource type (its CRD is not installed, or was removed).
    Absent,
}

/// How often a kind whose CRD is missing is looked for again.
pub const CRD_PROBE: Duration = Duration::from_secs(30);

/// The line said (once) about a kind whose CRD is missing.
pub fn absent_note(kind: Kind) -> String {
    let group = kind.api_version().split_once('/').map_or("", |(g, _)| g);
    format!(
        "the cluster has no CRD {}.{group}: its {kind} are not read (install it with `epoxy install crds`); looked for again every {}s",
        kind.plural(),
        CRD_PROBE.as_secs()
    )
}

/// Whether the API answered that the resource type does not exist (404 on a collection).
fn type_absent(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn watch_absent(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => type_absent(e),
        watcher::Error::WatchError(s) => s.code == 404,
        watcher::Error::NoResourceVersion => false,
    }
}

/// Watches one kind until the store's receiver goes: while its resource type is missing, it
/// is reported absent once and probed every `probe`; once there, it is watched again.
async fn watch_kind(
    kind: Kind,
    api: Api<DynamicObject>,
    probe: Duration,
    events: tokio::sync::mpsc::UnboundedSender<(Kind, KindEvent)>,
) {
    loop {
        let writer = reflector::store::Writer::new(api_resource(kind));
        let reader = writer.as_reader();
        let mut stream = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .boxed();
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(watcher::Event::InitDone) => KindEvent::Listed(reader.state()),
                Ok(watcher::Event::Apply(o)) => KindEvent::Applied(o),
                Ok(watcher::Event::Delete(o)) => KindEvent::Deleted(o),
                // A relist in progress: the reflector keeps it until it is complete.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                Err(e) if watch_absent(&e) => break,
                Err(e) => {
                    tracing::warn!(kind = %kind, error = %e, "watch failed; retrying (the last state keeps serving)");
                    continue;
                }
            };
            if events.send((kind, ev)).is_err() {
                return;
            }
        }
        drop(stream);
        if events.send((kind, KindEvent::Absent)).is_err() {
            return;
        }
        loop {
            tokio::time::sleep(probe).await;
            if events.is_closed() {
                return;
            }
            match api.list(&ListParams::default().limit(1)).await {
                Err(e) if type_absent(&e) => continue,
                // There (or another error, which the watcher retries and reports).
                _ => break,
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for KubeStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn list(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        for kind in Kind::ALL {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource(kind));
            let objs = match api.list(&ListParams::default()).await {
                Ok(objs) => objs,
                Err(e) if type_absent(&e) => {
                    listing.unavailable.push(kind);
                    continue;
                }
                Err(e) => {
                    return Err(StoreError::Invalid(format!(
                        "listing {kind}: the Kubernetes API answered: {e}"
                    )));
                }
            };
            for o in &objs.items {
                match to_resource(kind, o) {
                    Ok(r) => {
                        listing.resources.insert(r.key(), r);
                    }
                    Err(e) => listing.errors.push(e),
                }
            }
        }
        Ok(listing)
    }

    async fn get(&self, key: &ResourceKey) -> Result<Resource> {
        let o = self
            .api(key.kind, &key.namespace)
            .get(&key.name)
            .await
            .map_err(|e| api_error(key, e, None))?;
        to_resource(key.kind, &o).map_err(StoreError::Unreadable)
    }

    async fn put(&self, mut resource: Resource, pre: Precondition) -> Result<Resource> {
        if resource.namespace().is_empty() {
            resource.meta_mut().namespace = Some(crate::api::DEFAULT_NAMESPACE.to_string());
        }
        let key = resource.key();
        let api = self.api(key.kind, &key.namespace);
        let pp = PostParams::default();
        let version = match &pre {
            Precondition::Absent => None,
            Precondition::Version(v) => Some(v.clone()),
            Precondition::Any => match api
                .get_opt(&key.name)
                .await
                .map_err(|e| api_error(&key, e, None))?
            {
                Some(current) => Some(current.metadata.resource_version.unwrap_or_default()),
                None => None,
            },
        };
        let written = match version {
            None => {
                resource.meta_mut().resource_version = None;
                api.create(&pp, &to_object(&resource)?)
                    .await
                    .map_err(|e| match &e {
                        e if type_absent(e) => {
                            StoreError::Invalid(format!("{key}: {}", absent_note(key.kind)))
                        }
                        _ => api_error(&key, e, None),
                    })?
            }
            Some(v) => {
                resource.meta_mut().resource_version = Some(v.clone());
                api.replace(&key.name, &pp, &to_object(&resource)?)
                    .await
                    .map_err(|e| api_error(&key, e, Some(&v)))?
            }
        };
        to_resource(key.kind, &written).map_err(StoreError::Unreadable)
    }

    async fn delete(&self, key: &ResourceKey, pre: Precondition) -> Result<()> {
        let dp = match &pre {
            Precondition::Version(v) => DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(v.clone()),
                    uid: None,
                }),
                ..Default::default()
            },
            _ => DeleteParams::default(),
        };
        self.api(key.kind, &key.namespace)
            .delete(&key.name, &dp)
            .await
            .map(|_| ())
            .map_err(|e| api_error(key, e, None))
    }

    fn watch(&self) -> watch::Receiver<Arc<Listing>> {
        let mut guard = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        guard.get_or_insert_with(|| self.start_watch()).clone()
    }
}

#[cfg(test)]
mod tests {
    //! Watch edge cases on a `tower-test` mock of the API server.
    use super::*;
    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use std::time::Duration;

    fn upstream(name: &str, rv: u32) -> serde_json::Value {
        serde_json::json!({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
            "metadata": {"name": name, "namespace": "gloo-system", "resourceVersion": rv.to_string()},
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 80}]}}})
    }

    /// A watch that expires with 410 Gone makes the store relist, and the relisted state
    /// replaces the old one whole: an object deleted meanwhile is gone, a new one is there.
    #[tokio::test]
    async fn watch_expired_with_410_relists_and_replaces_the_state() {
        let (mock, mut handle) =
            tower_test::mock::pair::<Request<kube::client::Body>, Response<Full<Bytes>>>();
        tokio::spawn(async move {
            let mut upstream_lists = 0;
            let mut upstream_watches = 0;
            let mut parked = Vec::new();
            while let Some((req, send)) = handle.next_request().await {
                let uri = req.uri().to_string();
                let watch = uri.contains("watch=true");
                let body = match (uri.contains("/upstreams"), watch) {
                    (true, false) => {
                        upstream_lists += 1;
                        let items = if upstream_lists == 1 {
                            vec![upstream("a", 1), upstream("b", 2)]
                        } else {
                            vec![upstream("b", 2), upstream("c", 5)]
                        };
                        serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": upstream_lists.to_string()}, "items": items}).to_string()
                    }
                    (true, true) if upstream_watches == 0 => {
                        upstream_watches += 1;
                        let gone = serde_json::json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410}});
                        format!("{gone}\n")
                    }
                    (_, true) => {
                        // Other watches stay open with nothing to say.
                        parked.push(send);
                        continue;
                    }
                    (false, false) => serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}).to_string(),
                };
                send.send_response(Response::new(Full::new(Bytes::from(body))));
            }
        });
        let store = KubeStore::new(kube::Client::new(mock, "default"), "mock".into());
        let mut rx = store.watch();
        let names = |l: &Listing| {
            l.resources
                .keys()
                .map(|k| k.name.clone())
                .collect::<Vec<_>>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut seen_first = false;
        loop {
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .expect("no relist after 410 Gone")
                .unwrap();
            let now = names(&rx.borrow_and_update());
            if now == ["a", "b"] {
                seen_first = true;
            }
            if now == ["b", "c"] {
                break;
            }
        }
        assert!(
            seen_first,
            "the first complete state was published before the relist"
        );
    }
}
