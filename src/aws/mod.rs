//! AWS Lambda: credentials (a Secret's keys, else the environment's), the endpoint (the SDKs'
//! `AWS_ENDPOINT_URL_LAMBDA` / `AWS_ENDPOINT_URL`, else the region's), Signature V4 signing
//! (`aws-sigv4`), and the two calls epoxy makes: `Invoke` and `ListFunctions`.

use bytes::Bytes;
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use std::time::{Duration, SystemTime};

/// The largest Lambda answer read: Lambda's own limit on a synchronous payload is 6 MB.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// Keys to sign with.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS credentials: {0}")]
    NoCredentials(String),
    #[error("signing: {0}")]
    Signing(String),
    #[error("{0}: cannot reach the endpoint: {1}")]
    Unreachable(String, String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// AWS refused the call (its status and message).
    #[error("AWS answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the answer is not what AWS sends: {0}")]
    Protocol(String),
}

impl Credentials {
    /// The environment's keys (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally
    /// `AWS_SESSION_TOKEN`), as the AWS SDKs read them first.
    pub fn from_env() -> Result<Credentials, AwsError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
                access_key_id,
                secret_access_key,
                session_token: get("AWS_SESSION_TOKEN"),
            }),
            _ => Err(AwsError::NoCredentials(
                "the upstream names no secretRef and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set".into(),
            )),
        }
    }
}

/// The Secret keys Gloo's AWS secrets carry (`glooctl create secret aws`).
pub const SECRET_KEY_ID: &str = "aws_access_key_id";
pub const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
pub const SECRET_SESSION_TOKEN: &str = "session_token";

/// The credentials an AWS upstream (in namespace `ns`) signs with: its Secret's
/// (`secretRef`), else the environment's.
pub fn upstream_credentials(
    aws: &crate::api::AwsUpstream,
    set: &crate::api::ResourceSet,
    ns: &str,
) -> Result<Credentials, AwsError> {
    let Some(r) = &aws.secret_ref else {
        return Credentials::from_env();
    };
    let data = crate::api::secret::secret_data(set, r, ns)
        .map_err(|e| AwsError::NoCredentials(format!("secretRef: {e}")))?;
    let text = |k: &str| -> Result<Option<String>, AwsError> {
        data.get(k)
            .map(|v| {
                String::from_utf8(v.clone())
                    .map(|t| t.trim().to_string())
                    .map_err(|_| {
                        AwsError::NoCredentials(format!("secret `{}`: `{k}` is not text", r.name))
                    })
            })
            .transpose()
    };
    let need = |k: &str| -> Result<String, AwsError> {
        text(k)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AwsError::NoCredentials(format!("secret `{}` has no `{k}`", r.name)))
    };
    Ok(Credentials {
        access_key_id: need(SECRET_KEY_ID)?,
        secret_access_key: need(SECRET_ACCESS_KEY)?,
        session_token: text(SECRET_SESSION_TOKEN)?.filter(|t| !t.is_empty()),
    })
}

/// Where Lambda is reached for `region`: `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`
/// (the SDKs' convention, which LocalStack and tests use), else the region's public endpoint.
pub fn lambda_endpoint(region: &str) -> String {
    ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .map(|v| v.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://lambda.{region}.amazonaws.com"))
}

/// Signs `req` for `service` in `region`: `x-amz-date`, `authorization` (and
/// `x-amz-security-token`) added; `host` set from the URI first, as it is signed.
pub fn sign(
    req: &mut Request<Full<Bytes>>,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
) -> Result<(), AwsError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| AwsError::Signing("the endpoint has no host".into()))?;
    let host = HeaderValue::from_str(&host).map_err(|e| AwsError::Signing(e.to_string()))?;
    req.headers_mut().insert(http::header::HOST, host);
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "epoxy",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| AwsError::Signing(e.to_string()))?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| AwsError::Signing(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| AwsError::Signing(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

type Client = crate::net::Client<Full<Bytes>>;

thread_local! {
    /// A worker's client for AWS (connections kept, TLS for AWS's own endpoints).
    static CLIENT: Client = crate::net::client();
}

/// What Lambda answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `X-Amz-Function-Error`: the function failed (`Unhandled`, `Handled`).
    pub function_error: Option<String>,
    pub payload: Bytes,
}

/// Sends a signed request and reads the answer.
async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    creds: &Credentials,
    region: &str,
    timeout: Duration,
) -> Result<Answer, AwsError> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req
        .body(Full::new(body.clone()))
        .map_err(|e| AwsError::Signing(format!("{url}: {e}")))?;
    sign(&mut req, &body, creds, region, "lambda")?;
    let client = CLIENT.with(Clone::clone);
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| AwsError::Unreachable(url.to_string(), crate::cause::root_cause(&e)))?;
        let status = resp.status().as_u16();
        let function_error = resp
            .headers()
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let payload = Limited::new(resp.into_body(), MAX_PAYLOAD)
            .collect()
            .await
            .map_err(|e| AwsError::Protocol(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(Answer {
            status,
            function_error,
            payload,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| AwsError::Timeout(timeout))?
}

/// AWS's error message in a refused call's body (`{"message": ...}` or `{"Message": ...}`).
fn refused(a: &Answer) -> AwsError {
    let v: serde_json::Value = serde_json::from_slice(&a.payload).unwrap_or_default();
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&a.payload).into_owned());
    AwsError::Refused {
        status: a.status,
        message,
    }
}

/// One function to invoke.
#[derive(Debug, Clone)]
pub struct Function {
    pub endpoint: String,
    pub region: String,
    pub name: String,
    pub qualifier: Option<String>,
}

/// Percent-encodes a path segment or query value as SigV4 canonicalizes it.
fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Lambda's `Invoke`: synchronous (`RequestResponse`) or asynchronous (`Event`). A function
/// error is an `Answer` with `function_error`; AWS refusing the call is an error.
pub async fn invoke(
    f: &Function,
    payload: Bytes,
    asynchronous: bool,
    creds: &Credentials,
    timeout: Duration,
) -> Result<Answer, AwsError> {
    let mut url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        f.endpoint,
        encode(&f.name)
    );
    if let Some(q) = f.qualifier.as_deref().filter(|q| !q.is_empty()) {
        url.push_str("?Qualifier=");
        url.push_str(&encode(q));
    }
    let style = if asynchronous {
        "Event"
    } else {
        "RequestResponse"
    };
    let headers = [
        ("x-amz-invocation-type", style),
        ("content-type", "application/json"),
    ];
    let a = send(
        Method::POST,
        &url,
        &headers,
        payload,
        creds,
        &f.region,
        timeout,
    )
    .await?;
    if (200..300).contains(&a.status) {
        Ok(a)
    } else {
        Err(refused(&a))
    }
}

/// A function `ListFunctions` names: its name and version.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub name: String,
    pub version: String,
}

/// Lambda's `ListFunctions` (every version), page after page.
pub async fn list_functions(
    endpoint: &str,
    region: &str,
    creds: &Credentials,
    timeout: Duration,
) -> Result<Vec<Listed>, AwsError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    // A bound on pages, so a server that repeats its marker cannot loop discovery forever.
    for _ in 0..10_000 {
        let mut url = format!("{endpoint}/2015-03-31/functions/?FunctionVersion=ALL");
        if let Some(m) = &marker {
            url.push_str("&Marker=");
            url.push_str(&encode(m));
        }
        let a = send(Method::GET, &url, &[], Bytes::new(), creds, region, timeout).await?;
        if !(200..300).contains(&a.status) {
            return Err(refused(&a));
        }
        let page: serde_json::Value = serde_json::from_slice(&a.payload)
            .map_err(|e| AwsError::Protocol(format!("ListFunctions: {e}")))?;
        let functions = page
            .get("Functions")
            .and_then(|f| f.as_array())
            .ok_or_else(|| AwsError::Protocol("ListFunctions: no `Functions` list".into()))?;
        for f in functions {
            let name = f.get("FunctionName").and_then(|n| n.as_str());
            let version = f
                .get("Version")
                .and_then(|n| n.as_str())
                .unwrap_or("$LATEST");
            if let Some(name) = name {
                out.push(Listed {
                    name: name.to_string(),
                    version: version.to_string(),
                });
            }
        }
        marker = page
            .get("NextMarker")
            .and_then(|m| m.as_str())
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        if marker.is_none() {
            return Ok(out);
        }
    }
    Err(AwsError::Protocol(
        "ListFunctions: more than 10,000 pages".into(),
    ))
}
