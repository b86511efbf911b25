//! The console's views with demo data, rendered to a `TestBackend` and snapshotted (insta), at
//! 80x24 and 160x48; and the pieces (keys, themes, commands) that need no running gateway.

use epoxy::api::{Kind, Resource, ResourceKey, parse_one};
use epoxy::control::reconcile::Reconciler;
use epoxy::discovery::fds::UpstreamDiscovery;
use epoxy::gateway::Gateway;
use epoxy::gateway::table::compile;
use epoxy::gateway::telemetry::RequestEvent;
use epoxy::store::Listing;
use epoxy::store::dir::DirStore;
use epoxy::tester::send::{Saved, TesterResponse};
use epoxy::tester::trace::trace;
use epoxy::tui::app::{App, Ctx, Msg, View};
use epoxy::tui::feeds::Feeds;
use epoxy::tui::harness::Harness;
use epoxy::tui::keymap::{Key, Keymap, Scope};
use epoxy::tui::theme::Theme;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, watch};

const SWAGGER: &str = include_str!("../src/demo/swagger.json");

fn upstream_yaml() -> String {
    let doc = epoxy::discovery::openapi::read_document(SWAGGER).unwrap();
    let mut v = serde_json::json!({
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": "default-petstore-8080", "namespace": "gloo-system",
                     "labels": {"epoxy.dev/demo": "true"}},
        "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 8081}],
                 "serviceSpec": {"rest": {"transformations": {}}}}}
    });
    v["spec"]["static"]["serviceSpec"]["rest"]["transformations"] = doc.transformations();
    serde_json::to_string(&v).unwrap()
}

const VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: default, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{exact: /petstore/list}]
      routeAction: {single: {upstream: {name: default-petstore-8080, namespace: gloo-system}}}
      options: {prefixRewrite: /api/pets}
    - matchers: [{exact: /petstore/findPet, methods: [GET]}]
      routeAction:
        single:
          upstream: {name: default-petstore-8080, namespace: gloo-system}
          destinationSpec:
            rest:
              functionName: findPetById
              parameters: {headers: {x-pet: '{id}'}}
    - matchers: [{prefix: /petstore}]
      routeAction: {single: {upstream: {name: default-petstore-8080, namespace: gloo-system}}}
    - matchers: [{prefix: /petstore/old}]
      directResponseAction: {status: 410, body: gone}
"#;

/// 2024-05-01 12:00:00 UTC.
fn clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// Kept alive so that the feeds stay open.
type Senders = (
    watch::Sender<Arc<Listing>>,
    watch::Sender<Arc<epoxy::control::reconcile::Report>>,
    watch::Sender<Arc<epoxy::discovery::fds::DiscoveryState>>,
    broadcast::Sender<RequestEvent>,
);

struct Fixture {
    h: Harness,
    _dir: tempfile::TempDir,
    _senders: Senders,
}

fn fixture(readonly: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    let mut listing = Listing::default();
    for text in [upstream_yaml(), VS.to_string()] {
        let r = parse_one(&text, "fixture").unwrap();
        listing.resources.insert(r.key(), r);
    }
    let listing = std::sync::Arc::new(listing);
    let (_, report) = Reconciler::default().reconcile(&listing);
    let mut report = report;
    report.routes = 4;
    let gateway = Gateway::new();
    gateway
        .table
        .store(Arc::new(compile(&listing.resources, &gateway.registry, 1)));
    let mut disc = epoxy::discovery::fds::DiscoveryState::new();
    disc.insert(
        ResourceKey::new(Kind::Upstream, "gloo-system", "default-petstore-8080"),
        UpstreamDiscovery {
            document_url: Some("http://127.0.0.1:8081/swagger.json".into()),
            functions: 4,
            last_poll: Some(clock() - Duration::from_secs(3)),
            poll_duration_ms: Some(12),
            ..Default::default()
        },
    );
    let ctx = Ctx {
        store: Arc::new(store),
        gateway: gateway.clone(),
        gateway_url: "http://127.0.0.1:8080".into(),
        gateway_tls: None,
        tester_ca: None,
        source: "demo".into(),
        store_desc: "dir /home/me/.local/share/epoxy/demo".into(),
        namespace: "gloo-system".into(),
        readonly,
        history_file: None,
        clock: Some(clock()),
    };
    let (app, rx) = App::new(ctx, Theme::default(), Keymap::default());
    // The ids the gateway gives the first two routes (a digest of their content: unnamed).
    let vs_key = ResourceKey::new(Kind::VirtualService, "gloo-system", "default");
    let ids: Vec<String> = listing.resources[&vs_key]
        .routes()
        .unwrap()
        .iter()
        .map(|r| epoxy::api::naming::route_identity("gloo-system", "default", r))
        .collect();
    let (ls, lr) = watch::channel(listing);
    let (rs, rr) = watch::channel(Arc::new(report));
    let (ds, dr) = watch::channel(Arc::new(disc));
    let (es, er) = broadcast::channel(64);
    let mut h = Harness::new(app, Feeds::new(lr, rr, dr, er, rx));
    for (i, (status, path, route, func, ms)) in [
        (200, "/petstore/list", Some(ids[0].as_str()), None, 3),
        (
            200,
            "/petstore/findPet",
            Some(ids[1].as_str()),
            Some("findPetById"),
            5,
        ),
        (404, "/nothing", None, None, 0),
        (
            200,
            "/petstore/findPet",
            Some(ids[1].as_str()),
            Some("findPetById"),
            4,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        h.app.update(Msg::Request(Box::new(RequestEvent {
            time: clock() - Duration::from_millis(1500 - i as u64 * 300),
            method: "GET".into(),
            host: "127.0.0.1:8080".into(),
            path: path.into(),
            route: route.map(str::to_string),
            upstream: route.map(|_| "default-petstore-8080".to_string()),
            function: func.map(str::to_string),
            status,
            latency: Duration::from_micros(ms * 1000 + 250),
            bytes_in: 0,
            bytes_out: 60,
            error: None,
            headers: match func {
                Some(_) => vec![
                    ("x-pet".into(), "1".into()),
                    ("authorization".into(), "Bearer s3cret".into()),
                ],
                None => vec![("accept".into(), "*/*".into())],
            },
        })));
    }
    Fixture {
        h,
        _dir: dir,
        _senders: (ls, rs, ds, es),
    }
}

fn snap(f: &mut Fixture, name: &str) {
    for (w, h) in [(80, 24), (160, 48)] {
        let screen = f.h.screen(w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen);
    }
}

#[test]
fn snapshot_upstreams() {
    let mut f = fixture(false);
    f.h.app
        .info("press r on findPetById to route to it, t to call it");
    snap(&mut f, "upstreams");
}

#[test]
fn snapshot_functions_of_an_upstream_and_all() {
    let mut f = fixture(false);
    f.h.key("enter");
    snap(&mut f, "functions_of_upstream");
    f.h.command("fn");
    f.h.key("/");
    f.h.type_text("pet");
    snap(&mut f, "functions_filtered");
}

#[test]
fn snapshot_function_details() {
    let mut f = fixture(false);
    f.h.command("fn");
    f.h.key("/");
    f.h.type_text("findPetById");
    f.h.key("enter");
    f.h.key("enter");
    snap(&mut f, "function_details");
}

#[test]
fn snapshot_virtual_services_and_routes() {
    let mut f = fixture(false);
    f.h.command("vs");
    snap(&mut f, "virtualservices");
    f.h.key("enter");
    f.h.key("j");
    snap(&mut f, "routes");
}

#[test]
fn snapshot_editor_form_yaml_and_confirm() {
    let mut f = fixture(false);
    f.h.command("routes");
    f.h.key("j");
    f.h.key("e");
    snap(&mut f, "editor_form");
    f.h.key("f2");
    snap(&mut f, "editor_yaml");
    f.h.key("f2");
    // Change the header the id comes from, then ask to apply: the diff shows.
    for _ in 0..5 {
        f.h.key("tab");
    }
    f.h.key("ctrl-u");
    f.h.type_text("x-id={id}");
    f.h.key("ctrl-s");
    snap(&mut f, "editor_confirm");
}

#[test]
fn snapshot_tester_with_trace() {
    let mut f = fixture(false);
    f.h.command("routes");
    f.h.key("j");
    f.h.key("t");
    f.h.type_text("1");
    let saved = Saved {
        method: "GET".into(),
        path: "/petstore/findPet".into(),
        headers: "x-pet: 1".into(),
        body: String::new(),
    };
    let table = f.h.app.ctx.gateway.table.load_full();
    let mut hm = http::HeaderMap::new();
    hm.insert("x-pet", "1".parse().unwrap());
    f.h.app.tester.trace = trace(&table, &f.h.app.data, &saved, "127.0.0.1:8080", &hm);
    f.h.app.tester.response = Some(Ok(TesterResponse {
        received: clock() - Duration::from_secs(2),
        status: 200,
        reason: "OK".into(),
        elapsed: Duration::from_millis(3),
        size: 50,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_string_pretty(
            &serde_json::json!({"id": 1, "name": "Dog", "status": "available"}),
        )
        .unwrap(),
    }));
    snap(&mut f, "tester");
    assert_eq!(
        f.h.app.tester.curl(&f.h.app.ctx.endpoint()),
        "curl -sS -X GET 'http://127.0.0.1:8080/petstore/findPet' -H 'x-pet: 1'"
    );
}

#[test]
fn snapshot_log_discovery_help_command() {
    let mut f = fixture(false);
    f.h.command("log");
    snap(&mut f, "log");
    f.h.command("discovery");
    snap(&mut f, "discovery");
    f.h.command("routes");
    f.h.key("?");
    snap(&mut f, "help_routes");
    f.h.key("esc");
    f.h.key(":");
    f.h.type_text("v");
    snap(&mut f, "command_completion");
}

#[test]
fn shadowed_route_is_flagged() {
    let mut f = fixture(false);
    f.h.command("routes");
    let s = f.h.screen(160, 48);
    assert!(s.contains("never matches: #2 wins"), "{s}");
}

#[test]
fn errors_stay_until_dismissed_information_fades() {
    let mut f = fixture(false);
    f.h.command("nonsense");
    assert!(f.h.screen(80, 24).contains("unknown command `nonsense`"));
    // Time passes: the error stays.
    f.h.app.ctx.clock = Some(clock() + Duration::from_secs(60));
    f.h.app.update(Msg::Tick);
    assert!(f.h.screen(80, 24).contains("unknown command"));
    f.h.key("x");
    assert!(!f.h.screen(80, 24).contains("unknown command"));
    f.h.app.ctx.clock = Some(clock());
    f.h.app.info("hello");
    assert!(f.h.screen(80, 24).contains("hello"));
    f.h.app.ctx.clock = Some(clock() + Duration::from_secs(60));
    f.h.app.update(Msg::Tick);
    assert!(!f.h.screen(80, 24).contains("hello"));
}

#[test]
fn command_mode_completes_and_navigates() {
    let mut f = fixture(false);
    f.h.key(":");
    f.h.type_text("disc");
    f.h.key("tab");
    f.h.key("enter");
    assert_eq!(f.h.app.view(), &epoxy::tui::app::View::Discovery);
    f.h.command("us");
    assert_eq!(f.h.app.view(), &epoxy::tui::app::View::Upstreams);
    f.h.key("enter");
    assert!(
        f.h.screen(80, 24)
            .contains("upstreams > default-petstore-8080 > functions")
    );
    f.h.key("esc");
    assert_eq!(f.h.app.view(), &epoxy::tui::app::View::Upstreams);
    f.h.command("q");
    assert!(f.h.app.quit);
}

#[test]
fn list_keys_move_the_selection_and_the_filter_narrows() {
    let mut f = fixture(false);
    f.h.command("fn");
    assert_eq!(f.h.app.page().selected, 0);
    f.h.key("G");
    assert_eq!(f.h.app.page().selected, 3);
    f.h.key("k");
    f.h.key("up");
    assert_eq!(f.h.app.page().selected, 1);
    f.h.key("g");
    assert_eq!(f.h.app.page().selected, 0);
    f.h.key("/");
    f.h.type_text("^add");
    f.h.key("enter");
    let s = f.h.screen(160, 48);
    assert!(s.contains("addPet") && !s.contains("findPets"), "{s}");
    f.h.key("esc");
    assert!(f.h.screen(160, 48).contains("findPets"));
}

#[test]
fn mouse_wheel_and_click_select() {
    use crossterm::event::{Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let mut f = fixture(false);
    f.h.command("fn");
    f.h.screen(80, 24);
    let ev = |kind, row| {
        Msg::Term(Event::Mouse(MouseEvent {
            kind,
            column: 5,
            row,
            modifiers: KeyModifiers::NONE,
        }))
    };
    f.h.app.update(ev(MouseEventKind::ScrollDown, 5));
    assert_eq!(f.h.app.page().selected, 3);
    // Rows start under the header (1), crumbs (1), the border (1) and the table header (1).
    f.h.app
        .update(ev(MouseEventKind::Down(MouseButton::Left), 5));
    assert_eq!(f.h.app.page().selected, 1);
    f.h.app
        .update(ev(MouseEventKind::Down(MouseButton::Left), 5));
    assert!(matches!(
        f.h.app.view(),
        epoxy::tui::app::View::Function { .. }
    ));
}

#[test]
fn keymap_overrides_only_what_it_names() {
    let mut k = Keymap::default();
    let notes = k
        .apply_toml("[routes]\nedit = [\"E\"]\n[global]\nquit = \"ctrl-q\"\nbogus = \"z\"\n")
        .unwrap();
    assert_eq!(
        notes,
        vec!["unknown action `bogus` in [global]".to_string()]
    );
    let ev = |s: &str| Key::parse(s).unwrap().event();
    use epoxy::tui::action::Action;
    assert_eq!(k.lookup(&[Scope::Routes], &ev("E")), Some(Action::Edit));
    assert_eq!(k.lookup(&[Scope::Routes], &ev("e")), None);
    assert_eq!(k.lookup(&[Scope::Routes], &ev("n")), Some(Action::New));
    assert_eq!(
        k.lookup(&[Scope::Global], &ev("ctrl-q")),
        Some(Action::Quit)
    );
    // The footer shows the new key.
    let mut f = fixture(false);
    f.h.app.keymap = k;
    f.h.command("routes");
    assert!(f.h.screen(160, 48).contains("<E> edit"));
    f.h.key("E");
    assert_eq!(f.h.app.view(), &epoxy::tui::app::View::Editor);
}

#[test]
fn themes_load_and_no_color_strips_colour() {
    for n in ["dark", "light", "gruvbox", "high-contrast"] {
        let t = Theme::load(n).unwrap();
        assert!(t.color);
    }
    assert!(Theme::load("nope").unwrap_err().contains("no theme `nope`"));
    assert!(Theme::load("../etc/passwd").is_err());
    let t = Theme::load("gruvbox").unwrap().without_color();
    assert_eq!(t.accent, ratatui::style::Color::Reset);
    let mut f = fixture(false);
    f.h.command("theme light");
    assert_eq!(f.h.app.theme.name, "light");
}

#[test]
fn readonly_hides_writes_from_the_footer_and_help() {
    let mut f = fixture(true);
    f.h.command("routes");
    let s = f.h.screen(160, 48);
    assert!(!s.contains("<n> new") && !s.contains("<d> delete"), "{s}");
    assert!(s.contains("read-only"), "{s}");
    f.h.key("e");
    assert!(f.h.screen(160, 48).contains("read-only console"));
    assert_eq!(
        f.h.app.view(),
        &epoxy::tui::app::View::Routes {
            vs: ResourceKey::new(Kind::VirtualService, "gloo-system", "default")
        }
    );
    let _ = Resource::kind;
}

#[test]
fn yaml_errors_point_at_their_line() {
    use epoxy::tui::views::editor::{line_of_path, parse_route};
    let text = "matchers:\n- exact: /a\n  methods: [GET]\n- regex: /b\nrouteAction:\n  single:\n    upstream: {name: x}\n";
    assert_eq!(line_of_path(text, "matchers[1].regex"), Some(4));
    assert_eq!(line_of_path(text, "matchers[0].methods"), Some(3));
    assert_eq!(line_of_path(text, "routeAction.single.upstream"), Some(7));
    let (l, m) = parse_route("matchers:\n- exact: /a\n  methods: 7\n").unwrap_err();
    assert_eq!(l, Some(3), "{m}");
    let (l, _) = parse_route("matchers:\n  - exact: [\n").unwrap_err();
    assert!(l.is_some());
}

#[test]
fn a_discovery_error_shows_in_full_under_the_upstreams() {
    let mut f = fixture(false);
    let err = "cannot connect to http://127.0.0.1:1/swagger.json: connection refused (os error 111); is the service up?";
    let mut disc = epoxy::discovery::fds::DiscoveryState::new();
    disc.insert(
        ResourceKey::new(Kind::Upstream, "gloo-system", "default-petstore-8080"),
        UpstreamDiscovery {
            last_error: Some(err.into()),
            last_poll: Some(clock()),
            ..Default::default()
        },
    );
    f.h.app.update(Msg::Discovery(Arc::new(disc)));
    for (cmd, w) in [("upstreams", 80), ("discovery", 80), ("upstreams", 160)] {
        f.h.command(cmd);
        let s = f.h.screen(w, 24);
        // Wrapped over lines: join them and drop the borders.
        let text: String = s
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains("Discovery error"), "{s}");
        assert!(text.contains("is the service up?"), "{cmd} {w}:\n{s}");
    }
}

#[test]
fn snapshot_describe_and_yaml_of_a_route_an_upstream_and_a_virtual_service() {
    let mut f = fixture(false);
    f.h.command("routes");
    f.h.key("j");
    // `d` describes the route (k9s): its traffic over the last minute as sparklines.
    f.h.key("d");
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("Describe · ") && s.contains("findPetById"),
        "{s}"
    );
    assert!(s.contains("last 60s: 2 requests, 0 errors"), "{s}");
    snap(&mut f, "describe_route");
    f.h.key("y");
    let s = f.h.screen(160, 48);
    assert!(s.contains("functionName: findPetById"), "{s}");
    snap(&mut f, "yaml_route");
    // Nothing was deleted on the way: the route is still there.
    assert_eq!(
        f.h.app
            .data
            .routes_ref(&ResourceKey::new(
                Kind::VirtualService,
                "gloo-system",
                "default"
            ))
            .len(),
        4
    );
    f.h.command("us");
    f.h.key("d");
    snap(&mut f, "describe_upstream");
    f.h.command("vs");
    f.h.key("y");
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("kind: VirtualService") && s.contains("exact: /petstore/list"),
        "{s}"
    );
    snap(&mut f, "yaml_virtualservice");
}

#[test]
fn the_access_log_drills_into_a_request_replays_it_and_goes_to_its_route() {
    let mut f = fixture(false);
    f.h.command("log");
    // The last request (followed): findPet, with its headers; the credential hidden.
    f.h.key("enter");
    let s = f.h.screen(160, 48);
    assert!(s.contains("request      GET /petstore/findPet"), "{s}");
    assert!(s.contains("x-pet: 1"), "{s}");
    assert!(
        !s.contains("s3cret") && s.contains("authorization: ••• (13 bytes, hidden)"),
        "{s}"
    );
    assert!(s.contains("findPetById"), "{s}");
    // The match trace against the routes as they are: #1 answers (the x-pet header).
    assert!(
        s.contains("#0 exact /petstore/list") && s.contains("✓"),
        "{s}"
    );
    snap(&mut f, "request_detail");
    // g: its route, selected in the routes view.
    f.h.key("g");
    assert!(matches!(f.h.app.view(), View::Routes { .. }));
    assert_eq!(f.h.app.page().selected, 1);
    // Back to the request; t replays it in the tester (with its headers).
    f.h.key("esc");
    f.h.key("t");
    assert_eq!(f.h.app.view(), &View::Tester);
    let c = f.h.app.tester.composed();
    assert_eq!(
        (c.method.as_str(), c.path.as_str()),
        ("GET", "/petstore/findPet")
    );
    assert!(c.headers.contains("x-pet: 1"), "{}", c.headers);
}

#[test]
fn the_access_log_is_saved_as_json_lines_without_credentials() {
    let mut f = fixture(false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.jsonl");
    f.h.command(&format!("save {}", path.display()));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["path"], "/petstore/list");
    assert_eq!(lines[2]["status"], 404);
    assert_eq!(lines[1]["headers"]["x-pet"], "1");
    assert_eq!(lines[0]["time"], "2024-05-01T11:59:58.500Z");
    assert!(!text.contains("s3cret"), "{text}");
    let msg = f.h.app.message.clone().unwrap();
    assert!(msg.text.contains("saved 4 requests"), "{}", msg.text);
}

#[test]
fn the_help_key_stays_in_the_footer_at_80_columns() {
    let mut f = fixture(false);
    for cmd in ["us", "fn", "vs", "routes", "log", "discovery"] {
        f.h.command(cmd);
        let s = f.h.screen(80, 24);
        let footer = s.lines().last().unwrap_or_default();
        assert!(footer.contains("<?> help"), "{cmd}: {footer}");
    }
    f.h.command("test");
    let s = f.h.screen(80, 24);
    assert!(s.lines().last().unwrap().contains("<f1> help"), "{s}");
    // f1 opens help from the tester (where ? is typed into a field).
    f.h.key("f1");
    assert_eq!(f.h.app.view(), &View::Help);
}

#[test]
fn without_colour_placeholders_are_told_apart_from_values() {
    use ratatui::style::Modifier;
    let mut f = fixture(false);
    f.h.app.theme = Theme::default().without_color();
    f.h.command("test");
    let buf = f.h.buffer(120, 30).unwrap();
    let text = epoxy::tui::harness::buffer_text(&buf);
    // The empty headers field shows its hint; the path field shows its value (`/`).
    let row = |label: &str| {
        text.lines()
            .position(|l| l.contains(&format!("│{label}")))
            .unwrap() as u16
    };
    let cell = |y: u16, x: u16| buf.cell((x, y)).unwrap().clone();
    let hint = cell(row("headers"), 9);
    assert_eq!(hint.symbol(), "n");
    assert!(
        hint.modifier.contains(Modifier::DIM | Modifier::ITALIC),
        "{hint:?}"
    );
    let body_hint = cell(row("body"), 9);
    assert!(
        body_hint.modifier.contains(Modifier::ITALIC),
        "{body_hint:?}"
    );
    // A value is plain: type into the path field (focused) and leave it.
    f.h.key("tab");
    let buf = f.h.buffer(120, 30).unwrap();
    let v = buf.cell((9, row("path"))).unwrap();
    assert_eq!(v.symbol(), "/");
    assert!(
        !v.modifier.intersects(Modifier::DIM | Modifier::ITALIC),
        "{v:?}"
    );
}

#[test]
fn the_tester_says_which_route_answers_before_sending_and_warns_when_shadowed() {
    let mut f = fixture(false);
    f.h.command("routes");
    f.h.key("j");
    f.h.key("t");
    // findPet (#1) needs its x-pet header; empty, #1 still matches (a header value is
    // templated); route #1 answers.
    let s = f.h.screen(160, 48);
    assert!(s.contains("→ route default#1 answers"), "{s}");
    // Route #3 (prefix /petstore/old) is shadowed by #2 (prefix /petstore): t on it warns.
    f.h.key("esc");
    f.h.key("G");
    f.h.key("t");
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("⚠ route default#2 answers, not #3: an earlier route shadows it"),
        "{s}"
    );
    snap(&mut f, "tester_shadowed");
    // A path no route takes: said before sending.
    f.h.key("ctrl-u");
    f.h.type_text("/elsewhere");
    assert!(
        f.h.screen(160, 48)
            .contains("⚠ no route answers this (404)")
    );
}

#[test]
fn ns_switches_the_namespace_routes_use() {
    let mut f = fixture(false);
    f.h.command("ns");
    let m = f.h.app.message.clone().unwrap();
    assert!(
        m.text
            .contains("namespace gloo-system · in the store: gloo-system"),
        "{}",
        m.text
    );
    f.h.command("ns team-a");
    assert_eq!(f.h.app.ctx.namespace, "team-a");
    assert!(f.h.screen(120, 30).contains("ns team-a"));
    f.h.command("routes");
    match f.h.app.view() {
        View::Routes { vs } => assert_eq!(vs.namespace, "team-a"),
        v => panic!("{v:?}"),
    }
    f.h.command("ns Not_A_Namespace");
    assert!(f.h.app.message.clone().unwrap().error);
    assert_eq!(f.h.app.ctx.namespace, "team-a");
}

#[test]
fn saved_requests_are_kept_by_name_in_the_store_and_loaded_back() {
    let mut f = fixture(false);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join(".epoxy-tester-history.json");
    f.h.app.tester = epoxy::tui::views::tester::Tester::new(Some(&history));
    f.h.command("routes");
    f.h.key("j");
    f.h.key("t");
    f.h.type_text("7");
    // From the tester, alt-: opens the command line (plain : is typed into the field).
    f.h.key("alt-:");
    f.h.type_text("keep find pet 7");
    f.h.key("enter");
    let file = dir.path().join(".epoxy-tester-requests.json");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved[0]["name"], "find pet 7");
    assert_eq!(saved[0]["path"], "/petstore/findPet");
    assert_eq!(saved[0]["headers"], "x-pet: 7");
    // A new tester on the same store finds it; :requests lists it, enter loads it.
    f.h.app.tester = epoxy::tui::views::tester::Tester::new(Some(&history));
    f.h.key("esc");
    f.h.command("requests");
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("Saved requests (1)") && s.contains("find pet 7"),
        "{s}"
    );
    snap(&mut f, "saved_requests");
    f.h.key("enter");
    assert_eq!(f.h.app.view(), &View::Tester);
    assert_eq!(f.h.app.tester.composed().headers, "x-pet: 7");
    // ctrl-d drops it (from the collection file, not the store).
    f.h.key("esc");
    f.h.command("requests");
    f.h.key("ctrl-d");
    assert!(f.h.screen(160, 48).contains("Saved requests (0)"));
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "[]");
}

/// The fixture's store as a cluster without some CRDs would list it: those kinds empty and
/// named in `Listing::unavailable`.
fn without_crds(f: &mut Fixture, kinds: &[Kind]) {
    let mut listing = (*f.h.app.data.listing).clone();
    listing.resources.retain(|k, _| !kinds.contains(&k.kind));
    listing.unavailable = kinds.to_vec();
    f.h.app.update(Msg::Listing(Arc::new(listing)));
}

#[test]
fn kinds_the_cluster_lacks_are_noted_in_the_frame_and_their_views() {
    // Gloo open source: no enterprise CRDs. The note stays in view on every page, and a
    // route's description says its auth and rate limit policies are not read.
    let mut f = fixture(false);
    without_crds(&mut f, &[Kind::AuthConfig, Kind::RateLimitConfig]);
    f.h.command("routes");
    f.h.key("j");
    f.h.key("d");
    for (w, h) in [(80, 24), (160, 48)] {
        let s = f.h.screen(w, h);
        // At 80 columns the note is cut after the breadcrumbs (`…`); whole at 160.
        assert!(
            s.contains("⚠ cluster lacks CRDs: authconf"),
            "{w}x{h}:\n{s}"
        );
        assert!(
            s.contains("⚠ the cluster has no CRD authconfigs.enterprise.gloo.solo.io"),
            "{w}x{h}:\n{s}"
        );
    }
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("cluster lacks CRDs: authconfigs, ratelimitconfigs"),
        "{s}"
    );
    snap(&mut f, "describe_route_without_crds");
    // Without the VirtualService CRD, the empty list says why instead of "none yet".
    without_crds(&mut f, &[Kind::VirtualService]);
    f.h.command("vs");
    let s = f.h.screen(160, 48);
    assert!(s.contains("Virtual services (0)"), "{s}");
    assert!(
        s.contains(
            "the cluster has no CRD virtualservices.gateway.solo.io: its virtualservices are not read"
        ),
        "{s}"
    );
    assert!(!s.contains(":routes then n creates"), "{s}");
    snap(&mut f, "virtualservices_without_crd");
    // When the CRDs come back, the note goes.
    without_crds(&mut f, &[]);
    assert!(!f.h.screen(160, 48).contains("cluster lacks"));
}

#[test]
fn snapshot_describe_of_a_virtual_service_and_yaml_of_a_function() {
    let mut f = fixture(false);
    f.h.command("vs");
    f.h.key("d");
    let s = f.h.screen(160, 48);
    assert!(s.contains("Describe · default"), "{s}");
    assert!(s.contains("exact /petstore/list"), "its routes: {s}");
    assert!(
        s.contains("last 60s: 3 requests"),
        "its routes' traffic: {s}"
    );
    snap(&mut f, "describe_virtualservice");
    f.h.command("fn");
    f.h.key("y");
    let s = f.h.screen(160, 48);
    assert!(s.contains("YAML · "), "{s}");
    snap(&mut f, "yaml_function");
}

#[test]
fn snapshot_tester_loaded_from_a_saved_request_and_its_help() {
    let mut f = fixture(false);
    let dir = tempfile::tempdir().unwrap();
    f.h.app.tester = epoxy::tui::views::tester::Tester::new(Some(
        &dir.path().join(".epoxy-tester-history.json"),
    ));
    f.h.command("routes");
    f.h.key("j");
    f.h.key("t");
    f.h.type_text("7");
    f.h.key("alt-:");
    f.h.type_text("keep find pet 7");
    f.h.key("enter");
    f.h.key("esc");
    f.h.command("requests");
    f.h.key("enter");
    let s = f.h.screen(160, 48);
    assert!(s.contains("x-pet: 7"), "the saved headers, loaded: {s}");
    assert!(s.contains("find pet 7: enter sends it"), "{s}");
    snap(&mut f, "tester_saved_loaded");
    // f1: the help of the tester (plain ? would be typed into the field).
    f.h.key("f1");
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("keys of test") && s.contains("copy as curl"),
        "{s}"
    );
    snap(&mut f, "help_tester");
}

#[test]
fn snapshot_the_conflict_a_stale_edit_meets() {
    use epoxy::control::routes::RouteError;
    use epoxy::tui::app::Refused;
    let mut f = fixture(false);
    f.h.command("routes");
    f.h.key("j");
    f.h.key("e");
    // The user changes the path...
    f.h.key("end");
    f.h.type_text("ById");
    // ... while another writer changed the same route's header: the write is refused with
    // what the route is now, and the console offers to re-apply the edit over it.
    let vs = ResourceKey::new(Kind::VirtualService, "gloo-system", "default");
    let was = f.h.app.data.routes_ref(&vs)[1].clone();
    let mut now = was.clone();
    now.matchers[0].methods = vec!["GET".into(), "HEAD".into()];
    let e = RouteError::Changed {
        was: Box::new(was.clone()),
        now: Box::new(now.clone()),
    };
    f.h.app.update(Msg::Written(Box::new(Err(Refused {
        message: format!("refused: {e}"),
        from_editor: true,
        conflict: Some((was, Some(now))),
    }))));
    let s = f.h.screen(160, 48);
    assert!(
        s.contains("Changed by another writer since you opened it"),
        "{s}"
    );
    assert!(
        s.contains("+   - HEAD"),
        "what the other writer changed: {s}"
    );
    // The user's edit is kept.
    assert!(s.contains("/petstore/findPetById"), "{s}");
    snap(&mut f, "editor_conflict");
}
