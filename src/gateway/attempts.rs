//! One request's attempts at its upstream, for both transports: the endpoint picked round
//! robin, Envoy's jittered back-off between tries, the per-try and whole-request deadlines,
//! which failures and statuses are retried, and what the last failure answers.
//!
//! A transport only says how one attempt is made ([`Exchange`]); it reports a failure as a
//! [`ProxyError`] saying where it came from (Pingora's `ErrorSource`) and what kind of retry
//! it allows (Pingora's `RetryType`), and this loop decides.

use super::table::{Retry, UpstreamTarget};
use http::StatusCode;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Who a failure is the fault of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client (a request body that broke off or is malformed): never retried, not counted
    /// against the upstream, answered 400.
    Downstream,
    /// The upstream or the way to it.
    Upstream,
}

/// What an upstream failure allows (the route's `retryOn` decides whether it is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryType {
    /// Nothing was sent: no connection could be made (`connect-failure`).
    Connect,
    /// The connection failed, or the answer was no HTTP (`reset`).
    Reset,
    /// No answer within the per-try deadline (retried while the request's deadline allows).
    Timeout,
    /// Not to be retried.
    Never,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub source: ErrorSource,
    pub retry: RetryType,
    /// The root cause, for the message.
    pub cause: String,
}

impl ProxyError {
    pub fn upstream(retry: RetryType, cause: impl Into<String>) -> ProxyError {
        ProxyError {
            source: ErrorSource::Upstream,
            retry,
            cause: cause.into(),
        }
    }

    pub fn downstream(cause: impl Into<String>) -> ProxyError {
        ProxyError {
            source: ErrorSource::Downstream,
            retry: RetryType::Never,
            cause: cause.into(),
        }
    }

    pub fn timeout() -> ProxyError {
        ProxyError::upstream(RetryType::Timeout, "")
    }

    /// Whether the route's retry policy retries this failure.
    fn retried_by(&self, retry: &Retry) -> bool {
        match (self.source, self.retry) {
            (ErrorSource::Downstream, _) | (_, RetryType::Never) => false,
            (_, RetryType::Connect) => retry.on_connect_failure,
            (_, RetryType::Reset) => retry.on_reset,
            (_, RetryType::Timeout) => true,
        }
    }
}

/// How a request failed in the end: status, `x-epoxy-error` code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Failed {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failed {
        Failed {
            status,
            code,
            message: message.into(),
        }
    }

    /// Before any attempt: the route's timeout left no time for one.
    fn no_attempt() -> Failed {
        Failed::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            "no attempt could be made in time",
        )
    }

    fn of(host: &str, e: &ProxyError) -> Failed {
        match (e.source, e.retry) {
            (ErrorSource::Downstream, _) => Failed::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("the request body could not be read: {}", e.cause),
            ),
            (_, RetryType::Connect) => Failed::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream-connect-failure",
                format!("cannot connect to upstream {host}: {}", e.cause),
            ),
            (_, RetryType::Timeout) => Failed::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                format!("upstream {host} did not answer in time"),
            ),
            (_, RetryType::Reset | RetryType::Never) => Failed::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream-reset",
                format!("upstream {host} reset the request: {}", e.cause),
            ),
        }
    }

    /// The upstream answered a status the route retries on, and no try is left.
    fn status(s: u16) -> Failed {
        Failed::new(
            StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
            "upstream-status",
            format!("upstream answered {s}"),
        )
    }

    /// No endpoint to send to.
    pub fn no_upstream(why: &str) -> Failed {
        Failed::new(StatusCode::SERVICE_UNAVAILABLE, "no-upstream", why)
    }
}

/// One attempt at an upstream endpoint, as a transport makes it.
pub trait Exchange {
    /// The upstream's answer (at least its head).
    type Answer;
    /// Sends the request to `host` and reads the answer's head; gives up at `until` with
    /// [`ProxyError::timeout`]. `last`: no other attempt follows (the request's headers may be
    /// moved rather than copied).
    fn attempt(
        &mut self,
        host: &Arc<str>,
        until: Instant,
        last: bool,
    ) -> impl Future<Output = Result<Self::Answer, ProxyError>>;
    fn status(answer: &Self::Answer) -> u16;
    /// The answer's body size, when its head says (for the upstream's counters).
    fn size(answer: &Self::Answer) -> u64;
}

/// Makes up to `attempts` attempts within `deadline`: the answer and the endpoint that gave
/// it, or how the request failed. Either way the upstream's counters get the outcome (a
/// failure the client caused aside).
pub async fn run<E: Exchange>(
    exchange: &mut E,
    upstream: &UpstreamTarget,
    retry: &Retry,
    attempts: u32,
    deadline: Instant,
) -> Result<(E::Answer, Arc<str>), Failed> {
    let mut last_error = Failed::no_attempt();
    for attempt in 0..attempts {
        if attempt > 0 {
            // Envoy's jittered back-off before a retry, within the request's deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(retry.backoff(attempt).min(left)).await;
        }
        let Some(host) = upstream.pick() else {
            return Err(Failed::no_upstream("the upstream has no hosts"));
        };
        let last = attempt + 1 == attempts;
        let per_try = retry
            .per_try
            .map_or(deadline, |p| deadline.min(Instant::now() + p));
        match exchange.attempt(host, per_try, last).await {
            Ok(answer) => {
                let status = E::status(&answer);
                if !last && retry.retry_status(status) {
                    last_error = Failed::status(status);
                    continue;
                }
                let size = E::size(&answer);
                upstream.stats.record(status, Duration::ZERO, size);
                return Ok((answer, host.clone()));
            }
            Err(e) if e.source == ErrorSource::Downstream => return Err(Failed::of(host, &e)),
            Err(e) => {
                last_error = Failed::of(host, &e);
                let past_deadline = e.retry == RetryType::Timeout && Instant::now() >= deadline;
                if last || past_deadline || !e.retried_by(retry) {
                    break;
                }
            }
        }
    }
    upstream
        .stats
        .record(last_error.status.as_u16(), Duration::ZERO, 0);
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// An exchange that answers from a script.
    struct Scripted(VecDeque<Result<u16, ProxyError>>, Vec<String>);

    impl Exchange for Scripted {
        type Answer = u16;
        async fn attempt(
            &mut self,
            host: &Arc<str>,
            _: Instant,
            _: bool,
        ) -> Result<u16, ProxyError> {
            self.1.push(host.to_string());
            self.0.pop_front().expect("no more attempts scripted")
        }
        fn status(a: &u16) -> u16 {
            *a
        }
        fn size(_: &u16) -> u64 {
            0
        }
    }

    fn upstream() -> UpstreamTarget {
        let hosts: Vec<Arc<str>> = vec!["a:1".into(), "b:2".into()];
        UpstreamTarget::new(
            "u".into(),
            hosts.clone(),
            hosts,
            Default::default(),
            Default::default(),
        )
    }

    fn retry(on: &str) -> Retry {
        Retry {
            num: 2,
            on_connect_failure: on.contains("connect-failure"),
            on_reset: on.contains("reset"),
            on_5xx: on.contains("5xx"),
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            ..Retry::default()
        }
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn retries_a_connect_failure_on_the_next_endpoint() {
        let mut ex = Scripted(
            [
                Err(ProxyError::upstream(RetryType::Connect, "refused")),
                Ok(200),
            ]
            .into(),
            Vec::new(),
        );
        let u = upstream();
        let (status, host) = run(&mut ex, &u, &retry("connect-failure"), 3, deadline())
            .await
            .unwrap();
        assert_eq!((status, &*host), (200, "b:2"));
        assert_eq!(ex.1, ["a:1", "b:2"]);
    }

    #[tokio::test]
    async fn a_reset_is_not_retried_unless_asked_and_answers_503() {
        let mut ex = Scripted(
            [Err(ProxyError::upstream(RetryType::Reset, "eof"))].into(),
            Vec::new(),
        );
        let u = upstream();
        let f = run(&mut ex, &u, &retry("connect-failure"), 3, deadline())
            .await
            .unwrap_err();
        assert_eq!((f.status.as_u16(), f.code), (503, "upstream-reset"));
        assert_eq!(f.message, "upstream a:1 reset the request: eof");
        assert_eq!(ex.1.len(), 1);
    }

    #[tokio::test]
    async fn a_client_fault_ends_at_once_with_400() {
        let mut ex = Scripted(
            [Err(ProxyError::downstream("bad chunk"))].into(),
            Vec::new(),
        );
        let u = upstream();
        let f = run(
            &mut ex,
            &u,
            &retry("reset,connect-failure,5xx"),
            3,
            deadline(),
        )
        .await
        .unwrap_err();
        assert_eq!((f.status.as_u16(), f.code), (400, "bad-request"));
        assert_eq!(ex.1.len(), 1);
    }

    #[tokio::test]
    async fn retried_statuses_answer_the_last_one_with_its_status() {
        let mut ex = Scripted([Ok(503), Ok(502), Ok(500)].into(), Vec::new());
        let u = upstream();
        let (status, _) = run(&mut ex, &u, &retry("5xx"), 3, deadline())
            .await
            .unwrap();
        // The last attempt's answer is the client's, whatever its status.
        assert_eq!(status, 500);
        assert_eq!(ex.1.len(), 3);
    }
}
