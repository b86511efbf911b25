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

async fn allocations_for(client: &reqwest::Client, url: &str) -> u64 {
    // Warm up: connections open, pools filled.
    for _ in 0..50 {
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let before = ALLOCATIONS.load(Relaxed);
    for _ in 0..REQUESTS {
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    (ALLOCATIONS.load(Relaxed) - before) / REQUESTS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxied_request_costs_few_allocations() {
    let pets = epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let h = Harness::with(|c| c.workers = 1).await;
    h.forward_all("pets", &[pets.addr.to_string()]).await;
    let client = Harness::client();
    let direct = allocations_for(&client, &format!("http://{}/api/pets/1", pets.addr)).await;
    let through = allocations_for(&client, &format!("{}/api/pets/1", h.url)).await;
    let gateway = through.saturating_sub(direct);
    eprintln!(
        "allocations per request: direct {direct}, through the gateway {through}; the gateway's {gateway}"
    );
    // 20-22 through hyper's server and client; 5 on the HTTP/1.1 fast path (`gateway::h1`), some
    // of which are the in-process upstream's own, for the headers the gateway adds. Past 12,
    // something on the hot path allocates again.
    assert!(
        gateway <= 12,
        "the gateway makes {gateway} allocations per request"
    );
}
