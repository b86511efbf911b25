//! The CLI, driven as a user would: the real binary against a temporary directory store.

mod common;
use common::{Epoxy, fixture};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const PETSTORE: &str = "default-petstore-8080";

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

fn with_examples() -> Epoxy {
    let e = Epoxy::new();
    e.run(&["apply", "-f", fixture("upstreams.yaml").to_str().unwrap()])
        .ok();
    e.run(&[
        "apply",
        "-f",
        fixture("virtualservices.yaml").to_str().unwrap(),
    ])
    .ok();
    e
}

#[test]
fn applies_gloo_examples_verbatim_and_lists_them() {
    let e = Epoxy::new();
    let r = e.run(&["apply", "-f", fixture("upstreams.yaml").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("upstreams/gloo-system/default-petstore-8080 created")
    );
    assert!(
        r.stdout
            .contains("upstreamgroups/gloo-system/pets-canary created")
    );
    // The unmodelled field is kept, and the user is told which resource has it, and where.
    assert!(
        r.stderr.contains(
            "warning: upstreams/gloo-system/httpbin-local: spec.circuitBreakers: kept, not acted on"
        ),
        "{}",
        r.stderr
    );
    // The group names an upstream that does not exist yet: a warning, not a refusal.
    assert!(
        r.stderr
            .contains("default-petstore-v2-8080` does not exist (yet)"),
        "{}",
        r.stderr
    );
    e.run(&[
        "apply",
        "-f",
        fixture("virtualservices.yaml").to_str().unwrap(),
    ])
    .ok();

    let us = e.run(&["get", "upstreams"]).ok();
    assert!(us.contains("UPSTREAM") && us.contains("STATUS"), "{us}");
    assert!(us.contains(PETSTORE) && us.contains("httpbin-local"));
    assert!(us.contains("findPetById, addPet"), "{us}");
    let vs = e.run(&["get", "vs"]).ok();
    assert!(vs.lines().nth(1).unwrap().starts_with("default"), "{vs}");
    assert!(e.run(&["get", "rt"]).ok().contains("team-routes"));
    let ug = e.run(&["get", "ug"]).ok();
    assert!(ug.contains("pets-canary") && ug.contains("Warning"), "{ug}");

    // Applying the same file again changes nothing.
    let again = e
        .run(&["apply", "-f", fixture("upstreams.yaml").to_str().unwrap()])
        .ok();
    assert!(
        again.contains("upstreams/gloo-system/httpbin-local unchanged"),
        "{again}"
    );
}

#[test]
fn route_table_lists_index_matcher_destination_function() {
    let e = with_examples();
    let out = e.run(&["get", "vs", "route", "default"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("#") && lines[0].contains("FUNCTION"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("0")
            && lines[1].contains("/petstore/list")
            && lines[1].contains("Exact")
    );
    assert!(
        lines[2].contains("/petstore/findPet") && lines[2].ends_with("findPetById"),
        "{out}"
    );
    assert!(
        lines[5].contains("GET,POST") && lines[5].contains("x-canary=true"),
        "{out}"
    );
    assert!(lines[7].contains("delegate team-routes"), "{out}");
    // Without a name, the virtual service with domain `*` is used.
    assert_eq!(e.run(&["get", "virtualservice", "routes"]).ok(), out);
    let j = json(&e.run(&["get", "vs", "route", "-o", "json"]).ok());
    assert_eq!(
        j["items"][1]["routeAction"]["single"]["destinationSpec"]["rest"]["functionName"],
        "findPetById"
    );
}

#[test]
fn get_outputs_yaml_and_json_with_status() {
    let e = with_examples();
    let y = e.run(&["get", "us", PETSTORE, "-o", "yaml"]).ok();
    assert!(
        y.contains("kind: Upstream") && y.contains("state: Accepted"),
        "{y}"
    );
    assert!(y.contains("resourceVersion:"), "{y}");
    let j = json(&e.run(&["get", "us", "-o", "json"]).ok());
    assert_eq!(j["kind"], "List");
    assert_eq!(j["items"].as_array().unwrap().len(), 2);
    let one = json(
        &e.run(&["get", "upstream", "httpbin-local", "-o", "json"])
            .ok(),
    );
    assert_eq!(one["spec"]["static"]["hosts"][1]["port"], 9002);
    // Its circuitBreakers are kept but not acted on: a warning on its status says so.
    assert_eq!(one["status"]["state"], "Warning");
    assert_eq!(
        one["status"]["warnings"][0],
        "spec.circuitBreakers: kept, not acted on"
    );
    let missing = e.run(&["get", "us", "nope"]).refused();
    assert!(
        missing.contains("upstreams/gloo-system/nope not found"),
        "{missing}"
    );
}

#[test]
fn unknown_fields_survive_read_modify_write() {
    let e = with_examples();
    // Editing routes of the virtual service (add, sort, remove) keeps fields epoxy does not model.
    let vs = e.read("virtualservices/gloo-system/default.yaml");
    let extended = vs
        .replace("spec:\n", "spec:\n  displayName: my-vs\n")
        .replace(
            "  virtualHost:\n",
            "  virtualHost:\n    options:\n      cors: {allowOrigin: [example.com]}\n",
        );
    assert_ne!(extended, vs);
    std::fs::write(
        e.file("virtualservices/gloo-system/default.yaml"),
        &extended,
    )
    .unwrap();
    e.run(&[
        "add",
        "route",
        "--path-prefix",
        "/x",
        "--dest-name",
        "httpbin-local",
    ])
    .ok();
    e.run(&["route", "sort"]).ok();
    e.run(&["remove", "route", "--index", "0"]).ok();
    let after = e.read("virtualservices/gloo-system/default.yaml");
    assert!(
        after.contains("cors")
            && after.contains("allowOrigin")
            && after.contains("displayName: my-vs"),
        "{after}"
    );
    // The upstream's circuitBreakers survived apply and a re-apply.
    assert!(
        e.read("upstreams/gloo-system/httpbin-local.yaml")
            .contains("maxConnections: 1024")
    );
    // A nested Gloo field epoxy does not model, inside a route, survives too.
    let vs2 = after.replacen(
        "- matchers:",
        "- inheritableMatchers: true\n      matchers:",
        1,
    );
    std::fs::write(e.file("virtualservices/gloo-system/default.yaml"), &vs2).unwrap();
    e.run(&[
        "add",
        "route",
        "--path-exact",
        "/y",
        "--dest-name",
        "httpbin-local",
    ])
    .ok();
    assert!(
        e.read("virtualservices/gloo-system/default.yaml")
            .contains("inheritableMatchers: true")
    );
}

#[test]
fn create_commands_write_resources() {
    let e = Epoxy::new();
    let out = e
        .run(&[
            "create",
            "upstream",
            "static",
            "web",
            "--static-hosts",
            "127.0.0.1:9001,localhost:9002",
        ])
        .ok();
    assert!(out.contains("upstreams/gloo-system/web created"));
    e.run(&[
        "create",
        "upstream",
        "kube",
        "pets",
        "--kube-service",
        "petstore",
        "--kube-service-namespace",
        "default",
        "--kube-service-port",
        "8080",
    ])
    .ok();
    e.run(&[
        "create",
        "vs",
        "site",
        "--domains",
        "example.com,www.example.com",
    ])
    .ok();
    let j = json(&e.run(&["get", "us", "pets", "-o", "json"]).ok());
    assert_eq!(j["spec"]["kube"]["serviceName"], "petstore");
    assert_eq!(j["spec"]["kube"]["servicePort"], 8080);
    let w = json(&e.run(&["get", "us", "web", "-o", "json"]).ok());
    assert_eq!(w["spec"]["static"]["hosts"][1]["addr"], "localhost");
    let v = json(&e.run(&["get", "vs", "site", "-o", "json"]).ok());
    assert_eq!(v["spec"]["virtualHost"]["domains"][1], "www.example.com");
    // Creating again is refused; other namespaces work with -n.
    assert!(
        e.run(&["create", "vs", "site"])
            .refused()
            .contains("already exists")
    );
    e.run(&[
        "-n",
        "team-a",
        "create",
        "vs",
        "site",
        "--domains",
        "a.example.com",
    ])
    .ok();
    assert!(e.file("virtualservices/team-a/site.yaml").exists());
    // A bad flag value is refused with the reason.
    let bad = e
        .run(&[
            "create",
            "upstream",
            "static",
            "x",
            "--static-hosts",
            "nohost",
        ])
        .refused();
    assert!(bad.contains("expected HOST:PORT"), "{bad}");
}

#[test]
fn add_route_with_glooctl_flags() {
    let e = Epoxy::new();
    e.run(&[
        "create",
        "upstream",
        "static",
        PETSTORE,
        "--static-hosts",
        "127.0.0.1:8080",
    ])
    .ok();
    // No virtual service yet: a `default` with domain `*` is created.
    e.run(&[
        "add",
        "route",
        "--path-prefix",
        "/petstore/findWithId/",
        "--dest-name",
        PETSTORE,
        "--rest-function-name",
        "findPetById",
        "--rest-parameters",
        ":path=/petstore/findWithId/{id}",
    ])
    .ok();
    e.run(&[
        "add",
        "route",
        "--path-exact",
        "/a",
        "--method",
        "GET,post",
        "--header",
        "x-canary=true",
        "--header",
        "x-debug",
        "--queryParameter",
        "v=1",
        "--dest-name",
        PETSTORE,
        "--prefix-rewrite",
        "/api/pets",
    ])
    .ok();
    e.run(&[
        "add",
        "route",
        "--path-regex",
        "/r/[0-9]+",
        "--upstream-group-name",
        "grp",
        "--index",
        "2",
    ])
    .ok();
    let j = json(&e.run(&["get", "vs", "default", "-o", "json"]).ok());
    assert_eq!(j["spec"]["virtualHost"]["domains"][0], "*");
    let routes = j["spec"]["virtualHost"]["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3);
    // --index 0 (the default) prepends.
    let first = &routes[0];
    assert_eq!(first["matchers"][0]["exact"], "/a");
    assert_eq!(
        first["matchers"][0]["methods"],
        serde_json::json!(["GET", "POST"])
    );
    assert_eq!(first["matchers"][0]["headers"][0]["value"], "true");
    assert!(first["matchers"][0]["headers"][1].get("value").is_none());
    assert_eq!(first["matchers"][0]["queryParameters"][0]["name"], "v");
    assert_eq!(first["options"]["prefixRewrite"], "/api/pets");
    let fun = &routes[1]["routeAction"]["single"];
    assert_eq!(fun["upstream"]["name"], PETSTORE);
    assert_eq!(
        fun["destinationSpec"]["rest"]["functionName"],
        "findPetById"
    );
    assert_eq!(
        fun["destinationSpec"]["rest"]["parameters"]["headers"][":path"],
        "/petstore/findWithId/{id}"
    );
    assert_eq!(routes[2]["matchers"][0]["regex"], "/r/[0-9]+");
    assert_eq!(routes[2]["routeAction"]["upstreamGroup"]["name"], "grp");
    // Usage errors exit 2.
    assert_eq!(
        e.run(&["add", "route", "--path-exact", "/a", "--path-prefix", "/b"])
            .code,
        2
    );
    assert_eq!(e.run(&["get"]).code, 2);
    assert_eq!(e.run(&["frobnicate"]).code, 2);
    // --dry-run writes nothing.
    let before = e.read("virtualservices/gloo-system/default.yaml");
    let dry = e
        .run(&[
            "add",
            "route",
            "--path-exact",
            "/dry",
            "--dest-name",
            PETSTORE,
            "--dry-run",
        ])
        .ok();
    assert!(dry.contains("/dry"));
    assert_eq!(e.read("virtualservices/gloo-system/default.yaml"), before);
}

#[test]
fn route_create_with_extensions_remove_and_sort() {
    let e = Epoxy::new();
    e.run(&[
        "create",
        "upstream",
        "static",
        PETSTORE,
        "--static-hosts",
        "127.0.0.1:8080",
    ])
    .ok();
    e.run(&[
        "route",
        "create",
        "--path-exact",
        "/petstore/list",
        "--upstream",
        PETSTORE,
        "--prefix-rewrite",
        "/api/pets",
    ])
    .ok();
    e.run(&[
        "route",
        "create",
        "--path-prefix",
        "/",
        "--upstream",
        PETSTORE,
    ])
    .ok();
    let ext = "parameters:\n  headers:\n    x-pet: '{id}'\n";
    e.run_stdin(
        &[
            "route",
            "create",
            "--path-exact",
            "/petstore/findPet",
            "--upstream",
            PETSTORE,
            "--function",
            "findPetById",
            "--http-method",
            "POST",
            "--extensions",
            "-",
        ],
        ext,
    )
    .ok();
    let j = json(&e.run(&["get", "vs", "route", "-o", "json"]).ok());
    assert_eq!(j["items"][0]["matchers"][0]["exact"], "/petstore/findPet");
    assert_eq!(j["items"][0]["matchers"][0]["methods"][0], "POST");
    assert_eq!(
        j["items"][0]["routeAction"]["single"]["destinationSpec"]["rest"]["parameters"]["headers"]
            ["x-pet"],
        "{id}"
    );
    assert_eq!(j["items"][1]["matchers"][0]["prefix"], "/");
    // An extensions file with a field it does not know is refused.
    let bad = e.run_stdin(
        &[
            "route",
            "create",
            "--path-exact",
            "/z",
            "--upstream",
            PETSTORE,
            "--function",
            "f",
            "--extensions",
            "-",
        ],
        "nope: 1\n",
    );
    assert!(bad.refused().contains("--extensions -"));

    // Sort: methods first, then exact, regex, prefix; longer paths first.
    e.run(&[
        "add",
        "route",
        "--path-regex",
        "/r/.*",
        "--dest-name",
        PETSTORE,
    ])
    .ok();
    e.run(&["route", "sort"]).ok();
    let j = json(&e.run(&["get", "vs", "route", "-o", "json"]).ok());
    let order: Vec<String> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = &r["matchers"][0];
            m["exact"]
                .as_str()
                .or(m["regex"].as_str())
                .or(m["prefix"].as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        order,
        vec!["/petstore/findPet", "/petstore/list", "/r/.*", "/"]
    );

    let out = e.run(&["remove", "route", "--index", "3"]).ok();
    assert!(out.contains("route 3 removed from virtualservices/gloo-system/default"));
    let j = json(&e.run(&["get", "vs", "route", "-o", "json"]).ok());
    assert_eq!(j["items"].as_array().unwrap().len(), 3);
    assert!(
        e.run(&["remove", "route", "--index", "9"])
            .refused()
            .contains("there is no route 9")
    );
}

#[test]
fn delete_removes_and_warns_about_dangling_references() {
    let e = with_examples();
    let r = e.run(&["delete", "upstream", "httpbin-local"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("upstreams/gloo-system/httpbin-local deleted")
    );
    assert!(
        r.stderr
            .contains("upstream `gloo-system/httpbin-local` does not exist (yet)"),
        "{}",
        r.stderr
    );
    assert!(!e.file("upstreams/gloo-system/httpbin-local.yaml").exists());
    assert!(
        e.run(&["delete", "us", "httpbin-local"])
            .refused()
            .contains("not found")
    );
    assert!(
        e.run(&["delete", "pods", "x"])
            .refused()
            .contains("unknown kind")
    );
}

/// Each validation rule refuses with resource, field path and reason, and writes nothing.
#[test]
fn validation_rules_refuse_with_path_and_reason() {
    let e = with_examples();
    let vs = |name: &str, domain: &str, route: &str| {
        format!(
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['{domain}']\n    routes:\n{route}"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            vs("bad-regex", "a.com", "    - matchers: [{regex: '/users/(['}]\n      directResponseAction: {status: 200}\n"),
            "virtualservices/gloo-system/bad-regex: spec.virtualHost.routes[0].matchers[0].regex: invalid regex",
        ),
        (
            vs("zero", "b.com", "    - routeAction:\n        multi:\n          destinations:\n          - {destination: {upstream: {name: httpbin-local}}, weight: 0}\n"),
            "spec.virtualHost.routes[0].routeAction.multi.destinations: all weights are 0",
        ),
        (
            vs("dup", "*", "    - directResponseAction: {status: 200}\n"),
            "virtualservices/gloo-system/dup: spec.virtualHost.domains: domain `*` is also served by virtualservices/gloo-system/default",
        ),
        (
            vs("tpl", "c.com", "    - routeAction:\n        single:\n          upstream: {name: httpbin-local}\n          destinationSpec: {rest: {functionName: f, parameters: {headers: {x-pet: '{id'}}}}\n"),
            "spec.virtualHost.routes[0].routeAction.single.destinationSpec.rest.parameters.headers.x-pet: `{id`: unclosed '{'",
        ),
        (
            vs("noaction", "d.com", "    - matchers: [{prefix: /}]\n"),
            "spec.virtualHost.routes[0]: a route needs one action",
        ),
        (
            vs("status", "e.com", "    - directResponseAction: {status: 999}\n"),
            "spec.virtualHost.routes[0].directResponseAction.status: status 999 is not in 100-599",
        ),
        (
            vs("timeout", "f.com", "    - directResponseAction: {status: 200}\n      options: {timeout: soon}\n"),
            "spec.virtualHost.routes[0].options.timeout: `soon` is not a duration",
        ),
        (
            vs("backoff", "h.com", "    - directResponseAction: {status: 200}\n      options: {retries: {numRetries: 2, retryBackOff: {baseInterval: 1s, maxInterval: 100ms}}}\n"),
            "spec.virtualHost.routes[0].options.retries.retryBackOff.maxInterval: must not be less than baseInterval",
        ),
        (
            vs("slash", "g.com", "    - matchers: [{exact: nope}]\n      directResponseAction: {status: 200}\n"),
            "spec.virtualHost.routes[0].matchers[0].exact: `nope` must start with '/'",
        ),
        (
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: Bad_Name}\nspec: {static: {hosts: [{addr: h, port: 70000}]}}\n".to_string(),
            "metadata.name: `Bad_Name` is not a valid name",
        ),
        (
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: port}\nspec: {static: {hosts: [{addr: h, port: 70000}]}}\n".to_string(),
            "upstreams/gloo-system/port: spec.static.hosts[0].port: port 70000 is not in 1-65535",
        ),
        (
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: untyped}\nspec: {}\n".to_string(),
            "upstreams/gloo-system/untyped: spec: an upstream needs `static` (hosts) or `kube` (a service)",
        ),
        (
            // The delegated table's routes must start with the parent's prefix `/team`.
            "apiVersion: gateway.solo.io/v1\nkind: RouteTable\nmetadata: {name: team-routes, namespace: gloo-system}\nspec:\n  routes:\n  - matchers: [{prefix: /other}]\n    directResponseAction: {status: 200}\n".to_string(),
            "routetables/gloo-system/team-routes: spec.routes[0].matchers[0]: `/other` does not start with the prefix `/team` of its parent virtualservices/gloo-system/default spec.virtualHost.routes[6]",
        ),
    ];
    let before: Vec<String> = [
        "virtualservices/gloo-system/default.yaml",
        "routetables/gloo-system/team-routes.yaml",
    ]
    .iter()
    .map(|f| e.read(f))
    .collect();
    for (yaml, expected) in cases {
        let err = e.apply(&yaml).refused();
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
    // Nothing was written.
    for name in [
        "bad-regex",
        "zero",
        "dup",
        "tpl",
        "noaction",
        "backoff",
        "status",
        "timeout",
        "slash",
    ] {
        assert!(
            !e.file(&format!("virtualservices/gloo-system/{name}.yaml"))
                .exists(),
            "{name} written"
        );
    }
    assert!(!e.file("upstreams/gloo-system/port.yaml").exists());
    assert_eq!(
        e.read("routetables/gloo-system/team-routes.yaml"),
        before[1]
    );
    assert_eq!(
        e.read("virtualservices/gloo-system/default.yaml"),
        before[0]
    );

    // Several problems in one resource are all reported at once.
    let many = e
        .apply(&vs(
            "many",
            "h.com",
            "    - matchers: [{regex: '('}]\n      directResponseAction: {status: 1}\n",
        ))
        .refused();
    assert!(
        many.contains("2 problems") && many.contains("regex") && many.contains("status 1"),
        "{many}"
    );

    // Missing references are warnings: written, with a Warning status.
    let w = e.apply(&vs("refs", "i.com", "    - routeAction: {single: {upstream: {name: not-yet}, destinationSpec: {rest: {functionName: f}}}}\n"));
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert!(
        w.stderr
            .contains("upstream `gloo-system/not-yet` does not exist (yet)"),
        "{}",
        w.stderr
    );
    let j = json(&e.run(&["get", "vs", "refs", "-o", "json"]).ok());
    assert_eq!(j["status"]["state"], "Warning");
    // A function the upstream does not list is a warning too.
    let f = e.apply(&vs("fn", "j.com", &format!("    - routeAction: {{single: {{upstream: {{name: {PETSTORE}}}, destinationSpec: {{rest: {{functionName: nope}}}}}}}}\n")));
    assert!(
        f.stderr.contains(&format!(
            "upstream `{PETSTORE}` has no function `nope` (yet)"
        )),
        "{}",
        f.stderr
    );
}

#[test]
fn malformed_input_gets_a_clear_error() {
    let e = Epoxy::new();
    let r = e
        .apply("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a\n")
        .refused();
    assert!(r.contains("<stdin>:") && r.contains("invalid YAML"), "{r}");
    let r = e
        .apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
        .refused();
    assert!(r.contains("unsupported kind `ConfigMap`"), "{r}");
    let r = e.apply("---\n---\n").refused();
    assert!(r.contains("no resources found"), "{r}");
    let r = e.apply("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a}\nspec:\n  static:\n    hosts: nope\n").refused();
    assert!(r.contains("<stdin>:1: spec.static.hosts"), "{r}");
    let r = e.run(&["apply", "-f", "/nonexistent.yaml"]).refused();
    assert!(r.contains("/nonexistent.yaml"), "{r}");
}

/// A syntax error in a multi-document file names the file, the line and the column, in YAML
/// and in JSON alike (the one codec reads `apply`'s files, the store's and the editor's).
#[test]
fn syntax_errors_name_file_line_and_column() {
    let e = Epoxy::new();
    let dir = tempfile::tempdir().unwrap();
    let good = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {static: {hosts: [{addr: h, port: 1}]}}\n";
    let bad_line = "  labels: {x: \"y}";
    let yaml = format!(
        "{good}---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: b\n{bad_line}\n"
    );
    // Where the unclosed quote opens, counted from the text itself.
    let line = yaml.lines().position(|l| l == bad_line).unwrap() + 1;
    let column = bad_line.find('"').unwrap() + 1;
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let r = e.run(&["apply", "-f", path.to_str().unwrap()]).refused();
    let want = format!("{}:{line}:{column}: invalid YAML: ", path.display());
    assert!(r.contains(&want), "want {want:?} in {r}");

    let bad_json_line = " \"kind\": \"Upstream\",, }";
    let json = format!("{{\"apiVersion\": \"gloo.solo.io/v1\",\n{bad_json_line}\n");
    let column = bad_json_line.find(",,").unwrap() + 2;
    let path = dir.path().join("bad.json");
    std::fs::write(&path, &json).unwrap();
    let r = e.run(&["apply", "-f", path.to_str().unwrap()]).refused();
    let want = format!("{}:2:{column}: invalid JSON: ", path.display());
    assert!(r.contains(&want), "want {want:?} in {r}");
    // Nothing of the file with the error was applied, not even its good first document.
    let listed = e.run(&["get", "us", "-o", "json"]).ok();
    assert!(!listed.contains("\"a\""), "{listed}");
}

#[test]
fn corrupt_file_is_reported_and_left_untouched() {
    let e = with_examples();
    let path = e.file("upstreams/gloo-system/broken.yaml");
    let garbage = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: broken\nspec: [\n";
    std::fs::write(&path, garbage).unwrap();
    let r = e.run(&["get", "us"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("broken.yaml:") && r.stderr.contains("(skipped)"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains(PETSTORE) && !r.stdout.contains("broken"));
    // A write to that resource is refused rather than overwriting the file.
    let w = e.apply("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: broken}\nspec: {static: {hosts: [{addr: h, port: 1}]}}\n").refused();
    assert!(w.contains("will not overwrite"), "{w}");
    // Other writes go on, and the file is exactly as it was.
    e.run(&[
        "add",
        "route",
        "--path-exact",
        "/still",
        "--dest-name",
        PETSTORE,
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), garbage);
}

#[test]
fn racing_writers_one_wins_one_conflicts_nothing_lost() {
    let e = Epoxy::new();
    e.run(&[
        "create",
        "upstream",
        "static",
        "up",
        "--static-hosts",
        "127.0.0.1:1",
    ])
    .ok();
    e.run(&["create", "vs", "default"]).ok();
    let n = 8;
    let children: Vec<_> = (0..n)
        .map(|i| {
            e.command()
                .args([
                    "add",
                    "route",
                    "--path-exact",
                    &format!("/r{i}"),
                    "--dest-name",
                    "up",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut won = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        match o.status.code() {
            Some(0) => won.push(format!("/r{i}")),
            Some(1) => assert!(
                String::from_utf8_lossy(&o.stderr).contains("conflict"),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            other => panic!("unexpected exit {other:?}"),
        }
    }
    assert!(!won.is_empty());
    let j = json(&e.run(&["get", "vs", "route", "-o", "json"]).ok());
    let mut paths: Vec<String> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["matchers"][0]["exact"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    won.sort();
    // Every route whose writer was told "done" is there; no other.
    assert_eq!(paths, won);
}

#[test]
fn store_directory_comes_from_flag_then_env_then_xdg() {
    let e = Epoxy::new();
    let xdg = tempfile::tempdir().unwrap();
    let flag = tempfile::tempdir().unwrap();
    let create = |c: &mut std::process::Command| {
        let o = c.args(["create", "vs", "v"]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    // --dir wins over EPOXY_DIR.
    create(e.command().arg("--dir").arg(flag.path()));
    assert!(
        flag.path()
            .join("virtualservices/gloo-system/v.yaml")
            .exists()
    );
    assert!(!e.file("virtualservices/gloo-system/v.yaml").exists());
    // EPOXY_DIR wins over XDG_DATA_HOME.
    create(e.command().env("XDG_DATA_HOME", xdg.path()));
    assert!(e.file("virtualservices/gloo-system/v.yaml").exists());
    // Else $XDG_DATA_HOME/epoxy/store.
    create(
        e.command()
            .env_remove("EPOXY_DIR")
            .env("XDG_DATA_HOME", xdg.path()),
    );
    assert!(
        xdg.path()
            .join("epoxy/store/virtualservices/gloo-system/v.yaml")
            .exists()
    );
}

#[test]
fn a_route_that_can_never_match_gets_a_warning_naming_the_earlier_one() {
    let e = Epoxy::new();
    e.run(&[
        "create",
        "upstream",
        "static",
        "up",
        "--static-hosts",
        "127.0.0.1:1",
    ])
    .ok();
    e.run(&["add", "route", "--path-prefix", "/api", "--dest-name", "up"])
        .ok();
    let r = e.run(&[
        "add",
        "route",
        "--path-exact",
        "/api/x",
        "--dest-name",
        "up",
        "--index",
        "1",
    ]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("spec.virtualHost.routes[1]: this route can never match: spec.virtualHost.routes[0] before it"),
        "{}",
        r.stderr
    );
    assert!(e.run(&["get", "vs"]).ok().contains("Warning"));
    // Sorting fixes it.
    let s = e.run(&["route", "sort"]);
    assert!(!s.stderr.contains("can never match"), "{}", s.stderr);
    assert!(e.run(&["get", "vs"]).ok().contains("Accepted"));
}

/// Gloo's own examples: each is accepted as it is, except Gloo's typo example and its example
/// of a virtual service whose auth names an AuthConfig that is not there, which are refused.
#[test]
fn gloo_examples_are_accepted_and_typos_and_unenforced_auth_refused() {
    let dir = fixture("gloo");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in &files {
        let e = Epoxy::new();
        let name = f.file_name().unwrap().to_str().unwrap();
        let r = e.run(&["apply", "-f", f.to_str().unwrap()]);
        match name {
            "vs-typo.yaml" => {
                let err = r.refused();
                assert!(
                    err.contains("virtualservices/gloo-system/default: spec.virtualHoost: unknown field `virtualHoost`; did you mean `virtualHost`?"),
                    "{err}"
                );
            }
            "extauth-vs.yaml" => {
                let err = r.refused();
                assert!(
                    err.contains("virtualservices/gloo-system/auth-tutorial: spec.virtualHost.options.extauth.configRef: AuthConfig `passthrough-auth` does not exist"),
                    "{err}"
                );
            }
            "kube-destination-vs.yaml" => {
                // Outside Kubernetes mode, a `kube` destination is warned about, with where its
                // requests will go.
                assert_eq!(r.code, 0, "{}", r.stderr);
                assert!(r.stderr.contains("warning: virtualservices/gloo-system/vs-targeting-kube: spec.virtualHost.routes[0].routeAction.single.kube: a `kube` destination without --kube: requests go to nginx-annotated.nginx.svc.cluster.local:8443"), "{}", r.stderr);
                let routes = e.run(&["get", "vs", "route", "vs-targeting-kube"]).ok();
                assert!(
                    routes.contains("kube nginx/nginx-annotated:8443"),
                    "{routes}"
                );
            }
            _ => assert_eq!(r.code, 0, "{name}:\n{}", r.stderr),
        }
    }
}

/// `annotations:` with nothing after it (Gloo's session-affinity example) is no annotations.
#[test]
fn null_labels_and_annotations_are_absent() {
    let e = Epoxy::new();
    let out = e
        .run(&[
            "apply",
            "-f",
            fixture("gloo/session-affinity-us.yaml").to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.contains("default-session-affinity-app-80 created"),
        "{out}"
    );
    let y = e
        .apply("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: plain, labels: null, annotations: ~}\nspec: {static: {hosts: [{addr: a, port: 1}]}}\n")
        .ok();
    assert!(y.contains("upstreams/gloo-system/plain created"), "{y}");
    let j = json(&e.run(&["get", "us", "plain", "-o", "json"]).ok());
    assert!(j["metadata"].get("annotations").is_none(), "{j}");
    assert_eq!(j["status"]["state"], "Accepted");
}

/// Keys Gloo does not have are refused where they are, with the nearest field; a key from
/// Gloo 0.x says what Gloo renamed it to.
#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    let e = Epoxy::new();
    let vs = |route: &str| {
        format!(
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: v}}\nspec:\n  virtualHost:\n    routes:\n    - {route}\n"
        )
    };
    let cases = [
        (
            "{matcher: {prefix: /}, directResponseAction: {status: 200}}",
            "spec.virtualHost.routes[0].matcher: unknown field `matcher`; did you mean `matchers`?",
        ),
        (
            "{matchers: [{prefix: /, header: [{name: x}]}], directResponseAction: {status: 200}}",
            "spec.virtualHost.routes[0].matchers[0].header: unknown field `header`; did you mean `headers`?",
        ),
        (
            "{directResponseAction: {status: 200, bodyy: x}}",
            "spec.virtualHost.routes[0].directResponseAction.bodyy: unknown field `bodyy`; did you mean `body`?",
        ),
        (
            "{directResponseAction: {status: 200}, routePlugins: {prefixRewrite: /}}",
            "spec.virtualHost.routes[0].routePlugins: unknown field `routePlugins`; Gloo 0.x's name for `options`",
        ),
        (
            "{directResponseAction: {status: 200}, somethingElse: 1}",
            "spec.virtualHost.routes[0].somethingElse: unknown field `somethingElse`: Gloo has no such field here",
        ),
    ];
    for (route, want) in cases {
        let err = e.apply(&vs(route)).refused();
        assert!(
            err.contains(&format!("virtualservices/gloo-system/v: {want}")),
            "{route}\n{err}"
        );
    }
    assert!(e.run(&["get", "vs"]).ok().lines().count() <= 1);
}

/// Options that would make Gloo stop traffic (auth, rate limits) and epoxy cannot enforce refuse the resource and
/// name the field; options without a security effect are kept with a warning at their path.
#[test]
fn security_options_are_refused_other_options_kept_with_their_path() {
    let e = Epoxy::new();
    let vs = |spec_extra: &str, vh_extra: &str, route_extra: &str| {
        format!(
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: x}}\nspec:\n{spec_extra}  virtualHost:\n{vh_extra}    routes:\n    - matchers: [{{prefix: /}}]\n{route_extra}      directResponseAction: {{status: 200}}\n"
        )
    };
    let refused = [
        (
            vs("", "", "      options: {ratelimitEarly: {}}\n"),
            "spec.virtualHost.routes[0].options.ratelimitEarly",
        ),
        (
            vs("", "    options: {ratelimitRegular: {}}\n", ""),
            "spec.virtualHost.options.ratelimitRegular",
        ),
        (
            vs("", "    options: {extauth: {customAuth: {}}}\n", ""),
            "spec.virtualHost.options.extauth.customAuth",
        ),
        (
            vs("", "    options: {waf: {}}\n", ""),
            "spec.virtualHost.options.waf",
        ),
        (
            vs("", "", "      options: {rbac: {}}\n"),
            "spec.virtualHost.routes[0].options.rbac",
        ),
        (
            vs("", "", "      options: {ratelimitRegex: {}}\n"),
            "spec.virtualHost.routes[0].options.ratelimitRegex",
        ),
    ];
    for (yaml, field) in &refused {
        let err = e.apply(yaml).refused();
        assert!(
            err.contains(&format!(
                "virtualservices/gloo-system/x: {field}: epoxy does not"
            )),
            "{field}\n{err}"
        );
    }
    // TLS is served now; a certificate that is not there is refused, naming it.
    let err = e
        .apply(&vs("  sslConfig: {secretRef: {name: tls}}\n", "", ""))
        .refused();
    assert!(
        err.contains(
            "virtualservices/gloo-system/x: spec.sslConfig.secretRef: secret secrets/gloo-system/tls not found"
        ),
        "{err}"
    );
    let out = e.apply(&vs(
        "",
        "    options: {transformations: {clearRouteCache: true}}\n",
        "",
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning: virtualservices/gloo-system/x: spec.virtualHost.options.transformations: kept, not acted on"
        ),
        "{}",
        out.stderr
    );
    // Written behind epoxy's back, a virtual service with auth is Rejected, and says why.
    std::fs::write(e.file("virtualservices/gloo-system/x.yaml"), &refused[0].0).unwrap();
    let j = json(&e.run(&["get", "vs", "x", "-o", "json"]).ok());
    assert_eq!(j["status"]["state"], "Rejected");
    assert!(
        j["status"]["reason"].as_str().unwrap().starts_with(
            "spec.virtualHost.routes[0].options.ratelimitEarly: epoxy does not enforce"
        ),
        "{j}"
    );
}

/// `get vs route` shows every matcher of a route, with its header, query and method
/// conditions, not only the first path.
#[test]
fn route_listing_shows_every_matcher_and_condition() {
    let e = Epoxy::new();
    e.apply("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: m}\nspec:\n  virtualHost:\n    routes:\n    - matchers:\n      - {exact: /one, methods: [GET]}\n      - prefix: /two\n        caseSensitive: false\n        headers: [{name: x-a, value: '1'}, {name: x-b, value: 'v[0-9]', regex: true}, {name: x-c, invertMatch: true}]\n        queryParameters: [{name: q, value: abc}, {name: r}]\n      directResponseAction: {status: 204}\n")
        .ok();
    let out = e.run(&["get", "vs", "route", "m"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("QUERY"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("0") && lines[1].contains("/one") && lines[1].contains("GET"),
        "{out}"
    );
    for want in [
        "/two",
        "(any case)",
        "x-a=1,x-b~v[0-9],!x-c",
        "q=abc,r",
        "direct 204",
    ] {
        assert!(lines[2].contains(want), "{want}: {out}");
    }
    assert!(lines[2].starts_with("0"), "{out}");
}

/// A `kube` destination needs a service and a port, and carries no function.
#[test]
fn kube_destinations_are_checked() {
    let e = Epoxy::new();
    let err = e
        .apply("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: k}\nspec:\n  virtualHost:\n    routes:\n    - matchers: [{prefix: /}]\n      routeAction:\n        single:\n          kube: {ref: {namespace: web}, port: 0}\n          destinationSpec: {rest: {functionName: f}}\n")
        .refused();
    let at = "virtualservices/gloo-system/k: spec.virtualHost.routes[0].routeAction.single";
    for want in [
        format!("{at}.kube.ref.name: a service name is required"),
        format!("{at}.kube.port: port 0 is not in 1-65535"),
        format!("{at}.destinationSpec: functions live on upstreams"),
    ] {
        assert!(err.contains(&want), "{want}\n{err}");
    }
}

/// `epoxy gateway` tells of an unreadable file and of a rejected resource once, not again at
/// every reconcile the other writes cause, and tells when each is gone.
#[test]
fn the_gateway_tells_a_problem_once_and_its_end() {
    let e = Epoxy::new();
    let upstream = |name: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec: {{static: {{hosts: [{{addr: 127.0.0.1, port: 9}}]}}}}\n"
        )
    };
    e.apply(&upstream("a")).ok();
    let broken = e.file("upstreams/gloo-system/broken.yaml");
    std::fs::write(&broken, "kind: Upstream\nmetadata: {name: broken\n").unwrap();
    // A route whose regex does not compile: rejected.
    let rejected = e.file("virtualservices/gloo-system/v.yaml");
    std::fs::create_dir_all(rejected.parent().unwrap()).unwrap();
    let vs = |regex: &str| {
        format!(
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: gloo-system}}\nspec:\n  virtualHost:\n    routes:\n    - matchers: [{{regex: '{regex}'}}]\n      routeAction: {{single: {{upstream: {{name: a}}}}}}\n"
        )
    };
    std::fs::write(&rejected, vs("/(")).unwrap();
    let mut child = e
        .gateway("off")
        .env("EPOXY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log as it comes, so that each step waits for what it needs, not for a guess.
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let (lines, stderr) = (lines.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(l);
            }
        })
    };
    let wait_for = |wants: &[&str]| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !wants
            .iter()
            .all(|w| lines.lock().unwrap().iter().any(|l| l.contains(w)))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no {wants:?} in {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&["unreadable file skipped", "rejected"]);
    // Three more writes, more reconciles of the same problems.
    for name in ["b", "c", "d"] {
        e.apply(&upstream(name)).ok();
        std::thread::sleep(Duration::from_millis(300));
    }
    // Both problems go away (reported by a reconcile after those of the writes).
    std::fs::remove_file(&broken).unwrap();
    std::fs::write(&rejected, vs("/.*")).unwrap();
    wait_for(&["file read again", "no longer rejected"]);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    reader.join().unwrap();
    let log = lines.lock().unwrap().join("\n");
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("unreadable file skipped"), 1, "{log}");
    assert_eq!(count("rejected"), 2, "once rejected, once no longer: {log}");
    assert_eq!(count("no longer rejected"), 1, "{log}");
    assert_eq!(count("file read again"), 1, "{log}");
}
