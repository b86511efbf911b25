//! The reflection client: asks a server (reflection v1, then v1alpha) for its services and
//! the file descriptors that define them, dependencies included.
//!
//! Reflection is a bidirectional stream; each question here is its own call with one request
//! message, which every server answers the same way and keeps the client to unary calls.

use super::GrpcError;
use super::wire;
use http::HeaderMap;
use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The reflection services, newest first.
const SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

// The messages of grpc/reflection/v1/reflection.proto that the client uses (v1alpha's are
// the same on the wire).

#[derive(Clone, PartialEq, prost::Message)]
struct ReflectionRequest {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(oneof = "Question", tags = "3, 4, 7")]
    question: Option<Question>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Question {
    #[prost(string, tag = "3")]
    FileByFilename(String),
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
    #[prost(string, tag = "7")]
    ListServices(String),
}

#[derive(Clone, PartialEq, prost::Message)]
struct ReflectionResponse {
    #[prost(oneof = "Answer", tags = "4, 6, 7")]
    answer: Option<Answer>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Answer {
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    #[prost(message, tag = "6")]
    Services(ListServiceResponse),
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptorResponse {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file_descriptor_proto: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListServiceResponse {
    #[prost(message, repeated, tag = "1")]
    service: Vec<ServiceResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ServiceResponse {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ErrorResponse {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// One service a server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub package: String,
    pub name: String,
    pub methods: Vec<String>,
}

/// What reflection found: the services (reflection itself left out) and the descriptors of
/// the files that define them, dependencies first.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub services: Vec<Service>,
    pub descriptors: FileDescriptorSet,
}

struct Client<'a> {
    send: hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    authority: &'a str,
    service: &'static str,
    timeout: Duration,
}

impl Client<'_> {
    async fn ask(&self, q: Question) -> Result<Answer, GrpcError> {
        let req = ReflectionRequest {
            host: String::new(),
            question: Some(q),
        };
        let path = format!("{}/ServerReflectionInfo", self.service);
        let answers = wire::call(
            &self.send,
            self.authority,
            &path,
            &req.encode_to_vec(),
            &HeaderMap::new(),
            self.timeout,
        )
        .await?;
        let first = answers
            .first()
            .ok_or_else(|| GrpcError::Protocol("reflection gave no answer".into()))?;
        let resp = ReflectionResponse::decode(first.as_ref())
            .map_err(|e| GrpcError::Protocol(format!("reflection answer: {e}")))?;
        match resp.answer {
            Some(Answer::Error(e)) => Err(GrpcError::Status {
                code: e.error_code as u32,
                message: e.error_message,
                details: None,
            }),
            Some(a) => Ok(a),
            None => Err(GrpcError::Protocol(
                "reflection gave an empty answer".into(),
            )),
        }
    }

    /// Files by their protos: the answer's files added to `files` by name.
    async fn files(
        &self,
        q: Question,
        files: &mut BTreeMap<String, FileDescriptorProto>,
    ) -> Result<(), GrpcError> {
        let Answer::Files(f) = self.ask(q).await? else {
            return Err(GrpcError::Protocol(
                "reflection answered another question".into(),
            ));
        };
        for raw in f.file_descriptor_proto {
            let fd = FileDescriptorProto::decode(raw.as_slice())
                .map_err(|e| GrpcError::Protocol(format!("a file descriptor: {e}")))?;
            files.insert(fd.name().to_string(), fd);
        }
        Ok(())
    }
}

/// Asks the server at `authority` (`host:port`, cleartext HTTP/2) what it serves.
pub async fn discover(authority: &str, timeout: Duration) -> Result<Discovered, GrpcError> {
    discover_on(wire::connect(authority).await?, authority, timeout).await
}

/// Asks the server at the other end of `send` (an HTTP/2 connection to `authority`, in
/// clear or over TLS) what it serves.
pub async fn discover_on(
    send: wire::Sender,
    authority: &str,
    timeout: Duration,
) -> Result<Discovered, GrpcError> {
    let mut last = None;
    for service in SERVICES {
        let client = Client {
            send: send.clone(),
            authority,
            service,
            timeout,
        };
        match discover_with(&client).await {
            // The server has no such reflection service: try the older one.
            Err(e @ GrpcError::Status { code: 12, .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| GrpcError::Protocol("no reflection service".into())))
}

async fn discover_with(c: &Client<'_>) -> Result<Discovered, GrpcError> {
    let Answer::Services(list) = c.ask(Question::ListServices(String::new())).await? else {
        return Err(GrpcError::Protocol(
            "reflection answered another question".into(),
        ));
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|s| s.name)
        .filter(|n| !n.starts_with("grpc.reflection."))
        .collect();
    let mut files = BTreeMap::new();
    for name in &names {
        if !files.values().any(|f| defines(f, name)) {
            c.files(Question::FileContainingSymbol(name.clone()), &mut files)
                .await?;
        }
    }
    // Dependencies the server did not send with the files that import them.
    loop {
        let missing: BTreeSet<String> = files
            .values()
            .flat_map(|f| f.dependency.iter())
            .filter(|d| !files.contains_key(*d))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        for d in missing {
            c.files(Question::FileByFilename(d.clone()), &mut files)
                .await?;
            if !files.contains_key(&d) {
                return Err(GrpcError::Protocol(format!(
                    "the server did not give `{d}`"
                )));
            }
        }
    }
    let mut services = Vec::new();
    for name in &names {
        let found = files.values().find_map(|f| {
            f.service
                .iter()
                .find(|s| qualified(f.package(), s.name()) == *name)
                .map(|s| Service {
                    package: f.package().to_string(),
                    name: s.name().to_string(),
                    methods: s.method.iter().map(|m| m.name().to_string()).collect(),
                })
        });
        match found {
            Some(s) => services.push(s),
            None => {
                return Err(GrpcError::Protocol(format!(
                    "no descriptor defines the service `{name}`"
                )));
            }
        }
    }
    Ok(Discovered {
        services,
        descriptors: FileDescriptorSet {
            file: dependency_order(files),
        },
    })
}

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_string()
    } else {
        format!("{package}.{name}")
    }
}

/// Whether the file defines the service `name`.
fn defines(f: &FileDescriptorProto, name: &str) -> bool {
    f.service
        .iter()
        .any(|s| qualified(f.package(), s.name()) == name)
}

/// The files with each one after those it imports (a stable order: the same server gives
/// the same bytes, so discovery writes only on change).
fn dependency_order(mut files: BTreeMap<String, FileDescriptorProto>) -> Vec<FileDescriptorProto> {
    let mut out = Vec::with_capacity(files.len());
    let mut placed = BTreeSet::new();
    while !files.is_empty() {
        let ready: Vec<String> = files
            .iter()
            .filter(|(_, f)| {
                f.dependency
                    .iter()
                    .all(|d| placed.contains(d) || !files.contains_key(d))
            })
            .map(|(n, _)| n.clone())
            .collect();
        // An import cycle (which protoc refuses): the rest as they are.
        let next = if ready.is_empty() {
            files.keys().cloned().collect()
        } else {
            ready
        };
        for n in next {
            if let Some(f) = files.remove(&n) {
                placed.insert(n);
                out.push(f);
            }
        }
    }
    out
}
