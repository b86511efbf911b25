//! The console's state and its one update function: every input (a key, a mouse event, a new
//! store listing, a request event, the end of a write) is a `Msg`; `update` changes the state and
//! marks it dirty; `draw` renders it. No terminal here, so tests drive it directly.

use super::action::Action;
pub use super::commands::{COMMANDS, candidates, complete};
use super::data::{Data, route_id};
use super::keymap::{Keymap, Scope};
pub use super::nav::{Page, Target, View};
use super::theme::Theme;
use super::views::editor::Editor;
use super::views::tester::{Tester, TesterResponse};
use super::views::{self, ItemId};
use super::widgets::input::LineInput;
use crate::api::{Kind, Resource, ResourceKey, Route};
use crate::control::reconcile::Report;
use crate::control::routes::{self, Position, RouteEdit, RouteError};
use crate::control::writes;
use crate::discovery::fds::DiscoveryState;
use crate::gateway::Gateway;
use crate::gateway::telemetry::RequestEvent;
use crate::store::{Listing, Store};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Frame;
use ratatui::layout::Rect;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// Everything that can change the console.
#[derive(Debug)]
pub enum Msg {
    Term(Event),
    Listing(Arc<Listing>),
    Report(Arc<Report>),
    Discovery(Arc<DiscoveryState>),
    Request(Box<RequestEvent>),
    /// A write finished: what it was, and the undo of it (or why it was refused).
    Written(Box<Result<Written, Refused>>),
    Response(Box<Result<TesterResponse, String>>),
    Tick,
}

/// A write that went through.
#[derive(Debug)]
pub struct Written {
    pub label: String,
    /// The edit that takes this one back.
    pub inverse: Option<Undo>,
    pub kind: OpKind,
    pub warnings: Vec<String>,
    /// Where the list selection should go afterwards (route index).
    pub select: Option<usize>,
    pub from_editor: bool,
}

/// A write that was refused: why, and, when another writer got there first, what they left.
#[derive(Debug)]
pub struct Refused {
    pub message: String,
    pub from_editor: bool,
    /// The route as the write expected it, and as it is now (None: gone).
    pub conflict: Option<(Route, Option<Route>)>,
}

/// An edit that takes back an earlier one (see `control::routes`: by route identity, so it is
/// refused if someone changed that route since).
#[derive(Debug, Clone)]
pub struct Undo {
    pub vs: ResourceKey,
    pub edit: RouteEdit,
    pub label: String,
}

/// Whether a write is new, an undo or a redo (which stack its inverse goes to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Do,
    Undo,
    Redo,
}

/// What the console runs against.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub gateway: Gateway,
    pub gateway_url: String,
    /// The gateway's TLS listener, when it serves one (the tester's https:// URLs go there).
    pub gateway_tls: Option<std::net::SocketAddr>,
    /// The CA the tester trusts for HTTPS (`--ca FILE`).
    pub tester_ca: Option<Arc<crate::tester::target::TesterCa>>,
    /// `demo` or `dir`.
    pub source: String,
    /// Where the store lives (`dir /home/me/...`).
    pub store_desc: String,
    pub namespace: String,
    pub readonly: bool,
    /// The tester's history file.
    pub history_file: Option<PathBuf>,
    /// A fixed clock, for snapshot tests.
    pub clock: Option<SystemTime>,
}

impl Ctx {
    /// Where the tester sends.
    pub fn endpoint(&self) -> crate::tester::target::Endpoint {
        crate::tester::target::Endpoint {
            url: self.gateway_url.clone(),
            tls: self.gateway_tls,
            ca: self.tester_ca.clone(),
        }
    }

    pub fn now(&self) -> SystemTime {
        self.clock.unwrap_or_else(SystemTime::now)
    }
}

/// A question before something irreversible-ish: apply (with its diff), delete.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<super::widgets::diff::DiffLine>,
    pub op: OnYes,
    pub scroll: usize,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    Command(LineInput),
    Filter(LineInput),
    Confirm(Box<Confirm>),
}

#[derive(Debug, Clone)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub at: SystemTime,
}

/// How long an information message stays (errors stay until dismissed).
pub const INFO_TTL: Duration = Duration::from_secs(6);

/// A route write the console asks for (through `control::routes`, as the CLI's).
#[derive(Debug, Clone)]
pub struct WriteOp {
    /// The message once written; `{i}` becomes the route's index then.
    pub label: String,
    pub vs: ResourceKey,
    pub edit: RouteEdit,
    pub from_editor: bool,
    pub kind: OpKind,
}

/// What `y` does in a confirmation.
#[derive(Debug, Clone)]
pub enum OnYes {
    Write(WriteOp),
    /// Re-apply the editor's edit over the route as another writer left it (None: gone).
    Rebase(Option<Route>),
    /// Leave the editor, dropping its edit.
    Discard,
}

pub struct App {
    pub ctx: Ctx,
    pub data: Data,
    pub theme: Theme,
    pub keymap: Keymap,
    pub stack: Vec<Page>,
    pub mode: Mode,
    pub message: Option<Message>,
    pub editor: Option<Editor>,
    pub tester: Tester,
    pub follow: bool,
    /// Undo and redo stacks (most recent last).
    pub undo: Vec<Undo>,
    pub redo: Vec<Undo>,
    pub quit: bool,
    pub dirty: bool,
    /// The last text copied (as curl); `osc52` is the escape sequence still to write out.
    pub clipboard: Option<String>,
    pub osc52: Option<String>,
    pub command_history: Vec<String>,
    /// Where the list rows were drawn (for mouse clicks).
    pub list_area: Rect,
    pub writes_in_flight: usize,
    /// The list views' derived data (see `views::Cache`).
    pub(crate) cache: views::Cache,
    tx: mpsc::UnboundedSender<Msg>,
}

impl App {
    /// A console on `ctx`; the receiver gets what background work (writes, requests) reports.
    pub fn new(ctx: Ctx, theme: Theme, keymap: Keymap) -> (App, mpsc::UnboundedReceiver<Msg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let tester = Tester::new(ctx.history_file.as_deref());
        let app = App {
            ctx,
            data: Data::default(),
            theme,
            keymap,
            stack: vec![Page::new(View::Upstreams)],
            mode: Mode::Normal,
            message: None,
            editor: None,
            tester,
            follow: true,
            undo: Vec::new(),
            redo: Vec::new(),
            quit: false,
            dirty: true,
            clipboard: None,
            osc52: None,
            command_history: Vec::new(),
            list_area: Rect::default(),
            writes_in_flight: 0,
            cache: views::Cache::default(),
            tx,
        };
        (app, rx)
    }

    pub fn now(&self) -> SystemTime {
        self.ctx.now()
    }

    pub fn page(&self) -> &Page {
        // The stack always holds at least the root page.
        &self.stack[self.stack.len() - 1]
    }

    pub fn page_mut(&mut self) -> &mut Page {
        let n = self.stack.len();
        &mut self.stack[n - 1]
    }

    pub fn view(&self) -> &View {
        &self.page().view
    }

    /// What the views see (see `views::ViewCtx`).
    pub fn view_ctx(&self) -> views::ViewCtx<'_> {
        views::ViewCtx {
            data: &self.data,
            theme: &self.theme,
            cache: &self.cache,
            gateway: &self.ctx.gateway,
            namespace: &self.ctx.namespace,
            readonly: self.ctx.readonly,
            now: self.now(),
            fixed_clock: self.ctx.clock.is_some(),
        }
    }

    /// The current list view's own state.
    pub fn list_ctx(&self) -> views::ListCtx<'_> {
        views::ListCtx {
            page: self.page(),
            follow: self.follow,
            saved: &self.tester.collection.items,
        }
    }

    /// The view help was opened from (help shows its keys).
    pub fn help_under(&self) -> View {
        self.stack
            .iter()
            .rev()
            .map(|p| &p.view)
            .find(|v| **v != View::Help)
            .cloned()
            .unwrap_or(View::Upstreams)
    }

    /// How many rows (or lines) the current view has.
    pub fn item_count(&self) -> usize {
        let cx = self.view_ctx();
        match self.view() {
            View::Help => views::help::lines(&cx, &self.keymap, &self.help_under()).len(),
            View::Function { upstream, name } => {
                views::functions::detail_lines(&cx, upstream, name).len()
            }
            View::Describe { target, yaml } => views::describe::lines(&cx, target, *yaml).len(),
            View::Request { seq } => views::request_lines(&cx, *seq).len(),
            _ => views::list(cx, self.list_ctx()).map_or(0, |l| l.len()),
        }
    }

    /// What the selection of the current view stands for.
    pub fn selected_item(&self) -> Option<ItemId> {
        match self.view() {
            View::Function { upstream, name } => {
                Some(ItemId::Function(upstream.clone(), name.clone()))
            }
            View::Describe { target, .. } => match target {
                Target::Route(id) => {
                    let (vs, i) = self.data.locate(id)?;
                    Some(ItemId::Route(vs, i))
                }
                Target::Resource(k) if k.kind == Kind::Upstream => {
                    Some(ItemId::Upstream(k.name.clone()))
                }
                Target::Resource(k) if k.kind == Kind::VirtualService => {
                    Some(ItemId::Vs(k.clone()))
                }
                Target::Function { upstream, name } => {
                    Some(ItemId::Function(upstream.clone(), name.clone()))
                }
                _ => None,
            },
            View::Request { seq } => Some(ItemId::Event(
                (*seq + self.data.log.len() as u64).checked_sub(self.data.total)? as usize,
            )),
            View::Log if self.follow => {
                // Following: the newest request is the selected one, whatever was drawn last.
                let l = views::list(self.view_ctx(), self.list_ctx())?;
                l.id(l.len().checked_sub(1)?)
            }
            _ => views::list(self.view_ctx(), self.list_ctx())?.id(self.page().selected),
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
            at: self.now(),
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
            at: self.now(),
        });
    }

    /// Whether the loop should tick (something on screen changes with time alone).
    pub fn animating(&self) -> bool {
        let now = self.now();
        self.data.animating(now)
            || self.message.as_ref().is_some_and(|m| {
                !m.error && now.duration_since(m.at).unwrap_or_default() < INFO_TTL
            })
    }

    pub fn push(&mut self, view: View) {
        if self.view() != &view {
            self.stack.push(Page::new(view));
        }
    }

    /// Replaces the stack with a top-level view (command mode, tab).
    pub fn goto(&mut self, view: View) {
        self.stack.truncate(1);
        if self.stack[0].view != view {
            self.stack[0] = Page::new(view);
        }
        if self.stack[0].view != View::Editor {
            self.editor = None;
        }
    }

    pub fn back(&mut self) {
        if !self.page().filter.is_empty() {
            let p = self.page_mut();
            p.filter.clear();
            p.selected = 0;
            return;
        }
        if self.stack.len() > 1 {
            if self.view() == &View::Editor {
                self.editor = None;
            }
            self.stack.pop();
        }
    }

    // ----- messages in -----

    pub fn update(&mut self, msg: Msg) {
        let now = self.now();
        self.data.advance(now);
        match msg {
            Msg::Term(Event::Key(k)) => {
                if k.kind != KeyEventKind::Release {
                    self.dirty = true;
                    self.on_key(k);
                }
            }
            Msg::Term(Event::Mouse(m)) => self.on_mouse(m),
            Msg::Term(Event::Resize(..)) => self.dirty = true,
            Msg::Term(Event::Paste(text)) => {
                self.dirty = true;
                self.on_paste(&text);
            }
            Msg::Term(_) => {}
            Msg::Listing(l) => {
                self.data.set_listing(l);
                if let Some(e) = &mut self.editor {
                    e.revalidate(&self.data);
                }
                self.clamp();
                self.dirty = true;
            }
            Msg::Report(r) => {
                self.data.set_report(r);
                self.dirty = true;
            }
            Msg::Discovery(d) => {
                self.data.set_discovery(d);
                self.dirty = true;
            }
            Msg::Request(e) => {
                self.data.push_event(*e);
                self.dirty = true;
            }
            Msg::Written(r) => {
                self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
                self.on_written(*r);
                self.dirty = true;
            }
            Msg::Response(r) => {
                self.tester.on_response(*r);
                self.dirty = true;
            }
            Msg::Tick => {
                if let Some(m) = &self.message
                    && !m.error
                    && self.now().duration_since(m.at).unwrap_or_default() >= INFO_TTL
                {
                    self.message = None;
                }
                self.dirty = true;
            }
        }
    }

    fn on_written(&mut self, r: Result<Written, Refused>) {
        match r {
            Ok(w) => {
                let mut text = w.label.clone();
                if w.inverse.is_some() {
                    text.push_str(match w.kind {
                        OpKind::Undo => " (U redoes)",
                        _ => " (u undoes)",
                    });
                }
                if !w.warnings.is_empty() {
                    text.push_str(&format!(" · warning: {}", w.warnings.join("; ")));
                }
                if let Some(u) = w.inverse {
                    match w.kind {
                        OpKind::Undo => self.redo.push(u),
                        OpKind::Redo => self.undo.push(u),
                        OpKind::Do => {
                            self.undo.push(u);
                            self.redo.clear();
                        }
                    }
                }
                if w.from_editor && self.view() == &View::Editor {
                    self.editor = None;
                    self.stack.pop();
                }
                if let Some(i) = w.select
                    && matches!(self.view(), View::Routes { .. })
                {
                    self.page_mut().selected = i;
                }
                if w.warnings.is_empty() {
                    self.info(text);
                } else {
                    self.error(text);
                }
            }
            Err(r) => self.on_refused(r),
        }
    }

    /// A refused write: the message; for the editor's own write that lost to another writer,
    /// what changed, and `y` to re-apply the edit (kept as it is) over it.
    fn on_refused(&mut self, r: Refused) {
        let editing = r.from_editor && self.view() == &View::Editor && self.editor.is_some();
        match r.conflict {
            Some((was, now)) if editing => {
                let old = views::editor::route_yaml(&was);
                let new = now
                    .as_ref()
                    .map(views::editor::route_yaml)
                    .unwrap_or_default();
                let title = match &now {
                    Some(_) => "Changed by another writer since you opened it (your edit is kept). Re-apply it over this?".to_string(),
                    None => "Removed or changed by another writer (your edit is kept). Add it as a new route?".to_string(),
                };
                self.mode = Mode::Confirm(Box::new(Confirm {
                    title,
                    lines: super::widgets::diff::diff_lines(&old, &new),
                    op: OnYes::Rebase(now),
                    scroll: 0,
                }));
                self.error(format!("{}; nothing written", r.message));
            }
            _ => self.error(format!("{}; nothing written", r.message)),
        }
    }

    /// A bracketed paste: one event, whatever its size; text goes where typing would.
    fn on_paste(&mut self, text: &str) {
        match &mut self.mode {
            Mode::Command(i) | Mode::Filter(i) => {
                i.paste(text);
                if let Mode::Filter(i) = &self.mode {
                    let t = i.text.clone();
                    let p = self.page_mut();
                    p.filter = t;
                    p.selected = 0;
                    p.offset = 0;
                }
                return;
            }
            Mode::Confirm(_) => return,
            Mode::Normal => {}
        }
        match self.view() {
            View::Editor => {
                if let Some(e) = &mut self.editor {
                    e.paste(text, &self.data);
                }
            }
            View::Tester => self.tester.paste(text),
            _ => {}
        }
    }

    /// Keeps selections inside their lists after the data changed.
    fn clamp(&mut self) {
        let n = self.item_count();
        let p = self.page_mut();
        if n > 0 && p.selected >= n {
            p.selected = n - 1;
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => {
                for _ in 0..3 {
                    self.act(Action::Down);
                }
                self.dirty = true;
            }
            MouseEventKind::ScrollUp => {
                for _ in 0..3 {
                    self.act(Action::Up);
                }
                self.dirty = true;
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let a = self.list_area;
                if m.row >= a.y
                    && m.row < a.y + a.height
                    && m.column >= a.x
                    && m.column < a.x + a.width
                {
                    let i = self.page().offset + (m.row - a.y) as usize;
                    if i < self.item_count() {
                        if self.page().selected == i {
                            self.act(Action::Open);
                        } else {
                            self.page_mut().selected = i;
                        }
                        self.follow = false;
                        self.dirty = true;
                    }
                }
            }
            _ => {}
        }
    }

    fn on_key(&mut self, k: KeyEvent) {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => {}
            Mode::Command(mut input) => {
                match k.code {
                    KeyCode::Esc => {}
                    KeyCode::Enter => {
                        let line = input.text.trim().to_string();
                        if !line.is_empty() {
                            self.command_history.retain(|c| *c != line);
                            self.command_history.push(line.clone());
                        }
                        self.run_command(&line);
                    }
                    KeyCode::Tab => {
                        input.set(complete(&input.text));
                        self.mode = Mode::Command(input);
                    }
                    KeyCode::Up => {
                        let pos = self
                            .command_history
                            .iter()
                            .rposition(|c| *c == input.text)
                            .unwrap_or(self.command_history.len());
                        if pos > 0 {
                            input.set(self.command_history[pos - 1].clone());
                        }
                        self.mode = Mode::Command(input);
                    }
                    _ => {
                        input.handle(&k);
                        self.mode = Mode::Command(input);
                    }
                }
                return;
            }
            Mode::Filter(mut input) => {
                match k.code {
                    KeyCode::Esc => {
                        let p = self.page_mut();
                        p.filter.clear();
                        p.selected = 0;
                    }
                    KeyCode::Enter => {}
                    _ => {
                        input.handle(&k);
                        let p = self.page_mut();
                        p.filter = input.text.clone();
                        p.selected = 0;
                        p.offset = 0;
                        self.mode = Mode::Filter(input);
                    }
                }
                return;
            }
            Mode::Confirm(mut c) => {
                match self.keymap.lookup(&[Scope::Confirm], &k) {
                    Some(Action::Confirm) => match c.op {
                        OnYes::Write(op) => self.spawn_write(op),
                        OnYes::Rebase(now) => {
                            if let Some(e) = &mut self.editor {
                                e.rebase(now, &self.data);
                            }
                            self.apply_editor();
                        }
                        OnYes::Discard => self.discard_edit(),
                    },
                    Some(Action::Cancel) => self.info("cancelled"),
                    _ => {
                        match k.code {
                            KeyCode::Down | KeyCode::Char('j') => c.scroll += 1,
                            KeyCode::Up | KeyCode::Char('k') => {
                                c.scroll = c.scroll.saturating_sub(1)
                            }
                            _ => {}
                        }
                        self.mode = Mode::Confirm(c);
                    }
                }
                return;
            }
        }
        let view = self.view().clone();
        let scopes = view.scopes();
        if view.takes_text() {
            let yaml = self.editor.as_ref().is_some_and(|e| e.yaml_mode());
            let on_choice = self.editor.as_ref().is_some_and(|e| e.on_choice());
            let a = self.keymap.lookup(&scopes, &k).filter(|a| {
                // In YAML mode the textarea keeps its own navigation keys.
                let nav = matches!(
                    a,
                    Action::NextField | Action::PrevField | Action::PickPrev | Action::PickNext
                );
                !(yaml && nav && view == View::Editor)
            });
            if let Some(a) = a {
                self.act(a);
                return;
            }
            // Function keys and ctrl combinations reach the global keys; text goes to the input.
            let special =
                k.modifiers.contains(KeyModifiers::CONTROL) || matches!(k.code, KeyCode::F(_));
            if special && let Some(a) = self.keymap.lookup(&[Scope::Global], &k) {
                self.act(a);
                return;
            }
            if view == View::Editor && on_choice && !yaml {
                match k.code {
                    KeyCode::Left => return self.act(Action::PickPrev),
                    KeyCode::Right | KeyCode::Char(' ') => return self.act(Action::PickNext),
                    _ => {}
                }
            }
            match view {
                View::Editor => {
                    if let Some(e) = &mut self.editor {
                        e.input(&k, &self.data);
                    }
                }
                View::Tester => self.tester.input(&k),
                _ => {}
            }
            return;
        }
        if let Some(a) = self.keymap.lookup(&scopes, &k) {
            self.act(a);
        }
    }

    pub fn run_command(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return };
        let arg = words.next();
        let Some((name, _, _)) = COMMANDS
            .iter()
            .find(|(n, aliases, _)| *n == cmd || aliases.contains(&cmd))
        else {
            self.error(format!(
                "unknown command `{cmd}` (tab completes; :help lists them)"
            ));
            return;
        };
        // Commands that leave the editor's page (the stack is replaced) would drop its edit.
        let navigates = !matches!(*name, "help" | "save" | "theme" | "quit" | "keep");
        if navigates && self.editor.as_ref().is_some_and(|e| e.edited()) {
            self.error("the editor has an unapplied edit: ctrl-s applies it, esc drops it");
            return;
        }
        match *name {
            "upstreams" => self.goto(View::Upstreams),
            "functions" => self.goto(View::Functions { upstream: None }),
            "virtualservices" => self.goto(View::VirtualServices),
            "routes" => {
                let vs = match arg {
                    Some(n) => ResourceKey::new(Kind::VirtualService, &self.ctx.namespace, n),
                    None => self.default_vs(),
                };
                self.goto(View::Routes { vs });
            }
            "test" => self.goto(View::Tester),
            "log" => self.goto(View::Log),
            "discovery" => self.goto(View::Discovery),
            "help" => self.push(View::Help),
            "save" => self.save_log(arg),
            "namespace" => self.switch_namespace(arg),
            "keep" => {
                let name = line
                    .split_once(char::is_whitespace)
                    .map(|x| x.1)
                    .unwrap_or("");
                match self.tester.keep(name) {
                    Ok(()) => self.info(format!(
                        "kept as `{}` ({} saved: :requests)",
                        name.trim(),
                        self.tester.collection.items.len()
                    )),
                    Err(e) => self.error(e),
                }
            }
            "auth" => self.tester_auth(line),
            "requests" => self.goto(View::Saved),
            "theme" => match arg.map(Theme::load) {
                Some(Ok(t)) => {
                    let color = self.theme.color;
                    self.theme = if color { t } else { t.without_color() };
                    self.info(format!("theme {}", self.theme.name));
                }
                Some(Err(e)) => self.error(e),
                None => self.info(format!("themes: {}", Theme::names().join(", "))),
            },
            "quit" => self.quit = true,
            _ => {}
        }
    }

    /// `:auth ...`: credentials into the tester's headers field, then the tester.
    fn tester_auth(&mut self, line: &str) {
        let spec = line.split_once(char::is_whitespace).map_or("", |x| x.1);
        match views::credentials::attach(&self.tester.headers.text, spec) {
            Ok((headers, said)) => {
                self.tester.headers.set(headers);
                if self.view() != &View::Tester {
                    self.goto(View::Tester);
                }
                self.info(format!("{said} (the tester's headers)"));
            }
            Err(e) => self.error(e),
        }
    }

    /// The virtual service route commands act on: the first serving `*` in the namespace.
    pub fn default_vs(&self) -> ResourceKey {
        let ns = &self.ctx.namespace;
        let name = self
            .data
            .virtual_services()
            .find(|r| match r {
                Resource::VirtualService(vs) => {
                    r.namespace() == ns
                        && (vs.spec.virtual_host.domains.is_empty()
                            || vs.spec.virtual_host.domains.iter().any(|d| d == "*"))
                }
                _ => false,
            })
            .map(|r| r.name().to_string())
            .or_else(|| {
                self.data
                    .virtual_services()
                    .find(|r| r.namespace() == self.ctx.namespace)
                    .map(|r| r.name().to_string())
            })
            .unwrap_or_else(|| "default".into());
        ResourceKey::new(Kind::VirtualService, &self.ctx.namespace, name)
    }

    /// Does what an action asks, in the current view.
    pub fn act(&mut self, a: Action) {
        self.dirty = true;
        if a.writes() && self.ctx.readonly {
            self.error("read-only console (--readonly): writes are disabled");
            return;
        }
        let view = self.view().clone();
        match a {
            Action::Quit => self.quit = true,
            Action::Back => {
                // A text view at the root has nowhere to go back to: leave it for the upstreams.
                if view.takes_text() && self.stack.len() == 1 {
                    self.goto(View::Upstreams);
                    return;
                }
                self.back()
            }
            Action::Help => self.push(View::Help),
            Action::Command => self.mode = Mode::Command(LineInput::default()),
            Action::Filter => {
                if views::is_list(&view) {
                    self.mode = Mode::Filter(LineInput::new(self.page().filter.clone()));
                }
            }
            Action::Dismiss => self.message = None,
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => self.move_selection(a),
            Action::NextPane => {
                let next = match view {
                    View::Upstreams => View::Functions { upstream: None },
                    View::Functions { .. } | View::Function { .. } => View::VirtualServices,
                    View::VirtualServices => View::Routes {
                        vs: self.default_vs(),
                    },
                    View::Routes { .. } => View::Tester,
                    View::Tester => View::Log,
                    View::Log => View::Discovery,
                    _ => View::Upstreams,
                };
                self.goto(next);
            }
            Action::Open => self.open(),
            Action::Test => self.test_selected(),
            Action::Edit => {
                if let Some(ItemId::Route(vs, i)) = self.selected_item()
                    && let Some(r) = self.data.routes_ref(&vs).get(i).cloned()
                {
                    self.editor = Some(Editor::new(vs, Some(i), Some(r), &self.data));
                    self.push(View::Editor);
                }
            }
            Action::New => {
                let vs = match &view {
                    View::Routes { vs } => vs.clone(),
                    _ => self.default_vs(),
                };
                let n = self.data.routes_ref(&vs).len();
                let at = if n == 0 {
                    0
                } else {
                    (self.page().selected + 1).min(n)
                };
                self.editor = Some(Editor::new_at(vs, at, None, &self.data));
                self.push(View::Editor);
            }
            Action::RouteTo => {
                if let Some(ItemId::Function(up, name)) = self.selected_item() {
                    let vs = self.default_vs();
                    let n = self.data.routes_ref(&vs).len();
                    let mut e = Editor::new_at(vs, n, None, &self.data);
                    e.anchor = Position::Last;
                    e.prefill_function(&up, &name, &self.data);
                    self.editor = Some(e);
                    self.push(View::Editor);
                }
            }
            Action::Delete if view == View::Saved => {
                if let Some(ItemId::Saved(i)) = self.selected_item()
                    && let Some(n) = self.tester.collection.items.get(i).cloned()
                {
                    match self.tester.forget(&n.name) {
                        Ok(()) => {
                            self.info(format!("`{}` dropped from the saved requests", n.name))
                        }
                        Err(e) => self.error(e),
                    }
                    self.clamp();
                }
            }
            Action::Delete => {
                if let Some(ItemId::Route(vs, i)) = self.selected_item()
                    && let Some(r) = self.data.routes_ref(&vs).get(i).cloned()
                {
                    let old = views::editor::route_yaml(&r);
                    let what = routes::label(&r);
                    self.mode = Mode::Confirm(Box::new(Confirm {
                        title: format!("Delete route #{i} of {}? ({what})", vs.name),
                        lines: super::widgets::diff::diff_lines(&old, ""),
                        op: OnYes::Write(WriteOp {
                            label: format!("route #{{i}} ({what}) of {vs} deleted"),
                            vs,
                            edit: RouteEdit::Delete { route: Box::new(r) },
                            from_editor: false,
                            kind: OpKind::Do,
                        }),
                        scroll: 0,
                    }));
                }
            }
            Action::MoveUp | Action::MoveDown => {
                if let Some(ItemId::Route(vs, i)) = self.selected_item() {
                    let routes = self.data.routes_ref(&vs);
                    let to = if a == Action::MoveUp {
                        i.checked_sub(1)
                            .and_then(|j| routes.get(j))
                            .map(|n| Position::Before(Box::new(n.clone())))
                    } else {
                        routes
                            .get(i + 1)
                            .map(|n| Position::After(Box::new(n.clone())))
                    };
                    if let (Some(to), Some(r)) = (to, routes.get(i).cloned()) {
                        let what = routes::label(&r);
                        self.spawn_write(WriteOp {
                            label: format!("route #{i} ({what}) of {} moved to #{{i}}", vs.name),
                            vs,
                            edit: RouteEdit::Move {
                                route: Box::new(r),
                                to,
                            },
                            from_editor: false,
                            kind: OpKind::Do,
                        });
                    }
                }
            }
            Action::Undo | Action::Redo => {
                let (stack, kind, word) = if a == Action::Undo {
                    (&mut self.undo, OpKind::Undo, "undone")
                } else {
                    (&mut self.redo, OpKind::Redo, "redone")
                };
                match stack.pop() {
                    Some(u) => self.spawn_write(WriteOp {
                        label: format!("{word}: {}", u.label),
                        vs: u.vs,
                        edit: u.edit,
                        from_editor: false,
                        kind,
                    }),
                    None => self.info(format!("nothing to {}", &word[..4])),
                }
            }
            Action::Apply => self.apply_editor(),
            Action::ToggleYaml
            | Action::NextField
            | Action::PrevField
            | Action::PickPrev
            | Action::PickNext => {
                if view == View::Editor {
                    if let Some(e) = &mut self.editor
                        && let Err(m) = e.action(a, &self.data)
                    {
                        self.error(m);
                    }
                } else if view == View::Tester {
                    self.tester.action(a);
                }
            }
            Action::Cancel => {
                if view == View::Editor {
                    // An edit that changes something is not dropped without asking.
                    let lines = self
                        .editor
                        .as_ref()
                        .map(|e| e.diff(&self.data))
                        .unwrap_or_default();
                    if self.editor.as_ref().is_some_and(|e| e.edited()) {
                        self.mode = Mode::Confirm(Box::new(Confirm {
                            title: "Discard your edit? Nothing is written.".into(),
                            lines,
                            op: OnYes::Discard,
                            scroll: 0,
                        }));
                    } else {
                        self.discard_edit();
                    }
                }
            }
            Action::Send => {
                if view == View::Tester {
                    let ep = self.ctx.endpoint();
                    match self.tester.send(&ep, &self.ctx.gateway, &self.data) {
                        Ok(request) => {
                            let tx = self.tx.clone();
                            tokio::spawn(async move {
                                let r = request.await;
                                let _ = tx.send(Msg::Response(Box::new(r)));
                            });
                        }
                        Err(e) => self.error(e),
                    }
                }
            }
            Action::CopyCurl => {
                if view == View::Tester {
                    let curl = self.tester.curl(&self.ctx.endpoint());
                    self.osc52 = Some(osc52(&curl));
                    self.clipboard = Some(curl);
                    self.info("copied the request as curl (OSC 52)");
                }
            }
            Action::History => {
                if view == View::Tester {
                    match self.tester.history_prev() {
                        Some(n) => self.info(format!("history: {n}")),
                        None => self.info("no history yet"),
                    }
                }
            }
            Action::Follow => {
                if view == View::Log {
                    self.follow = !self.follow;
                    let n = self.item_count();
                    if self.follow && n > 0 {
                        self.page_mut().selected = n - 1;
                    }
                    self.info(if self.follow { "following" } else { "paused" });
                }
            }
            Action::Confirm => {}
            Action::Describe | Action::Yaml => self.describe(a == Action::Yaml),
            Action::Save => self.save_log(None),
            Action::GotoRoute => {
                let route = match &view {
                    View::Request { seq } => self.data.event(*seq).and_then(|e| e.route.clone()),
                    _ => None,
                };
                match route.and_then(|id| self.data.locate(&id)) {
                    Some((vs, i)) => {
                        self.push(View::Routes { vs });
                        self.page_mut().selected = i;
                    }
                    None => self.info("this request's route is gone (or none matched)"),
                }
            }
        }
    }

    /// `d` and `y`: the selected item described, or as YAML; in the describe view, `y` switches.
    fn describe(&mut self, yaml: bool) {
        if let View::Describe { target, yaml: was } = self.view().clone() {
            let yaml = if yaml { !was } else { false };
            self.page_mut().view = View::Describe { target, yaml };
            return;
        }
        let target = match self.selected_item() {
            Some(ItemId::Upstream(u)) | Some(ItemId::Discovery(u)) => self
                .data
                .upstream(&u)
                .map(|x| {
                    ResourceKey::new(
                        Kind::Upstream,
                        x.metadata.namespace.clone().unwrap_or_default(),
                        &x.metadata.name,
                    )
                })
                .map(Target::Resource),
            Some(ItemId::Vs(k)) => Some(Target::Resource(k)),
            Some(ItemId::Route(vs, i)) => self
                .data
                .routes_ref(&vs)
                .get(i)
                .map(|r| Target::Route(route_id(&vs, r))),
            Some(ItemId::Function(upstream, name)) => {
                if !yaml {
                    // A function's description is its details view.
                    self.push(View::Function { upstream, name });
                    return;
                }
                Some(Target::Function { upstream, name })
            }
            _ => None,
        };
        if let Some(target) = target {
            self.push(View::Describe { target, yaml });
        }
    }

    /// `:ns NAME`: the namespace the console writes to and `:routes` reads; `:ns` lists the
    /// namespaces of the store.
    fn switch_namespace(&mut self, name: Option<&str>) {
        let mut known: Vec<&str> = self
            .data
            .listing
            .resources
            .keys()
            .map(|k| k.namespace.as_str())
            .collect();
        known.dedup();
        known.sort_unstable();
        known.dedup();
        match name {
            None => self.info(format!(
                "namespace {} · in the store: {}",
                self.ctx.namespace,
                known.join(", ")
            )),
            Some(n) => {
                if let Some(why) = crate::api::naming::namespace_problem(n) {
                    self.error(format!("namespace `{n}`: {why}"));
                    return;
                }
                self.ctx.namespace = n.to_string();
                let note = if known.contains(&n) {
                    ""
                } else {
                    " (nothing there yet: the first route you add creates its virtual service)"
                };
                self.info(format!("namespace {n}{note}"));
                if matches!(self.view(), View::Routes { .. }) {
                    let vs = self.default_vs();
                    self.goto(View::Routes { vs });
                }
            }
        }
    }

    /// Writes the access log (JSON lines, credentials hidden) to `path`, else to a new file
    /// in the current directory.
    fn save_log(&mut self, path: Option<&str>) {
        let path = match path {
            Some(p) => PathBuf::from(p),
            None => {
                let stamp = crate::api::time::rfc3339(self.now()).replace(':', "");
                PathBuf::from(format!("epoxy-access-{stamp}.jsonl"))
            }
        };
        let text = views::request::export(self.data.log.iter());
        match std::fs::write(&path, text) {
            Ok(()) => self.info(format!(
                "saved {} requests to {}",
                self.data.log.len(),
                path.display()
            )),
            Err(e) => self.error(format!("cannot save the log to {}: {e}", path.display())),
        }
    }

    fn move_selection(&mut self, a: Action) {
        let n = self.item_count();
        let page = self.list_area.height.max(1) as usize;
        let view = self.view().clone();
        let p = self.page_mut();
        let max = n.saturating_sub(1);
        p.selected = match a {
            Action::Up => p.selected.saturating_sub(1),
            Action::Down => (p.selected + 1).min(max),
            Action::Top => 0,
            Action::Bottom => max,
            Action::PageUp => p.selected.saturating_sub(page),
            Action::PageDown => (p.selected + page).min(max),
            _ => p.selected,
        };
        if view == View::Log {
            self.follow = a == Action::Bottom || (a == Action::Down && self.page().selected == max);
        }
    }

    fn open(&mut self) {
        match self.selected_item() {
            Some(ItemId::Upstream(u)) => self.push(View::Functions { upstream: Some(u) }),
            Some(ItemId::Function(upstream, name)) => self.push(View::Function { upstream, name }),
            Some(ItemId::Vs(vs)) => self.push(View::Routes { vs }),
            Some(ItemId::Route(..)) => self.act(Action::Edit),
            Some(ItemId::Discovery(u)) => self.push(View::Functions { upstream: Some(u) }),
            Some(ItemId::Saved(i)) => {
                if let Some(n) = self.tester.collection.items.get(i).cloned() {
                    self.tester.load_saved(&n.request);
                    self.push(View::Tester);
                    self.info(format!("{}: enter sends it", n.name));
                }
            }
            Some(ItemId::Event(i)) => {
                let seq = self.data.seq_of(i);
                self.follow = false;
                self.push(View::Request { seq });
            }
            _ => {}
        }
    }

    fn test_selected(&mut self) {
        let replay = match self.view() {
            View::Request { seq } => Some(*seq),
            View::Log => match self.selected_item() {
                Some(ItemId::Event(i)) => Some(self.data.seq_of(i)),
                _ => None,
            },
            _ => None,
        };
        if let Some(seq) = replay {
            match self.data.event(seq).map(crate::tester::request::replay) {
                Some(s) => {
                    self.tester.load_saved(&s);
                    self.push(View::Tester);
                    self.info(format!("{} {}: enter sends it again", s.method, s.path));
                }
                None => self.info("this request has left the log"),
            }
            return;
        }
        match self.selected_item() {
            Some(ItemId::Route(vs, i)) => {
                if let Some(r) = self.data.routes_ref(&vs).get(i).cloned() {
                    self.tester.load_route(&r, &self.data);
                    self.tester.target = Some(route_id(&vs, &r));
                    self.push(View::Tester);
                }
            }
            Some(ItemId::Function(up, name)) => self.test_function(&up, &name),
            Some(ItemId::Upstream(up)) => {
                match self
                    .data
                    .functions(Some(&up))
                    .first()
                    .map(|f| f.name.clone())
                {
                    Some(name) => self.test_function(&up, &name),
                    None => self.info(format!(
                        "{up} has no functions; t works on a route or a function"
                    )),
                }
            }
            _ => {}
        }
    }

    /// The tester, loaded with a route that reaches the function.
    pub fn test_function(&mut self, up: &str, name: &str) {
        let found = self.data.virtual_services().find_map(|vs| {
            let key = vs.key();
            vs.routes()?
                .iter()
                .find(|r| {
                    r.route_action
                        .as_ref()
                        .and_then(|a| a.single.as_ref())
                        .is_some_and(|d| {
                            d.function_name() == Some(name)
                                && d.upstream.as_ref().is_some_and(|u| u.name == up)
                        })
                })
                .map(|r| (key, r.clone()))
        });
        match found {
            Some((key, r)) => {
                self.tester.load_route(&r, &self.data);
                self.tester.target = Some(route_id(&key, &r));
                self.push(View::Tester);
                self.info(format!("fill the variables of {name}, then enter sends"));
            }
            None => self.info(format!(
                "no route reaches {name} yet: press r on it to create one, then t to call it"
            )),
        }
    }

    fn discard_edit(&mut self) {
        self.editor = None;
        self.back();
        self.info("edit cancelled; nothing written");
    }

    fn apply_editor(&mut self) {
        let Some(e) = &self.editor else { return };
        let route = match e.final_route(&self.data) {
            Ok(r) => r,
            Err(err) => {
                self.error(format!("not applied: {err}"));
                return;
            }
        };
        if let Some(p) = e.problems.first() {
            self.error(format!("not applied: {p}"));
            return;
        }
        let vs = e.vs.clone();
        let old = e
            .original
            .as_ref()
            .map(views::editor::route_yaml)
            .unwrap_or_default();
        // The diff is of the route exactly as the write will store it.
        let lines = super::widgets::diff::diff_lines(&old, &views::editor::route_yaml(&route));
        if !super::widgets::diff::changes(&lines) {
            self.info("no change to apply");
            return;
        }
        let (edit, title, verb) = match &e.original {
            Some(old) => (
                RouteEdit::Replace {
                    old: Box::new(old.clone()),
                    new: Box::new(route),
                },
                format!("Apply route #{} to {}?", e.index.unwrap_or(0), vs.name),
                "changed",
            ),
            None => (
                RouteEdit::Insert {
                    route: Box::new(route),
                    at: e.anchor.clone(),
                },
                format!("Apply route #{} to {}?", e.insert_at, vs.name),
                "added",
            ),
        };
        self.mode = Mode::Confirm(Box::new(Confirm {
            title,
            lines,
            op: OnYes::Write(WriteOp {
                label: format!("route #{{i}} {verb} in {vs}; live now"),
                vs,
                edit,
                from_editor: true,
                kind: OpKind::Do,
            }),
            scroll: 0,
        }));
    }

    /// Runs a write in the background; its end comes back as `Msg::Written`.
    pub fn spawn_write(&mut self, op: WriteOp) {
        if self.ctx.readonly {
            self.error("read-only console (--readonly): writes are disabled");
            return;
        }
        self.writes_in_flight += 1;
        let store = self.ctx.store.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let r = do_write(store.as_ref(), op).await;
            let _ = tx.send(Msg::Written(Box::new(r)));
        });
    }

    // ----- drawing -----

    pub fn draw(&mut self, f: &mut Frame) {
        let now = self.now();
        self.data.advance(now);
        super::frame::draw(self, f);
    }
}

async fn do_write(store: &dyn Store, op: WriteOp) -> Result<Written, Refused> {
    let create = matches!(op.edit, RouteEdit::Insert { .. });
    match routes::apply(store, &op.vs, &op.edit, create).await {
        Ok(a) => {
            let label = op.label.replace("{i}", &a.index.to_string());
            let select = match op.edit {
                RouteEdit::Delete { .. } => a.index.saturating_sub(1),
                _ => a.index,
            };
            Ok(Written {
                inverse: a.inverse.map(|edit| Undo {
                    vs: op.vs.clone(),
                    edit,
                    label: label.clone(),
                }),
                label,
                kind: op.kind,
                warnings: a.written.warnings.iter().map(|p| p.to_string()).collect(),
                select: Some(select),
                from_editor: op.from_editor,
            })
        }
        Err(e) => {
            let message = match &e {
                RouteError::Write(writes::WriteError::Invalid(p)) => format!(
                    "refused: {}",
                    p.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                e => format!("refused: {e}"),
            };
            let conflict = match e {
                RouteError::Changed { was, now } => Some((*was, Some(*now))),
                RouteError::Gone { was } => Some((*was, None)),
                _ => None,
            };
            Err(Refused {
                message,
                from_editor: op.from_editor,
                conflict,
            })
        }
    }
}

/// The OSC 52 sequence that puts `text` on the terminal's clipboard (its payload base64).
pub fn osc52(text: &str) -> String {
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{payload}\x07")
}

#[cfg(test)]
mod tests {
    #[test]
    fn osc52_carries_the_text_in_base64() {
        assert_eq!(super::osc52("foobar"), "\x1b]52;c;Zm9vYmFy\x07");
        assert_eq!(super::osc52("fo"), "\x1b]52;c;Zm8=\x07");
    }
}
