//! What the client is told when the upstream fails mid-exchange: the `x-epoxy-error` code and
//! a message that reaches the root cause (the operating system's "connection reset"), not
//! only the wrapper an HTTP library puts around it. On both transports: the fast path and
//! hyper alone.
//!
//! Hyper's errors keep their cause (`gateway::pool::SendError` has it as its source); the fast
//! path (`gateway::h1::forward`, `SendFailed::Closed`) keeps the OS error of a reset that comes
//! before any response byte. Both name it.

mod common;
use common::gw::{Harness, static_upstream, vs};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;

/// An upstream that reads a request head and answers with a TCP reset (SO_LINGER 0, then
/// close): what a crashing or overloaded server does. Returns its address.
fn resetting_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let sock = socket2::SockRef::from(&s);
            let _ = sock.set_linger(Some(std::time::Duration::ZERO));
            drop(s);
        }
    });
    addr
}

async fn reset_is_explained(fast_path: bool) {
    let addr = resetting_upstream();
    let h = Harness::with(|c| c.fast_path = fast_path).await;
    let routes =
        "    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: rst}}}\n";
    h.apply(&format!(
        "{}---\n{}",
        static_upstream("rst", &[addr]),
        vs("default", "['*']", routes)
    ))
    .await;
    let r = Harness::client()
        .get(format!("{}/boom", h.url))
        .send()
        .await
        .unwrap();
    let transport = if fast_path { "fast path" } else { "hyper" };
    assert_eq!(r.status(), 503, "{transport}");
    assert_eq!(
        r.headers()["x-epoxy-error"],
        "upstream-reset",
        "{transport}"
    );
    let v: Value = r.json().await.unwrap();
    let message = v["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("reset"), "{transport}: {message:?}");
    // The root cause as the OS words it (ECONNRESET), whatever wraps it.
    let reset = std::io::Error::from_raw_os_error(libc::ECONNRESET).to_string();
    assert!(
        message.contains(&reset),
        "{transport}: the message should name the reset ({reset:?}): {message:?}"
    );
    assert_eq!(v["upstream"], "rst", "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_names_its_cause_on_the_fast_path() {
    reset_is_explained(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_names_its_cause_on_hyper() {
    reset_is_explained(false).await;
}
