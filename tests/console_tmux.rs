//! The real `epoxy demo` console in a real terminal (tmux): real key presses, the screen read
//! back with `capture-pane`. Skipped (with a note) when tmux is not installed.

mod common;
use common::tmux::{self, Tmux};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn epoxy_demo_console_in_tmux() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_epoxy");
    // The session ends when the console exits (remain-on-exit off); the exit code is recorded.
    let script = format!(
        "EPOXY_DIR='{}' XDG_CONFIG_HOME='{}' '{bin}' demo --listen 127.0.0.1:0 --admin 127.0.0.1:0; echo $? > '{}/exit'; sleep 30",
        dir.path().display(),
        dir.path().display(),
        dir.path().display()
    );
    let t = Tmux::start("e2e", 100, 30, &script);
    // The demo opens on the upstreams, with the petstore's functions discovered.
    t.wait_for("the upstreams view", |s| {
        s.contains("Upstreams (1)")
            && s.contains("default-petstore-8080")
            && s.contains("/swagger.json")
    });
    // :fn lists the functions.
    t.literal(":fn");
    t.keys(&["Enter"]);
    let s = t.wait_for("the functions", |s| s.contains("Functions (4)"));
    assert!(s.contains("findPetById") && s.contains("deletePet"), "{s}");
    // Route to findPetById: filter, r, ctrl-s, y.
    t.literal("/findPetById");
    t.keys(&["Enter"]);
    t.keys(&["r"]);
    t.wait_for("the editor", |s| s.contains("New route #0 · default"));
    t.keys(&["C-s"]);
    t.wait_for("the diff", |s| s.contains("Apply route #0 to default?"));
    t.keys(&["y"]);
    t.wait_for("the route live", |s| {
        s.contains("live now") && s.contains("1 routes")
    });
    // t on the function, id 1, enter: the Dog.
    t.keys(&["t"]);
    t.wait_for("the tester", |s| {
        s.contains("Request") && s.contains("variables")
    });
    t.literal("1");
    t.keys(&["Enter"]);
    let s = t.wait_for("the response", |s| s.contains("200 OK"));
    assert!(s.contains("Dog"), "{s}");
    // The access log shows it.
    t.keys(&["Escape"]);
    t.literal(":log");
    t.keys(&["Enter"]);
    t.wait_for("the access log", |s| {
        s.contains("Access log (1)") && s.contains("/petstore/findPetBy") && s.contains("200")
    });
    // `epoxy proxy url` works while the console runs.
    let out = Command::new(bin)
        .args(["proxy", "url"])
        .env("EPOXY_DIR", dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("http://127.0.0.1:"));
    // Help, then quit with :q; the terminal is given back and the exit code is 0.
    t.keys(&["?"]);
    t.wait_for("help", |s| s.contains("keys of log"));
    t.keys(&["Escape"]);
    t.literal(":q");
    t.keys(&["Enter"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !dir.path().join("exit").exists() {
        assert!(
            Instant::now() < deadline,
            "the console did not quit:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    assert_eq!(code.trim(), "0");
    // Back on the main screen: no console frame left.
    let s = t.screen();
    assert!(!s.contains("Access log"), "{s}");
    assert!(t.alive());
    // Logs went to the file next to the store, not over the screen.
    assert!(dir.path().join(".epoxy-console.log").exists());
}
