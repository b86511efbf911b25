//! The control loop: watch the store, validate the whole state, compile what is accepted and
//! swap it into the gateway at once. A rejected resource keeps serving its last accepted
//! version (or nothing, if it never had one), and its status says why; one rejected for asking
//! what epoxy cannot enforce (auth, rate limits, TLS) serves nothing.

use crate::api::status::{Status, statuses};
use crate::api::{Kind, ParseError, Resource, ResourceKey, ResourceSet, Severity, validate};
use crate::gateway::Gateway;
use crate::gateway::listener::{ListenerSpec, build_all, fingerprint};
use crate::store::{Listing, Store};
use std::borrow::Cow;
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
    /// Kinds the store cannot hold now (a cluster without their CRD), read as empty.
    pub unavailable: Vec<Kind>,
    /// Keys that are rejected but still serve their last accepted version.
    pub serving_last_good: Vec<ResourceKey>,
    pub routes: usize,
    /// The resourceVersion of every resource this report saw, so that a writer can wait until
    /// its write is live.
    pub versions: BTreeMap<ResourceKey, String>,
}

/// What a report says that the one before it did not: worth a log line once, not at every
/// reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A resource is rejected, or rejected for another reason than before.
    Rejected { key: ResourceKey, reason: String },
    /// A resource rejected before is accepted now (or gone).
    Cleared(ResourceKey),
    /// A file the store cannot read (its error as it reads now).
    Unreadable(String),
    /// A file the store could not read is read again (or gone).
    Readable(String),
}

impl Report {
    /// What changed since `prev` (everything, for the first report): rejections and
    /// unreadable files that are new or read differently, and those that went away.
    pub fn changes_since(&self, prev: Option<&Report>) -> Vec<Change> {
        let reason = |r: &Report, k: &ResourceKey| r.statuses.get(k).and_then(|s| s.reason.clone());
        let mut out = Vec::new();
        for (k, s) in &self.statuses {
            if let Some(now) = &s.reason
                && prev.and_then(|p| reason(p, k)).as_ref() != Some(now)
            {
                out.push(Change::Rejected {
                    key: k.clone(),
                    reason: now.clone(),
                });
            }
        }
        if let Some(p) = prev {
            for (k, s) in &p.statuses {
                if s.reason.is_some() && reason(self, k).is_none() {
                    out.push(Change::Cleared(k.clone()));
                }
            }
        }
        let text =
            |r: &Report| -> Vec<String> { r.store_errors.iter().map(|e| e.to_string()).collect() };
        let (before, now) = (prev.map(text).unwrap_or_default(), text(self));
        out.extend(
            now.iter()
                .filter(|e| !before.contains(e))
                .map(|e| Change::Unreadable(e.clone())),
        );
        let origins: Vec<&str> = self
            .store_errors
            .iter()
            .map(|e| e.origin.as_str())
            .collect();
        if let Some(p) = prev {
            out.extend(
                p.store_errors
                    .iter()
                    .filter(|e| !origins.contains(&e.origin.as_str()))
                    .map(|e| Change::Readable(e.origin.clone())),
            );
        }
        out
    }
}

/// The loop's memory of what was accepted: the previous listing (shared, not copied) with the
/// keys it rejected, and the last accepted versions of keys rejected since.
#[derive(Default)]
pub struct Reconciler {
    prev: Option<Arc<Listing>>,
    prev_rejected: HashSet<ResourceKey>,
    fallback: ResourceSet,
    generation: u64,
}

impl Reconciler {
    /// The last accepted version of `key`, if it ever had one.
    fn last_good(&self, key: &ResourceKey) -> Option<&Resource> {
        self.fallback.get(key).or_else(|| {
            self.prev
                .as_ref()
                .filter(|_| !self.prev_rejected.contains(key))
                .and_then(|p| p.resources.get(key))
        })
    }

    /// One pass: returns the set to compile (the listing itself when nothing is rejected, so
    /// a large store is not copied on every change) and the report.
    pub fn reconcile<'a>(&mut self, listing: &'a Arc<Listing>) -> (Cow<'a, ResourceSet>, Report) {
        let problems = validate(&listing.resources);
        let rejected: HashSet<ResourceKey> = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.key.clone())
            .collect();
        let mut fallback = ResourceSet::new();
        let mut serving_last_good = Vec::new();
        for k in &rejected {
            // What a resource asks epoxy cannot enforce (auth, TLS) is not served without it;
            // nor is a rejected version asking for auth or limits served as an older one
            // that may lack them.
            if listing.resources.get(k).is_some_and(|r| {
                crate::api::strict::asks_unenforced(r) || crate::policy::check::asks_protection(r)
            }) {
                continue;
            }
            if let Some(prev) = self.last_good(k) {
                fallback.insert(k.clone(), prev.clone());
                serving_last_good.push(k.clone());
            }
        }
        serving_last_good.sort();
        let effective = if rejected.is_empty() {
            Cow::Borrowed(&listing.resources)
        } else {
            let mut e = listing.resources.clone();
            for k in &rejected {
                e.remove(k);
            }
            e.extend(fallback.iter().map(|(k, r)| (k.clone(), r.clone())));
            Cow::Owned(e)
        };
        self.prev = Some(listing.clone());
        self.prev_rejected = rejected;
        self.fallback = fallback;
        self.generation += 1;
        let report = Report {
            generation: self.generation,
            statuses: statuses(listing.resources.keys(), &problems),
            store_errors: listing.errors.clone(),
            unavailable: listing.unavailable.clone(),
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

/// How often certificate files (`sslFiles`) are checked for a change.
const FILE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A listener's finding on a virtual service, in its status.
fn add_problem(
    statuses: &mut BTreeMap<ResourceKey, Status>,
    p: &crate::gateway::listener::BindProblem,
) {
    use crate::api::status::State;
    let st = statuses
        .entry(p.key.clone())
        .or_insert_with(Status::accepted);
    if p.error {
        st.state = State::Rejected;
        st.reason = Some(match st.reason.take() {
            Some(r) => format!("{r}; {}", p.message),
            None => p.message.clone(),
        });
    } else {
        if st.state == State::Accepted {
            st.state = State::Warning;
        }
        st.warnings.push(p.message.clone());
    }
}

/// Starts the loop on the current runtime; returns the receiver of its reports.
pub fn spawn(store: Arc<dyn Store>, gateway: Gateway) -> watch::Receiver<Arc<Report>> {
    let (tx, rx) = watch::channel(Arc::new(Report::default()));
    let mut changes = store.watch();
    tokio::spawn(async move {
        let mut r = Reconciler::default();
        let mut files = Vec::new();
        loop {
            let listing = changes.borrow_and_update().clone();
            // The certificate files as they are *before* this build reads them: a file
            // rewritten while it is read (the certificate, then its key) is noticed next poll.
            let before = fingerprint(&files);
            let (set, mut report) = r.reconcile(&listing);
            // The listeners: one per Gateway (bound, rebound or closed as they change), or
            // Gloo's default pair when the store has none.
            let has_gateways = listing.resources.keys().any(|k| k.kind == Kind::Gateway);
            let failed = gateway
                .listeners
                .update(ListenerSpec::of_set(&set, has_gateways), report.generation);
            let listeners = gateway.listeners.list();
            let built = build_all(
                &listeners,
                &set,
                &gateway.registry,
                report.generation,
                &*gateway.connector,
            );
            report.routes = built.routes;
            // `table` shows the first plain listener's routes, and which generation is in.
            gateway.table.store(
                listeners
                    .iter()
                    .find_map(|l| l.plain_table())
                    .map(|t| t.load_full())
                    .unwrap_or_else(|| {
                        Arc::new(crate::gateway::table::RouteTable::empty(report.generation))
                    }),
            );
            for p in &built.problems {
                add_problem(&mut report.statuses, p);
            }
            for f in failed {
                let Some(key) = f.gateway else {
                    tracing::warn!(listener = %f.name, reason = %f.message, "listener not served");
                    continue;
                };
                add_problem(
                    &mut report.statuses,
                    &crate::gateway::listener::BindProblem {
                        key,
                        message: format!("spec.bindPort: {}", f.message),
                        error: true,
                    },
                );
            }
            for k in &report.serving_last_good {
                tracing::warn!(resource = %k, "rejected; serving its last accepted version");
            }
            drop(set);
            drop(listing);
            let _ = tx.send(Arc::new(report));
            crate::memory::give_back();
            // Certificate files are watched too: a rotated one is served within a second.
            let seen = if built.files == files {
                before
            } else {
                files = built.files;
                fingerprint(&files)
            };
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                    // The workers started (or a listener could not be bound): statuses anew.
                    _ = gateway.listeners.rebound.notified() => break,
                    _ = tokio::time::sleep(FILE_POLL), if !files.is_empty() => {
                        if fingerprint(&files) != seen {
                            break;
                        }
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_one;

    #[test]
    fn a_rejection_or_an_unreadable_file_is_told_once_and_its_end_too() {
        let key = ResourceKey::new(Kind::VirtualService, "ns", "v");
        let report = |reason: Option<&str>, unreadable: Option<&str>| {
            let mut status = crate::api::status::Status::accepted();
            status.reason = reason.map(str::to_string);
            Report {
                statuses: [(key.clone(), status)].into_iter().collect(),
                store_errors: unreadable
                    .map(|f| ParseError {
                        origin: f.into(),
                        line: Some(2),
                        column: None,
                        reason: "bad YAML".into(),
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }
        };
        let first = report(Some("no upstream `a`"), Some("bad.yaml"));
        let changes = first.changes_since(None);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(
            matches!(&changes[0], Change::Rejected { reason, .. } if reason == "no upstream `a`")
        );
        assert!(matches!(&changes[1], Change::Unreadable(e) if e.contains("bad.yaml")));
        // The same again: nothing to tell.
        let same = report(Some("no upstream `a`"), Some("bad.yaml"));
        assert_eq!(same.changes_since(Some(&first)), []);
        // Another reason: told; the file fixed: told.
        let other = report(Some("no upstream `b`"), None);
        assert_eq!(
            other.changes_since(Some(&same)),
            [
                Change::Rejected {
                    key: key.clone(),
                    reason: "no upstream `b`".into()
                },
                Change::Readable("bad.yaml".into())
            ]
        );
        // Accepted now.
        let fixed = report(None, None);
        assert_eq!(fixed.changes_since(Some(&other)), [Change::Cleared(key)]);
    }

    fn vs(regex: &str) -> Resource {
        parse_one(
            &format!("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: ns}}\nspec:\n  virtualHost:\n    routes:\n    - matchers: [{{regex: '{regex}'}}]\n      directResponseAction: {{status: 200}}\n"),
            "t",
        )
        .unwrap()
    }

    fn listing(r: Resource) -> Arc<Listing> {
        let mut l = Listing::default();
        l.resources.insert(r.key(), r);
        Arc::new(l)
    }

    fn regex_of(set: &ResourceSet) -> Option<String> {
        set.values()
            .next()
            .and_then(|r| r.routes()?.first()?.matchers.first()?.regex.clone())
    }

    #[test]
    fn a_rejected_resource_keeps_serving_its_last_accepted_version() {
        let mut r = Reconciler::default();
        let l1 = listing(vs("/one"));
        let (set, rep) = r.reconcile(&l1);
        assert!(
            matches!(set, Cow::Borrowed(_)),
            "nothing rejected: the listing is not copied"
        );
        assert_eq!(regex_of(&set).as_deref(), Some("/one"));
        assert!(rep.serving_last_good.is_empty());
        // Broken twice in a row: the first version keeps serving.
        for bad in ["/two(", "/three("] {
            let l = listing(vs(bad));
            let (set, rep) = r.reconcile(&l);
            assert_eq!(regex_of(&set).as_deref(), Some("/one"), "after {bad}");
            assert_eq!(rep.serving_last_good.len(), 1);
        }
        // Fixed: the new version serves.
        let l4 = listing(vs("/four"));
        let (set, rep) = r.reconcile(&l4);
        assert_eq!(regex_of(&set).as_deref(), Some("/four"));
        assert!(rep.serving_last_good.is_empty());
        // A resource that never had an accepted version serves nothing.
        let mut fresh = Reconciler::default();
        let bad = listing(vs("/x("));
        let (set, _) = fresh.reconcile(&bad);
        assert!(set.is_empty());
    }

    #[test]
    fn a_resource_asking_for_auth_serves_nothing_not_its_last_version() {
        let mut r = Reconciler::default();
        let l1 = listing(vs("/one"));
        let (set, _) = r.reconcile(&l1);
        assert_eq!(regex_of(&set).as_deref(), Some("/one"));
        let with_auth = parse_one(
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: ns}\nspec:\n  virtualHost:\n    options: {extauth: {configRef: {name: a, namespace: b}}}\n    routes:\n    - matchers: [{regex: '/one'}]\n      directResponseAction: {status: 200}\n",
            "t",
        )
        .unwrap();
        let l2 = listing(with_auth);
        let (set, rep) = r.reconcile(&l2);
        assert!(set.is_empty(), "served without its auth: {set:?}");
        assert!(rep.serving_last_good.is_empty());
        let st = rep.statuses.values().next().unwrap();
        assert!(
            st.reason.as_deref().unwrap_or("").contains(
                "spec.virtualHost.options.extauth.configRef: AuthConfig `a` does not exist"
            ),
            "{st:?}"
        );
    }
}
