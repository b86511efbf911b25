//! Console frame time and memory with a large store: 1,000 static upstreams of 4 functions each,
//! one virtual service with 10,000 routes, a full access log (3,000 events pushed, the log keeps
//! `LOG_CAPACITY`). Each view is rendered to a ratatui `TestBackend` at 160x48 and 80x24; prints
//! the median and p99 of the frame time (a draw alone, and a `j` key then a draw), then the
//! resident memory (VmRSS) at each stage. Last, the figure that counts for memory: the same data
//! written to a directory store and opened by the real `epoxy` console (release binary, in a
//! 160x48 tmux pane), its VmRSS read from /proc once it shows the 10,000 routes, and its CPU
//! time over 10 idle seconds.
//!
//! `cargo bench --bench console` (`-- --trim` also shows the resident memory once glibc has given
//! back its free pages). Without `--bench` (as under `cargo test --all-targets`) it
//! returns at once.

use epoxy::api::{Kind, ResourceKey, parse_one};
use epoxy::control::reconcile::Reconciler;
use epoxy::discovery::fds::{DiscoveryState, UpstreamDiscovery};
use epoxy::gateway::Gateway;
use epoxy::gateway::table::compile;
use epoxy::gateway::telemetry::RequestEvent;
use epoxy::store::Listing;
use epoxy::store::dir::DirStore;
use epoxy::tui::app::{App, Ctx, Msg};
use epoxy::tui::feeds::Feeds;
use epoxy::tui::harness::Harness;
use epoxy::tui::keymap::{Key, Keymap};
use epoxy::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, watch};

const SWAGGER: &str = include_str!("../src/demo/swagger.json");
const NS: &str = "gloo-system";
const UPSTREAMS: usize = 1_000;
const ROUTES: usize = 10_000;
const EVENTS: usize = 3_000;
const SIZES: [(u16, u16); 2] = [(160, 48), (80, 24)];
/// Warm-up frames per case (fewer if they take longer than `WARMUP_BUDGET`, at least one).
const WARMUP: usize = 5;
const WARMUP_BUDGET: Duration = Duration::from_millis(300);
/// Frames per case, unless the case runs out of `CASE_BUDGET` first (never fewer than
/// `MIN_FRAMES`): slow cases get few samples, and their p99 is their maximum.
const FRAMES: usize = 100;
const MIN_FRAMES: usize = 5;
const CASE_BUDGET: Duration = Duration::from_millis(1_000);
const TARGET_MS: f64 = 10.0;
const TARGET_RSS_MB: f64 = 100.0;

/// 2024-05-01 12:00:00 UTC: the console's clock, fixed; the events lead up to it.
fn clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

fn upstream_name(i: usize) -> String {
    format!("svc-{i:04}-petstore-8080")
}

/// VmRSS and VmHWM of this process, in MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Prints VmRSS; with `--trim` also after glibc gave its free pages back (roughly what is live;
/// but the later stages then start from a trimmed heap, so the plain run is the honest one).
fn rss_stage(label: &str) -> f64 {
    let (before, _) = rss_mb();
    if !std::env::args().any(|a| a == "--trim") {
        println!("  RSS {label:<44} {before:>7.1} MB");
        return before;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's allocator.
    unsafe {
        malloc_trim(0);
    }
    let (after, _) = rss_mb();
    println!("  RSS {label:<44} {before:>7.1} MB ({after:.1} MB after malloc_trim)");
    before
}

fn listing() -> Listing {
    let doc = epoxy::discovery::openapi::read_document(SWAGGER).expect("the demo document");
    let transformations = doc.transformations();
    let functions: Vec<String> = transformations
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut listing = Listing::default();
    for i in 0..UPSTREAMS {
        let v = json!({
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": upstream_name(i), "namespace": NS},
            "spec": {"static": {
                "hosts": [{"addr": format!("10.0.{}.{}", i / 250, i % 250 + 1), "port": 8080}],
                "serviceSpec": {"rest": {"transformations": transformations}}}}
        });
        let r = parse_one(&v.to_string(), "bench").expect("an upstream");
        listing.resources.insert(r.key(), r);
    }
    let mut routes = Vec::with_capacity(ROUTES);
    for i in 0..ROUTES {
        let up = json!({"name": upstream_name(i % UPSTREAMS), "namespace": NS});
        let base = format!("/svc-{:04}", i % UPSTREAMS);
        let route = match i % 8 {
            // Function destinations, with a parameter from a header.
            0..=2 => json!({
                "matchers": [{"exact": format!("{base}/fn/{i}"), "methods": ["GET"]}],
                "routeAction": {"single": {"upstream": up, "destinationSpec": {"rest": {
                    "functionName": functions[i % functions.len()],
                    "parameters": {"headers": {"x-id": "{id}"}}}}}}
            }),
            3 | 4 => json!({
                "matchers": [{"prefix": format!("{base}/p/{i}/")}],
                "routeAction": {"single": {"upstream": up}},
                "options": {"prefixRewrite": "/api/pets/", "timeout": "5s"}
            }),
            5 => json!({
                "matchers": [{"exact": format!("{base}/e/{i}")},
                             {"prefix": format!("{base}/e/{i}/")}],
                "routeAction": {"single": {"upstream": up}}
            }),
            6 => json!({
                "matchers": [{"prefix": format!("{base}/old/{i}")}],
                "directResponseAction": {"status": 410, "body": "gone"}
            }),
            // Every so often a route that an earlier one shadows.
            _ if i % 400 == 7 => json!({
                "matchers": [{"prefix": format!("/svc-{:04}/p/{}/x", (i - 4) % UPSTREAMS, i - 4)}],
                "routeAction": {"single": {"upstream": up}}
            }),
            _ => json!({
                "matchers": [{"exact": format!("{base}/x/{i}"),
                              "headers": [{"name": "x-tenant", "value": "t1"}]}],
                "routeAction": {"single": {"upstream": up}}
            }),
        };
        routes.push(route);
    }
    let vs = json!({
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "default", "namespace": NS},
        "spec": {"virtualHost": {"domains": ["*"], "routes": routes}}
    });
    let r = parse_one(&vs.to_string(), "bench").expect("the virtual service");
    listing.resources.insert(r.key(), r);
    listing
}

fn event(i: usize) -> RequestEvent {
    // 3,000 requests over the last 3 s before the clock (1,000 req/s), across many routes.
    let r = (i * 7919) % ROUTES;
    let hit = i % 10 != 9;
    RequestEvent {
        time: clock() - Duration::from_millis((EVENTS - i) as u64),
        method: "GET".into(),
        host: "127.0.0.1:8080".into(),
        path: format!("/svc-{:04}/fn/{r}", r % UPSTREAMS),
        route: hit.then(|| format!("{NS}/default#{r}")),
        upstream: hit.then(|| upstream_name(r % UPSTREAMS)),
        function: (hit && r % 8 < 3).then(|| "findPetById".to_string()),
        status: if hit { 200 } else { 404 },
        latency: Duration::from_micros(800 + (i as u64 * 37) % 9000),
        bytes_in: 0,
        bytes_out: 60,
        error: None,
        headers: Vec::new(),
    }
}

/// Kept alive so that the feeds stay open.
type Senders = (
    watch::Sender<Arc<Listing>>,
    watch::Sender<Arc<epoxy::control::reconcile::Report>>,
    watch::Sender<Arc<DiscoveryState>>,
    broadcast::Sender<RequestEvent>,
);

fn load(dir: &std::path::Path, listing: Listing) -> (Harness, Senders) {
    let t = Instant::now();
    let listing = std::sync::Arc::new(listing);
    let (accepted, mut report) = Reconciler::default().reconcile(&listing);
    let vs = ResourceKey::new(Kind::VirtualService, NS, "default");
    println!(
        "reconcile: {:.0} ms (virtual service {:?}, {} statuses)",
        ms(t.elapsed()),
        report.statuses.get(&vs).map(|s| s.state),
        report.statuses.len()
    );
    rss_stage("after reconcile");
    let gateway = Gateway::new();
    let t = Instant::now();
    let table = compile(&accepted, &gateway.registry, report.generation);
    report.routes = table.route_count();
    gateway.table.store(Arc::new(table));
    drop(accepted);
    println!(
        "compile route table: {:.0} ms ({} routes)",
        ms(t.elapsed()),
        report.routes
    );
    rss_stage("after compiling the gateway's route table");
    let mut disc = DiscoveryState::new();
    for i in 0..UPSTREAMS {
        disc.insert(
            ResourceKey::new(Kind::Upstream, NS, upstream_name(i)),
            UpstreamDiscovery {
                document_url: Some(format!(
                    "http://10.0.{}.{}:8080/swagger.json",
                    i / 250,
                    i % 250 + 1
                )),
                functions: 4,
                last_poll: Some(clock() - Duration::from_secs(3)),
                poll_duration_ms: Some(12),
                ..Default::default()
            },
        );
    }
    let ctx = Ctx {
        store: Arc::new(DirStore::open(dir).expect("a store")),
        gateway,
        gateway_url: "http://127.0.0.1:8080".into(),
        gateway_tls: None,
        tester_ca: None,
        source: "dir".into(),
        store_desc: format!("dir {}", dir.display()),
        namespace: NS.into(),
        readonly: false,
        history_file: None,
        clock: Some(clock()),
    };
    let (app, rx) = App::new(ctx, Theme::default(), Keymap::default());
    let (ls, lr) = watch::channel(listing);
    let (rs, rr) = watch::channel(Arc::new(report));
    let (ds, dr) = watch::channel(Arc::new(disc));
    let (es, er) = broadcast::channel(64);
    let t = Instant::now();
    let mut h = Harness::new(app, Feeds::new(lr, rr, dr, er, rx));
    println!("initial update: {:.0} ms", ms(t.elapsed()));
    let t = Instant::now();
    for i in 0..EVENTS {
        h.app.update(Msg::Request(Box::new(event(i))));
    }
    println!(
        "{EVENTS} request events: {:.0} ms (the log keeps {})",
        ms(t.elapsed()),
        h.app.data.log.len()
    );
    rss_stage("app loaded (report, discovery, log)");
    (h, (ls, rs, ds, es))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Stats {
    n: usize,
    median: f64,
    p99: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let at = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Stats {
        n,
        median: at(0.5),
        p99: at(0.99),
    }
}

/// Times `frame` (WARMUP first), until FRAMES or the case's budget.
fn measure(mut frame: impl FnMut()) -> Stats {
    let start = Instant::now();
    for _ in 0..WARMUP {
        frame();
        if start.elapsed() > WARMUP_BUDGET {
            break;
        }
    }
    let start = Instant::now();
    let mut v = Vec::with_capacity(FRAMES);
    while v.len() < FRAMES && (v.len() < MIN_FRAMES || start.elapsed() < CASE_BUDGET) {
        let t = Instant::now();
        frame();
        v.push(ms(t.elapsed()));
    }
    stats(v)
}

fn mark(x: f64) -> &'static str {
    if x < TARGET_MS { "" } else { " !" }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("resident memory (VmRSS; target < {TARGET_RSS_MB} MB) and setup:");
    rss_stage("at start");
    let t = Instant::now();
    let listing = listing();
    println!(
        "built listing: {} resources in {:.0} ms",
        listing.resources.len(),
        ms(t.elapsed())
    );
    rss_stage("listing built (1000 upstreams, 10000 routes)");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store_dir = tempfile::tempdir().expect("a temporary directory");
    write_store(store_dir.path(), &listing);
    // EPOXY_BENCH_STORE=DIR also writes the store there, to look at it by hand.
    if let Some(keep) = std::env::var_os("EPOXY_BENCH_STORE") {
        write_store(std::path::Path::new(&keep), &listing);
    }
    let (mut h, _senders) = load(dir.path(), listing);
    let key =
        |name: &str| crossterm::event::Event::Key(Key::parse(name).expect("a key name").event());

    // (label, command, clock offset): the routes view twice, with the log's traffic inside the
    // rate window (every row looks up its req/s) and after it (idle).
    // Then keys pressed after the command (the describe view of a route with its charts, one
    // request of the log with its match trace, the tester with its preview).
    let views: [(&str, &str, u64, &[&str]); 10] = [
        ("upstreams (1000)", "upstreams", 0, &[]),
        ("functions, all (4000)", "functions", 0, &[]),
        ("functions of 1 upstream (4)", "", 0, &[]),
        ("virtualservices (1)", "virtualservices", 0, &[]),
        ("routes (10000), traffic", "routes default", 0, &[]),
        ("routes (10000), idle", "routes default", 60, &[]),
        ("access log (2000 events)", "log", 0, &[]),
        ("describe route, traffic", "routes default", 0, &["d"]),
        ("request of the log", "log", 0, &["enter"]),
        ("tester, 10000 routes", "routes default", 0, &["G", "t"]),
    ];
    println!();
    println!(
        "{:<30} {:>7} {:>9} {:>9} {:>13} {:>13}",
        "view", "size", "draw med", "draw p99", "j+draw med", "j+draw p99"
    );
    for (label, cmd, later, keys) in views {
        h.app.ctx.clock = Some(clock() + Duration::from_secs(later));
        if h.app.view() == &epoxy::tui::app::View::Tester {
            h.key("esc");
        }
        if cmd.is_empty() {
            h.command("upstreams");
            h.key("enter");
        } else {
            h.command(cmd);
        }
        for k in keys {
            h.key(k);
        }
        for (w, hgt) in SIZES {
            let mut term = Terminal::new(TestBackend::new(w, hgt)).expect("a test terminal");
            let app = &mut h.app;
            let draw = measure(|| {
                term.draw(|f| app.draw(f)).expect("draw");
            });
            // Back to the top, then a key and a frame each time (alternating down and up so the
            // selection stays near the top, like scrolling does).
            let mut down = true;
            let keyed = measure(|| {
                app.update(Msg::Term(key(if down { "j" } else { "k" })));
                down = !down;
                term.draw(|f| app.draw(f)).expect("draw");
            });
            println!(
                "{:<30} {:>7} {:>7.2}ms{} {:>7.2}ms{} {:>11.2}ms{} {:>11.2}ms{}  (n={}/{})",
                label,
                format!("{w}x{hgt}"),
                draw.median,
                mark(draw.median),
                draw.p99,
                mark(draw.p99),
                keyed.median,
                mark(keyed.median),
                keyed.p99,
                mark(keyed.p99),
                draw.n,
                keyed.n,
            );
        }
    }
    // What the caches cost when their inputs change: a new listing (the routes' rows and the
    // shadowing are derived again), and a filter typed in the routes view (every row's text
    // is matched, once per change of the filter).
    println!();
    h.app.ctx.clock = Some(clock());
    h.command("routes default");
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("a test terminal");
    let new_listing = measure(|| {
        let l = h.app.data.listing.clone();
        h.app.update(Msg::Listing(l));
        term.draw(|f| h.app.draw(f)).expect("draw");
    });
    let mut n = 0;
    let filter = measure(|| {
        h.key("/");
        // A filter that differs each time: `fn/1`, `fn/2`, ...
        n += 1;
        h.type_text(&format!("fn/{}", n % 9 + 1));
        term.draw(|f| h.app.draw(f)).expect("draw");
        h.key("esc");
    });
    println!(
        "routes (10000) 160x48, new listing + draw: med {:.2}ms p99 {:.2}ms (n={})",
        new_listing.median, new_listing.p99, new_listing.n
    );
    println!(
        "routes (10000) 160x48, type a 4-char filter + draw: med {:.2}ms p99 {:.2}ms (n={})",
        filter.median, filter.p99, filter.n
    );
    println!();
    let rss = rss_stage("after rendering every view");
    let (_, hwm) = rss_mb();
    println!("  peak (VmHWM) {hwm:.1} MB; RSS {rss:.1} MB vs target {TARGET_RSS_MB} MB");
    println!("frame target: < {TARGET_MS} ms; `!` marks a figure over it");
    drop(h);
    real_console(store_dir.path());
}

/// Writes every resource as a file of a directory store, as `epoxy apply` would.
fn write_store(dir: &std::path::Path, listing: &Listing) {
    let store = DirStore::open(dir).expect("a store");
    for r in listing.resources.values() {
        store
            .put_sync(r.clone(), epoxy::store::Precondition::Any)
            .expect("a write");
    }
}

fn proc_status(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// user + system CPU ticks of a process.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The real console on the store, in tmux: its resident memory and idle CPU.
fn real_console(store: &std::path::Path) {
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    if tmux(&["-V"]).is_err() {
        println!("the real console: skipped (tmux is not installed)");
        return;
    }
    let name = format!("epoxy-bench-{}", std::process::id());
    let home = tempfile::tempdir().expect("a temporary directory");
    let command = format!(
        "exec env XDG_CONFIG_HOME='{}' '{}' --dir '{}'",
        home.path().display(),
        env!("CARGO_BIN_EXE_epoxy"),
        store.display()
    );
    let started = Instant::now();
    if tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "160",
        "-y",
        "48",
        &command,
    ])
    .is_err()
    {
        println!("the real console: tmux would not start");
        return;
    }
    let screen = || tmux(&["capture-pane", "-p", "-t", &name]).unwrap_or_default();
    let pid: Option<u32> = tmux(&["list-panes", "-t", &name, "-F", "#{pane_pid}"])
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !screen().contains("10000 routes") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let loaded = started.elapsed();
    let shown = screen().contains("10000 routes");
    // The routes view, drawn, then a moment to settle (discovery's first pass over the
    // upstreams, whose addresses lead nowhere useful, ends within it).
    let _ = tmux(&["send-keys", "-t", &name, ":routes", "Enter"]);
    std::thread::sleep(Duration::from_secs(5));
    match pid {
        Some(pid) if shown => {
            let rss = proc_status(pid, "VmRSS:").unwrap_or(f64::NAN);
            let hwm = proc_status(pid, "VmHWM:").unwrap_or(f64::NAN);
            // What the resident size is made of: the heap and stacks (anonymous) and the
            // binary's own pages (file-backed, shared and given back under pressure).
            let anon = proc_status(pid, "RssAnon:").unwrap_or(f64::NAN);
            let file = proc_status(pid, "RssFile:").unwrap_or(f64::NAN);
            let t0 = cpu_ticks(pid);
            std::thread::sleep(Duration::from_secs(10));
            let t1 = cpu_ticks(pid);
            let idle = match (t0, t1) {
                (Some(a), Some(b)) => format!("{} CPU ticks (of 1,000) in 10 s idle", b - a),
                _ => "idle CPU unknown".into(),
            };
            println!(
                "the real console (`epoxy --dir`, 160x48 tmux) with this store: shown in {:.1} s; \
                 RSS {rss:.1} MB (peak {hwm:.1} MB; anonymous {anon:.1} MB, the binary's pages \
                 {file:.1} MB) vs target {TARGET_RSS_MB} MB; {idle}",
                loaded.as_secs_f64()
            );
        }
        _ => println!(
            "the real console did not show the 10000 routes within 60 s:\n{}",
            screen()
        ),
    }
    let _ = tmux(&["kill-session", "-t", &name]);
}
