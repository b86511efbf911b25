//! The live access log: a strip with requests per second, per-route counts and a latency
//! sparkline, then the requests (newest last), following or paused.

use super::ListMeta;
use super::ViewCtx;
use crate::gateway::telemetry::RequestEvent;
use crate::tui::widgets::table::TRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline};
use std::time::{SystemTime, UNIX_EPOCH};

/// `HH:MM:SS.mmm` (UTC).
pub fn clock(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

pub fn latency(d: std::time::Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

pub fn row(cx: &ViewCtx, e: &RequestEvent) -> TRow {
    let t = cx.theme;
    let st = match e.status {
        0..=299 => t.ok(),
        300..=399 => t.accent(),
        400..=499 => t.warn(),
        _ => t.error(),
    };
    // A route reads as its name or where it is now (`default#1`).
    let route = match &e.route {
        Some(r) => cx.data.route_place(r, cx.namespace),
        None => "(no route)".into(),
    };
    TRow::new()
        .styled(clock(e.time), t.muted())
        .styled(e.status.to_string(), st)
        .cell(e.method.clone())
        .cell(e.path.clone())
        .cell(route)
        .cell(e.upstream.clone().unwrap_or_default())
        .styled(e.function.clone().unwrap_or_default(), t.accent())
        .cell(latency(e.latency))
        .styled(error_text(e), t.error())
}

/// The ERROR cell: a policy's refusal says so (`denied auth: jwt (p): expired`), so that `/`
/// can keep the denials (`/denied`, `/denied limit`).
pub fn error_text(e: &RequestEvent) -> String {
    match (crate::tui::data::denial(e), &e.error) {
        (Some(kind), Some(reason)) => format!("denied {kind}: {reason}"),
        (_, error) => error.clone().unwrap_or_default(),
    }
}

pub fn meta(follow: bool, n: usize) -> ListMeta {
    ListMeta {
        title: format!(
            "Access log ({n}) · {}",
            if follow { "following" } else { "paused" }
        ),
        header: vec![
            "TIME", "CODE", "METHOD", "PATH", "ROUTE", "UPSTREAM", "FUNCTION", "LATENCY", "ERROR",
        ],
        widths: vec![
            Constraint::Length(12),
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Fill(4),
            Constraint::Fill(3),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
        empty: "no requests yet: :test sends one".into(),
    }
}

/// The strip above the log: totals, the busiest routes, and a latency sparkline.
pub fn draw_strip(cx: &ViewCtx, f: &mut Frame, area: Rect) {
    let t = cx.theme;
    let now = cx.now;
    let block = Block::bordered()
        .border_style(t.border())
        .title(Span::styled(" Traffic ", t.accent()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [text, spark] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(inner);
    let mut counts: Vec<(&String, &u64)> = cx.data.route_counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:.1} req/s", cx.data.rate(now)), t.accent()),
        Span::raw(format!(" · {} total", cx.data.total)),
        Span::styled(format!(" · {} denied", cx.data.denied), t.warn()),
    ])];
    for (r, n) in counts.iter().take(inner.height.saturating_sub(1) as usize) {
        lines.push(Line::from(vec![
            Span::raw(format!("{n:>5} ")),
            Span::styled(cx.data.route_place(r, cx.namespace), t.muted()),
            Span::raw(format!(" {:.1}/s", cx.data.route_rate(now, r))),
        ]));
    }
    f.render_widget(Paragraph::new(lines), text);
    let data = cx.data.latencies(None, spark.width as usize);
    let max = data.iter().copied().max().unwrap_or(0);
    let [label, bars] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(spark);
    f.render_widget(
        Paragraph::new(Line::styled(
            format!(
                "latency (max {})",
                latency(std::time::Duration::from_micros(max))
            ),
            t.muted(),
        )),
        label,
    );
    f.render_widget(Sparkline::default().data(&data).style(t.ok()), bars);
}
