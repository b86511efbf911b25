//! Shared helpers for tests that drive the real `epoxy` binary against a temporary store.
#![allow(dead_code)]

pub mod certs;
pub mod grpc;
pub mod gw;
pub mod keys;
pub mod kube;
pub mod pyserver;
pub mod raw;
pub mod tls;
pub mod tmux;
pub mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Epoxy {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts a refusal (exit 1) and returns stderr.
    #[track_caller]
    pub fn refused(self) -> String {
        assert_eq!(
            self.code, 1,
            "expected exit 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stderr
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The epoxy binary: `$EPOXY_BIN` when set (a copy of this build, when the target directory
/// is shared with other checkouts that may rebuild it meanwhile), else Cargo's.
pub fn bin() -> PathBuf {
    std::env::var_os("EPOXY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_epoxy")))
}

impl Epoxy {
    pub fn new() -> Epoxy {
        Epoxy {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn store(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("EPOXY_DIR", self.dir.path())
            .env_remove("XDG_DATA_HOME");
        c
    }

    /// `epoxy gateway` on a free loopback port, its TLS listener at `tls` (an address, or
    /// `off`), no admin listener; to be spawned.
    pub fn gateway(&self, tls: &str) -> Command {
        let mut c = self.command();
        c.args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--listen-tls",
            tls,
            "--admin",
            "off",
        ]);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run epoxy"))
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn epoxy");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait epoxy"))
    }

    /// `apply -f -` with the given YAML.
    pub fn apply(&self, yaml: &str) -> Run {
        self.run_stdin(&["apply", "-f", "-"], yaml)
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

/// A reqwest client builder for the tests. epoxy builds reqwest's rustls without a crypto
/// provider of its own (ring only, never aws-lc-rs, which panics when mixed), so a client
/// built here needs ring installed as the process's default provider first.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
