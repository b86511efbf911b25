//! OpenAPI 3.0 and 3.1: `servers` (base path), `paths` (path items may be `$ref`s, may carry
//! their own `servers`), `parameters`, `requestBody`.
//!
//! Why one reader for 3.0 and 3.1: the differences (JSON Schema 2020-12 types such as
//! `type: [string, null]`, `webhooks`, `paths` being optional, `$ref` siblings) only touch
//! what this crate reads in small ways, handled where they occur.

use serde_json::Value;

use super::swagger2::is_json_media_type;
use super::template::{normalize_base, push_once};
use super::{
    DocBuilder, DocError, METHODS, ParamLocation, Parameter, RawOperation, collect_parameters,
    kind, path_items, refs,
};

/// Walks the document; returns the normalized base path of the first server.
pub(crate) fn read<'a>(root: &'a Value, doc: &mut DocBuilder<'a>) -> Result<String, DocError> {
    let base_path = servers_base(root.get("servers"), "servers", &mut doc.warnings)
        .map(|(base, _)| base)
        .unwrap_or_default();

    if let Some(hooks) = root.get("webhooks").and_then(Value::as_object)
        && !hooks.is_empty()
    {
        push_once(
            &mut doc.warnings,
            format!(
                "{} webhook(s) are requests the API makes, not functions; skipped",
                hooks.len()
            ),
        );
    }

    for (path, item_obj) in path_items(root, &mut doc.warnings)? {
        let mut path_warnings = Vec::new();
        let path_base = servers_base(
            item_obj.get("servers"),
            "path-level servers",
            &mut path_warnings,
        );
        for (key, op) in item_obj {
            let Some(&(_, method)) = METHODS.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            let op = match refs::resolve(root, op) {
                Ok(r) => r.value,
                Err(e) => {
                    push_once(&mut doc.warnings, format!("{method} '{path}' skipped: {e}"));
                    continue;
                }
            };
            let Some(op_obj) = op.as_object() else {
                push_once(
                    &mut doc.warnings,
                    format!("{method} '{path}' is {}, not a mapping; skipped", kind(op)),
                );
                continue;
            };
            let mut warnings = path_warnings.clone();
            let op_base = servers_base(
                op_obj.get("servers"),
                "operation-level servers",
                &mut warnings,
            );
            let base = match op_base.or_else(|| path_base.clone()) {
                Some((b, url)) => {
                    push_once(
                        &mut warnings,
                        format!(
                            "uses its own server '{url}' (path prefix '{b}'); its host may differ from the upstream's"
                        ),
                    );
                    b
                }
                None => base_path.clone(),
            };
            let mut params: Vec<Parameter> = collect_parameters(
                root,
                [item_obj.get("parameters"), op_obj.get("parameters")],
                &mut warnings,
            )
            .into_iter()
            .map(|p| p.param)
            .collect();
            let (body_schema, non_json_body) = match op_obj.get("requestBody") {
                Some(rb) => request_body(root, rb, &mut params, &mut warnings),
                None => (None, false),
            };
            doc.operations.push(RawOperation {
                operation_id: op_obj
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                method,
                doc_path: path,
                base_path: base,
                parameters: params,
                body_schema,
                non_json_body,
                warnings,
            });
        }
    }
    Ok(base_path)
}

/// Reads a `requestBody`: a JSON media type gives the body schema (and a `body` parameter);
/// form media types list their properties as `formData` parameters (which cannot be mapped);
/// any other media type is a warning and the body is passed through. Returns the JSON schema
/// and whether the body is declared as non-JSON only.
fn request_body<'a>(
    root: &'a Value,
    rb: &'a Value,
    params: &mut Vec<Parameter>,
    warnings: &mut Vec<String>,
) -> (Option<&'a Value>, bool) {
    let rb = match refs::resolve(root, rb) {
        Ok(r) => r.value,
        Err(e) => {
            push_once(warnings, format!("requestBody: {e}; body passed through"));
            return (None, false);
        }
    };
    let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
    let Some(content) = rb.get("content").and_then(Value::as_object) else {
        return (None, false);
    };
    let json = content
        .get("application/json")
        .map(|m| ("application/json", m))
        .or_else(|| {
            content
                .iter()
                .find(|(t, _)| is_json_media_type(t))
                .map(|(t, m)| (t.as_str(), m))
        });
    if let Some((media_type, media)) = json {
        params.push(Parameter {
            name: "body".to_string(),
            location: ParamLocation::Body,
            required,
            default: None,
        });
        let schema = media.get("schema");
        if schema.is_none() {
            push_once(
                warnings,
                format!("request body '{media_type}' has no schema; body passed through"),
            );
        }
        return (schema, false);
    }
    let form = content.iter().find(|(t, _)| {
        let t = t.to_ascii_lowercase();
        t.starts_with("application/x-www-form-urlencoded") || t.starts_with("multipart/form-data")
    });
    if let Some((_, media)) = form {
        let schema = media
            .get("schema")
            .and_then(|s| refs::resolve(root, s).ok())
            .map(|r| r.value);
        let required_names: Vec<&str> = schema
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let props = schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        match props {
            Some(props) if !props.is_empty() => {
                for name in props.keys() {
                    params.push(Parameter {
                        name: name.clone(),
                        location: ParamLocation::FormData,
                        required: required_names.contains(&name.as_str()),
                        default: None,
                    });
                }
            }
            _ => params.push(Parameter {
                name: "body".to_string(),
                location: ParamLocation::FormData,
                required,
                default: None,
            }),
        }
        return (None, true);
    }
    let types: Vec<&str> = content.keys().map(String::as_str).collect();
    if !types.is_empty() {
        params.push(Parameter {
            name: "body".to_string(),
            location: ParamLocation::Body,
            required,
            default: None,
        });
        push_once(
            warnings,
            format!(
                "request body media type(s) [{}] cannot be templated (only JSON); body passed through",
                types.join(", ")
            ),
        );
    }
    (None, !types.is_empty())
}

/// Base path and URL of the first entry of a `servers` list, if there is one.
fn servers_base(
    servers: Option<&Value>,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<(String, String)> {
    let first = match servers? {
        Value::Array(list) => list.first()?,
        other => {
            push_once(
                warnings,
                format!("'{what}' is {}, not a sequence; ignored", kind(other)),
            );
            return None;
        }
    };
    let Some(url) = first.get("url").and_then(Value::as_str) else {
        push_once(warnings, format!("first of '{what}' has no url; ignored"));
        return None;
    };
    let expanded = expand_variables(url, first.get("variables"), what, warnings);
    Some((url_path(&expanded, what, warnings), url.to_string()))
}

/// Replaces `{name}` with the server variable's `default`.
fn expand_variables(
    url: &str,
    vars: Option<&Value>,
    what: &str,
    warnings: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let inner = after.get(1..).unwrap_or_default();
        let Some(close) = inner.find('}') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let name = inner.get(..close).unwrap_or_default();
        let default = vars
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
            .and_then(|d| match d {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        match default {
            Some(d) => out.push_str(&d),
            None => push_once(
                warnings,
                format!("{what}: server variable '{name}' has no default; left empty"),
            ),
        }
        rest = inner.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The path part of a server URL: full (`https://h:1/v2`), protocol-relative (`//h/v2`) or
/// relative (`/v2`, `v2`, `.`). Relative URLs are resolved against the root, as the document's
/// own location is not known here.
fn url_path(url: &str, what: &str, warnings: &mut Vec<String>) -> String {
    let url = url.trim();
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let after_authority = if let Some(i) = url.find("://") {
        url.get(i + 3..)
            .map(|rest| rest.find('/').and_then(|p| rest.get(p..)).unwrap_or(""))
    } else {
        url.strip_prefix("//")
            .map(|rest| rest.find('/').and_then(|p| rest.get(p..)).unwrap_or(""))
    };
    let path = match after_authority {
        Some(p) => p.to_string(),
        None => {
            let rel = url.trim_start_matches("./");
            if !rel.is_empty() && rel != "." && !rel.starts_with('/') {
                push_once(
                    warnings,
                    format!("{what}: relative server url '{url}' taken as '/{rel}'"),
                );
            }
            if rel == "." {
                String::new()
            } else {
                rel.to_string()
            }
        }
    };
    normalize_base(&path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_paths() {
        let mut w = Vec::new();
        let s = json!([{"url": "https://{name}.example.com:{port}/{basePath}",
            "variables": {"name": {"default": "demo"}, "port": {"default": "443"},
                          "basePath": {"default": "v2"}}}]);
        assert_eq!(servers_base(Some(&s), "servers", &mut w).unwrap().0, "/v2");
        for (url, want) in [
            ("https://h.io", ""),
            ("https://h.io/", ""),
            ("http://h.io/a/b/?x=1", "/a/b"),
            ("//h.io/x", "/x"),
            ("/api/v3", "/api/v3"),
            (".", ""),
            ("", ""),
        ] {
            assert_eq!(url_path(url, "servers", &mut w), want, "{url}");
        }
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(url_path("v1", "servers", &mut w), "/v1");
        assert_eq!(w.len(), 1);
    }
}
