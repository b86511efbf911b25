//! The admin listener (127.0.0.1 by default): `/metrics` (Prometheus text), `/ready`, and
//! `/routes` (the compiled table as JSON).

use super::matcher::{CompiledMatcher, PathCond, ValueCond};
use super::table::{Action, RouteTable};
use super::telemetry::Registry;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::watch;

/// A compiled whole-value regex as the user wrote it (without the anchors epoxy adds).
fn pattern(r: &regex::Regex) -> &str {
    let s = r.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// A value condition in Gloo's words: `value` (exact), `regex`, or neither (present).
fn value_json(v: &ValueCond) -> serde_json::Value {
    match v {
        ValueCond::Present => json!({}),
        ValueCond::Exact(e) => json!({"value": e}),
        ValueCond::Regex(r) => json!({"regex": pattern(r)}),
    }
}

/// Every condition of a matcher, not only its path: two routes with the same path differ here.
fn matcher_json(m: &CompiledMatcher) -> serde_json::Value {
    let mut out = match &m.path {
        PathCond::Prefix(p) => json!({"prefix": p}),
        PathCond::Exact(p) => json!({"exact": p}),
        PathCond::Regex(r) => json!({"regex": pattern(r)}),
    };
    out["caseSensitive"] = json!(m.case_sensitive);
    if !m.methods.is_empty() {
        out["methods"] = json!(m.methods);
    }
    if !m.headers.is_empty() {
        out["headers"] = m
            .headers
            .iter()
            .map(|h| {
                let mut j = value_json(&h.value);
                j["name"] = json!(h.name);
                if h.invert {
                    j["invertMatch"] = json!(true);
                }
                j
            })
            .collect();
    }
    if !m.query.is_empty() {
        out["queryParameters"] = m
            .query
            .iter()
            .map(|q| {
                let mut j = value_json(&q.value);
                j["name"] = json!(q.name);
                j
            })
            .collect();
    }
    out
}

fn routes_json(t: &RouteTable) -> serde_json::Value {
    let vhosts: Vec<_> = t
        .vhosts
        .iter()
        .map(|v| {
            let routes: Vec<_> = v
                .routes
                .iter()
                .map(|r| {
                    let action = match &r.action {
                        Action::Forward(f) => json!({"forward": f.targets.iter().map(|t| json!({
                            "upstream": t.upstream.as_ref().map(|u| u.name.to_string()),
                            "function": t.function.as_ref().map(|f| f.name.clone()),
                            "weight": t.weight,
                            "problem": t.problem.as_ref().map(|p| p.to_string()),
                        })).collect::<Vec<_>>()}),
                        Action::Redirect(rd) => json!({"redirect": {"status": rd.status.as_u16(), "host": rd.host, "path": rd.path}}),
                        Action::Direct { status, .. } => json!({"direct": status.as_u16()}),
                    };
                    json!({"id": r.id.to_string(), "matchers": r.matchers.iter().map(matcher_json).collect::<Vec<_>>(), "action": action})
                })
                .collect();
            json!({"virtualService": v.key.to_string(), "domains": v.domains, "routes": routes})
        })
        .collect();
    json!({"generation": t.generation, "virtualHosts": vhosts, "problems": t.problems})
}

fn respond(
    table: &ArcSwap<RouteTable>,
    registry: &Registry,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            registry.render(),
        ),
        "/ready" => {
            if table.load().generation > 0 {
                (StatusCode::OK, "text/plain", "ready\n".to_string())
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "no configuration loaded yet\n".to_string(),
                )
            }
        }
        "/routes" => (
            StatusCode::OK,
            "application/json",
            routes_json(&table.load()).to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /ready or /routes\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

pub fn run_admin(
    listener: std::net::TcpListener,
    table: Arc<ArcSwap<RouteTable>>,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Ok((stream, _)) = listener.accept() => {
                    let table = table.clone();
                    let registry = registry.clone();
                    let svc = service_fn(move |req| {
                        let r = respond(&table, &registry, &req);
                        async move { Ok::<_, std::convert::Infallible>(r) }
                    });
                    tokio::spawn(async move {
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            }
        }
    });
}
