//! A gRPC server written with tonic, in the test's own runtime: shop.v1.Pets and
//! shop.v1.Admin of tests/grpc/shop.proto, and reflection v1 (tonic-reflection).
//!
//! No code generation: the descriptors are compiled when the server starts (grpcio-tools'
//! protoc, which .ci/run installs), and the messages are prost-reflect's `DynamicMessage`
//! carried by a codec of this file through tonic's own unary and server-streaming handlers.

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, tokio_stream};
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status};

/// The running server; stopped when dropped (at once) or by `stop` (gracefully).
pub struct TonicShop {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TonicShop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TonicShop {
    /// Serves on an ephemeral port of 127.0.0.1, in the current runtime.
    pub async fn start() -> TonicShop {
        Self::start_on(0).await
    }

    /// Serves over TLS only (tonic's rustls, ring), with this certificate and key (PEM).
    pub async fn start_tls(cert: &str, key: &str) -> TonicShop {
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key));
        Self::serve(0, Some(tls)).await
    }

    /// Serves on `port` of 127.0.0.1 (0: an ephemeral one).
    pub async fn start_on(port: u16) -> TonicShop {
        Self::serve(port, None).await
    }

    async fn serve(port: u16, tls: Option<tonic::transport::ServerTlsConfig>) -> TonicShop {
        let set = descriptor_set();
        let pool = DescriptorPool::decode(set.as_slice()).expect("shop.proto's descriptors");
        let shop = Arc::new(Shop::new(pool));
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(&set)
            .build_v1()
            .expect("the reflection service");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).expect("the TLS settings");
        }
        let router = builder
            .add_service(reflection)
            .add_service(Pets(shop.clone()))
            .add_service(Admin(shop));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            router
                .serve_with_incoming_shutdown(incoming, stopped)
                .await
                .unwrap();
        });
        TonicShop {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Stops as a server being restarted does: GOAWAY on its connections, the port closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }
}

/// shop.proto and its imports as an encoded `FileDescriptorSet`.
fn descriptor_set() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shop.pb");
    let status = std::process::Command::new("python3")
        .args(["-m", "grpc_tools.protoc", "--include_imports"])
        .arg(format!("-I{}/tests/grpc", env!("CARGO_MANIFEST_DIR")))
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg("shop.proto")
        .status()
        .unwrap_or_else(|e| panic!("python3 -m grpc_tools.protoc: {e} (.ci/run installs it)"));
    assert!(status.success(), "protoc failed on shop.proto: {status}");
    std::fs::read(out).unwrap()
}

/// The pets and the methods' behaviour.
struct Shop {
    pool: DescriptorPool,
    pets: Vec<DynamicMessage>,
}

impl Shop {
    fn new(pool: DescriptorPool) -> Shop {
        let pet = pool.get_message_by_name("shop.v1.Pet").unwrap();
        let pets = [
            serde_json::json!({"id": 1, "name": "Bolt", "tags": ["fast", "dog"], "kind": "DOG", "born": "2021-06-07T08:09:10Z"}),
            serde_json::json!({"id": 2, "name": "Luna", "tags": ["cat"], "kind": "CAT"}),
            serde_json::json!({"id": 3, "name": "Max", "tags": ["dog"], "kind": "DOG"}),
        ]
        .into_iter()
        .map(|j| DynamicMessage::deserialize(pet.clone(), j).unwrap())
        .collect();
        Shop { pool, pets }
    }

    fn id(pet: &DynamicMessage) -> i64 {
        pet.get_field_by_name("id")
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    }

    fn get_pet(&self, req: Request<DynamicMessage>) -> Result<DynamicMessage, Status> {
        let id = Self::id(req.get_ref());
        if id < 0 {
            return Err(Status::invalid_argument(format!("id {id} is negative")));
        }
        if id == 13 {
            return Err(self.away(id));
        }
        self.pets
            .iter()
            .find(|p| Self::id(p) == id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no pet {id}")))
    }

    /// A rich status (tonic's `with_details`: a google.rpc.Status in grpc-status-details-bin):
    /// a `shop.v1.PetProblem`, a type of shop.proto, and a `google.rpc.ErrorInfo`, which the
    /// gateway's descriptors do not have.
    fn away(&self, id: i64) -> Status {
        let problem = self.pool.get_message_by_name("shop.v1.PetProblem").unwrap();
        let problem = DynamicMessage::deserialize(
            problem,
            serde_json::json!({"id": id, "reason": "at the vet"}),
        )
        .unwrap();
        let status = RpcStatus {
            code: tonic::Code::FailedPrecondition as i32,
            message: format!("pet {id} is away"),
            details: vec![
                prost_types::Any {
                    type_url: "type.googleapis.com/shop.v1.PetProblem".into(),
                    value: problem.encode_to_vec(),
                },
                prost_types::Any {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                    value: error_info(),
                },
            ],
        };
        Status::with_details(
            tonic::Code::FailedPrecondition,
            format!("pet {id} is away"),
            status.encode_to_vec().into(),
        )
    }

    /// The pets with the tag asked for, up to the limit; a negative limit fails the call
    /// after the first pet (an error in the trailers, after messages).
    fn list_pets(&self, req: Request<DynamicMessage>) -> Vec<Result<DynamicMessage, Status>> {
        let m = req.get_ref();
        let limit = m
            .get_field_by_name("limit")
            .and_then(|v| v.as_i32())
            .unwrap_or(0);
        let tag = m
            .get_field_by_name("tag")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let tagged = self.pets.iter().filter(|p| {
            tag.is_empty()
                || p.get_field_by_name("tags")
                    .and_then(|t| {
                        t.as_list()
                            .map(|l| l.iter().any(|t| t.as_str() == Some(&tag)))
                    })
                    .unwrap_or(false)
        });
        if limit < 0 {
            return tagged
                .take(1)
                .cloned()
                .map(Ok)
                .chain([Err(Status::out_of_range(format!("limit {limit}")))])
                .collect();
        }
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        tagged.take(limit).cloned().map(Ok).collect()
    }

    /// The pet sent, numbered 100 when it has no id, tagged with the caller's `x-tenant`.
    fn create_pet(&self, req: Request<DynamicMessage>) -> Result<DynamicMessage, Status> {
        let tenant = req
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut pet = req.into_inner();
        if Self::id(&pet) == 0 {
            pet.set_field_by_name("id", Value::I64(100));
        }
        if let Some(t) = tenant {
            let mut tags = pet
                .get_field_by_name("tags")
                .and_then(|v| v.as_list().map(<[Value]>::to_vec))
                .unwrap_or_default();
            tags.push(Value::String(format!("tenant:{t}")));
            pet.set_field_by_name("tags", Value::List(tags));
        }
        Ok(pet)
    }

    /// Answers one HTTP/2 request to `/package.Service/Method` with tonic's handlers.
    async fn serve(self: Arc<Self>, req: http::Request<Body>) -> http::Response<Body> {
        let path = req.uri().path().to_owned();
        let method = path
            .trim_start_matches('/')
            .rsplit_once('/')
            .and_then(|(s, m)| {
                self.pool
                    .get_service_by_name(s)
                    .and_then(|s| s.methods().find(|x| x.name() == m))
            });
        let Some(method) = method else {
            return Status::unimplemented(format!("no method {path}")).into_http();
        };
        let mut grpc = Grpc::new(DynamicCodec(method.input()));
        let shop = self.clone();
        match method.name() {
            "GetPet" => grpc.unary(Handler(move |r| shop.get_pet(r)), req).await,
            "CreatePet" => grpc.unary(Handler(move |r| shop.create_pet(r)), req).await,
            "ListPets" => {
                let list = move |r| Ok(tokio_stream::iter(shop.list_pets(r)));
                grpc.server_streaming(Handler(list), req).await
            }
            "Ping" => {
                let refuse = |_| Err::<DynamicMessage, _>(Status::permission_denied("admins only"));
                grpc.unary(Handler(refuse), req).await
            }
            other => Status::unimplemented(format!("no method {other}")).into_http(),
        }
    }
}

/// google/rpc/status.proto's `Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// google/rpc/error_details.proto's `ErrorInfo` (its first two fields).
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
}

/// The `ErrorInfo` of a pet that is away, encoded.
pub fn error_info() -> Vec<u8> {
    ErrorInfo {
        reason: "AWAY".into(),
        domain: "shop.example".into(),
    }
    .encode_to_vec()
}

/// A method as the tower service tonic's `Grpc::unary` (`T` a message) or
/// `Grpc::server_streaming` (`T` a stream of them) calls.
struct Handler<F>(F);

impl<F, T> Service<Request<DynamicMessage>> for Handler<F>
where
    F: FnMut(Request<DynamicMessage>) -> Result<T, Status>,
{
    type Response = Response<T>;
    type Error = Status;
    type Future = Ready<Result<Response<T>, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<DynamicMessage>) -> Self::Future {
        ready((self.0)(req).map(Response::new))
    }
}

/// Messages of the method's input type in, any dynamic message out.
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.0.clone())
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding: {e}")))
    }
}

struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("decoding {}: {e}", self.0.full_name())))
    }
}

/// The services as tonic's router wants them: one type per service name.
macro_rules! named_service {
    ($ty:ident, $name:literal) => {
        #[derive(Clone)]
        struct $ty(Arc<Shop>);

        impl NamedService for $ty {
            const NAME: &'static str = $name;
        }

        impl Service<http::Request<Body>> for $ty {
            type Response = http::Response<Body>;
            type Error = Infallible;
            type Future = BoxFuture<http::Response<Body>, Infallible>;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<Body>) -> Self::Future {
                let shop = self.0.clone();
                Box::pin(async move { Ok(shop.serve(req).await) })
            }
        }
    };
}

named_service!(Pets, "shop.v1.Pets");
named_service!(Admin, "shop.v1.Admin");
