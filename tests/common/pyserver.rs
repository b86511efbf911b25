//! A test server in Python (the gRPC server of tests/grpc, the Lambda endpoint of
//! tests/lambda): started as a real process on an ephemeral port it prints as `PORT <n>`,
//! stopped when dropped (and by itself when its standard input closes).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PyServer {
    /// Runs `tests/<script>` with `args` and waits for its port.
    pub fn start(script: &str, args: &[&str], env: &[(&str, &str)]) -> PyServer {
        let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {path}: {e} (.ci/run installs what it needs)"));
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("{script} did not start (printed {line:?}; .ci/run installs its packages)")
            });
        PyServer { child, port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
