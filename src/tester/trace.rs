//! Where a request goes, as the gateway's table decides: the match trace (each route in
//! order up to the one that matches, and why each earlier one did not) and, before sending,
//! the preview (which route answers; whether it is the one the tester was opened from).

use super::route_text::{destination, match_text};
use super::send::{Saved, header_map};
use super::target::{Endpoint, Target};
use crate::api::{ResourceKey, Route};
use crate::gateway::Gateway;
use crate::gateway::matcher::RequestHead;
use crate::gateway::table::RouteTable;

/// The routes as they are now, by id (the console's data answers it): where a route is and
/// what it is, for the trace's lines and the preview's places.
pub trait Routes {
    fn by_id(&self, id: &str) -> Option<(ResourceKey, usize, &Route)>;
}

/// One line of the match trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub text: String,
    /// Some(true) matched, Some(false) did not, None a note.
    pub ok: Option<bool>,
}

/// Which route the request meets in `table`, and why each earlier route did not match.
pub fn trace<R: Routes + ?Sized>(
    table: &RouteTable,
    routes: &R,
    s: &Saved,
    authority: &str,
    headers: &http::HeaderMap,
) -> Vec<Trace> {
    let (path, query) = match s.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s.path.as_str(), None),
    };
    let mut out = vec![Trace {
        text: format!("{} {}  host {authority}", s.method, s.path),
        ok: None,
    }];
    let Some(vh) = table.vhost(authority) else {
        out.push(Trace {
            text: format!("no virtual service serves host {authority} (404)"),
            ok: Some(false),
        });
        return out;
    };
    let head = RequestHead {
        method: &s.method,
        authority,
        path,
        query,
        headers: headers.into(),
    };
    let verdicts = vh.explain(&head);
    let mut matched = false;
    for (i, (id, v)) in verdicts.iter().enumerate() {
        let found = routes.by_id(id).map(|(_, _, r)| r);
        let what = found.map(match_text).unwrap_or_default();
        match v {
            Ok(()) => {
                matched = true;
                let dest = found
                    .map(|r| {
                        let (d, f) = destination(r);
                        if f.is_empty() {
                            d
                        } else {
                            format!("{d} · {f}")
                        }
                    })
                    .unwrap_or_default();
                out.push(Trace {
                    text: format!("#{i} {what}  ✓ → {dest}"),
                    ok: Some(true),
                });
            }
            Err(why) => out.push(Trace {
                text: format!("#{i} {what}  ✗ {why}"),
                ok: Some(false),
            }),
        }
    }
    if !matched {
        out.push(Trace {
            text: format!(
                "no route of {} matches (404); {} routes checked",
                vh.key.name,
                verdicts.len()
            ),
            ok: Some(false),
        });
    }
    out
}

/// What the tester would meet if it sent now.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// Not a request yet (a bad header, path or method).
    Unsendable,
    /// An https:// URL whose name no virtual service has a certificate for.
    NoCertificate,
    NoRoute,
    /// The route that answers (`default#1`), and, when the tester was loaded from another
    /// route, where that one is (it is shadowed for this request).
    Route {
        place: String,
        shadowed_target: Option<String>,
    },
}

/// Which route would answer `s` sent to `ep` (before sending); `loaded_from` is the id of the
/// route the tester was opened from, if any.
pub fn preview<R: Routes + ?Sized>(
    s: &Saved,
    ep: &Endpoint,
    gateway: &Gateway,
    routes: &R,
    loaded_from: Option<&str>,
) -> Preview {
    let (Ok(hm), Ok(target)) = (header_map(s), Target::resolve(&s.path, ep)) else {
        return Preview::Unsendable;
    };
    let Some(table) = target.table(gateway) else {
        return Preview::NoCertificate;
    };
    let authority = target.authority(&hm);
    let (path, query) = match target.path().split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target.path(), None),
    };
    let head = RequestHead {
        method: &s.method,
        authority: &authority,
        path,
        query,
        headers: (&hm).into(),
    };
    match table.route(&head) {
        None => Preview::NoRoute,
        Some(m) => {
            let id = m.route.id.to_string();
            let place = routes.by_id(&id).map(|(vs, i, _)| (vs, i));
            let shadowed_target = loaded_from.filter(|t| **t != id).map(|t| {
                routes
                    .by_id(t)
                    .map_or_else(|| t.to_string(), |(_, i, _)| format!("#{i}"))
            });
            Preview::Route {
                place: place
                    .map(|(vs, i)| format!("{}#{i}", vs.name))
                    .unwrap_or(id),
                shadowed_target,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::naming::route_identity;
    use crate::api::{ResourceSet, parse_resources};
    use crate::gateway::table::compile;
    use crate::gateway::telemetry::Registry;

    const YAML: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: pets, namespace: gloo-system}
spec:
  static: {hosts: [{addr: 127.0.0.1, port: 9}]}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: default, namespace: gloo-system}
spec:
  virtualHost:
    domains: ["*"]
    routes:
    - matchers: [{exact: /a, methods: [POST]}]
      routeAction: {single: {upstream: {name: pets, namespace: gloo-system}}}
    - matchers: [{prefix: /a, headers: [{name: x-pet, value: "1"}]}]
      routeAction: {single: {upstream: {name: pets, namespace: gloo-system}}}
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: pets, namespace: gloo-system}}}
"#;

    /// The routes of a resource set, by id, as the console finds them.
    struct Set(ResourceSet);

    impl Routes for Set {
        fn by_id(&self, id: &str) -> Option<(ResourceKey, usize, &Route)> {
            self.0.iter().find_map(|(k, r)| {
                let routes = r.routes()?;
                let i = routes
                    .iter()
                    .position(|x| route_identity(&k.namespace, &k.name, x) == id)?;
                Some((k.clone(), i, &routes[i]))
            })
        }
    }

    fn set() -> Set {
        Set(parse_resources(YAML, "test")
            .unwrap()
            .into_iter()
            .map(|r| (r.key(), r))
            .collect())
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> (Saved, http::HeaderMap) {
        let mut hm = http::HeaderMap::new();
        for (k, v) in headers {
            hm.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let s = Saved {
            method: "GET".into(),
            path: path.into(),
            ..Saved::default()
        };
        (s, hm)
    }

    #[test]
    fn the_trace_says_why_each_earlier_route_did_not_match() {
        let set = set();
        let table = compile(&set.0, &Registry::default(), 1);
        assert!(table.problems.is_empty(), "{:?}", table.problems);
        let (s, hm) = get("/a?x=1", &[]);
        let tr = trace(&table, &set, &s, "pets.example.com", &hm);
        let texts: Vec<&str> = tr.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts[0], "GET /a?x=1  host pets.example.com");
        assert!(texts[1].starts_with("#0 POST exact /a  ✗ "), "{texts:?}");
        assert!(
            texts[2].starts_with("#1 prefix /a x-pet=1  ✗ "),
            "{texts:?}"
        );
        assert!(texts[2].contains("x-pet"), "names the header: {texts:?}");
        assert_eq!(texts[3], "#2 prefix /  ✓ → pets");
        assert_eq!(
            tr.iter().map(|t| t.ok).collect::<Vec<_>>(),
            [None, Some(false), Some(false), Some(true)]
        );
        assert_eq!(tr.len(), 4, "the walk stops at the match");
        // With the header, the second route answers.
        let (s, hm) = get("/a", &[("x-pet", "1")]);
        let tr = trace(&table, &set, &s, "pets.example.com", &hm);
        assert_eq!(tr.last().unwrap().text, "#1 prefix /a x-pet=1  ✓ → pets");
    }

    #[test]
    fn no_virtual_host_or_no_route_is_a_404() {
        let mut set = set();
        for r in set.0.values_mut() {
            if let crate::api::Resource::VirtualService(vs) = r {
                vs.spec.virtual_host.domains = vec!["pets.example.com".into()];
                vs.spec.virtual_host.routes.truncate(2);
            }
        }
        let table = compile(&set.0, &Registry::default(), 1);
        let (s, hm) = get("/b", &[]);
        let tr = trace(&table, &set, &s, "other.example.com", &hm);
        assert_eq!(
            tr.last().unwrap(),
            &Trace {
                text: "no virtual service serves host other.example.com (404)".into(),
                ok: Some(false)
            }
        );
        let tr = trace(&table, &set, &s, "pets.example.com", &hm);
        assert_eq!(
            tr.last().unwrap().text,
            "no route of default matches (404); 2 routes checked"
        );
    }
}
