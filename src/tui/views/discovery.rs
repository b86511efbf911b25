//! Discovery: per upstream, the document found, function count, last poll, last error.

use super::ListMeta;
use super::ViewCtx;
use crate::api::ResourceKey;
use crate::tui::data::ago;
use crate::tui::widgets::table::TRow;
use ratatui::layout::Constraint;

pub fn row(cx: &ViewCtx, k: &ResourceKey) -> Option<TRow> {
    let t = cx.theme;
    let now = cx.now;
    let d = cx.data.discovery.get(k)?;
    let doc = d.document_url.as_deref().map(|u| u.to_string());
    Some(
        TRow::new()
            .cell(k.name.clone())
            .styled(
                doc.clone().unwrap_or_else(|| "not found".into()),
                if doc.is_some() { t.ok() } else { t.warn() },
            )
            .cell(d.functions.to_string())
            .cell(
                d.last_poll
                    .map(|p| ago(now, p))
                    .unwrap_or_else(|| "never".into()),
            )
            .styled(
                d.poll_duration_ms
                    .map(|ms| format!("{ms}ms"))
                    .unwrap_or_default(),
                t.muted(),
            )
            .styled(
                d.last_error
                    .clone()
                    .or_else(|| d.warnings.first().map(|w| format!("warning: {w}")))
                    .unwrap_or_else(|| "—".into()),
                if d.last_error.is_some() {
                    t.error()
                } else {
                    t.muted()
                },
            ),
    )
}

pub fn meta(n: usize) -> ListMeta {
    ListMeta {
        title: format!("Discovery ({n})"),
        header: vec![
            "UPSTREAM",
            "DOCUMENT",
            "FNS",
            "LAST POLL",
            "TOOK",
            "LAST ERROR",
        ],
        widths: vec![
            Constraint::Min(20),
            Constraint::Min(20),
            Constraint::Length(3),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
        empty: "discovery has not polled yet (or is disabled: --fds-mode)".into(),
    }
}
