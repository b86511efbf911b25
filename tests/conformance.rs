//! The gateway against malformed and unusual HTTP/1.1 (RFC 9110/9112), with nginx 1.22 and
//! Envoy as the reference. Every test runs on both transports: the HTTP/1.1 fast path
//! (`gateway::h1`, which hands what it does not serve to hyper) and hyper alone
//! (`fast_path: false`), and expects the same answers from both.
//!
//! Where epoxy differs from nginx on purpose:
//! - a request with two `Host` headers is 400 (nginx answers it too, with 400); a request whose
//!   target is absolute is forwarded with `Host` made from the target (nginx passes
//!   `$proxy_host` by default; epoxy keeps the client's authority, as Envoy does);
//! - a malformed chunked response is cut where it goes wrong and both connections are closed
//!   (nginx does the same, logging "upstream sent invalid chunked response");
//! - request heads are limited to 64 KiB in all (nginx: 8 KiB per line, 32 KiB in all), and
//!   the answer is 431 where nginx answers 400/414.

mod common;
use common::gw::{Harness, static_upstream, vs};
use common::upstream;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway on one transport: the fast path in front (`true`), or hyper alone.
async fn gateway(fast_path: bool) -> Harness {
    Harness::with(|c| c.fast_path = fast_path).await
}

/// Writes `pieces` on a new connection (a pause between them) and reads until it closes.
async fn exchange(addr: SocketAddr, pieces: &[&[u8]]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if s.write_all(p).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the gateway should close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_of(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Two virtual hosts on two echo upstreams: `public.example` on `public`, the rest
/// (`admin.example` and `*`) on `admin` and `other`.
async fn two_hosts(h: &Harness) -> [upstream::Upstream; 3] {
    let ups = [
        upstream::start("public"),
        upstream::start("admin"),
        upstream::start("other"),
    ];
    let mut yaml = String::new();
    for (u, domains) in ups
        .iter()
        .zip(["['public.example']", "['admin.example']", "['*']"])
    {
        let route = format!(
            "    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: {}}}}}}}\n",
            u.name
        );
        yaml.push_str(&static_upstream(&u.name, &[u.host_port()]));
        yaml.push_str("---\n");
        yaml.push_str(&vs(&u.name, domains, &route));
        yaml.push_str("---\n");
    }
    h.apply(yaml.trim_end_matches("---\n")).await;
    ups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_targets_are_routed_and_forwarded_by_their_authority() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let ups = two_hosts(&h).await;
        let text = exchange(
            h.handle.addr,
            &[b"GET http://public.example/abs?q=1 HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n"],
        )
        .await;
        assert_eq!(status_of(&text), 200, "fast={fast}: {text}");
        let v: Value = serde_json::from_str(body_of(&text)).unwrap();
        assert_eq!(v["server"], "public", "fast={fast}: routed by the target");
        assert_eq!(
            v["headers"]["host"], "public.example",
            "fast={fast}: Host from the target"
        );
        assert_eq!(v["path"], "/abs?q=1");
        assert_eq!(ups[1].hits(), 0, "fast={fast}: nothing reached admin");

        // HTTP/2: `:authority` names the host, a `host` header that disagrees does not.
        let c = common::http()
            .http2_prior_knowledge()
            .resolve("public.example", h.handle.addr)
            .build()
            .unwrap();
        let port = h.handle.addr.port();
        let r = c
            .get(format!("http://public.example:{port}/h2"))
            .header("host", "admin.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["server"], "public", "fast={fast}");
        assert_eq!(v["headers"]["host"], format!("public.example:{port}"));
        assert_eq!(ups[1].hits(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_or_none_on_http11_are_refused() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let a = upstream::start("a");
        h.forward_all("a", &[a.host_port()]).await;
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        ] {
            let text = exchange(h.handle.addr, &[raw]).await;
            assert_eq!(status_of(&text), 400, "fast={fast}: {raw:?} -> {text}");
            assert!(
                text.to_ascii_lowercase()
                    .contains("x-epoxy-error: bad-request"),
                "{text}"
            );
        }
        assert_eq!(a.hits(), 0, "fast={fast}: nothing forwarded");
        // HTTP/1.0 has no Host requirement.
        let text = exchange(h.handle.addr, &[b"GET /old HTTP/1.0\r\n\r\n"]).await;
        assert_eq!(status_of(&text), 200, "fast={fast}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_qualified_host_matches_its_virtual_host() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let _ups = two_hosts(&h).await;
        for host in ["admin.example.", "ADMIN.example.:8080", "admin.example"] {
            let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let text = exchange(h.handle.addr, &[req.as_bytes()]).await;
            let v: Value = serde_json::from_str(body_of(&text)).unwrap();
            assert_eq!(v["server"], "admin", "fast={fast}, host {host}");
        }
        let text = exchange(
            h.handle.addr,
            &[b"GET / HTTP/1.1\r\nHost: .\r\nConnection: close\r\n\r\n"],
        )
        .await;
        let v: Value = serde_json::from_str(body_of(&text)).unwrap();
        assert_eq!(v["server"], "other", "fast={fast}: a lone dot is no name");
    }
}

/// An upstream that answers `/bad…` with a broken chunked body (and a forged response after
/// it), `/nocontent` and `/notmodified` with a transfer coding they must not have, and the rest
/// with `ok`.
fn misframed(path: &str) -> upstream::RawAnswer {
    let forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged";
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let answer = match path {
        "/bad-crlf" => format!("{head}5\r\nhelloX\r\n0\r\n\r\n{forged}"),
        "/bad-lf" => format!("{head}5\nhello\r\n0\r\n\r\n{forged}"),
        "/bad-data-lf" => format!("{head}5\r\nhello\n0\r\n\r\n{forged}"),
        "/bad-size" => format!("{head}fffffffffffffffff1\r\nhello\r\n0\r\n\r\n{forged}"),
        "/nocontent" => {
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
                .into()
        }
        "/notmodified" => {
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"e\"\r\n\r\n".into()
        }
        _ => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into(),
    };
    (vec![answer.into_bytes()], false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_response_is_cut_where_it_goes_wrong() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let (addr, _) = upstream::raw(misframed).await;
        h.forward_all("raw", &[addr]).await;
        for path in ["/bad-crlf", "/bad-lf", "/bad-data-lf", "/bad-size"] {
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"
            );
            let text = exchange(h.handle.addr, &[req.as_bytes()]).await;
            assert!(!text.contains("forged"), "fast={fast} {path}: {text}");
            // The connection ends with the broken response (hyper may not have sent its head
            // yet when the body goes wrong: then nothing comes at all).
            assert!(
                text.matches("HTTP/1.1 ").count() <= 1 && !text.contains("/next"),
                "fast={fast} {path}: {text}"
            );
            assert!(
                !text.ends_with("0\r\n\r\n"),
                "fast={fast} {path}: no clean end: {text}"
            );
        }
        // The gateway still serves the upstream afterwards.
        let text = exchange(
            h.handle.addr,
            &[b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
        )
        .await;
        assert_eq!(body_of(&text), "ok", "fast={fast}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_content_and_not_modified_carry_no_transfer_coding() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let (addr, _) = upstream::raw(misframed).await;
        h.forward_all("raw", &[addr]).await;
        let text = exchange(
            h.handle.addr,
            &[b"GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n\
                GET /notmodified HTTP/1.1\r\nHost: x\r\n\r\n\
                GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
        )
        .await;
        let heads: Vec<String> = text
            .split("HTTP/1.1 ")
            .skip(1)
            .map(|r| r.to_ascii_lowercase())
            .collect();
        assert_eq!(heads.len(), 3, "fast={fast}: {text}");
        assert!(heads[0].starts_with("204"), "{}", heads[0]);
        assert!(
            !heads[0].contains("transfer-encoding"),
            "fast={fast}: {}",
            heads[0]
        );
        assert!(
            !heads[0].contains("content-length"),
            "fast={fast}: {}",
            heads[0]
        );
        assert!(heads[1].starts_with("304"), "{}", heads[1]);
        assert!(
            !heads[1].contains("transfer-encoding"),
            "fast={fast}: {}",
            heads[1]
        );
        assert!(heads[1].contains("etag: \"e\""), "{}", heads[1]);
        assert!(
            heads[2].ends_with("\r\n\r\nok"),
            "fast={fast}: {}",
            heads[2]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_body_is_the_clients_fault() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let a = upstream::start("a");
        // A route with retries reads the body whole first; one without streams it upstream.
        let routes = "    - matchers: [{prefix: /retried}]\n      routeAction: {single: {upstream: {name: a}}}\n      options: {retries: {retryOn: '5xx,reset', numRetries: 3}}\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: a}}}\n";
        h.serve("a", &[a.host_port()], routes).await;
        let before = h.metrics().await;
        for path in ["/retried", "/streamed"] {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
            );
            let text = exchange(
                h.handle.addr,
                &[head.as_bytes(), b"zz\r\nnot a chunk\r\n\r\n"],
            )
            .await;
            assert_eq!(status_of(&text), 400, "fast={fast} {path}: {text}");
            assert!(text.contains("bad-request"), "{text}");
        }
        assert!(
            a.hits() <= 1,
            "fast={fast}: not retried ({} hits)",
            a.hits()
        );
        let after = h.metrics().await;
        let upstream_5xx = |m: &str| {
            m.lines()
                .find(|l| {
                    l.starts_with("epoxy_upstream_responses_total{upstream=\"a\",class=\"5xx\"}")
                })
                .map(str::to_string)
        };
        assert_eq!(
            upstream_5xx(&after).unwrap_or_default().replace(" 0", ""),
            upstream_5xx(&before).unwrap_or_default().replace(" 0", ""),
            "fast={fast}: not counted against the upstream:\n{after}"
        );
        assert!(
            !after.contains("epoxy_upstream_responses_total{upstream=\"a\",class=\"5xx\"} 1"),
            "{after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_size_limits_hold_however_the_bytes_arrive() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let a = upstream::start("a");
        h.forward_all("a", &[a.host_port()]).await;
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(500 * 1024)
        );
        let big = big.as_bytes();
        let small = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n".as_slice();
        let ways: Vec<Vec<&[u8]>> = vec![
            vec![big],
            big.chunks(1024).collect(),
            big.chunks(64 * 1024).collect(),
            vec![&big[..100], &big[100..]],
            vec![&big[..big.len() - 4], &big[big.len() - 4..]],
            vec![small, big],
        ];
        for (i, pieces) in ways.iter().enumerate() {
            let text = exchange(h.handle.addr, pieces).await;
            let last = text.rsplit("HTTP/1.1 ").next().unwrap_or("");
            assert!(
                last.starts_with("431"),
                "fast={fast}, way {i}: {}",
                &text[..text.len().min(300)]
            );
        }
        assert_eq!(
            a.hits(),
            1,
            "fast={fast}: only the small request went through"
        );
        // Just under the limit goes through.
        let fits = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(60 * 1024)
        );
        let text = exchange(h.handle.addr, &[fits.as_bytes()]).await;
        assert_eq!(status_of(&text), 200, "fast={fast}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_outlive_the_header_timeout() {
    for fast in [true, false] {
        let h = Harness::with(|c| {
            c.fast_path = fast;
            c.header_read_timeout = Duration::from_millis(500);
            c.idle_timeout = Duration::from_secs(2);
        })
        .await;
        let a = upstream::start("a");
        h.forward_all("a", &[a.host_port()]).await;
        // Python's http.client, as a user's client would be: it does not retry a POST on a
        // connection the server closed.
        let script = r#"
import http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
c.request("GET", "/one"); r = c.getresponse(); r.read(); print(r.status)
time.sleep(1.2)
c.request("POST", "/two", body=b"after a pause"); r = c.getresponse(); r.read(); print(r.status)
time.sleep(3)
try:
    c.request("POST", "/three", body=b"too late"); r = c.getresponse(); r.read(); print(r.status)
except Exception as e:
    print("closed")
"#;
        let addr = h.handle.addr;
        let out = tokio::process::Command::new("python3")
            .args([
                "-c",
                script,
                &addr.ip().to_string(),
                &addr.port().to_string(),
            ])
            .output()
            .await
            .expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.split_whitespace().collect::<Vec<_>>(),
            ["200", "200", "closed"],
            "fast={fast}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_host_rewrite_sends_the_upstream_hosts_name() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let a = upstream::start("a");
        let routes = "    - matchers: [{prefix: /auto}]\n      routeAction: {single: {upstream: {name: a}}}\n      options: {autoHostRewrite: true}\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: a}}}\n";
        h.serve("a", &[a.host_port()], routes).await;
        let host_seen = |path: &'static str| {
            let url = format!("{}{path}", h.url);
            async move {
                let r = Harness::client().get(url).header("host", "client.example");
                let v: Value = r.send().await.unwrap().json().await.unwrap();
                v["headers"]["host"].as_str().unwrap_or("").to_string()
            }
        };
        assert_eq!(host_seen("/auto").await, a.host_port(), "fast={fast}");
        assert_eq!(host_seen("/plain").await, "client.example", "fast={fast}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_response_before_a_shutdown_says_connection_close() {
    for fast in [true, false] {
        let h = gateway(fast).await;
        let a = upstream::start("a");
        h.forward_all("a", &[a.host_port()]).await;
        let mut s = TcpStream::connect(h.handle.addr).await.unwrap();
        s.write_all(b"GET /slow/600 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let Harness { handle, dir, .. } = h;
        let stopping = tokio::task::spawn_blocking(move || handle.shutdown());
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .expect("the connection closes after the response")
            .unwrap();
        let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "fast={fast}: {text}");
        assert!(text.contains("connection: close"), "fast={fast}: {text}");
        stopping.await.unwrap();
        drop(dir);
    }
}
