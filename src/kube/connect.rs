//! Connectors that need a cluster: the API server's service proxy, and port-forwards to pods.
//! (`direct`, the cluster DNS name, is `crate::net::ClusterDns`.)
//!
//! Both hand the gateway and discovery the address of a local relay, one per service port
//! (bound on first use on 127.0.0.1, kept for the life of the process). The relay reaches the
//! cluster through kube-rs's client, so every kubeconfig that works for `epoxy get` (a private
//! CA, client certificates, tokens, exec plugins) works for traffic too, and the cluster's
//! credentials never enter the gateway's own connection pool.

use crate::net::Connector;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;

/// Outside the cluster: the API server's service proxy
/// (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/...`), as `kubectl proxy` gives it.
#[derive(Debug)]
pub struct ApiserverProxy(Relays);

impl ApiserverProxy {
    /// Must be called on a tokio runtime: the relays run on it.
    pub fn new(client: kube::Client) -> Self {
        ApiserverProxy(Relays::new(client, Via::ApiserverProxy))
    }
}

impl Connector for ApiserverProxy {
    fn name(&self) -> &'static str {
        "apiserver"
    }

    fn service(&self, namespace: &str, service: &str, port: u32) -> Result<String, String> {
        self.0.address(namespace, service, port)
    }
}

/// Outside the cluster, through the API server to a ready pod behind the service, as
/// `kubectl port-forward svc/NAME` does. Every connection to the relay gets its own stream to
/// a pod that is ready when it connects, so a pod that goes away costs only the connections it
/// carried.
#[derive(Debug)]
pub struct PortForward(Relays);

impl PortForward {
    /// Must be called on a tokio runtime: the relays run on it.
    pub fn new(client: kube::Client) -> Self {
        PortForward(Relays::new(client, Via::PortForward))
    }
}

impl Connector for PortForward {
    fn name(&self) -> &'static str {
        "port-forward"
    }

    fn service(&self, namespace: &str, service: &str, port: u32) -> Result<String, String> {
        self.0.address(namespace, service, port)
    }
}

#[derive(Debug, Clone, Copy)]
enum Via {
    ApiserverProxy,
    PortForward,
}

/// The local relays of one connector, by service port.
struct Relays {
    client: kube::Client,
    via: Via,
    runtime: tokio::runtime::Handle,
    listeners: Mutex<HashMap<(String, String, u32), SocketAddr>>,
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relays")
            .field("via", &self.via)
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl Relays {
    fn new(client: kube::Client, via: Via) -> Self {
        Relays {
            client,
            via,
            runtime: tokio::runtime::Handle::current(),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    fn address(&self, namespace: &str, service: &str, port: u32) -> Result<String, String> {
        let key = (namespace.to_string(), service.to_string(), port);
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let addr = match listeners.get(&key) {
            Some(a) => *a,
            None => {
                let a = self.listen(namespace, service, port).map_err(|e| {
                    format!("relay to {namespace}/{service}:{port}: cannot listen: {e}")
                })?;
                listeners.insert(key, a);
                a
            }
        };
        Ok(addr.to_string())
    }

    fn listen(&self, namespace: &str, service: &str, port: u32) -> std::io::Result<SocketAddr> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = {
            let _entered = self.runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let target = Target {
            client: self.client.clone(),
            namespace: namespace.to_string(),
            service: service.to_string(),
            port,
        };
        tracing::info!(%addr, service = %target, via = ?self.via, "kube relay");
        self.runtime.spawn(accept_loop(listener, target, self.via));
        Ok(addr)
    }
}

/// One service port of the cluster.
#[derive(Clone)]
struct Target {
    client: kube::Client,
    namespace: String,
    service: String,
    port: u32,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.service, self.port)
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, target: Target, via: Via) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let _ = socket.set_nodelay(true);
                let target = target.clone();
                tokio::spawn(async move {
                    let result = match via {
                        Via::PortForward => carry(socket, &target).await,
                        Via::ApiserverProxy => relay_http(socket, &target).await,
                    };
                    if let Err(e) = result {
                        tracing::warn!(service = %target, error = %e, ?via, "kube relay");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(service = %target, error = %e, "kube relay accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

type RelayBody = http_body_util::combinators::UnsyncBoxBody<Bytes, kube::Error>;

/// The largest request body the API server relay buffers (the gateway's own default limit).
const MAX_RELAYED_BODY: usize = 16 * 1024 * 1024;

/// Serves HTTP/1 on one local connection, sending each request to the service through the
/// API server's proxy path with kube-rs's client (its TLS and credentials).
async fn relay_http(socket: tokio::net::TcpStream, target: &Target) -> Result<(), String> {
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let target = target.clone();
        async move { Ok::<_, std::convert::Infallible>(relay_request(req, &target).await) }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(socket), svc)
        .await
        .map_err(|e| e.to_string())
}

async fn relay_request(
    req: http::Request<hyper::body::Incoming>,
    target: &Target,
) -> http::Response<RelayBody> {
    let (parts, body) = req.into_parts();
    // kube-rs's client takes a whole body; a bound keeps one request from taking the memory.
    let body = match http_body_util::Limited::new(body, MAX_RELAYED_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return relay_error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the API server's proxy relays bodies up to {MAX_RELAYED_BODY} bytes"),
            );
        }
        Err(e) => return relay_error(http::StatusCode::BAD_REQUEST, format!("request body: {e}")),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!(
        "/api/v1/namespaces/{}/services/{}:{}/proxy{path}",
        target.namespace, target.service, target.port
    );
    let mut out = http::Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        // The client's own credentials and the connection's headers stay here: the API server
        // gets kube-rs's, and the service gets what the API server's proxy forwards.
        if name != http::header::HOST
            && name != http::header::AUTHORIZATION
            && name != http::header::CONNECTION
            && name != http::header::TRANSFER_ENCODING
        {
            out = out.header(name, value);
        }
    }
    let out = match out.body(kube::client::Body::from(body)) {
        Ok(r) => r,
        Err(e) => return relay_error(http::StatusCode::BAD_REQUEST, e.to_string()),
    };
    match target.client.send(out).await {
        Ok(resp) => resp.map(|b| b.boxed_unsync()),
        Err(e) => relay_error(
            http::StatusCode::BAD_GATEWAY,
            format!("the API server's proxy to {target}: {e}"),
        ),
    }
}

fn relay_error(status: http::StatusCode, message: String) -> http::Response<RelayBody> {
    let body = http_body_util::Full::new(Bytes::from(message))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Carries one local connection to a ready pod of the service and back.
async fn carry(mut socket: tokio::net::TcpStream, target: &Target) -> Result<(), String> {
    let (pod, pod_port) = ready_pod(target).await?;
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), &target.namespace);
    let mut forwarder = pods
        .portforward(&pod, &[pod_port])
        .await
        .map_err(|e| format!("port-forward to pod {pod}:{pod_port}: {e}"))?;
    let mut stream = forwarder
        .take_stream(pod_port)
        .ok_or_else(|| format!("port-forward to pod {pod}:{pod_port}: no stream"))?;
    let copied = tokio::io::copy_bidirectional(&mut socket, &mut stream).await;
    drop(stream);
    forwarder.abort();
    match copied {
        Ok(_) => Ok(()),
        // A peer that hangs up mid-stream is the ordinary end of a keep-alive connection.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("pod {pod}:{pod_port}: {e}")),
    }
}

/// A ready pod behind the service and the pod port its service port maps to.
async fn ready_pod(target: &Target) -> Result<(String, u16), String> {
    let services: Api<Service> = Api::namespaced(target.client.clone(), &target.namespace);
    let svc = services
        .get(&target.service)
        .await
        .map_err(|e| format!("service {target}: {e}"))?;
    let spec = svc.spec.unwrap_or_default();
    let service_port = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| u32::try_from(p.port).ok() == Some(target.port))
        .ok_or_else(|| format!("service {target}: no such port"))?;
    let selector = spec.selector.unwrap_or_default();
    if selector.is_empty() {
        return Err(format!(
            "service {target} has no selector: port-forward needs the pods behind it"
        ));
    }
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), &target.namespace);
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let list = pods
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(|e| format!("pods of service {target}: {e}"))?;
    // The selector is checked here too: an API server that ignores it must not send us elsewhere.
    let pod = list
        .items
        .into_iter()
        .find(|p| selects(&selector, p) && is_ready(p))
        .ok_or_else(|| format!("service {target}: no ready pod matches {labels}"))?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let port = pod_port(&pod, service_port.target_port.as_ref(), target.port)
        .ok_or_else(|| format!("service {target}: pod {name} has no port for it"))?;
    Ok((name, port))
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Running, Ready, and not on its way out.
fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The pod port a service port forwards to: `targetPort` as a number, or as the name of a
/// container port; absent, the service port itself.
fn pod_port(pod: &Pod, target_port: Option<&IntOrString>, service_port: u32) -> Option<u16> {
    match target_port {
        None => u16::try_from(service_port).ok(),
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<u16>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_named_target_port_is_the_container_port_of_that_name() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "ports": [
                {"name": "metrics", "containerPort": 9100},
                {"name": "http", "containerPort": 8081}]}]}
        }));
        let named = IntOrString::String("http".into());
        assert_eq!(pod_port(&p, Some(&named), 8080), Some(8081));
        assert_eq!(
            pod_port(&p, Some(&IntOrString::Int(9000)), 8080),
            Some(9000)
        );
        assert_eq!(pod_port(&p, None, 8080), Some(8080));
        let missing = IntOrString::String("grpc".into());
        assert_eq!(pod_port(&p, Some(&missing), 8080), None);
    }

    #[test]
    fn only_running_ready_pods_that_are_not_terminating_are_chosen() {
        let ready = serde_json::json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]});
        assert!(is_ready(&pod(
            serde_json::json!({"metadata": {}, "status": ready})
        )));
        assert!(!is_ready(&pod(serde_json::json!({"metadata": {},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}))));
        assert!(!is_ready(&pod(serde_json::json!({"metadata": {},
            "status": {"phase": "Pending"}}))));
        assert!(!is_ready(&pod(serde_json::json!({
            "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": ready}))));
    }
}
