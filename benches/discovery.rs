//! Discovery benchmarks: reading large API documents, and one discovery pass over 200
//! upstreams of which half serve no document (the dead ones refuse connections, the others
//! answer 404 on every probe path).
//!
//! Run with `cargo bench --bench discovery`. Prints the median of several runs, and the peak
//! of heap bytes reading a document takes over the document's size (a counting allocator;
//! more documents by path in `EPOXY_BENCH_DOCS`, separated by `:`; `EPOXY_BENCH_ONLY=memory`
//! runs only that part).

use epoxy::api::{ResourceSet, parse_one};
use epoxy::discovery::fds::{self, FdsConfig};
use epoxy::discovery::openapi::read_document;
use epoxy::store::dir::DirStore;
use epoxy::store::{Precondition, Store};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak; forwards every call to the system allocator.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n >= l.size() {
            let now = LIVE.fetch_add(n - l.size(), Relaxed) + n - l.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            LIVE.fetch_sub(l.size() - n, Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes `read_document` holds at its peak beyond what was live before (the text itself
/// is the caller's and not counted), and the functions read.
fn read_peak(text: &str) -> (usize, usize) {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let n = read_document(text).map(|d| d.functions.len()).unwrap_or(0);
    (PEAK.load(Relaxed) - before, n)
}

fn print_peak(name: &str, text: &str) {
    let (peak, n) = read_peak(text);
    println!(
        "memory: {name} ({:.1} MB, {n} functions): peak {:.1} MB = {:.2}x its size",
        text.len() as f64 / 1e6,
        peak as f64 / 1e6,
        peak as f64 / text.len() as f64
    );
}

/// An OpenAPI 3 document shaped like Microsoft Graph's, of about `target` bytes: long
/// descriptions, `@odata.type` properties, `{user-id}` paths, inline responses and a large
/// `components.schemas`, most of which functions never use.
fn graph_like_document(target: usize) -> String {
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(6);
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let mut i = 0;
    let mut size = 0;
    while size < target {
        let mut props = serde_json::Map::new();
        for p in 0..12 {
            props.insert(
                format!("property{p}"),
                serde_json::json!({"type": "string", "description": text, "nullable": true}),
            );
        }
        props.insert("@odata.type".into(), serde_json::json!({"type": "string"}));
        let schema = serde_json::json!({"allOf": [{"$ref": "#/components/schemas/entity"},
            {"title": format!("thing{i}"), "type": "object", "properties": props}],
            "description": text, "example": {"id": "1", "property0": "x"}});
        let op = serde_json::json!({
            "get": {"tags": ["things"], "summary": text, "description": text,
                "operationId": format!("things.thing{i}.Get"),
                "parameters": [
                    {"name": "user-id", "in": "path", "required": true, "description": text,
                     "schema": {"type": "string"}},
                    {"name": "$select", "in": "query", "style": "form", "explode": false,
                     "schema": {"uniqueItems": true, "type": "array", "items": {"type": "string"}}}],
                "responses": {"2XX": {"description": "ok", "content": {"application/json":
                    {"schema": {"$ref": format!("#/components/schemas/thing{i}")}}}},
                    "4XX": {"$ref": "#/components/responses/error"}}},
            "patch": {"tags": ["things"], "summary": text, "operationId": format!("things.thing{i}.Update"),
                "parameters": [{"name": "user-id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"description": text, "content": {"application/json":
                    {"schema": {"$ref": format!("#/components/schemas/thing{i}")}}}, "required": true},
                "responses": {"204": {"description": "Success"}}}
        });
        size += op.to_string().len() + schema.to_string().len() + 60;
        paths.insert(format!("/users/{{user-id}}/thing{i}"), op);
        schemas.insert(format!("thing{i}"), schema);
        i += 1;
    }
    schemas.insert(
        "entity".into(),
        serde_json::json!({"title": "entity", "type": "object",
            "properties": {"id": {"type": "string", "description": text}}}),
    );
    serde_json::json!({
        "openapi": "3.0.4", "info": {"title": "graph-like", "version": "v1.0"},
        "servers": [{"url": "https://graph.example.com/v1.0/"}],
        "paths": paths,
        "components": {"schemas": schemas, "responses": {"error": {"description": "error",
            "content": {"application/json": {"schema": {"type": "object"}}}}}}
    })
    .to_string()
}

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
    memory(corpus);
    if std::env::var("EPOXY_BENCH_ONLY").is_ok_and(|v| v == "memory") {
        return;
    }
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
    let yaml =
        epoxy::api::codec::to_yaml(&serde_json::from_str::<serde_json::Value>(&big).unwrap());
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
        let client = epoxy::net::document_client(0).unwrap();
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

/// Peak heap over document size, on the corpus's largest documents, generated ones and any in
/// `EPOXY_BENCH_DOCS`.
fn memory(corpus: &str) {
    let mut files: Vec<(u64, String)> = walk(std::path::Path::new(corpus))
        .into_iter()
        .filter(|p| p.ends_with(".json") || p.ends_with(".yaml"))
        .map(|p| (std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0), p))
        .collect();
    files.sort();
    let mut docs: Vec<String> = files.iter().rev().take(3).map(|(_, p)| p.clone()).collect();
    if let Ok(more) = std::env::var("EPOXY_BENCH_DOCS") {
        docs.extend(
            more.split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        );
    }
    for path in docs {
        match std::fs::read_to_string(&path) {
            Ok(text) => print_peak(path.rsplit('/').next().unwrap_or(&path), &text),
            Err(e) => println!("memory: {path}: {e}"),
        }
    }
    let big = big_document(5 * 1024 * 1024);
    print_peak("generated Swagger 2.0", &big);
    let graph = graph_like_document(20 * 1024 * 1024);
    print_peak("generated Graph-like OpenAPI 3.0", &graph);
    let yaml =
        epoxy::api::codec::to_yaml(&serde_json::from_str::<serde_json::Value>(&graph).unwrap());
    print_peak("the same as YAML", &yaml);
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
