//! Every key of a resource checked against Gloo's fields (`schema`): a key Gloo does not have is
//! a typo (refused, with the nearest field as a suggestion), a Gloo field epoxy does not act on
//! is named in a warning, and one epoxy must not ignore (auth, rate limits, TLS) refuses the
//! resource. Without this, `virtualHoost:` read as an empty virtual service.

use super::resource::{Kind, Resource};
use super::schema::{self, Field, Node, Use};
use serde_json::Value;

/// What one key of a resource says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Not a Gloo field at its level; a hint (the nearest field, or what Gloo renamed it to).
    Unknown {
        path: String,
        key: String,
        hint: Option<String>,
    },
    /// A Gloo field epoxy keeps but does not act on.
    Kept { path: String },
    /// A Gloo field epoxy cannot honour yet, and why it refuses.
    Refused { path: String, why: &'static str },
}

const UPSTREAM: [Field; 5] = schema::object(schema::UPSTREAM);
const UPSTREAM_GROUP: [Field; 5] = schema::object(schema::UPSTREAM_GROUP);
const VIRTUAL_SERVICE: [Field; 5] = schema::object(schema::VIRTUAL_SERVICE);
const ROUTE_TABLE: [Field; 5] = schema::object(schema::ROUTE_TABLE);
const AUTH_CONFIG: [Field; 5] = schema::object(schema::AUTH_CONFIG);
const RATE_LIMIT_CONFIG: [Field; 5] = schema::object(schema::RATE_LIMIT_CONFIG);
const GATEWAY: [Field; 5] = schema::object(schema::GATEWAY);

/// The findings of every key of `r`, in document order.
pub fn check(r: &Resource) -> Vec<Finding> {
    let level: &'static [Field] = match r.kind() {
        Kind::Upstream => &UPSTREAM,
        Kind::UpstreamGroup => &UPSTREAM_GROUP,
        Kind::VirtualService => &VIRTUAL_SERVICE,
        Kind::RouteTable => &ROUTE_TABLE,
        Kind::Secret => schema::SECRET,
        Kind::AuthConfig => &AUTH_CONFIG,
        Kind::RateLimitConfig => &RATE_LIMIT_CONFIG,
        Kind::Gateway => &GATEWAY,
    };
    let mut out = Vec::new();
    walk(&r.to_value(), level, "", &mut out);
    out
}

/// Whether `r` asks for something epoxy cannot honour (auth, rate limits, TLS): such a resource
/// must not be served at all, not even as its last accepted version.
pub fn asks_unenforced(r: &Resource) -> bool {
    check(r)
        .iter()
        .any(|f| matches!(f, Finding::Refused { .. }))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else if key.is_empty() || key.contains(['.', '[', ']', ' ']) {
        format!("{path}[{key:?}]")
    } else {
        format!("{path}.{key}")
    }
}

fn walk(v: &Value, level: &'static [Field], path: &str, out: &mut Vec<Finding>) {
    let Value::Object(m) = v else {
        // A wrong type was refused when the document was read.
        return;
    };
    for (k, child) in m {
        let at = join(path, k);
        let Some(f) = schema::field(level, k) else {
            out.push(Finding::Unknown {
                path: at,
                key: k.clone(),
                hint: legacy(k)
                    .map(str::to_string)
                    .or_else(|| suggest(k, level).map(|s| format!("did you mean `{s}`?"))),
            });
            continue;
        };
        match f.use_ {
            Use::Quiet => {}
            Use::Kept => out.push(Finding::Kept { path: at }),
            Use::Refused(why) => out.push(Finding::Refused { path: at, why }),
            Use::Acted(Node::Leaf) => {}
            Use::Acted(Node::One(l)) => walk(child, l, &at, out),
            Use::Acted(Node::List(l)) => {
                if let Value::Array(items) = child {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, l, &format!("{at}[{i}]"), out);
                    }
                }
            }
            Use::Acted(Node::Map(l)) => {
                if let Value::Object(entries) = child {
                    for (name, item) in entries {
                        walk(item, l, &join(&at, name), out);
                    }
                }
            }
        }
    }
}

/// Fields of Gloo before 1.0, which Gloo itself no longer reads.
fn legacy(key: &str) -> Option<&'static str> {
    Some(match key {
        "virtualHostPlugins" | "routePlugins" | "weightedDestinationPlugins" => {
            "Gloo 0.x's name for `options` (renamed in Gloo 1.0)"
        }
        "upstreamSpec" => "Gloo 0.x's wrapper: Gloo 1.0 moved its fields up into `spec`",
        _ => return None,
    })
}

/// The field of `level` nearest to `key` (edit distance, case ignored), if it is near enough
/// to be the one meant.
fn suggest(key: &str, level: &'static [Field]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let (best, d) = level
        .iter()
        .map(|f| (f.name, distance(&key, &f.name.to_ascii_lowercase())))
        .min_by_key(|(_, d)| *d)?;
    (d <= (key.chars().count() / 3).clamp(1, 3)).then_some(best)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("virtualhoost", "virtualhost"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_near_fields() {
        assert_eq!(
            suggest("virtualHoost", schema::VIRTUAL_SERVICE),
            Some("virtualHost")
        );
        assert_eq!(suggest("prefx", schema::ROUTE), None);
        assert_eq!(suggest("matcher", schema::ROUTE), Some("matchers"));
        assert_eq!(suggest("zzzzzzzz", schema::ROUTE), None);
    }
}
