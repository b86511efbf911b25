//! JWT verification (Gloo's `jwt`/`jwtStaged` providers, Envoy's `jwt_authn` semantics): a
//! token from the provider's sources (by default `Authorization: Bearer` and `access_token`),
//! verified against its keys (inline PEM, JWK or JWKS; or a remote JWKS fetched off the
//! request path and refreshed), its issuer, audiences, expiry and not-before with the clock
//! skew. A missing or failed token gets 401 with `WWW-Authenticate: Bearer`.

use super::runtime::Runtime;
use super::spec::{self, JwtProvider};
use super::{Answer, Edits, Inbound, Order, Stage, WithHeader};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Envoy's default clock skew and remote JWKS cache duration.
const DEFAULT_SKEW: u64 = 60;
pub const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// How long the first request waits for a remote key set never fetched before.
const FIRST_FETCH_WAIT: Duration = Duration::from_secs(3);
/// After a failed fetch, the next one comes this much sooner than the cache duration.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// One verification key and the algorithms it may verify.
pub struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algs: Vec<Algorithm>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?}, {:?})", self.kid, self.algs)
    }
}

/// A provider's keys.
#[derive(Debug, Default)]
pub struct KeySet(Vec<Key>);

impl KeySet {
    /// Reads a key as Gloo's `jwks.local.key` holds it: a JWKS, one JWK, or a PEM public key.
    pub fn parse(text: &str) -> Result<KeySet, String> {
        let t = text.trim();
        if t.starts_with('{') {
            let v: Value = serde_json::from_str(t).map_err(|e| format!("not JSON: {e}"))?;
            let jwks: Vec<Jwk> = if v.get("keys").is_some() {
                serde_json::from_value::<JwkSet>(v)
                    .map_err(|e| format!("not a JWKS: {e}"))?
                    .keys
            } else {
                vec![serde_json::from_value(v).map_err(|e| format!("not a JWK: {e}"))?]
            };
            let mut keys = Vec::new();
            let mut errors = Vec::new();
            for j in &jwks {
                match from_jwk(j) {
                    Ok(k) => keys.push(k),
                    Err(e) => errors.push(e),
                }
            }
            if keys.is_empty() {
                return Err(format!("no usable key ({})", errors.join("; ")));
            }
            return Ok(KeySet(keys));
        }
        if t.starts_with("-----BEGIN") {
            let b = t.as_bytes();
            let found = if let Ok(k) = DecodingKey::from_rsa_pem(b) {
                (k, RSA.to_vec())
            } else if let Ok(k) = DecodingKey::from_ec_pem(b) {
                (k, vec![Algorithm::ES256, Algorithm::ES384])
            } else if let Ok(k) = DecodingKey::from_ed_pem(b) {
                (k, vec![Algorithm::EdDSA])
            } else {
                return Err("a PEM block that is no RSA, EC or Ed25519 public key".into());
            };
            return Ok(KeySet(vec![Key {
                kid: None,
                key: found.0,
                algs: found.1,
            }]));
        }
        Err("neither a PEM public key nor a JWK or JWKS (JSON)".into())
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

fn from_jwk(j: &Jwk) -> Result<Key, String> {
    let key = DecodingKey::from_jwk(j).map_err(|e| format!("key {:?}: {e}", j.common.key_id))?;
    let by_type: Vec<Algorithm> = match &j.algorithm {
        AlgorithmParameters::RSA(_) => RSA.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err(format!("key {:?}: unsupported curve", j.common.key_id)),
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKey(_) => HMAC.to_vec(),
        _ => {
            return Err(format!("key {:?}: unsupported key type", j.common.key_id));
        }
    };
    let algs = match j.common.key_algorithm.map(Algorithm::try_from) {
        Some(Ok(a)) if by_type.contains(&a) => vec![a],
        Some(_) => {
            return Err(format!(
                "key {:?}: its `alg` does not fit its key type",
                j.common.key_id
            ));
        }
        None => by_type,
    };
    Ok(Key {
        kid: j.common.key_id.clone(),
        key,
        algs,
    })
}

/// A remote JWKS: fetched by a background task (started by the first request that needs it),
/// refreshed every cache duration, and sooner when a token names a key it does not have.
pub struct RemoteKeys {
    /// What to connect to (the upstream's host when `upstreamRef` is given) and the URL.
    pub connect: http::Uri,
    pub host: String,
    pub every: Duration,
    keys: ArcSwapOption<KeySet>,
    tx: tokio::sync::watch::Sender<u64>,
    started: AtomicBool,
    refresh: tokio::sync::Notify,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteKeys({})", self.connect)
    }
}

impl RemoteKeys {
    pub fn new(connect: http::Uri, host: String, every: Duration) -> RemoteKeys {
        RemoteKeys {
            connect,
            host,
            every,
            keys: ArcSwapOption::empty(),
            tx: tokio::sync::watch::channel(0).0,
            started: AtomicBool::new(false),
            refresh: tokio::sync::Notify::new(),
        }
    }

    /// The current keys; the first caller starts the fetching and waits for its first result.
    async fn current(self: &Arc<Self>) -> Option<Arc<KeySet>> {
        if let Some(k) = self.keys.load_full() {
            return Some(k);
        }
        let mut rx = self.tx.subscribe();
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(Self::fetch_loop(Arc::downgrade(self)));
        }
        let _ = tokio::time::timeout(FIRST_FETCH_WAIT, rx.wait_for(|n| *n > 0)).await;
        self.keys.load_full()
    }

    async fn fetch_loop(me: std::sync::Weak<RemoteKeys>) {
        let client = crate::net::client::<http_body_util::Full<Bytes>>();
        loop {
            let Some(this) = me.upgrade() else { return };
            let pause = match this.fetch(&client).await {
                Ok(set) => {
                    tracing::debug!(url = %this.connect, keys = set.len(), "JWKS fetched");
                    this.keys.store(Some(Arc::new(set)));
                    this.every
                }
                Err(e) => {
                    tracing::warn!(url = %this.connect, error = %e, "cannot fetch JWKS; keeping the last keys");
                    RETRY_AFTER_ERROR.min(this.every)
                }
            };
            this.tx.send_modify(|n| *n += 1);
            let wait = async {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = this.refresh.notified() => {
                        // At most one fetch a second for unknown key ids.
                        tokio::time::sleep(RETRY_AFTER_ERROR).await;
                    }
                }
            };
            wait.await;
            drop(this);
        }
    }

    async fn fetch(
        &self,
        client: &crate::net::Client<http_body_util::Full<Bytes>>,
    ) -> Result<KeySet, String> {
        use http_body_util::BodyExt;
        let req = http::Request::get(self.connect.clone())
            .header(http::header::HOST, &self.host)
            .header(http::header::ACCEPT, "application/json")
            .body(http_body_util::Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        KeySet::parse(std::str::from_utf8(&body).map_err(|e| e.to_string())?)
    }
}

#[derive(Debug)]
enum Keys {
    Local(Arc<KeySet>),
    Remote(Arc<RemoteKeys>),
}

#[derive(Debug)]
enum Source {
    /// A header (lower-case) and the prefix before the token.
    Header(HeaderName, String),
    Query(String),
}

#[derive(Debug)]
struct ClaimHeader {
    claim: String,
    header: HeaderName,
    append: bool,
}

#[derive(Debug)]
struct Provider {
    name: String,
    keys: Keys,
    /// One validation per key family (jsonwebtoken checks every algorithm listed against the
    /// key's family): RSA, EC, Ed25519, HMAC.
    validations: Vec<Validation>,
    sources: Vec<Source>,
    keep_token: bool,
    claims: Vec<ClaimHeader>,
    /// Tokens verified already (Envoy's JWT cache): a client sends the same token on every
    /// request, and checking its signature each time is most of this stage's cost.
    verified: std::sync::Mutex<std::collections::HashMap<String, Verified>>,
}

/// How many verified tokens a provider remembers (the cache is emptied when it is full).
const VERIFIED_CACHE: usize = 1024;

/// A token that verified: its claims, until when, and the key set it verified against (a
/// rotated set verifies it again).
#[derive(Debug)]
struct Verified {
    claims: Map<String, Value>,
    exp: Option<u64>,
    nbf: Option<u64>,
    leeway: u64,
    keys: Arc<KeySet>,
}

impl Verified {
    /// Whether it is still good at `now` (seconds since the epoch), with the same key set.
    fn holds(&self, now: u64, keys: &Arc<KeySet>) -> bool {
        Arc::ptr_eq(&self.keys, keys)
            && self.exp.is_none_or(|e| now < e.saturating_add(self.leeway))
            && self
                .nbf
                .is_none_or(|n| now.saturating_add(self.leeway) >= n)
    }
}

/// What happens to a request with no token, or a bad one (Gloo's `validationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    RequireValid,
    AllowMissing,
    AllowMissingOrFailed,
}

#[derive(Debug)]
pub struct JwtStage {
    order: Order,
    providers: Vec<Provider>,
    policy: Policy,
    runtime: Arc<Runtime>,
}

/// Where a provider's remote JWKS is: (URI to connect to, Host), given `url` and the address
/// of `upstreamRef`'s first host when it names one.
pub type Resolve<'a> = dyn Fn(&crate::api::ResourceRef) -> Option<String> + 'a;

impl JwtStage {
    /// Compiles `ext` (one stage's providers); the error names the field under `at`.
    pub fn build(
        at: &str,
        order: Order,
        ext: &spec::JwtVhost,
        runtime: &Arc<Runtime>,
        resolve: &Resolve<'_>,
    ) -> Result<JwtStage, String> {
        if ext.providers.is_empty() {
            return Err(format!("{at}.providers: no provider"));
        }
        let policy = match (
            ext.validation_policy.as_deref(),
            ext.allow_missing_or_failed_jwt,
        ) {
            (_, Some(true)) | (Some("ALLOW_MISSING_OR_FAILED"), _) => Policy::AllowMissingOrFailed,
            (Some("ALLOW_MISSING"), _) => Policy::AllowMissing,
            (None | Some("REQUIRE_VALID"), _) => Policy::RequireValid,
            (Some(other), _) => {
                return Err(format!(
                    "{at}.validationPolicy: `{other}` is none of REQUIRE_VALID, ALLOW_MISSING, ALLOW_MISSING_OR_FAILED"
                ));
            }
        };
        let mut providers = Vec::new();
        for (name, p) in &ext.providers {
            let pat = format!("{at}.providers.{name}");
            providers.push(provider(&pat, name, p, runtime, resolve)?);
        }
        Ok(JwtStage {
            order,
            providers,
            policy,
            runtime: runtime.clone(),
        })
    }
}

fn provider(
    at: &str,
    name: &str,
    p: &JwtProvider,
    runtime: &Arc<Runtime>,
    resolve: &Resolve<'_>,
) -> Result<Provider, String> {
    let jwks = p
        .jwks
        .as_ref()
        .ok_or_else(|| format!("{at}.jwks: missing (local or remote keys)"))?;
    let keys = match (&jwks.local, &jwks.remote) {
        (Some(l), None) => Keys::Local(Arc::new(
            KeySet::parse(&l.key).map_err(|e| format!("{at}.jwks.local.key: {e}"))?,
        )),
        (None, Some(r)) => {
            let url: http::Uri = r
                .url
                .parse()
                .map_err(|e| format!("{at}.jwks.remote.url: {e}"))?;
            let (Some(scheme), Some(authority)) = (url.scheme_str(), url.authority()) else {
                return Err(format!("{at}.jwks.remote.url: not an absolute http(s) URL"));
            };
            if scheme != "http" && scheme != "https" {
                return Err(format!("{at}.jwks.remote.url: not an http(s) URL"));
            }
            let connect = match &r.upstream_ref {
                None => url.clone(),
                Some(u) => {
                    let addr = resolve(u).ok_or_else(|| {
                        format!(
                            "{at}.jwks.remote.upstreamRef: upstream `{}` has no host",
                            u.name
                        )
                    })?;
                    let pq = url.path_and_query().map_or("/", |p| p.as_str());
                    format!("{scheme}://{addr}{pq}")
                        .parse()
                        .map_err(|e| format!("{at}.jwks.remote.upstreamRef: {e}"))?
                }
            };
            let every = match &r.cache_duration {
                Some(d) => d
                    .get()
                    .map_err(|e| format!("{at}.jwks.remote.cacheDuration: {e}"))?,
                None => DEFAULT_CACHE,
            }
            .max(Duration::from_millis(100));
            let host = authority.to_string();
            let key = format!("{connect} {host} {every:?}");
            Keys::Remote(runtime.remote_keys(&key, || RemoteKeys::new(connect, host, every)))
        }
        _ => return Err(format!("{at}.jwks: exactly one of local and remote")),
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = p.clock_skew_seconds.map_or(DEFAULT_SKEW, u64::from);
    validation.validate_nbf = true;
    let mut required: Vec<&str> = Vec::new();
    if p.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&p.audiences);
        required.push("aud");
    }
    if let Some(iss) = p.issuer.as_deref().filter(|i| !i.is_empty()) {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let validations = [
        RSA,
        &[Algorithm::ES256, Algorithm::ES384],
        &[Algorithm::EdDSA],
        HMAC,
    ]
    .iter()
    .map(|family| {
        let mut v = validation.clone();
        v.algorithms = family.to_vec();
        v
    })
    .collect();
    let mut sources = Vec::new();
    if let Some(ts) = &p.token_source {
        for (i, h) in ts.headers.iter().enumerate() {
            let n = HeaderName::from_bytes(h.header.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{at}.tokenSource.headers[{i}].header: not a header name"))?;
            sources.push(Source::Header(n, h.prefix.clone()));
        }
        for q in &ts.query_params {
            sources.push(Source::Query(q.clone()));
        }
    }
    if sources.is_empty() {
        sources.push(Source::Header(
            http::header::AUTHORIZATION,
            "Bearer ".to_string(),
        ));
        sources.push(Source::Query("access_token".to_string()));
    }
    let mut claims = Vec::new();
    for (i, c) in p.claims_to_headers.iter().enumerate() {
        let header = HeaderName::from_bytes(c.header.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("{at}.claimsToHeaders[{i}].header: not a header name"))?;
        claims.push(ClaimHeader {
            claim: c.claim.clone(),
            header,
            append: c.append,
        });
    }
    Ok(Provider {
        name: name.to_string(),
        keys,
        validations,
        sources,
        keep_token: p.keep_token,
        claims,
        verified: Default::default(),
    })
}

impl Provider {
    /// The token and the header it came in (None for a query parameter).
    fn token<'r>(&self, req: &'r Inbound<'_>) -> Option<(&'r str, Option<&HeaderName>)> {
        for s in &self.sources {
            match s {
                Source::Header(h, prefix) => {
                    let Some(v) = req.head.headers.get(h.as_str()) else {
                        continue;
                    };
                    let token = if prefix.is_empty() {
                        Some(v)
                    } else if v.len() >= prefix.len()
                        && v.is_char_boundary(prefix.len())
                        && v[..prefix.len()].eq_ignore_ascii_case(prefix)
                    {
                        Some(&v[prefix.len()..])
                    } else {
                        None
                    };
                    if let Some(t) = token.map(str::trim).filter(|t| !t.is_empty()) {
                        return Some((t, Some(h)));
                    }
                }
                Source::Query(q) => {
                    if let Some(t) = req.query_param(q).filter(|t| !t.is_empty()) {
                        return Some((t, None));
                    }
                }
            }
        }
        None
    }

    /// Verifies `token`: its claims, or why not (from the cache when it verified before).
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed: {e}"))?;
        let set = match &self.keys {
            Keys::Local(k) => k.clone(),
            Keys::Remote(r) => r
                .current()
                .await
                .ok_or_else(|| "the provider's keys could not be fetched".to_string())?,
        };
        let now = jsonwebtoken::get_current_timestamp();
        {
            let cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = cache.get(token).filter(|v| v.holds(now, &set)) {
                return Ok(v.claims.clone());
            }
        }
        let (claims, leeway) = self.verify_with(token, &header, &set)?;
        let seconds = |c: &str| claims.get(c).and_then(Value::as_u64);
        let entry = Verified {
            exp: seconds("exp"),
            nbf: seconds("nbf"),
            claims: claims.clone(),
            leeway,
            keys: set,
        };
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(token.to_string(), entry);
        Ok(claims)
    }

    /// Checks `token`'s signature and claims against `set`: the claims and the leeway used.
    fn verify_with(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        set: &KeySet,
    ) -> Result<(Map<String, Value>, u64), String> {
        let mut last = format!("no key for algorithm {:?}", header.alg);
        let mut kid_known = header.kid.is_none();
        for k in &set.0 {
            if let (Some(want), Some(have)) = (&header.kid, &k.kid) {
                if want != have {
                    continue;
                }
                kid_known = true;
            }
            if !k.algs.contains(&header.alg) {
                continue;
            }
            let Some(validation) = self
                .validations
                .iter()
                .find(|v| v.algorithms.contains(&header.alg))
            else {
                continue;
            };
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, validation) {
                Ok(data) => return Ok((data.claims, validation.leeway)),
                Err(e) => last = describe(&e),
            }
        }
        if !kid_known && let Keys::Remote(r) = &self.keys {
            r.refresh.notify_one();
            last = format!(
                "no key with kid {:?}",
                header.kid.clone().unwrap_or_default()
            );
        }
        Err(last)
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not yet valid (nbf)".into(),
        K::InvalidAudience => "audience not allowed".into(),
        K::InvalidIssuer => "issuer not allowed".into(),
        K::InvalidSignature => "signature does not verify".into(),
        K::MissingRequiredClaim(c) => format!("no `{c}` claim"),
        _ => e.to_string(),
    }
}

fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn challenge(req: &Inbound<'_>, error: bool) -> String {
    let realm = format!("http://{}{}", req.head.authority, req.head.path).replace('"', "");
    if error {
        format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
    } else {
        format!("Bearer realm=\"{realm}\"")
    }
}

#[async_trait::async_trait]
impl Stage for JwtStage {
    fn order(&self) -> Order {
        self.order
    }

    async fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        let mut failure: Option<String> = None;
        let mut seen = false;
        for p in &self.providers {
            let Some((token, header)) = p.token(req) else {
                continue;
            };
            seen = true;
            match p.verify(token).await {
                Ok(claims) => {
                    if !p.keep_token
                        && let Some(h) = header
                    {
                        edits.request_remove.push(h.clone());
                    }
                    for c in &p.claims {
                        let Some(v) = claims.get(&c.claim) else {
                            continue;
                        };
                        let mut text = claim_text(v);
                        if c.append
                            && let Some(old) = req.head.headers.get(c.header.as_str())
                        {
                            text = format!("{old},{text}");
                        }
                        if let Ok(hv) = HeaderValue::from_str(&text) {
                            edits.request_set.push((c.header.clone(), hv));
                        }
                    }
                    return Ok(());
                }
                Err(e) => failure = Some(format!("jwt ({}): {e}", p.name)),
            }
        }
        let allowed = match self.policy {
            Policy::RequireValid => false,
            Policy::AllowMissing => !seen,
            Policy::AllowMissingOrFailed => true,
        };
        if allowed {
            return Ok(());
        }
        self.runtime
            .counters
            .jwt_denied
            .fetch_add(1, Ordering::Relaxed);
        Err(match failure {
            Some(reason) => super::answer(StatusCode::UNAUTHORIZED, reason)
                .header("www-authenticate", &challenge(req, true)),
            None => super::answer(StatusCode::UNAUTHORIZED, "jwt: missing")
                .header("www-authenticate", &challenge(req, false)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached token holds only while it is within its time and its key set is the one in
    /// use: an expired token, or one verified under keys since rotated, is verified again.
    #[test]
    fn a_cached_token_expires_and_follows_the_key_set() {
        let keys = Arc::new(KeySet(Vec::new()));
        let v = Verified {
            claims: Map::new(),
            exp: Some(1_000),
            nbf: Some(500),
            leeway: 60,
            keys: keys.clone(),
        };
        assert!(v.holds(900, &keys));
        assert!(v.holds(1_059, &keys), "within the clock skew");
        assert!(!v.holds(1_060, &keys), "expired");
        assert!(
            v.holds(440, &keys) && !v.holds(439, &keys),
            "not before nbf - skew"
        );
        assert!(
            !v.holds(900, &Arc::new(KeySet(Vec::new()))),
            "another key set"
        );
    }
}
