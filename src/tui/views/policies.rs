//! A route's first-line policies in words, for its description: CORS, JWT (per stage, with
//! the providers), external auth (the AuthConfig and its kinds), rate limits; each says
//! whether it is the route's own or its virtual host's, with Gloo's precedence (see
//! `crate::policy::build`): a route's option replaces its virtual host's, a route can turn one
//! off. Read from the options as stored; validation has built them the same way.

use serde_json::{Map, Value};

type Opts<'a> = Option<&'a Map<String, Value>>;

/// The AuthConfig kinds (`basicAuth`, ...) of the AuthConfig `namespace/name`, if it exists.
pub type AuthKinds<'a> = dyn Fn(&str, &str) -> Option<Vec<String>> + 'a;

fn at<'v>(o: Opts<'v>, path: &[&str]) -> Option<&'v Value> {
    let mut v = o?.get(*path.first()?)?;
    for p in &path[1..] {
        v = v.get(p)?;
    }
    Some(v)
}

fn texts(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// `name (issuer I, local key)` for each provider of a JWT option's stage.
fn providers(stage: &Value) -> String {
    let Some(ps) = stage.get("providers").and_then(Value::as_object) else {
        return "no provider".into();
    };
    ps.iter()
        .map(|(name, p)| {
            let mut parts = Vec::new();
            if let Some(i) = p.get("issuer").and_then(Value::as_str) {
                parts.push(format!("issuer {i}"));
            }
            let aud = texts(p.get("audiences"));
            if !aud.is_empty() {
                parts.push(format!("audiences {aud}"));
            }
            match p.get("jwks") {
                Some(j) if j.get("remote").is_some() => parts.push(format!(
                    "keys from {}",
                    texts(j.get("remote").and_then(|r| r.get("url")))
                )),
                Some(_) => parts.push("local keys".into()),
                None => {}
            }
            if parts.is_empty() {
                name.clone()
            } else {
                format!("{name} ({})", parts.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn jwt(vhost: Opts, route: Opts, out: &mut Vec<String>) {
    for stage in ["beforeExtAuth", "afterExtAuth"] {
        let after = stage == "afterExtAuth";
        if let Some(s) = at(route, &["jwtProvidersStaged", stage]) {
            out.push(format!("jwt {stage}: {} (route)", providers(s)));
            continue;
        }
        let disabled = at(route, &["jwtStaged", stage, "disable"]) == Some(&Value::Bool(true))
            || (after && at(route, &["jwt", "disable"]) == Some(&Value::Bool(true)));
        let from_vhost =
            at(vhost, &["jwtStaged", stage]).or(if after { at(vhost, &["jwt"]) } else { None });
        match (from_vhost, disabled) {
            (Some(_), true) => out.push(format!("jwt {stage}: off on this route")),
            (Some(s), false) => out.push(format!("jwt {stage}: {} (virtual host)", providers(s))),
            (None, _) => {}
        }
    }
}

fn extauth(vhost: Opts, route: Opts, ns: &str, kinds: &AuthKinds<'_>, out: &mut Vec<String>) {
    let (e, whose) = match (at(route, &["extauth"]), at(vhost, &["extauth"])) {
        (Some(e), _) => (e, "route"),
        (None, Some(e)) => (e, "virtual host"),
        (None, None) => return,
    };
    if e.get("disable") == Some(&Value::Bool(true)) {
        out.push("extauth: off on this route".into());
        return;
    }
    let Some(r) = e.get("configRef") else { return };
    let name = texts(r.get("name"));
    let ns = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
    let what = match kinds(ns, &name) {
        Some(k) if !k.is_empty() => k.join(", "),
        Some(_) => "no config".into(),
        None => "missing!".into(),
    };
    out.push(format!("extauth: AuthConfig {ns}/{name}: {what} ({whose})"));
}

fn cors(vhost: Opts, route: Opts, out: &mut Vec<String>) {
    let r = at(route, &["cors"]);
    if r.and_then(|c| c.get("disableForRoute")) == Some(&Value::Bool(true)) {
        out.push("cors: off on this route".into());
        return;
    }
    let (c, whose) = match (r, at(vhost, &["cors"])) {
        (Some(c), _) => (c, "route"),
        (None, Some(c)) => (c, "virtual host"),
        (None, None) => return,
    };
    let mut origins = texts(c.get("allowOrigin"));
    let regex = texts(c.get("allowOriginRegex"));
    if !regex.is_empty() {
        origins = [origins, format!("/{regex}/")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
    }
    let methods = texts(c.get("allowMethods"));
    out.push(format!(
        "cors: origins {origins}{} ({whose})",
        if methods.is_empty() {
            String::new()
        } else {
            format!("; methods {methods}")
        }
    ));
}

fn limits(vhost: Opts, route: Opts, out: &mut Vec<String>) {
    let path = ["ratelimit", "localRatelimit"];
    let (b, whose) = match (at(route, &path), at(vhost, &path)) {
        (Some(b), _) => (Some(b), "route"),
        (None, Some(b)) => (Some(b), "virtual host"),
        _ => (None, ""),
    };
    if let Some(b) = b {
        out.push(format!(
            "local limit: {} tokens, {} every {} ({whose}; one bucket per gateway)",
            texts(b.get("maxTokens")),
            b.get("tokensPerFill")
                .map_or("1".into(), |v| texts(Some(v))),
            texts(b.get("fillInterval")),
        ));
    }
    for (field, what) in [
        ("rateLimitEarlyConfigs", "global limit, before auth"),
        ("rateLimitConfigs", "global limit"),
        ("rateLimitRegularConfigs", "global limit"),
    ] {
        let refs = |o: Opts| {
            at(o, &[field, "refs"])
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.iter()
                        .map(|r| texts(r.get("name")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
        };
        match (refs(route), refs(vhost)) {
            (Some(n), _) => out.push(format!("{what}: RateLimitConfig {n} in Redis (route)")),
            (None, Some(n)) => out.push(format!(
                "{what}: RateLimitConfig {n} in Redis (virtual host)"
            )),
            _ => {}
        }
    }
    for (o, whose) in [(vhost, "virtual host"), (route, "route")] {
        let Some(b) = at(o, &["ratelimitBasic"]) else {
            continue;
        };
        let per = |k: &str| {
            b.get(k).map(|l| {
                format!(
                    "{}/{}",
                    texts(l.get("requestsPerUnit")),
                    texts(l.get("unit")).to_lowercase()
                )
            })
        };
        let mut parts = Vec::new();
        if let Some(p) = per("authorizedLimits") {
            parts.push(format!("{p} per user"));
        }
        if let Some(p) = per("anonymousLimits") {
            parts.push(format!("{p} per address without a user"));
        }
        out.push(format!(
            "basic limit: {} in Redis ({whose})",
            parts.join(", ")
        ));
    }
}

/// The policies a route runs, one line each, in the order the gateway runs them (CORS, JWT,
/// external auth, limits); empty when it has none. `ns`: where references without a namespace point.
pub fn lines(vhost: Opts, route: Opts, ns: &str, kinds: &AuthKinds<'_>) -> Vec<String> {
    let mut out = Vec::new();
    cors(vhost, route, &mut out);
    jwt(vhost, route, &mut out);
    extauth(vhost, route, ns, kinds, &mut out);
    limits(vhost, route, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("a test's options are an object"),
        }
    }

    #[test]
    fn route_and_virtual_host_policies_with_precedence() {
        let vh = opts(json!({
            "jwtStaged": {"beforeExtAuth": {"providers": {"idp": {"issuer": "https://idp", "jwks": {"local": {"key": "k"}}}}}},
            "cors": {"allowOrigin": ["https://shop"], "allowMethods": ["GET"]},
            "extauth": {"configRef": {"name": "basic"}},
            "ratelimitBasic": {"anonymousLimits": {"unit": "MINUTE", "requestsPerUnit": 10}},
        }));
        let rt = opts(json!({
            "jwtProvidersStaged": {"afterExtAuth": {"providers": {"mine": {"jwks": {"remote": {"url": "http://keys/jwks"}}}}}},
            "ratelimit": {"localRatelimit": {"maxTokens": 5, "fillInterval": "1s"}},
            "rateLimitConfigs": {"refs": [{"name": "per-user"}]},
        }));
        let kinds = |ns: &str, name: &str| {
            (ns == "gloo-system" && name == "basic").then(|| vec!["basicAuth".to_string()])
        };
        let l = lines(Some(&vh), Some(&rt), "gloo-system", &kinds);
        assert_eq!(
            l,
            [
                "cors: origins https://shop; methods GET (virtual host)",
                "jwt beforeExtAuth: idp (issuer https://idp, local keys) (virtual host)",
                "jwt afterExtAuth: mine (keys from http://keys/jwks) (route)",
                "extauth: AuthConfig gloo-system/basic: basicAuth (virtual host)",
                "local limit: 5 tokens, 1 every 1s (route; one bucket per gateway)",
                "global limit: RateLimitConfig per-user in Redis (route)",
                "basic limit: 10/minute per address without a user in Redis (virtual host)",
            ]
        );
        // Turned off on the route.
        let off = opts(json!({
            "jwtStaged": {"beforeExtAuth": {"disable": true}},
            "extauth": {"disable": true},
            "cors": {"disableForRoute": true},
        }));
        let l = lines(Some(&vh), Some(&off), "gloo-system", &kinds);
        assert!(l.contains(&"jwt beforeExtAuth: off on this route".to_string()));
        assert!(l.contains(&"extauth: off on this route".to_string()));
        assert!(l.contains(&"cors: off on this route".to_string()));
        assert!(lines(None, None, "gloo-system", &kinds).is_empty());
    }
}
