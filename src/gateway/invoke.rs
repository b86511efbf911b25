//! A function call answered, whichever transport read the request: the bound call served
//! (`super::calls`), its response made the gateway's [`Answer`] with the route's response
//! header rules and the stages' edits, or the failure as the gateway's JSON error; the
//! upstream's counters moved. The fast path writes the answer with `h1::write_answer`, hyper
//! with `proxy::answer_response`: one decision, two writers.

use super::calls::{Bound, Failure};
use super::pipeline::{Answer, Edits};
use super::response_rules::ResponseRules;
use super::table::{CompiledRoute, DEFAULT_TIMEOUT, UpstreamTarget};
use bytes::Bytes;
use http::header;
use http_body_util::BodyExt;
use std::time::Duration;

/// Serves `bound` for a request whose head is `head` and whole body `body`. `Ok` is the
/// function's answer (a gRPC error converted by the transcoder among them), `Err` the
/// gateway's error answer (its `reason` for the access log).
pub async fn invoke(
    bound: &Bound<'_>,
    upstream: &UpstreamTarget,
    head: &http::request::Parts,
    body: Bytes,
    route: &CompiledRoute,
    edits: Option<&Edits>,
) -> Result<Answer, Answer> {
    let timeout = route.options.timeout.unwrap_or(DEFAULT_TIMEOUT);
    match bound.serve(upstream, head, body, timeout).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            let rules = ResponseRules {
                route: Some(&route.options),
                edits,
            };
            rules.apply(&mut parts.headers);
            // Framing is each transport's to write.
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::TRANSFER_ENCODING);
            let body = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(never) => match never {},
            };
            let len = body.len() as u64;
            upstream
                .stats
                .record(parts.status.as_u16(), Duration::ZERO, len);
            let mut headers = smallvec::SmallVec::new();
            let mut last = None;
            for (name, value) in parts.headers {
                // `HeaderMap`'s iteration names a header once, before its first value.
                if let Some(n) = name {
                    last = Some(n);
                }
                if let Some(n) = &last {
                    headers.push((n.clone(), value));
                }
            }
            Ok(Answer {
                status: parts.status,
                headers,
                body,
                reason: String::new(),
            })
        }
        Err(Failure {
            status,
            code,
            message,
            details,
        }) => {
            upstream.stats.record(status.as_u16(), Duration::ZERO, 0);
            let mut answer = Answer::error_with_details(
                status,
                code,
                &message,
                Some(&route.id),
                Some(&upstream.name),
                details,
            );
            ResponseRules::stages(edits).apply_to_answer(&mut answer);
            Err(answer)
        }
    }
}
