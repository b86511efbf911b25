//! Leader election through a `coordination.k8s.io/v1` Lease: when several gateway replicas
//! run, one of them (the lease's holder) writes discovery results and the rest only serve.
//!
//! The holder renews the lease every third of its duration; another replica takes it over once
//! it has not been renewed for a whole duration. Every change is a replace with the
//! resourceVersion that was read, so two replicas can never both win the same round.

use crate::api::time::{parse_rfc3339, rfc3339};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

fn lease_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"),
        "leases",
    )
}

/// Kubernetes' MicroTime: RFC 3339 with microseconds.
fn micro_time(t: SystemTime) -> String {
    rfc3339(t).replace('Z', ".000000Z")
}

/// This replica's name: the pod's (HOSTNAME in a pod), else host and process.
pub fn identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "epoxy".into());
    format!("{host}-{}", std::process::id())
}

/// One round: returns whether this replica holds the lease afterwards.
async fn round(
    api: &Api<DynamicObject>,
    name: &str,
    me: &str,
    duration: Duration,
) -> Result<bool, kube::Error> {
    let now = SystemTime::now();
    let spec = |transitions: u64, acquired: String| {
        json!({
            "holderIdentity": me,
            "leaseDurationSeconds": duration.as_secs().max(1),
            "acquireTime": acquired,
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        })
    };
    let Some(mut lease) = api.get_opt(name).await? else {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name},
            "spec": spec(0, micro_time(now)),
        }))
        .map_err(kube::Error::SerdeError)?;
        return match api.create(&PostParams::default(), &obj).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let s = &lease.data["spec"];
    let holder = s["holderIdentity"].as_str().unwrap_or("");
    let transitions = s["leaseTransitions"].as_u64().unwrap_or(0);
    let renewed = s["renewTime"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let held_for = Duration::from_secs(s["leaseDurationSeconds"].as_u64().unwrap_or(15));
    let expired = now
        .duration_since(renewed)
        .map(|d| d > held_for)
        .unwrap_or(false);
    let next = if holder == me {
        spec(
            transitions,
            s["acquireTime"].as_str().unwrap_or("").to_string(),
        )
    } else if expired || holder.is_empty() {
        spec(transitions + 1, micro_time(now))
    } else {
        return Ok(false);
    };
    lease.data["spec"] = next;
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
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &lease_resource());
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
