//! The response's header rules, decided once for both transports: which of the upstream's
//! headers go on to the client and which the gateway adds (the stages' first, then the
//! route's). The route's rules apply to what an upstream or a function answered and to a
//! direct answer; the stages' to every answer of a request they let through, the gateway's
//! own errors among them. Framing (`content-length`, `transfer-encoding`, `connection`) and
//! `date` stay each transport's to write.

use super::pipeline::{Answer, Edits};
use super::table::Options;
use super::upstream_request::{hop_by_hop, is};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The response rules of one request.
#[derive(Clone, Copy, Default)]
pub struct ResponseRules<'a> {
    /// The route's `responseHeadersToAdd` / `-ToRemove`, when they apply.
    pub route: Option<&'a Options>,
    /// What the route's stages set on the response (CORS, rate-limit headers).
    pub edits: Option<&'a Edits>,
}

impl<'a> ResponseRules<'a> {
    /// The route's rules alone.
    pub fn route(opts: &'a Options) -> Self {
        ResponseRules {
            route: Some(opts),
            edits: None,
        }
    }

    /// The stages' alone.
    pub fn stages(edits: Option<&'a Edits>) -> Self {
        ResponseRules { route: None, edits }
    }

    /// The names whose values the rules replace or remove: the route's removals and
    /// non-appending additions, the stages' headers.
    fn replaced(&self) -> impl Iterator<Item = &'a HeaderName> {
        let route = self.route.into_iter().flat_map(|o| {
            o.response_remove
                .iter()
                .chain(o.response_add.iter().filter(|a| !a.append).map(|a| &a.name))
        });
        let stages = self
            .edits
            .into_iter()
            .flat_map(|e| e.response_set.iter().map(|(n, _)| n));
        route.chain(stages)
    }

    /// Whether a header of the answer goes on to the client (its framing aside, which the
    /// transport decides; a name the answer's `connection` header lists is the transport's to
    /// drop too).
    pub fn keeps(&self, name: &[u8]) -> bool {
        !(hop_by_hop(name) || self.replaced().any(|n| is(name, n.as_str())))
    }

    /// The headers the gateway adds, in order: the stages', then the route's additions the
    /// stages do not replace. Neither sets framing nor a hop-by-hop header.
    pub fn added(&self) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> {
        let edits = self.edits;
        let stages = edits
            .into_iter()
            .flat_map(|e| e.response_set.iter().map(|(n, v)| (n, v)));
        let route = self.route.into_iter().flat_map(move |o| {
            o.response_add
                .iter()
                .filter(move |a| !edits.is_some_and(|e| e.replaces_response(a.name.as_ref())))
                .map(|a| (&a.name, &a.value))
        });
        stages
            .chain(route)
            .filter(|(n, _)| !(framing(n.as_str()) || hop_by_hop(n.as_str())))
    }

    /// Applies the rules to a header map (hyper's responses, function calls' answers).
    pub fn apply(&self, h: &mut HeaderMap) {
        for n in self.replaced() {
            h.remove(n);
        }
        for (n, v) in self.added() {
            h.append(n.clone(), v.clone());
        }
    }

    /// Applies the rules to an answer the gateway makes.
    pub fn apply_to_answer(&self, a: &mut Answer) {
        a.headers.retain(|(n, _)| self.keeps(n.as_ref()));
        a.headers
            .extend(self.added().map(|(n, v)| (n.clone(), v.clone())));
    }
}

/// The headers that frame a body: each transport's to write.
pub fn framing<N: AsRef<[u8]> + ?Sized>(name: &N) -> bool {
    is(name, "content-length") || is(name, "transfer-encoding")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::table::HeaderAdd;

    /// The fast path writes what `keeps` and `added` say in one pass; hyper applies the
    /// route's rules where it forwards and the stages' after: the same headers either way.
    #[test]
    fn one_pass_and_two_passes_agree() {
        let add = |name: &'static str, value: &'static str, append: bool| HeaderAdd {
            name: HeaderName::from_static(name),
            value: HeaderValue::from_static(value),
            append,
        };
        let opts = Options {
            response_remove: vec![HeaderName::from_static("x-upstream")],
            response_add: vec![
                add("x-route", "route", false),
                add("x-many", "route", true),
                add("vary", "route", false),
                add("content-length", "9", false),
            ],
            ..Default::default()
        };
        let edits = Edits {
            response_set: [(
                HeaderName::from_static("vary"),
                HeaderValue::from_static("origin"),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let upstream = [
            ("x-upstream", "a"),
            ("x-route", "upstream"),
            ("x-many", "upstream"),
            ("vary", "accept"),
            ("keep-alive", "5"),
            ("x-kept", "yes"),
        ];
        let both = ResponseRules {
            route: Some(&opts),
            edits: Some(&edits),
        };
        let mut one_pass: Vec<String> = upstream
            .iter()
            .filter(|(n, _)| both.keeps(n.as_bytes()))
            .map(|(n, v)| format!("{n}: {v}"))
            .chain(
                both.added()
                    .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap())),
            )
            .collect();
        let mut map = HeaderMap::new();
        for (n, v) in upstream {
            map.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        map.remove("keep-alive");
        ResponseRules::route(&opts).apply(&mut map);
        ResponseRules::stages(Some(&edits)).apply(&mut map);
        let mut two_passes: Vec<String> = map
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        one_pass.sort();
        two_passes.sort();
        assert_eq!(one_pass, two_passes);
        assert_eq!(
            one_pass,
            [
                "vary: origin",
                "x-kept: yes",
                "x-many: route",
                "x-many: upstream",
                "x-route: route"
            ]
        );
    }
}
