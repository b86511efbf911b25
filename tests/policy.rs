//! First-line policies on the running gateway, on both transports (the HTTP/1.1 fast path in
//! front, and hyper alone): JWT with tokens minted here (valid, expired, foreign audience,
//! foreign key, rotated remote keys), basic auth with `htpasswd`'s apr1 hashes, pass-through
//! auth to a real auth server (allowing, denying, down), CORS preflights, local rate limits.
//! Each test checks that the upstream never sees a request that was denied.

mod common;
use common::gw::{Harness, static_upstream, vs};
use common::keys::{self, KeyPair, basic, htpasswd};
use common::upstream::{self, Upstream};
use jsonwebtoken::Algorithm;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

async fn gateway(fast_path: bool) -> Harness {
    Harness::with(|c| c.fast_path = fast_path).await
}

/// The upstream `web`, the virtual service `default` on every domain with `vhost_options`
/// (YAML at the indentation of `options:`'s children, 6 spaces) and `routes`, and `extra`
/// documents.
async fn serve(h: &Harness, up: &Upstream, vhost_options: &str, routes: &str, extra: &str) {
    let mut doc = vs("default", "['*']", routes);
    if !vhost_options.is_empty() {
        doc = doc.replacen(
            "    routes:\n",
            &format!("    options:\n{vhost_options}    routes:\n"),
            1,
        );
    }
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("{extra}\n---\n")
    };
    h.apply(&format!(
        "{extra}{}---\n{doc}",
        static_upstream("web", &[up.host_port()])
    ))
    .await;
}

/// A route on `prefix` to `web`, with route options (YAML at 8 spaces).
fn route(prefix: &str, options: &str) -> String {
    let mut r = format!(
        "    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: web}}}}}}\n"
    );
    if !options.is_empty() {
        r.push_str(&format!("      options:\n{options}"));
    }
    r
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, n: &str) -> &str {
        self.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The request as the upstream echoed it.
    fn echo(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(h: &Harness, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut r = Harness::client().request(method.parse().unwrap(), format!("{}{path}", h.url));
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    let resp = r.send().await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

async fn get(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(h, "GET", path, headers).await
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A provider `p` with an inline key (JSON-quoted, so that a PEM's lines stay intact).
fn local_provider(key: &str, extra: &str) -> String {
    format!(
        "jwtStaged:\n  beforeExtAuth:\n    providers:\n      p:\n        issuer: https://issuer.example\n        audiences: [petstore]\n        jwks:\n          local:\n            key: {}\n{}",
        serde_json::to_string(key).unwrap(),
        indent(extra, 8)
    )
}

// ---------------------------------------------------------------- JWT

async fn jwt_local_pem(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let key = KeyPair::new(Algorithm::RS256, "k1");
    let other = KeyPair::new(Algorithm::RS256, "k1");
    let opts = local_provider(
        &key.public,
        "claimsToHeaders:\n- {claim: sub, header: x-user}\n",
    );
    serve(&h, &up, &indent(&opts, 6), &route("/", ""), "").await;

    let good = key.sign(&keys::claims(
        "https://issuer.example",
        "petstore",
        "alice",
        false,
    ));
    let r = get(&h, "/pets", &[("authorization", &format!("Bearer {good}"))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.echo();
    assert_eq!(seen["headers"]["x-user"], "alice", "claimsToHeaders");
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the token is removed unless keepToken"
    );
    assert_eq!(up.hits(), 1);

    // Signed by openssl alone: the gateway verifies what another implementation signed.
    let by_openssl = key.sign_with_openssl(&keys::claims(
        "https://issuer.example",
        "petstore",
        "bob",
        false,
    ));
    let r = get(
        &h,
        "/pets",
        &[("authorization", &format!("Bearer {by_openssl}"))],
    )
    .await;
    assert_eq!(
        (r.status, r.echo()["headers"]["x-user"].as_str()),
        (200, Some("bob"))
    );
    assert_eq!(up.hits(), 2);

    let denied = [
        ("missing", None),
        (
            "expired",
            Some(key.sign(&keys::claims(
                "https://issuer.example",
                "petstore",
                "alice",
                true,
            ))),
        ),
        (
            "wrong audience",
            Some(key.sign(&keys::claims(
                "https://issuer.example",
                "other",
                "alice",
                false,
            ))),
        ),
        (
            "wrong issuer",
            Some(key.sign(&keys::claims(
                "https://evil.example",
                "petstore",
                "alice",
                false,
            ))),
        ),
        (
            "wrong key",
            Some(other.sign(&keys::claims(
                "https://issuer.example",
                "petstore",
                "alice",
                false,
            ))),
        ),
        ("garbage", Some("not.a.token".to_string())),
    ];
    for (what, token) in denied {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let r = get(&h, "/pets", &headers).await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        let challenge = r.header("www-authenticate");
        assert!(
            challenge.starts_with("Bearer realm="),
            "{what}: {challenge}"
        );
        assert_eq!(
            challenge.contains("invalid_token"),
            what != "missing",
            "{what}: {challenge}"
        );
    }
    assert_eq!(up.hits(), 2, "the upstream never sees a denied request");
    assert!(
        h.metrics()
            .await
            .contains("epoxy_policy_jwt_denied_total 6")
    );
}

/// A function's template sees the request as the stages left it: a claim set as a header is
/// a variable of the call, a client's own value of that header is not, and a removed token is
/// not there to copy.
async fn function_sees_the_stages_edits(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let key = KeyPair::new(Algorithm::RS256, "k1");
    let opts = local_provider(
        &key.public,
        "claimsToHeaders:\n- {claim: sub, header: x-user}\n",
    );
    let routes = "    - matchers: [{prefix: /who}]\n      routeAction:\n        single:\n          upstream: {name: web}\n          destinationSpec: {rest: {functionName: who, parameters: {headers: {x-user: '{user}', authorization: '{token}'}}}}\n";
    let functions = "    serviceSpec:\n      rest:\n        transformations:\n          who:\n            headers:\n              ':path': {text: '/who/{{ default(user, \"nobody\") }}/{{ default(token, \"none\") }}'}\n";
    let upstream = format!("{}{functions}", static_upstream("web", &[up.host_port()]));
    serve(&h, &up, &indent(&opts, 6), routes, "").await;
    // `web` again, with its function.
    h.apply(&upstream).await;
    let good = key.sign(&keys::claims(
        "https://issuer.example",
        "petstore",
        "alice",
        false,
    ));
    let auth = format!("Bearer {good}");
    let r = get(
        &h,
        "/who",
        &[("authorization", &auth), ("x-user", "mallory")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echo()["path"], "/who/alice/none", "fast_path={fast_path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_sees_the_stages_edits_fast_path() {
    function_sees_the_stages_edits(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_sees_the_stages_edits_hyper() {
    function_sees_the_stages_edits(false).await;
}

#[tokio::test]
async fn jwt_local_pem_fast_path() {
    jwt_local_pem(true).await;
}

#[tokio::test]
async fn jwt_local_pem_hyper() {
    jwt_local_pem(false).await;
}

/// ES256, EdDSA and HS256 keys in one local JWKS; a token verifies only with its own key.
async fn jwt_jwks_algorithms(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let es = KeyPair::new(Algorithm::ES256, "es");
    let ed = KeyPair::new(Algorithm::EdDSA, "ed");
    let claims = keys::claims("https://issuer.example", "petstore", "carol", false);
    let (hs_jwk, hs_token) = keys::hs256(b"a shared secret of 32 bytes or more!", "hs", &claims);
    let set = keys::jwks(&[es.jwk(), ed.jwk(), hs_jwk]);
    let opts = local_provider(&set, "keepToken: true\n");
    serve(&h, &up, &indent(&opts, 6), &route("/", ""), "").await;
    for (alg, token) in [
        ("ES256", es.sign(&claims)),
        ("EdDSA", ed.sign(&claims)),
        ("HS256", hs_token.clone()),
    ] {
        let r = get(&h, "/x", &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(
            r.echo()["headers"]["authorization"],
            format!("Bearer {token}"),
            "keepToken"
        );
    }
    // A key of the right algorithm but not in the set, under a kid that is.
    let stranger = KeyPair::new(Algorithm::ES256, "es");
    let r = get(
        &h,
        "/x",
        &[(
            "authorization",
            &format!("Bearer {}", stranger.sign(&claims)),
        )],
    )
    .await;
    assert_eq!(r.status, 401);
    let (_, forged) = keys::hs256(b"another secret, also 32 bytes long", "hs", &claims);
    let r = get(&h, "/x", &[("authorization", &format!("Bearer {forged}"))]).await;
    assert_eq!(r.status, 401);
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn jwt_jwks_algorithms_fast_path() {
    jwt_jwks_algorithms(true).await;
}

#[tokio::test]
async fn jwt_jwks_algorithms_hyper() {
    jwt_jwks_algorithms(false).await;
}

/// Token sources (a header with a prefix, a query parameter), a route that disables JWT.
async fn jwt_sources_and_disable(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let key = KeyPair::new(Algorithm::RS256, "k");
    let opts = local_provider(
        &key.public,
        "tokenSource:\n  headers: [{header: x-token, prefix: 'Token '}]\n  queryParams: [jwt]\n",
    );
    let routes = [
        route(
            "/public",
            "        jwtStaged: {beforeExtAuth: {disable: true}}\n",
        ),
        route("/", ""),
    ]
    .concat();
    serve(&h, &up, &indent(&opts, 6), &routes, "").await;
    let t = key.sign(&keys::claims(
        "https://issuer.example",
        "petstore",
        "dan",
        false,
    ));
    assert_eq!(
        get(&h, "/public/a", &[]).await.status,
        200,
        "disabled on the route"
    );
    assert_eq!(
        get(&h, "/a", &[("x-token", &format!("Token {t}"))])
            .await
            .status,
        200
    );
    assert_eq!(get(&h, &format!("/a?jwt={t}"), &[]).await.status, 200);
    // Not where this provider looks.
    assert_eq!(
        get(&h, "/a", &[("authorization", &format!("Bearer {t}"))])
            .await
            .status,
        401
    );
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn jwt_sources_and_disable_fast_path() {
    jwt_sources_and_disable(true).await;
}

#[tokio::test]
async fn jwt_sources_and_disable_hyper() {
    jwt_sources_and_disable(false).await;
}

/// A JWKS server whose key set the test replaces (a key rotation).
async fn jwks_server(body: Arc<std::sync::Mutex<String>>, fetches: Arc<AtomicU64>) -> String {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (body, fetches) = (body.clone(), fetches.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let b = body.lock().unwrap().clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            bytes::Bytes::from(b),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

async fn jwt_remote_rotation(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let old = KeyPair::new(Algorithm::RS256, "2025");
    let new = KeyPair::new(Algorithm::RS256, "2026");
    let body = Arc::new(std::sync::Mutex::new(keys::jwks(&[old.jwk()])));
    let fetches = Arc::new(AtomicU64::new(0));
    let url = jwks_server(body.clone(), fetches.clone()).await;
    let opts = format!(
        "jwt:\n  providers:\n    remote:\n      issuer: https://issuer.example\n      jwks:\n        remote:\n          url: {url}\n          cacheDuration: 1s\n"
    );
    serve(&h, &up, &indent(&opts, 6), &route("/", ""), "").await;
    let c = keys::claims("https://issuer.example", "any", "erin", false);
    let (t_old, t_new) = (old.sign(&c), new.sign(&c));
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        get(&h, "/", &[("authorization", &bearer(&t_old))])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&h, "/", &[("authorization", &bearer(&t_new))])
            .await
            .status,
        401
    );
    // The issuer rotates its key: the gateway picks the new set up without a restart.
    *body.lock().unwrap() = keys::jwks(&[new.jwk()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = get(&h, "/", &[("authorization", &bearer(&t_new))])
            .await
            .status;
        if s == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated key was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(&h, "/", &[("authorization", &bearer(&t_old))])
            .await
            .status,
        401,
        "the old key is gone"
    );
    assert!(fetches.load(Ordering::SeqCst) >= 2);
    // Only the requests that passed reached the upstream.
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn jwt_remote_rotation_fast_path() {
    jwt_remote_rotation(true).await;
}

#[tokio::test]
async fn jwt_remote_rotation_hyper() {
    jwt_remote_rotation(false).await;
}

/// A provider `name` with an inline key under `stage` of a staged JWT option `option`, the
/// token read from `header` (with `Bearer `) when given.
fn staged_provider(option: &str, stage: &str, name: &str, key: &str, header: &str) -> String {
    let source = if header.is_empty() {
        String::new()
    } else {
        format!("        tokenSource: {{headers: [{{header: {header}, prefix: 'Bearer '}}]}}\n")
    };
    format!(
        "{option}:\n  {stage}:\n    providers:\n      {name}:\n        issuer: https://issuer.example\n        jwks: {{local: {{key: {}}}}}\n{source}",
        serde_json::to_string(key).unwrap()
    )
}

/// `jwtProvidersStaged` (Gloo's route-level providers): at the virtual host's stage the
/// route's providers replace the virtual host's; at the other stage both run, so a request
/// needs both tokens. Routes without it keep the virtual host's.
async fn jwt_providers_staged(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let vhost_key = KeyPair::new(Algorithm::RS256, "vh");
    let route_key = KeyPair::new(Algorithm::RS256, "rt");
    let vhost = staged_provider("jwtStaged", "beforeExtAuth", "vhost", &vhost_key.public, "");
    let same_stage = staged_provider(
        "jwtProvidersStaged",
        "beforeExtAuth",
        "route",
        &route_key.public,
        "",
    );
    let other_stage = staged_provider(
        "jwtProvidersStaged",
        "afterExtAuth",
        "route",
        &route_key.public,
        "x-route-token",
    );
    let routes = [
        route("/same", &indent(&same_stage, 8)),
        route("/both", &indent(&other_stage, 8)),
        route("/", ""),
    ]
    .concat();
    serve(&h, &up, &indent(&vhost, 6), &routes, "").await;
    let claims = keys::claims("https://issuer.example", "petstore", "erin", false);
    let vt = format!("Bearer {}", vhost_key.sign(&claims));
    let rt = format!("Bearer {}", route_key.sign(&claims));
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);
    let cases: [Case; 9] = [
        ("/plain", &[("authorization", &vt)], 200),
        ("/plain", &[("authorization", &rt)], 401),
        ("/same", &[("authorization", &rt)], 200),
        ("/same", &[("authorization", &vt)], 401),
        ("/same", &[], 401),
        (
            "/both",
            &[("authorization", &vt), ("x-route-token", &rt)],
            200,
        ),
        ("/both", &[("authorization", &vt)], 401),
        ("/both", &[("x-route-token", &rt)], 401),
        (
            "/both",
            &[("authorization", &rt), ("x-route-token", &vt)],
            401,
        ),
    ];
    let mut passed = 0;
    for (path, headers, want) in cases {
        let r = get(&h, path, headers).await;
        assert_eq!(r.status, want, "{path} {headers:?}: {}", r.body);
        if want == 200 {
            passed += 1;
            let seen = r.echo();
            assert!(
                seen["headers"].get("authorization").is_none()
                    && seen["headers"].get("x-route-token").is_none(),
                "the tokens are removed: {seen}"
            );
        } else {
            assert!(r.header("www-authenticate").starts_with("Bearer realm="));
        }
    }
    assert_eq!(
        up.hits(),
        passed,
        "the upstream never sees a denied request"
    );
}

#[tokio::test]
async fn jwt_providers_staged_fast_path() {
    jwt_providers_staged(true).await;
}

#[tokio::test]
async fn jwt_providers_staged_hyper() {
    jwt_providers_staged(false).await;
}

/// What validation says of a virtual service with one route with `options` (YAML).
fn route_problems(options: &str) -> Vec<String> {
    let doc = vs("default", "['*']", &route("/", &indent(options, 8)));
    let set = epoxy::api::parse_resources(
        &format!(
            "{}---\n{doc}",
            static_upstream("web", &["127.0.0.1:1".into()])
        ),
        "t",
    )
    .unwrap();
    let problems = epoxy::api::validate(&set.into_iter().map(|r| (r.key(), r)).collect());
    problems.iter().map(|p| p.to_string()).collect()
}

/// Gloo takes one of `jwt`, `jwtStaged`, `jwtProvidersStaged` on a route; a route's provider
/// is checked like a virtual host's.
#[tokio::test]
async fn jwt_providers_staged_is_checked() {
    let key = KeyPair::new(Algorithm::RS256, "k");
    let providers = staged_provider("jwtProvidersStaged", "afterExtAuth", "r", &key.public, "");
    let bad = staged_provider("jwtProvidersStaged", "afterExtAuth", "r", "not a key", "");
    let cases = [
        (
            format!("{providers}jwtStaged: {{beforeExtAuth: {{disable: true}}}}\n"),
            "spec.virtualHost.routes[0].options.jwtStaged: more than one of",
        ),
        (
            bad,
            "spec.virtualHost.routes[0].options.jwtProvidersStaged.afterExtAuth.providers.r.jwks.local.key",
        ),
    ];
    for (options, want) in cases {
        let text = route_problems(&options);
        assert!(text.iter().any(|p| p.contains(want)), "{want}: {text:?}");
    }
}

/// A virtual service with a key that is no key is refused, naming the field.
#[tokio::test]
async fn jwt_bad_key_is_refused() {
    let h = gateway(true).await;
    let up = upstream::start("web");
    let opts = local_provider(
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
        "",
    );
    let mut doc = vs("default", "['*']", &route("/", ""));
    doc = doc.replacen(
        "    routes:\n",
        &format!("    options:\n{}    routes:\n", indent(&opts, 6)),
        1,
    );
    let set = epoxy::api::parse_resources(
        &format!("{}---\n{doc}", static_upstream("web", &[up.host_port()])),
        "t",
    )
    .unwrap();
    let problems = epoxy::api::validate(&set.into_iter().map(|r| (r.key(), r)).collect());
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|p| p.contains(
            "spec.virtualHost.options.jwtStaged.beforeExtAuth.providers.p.jwks.local.key"
        )),
        "{text:?}"
    );
    drop(h);
}

// ---------------------------------------------------------------- CORS

async fn cors(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let opts = "cors:\n  allowOrigin: [https://shop.example]\n  allowOriginRegex: ['https://[a-z]+\\.pets\\.example']\n  allowMethods: [GET, POST]\n  allowHeaders: [content-type, x-pet]\n  exposeHeaders: [x-upstream]\n  maxAge: '600'\n  allowCredentials: true\n";
    let routes = [
        route("/nocors", "        cors: {disableForRoute: true}\n"),
        route("/", ""),
    ]
    .concat();
    serve(&h, &up, &indent(opts, 6), &routes, "").await;
    let preflight = |origin: &'static str, path: &'static str| {
        let h = &h;
        async move {
            send(
                h,
                "OPTIONS",
                path,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                ],
            )
            .await
        }
    };
    let r = preflight("https://shop.example", "/pets").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://shop.example"
    );
    assert_eq!(r.header("access-control-allow-methods"), "GET,POST");
    assert_eq!(
        r.header("access-control-allow-headers"),
        "content-type,x-pet"
    );
    assert_eq!(r.header("access-control-max-age"), "600");
    assert_eq!(r.header("access-control-allow-credentials"), "true");
    let r = preflight("https://cats.pets.example", "/pets").await;
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, "https://cats.pets.example")
    );
    assert_eq!(up.hits(), 0, "preflights are answered by the gateway");

    // Another origin: Envoy passes the request on, without CORS headers (the browser refuses).
    let r = preflight("https://evil.example", "/pets").await;
    assert_eq!(r.header("access-control-allow-origin"), "");
    assert_eq!(up.hits(), 1);
    // The actual request from an allowed origin: its response says so.
    let r = get(&h, "/pets", &[("origin", "https://shop.example")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://shop.example"
    );
    assert_eq!(r.header("access-control-expose-headers"), "x-upstream");
    assert_eq!(r.header("access-control-allow-credentials"), "true");
    // Disabled for a route.
    let r = preflight("https://shop.example", "/nocors").await;
    assert_eq!(r.header("access-control-allow-origin"), "");
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn cors_fast_path() {
    cors(true).await;
}

#[tokio::test]
async fn cors_hyper() {
    cors(false).await;
}

// ---------------------------------------------------------------- basic auth

async fn basic_auth(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let (salt, hash) = htpasswd("user", "p@ssword");
    let (salt2, hash2) = htpasswd("admin", "s3cret");
    let ac = format!(
        "apiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: basic-auth, namespace: gloo-system}}\nspec:\n  configs:\n  - basicAuth:\n      realm: petstore\n      apr:\n        users:\n          user: {{salt: '{salt}', hashedPassword: '{hash}'}}\n          admin: {{salt: '{salt2}', hashedPassword: '{hash2}'}}\n"
    );
    let opts = "extauth:\n  configRef: {name: basic-auth, namespace: gloo-system}\n";
    let routes = [
        route("/open", "        extauth: {disable: true}\n"),
        route("/", ""),
    ]
    .concat();
    serve(&h, &up, &indent(opts, 6), &routes, &ac).await;
    assert_eq!(
        get(
            &h,
            "/pets",
            &[("authorization", &basic("user", "p@ssword"))]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&h, "/pets", &[("authorization", &basic("admin", "s3cret"))])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&h, "/open", &[]).await.status,
        200,
        "disabled on the route"
    );
    for creds in [
        None,
        Some(basic("user", "wrong")),
        Some(basic("nobody", "p@ssword")),
        Some("Basic !!!".into()),
    ] {
        let headers: Vec<(&str, &str)> = creds
            .iter()
            .map(|c| ("authorization", c.as_str()))
            .collect();
        let r = get(&h, "/pets", &headers).await;
        assert_eq!(r.status, 401, "{creds:?}");
        assert_eq!(r.header("www-authenticate"), "Basic realm=\"petstore\"");
    }
    assert_eq!(up.hits(), 3, "the upstream never sees a denied request");
}

#[tokio::test]
async fn basic_auth_fast_path() {
    basic_auth(true).await;
}

#[tokio::test]
async fn basic_auth_hyper() {
    basic_auth(false).await;
}

// ---------------------------------------------------------------- pass-through auth

/// A user's auth service: `authorization: Bearer good` passes (with `x-user-id` for the
/// upstream), anything else is 403 (with `x-reason` for the client). It counts its calls.
async fn auth_server() -> (String, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let c = c.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    c.fetch_add(1, Ordering::SeqCst);
                    let ok = req
                        .headers()
                        .get("authorization")
                        .is_some_and(|v| v == "Bearer good")
                        && req.headers().get("x-tenant").is_some_and(|v| v == "pets")
                        && req.method() == hyper::Method::POST;
                    let mut r = hyper::Response::new(Full::new(bytes::Bytes::new()));
                    if ok {
                        r.headers_mut()
                            .insert("x-user-id", "alice".parse().unwrap());
                        r.headers_mut()
                            .insert("x-secret", "not for upstream".parse().unwrap());
                    } else {
                        *r.status_mut() = hyper::StatusCode::FORBIDDEN;
                        r.headers_mut()
                            .insert("x-reason", "bad token".parse().unwrap());
                    }
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
                // A connection per call, so that a stopped service is one nobody reaches.
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/auth"), calls, task)
}

async fn pass_through(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let (url, calls, server) = auth_server().await;
    let ac = format!(
        "apiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: passthrough, namespace: gloo-system}}\nspec:\n  configs:\n  - passThroughAuth:\n      http:\n        url: {url}\n        request: {{allowedHeaders: [x-tenant]}}\n        response:\n          allowedUpstreamHeaders: [x-user-id]\n          allowedClientHeadersOnDenied: [x-reason]\n        connectionTimeout: 1s\n"
    );
    let routes = route("/", "        extauth: {configRef: {name: passthrough}}\n");
    serve(&h, &up, "", &routes, &ac).await;
    let r = get(
        &h,
        "/pets",
        &[("authorization", "Bearer good"), ("x-tenant", "pets")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echo()["headers"]["x-user-id"],
        "alice",
        "the header the service allows upstream"
    );
    assert!(r.echo()["headers"].get("x-secret").is_none());
    let r = get(
        &h,
        "/pets",
        &[("authorization", "Bearer bad"), ("x-tenant", "pets")],
    )
    .await;
    assert_eq!((r.status, r.header("x-reason")), (403, "bad token"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The service is down: denied (fail closed), never served unprotected.
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = get(
        &h,
        "/pets",
        &[("authorization", "Bearer good"), ("x-tenant", "pets")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(up.hits(), 1, "the upstream never sees a denied request");
    assert!(
        h.metrics()
            .await
            .contains("epoxy_policy_auth_unreachable_total 1")
    );
}

#[tokio::test]
async fn pass_through_fast_path() {
    pass_through(true).await;
}

#[tokio::test]
async fn pass_through_hyper() {
    pass_through(false).await;
}

/// A reference to an AuthConfig that does not exist refuses the virtual service.
#[tokio::test]
async fn missing_auth_config_is_refused() {
    let up = upstream::start("web");
    let routes = route("/", "        extauth: {configRef: {name: nowhere}}\n");
    let yaml = format!(
        "{}---\n{}",
        static_upstream("web", &[up.host_port()]),
        vs("default", "['*']", &routes)
    );
    let set = epoxy::api::parse_resources(&yaml, "t").unwrap();
    let problems = epoxy::api::validate(&set.into_iter().map(|r| (r.key(), r)).collect());
    assert!(
        problems.iter().any(|p| p
            .to_string()
            .contains("AuthConfig `nowhere` does not exist")),
        "{problems:?}"
    );
}

// ---------------------------------------------------------------- local rate limits

async fn local_limit(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let routes = [
        route("/limited", "        ratelimit:\n          localRatelimit: {maxTokens: 3, tokensPerFill: 1, fillInterval: 1h}\n"),
        route("/", ""),
    ]
    .concat();
    serve(&h, &up, "", &routes, "").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = get(&h, "/limited", &[]).await;
        if r.status == 429 {
            assert_eq!(r.header("x-envoy-ratelimited"), "true");
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(
        get(&h, "/other", &[]).await.status,
        200,
        "another route is not limited"
    );
    assert_eq!(up.hits(), 4);
    assert!(
        h.metrics()
            .await
            .contains("epoxy_policy_local_ratelimited_total 2")
    );
}

#[tokio::test]
async fn local_limit_fast_path() {
    local_limit(true).await;
}

#[tokio::test]
async fn local_limit_hyper() {
    local_limit(false).await;
}

// ---------------------------------------------------------------- API keys

/// A Secret of type `extauth.solo.io/apikey` holding `key`, with a `user-id` and labels.
fn api_key_secret(name: &str, key: &str, user: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system, labels: {labels}}}\ntype: extauth.solo.io/apikey\nstringData: {{api-key: '{key}', user-id: {user}}}\n---\n"
    )
}

async fn api_keys(fast_path: bool) {
    let h = gateway(fast_path).await;
    let up = upstream::start("web");
    let secrets = [
        api_key_secret("key-ann", "k-ann-0123456789", "ann", "{team: pets}"),
        api_key_secret("key-bob", "k-bob-0123456789", "bob", "{team: pets}"),
        api_key_secret("key-eve", "k-eve-0123456789", "eve", "{team: other}"),
    ]
    .concat();
    let ac = "apiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {name: api-keys, namespace: gloo-system}\nspec:\n  configs:\n  - apiKeyAuth:\n      headerName: x-api-key\n      k8sSecretApikeyStorage:\n        labelSelector: {team: pets}\n      headersFromMetadataEntry:\n        x-user-id: {name: user-id, required: true}\n";
    let routes = route("/", "        extauth: {configRef: {name: api-keys}}\n");
    serve(&h, &up, "", &routes, &format!("{secrets}{ac}")).await;
    let r = get(
        &h,
        "/pets",
        &[("x-api-key", "k-ann-0123456789"), ("x-user-id", "mallory")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echo()["headers"]["x-user-id"],
        "ann",
        "from the key's Secret, not the client"
    );
    let r = get(&h, "/pets", &[("x-api-key", "k-bob-0123456789")]).await;
    assert_eq!(
        (r.status, r.echo()["headers"]["x-user-id"].as_str()),
        (200, Some("bob"))
    );
    for key in [None, Some("k-eve-0123456789"), Some("k-ann-012345678")] {
        let headers: Vec<(&str, &str)> = key.iter().map(|k| ("x-api-key", *k)).collect();
        assert_eq!(get(&h, "/pets", &headers).await.status, 401, "{key:?}");
    }
    assert_eq!(up.hits(), 2, "the upstream never sees a denied request");
    // A key revoked (its Secret deleted) stops working.
    epoxy::store::Store::delete(
        h.store.as_ref(),
        &epoxy::api::ResourceKey::new(epoxy::api::Kind::Secret, "gloo-system", "key-bob"),
        epoxy::store::Precondition::Any,
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while get(&h, "/pets", &[("x-api-key", "k-bob-0123456789")])
        .await
        .status
        != 401
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a deleted key still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn api_keys_fast_path() {
    api_keys(true).await;
}

#[tokio::test]
async fn api_keys_hyper() {
    api_keys(false).await;
}

/// `ratelimitBasic` and the staged RateLimitConfig references are checked like the other
/// limits: a unit that is none, a config that does not exist, named by their path.
#[tokio::test]
async fn staged_and_basic_rate_limits_are_checked() {
    let cases = [
        (
            "ratelimitBasic: {anonymousLimits: {unit: FORTNIGHT, requestsPerUnit: 1}}\n",
            "spec.virtualHost.routes[0].options.ratelimitBasic.anonymousLimits.unit: `FORTNIGHT` is none of",
        ),
        (
            "rateLimitEarlyConfigs: {refs: [{name: gone}]}\n",
            "spec.virtualHost.routes[0].options.rateLimitEarlyConfigs.refs[0]: RateLimitConfig `gone` does not exist",
        ),
        (
            "rateLimitRegularConfigs: {refs: [{name: gone}]}\n",
            "spec.virtualHost.routes[0].options.rateLimitRegularConfigs.refs[0]: RateLimitConfig `gone` does not exist",
        ),
    ];
    for (options, want) in cases {
        let text = route_problems(options);
        assert!(text.iter().any(|p| p.contains(want)), "{want}: {text:?}");
    }
}
