//! Local rate limits (Gloo's `ratelimit.localRatelimit`, Envoy's token bucket): a bucket of
//! `maxTokens`, full at the start, refilled by `tokensPerFill` (default 1) every
//! `fillInterval`; a request takes one token or gets 429. One bucket per route and gateway
//! process, shared by its workers and kept across recompiles of the same settings.

use super::runtime::Runtime;
use super::spec::TokenBucket;
use super::{Answer, Edits, Inbound, Order, Stage, WithHeader};
use http::StatusCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Bucket {
    max: u32,
    per_fill: u32,
    every: Duration,
    /// Tokens left, and when the last fill was counted.
    state: Mutex<(u32, Instant)>,
}

impl Bucket {
    pub fn new(max: u32, per_fill: u32, every: Duration) -> Bucket {
        Bucket {
            max,
            per_fill,
            every,
            state: Mutex::new((max, Instant::now())),
        }
    }

    /// The bucket's size (`maxTokens`).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Takes a token if there is one; else how long until the next fill.
    pub fn take(&self) -> Result<u32, Duration> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.1);
        let fills = (elapsed.as_nanos() / self.every.as_nanos().max(1)) as u64;
        if fills > 0 {
            let added = fills.saturating_mul(u64::from(self.per_fill));
            s.0 = (u64::from(s.0) + added).min(u64::from(self.max)) as u32;
            s.1 += self.every * fills.min(u64::from(u32::MAX)) as u32;
        }
        if s.0 > 0 {
            s.0 -= 1;
            Ok(s.0)
        } else {
            Err((s.1 + self.every).saturating_duration_since(now))
        }
    }
}

#[derive(Debug)]
pub struct LocalLimit {
    bucket: Arc<Bucket>,
    runtime: Arc<Runtime>,
}

/// Checks a token bucket's settings (`at` names where they are) and gives its bucket: one per
/// `key` and settings, shared by whatever names the same, kept across recompiles.
pub fn bucket(
    at: &str,
    key: &str,
    b: &TokenBucket,
    runtime: &Runtime,
) -> Result<Arc<Bucket>, String> {
    if b.max_tokens == 0 {
        return Err(format!("{at}.maxTokens: must be at least 1"));
    }
    let per_fill = b.tokens_per_fill.unwrap_or(1);
    if per_fill == 0 {
        return Err(format!("{at}.tokensPerFill: must be at least 1"));
    }
    let every = b
        .fill_interval
        .as_ref()
        .ok_or_else(|| format!("{at}.fillInterval: missing"))?
        .get()
        .map_err(|e| format!("{at}.fillInterval: {e}"))?;
    // Envoy's minimum.
    if every < Duration::from_millis(50) {
        return Err(format!("{at}.fillInterval: at least 50ms"));
    }
    let id = format!("{key} {} {per_fill} {every:?}", b.max_tokens);
    Ok(runtime.bucket(&id, || Bucket::new(b.max_tokens, per_fill, every)))
}

/// The 429 of an empty bucket (`wait`: until its next fill), counted; with Envoy's
/// `x-ratelimit-*` headers when `x_headers`.
pub fn over_limit(bucket: &Bucket, wait: Duration, x_headers: bool, runtime: &Runtime) -> Answer {
    runtime
        .counters
        .local_limited
        .fetch_add(1, Ordering::Relaxed);
    let a = super::answer(StatusCode::TOO_MANY_REQUESTS, "local_rate_limited")
        .header("x-envoy-ratelimited", "true");
    if !x_headers {
        return a;
    }
    a.header("x-ratelimit-limit", &bucket.max.to_string())
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", &wait.as_secs().max(1).to_string())
}

impl LocalLimit {
    /// `key` identifies the route, so that its bucket outlives a recompile.
    pub fn build(
        at: &str,
        key: &str,
        b: &TokenBucket,
        runtime: &Arc<Runtime>,
    ) -> Result<LocalLimit, String> {
        Ok(LocalLimit {
            bucket: bucket(at, key, b, runtime)?,
            runtime: runtime.clone(),
        })
    }
}

#[async_trait::async_trait]
impl Stage for LocalLimit {
    fn order(&self) -> Order {
        Order::RateLimit
    }

    async fn check(&self, _req: &Inbound<'_>, _edits: &mut Edits) -> Result<(), Answer> {
        match self.bucket.take() {
            Ok(_) => Ok(()),
            Err(wait) => Err(over_limit(&self.bucket, wait, true, &self.runtime)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn envoy_token_bucket_on_paused_time() {
        let b = Bucket::new(3, 2, Duration::from_secs(1));
        assert!(b.take().is_ok() && b.take().is_ok() && b.take().is_ok());
        assert!(b.take().is_err(), "empty after maxTokens");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(b.take().is_err(), "no fill before the interval");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            b.take().is_ok() && b.take().is_ok(),
            "tokensPerFill after one interval"
        );
        assert!(b.take().is_err());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.take(), Ok(2), "never more than maxTokens");
    }
}
