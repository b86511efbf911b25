//! Credentials for the tester (`:auth`): a bearer token, basic credentials or an API key put
//! in the request's headers field, so that a protected route can be tried with and without
//! them; and, on a response a policy refused, why (the gateway's reason, its challenge or the
//! rate limit's headers).

use super::tester::TesterResponse;
use base64::Engine as _;

/// The headers `:auth` sets or clears: what any of its forms may have set before.
const AUTH_HEADERS: [&str; 3] = ["authorization", "api-key", "x-api-key"];
/// Gloo's default API key header (`apiKeyAuth.headerName`).
const KEY_HEADER: &str = "api-key";

/// What `:auth` takes, for its help and errors.
pub const USAGE: &str = "auth bearer TOKEN | basic USER:PASSWORD | key KEY [HEADER] | none";

/// The tester's headers field (`name: value; ...`) with the credentials `spec` asks for in
/// place of any set before, and what was done; an error says what `spec` should be.
pub fn attach(headers: &str, spec: &str) -> Result<(String, String), String> {
    let mut words = spec.split_whitespace();
    let kind = words.next().unwrap_or("");
    let value = words.next();
    let extra = words.next();
    let (header, value, said) = match (kind, value, extra) {
        ("bearer", Some(token), None) => (
            "authorization".to_string(),
            format!("Bearer {token}"),
            "bearer token attached".to_string(),
        ),
        ("basic", Some(userpass), None) => {
            let Some((user, _)) = userpass.split_once(':') else {
                return Err(format!("basic credentials are USER:PASSWORD ({USAGE})"));
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(userpass);
            (
                "authorization".to_string(),
                format!("Basic {b64}"),
                format!("basic credentials of `{user}` attached"),
            )
        }
        ("key", Some(key), header) => {
            let h = header.unwrap_or(KEY_HEADER).to_ascii_lowercase();
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(format!("`{h}` is not a header name"));
            }
            let said = format!("API key attached in `{h}`");
            (h, key.to_string(), said)
        }
        ("none", None, None) => (String::new(), String::new(), "credentials removed".into()),
        _ => return Err(format!("usage: {USAGE}")),
    };
    if http::HeaderValue::from_str(&value).is_err() {
        return Err("the credentials are not a valid header value".into());
    }
    let mut kept: Vec<String> = headers
        .split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .filter(|h| {
            let name = h.split_once(':').map_or(*h, |(n, _)| n).trim();
            !AUTH_HEADERS.iter().any(|a| name.eq_ignore_ascii_case(a))
                && !name.eq_ignore_ascii_case(&header)
        })
        .map(str::to_string)
        .collect();
    if !header.is_empty() {
        kept.push(format!("{header}: {value}"));
    }
    Ok((kept.join("; "), said))
}

/// Why a refused response (401, 403, 429) was refused: the reason in its body, and the
/// challenge (`www-authenticate`) or the rate limit's reset. None for other statuses.
pub fn why(r: &TesterResponse) -> Option<String> {
    if !matches!(r.status, 401 | 403 | 429) {
        return None;
    }
    let header = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    let reason = r.body.lines().next().unwrap_or("").trim();
    let mut out = format!(
        "refused: {}",
        if reason.is_empty() {
            "(no reason given)"
        } else {
            reason
        }
    );
    if let Some(c) = header("www-authenticate") {
        out.push_str(&format!(" · challenge {c}"));
    }
    if r.status == 429 {
        if header("x-envoy-ratelimited").is_some() {
            out.push_str(" · rate limited by the gateway");
        }
        if let Some(reset) = header("x-ratelimit-reset") {
            out.push_str(&format!(", resets in {reset}s"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_replaces_credentials_and_keeps_other_headers() {
        let (h, said) =
            attach("host: pets; authorization: Bearer old", "basic ann:s3cret").unwrap();
        assert_eq!(h, "host: pets; authorization: Basic YW5uOnMzY3JldA==");
        assert_eq!(said, "basic credentials of `ann` attached");
        let (h, _) = attach(&h, "key k-123").unwrap();
        assert_eq!(
            h, "host: pets; api-key: k-123",
            "one kind of credentials at a time"
        );
        let (h, _) = attach(&h, "key k-9 X-Token").unwrap();
        assert_eq!(h, "host: pets; x-token: k-9");
        let (h, _) = attach(&h, "bearer eyJ.a.b").unwrap();
        assert_eq!(h, "host: pets; x-token: k-9; authorization: Bearer eyJ.a.b");
        let (h, said) = attach("host: pets; api-key: k; authorization: x", "none").unwrap();
        assert_eq!(
            (h.as_str(), said.as_str()),
            ("host: pets", "credentials removed")
        );
        for bad in [
            "",
            "basic nocolon",
            "bearer",
            "digest x",
            "key k bad:header",
        ] {
            assert!(attach("", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn why_a_response_was_refused() {
        let resp = |status: u16, headers: &[(&str, &str)], body: &str| TesterResponse {
            received: std::time::SystemTime::UNIX_EPOCH,
            status,
            reason: String::new(),
            elapsed: std::time::Duration::ZERO,
            size: body.len(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        };
        assert_eq!(
            why(&resp(
                401,
                &[("www-authenticate", "Bearer realm=\"x\"")],
                "jwt (p): expired\n"
            )),
            Some("refused: jwt (p): expired · challenge Bearer realm=\"x\"".into())
        );
        assert_eq!(
            why(&resp(
                429,
                &[("x-envoy-ratelimited", "true"), ("x-ratelimit-reset", "42")],
                "ratelimited\n"
            )),
            Some("refused: ratelimited · rate limited by the gateway, resets in 42s".into())
        );
        assert_eq!(why(&resp(200, &[], "ok")), None);
    }
}
