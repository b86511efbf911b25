//! A real upstream HTTP server for gateway tests: it echoes what it received as JSON, and has
//! a few misbehaving paths (`/status/N`, `/slow/MS`, `/reset`, `/flaky/N`).
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub hits: Arc<AtomicU64>,
    /// `METHOD path?query` of every request received, in order.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Upstream {
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// How many requests for `path` (without the query) the upstream received.
    pub fn seen(&self, path: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|l| {
                let target = l.split_once(' ').map_or("", |(_, t)| t);
                target.split('?').next() == Some(path)
            })
            .count()
    }

    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

/// Starts an upstream named `name` on a free loopback port, on its own thread.
pub fn start(name: &str) -> Upstream {
    start_with(name, None)
}

/// An upstream speaking TLS with `config` (HTTP/2 when ALPN chooses it).
pub fn start_tls(name: &str, config: Arc<rustls::ServerConfig>) -> Upstream {
    start_with(name, Some(tokio_rustls::TlsAcceptor::from(config)))
}

fn start_with(name: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let (h, n, lg) = (hits.clone(), name.to_string(), log.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let flaky = Arc::new(AtomicU64::new(0));
            loop {
                tokio::select! {
                    _ = &mut rx => return,
                    Ok((stream, _)) = listener.accept() => {
                        let (h, n, flaky, lg) = (h.clone(), n.clone(), flaky.clone(), lg.clone());
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                                let target = req.uri().path_and_query().map_or("/".to_string(), |p| p.to_string());
                                lg.lock().unwrap().push(format!("{} {target}", req.method()));
                                serve(req, h.clone(), n.clone(), flaky.clone())
                            });
                            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                            match tls {
                                None => {
                                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                                }
                                Some(acceptor) => {
                                    let Ok(stream) = acceptor.accept(stream).await else { return };
                                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                                }
                            }
                        });
                    }
                }
            }
        });
    });
    Upstream {
        addr,
        name: name.to_string(),
        hits,
        log,
        _stop: tx,
    }
}

async fn serve(
    req: Request<hyper::body::Incoming>,
    hits: Arc<AtomicU64>,
    name: String,
    flaky: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let version = req.version();
    let mut headers = serde_json::Map::new();
    // Names that came more than once, with their counts (`headers` keeps the last value).
    let mut repeated = serde_json::Map::new();
    for (k, v) in req.headers() {
        let count = req.headers().get_all(k).iter().count();
        if count > 1 {
            repeated.insert(k.to_string(), count.into());
        }
        headers.insert(
            k.to_string(),
            serde_json::Value::String(v.to_str().unwrap_or("").to_string()),
        );
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut status = 200;
    if let Some(s) = path.strip_prefix("/status/") {
        status = s.parse().unwrap_or(500);
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1000))).await;
    } else if path == "/reset" {
        return Err(std::io::Error::other("reset on purpose"));
    } else if let Some(n) = path.strip_prefix("/flaky/") {
        // Fails the first N requests with 503.
        if flaky.fetch_add(1, Ordering::SeqCst) < n.parse().unwrap_or(1) {
            status = 503;
        }
    }
    let echo = serde_json::json!({
        "server": name,
        "method": method,
        "version": format!("{version:?}"),
        "path": pq,
        "headers": headers,
        "repeated": repeated,
        "body": String::from_utf8_lossy(&body),
    });
    let mut r = Response::new(Full::new(Bytes::from(echo.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r.headers_mut().insert("x-upstream", name.parse().unwrap());
    r.headers_mut().insert("x-remove-me", "1".parse().unwrap());
    Ok(r)
}

/// What a raw upstream writes for one request: the pieces (with a short pause between them, so
/// that the gateway reads them apart) and whether it hangs up afterwards.
pub type RawAnswer = (Vec<Vec<u8>>, bool);

/// An HTTP/1.1 upstream written on raw sockets, to see the gateway's connections as they are:
/// for each request head, `answer(path)` says what to write. It counts connections.
pub async fn raw(answer: fn(&str) -> RawAnswer) -> (String, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicU64::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end);
                    let path = head.split_whitespace().nth(1).unwrap_or("/");
                    let (pieces, hang_up) = answer(path);
                    for (i, p) in pieces.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        if s.write_all(p).await.is_err() {
                            return;
                        }
                    }
                    if hang_up {
                        let _ = s.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (addr, connections)
}
