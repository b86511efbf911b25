//! TLS: Secrets, termination (SNI, ALPN, mTLS, versions, rotation) and origination, against
//! the real gateway with certificates made here (rcgen) and independent clients where cheap.

mod common;
use common::Epoxy;
use common::certs::{Ca, b64, tls_secret};

/// A Secret of any type is applied, stored in its file, listed with its type, keys and (for
/// TLS) certificate subject, and never shows its key material; a TLS secret whose key does
/// not match its certificate is refused, naming it.
#[test]
fn secrets_are_applied_listed_without_key_material_and_checked() {
    let e = Epoxy::new();
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["petstore.example.com"]);
    let other = ca.leaf(&["other.example.com"]);
    let apikey = "apiVersion: v1\nkind: Secret\nmetadata: {name: key1, namespace: gloo-system, labels: {team: a}}\ntype: extauth.solo.io/apikey\nstringData:\n  api-key: hunter2-secret-value\n";
    let aws = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: gloo-system}}\ndata:\n  aws_access_key_id: {}\n  aws_secret_access_key: {}\n",
        b64("AKIAEXAMPLE"),
        b64("very-secret-aws-key")
    );
    let yaml = format!(
        "{}---\n{apikey}---\n{aws}",
        tls_secret("gloo-system", "petstore-tls", &leaf, Some(&ca.pem()))
    );
    let out = e.apply(&yaml).ok();
    assert!(
        out.contains("secrets/gloo-system/petstore-tls created"),
        "{out}"
    );
    let file = e.read("secrets/gloo-system/petstore-tls.yaml");
    assert!(file.contains("kubernetes.io/tls"), "{file}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(e.file("secrets/gloo-system/petstore-tls.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "a secret's file is its owner's only");
    }

    let table = e.run(&["get", "secrets"]).ok();
    let row = table
        .lines()
        .find(|l| l.starts_with("petstore-tls"))
        .unwrap();
    assert!(row.contains("kubernetes.io/tls"), "{table}");
    assert!(row.contains("ca.crt,tls.crt,tls.key"), "{table}");
    assert!(row.contains("CN=petstore.example.com"), "{table}");
    assert!(row.contains("Accepted"), "{table}");
    let row = table.lines().find(|l| l.starts_with("key1")).unwrap();
    assert!(
        row.contains("extauth.solo.io/apikey") && row.contains("api-key"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("aws")).unwrap();
    assert!(
        row.contains("Opaque") && row.contains("aws_access_key_id"),
        "{table}"
    );

    // No key material in any listing.
    let key_b64 = b64(&leaf.key);
    for args in [
        vec!["get", "secrets"],
        vec!["get", "secret", "-o", "yaml"],
        vec!["get", "secret", "petstore-tls", "-o", "json"],
        vec!["get", "secret", "key1", "-o", "yaml"],
    ] {
        let out = e.run(&args).ok();
        for secret in [
            "hunter2-secret-value",
            "very-secret-aws-key",
            key_b64.as_str(),
            "PRIVATE KEY",
            &b64("very-secret-aws-key"),
        ] {
            assert!(!out.contains(secret), "{args:?} shows key material:\n{out}");
        }
    }
    let one = e.run(&["get", "secret", "key1", "-o", "yaml"]).ok();
    assert!(one.contains("api-key: \"<redacted: 20 bytes>\""), "{one}");

    // A key that is not the certificate's is refused, naming the secret and the field.
    let bad = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: mismatched, namespace: gloo-system}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&leaf.cert),
        b64(&other.key)
    );
    let err = e.apply(&bad).refused();
    assert!(
        err.contains("secrets/gloo-system/mismatched")
            && err.contains("tls.key")
            && err.contains("does not match the certificate"),
        "{err}"
    );
    let garbage = "apiVersion: v1\nkind: Secret\nmetadata: {name: garbage, namespace: gloo-system}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"\n  tls.key: nothing\n";
    let err = e.apply(garbage).refused();
    assert!(err.contains("secrets/gloo-system/garbage"), "{err}");
}

/// Gloo's own `tls:` secret form reads as a TLS secret.
#[test]
fn gloo_tls_secret_form_is_read() {
    let e = Epoxy::new();
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["a.example.com"]);
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: gloo-form, namespace: gloo-system}}\ntls:\n  certChain: |\n{}  privateKey: |\n{}",
        indent(&leaf.cert, 4),
        indent(&leaf.key, 4)
    );
    e.apply(&yaml).ok();
    let table = e.run(&["get", "secret"]).ok();
    let row = table.lines().find(|l| l.starts_with("gloo-form")).unwrap();
    assert!(
        row.contains("kubernetes.io/tls") && row.contains("CN=a.example.com"),
        "{table}"
    );
}

fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

// ---------------------------------------------------------------- termination

use common::certs::Leaf;
use common::gw::Harness;
use common::tls::Client;
use std::net::SocketAddr;

/// A gateway with a TLS listener, on the fast path or hyper alone.
async fn harness(fast_path: bool) -> Harness {
    Harness::with(|c| {
        c.listen_tls = Some("127.0.0.1:0".parse().unwrap());
        c.fast_path = fast_path;
    })
    .await
}

fn tls_addr(h: &Harness) -> SocketAddr {
    h.handle.tls_addr.expect("a TLS listener")
}

/// A virtual service answering `body` on every path, terminating TLS with `ssl` (YAML under
/// `sslConfig:`, indented by 4), for `domains`.
fn tls_vs(name: &str, domains: &str, ssl: &str, body: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  sslConfig:\n{ssl}  virtualHost:\n    domains: {domains}\n    routes:\n    - matchers: [{{prefix: /}}]\n      directResponseAction: {{status: 200, body: '{body}'}}\n"
    )
}

fn secret_ref(name: &str, sni: &[&str]) -> String {
    let mut s = format!("    secretRef: {{name: {name}, namespace: gloo-system}}\n");
    if !sni.is_empty() {
        s.push_str(&format!("    sniDomains: [{}]\n", sni.join(", ")));
    }
    s
}

/// Runs `curl` (an independent client) against the TLS listener: `--resolve` maps `host` to
/// it; returns (exit code, stdout, stderr).
fn curl(addr: SocketAddr, host: &str, path: &str, extra: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{}:127.0.0.1", addr.port()))
        .args(extra)
        .arg(format!("https://{host}:{}{path}", addr.port()))
        .output()
        .expect("curl is installed (.ci/run)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_pem(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// SNI picks the certificate (and the routes) of the right virtual service; a name no
/// virtual service claims gets no certificate; the plain listener serves only the virtual
/// services without sslConfig; both transports; curl agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_the_certificate_and_routes_across_virtual_services() {
    for fast in [true, false] {
        let h = harness(fast).await;
        let ca = Ca::new("sni CA");
        let a = ca.leaf(&["a.example.com"]);
        let b = ca.leaf(&["b.example.com"]);
        h.apply(&format!(
            "{}---\n{}---\n{}---\n{}---\n{}",
            tls_secret("gloo-system", "a-tls", &a, None),
            tls_secret("gloo-system", "b-tls", &b, None),
            tls_vs("a", "[a.example.com]", &secret_ref("a-tls", &["a.example.com"]), "from a"),
            tls_vs("b", "[b.example.com]", &secret_ref("b-tls", &["b.example.com"]), "from b"),
            common::gw::vs(
                "plain",
                "['*']",
                "    - matchers: [{prefix: /}]\n      directResponseAction: {status: 200, body: 'in clear'}\n"
            ),
        ))
        .await;
        let addr = tls_addr(&h);
        for (name, body) in [("a.example.com", "from a"), ("b.example.com", "from b")] {
            let mut c = Client::new(&ca.pem(), name).connect(addr).await.unwrap();
            assert_eq!(c.subject, format!("CN={name}"), "fast={fast}");
            assert_eq!(c.get("/x").await.unwrap(), (200, body.to_string()));
            // A chain's connection reaches only its own virtual services.
            let other = if name.starts_with('a') {
                "b.example.com"
            } else {
                "a.example.com"
            };
            assert_eq!(c.get_host(other, "/x").await.unwrap().0, 404, "fast={fast}");
            let (code, out, err) = curl(
                addr,
                name,
                "/",
                &["--cacert", &write_pem(h.dir.path(), "ca.pem", &ca.pem())],
            );
            assert_eq!((code, out.as_str()), (0, body), "curl: {err}");
        }
        let err = Client::new(&ca.pem(), "c.example.com").connect(addr).await;
        assert!(err.is_err(), "no certificate for an unclaimed name");
        // The plain listener: only what has no sslConfig.
        let r = Harness::client()
            .get(format!("{}/", h.url))
            .header("host", "a.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "in clear");
    }
}

/// ALPN: `h2` gives HTTP/2 over TLS, `http/1.1` HTTP/1.1, forwarding to a real upstream, on
/// keep-alive connections; curl agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_negotiates_h2_and_http11_and_forwards() {
    for fast in [true, false] {
        let h = harness(fast).await;
        let up = common::upstream::start("pets");
        let ca = Ca::new("alpn CA");
        let leaf = ca.leaf(&["pets.example.com"]);
        h.apply(&format!(
            "{}---\n{}---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: pets, namespace: gloo-system}}\nspec:\n  sslConfig:\n{}  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: pets}}}}}}\n",
            tls_secret("gloo-system", "pets-tls", &leaf, None),
            common::gw::static_upstream("pets", &[up.host_port()]),
            secret_ref("pets-tls", &[]),
        ))
        .await;
        let addr = tls_addr(&h);
        for (alpn, want) in [
            (vec!["h2", "http/1.1"], "h2"),
            (vec!["http/1.1"], "http/1.1"),
        ] {
            let mut client = Client::new(&ca.pem(), "pets.example.com");
            client.alpn = alpn;
            let mut c = client.connect(addr).await.unwrap();
            assert_eq!(c.alpn.as_deref(), Some(want), "fast={fast}");
            for i in 0..3 {
                let (status, body) = c.get(&format!("/pets/{i}")).await.unwrap();
                assert_eq!(status, 200, "{body}");
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["path"], format!("/pets/{i}"));
                assert_eq!(v["server"], "pets");
                // The upstream learns the client came by TLS (as Envoy tells it).
                assert_eq!(v["headers"]["x-forwarded-proto"], "https", "fast={fast}");
            }
        }
        let ca_file = write_pem(h.dir.path(), "ca.pem", &ca.pem());
        let (code, out, err) = curl(
            addr,
            "pets.example.com",
            "/h2",
            &["--cacert", &ca_file, "--http2", "-w", "\n%{http_version}"],
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.ends_with("\n2"), "{out}");
        let (code, out, err) = curl(
            addr,
            "pets.example.com",
            "/h1",
            &["--cacert", &ca_file, "--http1.1", "-w", "\n%{http_version}"],
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.ends_with("\n1.1") && out.contains("\"/h1\""), "{out}");
    }
}

/// With a CA in the secret (`ca.crt`), clients must present a certificate it signed (mTLS);
/// `verifySubjectAltName` narrows which; `oneWayTls` turns it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_without_a_client_certificate_and_accepts_with_one() {
    let h = harness(true).await;
    let ca = Ca::new("mtls CA");
    let server = ca.leaf(&["secure.example.com", "open.example.com"]);
    let alice = ca.leaf(&["alice.clients"]);
    let mallory = Ca::new("other CA").leaf(&["alice.clients"]);
    let bob = ca.leaf(&["bob.clients"]);
    h.apply(&format!(
        "{}---\n{}---\n{}",
        tls_secret("gloo-system", "secure-tls", &server, Some(&ca.pem())),
        tls_vs(
            "secure",
            "['secure.example.com']",
            &format!(
                "{}    verifySubjectAltName: [alice.clients]\n",
                secret_ref("secure-tls", &["secure.example.com"])
            ),
            "secret"
        ),
        tls_vs(
            "open",
            "['open.example.com']",
            &format!(
                "{}    oneWayTls: true\n",
                secret_ref("secure-tls", &["open.example.com"])
            ),
            "open"
        ),
    ))
    .await;
    let addr = tls_addr(&h);
    let client = |cert: Option<&Leaf>| {
        let mut c = Client::new(&ca.pem(), "secure.example.com");
        c.client_cert = cert.cloned();
        c
    };
    assert!(
        client(None).get(addr, "/").await.is_err(),
        "served without a client certificate"
    );
    assert!(
        client(Some(&mallory)).get(addr, "/").await.is_err(),
        "a certificate of another CA"
    );
    assert!(
        client(Some(&bob)).get(addr, "/").await.is_err(),
        "a SAN not in verifySubjectAltName"
    );
    assert_eq!(
        client(Some(&alice)).get(addr, "/").await.unwrap(),
        (200, "secret".into())
    );
    // curl too: refused without, served with.
    let dir = h.dir.path();
    let ca_file = write_pem(dir, "ca.pem", &ca.pem());
    let (code, _, _) = curl(addr, "secure.example.com", "/", &["--cacert", &ca_file]);
    assert_ne!(code, 0, "curl without a client certificate was served");
    let (code, out, err) = curl(
        addr,
        "secure.example.com",
        "/",
        &[
            "--cacert",
            &ca_file,
            "--cert",
            &write_pem(dir, "alice.pem", &alice.cert),
            "--key",
            &write_pem(dir, "alice.key", &alice.key),
        ],
    );
    assert_eq!((code, out.as_str()), (0, "secret"), "{err}");
    // oneWayTls: the same CA, no client certificate asked.
    let mut open = Client::new(&ca.pem(), "open.example.com");
    open.client_cert = None;
    assert_eq!(open.get(addr, "/").await.unwrap(), (200, "open".into()));
}

/// `minimumProtocolVersion: TLSv1_3` refuses a TLS 1.2 client; without it TLS 1.2 is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimum_protocol_version_is_enforced() {
    let h = harness(true).await;
    let ca = Ca::new("version CA");
    let modern = ca.leaf(&["modern.example.com"]);
    let legacy = ca.leaf(&["legacy.example.com"]);
    h.apply(&format!(
        "{}---\n{}---\n{}---\n{}",
        tls_secret("gloo-system", "modern", &modern, None),
        tls_secret("gloo-system", "legacy", &legacy, None),
        tls_vs(
            "modern",
            "[modern.example.com]",
            &format!(
                "{}    parameters: {{minimumProtocolVersion: TLSv1_3}}\n",
                secret_ref("modern", &["modern.example.com"])
            ),
            "modern"
        ),
        tls_vs(
            "legacy",
            "[legacy.example.com]",
            &format!(
                "{}    parameters: {{maximumProtocolVersion: TLSv1_2}}\n",
                secret_ref("legacy", &["legacy.example.com"])
            ),
            "legacy"
        ),
    ))
    .await;
    let addr = tls_addr(&h);
    let mut old = Client::new(&ca.pem(), "modern.example.com");
    old.tls12_only = true;
    assert!(
        old.get(addr, "/").await.is_err(),
        "TLS 1.2 under a TLS 1.3 minimum"
    );
    let c = Client::new(&ca.pem(), "modern.example.com")
        .connect(addr)
        .await
        .unwrap();
    assert_eq!(c.version, rustls::ProtocolVersion::TLSv1_3);
    let c = Client::new(&ca.pem(), "legacy.example.com")
        .connect(addr)
        .await
        .unwrap();
    assert_eq!(
        c.version,
        rustls::ProtocolVersion::TLSv1_2,
        "the maximum is TLS 1.2"
    );
    // curl: TLS 1.2 at most is refused by the modern one.
    let ca_file = write_pem(h.dir.path(), "ca.pem", &ca.pem());
    let (code, _, _) = curl(
        addr,
        "modern.example.com",
        "/",
        &["--cacert", &ca_file, "--tls-max", "1.2"],
    );
    assert_ne!(code, 0);
    let (code, out, err) = curl(addr, "modern.example.com", "/", &["--cacert", &ca_file]);
    assert_eq!((code, out.as_str()), (0, "modern"), "{err}");
}

/// Two virtual services with different sslConfigs and no sniDomains cannot share the TLS
/// gateway (Gloo refuses it too): the write is refused naming both.
#[test]
fn two_tls_virtual_services_without_sni_are_refused() {
    let e = Epoxy::new();
    let ca = Ca::new("CA");
    let one = ca.leaf(&["one.example.com"]);
    let two = ca.leaf(&["two.example.com"]);
    e.apply(&format!(
        "{}---\n{}---\n{}",
        tls_secret("gloo-system", "one", &one, None),
        tls_secret("gloo-system", "two", &two, None),
        tls_vs("one", "[one.example.com]", &secret_ref("one", &[]), "1"),
    ))
    .ok();
    let err = e
        .apply(&tls_vs(
            "two",
            "[two.example.com]",
            &secret_ref("two", &[]),
            "2",
        ))
        .refused();
    assert!(
        err.contains("virtualservices/gloo-system/two")
            && err.contains("spec.sslConfig.sniDomains")
            && err.contains("virtualservices/gloo-system/one")
            && err.contains("no sniDomains"),
        "{err}"
    );
    // A virtual service naming a secret that does not exist is refused too.
    let err = e
        .apply(&tls_vs(
            "three",
            "[three.example.com]",
            &secret_ref("missing", &["three.example.com"]),
            "3",
        ))
        .refused();
    assert!(
        err.contains("secret secrets/gloo-system/missing not found"),
        "{err}"
    );
}

// ---------------------------------------------------------------- rotation

use epoxy::api::status::State;
use epoxy::api::{Kind, ResourceKey};
use epoxy::store::Store;
use std::time::{Duration, Instant};

/// How long until a new connection for `sni` is served `want` (polling with fresh
/// handshakes every 10 ms); panics after 3 s.
async fn until_served(addr: SocketAddr, ca: &Ca, sni: &str, want: &Leaf) -> Duration {
    let start = Instant::now();
    let want = want.der();
    loop {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_secs(1),
            Client::new(&ca.pem(), sni).connect(addr),
        )
        .await
            && c.cert == want
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the new certificate is not served after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The certificate a new connection for `sni` is served, or the handshake's error.
async fn served(addr: SocketAddr, ca: &Ca, sni: &str) -> Result<Vec<u8>, String> {
    tokio::time::timeout(
        Duration::from_secs(3),
        Client::new(&ca.pem(), sni).connect(addr),
    )
    .await
    .map_err(|_| "no handshake within 3 s".to_string())?
    .map(|c| c.cert)
}

/// The status the control loop last reported for `key`.
fn status_of(h: &Harness, key: &ResourceKey) -> epoxy::api::status::Status {
    h.reports
        .borrow()
        .statuses
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no status for {key}"))
}

/// Waits (3 s at most) until the status of `key` is in `state`; returns it.
async fn until_state(h: &Harness, key: &ResourceKey, state: State) -> epoxy::api::status::Status {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let st = status_of(h, key);
        if st.state == state {
            return st;
        }
        assert!(Instant::now() < deadline, "{key} is not {state:?}: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `epoxy apply -f -` run as its own process on the harness's store (another writer).
fn cli_apply(h: &Harness, yaml: &str) -> common::Run {
    use std::io::Write;
    let mut child = std::process::Command::new(common::bin())
        .env("EPOXY_DIR", h.dir.path())
        .env_remove("XDG_DATA_HOME")
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A Secret changed with `epoxy apply` is served to new connections within 1 s, without a
/// restart, while a connection opened before keeps working (and keeps its certificate); a
/// changed Secret whose key does not match, or whose certificate does not parse, written
/// straight to the store, is refused in the Secret's status and the last good one serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_served_within_a_second_and_open_connections_survive() {
    for fast in [true, false] {
        let h = harness(fast).await;
        let addr = tls_addr(&h);
        let ca = Ca::new("rotation CA");
        let sni = "rot.example.com";
        let v1 = ca.leaf(&[sni]);
        let v2 = ca.leaf(&[sni]);
        let v3 = ca.leaf(&[sni]);
        h.apply(&format!(
            "{}---\n{}",
            tls_secret("gloo-system", "rot-tls", &v1, None),
            tls_vs("rot", "['*']", &secret_ref("rot-tls", &[]), "rotating"),
        ))
        .await;
        let mut open = Client::new(&ca.pem(), sni).connect(addr).await.unwrap();
        assert_eq!(open.cert, v1.der());
        assert_eq!(open.get("/before").await.unwrap(), (200, "rotating".into()));

        // `epoxy apply` (another process) rotates it.
        let out = cli_apply(&h, &tls_secret("gloo-system", "rot-tls", &v2, None)).ok();
        assert!(
            out.contains("secrets/gloo-system/rot-tls configured"),
            "{out}"
        );
        let delay = until_served(addr, &ca, sni, &v2).await;
        eprintln!("fast={fast}: a Secret applied with `epoxy apply` served after {delay:?}");
        assert!(delay < Duration::from_secs(1), "rotation took {delay:?}");
        // The connection opened before goes on, under the certificate it was made with.
        for i in 0..3 {
            assert_eq!(
                open.get(&format!("/after/{i}")).await.unwrap(),
                (200, "rotating".into()),
                "fast={fast}"
            );
        }
        assert_eq!(open.cert, v1.der());

        // Written straight to the store (a store write, as an external edit): also served.
        let t = Instant::now();
        let written = h
            .store
            .put(
                epoxy::api::parse_one(&tls_secret("gloo-system", "rot-tls", &v3, None), "t")
                    .unwrap(),
                epoxy::store::Precondition::Any,
            )
            .await
            .unwrap();
        let delay = until_served(addr, &ca, sni, &v3).await;
        eprintln!(
            "fast={fast}: a Secret written to the store served after {delay:?} ({:?} with the write)",
            t.elapsed()
        );
        assert!(delay < Duration::from_secs(1), "rotation took {delay:?}");
        h.wait_for(&[written]).await;

        // A key of another certificate: refused in the Secret's status, v3 goes on serving.
        let key = ResourceKey::new(Kind::Secret, "gloo-system", "rot-tls");
        let stranger = ca.leaf(&["stranger.example.com"]);
        let mismatched = Leaf {
            cert: v2.cert.clone(),
            key: stranger.key.clone(),
        };
        h.put_raw(&tls_secret("gloo-system", "rot-tls", &mismatched, None))
            .await;
        let st = until_state(&h, &key, State::Rejected).await;
        let reason = st.reason.unwrap_or_default();
        assert!(
            reason.contains("tls.key") && reason.contains("does not match the certificate"),
            "{reason}"
        );
        assert_eq!(
            served(addr, &ca, sni).await.unwrap(),
            v3.der(),
            "fast={fast}"
        );
        assert_eq!(open.get("/still").await.unwrap().0, 200);
        // A certificate that does not parse: the same.
        let garbage = Leaf {
            cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            key: v2.key.clone(),
        };
        h.put_raw(&tls_secret("gloo-system", "rot-tls", &garbage, None))
            .await;
        let st = until_state(&h, &key, State::Rejected).await;
        let reason = st.reason.unwrap_or_default();
        assert!(reason.contains("tls.crt"), "{reason}");
        assert_eq!(
            served(addr, &ca, sni).await.unwrap(),
            v3.der(),
            "fast={fast}"
        );
        // Fixed: accepted and served again.
        h.put_raw(&tls_secret("gloo-system", "rot-tls", &v1, None))
            .await;
        until_served(addr, &ca, sni, &v1).await;
        until_state(&h, &key, State::Accepted).await;
    }
}

/// Certificate files (`sslFiles`) rewritten in place are served to new connections within
/// 1 s, an open connection keeps working; a file that does not parse, or a key that does not
/// match, is refused in the virtual service's status (naming it) and the last good
/// certificate keeps serving until the files are right again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_files_are_served_within_a_second() {
    for fast in [true, false] {
        let h = harness(fast).await;
        let addr = tls_addr(&h);
        let files = tempfile::tempdir().unwrap();
        let ca = Ca::new("files CA");
        let sni = "files.example.com";
        let v1 = ca.leaf(&[sni]);
        let v2 = ca.leaf(&[sni]);
        let cert = write_pem(files.path(), "tls.crt", &v1.cert);
        let key = write_pem(files.path(), "tls.key", &v1.key);
        h.apply(&tls_vs(
            "files",
            "['*']",
            &format!("    sslFiles: {{tlsCert: '{cert}', tlsKey: '{key}'}}\n"),
            "from files",
        ))
        .await;
        let mut open = Client::new(&ca.pem(), sni).connect(addr).await.unwrap();
        assert_eq!(open.cert, v1.der());
        assert_eq!(open.get("/").await.unwrap(), (200, "from files".into()));

        // Rewritten in place, the certificate first, then the key (the moment between is a
        // mismatch, which must not stick).
        std::fs::write(&cert, &v2.cert).unwrap();
        std::fs::write(&key, &v2.key).unwrap();
        let delay = until_served(addr, &ca, sni, &v2).await;
        eprintln!("fast={fast}: sslFiles rewritten, served after {delay:?}");
        assert!(delay < Duration::from_secs(1), "rotation took {delay:?}");
        assert_eq!(
            open.get("/after").await.unwrap(),
            (200, "from files".into())
        );
        let vs_key = ResourceKey::new(Kind::VirtualService, "gloo-system", "files");
        until_state(&h, &vs_key, State::Accepted).await;

        // A certificate that does not parse: refused in the status, v2 keeps serving.
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        // The watcher may read the file between its truncation and the write ("no PEM
        // certificate found"): what counts is the status once the write is read.
        let st = until_state_reason(&h, &vs_key, "does not parse").await;
        assert_eq!(st.state, State::Rejected);
        let reason = st.reason.unwrap_or_default();
        assert!(
            reason.contains("does not parse") && reason.contains("last good certificate"),
            "{reason}"
        );
        assert_eq!(
            served(addr, &ca, sni).await.unwrap(),
            v2.der(),
            "fast={fast}"
        );
        // A key that is not the certificate's: the same.
        std::fs::write(&cert, &v1.cert).unwrap();
        let st = until_state_reason(&h, &vs_key, "does not match").await;
        assert!(
            st.reason
                .unwrap_or_default()
                .contains("last good certificate")
        );
        assert_eq!(
            served(addr, &ca, sni).await.unwrap(),
            v2.der(),
            "fast={fast}"
        );
        assert_eq!(open.get("/still").await.unwrap().0, 200);
        // Right again: served, accepted.
        std::fs::write(&key, &v1.key).unwrap();
        until_served(addr, &ca, sni, &v1).await;
        until_state(&h, &vs_key, State::Accepted).await;
    }
}

/// Waits (3 s at most) until the status reason of `key` contains `text`.
async fn until_state_reason(
    h: &Harness,
    key: &ResourceKey,
    text: &str,
) -> epoxy::api::status::Status {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let st = status_of(h, key);
        if st.reason.as_deref().is_some_and(|r| r.contains(text)) {
            return st;
        }
        assert!(Instant::now() < deadline, "{key}: no `{text}` in {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- where a user looks

/// `epoxy get vs` shows each virtual service's listener and certificate (subject, names,
/// days left), a Warning for one expiring within 14 days, and what cannot be read; `-o json`
/// has the same under `status.tls`.
#[test]
fn get_vs_shows_the_listener_and_the_certificate_and_warns_before_expiry() {
    let e = Epoxy::new();
    let ca = Ca::new("listing CA");
    let long = ca.leaf(&["long.example.com", "www.long.example.com"]);
    let short = ca.leaf_valid_for(&["short.example.com"], 5);
    let files = tempfile::tempdir().unwrap();
    let missing = files.path().join("gone.crt");
    e.apply(&format!(
        "{}---\n{}---\n{}---\n{}---\n{}---\n{}",
        tls_secret("gloo-system", "long", &long, None),
        tls_secret("gloo-system", "short", &short, None),
        tls_vs("long", "[long.example.com]", &secret_ref("long", &["long.example.com"]), "l"),
        tls_vs("short", "[short.example.com]", &secret_ref("short", &["short.example.com"]), "s"),
        tls_vs(
            "files",
            "[files.example.com]",
            &format!(
                "    sslFiles: {{tlsCert: '{}', tlsKey: '{}'}}\n    sniDomains: [files.example.com]\n",
                missing.display(),
                missing.display()
            ),
            "f"
        ),
        common::gw::vs(
            "plain",
            "['*']",
            "    - matchers: [{prefix: /}]\n      directResponseAction: {status: 200}\n"
        ),
    ))
    .ok();
    let run = e.run(&["get", "vs"]);
    let (table, warnings) = (run.stdout.clone(), run.stderr.clone());
    assert_eq!(run.code, 0, "{table}{warnings}");
    let header = table.lines().next().unwrap();
    for col in ["LISTENER", "CERTIFICATE", "STATUS"] {
        assert!(header.contains(col), "{table}");
    }
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"))
            .to_string()
    };
    let l = row("long");
    assert!(
        l.contains("https")
            && (l.contains("CN=long.example.com (364d left)")
                || l.contains("CN=long.example.com (365d left)"))
            && l.contains("long.example.com, www.long.example.com")
            && l.trim_end().ends_with("Accepted"),
        "{table}"
    );
    let s = row("short");
    // Valid for 5 days from now: 5 whole days left within the second it was made, then 4.
    assert!(
        (s.contains("CN=short.example.com (4d left)")
            || s.contains("CN=short.example.com (5d left)"))
            && s.trim_end().ends_with("Warning"),
        "{table}"
    );
    assert!(
        warnings.contains("virtualservices/gloo-system/short")
            && (warnings.contains("expires in 4 days") || warnings.contains("expires in 5 days")),
        "{warnings}"
    );
    let f = row("files");
    assert!(
        f.contains("https")
            && f.contains("unreadable")
            && f.contains("gone.crt")
            && f.trim_end().ends_with("Warning"),
        "{table}"
    );
    assert!(
        warnings.contains("the certificate cannot be read"),
        "{warnings}"
    );
    let p = row("plain");
    assert!(p.contains(" http ") && !p.contains("https"), "{table}");

    let j: serde_json::Value =
        serde_json::from_str(&e.run(&["get", "vs", "short", "-o", "json"]).ok()).unwrap();
    let tls = &j["status"]["tls"];
    assert_eq!(tls["listener"], "https", "{j}");
    assert_eq!(tls["subject"], "CN=short.example.com");
    assert_eq!(
        tls["subjectAltNames"],
        serde_json::json!(["short.example.com"])
    );
    let days = tls["daysLeft"].as_i64().unwrap();
    assert!(days == 4 || days == 5, "{tls}");
    assert!(tls["notAfter"].as_str().unwrap().ends_with('Z'), "{tls}");
    assert_eq!(j["status"]["state"], "Warning");
}

/// `epoxy proxy url --port https` prints the running gateway's TLS URL (glooctl's `proxy url
/// --port https`), which curl reaches with the CA; `--port http` (the default) the plain
/// one; a gateway without TLS says so.
#[test]
fn proxy_url_prints_the_https_url() {
    let e = Epoxy::new();
    let ca = Ca::new("proxy CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    e.apply(&format!(
        "{}---\n{}",
        tls_secret("gloo-system", "local", &leaf, None),
        tls_vs("local", "['*']", &secret_ref("local", &[]), "over https"),
    ))
    .ok();
    let start = |tls: &str| {
        let mut gw = e
            .gateway(tls)
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
        assert!(line.contains(" on http://"), "{line}");
        KillOnDrop(gw)
    };
    let gw = start("127.0.0.1:0");
    let https = e.run(&["proxy", "url", "--port", "https"]).ok();
    let https = https.trim();
    assert!(https.starts_with("https://127.0.0.1:"), "{https}");
    let http = e.run(&["proxy", "url"]).ok();
    assert!(http.trim().starts_with("http://127.0.0.1:"), "{http}");
    assert_eq!(e.run(&["proxy", "url", "--port", "http"]).ok(), http);
    let ca_file = write_pem(e.store(), "ca.pem", &ca.pem());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert", &ca_file, https])
            .output()
            .unwrap();
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "over https");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(gw);
    let _gw = start("off");
    let err = e.run(&["proxy", "url", "--port", "https"]).refused();
    assert!(
        err.contains("serves no TLS") && err.contains("--listen-tls"),
        "{err}"
    );
}

/// Kills a process started by a test when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------- the console

/// The console on a store with a TLS virtual service in front of the petstore: the virtual
/// services view shows its listener and certificate, describe the subject, names and expiry;
/// the tester calls an https:// URL through the TLS listener (SNI from the URL), trusting the
/// CA given with `--ca`, shows the answer and the match trace; its curl export does the same
/// from outside (curl agrees); without the CA the handshake fails saying to give one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_tls_and_its_tester_calls_an_https_route() {
    use epoxy::tester::target::TesterCa;
    use epoxy::tui::app::{App, View};
    let dir = tempfile::tempdir().unwrap();
    let store = epoxy::store::dir::DirStore::open(dir.path()).unwrap();
    let pets = epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ca = Ca::new("console CA");
    let leaf = ca.leaf(&["pets.example.com", "www.pets.example.com"]);
    let yaml = format!(
        "{}---\n{}---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: secure, namespace: gloo-system}}\nspec:\n  sslConfig:\n{}  virtualHost:\n    domains: ['pets.example.com']\n    routes:\n    - matchers: [{{prefix: /api}}]\n      routeAction: {{single: {{upstream: {{name: pets}}}}}}\n",
        tls_secret("gloo-system", "pets-tls", &leaf, None),
        common::gw::static_upstream("pets", &[pets.addr.to_string()]),
        secret_ref("pets-tls", &["pets.example.com"]),
    );
    for r in epoxy::api::parse_resources(&yaml, "t").unwrap() {
        store.put_sync(r, epoxy::store::Precondition::Any).unwrap();
    }
    let cfg = epoxy::gateway::GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        listen_tls: Some("127.0.0.1:0".parse().unwrap()),
        admin: None,
        workers: 1,
        ..Default::default()
    };
    let root = store.root().to_path_buf();
    let host = epoxy::tui::host::Host::start(
        std::sync::Arc::new(store),
        root,
        &cfg,
        epoxy::discovery::fds::FdsConfig::default(),
    )
    .unwrap();
    let ca_file = write_pem(dir.path(), "ca.pem", &ca.pem());
    let session = |with_ca: bool| {
        let mut ctx = host.ctx("dir", "gloo-system", true);
        ctx.history_file = None;
        if with_ca {
            ctx.tester_ca = Some(std::sync::Arc::new(
                TesterCa::read(ca_file.clone().into()).unwrap(),
            ));
        }
        let (app, rx) = App::new(
            ctx,
            epoxy::tui::theme::Theme::default(),
            epoxy::tui::keymap::Keymap::default(),
        );
        epoxy::tui::harness::Harness::new(app, host.feeds(rx))
    };
    let wait = Duration::from_secs(10);
    let mut h = session(true);
    h.until("the TLS chain", wait, |a| {
        a.ctx
            .gateway
            .listeners
            .list()
            .iter()
            .any(|l| l.spec.ssl && !l.chains.load().list.is_empty())
    })
    .await
    .unwrap();

    // The virtual services view, and describe.
    h.command("vs");
    let screen = h.screen(160, 30);
    assert!(
        screen.contains("LISTENER") && screen.contains("https · CN=pets.example.com ("),
        "{screen}"
    );
    h.key("d");
    let screen = h.screen(160, 40);
    for want in [
        "listener     https",
        "certificate  secret gloo-system/pets-tls",
        "subject    CN=pets.example.com",
        "names      pets.example.com, www.pets.example.com",
        "days left)",
        "sni          pets.example.com",
    ] {
        assert!(screen.contains(want), "no `{want}` in\n{screen}");
    }

    // The tester: an https:// URL.
    let call = |h: &mut epoxy::tui::harness::Harness, url: &str| {
        h.command("test");
        assert_eq!(h.app.view(), &View::Tester);
        assert_eq!(h.app.tester.focus, 1, "the path field");
        h.key("ctrl-u");
        h.type_text(url);
    };
    call(&mut h, "https://pets.example.com/api/pets/1");
    let screen = h.screen(160, 40);
    assert!(screen.contains("→ route secure#0 answers"), "{screen}");
    h.key("enter");
    h.until("the response", wait, |a| a.tester.response.is_some())
        .await
        .unwrap();
    let screen = h.screen(160, 40);
    assert!(screen.contains("200 OK"), "{screen}");
    assert!(screen.contains("\"name\": \"Dog\""), "{screen}");
    assert!(screen.contains("✓ → pets"), "{screen}");
    // A name no virtual service has a certificate for: said before sending.
    h.key("ctrl-u");
    h.type_text("https://nobody.example.com/api/pets/1");
    let screen = h.screen(160, 40);
    assert!(
        screen.contains("no virtual service has a certificate for this name"),
        "{screen}"
    );
    h.key("ctrl-u");
    h.type_text("https://pets.example.com/api/pets/1");

    // Its curl export reaches the same through the TLS listener.
    h.key("ctrl-o");
    let curl = h.app.clipboard.clone().unwrap();
    assert!(
        curl.contains("--cacert") && curl.contains("--connect-to"),
        "{curl}"
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{curl} --max-time 5"))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && body.contains("\"Dog\""),
        "{curl}: {body} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the CA: the public roots do not know it, and the error says what to do.
    let mut h = session(false);
    call(&mut h, "https://pets.example.com/api/pets/1");
    h.key("enter");
    h.until("the response", wait, |a| a.tester.response.is_some())
        .await
        .unwrap();
    let err = match h.app.tester.response.clone().unwrap() {
        Err(e) => e,
        Ok(r) => panic!("served without trusting the CA: {}", r.status),
    };
    assert!(err.contains("--ca FILE"), "{err}");
    drop(h);
    host.handle.shutdown();
}

/// The running gateway reports a certificate expiring within 14 days as a Warning on the
/// virtual service (what the console's status column shows), and still serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_warns_of_a_certificate_about_to_expire() {
    let h = harness(true).await;
    let ca = Ca::new("expiry CA");
    let soon = ca.leaf_valid_for(&["soon.example.com"], 3);
    h.apply(&format!(
        "{}---\n{}",
        tls_secret("gloo-system", "soon", &soon, None),
        tls_vs("soon", "['*']", &secret_ref("soon", &[]), "still served"),
    ))
    .await;
    let key = ResourceKey::new(Kind::VirtualService, "gloo-system", "soon");
    let st = until_state(&h, &key, State::Warning).await;
    assert!(
        st.warnings.iter().any(|w| w
            == "sslConfig: the certificate (CN=soon.example.com) expires in 2 days"
            || w == "sslConfig: the certificate (CN=soon.example.com) expires in 3 days"),
        "{st:?}"
    );
    assert_eq!(
        Client::new(&ca.pem(), "soon.example.com")
            .get(tls_addr(&h), "/")
            .await
            .unwrap(),
        (200, "still served".into())
    );
}
