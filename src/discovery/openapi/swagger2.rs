//! Swagger 2.0: `basePath`, `paths`, `parameters` (including `in: body` with its `schema`),
//! `consumes`.
//!
//! Why separate from OpenAPI 3: the base path and the request body are declared differently
//! (a `basePath` string and a `body` parameter instead of `servers` and `requestBody`); the
//! rest (path items, parameters, refs) is shared through `lib.rs` and `refs.rs`.

use serde_json::Value;

use super::template::{normalize_base, push_once};
use super::{
    DocBuilder, DocError, METHODS, ParamLocation, RawOperation, collect_parameters, kind,
    path_items,
};

/// Walks the document; returns the normalized base path.
pub(crate) fn read<'a>(root: &'a Value, doc: &mut DocBuilder<'a>) -> Result<String, DocError> {
    let base_path = match root.get("basePath") {
        None => String::new(),
        Some(Value::String(s)) => normalize_base(s),
        Some(other) => {
            push_once(
                &mut doc.warnings,
                format!("'basePath' is {}, not a string; ignored", kind(other)),
            );
            String::new()
        }
    };
    let global_consumes = root.get("consumes");
    if let Some(types) = non_json_consumes(global_consumes) {
        // Gloo rejects the whole document here; a warning is enough.
        push_once(
            &mut doc.warnings,
            format!(
                "'consumes' {types} does not include application/json; such bodies are passed through"
            ),
        );
    }

    for (path, item_obj) in path_items(root, &mut doc.warnings)? {
        for (key, op) in item_obj {
            let Some(&(_, method)) = METHODS.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            if method == "TRACE" {
                push_once(
                    &mut doc.warnings,
                    format!("'trace' under '{path}' is not Swagger 2.0; skipped"),
                );
                continue;
            }
            let Some(op_obj) = op.as_object() else {
                push_once(
                    &mut doc.warnings,
                    format!("{method} '{path}' is {}, not a mapping; skipped", kind(op)),
                );
                continue;
            };
            let mut warnings = Vec::new();
            let params = collect_parameters(
                root,
                [item_obj.get("parameters"), op_obj.get("parameters")],
                &mut warnings,
            );
            let mut body_schema = None;
            for p in params
                .iter()
                .filter(|p| p.param.location == ParamLocation::Body)
            {
                match p.raw.get("schema") {
                    Some(schema) if body_schema.is_none() => body_schema = Some(schema),
                    Some(_) => push_once(
                        &mut warnings,
                        format!("more than one body parameter; '{}' ignored", p.param.name),
                    ),
                    None => push_once(
                        &mut warnings,
                        format!("body parameter '{}' has no schema", p.param.name),
                    ),
                }
            }
            // The operation's `consumes` replaces the document's. A body of another type
            // (`application/octet-stream`, `application/x-tar`) is passed through with the
            // caller's content type, as an OpenAPI 3 `requestBody` of that type is.
            let consumes = op_obj.get("consumes").or(global_consumes);
            let mut non_json_body = false;
            if body_schema.is_some()
                && let Some(types) = non_json_consumes(consumes)
            {
                push_once(
                    &mut warnings,
                    format!(
                        "body of type {types} cannot be templated (only JSON); body passed through"
                    ),
                );
                body_schema = None;
                non_json_body = true;
            }
            let non_json_body = non_json_body
                || (body_schema.is_none()
                    && params
                        .iter()
                        .any(|p| p.param.location == ParamLocation::FormData));
            doc.operations.push(RawOperation {
                operation_id: op_obj
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                method,
                doc_path: path,
                base_path: base_path.clone(),
                parameters: params.into_iter().map(|p| p.param).collect(),
                body_schema,
                non_json_body,
                warnings,
            });
        }
    }
    Ok(base_path)
}

/// `Some("[a, b]")` when a `consumes` list is present, non-empty and has no JSON type.
fn non_json_consumes(consumes: Option<&Value>) -> Option<String> {
    let list = consumes?.as_array()?;
    let types: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    if types.is_empty() || types.iter().any(|t| is_json_media_type(t)) {
        None
    } else {
        Some(format!("[{}]", types.join(", ")))
    }
}

/// `application/json`, `application/json; charset=utf-8`, `application/vnd.x+json`.
pub(crate) fn is_json_media_type(t: &str) -> bool {
    let essence = t
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || essence == "*/*"
}
