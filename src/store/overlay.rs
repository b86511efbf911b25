//! A store with resources laid over it that are not written anywhere: virtual services made
//! from Ingresses, upstreams a console discovered in a cluster it must not write to. Reads and
//! watches see both (the real store wins on a name clash); writes go to the real store.

use super::{Listing, Precondition, Result, Store};
use crate::api::{Resource, ResourceKey, ResourceSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct OverlayStore {
    inner: Arc<dyn Store>,
    extra: watch::Receiver<Arc<ResourceSet>>,
    merged: Mutex<Option<watch::Receiver<Arc<Listing>>>>,
}

fn merge(base: &Listing, extra: &ResourceSet) -> Listing {
    let mut out = base.clone();
    for (k, r) in extra {
        out.resources.entry(k.clone()).or_insert_with(|| r.clone());
    }
    out
}

impl OverlayStore {
    pub fn new(inner: Arc<dyn Store>, extra: watch::Receiver<Arc<ResourceSet>>) -> Self {
        OverlayStore {
            inner,
            extra,
            merged: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl Store for OverlayStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn list(&self) -> Result<Listing> {
        let base = self.inner.list().await?;
        Ok(merge(&base, &self.extra.borrow()))
    }

    async fn get(&self, key: &ResourceKey) -> Result<Resource> {
        match self.inner.get(key).await {
            Err(super::StoreError::NotFound(k)) => self
                .extra
                .borrow()
                .get(key)
                .cloned()
                .ok_or(super::StoreError::NotFound(k)),
            other => other,
        }
    }

    async fn put(&self, resource: Resource, pre: Precondition) -> Result<Resource> {
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
                let first = merge(&base.borrow_and_update(), &extra.borrow_and_update());
                let (tx, rx) = watch::channel(Arc::new(first));
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            r = base.changed() => if r.is_err() { return },
                            r = extra.changed() => if r.is_err() { return },
                        }
                        let next = merge(&base.borrow_and_update(), &extra.borrow_and_update());
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
