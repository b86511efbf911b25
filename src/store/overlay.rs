//! A store with resources laid over it that are not written anywhere: virtual services made
//! from Ingresses, upstreams a console discovered in a cluster it must not write to. Reads and
//! watches see both (the real store wins on a name clash). Writes go to the real store, except
//! writes to a resource that exists only in the overlay (functions discovered for an upstream
//! that was discovered in memory): those stay in memory too.

use super::{Listing, Precondition, Result, Store, StoreError};
use crate::api::{Resource, ResourceKey, ResourceSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct OverlayStore {
    inner: Arc<dyn Store>,
    extra: watch::Receiver<Arc<ResourceSet>>,
    /// Versions of overlay resources written through this store (kept in memory).
    local: watch::Sender<ResourceSet>,
    merged: Mutex<Option<watch::Receiver<Arc<Listing>>>>,
}

fn merge(base: &Listing, extra: &ResourceSet, local: &ResourceSet) -> Listing {
    let mut out = base.clone();
    for (k, r) in extra {
        if !out.resources.contains_key(k) {
            out.resources.insert(
                k.clone(),
                local.get(k).cloned().unwrap_or_else(|| r.clone()),
            );
        }
    }
    out
}

impl OverlayStore {
    pub fn new(inner: Arc<dyn Store>, extra: watch::Receiver<Arc<ResourceSet>>) -> Self {
        OverlayStore {
            inner,
            extra,
            local: watch::channel(ResourceSet::new()).0,
            merged: Mutex::new(None),
        }
    }

    /// Whether `key` lives only in the overlay (not in the real store).
    async fn overlay_only(&self, key: &ResourceKey) -> bool {
        let in_extra = self.extra.borrow().contains_key(key);
        in_extra && matches!(self.inner.get(key).await, Err(StoreError::NotFound(_)))
    }
}

#[async_trait::async_trait]
impl Store for OverlayStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn list(&self) -> Result<Listing> {
        let base = self.inner.list().await?;
        Ok(merge(&base, &self.extra.borrow(), &self.local.borrow()))
    }

    async fn get(&self, key: &ResourceKey) -> Result<Resource> {
        match self.inner.get(key).await {
            Err(StoreError::NotFound(k)) => {
                let local = self.local.borrow().get(key).cloned();
                local
                    .or_else(|| self.extra.borrow().get(key).cloned())
                    .ok_or(StoreError::NotFound(k))
            }
            other => other,
        }
    }

    async fn put(&self, resource: Resource, pre: Precondition) -> Result<Resource> {
        let key = resource.key();
        if self.overlay_only(&key).await {
            // Discovered in memory, updated in memory: nothing is written to the real store.
            self.local.send_modify(|l| {
                l.insert(key, resource.clone());
            });
            return Ok(resource);
        }
        self.inner.put(resource, pre).await
    }

    async fn delete(&self, key: &ResourceKey, pre: Precondition) -> Result<()> {
        self.inner.delete(key, pre).await
    }

    fn watch(&self) -> watch::Receiver<Arc<Listing>> {
        let mut guard = self.merged.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .get_or_insert_with(|| {
                let mut base = self.inner.watch();
                let mut extra = self.extra.clone();
                let mut local = self.local.subscribe();
                let first = merge(
                    &base.borrow_and_update(),
                    &extra.borrow_and_update(),
                    &local.borrow_and_update(),
                );
                let (tx, rx) = watch::channel(Arc::new(first));
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            r = base.changed() => if r.is_err() { return },
                            r = extra.changed() => if r.is_err() { return },
                            r = local.changed() => if r.is_err() { return },
                        }
                        let next = merge(
                            &base.borrow_and_update(),
                            &extra.borrow_and_update(),
                            &local.borrow_and_update(),
                        );
                        if tx.send(Arc::new(next)).is_err() {
                            return;
                        }
                    }
                });
                rx
            })
            .clone()
    }
}
