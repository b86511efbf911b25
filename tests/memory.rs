//! Memory per route, counted by a counting allocator (this test binary's own): a listing and
//! a compiled table of thousands of routes must stay small, because the console and the
//! gateway hold both. Figures measured when written (release and debug alike): a function
//! route ~1.4 KB parsed and ~1.8 KB compiled; before templates and regexes were shared it was
//! 16 KB compiled, and a parsed route was 2.5 KB before its rarer parts were boxed.

use epoxy::api::{ResourceSet, parse_one};
use epoxy::gateway::table::compile;
use epoxy::gateway::telemetry::Registry;
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

const ROUTES: usize = 2_000;

/// 50 upstreams serving the petstore's document; `ROUTES` function routes across them.
fn resources() -> (ResourceSet, String) {
    let doc = epoxy::discovery::openapi::read_document(include_str!("../src/demo/swagger.json"))
        .expect("the petstore document");
    let transformations = doc.transformations();
    let mut set = ResourceSet::default();
    for i in 0..50 {
        let u = json!({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
            "metadata": {"name": format!("u{i}"), "namespace": "ns"},
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 8080}],
                "serviceSpec": {"rest": {"transformations": transformations}}}}});
        let r = parse_one(&u.to_string(), "test").expect("an upstream");
        set.insert(r.key(), r);
    }
    let functions = ["findPetById", "addPet", "findPets", "deletePet"];
    let routes: Vec<_> = (0..ROUTES)
        .map(|i| {
            json!({"matchers": [{"exact": format!("/fn/{i}"), "methods": ["GET"]}],
                "routeAction": {"single": {
                    "upstream": {"name": format!("u{}", i % 50), "namespace": "ns"},
                    "destinationSpec": {"rest": {"functionName": functions[i % 4],
                        "parameters": {"headers": {"x-id": "{id}"}}}}}}})
        })
        .collect();
    let vs = json!({"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
        "metadata": {"name": "default", "namespace": "ns"},
        "spec": {"virtualHost": {"domains": ["*"], "routes": routes}}});
    (set, vs.to_string())
}

#[test]
fn thousands_of_function_routes_stay_small_parsed_and_compiled() {
    let (mut set, vs_text) = resources();
    let before = live();
    let vs = parse_one(&vs_text, "test").expect("the virtual service");
    let parsed = (live() - before) as usize / ROUTES;
    set.insert(vs.key(), vs);
    let registry = Registry::default();
    let before = live();
    let table = compile(&set, &registry, 1);
    let compiled = (live() - before) as usize / ROUTES;
    assert_eq!(table.route_count(), ROUTES);
    assert!(table.problems.is_empty(), "{:?}", table.problems);
    eprintln!("per function route: parsed {parsed} B, compiled {compiled} B");
    assert!(parsed < 2_500, "a parsed function route takes {parsed} B");
    assert!(
        compiled < 4_000,
        "a compiled function route takes {compiled} B"
    );
}
