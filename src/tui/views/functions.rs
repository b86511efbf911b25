//! Functions: every function of every upstream (or of one), and one function's template.

use super::ListMeta;
use super::ViewCtx;
use crate::tui::widgets::table::TRow;
use ratatui::layout::Constraint;
use ratatui::style::Style;

/// A function as its table row shows it (derived once per listing).
#[derive(Debug, Clone)]
pub struct FnRow {
    pub upstream: String,
    pub name: String,
    /// `rest`, `grpc`, `lambda` or `grpc-json` (a transcoder's method).
    pub kind: &'static str,
    pub method: String,
    /// The path template, readable (`{{ id }}`).
    pub path: String,
    pub params: String,
    pub body: bool,
}

/// Every function of every upstream (or of one), in store order.
pub fn rows(cx: &ViewCtx, upstream: Option<&str>) -> Vec<FnRow> {
    cx.data
        .functions(upstream)
        .into_iter()
        .map(|f| FnRow {
            path: crate::tui::data::readable_template(&f.path),
            params: f.params_text(),
            body: f.body.is_some(),
            kind: f.kind.as_str(),
            method: f.method,
            upstream: f.upstream,
            name: f.name,
        })
        .collect()
}

pub fn row(cx: &ViewCtx, f: &FnRow, all: bool) -> TRow {
    let mut r = TRow::new().cell(f.name.clone());
    if all {
        r = r.styled(f.upstream.clone(), cx.theme.muted());
    }
    r.styled(f.kind, cx.theme.muted())
        .styled(f.method.clone(), cx.theme.accent())
        .cell(f.path.clone())
        .cell(f.params.clone())
        .cell(if f.body { "json" } else { "—" })
}

pub fn meta(upstream: Option<&str>, n: usize) -> ListMeta {
    let (header, widths) = if upstream.is_none() {
        (
            vec![
                "NAME",
                "UPSTREAM",
                "KIND",
                "METHOD",
                "PATH",
                "PARAMETERS",
                "BODY",
            ],
            vec![
                Constraint::Min(12),
                Constraint::Min(12),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Min(16),
                Constraint::Min(12),
                Constraint::Length(4),
            ],
        )
    } else {
        (
            vec!["NAME", "KIND", "METHOD", "PATH", "PARAMETERS", "BODY"],
            vec![
                Constraint::Min(12),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Min(20),
                Constraint::Min(14),
                Constraint::Length(4),
            ],
        )
    };
    ListMeta {
        title: match upstream {
            Some(u) => format!("Functions · {u} ({n})"),
            None => format!("Functions ({n})"),
        },
        header,
        widths,
        empty: "no functions discovered yet (see :discovery)".into(),
    }
}

/// The lines of one function's details: template, variables and where each comes from.
pub fn detail_lines(cx: &ViewCtx, upstream: &str, name: &str) -> Vec<(String, Style)> {
    let t = cx.theme;
    let Some(f) = cx
        .data
        .functions(Some(upstream))
        .into_iter()
        .find(|f| f.name == name)
    else {
        return vec![(
            format!("{upstream} has no function {name} (any more)"),
            t.error(),
        )];
    };
    let mut out = vec![
        (format!("function  {}", f.name), t.accent()),
        (format!("upstream  {}", f.upstream), Style::default()),
        (String::new(), Style::default()),
        ("request template".into(), t.muted()),
        (format!("  :method  {}", f.method), Style::default()),
        (format!("  :path    {}", f.path), Style::default()),
    ];
    for (h, v) in &f.headers {
        if !h.starts_with(':') {
            out.push((format!("  {h}: {v}"), Style::default()));
        }
    }
    match &f.body {
        Some(b) => {
            out.push(("  body".into(), t.muted()));
            for l in b.lines() {
                out.push((format!("    {l}"), Style::default()));
            }
        }
        None => out.push(("  body    —".into(), t.muted())),
    }
    out.push((String::new(), Style::default()));
    out.push((
        "variables (filled from the route's parameters, else the JSON body's keys)".into(),
        t.muted(),
    ));
    if f.params.is_empty() {
        out.push(("  none".into(), t.muted()));
    }
    for (n, w) in &f.params {
        out.push((format!("  {n:<12} used in the {w}"), Style::default()));
    }
    // The routes that reach it.
    out.push((String::new(), Style::default()));
    out.push(("routes to it".into(), t.muted()));
    let mut any = false;
    for vs in cx.data.virtual_services() {
        let key = vs.key();
        for (i, r) in vs.routes().into_iter().flatten().enumerate() {
            let (dest, func) = super::routes::destination(r);
            if dest == f.upstream && func == f.name {
                any = true;
                out.push((
                    format!("  {} #{i}  {}", key.name, super::routes::match_text(r)),
                    t.ok(),
                ));
            }
        }
    }
    if !any {
        out.push(("  none yet: r creates one".into(), t.warn()));
    }
    out
}
