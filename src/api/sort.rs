//! glooctl's `route sort`: the more specific route first, so that no route hides another.

use super::types::{PathMatch, Route};
use std::cmp::Ordering;

fn rank(route: &Route) -> (usize, u8, usize) {
    let Some(m) = route.matchers.first() else {
        // No matcher: prefix `/`, the broadest of all.
        return (0, 2, 1);
    };
    let (kind, len) = match m.path() {
        PathMatch::Exact(p) => (0, p.len()),
        PathMatch::Regex(p) => (1, p.len()),
        PathMatch::Prefix(p) => (2, p.len()),
    };
    (m.methods.len(), kind, len)
}

/// Orders routes: more methods first, then exact, regex, prefix, then the longer path first.
/// The sort is stable, so routes that tie keep their order.
pub fn sort_routes(routes: &mut [Route]) {
    routes.sort_by(|a, b| {
        let (ma, ka, la) = rank(a);
        let (mb, kb, lb) = rank(b);
        mb.cmp(&ma)
            .then(ka.cmp(&kb))
            .then(lb.cmp(&la))
            .then(Ordering::Equal)
    });
}
