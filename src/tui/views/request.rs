//! One request of the access log (`enter` on it): what was asked (method, path, host,
//! headers), what answered (status, route, upstream, function, error), how long it took and how
//! much it carried, and the match trace of the request against the routes as they are now.
//! `t` replays it in the tester, `g` goes to its route.

use super::ViewCtx;
use crate::gateway::telemetry::RequestEvent;
use crate::tester::send::Saved;
use crate::tester::trace::{Trace, trace};
use ratatui::style::Style;

/// How many lines of a match trace the request view shows (the last ones).
const TRACE_SHOWN: usize = 40;

/// Headers whose values are not shown (nor saved): credentials.
const SECRET: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];

/// A header's value as shown or saved: credentials hidden.
pub fn shown_value(name: &str, value: &str) -> String {
    if SECRET.iter().any(|s| name.eq_ignore_ascii_case(s)) {
        format!("••• ({} bytes, hidden)", value.len())
    } else {
        value.to_string()
    }
}

pub fn lines(cx: &ViewCtx, seq: u64) -> Vec<(String, Style)> {
    let t = cx.theme;
    let Some(e) = cx.data.event(seq) else {
        return vec![(
            "this request has left the log (it keeps the last 2000)".into(),
            t.warn(),
        )];
    };
    let mut out = Vec::new();
    let field = |out: &mut Vec<(String, Style)>, k: &str, v: String, st: Style| {
        out.push((format!("{k:<13}{v}"), st));
    };
    field(
        &mut out,
        "request",
        format!("{} {}", e.method, e.path),
        t.accent(),
    );
    field(&mut out, "host", e.host.clone(), Style::default());
    field(
        &mut out,
        "time",
        format!("{} UTC", super::log::clock(e.time)),
        Style::default(),
    );
    let st = match e.status {
        0..=299 => t.ok(),
        300..=399 => t.accent(),
        400..=499 => t.warn(),
        _ => t.error(),
    };
    field(&mut out, "status", e.status.to_string(), st);
    field(
        &mut out,
        "timing",
        format!(
            "{} from the request head to the end of the response",
            super::log::latency(e.latency)
        ),
        Style::default(),
    );
    field(
        &mut out,
        "bytes",
        format!("{} in · {} out", e.bytes_in, e.bytes_out),
        Style::default(),
    );
    let route = match &e.route {
        Some(id) => match cx.data.route_by_id(id) {
            Some((vs, i, r)) => format!(
                "{} (now #{i} of {}: {})",
                cx.data.route_place(id, cx.namespace),
                vs.name,
                super::routes::match_text(r)
            ),
            None => format!("{id} (gone, or changed since)"),
        },
        None => "none matched".into(),
    };
    field(&mut out, "route", route, Style::default());
    field(
        &mut out,
        "upstream",
        e.upstream.clone().unwrap_or_else(|| "—".into()),
        Style::default(),
    );
    if let Some(f) = &e.function {
        field(&mut out, "function", f.clone(), t.accent());
    }
    match &e.error {
        Some(_) => field(&mut out, "error", super::log::error_text(e), t.error()),
        None => field(&mut out, "error", "—".into(), t.muted()),
    }
    out.push((String::new(), Style::default()));
    out.push((format!("headers ({})", e.headers.len()), t.muted()));
    if e.headers.is_empty() {
        out.push(("  none recorded".into(), t.muted()));
    }
    for (k, v) in &e.headers {
        out.push((format!("  {k}: {}", shown_value(k, v)), Style::default()));
    }
    out.push((String::new(), Style::default()));
    out.push((
        "match trace (against the routes as they are now)".into(),
        t.muted(),
    ));
    let mut hm = http::HeaderMap::new();
    for (k, v) in &e.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            hm.append(k, v);
        }
    }
    let table = cx.gateway.table.load_full();
    let saved = Saved {
        method: e.method.clone(),
        path: e.path.clone(),
        headers: String::new(),
        body: String::new(),
    };
    let mut tr = trace(&table, cx.data, &saved, &e.host, &hm);
    // A long walk (thousands of routes before the match) shows its end: the routes just
    // before the one that answered, and how many earlier ones did not match.
    if tr.len() > TRACE_SHOWN + 1 {
        let cut = tr.len() - TRACE_SHOWN;
        let note = Trace {
            text: format!("… {} earlier routes did not match", cut - 1),
            ok: None,
        };
        tr.splice(1..cut, [note]);
    }
    for x in tr {
        let st = match x.ok {
            Some(true) => t.ok(),
            Some(false) => t.warn(),
            None => Style::default(),
        };
        out.push((format!("  {}", x.text), st));
    }
    out
}

/// The log as JSON lines (one request per line, oldest first), credentials hidden.
pub fn export<'a>(events: impl Iterator<Item = &'a RequestEvent>) -> String {
    let mut out = String::new();
    for e in events {
        let headers: serde_json::Map<String, serde_json::Value> = e
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), shown_value(k, v).into()))
            .collect();
        let line = serde_json::json!({
            "time": crate::api::time::rfc3339_ms(e.time),
            "method": e.method,
            "host": e.host,
            "path": e.path,
            "status": e.status,
            "latency_ms": e.latency.as_secs_f64() * 1000.0,
            "route": e.route,
            "upstream": e.upstream,
            "function": e.function,
            "bytes_in": e.bytes_in,
            "bytes_out": e.bytes_out,
            "error": e.error,
            "headers": headers,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}
