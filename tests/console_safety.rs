//! Nothing is ever lost, in a real terminal (tmux): two writers on one store edit the right
//! route or see a conflict.

mod common;

use common::Epoxy;
use common::tmux::{self, Tmux};
use std::time::Duration;

const VS: &str = "virtualservices/gloo-system/default.yaml";

/// `epoxy demo` on the store of `e`, in a tmux session.
fn demo(e: &Epoxy, tag: &str, extra: &str) -> Tmux {
    let dir = e.store().display().to_string();
    let bin = common::bin().display().to_string();
    let script = format!(
        "EPOXY_DIR='{dir}' XDG_CONFIG_HOME='{dir}' '{bin}' demo --listen 127.0.0.1:0 --admin 127.0.0.1:0 {extra}; echo $? > '{dir}/exit'; sleep 30"
    );
    let t = Tmux::start(tag, 110, 32, &script);
    t.wait_for("the upstreams view", |s| {
        s.contains("Upstreams (1)") && s.contains("/swagger.json")
    });
    t
}

fn add(e: &Epoxy, prefix: &str, index: &str) {
    e.run(&[
        "add",
        "route",
        "--path-prefix",
        prefix,
        "--dest-name",
        "default-petstore-8080",
        "--index",
        index,
    ])
    .ok();
}

/// The prefixes of the default virtual service's routes, with their names.
fn routes(e: &Epoxy) -> Vec<(String, String)> {
    let out = e.run(&["get", "vs", "default", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["spec"]["virtualHost"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["matchers"][0]["prefix"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_stale_edit_changes_the_right_route_or_shows_the_conflict() {
    if !tmux::available() {
        return;
    }
    let e = Epoxy::new();
    add(&e, "/one", "0");
    add(&e, "/two", "1");
    let t = demo(&e, "writers", "");
    t.literal(":routes");
    t.keys(&["Enter"]);
    t.wait_for("the routes", |s| s.contains("/two"));
    // B opens route #1 (/two) and changes its path.
    t.keys(&["j", "e"]);
    t.wait_for("the editor", |s| s.contains("Edit route #1"));
    t.keys(&["C-u"]);
    t.literal("/three");
    // Meanwhile A puts a route first: /two is now #2.
    add(&e, "/zero", "0");
    t.wait_for("the console sees 3 routes", |s| s.contains("3 routes"));
    t.keys(&["C-s"]);
    let s = t.wait_for("the diff", |s| s.contains("Apply route #1"));
    assert!(s.contains("/two") && s.contains("/three"), "{s}");
    t.keys(&["y"]);
    t.wait_for("the write", |s| s.contains("live now"));
    assert_eq!(
        routes(&e),
        pairs(&[("zero", "/zero"), ("one", "/one"), ("two", "/three")])
    );

    // B edits /one; someone changes that same route by hand before B applies.
    t.keys(&["g", "j", "e"]);
    t.wait_for("the editor on /one", |s| {
        s.contains("Edit route #1") && s.contains("/one")
    });
    t.keys(&["C-u"]);
    t.literal("/uno");
    let path = e.file(VS);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("prefix: /one\n"), "{text}");
    std::fs::write(&path, text.replace("prefix: /one\n", "prefix: /eins\n")).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    t.keys(&["C-s"]);
    t.wait_for("the diff", |s| s.contains("Apply route #1"));
    t.keys(&["y"]);
    // Refused: the conflict shows what the other writer did, and the edit is kept.
    let s = t.wait_for("the conflict", |s| s.contains("Changed by another writer"));
    assert!(s.contains("/eins") && s.contains("nothing written"), "{s}");
    assert_eq!(
        routes(&e),
        pairs(&[("zero", "/zero"), ("one", "/eins"), ("two", "/three")])
    );
    // Re-apply: the diff is now from what is there to the edit.
    t.keys(&["y"]);
    let s = t.wait_for("the new diff", |s| s.contains("Apply route #1"));
    assert!(s.contains("/eins") && s.contains("/uno"), "{s}");
    t.keys(&["y"]);
    t.wait_for("the write", |s| s.contains("live now"));
    assert_eq!(
        routes(&e),
        pairs(&[("zero", "/zero"), ("one", "/uno"), ("two", "/three")])
    );
    t.literal(":q");
    t.keys(&["Enter"]);
}

/// The console's pid, from the address record it writes next to the store.
fn console_pid(e: &Epoxy) -> u32 {
    let text = std::fs::read_to_string(e.file(".epoxy-gateway.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pid"].as_u64().unwrap() as u32
}

#[test]
fn the_terminal_is_given_back_on_sigterm_sighup_and_sigint() {
    if !tmux::available() {
        return;
    }
    for sig in ["TERM", "HUP", "INT"] {
        let e = Epoxy::new();
        let t = demo(&e, &format!("sig{sig}"), "");
        // The console owns the terminal: alternate screen, mouse reporting, no cursor.
        assert_eq!(t.flag("alternate_on"), "1");
        assert_eq!(t.flag("mouse_any_flag"), "1");
        let pid = console_pid(&e);
        let st = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let exit = e.file("exit");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !exit.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "SIG{sig}: the console did not exit:\n{}",
                t.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(t.flag("alternate_on"), "0", "SIG{sig}");
        assert_eq!(t.flag("mouse_any_flag"), "0", "SIG{sig}");
        assert_eq!(t.flag("mouse_button_flag"), "0", "SIG{sig}");
        assert_eq!(t.flag("cursor_flag"), "1", "SIG{sig}");
        let s = t.screen();
        assert!(!s.contains("Upstreams (1)"), "SIG{sig}:\n{s}");
    }
}

/// Waits (up to `secs`) for process `pid` to end; false if it is still running.
fn ends_within(pid: u32, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while tmux::running(pid) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The console ends when its terminal goes away: the tmux session killed (the pty closed and
/// SIGHUP sent), while keys are flowing (crossterm's reader then loops forever on the dead tty
/// on the console's own thread: this console once stayed at 70% CPU, deaf to SIGTERM, until
/// SIGKILL), and with no SIGHUP at all (a console in a session of its own, `setsid`). Each time
/// it ends within a few seconds and removes its address record.
#[test]
fn the_console_exits_when_its_terminal_goes_away() {
    if !tmux::available() {
        return;
    }
    let cases = [
        ("gone", "", false),
        ("gonesetsid", "setsid ", false),
        ("goneflood1", "", true),
        ("goneflood2", "", true),
        ("goneflood3", "", true),
    ];
    for (tag, prefix, flood) in cases {
        let e = Epoxy::new();
        let dir = e.store().display().to_string();
        let bin = common::bin().display().to_string();
        let script = format!(
            "EPOXY_DIR='{dir}' XDG_CONFIG_HOME='{dir}' {prefix}'{bin}' demo --listen 127.0.0.1:0 --admin 127.0.0.1:0; sleep 30"
        );
        let t = Tmux::start(tag, 110, 32, &script);
        t.wait_for("the upstreams view", |s| {
            s.contains("Upstreams (1)") && s.contains("/swagger.json")
        });
        let pid = console_pid(&e);
        assert!(tmux::running(pid));
        let keys = flood.then(|| {
            let target = format!("={}", t.name);
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let sent = std::process::Command::new("tmux")
                        .args(["send-keys", "-t", &target, "j", "k", "j", "k", "j", "k"])
                        .output()
                        .is_ok_and(|o| o.status.success());
                    if !sent {
                        break;
                    }
                }
            })
        });
        if flood {
            std::thread::sleep(Duration::from_millis(400));
        }
        t.run(&["kill-session", "-t", &t.name]);
        if let Some(k) = keys {
            let _ = k.join();
        }
        assert!(
            ends_within(pid, 8),
            "{tag}: epoxy demo (pid {pid}) still runs 8 s after its terminal went away"
        );
        assert!(
            !e.file(&format!(".epoxy-gateways/{pid}.json")).exists(),
            "{tag}: the address record outlived the console; its log:\n{}",
            std::fs::read_to_string(e.file(".epoxy-console.log")).unwrap_or_default()
        );
    }
}

/// Every file under `dir` (but the test's own `exit`), with its bytes and modification time.
fn files(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n != "exit") {
                let meta = std::fs::metadata(&p).unwrap();
                out.insert(
                    p.display().to_string(),
                    (std::fs::read(&p).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    out
}

fn wait_exit(e: &Epoxy, t: &Tmux) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !e.file("exit").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the console did not quit:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readonly_changes_no_file() {
    if !tmux::available() {
        return;
    }
    let e = Epoxy::new();
    // A first, normal run: the demo's upstream, its functions, the discovery state.
    let t = demo(&e, "ro-first", "");
    t.wait_for("functions", |s| {
        s.contains("default-petstore-8080") && s.contains(" 4 ")
    });
    t.literal(":q");
    t.keys(&["Enter"]);
    wait_exit(&e, &t);
    drop(t);
    std::fs::remove_file(e.file("exit")).unwrap();
    add(&e, "/one", "0");
    let before = files(e.store());
    assert!(
        before
            .keys()
            .any(|k| k.ends_with("default-petstore-8080.yaml"))
    );
    std::thread::sleep(Duration::from_millis(50));
    // Read-only: the petstore has a new port; the console still works (in memory).
    let t = demo(&e, "ro", "--readonly");
    t.wait_for("read-only", |s| s.contains("read-only"));
    t.literal(":routes");
    t.keys(&["Enter"]);
    t.wait_for("the routes", |s| s.contains("/one"));
    // `d` describes, read-only too; ctrl-d (delete) is refused.
    t.keys(&["d"]);
    t.wait_for("the description", |s| {
        s.contains("Describe ·") && s.contains("/one")
    });
    t.keys(&["y"]);
    t.wait_for("the YAML", |s| {
        s.contains("YAML ·") && s.contains("prefix: /one")
    });
    t.keys(&["Escape"]);
    t.keys(&["C-d"]);
    t.wait_for("the refusal", |s| s.contains("writes are disabled"));
    // Discovery polls meanwhile; then quit.
    std::thread::sleep(Duration::from_millis(2500));
    t.literal(":q");
    t.keys(&["Enter"]);
    wait_exit(&e, &t);
    let after = files(e.store());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (k, (bytes, mtime)) in &before {
        let (b2, m2) = &after[k];
        assert!(bytes == b2, "{k} changed");
        assert_eq!(mtime, m2, "{k} touched");
    }
}

/// Pastes `text` as the terminal would (bracketed, since the console asks for it).
fn paste(t: &Tmux, text: &str) {
    t.run(&["set-buffer", "-b", "epoxy-test", text]);
    t.run(&[
        "paste-buffer",
        "-p",
        "-d",
        "-b",
        "epoxy-test",
        "-t",
        &t.name,
    ]);
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn a_thousand_line_paste_lands_whole_and_a_paste_never_sends() {
    if !tmux::available() {
        return;
    }
    let e = Epoxy::new();
    let t = demo(&e, "paste", "");
    t.literal(":routes");
    t.keys(&["Enter"]);
    t.keys(&["n"]);
    t.wait_for("the editor", |s| s.contains("New route #0"));
    t.keys(&["F2"]);
    t.wait_for("yaml", |s| s.contains("[yaml]"));
    let text: String = (1..=1000).map(|i| format!("# line {i}\n")).collect();
    paste(&t, &text);
    // Whole, at once: the last line is on screen, with no key pressed since.
    let s = t.wait_for("the last pasted line", |s| s.contains("# line 1000"));
    assert!(s.contains("1001 matchers:"), "{s}");
    // Leave it (asked first), then a multi-line paste into the tester's path field.
    t.keys(&["Escape"]);
    t.wait_for("the question", |s| s.contains("Discard your edit?"));
    t.keys(&["y"]);
    t.literal(":test");
    t.keys(&["Enter"]);
    t.wait_for("the tester", |s| s.contains("Request"));
    t.keys(&["Down"]);
    paste(&t, "/pasted\n/second\n");
    std::thread::sleep(Duration::from_millis(500));
    let s = t.screen();
    assert!(s.contains("/pasted /second"), "{s}");
    assert!(
        s.contains("enter sends the request")
            && !s.contains("404 Not Found")
            && !s.contains("200 OK"),
        "a paste sent a request:\n{s}"
    );
    t.literal(":q");
    t.keys(&["Enter"]);
}
