//! The route editor: a form (path matcher, methods, headers, upstream and function pickers fed
//! by discovery, parameters, prefix rewrite) or the route's YAML (ratatui-textarea). Every edit
//! is validated against the whole store as you type; the error shows at its line. The preview
//! shows the diff that apply (ctrl-s) will write.

use crate::api::{
    AwsDestination, Destination, DestinationSpec, FunctionKind, GrpcDestination, HeaderMatcher,
    Kind, Matcher, Object, Parameters, PathMatch, Resource, ResourceKey, ResourceRef,
    RestDestination, Route, RouteOptions, Severity, VirtualHost, VirtualServiceSpec, validate,
};
use crate::control::routes::{Position, RouteError, fresh_name, locate};
use crate::tui::action::Action;
use crate::tui::data::Data;
use crate::tui::theme::Theme;
use crate::tui::widgets::diff::{DiffLine, diff_lines};
use crate::tui::widgets::input::LineInput;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui_textarea::TextArea;
use std::collections::HashSet;

pub const MATCH_KINDS: [&str; 3] = ["prefix", "exact", "regex"];
const NONE: &str = "—";

#[derive(Debug, Clone)]
pub enum FieldKind {
    Text(LineInput),
    Choice { options: Vec<String>, idx: usize },
}

#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub kind: FieldKind,
    pub hint: &'static str,
}

impl Field {
    fn text(label: &'static str, v: String, hint: &'static str) -> Field {
        Field {
            label,
            kind: FieldKind::Text(LineInput::new(v)),
            hint,
        }
    }
    fn choice(label: &'static str, options: Vec<String>, value: &str) -> Field {
        let idx = options.iter().position(|o| o == value).unwrap_or(0);
        Field {
            label,
            kind: FieldKind::Choice { options, idx },
            hint: "",
        }
    }
    pub fn value(&self) -> String {
        match &self.kind {
            FieldKind::Text(i) => i.text.clone(),
            FieldKind::Choice { options, idx } => options.get(*idx).cloned().unwrap_or_default(),
        }
    }
}

const F_KIND: usize = 0;
const F_PATH: usize = 1;
const F_METHODS: usize = 2;
const F_HEADERS: usize = 3;
const F_UPSTREAM: usize = 4;
const F_FUNCTION: usize = 5;
const F_PARAMS: usize = 6;
const F_REWRITE: usize = 7;

pub struct Editor {
    pub vs: ResourceKey,
    /// The route being edited (None: a new one, inserted at `insert_at`).
    pub index: Option<usize>,
    pub insert_at: usize,
    /// Where a new route goes, by its neighbour as read (the list may shift meanwhile).
    pub anchor: Position,
    /// The route as read from the store: what the diff starts from and what the write
    /// expects to find (by name or content). None for a new route.
    pub original: Option<Route>,
    /// What the form edits on top of: the original, or the YAML last switched back from
    /// (fields the form does not show are kept from it).
    template: Option<Route>,
    yaml: bool,
    pub textarea: TextArea<'static>,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// Errors of the edit as it stands (nothing can be applied while there are any).
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    /// The YAML line of the first problem (1-based), when known.
    pub error_line: Option<usize>,
    /// The route as the editor opened (what `esc` compares with before asking).
    pristine: String,
    /// The function choices' kinds and gRPC paths, beside their names (a function's kind says
    /// which `destinationSpec` routes to it).
    function_kinds: Vec<(FunctionKind, String)>,
}

/// The route as YAML, as the editor shows it.
pub fn route_yaml(r: &Route) -> String {
    crate::api::codec::to_yaml(&serde_json::to_value(r).unwrap_or_default())
}

/// Reads a route from YAML; the error carries its line when it can be found.
pub fn parse_route(text: &str) -> Result<(Route, Vec<String>), (Option<usize>, String)> {
    let values = crate::api::parse::parse_values(text, "route").map_err(|e| (e.line, e.reason))?;
    let v = match values.len() {
        0 => {
            return Err((
                Some(1),
                "empty: a route needs at least matchers or an action".into(),
            ));
        }
        1 => values
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or_default(),
        n => return Err((None, format!("one route, please (found {n} documents)"))),
    };
    if !v.is_object() {
        return Err((
            Some(1),
            "a route is a mapping (matchers:, routeAction:, ...)".into(),
        ));
    }
    let (r, unknown) =
        crate::api::collect_unmodelled(|| serde_path_to_error::deserialize::<_, Route>(v));
    match r {
        Ok(r) => Ok((r, unknown)),
        Err(e) => {
            let path = e.path().to_string();
            Err((line_of_path(text, &path), format!("{path}: {}", e.inner())))
        }
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else { break };
                if let Ok(n) = r[..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &r[end + 1..];
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// The 1-based line of a field path (`matchers[0].regex`) in a YAML text, as close as it gets.
pub fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    // Keys inside the current node have an indent above this.
    let mut floor: isize = -1;
    let mut best = None;
    for seg in segments(path) {
        match seg {
            Seg::Key(k) => {
                let mut found = None;
                for (i, l) in lines.iter().enumerate().skip(start) {
                    let ind = indent(l) as isize;
                    let t = l.trim_start();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    if i > start && ind <= floor && !t.starts_with("- ") {
                        break;
                    }
                    let (t, ind) = match t.strip_prefix("- ") {
                        Some(r) => (r.trim_start(), ind + 2),
                        None => (t, ind),
                    };
                    if ind > floor
                        && (t.starts_with(&format!("{k}:")) || t.starts_with(&format!("\"{k}\":")))
                    {
                        found = Some((i, ind));
                        break;
                    }
                }
                let (i, ind) = found?;
                best = Some(i + 1);
                start = i + 1;
                floor = ind;
            }
            Seg::Index(n) => {
                let mut seen = 0;
                let mut found = None;
                for (i, l) in lines.iter().enumerate().skip(start) {
                    let t = l.trim_start();
                    let ind = indent(l) as isize;
                    if t.is_empty() {
                        continue;
                    }
                    if ind < floor || (ind == floor && !t.starts_with("- ")) {
                        break;
                    }
                    if t.starts_with("- ") || t == "-" {
                        if seen == n {
                            found = Some((i, ind));
                            break;
                        }
                        seen += 1;
                    }
                }
                let Some((i, ind)) = found else { return best };
                best = Some(i + 1);
                // The item's own keys: on its line after `- `, and below, indented past the dash.
                start = i;
                floor = ind + 1;
            }
        }
    }
    best
}

fn parse_list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

impl Editor {
    pub fn new(vs: ResourceKey, index: Option<usize>, route: Option<Route>, data: &Data) -> Editor {
        let mut e = Editor {
            insert_at: index.unwrap_or(0),
            anchor: Position::Last,
            vs,
            index,
            original: route.clone(),
            template: route.clone(),
            yaml: false,
            textarea: TextArea::default(),
            fields: Vec::new(),
            focus: F_PATH,
            problems: Vec::new(),
            warnings: Vec::new(),
            error_line: None,
            pristine: String::new(),
            function_kinds: Vec::new(),
        };
        let r = route.unwrap_or_else(|| Route {
            matchers: vec![Matcher {
                prefix: Some("/".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        e.load_form(&r, data);
        e.set_yaml_text(&route_yaml(&r));
        e.revalidate(data);
        e.pristine = e.route().map(|r| route_yaml(&r)).unwrap_or_default();
        e
    }

    /// Whether leaving now would lose something typed.
    pub fn edited(&self) -> bool {
        let text = self.textarea.lines().join("\n");
        self.route().map(|r| route_yaml(&r)) != Ok(self.pristine.clone())
            || (self.yaml && text.trim_end() != self.pristine.trim_end())
    }

    /// A new route, inserted at `at` (after the route that is at `at - 1` now).
    pub fn new_at(vs: ResourceKey, at: usize, route: Option<Route>, data: &Data) -> Editor {
        let routes = data.routes_ref(&vs);
        let anchor = match at.checked_sub(1).and_then(|p| routes.get(p)) {
            Some(prev) => Position::After(Box::new(prev.clone())),
            None if routes.is_empty() || at > 0 => Position::Last,
            None => Position::First,
        };
        let mut e = Editor::new(vs, None, route, data);
        e.insert_at = at;
        e.anchor = anchor;
        e
    }

    /// Starts over from `now`, the route as another writer left it (None: it is gone, and
    /// the edit becomes a new route); the edit itself is kept.
    pub fn rebase(&mut self, now: Option<Route>, data: &Data) {
        if now.is_none() && self.original.is_some() {
            self.anchor = match self.index.and_then(|i| i.checked_sub(1)) {
                Some(p) => match data.routes_ref(&self.vs).get(p) {
                    Some(prev) => Position::After(Box::new(prev.clone())),
                    None => Position::Last,
                },
                None => Position::First,
            };
            self.insert_at = self.index.unwrap_or(0);
            self.index = None;
        }
        self.original = now;
        self.revalidate(data);
    }

    pub fn yaml_mode(&self) -> bool {
        self.yaml
    }

    pub fn on_choice(&self) -> bool {
        matches!(
            self.fields.get(self.focus).map(|f| &f.kind),
            Some(FieldKind::Choice { .. })
        )
    }

    /// Starts from a function: upstream and function picked, a path to match suggested.
    pub fn prefill_function(&mut self, upstream: &str, function: &str, data: &Data) {
        self.set_choice(F_UPSTREAM, upstream, data);
        self.set_choice(F_FUNCTION, function, data);
        self.set_text(F_KIND, "");
        if let FieldKind::Choice { idx, .. } = &mut self.fields[F_KIND].kind {
            *idx = 1;
        }
        let short = upstream.split('-').nth(1).unwrap_or(upstream);
        self.set_text(F_PATH, &format!("/{short}/{function}"));
        self.sync_yaml_from_form();
        self.revalidate(data);
        self.pristine = self.route().map(|r| route_yaml(&r)).unwrap_or_default();
    }

    fn set_text(&mut self, f: usize, v: &str) {
        if let FieldKind::Text(i) = &mut self.fields[f].kind {
            i.set(v);
        }
    }

    fn set_choice(&mut self, f: usize, v: &str, data: &Data) {
        if f == F_FUNCTION {
            self.refresh_functions(data);
        }
        if let FieldKind::Choice { options, idx } = &mut self.fields[f].kind
            && let Some(p) = options.iter().position(|o| o == v)
        {
            *idx = p;
        }
        if f == F_UPSTREAM {
            self.refresh_functions(data);
        }
    }

    fn upstream_options(data: &Data) -> Vec<String> {
        std::iter::once(NONE.to_string())
            .chain(data.upstreams().map(|u| u.metadata.name.clone()))
            .collect()
    }

    fn refresh_functions(&mut self, data: &Data) {
        let up = self.fields[F_UPSTREAM].value();
        let current = self.fields[F_FUNCTION].value();
        let found = data.functions(Some(&up));
        self.function_kinds = found.iter().map(|f| (f.kind, f.path.clone())).collect();
        let options: Vec<String> = std::iter::once(NONE.to_string())
            .chain(found.into_iter().map(|f| f.name))
            .collect();
        let idx = options.iter().position(|o| *o == current).unwrap_or(0);
        self.fields[F_FUNCTION].kind = FieldKind::Choice { options, idx };
    }

    fn load_form(&mut self, r: &Route, data: &Data) {
        let m = r.matchers.first().cloned().unwrap_or_default();
        let (kind, path) = match m.path() {
            PathMatch::Prefix(p) => ("prefix", p.to_string()),
            PathMatch::Exact(p) => ("exact", p.to_string()),
            PathMatch::Regex(p) => ("regex", p.to_string()),
        };
        let headers = m
            .headers
            .iter()
            .map(|h| match &h.value {
                Some(v) => format!("{}={v}", h.name),
                None => h.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let single = r.route_action.as_ref().and_then(|a| a.single.as_ref());
        let upstream = single
            .and_then(|d| d.upstream.as_ref())
            .map(|u| u.name.clone())
            .unwrap_or_else(|| NONE.into());
        let spec = single.and_then(|d| d.destination_spec.as_ref());
        let rest = spec.and_then(|s| s.rest.as_ref());
        let grpc = spec.and_then(|s| s.grpc.as_ref());
        let function = rest
            .map(|r| r.function_name.clone())
            .or_else(|| grpc.map(|g| g.function.clone()))
            .or_else(|| {
                spec.and_then(|s| s.aws.as_ref())
                    .map(|a| a.logical_name.clone())
            })
            .unwrap_or_else(|| NONE.into());
        let params = rest
            .and_then(|r| r.parameters.as_ref())
            .or_else(|| grpc.and_then(|g| g.parameters.as_ref()))
            .map(|p| {
                let mut v: Vec<String> =
                    p.headers.iter().map(|(h, t)| format!("{h}={t}")).collect();
                if let Some(path) = &p.path {
                    v.push(format!(":path={path}"));
                }
                v.join(", ")
            })
            .unwrap_or_default();
        let rewrite = r
            .options
            .as_ref()
            .and_then(|o| o.prefix_rewrite.clone())
            .unwrap_or_default();
        let mut ups = Self::upstream_options(data);
        if !ups.contains(&upstream) {
            ups.push(upstream.clone());
        }
        self.fields = vec![
            Field::choice(
                "match",
                MATCH_KINDS.iter().map(|s| s.to_string()).collect(),
                kind,
            ),
            Field::text("path", path, "/petstore/findPet"),
            Field::text("methods", m.methods.join(" "), "any (e.g. GET POST)"),
            Field::text("headers", headers, "name=value, name (must be present)"),
            Field::choice("upstream", ups, &upstream),
            Field::choice("function", vec![NONE.into()], NONE),
            Field::text("params", params, "x-pet={id}, :path=/pets/{id}"),
            Field::text("rewrite", rewrite, "prefix rewrite, e.g. /api/pets"),
        ];
        self.refresh_functions(data);
        if let FieldKind::Choice { options, idx } = &mut self.fields[F_FUNCTION].kind {
            if !options.contains(&function) {
                options.push(function.clone());
            }
            *idx = options.iter().position(|o| *o == function).unwrap_or(0);
        }
    }

    /// The kind (and gRPC path) of the function picked, when the upstream lists it.
    fn function_kind(&self) -> Option<(FunctionKind, String)> {
        match &self.fields[F_FUNCTION].kind {
            FieldKind::Choice { idx, .. } if *idx > 0 => self.function_kinds.get(idx - 1).cloned(),
            _ => None,
        }
    }

    /// The route the form describes, built on the original (unknown fields kept).
    fn form_route(&self) -> Result<Route, String> {
        let mut r = self.template.clone().unwrap_or_default();
        let mut m = r.matchers.first().cloned().unwrap_or_default();
        m.prefix = None;
        m.exact = None;
        m.regex = None;
        let path = self.fields[F_PATH].value();
        match self.fields[F_KIND].value().as_str() {
            "exact" => m.exact = Some(path),
            "regex" => m.regex = Some(path),
            _ => m.prefix = Some(if path.is_empty() { "/".into() } else { path }),
        }
        m.methods = parse_list(&self.fields[F_METHODS].value())
            .into_iter()
            .map(|s| s.to_ascii_uppercase())
            .collect();
        m.headers = self.fields[F_HEADERS]
            .value()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| match h.split_once('=') {
                Some((n, v)) => HeaderMatcher {
                    name: n.trim().to_string(),
                    value: Some(v.trim().to_string()),
                    ..Default::default()
                },
                None => HeaderMatcher {
                    name: h.to_string(),
                    ..Default::default()
                },
            })
            .collect();
        if r.matchers.is_empty() {
            r.matchers.push(m);
        } else {
            r.matchers[0] = m;
        }
        let up = self.fields[F_UPSTREAM].value();
        if up != NONE {
            let func = self.fields[F_FUNCTION].value();
            let action = r.route_action.get_or_insert_with(Box::default);
            action.multi = None;
            action.upstream_group = None;
            let d = action.single.get_or_insert_with(Destination::default);
            let ns = d.upstream.as_ref().and_then(|u| u.namespace.clone());
            d.upstream = Some(ResourceRef {
                name: up,
                namespace: ns,
                ..Default::default()
            });
            let kind = self.function_kind();
            if let Some(s) = &mut d.destination_spec {
                // One function kind at a time: the one picked (if any) is written below.
                s.rest = None;
                s.grpc = None;
                s.aws = None;
            }
            // A method of the upstream's transcoder is served by a plain route to it.
            if func == NONE || matches!(kind, Some((FunctionKind::GrpcJson, _))) {
                if d.destination_spec
                    .as_ref()
                    .is_some_and(|s| s.extra.is_empty())
                {
                    d.destination_spec = None;
                }
            } else {
                let mut p = Parameters::default();
                for item in self.fields[F_PARAMS]
                    .value()
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                {
                    let (k, v) = item
                        .split_once('=')
                        .ok_or_else(|| format!("params: `{item}` needs NAME=TEMPLATE"))?;
                    if k.trim() == ":path" {
                        p.path = Some(v.trim().to_string());
                    } else {
                        p.headers.insert(k.trim().to_string(), v.trim().to_string());
                    }
                }
                let spec = d
                    .destination_spec
                    .get_or_insert_with(DestinationSpec::default);
                let parameters = if p.headers.is_empty() && p.path.is_none() {
                    None
                } else {
                    Some(p)
                };
                match kind {
                    Some((FunctionKind::Grpc, path)) => {
                        // `/package.Service/Method`: the service's full name splits at its
                        // last dot.
                        let full = path.trim_start_matches('/').split('/').next().unwrap_or("");
                        let (package, service) = full.rsplit_once('.').unwrap_or(("", full));
                        spec.grpc = Some(GrpcDestination {
                            package: package.to_string(),
                            service: service.to_string(),
                            function: func,
                            parameters,
                            ..Default::default()
                        });
                    }
                    Some((FunctionKind::Lambda, _)) => {
                        spec.aws = Some(AwsDestination {
                            logical_name: func,
                            ..Default::default()
                        });
                    }
                    _ => {
                        spec.rest = Some(RestDestination {
                            function_name: func,
                            parameters,
                            ..Default::default()
                        });
                    }
                }
            }
            r.redirect_action = None;
            r.direct_response_action = None;
            r.delegate_action = None;
        }
        let rw = self.fields[F_REWRITE].value();
        let o = r.options.get_or_insert_with(Box::default);
        o.prefix_rewrite = if rw.trim().is_empty() {
            None
        } else {
            Some(rw.trim().to_string())
        };
        if r.options.as_deref() == Some(&RouteOptions::default()) {
            r.options = None;
        }
        Ok(r)
    }

    /// The route exactly as apply writes it: as edited, and a new route without a name
    /// named as the write would name it.
    pub fn final_route(&self, data: &Data) -> Result<Route, String> {
        let mut r = self.route()?;
        if self.original.is_none() && r.name.is_none() {
            r.name = Some(fresh_name(&r, data.routes_ref(&self.vs)));
        }
        Ok(r)
    }

    /// The route as edited.
    pub fn route(&self) -> Result<Route, String> {
        if self.yaml {
            parse_route(&self.textarea.lines().join("\n"))
                .map(|(r, _)| r)
                .map_err(|(line, m)| match line {
                    Some(l) => format!("line {l}: {m}"),
                    None => m,
                })
        } else {
            self.form_route()
        }
    }

    fn set_yaml_text(&mut self, text: &str) {
        let mut ta = TextArea::new(text.lines().map(str::to_string).collect());
        ta.set_line_number_style(Style::default().add_modifier(Modifier::DIM));
        ta.set_cursor_line_style(Style::default());
        self.textarea = ta;
    }

    fn sync_yaml_from_form(&mut self) {
        if let Ok(r) = self.form_route() {
            self.set_yaml_text(&route_yaml(&r));
        }
    }

    pub fn input(&mut self, k: &KeyEvent, data: &Data) {
        if self.yaml {
            self.textarea.input(*k);
        } else {
            match &mut self.fields[self.focus].kind {
                FieldKind::Text(i) => {
                    i.handle(k);
                }
                FieldKind::Choice { .. } => return,
            }
            self.sync_yaml_from_form();
        }
        self.revalidate(data);
    }

    /// A paste: whole into the YAML, or on one line into the focused form field.
    pub fn paste(&mut self, text: &str, data: &Data) {
        if self.yaml {
            let text = text.replace("\r\n", "\n").replace('\r', "\n");
            self.textarea.insert_str(text);
        } else {
            match &mut self.fields[self.focus].kind {
                FieldKind::Text(i) => i.paste(text),
                FieldKind::Choice { .. } => return,
            }
            self.sync_yaml_from_form();
        }
        self.revalidate(data);
    }

    pub fn action(&mut self, a: Action, data: &Data) -> Result<(), String> {
        let n = self.fields.len();
        match a {
            Action::ToggleYaml => {
                if self.yaml {
                    let text = self.textarea.lines().join("\n");
                    let (r, _) = parse_route(&text).map_err(|(l, m)| {
                        format!(
                            "fix the YAML first{}: {m}",
                            l.map(|l| format!(" (line {l})")).unwrap_or_default()
                        )
                    })?;
                    // The form edits on top of what the YAML says (the diff still starts from
                    // the route as read).
                    self.template = Some(r.clone());
                    self.load_form(&r, data);
                    self.yaml = false;
                } else {
                    let r = self.form_route()?;
                    self.set_yaml_text(&route_yaml(&r));
                    self.yaml = true;
                }
            }
            Action::NextField => self.focus = (self.focus + 1) % n,
            Action::PrevField => self.focus = (self.focus + n - 1) % n,
            Action::PickNext | Action::PickPrev => {
                if let FieldKind::Choice { options, idx } = &mut self.fields[self.focus].kind {
                    let len = options.len().max(1);
                    *idx = if a == Action::PickNext {
                        (*idx + 1) % len
                    } else {
                        (*idx + len - 1) % len
                    };
                }
                if self.focus == F_UPSTREAM {
                    self.refresh_functions(data);
                }
                self.sync_yaml_from_form();
            }
            _ => {}
        }
        self.revalidate(data);
        Ok(())
    }

    /// Validates the edit against the whole store (as a write would be).
    pub fn revalidate(&mut self, data: &Data) {
        self.problems.clear();
        self.warnings.clear();
        self.error_line = None;
        let route = if self.yaml {
            match parse_route(&self.textarea.lines().join("\n")) {
                Ok((r, unknown)) => {
                    for u in unknown {
                        self.warnings
                            .push(format!("`{u}` is not a field epoxy knows; kept as written"));
                    }
                    r
                }
                Err((line, m)) => {
                    self.error_line = line;
                    self.problems.push(match line {
                        Some(l) => format!("line {l}: {m}"),
                        None => m,
                    });
                    return;
                }
            }
        } else {
            match self.form_route() {
                Ok(r) => r,
                Err(m) => {
                    self.problems.push(m);
                    return;
                }
            }
        };
        let set = &data.listing.resources;
        let mut after = set.clone();
        let mut vs = set.get(&self.vs).cloned().unwrap_or_else(|| {
            Resource::VirtualService(Object::new(
                Kind::VirtualService,
                &self.vs.namespace,
                &self.vs.name,
                VirtualServiceSpec {
                    virtual_host: VirtualHost {
                        domains: vec!["*".into()],
                        ..Default::default()
                    },
                    ..Default::default()
                },
            ))
        });
        let Some(routes) = vs.routes_mut() else {
            return;
        };
        // The edited route where it is now (found by name or content), else where it goes.
        let found = self
            .original
            .as_ref()
            .and_then(|o| match locate(routes, o) {
                Ok(i) => Some(i),
                Err(RouteError::Changed { .. }) => o
                    .name
                    .as_ref()
                    .and_then(|n| routes.iter().position(|r| r.name.as_ref() == Some(n))),
                Err(_) => None,
            });
        let i = match found {
            Some(i) => {
                routes[i] = route;
                i
            }
            None => {
                let at = match &self.anchor {
                    Position::After(r) => locate(routes, r).map(|i| i + 1).ok(),
                    Position::First => Some(0),
                    _ => None,
                }
                .unwrap_or(self.insert_at)
                .min(routes.len());
                routes.insert(at, route);
                at
            }
        };
        after.insert(self.vs.clone(), vs);
        let before: HashSet<String> = validate(set)
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect();
        let prefix = format!("spec.virtualHost.routes[{i}]");
        for p in validate(&after) {
            let own = p.key == self.vs && p.path.starts_with(&prefix);
            let other_route =
                p.key == self.vs && p.path.starts_with("spec.virtualHost.routes[") && !own;
            if p.severity == Severity::Error {
                if own || (!other_route && !before.contains(&p.to_string())) {
                    if own && self.error_line.is_none() {
                        let rel = p.path[prefix.len()..].trim_start_matches('.');
                        self.error_line =
                            line_of_path(&self.textarea.lines().join("\n"), rel).or(Some(1));
                    }
                    let at = if own {
                        let rel = p.path[prefix.len()..].trim_start_matches('.');
                        if rel.is_empty() {
                            "route".to_string()
                        } else {
                            rel.to_string()
                        }
                    } else {
                        format!("{}: {}", p.key, p.path)
                    };
                    self.problems.push(format!("{at}: {}", p.reason));
                }
            } else if own {
                self.warnings.push(p.reason.clone());
            }
        }
        if let Some(l) = self.error_line
            && self.yaml
            && let Some(first) = self.problems.first_mut()
            && !first.starts_with("line ")
        {
            *first = format!("line {l}: {first}");
        }
    }

    pub fn diff(&self, data: &Data) -> Vec<DiffLine> {
        let old = self.original.as_ref().map(route_yaml).unwrap_or_default();
        match self.final_route(data) {
            Ok(r) => diff_lines(&old, &route_yaml(&r)),
            Err(_) => Vec::new(),
        }
    }
}

/// Draws the editor `e` (the textarea keeps its scroll, hence `mut`), validated against `data`.
pub fn draw(e: &mut Editor, data: &Data, t: &Theme, f: &mut Frame, area: Rect) {
    let title = match e.index {
        Some(i) => format!(" Edit route #{i} · {} ", e.vs.name),
        None => format!(" New route #{} · {} ", e.insert_at, e.vs.name),
    };
    let mode = if e.yaml { "yaml" } else { "form" };
    let [main, status] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(main);
    let block = Block::bordered()
        .border_style(t.border())
        .title(Line::from(vec![
            Span::styled(title, t.accent()),
            Span::styled(format!("[{mode}] "), t.muted()),
        ]));
    if e.yaml {
        let inner = block.inner(left);
        f.render_widget(block, left);
        e.textarea.set_cursor_style(t.selection());
        f.render_widget(&e.textarea, inner);
        // Mark the line of the error.
        if let Some(l) = e.error_line {
            let (top, _) = e.textarea.scroll_offset();
            let row = l.saturating_sub(1) as i64 - top as i64;
            if row >= 0 && (row as u16) < inner.height {
                let y = inner.y + row as u16;
                let buf = f.buffer_mut();
                if let Some(c) = buf.cell_mut((inner.x, y)) {
                    c.set_symbol("✗").set_style(t.error());
                }
            }
        }
    } else {
        let form_width = left.width.saturating_sub(2);
        let lines: Vec<Line> = e
            .fields
            .iter()
            .enumerate()
            .map(|(i, fd)| {
                let focused = i == e.focus;
                let mut spans = vec![Span::styled(
                    format!("{:<9}", fd.label),
                    if focused { t.accent() } else { t.muted() },
                )];
                match &fd.kind {
                    FieldKind::Text(input) => {
                        let room = (form_width as usize).saturating_sub(9);
                        if focused {
                            let (a, c, b) = input.window(room);
                            spans.push(Span::raw(a));
                            spans.push(Span::styled(c, t.selection()));
                            spans.push(Span::raw(b));
                        } else if input.text.is_empty() {
                            spans.push(Span::styled(fd.hint, t.placeholder()));
                        } else {
                            spans.push(Span::raw(crate::tui::widgets::table::ellipsize(
                                &input.text,
                                room,
                            )));
                        }
                    }
                    FieldKind::Choice { options, idx } => {
                        let v = options.get(*idx).cloned().unwrap_or_default();
                        let st = if focused {
                            t.selection()
                        } else {
                            Style::default()
                        };
                        spans.push(Span::styled(format!("[{v} ▾]"), st));
                        if focused {
                            spans.push(Span::styled(
                                format!(" ←→ {}/{}", idx + 1, options.len()),
                                t.muted(),
                            ));
                        }
                    }
                }
                Line::from(spans)
            })
            .collect();
        f.render_widget(Paragraph::new(lines).block(block), left);
    }
    // The preview: what apply changes.
    let diff = e.diff(data);
    let pl: Vec<Line> = if diff.is_empty() {
        vec![Line::styled("(the route does not parse yet)", t.muted())]
    } else {
        diff.iter()
            .map(|d| match d {
                DiffLine::Same(l) => Line::styled(format!("  {l}"), t.muted()),
                DiffLine::Added(l) => Line::styled(format!("+ {l}"), t.new_style()),
                DiffLine::Removed(l) => Line::styled(format!("- {l}"), t.error()),
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(pl).block(
            Block::bordered()
                .border_style(t.border())
                .title(Span::styled(" Preview: what changes ", t.accent())),
        ),
        right,
    );
    let sl: Vec<Line> = if let Some(p) = e.problems.first() {
        vec![Line::styled(format!("✗ {p}"), t.error())]
    } else if let Some(w) = e.warnings.first() {
        vec![Line::styled(format!("⚠ {w}"), t.warn())]
    } else {
        vec![Line::styled(
            "✓ valid · ctrl-s shows the diff and applies",
            t.ok(),
        )]
    };
    f.render_widget(Paragraph::new(sl).wrap(Wrap { trim: true }), status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Listing;
    use std::sync::Arc;

    /// A route made in the form to a gRPC method, a Lambda function or a REST operation carries
    /// the `destinationSpec` of that function's kind, and reads back into the same form.
    #[test]
    fn a_function_route_carries_its_kinds_destination() {
        let yaml = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: shop, namespace: gloo-system}\nspec:\n  static:\n    hosts: [{addr: 127.0.0.1, port: 9}]\n    serviceSpec:\n      grpc: {grpcServices: [{packageName: shop.v1, serviceName: Pets, functionNames: [GetPet]}]}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: fns, namespace: gloo-system}\nspec:\n  aws: {region: us-east-1, lambdaFunctions: [{logicalName: hello, lambdaFunctionName: hello}]}\n";
        let resources = crate::api::parse_resources(yaml, "test").unwrap();
        let mut data = Data::default();
        data.set_listing(Arc::new(Listing {
            resources: resources.into_iter().map(|r| (r.key(), r)).collect(),
            ..Default::default()
        }));
        let vs = ResourceKey::new(Kind::VirtualService, "gloo-system", "default");
        let spec_of = |up: &str, f: &str| {
            let mut e = Editor::new(vs.clone(), None, None, &data);
            e.prefill_function(up, f, &data);
            let r = e.route().unwrap();
            let spec = r
                .route_action
                .unwrap()
                .single
                .unwrap()
                .destination_spec
                .unwrap();
            // Read back: the form shows the same function.
            let again = Editor::new(vs.clone(), None, Some(e.route().unwrap()), &data);
            assert_eq!(again.fields[F_FUNCTION].value(), f);
            spec
        };
        let grpc = spec_of("shop", "GetPet");
        let g = grpc.grpc.expect("a grpc destination");
        assert_eq!(
            (g.package.as_str(), g.service.as_str(), g.function.as_str()),
            ("shop.v1", "Pets", "GetPet")
        );
        assert!(grpc.rest.is_none() && grpc.aws.is_none());
        let aws = spec_of("fns", "hello");
        assert_eq!(aws.aws.expect("an aws destination").logical_name, "hello");
        assert!(aws.rest.is_none() && aws.grpc.is_none());
    }
}
