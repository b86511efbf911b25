//! What a user sees of a virtual service's TLS (`epoxy get vs`, the console): the listener
//! that serves it and its certificate (subject, names, days to expiry). Read from the store
//! (what the sslConfig names now) or from the running gateway (what a chain serves).

use super::material::CertInfo;
use crate::api::resource::VirtualService;
use crate::api::{ResourceKey, ResourceSet};
use crate::gateway::listener::{Listener, material};
use std::sync::Arc;

/// A virtual service's listener and certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct VsTls {
    /// `http`, `https`, or the name of the listener (Gateway) serving it.
    pub listener: String,
    /// The certificate, or why it cannot be read; `None` for a plain virtual service.
    pub cert: Option<Result<CertInfo, String>>,
}

impl VsTls {
    /// From the store: `https` and the certificate its `sslConfig` names (read now), or `http`.
    pub fn from_store(key: &ResourceKey, vs: &VirtualService, set: &ResourceSet) -> VsTls {
        let Some(ssl) = &vs.spec.ssl_config else {
            return VsTls {
                listener: "http".into(),
                cert: None,
            };
        };
        let cert = material(ssl, &key.namespace, set, &mut Vec::new())
            .and_then(|m| CertInfo::of_pem(&m.cert).map_err(|e| e.to_string()));
        VsTls {
            listener: "https".into(),
            cert: Some(cert),
        }
    }

    /// From the running gateway: the listener whose chain serves it, with the certificate
    /// that chain serves; a TLS virtual service no chain serves says so.
    pub fn from_gateway(
        listeners: &[Arc<Listener>],
        key: &ResourceKey,
        vs: &VirtualService,
    ) -> VsTls {
        if vs.spec.ssl_config.is_none() {
            let listener = listeners
                .iter()
                .find(|l| !l.spec.ssl && l.binds(key, vs))
                .map(|l| l.spec.name.clone())
                .unwrap_or_else(|| "http (no listener)".into());
            return VsTls {
                listener,
                cert: None,
            };
        }
        for l in listeners.iter().filter(|l| l.spec.ssl) {
            let chains = l.chains.load();
            if let Some(c) = chains.list.iter().find(|c| c.vhosts.contains(key)) {
                return VsTls {
                    listener: l.spec.name.clone(),
                    cert: Some(
                        c.cert
                            .clone()
                            .ok_or_else(|| "the certificate does not parse".to_string()),
                    ),
                };
            }
        }
        VsTls {
            listener: "https".into(),
            cert: Some(Err("not served (see its status)".into())),
        }
    }

    /// The certificate in a few words: `CN=a (89d left) · a.example.com, b.example.com`.
    pub fn certificate(&self) -> String {
        match &self.cert {
            None => "-".into(),
            Some(Err(e)) => format!("unreadable: {e}"),
            Some(Ok(c)) if c.sans.is_empty() => c.summary(),
            Some(Ok(c)) => format!("{} · {}", c.summary(), c.sans.join(", ")),
        }
    }

    /// The warning a listing shows: a certificate expiring within 14 days (or expired), or
    /// one that cannot be read.
    pub fn warning(&self) -> Option<String> {
        match &self.cert {
            Some(Ok(c)) => c.expiry_warning(),
            Some(Err(e)) => Some(format!("the certificate cannot be read: {e}")),
            None => None,
        }
    }

    /// As JSON, for `get vs -o json|yaml` (under `status.tls`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "listener": self.listener });
        match &self.cert {
            None => {}
            Some(Ok(c)) => {
                v["subject"] = c.subject.clone().into();
                v["subjectAltNames"] = c.sans.clone().into();
                v["notAfter"] = c.not_after_text().into();
                v["daysLeft"] = c.days_left().into();
            }
            Some(Err(e)) => v["error"] = e.clone().into(),
        }
        v
    }
}
