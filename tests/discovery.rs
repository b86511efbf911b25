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
    use http_body_util::Full;
    use hyper::service::service_fn;
    let docs: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let d = docs.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let d = d.clone();
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
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                .await;
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
    let client = epoxy::net::client();
    fds::poll_once(store, &set, c, &client, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_probe_path_is_found() {
    for path in PROBE_PATHS {
        let s = doc_server().await;
        // The YAML path gets the document in YAML, the others in JSON.
        let doc = if path.ends_with(".yaml") {
            epoxy::api::parse::value_to_yaml(&serde_json::from_str(PETSTORE).unwrap())
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
    let c = reqwest::Client::new();
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
