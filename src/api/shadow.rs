//! Routes that can never match: an earlier route of the same list, with no header, query or
//! method condition, matches every path the later route matches. Gloo has no such check.
//!
//! Earlier routes' path-only matchers are indexed (exact paths, prefixes by length), so the
//! check is linear in the number of routes times the path length, not quadratic.

use super::types::{PathMatch, Route};
use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
struct Earlier {
    exact: HashMap<String, usize>,
    exact_ci: HashMap<String, usize>,
    prefix: HashMap<String, usize>,
    prefix_ci: HashMap<String, usize>,
    prefix_lens: BTreeSet<usize>,
    regex: HashMap<(String, bool), usize>,
}

impl Earlier {
    /// The earliest route whose path-only matcher covers this matcher, if any.
    fn coverer(&self, path: PathMatch<'_>, case_sensitive: bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut take = |i: Option<&usize>| {
            if let Some(&i) = i {
                best = Some(best.map_or(i, |b| b.min(i)));
            }
        };
        let (text, is_regex) = match path {
            PathMatch::Exact(p) => (p, false),
            PathMatch::Prefix(p) => (p, false),
            PathMatch::Regex(r) => (r, true),
        };
        if is_regex {
            take(self.regex.get(&(text.to_string(), case_sensitive)));
            // Every path starts with '/', so prefix `/` covers any regex.
            take(self.prefix.get("/"));
            take(self.prefix_ci.get("/"));
            return best;
        }
        let lower = text.to_ascii_lowercase();
        if let PathMatch::Exact(p) = path {
            if case_sensitive {
                take(self.exact.get(p));
            }
            take(self.exact_ci.get(&lower));
        }
        for &len in self.prefix_lens.range(..=text.len()) {
            if !text.is_char_boundary(len) {
                continue;
            }
            if case_sensitive || len == 1 {
                take(self.prefix.get(&text[..len]));
            }
            take(self.prefix_ci.get(&lower[..len]));
        }
        best
    }

    fn insert(&mut self, i: usize, path: PathMatch<'_>, case_sensitive: bool) {
        match path {
            PathMatch::Exact(p) if case_sensitive => {
                self.exact.entry(p.to_string()).or_insert(i);
            }
            PathMatch::Exact(p) => {
                self.exact_ci.entry(p.to_ascii_lowercase()).or_insert(i);
            }
            PathMatch::Prefix(p) => {
                self.prefix_lens.insert(p.len());
                if case_sensitive {
                    self.prefix.entry(p.to_string()).or_insert(i);
                } else {
                    self.prefix_ci.entry(p.to_ascii_lowercase()).or_insert(i);
                }
            }
            PathMatch::Regex(r) => {
                self.regex
                    .entry((r.to_string(), case_sensitive))
                    .or_insert(i);
            }
        }
    }
}

/// For each route that can never match: (its index, the index of the earlier route that wins).
pub fn shadowed_routes(routes: &[Route]) -> Vec<(usize, usize)> {
    let mut earlier = Earlier::default();
    let mut out = Vec::new();
    for (j, route) in routes.iter().enumerate() {
        let matchers: Vec<(PathMatch<'_>, bool)> = if route.matchers.is_empty() {
            vec![(PathMatch::Prefix("/"), true)]
        } else {
            route
                .matchers
                .iter()
                .map(|m| (m.path(), m.case_sensitive.unwrap_or(true)))
                .collect()
        };
        let coverers: Vec<Option<usize>> = matchers
            .iter()
            .map(|(p, cs)| earlier.coverer(*p, *cs))
            .collect();
        if !coverers.is_empty() && coverers.iter().all(Option::is_some) {
            out.push((j, coverers.iter().flatten().copied().max().unwrap_or(0)));
        }
        // Delegations are flattened into narrower routes: they cover nothing by themselves.
        if route.delegate_action.is_some() {
            continue;
        }
        let conditions_free = |k: usize| {
            route.matchers.get(k).is_none_or(|m| {
                m.headers.is_empty() && m.query_parameters.is_empty() && m.methods.is_empty()
            })
        };
        for (k, (p, cs)) in matchers.iter().enumerate() {
            if conditions_free(k) {
                earlier.insert(j, *p, *cs);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::Matcher;

    fn route(m: Matcher) -> Route {
        Route {
            matchers: vec![m],
            ..Default::default()
        }
    }
    fn prefix(p: &str) -> Matcher {
        Matcher {
            prefix: Some(p.into()),
            ..Default::default()
        }
    }
    fn exact(p: &str) -> Matcher {
        Matcher {
            exact: Some(p.into()),
            ..Default::default()
        }
    }

    #[test]
    fn finds_routes_hidden_by_broader_earlier_ones() {
        let mut with_header = prefix("/");
        with_header.headers.push(crate::api::HeaderMatcher {
            name: "x".into(),
            ..Default::default()
        });
        let routes = vec![
            route(with_header),       // 0: conditional, hides nothing
            route(prefix("/api")),    // 1
            route(exact("/api/x")),   // 2: hidden by 1
            route(prefix("/api/v2")), // 3: hidden by 1
            route(exact("/other")),   // 4
            route(exact("/other")),   // 5: hidden by 4
            route(Matcher {
                regex: Some("/r.*".into()),
                ..Default::default()
            }), // 6
            route(prefix("/")),       // 7
            route(exact("/late")),    // 8: hidden by 7
        ];
        assert_eq!(
            shadowed_routes(&routes),
            vec![(2, 1), (3, 1), (5, 4), (8, 7)]
        );
    }

    #[test]
    fn case_insensitive_later_route_is_not_hidden_by_case_sensitive_one() {
        let mut ci = exact("/A");
        ci.case_sensitive = Some(false);
        let routes = vec![route(prefix("/a")), route(ci), route(exact("/a/b"))];
        assert_eq!(shadowed_routes(&routes), vec![(2, 0)]);
    }
}
