//! The live state the views read: the store's listing, the control loop's report, discovery,
//! and the gateway's request events (with rates). Updated from the feeds; never written by views.

use crate::api::resource::Upstream;
use crate::api::{Kind, Resource, ResourceKey, Route, Transformation};
use crate::control::reconcile::Report;
use crate::discovery::fds::DiscoveryState;
use crate::gateway::telemetry::RequestEvent;
use crate::store::Listing;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// How many request events the access log keeps.
pub const LOG_CAPACITY: usize = 2000;
/// The window requests per second are measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Data {
    pub listing: Arc<Listing>,
    pub report: Arc<Report>,
    pub discovery: Arc<DiscoveryState>,
    pub log: VecDeque<RequestEvent>,
    /// Requests seen per route id (the route's name, or `ns/vs#i`), since the console started.
    pub route_counts: BTreeMap<String, u64>,
    pub total: u64,
}

/// A function of an upstream, flattened for tables.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionInfo {
    pub upstream: String,
    pub namespace: String,
    pub name: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Variables and where each comes from (path, query, header NAME, body).
    pub params: Vec<(String, String)>,
}

impl FunctionInfo {
    pub fn params_text(&self) -> String {
        if self.params.is_empty() {
            return "—".into();
        }
        self.params
            .iter()
            .map(|(n, w)| format!("{n} ({w})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn var_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\{\{\s*(?:default\(\s*)?([A-Za-z_][A-Za-z0-9_]*)")
            .unwrap_or_else(|_| unreachable!("a literal regex"))
    })
}

/// The variables a template reads (`{{ id }}`, `{{ default(id, "") }}`), in order, once each.
pub fn template_vars(tpl: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in var_regex().captures_iter(tpl) {
        let v = c[1].to_string();
        if !out.contains(&v) && !["default", "header", "body", "raw_string"].contains(&v.as_str()) {
            out.push(v);
        }
    }
    out
}

pub fn function_info(u: &Upstream, name: &str, t: &Transformation) -> FunctionInfo {
    let get = |h: &str| {
        t.headers
            .get(h)
            .and_then(|x| x.text.clone())
            .unwrap_or_default()
    };
    let path = get(":path");
    let mut params: Vec<(String, String)> = Vec::new();
    let (p, q) = path.split_once('?').unwrap_or((&path, ""));
    let mut add = |v: String, w: String| {
        if !params.iter().any(|(n, _)| *n == v) {
            params.push((v, w));
        }
    };
    for v in template_vars(p) {
        add(v, "path".into());
    }
    for v in template_vars(q) {
        add(v, "query".into());
    }
    let mut headers = Vec::new();
    for (h, tpl) in &t.headers {
        let text = tpl.text.clone().unwrap_or_default();
        if !h.starts_with(':') {
            for v in template_vars(&text) {
                add(v, format!("header {h}"));
            }
        }
        headers.push((h.clone(), text));
    }
    let body = t.body.as_ref().and_then(|b| b.text.clone());
    if let Some(b) = &body {
        for v in template_vars(b) {
            add(v, "body".into());
        }
    }
    FunctionInfo {
        upstream: u.metadata.name.clone(),
        namespace: u.metadata.namespace.clone().unwrap_or_default(),
        name: name.to_string(),
        method: {
            let m = get(":method");
            if m.is_empty() { "GET".into() } else { m }
        },
        path,
        headers,
        body,
        params,
    }
}

impl Data {
    pub fn upstreams(&self) -> impl Iterator<Item = &Upstream> {
        self.listing.resources.values().filter_map(|r| match r {
            Resource::Upstream(u) => Some(u),
            _ => None,
        })
    }

    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams().find(|u| u.metadata.name == name)
    }

    /// Every function of every upstream (or of one), in store order.
    pub fn functions(&self, upstream: Option<&str>) -> Vec<FunctionInfo> {
        let mut out = Vec::new();
        for u in self.upstreams() {
            if upstream.is_some_and(|n| n != u.metadata.name) {
                continue;
            }
            if let Some(rest) = u.spec.service_spec().and_then(|s| s.rest.as_ref()) {
                for (name, t) in &rest.transformations {
                    out.push(function_info(u, name, t));
                }
            }
        }
        out
    }

    pub fn virtual_services(&self) -> impl Iterator<Item = &Resource> {
        self.listing.of_kind(Kind::VirtualService)
    }

    pub fn routes_of(&self, key: &ResourceKey) -> Vec<Route> {
        self.listing
            .resources
            .get(key)
            .and_then(|r| r.routes().cloned())
            .unwrap_or_default()
    }

    pub fn route_count(&self) -> usize {
        if self.report.generation > 0 {
            self.report.routes
        } else {
            self.virtual_services()
                .filter_map(|r| r.routes().map(Vec::len))
                .sum()
        }
    }

    pub fn push_event(&mut self, e: RequestEvent) {
        self.total += 1;
        if let Some(r) = &e.route {
            *self.route_counts.entry(r.clone()).or_default() += 1;
        }
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(e);
    }

    fn recent(&self, now: SystemTime) -> impl Iterator<Item = &RequestEvent> {
        self.log.iter().rev().take_while(move |e| {
            now.duration_since(e.time)
                .map(|d| d <= RATE_WINDOW)
                .unwrap_or(true)
        })
    }

    /// Requests per second over the last few seconds.
    pub fn rate(&self, now: SystemTime) -> f64 {
        self.recent(now).count() as f64 / RATE_WINDOW.as_secs_f64()
    }

    pub fn route_rate(&self, now: SystemTime, route: &str) -> f64 {
        self.recent(now)
            .filter(|e| e.route.as_deref() == Some(route))
            .count() as f64
            / RATE_WINDOW.as_secs_f64()
    }

    /// Whether some rate is still moving (the loop ticks only then).
    pub fn animating(&self, now: SystemTime) -> bool {
        self.log.back().is_some_and(|e| {
            now.duration_since(e.time)
                .map(|d| d <= RATE_WINDOW + Duration::from_secs(1))
                .unwrap_or(true)
        })
    }

    /// Latencies (µs) of the last `n` requests of `route` (all routes when None), oldest first.
    pub fn latencies(&self, route: Option<&str>, n: usize) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .log
            .iter()
            .rev()
            .filter(|e| route.is_none() || e.route.as_deref() == route)
            .take(n)
            .map(|e| e.latency.as_micros() as u64)
            .collect();
        v.reverse();
        v
    }
}

/// The id the gateway gives a route of a virtual service: its name, else `ns/vs#i`.
pub fn route_id(vs: &ResourceKey, i: usize, r: &Route) -> String {
    r.name
        .clone()
        .unwrap_or_else(|| format!("{}/{}#{i}", vs.namespace, vs.name))
}

/// `3s ago`, `2m ago`, ...
pub fn ago(now: SystemTime, t: SystemTime) -> String {
    let s = now.duration_since(t).unwrap_or_default().as_secs();
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// `{{ default(id, "") }}` shown as `{{ id }}` (tables are narrow; details show the original).
pub fn readable_template(t: &str) -> String {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r#"\{\{\s*default\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*""\s*\)\s*\}\}"#)
            .unwrap_or_else(|_| unreachable!("a literal regex"))
    })
    .replace_all(t, "{{ $1 }}")
    .into_owned()
}
