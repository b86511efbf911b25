//! Route edits, in one place for the CLI and the console. Each is a read-modify-write of the
//! virtual service guarded by the version it read, so a write that lost a race is refused (and
//! retried on the new state). Routes are found by identity, their `name`, else their content,
//! never by a position another writer may have shifted: an edit based on a route that has
//! changed since is refused with what changed, and nothing is overwritten.

use crate::api::sort::sort_routes;
use crate::api::{
    Kind, Object, PathMatch, Resource, ResourceKey, Route, VirtualHost, VirtualServiceSpec,
};
use crate::control::writes::{self, WriteError};
use crate::store::{Precondition, Store, StoreError};

/// How often a write that lost a race to another writer is redone on the new state.
const RETRIES: usize = 8;

/// Where a route goes, by its neighbours as read (not by an index that may have moved).
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    First,
    Last,
    /// An index in the list as it is at write time (the CLI's `--index`).
    Index(usize),
    After(Box<Route>),
    Before(Box<Route>),
}

/// One change to the routes of a virtual service. Routes are given as they were read.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteEdit {
    /// A new route; one without a name gets one, unique in its virtual service.
    Insert {
        route: Box<Route>,
        at: Position,
    },
    Replace {
        old: Box<Route>,
        new: Box<Route>,
    },
    Delete {
        route: Box<Route>,
    },
    Move {
        route: Box<Route>,
        to: Position,
    },
    /// glooctl's order: the more specific route first.
    Sort,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("{0} not found")]
    NoVirtualService(ResourceKey),
    #[error("index {index} is past the end ({len} routes)")]
    OutOfRange { index: usize, len: usize },
    #[error("route `{}` was changed by another writer since it was read", label(.was))]
    Changed { was: Box<Route>, now: Box<Route> },
    #[error("route `{}` is no longer there: another writer changed or removed it", label(.was))]
    Gone { was: Box<Route> },
    #[error("{vs} already has a route named `{name}`")]
    NameTaken { vs: ResourceKey, name: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl RouteError {
    /// Whether another writer got there first (the edit itself may be fine on the new state).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            RouteError::Changed { .. }
                | RouteError::Gone { .. }
                | RouteError::NameTaken { .. }
                | RouteError::Write(WriteError::Store(StoreError::Conflict { .. }))
        )
    }
}

/// A route edit that went through.
#[derive(Debug)]
pub struct Applied {
    pub written: writes::Written,
    /// Where the route now is (the edited, inserted or moved one; the deleted one's place).
    pub index: usize,
    /// The route as written (named, for an insert); None for a delete or a sort.
    pub route: Option<Route>,
    /// The edit that takes this one back (None for a sort).
    pub inverse: Option<RouteEdit>,
    /// Whether the virtual service was created by this edit.
    pub created: bool,
}

/// How a route reads in messages: its name, else its first path matcher.
pub fn label(r: &Route) -> String {
    if let Some(n) = &r.name {
        return n.clone();
    }
    match r.matchers.first().map(|m| m.path()) {
        Some(PathMatch::Prefix(p)) => format!("prefix {p}"),
        Some(PathMatch::Exact(p)) => format!("exact {p}"),
        Some(PathMatch::Regex(p)) => format!("regex {p}"),
        None => "prefix /".into(),
    }
}

/// A name for a new route, unique among `routes`: from its path (`/petstore/findPet` →
/// `petstore-findpet`), numbered when taken.
pub fn fresh_name(route: &Route, routes: &[Route]) -> String {
    let path = match route.matchers.first().map(|m| m.path()) {
        Some(PathMatch::Prefix(p) | PathMatch::Exact(p) | PathMatch::Regex(p)) => p.to_string(),
        None => String::new(),
    };
    let mut base = String::new();
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            base.push(c.to_ascii_lowercase());
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
        if base.len() >= 40 {
            break;
        }
    }
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "root" } else { base };
    let taken = |n: &str| routes.iter().any(|r| r.name.as_deref() == Some(n));
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

/// Finds `r` (as read) in `routes`: by name when it has one (and then it must be unchanged),
/// else by content.
pub fn locate(routes: &[Route], r: &Route) -> Result<usize, RouteError> {
    let found = match &r.name {
        Some(n) => routes.iter().position(|x| x.name.as_deref() == Some(n)),
        None => routes.iter().position(|x| x == r),
    };
    match found {
        Some(i) if routes[i] == *r => Ok(i),
        Some(i) => Err(RouteError::Changed {
            was: Box::new(r.clone()),
            now: Box::new(routes[i].clone()),
        }),
        None => Err(RouteError::Gone {
            was: Box::new(r.clone()),
        }),
    }
}

fn index_of(routes: &[Route], at: &Position) -> Result<usize, RouteError> {
    Ok(match at {
        Position::First => 0,
        Position::Last => routes.len(),
        Position::Index(i) if *i <= routes.len() => *i,
        Position::Index(i) => {
            return Err(RouteError::OutOfRange {
                index: *i,
                len: routes.len(),
            });
        }
        Position::After(r) => locate(routes, r)? + 1,
        Position::Before(r) => locate(routes, r)?,
    })
}

/// The position that puts a route back where it is at `i`: after its predecessor, or first.
fn place_of(routes: &[Route], i: usize) -> Position {
    match i.checked_sub(1).and_then(|p| routes.get(p)) {
        Some(prev) => Position::After(Box::new(prev.clone())),
        None => Position::First,
    }
}

fn name_taken(
    vs: &ResourceKey,
    routes: &[Route],
    r: &Route,
    skip: Option<usize>,
) -> Result<(), RouteError> {
    if let Some(n) = &r.name
        && routes
            .iter()
            .enumerate()
            .any(|(i, x)| Some(i) != skip && x.name.as_deref() == Some(n))
    {
        return Err(RouteError::NameTaken {
            vs: vs.clone(),
            name: n.clone(),
        });
    }
    Ok(())
}

/// Applies `edit` to `routes`: the route's new index, the route as written, the inverse.
fn edit_routes(
    vs: &ResourceKey,
    routes: &mut Vec<Route>,
    edit: &RouteEdit,
) -> Result<(usize, Option<Route>, Option<RouteEdit>), RouteError> {
    Ok(match edit {
        RouteEdit::Insert { route, at } => {
            let at = index_of(routes, at)?;
            let mut r = (**route).clone();
            if r.name.is_none() {
                r.name = Some(fresh_name(&r, routes));
            }
            name_taken(vs, routes, &r, None)?;
            routes.insert(at, r.clone());
            let inverse = RouteEdit::Delete {
                route: Box::new(r.clone()),
            };
            (at, Some(r), Some(inverse))
        }
        RouteEdit::Replace { old, new } => {
            let i = locate(routes, old)?;
            name_taken(vs, routes, new, Some(i))?;
            let before = std::mem::replace(&mut routes[i], (**new).clone());
            let inverse = RouteEdit::Replace {
                old: new.clone(),
                new: Box::new(before),
            };
            (i, Some((**new).clone()), Some(inverse))
        }
        RouteEdit::Delete { route } => {
            let i = locate(routes, route)?;
            let at = place_of(routes, i);
            let removed = routes.remove(i);
            let inverse = RouteEdit::Insert {
                route: Box::new(removed),
                at,
            };
            (i, None, Some(inverse))
        }
        RouteEdit::Move { route, to } => {
            let i = locate(routes, route)?;
            let back = place_of(routes, i);
            let r = routes.remove(i);
            let j = match index_of(routes, to) {
                Ok(j) => j,
                Err(e) => {
                    routes.insert(i, r);
                    return Err(e);
                }
            };
            routes.insert(j, r.clone());
            let inverse = RouteEdit::Move {
                route: Box::new(r.clone()),
                to: back,
            };
            (j, Some(r), Some(inverse))
        }
        RouteEdit::Sort => {
            sort_routes(routes);
            (0, None, None)
        }
    })
}

/// A new virtual service serving every domain, for the first route of a namespace.
pub fn new_virtual_service(key: &ResourceKey) -> Resource {
    Resource::VirtualService(Object::new(
        Kind::VirtualService,
        &key.namespace,
        &key.name,
        VirtualServiceSpec {
            virtual_host: VirtualHost {
                domains: vec!["*".into()],
                ..Default::default()
            },
            ..Default::default()
        },
    ))
}

/// The virtual service after `edit`, from the store as it is now, and the precondition its
/// write carries. `create`: a missing virtual service is created (inserts only).
async fn prepare(
    store: &dyn Store,
    key: &ResourceKey,
    edit: &RouteEdit,
    create: bool,
) -> Result<
    (
        Resource,
        Precondition,
        usize,
        Option<Route>,
        Option<RouteEdit>,
    ),
    RouteError,
> {
    let (mut vs, pre) = match store.get(key).await {
        Ok(r) => {
            let pre = Precondition::from_read(&r);
            (r, pre)
        }
        Err(StoreError::NotFound(_)) if create && matches!(edit, RouteEdit::Insert { .. }) => {
            (new_virtual_service(key), Precondition::Absent)
        }
        Err(StoreError::NotFound(_)) => return Err(RouteError::NoVirtualService(key.clone())),
        Err(e) => return Err(RouteError::Write(e.into())),
    };
    let routes = vs
        .routes_mut()
        .ok_or_else(|| RouteError::NoVirtualService(key.clone()))?;
    let (i, route, inverse) = edit_routes(key, routes, edit)?;
    Ok((vs, pre, i, route, inverse))
}

/// What the virtual service would be after `edit`, written nowhere (`--dry-run`).
pub async fn preview(
    store: &dyn Store,
    key: &ResourceKey,
    edit: &RouteEdit,
) -> Result<Resource, RouteError> {
    Ok(prepare(store, key, edit, true).await?.0)
}

/// Applies `edit` to the virtual service `key` as it is in the store now, with a validated
/// write guarded by the version read; a write that lost a race is redone on the new state
/// (where the edit's own checks, by route identity, refuse it if it no longer applies).
pub async fn apply(
    store: &dyn Store,
    key: &ResourceKey,
    edit: &RouteEdit,
    create: bool,
) -> Result<Applied, RouteError> {
    let mut attempt = 0;
    loop {
        let (vs, pre, index, route, inverse) = prepare(store, key, edit, create).await?;
        let created = pre == Precondition::Absent;
        match writes::write(store, vs, pre).await {
            Ok(written) => {
                return Ok(Applied {
                    written,
                    index,
                    route,
                    inverse,
                    created,
                });
            }
            Err(WriteError::Store(StoreError::Conflict { .. } | StoreError::AlreadyExists(_)))
                if attempt < RETRIES =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Matcher;

    fn prefix(p: &str) -> Route {
        Route {
            matchers: vec![Matcher {
                prefix: Some(p.into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn named(p: &str, n: &str) -> Route {
        Route {
            name: Some(n.into()),
            ..prefix(p)
        }
    }

    fn key() -> ResourceKey {
        ResourceKey::new(Kind::VirtualService, "ns", "vs")
    }

    #[test]
    fn names_come_from_the_path_and_are_unique() {
        let routes = vec![named("/a", "petstore-find"), named("/b", "petstore-find-2")];
        assert_eq!(
            fresh_name(&prefix("/Petstore/find/"), &routes),
            "petstore-find-3"
        );
        assert_eq!(fresh_name(&prefix("/"), &[]), "root");
        assert_eq!(fresh_name(&Route::default(), &[]), "root");
    }

    #[test]
    fn a_replace_finds_its_route_after_the_list_shifted() {
        let mut routes = vec![named("/one", "one"), named("/two", "two")];
        let seen = routes[1].clone();
        routes.insert(0, named("/zero", "zero"));
        let edit = RouteEdit::Replace {
            old: Box::new(seen),
            new: Box::new(named("/three", "two")),
        };
        let (i, _, inverse) = edit_routes(&key(), &mut routes, &edit).unwrap();
        assert_eq!(i, 2);
        assert_eq!(routes[0], named("/zero", "zero"));
        assert_eq!(routes[2], named("/three", "two"));
        // The inverse puts it back.
        edit_routes(&key(), &mut routes, &inverse.unwrap()).unwrap();
        assert_eq!(routes[2], named("/two", "two"));
    }

    #[test]
    fn a_replace_of_a_route_changed_since_is_refused() {
        let mut routes = vec![named("/two", "two")];
        let seen = routes[0].clone();
        routes[0] = named("/changed", "two");
        let edit = RouteEdit::Replace {
            old: Box::new(seen),
            new: Box::new(named("/three", "two")),
        };
        let e = edit_routes(&key(), &mut routes, &edit).unwrap_err();
        assert!(matches!(e, RouteError::Changed { .. }), "{e}");
        assert!(e.is_conflict());
        assert_eq!(routes[0], named("/changed", "two"));
        // Unnamed and changed: gone.
        let mut routes = vec![prefix("/x")];
        let edit = RouteEdit::Delete {
            route: Box::new(prefix("/y")),
        };
        let e = edit_routes(&key(), &mut routes, &edit).unwrap_err();
        assert!(matches!(e, RouteError::Gone { .. }), "{e}");
        assert_eq!(routes.len(), 1);
    }

    #[test]
    fn inserts_are_named_and_moves_and_deletes_invert() {
        let mut routes = vec![prefix("/a"), prefix("/b")];
        let edit = RouteEdit::Insert {
            route: Box::new(prefix("/b")),
            at: Position::After(Box::new(prefix("/a"))),
        };
        let (i, r, inv) = edit_routes(&key(), &mut routes, &edit).unwrap();
        assert_eq!((i, r.unwrap().name.as_deref()), (1, Some("b")));
        let mv = RouteEdit::Move {
            route: Box::new(routes[1].clone()),
            to: Position::Before(Box::new(prefix("/a"))),
        };
        let (j, _, back) = edit_routes(&key(), &mut routes, &mv).unwrap();
        assert_eq!(j, 0);
        assert_eq!(routes[0].name.as_deref(), Some("b"));
        edit_routes(&key(), &mut routes, &back.unwrap()).unwrap();
        assert_eq!(routes[1].name.as_deref(), Some("b"));
        edit_routes(&key(), &mut routes, &inv.unwrap()).unwrap();
        assert_eq!(routes, vec![prefix("/a"), prefix("/b")]);
        let taken = RouteEdit::Insert {
            route: Box::new(named("/c", "x")),
            at: Position::Index(9),
        };
        assert!(matches!(
            edit_routes(&key(), &mut routes, &taken),
            Err(RouteError::OutOfRange { index: 9, len: 2 })
        ));
    }
}
