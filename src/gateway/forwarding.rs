//! The headers the gateway adds to every request it forwards, as Envoy writes them:
//! `x-forwarded-for` (the client's address after what the client sent), `x-forwarded-proto`
//! (the listener's scheme: `https` on a TLS one) and `x-request-id` (the client's kept, else
//! 128 random bits in hex). Decided here once; each transport writes them through its
//! [`HeaderSink`]: the fast path into the head it is writing, hyper into a `HeaderMap`.

/// Where a transport writes a request's headers (statically dispatched; the fast path's
/// writes into its buffer allocate nothing). Every write adds a header line: the rules that
/// decide what is written (`upstream_request`) never write a name twice unless both values go.
pub trait HeaderSink {
    /// Adds `name` with the value made of `parts` one after the other.
    fn append(&mut self, name: &str, parts: &[&[u8]]);
}

/// What the forwarding headers are made from.
pub struct Forwarding<'a> {
    /// The client's own `x-forwarded-for` (its first value), if it sent one.
    pub previous: Option<&'a [u8]>,
    /// The client's address (the TCP peer).
    pub client_ip: &'a str,
    /// `http`, or `https` on a TLS listener.
    pub scheme: &'static str,
    /// The request already has an `x-request-id` (the client's, kept as it is).
    pub has_request_id: bool,
}

impl Forwarding<'_> {
    /// Writes the forwarding headers, but those `replaced` says the route sets or removes
    /// itself.
    pub fn write(&self, replaced: impl Fn(&str) -> bool, out: &mut impl HeaderSink) {
        if !replaced("x-forwarded-for") {
            match self.previous {
                Some(p) => out.append("x-forwarded-for", &[p, b", ", self.client_ip.as_bytes()]),
                None => out.append("x-forwarded-for", &[self.client_ip.as_bytes()]),
            }
        }
        if !replaced("x-forwarded-proto") {
            out.append("x-forwarded-proto", &[self.scheme.as_bytes()]);
        }
        if !self.has_request_id && !replaced("x-request-id") {
            out.append("x-request-id", &[&request_id()]);
        }
    }
}

/// A new request id: 128 random bits in lower-case hex.
pub fn request_id() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (half, mut word) in out
        .chunks_mut(16)
        .zip([fastrand::u64(..), fastrand::u64(..)])
    {
        for d in half.iter_mut().rev() {
            *d = HEX[(word & 0xf) as usize];
            word >>= 4;
        }
    }
    out
}

/// The fast path's sink: `name: value\r\n` appended to the head being written.
impl HeaderSink for Vec<u8> {
    fn append(&mut self, name: &str, parts: &[&[u8]]) {
        self.extend_from_slice(name.as_bytes());
        self.extend_from_slice(b": ");
        for p in parts {
            self.extend_from_slice(p);
        }
        self.extend_from_slice(b"\r\n");
    }
}

/// Hyper's sink: the header appended; a name or value `http` refuses is left out.
impl HeaderSink for http::HeaderMap {
    fn append(&mut self, name: &str, parts: &[&[u8]]) {
        let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else {
            return;
        };
        let value = match parts {
            [one] => http::HeaderValue::from_bytes(one),
            _ => http::HeaderValue::from_bytes(&parts.concat()),
        };
        if let Ok(v) = value {
            http::HeaderMap::append(self, name, v);
        }
    }
}

/// Hyper's sink for a request made from a client's `HeaderMap`: a header the rules pass on
/// as the client sent it is taken from the client's map as it is (its name and value are
/// reference-counted: no parse, no copy); anything else is appended as by `HeaderMap`'s sink.
pub struct FromClient<'a> {
    pub client: &'a http::HeaderMap,
    pub out: &'a mut http::HeaderMap,
}

impl HeaderSink for FromClient<'_> {
    fn append(&mut self, name: &str, parts: &[&[u8]]) {
        // The very bytes of one of the client's values (same address and length).
        if let [one] = parts
            && let Some((n, v)) = self
                .client
                .iter()
                .find(|(_, v)| std::ptr::eq(v.as_bytes(), *one))
            && n.as_str().eq_ignore_ascii_case(name)
        {
            self.out.append(n.clone(), v.clone());
            return;
        }
        HeaderSink::append(self.out, name, parts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sinks_get_the_same_headers() {
        let f = Forwarding {
            previous: Some(b"10.0.0.1"),
            client_ip: "127.0.0.1",
            scheme: "https",
            has_request_id: true,
        };
        let mut head = Vec::new();
        f.write(|_| false, &mut head);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: https\r\n"
        );
        let mut map = http::HeaderMap::new();
        f.write(|n| n == "x-forwarded-proto", &mut map);
        assert_eq!(map["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert!(map.get("x-forwarded-proto").is_none());
        let id = request_id();
        assert!(
            id.iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(id, request_id());
    }
}
