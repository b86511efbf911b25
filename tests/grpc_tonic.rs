//! gRPC functions against a tonic server with reflection v1 (tests/grpc_tonic/server.rs, in
//! the test's runtime): the Rust implementation beside grpcio's of tests/grpc.rs. Discovery
//! by reflection fills the upstream; routes call its methods with JSON through the real
//! gateway, on both transports: unary, server streaming, error statuses (in the headers of a
//! trailers-only answer, and in the trailers after messages), and a server restarted.

mod common;
#[path = "grpc_tonic/server.rs"]
mod server;

use common::grpc::{call, call_ndjson, discover, discover_shop, key, shop_routes};
use common::gw::{Harness, vs};
use epoxy::api::Resource;
use epoxy::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use server::TonicShop;

/// The pet names of a JSON array of pets.
fn names(pets: &Value) -> Vec<&str> {
    pets.as_array()
        .unwrap_or_else(|| panic!("not an array: {pets}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

async fn discovery_then_calls(fast_path: bool) {
    let server = TonicShop::start().await;
    let h = Harness::with(|c| c.fast_path = fast_path).await;
    let (u, services) = discover_shop(&h, &server.addr()).await;
    let services: Vec<(&str, &str, Vec<&str>)> = services
        .iter()
        .map(|(p, s, f)| {
            (
                p.as_str(),
                s.as_str(),
                f.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            ("shop.v1", "Pets", vec!["GetPet", "ListPets", "CreatePet"]),
            ("shop.v1", "Admin", vec!["Ping"]),
        ],
        "in the server's order; tonic-reflection's own service is not a function"
    );
    // A second pass finds the same (tonic's listing is in a stable order): nothing written.
    discover(&h).await;
    let Ok(Resource::Upstream(again)) = h.store.get(&key("shop")).await else {
        panic!("no upstream")
    };
    assert_eq!(again.metadata.resource_version, u.metadata.resource_version);

    h.apply(&vs("default", "['*']", &shop_routes())).await;

    // Unary: JSON in (the path's variable), the proto3 JSON mapping out.
    let (status, pet) = call(&h, Method::GET, "/pets/1", None).await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(
        pet,
        json!({"id": "1", "name": "Bolt", "tags": ["fast", "dog"], "kind": "DOG", "born": "2021-06-07T08:09:10Z"})
    );
    // tonic's error statuses (a trailers-only answer) as HTTP statuses, with its message.
    for (path, want_status, want) in [
        ("/pets/9", 404, "NOT_FOUND: no pet 9"),
        ("/pets/-4", 400, "id -4 is negative"),
    ] {
        let (status, e) = call(&h, Method::GET, path, None).await;
        assert_eq!(status, want_status, "{path}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(want), "{path}: {e}");
    }
    // A rich status (grpc-status-details-bin): the details decoded in the error, a
    // shop.proto type by its fields, an unknown one (google.rpc.ErrorInfo) as its bytes.
    let (status, e) = call(&h, Method::GET, "/pets/13", None).await;
    assert_eq!(status, 400, "FAILED_PRECONDITION: {e}");
    assert_eq!(
        (&e["error"], &e["message"], &e["upstream"]),
        (
            &json!("grpc-status"),
            &json!("FAILED_PRECONDITION: pet 13 is away"),
            &json!("shop")
        ),
        "{e}"
    );
    // Named by its route, as every gateway error is.
    assert!(e["route"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    {
        use base64::Engine;
        assert_eq!(
            e["details"],
            json!([
                {"@type": "type.googleapis.com/shop.v1.PetProblem", "id": "13", "reason": "at the vet"},
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                 "value": base64::engine::general_purpose::STANDARD.encode(server::error_info())},
            ])
        );
    }
    let (status, e) = call(&h, Method::POST, "/admin", Some(json!({}))).await;
    assert_eq!(status, 403, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("admins only"),
        "{e}"
    );

    // Server streaming: a JSON array of the messages, filtered by the request's fields.
    let (status, pets) = call(&h, Method::POST, "/list", Some(json!({"tag": "dog"}))).await;
    assert_eq!(status, 200, "{pets}");
    assert_eq!(names(&pets), ["Bolt", "Max"]);
    let (status, all) = call(&h, Method::POST, "/list", Some(json!({}))).await;
    assert_eq!((status, names(&all)), (200, vec!["Bolt", "Luna", "Max"]));
    let (_, one) = call(&h, Method::POST, "/list", Some(json!({"limit": 1}))).await;
    assert_eq!(names(&one), ["Bolt"]);
    // Newline-delimited JSON when the client asks for it.
    let lines = call_ndjson(&h, "/list", json!({"tag": "dog"})).await;
    assert_eq!(Value::Array(lines), pets);
    // A stream that fails after a message (the status in the trailers): the error, not a
    // partial array.
    let (status, e) = call(&h, Method::POST, "/list", Some(json!({"limit": -1}))).await;
    assert_eq!(status, 400, "OUT_OF_RANGE: {e}");
    assert!(e["message"].as_str().unwrap().contains("limit -1"), "{e}");

    // A body as the request message, the request's headers as metadata.
    let (status, pet) = call(
        &h,
        Method::POST,
        "/create",
        Some(json!({"name": "Kit", "kind": "CAT", "owner_name": "ann"})),
    )
    .await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(
        pet,
        json!({"id": "100", "name": "Kit", "kind": "CAT", "ownerName": "ann", "tags": ["tenant:acme"]})
    );

    // The server stopped as a restart does (GOAWAY, port closed): 503; back on the same port,
    // the gateway calls it again.
    let port = server.addr.port();
    server.stop().await;
    let (status, e) = call(&h, Method::GET, "/pets/1", None).await;
    assert_eq!(status, 503, "{e}");
    let _back = TonicShop::start_on(port).await;
    let (status, pet) = call(&h, Method::GET, "/pets/2", None).await;
    assert_eq!((status, pet["name"].as_str()), (200, Some("Luna")), "{pet}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_discovery_then_calls_on_the_fast_path() {
    discovery_then_calls(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_discovery_then_calls_on_hyper_alone() {
    discovery_then_calls(false).await;
}

/// `epoxy discover grpc` (the binary) lists the tonic server's services by reflection v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_grpc_lists_the_tonic_services() {
    let server = TonicShop::start().await;
    let addr = server.addr();
    let (out, json) = tokio::task::spawn_blocking(move || {
        let e = common::Epoxy::new();
        let out = e.run(&["discover", "grpc", &addr]).ok();
        let json = e.run(&["discover", "grpc", &addr, "-o", "json"]).ok();
        (out, json)
    })
    .await
    .unwrap();
    for want in [
        "shop.v1.Pets",
        "GetPet",
        "ListPets",
        "server streaming",
        "CreatePet",
        "shop.v1.Admin",
        "Ping",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(!out.contains("grpc.reflection"), "{out}");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["files"],
        json!(["google/protobuf/timestamp.proto", "shop.proto"])
    );
}

/// `epoxy discover grpc --tls` against a tonic server with a certificate of a private CA
/// (rcgen, for 127.0.0.1): verified against `--ca` (which implies `--tls`), refused against the
/// public roots or another CA, and a cleartext attempt fails; a CA file that is not there
/// is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_grpc_over_tls_verifies_the_server() {
    let ca = common::certs::Ca::new("epoxy test CA");
    let other = common::certs::Ca::new("another CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server = TonicShop::start_tls(&leaf.cert, &leaf.key).await;
    let addr = server.addr();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let other_file = dir.path().join("other.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&other_file, other.pem()).unwrap();
    let (ca_file, other_file) = (
        ca_file.display().to_string(),
        other_file.display().to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let e = common::Epoxy::new();
        for args in [vec!["--tls", "--ca", &ca_file], vec!["--ca", &ca_file]] {
            let mut cmd = vec!["discover", "grpc", &addr];
            cmd.extend(args);
            let out = e.run(&cmd).ok();
            for want in [
                "shop.v1.Pets",
                "GetPet",
                "server streaming",
                "shop.v1.Admin",
            ] {
                assert!(out.contains(want), "{cmd:?}: {want}: {out}");
            }
        }
        let json: Value = serde_json::from_str(
            &e.run(&["discover", "grpc", &addr, "--ca", &ca_file, "-o", "json"])
                .ok(),
        )
        .unwrap();
        assert_eq!(json["grpcServices"][0]["serviceName"], "Pets", "{json}");
        for (args, want) in [
            (vec!["--tls"], "certificate"),
            (vec!["--ca", &other_file], "certificate"),
            (vec![], "a server that speaks TLS needs --tls"),
            (
                vec!["--ca", "/nonexistent/ca.pem"],
                "--ca /nonexistent/ca.pem",
            ),
        ] {
            let mut cmd = vec!["discover", "grpc", &addr];
            cmd.extend(args);
            let refused = e.run(&cmd).refused();
            assert!(refused.contains(want), "{cmd:?}: {want}: {refused}");
        }
    })
    .await
    .unwrap();
}

/// Function discovery reaches a gRPC upstream the gateway speaks TLS to (`sslConfig`) over TLS
/// too, with the gateway's own TLS client for it: the server's certificate verified against the
/// upstream's root CA, the services found, and a call through the gateway answered over TLS.
/// Against another CA, discovery fails on the certificate and finds nothing (never in clear).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reflects_over_tls_for_an_upstream_with_ssl_config() {
    let ca = common::certs::Ca::new("epoxy test CA");
    let other = common::certs::Ca::new("another CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server = TonicShop::start_tls(&leaf.cert, &leaf.key).await;
    let h = Harness::start().await;
    let files = tempfile::tempdir().unwrap();
    let upstream_with_ca = |pem: &str, file: &str| {
        let path = files.path().join(file);
        std::fs::write(&path, pem).unwrap();
        format!(
            "{}  sslConfig:\n    sslFiles: {{rootCa: '{}'}}\n",
            common::grpc::upstream("shop", &server.addr()),
            path.display()
        )
    };

    h.apply(&upstream_with_ca(&other.pem(), "other.pem")).await;
    let state = discover(&h).await;
    let s = &state[&key("shop")];
    assert_eq!(s.kind, None, "{s:?}");
    let error = s.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("over TLS") && error.contains("certificate"),
        "{error}"
    );

    h.apply(&upstream_with_ca(&ca.pem(), "ca.pem")).await;
    let state = discover(&h).await;
    let s = &state[&key("shop")];
    assert_eq!(s.last_error, None);
    assert_eq!(s.kind.as_deref(), Some("grpc"));
    assert_eq!(s.functions, 4, "GetPet, ListPets, CreatePet, Ping");
    assert_eq!(
        s.document_url.as_deref(),
        Some(format!("grpcs://{}", server.addr()).as_str())
    );
    h.apply(&vs("default", "['*']", &shop_routes())).await;
    let (status, pet) = call(&h, Method::GET, "/pets/1", None).await;
    assert_eq!(status, 200, "{pet}");
    assert_eq!(pet["name"], "Bolt", "{pet}");
}
