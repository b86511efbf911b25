//! What the policies share across route tables and workers: the Redis connection the global
//! rate limits count in, remote JWKS caches and local token buckets (kept across recompiles,
//! keyed by their configuration), and counters for `/metrics`.

use super::jwt::RemoteKeys;
use super::limit::Bucket;
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long one Redis round trip may take before the limit counts as failed (Gloo's default
/// rate-limit request timeout is 100 ms; a little more for a busy CI machine).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connection attempt, requests do not wait for another one for this long.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub jwt_denied: AtomicU64,
    pub auth_denied: AtomicU64,
    pub auth_unreachable: AtomicU64,
    pub cors_preflights: AtomicU64,
    pub local_limited: AtomicU64,
    pub global_limited: AtomicU64,
    pub redis_errors: AtomicU64,
    pub redis_failed_open: AtomicU64,
    pub redis_failed_closed: AtomicU64,
}

/// The gateway's Redis, as `epoxy gateway --redis URL [--ratelimit-deny-on-fail]` gives it.
#[derive(Debug)]
pub struct RedisSettings {
    pub client: redis::Client,
    /// Gloo's `denyOnFail`: a limit that cannot be counted denies (500) instead of allowing.
    pub deny_on_fail: bool,
    conn: tokio::sync::Mutex<(Option<redis::aio::MultiplexedConnection>, Option<Instant>)>,
}

#[derive(Debug, Default)]
pub struct Runtime {
    redis: ArcSwapOption<RedisSettings>,
    pub counters: Counters,
    jwks: Mutex<HashMap<String, Weak<RemoteKeys>>>,
    buckets: Mutex<HashMap<String, Weak<Bucket>>>,
}

impl Runtime {
    /// Sets the Redis the global limits count in (at the gateway's start).
    pub fn set_redis(&self, url: &str, deny_on_fail: bool) -> Result<(), String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis {url}: {e}"))?;
        self.redis.store(Some(Arc::new(RedisSettings {
            client,
            deny_on_fail,
            conn: tokio::sync::Mutex::new((None, None)),
        })));
        Ok(())
    }

    pub fn redis(&self) -> Option<Arc<RedisSettings>> {
        self.redis.load_full()
    }

    /// The remote key set of `key` (its URL and cache duration), shared by every route and
    /// table that names it.
    pub fn remote_keys(&self, key: &str, make: impl FnOnce() -> RemoteKeys) -> Arc<RemoteKeys> {
        shared(&self.jwks, key, make)
    }

    /// The token bucket of `key` (the route and its settings), kept across recompiles.
    pub fn bucket(&self, key: &str, make: impl FnOnce() -> Bucket) -> Arc<Bucket> {
        shared(&self.buckets, key, make)
    }
}

impl Counters {
    /// (metric, help, value) of each counter, for `/metrics`.
    pub fn rows(&self) -> [(&'static str, &'static str, u64); 9] {
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            (
                "epoxy_policy_jwt_denied_total",
                "Requests refused by JWT (401).",
                v(&self.jwt_denied),
            ),
            (
                "epoxy_policy_auth_denied_total",
                "Requests refused by external auth (401/403).",
                v(&self.auth_denied),
            ),
            (
                "epoxy_policy_auth_unreachable_total",
                "Pass-through auth services that did not answer.",
                v(&self.auth_unreachable),
            ),
            (
                "epoxy_policy_cors_preflights_total",
                "CORS preflights answered by the gateway.",
                v(&self.cors_preflights),
            ),
            (
                "epoxy_policy_local_ratelimited_total",
                "Requests over a local rate limit (429).",
                v(&self.local_limited),
            ),
            (
                "epoxy_policy_global_ratelimited_total",
                "Requests over a global rate limit (429).",
                v(&self.global_limited),
            ),
            (
                "epoxy_policy_redis_errors_total",
                "Global rate limits that could not be counted in Redis.",
                v(&self.redis_errors),
            ),
            (
                "epoxy_policy_redis_failed_open_total",
                "Requests let through while Redis failed (the default).",
                v(&self.redis_failed_open),
            ),
            (
                "epoxy_policy_redis_failed_closed_total",
                "Requests denied while Redis failed (denyOnFail).",
                v(&self.redis_failed_closed),
            ),
        ]
    }
}

impl RedisSettings {
    /// A connection (one multiplexed connection for the process); None while Redis cannot be
    /// reached (another attempt at most every `RECONNECT_PAUSE`).
    pub async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let mut g = self.conn.lock().await;
        if let Some(c) = &g.0 {
            return Some(c.clone());
        }
        if g.1.is_some_and(|t| t.elapsed() < RECONNECT_PAUSE) {
            return None;
        }
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        match self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
        {
            Ok(c) => {
                *g = (Some(c.clone()), None);
                Some(c)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to Redis");
                g.1 = Some(Instant::now());
                None
            }
        }
    }

    /// Forgets a connection that failed, so that the next request connects again.
    pub async fn drop_connection(&self) {
        let mut g = self.conn.lock().await;
        *g = (None, Some(Instant::now()));
    }
}

fn shared<T>(map: &Mutex<HashMap<String, Weak<T>>>, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = m.get(key).and_then(Weak::upgrade) {
        return t;
    }
    m.retain(|_, w| w.strong_count() > 0);
    let t = Arc::new(make());
    m.insert(key.to_string(), Arc::downgrade(&t));
    t
}
