//! External auth from an `AuthConfig` (Gloo's `extauth.configRef`): every config of it must
//! pass, in order. `basicAuth` checks `Authorization: Basic` against apr1 hashes;
//! `passThroughAuth.http` asks the user's own service (a POST to its `url` with the allowed
//! request headers): 2xx lets the request on with the headers the service may set upstream,
//! 401/403 (or anything else) deny, and an unreachable service denies unless
//! `failureModeAllow`.

use super::runtime::Runtime;
use super::spec::{self, AuthConfigSpec};
use super::{Answer, Edits, Inbound, Order, Stage, WithHeader};
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Gloo's default pass-through connection timeout.
const PASS_THROUGH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct User {
    salt: String,
    hashed: String,
}

#[derive(Debug)]
struct Basic {
    realm: String,
    users: std::collections::HashMap<String, User>,
}

type HttpClient = crate::net::Client<http_body_util::Full<Bytes>>;

struct PassThrough {
    url: http::Uri,
    allowed: Vec<HeaderName>,
    add: Vec<(HeaderName, HeaderValue)>,
    upstream: Vec<HeaderName>,
    upstream_overwrite: Vec<HeaderName>,
    client_on_denied: Vec<HeaderName>,
    body: Bytes,
    timeout: Duration,
    failure_allow: bool,
    client: OnceLock<HttpClient>,
}

impl std::fmt::Debug for PassThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassThrough({})", self.url)
    }
}

#[derive(Debug)]
enum Check {
    Basic(Basic),
    PassThrough(Box<PassThrough>),
    ApiKey(super::apikey::ApiKeys),
}

/// An AuthConfig, compiled: its checks in order.
#[derive(Debug)]
pub struct AuthConfig {
    checks: Vec<Check>,
}

fn names(at: &str, list: &[String]) -> Result<Vec<HeaderName>, String> {
    list.iter()
        .enumerate()
        .map(|(i, n)| {
            HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{at}[{i}]: `{n}` is not a header name"))
        })
        .collect()
}

impl AuthConfig {
    /// Compiles an AuthConfig's spec (in namespace `ns`, its Secrets from `set`); the error
    /// names the field.
    pub fn build(
        spec: &AuthConfigSpec,
        set: &crate::api::ResourceSet,
        ns: &str,
    ) -> Result<AuthConfig, String> {
        if spec.configs.is_empty() {
            return Err("spec.configs: none".into());
        }
        let mut checks = Vec::new();
        for (i, c) in spec.configs.iter().enumerate() {
            let at = format!("spec.configs[{i}]");
            match (&c.basic_auth, &c.pass_through_auth, &c.api_key_auth) {
                (Some(b), None, None) => {
                    checks.push(Check::Basic(basic(&format!("{at}.basicAuth"), b)?))
                }
                (None, Some(p), None) => checks.push(Check::PassThrough(Box::new(pass_through(
                    &format!("{at}.passThroughAuth"),
                    p,
                )?))),
                (None, None, Some(a)) => checks.push(Check::ApiKey(super::apikey::ApiKeys::build(
                    &format!("{at}.apiKeyAuth"),
                    a,
                    set,
                    ns,
                )?)),
                _ => {
                    return Err(format!(
                        "{at}: exactly one of basicAuth, passThroughAuth and apiKeyAuth"
                    ));
                }
            }
        }
        Ok(AuthConfig { checks })
    }
}

fn basic(at: &str, b: &spec::BasicAuth) -> Result<Basic, String> {
    let apr = b
        .apr
        .as_ref()
        .ok_or_else(|| format!("{at}.apr: missing (the users)"))?;
    let mut users = std::collections::HashMap::new();
    for (name, u) in &apr.users {
        if u.salt.is_empty() || u.hashed_password.is_empty() {
            return Err(format!(
                "{at}.apr.users.{name}: salt and hashedPassword are needed"
            ));
        }
        users.insert(
            name.clone(),
            User {
                salt: u.salt.clone(),
                hashed: u.hashed_password.clone(),
            },
        );
    }
    Ok(Basic {
        realm: b.realm.replace('"', ""),
        users,
    })
}

fn pass_through(at: &str, p: &spec::PassThroughAuth) -> Result<PassThrough, String> {
    let h = p
        .http
        .as_ref()
        .ok_or_else(|| format!("{at}.http: missing (epoxy asks services over HTTP)"))?;
    let url: http::Uri = h.url.parse().map_err(|e| format!("{at}.http.url: {e}"))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) || url.authority().is_none() {
        return Err(format!("{at}.http.url: not an absolute http(s) URL"));
    }
    let req = h.request.clone().unwrap_or_default();
    let resp = h.response.clone().unwrap_or_default();
    let mut add = Vec::new();
    for (k, v) in &req.headers_to_add {
        add.push((
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).map_err(|_| {
                format!("{at}.http.request.headersToAdd: `{k}` is not a header name")
            })?,
            HeaderValue::from_str(v)
                .map_err(|_| format!("{at}.http.request.headersToAdd.{k}: not a header value"))?,
        ));
    }
    let mut allowed = names(
        &format!("{at}.http.request.allowedHeaders"),
        &req.allowed_headers,
    )?;
    // The credentials the service judges.
    if !allowed.contains(&http::header::AUTHORIZATION) {
        allowed.push(http::header::AUTHORIZATION);
    }
    let body = match &p.config {
        Some(c) => Bytes::from(serde_json::json!({ "config": c }).to_string()),
        None => Bytes::new(),
    };
    let timeout = match &h.connection_timeout {
        Some(d) => d
            .get()
            .map_err(|e| format!("{at}.http.connectionTimeout: {e}"))?,
        None => PASS_THROUGH_TIMEOUT,
    };
    Ok(PassThrough {
        url,
        allowed,
        add,
        upstream: names(
            &format!("{at}.http.response.allowedUpstreamHeaders"),
            &resp.allowed_upstream_headers,
        )?,
        upstream_overwrite: names(
            &format!("{at}.http.response.allowedUpstreamHeadersToOverwrite"),
            &resp.allowed_upstream_headers_to_overwrite,
        )?,
        client_on_denied: names(
            &format!("{at}.http.response.allowedClientHeadersOnDenied"),
            &resp.allowed_client_headers_on_denied,
        )?,
        body,
        timeout,
        failure_allow: p.failure_mode_allow,
        client: OnceLock::new(),
    })
}

// The pipeline's `Answer` is the error: built once per denied request, not worth a box.
#[allow(clippy::result_large_err)]
impl Basic {
    fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        let deny = |why: &str| {
            super::answer(StatusCode::UNAUTHORIZED, format!("basic-auth: {why}")).header(
                "www-authenticate",
                &format!("Basic realm=\"{}\"", self.realm),
            )
        };
        let Some(v) = req.head.headers.get("authorization") else {
            return Err(deny("no credentials"));
        };
        let Some(b64) = v
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("basic "))
            .map(|_| v[6..].trim())
        else {
            return Err(deny("not basic credentials"));
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| deny("malformed credentials"))?;
        let text = String::from_utf8_lossy(&decoded);
        let Some((user, password)) = text.split_once(':') else {
            return Err(deny("malformed credentials"));
        };
        match self.users.get(user) {
            Some(u) if super::apr1::verify(password.as_bytes(), &u.salt, &u.hashed) => {
                edits.user = Some(user.to_string());
                Ok(())
            }
            _ => Err(deny("wrong user or password")),
        }
    }
}

#[allow(clippy::result_large_err)]
impl PassThrough {
    async fn check(
        &self,
        req: &Inbound<'_>,
        edits: &mut Edits,
        rt: &Runtime,
    ) -> Result<(), Answer> {
        use http_body_util::BodyExt;
        let client = self.client.get_or_init(crate::net::client);
        let mut b = http::Request::post(self.url.clone());
        for (n, v) in req.header_pairs() {
            if self
                .allowed
                .iter()
                .any(|a| a.as_str().eq_ignore_ascii_case(n))
            {
                b = b.header(n, v);
            }
        }
        for (n, v) in &self.add {
            b = b.header(n, v);
        }
        if !self.body.is_empty() {
            b = b.header(http::header::CONTENT_TYPE, "application/json");
        }
        let unreachable = |why: String| {
            rt.counters.auth_unreachable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %self.url, error = %why, "pass-through auth service unreachable");
            if self.failure_allow {
                Ok(())
            } else {
                Err(super::answer(
                    StatusCode::FORBIDDEN,
                    format!("pass-through-auth: service unreachable ({why})"),
                ))
            }
        };
        let r = match b.body(http_body_util::Full::new(self.body.clone())) {
            Ok(r) => r,
            Err(e) => return unreachable(e.to_string()),
        };
        let resp = match tokio::time::timeout(self.timeout, client.request(r)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return unreachable(e.to_string()),
            Err(_) => return unreachable("timed out".into()),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        // The answer's body is not used; read a little of it so that the connection is reused.
        let _ = tokio::time::timeout(
            self.timeout,
            http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect(),
        )
        .await;
        if status.is_server_error() {
            return unreachable(format!("status {status}"));
        }
        if status.is_success() {
            // Set on the request, replacing what the client sent under that name (Gloo
            // appends `allowedUpstreamHeaders`; replacing keeps a client from adding its own).
            for n in self.upstream.iter().chain(&self.upstream_overwrite) {
                if let Some(v) = headers.get(n) {
                    edits.request_set.push((n.clone(), v.clone()));
                }
            }
            return Ok(());
        }
        let code = if status == StatusCode::UNAUTHORIZED {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        let mut a = super::answer(code, format!("pass-through-auth: denied ({status})"));
        for n in &self.client_on_denied {
            for v in headers.get_all(n) {
                a.headers.push((n.clone(), v.clone()));
            }
        }
        Err(a)
    }
}

/// The external-auth stage of a route.
#[derive(Debug)]
pub struct ExtAuthStage {
    config: Arc<AuthConfig>,
    /// `namespace/name` of the AuthConfig, for the reasons.
    name: String,
    runtime: Arc<Runtime>,
}

impl ExtAuthStage {
    pub fn new(name: String, config: Arc<AuthConfig>, runtime: &Arc<Runtime>) -> ExtAuthStage {
        ExtAuthStage {
            config,
            name,
            runtime: runtime.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Stage for ExtAuthStage {
    fn order(&self) -> Order {
        Order::ExtAuth
    }

    async fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        for c in &self.config.checks {
            let r = match c {
                Check::Basic(b) => b.check(req, edits),
                Check::PassThrough(p) => p.check(req, edits, &self.runtime).await,
                Check::ApiKey(k) => k.check(req, edits),
            };
            if let Err(mut a) = r {
                self.runtime
                    .counters
                    .auth_denied
                    .fetch_add(1, Ordering::Relaxed);
                a.reason = format!("{} (authconfig {})", a.reason, self.name);
                return Err(a);
            }
        }
        Ok(())
    }
}
