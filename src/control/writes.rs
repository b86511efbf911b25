//! Every change is a validated write: the change is checked against everything else in the
//! store, and refused if it brings in an error. Warnings (a reference that a later write or
//! discovery may satisfy) are returned, not refused, as in Gloo.
//!
//! Every writer comes through here: the CLI, the console, discovery (`discovery/uds.rs`,
//! `discovery/fds.rs`) and the demo. Only deletions by discovery of what it made go to the
//! store directly (a deletion is never refused; its warnings have no one to read them).

use crate::api::{DEFAULT_NAMESPACE, Problem, Resource, ResourceKey, Severity, validate};
use crate::store::{Precondition, Store, StoreError};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A write that went through: the stored resource and the warnings it carries.
#[derive(Debug)]
pub struct Written {
    pub resource: Resource,
    pub warnings: Vec<Problem>,
}

fn errors(problems: &[Problem]) -> HashSet<String> {
    problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect()
}

/// What a change would do: the errors it brings in, and the warnings on the changed resource.
pub async fn check_change(
    store: &dyn Store,
    change: Option<&Resource>,
    removed: Option<&ResourceKey>,
) -> Result<Vec<Problem>, WriteError> {
    let listing = store.list().await?;
    let before = validate(&listing.resources);
    let mut after_set = listing.resources;
    if let Some(k) = removed {
        after_set.remove(k);
    }
    if let Some(r) = change {
        after_set.insert(r.key(), r.clone());
    }
    let after = validate(&after_set);
    let old = errors(&before);
    let new_errors: Vec<Problem> = after
        .iter()
        .filter(|p| p.severity == Severity::Error && !old.contains(&p.to_string()))
        .cloned()
        .collect();
    // A change to a resource that was already broken must still leave it valid.
    let own_errors = change.map(|r| r.key());
    let mut refused = new_errors;
    if let Some(k) = &own_errors {
        for p in after
            .iter()
            .filter(|p| &p.key == k && p.severity == Severity::Error)
        {
            if !refused.contains(p) {
                refused.push(p.clone());
            }
        }
    }
    if !refused.is_empty() {
        return Err(WriteError::Invalid(refused));
    }
    let focus = change.map(|r| r.key()).or_else(|| removed.cloned());
    let old_warnings: HashSet<String> = before.iter().map(|p| p.to_string()).collect();
    Ok(after
        .into_iter()
        .filter(|p| p.severity == Severity::Warning)
        .filter(|p| Some(&p.key) == focus.as_ref() || !old_warnings.contains(&p.to_string()))
        .collect())
}

/// Validates `resource` against the store and writes it if it brings in no error.
pub async fn write(
    store: &dyn Store,
    mut resource: Resource,
    pre: Precondition,
) -> Result<Written, WriteError> {
    if resource.namespace().is_empty() {
        resource.meta_mut().namespace = Some(DEFAULT_NAMESPACE.to_string());
    }
    let warnings = check_change(store, Some(&resource), None).await?;
    let resource = store.put(resource, pre).await?;
    Ok(Written { resource, warnings })
}

/// Deletes `key`; returns the warnings the deletion causes elsewhere (dangling references).
pub async fn delete(store: &dyn Store, key: &ResourceKey) -> Result<Vec<Problem>, WriteError> {
    let warnings = check_change(store, None, Some(key))
        .await
        .unwrap_or_default();
    store.delete(key, Precondition::Any).await?;
    Ok(warnings)
}

/// What became of a batch: each resource's write (in the order given), and the warnings the
/// batch brings to resources outside it (references it left dangling, say).
#[derive(Debug)]
pub struct BatchOutcome {
    pub results: Vec<Result<Written, WriteError>>,
    pub other_warnings: Vec<Problem>,
}

/// Writes a batch (`epoxy apply` of a file) validated against one snapshot of the store: the
/// store is listed once and the whole set validated once per round, not once per resource
/// (which made an apply of N resources quadratic: 1,000 upstreams took 15 s). A resource the
/// batch's validation finds an error in is refused and left out, and the rest validated again
/// without it; the others are written. Where an error lands outside the batch (it cannot be
/// told which resource caused it), the batch is written one resource at a time instead.
pub async fn write_batch(
    store: &dyn Store,
    resources: Vec<Resource>,
) -> Result<BatchOutcome, WriteError> {
    let listing = store.list().await?;
    write_batch_on(store, &listing.resources, resources).await
}

/// [`write_batch`] on a listing of the store the caller already has (`base`): the CLI's
/// `apply`, discovery's writes (UDS, FDS) and the demo's all come through here or [`write`].
/// Each resource replaces exactly the version `base` holds (absent: created), so a change made
/// since is a conflict, not overwritten.
pub async fn write_batch_on(
    store: &dyn Store,
    base: &crate::api::ResourceSet,
    mut resources: Vec<Resource>,
) -> Result<BatchOutcome, WriteError> {
    for r in &mut resources {
        if r.namespace().is_empty() {
            r.meta_mut().namespace = Some(DEFAULT_NAMESPACE.to_string());
        }
    }
    let keys: Vec<ResourceKey> = resources.iter().map(Resource::key).collect();
    let distinct: HashSet<&ResourceKey> = keys.iter().collect();
    let before = validate(base);
    let old_errors = errors(&before);
    let old_warnings: HashSet<String> = before.iter().map(|p| p.to_string()).collect();
    let mut set = base.clone();
    for r in &resources {
        set.insert(r.key(), r.clone());
    }
    let mut refused: std::collections::HashMap<ResourceKey, Vec<Problem>> = Default::default();
    let after = loop {
        let after = validate(&set);
        let mut round: std::collections::HashMap<ResourceKey, Vec<Problem>> = Default::default();
        let mut elsewhere = false;
        for p in after.iter().filter(|p| p.severity == Severity::Error) {
            let in_batch = distinct.contains(&p.key) && !refused.contains_key(&p.key);
            if in_batch {
                // A resource of the batch must come out valid (even if it was broken before).
                round.entry(p.key.clone()).or_default().push(p.clone());
            } else if !old_errors.contains(&p.to_string()) {
                elsewhere = true;
            }
        }
        if elsewhere || distinct.len() != keys.len() {
            // Not attributable (or a resource given twice): one at a time, as `write` does.
            let mut results = Vec::with_capacity(resources.len());
            for r in resources {
                results.push(write(store, r, Precondition::Any).await);
            }
            return Ok(BatchOutcome {
                results,
                other_warnings: Vec::new(),
            });
        }
        if round.is_empty() {
            break after;
        }
        for (key, problems) in round {
            match base.get(&key) {
                Some(old) => set.insert(key.clone(), old.clone()),
                None => set.remove(&key),
            };
            refused.insert(key, problems);
        }
    };
    let mut warnings: std::collections::HashMap<&ResourceKey, Vec<Problem>> = Default::default();
    let mut other_warnings = Vec::new();
    for p in after.iter().filter(|p| p.severity == Severity::Warning) {
        if distinct.contains(&p.key) {
            warnings.entry(&p.key).or_default().push(p.clone());
        } else if !old_warnings.contains(&p.to_string()) {
            other_warnings.push(p.clone());
        }
    }
    let mut results: Vec<Result<Written, WriteError>> = Vec::with_capacity(resources.len());
    let mut accepted = Vec::new();
    let mut places = Vec::new();
    for (r, key) in resources.into_iter().zip(&keys) {
        match refused.remove(key) {
            Some(problems) => results.push(Err(WriteError::Invalid(problems))),
            None => {
                places.push(results.len());
                results.push(Err(WriteError::Invalid(Vec::new())));
                // Validated against the snapshot: it replaces exactly what the snapshot held (a
                // change since is a conflict, not overwritten), and the store need not parse
                // the file again to know it.
                let pre = match base.get(key) {
                    Some(old) => Precondition::from_read(old),
                    None => Precondition::Absent,
                };
                accepted.push((r, pre));
            }
        }
    }
    for (at, stored) in places.into_iter().zip(store.put_many(accepted).await) {
        results[at] = stored.map_err(WriteError::from).map(|resource| {
            let warnings = warnings.remove(&resource.key()).unwrap_or_default();
            Written { resource, warnings }
        });
    }
    Ok(BatchOutcome {
        results,
        other_warnings,
    })
}
