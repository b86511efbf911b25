//! The embedded petstore: the same API and Swagger document as Gloo's petstore example, so the
//! original walkthrough works on one machine.
//!
//! `GET /swagger.json` (verbatim), `GET /api/pets`, `POST /api/pets`, `GET /api/pets/{id}`,
//! `DELETE /api/pets/{id}`; pets are kept in memory.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The petstore's Swagger 2.0 document, byte for byte.
pub const SWAGGER: &str = include_str!("swagger.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pet {
    pub id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

fn initial_pets() -> Vec<Pet> {
    vec![
        Pet {
            id: 1,
            name: "Dog".into(),
            tag: None,
            status: Some("available".into()),
        },
        Pet {
            id: 2,
            name: "Cat".into(),
            tag: None,
            status: Some("pending".into()),
        },
    ]
}

type Pets = Arc<Mutex<Vec<Pet>>>;

fn json(status: StatusCode, v: &impl Serialize) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(v).unwrap_or_default(),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    json(
        status,
        &serde_json::json!({"code": status.as_u16(), "message": message}),
    )
}

async fn serve(req: Request<Incoming>, pets: Pets) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/swagger.json") => {
            let mut r = Response::new(Full::new(Bytes::from_static(SWAGGER.as_bytes())));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            r
        }
        (Method::GET, "/api/pets") => {
            let list = pets.lock().map(|p| p.clone()).unwrap_or_default();
            json(StatusCode::OK, &list)
        }
        (Method::POST, "/api/pets") => {
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
            };
            match serde_json::from_slice::<Pet>(&body) {
                Ok(pet) => {
                    if let Ok(mut p) = pets.lock() {
                        p.retain(|x| x.id != pet.id);
                        p.push(pet.clone());
                        p.sort_by_key(|x| x.id);
                    }
                    json(StatusCode::OK, &pet)
                }
                Err(e) => error(
                    StatusCode::BAD_REQUEST,
                    format!("a pet needs an integer id and a name: {e}"),
                ),
            }
        }
        (m, p) if p.starts_with("/api/pets/") => {
            let raw = &p["/api/pets/".len()..];
            let Ok(id) = raw.parse::<i64>() else {
                return error(StatusCode::BAD_REQUEST, format!("`{raw}` is not a pet id"));
            };
            match m {
                Method::GET => match pets
                    .lock()
                    .ok()
                    .and_then(|p| p.iter().find(|x| x.id == id).cloned())
                {
                    Some(pet) => json(StatusCode::OK, &pet),
                    None => error(StatusCode::NOT_FOUND, format!("pet {id} not found")),
                },
                Method::DELETE => {
                    if let Ok(mut p) = pets.lock() {
                        p.retain(|x| x.id != id);
                    }
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    r
                }
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or DELETE".into()),
            }
        }
        _ => error(StatusCode::NOT_FOUND, format!("no such path: {path}")),
    }
}

/// A running petstore; dropping it stops it.
pub struct Petstore {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Drop for Petstore {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the petstore on `addr` (port 0 for a free one) on the current runtime.
pub async fn start(addr: SocketAddr) -> std::io::Result<Petstore> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let pets: Pets = Arc::new(Mutex::new(initial_pets()));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                Ok((stream, _)) = listener.accept() => {
                    let pets = pets.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let pets = pets.clone();
                            async move { Ok::<_, std::convert::Infallible>(serve(req, pets).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            }
        }
    });
    Ok(Petstore { addr, stop })
}
