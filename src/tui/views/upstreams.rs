//! Upstreams: name, type, address, functions, discovery, status.

use super::ViewCtx;
use super::{ItemId, ListMeta};
use crate::api::resource::Upstream;
use crate::api::status::State;
use crate::api::{Kind, Resource, ResourceKey};
use crate::tui::data::ago;
use crate::tui::widgets::table::TRow;
use ratatui::layout::Constraint;

/// The upstreams, in store order (the keys of the listing).
pub fn keys(cx: &ViewCtx) -> Vec<ResourceKey> {
    cx.data
        .listing
        .resources
        .iter()
        .filter(|(_, r)| matches!(r, Resource::Upstream(_)))
        .map(|(k, _)| k.clone())
        .collect()
}

fn upstream<'a>(cx: &ViewCtx<'a>, key: &ResourceKey) -> Option<&'a Upstream> {
    match cx.data.listing.resources.get(key)? {
        Resource::Upstream(u) => Some(u),
        _ => None,
    }
}

pub fn id(cx: &ViewCtx, key: &ResourceKey) -> Option<ItemId> {
    Some(ItemId::Upstream(upstream(cx, key)?.metadata.name.clone()))
}

pub fn row(cx: &ViewCtx, key: &ResourceKey) -> Option<TRow> {
    let u = upstream(cx, key)?;
    let now = cx.now;
    let t = cx.theme;
    let key = ResourceKey::new(
        Kind::Upstream,
        u.metadata.namespace.clone().unwrap_or_default(),
        &u.metadata.name,
    );
    let (kind, addr) = address(u);
    let nfun = u.spec.functions().len();
    let (disc, dstyle) = match cx.data.discovery.get(&key) {
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
    let (status, sstyle) = match cx.data.report.statuses.get(&key) {
        Some(s) => match s.state {
            State::Accepted => ("Accepted".to_string(), t.ok()),
            State::Warning => ("Warning".to_string(), t.warn()),
            State::Rejected => ("Rejected".to_string(), t.error()),
        },
        None => ("Pending".into(), t.muted()),
    };
    Some(
        TRow::new()
            .cell(u.metadata.name.clone())
            .cell(kind)
            .cell(addr)
            .cell(nfun.to_string())
            .styled(disc, dstyle)
            .styled(status, sstyle),
    )
}

/// An upstream's type (`static`, `kube`) and where it points.
pub fn address(u: &Upstream) -> (&'static str, String) {
    if let Some(k) = &u.spec.kube {
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
    } else if let Some(a) = &u.spec.aws {
        ("aws", a.region.clone())
    } else {
        ("?", String::new())
    }
}

pub fn meta(n: usize) -> ListMeta {
    ListMeta {
        title: format!("Upstreams ({n})"),
        header: vec!["NAME", "TYPE", "ADDRESS", "FNS", "DISCOVERY", "STATUS"],
        widths: vec![
            Constraint::Min(22),
            Constraint::Length(6),
            Constraint::Min(15),
            Constraint::Length(3),
            Constraint::Min(16),
            Constraint::Length(8),
        ],
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
