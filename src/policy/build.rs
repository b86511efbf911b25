//! A route's policies from its virtual host's options and its own (Gloo's precedence: a
//! route's option replaces the virtual host's; `disable` flags turn one off for the route),
//! with the AuthConfigs and RateLimitConfigs they name. Validation runs the same code, so
//! what is accepted is what is served.

use super::cors::CorsStage;
use super::extauth::{AuthConfig, ExtAuthStage};
use super::jwt::{JwtStage, Resolve};
use super::limit::LocalLimit;
use super::redis_limit::{Config, GlobalLimit};
use super::runtime::Runtime;
use super::spec::{self, read};
use super::{Answer, Edits, Inbound, Order, Stage};
use crate::api::{Kind, Resource, ResourceKey, ResourceRef, ResourceSet};
use http::StatusCode;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Why a route's policies cannot be built: the field path and the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The options of one level and where they are.
pub struct Level<'a> {
    pub at: &'a str,
    pub options: Option<&'a Map<String, Value>>,
    /// The namespace of the resource the options are in (references resolve there).
    pub namespace: &'a str,
    /// What identifies it (a local rate limit's bucket is per virtual host or per route).
    pub id: &'a str,
}

impl Level<'_> {
    fn get(&self, key: &str) -> Option<(String, &Value)> {
        self.options?
            .get(key)
            .map(|v| (format!("{}.{key}", self.at), v))
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(String, T)>, String> {
        match self.get(key) {
            None => Ok(None),
            Some((at, v)) => Ok(Some((at.clone(), read(&at, v)?))),
        }
    }
}

/// Builds the stages of a route (`route`) under a virtual host (`vhost`, without options when
/// the route is checked on its own).
pub fn build_route(
    vhost: &Level<'_>,
    route: &Level<'_>,
    set: &ResourceSet,
    runtime: &Arc<Runtime>,
    resolve: &Resolve<'_>,
) -> Result<Vec<Arc<dyn Stage>>, PolicyError> {
    let mut stages: Vec<Arc<dyn Stage>> = Vec::new();
    cors(vhost, route, runtime, &mut stages)?;
    jwt(vhost, route, runtime, resolve, &mut stages)?;
    extauth(vhost, route, set, runtime, &mut stages)?;
    local_limit(vhost, route, runtime, &mut stages)?;
    global_limit(vhost, route, set, runtime, &mut stages)?;
    Ok(stages)
}

/// A route whose policies could not be built (a reference gone since validation): every
/// request is refused, never served unprotected.
#[derive(Debug)]
pub struct Broken(pub String);

#[async_trait::async_trait]
impl Stage for Broken {
    fn order(&self) -> Order {
        Order::Fault
    }
    async fn check(&self, _req: &Inbound<'_>, _edits: &mut Edits) -> Result<(), Answer> {
        Err(super::answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("policy not compiled: {}", self.0),
        ))
    }
}

fn err(e: String) -> PolicyError {
    PolicyError(e)
}

fn cors(
    vhost: &Level<'_>,
    route: &Level<'_>,
    runtime: &Arc<Runtime>,
    out: &mut Vec<Arc<dyn Stage>>,
) -> Result<(), PolicyError> {
    let r: Option<(String, spec::CorsPolicy)> = route.read("cors").map_err(err)?;
    let v: Option<(String, spec::CorsPolicy)> = vhost.read("cors").map_err(err)?;
    let chosen = match (&r, &v) {
        (Some((_, p)), _) if p.disable_for_route => None,
        (Some((at, p)), _) if !p.allow_origin.is_empty() || !p.allow_origin_regex.is_empty() => {
            Some((at, p))
        }
        (_, Some((at, p))) => Some((at, p)),
        (Some((at, p)), None) => Some((at, p)),
        (None, None) => None,
    };
    if let Some((at, p)) = chosen {
        out.push(Arc::new(CorsStage::build(at, p, runtime).map_err(err)?));
    }
    Ok(())
}

fn jwt(
    vhost: &Level<'_>,
    route: &Level<'_>,
    runtime: &Arc<Runtime>,
    resolve: &Resolve<'_>,
    out: &mut Vec<Arc<dyn Stage>>,
) -> Result<(), PolicyError> {
    let staged: Option<(String, spec::JwtVhostStaged)> = vhost.read("jwtStaged").map_err(err)?;
    let legacy: Option<(String, spec::JwtVhost)> = vhost.read("jwt").map_err(err)?;
    let r_staged: Option<(String, spec::JwtRouteStaged)> = route.read("jwtStaged").map_err(err)?;
    let r_legacy: Option<(String, spec::JwtRoute)> = route.read("jwt").map_err(err)?;
    // Gloo's newer route form: the route's own providers, stage by stage.
    let r_providers: Option<(String, spec::JwtVhostStaged)> =
        route.read("jwtProvidersStaged").map_err(err)?;
    if let Some((at, _)) = &legacy
        && staged.is_some()
    {
        return Err(err(format!(
            "{at}: both `jwt` and `jwtStaged` (Gloo takes one)"
        )));
    }
    let route_forms = [
        r_staged.as_ref().map(|(at, _)| at),
        r_legacy.as_ref().map(|(at, _)| at),
        r_providers.as_ref().map(|(at, _)| at),
    ];
    if route_forms.iter().flatten().count() > 1 {
        let at = route_forms
            .iter()
            .flatten()
            .next()
            .map_or("", |a| a.as_str());
        return Err(err(format!(
            "{at}: more than one of `jwt`, `jwtStaged`, `jwtProvidersStaged` on the route (Gloo takes one)"
        )));
    }
    for (order, name) in [
        (Order::JwtBeforeExtAuth, "beforeExtAuth"),
        (Order::JwtAfterExtAuth, "afterExtAuth"),
    ] {
        let pick = |s: &spec::JwtVhostStaged| -> Option<spec::JwtVhost> {
            if order == Order::JwtBeforeExtAuth {
                s.before_ext_auth.clone()
            } else {
                s.after_ext_auth.clone()
            }
        };
        // The route's providers for this stage replace the virtual host's (Gloo's same-stage
        // precedence); at the other stage the virtual host's still run.
        if let Some((at, p)) = &r_providers
            && let Some(ext) = pick(p)
        {
            let at = format!("{at}.{name}");
            out.push(Arc::new(
                JwtStage::build(&at, order, &ext, runtime, resolve).map_err(err)?,
            ));
            continue;
        }
        let disabled = match (&r_staged, &r_legacy) {
            (Some((_, s)), _) => if order == Order::JwtBeforeExtAuth {
                &s.before_ext_auth
            } else {
                &s.after_ext_auth
            }
            .as_ref()
            .is_some_and(|r| r.disable),
            // The older `jwt` is the stage after external auth.
            (None, Some((_, r))) => order == Order::JwtAfterExtAuth && r.disable,
            (None, None) => false,
        };
        if disabled {
            continue;
        }
        let from_vhost = match (&staged, &legacy) {
            (Some((at, s)), _) => pick(s).map(|e| (format!("{at}.{name}"), e)),
            (None, Some((at, l))) if order == Order::JwtAfterExtAuth => {
                Some((at.clone(), l.clone()))
            }
            _ => None,
        };
        if let Some((at, ext)) = from_vhost {
            out.push(Arc::new(
                JwtStage::build(&at, order, &ext, runtime, resolve).map_err(err)?,
            ));
        }
    }
    Ok(())
}

/// A referenced resource of `kind`, or an error naming the reference.
fn lookup<'s>(
    set: &'s ResourceSet,
    kind: Kind,
    at: &str,
    r: &ResourceRef,
    ns: &str,
) -> Result<(ResourceKey, &'s Resource), PolicyError> {
    let key = ResourceKey::new(kind, r.namespace_or(ns), &r.name);
    match set.get(&key) {
        Some(res) => Ok((key, res)),
        None => Err(err(format!(
            "{at}: {} `{}` does not exist",
            kind.name(),
            key.name
        ))),
    }
}

/// An AuthConfig's spec compiled, with the Secrets of `set` (also how validation checks one).
pub fn auth_config(res: &Resource, set: &ResourceSet) -> Result<AuthConfig, String> {
    let Resource::AuthConfig(ac) = res else {
        return Err("not an AuthConfig".into());
    };
    let spec: spec::AuthConfigSpec = read("spec", &Value::Object(ac.spec.0.clone()))?;
    AuthConfig::build(&spec, set, res.namespace())
}

/// A RateLimitConfig's spec compiled (also how validation checks one).
pub fn rate_limit_config(res: &Resource) -> Result<Config, String> {
    let Resource::RateLimitConfig(rl) = res else {
        return Err("not a RateLimitConfig".into());
    };
    let spec: spec::RateLimitConfigSpec = read("spec", &Value::Object(rl.spec.0.clone()))?;
    Config::build(&format!("{}/{}", res.namespace(), res.name()), &spec)
}

fn extauth(
    vhost: &Level<'_>,
    route: &Level<'_>,
    set: &ResourceSet,
    runtime: &Arc<Runtime>,
    out: &mut Vec<Arc<dyn Stage>>,
) -> Result<(), PolicyError> {
    let r: Option<(String, spec::ExtAuthExtension)> = route.read("extauth").map_err(err)?;
    let v: Option<(String, spec::ExtAuthExtension)> = vhost.read("extauth").map_err(err)?;
    let (at, ext, ns) = match (&r, &v) {
        (Some((at, e)), _) => (at, e, route.namespace),
        (None, Some((at, e))) => (at, e, vhost.namespace),
        (None, None) => return Ok(()),
    };
    if ext.disable {
        if ext.config_ref.is_some() {
            return Err(err(format!("{at}: both `disable` and `configRef`")));
        }
        return Ok(());
    }
    let Some(cref) = &ext.config_ref else {
        return Err(err(format!("{at}: neither `configRef` nor `disable`")));
    };
    let (key, res) = lookup(set, Kind::AuthConfig, &format!("{at}.configRef"), cref, ns)?;
    let config = auth_config(res, set).map_err(|e| {
        err(format!(
            "{at}.configRef: AuthConfig `{}` is not valid: {e}",
            key.name
        ))
    })?;
    out.push(Arc::new(ExtAuthStage::new(
        format!("{}/{}", key.namespace, key.name),
        Arc::new(config),
        runtime,
    )));
    Ok(())
}

fn local_limit(
    vhost: &Level<'_>,
    route: &Level<'_>,
    runtime: &Arc<Runtime>,
    out: &mut Vec<Arc<dyn Stage>>,
) -> Result<(), PolicyError> {
    let r: Option<(String, spec::RateLimitExtension)> = route.read("ratelimit").map_err(err)?;
    let v: Option<(String, spec::RateLimitExtension)> = vhost.read("ratelimit").map_err(err)?;
    let chosen = match (&r, &v) {
        (Some((at, e)), _) if e.local_ratelimit.is_some() => Some((at, e, route.id)),
        (_, Some((at, e))) if e.local_ratelimit.is_some() => Some((at, e, vhost.id)),
        _ => None,
    };
    if let Some((at, e, id)) = chosen
        && let Some(b) = &e.local_ratelimit
    {
        out.push(Arc::new(
            LocalLimit::build(&format!("{at}.localRatelimit"), id, b, runtime).map_err(err)?,
        ));
    }
    Ok(())
}

/// The RateLimitConfigs an option of `field` names (`rateLimitConfigs` and its staged forms):
/// the route's, else its virtual host's (Envoy: a route's own rate limits replace its virtual
/// host's).
fn config_refs(
    vhost: &Level<'_>,
    route: &Level<'_>,
    field: &str,
    set: &ResourceSet,
) -> Result<Vec<Arc<Config>>, PolicyError> {
    let r: Option<(String, spec::RateLimitConfigRefs)> = route.read(field).map_err(err)?;
    let v: Option<(String, spec::RateLimitConfigRefs)> = vhost.read(field).map_err(err)?;
    let (at, refs, ns) = match (&r, &v) {
        (Some((at, e)), _) if !e.refs.is_empty() => (at, e, route.namespace),
        (_, Some((at, e))) => (at, e, vhost.namespace),
        _ => return Ok(Vec::new()),
    };
    let mut configs = Vec::new();
    for (i, cref) in refs.refs.iter().enumerate() {
        let rat = format!("{at}.refs[{i}]");
        let (key, res) = lookup(set, Kind::RateLimitConfig, &rat, cref, ns)?;
        configs.push(Arc::new(rate_limit_config(res).map_err(|e| {
            err(format!(
                "{rat}: RateLimitConfig `{}` is not valid: {e}",
                key.name
            ))
        })?));
    }
    Ok(configs)
}

/// Global limits: RateLimitConfigs in Gloo's regular stage (`rateLimitConfigs`,
/// `rateLimitRegularConfigs`: after auth) and early stage (`rateLimitEarlyConfigs`: before
/// it), and `ratelimitBasic` (after auth, per user or client address) of the virtual host and
/// of the route, both counted.
fn global_limit(
    vhost: &Level<'_>,
    route: &Level<'_>,
    set: &ResourceSet,
    runtime: &Arc<Runtime>,
    out: &mut Vec<Arc<dyn Stage>>,
) -> Result<(), PolicyError> {
    let early = config_refs(vhost, route, "rateLimitEarlyConfigs", set)?;
    if !early.is_empty() {
        out.push(Arc::new(GlobalLimit::new(early, runtime).early()));
    }
    let mut regular = config_refs(vhost, route, "rateLimitConfigs", set)?;
    regular.extend(config_refs(vhost, route, "rateLimitRegularConfigs", set)?);
    for level in [vhost, route] {
        if let Some((at, basic)) = level
            .read::<spec::IngressRateLimit>("ratelimitBasic")
            .map_err(err)?
        {
            let id = format!("{}|{}", level.namespace, level.id);
            regular.push(Arc::new(Config::basic(&at, &id, &basic).map_err(err)?));
        }
    }
    if !regular.is_empty() {
        out.push(Arc::new(GlobalLimit::new(regular, runtime)));
    }
    Ok(())
}
