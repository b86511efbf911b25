//! Gloo's `Gateway` kind: listeners made from the store's Gateways (each on its address,
//! serving the virtual services it selects, TLS when `ssl: true`), bound and closed while the
//! gateway runs, a port that cannot be bound reported on that Gateway only, and the Gateway's
//! `httpLocalRatelimit`. Real sockets, a real upstream and a hand-written HTTP/1.1 client;
//! gateway behaviour on both transports (the fast path and hyper alone).

mod common;

use common::Epoxy;
use common::certs::{Ca, tls_secret};
use common::gw::{Harness, static_upstream};
use common::upstream;
use epoxy::api::{Kind, ResourceKey};
use epoxy::store::{Precondition, Store};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A port free now (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn at(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A response as a hand-written client reads it.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One `GET path` with `Host: host` on a new connection (closed after it), in 5 s at most.
async fn get(addr: SocketAddr, host: &str, path: &str) -> Result<Reply, String> {
    let go = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no response head in {text:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        Ok(Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
        })
    };
    tokio::time::timeout(Duration::from_secs(5), go)
        .await
        .map_err(|_| "no answer in 5 s".to_string())?
}

/// Waits (3 s at most) until connecting to `addr` succeeds (`true`) or is refused (`false`).
async fn wait_listening(addr: SocketAddr, listening: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let ok = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .is_ok_and(|c| c.is_ok());
        if ok == listening {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} is {}listening after 3 s",
            if ok { "still " } else { "not " }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn gateway_yaml(name: &str, port: u16, extra: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n{extra}"
    )
}

/// A virtual service for `domain` answering `body` on every path from the upstream `up`.
fn vs_yaml(name: &str, domain: &str, labels: &str, up: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: gloo-system, labels: {{{labels}}}}}\nspec:\n  virtualHost:\n    domains: ['{domain}']\n    routes:\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: {up}}}}}}}\n"
    )
}

/// The upstream `web` on `up`, `vs-a` (a.example, team a) and `vs-b` (b.example, team b).
fn two_virtual_services(up: &upstream::Upstream) -> String {
    format!(
        "{}---\n{}---\n{}",
        static_upstream("web", &[up.host_port()]),
        vs_yaml("vs-a", "a.example", "team: a", "web"),
        vs_yaml("vs-b", "b.example", "team: b", "web"),
    )
}

async fn harness(fast_path: bool) -> Harness {
    Harness::with(|c| c.fast_path = fast_path).await
}

/// Two Gateways on two ports: one naming its virtual service, one selecting by label; each
/// serves only its own, and the default listener (`--listen`) is no longer served.
#[tokio::test]
async fn two_gateways_serve_only_their_virtual_services() {
    for fast_path in [true, false] {
        let h = harness(fast_path).await;
        let up = upstream::start("web");
        let default = at(h.handle.addr.port());
        let (pa, pb) = (free_port(), free_port());
        h.apply(&format!(
            "{}---\n{}---\n{}",
            two_virtual_services(&up),
            gateway_yaml(
                "gw-a",
                pa,
                "  httpGateway:\n    virtualServices: [{name: vs-a, namespace: gloo-system}]\n"
            ),
            gateway_yaml(
                "gw-b",
                pb,
                "  httpGateway:\n    virtualServiceSelector: {team: b}\n"
            ),
        ))
        .await;
        let r = h.reports.borrow().clone();
        for g in ["gw-a", "gw-b"] {
            let st = &r.statuses[&ResourceKey::new(Kind::Gateway, "gloo-system", g)];
            assert_eq!(st.state.as_str(), "Accepted", "{g}: {st:?}");
        }
        let (a, b) = (at(pa), at(pb));
        wait_listening(a, true).await;
        wait_listening(b, true).await;
        assert_eq!(get(a, "a.example", "/x").await.unwrap().status, 200);
        assert_eq!(get(b, "b.example", "/x").await.unwrap().status, 200);
        let wrong = get(a, "b.example", "/x").await.unwrap();
        assert_eq!(wrong.status, 404, "gw-a serves vs-b: {wrong:?}");
        assert_eq!(get(b, "a.example", "/x").await.unwrap().status, 404);
        assert_eq!(up.hits(), 2, "fast_path={fast_path}");
        // With Gateways in the store, the default pair is not served.
        wait_listening(default, false).await;
        // `/routes` and `/ready` follow the first plain listener.
        let routes = Harness::client()
            .get(format!("{}/routes", h.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(routes.contains("vs-a"), "{routes}");
    }
}

/// A Gateway added while the gateway runs starts listening; changed (another selection) it
/// keeps its socket and serves what it now selects; removed, its port closes and the others
/// keep serving.
#[tokio::test]
async fn gateways_are_bound_changed_and_closed_at_runtime() {
    for fast_path in [true, false] {
        let h = harness(fast_path).await;
        let up = upstream::start("web");
        let (pa, pb) = (free_port(), free_port());
        h.apply(&format!(
            "{}---\n{}",
            two_virtual_services(&up),
            gateway_yaml(
                "gw-a",
                pa,
                "  httpGateway: {virtualServiceSelector: {team: a}}\n"
            ),
        ))
        .await;
        let (a, b) = (at(pa), at(pb));
        wait_listening(a, true).await;
        wait_listening(b, false).await;
        // A kept-alive client connection survives a change of selection.
        let mut conn = tokio::net::TcpStream::connect(a).await.unwrap();

        h.apply(&gateway_yaml(
            "gw-b",
            pb,
            "  httpGateway: {virtualServiceSelector: {team: b}}\n",
        ))
        .await;
        wait_listening(b, true).await;
        assert_eq!(get(b, "b.example", "/").await.unwrap().status, 200);

        h.apply(&gateway_yaml(
            "gw-a",
            pa,
            "  httpGateway: {virtualServiceSelector: {team: b}}\n",
        ))
        .await;
        assert_eq!(get(a, "b.example", "/").await.unwrap().status, 200);
        assert_eq!(get(a, "a.example", "/").await.unwrap().status, 404);
        conn.write_all(b"GET /kept HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut buf))
            .await
            .expect("the open connection answers")
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf)
        );

        let key = ResourceKey::new(Kind::Gateway, "gloo-system", "gw-a");
        h.store.delete(&key, Precondition::Any).await.unwrap();
        wait_listening(a, false).await;
        assert_eq!(get(b, "b.example", "/").await.unwrap().status, 200);

        // Moved to another port: the old one closes, the new one serves.
        let pc = free_port();
        h.apply(&gateway_yaml(
            "gw-b",
            pc,
            "  httpGateway: {virtualServiceSelector: {team: b}}\n",
        ))
        .await;
        wait_listening(b, false).await;
        wait_listening(at(pc), true).await;
        assert_eq!(get(at(pc), "b.example", "/").await.unwrap().status, 200);
        assert_eq!(up.hits(), 5, "fast_path={fast_path}");
    }
}

/// A Gateway whose port is taken is Rejected naming the address; the other Gateway serves.
/// Once the port is free, the next change binds it.
#[tokio::test]
async fn a_taken_port_rejects_only_its_gateway() {
    let h = harness(true).await;
    let up = upstream::start("web");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let free = free_port();
    h.apply(&format!(
        "{}---\n{}---\n{}---\n{}",
        static_upstream("web", &[up.host_port()]),
        vs_yaml("vs-a", "a.example", "team: a", "web"),
        gateway_yaml("busy", taken, ""),
        gateway_yaml("fine", free, ""),
    ))
    .await;
    let r = h.reports.borrow().clone();
    let busy = &r.statuses[&ResourceKey::new(Kind::Gateway, "gloo-system", "busy")];
    assert_eq!(busy.state.as_str(), "Rejected", "{busy:?}");
    let reason = busy.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("127.0.0.1:{taken}")) && reason.contains("spec.bindPort"),
        "{reason}"
    );
    let fine = &r.statuses[&ResourceKey::new(Kind::Gateway, "gloo-system", "fine")];
    assert_eq!(fine.state.as_str(), "Accepted", "{fine:?}");
    wait_listening(at(free), true).await;
    assert_eq!(get(at(free), "a.example", "/").await.unwrap().status, 200);

    drop(holder);
    h.apply(&vs_yaml("vs-c", "c.example", "team: c", "web"))
        .await;
    wait_listening(at(taken), true).await;
    assert_eq!(get(at(taken), "c.example", "/").await.unwrap().status, 200);
    let r = h.reports.borrow().clone();
    let busy = &r.statuses[&ResourceKey::new(Kind::Gateway, "gloo-system", "busy")];
    assert_eq!(busy.state.as_str(), "Accepted", "{busy:?}");
}

/// An `ssl: true` Gateway terminates TLS for the virtual services with `sslConfig`; a plain
/// Gateway does not serve them (Gloo's rule), and serves the plain one.
#[tokio::test]
async fn an_ssl_gateway_serves_the_tls_virtual_service() {
    let h = harness(true).await;
    let ca = Ca::new("gateways CA");
    let leaf = ca.leaf(&["secure.example"]);
    let (tls_port, plain_port) = (free_port(), free_port());
    h.apply(&format!(
        "{}---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: secure, namespace: gloo-system}}\nspec:\n  sslConfig:\n    secretRef: {{name: secure-tls, namespace: gloo-system}}\n  virtualHost:\n    domains: ['secure.example']\n    routes:\n    - matchers: [{{prefix: /}}]\n      directResponseAction: {{status: 200, body: 'over tls'}}\n---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: clear, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['clear.example']\n    routes:\n    - matchers: [{{prefix: /}}]\n      directResponseAction: {{status: 200, body: 'in clear'}}\n---\n{}---\n{}",
        tls_secret("gloo-system", "secure-tls", &leaf, None),
        gateway_yaml("https", tls_port, "  ssl: true\n"),
        gateway_yaml("http", plain_port, ""),
    ))
    .await;
    wait_listening(at(tls_port), true).await;
    let client = common::tls::Client::new(&ca.pem(), "secure.example");
    let (status, body) = client.get(at(tls_port), "/").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "over tls"));
    let plain = get(at(plain_port), "clear.example", "/").await.unwrap();
    assert_eq!((plain.status, plain.body.as_str()), (200, "in clear"));
    let not_here = get(at(plain_port), "secure.example", "/").await.unwrap();
    assert_eq!(not_here.status, 404, "{not_here:?}");
}

/// `httpLocalRatelimit`: `maxTokens` requests pass, the next gets 429 with
/// `x-envoy-ratelimited` and never reaches the upstream; `enableXRatelimitHeaders` adds
/// Envoy's `x-ratelimit-*` headers; a route with its own `localRatelimit` is not counted in
/// the Gateway's bucket (Gloo: it overrides the default).
#[tokio::test]
async fn http_local_ratelimit_answers_429_after_max_tokens() {
    for fast_path in [true, false] {
        let h = harness(fast_path).await;
        let up = upstream::start("web");
        let (limited, quiet) = (free_port(), free_port());
        let limit = |headers: bool| {
            format!(
                "  httpGateway:\n    options:\n      httpLocalRatelimit:\n        defaultLimit: {{maxTokens: 3, tokensPerFill: 1, fillInterval: 3600s}}\n        enableXRatelimitHeaders: {headers}\n"
            )
        };
        h.apply(&format!(
            "{}---\n{}---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: own, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['own.example']\n    routes:\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: web}}}}}}\n      options:\n        ratelimit:\n          localRatelimit: {{maxTokens: 100, tokensPerFill: 1, fillInterval: 3600s}}\n---\n{}---\n{}",
            static_upstream("web", &[up.host_port()]),
            vs_yaml("vs-a", "a.example", "team: a", "web"),
            gateway_yaml("limited", limited, &limit(true)),
            gateway_yaml("quiet", quiet, &limit(false)),
        ))
        .await;
        let (l, q) = (at(limited), at(quiet));
        wait_listening(l, true).await;
        wait_listening(q, true).await;
        for i in 0..3 {
            let r = get(l, "a.example", &format!("/ok/{i}")).await.unwrap();
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.header("x-ratelimit-limit"), Some("3"), "{r:?}");
            assert_eq!(
                r.header("x-ratelimit-remaining"),
                Some((2 - i).to_string().as_str()),
                "{r:?}"
            );
        }
        // A route with its own limit is not counted in the Gateway's bucket.
        for _ in 0..2 {
            assert_eq!(get(l, "own.example", "/own").await.unwrap().status, 200);
        }
        let denied = get(l, "a.example", "/denied").await.unwrap();
        assert_eq!(denied.status, 429, "{denied:?}");
        assert_eq!(denied.header("x-envoy-ratelimited"), Some("true"));
        assert_eq!(denied.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(denied.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(up.seen("/denied"), 0, "the upstream saw a denied request");
        assert_eq!(up.seen("/own"), 2);

        // The other Gateway has its own bucket, and no x-ratelimit headers.
        for _ in 0..3 {
            let r = get(q, "a.example", "/q").await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-ratelimit-limit"), None, "{r:?}");
        }
        let denied = get(q, "a.example", "/q-denied").await.unwrap();
        assert_eq!(denied.status, 429);
        assert_eq!(denied.header("x-envoy-ratelimited"), Some("true"));
        assert_eq!(denied.header("x-ratelimit-limit"), None, "{denied:?}");
        assert_eq!(up.seen("/q-denied"), 0);
        assert_eq!(up.seen("/q"), 3);
        let m = h.metrics().await;
        assert!(
            m.contains("epoxy_policy_local_ratelimited_total 2"),
            "{}",
            m.lines()
                .filter(|l| l.contains("ratelimited"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// `epoxy apply` refuses a bad Gateway naming the field; two Gateways on one address are a
/// clear error; `get gateways` lists them (table, YAML); `epoxy gateway` serves the store's
/// Gateway on its port.
#[test]
fn gateways_through_the_cli() {
    let e = Epoxy::new();
    let port = free_port();
    let err = e
        .apply(&gateway_yaml("bad", 0, "  useProxyProto: true\n"))
        .refused();
    assert!(err.contains("spec.bindPort"), "{err}");
    assert!(err.contains("spec.useProxyProto"), "{err}");
    let err = e
        .apply(&gateway_yaml(
            "bad",
            port,
            "  httpGateway:\n    options:\n      httpLocalRatelimit:\n        defaultLimit: {maxTokens: 0, fillInterval: 1s}\n",
        ))
        .refused();
    assert!(
        err.contains("spec.httpGateway.options.httpLocalRatelimit.defaultLimit.maxTokens"),
        "{err}"
    );
    let err = e
        .apply(&gateway_yaml("bad", port, "  tcpGateway: {tcpHosts: []}\n"))
        .refused();
    assert!(err.contains("spec.tcpGateway"), "{err}");
    let err = e
        .apply(&gateway_yaml(
            "bad",
            port,
            "  httpGateway: {virtualServise: []}\n",
        ))
        .refused();
    assert!(err.contains("spec.httpGateway.virtualServise"), "{err}");

    // Gloo's default install's Gateway reads as it is: its Envoy-only fields are kept.
    let out = e
        .apply(
            "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: gateway-proxy, namespace: gloo-system, labels: {app: gloo}}\nspec:\n  bindAddress: '::'\n  bindPort: 8080\n  httpGateway: {}\n  proxyNames: [gateway-proxy]\n  ssl: false\n  useProxyProto: false\n",
        )
        .ok();
    assert!(
        out.contains("gateways/gloo-system/gateway-proxy created"),
        "{out}"
    );
    assert!(e.run(&["delete", "gateway", "gateway-proxy"]).code == 0);

    let out = e
        .apply(&format!(
            "{}---\n{}",
            gateway_yaml(
                "gw",
                port,
                "  httpGateway: {virtualServices: [{name: petstore}]}\n"
            ),
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: petstore, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /}]\n      directResponseAction: {status: 200, body: 'from the gateway resource'}\n"
        ))
        .ok();
    assert!(out.contains("gateways/gloo-system/gw created"), "{out}");
    assert!(e.file("gateways/gloo-system/gw.yaml").exists());
    let err = e.apply(&gateway_yaml("twin", port, "")).refused();
    assert!(
        err.contains("two Gateways cannot listen on one address") && err.contains("gw"),
        "{err}"
    );
    let table = e.run(&["get", "gateways"]).ok();
    let row = table.lines().find(|l| l.starts_with("gw ")).unwrap_or("");
    assert!(
        row.contains(&format!("127.0.0.1:{port}"))
            && row.contains("gloo-system.petstore")
            && row.contains("Accepted"),
        "{table}"
    );
    let yaml = e.run(&["get", "gw", "gw", "-o", "yaml"]).ok();
    assert!(yaml.contains(&format!("bindPort: {port}")), "{yaml}");
    let json = e.run(&["get", "gateway", "-o", "json"]).ok();
    assert!(json.contains("\"virtualServices\""), "{json}");

    // The gateway process listens where the Gateway says (not on --listen).
    let mut child = e
        .gateway("off")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.starts_with("listener gloo-system.gw on") => break Some(l),
            Ok(l) => seen.push(l),
            Err(_) => break None,
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt.block_on(get(at(port), "any.example", "/"));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(found.is_some(), "no listener line in {seen:?}");
    let reply = reply.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "from the gateway resource")
    );
}
