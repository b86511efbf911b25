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
        s.contains("Access log (1)") && s.contains("/petstore/findPet") && s.contains("200")
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

/// Runs `epoxy demo` in tmux on `dir` with `env` before it; the exit code goes to `dir/exit`.
fn demo_in(dir: &std::path::Path, tag: &str, env: &str, w: u16, h: u16) -> Tmux {
    let bin = env!("CARGO_BIN_EXE_epoxy");
    let script = format!(
        "{env} EPOXY_DIR='{d}' XDG_CONFIG_HOME='{d}' '{bin}' demo --listen 127.0.0.1:0 --admin 127.0.0.1:0; echo $? > '{d}/exit'; sleep 30",
        d = dir.display(),
    );
    Tmux::start(tag, w, h, &script)
}

fn wait_exit(dir: &std::path::Path, t: &Tmux) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !dir.join("exit").exists() {
        assert!(Instant::now() < deadline, "no exit:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(dir.join("exit"))
        .unwrap()
        .trim()
        .to_string()
}

/// A burst of keys (typed as keys, not a bracketed paste) is handled in a few frames, not one
/// frame per key: the console traces each frame with how many inputs it covered.
#[test]
fn a_burst_of_keys_is_drained_in_one_frame() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = demo_in(dir.path(), "burst", "EPOXY_LOG=epoxy::tui=trace", 100, 30);
    t.wait_for("the upstreams view", |s| s.contains("Upstreams (1)"));
    t.literal(":test");
    t.keys(&["Enter"]);
    t.wait_for("the tester", |s| s.contains("Request"));
    t.keys(&["C-u"]);
    let burst: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let tail = &burst[burst.len() - 30..];
    t.literal(&format!("/{burst}"));
    t.wait_for("the whole burst in the path field", |s| s.contains(tail));
    t.keys(&["C-c"]);
    assert_eq!(wait_exit(dir.path(), &t), "0");
    let log = std::fs::read_to_string(dir.path().join(".epoxy-console.log")).unwrap();
    // The log's fields may be coloured: drop the escape sequences.
    let log = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&log, "");
    let frames: Vec<usize> = log
        .lines()
        .filter(|l| l.contains("frame"))
        .filter_map(|l| {
            l.split("inputs=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let max = frames.iter().copied().max().unwrap_or(0);
    // 401 keys: with one frame per key there would be over 400 frames, each of one input.
    assert!(max >= 50, "largest frame covered {max} inputs: {frames:?}");
    assert!(
        frames.len() < 200,
        "{} frames for a 401-key burst",
        frames.len()
    );
}

/// TERM=dumb: a clear message and exit code 1, the terminal untouched.
#[test]
fn term_dumb_gets_a_clear_message() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = demo_in(dir.path(), "dumb", "TERM=dumb", 100, 30);
    assert_eq!(wait_exit(dir.path(), &t), "1");
    let s = t.screen();
    assert!(s.contains("TERM=dumb"), "{s}");
    assert!(s.contains("--headless"), "{s}");
    assert_eq!(t.flag("alternate_on"), "0");
}

/// The access log end to end: a request through the gateway, enter shows it whole (its
/// headers), `t` replays it in the tester, `g` goes to its route; `s` saves the log.
#[test]
fn the_access_log_drills_into_a_request_in_tmux() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = demo_in(dir.path(), "drill", "", 120, 40);
    t.wait_for("the upstreams view", |s| s.contains("Upstreams (1)"));
    // A route to findPets, then a request with a header of our own, by curl.
    t.literal(":fn");
    t.keys(&["Enter"]);
    t.literal("/findPets");
    t.keys(&["Enter"]);
    t.keys(&["r"]);
    t.wait_for("the editor", |s| s.contains("New route #0"));
    t.keys(&["C-s"]);
    t.wait_for("the diff", |s| s.contains("Apply route #0"));
    t.keys(&["y"]);
    t.wait_for("the route live", |s| s.contains("live now"));
    let url = Command::new(env!("CARGO_BIN_EXE_epoxy"))
        .args(["proxy", "url"])
        .env("EPOXY_DIR", dir.path())
        .output()
        .unwrap();
    let url = String::from_utf8_lossy(&url.stdout).trim().to_string();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-H",
            "x-trace: e2e-42",
            "-H",
            "authorization: Bearer hush",
        ])
        .arg(format!("{url}/petstore/findPets"))
        .output();
    let Ok(out) = out else {
        eprintln!("curl is not installed: skipping");
        return;
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains("Dog"));
    t.keys(&["Escape"]);
    t.literal(":log");
    t.keys(&["Enter"]);
    t.wait_for("the log", |s| s.contains("Access log (1)"));
    t.keys(&["Enter"]);
    let s = t.wait_for("the request", |s| s.contains("x-trace: e2e-42"));
    assert!(s.contains("findPets") && !s.contains("hush"), "{s}");
    assert!(s.contains("✓"), "the match trace: {s}");
    t.keys(&["g"]);
    t.wait_for("its route", |s| {
        s.contains("Routes · default") && s.contains("▶0")
    });
    t.keys(&["Escape"]);
    t.keys(&["t"]);
    t.wait_for("the replay", |s| {
        s.contains("headers User-Agent: curl") && s.contains("Request")
    });
    t.keys(&["Enter"]);
    t.wait_for("the replayed response", |s| {
        s.contains("200 OK") && s.contains("Dog")
    });
    // Saved: two requests now (the original and the replay).
    let file = dir.path().join("saved.jsonl");
    t.keys(&["Escape"]);
    t.literal(&format!(":save {}", file.display()));
    t.keys(&["Enter"]);
    t.wait_for("saved", |s| s.contains("saved 2 requests"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    // The replay carried the request's headers (credentials included: it is this console's
    // own), the file shows neither credential.
    assert_eq!(text.matches("e2e-42").count(), 2, "{text}");
    assert!(!text.contains("hush"), "{text}");
    t.keys(&["C-c"]);
    assert_eq!(wait_exit(dir.path(), &t), "0");
}
