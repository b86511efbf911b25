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
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kube/emulator.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
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
        let url = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: emu\n  cluster: {{server: '{url}'}}\ncontexts:\n- name: emu\n  context: {{cluster: emu, user: emu, namespace: default}}\ncurrent-context: emu\nusers:\n- name: emu\n  user: {{}}\n"
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

    /// A raw JSON request to the emulator (for seeding objects as another client would).
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
            let c = reqwest::Client::new();
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
