//! What the gateway reports: one event per request (for the console's access log), and counters
//! and latency histograms per route and per upstream (for `/metrics`).

use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// One request, as the access log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestEvent {
    pub time: SystemTime,
    pub method: String,
    pub host: String,
    pub path: String,
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub function: Option<String>,
    pub status: u16,
    pub latency: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: Option<String>,
    /// The request's headers (the console's access log shows them for one request and can
    /// replay it); at most `EVENT_HEADERS`, each value cut at `EVENT_HEADER_VALUE` bytes.
    pub headers: Vec<(String, String)>,
}

/// What a request did, for the event and the counters (borrowed from the route table).
pub struct Outcome<'t> {
    pub status: u16,
    pub route: Option<&'t str>,
    pub upstream: Option<&'t str>,
    pub function: Option<&'t str>,
    pub error: Option<String>,
    pub bytes_out: u64,
}

/// An outcome with `status` and nothing else known yet.
pub fn outcome<'t>(status: u16) -> Outcome<'t> {
    Outcome {
        status,
        route: None,
        upstream: None,
        function: None,
        error: None,
        bytes_out: 0,
    }
}

/// What an event says of the request as it came, copied (only when someone listens) from the
/// [`RequestHead`](super::matcher::RequestHead) both transports route by.
pub struct Seen {
    method: String,
    host: String,
    /// Path and query, as the client sent them.
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    pub fn of(head: &super::matcher::RequestHead<'_>) -> Seen {
        let mut path = head.path.to_string();
        if let Some(q) = head.query {
            path.push('?');
            path.push_str(q);
        }
        Seen {
            method: head.method.to_string(),
            host: head.authority.to_string(),
            path,
            headers: event_headers(&head.headers),
        }
    }

    /// The access log's event for this request, once its outcome is known.
    pub fn event(self, o: &Outcome<'_>, latency: Duration, bytes_in: u64) -> RequestEvent {
        RequestEvent {
            time: SystemTime::now(),
            method: self.method,
            host: self.host,
            path: self.path,
            route: o.route.map(str::to_string),
            upstream: o.upstream.map(str::to_string),
            function: o.function.map(str::to_string),
            status: o.status,
            latency,
            bytes_in,
            bytes_out: o.bytes_out,
            error: o.error.clone(),
            headers: self.headers,
        }
    }
}

/// How many request headers an event keeps, and how much of each value.
pub const EVENT_HEADERS: usize = 32;
pub const EVENT_HEADER_VALUE: usize = 256;

/// A request's headers as an event keeps them (only built when someone listens for events).
pub fn event_headers(h: &super::matcher::Headers) -> Vec<(String, String)> {
    let keep = |name: &[u8], value: &[u8]| {
        let v = &value[..value.len().min(EVENT_HEADER_VALUE)];
        (
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        )
    };
    match h {
        super::matcher::Headers::Map(m) => m
            .iter()
            .take(EVENT_HEADERS)
            .map(|(k, v)| keep(k.as_str().as_bytes(), v.as_bytes()))
            .collect(),
        super::matcher::Headers::Raw(r) => r
            .iter()
            .take(EVENT_HEADERS)
            .map(|x| keep(x.name.as_bytes(), x.value))
            .collect(),
    }
}

/// Upper bounds of the latency buckets, in seconds (Prometheus style).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One worker's share of a route's or upstream's counters (on its own cache lines, so that
/// workers never write to the same line).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    requests: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
    bytes_out: AtomicU64,
    latency_sum_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

const SHARDS: usize = 8;

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        (NEXT.fetch_add(1, Relaxed) as usize) % SHARDS
    };
}

/// Counters of one route or upstream; shared by reference with the compiled table, and kept
/// across reloads so that counts do not reset when a route changes. Sharded per thread, and
/// allocated on the first request: a table of 10,000 routes that mostly sit idle stays small.
#[derive(Debug, Default)]
pub struct Stats {
    shards: std::sync::OnceLock<Box<[Shard; SHARDS]>>,
}

/// A point-in-time sum of a `Stats`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub bytes_out: u64,
    pub latency_sum_us: u64,
    pub buckets: [u64; BUCKETS.len()],
}

impl Stats {
    pub fn record(&self, status: u16, latency: Duration, bytes_out: u64) {
        let s = &self.shards.get_or_init(Default::default)[SHARD.with(|i| *i)];
        s.requests.fetch_add(1, Relaxed);
        if (400..500).contains(&status) {
            s.errors_4xx.fetch_add(1, Relaxed);
        } else if status >= 500 {
            s.errors_5xx.fetch_add(1, Relaxed);
        }
        if bytes_out > 0 {
            s.bytes_out.fetch_add(bytes_out, Relaxed);
        }
        s.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Relaxed);
        let secs = latency.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i].fetch_add(1, Relaxed);
        }
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.shards.get().into_iter().flat_map(|b| b.iter()) {
            t.requests += s.requests.load(Relaxed);
            t.errors_4xx += s.errors_4xx.load(Relaxed);
            t.errors_5xx += s.errors_5xx.load(Relaxed);
            t.bytes_out += s.bytes_out.load(Relaxed);
            t.latency_sum_us += s.latency_sum_us.load(Relaxed);
            for (i, b) in s.buckets.iter().enumerate() {
                t.buckets[i] += b.load(Relaxed);
            }
        }
        t
    }
}

/// All stats by name, so that a recompiled table finds the counters of the same route again.
#[derive(Debug, Default)]
pub struct Registry {
    routes: Mutex<HashMap<String, Arc<Stats>>>,
    upstreams: Mutex<HashMap<String, Arc<Stats>>>,
    pub no_route: Stats,
    /// Cleartext connections the workers opened to upstreams: it grows with traffic only when
    /// keep-alive fails (upstreams closing connections, bodies left unread).
    pub upstream_connections: Arc<AtomicU64>,
    /// Client connections the HTTP/1.1 fast path handed to hyper (see `gateway::h1`).
    pub handoffs: AtomicU64,
    /// Upgraded connections (WebSockets) relayed (see `gateway::tunnel`).
    pub tunnels: super::tunnel::TunnelCounters,
    /// The policies' shared state (Redis, key caches, token buckets) and counters.
    pub policy: Arc<crate::policy::Runtime>,
}

impl Registry {
    pub fn route(&self, id: &str) -> Arc<Stats> {
        let mut m = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(id.to_string()).or_default().clone()
    }

    pub fn upstream(&self, name: &str) -> Arc<Stats> {
        let mut m = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        // Sum the shards once per series.
        let mut r: Vec<(&String, Totals)> = routes.iter().map(|(k, v)| (k, v.totals())).collect();
        r.sort_by(|a, b| a.0.cmp(b.0));
        let mut u: Vec<(&String, Totals)> =
            upstreams.iter().map(|(k, v)| (k, v.totals())).collect();
        u.sort_by(|a, b| a.0.cmp(b.0));
        for (metric, label, set) in [("route", "route", &r), ("upstream", "upstream", &u)] {
            let _ = writeln!(
                out,
                "# HELP epoxy_{metric}_requests_total Requests per {metric}."
            );
            let _ = writeln!(out, "# TYPE epoxy_{metric}_requests_total counter");
            for (name, s) in set.iter() {
                let _ = writeln!(
                    out,
                    "epoxy_{metric}_requests_total{{{label}=\"{}\"}} {}",
                    esc(name),
                    s.requests
                );
            }
            let _ = writeln!(
                out,
                "# HELP epoxy_{metric}_responses_total Error responses per {metric} by class."
            );
            let _ = writeln!(out, "# TYPE epoxy_{metric}_responses_total counter");
            for (name, s) in set.iter() {
                let _ = writeln!(
                    out,
                    "epoxy_{metric}_responses_total{{{label}=\"{}\",class=\"4xx\"}} {}",
                    esc(name),
                    s.errors_4xx
                );
                let _ = writeln!(
                    out,
                    "epoxy_{metric}_responses_total{{{label}=\"{}\",class=\"5xx\"}} {}",
                    esc(name),
                    s.errors_5xx
                );
            }
            let _ = writeln!(
                out,
                "# HELP epoxy_{metric}_latency_seconds Request latency per {metric}."
            );
            let _ = writeln!(out, "# TYPE epoxy_{metric}_latency_seconds histogram");
            for (name, s) in set.iter() {
                let mut cumulative = 0;
                for (i, b) in BUCKETS.iter().enumerate() {
                    cumulative += s.buckets[i];
                    let _ = writeln!(
                        out,
                        "epoxy_{metric}_latency_seconds_bucket{{{label}=\"{}\",le=\"{b}\"}} {cumulative}",
                        esc(name)
                    );
                }
                let total = s.requests;
                let _ = writeln!(
                    out,
                    "epoxy_{metric}_latency_seconds_bucket{{{label}=\"{}\",le=\"+Inf\"}} {total}",
                    esc(name)
                );
                let _ = writeln!(
                    out,
                    "epoxy_{metric}_latency_seconds_sum{{{label}=\"{}\"}} {}",
                    esc(name),
                    s.latency_sum_us as f64 / 1e6
                );
                let _ = writeln!(
                    out,
                    "epoxy_{metric}_latency_seconds_count{{{label}=\"{}\"}} {total}",
                    esc(name)
                );
            }
        }
        counter(
            &mut out,
            "epoxy_no_route_total",
            "Requests that matched no virtual host or route.",
            self.no_route.totals().requests,
        );
        counter(
            &mut out,
            "epoxy_upstream_connections_opened_total",
            "Cleartext connections opened to upstreams.",
            self.upstream_connections.load(Relaxed),
        );
        counter(
            &mut out,
            "epoxy_http1_handoffs_total",
            "Client connections the HTTP/1.1 fast path left to the general server (HTTP/2, HTTP/1.0, upgrades, redirects, direct responses, ...).",
            self.handoffs.load(Relaxed),
        );
        let t = &self.tunnels;
        counter(
            &mut out,
            "epoxy_upgraded_connections_total",
            "Upgraded connections (WebSockets) relayed after the upstream's 101.",
            t.opened.load(Relaxed),
        );
        family(
            &mut out,
            ("epoxy_upgraded_connections_active", "gauge"),
            "Upgraded connections open now.",
            &[("", t.active.load(Relaxed) as f64)],
        );
        family(
            &mut out,
            ("epoxy_upgraded_bytes_total", "counter"),
            "Bytes relayed on upgraded connections, by direction.",
            &[
                (
                    "{direction=\"from_client\"}",
                    t.from_client.load(Relaxed) as f64,
                ),
                (
                    "{direction=\"to_client\"}",
                    t.to_client.load(Relaxed) as f64,
                ),
            ],
        );
        family(
            &mut out,
            ("epoxy_upgraded_seconds_total", "counter"),
            "How long the ended upgraded connections lasted, summed.",
            &[("", t.millis.load(Relaxed) as f64 / 1e3)],
        );
        for (name, help, value) in self.policy.counters.rows() {
            counter(&mut out, name, help, value);
        }
        out
    }
}

/// A metric's HELP and TYPE lines, then one line per (labels, value).
fn family(out: &mut String, (name, kind): (&str, &str), help: &str, series: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in series {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A counter without labels, with its HELP and TYPE lines.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
