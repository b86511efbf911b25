//! gRPC functions against a real gRPC server with reflection (Python's grpcio, an independent
//! implementation; tests/grpc/server.py): discovery by reflection fills the upstream, and
//! routes call its methods with JSON through the real gateway, on both transports.

mod common;
use common::grpc::{call, call_ndjson, discover, discover_shop, key, route, shop_routes, upstream};
use common::gw::{Harness, vs};
use common::pyserver::PyServer;
use epoxy::api::{Kind, Resource, ResourceKey};
use epoxy::store::Store;
use serde_json::{Value, json};
use std::time::Duration;

fn grpc_server() -> PyServer {
    PyServer::start("grpc/server.py", &[], &[])
}

async fn discovery_then_calls(fast_path: bool) {
    let server = grpc_server();
    let h = Harness::with(|c| c.fast_path = fast_path).await;
    let (u, services) = discover_shop(&h, &server.addr()).await;
    assert_eq!(
        services,
        vec![
            ("shop.v1".into(), "Admin".into(), vec!["Ping".into()]),
            (
                "shop.v1".into(),
                "Pets".into(),
                vec!["GetPet".into(), "ListPets".into(), "CreatePet".into()]
            ),
        ]
    );
    // A second pass finds the same: nothing written.
    let before = u.metadata.resource_version.clone();
    discover(&h).await;
    let Ok(Resource::Upstream(again)) = h.store.get(&key("shop")).await else {
        panic!()
    };
    assert_eq!(
        again.metadata.resource_version, before,
        "written only on change"
    );

    h.apply(&vs("default", "['*']", &shop_routes())).await;

    // Unary, the variable from the path; the proto3 JSON mapping both ways (int64 as a
    // string, enums by name, a Timestamp as RFC 3339).
    let (status, pet) = call(&h, reqwest::Method::GET, "/pets/1", None).await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(
        pet,
        json!({"id": "1", "name": "Rex", "tags": ["good", "dog"], "kind": "DOG", "born": "2020-01-02T03:04:05Z"})
    );
    // gRPC statuses as HTTP statuses, with the server's message.
    let (status, e) = call(&h, reqwest::Method::GET, "/pets/9", None).await;
    assert_eq!(status, 404, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("NOT_FOUND: no pet 9"),
        "{e}"
    );
    let (status, e) = call(&h, reqwest::Method::GET, "/pets/-4", None).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("is negative"),
        "{e}"
    );
    let (status, e) = call(&h, reqwest::Method::POST, "/admin", Some(json!({}))).await;
    assert_eq!(status, 403, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("admins only"),
        "{e}"
    );
    // Server streaming: a JSON array, filtered by the request's fields.
    let (status, pets) = call(
        &h,
        reqwest::Method::POST,
        "/list",
        Some(json!({"tag": "dog"})),
    )
    .await;
    assert_eq!(status, 200, "{pets}");
    let names: Vec<&str> = pets
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Rex", "Fido"]);
    let pets_of_tag_dog = pets.as_array().unwrap().clone();
    let (_, pets) = call(
        &h,
        reqwest::Method::POST,
        "/list",
        Some(json!({"limit": 1})),
    )
    .await;
    assert_eq!(pets.as_array().unwrap().len(), 1);
    // Or newline-delimited JSON, when the client asks for it.
    let lines = call_ndjson(&h, "/list", json!({"tag": "dog"})).await;
    assert_eq!(lines, pets_of_tag_dog);
    // A body as the request message (field names in either form), metadata passed on.
    let (status, pet) = call(
        &h,
        reqwest::Method::POST,
        "/create",
        Some(json!({"name": "Kit", "kind": "CAT", "owner_name": "ann", "tags": ["new"]})),
    )
    .await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(
        pet,
        json!({"id": "100", "name": "Kit", "kind": "CAT", "ownerName": "ann", "tags": ["new", "tenant:acme"]})
    );
    // A body that is not the message: 400 naming the type, nothing sent.
    let (status, e) = call(
        &h,
        reqwest::Method::POST,
        "/create",
        Some(json!({"nope": 1})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("shop.v1.Pet"),
        "{e}"
    );
    let (status, _) = call(&h, reqwest::Method::POST, "/create", Some(json!([1]))).await;
    assert_eq!(status, 400);

    // The server gone: 503, and the gateway recovers when it is back on the same port.
    let port = server.port;
    drop(server);
    let (status, e) = call(&h, reqwest::Method::GET, "/pets/1", None).await;
    assert_eq!(status, 503, "{e}");
    let _back = PyServer::start("grpc/server.py", &[&port.to_string()], &[]);
    let (status, pet) = call(&h, reqwest::Method::GET, "/pets/2", None).await;
    assert_eq!((status, pet["name"].as_str()), (200, Some("Tom")));

    // The fast path served every call itself (none of its connections went to hyper).
    let handoffs = h
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("epoxy_http1_handoffs_total "))
        .map(|n| n.trim().to_string());
    if fast_path {
        assert_eq!(handoffs.as_deref(), Some("0"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_then_calls_on_the_fast_path() {
    discovery_then_calls(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_then_calls_on_hyper_alone() {
    discovery_then_calls(false).await;
}

/// A route to a method the descriptors do not have, or to an upstream without descriptors,
/// is answered 503 naming why; the rest of the table serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_that_is_not_there_is_a_clear_503() {
    let server = grpc_server();
    let h = Harness::start().await;
    h.apply(&upstream("shop", &server.addr())).await;
    discover(&h).await;
    let routes = [
        route("/nope", "Pets", "Nope", ""),
        route("/pets/", "Pets", "GetPet", ""),
    ]
    .concat();
    h.apply(&vs("default", "['*']", &routes)).await;
    let (status, e) = call(&h, reqwest::Method::POST, "/nope", Some(json!({}))).await;
    assert_eq!(status, 503);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("service `shop.v1.Pets` has no method `Nope`"),
        "{e}"
    );
    let (status, pet) = call(&h, reqwest::Method::POST, "/pets/", Some(json!({"id": 3}))).await;
    assert_eq!((status, pet["name"].as_str()), (200, Some("Fido")));

    // The route's timeout bounds the call (sent as `grpc-timeout` too): 504.
    let slow = "    - matchers: [{prefix: '/slow'}]\n      options: {timeout: 300ms}\n      routeAction:\n        single:\n          upstream: {name: shop}\n          destinationSpec: {grpc: {package: shop.v1, service: Pets, function: GetPet}}\n";
    h.apply(&vs("default", "['*']", &format!("{routes}{slow}")))
        .await;
    let started = std::time::Instant::now();
    let (status, e) = call(&h, reqwest::Method::POST, "/slow", Some(json!({"id": 42}))).await;
    assert_eq!(status, 504, "{e}");
    assert!(started.elapsed() < Duration::from_millis(1500));

    // `epoxy get upstreams` shows the kind and count; the console's functions view lists
    // the methods beside REST functions.
    let out = std::process::Command::new(common::bin())
        .env("EPOXY_DIR", h.dir.path())
        .env_remove("XDG_DATA_HOME")
        .args(["get", "upstreams"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("grpc 4: shop.v1.Admin/Ping, shop.v1.Pets/GetPet, shop.v1.Pets/ListPets, shop.v1.Pets/CreatePet"),
        "{text}"
    );
    let mut data = epoxy::tui::data::Data::default();
    data.set_listing(std::sync::Arc::new(h.store.list().await.unwrap()));
    let listed: Vec<(String, String, String)> = data
        .functions(Some("shop"))
        .into_iter()
        .map(|f| (f.name, f.method, f.path))
        .collect();
    assert_eq!(listed.len(), 4);
    assert!(listed.contains(&(
        "GetPet".into(),
        "gRPC".into(),
        "/shop.v1.Pets/GetPet".into()
    )));
}

/// `epoxy discover grpc` lists a server's services without a store.
#[test]
fn discover_grpc_lists_services() {
    let server = grpc_server();
    let e = common::Epoxy::new();
    let out = e.run(&["discover", "grpc", &server.addr()]).ok();
    for want in [
        "shop.v1.Pets",
        "ListPets",
        "server streaming",
        "shop.v1.Admin",
        "Ping",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let json: Value = serde_json::from_str(
        &e.run(&["discover", "grpc", &server.addr(), "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(
        json["files"],
        json!(["google/protobuf/timestamp.proto", "shop.proto"])
    );
    let refused = e.run(&["discover", "grpc", "127.0.0.1:1"]).refused();
    assert!(refused.contains("127.0.0.1:1"), "{refused}");
}

/// Gloo's gRPC and AWS fields are checked on `apply`: each mistake refused at its path.
#[test]
fn function_fields_are_checked_on_apply() {
    let e = common::Epoxy::new();
    let aws = |body: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: l, namespace: gloo-system}}\nspec:\n  aws: {body}\n"
        )
    };
    for (yaml, want) in [
        (
            aws("{lambdaFunctions: []}"),
            "spec.aws.region: a region is required",
        ),
        (
            aws(
                "{region: us-east-1, lambdaFunctions: [{logicalName: a, lambdaFunctionName: a}, {logicalName: a, lambdaFunctionName: b}]}",
            ),
            "spec.aws.lambdaFunctions[1].logicalName: `a` is listed twice",
        ),
        (
            aws("{region: us-east-1, lambdaFunctions: [{logicalName: a}]}"),
            "lambdaFunctions[0].lambdaFunctionName: a function name is required",
        ),
    ] {
        let out = e.apply(&yaml).refused();
        assert!(out.contains(want), "{want}: {out}");
    }
    e.apply(&aws(
        "{region: us-east-1, lambdaFunctions: [{logicalName: a, lambdaFunctionName: a}]}",
    ))
    .ok();
    e.apply("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: web, namespace: gloo-system}\nspec:\n  static: {hosts: [{addr: 127.0.0.1, port: 80}]}\n")
        .ok();
    let route = |dest: &str| {
        vs(
            "default",
            "['*']",
            &format!("    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {dest}}}\n"),
        )
    };
    for (dest, want) in [
        (
            "{upstream: {name: l}, destinationSpec: {aws: {logicalName: a, invocationStyle: LATER}}}",
            "invocationStyle: `LATER` is not SYNC or ASYNC",
        ),
        (
            "{upstream: {name: l}, destinationSpec: {aws: {logicalName: a, unwrapAsAlb: true}}}",
            "unwrapAsAlb: epoxy does not unwrap ALB responses",
        ),
        (
            "{upstream: {name: web}, destinationSpec: {aws: {logicalName: a}}}",
            "upstream `web` is not an AWS upstream",
        ),
        (
            "{upstream: {name: web}, destinationSpec: {grpc: {package: p, function: F}}}",
            "destinationSpec.grpc.service: a service name is required",
        ),
    ] {
        let out = e.apply(&route(dest)).refused();
        assert!(out.contains(want), "{want}: {out}");
    }
    // A function the upstream does not list (yet) is a warning, not a refusal.
    let warned = e.apply(&route(
        "{upstream: {name: l}, destinationSpec: {aws: {logicalName: b}}}",
    ));
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(
        warned
            .stderr
            .contains("upstream `l` has no Lambda function `b` (yet)"),
        "{}",
        warned.stderr
    );
}

/// gRPC over TLS: the upstream discovered in clear is served by a TLS-only server (grpcio's),
/// reached with the upstream's `sslConfig` (its root, its name) and HTTP/2 by ALPN; with
/// another root, the call fails with 503 and the server sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tls_verify_the_server() {
    use common::certs;
    let plain = grpc_server();
    let h = Harness::start().await;
    h.apply(&upstream("shop", &plain.addr())).await;
    discover(&h).await;
    let Ok(Resource::Upstream(u)) = h.store.get(&key("shop")).await else {
        panic!("no upstream")
    };
    drop(plain);

    let ca = certs::Ca::new("grpc CA");
    let leaf = ca.leaf(&["shop.internal"]);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (cert, key_file, root) = (
        file("cert.pem", &leaf.cert),
        file("key.pem", &leaf.key),
        file("ca.pem", &ca.pem()),
    );
    let other_root = file("other.pem", &certs::Ca::new("other").pem());
    let secure = PyServer::start(
        "grpc/server.py",
        &[],
        &[("GRPC_TLS_CERT", &cert), ("GRPC_TLS_KEY", &key_file)],
    );
    let serve_with = |root: &str| {
        let mut u = u.clone();
        u.metadata.resource_version = None;
        if let Some(s) = u.spec.static_.as_mut() {
            s.hosts[0].port = u32::from(secure.port);
        }
        u.spec.ssl_config = Some(epoxy::api::ssl::UpstreamSslConfig {
            ssl_files: Some(epoxy::api::ssl::SslFiles {
                root_ca: Some(root.to_string()),
                ..Default::default()
            }),
            sni: Some("shop.internal".into()),
            ..Default::default()
        });
        Resource::Upstream(u)
    };
    let routes = route(
        "/pets/",
        "Pets",
        "GetPet",
        ", parameters: {path: '/pets/{id}'}",
    );
    h.apply(&vs("default", "['*']", &routes)).await;
    h.apply(&serve_with(&root).to_yaml()).await;
    let (status, pet) = call(&h, reqwest::Method::GET, "/pets/1", None).await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(pet["name"], "Rex", "{pet}");

    h.apply(&serve_with(&other_root).to_yaml()).await;
    let (status, e) = call(&h, reqwest::Method::GET, "/pets/1", None).await;
    assert_eq!(status, 503, "{e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("certificate"),
        "{e}"
    );
}

/// The descriptor set of `tests/grpc/<file>` with its imports, compiled by grpcio-tools'
/// protoc (as `protoc --include_imports --descriptor_set_out` makes it for Envoy), base64.
fn descriptor_set(file: &str) -> String {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set.pb");
    let status = std::process::Command::new("python3")
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}/tests/grpc", env!("CARGO_MANIFEST_DIR")))
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg(file)
        .status()
        .expect("python3 -m grpc_tools.protoc (.ci/run installs grpcio-tools)");
    assert!(status.success(), "protoc {file}");
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(out).unwrap())
}

/// An upstream for the server that transcodes `books.v1.Books` (Gloo's
/// `serviceSpec.grpcJsonTranscoder`), with more of its fields in `extra` (YAML, one a line).
fn books_upstream(name: &str, addr: &str, set: &str, extra: &[&str]) -> String {
    let (a, p) = addr.rsplit_once(':').unwrap();
    let extra: String = extra.iter().map(|l| format!("        {l}\n")).collect();
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: {name}\n  namespace: gloo-system\nspec:\n  static:\n    hosts: [{{addr: '{a}', port: {p}}}]\n    serviceSpec:\n      grpcJsonTranscoder:\n        protoDescriptorBin: {set}\n        services: [books.v1.Books]\n{extra}"
    )
}

/// A route on `prefix` (and header `header`, if any) to upstream `up`.
fn plain_route(prefix: &str, header: Option<&str>, up: &str) -> String {
    let headers = header.map_or(String::new(), |h| format!(", headers: [{{name: {h}}}]"));
    format!(
        "    - matchers: [{{prefix: '{prefix}'{headers}}}]\n      routeAction: {{single: {{upstream: {{name: {up}}}}}}}\n"
    )
}

async fn send(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = Harness::client().request(method, format!("{}{path}", h.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn send_json(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, text) = send(h, method, path, headers, body).await;
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, v)
}

/// A gRPC request (one framed message) sent through the gateway over HTTP/2: the framed
/// answer, not transcoded.
async fn grpc_through(h: &Harness, path: &str, message: &[u8]) -> (u16, String, Vec<u8>) {
    let client = common::http().http2_prior_knowledge().build().unwrap();
    let mut framed = vec![0u8];
    framed.extend((message.len() as u32).to_be_bytes());
    framed.extend(message);
    let resp = client
        .post(format!("{}{path}", h.url))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(framed)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

async fn transcoding(fast_path: bool) {
    let server = grpc_server();
    let set = descriptor_set("books.proto");
    let h = Harness::with(|c| c.fast_path = fast_path).await;
    h.apply(&books_upstream(
        "books",
        &server.addr(),
        &set,
        &[
            "matchIncomingRequestRoute: true",
            "ignoredQueryParameters: [trace]",
        ],
    ))
    .await;
    h.apply(&books_upstream(
        "books-print",
        &server.addr(),
        &set,
        &[
            "matchIncomingRequestRoute: true",
            "convertGrpcStatus: true",
            "printOptions: {addWhitespace: true, alwaysPrintPrimitiveFields: true, alwaysPrintEnumsAsInts: true, preserveProtoFieldNames: true}",
        ],
    ))
    .await;
    // Gloo's default: the transcoded call is routed again by its gRPC path.
    h.apply(&books_upstream("books-reroute", &server.addr(), &set, &[]))
        .await;
    let routes = [
        plain_route("/v1/", Some("x-print"), "books-print"),
        plain_route("/v1/", Some("x-reroute"), "books-reroute"),
        plain_route("/v1/", None, "books"),
    ]
    .concat();
    h.apply(&vs("default", "['*']", &routes)).await;
    use reqwest::Method as M;

    // GET with path variables (a string and an int64): the proto3 JSON mapping back.
    let (status, book) = send_json(&h, M::GET, "/v1/shelves/main/books/1", &[], None).await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(
        book,
        json!({"id": "1", "title": "Dune", "authorName": "Frank Herbert", "genre": "NOVEL", "tags": ["sf"], "pages": 412, "shelf": "main"})
    );
    // A gRPC error status: its HTTP status and message.
    let (status, e) = send_json(&h, M::GET, "/v1/shelves/main/books/9", &[], None).await;
    assert_eq!(status, 404, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("NOT_FOUND: no book 9 on main"),
        "{e}"
    );
    // Query parameters into fields (proto or JSON names, a repeated field twice), one listed
    // in `ignoredQueryParameters`.
    let (status, list) = send_json(
        &h,
        M::GET,
        "/v1/books?authorName=Frank%20Herbert&tags=sf&tags=sequel&trace=1",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["books"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["books"][0]["title"], "Children of Dune");
    let (_, list) = send_json(&h, M::GET, "/v1/books?limit=2", &[], None).await;
    assert_eq!(list["books"].as_array().unwrap().len(), 2, "{list}");
    // A parameter that is no field: 400 naming it, nothing called.
    let (status, e) = send_json(&h, M::GET, "/v1/books?colour=red", &[], None).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("query parameter `colour` is no field of `books.v1.ListBooksRequest`"),
        "{e}"
    );
    // An additional binding, the variable percent-decoded; its `response_body` answers the
    // response's `books` field alone.
    let (status, list) = send_json(&h, M::GET, "/v1/authors/Sylvia%20Plath/books", &[], None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["title"], "Ariel", "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    // POST with `body: "*"`: the body is the message.
    let (status, book) = send_json(
        &h,
        M::POST,
        "/v1/books",
        &[],
        Some(json!({"title": "Emma", "author_name": "Jane Austen", "genre": "NOVEL"})),
    )
    .await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(
        book,
        json!({"id": "100", "title": "Emma", "authorName": "Jane Austen", "genre": "NOVEL"})
    );
    // `body: "book"`: the body is one field, the rest from the path.
    let (status, book) = send_json(
        &h,
        M::POST,
        "/v1/shelves/new/books",
        &[],
        Some(json!({"title": "Persuasion"})),
    )
    .await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(book, json!({"title": "Persuasion", "shelf": "new"}));
    // A body that is not the message: 400 naming the type.
    let (status, e) = send_json(&h, M::POST, "/v1/books", &[], Some(json!({"nope": 1}))).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("books.v1.Book"),
        "{e}"
    );

    // printOptions: proto field names, default values, enums as numbers, whitespace; and
    // `convertGrpcStatus`: an error as a google.rpc.Status with the gRPC headers.
    let (status, _, text) = send(
        &h,
        M::GET,
        "/v1/shelves/main/books/2",
        &[("x-print", "1")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("\n  \"author_name\": \"Sylvia Plath\""),
        "{text}"
    );
    let book: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(book["genre"], 2, "{text}");
    assert_eq!(book["pages"], 0, "{text}");
    assert_eq!(book["tags"], json!([]), "{text}");
    let (status, headers, text) = send(
        &h,
        M::GET,
        "/v1/shelves/main/books/7",
        &[("x-print", "1")],
        None,
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"code": 5, "message": "no book 7 on main"})
    );
    assert_eq!(headers["grpc-status"], "5");
    assert_eq!(headers["grpc-message"], "no book 7 on main");
    // A rich status (grpcio-status' grpc-status-details-bin): with `convertGrpcStatus` the
    // server's google.rpc.Status, a detail of a type the descriptors define as its fields
    // (printed by the transcoder's printOptions), an unknown one (google.rpc.ErrorInfo) as its
    // bytes; without, the gateway's error with the same details.
    let (status, headers, text) = send(
        &h,
        M::GET,
        "/v1/shelves/main/books/13",
        &[("x-print", "1")],
        None,
    )
    .await;
    assert_eq!(status, 400, "FAILED_PRECONDITION: {text}");
    assert_eq!(headers["grpc-status"], "9");
    let rich: Value = serde_json::from_str(&text).unwrap();
    let held = json!({"@type": "type.googleapis.com/books.v1.Book", "id": "13", "title": "Emma", "shelf": "loans"});
    // Printed with the transcoder's printOptions, as its answers are: proto field names,
    // default values, enums as numbers.
    let held_printed = json!({"@type": "type.googleapis.com/books.v1.Book", "id": "13", "title": "Emma", "author_name": "", "genre": 0, "tags": [], "pages": 0, "shelf": "loans"});
    assert_eq!(
        (&rich["code"], &rich["message"], &rich["details"][0]),
        (&json!(9), &json!("book 13 is checked out"), &held_printed),
        "{text}"
    );
    let error_info = |detail: &Value| {
        use base64::Engine;
        assert_eq!(
            detail["@type"], "type.googleapis.com/google.rpc.ErrorInfo",
            "{detail}"
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(detail["value"].as_str().unwrap())
            .unwrap();
        // ErrorInfo {reason = 1, domain = 2}: length-delimited strings.
        let mut want = vec![0x0a, 11];
        want.extend(b"CHECKED_OUT");
        want.extend([0x12, 13]);
        want.extend(b"books.example");
        assert_eq!(raw, want);
    };
    error_info(&rich["details"][1]);
    let (status, headers, text) = send(&h, M::GET, "/v1/shelves/main/books/13", &[], None).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(headers["x-epoxy-error"], "grpc-status");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        e["message"], "FAILED_PRECONDITION: book 13 is checked out",
        "{text}"
    );
    assert_eq!(e["details"][0], held, "{text}");
    error_info(&e["details"][1]);

    // matchIncomingRequestRoute false: the call is routed again by its gRPC path; no route
    // takes `/books.v1.Books/GetBook` yet: 404 saying so.
    let (status, e) = send_json(
        &h,
        M::GET,
        "/v1/shelves/main/books/1",
        &[("x-reroute", "1")],
        None,
    )
    .await;
    assert_eq!(status, 404, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no route takes the transcoded call `POST /books.v1.Books/GetBook`"),
        "{e}"
    );
    // With a route for the gRPC paths, it is called; gRPC clients pass through that route
    // untouched (a method without a rule, its framed answer back).
    let http_routes = routes;
    let routes = format!(
        "{http_routes}{}",
        plain_route("/books.v1.Books/", None, "books")
    );
    h.apply(&vs("default", "['*']", &routes)).await;
    let (status, book) = send_json(
        &h,
        M::GET,
        "/v1/shelves/main/books/3",
        &[("x-reroute", "1")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(book["title"], "Children of Dune");
    // ListBooksRequest{author_name: "Sylvia Plath"}: field 1, length-delimited.
    let mut msg = vec![0x0a, 12];
    msg.extend(b"Sylvia Plath");
    let (status, ct, body) = grpc_through(&h, "/books.v1.Books/CountBooks", &msg).await;
    assert_eq!(
        (status, ct.as_str()),
        (200, "application/grpc"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body[0], 0, "an uncompressed message");
    assert!(
        body.windows(5).any(|w| w == b"Ariel"),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    // The gRPC route's own stages run on the re-routed call too (Envoy would run only the
    // first route's): a gRPC route that refuses (a fault abort, every request) refuses the
    // transcoded call that reaches it, and its gRPC clients alike.
    let guarded = "    - matchers: [{prefix: '/books.v1.Books/'}]\n      options: {faults: {abort: {percentage: 100, httpStatus: 403}}}\n      routeAction: {single: {upstream: {name: books}}}\n";
    h.apply(&vs("default", "['*']", &format!("{http_routes}{guarded}")))
        .await;
    let (status, _, text) = send(
        &h,
        M::GET,
        "/v1/shelves/main/books/3",
        &[("x-reroute", "1")],
        None,
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(!text.contains("Children of Dune"), "{text}");
    let (status, _, _) = grpc_through(&h, "/books.v1.Books/CountBooks", &msg).await;
    assert_eq!(status, 403);
    h.apply(&vs("default", "['*']", &routes)).await;
    // A path no rule has, not gRPC: the upstream gets it as it is (grpcio resets such a
    // stream, so the gateway answers 503 `upstream-reset` naming it, no transcoding error).
    let (status, e) = send_json(&h, M::GET, "/v1/nothing", &[], None).await;
    assert_eq!(status, 503, "{e}");
    assert_eq!(
        (e["error"].as_str(), e["upstream"].as_str()),
        (Some("upstream-reset"), Some("books")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcoding_on_the_fast_path() {
    transcoding(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcoding_on_hyper_alone() {
    transcoding(false).await;
}

/// `autoMapping` and `protoDescriptor` (a file): methods without a rule are called by POST
/// to `/package.Service/Method` with a JSON body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mapping_from_a_descriptor_file() {
    use base64::Engine;
    let server = grpc_server();
    let set = base64::engine::general_purpose::STANDARD
        .decode(descriptor_set("books.proto"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("books.pb");
    std::fs::write(&file, set).unwrap();
    let (a, p) = server
        .addr()
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let h = Harness::start().await;
    h.apply(&format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: books, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: '{a}', port: {p}}}]\n    serviceSpec:\n      grpcJsonTranscoder:\n        protoDescriptor: '{}'\n        services: [books.v1.Books]\n        autoMapping: true\n        matchIncomingRequestRoute: true\n",
        file.display()
    ))
    .await;
    h.apply(&vs("default", "['*']", &plain_route("/", None, "books")))
        .await;
    let (status, list) = send_json(
        &h,
        reqwest::Method::POST,
        "/books.v1.Books/CountBooks",
        &[],
        Some(json!({"tags": ["sf"]})),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["books"].as_array().unwrap().len(), 2, "{list}");
    // Methods with a rule keep to it.
    let (status, book) =
        send_json(&h, reqwest::Method::GET, "/v1/shelves/a/books/2", &[], None).await;
    assert_eq!((status, book["title"].as_str()), (200, Some("Ariel")));
}

/// A transcoder that cannot be built refuses the upstream on `apply`, naming the field.
#[test]
fn bad_transcoders_are_refused_on_apply() {
    let e = common::Epoxy::new();
    let books = descriptor_set("books.proto");
    let bad_rule = descriptor_set("bad_rule.proto");
    let up = |fields: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: b, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: 9}}]\n    serviceSpec:\n      grpcJsonTranscoder: {{{fields}}}\n"
        )
    };
    let at = "spec.static.serviceSpec.grpcJsonTranscoder";
    for (fields, want) in [
        (
            "protoDescriptorBin: 'not*base64', services: [books.v1.Books]".to_string(),
            format!("{at}.protoDescriptorBin: descriptors are not base64"),
        ),
        (
            "protoDescriptorBin: aGVsbG8=, services: [books.v1.Books]".to_string(),
            format!("{at}.protoDescriptorBin: descriptors are not a FileDescriptorSet"),
        ),
        (
            format!("protoDescriptorBin: {books}, services: [books.v1.Shelves]"),
            format!("{at}.services: the descriptor set defines no service `books.v1.Shelves`"),
        ),
        (
            format!("protoDescriptorBin: {books}"),
            format!("{at}.services: name at least one service"),
        ),
        (
            "services: [books.v1.Books]".to_string(),
            format!("{at}.protoDescriptorBin: a descriptor set is required"),
        ),
        (
            "protoDescriptor: /nonexistent/books.pb, services: [books.v1.Books]".to_string(),
            format!("{at}.protoDescriptor: /nonexistent/books.pb"),
        ),
        (
            format!("protoDescriptorBin: {bad_rule}, services: [bad.v1.Bad]"),
            format!(
                "{at}.protoDescriptorBin: `bad.v1.Bad/Get`: `/v1/{{nope}}`: variable `nope`: `nope` is no field of `bad.v1.Req`"
            ),
        ),
        (
            "protoDescriptorConfigMap: {configMapRef: {name: c}}, services: [books.v1.Books]"
                .to_string(),
            "protoDescriptorConfigMap: epoxy does not read ConfigMaps".to_string(),
        ),
    ] {
        let out = e.apply(&up(&fields)).refused();
        assert!(out.contains(&want), "{want}: {out}");
    }
    e.apply(&up(&format!("protoDescriptorBin: {books}, services: [books.v1.Books], printOptions: {{addWhitespace: true}}")))
        .ok();
}

/// `get upstreams` lists the methods a transcoder serves as `grpc-json` functions: those with
/// a `google.api.http` rule (every method with `autoMapping`), from `protoDescriptorBin` and
/// from a `protoDescriptor` file, beside the upstream's discovered gRPC methods.
#[test]
fn transcoded_methods_are_listed_as_functions() {
    use base64::Engine;
    let e = common::Epoxy::new();
    let books = descriptor_set("books.proto");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("books.pb");
    std::fs::write(
        &file,
        base64::engine::general_purpose::STANDARD
            .decode(&books)
            .unwrap(),
    )
    .unwrap();
    let up = |name: &str, fields: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: 9}}]\n    serviceSpec:\n      grpcJsonTranscoder: {{{fields}}}\n"
        )
    };
    e.apply(&up(
        "books",
        &format!("protoDescriptorBin: {books}, services: [books.v1.Books]"),
    ))
    .ok();
    e.apply(&up(
        "books-file",
        &format!(
            "protoDescriptor: '{}', services: [books.v1.Books], autoMapping: true",
            file.display()
        ),
    ))
    .ok();
    let out = e.run(&["get", "upstreams"]).ok();
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}: {out}"))
            .to_string()
    };
    let rules = "books.v1.Books/GetBook, books.v1.Books/ListBooks, books.v1.Books/CreateBook, books.v1.Books/AddBook";
    assert!(
        row("books").ends_with(&format!("grpc-json 4: {rules}")),
        "CountBooks has no rule: {out}"
    );
    assert!(
        row("books-file").ends_with(&format!("grpc-json 5: {rules}, books.v1.Books/CountBooks")),
        "autoMapping serves CountBooks too: {out}"
    );
    // The file gone, its methods are not listed (and nothing fails).
    drop(dir);
    let out = e.run(&["get", "upstreams"]).ok();
    assert!(
        !out.lines()
            .any(|l| l.starts_with("books-file") && l.contains("grpc-json")),
        "{out}"
    );
}

/// Discovery asks reflection v1 first and v1alpha when the server has only that: a server
/// offering v1 alone, both, or v1alpha alone (grpcio-reflection's servicer under each name;
/// the server logs which one each call reached).
#[test]
fn discovery_asks_reflection_v1_then_v1alpha() {
    let e = common::Epoxy::new();
    let dir = tempfile::tempdir().unwrap();
    let v1 = "grpc.reflection.v1.ServerReflection";
    let v1alpha = "grpc.reflection.v1alpha.ServerReflection";
    for (mode, asked) in [("v1", v1), ("both", v1), ("v1alpha", v1alpha)] {
        let log = dir.path().join(format!("{mode}.log"));
        let server = PyServer::start(
            "grpc/server.py",
            &[],
            &[
                ("GRPC_REFLECTION", mode),
                ("GRPC_REFLECTION_LOG", log.to_str().unwrap()),
            ],
        );
        let out = e.run(&["discover", "grpc", &server.addr()]).ok();
        for want in ["shop.v1.Pets", "ListPets", "shop.v1.Admin"] {
            assert!(out.contains(want), "{mode}: {want}: {out}");
        }
        assert!(!out.contains("grpc.reflection"), "{mode}: {out}");
        let calls = std::fs::read_to_string(&log).unwrap();
        let reached: std::collections::BTreeSet<&str> = calls.lines().collect();
        assert_eq!(reached.into_iter().collect::<Vec<_>>(), [asked], "{mode}");
    }
}

/// The tester's body for a gRPC function (issue 17 §5) is the request message with every field
/// at its zero value, from the descriptors discovery wrote (a real server's, by reflection);
/// sent as it is, the method takes it.
#[tokio::test]
async fn the_tester_prefills_a_grpc_function_body_the_method_takes() {
    let server = grpc_server();
    let h = Harness::with(|_| {}).await;
    h.apply(&upstream("shop", &server.addr())).await;
    discover(&h).await;
    h.apply(&vs(
        "default",
        "['*']",
        &route("/create", "Pets", "CreatePet", ""),
    ))
    .await;
    let Ok(Resource::Upstream(u)) = h.store.get(&key("shop")).await else {
        panic!("no upstream")
    };
    let Ok(Resource::VirtualService(v)) = h
        .store
        .get(&ResourceKey::new(
            Kind::VirtualService,
            "gloo-system",
            "default",
        ))
        .await
    else {
        panic!("no virtual service")
    };
    let route = &v.spec.virtual_host.routes[0];
    let dest = route
        .route_action
        .as_ref()
        .and_then(|a| a.single.as_ref())
        .unwrap();
    let body = epoxy::tester::grpc_body::for_destination(dest, &u).unwrap();
    assert_eq!(
        body,
        json!({"id": "0", "name": "", "tags": [], "kind": "KIND_UNSPECIFIED",
               "born": "1970-01-01T00:00:00Z", "ownerName": ""})
    );
    let (status, pet) = call(&h, reqwest::Method::POST, "/create", Some(body)).await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(pet["id"], "100", "{pet}");
    assert_eq!(pet["tags"], json!(["tenant:acme"]), "{pet}");
}
