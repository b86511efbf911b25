//! A real terminal for the console: a tmux session running a shell command, keys sent with
//! `send-keys`, the screen read back with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub name: String,
}

/// Whether tmux is installed (the terminal tests skip, with a note, when it is not).
pub fn available() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok();
    if !ok {
        eprintln!("tmux is not installed: skipping the terminal end-to-end test");
    }
    ok
}

impl Tmux {
    /// A detached session of `width`x`height` running `script` with `sh -c`.
    pub fn start(tag: &str, width: u16, height: u16, script: &str) -> Tmux {
        let name = format!("epoxy-{tag}-{}", std::process::id());
        let t = Tmux { name };
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", &t.name, "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .args(["sh", "-c", script])
            .status()
            .expect("tmux runs");
        assert!(st.success());
        t
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.name])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        self.run(&args);
        std::thread::sleep(Duration::from_millis(150));
    }

    pub fn literal(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.name, "-l", text]);
        std::thread::sleep(Duration::from_millis(150));
    }

    #[track_caller]
    pub fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The pane's terminal modes (`alternate_on`, `mouse_any_flag`, `cursor_flag`, ...), as
    /// tmux tracks them from what the program wrote.
    pub fn flag(&self, name: &str) -> String {
        self.run(&[
            "display-message",
            "-p",
            "-t",
            &self.name,
            &format!("#{{{name}}}"),
        ])
        .trim()
        .to_string()
    }

    /// The pid of the process running in the pane.
    pub fn pane_pid(&self) -> u32 {
        self.run(&["display-message", "-p", "-t", &self.name, "#{pane_pid}"])
            .trim()
            .parse()
            .expect("a pane pid")
    }
}

/// Whether process `pid` is still running (a zombie has ended).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `pid` and every process under it (children found by their parent in /proc).
fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok())
        {
            parents.push((p, ppid));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let at = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == at).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Ends the session, and whatever ran in it even if it ignored the hangup (a console that does
/// not exit must not outlive its test, passed or failed): what is left 3 s after the session
/// is gone gets SIGKILL.
impl Drop for Tmux {
    fn drop(&mut self) {
        let pids = self
            .run(&[
                "display-message",
                "-p",
                "-t",
                &format!("={}", self.name),
                "#{pane_pid}",
            ])
            .trim()
            .parse::<u32>()
            .map(tree)
            .unwrap_or_default();
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while pids.iter().any(|p| running(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in pids.into_iter().filter(|p| running(*p)) {
            eprintln!("process {p} outlived its tmux session: killing it");
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
    }
}
