//! Kubernetes `Secret`s (core `v1`, any `type`) and Gloo's `tls:` secret form: the key material
//! other resources refer to by `secretRef` (TLS certificates, API keys, AWS credentials).
//!
//! The library reads a Secret's decoded data through [`secret_data`] (by reference) and finds
//! Secrets by label through [`secrets_with_labels`]; nothing here prints key material.

use super::resource::{Kind, Resource, ResourceKey};
use super::types::{Extra, ObjectMeta, ResourceRef};
use super::validate::ResourceSet;
use base64::Engine;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The Kubernetes type of TLS secrets (`tls.crt`, `tls.key`, optional `ca.crt`).
pub const TLS_TYPE: &str = "kubernetes.io/tls";
/// The keys of a TLS secret, as Kubernetes and Gloo name them.
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CERT: &str = "ca.crt";

/// A `Secret`: `type`, `data` (base64), `stringData` (plain), or Gloo's `tls:` form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub data: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub string_data: IndexMap<String, String>,
    /// Gloo's own secret form (`tls: {certChain, privateKey, rootCa}`), PEM in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GlooTlsSecret>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Gloo's `TlsSecret` (gloo/api/v1/secret.proto).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlooTlsSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_chain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a Secret's data could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} not found")]
    NotFound(ResourceKey),
    #[error("{key}: data.{field} is not valid base64: {reason}")]
    Base64 {
        key: ResourceKey,
        field: String,
        reason: String,
    },
    #[error("{key}: has no `{field}`")]
    MissingKey { key: ResourceKey, field: String },
}

/// A Secret's decoded data, key by key.
pub type SecretData = BTreeMap<String, Vec<u8>>;

impl Secret {
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(
            Kind::Secret,
            self.metadata.namespace.as_deref().unwrap_or(""),
            &self.metadata.name,
        )
    }

    /// The type, `kubernetes.io/tls` for Gloo's `tls:` form, Kubernetes' `Opaque` when unsaid.
    pub fn effective_type(&self) -> &str {
        match (&self.type_, &self.tls) {
            (Some(t), _) if !t.is_empty() => t,
            (_, Some(_)) => TLS_TYPE,
            _ => "Opaque",
        }
    }

    /// Whether it holds a certificate and key (by type, or by carrying `tls.crt`).
    pub fn is_tls(&self) -> bool {
        self.effective_type() == TLS_TYPE || self.key_names().iter().any(|k| k == TLS_CERT)
    }

    /// The names of its data keys (never their values): `data`, `stringData` and Gloo's form.
    pub fn key_names(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .data
            .keys()
            .chain(self.string_data.keys())
            .cloned()
            .collect();
        if let Some(t) = &self.tls {
            for (k, v) in [
                (TLS_CERT, &t.cert_chain),
                (TLS_KEY, &t.private_key),
                (CA_CERT, &t.root_ca),
            ] {
                if v.is_some() {
                    keys.push(k.to_string());
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The decoded data: `data` (base64) overlaid by `stringData` (as the API server merges
    /// them) and by Gloo's `tls:` form (as `tls.crt`, `tls.key`, `ca.crt`).
    pub fn decoded(&self) -> Result<SecretData, SecretError> {
        let mut out = SecretData::new();
        for (k, v) in &self.data {
            // Kubernetes writes base64 on one line; a hand-written file may wrap it.
            let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| SecretError::Base64 {
                    key: self.key(),
                    field: k.clone(),
                    reason: e.to_string(),
                })?;
            out.insert(k.clone(), bytes);
        }
        for (k, v) in &self.string_data {
            out.insert(k.clone(), v.clone().into_bytes());
        }
        if let Some(t) = &self.tls {
            for (k, v) in [
                (TLS_CERT, &t.cert_chain),
                (TLS_KEY, &t.private_key),
                (CA_CERT, &t.root_ca),
            ] {
                if let Some(v) = v {
                    out.insert(k.to_string(), v.clone().into_bytes());
                }
            }
        }
        Ok(out)
    }

    /// The secret as a value with every datum replaced by its size: what `get -o yaml` shows.
    pub fn redacted_value(&self) -> serde_json::Value {
        let mut r = self.clone();
        let sizes = self.decoded().unwrap_or_default();
        let mut data = IndexMap::new();
        for k in self.key_names() {
            let n = sizes.get(&k).map(Vec::len).unwrap_or(0);
            data.insert(k, format!("<redacted: {n} bytes>"));
        }
        r.data = data;
        r.string_data.clear();
        r.tls = None;
        r.type_ = Some(self.effective_type().to_string());
        serde_json::to_value(&r).unwrap_or(serde_json::Value::Null)
    }

    /// One decoded value, or an error naming the secret and the missing key.
    pub fn value(&self, field: &str) -> Result<Vec<u8>, SecretError> {
        self.decoded()?
            .remove(field)
            .ok_or_else(|| SecretError::MissingKey {
                key: self.key(),
                field: field.to_string(),
            })
    }
}

/// The Secret `r` points at; a reference without a namespace is in the referrer's (Gloo's rule).
pub fn lookup_secret<'a>(
    set: &'a ResourceSet,
    r: &ResourceRef,
    referrer_ns: &str,
) -> Result<&'a Secret, SecretError> {
    let key = ResourceKey::new(Kind::Secret, r.namespace_or(referrer_ns), &r.name);
    match set.get(&key) {
        Some(Resource::Secret(s)) => Ok(s),
        _ => Err(SecretError::NotFound(key)),
    }
}

/// The decoded data of the Secret `r` points at.
pub fn secret_data(
    set: &ResourceSet,
    r: &ResourceRef,
    referrer_ns: &str,
) -> Result<SecretData, SecretError> {
    lookup_secret(set, r, referrer_ns)?.decoded()
}

/// The Secrets carrying every label of `labels`, in `namespaces` (all when empty), by key.
pub fn secrets_with_labels<'a>(
    set: &'a ResourceSet,
    labels: &'a BTreeMap<String, String>,
    namespaces: &'a [String],
) -> impl Iterator<Item = &'a Secret> + 'a {
    set.values().filter_map(move |r| match r {
        Resource::Secret(s)
            if (namespaces.is_empty()
                || namespaces
                    .iter()
                    .any(|n| Some(n.as_str()) == s.metadata.namespace.as_deref()))
                && labels
                    .iter()
                    .all(|(k, v)| s.metadata.labels.get(k) == Some(v)) =>
        {
            Some(s)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_resources;

    fn one(text: &str) -> Secret {
        match parse_resources(text, "t").unwrap().remove(0) {
            Resource::Secret(s) => s,
            other => panic!("not a secret: {other:?}"),
        }
    }

    #[test]
    fn data_is_decoded_and_string_data_overrides_it() {
        let s = one(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: k, namespace: ns, labels: {team: a}}\ntype: extauth.solo.io/apikey\ndata:\n  api-key: c2VjcmV0\n  user: YWxp\nstringData:\n  user: bob\n",
        );
        let d = s.decoded().unwrap();
        assert_eq!(d["api-key"], b"secret");
        assert_eq!(d["user"], b"bob");
        assert_eq!(s.effective_type(), "extauth.solo.io/apikey");
        assert_eq!(s.key_names(), ["api-key", "user"]);
        let mut set = ResourceSet::new();
        set.insert(s.key(), Resource::Secret(s.clone()));
        let r = ResourceRef {
            name: "k".into(),
            ..Default::default()
        };
        assert_eq!(secret_data(&set, &r, "ns").unwrap()["api-key"], b"secret");
        assert_eq!(
            secret_data(&set, &r, "other").unwrap_err().to_string(),
            "secret secrets/other/k not found"
        );
        let sel = BTreeMap::from([("team".to_string(), "a".to_string())]);
        assert_eq!(secrets_with_labels(&set, &sel, &[]).count(), 1);
        assert_eq!(
            secrets_with_labels(&set, &sel, &["x".to_string()]).count(),
            0
        );
        let sel = BTreeMap::from([("team".to_string(), "b".to_string())]);
        assert_eq!(secrets_with_labels(&set, &sel, &[]).count(), 0);
    }

    #[test]
    fn gloo_tls_form_reads_as_a_tls_secret() {
        let s = one(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntls:\n  certChain: CERT\n  privateKey: KEY\n",
        );
        assert!(s.is_tls());
        assert_eq!(s.effective_type(), TLS_TYPE);
        assert_eq!(s.value(TLS_CERT).unwrap(), b"CERT");
        assert!(matches!(
            s.value(CA_CERT),
            Err(SecretError::MissingKey { .. })
        ));
    }

    #[test]
    fn bad_base64_names_the_key() {
        let s = one("apiVersion: v1\nkind: Secret\nmetadata: {name: b}\ndata: {x: '%%%'}\n");
        let e = s.decoded().unwrap_err().to_string();
        assert!(e.contains("data.x"), "{e}");
    }
}
