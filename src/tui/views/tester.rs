//! The request tester's view: the request's fields (method, path, headers, body, and one field
//! per variable of a function route), the response, the match trace. What needs no terminal
//! (building the request, the trace and preview, curl, the history and the saved requests,
//! sending) is in `crate::tester`; this is the editing and the drawing.

use super::ViewCtx;
use crate::api::Route;
use crate::gateway::Gateway;
use crate::tester::history::{Collection, History};
use crate::tester::request::{self, Param, VarSource};
pub use crate::tester::send::{Named, Saved, TesterResponse};
use crate::tester::send::{fire, header_map};
use crate::tester::target::{Endpoint, Target};
use crate::tester::trace::trace;
pub use crate::tester::trace::{Preview, Trace};
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
use std::path::Path;

/// A variable of the loaded function route, and its field.
#[derive(Debug, Clone)]
pub struct Var {
    pub param: Param,
    pub input: LineInput,
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
    pub history: History,
    /// The id of the route the request was loaded from (`t` on a route or function): the
    /// tester warns when another route would answer it.
    pub target: Option<String>,
    /// Saved, named requests (`:keep NAME`, `:requests`), kept next to the history.
    pub collection: Collection,
}

impl Tester {
    pub fn new(history_file: Option<&Path>) -> Tester {
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
            history: History::load(history_file),
            collection: Collection::load(history_file),
            target: None,
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
        let dest = r.route_action.as_ref().and_then(|a| a.single.as_ref());
        let up = dest
            .and_then(|d| d.upstream.as_ref())
            .map(|u| u.name.as_str())
            .unwrap_or("");
        let body_vars: Vec<String> = dest
            .and_then(|d| d.function_name())
            .and_then(|f| data.functions(Some(up)).into_iter().find(|x| x.name == f))
            .map(|info| info.params.into_iter().map(|(v, _)| v).collect())
            .unwrap_or_default();
        let plan = request::plan(r, data.upstream(up), &body_vars);
        self.vars = plan
            .params
            .into_iter()
            .map(|param| Var {
                param,
                input: LineInput::default(),
            })
            .collect();
        self.headers.set("");
        self.body.set(plan.body);
        self.response = None;
        self.trace.clear();
        self.method.set(plan.method);
        self.path.set(plan.path);
        // The first thing to fill in: a variable, else a prefilled body (gRPC), else the path.
        self.focus = if !self.vars.is_empty() {
            4
        } else if !self.body.text.is_empty() {
            3
        } else {
            1
        };
    }

    /// The request as it will be sent: variables filled in.
    pub fn composed(&self) -> Saved {
        let vars: Vec<(&Param, &str)> = self
            .vars
            .iter()
            .map(|v| (&v.param, v.input.text.as_str()))
            .collect();
        request::compose(
            &self.method.text,
            &self.path.text,
            &self.headers.text,
            &self.body.text,
            &vars,
        )
    }

    /// The request as a curl command.
    pub fn curl(&self, ep: &Endpoint) -> String {
        crate::tester::curl::curl(&self.composed(), ep)
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
        let (h, at) = self.history.prev()?;
        self.load_saved(&h);
        Some(format!("{} {} ({at})", h.method, h.path))
    }

    /// Keeps the request as it stands under `name` (replacing one of the same name).
    pub fn keep(&mut self, name: &str) -> Result<(), String> {
        let request = self.composed();
        self.collection.keep(name, request)
    }

    /// Drops the saved request `name`.
    pub fn forget(&mut self, name: &str) -> Result<(), String> {
        self.collection.forget(name)
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
        self.history.remember(s.clone());
        self.sending = true;
        self.response = None;
        let body = s.body.clone();
        let ca = ep.ca.clone();
        Ok(fire(method, target, authority, hm, body, ca))
    }

    /// Which route would answer the request as it stands (before sending), and whether it
    /// is not the route the tester was loaded from.
    pub fn preview(&self, ep: &Endpoint, gateway: &Gateway, data: &Data) -> Preview {
        crate::tester::trace::preview(&self.composed(), ep, gateway, data, self.target.as_deref())
    }

    pub fn on_response(&mut self, r: Result<TesterResponse, String>) {
        self.sending = false;
        self.response = Some(r);
    }
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
            let from = match &v.param.source {
                VarSource::Body => "body".to_string(),
                VarSource::Header(h, _) => format!("header {h}"),
                VarSource::Path => "path".to_string(),
            };
            let to = format!("  → {from}");
            let room = w.saturating_sub(to.chars().count());
            let mut l = field_line(t, &v.param.name, &v.input, tr.focus == 4 + i, "…", room);
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
