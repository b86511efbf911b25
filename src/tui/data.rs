//! The live state the views read: the store's listing, the control loop's report, discovery,
//! and the gateway's request events (with rates). Updated from the feeds; never written by views.

use crate::api::resource::Upstream;
use crate::api::{FunctionKind, Kind, ReadFile, Resource, ResourceKey, Route, Transformation};
use crate::control::reconcile::Report;
use crate::discovery::fds::DiscoveryState;
use crate::gateway::telemetry::RequestEvent;
use crate::store::Listing;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// How many request events the access log keeps.
pub const LOG_CAPACITY: usize = 2000;
/// The window requests per second are measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The live data. `listing`, `report` and `discovery` are replaced through `set_listing`,
/// `set_report` and `set_discovery` (each bumps its generation, which the views' caches key on);
/// events arrive through `push_event`.
#[derive(Default)]
pub struct Data {
    pub listing: Arc<Listing>,
    pub report: Arc<Report>,
    pub discovery: Arc<DiscoveryState>,
    pub log: VecDeque<RequestEvent>,
    /// Requests seen per route id (see `naming::route_identity`), since the console started.
    pub route_counts: BTreeMap<String, u64>,
    pub total: u64,
    /// Requests a policy refused (see `denial`), since the console started.
    pub denied: u64,
    generations: Generations,
    window: Window,
    /// Route id → where that route is now (its virtual service and index), built once per
    /// listing.
    places: OnceLock<HashMap<String, (ResourceKey, usize)>>,
    /// The functions of each upstream's gRPC-JSON transcoder, decoded once per listing (a
    /// descriptor set is worth decoding once; a `protoDescriptor` file is read then).
    transcoded: OnceLock<HashMap<ResourceKey, Vec<FunctionInfo>>>,
}

/// How many times each input has been replaced (derived data is recomputed when these move).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Generations {
    pub listing: u64,
    pub report: u64,
    pub discovery: u64,
}

/// The requests of the rate window, kept as events arrive and expire: the events of the log
/// from `start` on (by sequence number, the count of events pushed before) are the log's newest
/// events not older than `RATE_WINDOW` at `now`, exactly the run `Data::recent` walks.
#[derive(Default)]
struct Window {
    /// The time the window was last brought to (None: never; every event counts).
    now: Option<SystemTime>,
    /// Sequence number of the window's first event.
    start: u64,
    /// Events in the window.
    len: usize,
    /// Events in the window per route id.
    counts: HashMap<String, u64>,
    /// The window's events older than every event after them (sequence number, time), oldest
    /// first: the newest event that has expired is always one of them.
    minima: VecDeque<(u64, SystemTime)>,
    /// Bumped whenever the window changes.
    version: u64,
}

fn expired(now: SystemTime, t: SystemTime) -> bool {
    now.duration_since(t).is_ok_and(|d| d > RATE_WINDOW)
}

impl Window {
    fn add(&mut self, seq: u64, e: &RequestEvent) {
        self.version += 1;
        if self.now.is_some_and(|now| expired(now, e.time)) {
            // The newest event is already out of the window: nothing before it counts.
            self.clear(seq + 1);
            return;
        }
        while self.minima.back().is_some_and(|(_, t)| *t >= e.time) {
            self.minima.pop_back();
        }
        self.minima.push_back((seq, e.time));
        self.len += 1;
        if let Some(r) = &e.route {
            *self.counts.entry(r.clone()).or_default() += 1;
        }
    }

    fn remove(&mut self, e: &RequestEvent) {
        self.len -= 1;
        if let Some(r) = &e.route
            && let Some(n) = self.counts.get_mut(r)
        {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(r);
            }
        }
    }

    fn clear(&mut self, start: u64) {
        self.start = start;
        self.len = 0;
        self.counts.clear();
        self.minima.clear();
    }

    /// The log dropped its oldest event (sequence number `seq`).
    fn dropped(&mut self, seq: u64, e: &RequestEvent) {
        if seq >= self.start {
            self.version += 1;
            self.remove(e);
            self.start = seq + 1;
        }
        while self.minima.front().is_some_and(|(s, _)| *s < self.start) {
            self.minima.pop_front();
        }
    }

    /// Brings the window to `now`; `first` is the sequence number of `log[0]`.
    fn advance(&mut self, now: SystemTime, log: &VecDeque<RequestEvent>, first: u64) {
        match self.now {
            Some(prev) if prev == now => {}
            Some(prev) if prev < now => {
                let mut last = None;
                while let Some(&(s, t)) = self.minima.front() {
                    if !expired(now, t) {
                        break;
                    }
                    last = Some(s);
                    self.minima.pop_front();
                }
                if let Some(last) = last {
                    self.version += 1;
                    for s in self.start..=last {
                        if let Some(e) = log.get((s - first) as usize) {
                            self.remove(e);
                        }
                    }
                    self.start = last + 1;
                }
                self.now = Some(now);
            }
            // First use, or the clock went back: count again.
            _ => {
                self.version += 1;
                self.now = Some(now);
                let n = log
                    .iter()
                    .rev()
                    .take_while(|e| !expired(now, e.time))
                    .count();
                let end = first + log.len() as u64;
                self.clear(end - n as u64);
                for (i, e) in log.iter().enumerate().skip(log.len() - n) {
                    self.add(first + i as u64, e);
                }
            }
        }
    }
}

/// A function of an upstream, flattened for tables.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionInfo {
    pub upstream: String,
    pub namespace: String,
    pub name: String,
    /// REST, gRPC, Lambda, or a gRPC method behind the upstream's transcoder.
    pub kind: FunctionKind,
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

/// An upstream's gRPC methods (method `gRPC`, path `/package.Service/Method`) and Lambda
/// functions (method `LAMBDA`, path the function name and qualifier), named as routes name
/// them (`function`, `logicalName`).
pub fn grpc_and_lambda_functions(u: &Upstream) -> Vec<FunctionInfo> {
    let info = |name: &str, method: &str, path: String| FunctionInfo {
        upstream: u.metadata.name.clone(),
        namespace: u.metadata.namespace.clone().unwrap_or_default(),
        name: name.to_string(),
        kind: if method == "gRPC" {
            FunctionKind::Grpc
        } else {
            FunctionKind::Lambda
        },
        method: method.to_string(),
        path,
        headers: Vec::new(),
        body: None,
        params: Vec::new(),
    };
    let mut out = Vec::new();
    if let Some(g) = u.spec.service_spec().and_then(|s| s.grpc.as_ref()) {
        for svc in &g.grpc_services {
            for f in &svc.function_names {
                out.push(info(f, "gRPC", format!("/{}", svc.method_path(f))));
            }
        }
    }
    for f in u.spec.aws.iter().flat_map(|a| &a.lambda_functions) {
        let target = match f.qualifier.as_str() {
            "" => f.lambda_function_name.clone(),
            q => format!("{}:{q}", f.lambda_function_name),
        };
        out.push(info(&f.logical_name, "LAMBDA", target));
    }
    out
}

/// The methods an upstream's gRPC-JSON transcoder serves, each as its first HTTP rule
/// calls it: the rule's verb and path template, the fields its variables set (`path`) and
/// what the body is; `read` reads a `protoDescriptor` file.
pub fn transcoded_functions(u: &Upstream, read: ReadFile<'_>) -> Vec<FunctionInfo> {
    u.spec
        .transcoded(read)
        .into_iter()
        .map(|m| FunctionInfo {
            upstream: u.metadata.name.clone(),
            namespace: u.metadata.namespace.clone().unwrap_or_default(),
            name: m.path.rsplit('/').next().unwrap_or(&m.path).to_string(),
            kind: FunctionKind::GrpcJson,
            method: m.verb.to_string(),
            path: m.template,
            headers: Vec::new(),
            body: m.body.map(|b| match b.as_str() {
                "*" => format!("a {} as JSON", m.input),
                field => format!("field `{field}` of a {}, as JSON", m.input),
            }),
            params: m
                .variables
                .into_iter()
                .map(|v| (v, "path".to_string()))
                .collect(),
        })
        .collect()
}

fn upstream_key(u: &Upstream) -> ResourceKey {
    ResourceKey::new(
        Kind::Upstream,
        u.metadata.namespace.clone().unwrap_or_default(),
        &u.metadata.name,
    )
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
        kind: FunctionKind::Rest,
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
            out.extend(grpc_and_lambda_functions(u));
            if let Some(t) = self.transcoded_of().get(&upstream_key(u)) {
                out.extend(t.iter().cloned());
            }
        }
        out
    }

    /// The transcoders' functions of this listing, by upstream.
    fn transcoded_of(&self) -> &HashMap<ResourceKey, Vec<FunctionInfo>> {
        self.transcoded.get_or_init(|| {
            self.upstreams()
                .map(|u| {
                    (
                        upstream_key(u),
                        transcoded_functions(u, &|p| std::fs::read(p)),
                    )
                })
                .filter(|(_, fs)| !fs.is_empty())
                .collect()
        })
    }

    pub fn virtual_services(&self) -> impl Iterator<Item = &Resource> {
        self.listing.of_kind(Kind::VirtualService)
    }

    pub fn routes_of(&self, key: &ResourceKey) -> Vec<Route> {
        self.routes_ref(key).to_vec()
    }

    /// The routes of a virtual service, borrowed (none if it does not exist).
    pub fn routes_ref(&self, key: &ResourceKey) -> &[Route] {
        self.listing
            .resources
            .get(key)
            .and_then(|r| r.routes())
            .map_or(&[], Vec::as_slice)
    }

    pub fn set_listing(&mut self, l: Arc<Listing>) {
        self.listing = l;
        self.generations.listing += 1;
        self.places = OnceLock::new();
        self.transcoded = OnceLock::new();
    }

    /// Where the route with id `id` is now: its virtual service and index.
    pub fn locate(&self, id: &str) -> Option<(ResourceKey, usize)> {
        let places = self.places.get_or_init(|| {
            let mut m = HashMap::new();
            for vs in self.virtual_services() {
                let key = vs.key();
                for (i, r) in vs.routes().into_iter().flatten().enumerate() {
                    m.entry(route_id(&key, r)).or_insert((key.clone(), i));
                }
            }
            m
        });
        places.get(id).cloned()
    }

    /// The route with id `id`, where it is now.
    pub fn route_by_id(&self, id: &str) -> Option<(ResourceKey, usize, &Route)> {
        let (key, i) = self.locate(id)?;
        let r = self.routes_ref(&key).get(i)?;
        Some((key, i, r))
    }

    /// How a route id reads in the log: the route's name, or its virtual service and where it
    /// is now (`default#2`); the id itself (without the namespace) when it is gone.
    pub fn route_place(&self, id: &str, namespace: &str) -> String {
        match self.route_by_id(id) {
            Some((_, _, r)) if r.name.is_some() => r.name.clone().unwrap_or_default(),
            Some((key, i, _)) if key.namespace == namespace => format!("{}#{i}", key.name),
            Some((key, i, _)) => format!("{}/{}#{i}", key.namespace, key.name),
            None => id
                .strip_prefix(namespace)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(id)
                .to_string(),
        }
    }

    pub fn set_report(&mut self, r: Arc<Report>) {
        self.report = r;
        self.generations.report += 1;
    }

    pub fn set_discovery(&mut self, d: Arc<DiscoveryState>) {
        self.discovery = d;
        self.generations.discovery += 1;
    }

    /// How many times the listing, report and discovery have been replaced.
    pub fn generations(&self) -> Generations {
        self.generations
    }

    /// Changes whenever the rate window does (an event in, an event expired).
    pub fn window_version(&self) -> u64 {
        self.window.version
    }

    /// Brings the per-route rates to `now` (events older than the window expire).
    pub fn advance(&mut self, now: SystemTime) {
        let first = self.total - self.log.len() as u64;
        self.window.advance(now, &self.log, first);
    }

    /// Requests per second of `route` as of the last `advance` (or event).
    pub fn window_route_rate(&self, route: &str) -> f64 {
        self.window.counts.get(route).copied().unwrap_or(0) as f64 / RATE_WINDOW.as_secs_f64()
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

    /// The sequence number of the `i`th event of the log (events are numbered from 0 as they
    /// arrive; the log keeps the last `LOG_CAPACITY`).
    pub fn seq_of(&self, i: usize) -> u64 {
        self.total - self.log.len() as u64 + i as u64
    }

    /// The event with sequence number `seq`, while the log still has it.
    pub fn event(&self, seq: u64) -> Option<&RequestEvent> {
        let first = self.total - self.log.len() as u64;
        self.log.get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    pub fn push_event(&mut self, e: RequestEvent) {
        let seq = self.total;
        self.total += 1;
        if denial(&e).is_some() {
            self.denied += 1;
        }
        if let Some(r) = &e.route {
            *self.route_counts.entry(r.clone()).or_default() += 1;
        }
        let first = seq - self.log.len() as u64;
        if self.log.len() >= LOG_CAPACITY
            && let Some(old) = self.log.pop_front()
        {
            self.window.dropped(first, &old);
        }
        self.window.add(seq, &e);
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
        if self.window.now == Some(now) {
            return self.window.len as f64 / RATE_WINDOW.as_secs_f64();
        }
        self.recent(now).count() as f64 / RATE_WINDOW.as_secs_f64()
    }

    pub fn route_rate(&self, now: SystemTime, route: &str) -> f64 {
        if self.window.now == Some(now) {
            return self.window_route_rate(route);
        }
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

    /// The requests `keep` selects, in `n` buckets of `width` ending at `now` (oldest first):
    /// counts, errors (5xx and gateway errors), and p50/p99 latency; from the access log, so
    /// as far back as its last `LOG_CAPACITY` requests reach.
    pub fn series(
        &self,
        now: SystemTime,
        n: usize,
        width: Duration,
        keep: impl Fn(&RequestEvent) -> bool,
    ) -> Series {
        let mut lat: Vec<Vec<u64>> = vec![Vec::new(); n];
        let mut s = Series {
            requests: vec![0; n],
            errors: vec![0; n],
            denied: vec![0; n],
            p50: vec![0; n],
            p99: vec![0; n],
        };
        let w = width.as_micros().max(1);
        for e in self.log.iter().rev() {
            let age = now.duration_since(e.time).unwrap_or_default().as_micros() / w;
            if age >= n as u128 {
                break;
            }
            if !keep(e) {
                continue;
            }
            let b = n - 1 - age as usize;
            s.requests[b] += 1;
            if e.status >= 500 || e.error.is_some() {
                s.errors[b] += 1;
            }
            if denial(e).is_some() {
                s.denied[b] += 1;
            }
            lat[b].push(e.latency.as_micros() as u64);
        }
        for (b, mut v) in lat.into_iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            v.sort_unstable();
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            s.p50[b] = at(0.5);
            s.p99[b] = at(0.99);
        }
        s
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

/// Requests over time, per bucket (see `Data::series`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub requests: Vec<u64>,
    pub errors: Vec<u64>,
    /// Requests a policy refused (counted in `errors` too).
    pub denied: Vec<u64>,
    /// Latency percentiles (µs); 0 where a bucket had no request.
    pub p50: Vec<u64>,
    pub p99: Vec<u64>,
}

impl Series {
    pub fn total(&self) -> u64 {
        self.requests.iter().sum()
    }

    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Errors per hundred requests, per bucket.
    pub fn error_percent(&self) -> Vec<u64> {
        self.requests
            .iter()
            .zip(&self.errors)
            .map(|(r, e)| if *r == 0 { 0 } else { e * 100 / r })
            .collect()
    }
}

/// Whether a policy stage refused the request, and how: `auth` (401/403 from JWT or external
/// auth), `limit` (429 from a rate limit). The gateway answered it with its reason (the event's
/// error) and the upstream never saw it; an injected fault is no denial.
pub fn denial(e: &RequestEvent) -> Option<&'static str> {
    let reason = e.error.as_deref()?;
    if reason.starts_with("fault ") {
        return None;
    }
    match e.status {
        401 | 403 => Some("auth"),
        429 => Some("limit"),
        _ => None,
    }
}

impl crate::tester::trace::Routes for Data {
    fn by_id(&self, id: &str) -> Option<(ResourceKey, usize, &Route)> {
        self.route_by_id(id)
    }
}

/// The id the gateway gives a route of a virtual service (see `naming::route_identity`).
pub fn route_id(vs: &ResourceKey, r: &Route) -> String {
    crate::api::naming::route_identity(&vs.namespace, &vs.name, r)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ms: u64, route: usize) -> RequestEvent {
        RequestEvent {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            route: (route % 5 != 4).then(|| format!("r{route}")),
            upstream: None,
            function: None,
            status: 200,
            latency: Duration::from_micros(1),
            bytes_in: 0,
            bytes_out: 0,
            error: None,
            headers: Vec::new(),
        }
    }

    /// The rates the window keeps are the ones a scan of the log gives, whatever the order of
    /// the events' times, the log's overflow, or the clock going back.
    #[test]
    fn the_rate_window_matches_a_scan_of_the_log() {
        let mut d = Data::default();
        let mut seed = 7u64;
        let mut rnd = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut now = 100_000u64;
        for step in 0..6000 {
            // Mostly forward, sometimes out of order, now and then the clock goes back.
            // (Now and then one already out of the window.)
            let back = if rnd(60) == 0 { 6000 } else { rnd(300) };
            let t = now.saturating_sub(back) + rnd(50);
            d.push_event(event(t, rnd(7) as usize));
            if step % 7 == 0 {
                now = if rnd(40) == 0 {
                    now.saturating_sub(rnd(8000))
                } else {
                    // Later on, more events than the log keeps within the window.
                    now + rnd(if step > 3000 { 5 } else { 200 })
                };
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(now);
                d.advance(at);
                let scan = |route: &str| {
                    d.recent(at)
                        .filter(|e| e.route.as_deref() == Some(route))
                        .count() as f64
                        / RATE_WINDOW.as_secs_f64()
                };
                assert_eq!(d.rate(at), d.recent(at).count() as f64 / 5.0, "step {step}");
                for r in 0..7 {
                    let id = format!("r{r}");
                    assert_eq!(d.window_route_rate(&id), scan(&id), "step {step} {id}");
                }
            }
        }
    }

    /// tests/grpc/books.proto's descriptor set (with its imports), compiled by grpcio-tools'
    /// protoc (.ci/run installs it).
    fn books_set() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("books.pb");
        let status = std::process::Command::new("python3")
            .args(["-m", "grpc_tools.protoc", "--include_imports"])
            .arg(format!("-I{}/tests/grpc", env!("CARGO_MANIFEST_DIR")))
            .arg(format!("--descriptor_set_out={}", out.display()))
            .arg("books.proto")
            .status()
            .expect("python3 -m grpc_tools.protoc");
        assert!(status.success());
        std::fs::read(out).unwrap()
    }

    /// A transcoder's methods are functions of kind `GrpcJson`, each with its first rule's
    /// verb, template and path variables, beside the upstream's gRPC methods; from
    /// `protoDescriptorBin` and from a `protoDescriptor` file (read once per listing).
    #[test]
    fn a_transcoders_methods_are_listed_with_their_rules() {
        use base64::Engine;
        let set = books_set();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("books.pb");
        std::fs::write(&file, &set).unwrap();
        let bin = base64::engine::general_purpose::STANDARD.encode(&set);
        let yaml = format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: books, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: 9}}]\n    serviceSpec:\n      grpcJsonTranscoder: {{protoDescriptorBin: {bin}, services: [books.v1.Books]}}\n      grpc: {{grpcServices: [{{packageName: shop.v1, serviceName: Pets, functionNames: [GetPet]}}]}}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: books-file, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: 9}}]\n    serviceSpec:\n      grpcJsonTranscoder: {{protoDescriptor: '{}', services: [books.v1.Books], autoMapping: true}}\n",
            file.display()
        );
        let resources = crate::api::parse_resources(&yaml, "test").unwrap();
        let mut d = Data::default();
        d.set_listing(Arc::new(Listing {
            resources: resources.into_iter().map(|r| (r.key(), r)).collect(),
            ..Default::default()
        }));
        let listed =
            |d: &Data, up: &str| -> Vec<(FunctionKind, String, String, String, String, bool)> {
                d.functions(Some(up))
                    .into_iter()
                    .map(|f| {
                        let params = f.params_text();
                        (f.kind, f.name, f.method, f.path, params, f.body.is_some())
                    })
                    .collect()
            };
        let k = FunctionKind::GrpcJson;
        let rules = [
            (
                k,
                "GetBook",
                "GET",
                "/v1/shelves/{shelf}/books/{id}",
                "shelf (path), id (path)",
                false,
            ),
            (k, "ListBooks", "GET", "/v1/books", "—", false),
            (k, "CreateBook", "POST", "/v1/books", "—", true),
            (
                k,
                "AddBook",
                "POST",
                "/v1/shelves/{shelf}/books",
                "shelf (path)",
                true,
            ),
        ]
        .map(|(k, n, m, p, v, b)| {
            (
                k,
                n.to_string(),
                m.to_string(),
                p.to_string(),
                v.to_string(),
                b,
            )
        });
        let mut want = vec![(
            FunctionKind::Grpc,
            "GetPet".to_string(),
            "gRPC".to_string(),
            "/shop.v1.Pets/GetPet".to_string(),
            "—".to_string(),
            false,
        )];
        want.extend(rules.iter().cloned());
        assert_eq!(listed(&d, "books"), want);
        let mut want = rules.to_vec();
        want.push((
            k,
            "CountBooks".into(),
            "POST".into(),
            "/books.v1.Books/CountBooks".into(),
            "—".into(),
            true,
        ));
        assert_eq!(listed(&d, "books-file"), want);
        let add = d
            .functions(Some("books"))
            .into_iter()
            .find(|f| f.name == "AddBook")
            .unwrap();
        assert_eq!(
            add.body.as_deref(),
            Some("field `book` of a books.v1.AddBookRequest, as JSON")
        );
        // A set given inline is decoded once, whoever lists it.
        let Some(Resource::Upstream(u)) =
            d.listing.resources.values().find(|r| r.name() == "books")
        else {
            panic!("no books upstream")
        };
        let t = u
            .spec
            .service_spec()
            .unwrap()
            .grpc_json_transcoder
            .as_ref()
            .unwrap();
        let served = |t| crate::grpc::transcode::served(t, &crate::api::no_files);
        assert!(Arc::ptr_eq(&served(t), &served(t)));
        // Read once per listing: the file gone, the listing's functions stay until the next.
        drop(dir);
        assert_eq!(listed(&d, "books-file").len(), 5);
        let again = Arc::new(Listing::clone(&d.listing));
        d.set_listing(again);
        assert_eq!(listed(&d, "books-file"), vec![]);
    }
}
