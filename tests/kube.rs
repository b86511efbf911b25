//! Kube mode against a Kubernetes API emulator (kmock, extended in tests/kube/emulator.py):
//! the CRD store through kube-rs, the CLI, and the gateway serving from the cluster.

mod common;
use common::kube::Emulator;
use common::{Epoxy, fixture, upstream};
use epoxy::api::{Kind, Resource, ResourceKey, parse_one};
use epoxy::control::reconcile;
use epoxy::gateway::{Gateway, GatewayConfig};
use epoxy::store::kube::KubeStore;
use epoxy::store::{Precondition, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cli(emu: &Emulator, e: &Epoxy, args: &[&str]) -> common::Run {
    let mut all = vec!["--kubeconfig", emu.kubeconfig.to_str().unwrap()];
    all.extend_from_slice(args);
    e.run(&all)
}

async fn store(emu: &Emulator) -> KubeStore {
    let t = epoxy::kube::Target {
        kubeconfig: Some(emu.kubeconfig.clone()),
        context: None,
    };
    KubeStore::new(t.client().await.unwrap(), t.describe())
}

/// A running `epoxy gateway` on the emulator; killed when the guard drops.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// Starts `epoxy --kubeconfig EMU gateway` on a free port (admin off, discovery every 300 ms)
/// with `extra` flags; returns its URL, read from its first line of output.
fn start_gateway(emu: &Emulator, e: &Epoxy, extra: &[&str]) -> (String, Kill) {
    let mut args = vec![
        "--kubeconfig",
        emu.kubeconfig.to_str().unwrap(),
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--fds-interval",
        "300ms",
    ];
    args.extend_from_slice(extra);
    let mut gw = e
        .command()
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(gw.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .split(" on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (url, Kill(gw))
}

/// Waits (10 s at most) until `store` shows the petstore upstream with its 4 functions.
async fn wait_for_petstore_functions(store: &dyn Store, failure: &str) {
    let mut rx = store.watch();
    let key = ResourceKey::new(Kind::Upstream, "gloo-system", "default-petstore-8080");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let functions = match rx.borrow_and_update().resources.get(&key) {
            Some(Resource::Upstream(u)) => u.spec.function_names().len(),
            _ => 0,
        };
        if functions == 4 {
            return;
        }
        assert!(Instant::now() < deadline, "{failure}");
        let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
    }
}

#[test]
fn install_crds_dry_run_prints_gloos_crds() {
    let e = Epoxy::new();
    let out = e.run(&["install", "crds", "--dry-run"]).ok();
    for name in [
        "upstreams.gloo.solo.io",
        "upstreamgroups.gloo.solo.io",
        "virtualservices.gateway.solo.io",
        "routetables.gateway.solo.io",
        "authconfigs.enterprise.gloo.solo.io",
        "ratelimitconfigs.ratelimit.solo.io",
        "gateways.gateway.solo.io",
    ] {
        assert!(out.contains(&format!("name: {name}")), "{name}\n{out}");
    }
    assert!(out.contains("x-kubernetes-preserve-unknown-fields: true"));
    assert_eq!(out.matches("kind: CustomResourceDefinition").count(), 7);
}

#[test]
fn cli_get_apply_and_add_route_work_the_same_in_kube_mode() {
    let emu = Emulator::start();
    let e = Epoxy::new();
    let out = cli(&emu, &e, &["install", "crds"]).ok();
    assert_eq!(out.matches("created").count(), 7, "{out}");
    let r = cli(
        &emu,
        &e,
        &["apply", "-f", fixture("upstreams.yaml").to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    cli(
        &emu,
        &e,
        &[
            "apply",
            "-f",
            fixture("virtualservices.yaml").to_str().unwrap(),
        ],
    )
    .ok();
    let us = cli(&emu, &e, &["get", "us"]).ok();
    assert!(
        us.contains("default-petstore-8080") && us.contains("httpbin-local"),
        "{us}"
    );
    // The objects are in the cluster, not in the local directory.
    let (s, list) = emu.request(
        "GET",
        "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams",
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(!e.file("upstreams").exists());
    // A field epoxy does not model, written by another client, survives epoxy's edits.
    let (_, mut vs) = emu.request(
        "GET",
        "/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices/default",
        None,
    );
    vs["spec"]["virtualHost"]["options"] = json!({"cors": {"allowOrigin": ["example.com"]}});
    let (s, _) = emu.request(
        "PUT",
        "/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices/default",
        Some(vs),
    );
    assert_eq!(s, 200);
    cli(
        &emu,
        &e,
        &[
            "add",
            "route",
            "--path-exact",
            "/kube",
            "--dest-name",
            "httpbin-local",
        ],
    )
    .ok();
    let (_, vs) = emu.request(
        "GET",
        "/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices/default",
        None,
    );
    assert_eq!(
        vs["spec"]["virtualHost"]["routes"][0]["matchers"][0]["exact"],
        "/kube"
    );
    assert_eq!(
        vs["spec"]["virtualHost"]["options"]["cors"]["allowOrigin"][0],
        "example.com"
    );
    let (_, us) = emu.request(
        "GET",
        "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams/httpbin-local",
        None,
    );
    assert_eq!(us["spec"]["circuitBreakers"]["maxConnections"], 1024);
    let routes = cli(&emu, &e, &["get", "vs", "route", "-o", "json"]).ok();
    let j: Value = serde_json::from_str(&routes).unwrap();
    assert_eq!(j["items"].as_array().unwrap().len(), 8);
    // Validation applies as in dir mode.
    let bad = cli(
        &emu,
        &e,
        &[
            "add",
            "route",
            "--path-regex",
            "/x/([",
            "--dest-name",
            "httpbin-local",
        ],
    )
    .refused();
    assert!(bad.contains("invalid regex"), "{bad}");
    cli(&emu, &e, &["delete", "us", "httpbin-local"]).ok();
    assert_eq!(
        emu.request(
            "GET",
            "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams/httpbin-local",
            None
        )
        .0,
        404
    );
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let e = Epoxy::new();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\ncurrent-context: x\nusers:\n- name: x\n  user: {}\n").unwrap();
    let err = e
        .run(&["--kubeconfig", kc.to_str().unwrap(), "get", "us"])
        .refused();
    assert!(err.contains("listing upstreams"), "{err}");
    let err = e
        .run(&["--kubeconfig", "/nonexistent/kc", "get", "us"])
        .refused();
    assert!(err.contains("/nonexistent/kc"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_get_a_conflict_in_the_cluster_too() {
    let emu = Emulator::start();
    let one = store(&emu).await;
    let two = store(&emu).await;
    let up = |port: u32| {
        parse_one(&format!("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: a, namespace: gloo-system}}\nspec: {{static: {{hosts: [{{addr: h, port: {port}}}]}}}}\n"), "t").unwrap()
    };
    one.put(up(1), Precondition::Absent).await.unwrap();
    assert!(matches!(
        two.put(up(1), Precondition::Absent).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let key = ResourceKey::new(Kind::Upstream, "gloo-system", "a");
    let r1 = one.get(&key).await.unwrap();
    let r2 = two.get(&key).await.unwrap();
    let mut w1 = up(10);
    w1.meta_mut().extra = r1.meta().extra.clone();
    let mut w2 = up(20);
    w2.meta_mut().extra = r2.meta().extra.clone();
    one.put(w1, Precondition::from_read(&r1)).await.unwrap();
    match two.put(w2, Precondition::from_read(&r2)).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let Resource::Upstream(u) = two.get(&key).await.unwrap() else {
        unreachable!()
    };
    assert_eq!(u.spec.static_.unwrap().hosts[0].port, 10);
}

async fn gateway_on(
    emu: &Emulator,
) -> (
    Gateway,
    epoxy::gateway::GatewayHandle,
    tokio::sync::watch::Receiver<Arc<reconcile::Report>>,
) {
    let s: Arc<dyn Store> = Arc::new(store(emu).await);
    let gw = Gateway::new();
    let reports = reconcile::spawn(s, gw.clone());
    let cfg = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin: None,
        workers: 1,
        ..Default::default()
    };
    let h = gw.start(&cfg).unwrap();
    (gw, h, reports)
}

async fn eventually_body(url: &str, want: &str) -> Duration {
    let c = common::http().build().unwrap();
    let started = Instant::now();
    loop {
        if let Ok(r) = c.get(url).send().await
            && r.text().await.unwrap_or_default().contains(want)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{url} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_serve_from_the_cluster_converge_and_survive_an_api_outage() {
    let emu = Emulator::start();
    let backend = upstream::start("backend");
    let writer = store(&emu).await;
    let up = format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: backend, namespace: gloo-system}}\nspec: {{static: {{hosts: [{{addr: '127.0.0.1', port: {}}}]}}}}\n",
        backend.addr.port()
    );
    writer
        .put(parse_one(&up, "t").unwrap(), Precondition::Any)
        .await
        .unwrap();
    let vs = |body: &str| {
        parse_one(&format!("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{{exact: /v}}]\n      directResponseAction: {{status: 200, body: '{body}'}}\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: backend}}}}}}\n"), "t").unwrap()
    };
    writer.put(vs("one"), Precondition::Any).await.unwrap();

    // Two gateways on one API server converge on the same table.
    let (_g1, h1, _r1) = gateway_on(&emu).await;
    let (_g2, h2, _r2) = gateway_on(&emu).await;
    for h in [&h1, &h2] {
        eventually_body(&format!("{}/v", h.url()), "one").await;
        eventually_body(&format!("{}/through", h.url()), "\"server\":\"backend\"").await;
    }
    let r = writer
        .get(&ResourceKey::new(
            Kind::VirtualService,
            "gloo-system",
            "default",
        ))
        .await
        .unwrap();
    writer
        .put(vs("two"), Precondition::from_read(&r))
        .await
        .unwrap();
    for h in [&h1, &h2] {
        let took = eventually_body(&format!("{}/v", h.url()), "two").await;
        eprintln!("change seen by a gateway after {took:?}");
    }

    // The API server goes away for a while: the gateways keep serving their last table.
    let c = common::http().build().unwrap();
    let paused = c
        .post(format!("{}/epoxy-test/pause", emu.url))
        .json(&json!({"seconds": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let until = Instant::now() + Duration::from_millis(2500);
    let mut served = 0;
    while Instant::now() < until {
        for h in [&h1, &h2] {
            let body = c
                .get(format!("{}/v", h.url()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, "two");
            served += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 20);
    // It comes back; a change made after that reaches both gateways (they reconverge).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = writer
            .get(&ResourceKey::new(
                Kind::VirtualService,
                "gloo-system",
                "default",
            ))
            .await;
        if let Ok(r) = r
            && writer
                .put(vs("three"), Precondition::from_read(&r))
                .await
                .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the emulator did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for h in [&h1, &h2] {
        eventually_body(&format!("{}/v", h.url()), "three").await;
    }
}

/// `epoxy gateway --kube` as the controller: a Service appears → its Upstream appears; its
/// functions are discovered through the `apiserver` connector from a document served on the
/// service proxy path; a request through the gateway reaches the service through the same
/// connector; the port changes → the Upstream follows; the Service goes → the Upstream goes.
#[test]
fn upstream_and_function_discovery_through_the_apiserver_connector() {
    let emu = Emulator::start();
    let e = Epoxy::new();
    let proxy = "/api/v1/namespaces/default/services/petstore:8080/proxy";
    let swagger = include_str!("../src/demo/swagger.json");
    emu.request(
        "POST",
        "/epoxy-test/proxy",
        Some(json!({"path": format!("{proxy}/swagger.json"), "body": swagger})),
    );
    emu.request("POST", "/epoxy-test/proxy", Some(json!({"path": format!("{proxy}/api/pets/1"), "body": "{\"id\":1,\"name\":\"Dog\",\"status\":\"available\"}"})));
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "default", "labels": {"app": "petstore"}},
        "spec": {"selector": {"app": "petstore"}, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}});
    assert_eq!(
        emu.request(
            "POST",
            "/api/v1/namespaces/default/services",
            Some(svc.clone())
        )
        .0,
        200
    );

    let (url, _gw) = start_gateway(&emu, &e, &[]);

    let wait = |what: &str, f: &mut dyn FnMut() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !f() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let ups = "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams";
    wait("the upstream and its functions", &mut || {
        let (s, u) = emu.request("GET", &format!("{ups}/default-petstore-8080"), None);
        s == 200
            && u["spec"]["kube"]["serviceSpec"]["rest"]["transformations"]["findPetById"]
                .is_object()
    });
    let (_, u) = emu.request("GET", &format!("{ups}/default-petstore-8080"), None);
    assert_eq!(u["metadata"]["labels"]["discovered_by"], "kubernetesplugin");
    assert_eq!(u["spec"]["discoveryMetadata"]["labels"]["app"], "petstore");
    assert_eq!(u["spec"]["kube"]["selector"]["app"], "petstore");
    assert_eq!(
        u["spec"]["kube"]["serviceSpec"]["rest"]["transformations"]
            .as_object()
            .unwrap()
            .len(),
        4
    );

    cli(
        &emu,
        &e,
        &[
            "add",
            "route",
            "--path-prefix",
            "/petstore/findWithId/",
            "--dest-name",
            "default-petstore-8080",
            "--rest-function-name",
            "findPetById",
            "--rest-parameters",
            ":path=/petstore/findWithId/{id}",
        ],
    )
    .ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dog = rt.block_on(async {
        let c = common::http().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = c.get(format!("{url}/petstore/findWithId/1")).send().await
                && r.status() == 200
            {
                return r.text().await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the route through the apiserver connector never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(dog.contains("Dog"), "{dog}");

    // A `kube` destination (Gloo's `destination.kube`) reaches the same service port through
    // the same connector, with no upstream resource in between.
    let vs = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: kube-dest, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: [kube-dest.example.com]\n    routes:\n    - matchers: [{prefix: /pet/}]\n      options: {prefixRewrite: /api/pets/}\n      routeAction: {single: {kube: {ref: {name: petstore, namespace: default}, port: 8080}}}\n";
    let vs_file = e.store().join("kube-dest.yaml");
    std::fs::write(&vs_file, vs).unwrap();
    let applied = cli(&emu, &e, &["apply", "-f", vs_file.to_str().unwrap()]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    // In Kubernetes mode it is acted on: no warning about it.
    assert!(!applied.stderr.contains("kube"), "{}", applied.stderr);
    let by_kube_destination = rt.block_on(async {
        let c = common::http().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = c
                .get(format!("{url}/pet/1"))
                .header("host", "kube-dest.example.com")
                .send()
                .await
                && r.status() == 200
            {
                return r.text().await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the kube destination never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(by_kube_destination, dog);

    // An Ingress of class epoxy becomes routes: Prefix honoured element-wise.
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "pets", "namespace": "default"},
        "spec": {"ingressClassName": "epoxy", "rules": [{"host": "pets.example.com", "http": {"paths": [
            {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "petstore", "port": {"number": 8080}}}}]}}]}});
    assert_eq!(
        emu.request(
            "POST",
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            Some(ing)
        )
        .0,
        200
    );
    let (status, body) = rt.block_on(async {
        let c = common::http().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = c
                .get(format!("{url}/api/pets/1"))
                .header("host", "pets.example.com")
                .send()
                .await
                && r.status() == 200
            {
                return (200, r.text().await.unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "the ingress route never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(status, 200);
    assert!(body.contains("Dog"));
    let not_element = rt.block_on(async {
        let c = common::http().build().unwrap();
        c.get(format!("{url}/apifoo"))
            .header("host", "pets.example.com")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(not_element, 404, "Prefix /api must not match /apifoo");
    wait(
        "the ingress status carries the gateway's address",
        &mut || {
            let (_, i) = emu.request(
                "GET",
                "/apis/networking.k8s.io/v1/namespaces/default/ingresses/pets",
                None,
            );
            i["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1"
        },
    );

    // The service's port changes: the upstream follows (a new name, as Gloo's).
    let (_, mut current) = emu.request("GET", "/api/v1/namespaces/default/services/petstore", None);
    current["spec"]["ports"][0]["port"] = json!(9090);
    assert_eq!(
        emu.request(
            "PUT",
            "/api/v1/namespaces/default/services/petstore",
            Some(current)
        )
        .0,
        200
    );
    wait("the upstream follows the port", &mut || {
        emu.request("GET", &format!("{ups}/default-petstore-9090"), None)
            .0
            == 200
            && emu
                .request("GET", &format!("{ups}/default-petstore-8080"), None)
                .0
                == 404
    });
    // The service goes: so does its upstream.
    assert_eq!(
        emu.request(
            "DELETE",
            "/api/v1/namespaces/default/services/petstore",
            None
        )
        .0,
        200
    );
    wait("the upstream goes with its service", &mut || {
        emu.request("GET", &format!("{ups}/default-petstore-9090"), None)
            .0
            == 404
    });
}

/// `epoxy gateway --connect port-forward`: functions are discovered and requests served
/// through port-forward streams (the emulator plays the kubelet) to the one ready pod behind
/// the service, found by the service's selector and its named targetPort.
#[test]
fn discovery_and_traffic_through_the_port_forward_connector() {
    let emu = Emulator::start();
    let e = Epoxy::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The pod's server: the real petstore on a local port.
    let pets = rt
        .block_on(epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    // A port nothing listens on, for the pods that must not be chosen.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "default"},
        "spec": {"selector": {"app": "petstore"},
                 "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]}});
    assert_eq!(
        emu.request("POST", "/api/v1/namespaces/default/services", Some(svc))
            .0,
        200
    );
    let pod = |name: &str, app: &str, port: u16, ready: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"containers": [{"name": "petstore", "image": "petstore",
                "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1",
                "conditions": [{"type": "Ready", "status": ready}]}})
    };
    for p in [
        pod("petstore-unready", "petstore", dead_port, "False"),
        pod("other-app", "other", dead_port, "True"),
        pod("petstore-ready", "petstore", pets.addr.port(), "True"),
    ] {
        assert_eq!(
            emu.request("POST", "/api/v1/namespaces/default/pods", Some(p))
                .0,
            200
        );
    }

    let (url, _gw) = start_gateway(
        &emu,
        &e,
        &["--connect", "port-forward", "--ingress-class", "none"],
    );

    let ups = "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams";
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, u) = emu.request("GET", &format!("{ups}/default-petstore-8080"), None);
        if s == 200
            && u["spec"]["kube"]["serviceSpec"]["rest"]["transformations"]["findPetById"]
                .is_object()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "functions were never discovered through the port-forward: {u}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    cli(
        &emu,
        &e,
        &[
            "add",
            "route",
            "--path-prefix",
            "/petstore/findWithId/",
            "--dest-name",
            "default-petstore-8080",
            "--rest-function-name",
            "findPetById",
            "--rest-parameters",
            ":path=/petstore/findWithId/{id}",
        ],
    )
    .ok();
    let bodies = rt.block_on(async {
        let c = common::http().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = c.get(format!("{url}/petstore/findWithId/1")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the route through the port-forward connector never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Several requests, over pooled and fresh connections alike.
        let mut bodies = Vec::new();
        for id in [1, 2, 1] {
            let r = common::http()
                .build()
                .unwrap()
                .get(format!("{url}/petstore/findWithId/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            bodies.push(r.text().await.unwrap());
        }
        bodies
    });
    assert!(bodies[0].contains("Dog"), "{bodies:?}");
    assert!(bodies[1].contains("Cat"), "{bodies:?}");
    assert!(bodies[2].contains("Dog"), "{bodies:?}");
    drop(pets);
}

/// Two replicas: one (the Lease holder) writes discovery results; when it dies, the other
/// takes the lease over and discovery goes on.
#[test]
fn one_replica_leads_discovery_and_another_takes_over() {
    let emu = Emulator::start();
    let e = Epoxy::new();
    let spawn = |tag: &str| {
        e.command()
            .env("HOSTNAME", tag)
            .args([
                "--kubeconfig",
                emu.kubeconfig.to_str().unwrap(),
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "off",
                "--lease-duration",
                "1s",
                "--fds-mode",
                "disabled",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut replicas = vec![spawn("replica-a"), spawn("replica-b")];
    let wait = |what: &str, f: &mut dyn FnMut() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !f() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let service = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}})
    };
    let lease = "/apis/coordination.k8s.io/v1/namespaces/gloo-system/leases/epoxy-discovery";
    let mut holder = String::new();
    wait("a replica holds the lease", &mut || {
        let (s, l) = emu.request("GET", lease, None);
        holder = l["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .to_string();
        s == 200 && !holder.is_empty()
    });
    assert_eq!(
        emu.request(
            "POST",
            "/api/v1/namespaces/default/services",
            Some(service("one"))
        )
        .0,
        200
    );
    let ups = "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams";
    wait("the leader writes the upstream", &mut || {
        emu.request("GET", &format!("{ups}/default-one-80"), None).0 == 200
    });

    // Kill the leader: the other replica takes over and discovery goes on.
    let pos = replicas
        .iter()
        .position(|c| holder.ends_with(&format!("-{}", c.id())))
        .expect("the holder is one of ours");
    let mut dead = replicas.remove(pos);
    dead.kill().unwrap();
    dead.wait().unwrap();
    let survivor = format!("-{}", replicas[0].id());
    wait("the survivor takes the lease over", &mut || {
        let (_, l) = emu.request("GET", lease, None);
        l["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .ends_with(&survivor)
    });
    let (_, l) = emu.request("GET", lease, None);
    assert!(l["spec"]["leaseTransitions"].as_u64().unwrap() >= 1);
    assert_eq!(
        emu.request(
            "POST",
            "/api/v1/namespaces/default/services",
            Some(service("two"))
        )
        .0,
        200
    );
    wait("the new leader writes", &mut || {
        emu.request("GET", &format!("{ups}/default-two-80"), None).0 == 200
    });
    for mut r in replicas {
        let _ = r.kill();
        let _ = r.wait();
    }
}

/// What the console does on a cluster: upstreams discovered from Services and their functions
/// are kept in memory (listed, routable by its embedded gateway) and nothing is written to the
/// cluster, while a user's edit is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_in_memory_writes_nothing_to_the_cluster() {
    use epoxy::discovery::{fds, uds};
    use epoxy::store::overlay::OverlayStore;
    let emu = Emulator::start();
    let c = common::http().build().unwrap();
    let proxy = "/api/v1/namespaces/default/services/petstore:8080/proxy";
    let post = |path: String, body: Value| {
        let c = c.clone();
        let url = format!("{}{path}", emu.url);
        async move {
            c.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    post("/epoxy-test/proxy".into(), json!({"path": format!("{proxy}/swagger.json"), "body": include_str!("../src/demo/swagger.json")})).await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "petstore", "namespace": "default"},
        "spec": {"ports": [{"port": 8080, "protocol": "TCP"}]}});
    assert_eq!(
        post("/api/v1/namespaces/default/services".into(), svc).await,
        200
    );

    let t = epoxy::kube::Target {
        kubeconfig: Some(emu.kubeconfig.clone()),
        context: None,
    };
    let client = t.client().await.unwrap();
    let kube: Arc<dyn Store> = Arc::new(KubeStore::new(client.clone(), t.describe()));
    let discovered = uds::spawn_in_memory(client.clone(), "gloo-system".into(), Vec::new());
    let store: Arc<dyn Store> = Arc::new(OverlayStore::new(kube.clone(), discovered));
    let cfg = fds::FdsConfig {
        connector: Arc::new(epoxy::kube::connect::ApiserverProxy::new(client)),
        poll_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let _fds = fds::spawn(store.clone(), cfg, None);
    wait_for_petstore_functions(store.as_ref(), "functions were not discovered in memory").await;
    // Nothing of it is in the cluster.
    let list: Value = c
        .get(format!("{}/apis/gloo.solo.io/v1/upstreams", emu.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    // A user's edit goes to the cluster.
    let vs = parse_one("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: default-petstore-8080}}}\n", "t").unwrap();
    epoxy::control::writes::write(store.as_ref(), vs, Precondition::Any)
        .await
        .unwrap();
    let got: Value = c
        .get(format!(
            "{}/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices/default",
            emu.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["upstream"]["name"],
        "default-petstore-8080"
    );
}

/// A raw JSON POST through kube-rs's client (its TLS and credentials).
async fn post_through(client: &kube::Client, path: &str, body: Value) -> u16 {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .unwrap();
    client.send(req).await.unwrap().status().as_u16()
}

/// A cluster like most real ones: HTTPS with a certificate of its own private CA, and a bearer
/// token, both from the kubeconfig. The store, upstream and function discovery, and the
/// traffic of the `apiserver` connector's relay all get through; without the token nothing does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_private_ca_and_a_token_carries_traffic_too() {
    use epoxy::discovery::{fds, uds};
    use epoxy::store::overlay::OverlayStore;
    let emu = Emulator::start_tls("s3cret");
    let t = epoxy::kube::Target {
        kubeconfig: Some(emu.kubeconfig.clone()),
        context: None,
    };
    let client = t.client().await.unwrap();
    let proxy = "/api/v1/namespaces/default/services/petstore:8080/proxy";
    for (path, body) in [
        ("swagger.json", include_str!("../src/demo/swagger.json")),
        (
            "api/pets/1",
            "{\"id\":1,\"name\":\"Dog\",\"status\":\"available\"}",
        ),
    ] {
        let reg = json!({"path": format!("{proxy}/{path}"), "body": body});
        assert_eq!(post_through(&client, "/epoxy-test/proxy", reg).await, 200);
    }
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "default"},
        "spec": {"ports": [{"port": 8080, "protocol": "TCP"}]}});
    assert_eq!(
        post_through(&client, "/api/v1/namespaces/default/services", svc).await,
        200
    );
    // The token is what lets us in.
    let mut anonymous = t.config().await.unwrap();
    anonymous.auth_info.token = None;
    let anonymous = kube::Client::try_from(anonymous).unwrap();
    let refused =
        kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(anonymous, "default")
            .list(&Default::default())
            .await
            .unwrap_err()
            .to_string();
    assert!(
        refused.contains("401") || refused.contains("Unauthorized"),
        "{refused}"
    );

    let connector: Arc<dyn epoxy::net::Connector> =
        Arc::new(epoxy::kube::connect::ApiserverProxy::new(client.clone()));
    let kube_store: Arc<dyn Store> = Arc::new(KubeStore::new(client.clone(), t.describe()));
    let discovered = uds::spawn_in_memory(client.clone(), "gloo-system".into(), Vec::new());
    let store: Arc<dyn Store> = Arc::new(OverlayStore::new(kube_store, discovered));
    let cfg = fds::FdsConfig {
        connector: connector.clone(),
        poll_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let _fds = fds::spawn(store.clone(), cfg, None);
    let mut gw = Gateway::new();
    gw.connector = connector;
    let _reports = reconcile::spawn(store.clone(), gw.clone());
    let h = gw
        .start(&GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: None,
            workers: 1,
            ..Default::default()
        })
        .unwrap();

    wait_for_petstore_functions(store.as_ref(), "functions were not discovered over TLS").await;
    let vs = parse_one("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: default-petstore-8080}}}\n", "t").unwrap();
    epoxy::control::writes::write(store.as_ref(), vs, Precondition::Any)
        .await
        .unwrap();
    eventually_body(&format!("{}/api/pets/1", h.url()), "Dog").await;
}

/// A TLS Secret written to the cluster (as kubectl would) is read by the store with its data
/// decoded, and `epoxy get secrets` lists it without its key material.
#[test]
fn a_tls_secret_is_read_from_the_cluster() {
    use common::certs::{Ca, b64};
    let emu = Emulator::start();
    let ca = Ca::new("cluster test CA");
    let leaf = ca.leaf(&["petstore.example.com"]);
    let (s, _) = emu.request(
        "POST",
        "/api/v1/namespaces/gloo-system/secrets",
        Some(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "petstore-tls", "namespace": "gloo-system"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(&leaf.cert), "tls.key": b64(&leaf.key)}})),
    );
    assert!(s < 300, "seeding the secret: {s}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listing = rt.block_on(async { store(&emu).await.list().await.unwrap() });
    let key = ResourceKey::new(Kind::Secret, "gloo-system", "petstore-tls");
    let Some(Resource::Secret(secret)) = listing.resources.get(&key) else {
        panic!(
            "no secret in {:?}",
            listing.resources.keys().collect::<Vec<_>>()
        );
    };
    let data = secret.decoded().unwrap();
    assert_eq!(data["tls.crt"], leaf.cert.as_bytes());
    assert_eq!(data["tls.key"], leaf.key.as_bytes());

    let e = Epoxy::new();
    let out = cli(&emu, &e, &["get", "secrets"]).ok();
    let row = out.lines().find(|l| l.starts_with("petstore-tls")).unwrap();
    assert!(
        row.contains("kubernetes.io/tls") && row.contains("CN=petstore.example.com"),
        "{out}"
    );
    assert!(
        !out.contains(&b64(&leaf.key)) && !out.contains("PRIVATE KEY"),
        "{out}"
    );
}

/// Kubernetes mode end to end: a TLS Secret created in the cluster (as kubectl would) and a
/// virtual service naming it; `epoxy gateway --kubeconfig` serves HTTPS with that certificate
/// (curl, trusting the CA, agrees); the Secret replaced in the cluster is served to new
/// connections within a second while an open connection goes on.
#[test]
fn the_gateway_serves_https_with_a_tls_secret_from_the_cluster() {
    use common::certs::{Ca, Leaf, b64};
    use common::tls::Client;
    use std::io::BufRead;
    let emu = Emulator::start();
    let e = Epoxy::new();
    let ca = Ca::new("cluster TLS CA");
    let sni = "petstore.example.com";
    let v1 = ca.leaf(&[sni]);
    let v2 = ca.leaf(&[sni]);
    let secret = |leaf: &Leaf, rv: Option<&str>| {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "petstore-tls", "namespace": "gloo-system"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(&leaf.cert), "tls.key": b64(&leaf.key)}});
        if let Some(rv) = rv {
            s["metadata"]["resourceVersion"] = json!(rv);
        }
        s
    };
    let (s, _) = emu.request(
        "POST",
        "/api/v1/namespaces/gloo-system/secrets",
        Some(secret(&v1, None)),
    );
    assert!(s < 300, "seeding the secret: {s}");
    let vs = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: secure, namespace: gloo-system}\nspec:\n  sslConfig:\n    secretRef: {name: petstore-tls, namespace: gloo-system}\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /}]\n      directResponseAction: {status: 200, body: 'over TLS from the cluster'}\n";
    let out = common::Run::ok(e.run_stdin(
        &[
            "--kubeconfig",
            emu.kubeconfig.to_str().unwrap(),
            "apply",
            "-f",
            "-",
        ],
        vs,
    ));
    assert!(out.contains("virtualservices/gloo-system/secure"), "{out}");

    let mut gw = e
        .command()
        .args([
            "--kubeconfig",
            emu.kubeconfig.to_str().unwrap(),
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
            "--admin",
            "off",
            "--no-upstream-discovery",
            "--ingress-class",
            "none",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = gw.stdout.take().unwrap();
    let _kill = Kill(gw);
    // `listener https on ADDR` among its first lines.
    let mut tls_addr = None;
    for line in std::io::BufReader::new(stdout).lines().take(10) {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("listener https on ") {
            tls_addr = Some(a.trim().parse::<std::net::SocketAddr>().unwrap());
            break;
        }
    }
    let addr = tls_addr.expect("the gateway names its TLS listener");

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    // curl, trusting the CA: the certificate from the cluster, once the gateway has read it.
    let started = Instant::now();
    let body = loop {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&ca_file)
            .arg("--resolve")
            .arg(format!("{sni}:{}:127.0.0.1", addr.port()))
            .arg(format!("https://{sni}:{}/pets", addr.port()))
            .output()
            .expect("curl is installed (.ci/run)");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never served over TLS: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, "over TLS from the cluster");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut open = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            Client::new(&ca.pem(), sni).connect(addr),
        )
        .await
        .unwrap()
        .unwrap()
    });
    assert_eq!(open.cert, v1.der());

    // Replaced in the cluster (kubectl replace): new connections get it within a second.
    let (_, current) = emu.request(
        "GET",
        "/api/v1/namespaces/gloo-system/secrets/petstore-tls",
        None,
    );
    let rv = current["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string);
    let (s, body) = emu.request(
        "PUT",
        "/api/v1/namespaces/gloo-system/secrets/petstore-tls",
        Some(secret(&v2, rv.as_deref())),
    );
    assert!(s < 300, "replacing the secret: {s} {body}");
    let replaced = Instant::now();
    let delay = rt.block_on(async {
        loop {
            if let Ok(Ok(c)) = tokio::time::timeout(
                Duration::from_secs(1),
                Client::new(&ca.pem(), sni).connect(addr),
            )
            .await
                && c.cert == v2.der()
            {
                return replaced.elapsed();
            }
            assert!(
                replaced.elapsed() < Duration::from_secs(3),
                "the replaced secret is not served after 3 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    eprintln!("a Secret replaced in the cluster served after {delay:?}");
    assert!(delay < Duration::from_secs(1), "rotation took {delay:?}");
    let (status, body) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), open.get("/after"))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!((status, body.as_str()), (200, "over TLS from the cluster"));
}

/// A Gateway written to the cluster (as kubectl would) is read in kube mode: `epoxy get
/// gateways` lists it, and `epoxy gateway` listens on its port with the virtual service it
/// names.
#[test]
fn a_gateway_is_read_from_the_cluster_and_served() {
    let emu = Emulator::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (s, _) = emu.request(
        "POST",
        "/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices",
        Some(json!({"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
            "metadata": {"name": "hello", "namespace": "gloo-system"},
            "spec": {"virtualHost": {"domains": ["*"], "routes": [
                {"matchers": [{"prefix": "/"}],
                 "directResponseAction": {"status": 200, "body": "from the cluster's gateway"}}]}}})),
    );
    assert!(s < 300, "seeding the virtual service: {s}");
    let (s, _) = emu.request(
        "POST",
        "/apis/gateway.solo.io/v1/namespaces/gloo-system/gateways",
        Some(
            json!({"apiVersion": "gateway.solo.io/v1", "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": "gloo-system"},
            "spec": {"bindAddress": "127.0.0.1", "bindPort": port,
                     "httpGateway": {"virtualServices": [{"name": "hello"}]}}}),
        ),
    );
    assert!(s < 300, "seeding the gateway: {s}");
    let e = Epoxy::new();
    let out = cli(&emu, &e, &["get", "gateways"]).ok();
    let row = out.lines().find(|l| l.starts_with("edge")).unwrap_or("");
    assert!(
        row.contains(&format!("127.0.0.1:{port}")) && row.contains("Accepted"),
        "{out}"
    );
    let (_url, _gw) = start_gateway(
        &emu,
        &e,
        &["--listen-tls", "off", "--no-upstream-discovery"],
    );
    let want = "from the cluster's gateway";
    let deadline = Instant::now() + Duration::from_secs(10);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = common::http()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        loop {
            let body = match client.get(format!("http://127.0.0.1:{port}/")).send().await {
                Ok(r) => r.text().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match body {
                Ok(b) if b == want => break,
                other => assert!(
                    Instant::now() < deadline,
                    "the Gateway's port did not serve in 10 s: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// A cluster that lacks some of Gloo's CRDs (no `Gateway`, `AuthConfig`, `RateLimitConfig`)
/// still serves its virtual services: the missing kinds are empty, said in `epoxy get`; when a
/// CRD is installed later, its resources count (a `Gateway` created then opens its port).
#[test]
fn a_cluster_without_some_crds_serves_and_picks_them_up_when_installed() {
    let emu = Emulator::start_without(&[
        "gateways.gateway.solo.io",
        "authconfigs.enterprise.gloo.solo.io",
        "ratelimitconfigs.ratelimit.solo.io",
    ]);
    let (s, _) = emu.request("GET", "/apis/gateway.solo.io/v1/gateways", None);
    assert_eq!(s, 404, "the emulator must lack the Gateway CRD");
    let backend = upstream::start("backend");
    let (s, _) = emu.request(
        "POST",
        "/apis/gloo.solo.io/v1/namespaces/gloo-system/upstreams",
        Some(json!({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
            "metadata": {"name": "backend", "namespace": "gloo-system"},
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": backend.addr.port()}]}}})),
    );
    assert!(s < 300, "seeding the upstream: {s}");
    let (s, _) = emu.request(
        "POST",
        "/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices",
        Some(json!({"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
            "metadata": {"name": "default", "namespace": "gloo-system"},
            "spec": {"virtualHost": {"domains": ["*"], "routes": [
                {"matchers": [{"prefix": "/"}],
                 "routeAction": {"single": {"upstream": {"name": "backend", "namespace": "gloo-system"}}}}]}}})),
    );
    assert!(s < 300, "seeding the virtual service: {s}");

    // The CLI reads what is there and says what is not.
    let e = Epoxy::new();
    let r = cli(&emu, &e, &["get", "vs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("default"), "{}", r.stdout);
    assert!(
        r.stderr.contains("no CRD gateways.gateway.solo.io")
            && r.stderr
                .contains("no CRD authconfigs.enterprise.gloo.solo.io"),
        "{}",
        r.stderr
    );

    // `epoxy gateway` serves the virtual service.
    let (url, _gw) = start_gateway(&emu, &e, &["--no-upstream-discovery"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(eventually_body(
        &format!("{url}/through"),
        "\"server\":\"backend\"",
    ));

    // The store itself: the missing kinds are listed as unavailable, and come in once their
    // CRD is created (probed every 300 ms here, every 30 s by default).
    rt.block_on(async {
        let s: Arc<dyn Store> =
            Arc::new(store(&emu).await.with_crd_probe(Duration::from_millis(300)));
        let gw = Gateway::new();
        let _reports = reconcile::spawn(s.clone(), gw.clone());
        let _handle = gw
            .start(&GatewayConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                admin: None,
                workers: 1,
                ..Default::default()
            })
            .unwrap();
        let mut rx = s.watch();
        let deadline = Instant::now() + Duration::from_secs(10);
        while rx.borrow_and_update().resources.is_empty() {
            assert!(Instant::now() < deadline, "the store never became ready");
            let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
        }
        assert_eq!(
            rx.borrow().unavailable,
            vec![Kind::AuthConfig, Kind::RateLimitConfig, Kind::Gateway]
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let post = |path: &str, body: Value| {
            common::http()
                .build()
                .unwrap()
                .post(format!("{}{path}", emu.url))
                .json(&body)
                .send()
        };
        let s = post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            epoxy::kube::crds::crd(Kind::Gateway),
        )
        .await
        .unwrap()
        .status();
        assert!(s.is_success(), "creating the Gateway CRD: {s}");
        let s = post(
            "/apis/gateway.solo.io/v1/namespaces/gloo-system/gateways",
            json!({"apiVersion": "gateway.solo.io/v1", "kind": "Gateway",
                "metadata": {"name": "edge", "namespace": "gloo-system"},
                "spec": {"bindAddress": "127.0.0.1", "bindPort": port,
                         "httpGateway": {"virtualServices": [{"name": "default"}]}}}),
        )
        .await
        .unwrap()
        .status();
        assert!(s.is_success(), "creating the Gateway: {s}");
        let key = ResourceKey::new(Kind::Gateway, "gloo-system", "edge");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let l = rx.borrow_and_update();
                if l.resources.contains_key(&key) {
                    assert_eq!(l.unavailable, vec![Kind::AuthConfig, Kind::RateLimitConfig]);
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the Gateway was not read after its CRD was installed"
            );
            let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
        }
        // It counts: its port serves the virtual service it names.
        eventually_body(
            &format!("http://127.0.0.1:{port}/through"),
            "\"server\":\"backend\"",
        )
        .await;
    });
}
