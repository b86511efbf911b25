//! Discovery of gRPC services (by reflection) and AWS Lambda functions (by `ListFunctions`),
//! and how each result is written into an upstream the way Gloo's discovery writes it:
//! `serviceSpec.grpc` (descriptors and services, with `useHttp2: true`) and
//! `aws.lambdaFunctions`.

use crate::api::resource::Upstream;
use crate::api::{GrpcService, GrpcServiceSpec, LambdaFunctionSpec};
use crate::grpc::reflection::{self, Discovered};
use std::time::Duration;

/// A gRPC server's services, found by reflection at `authority`.
pub async fn grpc(authority: &str, timeout: Duration) -> Result<Discovered, String> {
    reflection::discover(authority, timeout)
        .await
        .map_err(|e| format!("gRPC reflection at {authority}: {e}"))
}

/// A gRPC server's services, found by reflection at `authority` over TLS: the server's
/// certificate verified by `tls` (for the name in `authority`), HTTP/2 agreed by ALPN or, when
/// the server names no protocol, assumed as gRPC servers do.
pub async fn grpc_tls(
    authority: &str,
    tls: crate::tls::client::UpstreamTls,
    timeout: Duration,
) -> Result<Discovered, String> {
    use crate::gateway::dial::{Dial, Sender};
    let fail = |e: String| format!("gRPC reflection at {authority} over TLS: {e}");
    let dial = Dial {
        tls: Some(tls),
        http2: true,
        id: 0,
    };
    let send = match dial.connect(authority, true).await {
        Ok(Sender::H2(s)) => s,
        Ok(Sender::H1(_)) => {
            return Err(fail(
                "the server chose HTTP/1.1 by ALPN; gRPC needs HTTP/2".into(),
            ));
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    reflection::discover_on(send, authority, timeout)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// The `serviceSpec.grpc` that reflection's answer makes.
pub fn grpc_spec(found: &Discovered) -> GrpcServiceSpec {
    use base64::Engine;
    use prost::Message;
    GrpcServiceSpec {
        descriptors: base64::engine::general_purpose::STANDARD
            .encode(found.descriptors.encode_to_vec()),
        grpc_services: found
            .services
            .iter()
            .map(|s| GrpcService {
                package_name: s.package.clone(),
                service_name: s.name.clone(),
                function_names: s.methods.clone(),
                extra: Default::default(),
            })
            .collect(),
        extra: Default::default(),
    }
}

/// The upstream with the gRPC services written in (and `useHttp2`), if that changes it.
pub fn with_grpc(u: &Upstream, found: &Discovered) -> Result<Option<Upstream>, String> {
    let mut next = u.clone();
    next.spec.use_http2 = Some(true);
    let spec = next
        .spec
        .service_spec_mut()
        .ok_or("the upstream type has no service spec")?;
    let mut grpc = grpc_spec(found);
    // What the user added beside Gloo's fields stays.
    if let Some(old) = &spec.grpc {
        grpc.extra = old.extra.clone();
    }
    spec.grpc = Some(grpc);
    Ok((next != *u).then_some(next))
}

/// The functions `ListFunctions` gave, as Gloo names them: the name for `$LATEST`,
/// `name:version` for a published version; sorted by logical name.
pub fn lambda_functions(listed: &[crate::aws::Listed]) -> Vec<LambdaFunctionSpec> {
    let mut out: Vec<LambdaFunctionSpec> = listed
        .iter()
        .map(|f| LambdaFunctionSpec {
            logical_name: if f.version == "$LATEST" {
                f.name.clone()
            } else {
                format!("{}:{}", f.name, f.version)
            },
            lambda_function_name: f.name.clone(),
            qualifier: f.version.clone(),
            extra: Default::default(),
        })
        .collect();
    out.sort_by(|a, b| a.logical_name.cmp(&b.logical_name));
    out
}

/// The upstream with its Lambda functions replaced, if that changes it.
pub fn with_lambda(u: &Upstream, functions: Vec<LambdaFunctionSpec>) -> Option<Upstream> {
    let mut next = u.clone();
    next.spec.aws.as_mut()?.lambda_functions = functions;
    (next != *u).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Listed;

    #[test]
    fn lambda_functions_are_named_as_gloo_names_them() {
        let listed = [
            Listed {
                name: "uppercase".into(),
                version: "2".into(),
            },
            Listed {
                name: "uppercase".into(),
                version: "$LATEST".into(),
            },
            Listed {
                name: "echo".into(),
                version: "$LATEST".into(),
            },
        ];
        let got: Vec<(String, String, String)> = lambda_functions(&listed)
            .into_iter()
            .map(|f| (f.logical_name, f.lambda_function_name, f.qualifier))
            .collect();
        let want = [
            ("echo", "echo", "$LATEST"),
            ("uppercase", "uppercase", "$LATEST"),
            ("uppercase:2", "uppercase", "2"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(got, want);
    }
}
