//! Local `$ref` resolution over the raw `serde_json::Value` tree.
//!
//! Why here and not in a typed model: Swagger 2.0, OpenAPI 3.0 and 3.1 all use the same
//! JSON-Pointer `$ref` form (`#/definitions/..`, `#/components/..`, `#/parameters/..`), so one
//! resolver serves all three. Only same-document refs are followed; remote refs are reported so
//! the caller can turn them into warnings. A chain of refs is bounded by [`MAX_REF_HOPS`], so a
//! ref that points at itself (directly or through others) ends with an error, never a loop.

use serde_json::Value;

/// Longest `$ref` -> `$ref` chain followed before giving up (a cycle of pure refs).
pub(crate) const MAX_REF_HOPS: usize = 32;

/// Why a `$ref` could not be followed. The `Display` text names the ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefError {
    /// `other.yaml#/Pet`, `https://...`: not followed (no I/O here).
    Remote(String),
    /// `#/definitions/Nope`: the pointer leads nowhere in this document.
    Missing(String),
    /// A chain of refs longer than [`MAX_REF_HOPS`] (in practice, a ref cycle).
    TooManyHops(String),
    /// `$ref: 42` or similar.
    NotAString,
}

impl std::fmt::Display for RefError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefError::Remote(r) => write!(f, "remote $ref '{r}' is not followed"),
            RefError::Missing(r) => write!(f, "$ref '{r}' points to nothing in this document"),
            RefError::TooManyHops(r) => write!(
                f,
                "$ref chain from '{r}' is longer than {MAX_REF_HOPS} hops (a $ref cycle?)"
            ),
            RefError::NotAString => write!(f, "$ref is not a string"),
        }
    }
}

/// A value with its refs followed, plus the last ref string taken (the schema's identity, used
/// by callers to detect schema cycles).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved<'a> {
    pub value: &'a Value,
    pub via: Option<&'a str>,
}

/// Follows `$ref` (if any) until a non-ref value is reached. Siblings of `$ref` are ignored,
/// as OpenAPI 3.0 and Swagger 2.0 require (3.1 allows a few annotations, which do not matter
/// for templates).
pub(crate) fn resolve<'a>(root: &'a Value, value: &'a Value) -> Result<Resolved<'a>, RefError> {
    let mut current = value;
    let mut via = None;
    let mut first: Option<&str> = None;
    for _ in 0..=MAX_REF_HOPS {
        let Some(r) = current.as_object().and_then(|o| o.get("$ref")) else {
            return Ok(Resolved {
                value: current,
                via,
            });
        };
        let r = r.as_str().ok_or(RefError::NotAString)?;
        first.get_or_insert(r);
        current = lookup(root, r)?;
        via = Some(r);
    }
    Err(RefError::TooManyHops(first.unwrap_or_default().to_string()))
}

/// Looks a single local ref up (`#/a/b~1c`), without following further refs.
fn lookup<'a>(root: &'a Value, r: &str) -> Result<&'a Value, RefError> {
    let Some(fragment) = r.strip_prefix('#') else {
        return Err(RefError::Remote(r.to_string()));
    };
    // `%XX` escapes (`#/paths/~1pets%7Bid%7D`); malformed ones are kept verbatim.
    let pointer = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy();
    if pointer.is_empty() {
        return Ok(root);
    }
    if !pointer.starts_with('/') {
        // `#Pet` style anchors (3.1 `$anchor`) are not supported.
        return Err(RefError::Missing(r.to_string()));
    }
    root.pointer(&pointer)
        .ok_or_else(|| RefError::Missing(r.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_chains_and_stops_cycles() {
        let root = json!({
            "definitions": {
                "a": {"$ref": "#/definitions/b"},
                "b": {"type": "string"},
                "loop": {"$ref": "#/definitions/loop"},
                "x~y": {"type": "integer"},
            }
        });
        let a = json!({"$ref": "#/definitions/a"});
        let r = resolve(&root, &a).unwrap();
        assert_eq!(r.value, &json!({"type": "string"}));
        assert_eq!(r.via, Some("#/definitions/b"));
        assert!(matches!(
            resolve(&root, &json!({"$ref": "#/definitions/loop"})),
            Err(RefError::TooManyHops(_))
        ));
        assert!(matches!(
            resolve(&root, &json!({"$ref": "other.json#/x"})),
            Err(RefError::Remote(_))
        ));
        assert!(matches!(
            resolve(&root, &json!({"$ref": "#/nope"})),
            Err(RefError::Missing(_))
        ));
        let xy = json!({"$ref": "#/definitions/x~0y"});
        let r = resolve(&root, &xy).unwrap();
        assert_eq!(r.value, &json!({"type": "integer"}));
        let escaped = json!({"paths": {"/a{b}%zz%": {"get": {}}}});
        let escaped_ref = json!({"$ref": "#/paths/~1a%7Bb%7D%zz%"});
        let r = resolve(&escaped, &escaped_ref).unwrap();
        assert_eq!(r.value, &json!({"get": {}}));
    }
}
