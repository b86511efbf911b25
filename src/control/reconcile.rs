//! The control loop: watch the store, validate the whole state, compile what is accepted and
//! swap it into the gateway at once. A rejected resource keeps serving its last accepted
//! version (or nothing, if it never had one), and its status says why.

use crate::api::status::{Status, statuses};
use crate::api::{ParseError, ResourceKey, ResourceSet, Severity, validate};
use crate::gateway::Gateway;
use crate::gateway::table::compile_with;
use crate::store::{Listing, Store};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;

/// What the control loop reports after each reconcile.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub generation: u64,
    pub statuses: BTreeMap<ResourceKey, Status>,
    /// Files the store could not read.
    pub store_errors: Vec<ParseError>,
    /// Keys that are rejected but still serve their last accepted version.
    pub serving_last_good: Vec<ResourceKey>,
    pub routes: usize,
    /// The resourceVersion of every resource this report saw, so that a writer can wait until
    /// its write is live.
    pub versions: BTreeMap<ResourceKey, String>,
}

/// The loop's memory: the last accepted version of every resource.
#[derive(Default)]
pub struct Reconciler {
    last_good: ResourceSet,
    generation: u64,
}

impl Reconciler {
    /// One pass: returns the set to compile and the report.
    pub fn reconcile(&mut self, listing: &Listing) -> (ResourceSet, Report) {
        let problems = validate(&listing.resources);
        let rejected: HashSet<&ResourceKey> = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| &p.key)
            .collect();
        let mut effective = ResourceSet::new();
        let mut serving_last_good = Vec::new();
        for (k, r) in &listing.resources {
            if !rejected.contains(k) {
                effective.insert(k.clone(), r.clone());
            } else if let Some(prev) = self.last_good.get(k) {
                effective.insert(k.clone(), prev.clone());
                serving_last_good.push(k.clone());
            }
        }
        self.last_good = effective.clone();
        self.generation += 1;
        let report = Report {
            generation: self.generation,
            statuses: statuses(listing.resources.keys(), &problems),
            store_errors: listing.errors.clone(),
            serving_last_good,
            routes: 0,
            versions: listing
                .resources
                .iter()
                .map(|(k, r)| (k.clone(), r.resource_version().unwrap_or("").to_string()))
                .collect(),
        };
        (effective, report)
    }
}

/// Starts the loop on the current runtime; returns the receiver of its reports.
pub fn spawn(store: Arc<dyn Store>, gateway: Gateway) -> watch::Receiver<Arc<Report>> {
    let (tx, rx) = watch::channel(Arc::new(Report::default()));
    let mut changes = store.watch();
    tokio::spawn(async move {
        let mut r = Reconciler::default();
        loop {
            let listing = changes.borrow_and_update().clone();
            let (set, mut report) = r.reconcile(&listing);
            let table = compile_with(
                &set,
                &gateway.registry,
                report.generation,
                gateway.apiserver.as_ref(),
            );
            report.routes = table.route_count();
            for p in &table.problems {
                tracing::warn!(problem = %p, "route not compiled");
            }
            for k in &report.serving_last_good {
                tracing::warn!(resource = %k, "rejected; serving its last accepted version");
            }
            gateway.table.store(Arc::new(table));
            let _ = tx.send(Arc::new(report));
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
    rx
}
