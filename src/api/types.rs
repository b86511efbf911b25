//! Gloo's resource types, field for field, in Gloo's YAML shape.
//!
//! Every struct carries `extra`: the fields epoxy does not model. They are kept on read and
//! written back unchanged, so a read-modify-write never drops what a Gloo user wrote.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields epoxy reads but does not model, kept verbatim in their original order.
///
/// Deserializing one records its keys when a caller asked for them (`collect_unmodelled`, used
/// by the console's route editor). Writes check every key against Gloo's fields instead
/// (`strict`), which names each at its path.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Extra(pub Map<String, Value>);

impl std::ops::Deref for Extra {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Extra {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

thread_local! {
    static UNMODELLED: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Kubernetes bookkeeping that any object may carry; not worth a warning.
const BOOKKEEPING: [&str; 11] = [
    "status",
    "creationTimestamp",
    "uid",
    "generation",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "selfLink",
    "deletionTimestamp",
    "generateName",
    "deletionGracePeriodSeconds",
];

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::<String, Value>::deserialize(d)?;
        UNMODELLED.with(|c| {
            if let Some(keys) = c.borrow_mut().as_mut() {
                keys.extend(
                    m.keys()
                        .filter(|k| !BOOKKEEPING.contains(&k.as_str()))
                        .cloned(),
                );
            }
        });
        Ok(Extra(m))
    }
}

/// Runs `f` (a deserialization) and returns the names of the fields it kept without modelling.
pub fn collect_unmodelled<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    UNMODELLED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    let keys = UNMODELLED
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    (out, keys)
}

/// Kubernetes-style object metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reference to another resource (`{name, namespace}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ResourceRef {
    /// The namespace this reference points into: its own, else the referrer's (Gloo's rule).
    pub fn namespace_or<'a>(&'a self, referrer: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => referrer,
        }
    }
}

/// The spec of a kind epoxy reads through its own module (`AuthConfig`, `RateLimitConfig`:
/// `crate::policy::spec`), kept here verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawSpec(pub Map<String, Value>);

// ---------------------------------------------------------------- Upstream

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeUpstream>,
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<StaticUpstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_metadata: Option<DiscoveryMetadata>,
    /// An AWS Lambda upstream: its functions are called by `Invoke`, signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsUpstream>,
    /// TLS to the upstream: the root it is verified against, the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<super::ssl::UpstreamSslConfig>,
    /// Gloo's `useHttp2`: gRPC discovery sets it on the upstreams it finds gRPC on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_http2: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl UpstreamSpec {
    /// The REST service spec (functions), wherever the upstream type keeps it.
    pub fn service_spec(&self) -> Option<&ServiceSpec> {
        match (&self.kube, &self.static_) {
            (Some(k), _) => k.service_spec.as_ref(),
            (None, Some(s)) => s.service_spec.as_ref(),
            _ => None,
        }
    }

    /// Mutable access to the service spec, created on demand (None if the type is unknown).
    pub fn service_spec_mut(&mut self) -> Option<&mut ServiceSpec> {
        match (&mut self.kube, &mut self.static_) {
            (Some(k), _) => Some(k.service_spec.get_or_insert_with(Default::default)),
            (None, Some(s)) => Some(s.service_spec.get_or_insert_with(Default::default)),
            _ => None,
        }
    }

    /// Names of the REST functions the upstream lists (its transformations).
    pub fn function_names(&self) -> Vec<&str> {
        self.service_spec()
            .and_then(|s| s.rest.as_ref())
            .map(|r| r.transformations.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Every function the upstream offers, with its kind: REST operations, gRPC methods
    /// (`package.Service/Method`), Lambda functions (by logical name) and the methods its
    /// gRPC-JSON transcoder serves (`package.Service/Method`). A transcoder's descriptor set
    /// given as a file (`protoDescriptor`) is not read here: see `functions_reading`.
    pub fn functions(&self) -> Vec<(FunctionKind, String)> {
        self.functions_reading(&no_files)
    }

    /// `functions`, with a transcoder's `protoDescriptor` file read by `read` (the CLI and
    /// the console pass `std::fs::read`; api/ itself does no I/O).
    pub fn functions_reading(&self, read: ReadFile<'_>) -> Vec<(FunctionKind, String)> {
        let mut out: Vec<(FunctionKind, String)> = self
            .function_names()
            .into_iter()
            .map(|n| (FunctionKind::Rest, n.to_string()))
            .collect();
        if let Some(g) = self.service_spec().and_then(|s| s.grpc.as_ref()) {
            for s in &g.grpc_services {
                for f in &s.function_names {
                    out.push((FunctionKind::Grpc, s.method_path(f)));
                }
            }
        }
        if let Some(a) = &self.aws {
            for f in &a.lambda_functions {
                out.push((FunctionKind::Lambda, f.logical_name.clone()));
            }
        }
        for m in self.transcoded(read) {
            out.push((FunctionKind::GrpcJson, m.path));
        }
        out
    }

    /// The methods the upstream's `grpcJsonTranscoder` serves, each by its first HTTP rule;
    /// none when it has no transcoder or one that does not compile (validation names why).
    /// Decoded by the gateway's own compiler, so the list is what the gateway serves (and
    /// kept: see `transcode::served`).
    pub fn transcoded(&self, read: ReadFile<'_>) -> Vec<crate::grpc::transcode::Served> {
        self.service_spec()
            .and_then(|s| s.grpc_json_transcoder.as_ref())
            .map(|t| crate::grpc::transcode::served(t, read).to_vec())
            .unwrap_or_default()
    }
}

/// Reads a file a resource names (a transcoder's `protoDescriptor`).
pub type ReadFile<'a> = &'a dyn Fn(&str) -> std::io::Result<Vec<u8>>;

/// The reader of code that does no I/O: every file is unreadable.
pub fn no_files(path: &str) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("`{path}` is not read here"),
    ))
}

/// What kind of function an upstream offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FunctionKind {
    Rest,
    Grpc,
    Lambda,
    /// A gRPC method called by HTTP requests matching its `google.api.http` rule (an
    /// upstream's `grpcJsonTranscoder`).
    GrpcJson,
}

impl FunctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Rest => "rest",
            FunctionKind::Grpc => "grpc",
            FunctionKind::Lambda => "lambda",
            FunctionKind::GrpcJson => "grpc-json",
        }
    }
}

/// Gloo's `aws.options.gloo.solo.io.UpstreamSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsUpstream {
    #[serde(default)]
    pub region: String,
    /// A Secret holding `aws_access_key_id`, `aws_secret_access_key` (and `session_token`);
    /// without one, the environment's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lambda_functions: Vec<LambdaFunctionSpec>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aws_account_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaFunctionSpec {
    #[serde(default)]
    pub logical_name: String,
    #[serde(default)]
    pub lambda_function_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qualifier: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeUpstream {
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub service_namespace: String,
    #[serde(default)]
    pub service_port: u32,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub selector: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_spec: Option<ServiceSpec>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticUpstream {
    #[serde(default)]
    pub hosts: Vec<StaticHost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_spec: Option<ServiceSpec>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticHost {
    #[serde(default)]
    pub addr: String,
    #[serde(default)]
    pub port: u32,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryMetadata {
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<RestServiceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcServiceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_json_transcoder: Option<GrpcJsonTranscoder>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `grpc_json.options.gloo.solo.io.GrpcJsonTranscoder` (Envoy's gRPC-JSON transcoder):
/// HTTP/JSON requests matching the methods' `google.api.http` rules become gRPC calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcJsonTranscoder {
    /// A file holding a `FileDescriptorSet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_descriptor: Option<String>,
    /// A `FileDescriptorSet`, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_descriptor_bin: Option<String>,
    /// Fully qualified names of the services transcoded (`package.Service`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_options: Option<PrintOptions>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_incoming_request_route: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_query_parameters: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_mapping: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_unknown_query_parameters: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub convert_grpc_status: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// How response messages are written as JSON (protobuf's `JsonPrintOptions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintOptions {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub add_whitespace: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always_print_primitive_fields: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always_print_enums_as_ints: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preserve_proto_field_names: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `grpc.options.gloo.solo.io.ServiceSpec`: the services' file descriptors (a
/// `FileDescriptorSet`, base64 in YAML as protobuf's JSON writes bytes) and what they offer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcServiceSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub descriptors: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc_services: Vec<GrpcService>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcService {
    #[serde(default)]
    pub package_name: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub function_names: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl GrpcService {
    /// The service's full name: `package.Service`.
    pub fn full_name(&self) -> String {
        if self.package_name.is_empty() {
            self.service_name.clone()
        } else {
            format!("{}.{}", self.package_name, self.service_name)
        }
    }

    /// A method's gRPC path without the leading slash: `package.Service/Method`.
    pub fn method_path(&self, function: &str) -> String {
        format!("{}/{function}", self.full_name())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swagger_info: Option<SwaggerInfo>,
    /// Function name → request template.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub transformations: IndexMap<String, Transformation>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwaggerInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A function's request template: `:method`, `:path` and other headers, and a body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transformation {
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `{text: "..."}`; an empty template (`{}`) removes the header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Template {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------- UpstreamGroup

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamGroupSpec {
    #[serde(default)]
    pub destinations: Vec<WeightedDestination>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedDestination {
    #[serde(default)]
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a request goes: an upstream, optionally one of its functions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<ResourceRef>,
    /// A Kubernetes service port, reached as a kube upstream of that service would be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_spec: Option<DestinationSpec>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `KubernetesServiceDestination`: `{ref: {name, namespace}, port}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeDestination {
    #[serde(default, rename = "ref")]
    pub ref_: ResourceRef,
    #[serde(default)]
    pub port: u32,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Destination {
    /// The function this destination calls, if any: a REST function's name, a gRPC method
    /// (`function`) or a Lambda function's logical name.
    pub fn function_name(&self) -> Option<&str> {
        let spec = self.destination_spec.as_ref()?;
        let name = if let Some(r) = &spec.rest {
            r.function_name.as_str()
        } else if let Some(g) = &spec.grpc {
            g.function.as_str()
        } else {
            spec.aws.as_ref()?.logical_name.as_str()
        };
        Some(name).filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<RestDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsDestination>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `grpc.options.gloo.solo.io.DestinationSpec`: a method called with the JSON body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcDestination {
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `aws.options.gloo.solo.io.DestinationSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsDestination {
    #[serde(default)]
    pub logical_name: String,
    /// `SYNC` (Gloo's default) or `ASYNC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_style: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unwrap_as_api_gateway: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wrap_as_api_gateway: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestDestination {
    #[serde(default)]
    pub function_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a function's variables come from: header templates (`x-pet: '{id}'`,
/// `':path': /petstore/findWithId/{id}`) and a path template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------- VirtualService, RouteTable

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    #[serde(default)]
    pub virtual_host: VirtualHost,
    /// TLS termination: a virtual service with it binds to TLS listeners only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<super::ssl::SslConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHost {
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableSpec {
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One route: matchers, exactly one action, options. The rarer and larger parts are boxed:
/// a route is a pointer each for what it does not use, which keeps a listing of 10,000 routes
/// small.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_action: Option<Box<RouteAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_action: Option<Box<RedirectAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response_action: Option<Box<DirectResponseAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate_action: Option<Box<DelegateAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Box<RouteOptions>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Route {
    /// Where the route sends a request, in a few words, and the function it calls (empty when
    /// none); None for a route without an action. Shared by `get vs route` and the console.
    pub fn describe_destination(&self) -> Option<(String, String)> {
        if let Some(a) = &self.route_action {
            if let Some(d) = &a.single {
                let up = match (&d.upstream, &d.kube) {
                    (Some(u), _) => u.name.clone(),
                    (None, Some(k)) => format!(
                        "kube {}/{}:{}",
                        k.ref_.namespace.as_deref().unwrap_or(""),
                        k.ref_.name,
                        k.port
                    ),
                    _ => String::new(),
                };
                return Some((up, d.function_name().unwrap_or("").to_string()));
            }
            if let Some(m) = &a.multi {
                let parts: Vec<String> = m
                    .destinations
                    .iter()
                    .map(|d| {
                        let up = d
                            .destination
                            .upstream
                            .as_ref()
                            .map(|u| u.name.as_str())
                            .unwrap_or("?");
                        format!("{up}({})", d.weight.unwrap_or(0))
                    })
                    .collect();
                return Some((parts.join(", "), String::new()));
            }
            if let Some(g) = &a.upstream_group {
                return Some((format!("group {}", g.name), String::new()));
            }
        }
        if let Some(d) = &self.direct_response_action {
            return Some((format!("direct {}", d.status), String::new()));
        }
        if let Some(d) = &self.redirect_action {
            let to = d
                .host_redirect
                .clone()
                .or(d.path_redirect.clone())
                .unwrap_or_default();
            return Some((format!("redirect {to}"), String::new()));
        }
        if let Some(d) = &self.delegate_action {
            let to = d
                .reference()
                .map(|r| r.name)
                .unwrap_or_else(|| "selector".into());
            return Some((format!("delegate {to}"), String::new()));
        }
        None
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_parameters: Vec<QueryParameterMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The path condition of a matcher, with Gloo's default (prefix `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch<'a> {
    Prefix(&'a str),
    Exact(&'a str),
    Regex(&'a str),
}

impl Matcher {
    pub fn path(&self) -> PathMatch<'_> {
        if let Some(e) = &self.exact {
            PathMatch::Exact(e)
        } else if let Some(r) = &self.regex {
            PathMatch::Regex(r)
        } else {
            PathMatch::Prefix(self.prefix.as_deref().unwrap_or("/"))
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatcher {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invert_match: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryParameterMatcher {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single: Option<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<MultiDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_group: Option<ResourceRef>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiDestination {
    #[serde(default)]
    pub destinations: Vec<WeightedDestination>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_redirect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_redirect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<String>,
    /// Gloo's enum name (`MOVED_PERMANENTLY`, `FOUND`, ...) or its number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_query: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectResponseAction {
    #[serde(default)]
    pub status: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelegateAction {
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<ResourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<RouteTableSelector>,
    /// Gloo's older form: the route table's name and namespace directly on the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl DelegateAction {
    /// The single route table this action names, in either of Gloo's forms.
    pub fn reference(&self) -> Option<ResourceRef> {
        if let Some(r) = &self.ref_ {
            return Some(r.clone());
        }
        self.name.as_ref().map(|n| ResourceRef {
            name: n.clone(),
            namespace: self.namespace.clone(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableSelector {
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexRewrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rewrite: Option<String>,
    /// `Host` becomes the name of the upstream endpoint the request goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_host_rewrite: Option<bool>,
    /// A protobuf duration: `15s`, `1.5s`; epoxy also accepts `100ms` and `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_manipulation: Option<HeaderManipulation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadowing: Option<Shadowing>,
    /// Protocol upgrades (`[{websocket: {enabled: false}}]`); WebSockets are on by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<Vec<UpgradeConfig>>,
    /// Injected faults (Gloo's `RouteFaults`): delays and aborts for a share of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<RouteFaults>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `faults`: a delay, then an abort, each for `percentage` (0-100) of the requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteFaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<RouteAbort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<RouteDelay>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteAbort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteDelay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// A protobuf duration (`1s`, `0.5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_delay: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `ProtocolUpgradeConfig`: one protocol a route lets clients upgrade to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<UpgradeSpec>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexRewrite {
    #[serde(default)]
    pub pattern: RegexPattern,
    #[serde(default)]
    pub substitution: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexPattern {
    #[serde(default)]
    pub regex: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u32>,
    /// The pause before each retry (Envoy's fully jittered exponential back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_back_off: Option<RetryBackOff>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Envoy's `RetryBackOff`: the pause before retry N is random in [0, base * 2^N), at most
/// `maxInterval` (default 25 ms and 10 times the base).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryBackOff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderManipulation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValueOption {
    #[serde(default)]
    pub header: HeaderValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shadowing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<ResourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}
