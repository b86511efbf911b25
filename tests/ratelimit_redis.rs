//! Global rate limits (RateLimitConfig) counted in a real `redis-server` shared by two
//! `epoxy gateway` processes, one on the HTTP/1.1 fast path and one on hyper alone
//! (`--no-fast-path`): one budget for both, 429 with `x-envoy-ratelimited` past it; and Redis
//! stopped: requests let through by default, denied with `--ratelimit-deny-on-fail`, both
//! counted in `/metrics`.

mod common;

use common::Epoxy;
use common::gw::{static_upstream, vs};
use common::upstream;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, without persistence; stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (Debian's redis-server package) is needed for this test");
            let mut r = Redis {
                child,
                port,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if r.ping() {
                    return r;
                }
                if let Ok(Some(_)) = r.child.try_wait() {
                    break; // the port was taken meanwhile: another one
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            r.stop();
        }
        panic!("redis-server did not start");
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `epoxy gateway` process: its traffic and admin URLs.
struct Gateway {
    child: Child,
    url: String,
    admin: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn gateway(e: &Epoxy, args: &[&str]) -> Gateway {
    let mut c = e
        .command()
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--workers",
            "2",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn epoxy gateway");
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let urls: Vec<String> = line
        .split(|ch: char| ch.is_whitespace() || ch == '(' || ch == ')')
        .filter(|w| w.starts_with("http://"))
        .map(str::to_string)
        .collect();
    assert_eq!(urls.len(), 2, "{line:?}");
    Gateway {
        child: c,
        url: urls[0].clone(),
        admin: urls[1].clone(),
    }
}

async fn status(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap) {
    let mut r = common::http().build().unwrap().get(url);
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

/// Waits until the gateway serves the unlimited route `/health`.
async fn ready(g: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&format!("{}/health", g.url), &[]).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the gateway never served the routes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(g: &Gateway, name: &str) -> u64 {
    let text = common::http()
        .build()
        .unwrap()
        .get(format!("{}/metrics", g.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// The petstore behind two limits: 5 an hour for everyone on `/pets`, 2 an hour per
/// `x-api-user` on `/users`; `/health` is not limited.
fn config(upstream: &str) -> String {
    let rlc = |name: &str, raw: &str| {
        format!(
            "apiVersion: ratelimit.solo.io/v1alpha1\nkind: RateLimitConfig\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  raw:\n{raw}---\n"
        )
    };
    let global = rlc(
        "global",
        "    descriptors:\n    - {key: generic_key, value: petstore, rateLimit: {unit: HOUR, requestsPerUnit: 5}}\n    rateLimits:\n    - actions: [{genericKey: {descriptorValue: petstore}}]\n",
    );
    let per_user = rlc(
        "per-user",
        "    descriptors:\n    - {key: user, rateLimit: {unit: HOUR, requestsPerUnit: 2}}\n    rateLimits:\n    - actions: [{requestHeaders: {headerName: x-api-user, descriptorKey: user}}]\n",
    );
    let route = |prefix: &str, refs: &str| {
        let mut r = format!(
            "    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: web}}}}}}\n"
        );
        if !refs.is_empty() {
            r.push_str(&format!(
                "      options:\n        rateLimitConfigs: {{refs: [{{name: {refs}}}]}}\n"
            ));
        }
        r
    };
    let routes = [
        route("/health", ""),
        route("/pets", "global"),
        route("/users", "per-user"),
    ]
    .concat();
    format!(
        "{global}{per_user}{}---\n{}",
        static_upstream("web", &[upstream.to_string()]),
        vs("default", "['*']", &routes)
    )
}

/// Not in the last seconds of an hour, so that a test's requests share one window.
async fn not_near_the_hour() {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 3600;
    if s > 3590 {
        tokio::time::sleep(Duration::from_secs(3600 - s + 1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_budget_in_redis() {
    let redis = Redis::start();
    let up = upstream::start("web");
    let e = Epoxy::new();
    e.apply(&config(&up.host_port())).ok();
    not_near_the_hour().await;
    let a = gateway(&e, &["--redis", &redis.url()]);
    let b = gateway(&e, &["--redis", &redis.url(), "--no-fast-path"]);
    ready(&a).await;
    ready(&b).await;

    let mut ok = 0;
    let mut limited = 0;
    for i in 0..8 {
        let g = if i % 2 == 0 { &a } else { &b };
        let (s, h) = status(&format!("{}/pets", g.url), &[]).await;
        match s {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(h.get("x-envoy-ratelimited").unwrap(), "true");
                assert_eq!(h.get("x-ratelimit-limit").unwrap(), "5");
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(
        (ok, limited),
        (5, 3),
        "one budget of 5 across both gateways"
    );
    assert_eq!(
        up.seen("/pets"),
        5,
        "the upstream never sees a limited request"
    );

    // Per user: each value of the header has its own budget.
    let users = |g: &Gateway, u: &'static str| {
        let url = format!("{}/users", g.url);
        async move { status(&url, &[("x-api-user", u)]).await.0 }
    };
    assert_eq!(users(&a, "ann").await, 200);
    assert_eq!(users(&b, "ann").await, 200);
    assert_eq!(users(&a, "ann").await, 429);
    assert_eq!(users(&b, "bob").await, 200);
    // No header: no descriptor, not limited (Envoy's requestHeaders action).
    assert_eq!(status(&format!("{}/users", a.url), &[]).await.0, 200);
    assert_eq!(
        metric(&a, "epoxy_policy_global_ratelimited_total").await
            + metric(&b, "epoxy_policy_global_ratelimited_total").await,
        4
    );
    assert_eq!(metric(&a, "epoxy_policy_redis_errors_total").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_fails_open_by_default_and_closed_with_deny_on_fail() {
    let mut redis = Redis::start();
    let up = upstream::start("web");
    let e = Epoxy::new();
    e.apply(&config(&up.host_port())).ok();
    not_near_the_hour().await;
    let open = gateway(&e, &["--redis", &redis.url()]);
    let closed = gateway(
        &e,
        &[
            "--redis",
            &redis.url(),
            "--ratelimit-deny-on-fail",
            "--no-fast-path",
        ],
    );
    ready(&open).await;
    ready(&closed).await;
    assert_eq!(status(&format!("{}/pets", open.url), &[]).await.0, 200);
    assert_eq!(status(&format!("{}/pets", closed.url), &[]).await.0, 200);

    redis.stop();
    for _ in 0..3 {
        assert_eq!(
            status(&format!("{}/pets", open.url), &[]).await.0,
            200,
            "fail open"
        );
        assert_eq!(
            status(&format!("{}/pets", closed.url), &[]).await.0,
            500,
            "denyOnFail"
        );
    }
    assert_eq!(
        up.seen("/pets"),
        2 + 3,
        "only the fail-open gateway's requests went on"
    );
    assert_eq!(
        metric(&open, "epoxy_policy_redis_failed_open_total").await,
        3
    );
    assert_eq!(
        metric(&closed, "epoxy_policy_redis_failed_closed_total").await,
        3
    );
    assert!(metric(&open, "epoxy_policy_redis_errors_total").await >= 3);
}

fn auth(value: &str) -> [(&'static str, &str); 1] {
    [("authorization", value)]
}

/// A GET of `url` with `headers`, from the loopback address `from` (127.0.0.x): its status.
async fn status_from(from: [u8; 4], url: &str, headers: &[(&str, &str)]) -> u16 {
    let client = common::http()
        .local_address(std::net::IpAddr::from(from))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut r = client.get(url);
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Gloo's `ratelimitBasic` (per user for a request external auth identified, per client
/// address otherwise) and the staged RateLimitConfig references: `rateLimitEarlyConfigs`
/// counts before auth (refused requests spend the budget), `rateLimitRegularConfigs` after
/// it. Two gateways, fast path and hyper, on one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_basic_and_staged_config_refs() {
    use common::keys::{basic, htpasswd};
    let redis = Redis::start();
    let up = upstream::start("web");
    let e = Epoxy::new();
    let (s1, h1) = htpasswd("alice", "a-pass");
    let (s2, h2) = htpasswd("bob", "b-pass");
    let secret = |name: &str, key: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system}}\ntype: extauth.solo.io/apikey\nstringData: {{api-key: '{key}'}}\n---\n"
        )
    };
    let rlc = |name: &str| {
        format!(
            "apiVersion: ratelimit.solo.io/v1alpha1\nkind: RateLimitConfig\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  raw:\n    descriptors:\n    - {{key: generic_key, value: {name}, rateLimit: {{unit: HOUR, requestsPerUnit: 2}}}}\n    rateLimits:\n    - actions: [{{genericKey: {{descriptorValue: {name}}}}}]\n---\n"
        )
    };
    let extra = format!(
        "{}{}{}{}apiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: users, namespace: gloo-system}}\nspec:\n  configs:\n  - basicAuth:\n      realm: pets\n      apr:\n        users:\n          alice: {{salt: '{s1}', hashedPassword: '{h1}'}}\n          bob: {{salt: '{s2}', hashedPassword: '{h2}'}}\n---\napiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: keys, namespace: gloo-system}}\nspec:\n  configs:\n  - apiKeyAuth: {{apiKeySecretRefs: [{{name: key-one}}, {{name: key-two}}]}}\n---\n",
        secret("key-one", "k-one-123"),
        secret("key-two", "k-two-456"),
        rlc("early"),
        rlc("regular"),
    );
    let route = |prefix: &str, options: &str| {
        format!(
            "    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: web}}}}}}\n      options: {{{options}}}\n"
        )
    };
    let hour = |n: u32| format!("{{unit: HOUR, requestsPerUnit: {n}}}");
    let routes = [
        "    - matchers: [{prefix: /health}]\n      routeAction: {single: {upstream: {name: web}}}\n"
            .to_string(),
        route("/open", &format!("ratelimitBasic: {{anonymousLimits: {}}}", hour(2))),
        route(
            "/users",
            &format!(
                "extauth: {{configRef: {{name: users}}}}, ratelimitBasic: {{authorizedLimits: {}, anonymousLimits: {}}}",
                hour(2),
                hour(1)
            ),
        ),
        route(
            "/keys",
            &format!(
                "extauth: {{configRef: {{name: keys}}}}, ratelimitBasic: {{authorizedLimits: {}}}",
                hour(1)
            ),
        ),
        route(
            "/early",
            "extauth: {configRef: {name: users}}, rateLimitEarlyConfigs: {refs: [{name: early}]}",
        ),
        route(
            "/regular",
            "extauth: {configRef: {name: users}}, rateLimitRegularConfigs: {refs: [{name: regular}]}",
        ),
    ]
    .concat();
    e.apply(&format!(
        "{extra}{}---\n{}",
        static_upstream("web", &[up.host_port()]),
        vs("default", "['*']", &routes)
    ))
    .ok();
    not_near_the_hour().await;
    let a = gateway(&e, &["--redis", &redis.url()]);
    let b = gateway(&e, &["--redis", &redis.url(), "--no-fast-path"]);
    ready(&a).await;
    ready(&b).await;
    let one = [127, 0, 0, 1];
    let get = |g: &Gateway, path: &str| format!("{}{path}", g.url);

    // Anonymous: per client address, across both gateways.
    assert_eq!(status_from(one, &get(&a, "/open"), &[]).await, 200);
    assert_eq!(status_from(one, &get(&b, "/open"), &[]).await, 200);
    assert_eq!(status_from(one, &get(&a, "/open"), &[]).await, 429);
    assert_eq!(
        status_from([127, 0, 0, 2], &get(&b, "/open"), &[]).await,
        200,
        "another address has its own budget"
    );

    // Authorized: per user (the basic-auth user), not per address.
    let alice = basic("alice", "a-pass");
    let bob = basic("bob", "b-pass");
    let wrong = basic("alice", "nope");
    for (g, want) in [(&a, 200), (&b, 200), (&a, 429)] {
        assert_eq!(
            status_from(one, &get(g, "/users"), &auth(&alice)).await,
            want
        );
    }
    let (s, h) = status(&get(&b, "/users"), &auth(&alice)).await;
    assert_eq!(s, 429);
    assert_eq!(h.get("x-envoy-ratelimited").unwrap(), "true");
    assert_eq!(h.get("x-ratelimit-limit").unwrap(), "2");
    assert_eq!(
        status_from(one, &get(&b, "/users"), &auth(&bob)).await,
        200,
        "another user has their own budget"
    );
    assert_eq!(
        status_from(one, &get(&a, "/users"), &auth(&wrong)).await,
        401,
        "auth answers first"
    );

    // API keys: the user is the key's Secret.
    let k1 = [("api-key", "k-one-123")];
    assert_eq!(status_from(one, &get(&a, "/keys"), &k1).await, 200);
    assert_eq!(status_from(one, &get(&b, "/keys"), &k1).await, 429);
    assert_eq!(
        status_from(one, &get(&a, "/keys"), &[("api-key", "k-two-456")]).await,
        200
    );

    // Early: counted before auth, so refused requests spend the budget.
    assert_eq!(status(&get(&a, "/early"), &auth(&wrong)).await.0, 401);
    assert_eq!(status(&get(&b, "/early"), &auth(&wrong)).await.0, 401);
    assert_eq!(
        status(&get(&a, "/early"), &auth(&alice)).await.0,
        429,
        "the early budget went to the refused requests"
    );
    // Regular: counted after auth; refused requests do not count.
    assert_eq!(status(&get(&a, "/regular"), &auth(&wrong)).await.0, 401);
    assert_eq!(status(&get(&b, "/regular"), &auth(&wrong)).await.0, 401);
    for (g, want) in [(&a, 200), (&b, 200), (&a, 429)] {
        assert_eq!(status(&get(g, "/regular"), &auth(&alice)).await.0, want);
    }

    for (path, n) in [
        ("/open", 3),
        ("/users", 3),
        ("/keys", 2),
        ("/early", 0),
        ("/regular", 2),
    ] {
        assert_eq!(
            up.seen(path),
            n,
            "{path}: the upstream never sees a refused request"
        );
    }
    assert_eq!(
        metric(&a, "epoxy_policy_global_ratelimited_total").await
            + metric(&b, "epoxy_policy_global_ratelimited_total").await,
        6
    );
}
