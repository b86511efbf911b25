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
