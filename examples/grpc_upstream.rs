//! The upstream of `bench/grpc.sh`: one pet, answered both as gRPC (`bench.v1.Pets/GetPet`,
//! HTTP/2 in clear) and as plain HTTP JSON (`GET /pets/1`), so that the benchmark compares
//! what the gateway does for a gRPC function call with what it does for a plain route, on an
//! upstream whose work is the same for both.
//!
//! `cargo run --release --example grpc_upstream -- 127.0.0.1:PORT` (one worker thread).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;

/// `Pet {id: 1, name: "Rex", tags: ["good", "dog"]}` in protobuf's wire format.
const PET_PROTO: &[u8] = b"\x08\x01\x12\x03Rex\x1a\x04good\x1a\x03dog";
/// The same pet in proto3's JSON mapping (64-bit integers as strings).
const PET_JSON: &str = r#"{"id":"1","name":"Rex","tags":["good","dog"]}"#;

type Body = BoxBody<Bytes, Infallible>;

async fn answer(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let path_ok = req.uri().path() == "/bench.v1.Pets/GetPet" || req.uri().path() == "/pets/1";
    // Both read the request whole before answering.
    let _ = req.into_body().collect().await;
    if !path_ok {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found")).boxed());
        *r.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(r);
    }
    if !grpc {
        let mut r = Response::new(Full::new(Bytes::from_static(PET_JSON.as_bytes())).boxed());
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return Ok(r);
    }
    // One length-prefixed message, then the status in the trailers.
    let mut framed = Vec::with_capacity(5 + PET_PROTO.len());
    framed.push(0);
    framed.extend_from_slice(&(PET_PROTO.len() as u32).to_be_bytes());
    framed.extend_from_slice(PET_PROTO);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = [
        Ok::<_, Infallible>(Frame::data(Bytes::from(framed))),
        Ok(Frame::trailers(trailers)),
    ];
    let mut r = Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    Ok(r)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9120".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
