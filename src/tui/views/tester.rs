//! The request tester: a request (method, path, headers, body, and one field per variable of a
//! function route) fired at the embedded gateway; the response; the match trace (which route
//! matched, and why each earlier one did not); curl export; a history kept across runs.

use super::ViewCtx;
use crate::api::Route;
use crate::gateway::Gateway;
use crate::gateway::matcher::RequestHead;
use crate::gateway::table::RouteTable;
pub use crate::tester::send::{Named, Saved, TesterResponse};
use crate::tester::send::{fire, header_map};
use crate::tester::target::{Endpoint, Target};
use crate::tui::action::Action;
use crate::tui::data::Data;
use crate::tui::theme::Theme;
use crate::tui::widgets::input::LineInput;
use crate::tui::widgets::table::ellipsize;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How many requests the history keeps.
pub const HISTORY_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub enum VarSource {
    Body,
    /// The header that carries it, and the route's template for that header (`{id}`).
    Header(String, String),
    /// The route's `:path` template.
    Path,
}

#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub source: VarSource,
    pub input: LineInput,
}

/// One line of the match trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub text: String,
    /// Some(true) matched, Some(false) did not, None a note.
    pub ok: Option<bool>,
}

pub struct Tester {
    pub method: LineInput,
    pub path: LineInput,
    pub headers: LineInput,
    pub body: LineInput,
    pub vars: Vec<Var>,
    pub focus: usize,
    pub response: Option<Result<TesterResponse, String>>,
    pub trace: Vec<Trace>,
    pub sending: bool,
    pub history: Vec<Saved>,
    /// The id of the route the request was loaded from (`t` on a route or function): the
    /// tester warns when another route would answer it.
    pub target: Option<String>,
    /// Saved, named requests (`:keep NAME`, `:requests`), kept next to the history.
    pub collection: Vec<Named>,
    collection_file: Option<PathBuf>,
    history_pos: Option<usize>,
    history_file: Option<PathBuf>,
}

fn brace_vars() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
            .unwrap_or_else(|_| unreachable!("a literal regex"))
    })
}

fn fill(tpl: &str, vars: &[Var]) -> String {
    brace_vars()
        .replace_all(tpl, |c: &regex::Captures| {
            vars.iter()
                .find(|v| v.name == c[1])
                .map(|v| v.input.text.clone())
                .unwrap_or_else(|| c[0].to_string())
        })
        .into_owned()
}

/// Shell quoting for curl.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Tester {
    pub fn new(history_file: Option<&Path>) -> Tester {
        let history = history_file
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<Vec<Saved>>(&t).ok())
            .unwrap_or_default();
        Tester {
            method: LineInput::new("GET"),
            path: LineInput::new("/"),
            headers: LineInput::default(),
            body: LineInput::default(),
            vars: Vec::new(),
            focus: 1,
            response: None,
            trace: Vec::new(),
            sending: false,
            history,
            collection: collection_file(history_file)
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            collection_file: collection_file(history_file),
            target: None,
            history_pos: None,
            history_file: history_file.map(Path::to_path_buf),
        }
    }

    fn fields(&self) -> usize {
        4 + self.vars.len()
    }

    fn focused(&mut self) -> &mut LineInput {
        match self.focus {
            0 => &mut self.method,
            1 => &mut self.path,
            2 => &mut self.headers,
            3 => &mut self.body,
            i => match self.vars.get_mut(i - 4) {
                Some(v) => &mut v.input,
                None => &mut self.path,
            },
        }
    }

    pub fn input(&mut self, k: &KeyEvent) {
        self.focused().handle(k);
    }

    /// A paste goes into the focused field, on one line; it never sends.
    pub fn paste(&mut self, text: &str) {
        self.focused().paste(text);
    }

    pub fn action(&mut self, a: Action) {
        let n = self.fields();
        match a {
            Action::NextField => self.focus = (self.focus + 1) % n,
            Action::PrevField => self.focus = (self.focus + n - 1) % n,
            _ => {}
        }
    }

    /// Loads a route: its method and path; for a function route, one field per variable.
    pub fn load_route(&mut self, r: &Route, data: &Data) {
        let m = r.matchers.first();
        let path = m
            .map(|m| match m.path() {
                crate::api::PathMatch::Exact(p) | crate::api::PathMatch::Prefix(p) => p.to_string(),
                crate::api::PathMatch::Regex(_) => "/".to_string(),
            })
            .unwrap_or_else(|| "/".into());
        self.vars.clear();
        self.headers.set("");
        self.body.set("");
        self.response = None;
        self.trace.clear();
        let mut path = path;
        let dest = r.route_action.as_ref().and_then(|a| a.single.as_ref());
        if let Some(d) = dest
            && let Some(f) = d.function_name()
        {
            let up = d.upstream.as_ref().map(|u| u.name.as_str()).unwrap_or("");
            let params = d
                .destination_spec
                .as_ref()
                .and_then(|s| {
                    s.rest
                        .as_ref()
                        .and_then(|r| r.parameters.clone())
                        .or_else(|| s.grpc.as_ref().and_then(|g| g.parameters.clone()))
                })
                .unwrap_or_default();
            for (h, tpl) in &params.headers {
                for c in brace_vars().captures_iter(tpl) {
                    self.add_var(&c[1], VarSource::Header(h.clone(), tpl.clone()));
                }
            }
            if let Some(tpl) = &params.path {
                path = tpl.clone();
                for c in brace_vars().captures_iter(tpl) {
                    self.add_var(&c[1], VarSource::Path);
                }
            }
            // A gRPC method: the request message's fields, at their zero values.
            if d.destination_spec
                .as_ref()
                .is_some_and(|s| s.grpc.is_some())
            {
                match data
                    .upstream(up)
                    .ok_or_else(|| format!("no upstream {up}"))
                    .and_then(|u| crate::tester::grpc_body::for_destination(d, u))
                {
                    Ok(body) => self.body.set(body.to_string()),
                    Err(e) => tracing::debug!(error = %e, "no gRPC body to prefill"),
                }
            } else if let Some(info) = data.functions(Some(up)).into_iter().find(|x| x.name == f) {
                for (v, _) in &info.params {
                    self.add_var(v, VarSource::Body);
                }
            }
        }
        let method = m
            .and_then(|m| m.methods.first().cloned())
            .unwrap_or_else(|| {
                if !self.body.text.is_empty()
                    || self.vars.iter().any(|v| v.source == VarSource::Body)
                {
                    "POST".into()
                } else {
                    "GET".into()
                }
            });
        self.method.set(method);
        self.path.set(path);
        // The first thing to fill in: a variable, else a prefilled body (gRPC), else the path.
        self.focus = if !self.vars.is_empty() {
            4
        } else if !self.body.text.is_empty() {
            3
        } else {
            1
        };
    }

    fn add_var(&mut self, name: &str, source: VarSource) {
        if !self.vars.iter().any(|v| v.name == name) {
            self.vars.push(Var {
                name: name.to_string(),
                source,
                input: LineInput::default(),
            });
        }
    }

    /// The request as it will be sent: variables filled in.
    pub fn composed(&self) -> Saved {
        let path = if self.vars.iter().any(|v| v.source == VarSource::Path) {
            fill(&self.path.text, &self.vars)
        } else {
            self.path.text.clone()
        };
        let mut headers: Vec<String> = self
            .headers
            .text
            .split(';')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        for v in &self.vars {
            if let VarSource::Header(h, tpl) = &v.source {
                let line = format!("{h}: {}", fill(tpl, &self.vars));
                if !headers.contains(&line) {
                    headers.push(line);
                }
            }
        }
        let body = if !self.body.text.trim().is_empty() {
            self.body.text.clone()
        } else {
            let m: serde_json::Map<String, serde_json::Value> = self
                .vars
                .iter()
                .filter(|v| v.source == VarSource::Body)
                .map(|v| {
                    let t = v.input.text.trim();
                    let val = serde_json::from_str::<serde_json::Value>(t)
                        .ok()
                        .filter(|x| x.is_number() || x.is_boolean())
                        .unwrap_or_else(|| serde_json::Value::String(t.to_string()));
                    (v.name.clone(), val)
                })
                .collect();
            if m.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(m).to_string()
            }
        };
        Saved {
            method: self.method.text.trim().to_ascii_uppercase(),
            path,
            headers: headers.join("; "),
            body,
        }
    }

    /// The request as a curl command (for an https:// URL: trusting the `--ca` file, and
    /// connecting to the gateway's TLS listener under the URL's name).
    pub fn curl(&self, ep: &Endpoint) -> String {
        let s = self.composed();
        let target = Target::resolve(&s.path, ep);
        let args = match &target {
            Ok(t) => t.curl_args(ep.ca.as_deref()),
            Err(_) => vec![format!("{}{}", ep.url, s.path)],
        };
        let mut out = format!("curl -sS -X {}", s.method);
        for a in args {
            out.push(' ');
            out.push_str(&sq(&a));
        }
        for (k, v) in s.header_pairs() {
            out.push_str(&format!(" -H {}", sq(&format!("{k}: {v}"))));
        }
        if !s.body.is_empty() {
            out.push_str(&format!(" --data {}", sq(&s.body)));
        }
        out
    }

    /// Loads a request as it is (a replay from the access log, an entry of the history).
    pub fn load_saved(&mut self, h: &Saved) {
        self.vars.clear();
        self.method.set(h.method.clone());
        self.path.set(h.path.clone());
        self.headers.set(h.headers.clone());
        self.body.set(h.body.clone());
        self.response = None;
        self.trace.clear();
        self.target = None;
        self.focus = 1;
    }

    /// Loads the previous entry of the history (cycling); returns a description.
    pub fn history_prev(&mut self) -> Option<String> {
        if self.history.is_empty() {
            return None;
        }
        let n = self.history.len();
        let pos = match self.history_pos {
            Some(0) | None => n - 1,
            Some(p) => p - 1,
        };
        self.history_pos = Some(pos);
        let h = self.history[pos].clone();
        self.load_saved(&h);
        Some(format!("{} {} ({}/{n})", h.method, h.path, n - pos))
    }

    /// Keeps the request as it stands under `name` (replacing one of the same name).
    pub fn keep(&mut self, name: &str) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("keep NAME: a name for the request".into());
        }
        let request = self.composed();
        match self.collection.iter_mut().find(|n| n.name == name) {
            Some(n) => n.request = request,
            None => self.collection.push(Named {
                name: name.to_string(),
                request,
            }),
        }
        self.collection.sort_by(|a, b| a.name.cmp(&b.name));
        self.save_collection()
    }

    /// Drops the saved request `name`.
    pub fn forget(&mut self, name: &str) -> Result<(), String> {
        self.collection.retain(|n| n.name != name);
        self.save_collection()
    }

    fn save_collection(&self) -> Result<(), String> {
        let Some(p) = &self.collection_file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&self.collection).map_err(|e| e.to_string())?;
        write_atomically(p, &text).map_err(|e| format!("{}: {e}", p.display()))
    }

    fn remember(&mut self, s: Saved) {
        self.history.retain(|h| *h != s);
        self.history.push(s);
        if self.history.len() > HISTORY_LEN {
            let drop = self.history.len() - HISTORY_LEN;
            self.history.drain(..drop);
        }
        self.history_pos = None;
        if let Some(p) = &self.history_file
            && let Ok(text) = serde_json::to_string_pretty(&self.history)
        {
            let _ = write_atomically(p, &text);
        }
    }

    /// Traces the request through the table that will see it; the request itself is the
    /// returned future, which fires it at the gateway (its plain listener, or its TLS one for
    /// an https:// URL) when run.
    pub fn send(
        &mut self,
        ep: &Endpoint,
        gateway: &Gateway,
        data: &Data,
    ) -> Result<impl Future<Output = Result<TesterResponse, String>> + Send + 'static, String> {
        let s = self.composed();
        let method = http::Method::from_bytes(s.method.as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", s.method))?;
        let target = Target::resolve(&s.path, ep)?;
        let hm = header_map(&s)?;
        let authority = target.authority(&hm);
        self.trace = match target.table(gateway) {
            Some(table) => {
                // The trace shows the path the gateway sees (of an https:// URL too).
                let seen = Saved {
                    path: target.path().to_string(),
                    ..s.clone()
                };
                trace(&table, data, &seen, &authority, &hm)
            }
            None => vec![Trace {
                text: format!(
                    "no virtual service has a certificate for {authority}: the handshake fails"
                ),
                ok: Some(false),
            }],
        };
        self.remember(s.clone());
        self.sending = true;
        self.response = None;
        let body = s.body.clone();
        let ca = ep.ca.clone();
        Ok(fire(method, target, authority, hm, body, ca))
    }

    /// Which route would answer the request as it stands (before sending), and whether it
    /// is not the route the tester was loaded from.
    pub fn preview(&self, ep: &Endpoint, gateway: &Gateway, data: &Data) -> Preview {
        let s = self.composed();
        let (Ok(hm), Ok(target)) = (header_map(&s), Target::resolve(&s.path, ep)) else {
            return Preview::Unsendable;
        };
        let Some(table) = target.table(gateway) else {
            return Preview::NoCertificate;
        };
        let authority = target.authority(&hm);
        let (path, query) = match target.path().split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target.path(), None),
        };
        let head = RequestHead {
            method: &s.method,
            authority: &authority,
            path,
            query,
            headers: (&hm).into(),
        };
        match table.route(&head) {
            None => Preview::NoRoute,
            Some(m) => {
                let id = m.route.id.to_string();
                let place = data.locate(&id);
                let shadowed_target = self.target.as_ref().filter(|t| **t != id).map(|t| {
                    data.locate(t)
                        .map_or_else(|| t.clone(), |(_, i)| format!("#{i}"))
                });
                Preview::Route {
                    place: place
                        .map(|(vs, i)| format!("{}#{i}", vs.name))
                        .unwrap_or(id),
                    shadowed_target,
                }
            }
        }
    }

    pub fn on_response(&mut self, r: Result<TesterResponse, String>) {
        self.sending = false;
        self.response = Some(r);
    }
}

/// The collection lives next to the history: `.epoxy-tester-requests.json`.
fn collection_file(history: Option<&Path>) -> Option<PathBuf> {
    Some(history?.with_file_name(".epoxy-tester-requests.json"))
}

fn write_atomically(p: &Path, text: &str) -> std::io::Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, p)
}

/// What the tester would meet if it sent now.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// Not a request yet (a bad header, path or method).
    Unsendable,
    /// An https:// URL whose name no virtual service has a certificate for.
    NoCertificate,
    NoRoute,
    /// The route that answers (`default#1`), and, when the tester was loaded from another
    /// route, where that one is (it is shadowed for this request).
    Route {
        place: String,
        shadowed_target: Option<String>,
    },
}

/// Which route the request meets, and why each earlier route did not match.
pub fn trace(
    table: &RouteTable,
    data: &Data,
    s: &Saved,
    authority: &str,
    headers: &http::HeaderMap,
) -> Vec<Trace> {
    let (path, query) = match s.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s.path.as_str(), None),
    };
    let mut out = vec![Trace {
        text: format!("{} {}  host {authority}", s.method, s.path),
        ok: None,
    }];
    let Some(vh) = table.vhost(authority) else {
        out.push(Trace {
            text: format!("no virtual service serves host {authority} (404)"),
            ok: Some(false),
        });
        return out;
    };
    let head = RequestHead {
        method: &s.method,
        authority,
        path,
        query,
        headers: headers.into(),
    };
    let verdicts = vh.explain(&head);
    let mut matched = false;
    for (i, (id, v)) in verdicts.iter().enumerate() {
        let found = data.route_by_id(id).map(|(_, _, r)| r);
        let what = found.map(super::routes::match_text).unwrap_or_default();
        match v {
            Ok(()) => {
                matched = true;
                let dest = found
                    .map(|r| {
                        let (d, f) = super::routes::destination(r);
                        if f.is_empty() {
                            d
                        } else {
                            format!("{d} · {f}")
                        }
                    })
                    .unwrap_or_default();
                out.push(Trace {
                    text: format!("#{i} {what}  ✓ → {dest}"),
                    ok: Some(true),
                });
            }
            Err(why) => out.push(Trace {
                text: format!("#{i} {what}  ✗ {why}"),
                ok: Some(false),
            }),
        }
    }
    if !matched {
        out.push(Trace {
            text: format!(
                "no route of {} matches (404); {} routes checked",
                vh.key.name,
                verdicts.len()
            ),
            ok: Some(false),
        });
    }
    out
}

/// One field of the request, in `width` columns: the focused one scrolls to its cursor, the
/// others end with `…` when cut.
fn field_line<'a>(
    t: &Theme,
    label: &str,
    input: &'a LineInput,
    focused: bool,
    hint: &str,
    width: usize,
) -> Line<'a> {
    let room = width.saturating_sub(8);
    let mut spans = vec![Span::styled(format!("{label:<8}"), t.muted())];
    if focused {
        let (a, c, b) = input.window(room);
        spans.push(Span::raw(a));
        spans.push(Span::styled(c, t.selection()));
        spans.push(Span::raw(b));
    } else if input.text.is_empty() {
        spans.push(Span::styled(hint.to_string(), t.placeholder()));
    } else {
        spans.push(Span::raw(ellipsize(&input.text, room)));
    }
    Line::from(spans)
}

/// Draws the tester `tr`, whose requests go to `ep`.
pub fn draw(cx: &ViewCtx, tr: &Tester, ep: &Endpoint, f: &mut Frame, area: Rect) {
    let t = cx.theme;
    let trace_h = (tr.trace.len() as u16 + 2).clamp(4, area.height / 3 + 1);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(trace_h)]).areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(48), Constraint::Percentage(52)]).areas(top);
    // The request.
    let w = left.width.saturating_sub(2) as usize;
    let mut lines = vec![
        field_line(t, "method", &tr.method, tr.focus == 0, "GET", w),
        field_line(t, "path", &tr.path, tr.focus == 1, "/", w),
        field_line(
            t,
            "headers",
            &tr.headers,
            tr.focus == 2,
            "name: value; ...",
            w,
        ),
        field_line(t, "body", &tr.body, tr.focus == 3, "(none)", w),
    ];
    if !tr.vars.is_empty() {
        lines.push(Line::styled("variables", t.accent()));
        for (i, v) in tr.vars.iter().enumerate() {
            let from = match &v.source {
                VarSource::Body => "body".to_string(),
                VarSource::Header(h, _) => format!("header {h}"),
                VarSource::Path => "path".to_string(),
            };
            let to = format!("  → {from}");
            let room = w.saturating_sub(to.chars().count());
            let mut l = field_line(t, &v.name, &v.input, tr.focus == 4 + i, "…", room);
            l.spans.push(Span::styled(to, t.muted()));
            lines.push(l);
        }
    }
    // Who answers, before sending.
    lines.push(Line::raw(""));
    lines.push(match tr.preview(ep, cx.gateway, cx.data) {
        Preview::Unsendable => Line::styled("not a request yet (see the fields)", t.warn()),
        Preview::NoCertificate => Line::styled(
            "⚠ no virtual service has a certificate for this name (the handshake fails)",
            t.warn(),
        ),
        Preview::NoRoute => Line::styled("⚠ no route answers this (404)", t.warn()),
        Preview::Route {
            place,
            shadowed_target: None,
        } => Line::styled(format!("→ route {place} answers"), t.ok()),
        Preview::Route {
            place,
            shadowed_target: Some(target),
        } => Line::styled(
            format!("⚠ route {place} answers, not {target}: an earlier route shadows it"),
            t.warn(),
        ),
    });
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_style(t.border())
                .title(Span::styled(" Request ", t.accent())),
        ),
        left,
    );
    // The response.
    let mut rl: Vec<Line> = Vec::new();
    match &tr.response {
        None if tr.sending => rl.push(Line::styled("sending…", t.muted())),
        None => rl.push(Line::styled("enter sends the request", t.muted())),
        Some(Err(e)) => rl.push(Line::styled(e.clone(), t.error())),
        Some(Ok(r)) => {
            let st = match r.status {
                0..=299 => t.ok(),
                300..=399 => t.accent(),
                400..=499 => t.warn(),
                _ => t.error(),
            };
            rl.push(Line::from(vec![
                Span::styled(format!("{} {}", r.status, r.reason), st),
                Span::styled(
                    format!(
                        " · {} · {} B",
                        if cx.fixed_clock {
                            "—".to_string()
                        } else {
                            super::log::latency(r.elapsed)
                        },
                        r.size
                    ),
                    t.muted(),
                ),
            ]));
            rl.push(Line::styled(
                format!(
                    "received {} UTC ({})",
                    super::log::clock(r.received),
                    crate::tui::data::ago(cx.now, r.received)
                ),
                t.muted(),
            ));
            if let Some(why) = super::credentials::why(r) {
                rl.push(Line::styled(why, t.warn()));
            }
            for (k, v) in r.headers.iter().filter(|(k, _)| k != "date").take(3) {
                rl.push(Line::styled(format!("{k}: {v}"), t.muted()));
            }
            for l in r.body.lines() {
                rl.push(Line::raw(l.to_string()));
            }
        }
    }
    f.render_widget(
        Paragraph::new(rl).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_style(t.border())
                .title(Span::styled(" Response ", t.accent())),
        ),
        right,
    );
    // The trace.
    let tl: Vec<Line> = if tr.trace.is_empty() {
        vec![Line::styled(
            "after a send: which route matched, and why each earlier one did not",
            t.muted(),
        )]
    } else {
        tr.trace
            .iter()
            .map(|x| {
                Line::styled(
                    x.text.clone(),
                    match x.ok {
                        Some(true) => t.ok(),
                        Some(false) => t.warn(),
                        None => Style::default(),
                    },
                )
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(tl).block(
            Block::bordered()
                .border_style(t.border())
                .title(Span::styled(" Match trace ", t.accent())),
        ),
        bottom,
    );
}
