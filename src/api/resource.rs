//! Gloo's kinds and Kubernetes' `Secret` as one enum, with their identity (kind, namespace, name).

use super::secret::Secret;
use super::types::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The kinds epoxy understands, with Gloo's API groups and glooctl's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Upstream,
    UpstreamGroup,
    VirtualService,
    RouteTable,
    Secret,
    /// Gloo Enterprise's `AuthConfig`: the external auth a virtual host or route refers to.
    AuthConfig,
    /// Gloo Enterprise's `RateLimitConfig`: descriptors and actions counted in Redis.
    RateLimitConfig,
    /// Gloo's `Gateway`: a listener (address, port, TLS) and the virtual services it serves.
    Gateway,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Upstream,
        Kind::UpstreamGroup,
        Kind::VirtualService,
        Kind::RouteTable,
        Kind::Secret,
        Kind::AuthConfig,
        Kind::RateLimitConfig,
        Kind::Gateway,
    ];

    /// The kinds that are Gloo's custom resources (a `Secret` is Kubernetes' own).
    pub const CUSTOM: [Kind; 7] = [
        Kind::Upstream,
        Kind::UpstreamGroup,
        Kind::VirtualService,
        Kind::RouteTable,
        Kind::AuthConfig,
        Kind::RateLimitConfig,
        Kind::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Upstream => "Upstream",
            Kind::UpstreamGroup => "UpstreamGroup",
            Kind::VirtualService => "VirtualService",
            Kind::RouteTable => "RouteTable",
            Kind::Secret => "Secret",
            Kind::AuthConfig => "AuthConfig",
            Kind::RateLimitConfig => "RateLimitConfig",
            Kind::Gateway => "Gateway",
        }
    }

    /// The lower-case plural used in paths, CRD names and messages.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Upstream => "upstreams",
            Kind::UpstreamGroup => "upstreamgroups",
            Kind::VirtualService => "virtualservices",
            Kind::RouteTable => "routetables",
            Kind::Secret => "secrets",
            Kind::AuthConfig => "authconfigs",
            Kind::RateLimitConfig => "ratelimitconfigs",
            Kind::Gateway => "gateways",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Upstream | Kind::UpstreamGroup => "gloo.solo.io/v1",
            Kind::VirtualService | Kind::RouteTable | Kind::Gateway => "gateway.solo.io/v1",
            Kind::Secret => "v1",
            Kind::AuthConfig => "enterprise.gloo.solo.io/v1",
            Kind::RateLimitConfig => "ratelimit.solo.io/v1alpha1",
        }
    }

    /// Reads a kind as a user types it: `upstreams`, `upstream`, `us`, `VirtualService`, `vs`, ...
    pub fn parse(s: &str) -> Option<Kind> {
        let l = s.to_ascii_lowercase();
        Some(match l.as_str() {
            "upstream" | "upstreams" | "us" | "u" => Kind::Upstream,
            "upstreamgroup" | "upstreamgroups" | "ug" => Kind::UpstreamGroup,
            "virtualservice" | "virtualservices" | "vs" => Kind::VirtualService,
            "routetable" | "routetables" | "rt" => Kind::RouteTable,
            "secret" | "secrets" => Kind::Secret,
            "authconfig" | "authconfigs" | "ac" => Kind::AuthConfig,
            "ratelimitconfig" | "ratelimitconfigs" | "rlc" => Kind::RateLimitConfig,
            "gateway" | "gateways" | "gw" => Kind::Gateway,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.plural())
    }
}

/// A resource's identity: `virtualservices/gloo-system/default`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// One object of a kind: `apiVersion`, `kind`, `metadata`, `spec`, and whatever else it had.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<S> {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: S,
    #[serde(flatten)]
    pub extra: Extra,
}

impl<S: Default> Object<S> {
    /// A new object of `kind` with Gloo's apiVersion.
    pub fn new(kind: Kind, namespace: &str, name: &str, spec: S) -> Self {
        Object {
            api_version: kind.api_version().to_string(),
            kind: kind.name().to_string(),
            metadata: ObjectMeta {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec,
            extra: Default::default(),
        }
    }
}

pub type Upstream = Object<UpstreamSpec>;
pub type UpstreamGroup = Object<UpstreamGroupSpec>;
pub type VirtualService = Object<VirtualServiceSpec>;
pub type RouteTable = Object<RouteTableSpec>;
pub type AuthConfig = Object<RawSpec>;
pub type RateLimitConfig = Object<RawSpec>;
pub type Gateway = Object<super::gateway::GatewaySpec>;

/// Any resource epoxy stores.
// Upstreams are the largest kind; resources live in maps, not on hot paths, so no boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Upstream(Upstream),
    UpstreamGroup(UpstreamGroup),
    VirtualService(VirtualService),
    RouteTable(RouteTable),
    Secret(Secret),
    AuthConfig(AuthConfig),
    RateLimitConfig(RateLimitConfig),
    Gateway(Gateway),
}

macro_rules! each {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            Resource::Upstream($o) => $e,
            Resource::UpstreamGroup($o) => $e,
            Resource::VirtualService($o) => $e,
            Resource::RouteTable($o) => $e,
            Resource::Secret($o) => $e,
            Resource::AuthConfig($o) => $e,
            Resource::RateLimitConfig($o) => $e,
            Resource::Gateway($o) => $e,
        }
    };
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Upstream(_) => Kind::Upstream,
            Resource::UpstreamGroup(_) => Kind::UpstreamGroup,
            Resource::VirtualService(_) => Kind::VirtualService,
            Resource::RouteTable(_) => Kind::RouteTable,
            Resource::Secret(_) => Kind::Secret,
            Resource::AuthConfig(_) => Kind::AuthConfig,
            Resource::RateLimitConfig(_) => Kind::RateLimitConfig,
            Resource::Gateway(_) => Kind::Gateway,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each!(self, o => &mut o.metadata)
    }

    pub fn name(&self) -> &str {
        &self.meta().name
    }

    /// The namespace, or `""` when the document did not say (the caller supplies a default).
    pub fn namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or("")
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(self.kind(), self.namespace(), self.name())
    }

    pub fn resource_version(&self) -> Option<&str> {
        self.meta().resource_version.as_deref()
    }

    /// The resource as a JSON value in Gloo's shape.
    pub fn to_value(&self) -> Value {
        // Serializing plain data structs into a Value cannot fail (string keys, finite data).
        each!(self, o => serde_json::to_value(o).unwrap_or(Value::Null))
    }

    /// The resource as a YAML document.
    pub fn to_yaml(&self) -> String {
        super::codec::to_yaml(&self.to_value())
    }

    /// Builds a resource of `kind` from a JSON value; the error names the field path. A key
    /// set to `null` (or to nothing, `annotations:`) is absent, as Kubernetes and protobuf's
    /// JSON read it.
    pub fn from_value(kind: Kind, mut value: Value) -> Result<Resource, String> {
        drop_nulls(&mut value);
        fn de<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, String> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                if path == "." || path.is_empty() {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                }
            })
        }
        Ok(match kind {
            Kind::Upstream => Resource::Upstream(de(value)?),
            Kind::UpstreamGroup => Resource::UpstreamGroup(de(value)?),
            Kind::VirtualService => Resource::VirtualService(de(value)?),
            Kind::RouteTable => Resource::RouteTable(de(value)?),
            Kind::Secret => Resource::Secret(de(value)?),
            Kind::AuthConfig => Resource::AuthConfig(de(value)?),
            Kind::RateLimitConfig => Resource::RateLimitConfig(de(value)?),
            Kind::Gateway => Resource::Gateway(de(value)?),
        })
    }

    /// The routes this resource carries, if it is a virtual service or a route table.
    pub fn routes(&self) -> Option<&Vec<Route>> {
        match self {
            Resource::VirtualService(vs) => Some(&vs.spec.virtual_host.routes),
            Resource::RouteTable(rt) => Some(&rt.spec.routes),
            _ => None,
        }
    }

    /// Every `kube` destination of the resource, with its field path.
    pub fn kube_destinations(&self) -> Vec<(String, &KubeDestination)> {
        let mut out = Vec::new();
        let (base, routes) = match self {
            Resource::VirtualService(vs) => {
                ("spec.virtualHost.routes", &vs.spec.virtual_host.routes)
            }
            Resource::RouteTable(rt) => ("spec.routes", &rt.spec.routes),
            Resource::UpstreamGroup(g) => {
                weighted_kube("spec.destinations", &g.spec.destinations, &mut out);
                return out;
            }
            Resource::Upstream(_)
            | Resource::Secret(_)
            | Resource::AuthConfig(_)
            | Resource::RateLimitConfig(_)
            | Resource::Gateway(_) => return out,
        };
        for (i, r) in routes.iter().enumerate() {
            let Some(a) = &r.route_action else { continue };
            if let Some(k) = a.single.as_ref().and_then(|d| d.kube.as_ref()) {
                out.push((format!("{base}[{i}].routeAction.single.kube"), k));
            }
            if let Some(m) = &a.multi {
                let at = format!("{base}[{i}].routeAction.multi.destinations");
                weighted_kube(&at, &m.destinations, &mut out);
            }
        }
        out
    }

    pub fn routes_mut(&mut self) -> Option<&mut Vec<Route>> {
        match self {
            Resource::VirtualService(vs) => Some(&mut vs.spec.virtual_host.routes),
            Resource::RouteTable(rt) => Some(&mut rt.spec.routes),
            _ => None,
        }
    }
}

fn weighted_kube<'a>(
    at: &str,
    ds: &'a [WeightedDestination],
    out: &mut Vec<(String, &'a KubeDestination)>,
) {
    for (j, d) in ds.iter().enumerate() {
        if let Some(k) = &d.destination.kube {
            out.push((format!("{at}[{j}].destination.kube"), k));
        }
    }
}

/// Removes every `key: null` of every mapping, at any depth.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
