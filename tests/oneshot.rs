//! The request pipeline in process, with no socket between client and gateway (axum's
//! `oneshot` manner): raw requests go through an in-memory pipe into `Gateway::serve_stream`,
//! on the HTTP/1.1 fast path and on hyper alone, for the answers the gateway makes itself
//! (refusals, no route, stages' answers, direct answers, redirects). Both transports must give
//! the same answer, and each case says what that answer is.

mod common;
use common::gw::{InProcess, static_upstream, vs};
use std::collections::BTreeMap;

const ROUTES: &str = r#"    - matchers: [{prefix: /abort}]
      options: {faults: {abort: {percentage: 100, httpStatus: 418}}}
      routeAction: {single: {upstream: {name: nowhere}}}
    - matchers: [{prefix: /hello}]
      directResponseAction: {status: 202, body: hello}
      options:
        headerManipulation:
          responseHeadersToAdd: [{header: {key: x-direct, value: 'yes'}}]
    - matchers: [{prefix: /old}]
      redirectAction: {hostRedirect: new.example, pathRedirect: /new}
    - matchers: [{prefix: /cors}]
      options: {cors: {allowOrigin: [https://shop.example], allowMethods: [GET]}}
      routeAction: {single: {upstream: {name: nowhere}}}
"#;

/// A status line, the headers (names lower-cased, `date` left out) and the body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: String,
    headers: BTreeMap<String, Vec<String>>,
    body: String,
}

fn read(raw: &[u8]) -> Answer {
    let (status, headers, body) = common::raw::split(raw);
    Answer {
        status,
        headers,
        body,
    }
}

/// A case: its name, the raw request, and what its answer must be.
type Case = (&'static str, String, fn(&Answer));

fn get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nhost: in.process\r\n{extra}connection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_answers_with_no_socket_on_both_transports() {
    let gw = InProcess::start().await;
    // The upstream is never dialled: every case is answered before a forward.
    gw.apply(&format!(
        "{}---\n{}",
        static_upstream("nowhere", &["127.0.0.1:9".to_string()]),
        vs("default", "['*']", ROUTES)
    ))
    .await;
    let preflight = "OPTIONS /cors HTTP/1.1\r\nhost: in.process\r\norigin: https://shop.example\r\naccess-control-request-method: GET\r\nconnection: close\r\n\r\n";
    let cases: Vec<Case> = vec![
        ("no route", get("/nothing", ""), |a: &Answer| {
            assert!(a.status.starts_with("HTTP/1.1 404"), "{a:?}");
            assert_eq!(a.headers["x-epoxy-error"], ["no-route"]);
        }),
        ("a fault's abort", get("/abort", ""), |a: &Answer| {
            assert!(a.status.starts_with("HTTP/1.1 418"), "{a:?}");
        }),
        ("a direct answer", get("/hello", ""), |a: &Answer| {
            assert!(a.status.starts_with("HTTP/1.1 202"), "{a:?}");
            assert_eq!(a.body, "hello");
            assert_eq!(a.headers["x-direct"], ["yes"]);
        }),
        ("a redirect", get("/old?q=1", ""), |a: &Answer| {
            assert!(a.status.starts_with("HTTP/1.1 301"), "{a:?}");
            assert_eq!(a.headers["location"], ["http://new.example/new?q=1"]);
        }),
        ("a CORS preflight", preflight.to_string(), |a: &Answer| {
            assert!(a.status.starts_with("HTTP/1.1 200"), "{a:?}");
            assert_eq!(
                a.headers["access-control-allow-origin"],
                ["https://shop.example"]
            );
        }),
        (
            "two hosts",
            get("/hello", "host: other.example\r\n"),
            |a: &Answer| {
                assert!(a.status.starts_with("HTTP/1.1 400"), "{a:?}");
                assert!(a.body.contains("more than one host header"), "{a:?}");
            },
        ),
        (
            "no host",
            "GET /hello HTTP/1.1\r\nconnection: close\r\n\r\n".to_string(),
            |a: &Answer| {
                assert!(a.status.starts_with("HTTP/1.1 400"), "{a:?}");
                assert!(a.body.contains("no host header"), "{a:?}");
            },
        ),
    ];
    for (name, raw, expect) in &cases {
        let fast = read(&gw.send(raw.as_bytes(), true).await);
        let hyper = read(&gw.send(raw.as_bytes(), false).await);
        assert_eq!(
            fast, hyper,
            "{name}: the fast path's answer (left) differs from hyper's (right)"
        );
        expect(&fast);
    }
    // Nothing here needed a listener: the gateway was never started.
    assert!(gw.gw.listeners.bound().is_empty());
}
