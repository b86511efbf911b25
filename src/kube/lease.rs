//! Leader election through a `coordination.k8s.io/v1` Lease: when several gateway replicas
//! run, one of them (the lease's holder) writes discovery results and the rest only serve.
//!
//! The holder renews the lease every third of its duration; another replica takes it over once
//! it has not been renewed for a whole duration. Every change is a replace with the
//! resourceVersion that was read, so two replicas can never both win the same round.

use crate::api::time::timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// This replica's name: the pod's (HOSTNAME in a pod), else host and process.
pub fn identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "epoxy".into());
    format!("{host}-{}", std::process::id())
}

/// One round: returns whether this replica holds the lease afterwards.
async fn round(
    api: &Api<Lease>,
    name: &str,
    me: &str,
    duration: Duration,
) -> Result<bool, kube::Error> {
    let now = MicroTime(timestamp(SystemTime::now()));
    let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)),
        acquire_time: acquired,
        renew_time: Some(now.clone()),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(spec(0, Some(now.clone()))),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let current = lease.spec.take().unwrap_or_default();
    let holder = current.holder_identity.as_deref().unwrap_or("");
    let transitions = current.lease_transitions.unwrap_or(0);
    let held_for =
        jiff::SignedDuration::from_secs(current.lease_duration_seconds.unwrap_or(15).into());
    let expired = current
        .renew_time
        .as_ref()
        .is_none_or(|renewed| now.0.duration_since(renewed.0) > held_for);
    let next = if holder == me {
        spec(transitions, current.acquire_time.clone())
    } else if expired || holder.is_empty() {
        spec(transitions.saturating_add(1), Some(now.clone()))
    } else {
        return Ok(false);
    };
    lease.spec = Some(next);
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        // Someone else renewed or took it in the meantime.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Campaigns for the lease `name` in `namespace` until dropped; the receiver says whether this
/// replica leads now.
pub fn spawn(
    client: kube::Client,
    namespace: &str,
    name: &str,
    duration: Duration,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let (name, me) = (name.to_string(), identity());
    tokio::spawn(async move {
        let every = (duration / 3).max(Duration::from_millis(200));
        loop {
            let leading = match round(&api, &name, &me, duration).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: the API is unavailable; not leading");
                    false
                }
            };
            tx.send_if_modified(|cur| {
                let changed = *cur != leading;
                *cur = leading;
                changed
            });
            if leading {
                tracing::debug!(lease = %name, "leading");
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
    rx
}
