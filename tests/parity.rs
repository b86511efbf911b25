//! The parity suite: the same requests through a gateway on the HTTP/1.1 fast path and one on
//! hyper alone must give the same upstream request (method, target, headers, body, as the
//! echoing upstream saw them), the same answer to the client (status, headers, body) and the
//! same access-log event. Each transport carries one copy of the I/O and none of the
//! decisions; this is where a decision made twice would show.

mod common;
use common::gw::{Harness, static_upstream, vs};
use common::upstream;
use epoxy::gateway::telemetry::RequestEvent;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROUTES: &str = r#"    - matchers: [{prefix: /headers/}]
      options:
        prefixRewrite: /api/
        headerManipulation:
          requestHeadersToAdd: [{header: {key: x-added, value: one}}, {header: {key: x-app, value: two}, append: true}, {header: {key: x-request-id, value: from-route}}]
          requestHeadersToRemove: [x-secret]
          responseHeadersToAdd: [{header: {key: x-resp, value: added}}]
          responseHeadersToRemove: [x-upstream]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /host}]
      options: {hostRewrite: upstream.internal}
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /v1/}]
      options: {regexRewrite: {pattern: {regex: '^/v1/(\w+)/(\d+)$'}, substitution: '/items/\2/\1'}}
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /abort}]
      options: {faults: {abort: {percentage: 100, httpStatus: 418}}}
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /status/}]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /plain}]
      name: plain
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /fn/}]
      options:
        hostRewrite: upstream.internal
        headerManipulation:
          requestHeadersToAdd: [{header: {key: x-added, value: route}, append: false}]
      routeAction:
        single:
          upstream: {name: a}
          destinationSpec: {rest: {functionName: tag, parameters: {path: '/fn/{id}'}}}
    - matchers: [{prefix: /down}]
      options: {cors: {allowOrigin: [https://shop.example]}}
      routeAction: {single: {upstream: {name: down}}}
    - matchers: [{prefix: /auto}]
      options:
        autoHostRewrite: true
        headerManipulation:
          requestHeadersToAdd: [{header: {key: host, value: from-route}}]
      routeAction: {single: {upstream: {name: a}}}
"#;

/// A function whose call sets headers the route or the gateway also decide: the route's
/// `x-added` and `hostRewrite` win over the function's, and the function's `x-forwarded-for`
/// is the one the client's address is appended to.
const FUNCTIONS: &str = r#"    serviceSpec:
      rest:
        transformations:
          tag:
            headers:
              ':path': {text: '/fn/tagged/{{ id }}'}
              x-added: {text: function}
              x-tag: {text: '{{ id }}'}
              host: {text: fn.internal}
              x-forwarded-for: {text: 10.9.9.9}
"#;

/// One raw request (the gateway's address goes nowhere in it: `Host` is fixed).
struct Case {
    name: &'static str,
    raw: String,
}

fn cases() -> Vec<Case> {
    let get = |name: &'static str, target: &str, extra: &str| Case {
        name,
        raw: format!(
            "GET {target} HTTP/1.1\r\nhost: parity.test\r\n{extra}connection: close\r\n\r\n"
        ),
    };
    vec![
        get("plain", "/plain?x=1&y=%20", ""),
        get(
            "forwarding headers kept and appended",
            "/plain",
            "x-forwarded-for: 10.0.0.1\r\nx-request-id: given\r\nx-forwarded-proto: https\r\n",
        ),
        get(
            "hop-by-hop headers dropped",
            "/plain",
            "x-hop: 1\r\nkeep-alive: 5\r\nproxy-connection: x\r\nte: trailers\r\nconnection: x-hop\r\n",
        ),
        get(
            "route header rules",
            "/headers/pets",
            "x-secret: s\r\nx-app: mine\r\nx-added: client\r\nx-request-id: client\r\n",
        ),
        get("host rewrite", "/host/a", ""),
        get("regex rewrite", "/v1/pets/42", ""),
        get("a stage answers", "/abort", "x-any: 1\r\n"),
        get("an upstream error status", "/status/503", ""),
        get("no route", "/nothing/here", ""),
        Case {
            name: "a body",
            raw: "POST /plain/items HTTP/1.1\r\nhost: parity.test\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"a\": true}".into(),
        },
        get("HEAD", "/plain", "").with_method("HEAD"),
        get("te: trailers kept", "/plain", "te: trailers\r\n"),
        get(
            "a function's headers under the route's",
            "/fn/7",
            "x-added: client\r\nx-forwarded-for: 10.0.0.1\r\n",
        ),
        get("the route's host over autoHostRewrite", "/auto", ""),
        get(
            "the stages' response headers on the gateway's own error",
            "/down",
            "origin: https://shop.example\r\n",
        ),
    ]
}

impl Case {
    fn with_method(mut self, m: &str) -> Case {
        self.raw = self.raw.replacen("GET", m, 1);
        self
    }
}

/// What the client got: status line, headers (lower-case names, `date` dropped), body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: String,
    headers: BTreeMap<String, Vec<String>>,
    body: Value,
}

async fn send(addr: &str, raw: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let (status, headers, body) = common::raw::split(&out);
    let mut body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    // A request id the gateway makes is random: its shape is compared, not its value.
    if let Some(id) = body.pointer_mut("/headers/x-request-id")
        && id.as_str().is_some_and(|s| s.len() == 32)
    {
        *id = Value::String("<generated>".into());
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// An event without what differs between two runs (time, latency).
fn comparable(e: &RequestEvent) -> Value {
    let mut v = serde_json::to_value(e).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("time");
    o.remove("latency");
    v
}

/// An address nothing listens on (a port bound, then let go).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// What the upstream must have seen, where a case's point is a precedence between rules (the
/// two transports agreeing is checked for every case; this checks what they agree on).
fn expect(case: &str, answer: &Answer) {
    let echo = &answer.body;
    let h = &echo["headers"];
    match case {
        "te: trailers kept" => assert_eq!(h["te"], "trailers", "{echo}"),
        "a function's headers under the route's" => {
            assert_eq!(echo["path"], "/fn/tagged/7", "{echo}");
            assert_eq!(h["host"], "upstream.internal", "the route's host: {echo}");
            assert_eq!(
                echo["repeated"],
                serde_json::json!({}),
                "one of each: {echo}"
            );
            assert_eq!(h["x-added"], "route", "{echo}");
            assert_eq!(h["x-tag"], "7", "{echo}");
            assert_eq!(h["x-forwarded-for"], "10.9.9.9, 127.0.0.1", "{echo}");
        }
        "the stages' response headers on the gateway's own error" => {
            assert!(answer.status.starts_with("HTTP/1.1 503"), "{answer:?}");
            let cors = answer.headers.get("access-control-allow-origin");
            assert_eq!(
                cors,
                Some(&vec!["https://shop.example".to_string()]),
                "{answer:?}"
            );
        }
        "the route's host over autoHostRewrite" => {
            assert_eq!(h["host"], "from-route", "{echo}")
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_transports_make_the_same_decisions() {
    let a = upstream::start("a");
    let fast = Harness::with(|c| c.fast_path = true).await;
    let hyper = Harness::with(|c| c.fast_path = false).await;
    let config = format!(
        "{}---\n{}---\n{}",
        static_upstream("a", &[a.host_port()]) + FUNCTIONS,
        // Nothing listens there: every request to `down` is the gateway's 503.
        static_upstream("down", &[closed_port()]),
        vs("default", "['*']", ROUTES)
    );
    for h in [&fast, &hyper] {
        h.apply(&config).await;
    }
    let (mut fast_events, mut hyper_events) =
        (fast.gw.events.subscribe(), hyper.gw.events.subscribe());
    let addr = |h: &Harness| h.url.trim_start_matches("http://").to_string();
    let mut compared = 0;
    for case in cases() {
        let on_fast = send(&addr(&fast), &case.raw).await;
        let on_hyper = send(&addr(&hyper), &case.raw).await;
        assert_eq!(
            on_fast, on_hyper,
            "{}: the fast path's answer (left) differs from hyper's (right)",
            case.name
        );
        let (e1, e2) = (
            fast_events.recv().await.unwrap(),
            hyper_events.recv().await.unwrap(),
        );
        assert_eq!(
            comparable(&e1),
            comparable(&e2),
            "{}: the access-log events differ",
            case.name
        );
        expect(case.name, &on_fast);
        compared += 1;
    }
    assert_eq!(compared, cases().len());
    // The requests did reach the upstream (the echo is what was compared), except the ones a
    // stage or the table answered, and the one to an upstream that is down.
    assert_eq!(a.hits(), 2 * (cases().len() as u64 - 3));
    // The fast path served every case itself but the two it leaves to hyper by design: a
    // `connection` header listing other headers, and a request no route takes.
    let handoffs = fast.metrics().await.lines().find_map(|l| {
        l.strip_prefix("epoxy_http1_handoffs_total ")
            .map(str::to_string)
    });
    assert_eq!(handoffs.as_deref(), Some("2"));
}
