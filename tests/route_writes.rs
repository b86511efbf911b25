//! Route writes from the CLI are read-modify-writes guarded by the version they read, and
//! address routes by identity: concurrent writers lose nothing, a shifted list edits the right
//! route, and every route epoxy creates has a name unique in its virtual service.

mod common;

use common::Epoxy;
use serde_json::Value;

fn routes(e: &Epoxy) -> Vec<Value> {
    let out = e.run(&["get", "vs", "default", "-o", "json"]).ok();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|err| panic!("{err}: {out}"));
    v["spec"]["virtualHost"]["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn prefixes(e: &Epoxy) -> Vec<String> {
    routes(e)
        .iter()
        .map(|r| {
            r["matchers"][0]["prefix"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn add(e: &Epoxy, prefix: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "add",
        "route",
        "--path-prefix",
        prefix,
        "--dest-name",
        "web",
    ];
    args.extend_from_slice(extra);
    e.run(&args).ok()
}

#[test]
fn concurrent_adds_from_many_processes_all_land() {
    let e = Epoxy::new();
    add(&e, "/first", &[]);
    let children: Vec<_> = (0..8)
        .map(|i| {
            e.command()
                .args(["add", "route", "--path-prefix"])
                .arg(format!("/p{i}"))
                .args(["--dest-name", "web"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn epoxy")
        })
        .collect();
    for c in children {
        let c = c.wait_with_output().expect("wait epoxy");
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    }
    let got = prefixes(&e);
    assert_eq!(got.len(), 9, "{got:?}");
    for i in 0..8 {
        assert!(got.contains(&format!("/p{i}")), "/p{i} lost: {got:?}");
    }
    // Every route has a name, and no two share one.
    let mut names: Vec<String> = routes(&e)
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_string())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 9, "{names:?}");
}

#[test]
fn names_are_unique_and_a_taken_name_is_refused() {
    let e = Epoxy::new();
    let out = add(&e, "/petstore/find", &[]);
    assert!(out.contains("named petstore-find"), "{out}");
    let out = add(&e, "/petstore/find/", &["--index", "1"]);
    assert!(out.contains("named petstore-find-2"), "{out}");
    let err = e
        .run(&[
            "add",
            "route",
            "--path-prefix",
            "/other",
            "--dest-name",
            "web",
            "--route-name",
            "petstore-find",
        ])
        .refused();
    assert!(
        err.contains("already has a route named `petstore-find`"),
        "{err}"
    );
    assert_eq!(prefixes(&e), ["/petstore/find", "/petstore/find/"]);
}

#[test]
fn remove_by_name_removes_that_route_wherever_it_moved() {
    let e = Epoxy::new();
    add(&e, "/one", &[]);
    add(&e, "/two", &["--index", "1"]);
    // Another writer puts a route first: `two` is now at index 2.
    add(&e, "/zero", &[]);
    assert_eq!(prefixes(&e), ["/zero", "/one", "/two"]);
    let out = e.run(&["remove", "route", "--route-name", "two"]).ok();
    assert!(out.contains("route 2 removed"), "{out}");
    assert_eq!(prefixes(&e), ["/zero", "/one"]);
    let err = e.run(&["remove", "route", "--route-name", "two"]).refused();
    assert!(err.contains("no route named `two`"), "{err}");
    // A hand-written route without a name is removed by its index, by content.
    let err = e.run(&["remove", "route", "--index", "5"]).refused();
    assert!(err.contains("there is no route 5"), "{err}");
    e.run(&["remove", "route", "--index", "0"]).ok();
    assert_eq!(prefixes(&e), ["/one"]);
}

#[test]
fn sort_reads_the_file_as_it_is_now() {
    let e = Epoxy::new();
    add(&e, "/a", &[]);
    add(&e, "/b", &["--index", "1"]);
    // By hand: /b changes its path (same name). Sort still works on what is there now.
    let path = e.file("virtualservices/gloo-system/default.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("prefix: /b", "prefix: /b/longer")).unwrap();
    e.run(&["route", "sort"]).ok();
    assert_eq!(prefixes(&e), ["/b/longer", "/a"]);
}
