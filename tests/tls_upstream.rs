//! TLS and HTTP/2 to upstreams (origination): an upstream's `sslConfig` (its root, the name
//! checked, a client certificate), `useHttp2` by ALPN over TLS and with prior knowledge in
//! clear; against real upstream servers with certificates made here (rcgen), on both
//! transports.

mod common;
use common::certs::{Ca, b64, tls_secret};
use common::gw::Harness;
use common::upstream;

/// An upstream `name` on `addr` (`host:port`) with `extra` under `spec:` (indented by 2).
fn upstream_yaml(name: &str, addr: &str, extra: &str) -> String {
    let (a, p) = addr.rsplit_once(':').unwrap();
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: '{a}', port: {p}}}]\n{extra}"
    )
}

/// A virtual service sending everything to upstream `name`.
fn route_to(name: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{{prefix: /}}]\n      routeAction: {{single: {{upstream: {{name: {name}}}}}}}\n"
    )
}

/// An `Opaque` secret holding only a root CA.
fn ca_secret(name: &str, ca: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system}}\ndata:\n  ca.crt: {}\n",
        b64(ca)
    )
}

/// GET `path` through the gateway: (status, body).
async fn get(h: &Harness, path: &str) -> (u16, String) {
    let r = Harness::client()
        .get(format!("{}{path}", h.url))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The upstream is verified against the root it names (a secret's `ca.crt` or `rootCa`), under
/// the name `sni` gives; a wrong root or a wrong name fails with a 503 and the upstream sees
/// nothing; `verifySubjectAltName` checks the SANs instead of the name; `useHttp2` speaks
/// HTTP/2 when the upstream agrees by ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_is_verified_against_its_root_and_name() {
    for fast in [true, false] {
        let ca = Ca::new("upstream CA");
        let leaf = ca.leaf(&["pets.internal"]);
        let up = upstream::start_tls("pets", common::tls::server_config(&leaf, None));
        let h = Harness::with(|c| c.fast_path = fast).await;
        let ca_file = h.dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let ca_path = ca_file.display().to_string();
        let with = |ssl: &str| {
            format!(
                "{}---\n{}---\n{}",
                ca_secret("pets-ca", &ca.pem()),
                upstream_yaml("pets", &up.host_port(), ssl),
                route_to("pets")
            )
        };

        // The root from a secret, the name from `sni`.
        h.apply(&with(
            "  sslConfig:\n    secretRef: {name: pets-ca, namespace: gloo-system}\n    sni: pets.internal\n",
        ))
        .await;
        let (status, body) = get(&h, "/one").await;
        assert_eq!(status, 200, "fast={fast}: {body}");
        let v = json(&body);
        assert_eq!(v["server"], "pets");
        assert_eq!(v["path"], "/one");
        assert_eq!(v["version"], "HTTP/1.1", "no useHttp2: HTTP/1.1 by ALPN");

        // The root from a file; HTTP/2 by ALPN.
        h.apply(&with(&format!(
            "  useHttp2: true\n  sslConfig:\n    sslFiles: {{rootCa: '{ca_path}'}}\n    sni: pets.internal\n"
        )))
        .await;
        for i in 0..3 {
            let (status, body) = get(&h, &format!("/h2/{i}")).await;
            assert_eq!(status, 200, "fast={fast}: {body}");
            let v = json(&body);
            assert_eq!(v["version"], "HTTP/2.0", "fast={fast}");
            assert_eq!(v["path"], format!("/h2/{i}"));
        }

        // A certificate for another name: refused before any request is sent...
        let seen = up.hits();
        h.apply(&with(
            "  sslConfig:\n    secretRef: {name: pets-ca, namespace: gloo-system}\n    sni: cats.internal\n",
        ))
        .await;
        let (status, body) = get(&h, "/wrong-name").await;
        assert_eq!(status, 503, "fast={fast}: {body}");
        assert!(body.contains("certificate"), "{body}");
        // ...unless its SANs are what `verifySubjectAltName` asks for.
        h.apply(&with(
            "  sslConfig:\n    secretRef: {name: pets-ca, namespace: gloo-system}\n    sni: cats.internal\n    verifySubjectAltName: [pets.internal]\n",
        ))
        .await;
        assert_eq!(get(&h, "/by-san").await.0, 200);
        h.apply(&with(
            "  sslConfig:\n    secretRef: {name: pets-ca, namespace: gloo-system}\n    sni: pets.internal\n    verifySubjectAltName: [dogs.internal]\n",
        ))
        .await;
        assert_eq!(get(&h, "/wrong-san").await.0, 503);

        // Another root: refused.
        let other = Ca::new("someone else");
        h.apply(&format!(
            "{}---\n{}",
            ca_secret("pets-ca", &other.pem()),
            upstream_yaml(
                "pets",
                &up.host_port(),
                "  sslConfig:\n    secretRef: {name: pets-ca, namespace: gloo-system}\n    sni: pets.internal\n"
            )
        ))
        .await;
        let (status, body) = get(&h, "/wrong-root").await;
        assert_eq!(status, 503, "fast={fast}: {body}");
        assert!(body.contains("certificate"), "{body}");
        // Plain `useTls` trusts only the public roots: a private CA is refused too.
        h.apply(
            &upstream_yaml("pets", &up.host_port(), "")
                .replace("  static:\n", "  static:\n    useTls: true\n"),
        )
        .await;
        let (status, _) = get(&h, "/public-roots").await;
        assert_eq!(status, 503, "fast={fast}");
        assert_eq!(up.hits(), seen + 1, "only /by-san reached the upstream");
    }
}

/// An upstream that asks for a client certificate gets the one in the secret (`tls.crt`,
/// `tls.key`); without it the handshake fails and the request is answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_mtls_presents_the_client_certificate() {
    for fast in [true, false] {
        let ca = Ca::new("mesh CA");
        let server = ca.leaf(&["billing.internal"]);
        let client = ca.leaf(&["gateway.internal"]);
        let up = upstream::start_tls(
            "billing",
            common::tls::server_config(&server, Some(&ca.pem())),
        );
        let h = Harness::with(|c| c.fast_path = fast).await;
        let ssl = "  sslConfig:\n    secretRef: {name: mesh, namespace: gloo-system}\n    sni: billing.internal\n";
        h.apply(&format!(
            "{}---\n{}---\n{}",
            tls_secret("gloo-system", "mesh", &client, Some(&ca.pem())),
            upstream_yaml("billing", &up.host_port(), ssl),
            route_to("billing")
        ))
        .await;
        let (status, body) = get(&h, "/invoices").await;
        assert_eq!(status, 200, "fast={fast}: {body}");
        assert_eq!(json(&body)["server"], "billing");

        // The root alone: no client certificate to present.
        h.apply(&ca_secret("mesh", &ca.pem())).await;
        let (status, body) = get(&h, "/invoices").await;
        assert_eq!(status, 503, "fast={fast}: {body}");
        assert_eq!(up.hits(), 1);
    }
}

/// `useHttp2` on a cleartext upstream: HTTP/2 with prior knowledge (h2c), several requests on
/// one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_http2_in_clear_is_h2c() {
    for fast in [true, false] {
        let up = upstream::start("grpcish");
        let h = Harness::with(|c| c.fast_path = fast).await;
        h.apply(&format!(
            "{}---\n{}",
            upstream_yaml("grpcish", &up.host_port(), "  useHttp2: true\n"),
            route_to("grpcish")
        ))
        .await;
        for i in 0..4 {
            let (status, body) = get(&h, &format!("/h2c/{i}?q={i}")).await;
            assert_eq!(status, 200, "fast={fast}: {body}");
            let v = json(&body);
            assert_eq!(v["version"], "HTTP/2.0");
            assert_eq!(v["path"], format!("/h2c/{i}?q={i}"));
        }
        let m = h.metrics().await;
        let opened: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("epoxy_upstream_connections_opened_total "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{m}"));
        assert!(
            (1..=2).contains(&opened),
            "one HTTP/2 connection per worker at most, not {opened}"
        );
    }
}

/// A root CA file (`sslFiles.rootCa`) is watched: rewritten, it is used for new connections
/// within a second, without a restart or a store change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_root_file_is_picked_up() {
    let old = Ca::new("old CA");
    let new = Ca::new("new CA");
    let up = upstream::start_tls(
        "pets",
        common::tls::server_config(&new.leaf(&["pets.internal"]), None),
    );
    let h = Harness::start().await;
    let root = h.dir.path().join("root.pem");
    std::fs::write(&root, old.pem()).unwrap();
    h.apply(&format!(
        "{}---\n{}",
        upstream_yaml(
            "pets",
            &up.host_port(),
            &format!(
                "  sslConfig:\n    sslFiles: {{rootCa: '{}'}}\n    sni: pets.internal\n",
                root.display()
            )
        ),
        route_to("pets")
    ))
    .await;
    assert_eq!(
        get(&h, "/before").await.0,
        503,
        "the old root does not verify"
    );
    std::fs::write(&root, new.pem()).unwrap();
    let started = std::time::Instant::now();
    loop {
        if get(&h, "/after").await.0 == 200 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "the new root was not used within 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    eprintln!("new root used after {:?}", started.elapsed());
    assert_eq!(up.hits(), 1);
}
