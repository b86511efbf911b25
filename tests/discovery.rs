//! Function discovery against real HTTP servers, and the embedded petstore.

mod common;
use common::Epoxy;
use epoxy::api::{Kind, Resource, ResourceKey, parse_one};
use epoxy::discovery::fds::{self, FdsConfig, Mode, PROBE_PATHS};
use epoxy::store::dir::DirStore;
use epoxy::store::{Precondition, Store};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PETSTORE: &str = include_str!("../src/demo/swagger.json");

/// A server whose documents (path → body) can change while it runs.
struct DocServer {
    addr: SocketAddr,
    docs: Arc<Mutex<HashMap<String, String>>>,
    _petstore: Option<epoxy::demo::petstore::Petstore>,
}

async fn doc_server() -> DocServer {
    doc_server_with(None).await
}

/// A document server speaking TLS with `tls` (HTTP/1.1 or HTTP/2 as ALPN chooses).
async fn doc_server_with(tls: Option<tokio_rustls::TlsAcceptor>) -> DocServer {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let docs: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let d = docs.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let d = d.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = d.lock().unwrap().get(req.uri().path()).cloned();
                    async move {
                        let mut r = hyper::Response::new(Full::new(bytes::Bytes::from(
                            body.clone().unwrap_or_default(),
                        )));
                        if body.is_none() {
                            *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                        }
                        // `redirect:LOCATION` answers 302 to LOCATION.
                        if let Some(to) = body.as_deref().and_then(|b| b.strip_prefix("redirect:"))
                        {
                            *r.status_mut() = hyper::StatusCode::FOUND;
                            r.headers_mut().insert("location", to.parse().unwrap());
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ = match tls {
                    Some(acceptor) => match acceptor.accept(s).await {
                        Ok(s) => {
                            builder
                                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                                .await
                        }
                        Err(_) => return,
                    },
                    None => {
                        builder
                            .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                            .await
                    }
                };
            });
        }
    });
    DocServer {
        addr,
        docs,
        _petstore: None,
    }
}

impl DocServer {
    fn serve(&self, path: &str, body: &str) {
        self.docs
            .lock()
            .unwrap()
            .insert(path.to_string(), body.to_string());
    }
    fn clear(&self) {
        self.docs.lock().unwrap().clear();
    }
}

fn upstream_yaml(name: &str, addr: SocketAddr, extra_labels: &str, service_spec: &str) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: {name}\n  namespace: gloo-system\n  labels: {{{extra_labels}}}\nspec:\n  static:\n    hosts: [{{addr: '{}', port: {}}}]\n{service_spec}",
        addr.ip(),
        addr.port()
    )
}

async fn store_with(yamls: &[String]) -> (tempfile::TempDir, DirStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    for y in yamls {
        store
            .put(parse_one(y, "t").unwrap(), Precondition::Any)
            .await
            .unwrap();
    }
    (dir, store)
}

fn key(name: &str) -> ResourceKey {
    ResourceKey::new(Kind::Upstream, "gloo-system", name)
}

async fn functions_of(store: &DirStore, name: &str) -> Vec<String> {
    match store.get(&key(name)).await.unwrap() {
        Resource::Upstream(u) => u
            .spec
            .function_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
        _ => unreachable!(),
    }
}

fn cfg() -> FdsConfig {
    FdsConfig {
        probe_timeout: Duration::from_millis(500),
        ..FdsConfig::default()
    }
}

async fn poll(store: &DirStore, c: &FdsConfig) -> fds::DiscoveryState {
    let set = store.list().await.unwrap().resources;
    let client = epoxy::net::document_client(0).unwrap();
    fds::poll_once(store, &set, c, &client, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_probe_path_is_found() {
    for path in PROBE_PATHS {
        let s = doc_server().await;
        // The YAML path gets the document in YAML, the others in JSON.
        let doc = if path.ends_with(".yaml") {
            epoxy::api::codec::to_yaml(
                &serde_json::from_str::<serde_json::Value>(PETSTORE).unwrap(),
            )
        } else {
            PETSTORE.to_string()
        };
        s.serve(path, &doc);
        let (_d, store) = store_with(&[upstream_yaml("pets", s.addr, "", "")]).await;
        let state = poll(&store, &cfg()).await;
        let st = &state[&key("pets")];
        assert_eq!(
            st.document_url.as_deref(),
            Some(format!("http://{}{path}", s.addr).as_str()),
            "{path}: {st:?}"
        );
        assert_eq!(st.functions, 4, "{path}");
        assert_eq!(
            functions_of(&store, "pets").await,
            vec!["findPets", "addPet", "findPetById", "deletePet"]
        );
        // The URL is written into the upstream.
        let Resource::Upstream(u) = store.get(&key("pets")).await.unwrap() else {
            unreachable!()
        };
        let info = u
            .spec
            .service_spec()
            .unwrap()
            .rest
            .as_ref()
            .unwrap()
            .swagger_info
            .as_ref()
            .unwrap();
        assert_eq!(info.url.as_deref(), st.document_url.as_deref());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_url_and_inline_documents_are_used() {
    let s = doc_server().await;
    s.serve("/docs/api.json", PETSTORE);
    let url_spec = format!(
        "    serviceSpec:\n      rest:\n        swaggerInfo: {{url: 'http://{}/docs/api.json'}}\n",
        s.addr
    );
    let inline = serde_json::to_string(PETSTORE).unwrap();
    let inline_spec = format!(
        "    serviceSpec:\n      rest:\n        swaggerInfo:\n          inline: {inline}\n"
    );
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (_d, store) = store_with(&[
        upstream_yaml("by-url", s.addr, "", &url_spec),
        upstream_yaml("inline", dead, "", &inline_spec),
    ])
    .await;
    let state = poll(&store, &cfg()).await;
    assert_eq!(state[&key("by-url")].functions, 4);
    assert_eq!(
        state[&key("inline")].document_url.as_deref(),
        Some("inline")
    );
    assert_eq!(functions_of(&store, "inline").await.len(), 4);
}

/// A document behind redirects (a moved URL, then a versioned path) is followed to its end,
/// as Gloo's discovery (Go's HTTP client) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_behind_redirects_are_followed() {
    let s = doc_server().await;
    s.serve("/moved", "redirect:/docs/latest");
    s.serve(
        "/docs/latest",
        &format!("redirect:http://{}/docs/v2.json", s.addr),
    );
    s.serve("/docs/v2.json", PETSTORE);
    let spec = format!(
        "    serviceSpec:\n      rest:\n        swaggerInfo: {{url: 'http://{}/moved'}}\n",
        s.addr
    );
    let (_d, store) = store_with(&[upstream_yaml("moved", s.addr, "", &spec)]).await;
    let state = poll(&store, &cfg()).await;
    assert_eq!(
        state[&key("moved")].functions,
        4,
        "{:?}",
        state[&key("moved")]
    );
    assert_eq!(functions_of(&store, "moved").await.len(), 4);
    // A redirect loop ends in a clear error, not a hang.
    s.serve("/moved", "redirect:/moved");
    let state = poll(&store, &cfg()).await;
    let error = state[&key("moved")].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("/moved") && error.contains("redirect"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_document_updates_functions_and_unchanged_one_writes_nothing() {
    let s = doc_server().await;
    s.serve("/swagger.json", PETSTORE);
    let (_d, store) = store_with(&[upstream_yaml("pets", s.addr, "", "")]).await;
    poll(&store, &cfg()).await;
    let v1 = store
        .get(&key("pets"))
        .await
        .unwrap()
        .resource_version()
        .map(str::to_string);
    // Polling again with the same document leaves the file alone.
    poll(&store, &cfg()).await;
    assert_eq!(
        store
            .get(&key("pets"))
            .await
            .unwrap()
            .resource_version()
            .map(str::to_string),
        v1
    );
    // A new version of the API with one operation.
    let mut doc: serde_json::Value = serde_json::from_str(PETSTORE).unwrap();
    doc["paths"].as_object_mut().unwrap().remove("/pets/{id}");
    s.serve("/swagger.json", &doc.to_string());
    let state = poll(&store, &cfg()).await;
    assert_eq!(state[&key("pets")].functions, 2);
    assert_eq!(
        functions_of(&store, "pets").await,
        vec!["findPets", "addPet"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_appears_late_is_found_on_a_later_poll() {
    let s = doc_server().await;
    let (_d, store) = store_with(&[upstream_yaml("late", s.addr, "", "")]).await;
    let store: Arc<dyn Store> = Arc::new(store);
    let mut rx = fds::spawn(
        store.clone(),
        FdsConfig {
            poll_interval: Duration::from_millis(200),
            ..cfg()
        },
        None,
    );
    // First poll: nothing there, an error that says what was tried.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        rx.changed().await.unwrap();
        if let Some(st) = rx.borrow().get(&key("late")) {
            assert!(
                st.last_error
                    .as_deref()
                    .unwrap()
                    .contains("no API document found"),
                "{st:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline);
    }
    s.serve("/openapi.json", PETSTORE);
    loop {
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("not found on a later poll")
            .unwrap();
        if rx
            .borrow()
            .get(&key("late"))
            .is_some_and(|st| st.functions == 4 && st.last_error.is_none())
        {
            break;
        }
    }
    s.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_does_not_delay_the_others() {
    // A host that accepts connections and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole = black_hole.local_addr().unwrap();
    let refused: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut yamls = vec![
        upstream_yaml("hole", hole, "", ""),
        upstream_yaml("refused", refused, "", ""),
    ];
    let mut servers = Vec::new();
    for i in 0..10 {
        let s = doc_server().await;
        s.serve("/swagger.json", PETSTORE);
        yamls.push(upstream_yaml(&format!("live{i}"), s.addr, "", ""));
        servers.push(s);
    }
    let (_d, store) = store_with(&yamls).await;
    let c = FdsConfig {
        probe_timeout: Duration::from_millis(800),
        concurrency: 4,
        ..FdsConfig::default()
    };
    let started = Instant::now();
    let state = poll(&store, &c).await;
    let total = started.elapsed();
    for i in 0..10 {
        let st = &state[&key(&format!("live{i}"))];
        assert_eq!(st.functions, 4);
        assert!(
            st.poll_duration_ms.unwrap() < 400,
            "live{i} took {:?}ms",
            st.poll_duration_ms
        );
    }
    assert!(
        state[&key("hole")]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no answer within"),
        "{:?}",
        state[&key("hole")]
    );
    assert!(
        state[&key("refused")]
            .last_error
            .as_deref()
            .unwrap()
            .contains("cannot connect")
    );
    // One pass costs about one probe timeout, not one per dead path or upstream.
    assert!(total < Duration::from_millis(2500), "{total:?}");
    drop(black_hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_blacklist_and_disabled_follow_labels() {
    let s = doc_server().await;
    s.serve("/swagger.json", PETSTORE);
    let on = "discovery.solo.io/function_discovery: enabled";
    let off = "discovery.solo.io/function_discovery: disabled";
    let (_d, store) = store_with(&[
        upstream_yaml("plain", s.addr, "", ""),
        upstream_yaml("opted-in", s.addr, on, ""),
        upstream_yaml("opted-out", s.addr, off, ""),
    ])
    .await;
    let names = |st: &fds::DiscoveryState| st.keys().map(|k| k.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(
            &poll(
                &store,
                &FdsConfig {
                    mode: Mode::Blacklist,
                    ..cfg()
                }
            )
            .await
        ),
        vec!["opted-in", "plain"]
    );
    assert_eq!(
        names(
            &poll(
                &store,
                &FdsConfig {
                    mode: Mode::Whitelist,
                    ..cfg()
                }
            )
            .await
        ),
        vec!["opted-in"]
    );
    assert!(
        poll(
            &store,
            &FdsConfig {
                mode: Mode::Disabled,
                ..cfg()
            }
        )
        .await
        .is_empty()
    );
    // A namespace label applies to the upstreams in it that have no label of their own.
    let mut ns = std::collections::BTreeMap::new();
    ns.insert(
        "gloo-system".to_string(),
        [(
            "discovery.solo.io/function_discovery".to_string(),
            "enabled".to_string(),
        )]
        .into(),
    );
    assert_eq!(
        names(
            &poll(
                &store,
                &FdsConfig {
                    mode: Mode::Whitelist,
                    namespace_labels: ns,
                    ..cfg()
                }
            )
            .await
        ),
        vec!["opted-in", "plain"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_document_is_reported_and_nothing_is_written() {
    let s = doc_server().await;
    s.serve("/swagger.json", "{\"swagger\": \"2.0\", \"paths\": [1, 2");
    let (_d, store) = store_with(&[upstream_yaml("broken", s.addr, "", "")]).await;
    let before = store.get(&key("broken")).await.unwrap();
    let state = poll(&store, &cfg()).await;
    let err = state[&key("broken")].last_error.clone().unwrap();
    assert!(
        err.contains("/swagger.json") || err.contains("no API document found"),
        "{err}"
    );
    assert_eq!(store.get(&key("broken")).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_petstore_serves_gloos_api() {
    let p = epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", p.addr);
    let c = common::http().build().unwrap();
    assert_eq!(
        c.get(format!("{base}/swagger.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        PETSTORE
    );
    let list: serde_json::Value = c
        .get(format!("{base}/api/pets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        serde_json::json!([{"id":1,"name":"Dog","status":"available"},{"id":2,"name":"Cat","status":"pending"}])
    );
    let r = c.get(format!("{base}/api/pets/7")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("pet 7 not found"));
    let added: serde_json::Value = c
        .post(format!("{base}/api/pets"))
        .body(r#"{"id":3,"name":"Rabbit","tag":"new"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["name"], "Rabbit");
    assert_eq!(
        c.get(format!("{base}/api/pets/3"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.delete(format!("{base}/api/pets/3"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        c.get(format!("{base}/api/pets/3"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.post(format!("{base}/api/pets"))
            .body("nope")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[test]
fn discover_openapi_command_prints_functions() {
    let e = Epoxy::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/swagger.json");
    let j: serde_json::Value =
        serde_json::from_str(&e.run(&["discover", "openapi", file, "-o", "json"]).ok()).unwrap();
    let fns = j["functions"].as_array().unwrap();
    assert_eq!(fns.len(), 4);
    assert_eq!(fns[2]["name"], "findPetById");
    assert_eq!(fns[2]["method"], "GET");
    assert_eq!(fns[2]["path"], "/api/pets/{id}");
    assert_eq!(fns[2]["parameters"][0]["in"], "path");
    assert!(j["warnings"].is_array());
    let table = e.run(&["discover", "openapi", file]).ok();
    assert!(table.contains("findPetById") && table.contains("/api/pets/{id}"));
    // Form data gives a warning on the function, not a failure.
    let form = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openapi/3.0_json_form-data.json"
    );
    let j: serde_json::Value =
        serde_json::from_str(&e.run(&["discover", "openapi", form, "-o", "json"]).ok()).unwrap();
    assert!(
        j["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| !f["warnings"].as_array().unwrap().is_empty())
    );
    // Not a document: exit 1 with one line.
    let bad = e.file("bad.yaml");
    std::fs::write(&bad, "just: yaml\n").unwrap();
    let err = e
        .run(&["discover", "openapi", bad.to_str().unwrap()])
        .refused();
    assert!(
        err.contains("not a Swagger 2.0 / OpenAPI 3.x document"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

// --- discovered functions, called through the gateway ------------------------------------------

/// An upstream of `name` on `addr` whose document is the real-world fixture `file`, inline.
fn upstream_with_document(name: &str, addr: SocketAddr, file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi-corpus/real-world")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::json!({
        "apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
        "metadata": {"name": name, "namespace": "gloo-system"},
        "spec": {"static": {
            "hosts": [{"addr": addr.ip().to_string(), "port": addr.port()}],
            "serviceSpec": {"rest": {"swaggerInfo": {"inline": text}}}}}
    })
    .to_string()
}

/// One request on its own connection, as `version` (`HTTP/1.1` stays on the gateway's fast
/// path, `HTTP/1.0` is handed to hyper); the status and the upstream's echo of what it got.
async fn call(
    gw: SocketAddr,
    version: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!("{method} {target} {version}\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut s = tokio::net::TcpStream::connect(gw).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The gateway's count of connections its fast path handed to hyper.
async fn handoffs(h: &common::gw::Harness) -> u64 {
    h.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("epoxy_http1_handoffs_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_functions_work_when_called() {
    let api = common::upstream::start("api");
    let h = common::gw::Harness::start().await;
    let docs = [
        ("sts", "aws-sts.yaml", 2),
        ("graph", "msgraph-users.json", 2),
        ("docker", "docker-build.json", 3),
        ("weather", "weather-alerts.yaml", 1),
    ];
    let yaml: Vec<String> = docs
        .iter()
        .map(|(name, file, _)| upstream_with_document(name, api.addr, file))
        .collect();
    h.apply(&format!("[{}]", yaml.join(","))).await;
    let set = h.store.list().await.unwrap().resources;
    let state = fds::poll_once(
        h.store.as_ref(),
        &set,
        &cfg(),
        &epoxy::net::document_client(0).unwrap(),
        None,
    )
    .await;
    let mut written = Vec::new();
    for (name, _, functions) in docs {
        let s = &state[&key(name)];
        assert_eq!(s.last_error, None, "{name}");
        assert_eq!(s.functions, functions, "{name}: {:?}", s.warnings);
        written.push(h.store.get(&key(name)).await.unwrap());
    }
    h.wait_for(&written).await;
    let route = |prefix: &str, method: &str, up: &str, f: &str, params: &str| {
        format!(
            "    - matchers: [{{prefix: '{prefix}', methods: [{method}]}}]\n      routeAction:\n        single:\n          upstream: {{name: {up}}}\n          destinationSpec: {{rest: {{functionName: {f}, parameters: {{headers: {{{params}}}}}}}}}\n"
        )
    };
    let routes = [
        route(
            "/sts/",
            "GET",
            "sts",
            "GET_AssumeRole",
            "':path': '/sts/{RoleSessionName}', x-amz-date: '{X-Amz-Date}'",
        ),
        route(
            "/graph/users/",
            "PATCH",
            "graph",
            "users.user.UpdateUser",
            "':path': '/graph/users/{user-id}'",
        ),
        route(
            "/graph/me",
            "PATCH",
            "graph",
            "users.user.UpdateUser",
            "x-user: '{user-id}'",
        ),
        route("/graph/body", "PATCH", "graph", "users.user.UpdateUser", ""),
        route(
            "/docker/build",
            "POST",
            "docker",
            "ImageBuild",
            "x-registry-config: '{X-Registry-Config}'",
        ),
        route(
            "/docker/push/",
            "POST",
            "docker",
            "ImagePush",
            "':path': '/docker/push/{name}', x-registry-auth: '{X-Registry-Auth}'",
        ),
        route(
            "/weather/",
            "GET",
            "weather",
            "alertsAt",
            "':path': '/weather/{lat}/{lon}', api-key: '{Api-Key}'",
        ),
    ];
    h.apply(&common::gw::vs("default", "['*']", &routes.concat()))
        .await;
    let gw = h.handle.addr;

    let graph_body = br##"{"@odata.type": "#microsoft.graph.user", "displayName": "Ada",
        "start-date": "2026-01-01", "1st": 1, "$count": 2, "passwordProfile": {"@odata.type": "#p",
        "forceChangePasswordNextSignIn": true}}"##;
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let (s, e) = call(
            gw,
            version,
            "GET",
            "/sts/s1",
            &[("x-amz-date", "20260101T000000Z")],
            b"",
        )
        .await;
        assert_eq!(s, 200, "{version} {e}");
        assert_eq!(
            e["path"], "/?RoleArn=&RoleSessionName=s1&Version=2011-06-15&Action=AssumeRole",
            "{version}"
        );
        assert_eq!(e["headers"]["x-amz-date"], "20260101T000000Z", "{version}");

        let (s, e) = call(gw, version, "PATCH", "/graph/users/ada-1", &[], graph_body).await;
        assert_eq!(s, 200, "{version} {e}");
        assert_eq!(e["path"], "/v1.0/users/ada-1", "{version}");
        assert_eq!(
            e["headers"]["content-type"], "application/json",
            "{version}"
        );
        let sent: serde_json::Value = serde_json::from_str(e["body"].as_str().unwrap())
            .unwrap_or_else(|err| panic!("{err}: {e}"));
        assert_eq!(
            sent["@odata.type"], "#microsoft.graph.user",
            "{version}: {sent}"
        );
        assert_eq!(sent["start-date"], "2026-01-01", "{version}: {sent}");
        assert_eq!(sent["1st"], 1, "{version}: {sent}");
        assert_eq!(sent["displayName"], "Ada", "{version}: {sent}");
        assert_eq!(
            sent["passwordProfile"]["@odata.type"], "#p",
            "{version}: {sent}"
        );
        assert_eq!(
            sent["passwordProfile"]["forceChangePasswordNextSignIn"], true,
            "{version}"
        );

        let (s, e) = call(
            gw,
            version,
            "POST",
            "/docker/build",
            &[
                ("content-type", "application/x-tar"),
                ("x-registry-config", "cfg"),
            ],
            b"TAR\x00DATA",
        )
        .await;
        assert_eq!(s, 200, "{version} {e}");
        assert_eq!(e["path"], "/v1.41/build?t=", "{version}");
        assert_eq!(
            e["headers"]["content-type"], "application/x-tar",
            "{version}"
        );
        assert_eq!(e["headers"]["x-registry-config"], "cfg", "{version}");
        assert_eq!(e["body"], "TAR\u{0}DATA", "{version}");

        let (s, e) = call(
            gw,
            version,
            "POST",
            "/docker/push/web",
            &[("x-registry-auth", "tok")],
            b"",
        )
        .await;
        assert_eq!(s, 200, "{version} {e}");
        assert_eq!(e["path"], "/v1.41/images/web/push?tag=", "{version}");
        assert_eq!(e["headers"]["x-registry-auth"], "tok", "{version}");

        let (s, e) = call(
            gw,
            version,
            "GET",
            "/weather/1.5/-2",
            &[("api-key", "k")],
            b"",
        )
        .await;
        assert_eq!(s, 200, "{version} {e}");
        assert_eq!(e["path"], "/api/alerts?lat=1.5&lon=-2&limit=", "{version}");
        assert_eq!(e["headers"]["api-key"], "k", "{version}");
    }
    assert_eq!(
        handoffs(&h).await,
        5,
        "the HTTP/1.0 calls, and only they, went to hyper"
    );
    drop(api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_is_one_path_segment_never_a_dot_segment() {
    let api = common::upstream::start("api");
    let h = common::gw::Harness::start().await;
    h.apply(&upstream_with_document(
        "graph",
        api.addr,
        "msgraph-users.json",
    ))
    .await;
    let set = h.store.list().await.unwrap().resources;
    fds::poll_once(
        h.store.as_ref(),
        &set,
        &cfg(),
        &epoxy::net::document_client(0).unwrap(),
        None,
    )
    .await;
    h.wait_for(&[h.store.get(&key("graph")).await.unwrap()])
        .await;
    let route = |prefix: &str, params: &str| {
        format!(
            "    - matchers: [{{prefix: '{prefix}'}}]\n      routeAction:\n        single:\n          upstream: {{name: graph}}\n          destinationSpec: {{rest: {{functionName: users.user.UpdateUser, parameters: {{headers: {{{params}}}}}}}}}\n"
        )
    };
    let routes = [
        route("/p/", "':path': '/p/{user-id}/x'"),
        route("/h", "x-user: '{user-id}'"),
        route("/b", ""),
    ];
    h.apply(&common::gw::vs("default", "['*']", &routes.concat()))
        .await;
    let gw = h.handle.addr;
    let hits = api.hits();
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        for (target, headers, body) in [
            ("/p/%2e%2e/x", vec![], &b""[..]),
            ("/p/%2E/x", vec![], b""),
            ("/h", vec![("x-user", "..")], b""),
            ("/h", vec![("x-user", "%2e%2e")], b""),
            ("/b", vec![], br#"{"user-id": ".."}"#),
        ] {
            let (s, _) = call(gw, version, "PATCH", target, &headers, body).await;
            assert_eq!(s, 400, "{version} {target} {headers:?}");
        }
        // A value that only holds dots is one segment, encoded.
        let (s, e) = call(
            gw,
            version,
            "PATCH",
            "/b",
            &[],
            br#"{"user-id": "../admin"}"#,
        )
        .await;
        assert_eq!(s, 200, "{version}");
        assert_eq!(e["path"], "/v1.0/users/..%2Fadmin", "{version}");
    }
    assert_eq!(api.hits(), hits + 2, "no refused call reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_cannot_be_built_is_skipped_alone() {
    let docs = doc_server().await;
    // A header parameter whose name is no header name: that function cannot be built; the
    // other function of the document still is.
    docs.serve(
        "/swagger.json",
        r#"{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {
            "/a": {"get": {"operationId": "good", "responses": {}}},
            "/b": {"get": {"operationId": "bad", "parameters": [
                {"name": "bad header", "in": "header", "type": "string"}], "responses": {}}}}}"#,
    );
    let (_dir, store) = store_with(&[upstream_yaml("u", docs.addr, "", "")]).await;
    let state = poll(&store, &cfg()).await;
    let s = &state[&key("u")];
    assert_eq!(s.last_error, None);
    assert_eq!(functions_of(&store, "u").await, ["good"]);
    assert_eq!(s.functions, 1);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("function bad skipped: ")),
        "{:?}",
        s.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_document_is_a_setting() {
    let docs = doc_server().await;
    docs.serve("/swagger.json", PETSTORE);
    let (_dir, store) = store_with(&[upstream_yaml("u", docs.addr, "", "")]).await;
    let small = FdsConfig {
        max_document: 100,
        ..cfg()
    };
    let state = poll(&store, &small).await;
    let err = state[&key("u")].last_error.clone().unwrap_or_default();
    assert!(err.contains("larger than 100 bytes"), "{err}");
    assert!(functions_of(&store, "u").await.is_empty());
    let state = poll(&store, &cfg()).await;
    assert_eq!(state[&key("u")].last_error, None);
    assert_eq!(functions_of(&store, "u").await.len(), 4);
    assert_eq!(fds::parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(fds::parse_size("100MB"), Ok(100_000_000));
    assert_eq!(fds::parse_size("1024"), Ok(1024));
    assert!(fds::parse_size("0").is_err() && fds::parse_size("5 parsecs").is_err());
}

/// Discovery's writes are validated like the CLI's, against the whole store: an upstream whose
/// `sslConfig` names a Secret that exists gets its functions (validated alone, it was refused:
/// the Secret is elsewhere in the store); the same upstream naming a missing Secret is not
/// written, and its discovery state says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_functions_are_validated_against_the_whole_store() {
    let inline = serde_json::to_string(PETSTORE).unwrap();
    let spec = |secret: &str| {
        format!(
            "    serviceSpec:\n      rest:\n        swaggerInfo:\n          inline: {inline}\n  sslConfig:\n    secretRef: {{name: {secret}, namespace: gloo-system}}\n"
        )
    };
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: upstream-ca, namespace: gloo-system}\nstringData: {note: kept}\n".to_string();
    let (_d, store) = store_with(&[
        secret,
        upstream_yaml("with-secret", dead, "", &spec("upstream-ca")),
        upstream_yaml("dangling", dead, "", &spec("missing")),
    ])
    .await;
    let state = poll(&store, &cfg()).await;
    assert_eq!(state[&key("with-secret")].last_error, None);
    assert_eq!(functions_of(&store, "with-secret").await.len(), 4);
    let error = state[&key("dangling")]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(
        error.starts_with("discovered functions are invalid: ")
            && error.contains("spec.sslConfig.secretRef"),
        "{error}"
    );
    assert!(functions_of(&store, "dangling").await.is_empty());
}

/// Upstream discovery's writes go through the same validation: a Service port out of range
/// (a cluster's data is input too) makes an upstream that is refused and reported, while the
/// service's other port is written.
#[tokio::test]
async fn a_discovered_upstream_that_would_be_invalid_is_refused_and_reported() {
    let (_d, store) = store_with(&[]).await;
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {"ports": [{"port": 8080}, {"port": 70000}]}
    }))
    .unwrap();
    let done = epoxy::discovery::uds::reconcile(&store, &[svc], "gloo-system")
        .await
        .unwrap();
    assert_eq!(done.changes, 1);
    let bad = key("default-shop-70000");
    assert!(
        done.refused
            .get(&bad)
            .is_some_and(|r| r.contains("spec.kube.servicePort") && r.contains("port 70000")),
        "{:?}",
        done.refused
    );
    assert!(store.get(&key("default-shop-8080")).await.is_ok());
    assert!(matches!(
        store.get(&bad).await,
        Err(epoxy::store::StoreError::NotFound(_))
    ));
}

/// An upstream the gateway reaches over TLS (`sslConfig`) has its document fetched over TLS
/// with the gateway's own TLS client for it: verified against the `sslConfig`'s root CA (the
/// public roots refuse the server's certificate) and, with `sni`, for that name. A
/// `swaggerInfo.url` elsewhere is still fetched with the usual client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_upstreams_document_is_fetched_with_its_ssl_config() {
    let ca = common::certs::Ca::new("docs CA");
    let leaf = ca.leaf(&["docs.internal"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(common::tls::server_config(&leaf, None));
    let s = doc_server_with(Some(acceptor)).await;
    s.serve("/swagger.json", PETSTORE);
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let with_ssl = |ssl: &str| {
        upstream_yaml(
            "docs",
            s.addr,
            "discovery.solo.io/function_discovery: enabled",
            &format!("  sslConfig:\n{ssl}"),
        )
    };
    let c = FdsConfig {
        mode: Mode::Whitelist,
        ..cfg()
    };

    // The root and the name: found.
    let ssl = format!(
        "    sslFiles: {{rootCa: '{}'}}\n    sni: docs.internal\n",
        ca_file.display()
    );
    let (_dir, store) = store_with(&[with_ssl(&ssl)]).await;
    let state = poll(&store, &c).await;
    let st = &state[&key("docs")];
    assert_eq!(st.last_error, None, "{st:?}");
    assert_eq!(st.kind.as_deref(), Some("rest"));
    assert_eq!(
        st.document_url.as_deref(),
        Some(format!("https://docs.internal:{}/swagger.json", s.addr.port()).as_str())
    );
    assert!(
        functions_of(&store, "docs")
            .await
            .contains(&"findPetById".to_string())
    );

    // The host given by name: looked up, and asked for by the `sni` name all the same.
    let by_name = with_ssl(&ssl).replace("addr: '127.0.0.1'", "addr: 'localhost'");
    assert!(by_name.contains("localhost"), "{by_name}");
    let (_dir, store) = store_with(&[by_name]).await;
    let state = poll(&store, &c).await;
    assert_eq!(state[&key("docs")].last_error, None, "{state:?}");
    assert!(
        functions_of(&store, "docs")
            .await
            .contains(&"findPetById".to_string())
    );

    // Without its root (the public roots): refused on the certificate, nothing written.
    let (_dir, store) = store_with(&[with_ssl("    sni: docs.internal\n")]).await;
    let state = poll(&store, &c).await;
    let st = &state[&key("docs")];
    assert_eq!(st.kind, None, "{st:?}");
    let error = st.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );
    assert!(functions_of(&store, "docs").await.is_empty());
}
