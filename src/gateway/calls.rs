//! Function calls that are not HTTP requests rewritten: gRPC methods (`destinationSpec.grpc`)
//! called with the JSON body, HTTP requests transcoded by an upstream's `google.api.http` rules
//! (`serviceSpec.grpcJsonTranscoder`), and AWS Lambda functions (`destinationSpec.aws`)
//! invoked with the body. Compiled with the route table (descriptors decoded, methods, rules
//! and credentials found once); answered on either transport by `super::invoke` (the fast path
//! serves gRPC and Lambda calls itself and hands a transcoder's requests to hyper).

use super::function::{Extractor, extract};
use super::table::UpstreamTarget;
use crate::aws::{self, AwsError, Credentials};
use crate::grpc::method::Method;
use crate::grpc::transcode::{self, Transcoder};
use crate::grpc::{GrpcError, code_name, http_status, wire};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use prost_reflect::Kind;
use std::sync::Arc;
use std::time::Duration;

/// A compiled call of a gRPC method or a Lambda function.
#[derive(Debug)]
pub enum Call {
    Grpc(GrpcCall),
    Lambda(LambdaCall),
    /// Requests matching the upstream's HTTP rules; the others go to it as they are.
    Transcode(Arc<Transcoder>),
}

/// A request a call takes: every request for a function, one matching a rule for the
/// transcoder.
#[derive(Debug)]
pub struct Bound<'c> {
    call: &'c Call,
    rule: Option<transcode::Bound<'c>>,
}

/// A gRPC method called with the request's JSON body plus the route's parameters.
#[derive(Debug)]
pub struct GrpcCall {
    pub method: Method,
    pub extractors: Vec<Extractor>,
}

/// A Lambda function invoked with the request (its body, or all of it as an API Gateway
/// event).
#[derive(Debug)]
pub struct LambdaCall {
    pub logical_name: String,
    pub function: aws::Function,
    pub credentials: Credentials,
    pub asynchronous: bool,
    pub unwrap_as_api_gateway: bool,
    pub wrap_as_api_gateway: bool,
}

/// The media type of newline-delimited JSON (a server stream, one message a line).
const NDJSON: &str = "application/x-ndjson";

/// Why a call failed: the gateway's error answer (status, `x-epoxy-error` code, message) and
/// what the server said beyond it.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// A gRPC status's details, as JSON (the error body's `"details"`).
    pub details: Option<serde_json::Value>,
}

impl From<(StatusCode, &'static str, String)> for Failure {
    fn from((status, code, message): (StatusCode, &'static str, String)) -> Self {
        Failure {
            status,
            code,
            message,
            details: None,
        }
    }
}

impl Call {
    /// Whether the call takes this request (`None`: forwarded as it is).
    pub fn bind<'c>(&'c self, head: &http::request::Parts) -> Option<Bound<'c>> {
        let rule = match self {
            Call::Transcode(t) => {
                let ct = head
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                Some(t.bind(&head.method, head.uri.path(), ct)?)
            }
            _ => None,
        };
        Some(Bound { call: self, rule })
    }
}

impl<'c> Bound<'c> {
    /// The function's name as events and the console show it.
    pub fn name(&self) -> &'c str {
        match (self.call, &self.rule) {
            (_, Some(r)) => r.method_path(),
            (Call::Grpc(g), None) => &g.method.path,
            (Call::Lambda(l), None) => &l.logical_name,
            (Call::Transcode(_), None) => "",
        }
    }

    /// A transcoded call's gRPC path, `/package.Service/Method` (to route it again).
    pub fn grpc_path(&self) -> Option<String> {
        self.rule.as_ref().map(|r| format!("/{}", r.method_path()))
    }

    /// Whether the call goes to the upstream of the route the request matched (else its gRPC
    /// path is routed again).
    pub fn keeps_route(&self) -> bool {
        match self.call {
            Call::Transcode(t) => t.match_incoming_request_route,
            _ => true,
        }
    }

    /// Calls the function for a request (its head and whole body).
    pub async fn serve(
        &self,
        upstream: &UpstreamTarget,
        head: &http::request::Parts,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response<Full<Bytes>>, Failure> {
        match (self.call, &self.rule) {
            (Call::Transcode(t), Some(rule)) => {
                serve_transcoded(t, rule, upstream, head, &body, timeout).await
            }
            (Call::Grpc(g), _) => g.serve(upstream, head, &body, timeout).await,
            (Call::Lambda(l), _) => l.serve(head, body, timeout).await,
            (Call::Transcode(_), None) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "a request no rule matched".to_string(),
            )
                .into()),
        }
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn bad_request(message: String) -> Failure {
    (StatusCode::BAD_REQUEST, "bad-request", message).into()
}

/// Client headers sent on as gRPC metadata: `authorization` and the `x-` headers (the
/// gateway's own `x-request-id` among them); not hop-by-hop or HTTP framing headers.
fn metadata(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in h {
        if *k == header::AUTHORIZATION || k.as_str().starts_with("x-") {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

impl GrpcCall {
    /// The request message as JSON: the body's keys, then the route's variables (as the field
    /// they name takes them: text for a string field, a JSON value for others).
    fn request_json(&self, head: &http::request::Parts, body: &[u8]) -> Result<Vec<u8>, Failure> {
        // No route variables to add: the body is the message as it is.
        if self.extractors.is_empty() && body.first().is_some_and(|b| *b == b'{') {
            return self.method.request_from_text(body).map_err(bad_request);
        }
        let mut obj = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Map::new()
        } else {
            match serde_json::from_slice(body) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => {
                    return Err(bad_request(format!(
                        "`{}` takes a JSON object (a `{}`)",
                        self.method.path,
                        self.method.input.full_name()
                    )));
                }
                Err(e) => {
                    return Err(bad_request(format!(
                        "`{}` takes a JSON body: {e}",
                        self.method.path
                    )));
                }
            }
        };
        let pq = head.uri.path_and_query().map_or("/", |p| p.as_str());
        for (k, v) in extract(&self.extractors, pq, (&head.headers).into()) {
            let field = self
                .method
                .input
                .get_field_by_json_name(&k)
                .or_else(|| self.method.input.get_field_by_name(&k));
            let value = match field.map(|f| f.kind()) {
                Some(Kind::String) | None => serde_json::Value::String(v),
                Some(_) => serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v)),
            };
            obj.insert(k, value);
        }
        self.method
            .request(serde_json::Value::Object(obj))
            .map_err(bad_request)
    }

    async fn serve(
        &self,
        upstream: &UpstreamTarget,
        head: &http::request::Parts,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response<Full<Bytes>>, Failure> {
        let message = self.request_json(head, body)?;
        let (host, send) = grpc_sender(upstream).await?;
        let answers = match wire::call(
            &send,
            &host,
            &self.method.path,
            &message,
            &metadata(&head.headers),
            timeout,
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                return failed(
                    e,
                    &self.method,
                    false,
                    &prost_reflect::SerializeOptions::new(),
                );
            }
        };
        let answer_error = |e: String| {
            (
                StatusCode::BAD_GATEWAY,
                "function-error",
                format!("`{}`: {e}", self.method.path),
            )
        };
        // A stream as newline-delimited JSON when the client asks for it, else an array.
        let ndjson = self.method.server_streaming
            && head
                .headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains(NDJSON));
        if !ndjson {
            let body = self.method.response_text(&answers).map_err(answer_error)?;
            return Ok(json_response(StatusCode::OK, body));
        }
        let mut body = Vec::new();
        if let serde_json::Value::Array(items) =
            self.method.response(&answers).map_err(answer_error)?
        {
            for item in items {
                body.extend(serde_json::to_vec(&item).unwrap_or_default());
                body.push(b'\n');
            }
        }
        let mut r = json_response(StatusCode::OK, body);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
        Ok(r)
    }
}

/// An endpoint of the upstream and its pooled HTTP/2 connection (the gateway's dialer).
async fn grpc_sender(upstream: &UpstreamTarget) -> Result<(Arc<str>, wire::Sender), Failure> {
    let Some(host) = upstream.pick().cloned() else {
        let f = super::attempts::Failed::no_upstream("the upstream has no hosts");
        return Err((f.status, f.code, f.message).into());
    };
    let open = async {
        let unreachable = |reason: String| GrpcError::Unreachable {
            authority: host.to_string(),
            reason,
        };
        match upstream.dial.connect(&host, true).await {
            Ok(super::dial::Sender::H2(s)) => Ok(s),
            Ok(super::dial::Sender::H1(_)) => Err(unreachable(
                "it chose HTTP/1.1 by ALPN; gRPC needs HTTP/2".into(),
            )),
            Err(e) => Err(unreachable(e.explain())),
        }
    };
    let send = wire::pooled(&host, upstream.dial.id, open)
        .await
        .map_err(grpc_failure)?;
    Ok((host, send))
}

/// A request transcoded by a rule: the message built from it, the method called, the
/// answer as JSON; a gRPC error as its HTTP status (a `google.rpc.Status` body with
/// `convertGrpcStatus`), with `grpc-status` and `grpc-message` headers as Envoy sends them.
async fn serve_transcoded(
    t: &Transcoder,
    rule: &transcode::Bound<'_>,
    upstream: &UpstreamTarget,
    head: &http::request::Parts,
    body: &[u8],
    timeout: Duration,
) -> Result<Response<Full<Bytes>>, Failure> {
    let path = rule.method_path();
    let message = t
        .request(rule, head.uri.query(), body)
        .map_err(|e| bad_request(format!("`{path}`: {e}")))?;
    let (host, send) = grpc_sender(upstream).await?;
    let answers = wire::call(
        &send,
        &host,
        path,
        &message,
        &metadata(&head.headers),
        timeout,
    )
    .await;
    match answers {
        Ok(answers) => {
            let json = t.response(rule, &answers).map_err(|e| {
                (
                    StatusCode::BAD_GATEWAY,
                    "function-error",
                    format!("`{path}`: {e}"),
                )
            })?;
            Ok(json_response(StatusCode::OK, json))
        }
        Err(e) => failed(e, rule.method(), t.convert_grpc_status, t.print_options()),
    }
}

/// A failed call's answer. With `convert` (the transcoder's `convertGrpcStatus`), a gRPC
/// status answers as Envoy's does: the `google.rpc.Status` as JSON (the server's own, with its
/// details, when it sent `grpc-status-details-bin`) and the `grpc-status` and `grpc-message`
/// headers. Otherwise a status is the gateway's error, with the server's details, when it
/// sent some, in its `"details"`. Details are decoded against the method's descriptors (see
/// `grpc::status`) and printed with `print` (a transcoder's `printOptions`).
fn failed(
    e: GrpcError,
    method: &Method,
    convert: bool,
    print: &prost_reflect::SerializeOptions,
) -> Result<Response<Full<Bytes>>, Failure> {
    let (code, message, details) = match e {
        GrpcError::Status {
            code,
            message,
            details,
        } if convert => (code, message, details),
        GrpcError::Status {
            code,
            message,
            details: Some(d),
        } => {
            return Err(Failure {
                status: http_status(code),
                code: "grpc-status",
                message: format!("{}: {message}", code_name(code)),
                details: Some(d.details_json(method.input.parent_pool(), print).into()),
            });
        }
        e => return Err(grpc_failure(e)),
    };
    let body = match &details {
        Some(d) => d.to_json(method.input.parent_pool(), print),
        None => serde_json::json!({"code": code, "message": message}),
    };
    let mut r = json_response(
        http_status(code),
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    let h = r.headers_mut();
    h.insert("grpc-status", HeaderValue::from(code));
    let encoded = percent_encoding::utf8_percent_encode(&message, GRPC_MESSAGE).to_string();
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        h.insert("grpc-message", v);
    }
    Ok(r)
}

/// What `grpc-message` percent-encodes (gRPC's HTTP/2 protocol: all but printable ASCII
/// other than `%`).
const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

fn grpc_failure(e: GrpcError) -> Failure {
    let why = match e {
        GrpcError::Status { code, message, .. } => (
            http_status(code),
            "grpc-status",
            format!("{}: {message}", code_name(code)),
        ),
        GrpcError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            e.to_string(),
        ),
        GrpcError::Unreachable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream-unavailable",
            e.to_string(),
        ),
        GrpcError::Protocol(_) => (StatusCode::BAD_GATEWAY, "bad-gateway", e.to_string()),
    };
    why.into()
}

impl LambdaCall {
    /// The payload: the body as it is, or the request as API Gateway's proxy event.
    fn payload(&self, head: &http::request::Parts, body: Bytes) -> Bytes {
        if !self.wrap_as_api_gateway {
            return body;
        }
        let headers: serde_json::Map<String, serde_json::Value> = head
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.into())))
            .collect();
        let query: serde_json::Map<String, serde_json::Value> = head
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let (text, base64) = match std::str::from_utf8(&body) {
            Ok(t) => (t.to_string(), false),
            Err(_) => {
                use base64::Engine;
                (
                    base64::engine::general_purpose::STANDARD.encode(&body),
                    true,
                )
            }
        };
        let event = serde_json::json!({
            "httpMethod": head.method.as_str(),
            "path": head.uri.path(),
            "headers": headers,
            "queryStringParameters": if query.is_empty() { serde_json::Value::Null } else { query.into() },
            "body": text,
            "isBase64Encoded": base64,
        });
        Bytes::from(serde_json::to_vec(&event).unwrap_or_default())
    }

    async fn serve(
        &self,
        head: &http::request::Parts,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response<Full<Bytes>>, Failure> {
        let payload = self.payload(head, body);
        let a = aws::invoke(
            &self.function,
            payload,
            self.asynchronous,
            &self.credentials,
            timeout,
        )
        .await
        .map_err(|e| match e {
            AwsError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                e.to_string(),
            ),
            AwsError::Unreachable(..) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream-unavailable",
                e.to_string(),
            ),
            _ => (StatusCode::BAD_GATEWAY, "aws-error", e.to_string()),
        })?;
        if let Some(kind) = &a.function_error {
            let mut r = json_response(StatusCode::BAD_GATEWAY, a.payload.to_vec());
            if let Ok(v) = HeaderValue::from_str(kind) {
                r.headers_mut()
                    .insert(HeaderName::from_static("x-amz-function-error"), v);
            }
            return Ok(r);
        }
        if self.asynchronous {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::ACCEPTED;
            return Ok(r);
        }
        if self.unwrap_as_api_gateway {
            return unwrap_api_gateway(&a.payload).map_err(|e| {
                (
                    StatusCode::BAD_GATEWAY,
                    "function-error",
                    format!(
                        "function `{}` did not answer as API Gateway expects: {e}",
                        self.logical_name
                    ),
                )
                    .into()
            });
        }
        Ok(json_response(StatusCode::OK, a.payload.to_vec()))
    }
}

/// API Gateway's proxy answer (`{statusCode, headers, multiValueHeaders, body,
/// isBase64Encoded}`) as the HTTP response it describes.
fn unwrap_api_gateway(payload: &[u8]) -> Result<Response<Full<Bytes>>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let status = v
        .get("statusCode")
        .and_then(|s| s.as_u64())
        .ok_or("no numeric `statusCode`")?;
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("`statusCode` {status} is not an HTTP status"))?;
    let body = match v.get("body") {
        None | Some(serde_json::Value::Null) => Bytes::new(),
        Some(serde_json::Value::String(s)) => {
            if v.get("isBase64Encoded").and_then(|b| b.as_bool()) == Some(true) {
                use base64::Engine;
                Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_err(|e| format!("`body` is not base64: {e}"))?,
                )
            } else {
                Bytes::from(s.clone())
            }
        }
        Some(_) => return Err("`body` is not a string".into()),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    let mut add = |k: &str, v: &serde_json::Value, append: bool| -> Result<(), String> {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("`{k}` is not a header name"))?;
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let value = HeaderValue::from_str(&text)
            .map_err(|_| format!("header `{k}`: not a header value"))?;
        // Framing is the gateway's.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            return Ok(());
        }
        if append {
            h.append(name, value);
        } else {
            h.insert(name, value);
        }
        Ok(())
    };
    if let Some(m) = v.get("headers").and_then(|m| m.as_object()) {
        for (k, v) in m {
            add(k, v, false)?;
        }
    }
    if let Some(m) = v.get("multiValueHeaders").and_then(|m| m.as_object()) {
        for (k, vs) in m {
            for v in vs.as_array().into_iter().flatten() {
                add(k, v, true)?;
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_answers_unwrap_and_bad_ones_are_named() {
        let r = unwrap_api_gateway(
            br#"{"statusCode": 201, "headers": {"x-a": "1"}, "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]}, "body": "aGk=", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        for (bad, why) in [
            (&br#"{"body": "x"}"#[..], "statusCode"),
            (br#"{"statusCode": 99}"#, "not an HTTP status"),
            (br#"{"statusCode": 200, "body": 5}"#, "not a string"),
            (b"nope", "not JSON"),
        ] {
            let e = unwrap_api_gateway(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
