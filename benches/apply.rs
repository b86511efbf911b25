//! `epoxy apply` of 10,000 resources (9,000 upstreams, 1,000 virtual services routing to
//! them) into an empty directory store, again unchanged, and again all changed: the real
//! binary, as a user runs it. Target: each under 5 s. Run: `cargo bench --bench apply`.

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

fn resources(n_upstreams: usize, n_vs: usize, port: u32) -> String {
    let mut out = String::new();
    for i in 0..n_upstreams {
        let _ = write!(
            out,
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: up-{i}, namespace: gloo-system}}\nspec: {{static: {{hosts: [{{addr: 10.{}.{}.{}, port: {port}}}]}}}}\n---\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        );
    }
    for i in 0..n_vs {
        let _ = write!(
            out,
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: vs-{i}, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['app-{i}.example']\n    routes:\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: up-{i}}}}}}}\n---\n"
        );
    }
    out
}

fn apply(store: &std::path::Path, file: &std::path::Path) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_epoxy"))
        .env("EPOXY_DIR", store)
        .args(["apply", "-f"])
        .arg(file)
        .output()
        .expect("run epoxy");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("resources.yaml");
    let (ups, vss) = (9_000, 1_000);
    std::fs::write(&file, resources(ups, vss, 8080)).unwrap();
    let created = apply(&store, &file);
    let unchanged = apply(&store, &file);
    std::fs::write(&file, resources(ups, vss, 9090)).unwrap();
    let configured = apply(&store, &file);
    let n = ups + vss;
    for (what, t) in [
        ("created", created),
        ("unchanged", unchanged),
        ("configured", configured),
    ] {
        println!(
            "apply {n} resources, {what:10} {:6.2} s ({:.0} us per resource){}",
            t.as_secs_f64(),
            t.as_secs_f64() * 1e6 / n as f64,
            if t < Duration::from_secs(5) {
                ""
            } else {
                "  OVER the 5 s target"
            }
        );
    }
}
