//! Functions: every function of every upstream (or of one), and one function's template.

use super::{ItemId, ListTable};
use crate::tui::app::App;
use crate::tui::widgets::table::TRow;
use ratatui::layout::Constraint;
use ratatui::style::Style;

pub fn table(app: &App, upstream: Option<&str>) -> ListTable {
    let fns = app.data.functions(upstream);
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for f in &fns {
        let mut r = TRow::new().cell(f.name.clone());
        if upstream.is_none() {
            r = r.styled(f.upstream.clone(), app.theme.muted());
        }
        r = r
            .styled(f.method.clone(), app.theme.accent())
            .cell(crate::tui::data::readable_template(&f.path))
            .cell(f.params_text())
            .cell(if f.body.is_some() { "json" } else { "—" });
        rows.push(r);
        ids.push(ItemId::Function(f.upstream.clone(), f.name.clone()));
    }
    let (header, widths) = if upstream.is_none() {
        (
            vec!["NAME", "UPSTREAM", "METHOD", "PATH", "PARAMETERS", "BODY"],
            vec![
                Constraint::Min(12),
                Constraint::Min(12),
                Constraint::Length(6),
                Constraint::Min(16),
                Constraint::Min(12),
                Constraint::Length(4),
            ],
        )
    } else {
        (
            vec!["NAME", "METHOD", "PATH", "PARAMETERS", "BODY"],
            vec![
                Constraint::Min(12),
                Constraint::Length(6),
                Constraint::Min(20),
                Constraint::Min(14),
                Constraint::Length(4),
            ],
        )
    };
    ListTable {
        title: match upstream {
            Some(u) => format!("Functions · {u} ({})", ids.len()),
            None => format!("Functions ({})", ids.len()),
        },
        header,
        widths,
        rows,
        ids,
        empty: "no functions discovered yet (see :discovery)".into(),
    }
}

/// The lines of one function's details: template, variables and where each comes from.
pub fn detail_lines(app: &App, upstream: &str, name: &str) -> Vec<(String, Style)> {
    let t = &app.theme;
    let Some(f) = app
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
    for vs in app.data.virtual_services() {
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
