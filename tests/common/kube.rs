//! A Kubernetes API emulator for tests: kmock (PyPI), extended in tests/kube/emulator.py,
//! started as a real process on a free port, with a kubeconfig that points at it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Emulator {
    child: Child,
    pub port: u16,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    /// Starts the emulator; panics with a clear message when Python or kmock is missing.
    pub fn start() -> Emulator {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Emulator {
        Self::launch(port, None, &[])
    }

    /// An emulator of a cluster that lacks some CRDs (`PLURAL.GROUP`, like
    /// `gateways.gateway.solo.io`): their lists answer 404 until the CRD is created.
    pub fn start_without(crds: &[&str]) -> Emulator {
        Self::launch(0, None, crds)
    }

    /// An emulator that speaks HTTPS with a certificate of its own private CA and wants a
    /// bearer token, as most real clusters do; the kubeconfig carries the CA and the token.
    pub fn start_tls(token: &str) -> Emulator {
        Self::launch(0, Some(token), &[])
    }

    fn launch(port: u16, tls_token: Option<&str>, without: &[&str]) -> Emulator {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kube/emulator.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(port.to_string())
            .env("EPOXY_EMULATOR_WITHOUT", without.join(","));
        let ca_path = dir.path().join("ca.pem");
        if let Some(token) = tls_token {
            let (ca, cert, key) = private_ca_and_server_cert();
            std::fs::write(&ca_path, ca).unwrap();
            let cert_path = dir.path().join("server.pem");
            let key_path = dir.path().join("server-key.pem");
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            command
                .env(
                    "EPOXY_EMULATOR_TLS",
                    format!("{}:{}", cert_path.display(), key_path.display()),
                )
                .env("EPOXY_EMULATOR_TOKEN", token);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the Kubernetes emulator (.ci/run installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!("the emulator did not start (is kmock installed? `pip install kmock`): {line:?}")
        });
        let (url, cluster, user) = match tls_token {
            Some(token) => {
                let url = format!("https://127.0.0.1:{port}");
                let cluster = format!(
                    "{{server: '{url}', certificate-authority: '{}'}}",
                    ca_path.display()
                );
                (url, cluster, format!("{{token: '{token}'}}"))
            }
            None => {
                let url = format!("http://127.0.0.1:{port}");
                (
                    url.clone(),
                    format!("{{server: '{url}'}}"),
                    "{}".to_string(),
                )
            }
        };
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: emu\n  cluster: {cluster}\ncontexts:\n- name: emu\n  context: {{cluster: emu, user: emu, namespace: default}}\ncurrent-context: emu\nusers:\n- name: emu\n  user: {user}\n"
            ),
        )
        .unwrap();
        Emulator {
            child,
            port,
            url,
            dir,
            kubeconfig,
        }
    }

    /// Stops the emulator process (its objects are lost, as when an API server restarts empty).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A raw JSON request to the emulator (for seeding objects as another client would); not
    /// for an emulator started with `start_tls`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = super::http().build().unwrap();
            let mut r = c.request(method.parse().unwrap(), format!("{}{path}", self.url));
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            )
        })
    }
}

/// A private CA, and a certificate it signed for 127.0.0.1 and its key (PEM each).
fn private_ca_and_server_cert() -> (String, String, String) {
    let ca = super::certs::Ca::new("epoxy test cluster CA");
    let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
    (ca.pem(), leaf.cert, leaf.key)
}
