//! Every change is a validated write: the change is checked against everything else in the
//! store, and refused if it brings in an error. Warnings (a reference that a later write or
//! discovery may satisfy) are returned, not refused, as in Gloo.

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
