//! Route matching: how the cost of `RouteTable::route` grows with the number of routes.
//!
//! Tables of 10, 1,000 and 10,000 routes, exact-path and prefix, looked up with the path of the
//! LAST route (the worst case for a linear scan) and with a path that matches nothing; plus a small
//! mixed table with a regex route. Tables are compiled outside the timed loop.
//!
//! Run: `cargo bench --bench matching` (about a minute).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use epoxy::api::{ResourceSet, parse_resources};
use epoxy::gateway::matcher::RequestHead;
use epoxy::gateway::table::{RouteTable, compile};
use epoxy::gateway::telemetry::Registry;
use http::HeaderMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 3] = [10, 1_000, 10_000];

const UPSTREAM: &str = "\
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: fast, namespace: gloo-system}
spec:
  static:
    hosts: [{addr: 127.0.0.1, port: 9100}]
---
";

/// A virtual service (`domains: ['*']`) whose routes are the given matchers (flow YAML).
fn table(matchers: impl Iterator<Item = String>) -> RouteTable {
    let mut y = String::from(UPSTREAM);
    y.push_str(
        "apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: default, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    routes:
",
    );
    for m in matchers {
        writeln!(
            y,
            "    - {{matchers: [{m}], routeAction: {{single: {{upstream: {{name: fast}}}}}}}}"
        )
        .unwrap();
    }
    let set: ResourceSet = parse_resources(&y, "bench")
        .expect("bench resources parse")
        .into_iter()
        .map(|r| (r.key(), r))
        .collect();
    let t = compile(&set, &Registry::default(), 1);
    assert!(t.problems.is_empty(), "compile problems: {:?}", t.problems);
    t
}

fn exact_table(n: usize) -> RouteTable {
    table((0..n).map(|i| format!("{{exact: /svc{i}/item}}")))
}

fn prefix_table(n: usize) -> RouteTable {
    table((0..n).map(|i| format!("{{prefix: /svc{i}/}}")))
}

/// Routes `path` and returns the matched route id (or None), checking the expectation once.
fn lookup<'t>(t: &'t RouteTable, headers: &HeaderMap, path: &str) -> Option<&'t str> {
    let req = RequestHead {
        method: "GET",
        authority: "example.com",
        path,
        query: None,
        headers: headers.into(),
    };
    t.route(&req).map(|m| &*m.route.id)
}

fn bench_kind(
    c: &mut Criterion,
    name: &str,
    build: fn(usize) -> RouteTable,
    last: fn(usize) -> String,
) {
    let headers = HeaderMap::new();
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    g.sample_size(30);
    for n in SIZES {
        let t = build(n);
        assert_eq!(t.route_count(), n);
        let hit = last(n);
        // Routes are named by identity (a digest of their content when they have no name).
        let want = t.vhosts[0].routes[n - 1].id.clone();
        assert_eq!(
            lookup(&t, &headers, &hit),
            Some(&*want),
            "last route must match"
        );
        assert_eq!(lookup(&t, &headers, "/nomatch/item"), None);
        g.bench_with_input(BenchmarkId::new("last", n), &hit, |b, p| {
            b.iter(|| lookup(black_box(&t), &headers, black_box(p)).is_some())
        });
        g.bench_with_input(BenchmarkId::new("miss", n), "/nomatch/item", |b, p| {
            b.iter(|| lookup(black_box(&t), &headers, black_box(p)).is_some())
        });
    }
    g.finish();
}

fn exact(c: &mut Criterion) {
    bench_kind(c, "exact", exact_table, |n| format!("/svc{}/item", n - 1));
}

fn prefix(c: &mut Criterion) {
    bench_kind(c, "prefix", prefix_table, |n| format!("/svc{}/item", n - 1));
}

/// A small realistic table: exact, prefix, a header/method-conditioned route, a regex route and a
/// catch-all.
fn mixed(c: &mut Criterion) {
    let t = table(
        [
            "{exact: /healthz}",
            "{prefix: /api/v1/users/, methods: [POST]}",
            "{prefix: /api/v1/users/, headers: [{name: x-canary, value: 'true'}]}",
            "{prefix: /api/v1/users/}",
            "{prefix: /static/}",
            r"{regex: '/orders/[0-9]+/items/[a-z0-9-]+'}",
            "{prefix: /}",
        ]
        .into_iter()
        .map(String::from),
    );
    let headers = HeaderMap::new();
    // The routes each path must reach, by position (their ids are digests of their content).
    let cases = [
        ("exact", "/healthz", 0),
        ("prefix", "/api/v1/users/42", 3),
        ("regex", "/orders/123/items/abc-9", 5),
        ("fallthrough", "/other/thing", 6),
    ];
    let mut g = c.benchmark_group("mixed");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    g.sample_size(30);
    for (name, path, at) in cases {
        let want = &*t.vhosts[0].routes[at].id;
        assert_eq!(lookup(&t, &headers, path), Some(want), "{name}");
        g.bench_with_input(BenchmarkId::new(name, 7), path, |b, p| {
            b.iter(|| lookup(black_box(&t), &headers, black_box(p)).is_some())
        });
    }
    g.finish();
}

criterion_group!(benches, exact, prefix, mixed);
criterion_main!(benches);
