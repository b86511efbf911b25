//! The original walkthrough, end to end: the real `epoxy demo --headless`, the real CLI in
//! "a second terminal", real HTTP.

mod common;
use common::Epoxy;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    url: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

fn start_demo(e: &Epoxy) -> Demo {
    let mut child = e
        .command()
        .args([
            "demo",
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split(" on ").nth(1)
            && line.contains("gateway")
        {
            url = Some(rest.split_whitespace().next().unwrap().to_string());
            break;
        }
    }
    Demo {
        child,
        url: url.expect("the demo printed no gateway URL"),
    }
}

/// Retries a check for a few seconds (discovery and reloads are asynchronous).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = common::http().build().unwrap();
        let mut r = c.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

#[test]
fn original_walkthrough_on_epoxy_demo() {
    let e = Epoxy::new();
    let demo = start_demo(&e);
    // `epoxy proxy url` in a second terminal finds the running demo with no flags.
    assert_eq!(e.run(&["proxy", "url"]).ok().trim(), demo.url);

    // Discovery fills the petstore's functions.
    let listing = eventually("the petstore's functions", || {
        let out = e.run(&["get", "upstream", "default-petstore-8080"]).ok();
        (out.contains("findPetById") && out.contains("findPets")).then_some(out)
    });
    for f in ["addPet", "deletePet", "findPetById", "findPets"] {
        assert!(listing.contains(f), "{listing}");
    }
    // `get -o yaml` shows what discovery found (saved by the running demo).
    eventually("discovery state in get -o yaml", || {
        let yaml = e
            .run(&["get", "upstream", "default-petstore-8080", "-o", "yaml"])
            .ok();
        (yaml.contains("discovery:")
            && yaml.contains("/swagger.json")
            && yaml.contains("functions: 4"))
        .then_some(())
    });

    // A route to the whole service, with its path rewritten.
    e.run(&[
        "route",
        "create",
        "--path-exact",
        "/petstore/list",
        "--upstream",
        "default-petstore-8080",
        "--prefix-rewrite",
        "/api/pets",
    ])
    .ok();
    let pets: Value = eventually("GET /petstore/list", || {
        let (s, b) = http("GET", &format!("{}/petstore/list", demo.url), &[], None);
        (s == 200).then(|| serde_json::from_str(&b).unwrap())
    });
    assert_eq!(
        pets,
        serde_json::json!([{"id": 1, "name": "Dog", "status": "available"}, {"id": 2, "name": "Cat", "status": "pending"}])
    );

    // A function route: the id comes from the JSON body.
    e.run(&[
        "route",
        "create",
        "--path-exact",
        "/petstore/findPet",
        "--upstream",
        "default-petstore-8080",
        "--function",
        "findPetById",
    ])
    .ok();
    let dog: Value = eventually("POST /petstore/findPet", || {
        let (s, b) = http(
            "POST",
            &format!("{}/petstore/findPet", demo.url),
            &[],
            Some(r#"{"id": 1}"#),
        );
        (s == 200).then(|| serde_json::from_str(&b).unwrap())
    });
    assert_eq!(dog["name"], "Dog");

    // The same route with extensions: the id comes from a header.
    let ext = e.file("ext.yaml");
    std::fs::write(&ext, "parameters:\n  headers:\n    x-pet: '{id}'\n").unwrap();
    e.run(&[
        "route",
        "create",
        "--path-exact",
        "/petstore/findPet",
        "--upstream",
        "default-petstore-8080",
        "--function",
        "findPetById",
        "--extensions",
        ext.to_str().unwrap(),
    ])
    .ok();
    let dog: Value = eventually("x-pet: 1", || {
        let (s, b) = http(
            "GET",
            &format!("{}/petstore/findPet", demo.url),
            &[("x-pet", "1")],
            None,
        );
        (s == 200)
            .then(|| serde_json::from_str::<Value>(&b).unwrap())
            .filter(|v| v["name"] == "Dog")
    });
    assert_eq!(dog["id"], 1);
    let (_, cat) = http(
        "GET",
        &format!("{}/petstore/findPet", demo.url),
        &[("x-pet", "2")],
        None,
    );
    assert!(cat.contains("Cat"), "{cat}");

    // glooctl's `add route` with a path parameter.
    e.run(&[
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
    ])
    .ok();
    let dog: Value = eventually("GET /petstore/findWithId/1", || {
        let (s, b) = http(
            "GET",
            &format!("{}/petstore/findWithId/1", demo.url),
            &[],
            None,
        );
        (s == 200).then(|| serde_json::from_str(&b).unwrap())
    });
    assert_eq!(dog["name"], "Dog");
    // An unknown pet: the petstore's 404 comes through with its message.
    let (s, b) = http(
        "GET",
        &format!("{}/petstore/findWithId/9", demo.url),
        &[],
        None,
    );
    assert_eq!(s, 404);
    assert!(b.contains("pet 9 not found"), "{b}");
}

#[test]
fn demo_restart_keeps_user_routes_and_refreshes_the_petstore_address() {
    let e = Epoxy::new();
    let first = start_demo(&e);
    eventually("functions", || {
        e.run(&["get", "us"])
            .ok()
            .contains("findPetById")
            .then_some(())
    });
    e.run(&[
        "route",
        "create",
        "--path-exact",
        "/petstore/list",
        "--upstream",
        "default-petstore-8080",
        "--prefix-rewrite",
        "/api/pets",
    ])
    .ok();
    let addr1 = e
        .run(&["get", "us", "default-petstore-8080", "-o", "json"])
        .ok();
    drop(first);
    // The address file is gone with the demo.
    assert_eq!(e.run(&["proxy", "url"]).code, 1);
    let second = start_demo(&e);
    let addr2 = e
        .run(&["get", "us", "default-petstore-8080", "-o", "json"])
        .ok();
    let host = |s: &str| {
        serde_json::from_str::<Value>(s).unwrap()["spec"]["static"]["hosts"][0]["port"].clone()
    };
    assert_ne!(
        host(&addr1),
        host(&addr2),
        "the demo upstream follows the new petstore"
    );
    let (s, _) = eventually("route after restart", || {
        let r = http("GET", &format!("{}/petstore/list", second.url), &[], None);
        (r.0 == 200).then_some(r)
    });
    assert_eq!(s, 200);
}

/// The walkthrough's "protect the petstore": basic auth from `htpasswd`, CORS and a local rate
/// limit on `epoxy demo`, applied with `epoxy apply` as the document shows.
#[test]
fn protect_the_petstore_on_epoxy_demo() {
    let e = Epoxy::new();
    let demo = start_demo(&e);
    let out = Command::new("htpasswd")
        .args(["-nbm", "user", "p@ssword"])
        .output()
        .expect("htpasswd (apache2-utils) is needed for this test");
    let line = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = line.trim().split('$').collect();
    let (salt, hash) = (parts[2], parts[3]);
    let yaml = format!(
        "apiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: basic-auth, namespace: gloo-system}}\nspec:\n  configs:\n  - basicAuth:\n      realm: petstore\n      apr:\n        users:\n          user: {{salt: '{salt}', hashedPassword: '{hash}'}}\n---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: protected, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: [petstore.example]\n    options:\n      cors: {{allowOrigin: ['https://shop.example'], allowMethods: [GET]}}\n      extauth: {{configRef: {{name: basic-auth}}}}\n    routes:\n    - matchers: [{{prefix: /api/pets}}]\n      options:\n        ratelimit: {{localRatelimit: {{maxTokens: 3, tokensPerFill: 3, fillInterval: 60s}}}}\n      routeAction: {{single: {{upstream: {{name: default-petstore-8080}}}}}}\n"
    );
    e.apply(&yaml).ok();
    let url = format!("{}/api/pets", demo.url);
    let host = ("host", "petstore.example");
    let auth = ("authorization", "Basic dXNlcjpwQHNzd29yZA=="); // user:p@ssword
    eventually("the protected virtual service", || {
        (http("GET", &url, &[host], None).0 == 401).then_some(())
    });
    let (s, body) = http("GET", &url, &[host, auth], None);
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Dog"), "{body}");
    let preflight = [
        host,
        ("origin", "https://shop.example"),
        ("access-control-request-method", "GET"),
    ];
    assert_eq!(http("OPTIONS", &url, &preflight, None).0, 200);
    let (s, _) = http("GET", &url, &[host, auth], None);
    assert_eq!(s, 200);
    let (s, _) = http("GET", &url, &[host, auth], None);
    assert_eq!(s, 200);
    assert_eq!(
        http("GET", &url, &[host, auth], None).0,
        429,
        "past 3 a minute"
    );
    // A reference to an AuthConfig that does not exist is refused at apply.
    let refused = e
        .apply(
            &yaml
                .replace(
                    "configRef: {name: basic-auth}",
                    "configRef: {name: nowhere}",
                )
                .replace(&yaml[..yaml.find("---").unwrap() + 4], ""),
        )
        .refused();
    assert!(
        refused.contains("AuthConfig `nowhere` does not exist"),
        "{refused}"
    );
}

/// The shell blocks of one walkthrough section (`## N. TITLE`), in order.
fn section_scripts(title: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/walkthrough.md"))
        .unwrap();
    let start = doc
        .find(title)
        .unwrap_or_else(|| panic!("no section {title}"));
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut out = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("```sh\n") {
        let body = &rest[i + 6..];
        let end = body.find("```").unwrap();
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

/// The walkthrough's "Serve the petstore over HTTPS", its shell blocks run as written (bash,
/// openssl, curl) against the real `epoxy demo`: the Secret, the virtual service, curl over
/// HTTPS with the CA, the rotation to a short-lived certificate (a Warning), a wrong key refused.
#[test]
fn walkthrough_https_section_runs_as_written() {
    let e = Epoxy::new();
    let _demo = start_demo(&e);
    let work = tempfile::tempdir().unwrap();
    let bin_dir = common::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |script: &str| {
        let out = Command::new("timeout")
            .args(["60", "bash", "-e", "-c", script])
            .current_dir(work.path())
            .env("PATH", &path)
            .env("EPOXY_DIR", e.store())
            .env_remove("XDG_DATA_HOME")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let blocks = section_scripts("## 12. Serve the petstore over HTTPS");
    assert_eq!(blocks.len(), 6, "{blocks:?}");
    let (code, _, err) = run(&blocks[0]);
    assert_eq!(code, 0, "making the certificates: {err}");
    let (code, out, err) = run(&blocks[1]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("secrets/gloo-system/petstore-tls created")
            && (out.contains("CN=petstore.example.com (89d left)")
                || out.contains("CN=petstore.example.com (90d left)")),
        "{out}"
    );
    let (code, out, err) = run(&blocks[2]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("petstore-https"))
        .unwrap_or("");
    assert!(
        row.contains("https")
            && row.contains("CN=petstore.example.com (")
            && row.contains("d left) · petstore.example.com")
            && row.trim_end().ends_with("Accepted"),
        "{out}"
    );
    let pets = eventually("the petstore over HTTPS", || {
        let (code, out, _) = run(&blocks[3]);
        (code == 0 && out.contains("Dog")).then_some(out)
    });
    let v: Value = serde_json::from_str(&pets).unwrap();
    assert_eq!(v["name"], "Dog");
    let (code, out, err) = run(&blocks[4]);
    assert_eq!(code, 0, "{err}");
    assert!(
        (out.contains("(6d left)") || out.contains("(7d left)"))
            && out.trim_end().ends_with("Warning"),
        "{out}"
    );
    // Whole days left: 6 once a second has passed since openssl signed it, 7 within it.
    assert!(
        err.contains("expires in 6 days") || err.contains("expires in 7 days"),
        "{err}"
    );
    // The rotated certificate is what curl now sees.
    let (code, out, err) = run(&format!(
        "want=$(openssl x509 -in petstore.crt -noout -enddate | cut -d= -f2)\n\
         got=$({} -v 2>&1 | sed -n 's/.*expire date: //p')\n\
         echo \"$want|$got\"; [ \"$want\" = \"$got\" ]",
        blocks[3].trim_end()
    ));
    assert_eq!(code, 0, "served certificate's end of validity: {out} {err}");
    let (code, _, err) = run(&blocks[5]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("secrets/gloo-system/petstore-tls: data[\"tls.key\"]: the private key does not match the certificate"),
        "{err}"
    );
    // The last good certificate keeps serving.
    let (code, out, _) = run(&blocks[3]);
    assert!(code == 0 && out.contains("Dog"), "{out}");
}
