//! The gateway's HTTP/1.1 fast path (`gateway::h1`) over real sockets: what it serves itself,
//! what it hands to hyper in the middle of a connection, how it relays every way an upstream
//! can frame a response, and how it ends connections (client's `close`, shutdown).

mod common;
use common::gw::{Harness, static_upstream, vs};
use common::upstream;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `bytes` on a new connection and reads until the gateway closes it.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the gateway should close the connection after `connection: close`")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The gateway's count of connections the fast path handed to hyper.
async fn handoffs(h: &Harness) -> u64 {
    h.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("epoxy_http1_handoffs_total "))
        .and_then(|v| v.parse().ok())
        .expect("epoxy_http1_handoffs_total in /metrics")
}

/// The responses in what `raw` read, each as (status line, head, body).
fn responses(text: &str) -> Vec<(String, String, String)> {
    text.split("HTTP/1.1 ")
        .skip(1)
        .map(|r| {
            let (head, body) = r.split_once("\r\n\r\n").unwrap_or((r, ""));
            let status = head.lines().next().unwrap_or("").to_string();
            (status, head.to_ascii_lowercase(), body.to_string())
        })
        .collect()
}

fn echoed_path(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["path"].as_str().unwrap_or("").to_string()
}

async fn echo_gateway() -> (Harness, upstream::Upstream) {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{prefix: /direct}]
      directResponseAction: {status: 200, body: direct}
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: a}}}
"#;
    h.serve("a", &[a.host_port()], routes).await;
    (h, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let (h, _a) = echo_gateway().await;
    let text = raw(
        h.handle.addr,
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /two?q=2 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let rs = responses(&text);
    assert_eq!(rs.len(), 3, "{text}");
    let paths: Vec<String> = rs.iter().map(|r| echoed_path(&r.2)).collect();
    assert_eq!(paths, ["/one", "/two?q=2", "/three"]);
    assert!(rs.iter().all(|r| r.0 == "200 OK"), "{text}");
    assert!(!rs[0].1.contains("connection: close"));
    assert!(rs[2].1.contains("connection: close"), "{}", rs[2].1);
    assert_eq!(handoffs(&h).await, 0, "served by the fast path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_moves_to_hyper_for_what_the_fast_path_leaves() {
    let (h, a) = echo_gateway().await;
    // Forwarded by the fast path, then a direct response and a chunked request body (hyper),
    // then a plain request again (hyper keeps the connection): all answered, in order.
    let text = raw(
        h.handle.addr,
        b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /direct HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let rs = responses(&text);
    assert_eq!(rs.len(), 4, "{text}");
    assert_eq!(echoed_path(&rs[0].2), "/fast");
    assert_eq!(rs[1].2, "direct");
    let v: Value = serde_json::from_str(&rs[2].2).unwrap();
    assert_eq!(
        (v["path"].as_str(), v["body"].as_str()),
        (Some("/chunked"), Some("abcde"))
    );
    assert_eq!(echoed_path(&rs[3].2), "/after");
    assert_eq!(a.hits(), 3);
    assert_eq!(handoffs(&h).await, 1, "one connection handed over, once");
    // HTTP/1.0 goes to hyper from the first byte.
    let text = raw(h.handle.addr, b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    assert_eq!(
        echoed_path(&responses(&text.replacen("HTTP/1.0", "HTTP/1.1", 1))[0].2),
        "/old"
    );
    assert_eq!(handoffs(&h).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_small_ones_read_whole_large_ones_streamed_by_hyper() {
    let (h, _a) = echo_gateway().await;
    let c = Harness::client();
    for size in [0usize, 10, 64 * 1024, 64 * 1024 + 1, 300 * 1024] {
        let body: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let r = c
            .post(format!("{}/post", h.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "size {size}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["body"].as_str().map(str::len), Some(size), "size {size}");
        assert!(v["body"].as_str() == Some(body.as_str()), "size {size}");
        assert_eq!(v["headers"]["content-length"], size.to_string());
    }
    // A body that is announced and never comes does not hold the gateway.
    let mut s = TcpStream::connect(h.handle.addr).await.unwrap();
    s.write_all(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    drop(s);
    let r = c.get(format!("{}/still", h.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Bodies up to 64 KiB stay on the fast path; the first larger one moved the (reused)
    // connection to hyper, which served the rest.
    assert_eq!(handoffs(&h).await, 1);
}

/// An upstream on raw sockets answering each path with a fixed response, to see every way a
/// response can be framed. It counts connections.
async fn framing_upstream() -> (String, Arc<AtomicU64>) {
    upstream::raw(|path| {
        match path {
                        "/until-close" => (
                            vec![b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ".to_vec(), b"the end".to_vec()],
                            true,
                        ),
                        "/head" => (vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec()], false),
                        "/nothing" => (vec![b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()], false),
                        "/early" => (
                            vec![b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal".to_vec()],
                            false,
                        ),
                        "/listed" => (
                            vec![b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok".to_vec()],
                            false,
                        ),
                        "/pieces" => {
                            let mut parts = vec![b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n".to_vec()];
                            parts.extend((0..3).map(|i| vec![b'0' + i; 100_000]));
                            (parts, false)
                        }
                        "/chunks" => (
                            vec![
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab".to_vec(),
                                b"cd\r\n3;ext=1\r\nefg\r".to_vec(),
                                b"\n0\r\nx-trailer: t\r\n\r\n".to_vec(),
                            ],
                            false,
                        ),
                        "/te" => (
                            vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 99\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec()],
                            false,
                        ),
                        "/conn-cl" => (
                            vec![b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello".to_vec()],
                            false,
                        ),
                        "/status42" => (vec![b"HTTP/1.1 042 Odd\r\nContent-Length: 0\r\n\r\n".to_vec()], false),
                        "/short" => (vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()], true),
                        "/garbage" => (vec![b"NOT HTTP AT ALL\r\n\r\n".to_vec()], true),
                        _ => (vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()], false),
                    }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_framing_is_relayed() {
    let (addr, connections) = framing_upstream().await;
    let h = Harness::with(|c| c.workers = 1).await;
    h.forward_all("raw", &[addr]).await;
    let c = Harness::client();
    let get = |p: &str| c.get(format!("{}{p}", h.url)).send();

    // Framings that leave the upstream connection reusable: all on one connection.
    let r = get("/x").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = c.head(format!("{}/head", h.url)).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["content-length"].to_str().unwrap()
        ),
        (200, "5")
    );
    assert_eq!(r.text().await.unwrap(), "");
    let r = get("/nothing").await.unwrap();
    assert_eq!(r.status(), 204);
    let r = get("/early").await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "final".to_string())
    );
    let r = get("/listed").await.unwrap();
    let hs = r.headers().clone();
    assert!(
        !hs.contains_key("x-secret") && !hs.contains_key("keep-alive"),
        "{hs:?}"
    );
    assert_eq!(hs["x-kept"], "yes");
    let body = get("/pieces").await.unwrap().bytes().await.unwrap();
    assert_eq!(body.len(), 300_000);
    assert!(
        body[..100_000].iter().all(|&b| b == b'0') && body[200_000..].iter().all(|&b| b == b'2')
    );
    let r = get("/chunks").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "abcdefg");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "all on one upstream connection"
    );

    // A body delimited by the upstream closing: the client's connection closes with it.
    let r = get("/until-close").await.unwrap();
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(r.text().await.unwrap(), "until the end");
    // A body cut short reaches the client as an error, not as a complete response.
    let r = get("/short").await.unwrap();
    assert!(
        r.bytes().await.is_err(),
        "a body shorter than its length must not look whole"
    );
    // A status line HTTP does not allow: 503, as for any response that is not HTTP.
    let r = get("/status42").await.unwrap();
    assert_eq!(r.status(), 503);
    // Not HTTP: 503 naming the upstream.
    let r = get("/garbage").await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-epoxy-error"], "upstream-reset");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["upstream"], "raw");
    // And the gateway goes on; all of this on the fast path.
    assert_eq!(get("/x").await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(handoffs(&h).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
    let (h, a) = echo_gateway().await;
    let c = Harness::client();
    // An idle keep-alive connection...
    let mut idle = TcpStream::connect(h.handle.addr).await.unwrap();
    idle.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // ...and a request in flight when the shutdown starts.
    let slow = tokio::spawn({
        let url = format!("{}/slow/600", h.url);
        let c = c.clone();
        async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let Harness { handle, dir, .. } = h;
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .unwrap();
    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "the request in flight was served"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the drain waited {:?}: an idle connection held it",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(1), idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection was closed")
        .unwrap_or(0);
    assert!(n < 4096);
    assert_eq!(a.hits(), 2);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_at_every_stage() {
    let a = upstream::start("a");
    let h = Harness::with(|c| c.header_read_timeout = Duration::from_millis(300)).await;
    h.forward_all("a", &[a.host_port()]).await;
    // Closed within `limit`, having answered `answers` requests first.
    async fn cut_off(addr: SocketAddr, first: &[u8], then: &[u8], answers: usize) {
        let started = std::time::Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(first).await.unwrap();
        if !then.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            s.write_all(then).await.unwrap();
        }
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the gateway kept a slow client: {:?}",
                    String::from_utf8_lossy(first)
                )
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(responses(&text).len(), answers, "{text}");
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "cut off too early"
        );
    }
    // Nothing at all; half a head; half a head after a first request; half a body.
    cut_off(h.handle.addr, b"", b"", 0).await;
    cut_off(h.handle.addr, b"GET / HTTP/1.1\r\nHo", b"", 0).await;
    cut_off(
        h.handle.addr,
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /2 HTTP/1.1\r\n",
        1,
    )
    .await;
    cut_off(
        h.handle.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
        b"de",
        0,
    )
    .await;
    // A keep-alive connection idle between requests is not cut off by the header timeout.
    let mut s = TcpStream::connect(h.handle.addr).await.unwrap();
    for i in 0..2 {
        s.write_all(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "request {i}");
        let mut rest = vec![0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut rest)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_that_is_no_request_target_is_refused_not_sent() {
    let (h, a) = echo_gateway().await;
    let routes = r#"    - matchers: [{prefix: /space/}]
      options: {prefixRewrite: '/a b/'}
      routeAction: {single: {upstream: {name: a}}}
"#;
    h.serve("a", &[a.host_port()], routes).await;
    let text = raw(
        h.handle.addr,
        b"GET /space/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-epoxy-error: bad-request"),
        "{text}"
    );
    assert_eq!(a.hits(), 0, "nothing reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_is_the_gateways_whatever_functions_and_routes_do() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let upstream = format!(
        r#"{}    serviceSpec:
      rest:
        transformations:
          asPost:
            headers:
              ':method': {{text: POST}}
              ':path': {{text: '/as-post'}}
          asHead:
            headers:
              ':method': {{text: HEAD}}
              ':path': {{text: '/as-head'}}
          byHeaders:
            headers:
              ':path': {{text: '/by/{{{{ default(hop, "none") }}}}/{{{{ default(pet, "none") }}}}'}}
"#,
        static_upstream("a", &[a.host_port()])
    );
    let routes = r#"    - matchers: [{prefix: /fn-post}]
      routeAction: {single: {upstream: {name: a}, destinationSpec: {rest: {functionName: asPost}}}}
    - matchers: [{prefix: /fn-head}]
      routeAction: {single: {upstream: {name: a}, destinationSpec: {rest: {functionName: asHead}}}}
    - matchers: [{prefix: /by-headers}]
      routeAction:
        single:
          upstream: {name: a}
          destinationSpec:
            rest:
              functionName: byHeaders
              parameters: {headers: {keep-alive: '{hop}', x-pet: '{pet}'}}
    - matchers: [{prefix: /strip}]
      options:
        headerManipulation:
          responseHeadersToRemove: [content-length]
          requestHeadersToAdd: [{header: {key: transfer-encoding, value: chunked}}]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: a}}}
"#;
    h.apply(&format!(
        "{upstream}---\n{}",
        vs("default", "['*']", routes)
    ))
    .await;
    let next = "GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // HEAD from the client, POST upstream: the client gets the head only.
    let text = raw(
        h.handle.addr,
        format!("HEAD /fn-post HTTP/1.1\r\nHost: x\r\n\r\n{next}").as_bytes(),
    )
    .await;
    let rs = responses(&text);
    assert_eq!(rs.len(), 2, "{text}");
    assert_eq!(rs[0].2, "", "no body after a response to HEAD: {text}");
    assert_eq!(echoed_path(&rs[1].2), "/next");
    // GET from the client, HEAD upstream: an empty body, said so.
    let text = raw(
        h.handle.addr,
        format!("GET /fn-head HTTP/1.1\r\nHost: x\r\n\r\n{next}").as_bytes(),
    )
    .await;
    let rs = responses(&text);
    assert_eq!(rs.len(), 2, "{text}");
    assert!(rs[0].1.contains("content-length: 0"), "{text}");
    assert_eq!(echoed_path(&rs[1].2), "/next");
    // The same through hyper (HTTP/1.0 goes there): `content-length: 0` too (hyper's server
    // frames the body it is given, whatever length the upstream's head said).
    let text = raw(h.handle.addr, b"GET /fn-head HTTP/1.0\r\nHost: x\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.contains("content-length: 0"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
    // A function's extractors see no hop-by-hop header, on either path.
    let ask = |version: &str| {
        format!(
            "GET /by-headers HTTP/{version}\r\nHost: x\r\nKeep-Alive: 5\r\nX-Pet: 7\r\nConnection: close\r\n\r\n"
        )
    };
    for version in ["1.1", "1.0"] {
        let text = raw(h.handle.addr, ask(version).as_bytes()).await;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert_eq!(echoed_path(body), "/by/none/7", "HTTP/{version}: {text}");
    }
    // A route that removes `content-length` from responses and adds `transfer-encoding` to
    // requests changes neither framing.
    let text = raw(
        h.handle.addr,
        format!("POST /strip HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello{next}")
            .as_bytes(),
    )
    .await;
    let rs = responses(&text);
    assert_eq!(rs.len(), 2, "{text}");
    assert!(rs[0].1.contains("content-length: "), "{text}");
    let v: Value = serde_json::from_str(&rs[0].2).unwrap();
    assert_eq!(v["body"], "hello");
    assert!(v["headers"].get("transfer-encoding").is_none(), "{v}");
    assert_eq!(echoed_path(&rs[1].2), "/next");
    // Two HTTP/1.0 requests above went to hyper; nothing else did.
    assert_eq!(handoffs(&h).await, 2);
    // A target the `http` crate refuses goes to hyper, which answers 400.
    let text = raw(
        h.handle.addr,
        b"GET /a<b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(handoffs(&h).await, 3);
}
