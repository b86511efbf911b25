//! Describe and YAML (k9s's `d` and `y`): one resource, a route or a function, read-only. The
//! description gathers what the other views spread out (status, discovery, the routes that
//! reach it) and, for routes, upstreams and virtual services, draws their traffic over the last
//! minute as sparklines (requests, errors, p50 and p99 latency), from the access log.

use super::ViewCtx;
use super::routes::{destination, match_text, options_text, status_of};
use crate::api::{Kind, Resource, ResourceKey};
use crate::gateway::telemetry::RequestEvent;
use crate::tui::data::{Series, ago};
use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Sparkline};
use std::time::Duration;

pub use crate::tui::nav::Target;

/// How far back the charts reach, in buckets of `BUCKET`.
pub const BUCKETS: usize = 60;
pub const BUCKET: Duration = Duration::from_secs(1);

type Lines = Vec<(String, Style)>;

/// How many routes a virtual service's description lists (the routes view has them all).
const SHOWN_ROUTES: usize = 200;

fn text(lines: &mut Lines, s: impl Into<String>) {
    lines.push((s.into(), Style::default()));
}

fn field(lines: &mut Lines, t: &Theme, name: &str, value: impl Into<String>) {
    let _ = t;
    lines.push((format!("{name:<13}{}", value.into()), Style::default()));
}

/// The YAML of the target, as it is in the store.
pub fn yaml(cx: &ViewCtx, target: &Target) -> Option<String> {
    match target {
        Target::Resource(k) => Some(cx.data.listing.resources.get(k)?.to_yaml()),
        Target::Route(id) => {
            let (_, _, r) = cx.data.route_by_id(id)?;
            Some(super::editor::route_yaml(r))
        }
        Target::Function { upstream, name } => {
            let u = cx.data.upstream(upstream)?;
            let t = u
                .spec
                .service_spec()?
                .rest
                .as_ref()?
                .transformations
                .get(name)?;
            let v = serde_json::json!({ name.clone(): t });
            Some(crate::api::codec::to_yaml(&v))
        }
    }
}

/// The lines of the view: the YAML, or the description.
pub fn lines(cx: &ViewCtx, target: &Target, as_yaml: bool) -> Lines {
    let t = cx.theme;
    if as_yaml {
        return match yaml(cx, target) {
            Some(y) => y
                .lines()
                .map(|l| (l.to_string(), Style::default()))
                .collect(),
            None => vec![(gone(target), t.error())],
        };
    }
    let mut out = Lines::new();
    match target {
        Target::Resource(k) => match cx.data.listing.resources.get(k) {
            Some(Resource::Upstream(_)) => describe_upstream(cx, k, &mut out),
            Some(Resource::VirtualService(_)) => describe_vs(cx, k, &mut out),
            Some(r) => {
                field(&mut out, t, "kind", r.kind().to_string());
                field(&mut out, t, "name", format!("{}/{}", k.namespace, k.name));
                let (s, st) = status_of(cx, k);
                out.push((format!("{:<13}{s}", "status"), st));
            }
            None => out.push((gone(target), t.error())),
        },
        Target::Route(id) => describe_route(cx, id, &mut out),
        Target::Function { upstream, name } => {
            out = super::functions::detail_lines(cx, upstream, name)
        }
    }
    out
}

fn gone(target: &Target) -> String {
    format!("{} is gone (removed or changed since)", target.title())
}

fn describe_route(cx: &ViewCtx, id: &str, out: &mut Lines) {
    let t = cx.theme;
    let Some((vs, i, r)) = cx.data.route_by_id(id) else {
        out.push((
            format!("route {id} is gone (removed, or changed: its id follows its content)"),
            t.error(),
        ));
        return;
    };
    field(
        out,
        t,
        "route",
        match &r.name {
            Some(n) => format!("{n} (#{i} of {})", vs.name),
            None => format!("#{i} of {} (unnamed: known as {id})", vs.name),
        },
    );
    let (s, st) = status_of(cx, &vs);
    out.push((
        format!("{:<13}{}/{} · {s}", "virtual svc", vs.namespace, vs.name),
        st,
    ));
    field(out, t, "match", match_text(r));
    let (dest, func) = destination(r);
    field(out, t, "destination", dest);
    if !func.is_empty() {
        out.push((format!("{:<13}{func}", "function"), t.accent()));
    }
    let opts = options_text(r);
    if !opts.is_empty() {
        field(out, t, "options", opts);
    }
    policy_lines(cx, &vs, r, out);
    // Which earlier route always wins, from the routes view's rows (derived once per listing).
    if let Some(by) = super::route_rows(cx, &vs)
        .shadowed_by
        .get(i)
        .copied()
        .flatten()
    {
        out.push((
            format!("{:<13}⚠ never matches: route #{by} always wins", "shadowed"),
            t.warn(),
        ));
    }
    let count = cx.data.route_counts.get(id).copied().unwrap_or(0);
    field(
        out,
        t,
        "requests",
        format!("{count} since the console started"),
    );
}

/// The route's policies (auth, JWT providers, CORS, limits), its own and its virtual host's.
fn policy_lines(cx: &ViewCtx, vs: &ResourceKey, r: &crate::api::Route, out: &mut Lines) {
    let resources = &cx.data.listing.resources;
    let vhost = match resources.get(vs) {
        Some(Resource::VirtualService(v)) => v.spec.virtual_host.options.as_ref(),
        _ => None,
    };
    let route = r.options.as_ref().map(|o| &o.extra.0);
    let kinds = |ns: &str, name: &str| {
        let key = ResourceKey::new(Kind::AuthConfig, ns, name);
        match resources.get(&key) {
            Some(Resource::AuthConfig(ac)) => {
                Some(crate::policy::spec::auth_config_kinds(&ac.spec))
            }
            _ => None,
        }
    };
    let lines = super::policies::lines(vhost, route, &vs.namespace, &kinds);
    if lines.is_empty() {
        out.push((format!("{:<13}none", "policies"), cx.theme.muted()));
    }
    for (n, l) in lines.into_iter().enumerate() {
        let label = if n == 0 { "policies" } else { "" };
        out.push((format!("{label:<13}{l}"), cx.theme.accent()));
    }
    // Policies that live in kinds the cluster cannot hold are not read: say which.
    for kind in [Kind::AuthConfig, Kind::RateLimitConfig] {
        if cx.data.listing.unavailable.contains(&kind) {
            let note = crate::store::kube::absent_note(kind);
            out.push((format!("{:<13}⚠ {note}", ""), cx.theme.warn()));
        }
    }
}

fn describe_upstream(cx: &ViewCtx, k: &ResourceKey, out: &mut Lines) {
    let t = cx.theme;
    let Some(Resource::Upstream(u)) = cx.data.listing.resources.get(k) else {
        return;
    };
    let (kind, addr) = super::upstreams::address(u);
    field(out, t, "upstream", format!("{}/{}", k.namespace, k.name));
    field(out, t, "address", format!("{kind} {addr}"));
    let (s, st) = status_of(cx, k);
    out.push((format!("{:<13}{s}", "status"), st));
    match cx.data.discovery.get(k) {
        Some(d) => {
            let when = d
                .last_poll
                .map(|p| format!(", polled {}", ago(cx.now, p)))
                .unwrap_or_default();
            let took = d
                .poll_duration_ms
                .map(|ms| format!(" in {ms} ms"))
                .unwrap_or_default();
            field(
                out,
                t,
                "discovery",
                format!(
                    "{} · {} functions{when}{took}",
                    d.document_url.as_deref().unwrap_or("no document"),
                    d.functions
                ),
            );
            if let Some(e) = &d.last_error {
                out.push((format!("{:<13}✗ {e}", ""), t.error()));
            }
            for w in &d.warnings {
                out.push((format!("{:<13}⚠ {w}", ""), t.warn()));
            }
        }
        None => field(out, t, "discovery", "—"),
    }
    let fns = cx.data.functions(Some(&k.name));
    out.push((String::new(), Style::default()));
    out.push((format!("functions ({})", fns.len()), t.muted()));
    for f in &fns {
        text(out, format!("  {:<18} {:<6} {}", f.name, f.method, f.path));
    }
    out.push((String::new(), Style::default()));
    out.push(("routes to it".into(), t.muted()));
    let mut any = false;
    for vs in cx.data.virtual_services() {
        let key = vs.key();
        for (i, r) in vs.routes().into_iter().flatten().enumerate() {
            if reaches(r, &k.name) {
                any = true;
                text(out, format!("  {}#{i}  {}", key.name, match_text(r)));
            }
        }
    }
    if !any {
        out.push(("  none".into(), t.muted()));
    }
}

/// Whether a route sends requests to the upstream `name` (alone or among weighted ones).
fn reaches(r: &crate::api::Route, name: &str) -> bool {
    let Some(a) = &r.route_action else {
        return false;
    };
    let single = a
        .single
        .as_ref()
        .and_then(|d| d.upstream.as_ref())
        .is_some_and(|u| u.name == name);
    let multi = a.multi.as_ref().is_some_and(|m| {
        m.destinations.iter().any(|d| {
            d.destination
                .upstream
                .as_ref()
                .is_some_and(|u| u.name == name)
        })
    });
    single || multi
}

fn describe_vs(cx: &ViewCtx, k: &ResourceKey, out: &mut Lines) {
    let t = cx.theme;
    let Some(Resource::VirtualService(vs)) = cx.data.listing.resources.get(k) else {
        return;
    };
    field(out, t, "virtual svc", format!("{}/{}", k.namespace, k.name));
    let domains = if vs.spec.virtual_host.domains.is_empty() {
        "*".to_string()
    } else {
        vs.spec.virtual_host.domains.join(", ")
    };
    field(out, t, "domains", domains);
    let tls = crate::tls::describe::VsTls::from_gateway(&cx.gateway.listeners.list(), k, vs);
    field(out, t, "listener", tls.listener.clone());
    if let Some(ssl) = &vs.spec.ssl_config {
        let from = match (&ssl.secret_ref, &ssl.ssl_files) {
            (Some(r), _) => format!("secret {}/{}", r.namespace_or(&k.namespace), r.name),
            (None, Some(f)) => format!(
                "files {}",
                [&f.tls_cert, &f.tls_key]
                    .iter()
                    .filter_map(|p| p.as_deref())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => "-".into(),
        };
        field(out, t, "certificate", from);
        match &tls.cert {
            Some(Ok(c)) => {
                field(out, t, "  subject", c.subject.clone());
                field(out, t, "  names", c.sans.join(", "));
                let until = c.not_after_text();
                let days = c.days_left();
                let line = format!("{:<13}{until} ({days} days left)", "  expires");
                let style = if c.expiry_warning().is_some() {
                    t.warn()
                } else {
                    Style::default()
                };
                out.push((line, style));
            }
            Some(Err(e)) => out.push((format!("{:<13}{e}", "  problem"), t.warn())),
            None => {}
        }
        if !ssl.sni_domains.is_empty() {
            field(out, t, "sni", ssl.sni_domains.join(", "));
        }
    }
    let (s, st) = status_of(cx, k);
    out.push((format!("{:<13}{s}", "status"), st));
    out.push((String::new(), Style::default()));
    let routes = &vs.spec.virtual_host.routes;
    out.push((format!("routes ({})", routes.len()), t.muted()));
    for (i, r) in routes.iter().enumerate().take(SHOWN_ROUTES) {
        let (d, f) = destination(r);
        let to = if f.is_empty() {
            d
        } else {
            format!("{d} · {f}")
        };
        text(out, format!("  #{i:<3} {}  → {to}", match_text(r)));
    }
    if routes.len() > SHOWN_ROUTES {
        out.push((
            format!(
                "  … {} more: enter on the virtual service lists them all",
                routes.len() - SHOWN_ROUTES
            ),
            t.muted(),
        ));
    }
}

/// Which requests count.
type Keep<'a> = Box<dyn Fn(&RequestEvent) -> bool + 'a>;

/// What the charts of a target count: the requests of a route, through an upstream, or to a
/// virtual service's routes. None: no charts (functions, other kinds).
fn keeps<'a>(cx: &ViewCtx<'a>, target: &Target) -> Option<Keep<'a>> {
    match target {
        Target::Route(id) => {
            let id = id.clone();
            Some(Box::new(move |e| e.route.as_deref() == Some(id.as_str())))
        }
        Target::Resource(k) if k.kind == Kind::Upstream => {
            let name = k.name.clone();
            Some(Box::new(move |e| {
                e.upstream.as_deref() == Some(name.as_str())
            }))
        }
        Target::Resource(k) if k.kind == Kind::VirtualService => {
            let k = k.clone();
            let data = cx.data;
            Some(Box::new(move |e| {
                e.route
                    .as_deref()
                    .and_then(|r| data.locate(r))
                    .is_some_and(|(vs, _)| vs == k)
            }))
        }
        _ => None,
    }
}

/// The target's traffic over the last minute, if it has charts.
pub fn series(cx: &ViewCtx, target: &Target) -> Option<Series> {
    let keep = keeps(cx, target)?;
    Some(cx.data.series(cx.now, BUCKETS, BUCKET, keep))
}

/// How many rows the charts take in an area of `height` (0: no room, the text comes first).
pub fn chart_height(height: u16) -> u16 {
    match height {
        0..=13 => 0,
        14..=29 => 6,
        _ => 10,
    }
}

/// Requests, errors, p50 and p99 over the last minute, one sparkline each, labelled.
pub fn draw_charts(cx: &ViewCtx, f: &mut Frame, area: Rect, s: &Series, title: &str) {
    let t = cx.theme;
    let block = Block::bordered()
        .border_style(t.border())
        .title(Span::styled(
            format!(
                " {title} · last {}s: {} requests, {} errors, {} denied ",
                BUCKETS,
                s.total(),
                s.error_total(),
                s.denied.iter().sum::<u64>()
            ),
            t.accent(),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows = Layout::vertical([Constraint::Ratio(1, 4); 4]).split(inner);
    let last = |v: &[u64]| v.iter().rev().find(|x| **x > 0).copied().unwrap_or(0);
    let lat = |us: u64| super::log::latency(Duration::from_micros(us));
    let errs = s.error_percent();
    let charts: [(String, &[u64], Style); 4] = [
        (
            format!("req/s {:>6}", s.requests.last().copied().unwrap_or(0)),
            &s.requests,
            t.ok(),
        ),
        (format!("err % {:>6}", last(&errs)), &errs, t.error()),
        (format!("p50 {:>8}", lat(last(&s.p50))), &s.p50, t.accent()),
        (format!("p99 {:>8}", lat(last(&s.p99))), &s.p99, t.warn()),
    ];
    for ((label, data, style), row) in charts.iter().zip(rows.iter()) {
        let [l, bars] =
            Layout::horizontal([Constraint::Length(15), Constraint::Min(1)]).areas(*row);
        f.render_widget(Line::styled(label.clone(), t.muted()), l);
        // The newest buckets, right-aligned: as many as there are columns.
        let w = bars.width as usize;
        let shown = &data[data.len().saturating_sub(w)..];
        f.render_widget(Sparkline::default().data(shown).style(*style), bars);
    }
}
