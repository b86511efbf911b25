//! The single source of truth: a `Store` of resources, with list/get/put/delete and a watch of
//! the whole state. `dir` keeps YAML files; `kube` keeps CRDs.

pub mod dir;
pub mod kube;
pub mod overlay;
pub mod scratch;

use crate::api::{Kind, ParseError, Resource, ResourceKey, ResourceSet};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Everything a store holds at one moment, plus what it could not read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub resources: ResourceSet,
    /// Files or objects that could not be read: reported, skipped, never removed.
    pub errors: Vec<ParseError>,
    /// Kinds the store cannot hold at the moment (a cluster without their CRD): read as empty,
    /// so the others serve, and looked for again (`kube::CRD_PROBE`).
    pub unavailable: Vec<Kind>,
}

impl Listing {
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources.values().filter(move |r| r.kind() == kind)
    }

    /// One line per unavailable kind, for whoever reports the store's state.
    pub fn unavailable_notes(&self) -> Vec<String> {
        self.unavailable
            .iter()
            .map(|k| kube::absent_note(*k))
            .collect()
    }
}

/// What a write expects to find, so that a write that lost a race is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Create or replace, whatever is there.
    Any,
    /// Create only: refuse if the resource exists.
    Absent,
    /// Replace only the version that was read.
    Version(String),
}

impl Precondition {
    /// Whether a write of `key` may go ahead over `current` (what is stored now).
    pub fn check(&self, key: &ResourceKey, current: Option<&Resource>) -> Result<()> {
        self.check_version(key, current.map(|c| c.resource_version().unwrap_or("")))
    }

    /// The same, knowing only the stored version (`None`: nothing is stored): a store whose
    /// versions come from the bytes need not parse what it is about to replace.
    pub fn check_version(&self, key: &ResourceKey, current: Option<&str>) -> Result<()> {
        match (self, current) {
            (Precondition::Any, _) | (Precondition::Absent, None) => Ok(()),
            (Precondition::Absent, Some(_)) => Err(StoreError::AlreadyExists(key.clone())),
            (Precondition::Version(v), None) => Err(StoreError::Conflict {
                key: key.clone(),
                expected: v.clone(),
                found: "none (deleted)".into(),
            }),
            (Precondition::Version(v), Some(found)) if found == v => Ok(()),
            (Precondition::Version(v), Some(found)) => Err(StoreError::Conflict {
                key: key.clone(),
                expected: v.clone(),
                found: found.to_string(),
            }),
        }
    }

    /// The precondition a read-modify-write of `r` carries: the version it was read at.
    pub fn from_read(r: &Resource) -> Self {
        match r.resource_version() {
            Some(v) => Precondition::Version(v.to_string()),
            None => Precondition::Any,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(ResourceKey),
    #[error("{0} already exists")]
    AlreadyExists(ResourceKey),
    #[error(
        "conflict: {key} was changed by another writer (expected version {expected}, found {found}); read it again and retry"
    )]
    Conflict {
        key: ResourceKey,
        expected: String,
        found: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}; fix or remove the file by hand, epoxy will not overwrite it")]
    Unreadable(ParseError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Where the data lives, for headers and messages: `dir /home/me/.local/share/epoxy/store`.
    fn describe(&self) -> String;

    /// The whole state, as of now.
    async fn list(&self) -> Result<Listing>;

    async fn get(&self, key: &ResourceKey) -> Result<Resource>;

    /// Writes `resource` if `pre` holds; returns it with its new resourceVersion.
    async fn put(&self, resource: Resource, pre: Precondition) -> Result<Resource>;

    /// Writes several resources (each with its precondition), in order; one result each. A
    /// store may make them durable together (the directory store syncs once, not per file).
    async fn put_many(&self, writes: Vec<(Resource, Precondition)>) -> Vec<Result<Resource>> {
        let mut out = Vec::with_capacity(writes.len());
        for (r, pre) in writes {
            out.push(self.put(r, pre).await);
        }
        out
    }

    async fn delete(&self, key: &ResourceKey, pre: Precondition) -> Result<()>;

    /// A receiver of the whole state, updated on every change (own writes and external edits).
    fn watch(&self) -> watch::Receiver<Arc<Listing>>;
}
