//! Building a tester request: what a route asks for (its method, its path, one variable per
//! parameter of its function and where each goes), and the request as it will be sent once the
//! variables are filled in (path template, header templates, or a JSON body of the variables).

use super::send::Saved;
use crate::api::resource::Upstream;
use crate::api::{PathMatch, Route};
use crate::gateway::telemetry::RequestEvent;
use std::sync::OnceLock;

/// Where a variable's value goes.
#[derive(Debug, Clone, PartialEq)]
pub enum VarSource {
    Body,
    /// The header that carries it, and the route's template for that header (`{id}`).
    Header(String, String),
    /// The route's `:path` template.
    Path,
}

/// A variable of a function route.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub source: VarSource,
}

/// What a route asks for, before anything is filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub method: String,
    /// The path, or the route's `:path` template when its parameters take it from the path.
    pub path: String,
    pub params: Vec<Param>,
    /// A prefilled body (a gRPC method's request message at its zero values), else empty.
    pub body: String,
}

fn brace_vars() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
            .unwrap_or_else(|_| unreachable!("a literal regex"))
    })
}

/// `tpl` with each `{name}` replaced by its value in `vars` (unknown names are left as they are).
pub fn fill(tpl: &str, vars: &[(&Param, &str)]) -> String {
    brace_vars()
        .replace_all(tpl, |c: &regex::Captures| {
            vars.iter()
                .find(|(p, _)| p.name == c[1])
                .map(|(_, v)| v.to_string())
                .unwrap_or_else(|| c[0].to_string())
        })
        .into_owned()
}

/// What route `r` asks for. `upstream` is the upstream it goes to (a gRPC method's body is
/// built from its descriptors); `body_vars` are the variables of its REST function (filled
/// into a JSON body unless the route's parameters take them from headers or the path).
pub fn plan(r: &Route, upstream: Option<&Upstream>, body_vars: &[String]) -> Plan {
    let m = r.matchers.first();
    let mut path = m
        .map(|m| match m.path() {
            PathMatch::Exact(p) | PathMatch::Prefix(p) => p.to_string(),
            PathMatch::Regex(_) => "/".to_string(),
        })
        .unwrap_or_else(|| "/".into());
    let mut params: Vec<Param> = Vec::new();
    let mut add = |name: &str, source: VarSource| {
        if !params.iter().any(|p| p.name == name) {
            params.push(Param {
                name: name.to_string(),
                source,
            });
        }
    };
    let mut body = String::new();
    let dest = r.route_action.as_ref().and_then(|a| a.single.as_ref());
    if let Some(d) = dest
        && d.function_name().is_some()
    {
        let spec = d.destination_spec.as_ref();
        let parameters = spec
            .and_then(|s| {
                s.rest
                    .as_ref()
                    .and_then(|r| r.parameters.clone())
                    .or_else(|| s.grpc.as_ref().and_then(|g| g.parameters.clone()))
            })
            .unwrap_or_default();
        for (h, tpl) in &parameters.headers {
            for c in brace_vars().captures_iter(tpl) {
                add(&c[1], VarSource::Header(h.clone(), tpl.clone()));
            }
        }
        if let Some(tpl) = &parameters.path {
            path = tpl.clone();
            for c in brace_vars().captures_iter(tpl) {
                add(&c[1], VarSource::Path);
            }
        }
        if spec.is_some_and(|s| s.grpc.is_some()) {
            // A gRPC method: the request message's fields, at their zero values.
            let up = d.upstream.as_ref().map(|u| u.name.as_str()).unwrap_or("");
            match upstream
                .ok_or_else(|| format!("no upstream {up}"))
                .and_then(|u| super::grpc_body::for_destination(d, u))
            {
                Ok(b) => body = b.to_string(),
                Err(e) => tracing::debug!(error = %e, "no gRPC body to prefill"),
            }
        } else {
            for v in body_vars {
                add(v, VarSource::Body);
            }
        }
    }
    let method = m
        .and_then(|m| m.methods.first().cloned())
        .unwrap_or_else(|| {
            if !body.is_empty() || params.iter().any(|p| p.source == VarSource::Body) {
                "POST".into()
            } else {
                "GET".into()
            }
        });
    Plan {
        method,
        path,
        params,
        body,
    }
}

/// The request as it will be sent: `vars` (each variable and its value) go where their
/// source says; the body variables make a JSON object (numbers and booleans as such) unless a
/// body was given.
pub fn compose(
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
    vars: &[(&Param, &str)],
) -> Saved {
    let path = if vars.iter().any(|(p, _)| p.source == VarSource::Path) {
        fill(path, vars)
    } else {
        path.to_string()
    };
    let mut lines: Vec<String> = headers
        .split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    for (p, _) in vars {
        if let VarSource::Header(h, tpl) = &p.source {
            let line = format!("{h}: {}", fill(tpl, vars));
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    let body = if !body.trim().is_empty() {
        body.to_string()
    } else {
        let m: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .filter(|(p, _)| p.source == VarSource::Body)
            .map(|(p, v)| {
                let t = v.trim();
                let val = serde_json::from_str::<serde_json::Value>(t)
                    .ok()
                    .filter(|x| x.is_number() || x.is_boolean())
                    .unwrap_or_else(|| serde_json::Value::String(t.to_string()));
                (p.name.clone(), val)
            })
            .collect();
        if m.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(m).to_string()
        }
    };
    Saved {
        method: method.trim().to_ascii_uppercase(),
        path,
        headers: lines.join("; "),
        body,
    }
}

/// A request of the access log as the tester sends it again (credentials included: the replay
/// is this console's own; the body is not recorded).
pub fn replay(e: &RequestEvent) -> Saved {
    let headers = e
        .headers
        .iter()
        .filter(|(k, _)| {
            // What the tester's client sets itself, or what no longer holds for a new request.
            !["host", "content-length", "connection", "transfer-encoding"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    Saved {
        method: e.method.clone(),
        path: e.path.clone(),
        headers,
        body: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(v: serde_json::Value) -> Route {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_function_route_with_header_and_path_parameters_plans_its_variables() {
        let r = route(serde_json::json!({
            "matchers": [{"prefix": "/pets"}],
            "routeAction": {"single": {
                "upstream": {"name": "petstore", "namespace": "gloo-system"},
                "destinationSpec": {"rest": {
                    "functionName": "findPetById",
                    "parameters": {"headers": {"x-pet": "{id}"}, "path": "/pets/{kind}/{id}"}
                }}
            }}
        }));
        // The function's own variables are taken by the route's parameters: none is left for
        // a body, so the method stays GET.
        let p = plan(&r, None, &["id".into(), "kind".into()]);
        assert_eq!(p.path, "/pets/{kind}/{id}");
        assert_eq!(p.method, "GET");
        let names: Vec<(&str, &VarSource)> = p
            .params
            .iter()
            .map(|p| (p.name.as_str(), &p.source))
            .collect();
        assert_eq!(
            names,
            [
                ("id", &VarSource::Header("x-pet".into(), "{id}".into())),
                ("kind", &VarSource::Path),
            ]
        );
        let id = &p.params[0];
        let kind = &p.params[1];
        let s = compose(
            " get",
            &p.path,
            "accept: */*",
            "",
            &[(id, "7"), (kind, "dog")],
        );
        assert_eq!(s.method, "GET");
        assert_eq!(s.path, "/pets/dog/7");
        assert_eq!(s.headers, "accept: */*; x-pet: 7");
        assert_eq!(s.body, "");
    }

    #[test]
    fn body_variables_make_a_json_object_unless_a_body_is_given() {
        let r = route(serde_json::json!({
            "matchers": [{"exact": "/add"}],
            "routeAction": {"single": {
                "upstream": {"name": "petstore", "namespace": "gloo-system"},
                "destinationSpec": {"rest": {"functionName": "addPet"}}
            }}
        }));
        let p = plan(&r, None, &["id".into(), "name".into(), "tag".into()]);
        assert_eq!(p.method, "POST", "body variables: POST");
        assert_eq!(p.path, "/add");
        let v: Vec<(&Param, &str)> = p.params.iter().zip(["3", "Rex", "true"]).collect();
        let s = compose("POST", &p.path, "", "", &v);
        let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": 3, "name": "Rex", "tag": true})
        );
        let s = compose("POST", &p.path, "", "{\"raw\": 1}", &v);
        assert_eq!(s.body, "{\"raw\": 1}");
    }

    #[test]
    fn a_plain_route_is_its_first_method_and_path() {
        let r = route(serde_json::json!({
            "matchers": [{"regex": "/a.*", "methods": ["DELETE"]}],
            "routeAction": {"single": {"upstream": {"name": "u", "namespace": "ns"}}}
        }));
        let p = plan(&r, None, &[]);
        assert_eq!((p.method.as_str(), p.path.as_str()), ("DELETE", "/"));
        assert!(p.params.is_empty() && p.body.is_empty());
        assert_eq!(fill("/x/{id}", &[]), "/x/{id}", "an unknown variable stays");
    }
}
