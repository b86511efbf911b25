//! Gloo's fault injection (`options.faults`): a fixed delay, then an aborted answer, each for
//! a share of the requests, as Envoy's fault filter does (the delay comes first).

use super::{Answer, Edits, Inbound, Order, Stage};
use async_trait::async_trait;
use http::{HeaderValue, StatusCode};
use smallvec::SmallVec;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// (share of requests in 0..=1, status)
    pub abort: Option<(f64, StatusCode)>,
    /// (share of requests in 0..=1, delay)
    pub delay: Option<(f64, Duration)>,
}

impl Faults {
    /// From a route's validated options (an option that does not parse injects nothing:
    /// validation refused the resource before it got here).
    pub fn compile(f: &crate::api::RouteFaults) -> Option<Faults> {
        let share = |p: Option<f64>| (p.unwrap_or(0.0) / 100.0).clamp(0.0, 1.0);
        let abort = f.abort.as_ref().and_then(|a| {
            let status = StatusCode::from_u16(u16::try_from(a.http_status?).ok()?).ok()?;
            Some((share(a.percentage), status))
        });
        let delay = f.delay.as_ref().and_then(|d| {
            let t = crate::api::duration::parse_duration(d.fixed_delay.as_deref()?).ok()?;
            Some((share(d.percentage), t))
        });
        (abort.is_some() || delay.is_some()).then_some(Faults { abort, delay })
    }
}

/// Whether this request is in the share (`fastrand`: cheap, and no lock).
fn hit(share: f64) -> bool {
    share >= 1.0 || (share > 0.0 && fastrand::f64() < share)
}

#[async_trait]
impl Stage for Faults {
    fn order(&self) -> Order {
        Order::Fault
    }

    async fn check(&self, _req: &Inbound<'_>, _edits: &mut Edits) -> Result<(), Answer> {
        if let Some((share, delay)) = self.delay
            && hit(share)
        {
            tokio::time::sleep(delay).await;
        }
        match self.abort {
            Some((share, status)) if hit(share) => {
                let mut headers = SmallVec::new();
                headers.push((
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain"),
                ));
                Err(Answer {
                    status,
                    headers,
                    body: bytes::Bytes::from_static(b"fault filter abort"),
                    reason: "fault injected (options.faults.abort)".into(),
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RouteAbort, RouteDelay, RouteFaults};

    fn inbound() -> Inbound<'static> {
        Inbound {
            method: "GET",
            host: "h",
            path: "/",
            query: None,
            headers: crate::gateway::matcher::Headers::Raw(&[]),
            remote: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delay_then_abort_for_every_request_at_100_percent() {
        let f = Faults::compile(&RouteFaults {
            abort: Some(RouteAbort {
                percentage: Some(100.0),
                http_status: Some(418),
                ..Default::default()
            }),
            delay: Some(RouteDelay {
                percentage: Some(100.0),
                fixed_delay: Some("2s".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .expect("faults");
        let started = tokio::time::Instant::now();
        let answer = f
            .check(&inbound(), &mut Edits::default())
            .await
            .expect_err("aborted");
        assert_eq!(answer.status.as_u16(), 418);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn zero_percent_never_aborts() {
        let f = Faults::compile(&RouteFaults {
            abort: Some(RouteAbort {
                percentage: Some(0.0),
                http_status: Some(503),
                ..Default::default()
            }),
            ..Default::default()
        })
        .expect("faults");
        for _ in 0..1000 {
            assert!(f.check(&inbound(), &mut Edits::default()).await.is_ok());
        }
    }

    #[tokio::test]
    async fn half_aborts_about_half() {
        let f = Faults::compile(&RouteFaults {
            abort: Some(RouteAbort {
                percentage: Some(50.0),
                http_status: Some(503),
                ..Default::default()
            }),
            ..Default::default()
        })
        .expect("faults");
        let mut aborted = 0;
        for _ in 0..4000 {
            aborted += f.check(&inbound(), &mut Edits::default()).await.is_err() as u32;
        }
        // 4,000 draws at p = 0.5: 6 standard deviations is ±190.
        assert!((1810..=2190).contains(&aborted), "{aborted} of 4000");
    }
}
