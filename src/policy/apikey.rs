//! API keys (an AuthConfig's `apiKeyAuth`): the key in a request header (`headerName`,
//! default `api-key`) must be the `api-key` of one of the Secrets the config names
//! (`apiKeySecretRefs`) or selects (`labelSelector`, Secrets of type
//! `extauth.solo.io/apikey`); the Secret's other entries are its metadata, which
//! `headersFromMetadataEntry` sets as request headers for the upstream. The Secret's name is
//! the client's identity (Gloo's user id for API keys), which per-user limits count by.

use super::spec;
use super::{Answer, Edits, Inbound, WithHeader};
use crate::api::secret::{Secret, lookup_secret, secrets_with_labels};
use crate::api::{ResourceSet, secret::SecretData};
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use std::collections::{BTreeMap, HashMap};

/// The Secret type Gloo's label selector picks.
pub const APIKEY_TYPE: &str = "extauth.solo.io/apikey";
/// The Secret entry that holds the key.
const KEY_FIELD: &str = "api-key";

#[derive(Debug)]
struct Entry {
    header: HeaderName,
    name: String,
    required: bool,
}

/// The Secret an API key is in.
#[derive(Debug)]
struct Owner {
    name: String,
    meta: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct ApiKeys {
    header: HeaderName,
    /// Key → its Secret's name and other entries (as text).
    keys: HashMap<Vec<u8>, Owner>,
    entries: Vec<Entry>,
}

fn add(at: &str, keys: &mut HashMap<Vec<u8>, Owner>, s: &Secret) -> Result<(), String> {
    let data: SecretData = s.decoded().map_err(|e| format!("{at}: {e}"))?;
    let key = data
        .get(KEY_FIELD)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("{at}: secret {} has no `{KEY_FIELD}`", s.key()))?;
    let meta = data
        .iter()
        .filter(|(k, _)| k.as_str() != KEY_FIELD)
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.clone()).ok()?)))
        .collect();
    let owner = Owner {
        name: s.metadata.name.clone(),
        meta,
    };
    if keys.insert(key.clone(), owner).is_some() {
        return Err(format!(
            "{at}: two Secrets hold the same API key ({})",
            s.key()
        ));
    }
    Ok(())
}

impl ApiKeys {
    /// Compiles `apiKeyAuth` (at `at`) over the Secrets of `set`; `ns` is the AuthConfig's.
    pub fn build(
        at: &str,
        a: &spec::ApiKeyAuth,
        set: &ResourceSet,
        ns: &str,
    ) -> Result<ApiKeys, String> {
        let header = a
            .header_name
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or(KEY_FIELD);
        let header = HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("{at}.headerName: `{header}` is not a header name"))?;
        let storage = a.k8s_secret_apikey_storage.clone().unwrap_or_default();
        let refs = a
            .api_key_secret_refs
            .iter()
            .chain(&storage.api_key_secret_refs);
        let mut keys = HashMap::new();
        for (i, r) in refs.enumerate() {
            let s = lookup_secret(set, r, ns)
                .map_err(|e| format!("{at}.apiKeySecretRefs[{i}]: {e}"))?;
            add(&format!("{at}.apiKeySecretRefs[{i}]"), &mut keys, s)?;
        }
        for (what, selector) in [
            ("labelSelector", &a.label_selector),
            (
                "k8sSecretApikeyStorage.labelSelector",
                &storage.label_selector,
            ),
        ] {
            if selector.is_empty() {
                continue;
            }
            let labels: BTreeMap<String, String> = selector.clone().into_iter().collect();
            for s in secrets_with_labels(set, &labels, &[]) {
                if s.type_.as_deref() == Some(APIKEY_TYPE) {
                    add(&format!("{at}.{what}"), &mut keys, s)?;
                }
            }
        }
        if a.api_key_secret_refs.is_empty()
            && storage.api_key_secret_refs.is_empty()
            && a.label_selector.is_empty()
            && storage.label_selector.is_empty()
        {
            return Err(format!("{at}: no apiKeySecretRefs and no labelSelector"));
        }
        let mut entries = Vec::new();
        for (h, e) in &a.headers_from_metadata_entry {
            entries.push(Entry {
                header: HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(
                    |_| format!("{at}.headersFromMetadataEntry: `{h}` is not a header name"),
                )?,
                name: e.name.clone(),
                required: e.required,
            });
        }
        Ok(ApiKeys {
            header,
            keys,
            entries,
        })
    }

    // The pipeline's `Answer` is the error: built once per denied request, not worth a box.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, req: &Inbound<'_>, edits: &mut Edits) -> Result<(), Answer> {
        let deny = |why: &str| {
            super::answer(StatusCode::UNAUTHORIZED, format!("api-key: {why}")).header(
                "www-authenticate",
                &format!("API-Key header=\"{}\"", self.header),
            )
        };
        let Some(key) = req.head.headers.get(self.header.as_str()) else {
            return Err(deny("missing"));
        };
        let Some(owner) = self.keys.get(key.trim().as_bytes()) else {
            return Err(deny("not a valid key"));
        };
        for e in &self.entries {
            match owner
                .meta
                .get(&e.name)
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                Some(v) => edits.request_set.push((e.header.clone(), v)),
                None if e.required => return Err(deny(&format!("the key has no `{}`", e.name))),
                None => {}
            }
        }
        edits.user = Some(owner.name.clone());
        Ok(())
    }
}
