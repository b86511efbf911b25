//! Heap allocations the gateway makes per proxied request, counted by this test binary's own
//! allocator: requests sent straight to an upstream, then the same requests through the
//! gateway; the difference is the gateway's. A count, unlike a timing, is the same on every
//! machine, so it can guard the hot path against regressions.

mod common;
use common::gw::Harness;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const REQUESTS: u64 = 500;

/// Allocations per request (to a tenth) for GETs of `url` with `headers`.
async fn allocations_for(
    client: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
) -> f64 {
    let get = || client.get(url).headers(headers.clone()).send();
    // Warm up: connections open, pools filled.
    for _ in 0..50 {
        let r = get().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let before = ALLOCATIONS.load(Relaxed);
    for _ in 0..REQUESTS {
        let r = get().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let per_request = (ALLOCATIONS.load(Relaxed) - before) as f64 / REQUESTS as f64;
    (per_request * 10.0).round() / 10.0
}

/// The headers the gateway adds to a request, sent by the client both ways: straight to the
/// upstream, which then parses the same headers as through the gateway (which appends to
/// `x-forwarded-for`, sets `x-forwarded-proto` and keeps `x-request-id`), and through the
/// gateway, so that the client does the same work either way. The difference is the
/// gateway's own.
fn as_the_gateway_forwards() -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut h = reqwest::header::HeaderMap::new();
    for (n, v) in [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "0123456789abcdef0123456789abcdef"),
    ] {
        h.insert(HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxied_request_costs_few_allocations() {
    let pets = epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = Harness::client();
    let direct_url = format!("http://{}/api/pets/1", pets.addr);
    let direct = allocations_for(&client, &direct_url, &as_the_gateway_forwards()).await;
    let mut per_transport = Vec::new();
    for fast_path in [true, false] {
        let h = Harness::with(|c| {
            c.workers = 1;
            c.fast_path = fast_path;
        })
        .await;
        h.forward_all("pets", &[pets.addr.to_string()]).await;
        let through_url = format!("{}/api/pets/1", h.url);
        let through = allocations_for(&client, &through_url, &as_the_gateway_forwards()).await;
        let gateway = through - direct;
        eprintln!(
            "allocations per request (fast path {fast_path}): direct {direct}, through the gateway {through}; the gateway's {gateway:.1}"
        );
        per_transport.push(gateway);
    }
    let (fast, hyper) = (per_transport[0], per_transport[1]);
    // On the HTTP/1.1 fast path (`gateway::h1`), the bound is 5: past it, something
    // on the hot path allocates again. Hyper's server and client cost more by design (it
    // serves what the fast path does not: HTTP/2, TLS upstreams, upgrades); its bound keeps
    // the shared header rules from copying what they could share.
    assert!(
        fast <= 5.0,
        "the fast path makes {fast:.1} allocations per request"
    );
    assert!(
        hyper <= 30.0,
        "hyper alone makes {hyper:.1} allocations per request"
    );
}
