//! The complete state of one kind, from kube-rs watchers: published whole after the first
//! list and after every change; a relist (after 410 Gone, or a reconnect) replaces it whole.

use futures_util::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Watches the objects of `apis` (one per namespace, or one for all) until the receiver is
/// dropped; None until every stream has listed once.
pub fn watch_state<K>(apis: Vec<Api<K>>) -> watch::Receiver<Option<Arc<Vec<K>>>>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (tx, rx) = watch::channel(None);
    let streams = apis.len();
    tokio::spawn(async move {
        let tagged = apis.into_iter().enumerate().map(|(i, api)| {
            watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |e| (i, e))
                .boxed()
        });
        let mut events = futures_util::stream::select_all(tagged);
        // Per stream: its objects by namespace/name, and what a relist in progress has seen.
        let mut objects: Vec<BTreeMap<String, K>> = vec![BTreeMap::new(); streams];
        let mut pending: Vec<Option<BTreeMap<String, K>>> = vec![None; streams];
        let mut listed = vec![false; streams];
        let id = |o: &K| {
            format!(
                "{}/{}",
                o.meta().namespace.as_deref().unwrap_or(""),
                o.meta().name.as_deref().unwrap_or("")
            )
        };
        while let Some((i, ev)) = events.next().await {
            match ev {
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed; retrying (the last state stays)");
                    continue;
                }
                Ok(watcher::Event::Init) => {
                    pending[i] = Some(BTreeMap::new());
                    continue;
                }
                Ok(watcher::Event::InitApply(o)) => {
                    pending[i]
                        .get_or_insert_with(BTreeMap::new)
                        .insert(id(&o), o);
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    objects[i] = pending[i].take().unwrap_or_default();
                    listed[i] = true;
                }
                Ok(watcher::Event::Apply(o)) => {
                    objects[i].insert(id(&o), o);
                }
                Ok(watcher::Event::Delete(o)) => {
                    objects[i].remove(&id(&o));
                }
            }
            if !listed.iter().all(|l| *l) {
                continue;
            }
            let all: Vec<K> = objects.iter().flat_map(|m| m.values().cloned()).collect();
            if tx.send(Some(Arc::new(all))).is_err() {
                return;
            }
        }
    });
    rx
}
