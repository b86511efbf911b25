//! The complete state of one kind (Services, Ingresses) for discovery, from kube-runtime's
//! reflectors: each event is applied to the reflector's store, and the state is published
//! whole after the first list and after every change; a relist (after 410 Gone, or a
//! reconnect) replaces it whole once it is complete.

use futures_util::StreamExt;
use kube::api::Api;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use tokio::sync::watch;

/// Watches the objects of `apis` (one per namespace, or one for all) until the receiver is
/// dropped; None until every stream has listed once.
pub fn watch_state<K>(apis: Vec<Api<K>>) -> watch::Receiver<Option<Arc<Vec<K>>>>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (tx, rx) = watch::channel(None);
    let streams = apis.len();
    let mut readers = Vec::with_capacity(streams);
    let tagged: Vec<_> = apis
        .into_iter()
        .enumerate()
        .map(|(i, api)| {
            let (reader, writer) = reflector::store();
            readers.push(reader);
            watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .map(move |e| (i, e))
                .boxed()
        })
        .collect();
    tokio::spawn(async move {
        let mut events = futures_util::stream::select_all(tagged);
        let mut listed = vec![false; streams];
        while let Some((i, ev)) = events.next().await {
            match ev {
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed; retrying (the last state stays)");
                    continue;
                }
                // A relist in progress: the reflector keeps the old state until it is done.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                Ok(watcher::Event::InitDone) => listed[i] = true,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {}
            }
            if !listed.iter().all(|l| *l) {
                continue;
            }
            let mut all: Vec<K> = readers
                .iter()
                .flat_map(|r| r.state())
                .map(|o| K::clone(&o))
                .collect();
            // The reflector's store is a hash map: publish in a stable order (by namespace,
            // then name), so that consumers see the same state the same way.
            all.sort_by(|a, b| {
                let at = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
                at(a).cmp(&at(b))
            });
            if tx.send(Some(Arc::new(all))).is_err() {
                return;
            }
        }
    });
    rx
}
