//! Virtual services, and the ordered routes of one: match, destination, function, options,
//! status, requests per second; routes that can never match are flagged.

use super::ListMeta;
use super::ViewCtx;
use crate::api::status::State;
use crate::api::{Resource, ResourceKey, Route};
pub use crate::tester::route_text::{destination, match_text};
use crate::tls::describe::VsTls;
use crate::tui::data::route_id;
use crate::tui::widgets::table::TRow;
use ratatui::layout::Constraint;
use ratatui::style::Style;

pub fn vs_row(cx: &ViewCtx, key: &ResourceKey) -> Option<TRow> {
    let t = cx.theme;
    let Some(Resource::VirtualService(vs)) = cx.data.listing.resources.get(key) else {
        return None;
    };
    let domains = if vs.spec.virtual_host.domains.is_empty() {
        "*".to_string()
    } else {
        vs.spec.virtual_host.domains.join(", ")
    };
    let (status, st) = status_of(cx, key);
    let tls = VsTls::from_gateway(&cx.gateway.listeners.list(), key, vs);
    let listener = match &tls.cert {
        None => tls.listener.clone(),
        Some(_) => format!("{} · {}", tls.listener, tls.certificate()),
    };
    let listener_style = if tls.warning().is_some() || matches!(tls.cert, Some(Err(_))) {
        t.warn()
    } else {
        Style::default()
    };
    Some(
        TRow::new()
            .cell(key.name.clone())
            .styled(key.namespace.clone(), t.muted())
            .cell(domains)
            .cell(vs.spec.virtual_host.routes.len().to_string())
            .styled(listener, listener_style)
            .styled(status, st),
    )
}

pub fn vs_meta(n: usize) -> ListMeta {
    ListMeta {
        title: format!("Virtual services ({n})"),
        header: vec![
            "NAME",
            "NAMESPACE",
            "DOMAINS",
            "ROUTES",
            "LISTENER",
            "STATUS",
        ],
        widths: vec![
            Constraint::Min(14),
            Constraint::Min(12),
            Constraint::Min(10),
            Constraint::Length(6),
            Constraint::Min(10),
            Constraint::Min(10),
        ],
        empty: "no virtual services yet: :routes then n creates the default one".into(),
    }
}

pub fn status_of(cx: &ViewCtx, key: &ResourceKey) -> (String, ratatui::style::Style) {
    let t = cx.theme;
    match cx.data.report.statuses.get(key) {
        Some(s) => match s.state {
            State::Accepted => ("Accepted".into(), t.ok()),
            State::Warning => (
                format!(
                    "Warning: {}",
                    s.warnings.first().cloned().unwrap_or_default()
                ),
                t.warn(),
            ),
            State::Rejected => (
                format!("Rejected: {}", s.reason.clone().unwrap_or_default()),
                t.error(),
            ),
        },
        None => ("Pending".into(), t.muted()),
    }
}

pub fn options_text(r: &Route) -> String {
    let mut v = Vec::new();
    if let Some(o) = &r.options {
        if let Some(p) = &o.prefix_rewrite {
            v.push(format!("rewrite {p}"));
        }
        if o.regex_rewrite.is_some() {
            v.push("regex rewrite".into());
        }
        if let Some(t) = &o.timeout {
            v.push(format!("timeout {t}"));
        }
        if let Some(r) = &o.retries {
            v.push(format!("retries {}", r.num_retries.unwrap_or(1)));
        }
    }
    if let Some(p) = r
        .route_action
        .as_ref()
        .and_then(|a| a.single.as_ref())
        .and_then(|d| d.destination_spec.as_ref())
        .and_then(|s| s.rest.as_ref())
        .and_then(|r| r.parameters.as_ref())
    {
        for (h, tpl) in &p.headers {
            v.push(format!("{tpl}←{h}"));
        }
        if let Some(path) = &p.path {
            v.push(format!("{path}←path"));
        }
    }
    v.join(" ")
}

/// What a virtual service's route rows need beyond each route: which routes can never match
/// (derived once per listing; the rest of a row is built only when it is shown).
#[derive(Debug, Clone, Default)]
pub struct RouteRows {
    /// Per route, the earlier route that always wins over it, if any.
    pub shadowed_by: Vec<Option<usize>>,
}

pub fn rows(cx: &ViewCtx, vs: &ResourceKey) -> RouteRows {
    let routes = cx.data.routes_ref(vs);
    let mut shadowed_by = vec![None; routes.len()];
    for (j, by) in crate::api::shadow::shadowed_routes(routes) {
        // The first finding of a route, as a search in order would give.
        if let Some(s) = shadowed_by.get_mut(j)
            && s.is_none()
        {
            *s = Some(by);
        }
    }
    RouteRows { shadowed_by }
}

/// Seconds of history in the TREND column.
pub const TREND: usize = 10;

/// Requests per second of each route id, oldest first, over the last `TREND` seconds.
pub type Trends = std::collections::HashMap<String, [u64; TREND]>;

/// The trends of every route with recent requests: one walk over the recent log, once per
/// second or new event (not per row, not per frame).
pub fn trends(cx: &ViewCtx) -> std::sync::Arc<Trends> {
    let now = cx.now;
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    cx.cache.trends.get((cx.data.total, secs), || {
        let mut m = Trends::new();
        for e in cx.data.log.iter().rev() {
            let age = now.duration_since(e.time).unwrap_or_default().as_secs() as usize;
            if age >= TREND {
                break;
            }
            if let Some(r) = &e.route {
                m.entry(r.clone()).or_insert([0; TREND])[TREND - 1 - age] += 1;
            }
        }
        std::sync::Arc::new(m)
    })
}

/// A row of bars (`▁▂▃▄▅▆▇█`), scaled to its largest value; `·` for no request.
pub fn bars(v: &[u64]) -> String {
    const B: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = v.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return "·".into();
    }
    v.iter()
        .map(|&x| {
            if x == 0 {
                ' '
            } else {
                B[((x * 7).div_ceil(max)) as usize % 8]
            }
        })
        .collect()
}

/// The row of route `i` of `vs`; `status` is the virtual service's.
pub fn row(
    cx: &ViewCtx,
    vs: &ResourceKey,
    i: usize,
    shadowed_by: Option<usize>,
    status: &(String, Style),
) -> Option<TRow> {
    let t = cx.theme;
    let r = cx.data.routes_ref(vs).get(i)?;
    let (dest, func) = destination(r);
    let id = route_id(vs, r);
    let rate = cx.data.window_route_rate(&id);
    let trend = trends(cx).get(&id).map_or_else(|| "·".into(), |t| bars(t));
    let (stext, sst) = match shadowed_by {
        Some(by) => (format!("⚠ never matches: #{by} wins"), t.warn()),
        None => (
            status.0.split(':').next().unwrap_or("").to_string(),
            status.1,
        ),
    };
    Some(
        TRow::new()
            .cell(format!("{i}"))
            .cell(match_text(r))
            .cell(dest)
            .styled(if func.is_empty() { "—".into() } else { func }, t.accent())
            .styled(options_text(r), t.muted())
            .styled(stext, sst)
            .cell(if rate > 0.0 {
                format!("{rate:.1}")
            } else {
                "·".into()
            })
            .styled(trend, t.ok()),
    )
}

pub fn meta(cx: &ViewCtx, vs: &ResourceKey, n: usize) -> ListMeta {
    let exists = cx.data.listing.resources.contains_key(vs);
    ListMeta {
        title: format!(
            "Routes · {}{} ({n})",
            vs.name,
            if exists { "" } else { " (new)" },
        ),
        header: vec![
            "#",
            "MATCH",
            "DESTINATION",
            "FUNCTION",
            "OPTIONS",
            "STATUS",
            "REQ/S",
            "LAST 10S",
        ],
        widths: vec![
            Constraint::Length(3),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(5),
            Constraint::Length(TREND as u16),
        ],
        empty: if cx.readonly {
            "no routes".into()
        } else {
            "no routes yet: n creates one (or r on a function)".into()
        },
    }
}
