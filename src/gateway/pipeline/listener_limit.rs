//! A Gateway's `httpLocalRatelimit`: one token bucket (Envoy's, `crate::policy::limit`) for
//! every request on that Gateway's listener, run as the rate-limit stage of each of its routes
//! that has no local limit of its own (Gloo: a virtual host's or route's `localRatelimit`
//! overrides the Gateway's `defaultLimit`).

use super::{Answer, Edits, HeaderPair, Inbound, Order, Stage};
use crate::api::ResourceKey;
use crate::api::gateway::{LOCAL_RATELIMIT_AT, LocalRatelimitSettings};
use crate::policy::Runtime;
use crate::policy::limit::{Bucket, bucket, over_limit};
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

#[derive(Debug)]
pub struct ListenerLimit {
    bucket: Arc<Bucket>,
    /// `enableXRatelimitHeaders`: Envoy's `x-ratelimit-*` on every response.
    x_headers: bool,
    runtime: Arc<Runtime>,
}

impl ListenerLimit {
    /// The stage of the Gateway `key`'s settings; `None` without a `defaultLimit`. The bucket
    /// is the Gateway's, kept while its settings do not change.
    pub fn build(
        key: &ResourceKey,
        s: &LocalRatelimitSettings,
        runtime: &Arc<Runtime>,
    ) -> Result<Option<ListenerLimit>, String> {
        let Some(b) = &s.default_limit else {
            return Ok(None);
        };
        if s.local_rate_limit_per_downstream_connection == Some(true) {
            return Err(format!(
                "{LOCAL_RATELIMIT_AT}.localRateLimitPerDownstreamConnection: not supported"
            ));
        }
        let at = format!("{LOCAL_RATELIMIT_AT}.defaultLimit");
        Ok(Some(ListenerLimit {
            bucket: bucket(&at, &format!("listener {key}"), b, runtime)?,
            x_headers: s.enable_x_ratelimit_headers.unwrap_or(false),
            runtime: runtime.clone(),
        }))
    }
}

fn header(name: &'static str, value: u32) -> Option<HeaderPair> {
    Some((
        HeaderName::from_static(name),
        HeaderValue::from_str(&value.to_string()).ok()?,
    ))
}

#[async_trait::async_trait]
impl Stage for ListenerLimit {
    fn order(&self) -> Order {
        Order::RateLimit
    }

    async fn check(&self, _req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        match self.bucket.take() {
            Ok(left) => {
                if self.x_headers {
                    edits.response_set.extend(
                        header("x-ratelimit-limit", self.bucket.max())
                            .into_iter()
                            .chain(header("x-ratelimit-remaining", left)),
                    );
                }
                Ok(())
            }
            Err(wait) => Err(over_limit(
                &self.bucket,
                wait,
                self.x_headers,
                &self.runtime,
            )),
        }
    }
}
