//! AWS Lambda functions against a Lambda endpoint in Python (tests/lambda/server.py) that
//! recomputes every request's Signature V4 with botocore's signer and refuses a wrong one:
//! discovery lists the functions (paginated `ListFunctions`), routes invoke them through the
//! real gateway on both transports.
//!
//! One test in this binary: the gateway reads credentials and the endpoint from the
//! environment (as the AWS SDKs do), which is set once here before anything else runs.

mod common;
use common::gw::{Harness, vs};
use common::pyserver::PyServer;
use epoxy::api::{Kind, Resource, ResourceKey};
use epoxy::discovery::fds::{self, FdsConfig};
use epoxy::store::Store;
use serde_json::{Value, json};
use std::time::Duration;

const KEY_ID: &str = "AKIDEPOXYTEST";

const UPSTREAM: &str = "apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: lambda
  namespace: gloo-system
  labels: {discovery.solo.io/function_discovery: enabled}
spec:
  aws:
    region: us-east-1
";

fn route(prefix: &str, logical: &str, extra: &str) -> String {
    format!(
        "    - matchers: [{{prefix: '{prefix}'}}]\n      routeAction:\n        single:\n          upstream: {{name: lambda}}\n          destinationSpec:\n            aws: {{logicalName: '{logical}'{extra}}}\n"
    )
}

async fn send(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = Harness::client()
        .request(method, format!("{}{path}", h.url))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn lambda_through_the_gateway(fast_path: bool) {
    let h = Harness::with(|c| c.fast_path = fast_path).await;
    h.apply(UPSTREAM).await;
    let set = h.store.list().await.unwrap().resources;
    let cfg = FdsConfig {
        mode: fds::Mode::Whitelist,
        probe_timeout: Duration::from_secs(2),
        ..FdsConfig::default()
    };
    let key = ResourceKey::new(Kind::Upstream, "gloo-system", "lambda");
    let state = fds::poll_once(
        h.store.as_ref(),
        &set,
        &cfg,
        &epoxy::net::document_client(0).unwrap(),
        None,
    )
    .await;
    let s = &state[&key];
    assert_eq!(s.last_error, None);
    assert_eq!((s.kind.as_deref(), s.functions), (Some("lambda"), 4));
    let written = h.store.get(&key).await.unwrap();
    h.wait_for(std::slice::from_ref(&written)).await;
    let Resource::Upstream(u) = &written else {
        panic!()
    };
    let functions: Vec<(&str, &str, &str)> = u
        .spec
        .aws
        .as_ref()
        .unwrap()
        .lambda_functions
        .iter()
        .map(|f| {
            (
                f.logical_name.as_str(),
                f.lambda_function_name.as_str(),
                f.qualifier.as_str(),
            )
        })
        .collect();
    assert_eq!(
        functions,
        [
            ("apigw", "apigw", "$LATEST"),
            ("echo", "echo", "$LATEST"),
            ("echo:1", "echo", "1"),
            ("fail", "fail", "$LATEST"),
        ]
    );

    let routes = [
        route("/echo1", "echo:1", ""),
        route("/echo", "echo", ", invocationStyle: SYNC"),
        route("/async", "echo", ", invocationStyle: ASYNC"),
        route(
            "/web",
            "apigw",
            ", wrapAsApiGateway: true, unwrapAsApiGateway: true",
        ),
        route("/fail", "fail", ""),
        route("/nope", "nope", ""),
    ]
    .concat();
    h.apply(&vs("default", "['*']", &routes)).await;

    let (status, _, body) = send(&h, reqwest::Method::POST, "/echo", r#"{"a": 1}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body),
        json!({"received": {"a": 1}, "qualifier": "$LATEST", "invocationType": "RequestResponse"})
    );
    let (status, _, body) = send(&h, reqwest::Method::POST, "/echo1", r#"[true]"#).await;
    assert_eq!(
        (status, json_of(&body)["qualifier"].clone()),
        (200, json!("1")),
        "{body}"
    );
    let (status, _, body) = send(&h, reqwest::Method::POST, "/async", r#"{}"#).await;
    assert_eq!((status, body.as_str()), (202, ""));
    // The request as API Gateway's event in, its answer as the response out.
    let (status, headers, body) = send(&h, reqwest::Method::PUT, "/web/x?q=1", "hi").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["x-from"], "lambda");
    assert_eq!(
        json_of(&body),
        json!({"method": "PUT", "path": "/web/x", "query": {"q": "1"}, "body": "hi"})
    );
    // A function error: 502 with the function's payload.
    let (status, headers, body) = send(&h, reqwest::Method::POST, "/fail", "{}").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(json_of(&body)["errorMessage"], "boom");
    // A function the upstream does not list: 503 naming it.
    let (status, _, body) = send(&h, reqwest::Method::POST, "/nope", "{}").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("has no Lambda function `nope`"), "{body}");
}

/// Upstreams signing with a Secret's keys (Gloo's `aws_access_key_id`, ...): the right ones
/// call, wrong ones are refused by the endpoint (502 naming AWS's answer), a missing Secret is
/// a 503 naming it; discovery reports the refusal.
async fn credentials_from_secrets(secret: &str) {
    let h = Harness::start().await;
    let upstream = |name: &str, secret_ref: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  aws:\n    region: us-east-1\n    secretRef: {{name: {secret_ref}, namespace: gloo-system}}\n    lambdaFunctions: [{{logicalName: echo, lambdaFunctionName: echo}}]\n"
        )
    };
    let secret_yaml = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system}}\nstringData: {{aws_access_key_id: {KEY_ID}, aws_secret_access_key: '{value}'}}\n"
        )
    };
    h.apply(
        &[
            secret_yaml("good", secret),
            secret_yaml("bad", "not-the-secret"),
            upstream("by-good", "good"),
            upstream("by-bad", "bad"),
            upstream("by-missing", "missing"),
        ]
        .join("---\n"),
    )
    .await;
    let route = |prefix: &str, up: &str| {
        format!(
            "    - matchers: [{{prefix: '{prefix}'}}]\n      routeAction: {{single: {{upstream: {{name: {up}}}, destinationSpec: {{aws: {{logicalName: echo}}}}}}}}\n"
        )
    };
    let routes = [
        route("/good", "by-good"),
        route("/bad", "by-bad"),
        route("/missing", "by-missing"),
    ]
    .concat();
    h.apply(&vs("default", "['*']", &routes)).await;
    let (status, _, body) = send(&h, reqwest::Method::POST, "/good", "{}").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(&h, reqwest::Method::POST, "/bad", "{}").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("403") && body.contains("signature we calculated"),
        "{body}"
    );
    let (status, _, body) = send(&h, reqwest::Method::POST, "/missing", "{}").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("missing") && body.contains("not found"),
        "{body}"
    );
    let set = h.store.list().await.unwrap().resources;
    let state = fds::poll_once(
        h.store.as_ref(),
        &set,
        &FdsConfig::default(),
        &epoxy::net::document_client(0).unwrap(),
        None,
    )
    .await;
    let err = |n: &str| {
        state[&ResourceKey::new(Kind::Upstream, "gloo-system", n)]
            .last_error
            .clone()
    };
    assert_eq!(err("by-good"), None);
    assert!(
        err("by-bad").is_some_and(|e| e.contains("403")),
        "{:?}",
        err("by-bad")
    );
}

#[test]
fn lambda_discovery_invoke_and_signatures() {
    let secret = format!("secret-{:016x}", fastrand::u64(..));
    let server = PyServer::start(
        "lambda/server.py",
        &[],
        &[("LAMBDA_KEY_ID", KEY_ID), ("LAMBDA_SECRET", &secret)],
    );
    let endpoint = format!("http://{}", server.addr());
    // SAFETY: the only test of this binary sets the environment before any other thread runs.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", &secret);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_ENDPOINT_URL");
        std::env::set_var("AWS_ENDPOINT_URL_LAMBDA", &endpoint);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        lambda_through_the_gateway(true).await;
        lambda_through_the_gateway(false).await;
        credentials_from_secrets(&secret).await;

        // The endpoint checks signatures: a request signed with another secret is refused,
        // and so is one not signed at all.
        let f = epoxy::aws::Function {
            endpoint: endpoint.clone(),
            region: "us-east-1".into(),
            name: "echo".into(),
            qualifier: None,
        };
        let wrong = epoxy::aws::Credentials {
            access_key_id: KEY_ID.into(),
            secret_access_key: "not-the-secret".into(),
            session_token: None,
        };
        let e = epoxy::aws::invoke(&f, "{}".into(), false, &wrong, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("403") && e.to_string().contains("signature we calculated"),
            "{e}"
        );
        let plain = Harness::client()
            .post(format!("{endpoint}/2015-03-31/functions/echo/invocations"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 403);
        let right = epoxy::aws::Credentials {
            secret_access_key: secret.clone(),
            ..wrong
        };
        let a = epoxy::aws::invoke(&f, "{}".into(), false, &right, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(a.status, 200);
    });
}
