//! The CustomResourceDefinitions of Gloo's kinds, as Gloo installs them (same groups, names,
//! short names), with schemas that keep every field (`x-kubernetes-preserve-unknown-fields`).

use crate::api::Kind;
use serde_json::{Value, json};

fn short_names(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Upstream => vec!["us"],
        Kind::UpstreamGroup => vec!["ug"],
        Kind::VirtualService => vec!["vs"],
        Kind::RouteTable => vec!["rt"],
        Kind::Secret => vec![],
        Kind::AuthConfig => vec!["ac"],
        Kind::RateLimitConfig => vec!["rlc"],
        Kind::Gateway => vec!["gw"],
    }
}

/// The CRD of one kind.
pub fn crd(kind: Kind) -> Value {
    let (group, version) = kind.api_version().split_once('/').unwrap_or(("", "v1"));
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{group}", kind.plural())},
        "spec": {
            "group": group,
            "names": {
                "kind": kind.name(),
                "listKind": format!("{}List", kind.name()),
                "plural": kind.plural(),
                "singular": kind.name().to_ascii_lowercase(),
                "shortNames": short_names(kind),
                "categories": ["gloo", "solo-io", "epoxy"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    })
}

/// Every CRD, as one multi-document YAML.
pub fn all_yaml() -> String {
    let crds: Vec<_> = Kind::CUSTOM.iter().map(|k| crd(*k)).collect();
    crate::api::codec::to_yaml_stream(&crds)
}
