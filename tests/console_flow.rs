//! Scripted console sessions against the real thing: the embedded petstore, a directory store,
//! function discovery, the control loop and the gateway on real sockets; keys go into the app.

mod common;

use epoxy::api::{Kind, Object, Resource, ResourceKey, StaticHost, StaticUpstream, UpstreamSpec};
use epoxy::control::routes::{Position, RouteEdit};
use epoxy::discovery::fds::FdsConfig;
use epoxy::gateway::GatewayConfig;
use epoxy::store::Precondition;
use epoxy::store::dir::DirStore;
use epoxy::tui::app::{App, Mode, OpKind, View, WriteOp};
use epoxy::tui::harness::Harness;
use epoxy::tui::host::Host;
use epoxy::tui::keymap::Keymap;
use epoxy::tui::theme::Theme;
use epoxy::tui::views::editor::route_yaml;
use epoxy::tui::widgets::diff::DiffLine;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

struct Session {
    h: Harness,
    host: Host,
    dir: tempfile::TempDir,
    _pets: epoxy::demo::petstore::Petstore,
}

async fn session(readonly: bool) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    let pets = epoxy::demo::petstore::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let up = Object::new(
        Kind::Upstream,
        "gloo-system",
        "default-petstore-8080",
        UpstreamSpec {
            static_: Some(StaticUpstream {
                hosts: vec![StaticHost {
                    addr: "127.0.0.1".into(),
                    port: pets.addr.port() as u32,
                    extra: Default::default(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    store
        .put_sync(Resource::Upstream(up), Precondition::Absent)
        .unwrap();
    let cfg = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin: None,
        workers: 1,
        ..GatewayConfig::default()
    };
    let root = store.root().to_path_buf();
    let host = Host::start(std::sync::Arc::new(store), root, &cfg, FdsConfig::default()).unwrap();
    let mut ctx = host.ctx("demo", "gloo-system", readonly);
    ctx.history_file = Some(dir.path().join(".epoxy-tester-history.json"));
    let (app, rx) = App::new(ctx, Theme::default(), Keymap::default());
    let feeds = host.feeds(rx);
    let mut h = Harness::new(app, feeds);
    h.until("the petstore's functions", WAIT, |a| {
        a.data.functions(Some("default-petstore-8080")).len() == 4
    })
    .await
    .unwrap();
    Session {
        h,
        host,
        dir,
        _pets: pets,
    }
}

fn vs_file(s: &Session) -> Option<String> {
    std::fs::read_to_string(
        s.dir
            .path()
            .join("virtualservices/gloo-system/default.yaml"),
    )
    .ok()
}

fn routes_live(s: &Session) -> usize {
    s.host.gateway.table.load().route_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_route_from_the_editor_then_tester_then_access_log() {
    let mut s = session(false).await;
    // Functions, filtered to findPetById; r opens the editor with upstream and function picked.
    s.h.command("fn");
    s.h.key("/");
    s.h.type_text("findPetById");
    s.h.key("enter");
    s.h.key("r");
    assert_eq!(s.h.app.view(), &View::Editor);
    let screen = s.h.screen(120, 30);
    assert!(screen.contains("[findPetById ▾]"), "{screen}");
    assert!(screen.contains("/petstore/findPetById"), "{screen}");
    // Apply: the diff first, then the write.
    s.h.key("ctrl-s");
    let screen = s.h.screen(120, 30);
    assert!(screen.contains("Apply route #0 to default?"), "{screen}");
    assert!(
        screen.contains("+ - exact: /petstore/findPetById"),
        "{screen}"
    );
    s.h.key("y");
    s.h.until("the route is live", WAIT, |a| {
        a.message
            .as_ref()
            .is_some_and(|m| m.text.contains("live now"))
    })
    .await
    .unwrap();
    assert!(vs_file(&s).unwrap().contains("functionName: findPetById"));
    s.h.until("the gateway has the route", WAIT, |a| {
        a.ctx.gateway.table.load().route_count() == 1 && a.data.route_count() == 1
    })
    .await
    .unwrap();
    assert_eq!(routes_live(&s), 1);
    // The routes view shows it.
    s.h.command("routes");
    let screen = s.h.screen(160, 40);
    assert!(screen.contains("exact /petstore/findPetById"), "{screen}");

    // The tester, from the function: one field per variable; id = 1; send.
    s.h.command("fn");
    s.h.key("/");
    s.h.type_text("findPetById");
    s.h.key("enter");
    s.h.key("t");
    assert_eq!(s.h.app.view(), &View::Tester);
    s.h.type_text("1");
    s.h.key("enter");
    s.h.until("the response", WAIT, |a| a.tester.response.is_some())
        .await
        .unwrap();
    let screen = s.h.screen(120, 36);
    assert!(screen.contains("200 OK"), "{screen}");
    assert!(screen.contains("\"name\": \"Dog\""), "{screen}");
    assert!(
        screen.contains("✓ → default-petstore-8080 · findPetById"),
        "{screen}"
    );
    // Copy as curl.
    s.h.key("ctrl-o");
    let curl = s.h.app.clipboard.clone().unwrap();
    assert!(
        curl.contains("/petstore/findPetById") && curl.contains(r#"{"id":1}"#),
        "{curl}"
    );
    assert!(s.h.app.osc52.as_deref().unwrap().starts_with("\x1b]52;c;"));

    // The access log has the request (esc leaves the tester's fields first).
    s.h.key("esc");
    s.h.command("log");
    s.h.until("the request in the log", WAIT, |a| {
        a.data
            .log
            .iter()
            .any(|e| e.path == "/petstore/findPetById" && e.status == 200)
    })
    .await
    .unwrap();
    let screen = s.h.screen(160, 40);
    assert!(screen.contains("/petstore/findPetById"), "{screen}");
    assert!(screen.contains("findPetById"), "{screen}");

    // History survives a restart: a new tester reads the file.
    let t = epoxy::tui::views::tester::Tester::new(Some(
        &s.dir.path().join(".epoxy-tester-history.json"),
    ));
    assert_eq!(
        t.history.entries.last().unwrap().path,
        "/petstore/findPetById"
    );

    // Undo the apply: the route is gone again.
    s.h.command("routes");
    s.h.key("u");
    let r =
        s.h.until("the undo", WAIT, |a| a.data.route_count() == 0)
            .await;
    assert!(r.is_ok(), "{:?}", s.h.app.message);
    assert!(!vs_file(&s).unwrap_or_default().contains("findPetById"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_yaml_edit_shows_its_line_and_changes_nothing() {
    let mut s = session(false).await;
    s.h.command("routes");
    s.h.key("n");
    s.h.key("f2");
    // `- prefix: /` on line 2 becomes `- regex: /(`: an invalid regex.
    s.h.keys(&["down", "home", "right", "right"]);
    for _ in 0..6 {
        s.h.key("delete");
    }
    s.h.type_text("regex");
    s.h.key("end");
    s.h.type_text("(");
    let e = s.h.app.editor.as_ref().unwrap();
    assert_eq!(e.error_line, Some(2), "{:?}", e.problems);
    let screen = s.h.screen(120, 30);
    assert!(screen.contains("✗ line 2: matchers[0].regex"), "{screen}");
    s.h.key("ctrl-s");
    let screen = s.h.screen(120, 30);
    assert!(screen.contains("not applied"), "{screen}");
    assert_eq!(s.h.app.view(), &View::Editor);
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.h.pump();
    assert!(vs_file(&s).is_none(), "nothing was written");
    // Esc asks first (the edit would be lost): n keeps editing, esc then y discards.
    s.h.key("esc");
    assert!(s.h.screen(120, 30).contains("Discard your edit?"));
    s.h.key("n");
    assert_eq!(s.h.app.view(), &View::Editor);
    assert_eq!(s.h.app.editor.as_ref().unwrap().error_line, Some(2));
    s.h.key("esc");
    s.h.key("y");
    assert!(matches!(s.h.app.view(), View::Routes { .. }));
    // An editor with no change leaves at once.
    s.h.key("n");
    s.h.key("esc");
    assert!(matches!(s.h.app.view(), View::Routes { .. }));
    assert!(vs_file(&s).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_reorder_and_delete_routes() {
    let mut s = session(false).await;
    s.h.command("routes");
    // Two routes from the form: prefix /a and prefix /b (each new one goes after the selection).
    for p in ["/a", "/b"] {
        // Select the last route (if any), so the new one goes after it whatever the timing.
        s.h.key("G");
        s.h.key("n");
        s.h.key("ctrl-u");
        s.h.type_text(p);
        s.h.keys(&["tab", "tab", "tab", "right"]);
        s.h.key("ctrl-s");
        s.h.key("y");
        let want = if p == "/a" { 1 } else { 2 };
        // The listing (what the next key acts on), not only the compiled table, has the route.
        s.h.until("the write", WAIT, move |a| {
            a.writes_in_flight == 0
                && a.data.route_count() == want
                && a.data
                    .routes_of(&ResourceKey::new(
                        Kind::VirtualService,
                        "gloo-system",
                        "default",
                    ))
                    .len()
                    == want
        })
        .await
        .unwrap();
    }
    let order = |s: &Session| {
        let f = vs_file(s).unwrap();
        (f.find("prefix: /a").unwrap(), f.find("prefix: /b").unwrap())
    };
    let (a, b) = order(&s);
    assert!(a < b);
    // Move /b up.
    s.h.key("G");
    s.h.key("K");
    s.h.until("the move", WAIT, |a| a.writes_in_flight == 0)
        .await
        .unwrap();
    s.h.until("the listing", WAIT, |a| {
        a.data
            .routes_of(&ResourceKey::new(
                Kind::VirtualService,
                "gloo-system",
                "default",
            ))
            .first()
            .is_some_and(|r| r.matchers[0].prefix.as_deref() == Some("/b"))
    })
    .await
    .unwrap();
    let (a, b) = order(&s);
    assert!(b < a);
    // Delete the selected (/b, now first): confirm with y.
    assert_eq!(s.h.app.page().selected, 0);
    // `d` describes (as in k9s): nothing is asked, nothing deleted.
    s.h.key("d");
    let screen = s.h.screen(120, 30);
    assert!(
        screen.contains("Describe ·") && screen.contains("prefix /b"),
        "{screen}"
    );
    assert!(!screen.contains("Delete route"), "{screen}");
    s.h.key("esc");
    s.h.key("ctrl-d");
    assert!(s.h.screen(120, 30).contains("Delete route #0 of default?"));
    s.h.key("y");
    s.h.until("the delete", WAIT, |a| {
        a.data.route_count() == 1
            && a.data
                .routes_of(&ResourceKey::new(
                    Kind::VirtualService,
                    "gloo-system",
                    "default",
                ))
                .len()
                == 1
    })
    .await
    .unwrap();
    let f = vs_file(&s).unwrap();
    assert!(f.contains("prefix: /a") && !f.contains("prefix: /b"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_refuses_every_write() {
    let mut s = session(true).await;
    s.h.command("routes");
    for k in ["n", "e", "ctrl-d", "K", "J", "u", "U"] {
        s.h.key(k);
        assert!(
            s.h.app
                .message
                .as_ref()
                .is_some_and(|m| m.error && m.text.contains("read-only")),
            "{k}"
        );
        assert!(matches!(s.h.app.view(), View::Routes { .. }), "{k}");
    }
    s.h.command("fn");
    s.h.key("r");
    assert!(s.h.app.message.as_ref().unwrap().text.contains("read-only"));
    // Even a write asked for directly is refused.
    s.h.app.spawn_write(WriteOp {
        label: "x".into(),
        vs: ResourceKey::new(Kind::VirtualService, "gloo-system", "default"),
        edit: RouteEdit::Insert {
            route: Box::default(),
            at: Position::First,
        },
        from_editor: false,
        kind: OpKind::Do,
    });
    assert_eq!(s.h.app.writes_in_flight, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(vs_file(&s).is_none());
    // Looking and testing still work.
    s.h.command("test");
    s.h.key("ctrl-u");
    s.h.type_text("/nothing");
    s.h.key("enter");
    s.h.until("the response", WAIT, |a| a.tester.response.is_some())
        .await
        .unwrap();
    assert!(s.h.screen(120, 30).contains("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_diff_is_exactly_what_is_written_and_undo_redo_stack() {
    let mut s = session(false).await;
    s.h.command("fn");
    s.h.key("/");
    s.h.type_text("findPetById");
    s.h.key("enter");
    s.h.key("r");
    s.h.key("ctrl-s");
    s.h.key("y");
    s.h.until("the route", WAIT, |a| a.data.route_count() == 1)
        .await
        .unwrap();
    // Edit it: YAML, change the match kind and the function; back to the form; one character.
    s.h.command("routes");
    s.h.key("e");
    s.h.key("f2");
    let e = s.h.app.editor.as_mut().unwrap();
    let yaml = e.textarea.lines().join("\n");
    assert!(yaml.contains("exact: /petstore/findPetById"), "{yaml}");
    let yaml = yaml
        .replace("exact: /petstore/findPetById", "regex: /petstore/findPet.*")
        .replace("functionName: findPetById", "functionName: findPets");
    e.textarea = ratatui_textarea::TextArea::new(yaml.lines().map(str::to_string).collect());
    s.h.key("f2");
    s.h.key("backspace");
    s.h.key("ctrl-s");
    let Mode::Confirm(c) = &s.h.app.mode else {
        panic!(
            "no confirmation: {:?}",
            s.h.app.message.as_ref().map(|m| &m.text)
        );
    };
    let new: Vec<&str> = c
        .lines
        .iter()
        .filter_map(|l| match l {
            DiffLine::Same(t) | DiffLine::Added(t) => Some(t.as_str()),
            DiffLine::Removed(_) => None,
        })
        .collect();
    let shown = new.join("\n");
    // Every change is marked as one, not only the last.
    let marked = |added: bool, text: &str| {
        c.lines.iter().any(|l| match l {
            DiffLine::Added(t) => added && t.contains(text),
            DiffLine::Removed(t) => !added && t.contains(text),
            DiffLine::Same(_) => false,
        })
    };
    assert!(
        marked(false, "exact: /petstore/findPetById"),
        "{:?}",
        c.lines
    );
    assert!(marked(false, "functionName: findPetById"), "{:?}", c.lines);
    assert!(marked(true, "regex: /petstore/findPet."), "{:?}", c.lines);
    assert!(marked(true, "functionName: findPets"), "{:?}", c.lines);
    assert!(
        shown.contains("regex: /petstore/findPet.")
            && !shown.contains("findPet.*")
            && shown.contains("functionName: findPets"),
        "{shown}"
    );
    s.h.key("y");
    s.h.until("the write", WAIT, |a| {
        a.data
            .routes_ref(&vs_key())
            .first()
            .is_some_and(|r| r.matchers[0].regex.is_some())
    })
    .await
    .unwrap();
    // What was written is what the diff showed, line for line.
    let written = s.h.app.data.routes_ref(&vs_key())[0].clone();
    assert_eq!(route_yaml(&written).trim_end(), shown.trim_end());

    // Undo twice (the edit, then the creation), then redo both.
    s.h.key("u");
    s.h.until("the first undo", WAIT, |a| {
        a.data
            .routes_ref(&vs_key())
            .first()
            .is_some_and(|r| r.matchers[0].exact.is_some())
    })
    .await
    .unwrap();
    s.h.key("u");
    s.h.until("the second undo", WAIT, |a| a.data.route_count() == 0)
        .await
        .unwrap();
    s.h.key("u");
    assert!(
        s.h.app
            .message
            .as_ref()
            .unwrap()
            .text
            .contains("nothing to undo")
    );
    s.h.key("U");
    s.h.until("the first redo", WAIT, |a| a.data.route_count() == 1)
        .await
        .unwrap();
    s.h.key("U");
    s.h.until("the second redo", WAIT, |a| {
        a.data
            .routes_ref(&vs_key())
            .first()
            .is_some_and(|r| r.matchers[0].regex.is_some())
    })
    .await
    .unwrap();
    assert_eq!(s.h.app.data.routes_ref(&vs_key())[0], written);
}

fn vs_key() -> ResourceKey {
    ResourceKey::new(Kind::VirtualService, "gloo-system", "default")
}

/// A route behind basic auth and a local rate limit: its description names both; the tester
/// attaches credentials with `:auth`, shows the 401 and the 429 with their reasons; the access
/// log counts the denials and `/denied` keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_route_in_describe_tester_and_access_log() {
    let mut s = session(false).await;
    let (salt, hash) = common::keys::htpasswd("ann", "s3cret");
    let write = |rel: &str, yaml: String| {
        let p = s.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, yaml).unwrap();
    };
    write(
        "authconfigs/gloo-system/basic.yaml",
        format!(
            "apiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: basic, namespace: gloo-system}}\nspec:\n  configs:\n  - basicAuth:\n      realm: pets\n      apr:\n        users:\n          ann: {{salt: '{salt}', hashedPassword: '{hash}'}}\n"
        ),
    );
    write(
        "virtualservices/gloo-system/default.yaml",
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /api}]\n      routeAction: {single: {upstream: {name: default-petstore-8080, namespace: gloo-system}}}\n      options:\n        extauth: {configRef: {name: basic}}\n        ratelimit: {localRatelimit: {maxTokens: 2, tokensPerFill: 2, fillInterval: 3600s}}\n".into(),
    );
    s.h.until("the protected route", WAIT, |a| {
        a.data.route_count() == 1 && a.ctx.gateway.table.load().route_count() == 1
    })
    .await
    .unwrap();

    // Describe: the route's policies.
    s.h.command("routes");
    s.h.key("d");
    let screen = s.h.screen(160, 40);
    assert!(
        screen.contains("policies     extauth: AuthConfig gloo-system/basic: basicAuth (route)"),
        "{screen}"
    );
    assert!(
        screen.contains("local limit: 2 tokens, 2 every 3600s (route; one bucket per gateway)"),
        "{screen}"
    );
    s.h.key("esc");

    // The tester without credentials: 401 and why.
    s.h.command("test");
    s.h.app.tester.path.set("/api/pets");
    let send = |s: &mut Session| {
        s.h.app.tester.response = None;
        s.h.key("enter");
    };
    send(&mut s);
    s.h.until("the 401", WAIT, |a| a.tester.response.is_some())
        .await
        .unwrap();
    let screen = s.h.screen(160, 40);
    assert!(screen.contains("401 Unauthorized"), "{screen}");
    assert!(
        screen.contains("refused: basic-auth: no credentials · challenge Basic realm=\"pets\""),
        "{screen}"
    );

    // `:auth basic`: 200 twice, then the bucket is empty: 429 and why.
    s.h.key("alt-:");
    s.h.type_text("auth basic ann:s3cret");
    s.h.key("enter");
    assert_eq!(s.h.app.view(), &View::Tester);
    assert!(
        s.h.app
            .tester
            .headers
            .text
            .starts_with("authorization: Basic "),
        "{}",
        s.h.app.tester.headers.text
    );
    for want in [200, 200, 429] {
        send(&mut s);
        s.h.until("the response", WAIT, |a| a.tester.response.is_some())
            .await
            .unwrap();
        let got = s.h.app.tester.response.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(got.status, want, "{}", got.body);
    }
    let screen = s.h.screen(160, 40);
    assert!(screen.contains("429 Too Many Requests"), "{screen}");
    assert!(
        screen.contains("refused: local_rate_limited · rate limited by the gateway"),
        "{screen}"
    );

    // The access log: two denials, counted and kept by `/denied`.
    s.h.key("esc");
    s.h.command("log");
    s.h.until("the four requests in the log", WAIT, |a| {
        a.data.log.iter().filter(|e| e.path == "/api/pets").count() == 4
    })
    .await
    .unwrap();
    assert_eq!(s.h.app.data.denied, 2);
    let screen = s.h.screen(200, 40);
    assert!(screen.contains("2 denied"), "{screen}");
    let errors: Vec<String> =
        s.h.app
            .data
            .log
            .iter()
            .map(epoxy::tui::views::log::error_text)
            .filter(|e| !e.is_empty())
            .collect();
    assert_eq!(
        errors,
        [
            "denied auth: basic-auth: no credentials (authconfig gloo-system/basic)",
            "denied limit: local_rate_limited"
        ]
    );
    s.h.key("/");
    s.h.type_text("denied");
    s.h.key("enter");
    let screen = s.h.screen(200, 40);
    assert!(screen.contains("Access log (2)"), "{screen}");
}
