//! How a route reads on one line: its match (`GET prefix /pets x-pet=1`) and its destination
//! (upstream, function). Used by the match trace and by the console's views.

use crate::api::{Matcher, PathMatch, Route};

/// One matcher: methods, path match, case, headers (`!` inverted), query parameters.
pub fn matcher_text(m: &Matcher) -> String {
    let mut s = String::new();
    if !m.methods.is_empty() {
        s.push_str(&m.methods.join(","));
        s.push(' ');
    }
    match m.path() {
        PathMatch::Prefix(p) => s.push_str(&format!("prefix {p}")),
        PathMatch::Exact(p) => s.push_str(&format!("exact {p}")),
        PathMatch::Regex(p) => s.push_str(&format!("regex {p}")),
    }
    if m.case_sensitive == Some(false) {
        s.push_str(" (any case)");
    }
    for h in &m.headers {
        let neg = if h.invert_match == Some(true) {
            "!"
        } else {
            ""
        };
        match &h.value {
            Some(v) => s.push_str(&format!(" {neg}{}={v}", h.name)),
            None => s.push_str(&format!(" {neg}{}", h.name)),
        }
    }
    for q in &m.query_parameters {
        s.push_str(&format!(
            " ?{}={}",
            q.name,
            q.value.clone().unwrap_or_default()
        ));
    }
    s
}

/// A route's matchers (`|` between them); no matcher reads as `prefix /`.
pub fn match_text(r: &Route) -> String {
    if r.matchers.is_empty() {
        return "prefix /".into();
    }
    r.matchers
        .iter()
        .map(matcher_text)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// (destination, function) of a route; `—` when it has none.
pub fn destination(r: &Route) -> (String, String) {
    r.describe_destination()
        .unwrap_or_else(|| ("—".into(), String::new()))
}
