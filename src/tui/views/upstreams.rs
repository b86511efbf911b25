//! Upstreams: name, type, address, functions, discovery, status.

use super::{ItemId, ListTable};
use crate::api::status::State;
use crate::tui::app::App;
use crate::tui::data::ago;
use crate::tui::widgets::table::TRow;
use ratatui::layout::Constraint;

pub fn table(app: &App) -> ListTable {
    let now = app.now();
    let t = &app.theme;
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for u in app.data.upstreams() {
        let key = crate::api::ResourceKey::new(
            crate::api::Kind::Upstream,
            u.metadata.namespace.clone().unwrap_or_default(),
            &u.metadata.name,
        );
        let (kind, addr) = if let Some(k) = &u.spec.kube {
            (
                "kube",
                format!(
                    "{}.{}:{}",
                    k.service_name, k.service_namespace, k.service_port
                ),
            )
        } else if let Some(s) = &u.spec.static_ {
            let hosts: Vec<String> = s
                .hosts
                .iter()
                .map(|h| format!("{}:{}", h.addr, h.port))
                .collect();
            ("static", hosts.join(", "))
        } else {
            ("?", String::new())
        };
        let nfun = u.spec.function_names().len();
        let (disc, dstyle) = match app.data.discovery.get(&key) {
            Some(d) => match (&d.last_error, &d.document_url) {
                (Some(e), _) => (format!("✗ {e}"), t.error()),
                (None, Some(url)) => (
                    format!(
                        "✓ {}{}",
                        short_url(url),
                        d.last_poll
                            .map(|p| format!(" · {}", ago(now, p)))
                            .unwrap_or_default()
                    ),
                    t.ok(),
                ),
                (None, None) => ("no document".into(), t.muted()),
            },
            None => ("—".into(), t.muted()),
        };
        let (status, sstyle) = match app.data.report.statuses.get(&key) {
            Some(s) => match s.state {
                State::Accepted => ("Accepted".to_string(), t.ok()),
                State::Warning => ("Warning".to_string(), t.warn()),
                State::Rejected => ("Rejected".to_string(), t.error()),
            },
            None => ("Pending".into(), t.muted()),
        };
        rows.push(
            TRow::new()
                .cell(u.metadata.name.clone())
                .cell(kind)
                .cell(addr)
                .cell(nfun.to_string())
                .styled(disc, dstyle)
                .styled(status, sstyle),
        );
        ids.push(ItemId::Upstream(u.metadata.name.clone()));
    }
    ListTable {
        title: format!("Upstreams ({})", ids.len()),
        header: vec!["NAME", "TYPE", "ADDRESS", "FNS", "DISCOVERY", "STATUS"],
        widths: vec![
            Constraint::Min(22),
            Constraint::Length(6),
            Constraint::Min(15),
            Constraint::Length(3),
            Constraint::Min(16),
            Constraint::Length(8),
        ],
        rows,
        ids,
        empty: "no upstreams yet: `epoxy create upstream static NAME --static-hosts HOST:PORT`"
            .into(),
    }
}

/// The path of a document URL (`http://127.0.0.1:4321/swagger.json` → `/swagger.json`).
pub fn short_url(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => rest.to_string(),
        },
        None => url.to_string(),
    }
}
