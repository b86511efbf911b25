//! Gloo's policy options and the two policy kinds, read into types with Gloo's field names.
//!
//! The route and virtual-host options keep these as raw JSON (`RouteOptions::extra`,
//! `VirtualHost::options`); `crate::api::schema` names which fields are acted on, and these
//! types read exactly those (an unknown key here is a bug in one of the two, refused).

use crate::api::{RawSpec, ResourceRef};
use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Reads `value` as `T`; the error names the field path below `at`.
pub fn read<T: DeserializeOwned>(at: &str, value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            format!("{at}: {}", e.inner())
        } else {
            format!("{at}.{path}: {}", e.inner())
        }
    })
}

/// A duration as protobuf's JSON writes it (`"1s"`, `"0.5s"`; epoxy also reads `100ms`, `1m`)
/// or as `{seconds, nanos}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Duration {
    Text(String),
    Parts {
        #[serde(default)]
        seconds: i64,
        #[serde(default)]
        nanos: i64,
    },
}

impl Duration {
    pub fn get(&self) -> Result<std::time::Duration, String> {
        match self {
            Duration::Text(t) => crate::api::duration::parse_duration(t).map_err(|e| e.to_string()),
            Duration::Parts { seconds, nanos } => {
                if *seconds < 0 || *nanos < 0 {
                    return Err("a negative duration".into());
                }
                Ok(std::time::Duration::from_secs(*seconds as u64)
                    + std::time::Duration::from_nanos(*nanos as u64))
            }
        }
    }
}

// ---------------------------------------------------------------- JWT

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtVhost {
    #[serde(default)]
    pub providers: IndexMap<String, JwtProvider>,
    #[serde(default)]
    pub validation_policy: Option<String>,
    #[serde(default)]
    pub allow_missing_or_failed_jwt: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtVhostStaged {
    #[serde(default)]
    pub before_ext_auth: Option<JwtVhost>,
    #[serde(default)]
    pub after_ext_auth: Option<JwtVhost>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRoute {
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRouteStaged {
    #[serde(default)]
    pub before_ext_auth: Option<JwtRoute>,
    #[serde(default)]
    pub after_ext_auth: Option<JwtRoute>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtProvider {
    #[serde(default)]
    pub jwks: Option<Jwks>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub token_source: Option<TokenSource>,
    #[serde(default)]
    pub keep_token: bool,
    #[serde(default)]
    pub claims_to_headers: Vec<ClaimToHeader>,
    #[serde(default)]
    pub clock_skew_seconds: Option<u32>,
    #[serde(default)]
    pub attach_failed_status_to_metadata: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Jwks {
    #[serde(default)]
    pub remote: Option<RemoteJwks>,
    #[serde(default)]
    pub local: Option<LocalJwks>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub upstream_ref: Option<ResourceRef>,
    #[serde(default)]
    pub cache_duration: Option<Duration>,
    #[serde(default)]
    pub async_fetch: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalJwks {
    #[serde(default)]
    pub key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenSource {
    #[serde(default)]
    pub headers: Vec<HeaderSource>,
    #[serde(default)]
    pub query_params: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderSource {
    #[serde(default)]
    pub header: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    #[serde(default)]
    pub claim: String,
    #[serde(default)]
    pub header: String,
    #[serde(default)]
    pub append: bool,
}

// ---------------------------------------------------------------- CORS

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    #[serde(default)]
    pub allow_origin: Vec<String>,
    #[serde(default)]
    pub allow_origin_regex: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age: Option<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub disable_for_route: bool,
}

// ---------------------------------------------------------------- rate limits

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitExtension {
    #[serde(default)]
    pub local_ratelimit: Option<TokenBucket>,
}

/// Envoy's token bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBucket {
    #[serde(default)]
    pub max_tokens: u32,
    #[serde(default)]
    pub tokens_per_fill: Option<u32>,
    #[serde(default)]
    pub fill_interval: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfigRefs {
    #[serde(default)]
    pub refs: Vec<ResourceRef>,
}

/// `RateLimitConfig.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfigSpec {
    #[serde(default)]
    pub raw: Option<RawRateLimit>,
    #[serde(default)]
    pub namespaced_statuses: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRateLimit {
    #[serde(default)]
    pub descriptors: Vec<Descriptor>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimitActions>,
}

/// One node of the descriptor tree (Lyft's rate-limit service configuration).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Descriptor {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub descriptors: Vec<Descriptor>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub always_apply: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub requests_per_unit: u32,
}

/// Gloo's `ratelimitBasic`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRateLimit {
    #[serde(default)]
    pub authorized_limits: Option<RateLimit>,
    #[serde(default)]
    pub anonymous_limits: Option<RateLimit>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitActions {
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    #[serde(default)]
    pub generic_key: Option<GenericKey>,
    #[serde(default)]
    pub remote_address: Option<Map<String, Value>>,
    #[serde(default)]
    pub request_headers: Option<RequestHeaders>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericKey {
    #[serde(default)]
    pub descriptor_value: String,
    #[serde(default)]
    pub descriptor_key: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestHeaders {
    #[serde(default)]
    pub header_name: String,
    #[serde(default)]
    pub descriptor_key: String,
    #[serde(default)]
    pub skip_if_absent: bool,
}

// ---------------------------------------------------------------- external auth

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtAuthExtension {
    #[serde(default)]
    pub disable: bool,
    #[serde(default)]
    pub config_ref: Option<ResourceRef>,
    /// Refused by `crate::api::schema`; read here so that it is reported once.
    #[serde(default)]
    pub custom_auth: Option<Value>,
}

/// `AuthConfig.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfigSpec {
    #[serde(default)]
    pub configs: Vec<AuthConfigEntry>,
    #[serde(default)]
    pub fail_on_redirect: Option<bool>,
    #[serde(default)]
    pub namespaced_statuses: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfigEntry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub pass_through_auth: Option<PassThroughAuth>,
    #[serde(default)]
    pub api_key_auth: Option<ApiKeyAuth>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyAuth {
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default)]
    pub api_key_secret_refs: Vec<ResourceRef>,
    #[serde(default)]
    pub label_selector: IndexMap<String, String>,
    #[serde(default)]
    pub k8s_secret_apikey_storage: Option<ApiKeyStorage>,
    #[serde(default)]
    pub headers_from_metadata_entry: IndexMap<String, MetadataEntry>,
    #[serde(default)]
    pub skip_metadata_validation: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyStorage {
    #[serde(default)]
    pub label_selector: IndexMap<String, String>,
    #[serde(default)]
    pub api_key_secret_refs: Vec<ResourceRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataEntry {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub realm: String,
    #[serde(default)]
    pub apr: Option<Apr>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Apr {
    #[serde(default)]
    pub users: IndexMap<String, SaltedHashedPassword>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaltedHashedPassword {
    #[serde(default)]
    pub salt: String,
    #[serde(default)]
    pub hashed_password: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughAuth {
    #[serde(default)]
    pub http: Option<PassThroughHttp>,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub failure_mode_allow: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughHttp {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub request: Option<PassThroughRequest>,
    #[serde(default)]
    pub response: Option<PassThroughResponse>,
    #[serde(default)]
    pub connection_timeout: Option<Duration>,
    #[serde(default)]
    pub response_header_timeout: Option<Value>,
    #[serde(default)]
    pub connection_pool: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughRequest {
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub headers_to_add: IndexMap<String, String>,
    #[serde(default)]
    pub pass_through_state: Option<Value>,
    #[serde(default)]
    pub pass_through_filter_metadata: Option<Value>,
    #[serde(default)]
    pub pass_through_body: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughResponse {
    #[serde(default)]
    pub allowed_upstream_headers: Vec<String>,
    #[serde(default)]
    pub allowed_client_headers_on_denied: Vec<String>,
    #[serde(default)]
    pub read_state_from_response: Option<Value>,
    #[serde(default)]
    pub allowed_upstream_headers_to_overwrite: Vec<String>,
    #[serde(default)]
    pub allowed_client_headers_on_success: Option<Value>,
}

/// The kinds of auth an AuthConfig's configs ask for, for listings (`basicAuth`, ...).
pub fn auth_config_kinds(spec: &RawSpec) -> Vec<String> {
    spec.0
        .get("configs")
        .and_then(Value::as_array)
        .map(|configs| {
            configs
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|c| c.keys().filter(|k| *k != "name").cloned())
                .collect()
        })
        .unwrap_or_default()
}
