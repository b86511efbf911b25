//! A function call (a gRPC method, a Lambda function) served on the fast path: the request's
//! head made the `http` parts a call reads, the call answered by `super::super::invoke` (as on
//! hyper's side), the answer written as any other.

use super::super::calls::Call as FunctionCall;
use super::super::invoke::invoke;
use super::super::pipeline::{Answer, Edits};
use super::super::table::{CompiledRoute, Target};
use super::super::telemetry::outcome;
use super::{ClientIo, Flow, Request, Served, send_client, write_answer};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::time::Instant;

/// Whether every request to `call` is a call answered from its upstream's answer (a gRPC
/// method, a Lambda function): those the fast path serves. A transcoder's requests may be
/// forwarded as they are (over HTTP/2) or routed again: hyper's.
pub(super) fn served_here(call: &FunctionCall) -> bool {
    matches!(call, FunctionCall::Grpc(_) | FunctionCall::Lambda(_))
}

/// Serves a function call for `req` (whole: the fast path reads only bodies it holds).
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve<'t>(
    io: &mut impl ClientIo,
    req: &Request<'_, '_>,
    route: &'t CompiledRoute,
    dest: &'t Target,
    call: &'t FunctionCall,
    edits: Option<&Edits>,
    out: &mut Vec<u8>,
    started: Instant,
) -> Served<'t> {
    let mut o = outcome(0);
    o.upstream = dest.upstream.as_ref().map(|u| &*u.name);
    let answer = match (dest.upstream.as_deref(), parts_of(req, edits)) {
        (None, _) => Err(Answer::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-upstream",
            "no upstream",
            Some(&route.id),
            None,
        )),
        (_, Err(why)) => Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &why,
            Some(&route.id),
            o.upstream,
        )),
        (Some(upstream), Ok(head)) => match call.bind(&head) {
            Some(bound) => {
                o.function = Some(bound.name()).filter(|n| !n.is_empty());
                let body = Bytes::copy_from_slice(req.body);
                invoke(&bound, upstream, &head, body, route, edits).await
            }
            None => Err(Answer::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the call takes no request",
                Some(&route.id),
                o.upstream,
            )),
        },
    };
    let answer = answer.unwrap_or_else(|a| {
        o.error = Some(a.reason.clone());
        a
    });
    o.status = answer.status.as_u16();
    o.bytes_out = answer.body.len() as u64;
    out.clear();
    write_answer(out, &answer, req.closing(), req.head.method != "HEAD");
    let latency = started.elapsed();
    let flow = match send_client(io, out).await {
        Ok(()) => req.flow(),
        Err(_) => Flow::Close,
    };
    (o, latency, flow)
}

/// The request's head as hyper would hand it over (origin-form target, the headers as sent),
/// with the stages' edits applied.
fn parts_of(req: &Request<'_, '_>, edits: Option<&Edits>) -> Result<http::request::Parts, String> {
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("`{}` is not a header name", h.name))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| format!("header `{}`: not a header value", h.name))?;
        headers.append(name, value);
    }
    if let Some(e) = edits {
        e.apply_to_request(&mut headers);
    }
    let (mut parts, ()) = http::Request::builder()
        .method(req.head.method)
        .uri(req.head.target)
        .body(())
        .map_err(|e| format!("the request line: {e}"))?
        .into_parts();
    parts.headers = headers;
    Ok(parts)
}
