//! A tester request as a curl command, to run outside the console (for an https:// URL:
//! trusting the `--ca` file and connecting to the gateway's TLS listener under the URL's name).

use super::send::Saved;
use super::target::{Endpoint, Target};

/// Shell quoting (single quotes).
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The curl command that sends `s` as the tester would, to `ep`.
pub fn curl(s: &Saved, ep: &Endpoint) -> String {
    let args = match Target::resolve(&s.path, ep) {
        Ok(t) => t.curl_args(ep.ca.as_deref()),
        Err(_) => vec![format!("{}{}", ep.url, s.path)],
    };
    let mut out = format!("curl -sS -X {}", s.method);
    for a in args {
        out.push(' ');
        out.push_str(&sq(&a));
    }
    for (k, v) in s.header_pairs() {
        out.push_str(&format!(" -H {}", sq(&format!("{k}: {v}"))));
    }
    if !s.body.is_empty() {
        out.push_str(&format!(" --data {}", sq(&s.body)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint {
            url: "http://127.0.0.1:8080".into(),
            tls: None,
            ca: None,
        }
    }

    #[test]
    fn headers_and_body_are_quoted_for_a_shell() {
        let s = Saved {
            method: "POST".into(),
            path: "/pets?x=1".into(),
            headers: "x-pet: it's; accept: */*".into(),
            body: r#"{"name":"O'Hara"}"#.into(),
        };
        let c = curl(&s, &ep());
        assert_eq!(
            c,
            r#"curl -sS -X POST 'http://127.0.0.1:8080/pets?x=1' -H 'x-pet: it'\''s' -H 'accept: */*' --data '{"name":"O'\''Hara"}'"#
        );
        // A shell reads it back as the same words.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", c.trim_start_matches("curl ")))
            .output()
            .unwrap();
        let words = String::from_utf8(out.stdout).unwrap();
        assert!(words.contains("x-pet: it's\n"), "{words}");
        assert!(words.contains("{\"name\":\"O'Hara\"}\n"), "{words}");
    }

    #[test]
    fn an_https_url_trusts_the_ca_and_connects_to_the_tls_listener() {
        let ep = Endpoint {
            tls: Some("127.0.0.1:8443".parse().unwrap()),
            ca: Some(std::sync::Arc::new(super::super::target::TesterCa {
                path: "/tmp/ca.pem".into(),
                pem: Vec::new(),
            })),
            ..ep()
        };
        let s = Saved {
            method: "GET".into(),
            path: "https://pets.example.com/pets".into(),
            ..Saved::default()
        };
        assert_eq!(
            curl(&s, &ep),
            "curl -sS -X GET '--cacert' '/tmp/ca.pem' '--connect-to' \
             'pets.example.com:443:127.0.0.1:8443' 'https://pets.example.com/pets'"
        );
    }
}
