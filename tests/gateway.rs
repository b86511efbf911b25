//! The gateway over real sockets: a real upstream server, the real gateway and control loop,
//! real HTTP. Each test configures routes through the store, as a user would.

mod common;
use common::gw::{Harness, static_upstream, vs};
use common::upstream;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn get(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_matchers_follow_envoy_semantics_first_match_wins() {
    let a = upstream::start("a");
    let b = upstream::start("b");
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{exact: /exact}]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{regex: '/users/[0-9]+'}]
      routeAction: {single: {upstream: {name: b}}}
    - matchers: [{prefix: /CI/, caseSensitive: false}]
      routeAction: {single: {upstream: {name: b}}}
    - matchers: [{prefix: /api/}]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /api/v2}]
      routeAction: {single: {upstream: {name: b}}}
    - matchers: [{exact: /two}, {prefix: /second/}]
      routeAction: {single: {upstream: {name: b}}}
"#;
    h.apply(&format!(
        "{}---\n{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        static_upstream("b", &[b.host_port()]),
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let server = |v: &Value| v["server"].as_str().unwrap_or("").to_string();
    let (s, v) = get(&c, &format!("{}/exact", h.url)).await;
    assert_eq!((s, server(&v)), (200, "a".into()));
    // exact sees the path without the query string.
    let (_, v) = get(&c, &format!("{}/exact?x=1", h.url)).await;
    assert_eq!(server(&v), "a");
    assert_eq!(v["path"], "/exact?x=1");
    assert_eq!(get(&c, &format!("{}/exact/more", h.url)).await.0, 404);
    // regex must match the whole path.
    assert_eq!(
        server(&get(&c, &format!("{}/users/42", h.url)).await.1),
        "b"
    );
    assert_eq!(get(&c, &format!("{}/users/42/x", h.url)).await.0, 404);
    // case-insensitive prefix.
    assert_eq!(server(&get(&c, &format!("{}/ci/x", h.url)).await.1), "b");
    // first match wins: /api/ is before /api/v2.
    assert_eq!(
        server(&get(&c, &format!("{}/api/v2/x", h.url)).await.1),
        "a"
    );
    // any matcher of a route.
    assert_eq!(
        server(&get(&c, &format!("{}/second/x", h.url)).await.1),
        "b"
    );
    assert_eq!(server(&get(&c, &format!("{}/two", h.url)).await.1), "b");
    let (s, v) = get(&c, &format!("{}/nothing", h.url)).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"], "no-route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_query_and_method_matchers() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let routes = r#"    - matchers:
      - prefix: /canary
        methods: [GET, POST]
        headers:
        - {name: x-canary, value: "true"}
        - {name: x-debug, invertMatch: true}
        - {name: x-version, value: 'v[0-9]+', regex: true}
        - {name: x-present}
        queryParameters:
        - {name: version, value: 'v[0-9]+', regex: true}
        - {name: flag}
      directResponseAction: {status: 200, body: canary}
    - matchers: [{prefix: /}]
      directResponseAction: {status: 200, body: other}
"#;
    h.apply(&format!(
        "{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let req = |m: reqwest::Method, q: &str, hs: &[(&str, &str)]| {
        let mut r = c.request(m, format!("{}/canary{q}", h.url));
        for (k, v) in hs {
            r = r.header(*k, *v);
        }
        r
    };
    let good = [
        ("x-canary", "true"),
        ("x-version", "v12"),
        ("x-present", ""),
    ];
    let body = |r: reqwest::RequestBuilder| async { r.send().await.unwrap().text().await.unwrap() };
    assert_eq!(
        body(req(reqwest::Method::GET, "?version=v2&flag", &good)).await,
        "canary"
    );
    assert_eq!(
        body(req(reqwest::Method::POST, "?version=v2&flag=1", &good)).await,
        "canary"
    );
    assert_eq!(
        body(req(reqwest::Method::DELETE, "?version=v2&flag", &good)).await,
        "other"
    );
    assert_eq!(
        body(req(reqwest::Method::GET, "?version=2&flag", &good)).await,
        "other"
    );
    assert_eq!(
        body(req(reqwest::Method::GET, "?version=v2", &good)).await,
        "other"
    );
    let mut debug = good.to_vec();
    debug.push(("x-debug", "1"));
    assert_eq!(
        body(req(reqwest::Method::GET, "?version=v2&flag", &debug)).await,
        "other"
    );
    assert_eq!(
        body(req(
            reqwest::Method::GET,
            "?version=v2&flag",
            &[
                ("x-canary", "true"),
                ("x-version", "v1x"),
                ("x-present", "")
            ]
        ))
        .await,
        "other"
    );
    assert_eq!(
        body(req(
            reqwest::Method::GET,
            "?version=v2&flag",
            &[("x-canary", "true"), ("x-version", "v1")]
        ))
        .await,
        "other"
    );
    // The admin listener's table shows every condition of the matcher, not only its path.
    let routes: Value = c
        .get(format!("{}/routes", h.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &routes["virtualHosts"][0]["routes"][0]["matchers"][0];
    assert_eq!(m["prefix"], "/canary", "{routes}");
    assert_eq!(m["methods"], serde_json::json!(["GET", "POST"]));
    assert_eq!(
        m["headers"][0],
        serde_json::json!({"name": "x-canary", "value": "true"})
    );
    assert_eq!(
        m["headers"][1],
        serde_json::json!({"name": "x-debug", "invertMatch": true})
    );
    assert_eq!(
        m["headers"][2],
        serde_json::json!({"name": "x-version", "regex": "v[0-9]+"})
    );
    assert_eq!(
        m["queryParameters"],
        serde_json::json!([{"name": "version", "regex": "v[0-9]+"}, {"name": "flag"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosts_by_domain_with_or_without_port() {
    let h = Harness::start().await;
    let direct =
        |body: &str| format!("    - directResponseAction: {{status: 200, body: {body}}}\n");
    h.apply(&format!(
        "{}---\n{}---\n{}---\n{}",
        vs("exact", "['example.com']", &direct("exact")),
        vs("wild", "['*.example.com']", &direct("wild")),
        vs("ported", "['ported.com:8443']", &direct("ported")),
        vs("all", "['*']", &direct("all")),
    ))
    .await;
    let c = Harness::client();
    let host = |hst: &'static str| {
        let c = c.clone();
        let url = h.url.clone();
        async move {
            c.get(format!("{url}/"))
                .header("host", hst)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(host("example.com").await, "exact");
    assert_eq!(host("EXAMPLE.com:8080").await, "exact");
    assert_eq!(host("a.example.com").await, "wild");
    assert_eq!(host("a.b.example.com").await, "wild");
    assert_eq!(host("ported.com:8443").await, "ported");
    assert_eq!(host("other.org").await, "all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_header_manipulation_and_forwarding_headers() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{prefix: /petstore/}]
      options:
        prefixRewrite: /api/
        hostRewrite: upstream.internal
        headerManipulation:
          requestHeadersToAdd: [{header: {key: x-served-by, value: epoxy}}]
          requestHeadersToRemove: [x-secret]
          responseHeadersToAdd: [{header: {key: x-resp, value: added}}]
          responseHeadersToRemove: [x-remove-me]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{exact: /petstore}]
      options: {prefixRewrite: /api/pets}
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /v1/}]
      options: {regexRewrite: {pattern: {regex: '^/v1/(\w+)/(\d+)$'}, substitution: '/items/\2/\1'}}
      routeAction: {single: {upstream: {name: a}}}
"#;
    h.apply(&format!(
        "{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let r = c
        .get(format!("{}/petstore/pets?limit=2", h.url))
        .header("x-secret", "s")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-resp"], "added");
    assert!(r.headers().get("x-remove-me").is_none());
    assert_eq!(r.headers()["x-upstream"], "a");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/api/pets?limit=2");
    let hs = &v["headers"];
    assert_eq!(hs["host"], "upstream.internal");
    assert_eq!(hs["x-served-by"], "epoxy");
    assert!(hs.get("x-secret").is_none());
    assert!(
        hs.get("x-hop").is_none(),
        "headers named in Connection are hop-by-hop"
    );
    assert_eq!(hs["x-forwarded-for"], "127.0.0.1");
    assert_eq!(hs["x-forwarded-proto"], "http");
    assert_eq!(hs["x-request-id"].as_str().unwrap().len(), 32);
    // An incoming request id is kept.
    let v: Value = c
        .get(format!("{}/petstore", h.url))
        .header("x-request-id", "abc")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/api/pets");
    assert_eq!(v["headers"]["x-request-id"], "abc");
    let v: Value = c
        .get(format!("{}/v1/shoes/42", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/items/42/shoes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_destinations_upstream_groups_and_round_robin() {
    let a = upstream::start("a");
    let b = upstream::start("b");
    let a2 = upstream::start("a2");
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{prefix: /all-a}]
      routeAction:
        multi:
          destinations:
          - {destination: {upstream: {name: a}}, weight: 1}
          - {destination: {upstream: {name: b}}, weight: 0}
    - matchers: [{prefix: /split}]
      routeAction:
        multi:
          destinations:
          - {destination: {upstream: {name: a}}, weight: 50}
          - {destination: {upstream: {name: b}}, weight: 50}
    - matchers: [{prefix: /group}]
      routeAction: {upstreamGroup: {name: grp}}
    - matchers: [{prefix: /rr}]
      routeAction: {single: {upstream: {name: pair}}}
"#;
    let group = "apiVersion: gloo.solo.io/v1\nkind: UpstreamGroup\nmetadata: {name: grp, namespace: gloo-system}\nspec:\n  destinations:\n  - {destination: {upstream: {name: b}}, weight: 3}\n";
    h.apply(&format!(
        "{}---\n{}---\n{}---\n{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        static_upstream("b", &[b.host_port()]),
        static_upstream("pair", &[a.host_port(), a2.host_port()]),
        group,
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let mut seen = std::collections::HashMap::new();
    for _ in 0..40 {
        let (_, v) = get(&c, &format!("{}/all-a", h.url)).await;
        assert_eq!(v["server"], "a");
        let (_, v) = get(&c, &format!("{}/split", h.url)).await;
        *seen
            .entry(v["server"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let (_, v) = get(&c, &format!("{}/group", h.url)).await;
        assert_eq!(v["server"], "b");
    }
    assert!(seen["a"] > 5 && seen["b"] > 5, "{seen:?}");
    let before = (a.hits(), a2.hits());
    for _ in 0..10 {
        get(&c, &format!("{}/rr", h.url)).await;
    }
    assert_eq!((a.hits() - before.0, a2.hits() - before.1), (5, 5));
}

fn petstore_upstream(addr: &str) -> String {
    format!(
        r#"{}    serviceSpec:
      rest:
        transformations:
          findPetById:
            body: {{}}
            headers:
              ':method': {{text: GET}}
              ':path': {{text: '/api/pets/{{{{ default(id, "") }}}}'}}
              content-length: {{text: "0"}}
              content-type: {{}}
              transfer-encoding: {{}}
          addPet:
            body:
              text: '{{"id": {{{{ default(id, "") }}}},"name": "{{{{ default(name, "")}}}}","tag": "{{{{ default(tag, "")}}}}"}}'
            headers:
              ':method': {{text: POST}}
              ':path': {{text: /api/pets}}
              content-type: {{text: application/json}}
"#,
        static_upstream("petstore", &[addr.to_string()])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_routes_take_parameters_from_body_headers_and_path() {
    let p = upstream::start("petstore");
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{exact: /petstore/findPet}]
      routeAction: {single: {upstream: {name: petstore}, destinationSpec: {rest: {functionName: findPetById}}}}
    - matchers: [{exact: /petstore/findPetByHeader}]
      routeAction: {single: {upstream: {name: petstore}, destinationSpec: {rest: {functionName: findPetById, parameters: {headers: {x-pet: '{id}'}}}}}}
    - matchers: [{prefix: /petstore/findWithId/}]
      routeAction: {single: {upstream: {name: petstore}, destinationSpec: {rest: {functionName: findPetById, parameters: {headers: {':path': '/petstore/findWithId/{id}'}}}}}}
    - matchers: [{exact: /petstore/add}]
      routeAction: {single: {upstream: {name: petstore}, destinationSpec: {rest: {functionName: addPet}}}}
    - matchers: [{exact: /petstore/missing}]
      routeAction: {single: {upstream: {name: petstore}, destinationSpec: {rest: {functionName: nope}}}}
"#;
    h.apply(&format!(
        "{}---\n{}",
        petstore_upstream(&p.host_port()),
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let v: Value = c
        .post(format!("{}/petstore/findPet", h.url))
        .body(r#"{"id": 1}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["method"].as_str(), v["path"].as_str(), v["body"].as_str()),
        (Some("GET"), Some("/api/pets/1"), Some(""))
    );
    assert!(v["headers"].get("content-type").is_none());
    let v: Value = c
        .get(format!("{}/petstore/findPetByHeader", h.url))
        .header("x-pet", "2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/api/pets/2");
    let v: Value = c
        .get(format!("{}/petstore/findWithId/3", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/api/pets/3");
    // An extracted value cannot climb out of its path segment or add a header line.
    let v: Value = c
        .get(format!("{}/petstore/findPetByHeader", h.url))
        .header("x-pet", "x%y z")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/api/pets/x%25y%20z");
    // `{id}` is one segment: a value with '/' does not match the extractor at all.
    let v: Value = c
        .get(format!("{}/petstore/findPetByHeader", h.url))
        .header("x-pet", "../admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/api/pets/");
    let v: Value = c
        .get(format!("{}/petstore/findWithId/..%2F..%2Fadmin%3Fx", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/api/pets/..%2F..%2Fadmin%3Fx");
    // A JSON body fills the body template; strings are escaped.
    let v: Value = c
        .post(format!("{}/petstore/add", h.url))
        .body(r#"{"id": 3, "name": "Ra\"bbit", "tag": "new"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["headers"]["content-type"], "application/json");
    let sent: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"id": 3, "name": "Ra\"bbit", "tag": "new"})
    );
    // A non-JSON body where the template needs JSON: 400 with the reason.
    let r = c
        .post(format!("{}/petstore/add", h.url))
        .body("id=3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-epoxy-error"], "bad-request");
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("addPet"), "{v}");
    // A function the upstream does not have: 503 naming it.
    let r = c
        .get(format!("{}/petstore/missing", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no function `nope`"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_direct_responses() {
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{prefix: /old/}]
      redirectAction: {prefixRewrite: /new/, responseCode: FOUND}
    - matchers: [{exact: /secure}]
      redirectAction: {httpsRedirect: true, hostRedirect: example.com, stripQuery: true}
    - matchers: [{exact: /teapot}]
      directResponseAction: {status: 418, body: "short and stout"}
"#;
    h.apply(&vs("default", "['*']", routes)).await;
    let c = Harness::client();
    let r = c
        .get(format!("{}/old/page?q=1", h.url))
        .header("host", "site.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://site.test/new/page?q=1");
    let r = c.get(format!("{}/secure?q=1", h.url)).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "https://example.com/secure");
    let r = c.get(format!("{}/teapot", h.url)).send().await.unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.text().await.unwrap(), "short and stout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_responses_name_route_and_upstream() {
    let a = upstream::start("a");
    // A port with nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let h = Harness::with(|c| c.max_body = 1024).await;
    let routes = r#"    - matchers: [{prefix: /dead}]
      routeAction: {single: {upstream: {name: dead}}}
    - matchers: [{prefix: /slow}]
      options: {timeout: 200ms}
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /reset}]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /post}]
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /ghost}]
      routeAction: {single: {upstream: {name: ghost}}}
"#;
    h.apply(&format!(
        "{}---\n{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        static_upstream("dead", std::slice::from_ref(&dead)),
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let check = |r: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(r.headers()["x-epoxy-error"], code);
        r.json::<Value>().await.unwrap()
    };
    let v = check(
        c.get(format!("{}/dead", h.url)).send().await.unwrap(),
        503,
        "upstream-connect-failure",
    )
    .await;
    // Unnamed: the route's id is a digest of its content, not its position.
    let route = v["route"].as_str().unwrap();
    assert!(
        route.starts_with("gloo-system/default#")
            && route.len() == "gloo-system/default#".len() + 8,
        "{route}"
    );
    assert_eq!(v["upstream"], "dead");
    let started = Instant::now();
    let v = check(
        c.get(format!("{}/slow/2000", h.url)).send().await.unwrap(),
        504,
        "upstream-timeout",
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(v["upstream"], "a");
    check(
        c.get(format!("{}/reset", h.url)).send().await.unwrap(),
        503,
        "upstream-reset",
    )
    .await;
    check(
        c.post(format!("{}/post", h.url))
            .body(vec![b'x'; 4096])
            .send()
            .await
            .unwrap(),
        413,
        "too-large",
    )
    .await;
    let v = check(
        c.get(format!("{}/ghost", h.url)).send().await.unwrap(),
        503,
        "no-upstream",
    )
    .await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("`ghost` does not exist")
    );
    check(
        c.get(format!("{}/nope", h.url)).send().await.unwrap(),
        404,
        "no-route",
    )
    .await;
    // A small body passes.
    assert_eq!(
        c.post(format!("{}/post", h.url))
            .body("ok")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_connect_failure_and_5xx_and_shadowing() {
    let a = upstream::start("a");
    let shadow = upstream::start("shadow");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{prefix: /half}]
      options: {retries: {retryOn: connect-failure, numRetries: 2}}
      routeAction: {single: {upstream: {name: half}}}
    - matchers: [{prefix: /flaky}]
      options: {retries: {retryOn: 5xx, numRetries: 3, perTryTimeout: 1s}}
      routeAction: {single: {upstream: {name: a}}}
    - matchers: [{prefix: /noretry}]
      routeAction: {single: {upstream: {name: half}}}
    - matchers: [{prefix: /mirror}]
      options: {shadowing: {upstream: {name: shadow}, percentage: 100}}
      routeAction: {single: {upstream: {name: a}}}
"#;
    h.apply(&format!(
        "{}---\n{}---\n{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        static_upstream("shadow", &[shadow.host_port()]),
        static_upstream("half", &[dead.clone(), a.host_port()]),
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    for _ in 0..6 {
        assert_eq!(
            c.get(format!("{}/half", h.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // Without retries, half of the requests hit the dead host.
    let mut failed = 0;
    for _ in 0..6 {
        if c.get(format!("{}/noretry", h.url))
            .send()
            .await
            .unwrap()
            .status()
            == 503
        {
            failed += 1;
        }
    }
    assert_eq!(failed, 3);
    // The upstream fails twice with 503, the third try succeeds.
    let before = a.hits();
    assert_eq!(
        c.get(format!("{}/flaky/2", h.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(a.hits() - before, 3);
    // Shadowing: the copy arrives; the client's answer comes from the primary.
    let v: Value = c
        .post(format!("{}/mirror", h.url))
        .body("copy me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["server"], "a");
    let deadline = Instant::now() + Duration::from_secs(2);
    while shadow.hits() == 0 {
        assert!(Instant::now() < deadline, "the shadow copy never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_to_route_tables() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let routes = r#"    - matchers: [{prefix: /team}]
      delegateAction: {ref: {name: team-routes}}
    - matchers: [{prefix: /sel}]
      delegateAction: {selector: {labels: {team: x}}}
    - matchers: [{prefix: /}]
      directResponseAction: {status: 200, body: fallback}
"#;
    let rt = "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: team-routes, namespace: gloo-system}\nspec:\n  routes:\n  - matchers: [{prefix: /team/pets}]\n    routeAction: {single: {upstream: {name: a}}}\n---\napiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: labelled, namespace: gloo-system, labels: {team: x}}\nspec:\n  routes:\n  - matchers: [{exact: /sel/one}]\n    directResponseAction: {status: 200, body: selected}\n";
    h.apply(&format!(
        "{}---\n{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        rt,
        vs("default", "['*']", routes)
    ))
    .await;
    let c = Harness::client();
    let (_, v) = get(&c, &format!("{}/team/pets/1", h.url)).await;
    assert_eq!(v["path"], "/team/pets/1");
    assert_eq!(
        c.get(format!("{}/sel/one", h.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "selected"
    );
    // A delegated prefix with no matching child route does not fall through (as in Gloo: the
    // child table owns the prefix) - and /team/other goes to the next routes in order.
    assert_eq!(
        c.get(format!("{}/elsewhere", h.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "fallback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_change_never_goes_live_and_status_says_rejected() {
    let h = Harness::start().await;
    h.apply(&vs(
        "default",
        "['*']",
        "    - matchers: [{exact: /a}]\n      directResponseAction: {status: 200, body: good}\n",
    ))
    .await;
    let c = Harness::client();
    assert_eq!(
        c.get(format!("{}/a", h.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "good"
    );
    // An external edit that is invalid (bad regex): the last good version keeps serving.
    h.put_raw(&vs("default", "['*']", "    - matchers: [{regex: '/b/(['}]\n      directResponseAction: {status: 200, body: bad}\n")).await;
    assert_eq!(
        c.get(format!("{}/a", h.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "good"
    );
    let report = h.reports.borrow().clone();
    let st = report.statuses.values().next().unwrap();
    assert_eq!(st.state, epoxy::api::status::State::Rejected);
    assert!(
        st.reason.as_deref().unwrap().contains("invalid regex"),
        "{st:?}"
    );
    assert_eq!(report.serving_last_good.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_change_is_live_within_100ms_and_reloads_drop_nothing() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let route = |body: &str| {
        vs(
            "default",
            "['*']",
            &format!(
                "    - matchers: [{{exact: /v}}]\n      directResponseAction: {{status: 200, body: '{body}'}}\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: a}}}}}}\n"
            ),
        )
    };
    h.apply(&format!(
        "{}---\n{}",
        static_upstream("a", &[a.host_port()]),
        route("v0")
    ))
    .await;
    let c = Harness::client();
    // Live within 100 ms of the write returning.
    let started = Instant::now();
    let r = epoxy::api::parse_one(&route("v1"), "t").unwrap();
    epoxy::control::writes::write(h.store.as_ref(), r, epoxy::store::Precondition::Any)
        .await
        .unwrap();
    loop {
        if c.get(format!("{}/v", h.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            == "v1"
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "not live after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("route change live after {:?}", started.elapsed());
    // A client sending without pause across 100 reloads sees no failed request.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (url, s2) = (h.url.clone(), stop.clone());
    let load = tokio::spawn(async move {
        let c = Harness::client();
        let (mut ok, mut failed) = (0u64, 0u64);
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            match c.get(format!("{url}/through")).send().await {
                Ok(r) if r.status() == 200 => ok += 1,
                _ => failed += 1,
            }
        }
        (ok, failed)
    });
    for i in 0..100 {
        h.apply(&route(&format!("r{i}"))).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    eprintln!("{ok} requests across 100 reloads, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ready_routes_and_events() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let mut events = h.gw.events.subscribe();
    h.apply(&format!("{}---\n{}", static_upstream("a", &[a.host_port()]), vs("default", "['*']", "    - matchers: [{prefix: /}]\n      name: catch-all\n      routeAction: {single: {upstream: {name: a}}}\n"))).await;
    let c = Harness::client();
    for _ in 0..3 {
        c.get(format!("{}/x?y=1", h.url)).send().await.unwrap();
    }
    let e = events.recv().await.unwrap();
    assert_eq!(
        (e.method.as_str(), e.path.as_str(), e.status),
        ("GET", "/x?y=1", 200)
    );
    assert_eq!(e.route.as_deref(), Some("catch-all"));
    assert_eq!(e.upstream.as_deref(), Some("a"));
    let m = h
        .metrics_when(|m| {
            m.contains("epoxy_route_latency_seconds_bucket{route=\"catch-all\",le=\"+Inf\"} 3")
                && m.contains("epoxy_upstream_requests_total{upstream=\"a\"} 3")
        })
        .await;
    assert!(
        m.contains("epoxy_route_requests_total{route=\"catch-all\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("epoxy_upstream_requests_total{upstream=\"a\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("epoxy_route_latency_seconds_bucket{route=\"catch-all\",le=\"+Inf\"} 3"),
        "{m}"
    );
    assert_eq!(
        c.get(format!("{}/ready", h.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let routes: Value = c
        .get(format!("{}/routes", h.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(routes["virtualHosts"][0]["routes"][0]["id"], "catch-all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_and_slow_clients() {
    let h = Harness::with(|c| c.header_read_timeout = Duration::from_millis(300)).await;
    h.apply(&vs(
        "default",
        "['*']",
        "    - directResponseAction: {status: 200, body: hi}\n",
    ))
    .await;
    let c2 = common::http().http2_prior_knowledge().build().unwrap();
    let r = c2.get(format!("{}/", h.url)).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "hi");
    // A client that never finishes its headers is cut off.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(h.handle.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the gateway kept a half-open client");
}

/// A bare HTTP/1.1 upstream on raw sockets: it answers `/chunked` with a chunked body, and
/// after `/close` hangs up without saying so first (no `Connection: close`), as a server ending
/// an idle keep-alive connection does.
async fn raw_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    upstream::raw(|path| {
        let answer: &[u8] = match path {
            "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            "/close" => b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nclosed",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        };
        (vec![answer.to_vec()], path == "/close")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused_and_one_closed_while_idle_costs_no_request() {
    use std::sync::atomic::Ordering;
    let (addr, connections) = raw_upstream().await;
    let h = Harness::with(|c| c.workers = 1).await;
    h.forward_all("raw", &[addr]).await;
    let c = Harness::client();
    for _ in 0..20 {
        assert_eq!(get(&c, &format!("{}/x", h.url)).await, (200, "ok".into()));
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "20 requests, one connection"
    );
    // A chunked body read to its end gives its connection back too.
    for _ in 0..5 {
        let (s, body) = get(&c, &format!("{}/chunked", h.url)).await;
        assert_eq!((s, body), (200, Value::String("hello world".into())));
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "chunked bodies, same connection"
    );
    // The upstream hangs up after each answer: the next request finds the pooled connection
    // closed and goes out on a new one, never failing.
    for i in 0..5 {
        let (s, body) = get(&c, &format!("{}/close", h.url)).await;
        assert_eq!(
            (s, body),
            (200, Value::String("closed".into())),
            "request {i}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&c, &format!("{}/x", h.url)).await, (200, "ok".into()));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        6,
        "one new connection after each hang-up"
    );
    // The admin listener counts them too.
    let m = h.metrics().await;
    assert!(
        m.contains("epoxy_upstream_connections_opened_total 6\n"),
        "{m}"
    );
}

/// A virtual service that asks for what epoxy cannot give (auth it does not know, basic rate
/// limits, TLS without its certificate) is
/// rejected and serves nothing, not even the version before the option was added; the others
/// are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_asking_for_auth_rate_limits_or_tls_is_not_served() {
    let open = upstream::start("open");
    let locked = upstream::start("locked");
    let h = Harness::start().await;
    let to = |u: &str| {
        format!(
            "    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: {u}}}}}}}\n"
        )
    };
    let locked_vs = vs("locked", "['locked.test']", &to("locked"));
    h.apply(&format!(
        "{}---\n{}---\n{}---\n{}",
        static_upstream("open", &[open.host_port()]),
        static_upstream("locked", &[locked.host_port()]),
        vs("open", "['open.test']", &to("open")),
        locked_vs,
    ))
    .await;
    let c = Harness::client();
    let status = |hst: &'static str| {
        let c = c.clone();
        let url = h.url.clone();
        async move {
            c.get(format!("{url}/x"))
                .header("host", hst)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("locked.test").await, 200);
    assert_eq!(locked.hits(), 1);
    let variants = [
        // Virtual-host options, route options, a weighted destination's options, TLS.
        locked_vs.replace(
            "    domains:",
            "    options: {extauth: {configRef: {name: auth, namespace: gloo-system}}}\n    domains:",
        ),
        locked_vs.replace(
            "      routeAction:",
            "      options: {ratelimitRegular: {rateLimits: [{actions: [{genericKey: {descriptorValue: x}}]}]}}\n      routeAction:",
        ),
        locked_vs.replace(
            "      routeAction: {single: {upstream: {name: locked}}}",
            "      routeAction: {multi: {destinations: [{weight: 1, destination: {upstream: {name: locked}}, options: {extauth: {disable: false}}}]}}",
        ),
        locked_vs.replace(
            "spec:\n",
            "spec:\n  sslConfig: {secretRef: {name: tls, namespace: gloo-system}}\n",
        ),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(v, &locked_vs);
        // Refused on write, naming the field...
        let r = epoxy::api::parse_one(v, "t").unwrap();
        let e = epoxy::control::writes::write(h.store.as_ref(), r, epoxy::store::Precondition::Any)
            .await
            .err()
            .unwrap_or_else(|| panic!("variant {i} was written"));
        let e = e.to_string();
        assert!(
            ["extauth", "ratelimitRegular", "sslConfig"]
                .iter()
                .any(|f| e.contains(&format!(".{f}: epoxy does not")))
                || e.contains(".extauth.configRef: AuthConfig `auth` does not exist")
                || e.contains(".sslConfig.secretRef: secret secrets/gloo-system/tls not found"),
            "{e}"
        );
        // ...and, written behind epoxy's back, not served at all.
        h.put_raw(v).await;
        assert_eq!(status("locked.test").await, 404, "variant {i}");
        assert_eq!(status("open.test").await, 200, "variant {i}");
        // Served again once the option is gone.
        h.put_raw(&locked_vs).await;
        assert_eq!(status("locked.test").await, 200, "variant {i}");
    }
    assert_eq!(locked.hits(), 1 + variants.len() as u64);
    assert_eq!(open.hits(), variants.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_statistics_follow_the_route_not_its_position() {
    let a = upstream::start("a");
    let h = Harness::start().await;
    let b_route =
        "    - matchers: [{prefix: /b}]\n      routeAction: {single: {upstream: {name: a}}}\n";
    h.serve("a", &[a.host_port()], b_route).await;
    let c = Harness::client();
    for _ in 0..3 {
        c.get(format!("{}/b", h.url)).send().await.unwrap();
    }
    let label = |m: &str| -> Option<String> {
        m.lines()
            .find(|l| l.starts_with("epoxy_route_requests_total{") && l.ends_with(" 3"))
            .map(|l| l.split('"').nth(1).unwrap_or("").to_string())
    };
    let m = h.metrics_when(|m| label(m).is_some()).await;
    let before = label(&m).unwrap_or_else(|| panic!("{m}"));
    // A route inserted first: /b is now #1; its count and label stay its own.
    let both = format!(
        "    - matchers: [{{prefix: /a}}]\n      routeAction: {{single: {{upstream: {{name: a}}}}}}\n{b_route}"
    );
    h.serve("a", &[a.host_port()], &both).await;
    c.get(format!("{}/a", h.url)).send().await.unwrap();
    let counted_once = |m: &str| {
        m.lines().any(|l| {
            l.starts_with("epoxy_route_requests_total{")
                && l.ends_with(" 1")
                && !l.contains(&before)
        })
    };
    let m = h.metrics_when(counted_once).await;
    assert_eq!(label(&m).as_deref(), Some(before.as_str()), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("epoxy_route_requests_total{")
                && l.ends_with(" 1")
                && !l.contains(&before)),
        "{m}"
    );
}
