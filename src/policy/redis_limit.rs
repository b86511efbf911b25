//! Global rate limits (Gloo's `RateLimitConfig`, counted as Gloo's rate-limit server counts
//! them): each `rateLimits[].actions` entry turns a request into a descriptor (`generic_key`,
//! `remote_address`, a request header), found in the `descriptors` tree; the limit it ends on
//! is counted in Redis in a fixed window of its unit, so that every gateway sharing the Redis
//! shares the budget. Over it: 429 with `x-envoy-ratelimited`. Redis failing: the request goes
//! on (counted and logged), or with Gloo's `denyOnFail` it is denied (500).
//!
//! Gloo's simpler `ratelimitBasic` is the same counting with descriptors of its own
//! (`Config::basic`): per user (the identity external auth found) or, without one, per
//! client address.

use super::runtime::{REDIS_TIMEOUT, Runtime};
use super::spec::{self, RateLimitConfigSpec};
use super::{Answer, Edits, Inbound, Order, Stage, WithHeader};
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct Limit {
    unit_secs: u64,
    per_unit: u32,
}

#[derive(Debug)]
struct Node {
    key: String,
    value: Option<String>,
    limit: Option<Limit>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Action {
    Generic {
        key: String,
        value: String,
    },
    Remote,
    Header {
        header: String,
        key: String,
        skip_if_absent: bool,
    },
    /// `ratelimitBasic`: the user external auth found; no descriptor without one.
    User,
    /// `ratelimitBasic`: the client's address, for a request without a user only.
    Anonymous,
}

/// One RateLimitConfig, compiled.
#[derive(Debug)]
pub struct Config {
    /// `namespace/name`, part of every counter's key.
    name: String,
    tree: Vec<Node>,
    rate_limits: Vec<Vec<Action>>,
}

fn unit_secs(unit: &str) -> Option<u64> {
    Some(match unit {
        "SECOND" => 1,
        "MINUTE" => 60,
        "HOUR" => 3600,
        "DAY" => 86_400,
        _ => return None,
    })
}

/// A descriptor's `rateLimit` (at `at`), if any.
fn limit(at: &str, r: &Option<spec::RateLimit>) -> Result<Option<Limit>, String> {
    let Some(r) = r else { return Ok(None) };
    let unit_secs = unit_secs(&r.unit).ok_or_else(|| {
        format!(
            "{at}.unit: `{}` is none of SECOND, MINUTE, HOUR, DAY",
            r.unit
        )
    })?;
    Ok(Some(Limit {
        unit_secs,
        per_unit: r.requests_per_unit,
    }))
}

fn nodes(at: &str, ds: &[spec::Descriptor]) -> Result<Vec<Node>, String> {
    let mut out = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if d.key.is_empty() {
            return Err(format!("{at}.key: missing"));
        }
        let limit = limit(&format!("{at}.rateLimit"), &d.rate_limit)?;
        out.push(Node {
            key: d.key.clone(),
            value: d.value.clone(),
            limit,
            children: nodes(&format!("{at}.descriptors"), &d.descriptors)?,
        });
    }
    Ok(out)
}

impl Config {
    /// Compiles a RateLimitConfig's spec; the error names the field.
    pub fn build(name: &str, spec: &RateLimitConfigSpec) -> Result<Config, String> {
        let raw = spec
            .raw
            .as_ref()
            .ok_or_else(|| "spec.raw: missing (epoxy reads the raw form)".to_string())?;
        let tree = nodes("spec.raw.descriptors", &raw.descriptors)?;
        let mut rate_limits = Vec::new();
        for (i, rl) in raw.rate_limits.iter().enumerate() {
            let mut actions = Vec::new();
            for (j, a) in rl.actions.iter().enumerate() {
                let at = format!("spec.raw.rateLimits[{i}].actions[{j}]");
                let set = [
                    a.generic_key.is_some(),
                    a.remote_address.is_some(),
                    a.request_headers.is_some(),
                ];
                if set.iter().filter(|s| **s).count() != 1 {
                    return Err(format!(
                        "{at}: exactly one of genericKey, remoteAddress, requestHeaders"
                    ));
                }
                actions.push(if let Some(g) = &a.generic_key {
                    Action::Generic {
                        key: g
                            .descriptor_key
                            .clone()
                            .unwrap_or_else(|| "generic_key".into()),
                        value: g.descriptor_value.clone(),
                    }
                } else if let Some(h) = &a.request_headers {
                    if h.header_name.is_empty() || h.descriptor_key.is_empty() {
                        return Err(format!(
                            "{at}.requestHeaders: headerName and descriptorKey are needed"
                        ));
                    }
                    Action::Header {
                        header: h.header_name.to_ascii_lowercase(),
                        key: h.descriptor_key.clone(),
                        skip_if_absent: h.skip_if_absent,
                    }
                } else {
                    Action::Remote
                });
            }
            if actions.is_empty() {
                return Err(format!("spec.raw.rateLimits[{i}].actions: none"));
            }
            rate_limits.push(actions);
        }
        Ok(Config {
            name: name.to_string(),
            tree,
            rate_limits,
        })
    }

    /// Gloo's `ratelimitBasic` of one virtual host or route (`id`): `authorizedLimits` per
    /// user, `anonymousLimits` per client address for requests without a user. The error
    /// names the field under `at`.
    pub fn basic(at: &str, id: &str, spec: &spec::IngressRateLimit) -> Result<Config, String> {
        let user = |key: &str, limit| Node {
            key: key.into(),
            value: None,
            limit,
            children: Vec::new(),
        };
        let tree = vec![Node {
            key: "generic_key".into(),
            value: Some(id.to_string()),
            limit: None,
            children: vec![
                user(
                    "userid",
                    limit(&format!("{at}.authorizedLimits"), &spec.authorized_limits)?,
                ),
                user(
                    "remote_address",
                    limit(&format!("{at}.anonymousLimits"), &spec.anonymous_limits)?,
                ),
            ],
        }];
        let generic = || Action::Generic {
            key: "generic_key".into(),
            value: id.to_string(),
        };
        Ok(Config {
            name: format!("basic|{id}"),
            tree,
            rate_limits: vec![
                vec![generic(), Action::User],
                vec![generic(), Action::Anonymous],
            ],
        })
    }

    /// The (counter key, limit) of each descriptor the request (of `user`, when external auth
    /// found one) makes that has a limit.
    fn hits<'c>(&'c self, req: &Inbound<'_>, user: Option<&str>) -> Vec<(String, &'c Limit)> {
        let mut out = Vec::new();
        'descriptor: for actions in &self.rate_limits {
            let mut entries: Vec<(&str, String)> = Vec::new();
            for a in actions {
                match a {
                    Action::Generic { key, value } => entries.push((key, value.clone())),
                    Action::Remote => entries.push(("remote_address", req.remote.ip().to_string())),
                    Action::Header {
                        header,
                        key,
                        skip_if_absent,
                    } => match req.head.headers.get(header) {
                        Some(v) => entries.push((key, v.to_string())),
                        None if *skip_if_absent => {}
                        None => continue 'descriptor,
                    },
                    Action::User => match user {
                        Some(u) => entries.push(("userid", u.to_string())),
                        None => continue 'descriptor,
                    },
                    Action::Anonymous => match user {
                        None => entries.push(("remote_address", req.remote.ip().to_string())),
                        Some(_) => continue 'descriptor,
                    },
                }
            }
            if let Some(limit) = find(&self.tree, &entries) {
                let mut key = format!("epoxy_rl|{}", self.name);
                for (k, v) in &entries {
                    key.push('|');
                    key.push_str(k);
                    key.push('=');
                    key.push_str(v);
                }
                out.push((key, limit));
            }
        }
        out
    }
}

/// The limit a descriptor ends on: each entry matches a child with its key and value, else
/// one with its key and no value (Lyft's rate-limit service).
fn find<'t>(tree: &'t [Node], entries: &[(&str, String)]) -> Option<&'t Limit> {
    let mut level = tree;
    let mut found = None;
    for (k, v) in entries {
        let node = level
            .iter()
            .find(|n| n.key == *k && n.value.as_deref() == Some(v.as_str()))
            .or_else(|| level.iter().find(|n| n.key == *k && n.value.is_none()))?;
        found = Some(node);
        level = &node.children;
    }
    found.and_then(|n| n.limit.as_ref())
}

#[derive(Debug)]
pub struct GlobalLimit {
    configs: Vec<Arc<Config>>,
    runtime: Arc<Runtime>,
    order: Order,
}

impl GlobalLimit {
    pub fn new(configs: Vec<Arc<Config>>, runtime: &Arc<Runtime>) -> GlobalLimit {
        GlobalLimit {
            configs,
            runtime: runtime.clone(),
            order: Order::RateLimit,
        }
    }

    /// The same limits in Gloo's early stage (`rateLimitEarlyConfigs`): before JWT and
    /// external auth, so that a request they refuse counts too.
    pub fn early(mut self) -> GlobalLimit {
        self.order = Order::RateLimitEarly;
        self
    }

    // The pipeline's `Answer` is the error: built once per failed request, not worth a box.
    #[allow(clippy::result_large_err)]
    fn failed(&self, why: &str) -> Result<(), Answer> {
        let c = &self.runtime.counters;
        c.redis_errors.fetch_add(1, Ordering::Relaxed);
        static LAST_LOG: AtomicU64 = AtomicU64::new(0);
        let now = now_secs();
        if LAST_LOG.swap(now, Ordering::Relaxed) != now {
            tracing::warn!(error = why, "global rate limit not counted");
        }
        let deny = self.runtime.redis().is_none_or(|r| r.deny_on_fail);
        if deny {
            c.redis_failed_closed.fetch_add(1, Ordering::Relaxed);
            Err(super::answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("ratelimit: cannot count ({why})"),
            ))
        } else {
            c.redis_failed_open.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait::async_trait]
impl Stage for GlobalLimit {
    fn order(&self) -> Order {
        self.order
    }

    async fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        let user = edits.user.clone();
        let hits: Vec<(String, &Limit)> = self
            .configs
            .iter()
            .flat_map(|c| c.hits(req, user.as_deref()))
            .collect();
        if hits.is_empty() {
            return Ok(());
        }
        let Some(redis) = self.runtime.redis() else {
            return self.failed("this gateway has no Redis (epoxy gateway --redis URL)");
        };
        let Some(mut conn) = redis.connection().await else {
            return self.failed("Redis unreachable");
        };
        let now = now_secs();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut windows = Vec::new();
        for (key, limit) in &hits {
            let start = now - now % limit.unit_secs;
            let k = format!("{key}|{start}");
            pipe.incr(&k, 1u32)
                .expire(&k, limit.unit_secs as i64)
                .ignore();
            windows.push(start + limit.unit_secs);
        }
        let counts: Vec<u64> =
            match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async(&mut conn)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    redis.drop_connection().await;
                    return self.failed(&e.to_string());
                }
                Err(_) => {
                    redis.drop_connection().await;
                    return self.failed("Redis timed out");
                }
            };
        // The tightest limit: the one with the fewest requests left.
        let mut tightest: Option<(u64, u32, u64)> = None;
        for ((count, (_, limit)), end) in counts.iter().zip(&hits).zip(&windows) {
            let left = u64::from(limit.per_unit).saturating_sub(*count);
            let over = *count > u64::from(limit.per_unit);
            if over || tightest.is_none_or(|t| left < t.0) {
                tightest = Some((left, limit.per_unit, end.saturating_sub(now)));
            }
            if over {
                self.runtime
                    .counters
                    .global_limited
                    .fetch_add(1, Ordering::Relaxed);
                return Err(super::answer(StatusCode::TOO_MANY_REQUESTS, "ratelimited")
                    .header("x-envoy-ratelimited", "true")
                    .header("x-ratelimit-limit", &limit.per_unit.to_string())
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-reset", &end.saturating_sub(now).to_string()));
            }
        }
        if let Some((left, limit, reset)) = tightest {
            for (n, v) in [
                ("x-ratelimit-limit", u64::from(limit)),
                ("x-ratelimit-remaining", left),
                ("x-ratelimit-reset", reset),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
                    edits.response_set.push((HeaderName::from_static(n), v));
                }
            }
        }
        Ok(())
    }
}
