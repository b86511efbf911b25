//! A store whose writes stay in memory, over a real store that is only read: `--readonly`.
//! What the process itself must write to work (the demo pointing its upstream at this run's
//! petstore, the functions discovery finds) is seen by its gateway and console, and no file
//! changes.

use super::{Listing, Precondition, Result, Store, StoreError};
use crate::api::{Resource, ResourceKey, ResourceSet};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Default)]
struct Local {
    written: ResourceSet,
    deleted: HashSet<ResourceKey>,
    /// Versions of the resources written here.
    next: u64,
}

pub struct ScratchStore {
    inner: Arc<dyn Store>,
    local: watch::Sender<Local>,
    merged: Mutex<Option<watch::Receiver<Arc<Listing>>>>,
}

fn merge(base: &Listing, local: &Local) -> Listing {
    let mut out = base.clone();
    for k in &local.deleted {
        out.resources.remove(k);
    }
    for (k, r) in &local.written {
        out.resources.insert(k.clone(), r.clone());
    }
    out
}

impl ScratchStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        ScratchStore {
            inner,
            local: watch::channel(Local::default()).0,
            merged: Mutex::new(None),
        }
    }

    async fn current(&self, key: &ResourceKey) -> Result<Option<Resource>> {
        match self.get(key).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Store for ScratchStore {
    fn describe(&self) -> String {
        format!(
            "{} (read-only: changes kept in memory)",
            self.inner.describe()
        )
    }

    async fn list(&self) -> Result<Listing> {
        let base = self.inner.list().await?;
        Ok(merge(&base, &self.local.borrow()))
    }

    async fn get(&self, key: &ResourceKey) -> Result<Resource> {
        {
            let l = self.local.borrow();
            if let Some(r) = l.written.get(key) {
                return Ok(r.clone());
            }
            if l.deleted.contains(key) {
                return Err(StoreError::NotFound(key.clone()));
            }
        }
        self.inner.get(key).await
    }

    async fn put(&self, mut resource: Resource, pre: Precondition) -> Result<Resource> {
        let key = resource.key();
        let current = self.current(&key).await?;
        pre.check(&key, current.as_ref())?;
        self.local.send_modify(|l| {
            l.next += 1;
            resource.meta_mut().resource_version = Some(format!("memory-{}", l.next));
            l.deleted.remove(&key);
            l.written.insert(key, resource.clone());
        });
        Ok(resource)
    }

    async fn delete(&self, key: &ResourceKey, pre: Precondition) -> Result<()> {
        let current = self.current(key).await?;
        if current.is_none() {
            return Err(StoreError::NotFound(key.clone()));
        }
        pre.check(key, current.as_ref())?;
        self.local.send_modify(|l| {
            l.written.remove(key);
            l.deleted.insert(key.clone());
        });
        Ok(())
    }

    fn watch(&self) -> watch::Receiver<Arc<Listing>> {
        let mut guard = self.merged.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .get_or_insert_with(|| {
                let mut base = self.inner.watch();
                let mut local = self.local.subscribe();
                let first = merge(&base.borrow_and_update(), &local.borrow_and_update());
                let (tx, rx) = watch::channel(Arc::new(first));
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            r = base.changed() => if r.is_err() { return },
                            r = local.changed() => if r.is_err() { return },
                        }
                        let next = merge(&base.borrow_and_update(), &local.borrow_and_update());
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
