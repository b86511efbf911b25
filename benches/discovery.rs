//! Discovery benchmarks: reading large API documents, and one discovery pass over 200
//! upstreams of which half serve no document (the dead ones refuse connections, the others
//! answer 404 on every probe path).
//!
//! Run with `cargo bench --bench discovery`. Prints the median of several runs.

use epoxy::api::{ResourceSet, parse_one};
use epoxy::discovery::fds::{self, FdsConfig};
use epoxy::discovery::openapi::read_document;
use epoxy::store::dir::DirStore;
use epoxy::store::{Precondition, Store};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// A Swagger 2.0 document of about `target` bytes (many operations with parameters and bodies).
fn big_document(target: usize) -> String {
    let mut paths = serde_json::Map::new();
    let mut i = 0;
    let mut size = 0;
    while size < target {
        let op = serde_json::json!({
            "get": {"operationId": format!("get{i}"), "parameters": [
                {"name": "id", "in": "path", "required": true, "type": "integer"},
                {"name": "limit", "in": "query", "type": "integer"},
                {"name": "x-trace", "in": "header", "type": "string"}],
                "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/item"}}}},
            "post": {"operationId": format!("post{i}"), "parameters": [
                {"name": "id", "in": "path", "required": true, "type": "integer"},
                {"name": "body", "in": "body", "schema": {"$ref": "#/definitions/item"}}],
                "responses": {"200": {"description": "ok"}}}
        });
        size += op.to_string().len() + 30;
        paths.insert(format!("/service{}/items/{{id}}", i), op);
        i += 1;
    }
    serde_json::json!({
        "swagger": "2.0", "info": {"title": "big", "version": "1"}, "basePath": "/api",
        "paths": paths,
        "definitions": {"item": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "owner": {"type": "object", "properties": {"name": {"type": "string"}, "email": {"type": "string"}}}}}}
    })
    .to_string()
}

fn main() {
    // `cargo test --all-targets` runs benches once as tests: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi-corpus");
    let mut largest = (0, String::new());
    for entry in walk(std::path::Path::new(corpus)) {
        let len = std::fs::metadata(&entry).map(|m| m.len()).unwrap_or(0) as usize;
        if len > largest.0 && (entry.ends_with(".json") || entry.ends_with(".yaml")) {
            largest = (len, entry);
        }
    }
    let text = std::fs::read_to_string(&largest.1).expect("largest corpus document");
    let d = time(5, || read_document(&text).map(|d| d.functions.len()));
    let n = read_document(&text).map(|d| d.functions.len()).unwrap_or(0);
    println!(
        "largest corpus document: {} ({} bytes, {n} functions): {:.1} ms",
        largest.1.rsplit('/').next().unwrap_or(""),
        largest.0,
        d.as_secs_f64() * 1e3
    );

    let big = big_document(5 * 1024 * 1024);
    let d = time(3, || read_document(&big).map(|d| d.functions.len()));
    let n = read_document(&big).map(|d| d.functions.len()).unwrap_or(0);
    println!(
        "generated 5 MB document ({} bytes, {n} functions): {:.1} ms (target < 1000 ms)",
        big.len(),
        d.as_secs_f64() * 1e3
    );
    let yaml = epoxy::api::parse::value_to_yaml(&serde_json::from_str(&big).unwrap());
    let d = time(3, || read_document(&yaml).map(|d| d.functions.len()));
    println!(
        "the same as YAML ({} bytes): {:.1} ms",
        yaml.len(),
        d.as_secs_f64() * 1e3
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 100 live upstreams: embedded petstores; 50 that refuse connections; 50 that answer
        // 404 everywhere (a petstore-less HTTP server: the admin-less gateway answers 404).
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let mut keep = Vec::new();
        let mut yamls = Vec::new();
        for i in 0..100 {
            let p = epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
            yamls.push(upstream(&format!("live{i}"), &p.addr.to_string()));
            keep.push(p);
        }
        let gw = epoxy::gateway::Gateway::new();
        let cfg = epoxy::gateway::GatewayConfig { listen: "127.0.0.1:0".parse().unwrap(), admin: None, workers: 1, ..Default::default() };
        let empty = gw.start(&cfg).unwrap();
        for i in 0..50 {
            let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            yamls.push(upstream(&format!("dead{i}"), &dead.to_string()));
            yamls.push(upstream(&format!("nodoc{i}"), &empty.addr.to_string()));
        }
        for y in &yamls {
            store.put(parse_one(y, "bench").unwrap(), Precondition::Any).await.unwrap();
        }
        let set: ResourceSet = store.list().await.unwrap().resources;
        let client = epoxy::net::client();
        let mut runs = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let state = fds::poll_once(&store, &set, &FdsConfig::default(), &client, None).await;
            runs.push(t.elapsed());
            assert_eq!(state.values().filter(|s| s.functions == 4).count(), 100);
        }
        println!("discovery pass over 200 upstreams (100 with a document, 50 refusing, 50 with none): {:.0} ms (target < 5000 ms)", median(runs).as_secs_f64() * 1e3);
        empty.shutdown();
    });
}

fn upstream(name: &str, addr: &str) -> String {
    let (a, p) = addr.rsplit_once(':').unwrap();
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec: {{static: {{hosts: [{{addr: '{a}', port: {p}}}]}}}}\n"
    )
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}
