//! A raw HTTP/1.1 answer as tests compare it: the status line, the headers (names lower-cased,
//! `date` left out: it changes from one answer to the next), the body.
#![allow(dead_code)]

use std::collections::BTreeMap;

pub type Headers = BTreeMap<String, Vec<String>>;

/// Splits `raw` into its status line, headers and body.
pub fn split(raw: &[u8]) -> (String, Headers, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let mut headers = Headers::new();
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        let k = k.trim().to_ascii_lowercase();
        if k != "date" {
            headers.entry(k).or_default().push(v.trim().to_string());
        }
    }
    (status, headers, body.to_string())
}
