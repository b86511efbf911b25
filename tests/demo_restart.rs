//! `epoxy demo` restarted on the store of an earlier run: the petstore has a new port, and the
//! upstream (its host and its document URL) follows it, so discovery keeps working. A discovery
//! that fails shows on the upstream's status.

mod common;

use common::Epoxy;
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn start(e: &Epoxy) -> Child {
    e.command()
        .args([
            "demo",
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn epoxy demo")
}

fn stop(mut c: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let _ = c.wait();
}

/// Waits until the discovery state of the demo upstream satisfies `f`.
#[track_caller]
fn wait_discovery(e: &Epoxy, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(e.file(".epoxy-discovery.json")).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let d = &v["upstreams/gloo-system/default-petstore-8080"];
        if f(d) {
            return d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn upstream(e: &Epoxy) -> Value {
    let out = e
        .run(&["get", "us", "default-petstore-8080", "-o", "json"])
        .ok();
    serde_json::from_str(&out).unwrap()
}

fn petstore_port(u: &Value) -> u64 {
    u["spec"]["static"]["hosts"][0]["port"].as_u64().unwrap()
}

#[test]
fn a_restarted_demo_keeps_discovering() {
    let e = Epoxy::new();
    let c = start(&e);
    wait_discovery(&e, "the first discovery", |d| {
        d["functions"] == 4 && d["lastError"].is_null()
    });
    let first = upstream(&e);
    let url = first["spec"]["static"]["serviceSpec"]["rest"]["swaggerInfo"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no document URL: {first}"))
        .to_string();
    stop(c);
    // Keep the old port busy so the petstore cannot get it back by chance.
    let _busy = std::net::TcpListener::bind(("127.0.0.1", petstore_port(&first) as u16));
    std::fs::remove_file(e.file(".epoxy-discovery.json")).unwrap();
    let c = start(&e);
    let d = wait_discovery(&e, "discovery after the restart", |d| {
        d["lastPoll"].is_string()
    });
    let second = upstream(&e);
    let port = petstore_port(&second);
    assert_ne!(port, petstore_port(&first));
    let new_url = second["spec"]["static"]["serviceSpec"]["rest"]["swaggerInfo"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(new_url.contains(&format!(":{port}/")), "{url} -> {new_url}");
    assert!(d["lastError"].is_null(), "{d}");
    assert_eq!(d["functions"], 4, "{d}");
    assert_eq!(second["status"]["state"], "Accepted", "{second}");

    // A document that cannot be fetched: the upstream says so, in full.
    let path = e.file("upstreams/gloo-system/default-petstore-8080.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(&new_url, "http://127.0.0.1:1/swagger.json"),
    )
    .unwrap();
    let d = wait_discovery(&e, "the discovery error", |d| d["lastError"].is_string());
    let err = d["lastError"].as_str().unwrap().to_string();
    let run = e.run(&["get", "upstreams"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Warning"), "{}", run.stdout);
    assert!(run.stderr.contains(&err), "{err}\n{}", run.stderr);
    let u = upstream(&e);
    assert_eq!(u["status"]["state"], "Warning", "{u}");
    stop(c);
}
