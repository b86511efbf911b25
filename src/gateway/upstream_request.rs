//! The request sent upstream, decided once for both transports: its method, target and body
//! (a function's call rendered, the route's rewrites) and its headers (hop-by-hop ones
//! dropped, the function's, the stages' and the route's rules, framing, `Host`, the
//! forwarding headers). The fast path writes the headers into the head it is building, hyper
//! into a fresh `HeaderMap`; both through a [`HeaderSink`].

use super::forwarding::{Forwarding, HeaderSink};
use super::function::{FunctionCall, RenderedCall};
use super::matcher::{Headers, PathCond};
use super::pipeline::Edits;
use super::table::Options;
use http::StatusCode;
use smallvec::SmallVec;
use std::borrow::Cow;

/// Headers that describe one connection, not the request (RFC 9110, 7.6.1): never forwarded
/// as they came, on requests or responses.
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-authenticate",
];

/// Whether a header name (or token) is `lower`, ignoring ASCII case.
#[inline]
pub fn is<N: AsRef<[u8]> + ?Sized>(name: &N, lower: &str) -> bool {
    name.as_ref().eq_ignore_ascii_case(lower.as_bytes())
}

/// Whether `name` is one of [`HOP_BY_HOP`].
#[inline]
pub fn hop_by_hop<N: AsRef<[u8]> + ?Sized>(name: &N) -> bool {
    HOP_BY_HOP.iter().any(|h| is(name, h))
}

/// The tokens of a `connection` (or `te`) header's value: for `connection`, the names that
/// are hop-by-hop too.
pub fn connection_tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    super::matcher::visible_ascii(value)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The client's request as either transport holds it.
pub struct ClientRequest<'a> {
    pub method: &'a str,
    /// The path and query, as the client sent them.
    pub target: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The host the client named in its target (absolute form, HTTP/2's `:authority`): it
    /// stands for the client's `Host` (RFC 9112, 3.2.2).
    pub authority: Option<&'a str>,
    pub headers: Headers<'a>,
    /// The body when it is read whole (empty when it is streamed).
    pub body: &'a [u8],
}

/// Why a request cannot be sent: the client's answer.
pub type Refusal = (StatusCode, &'static str, String);

/// The upstream request's method, target and body.
pub struct Planned<'a> {
    client: &'a ClientRequest<'a>,
    /// The function's call, when the destination is one.
    pub call: Option<RenderedCall>,
    /// The target when it is not the client's: the call's own path is used as it is (no
    /// copy); a path the call renders without its leading `/`, or the route's rewrite, here.
    rewritten: Option<String>,
    renders_path: bool,
}

impl<'a> Planned<'a> {
    /// Decides the method, target and body: a function's rendering (which sees the headers
    /// that go upstream, with the stages' edits made: a claim set as a header is a variable of
    /// the call, a client's own value of it or a removed token is not), else the route's
    /// prefix or regex rewrite. A target that cannot go on a request line is refused.
    pub fn new(
        client: &'a ClientRequest<'a>,
        opts: &Options,
        matched: &PathCond,
        function: Option<&FunctionCall>,
        edits: Option<&Edits>,
    ) -> Result<Planned<'a>, Refusal> {
        let call = match function {
            None => None,
            Some(f) => {
                let seen = function_view(client, edits);
                let rendered = match &seen {
                    Some(v) => f.render(client.target, Headers::Raw(v), client.body),
                    None => f.render(client.target, client.headers, client.body),
                };
                match rendered {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let (status, code, message) = e.answer(&f.name);
                        return Err((status, code, message));
                    }
                }
            }
        };
        let rendered_path = call.as_ref().and_then(|c| c.path.as_deref());
        let (rewritten, renders_path) = match rendered_path {
            Some(p) if p.starts_with('/') => (None, true),
            Some(p) => (Some(format!("/{p}")), false),
            None => (rewritten(client, opts, matched), false),
        };
        let planned = Planned {
            client,
            call,
            rewritten,
            renders_path,
        };
        // A rewritten or rendered target goes on the request line as it is: it must be one.
        if (planned.rewritten.is_some() || planned.call.is_some())
            && !request_target(planned.path_and_query())
        {
            let msg = format!(
                "cannot build the upstream URI from `{}`",
                planned.path_and_query().escape_debug()
            );
            return Err((StatusCode::BAD_REQUEST, "bad-request", msg));
        }
        Ok(planned)
    }

    /// The method sent: a function's, when it names a valid one, else the client's.
    pub fn method(&self) -> &str {
        self.call
            .as_ref()
            .and_then(|c| c.method.as_deref())
            .filter(|m| http::Method::from_bytes(m.as_bytes()).is_ok())
            .unwrap_or(self.client.method)
    }

    /// The path and query sent.
    pub fn path_and_query(&self) -> &str {
        let rendered = || self.call.as_ref().and_then(|c| c.path.as_deref());
        match (&self.rewritten, self.renders_path) {
            (Some(r), _) => r,
            (None, true) => rendered().unwrap_or(self.client.target),
            (None, false) => self.client.target,
        }
    }

    /// The body a function's call replaces the client's with, if it does.
    pub fn function_body(&self) -> Option<&[u8]> {
        self.call
            .as_ref()
            .and_then(|c| c.body.as_deref())
            .map(str::as_bytes)
    }
}

/// The headers a function's templates see, when they differ from the client's: without the
/// hop-by-hop ones, the target's authority as `host`, with the stages' edits made.
fn function_view<'a>(
    client: &ClientRequest<'a>,
    edits: Option<&'a Edits>,
) -> Option<SmallVec<[httparse::Header<'a>; 16]>> {
    let headers = client.headers;
    if edits.is_none() && client.authority.is_none() && !headers.iter().any(|(n, _)| hop_by_hop(n))
    {
        return None;
    }
    let authority = client.authority.map(|a| ("host", a.as_bytes()));
    let from_stages = edits.into_iter().flat_map(|e| &e.request_set);
    let kept = headers.iter().filter(|(n, _)| {
        let replaced = (authority.is_some() && is(*n, "host"))
            || edits.is_some_and(|e| e.replaces_request(n.as_bytes()));
        !(hop_by_hop(*n) || replaced)
    });
    Some(
        authority
            .into_iter()
            .chain(kept)
            .chain(from_stages.map(|(n, v)| (n.as_str(), v.as_bytes())))
            .map(|(name, value)| httparse::Header { name, value })
            .collect(),
    )
}

/// The path and query after the route's prefix or regex rewrite, if it has one.
fn rewritten(client: &ClientRequest<'_>, opts: &Options, matched: &PathCond) -> Option<String> {
    let mut p = if let Some(rw) = &opts.prefix_rewrite {
        rewrite_prefix(client.path, matched, rw)
    } else if let Some((re, sub)) = &opts.regex_rewrite {
        re.replace_all(client.path, sub.as_str()).into_owned()
    } else {
        return None;
    };
    if let Some(q) = client.query {
        p.push('?');
        p.push_str(q);
    }
    Some(p)
}

/// Envoy's prefix rewrite: the matched prefix (or the whole path, for exact and regex) is
/// replaced by `rewrite`.
pub fn rewrite_prefix(path: &str, matched: &PathCond, rewrite: &str) -> String {
    match matched {
        PathCond::Prefix(p) if path.len() >= p.len() => format!("{rewrite}{}", &path[p.len()..]),
        _ => rewrite.to_string(),
    }
}

/// Envoy writes `\1` for a capture group; the regex crate writes `${1}`.
pub fn envoy_substitution(s: &str) -> Cow<'_, str> {
    if !s.contains(['\\', '$']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let d = chars.next().unwrap_or('0');
            out.push_str("${");
            out.push(d);
            out.push('}');
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `t` is an origin-form request target the `http` crate would take as it is: ASCII,
/// the same bytes allowed in the path and in the query, no fragment, under its length limit.
/// (The fast path hands any other target to hyper, which refuses it or drops the fragment.)
pub fn request_target(t: &str) -> bool {
    fn path_byte(b: u8) -> bool {
        matches!(b, 0x21..=0x22 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7E)
    }
    fn query_byte(b: u8) -> bool {
        matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E)
    }
    let (path, query) = t.split_once('?').unwrap_or((t, ""));
    t.starts_with('/')
        && t.len() < u16::MAX as usize
        && path.bytes().all(path_byte)
        && query.bytes().all(query_byte)
}

/// Everything the upstream request's headers are made from, but the client's headers.
pub struct HeaderRules<'a> {
    pub method: &'a str,
    pub opts: &'a Options,
    pub call: Option<&'a RenderedCall>,
    pub edits: Option<&'a Edits>,
    /// The body's length when the gateway frames it (`content-length`); `None` when the
    /// transport streams the client's body and frames it itself.
    pub body_len: Option<usize>,
    /// The client's address (the TCP peer).
    pub client_ip: &'a str,
    /// `http`, or `https` on a TLS listener.
    pub scheme: &'static str,
    /// The protocol of a WebSocket upgrade the route lets through (hyper's alone: the fast
    /// path hands upgrades to it).
    pub upgrade: Option<&'a [u8]>,
}

/// The host the route names instead of the client's: `hostRewrite`, or the endpoint's for
/// `autoHostRewrite`.
fn rewritten_host<'a>(opts: &'a Options, endpoint_authority: &'a str) -> Option<&'a [u8]> {
    match &opts.host_rewrite {
        Some(h) => Some(h.as_bytes()),
        None if opts.auto_host_rewrite => Some(endpoint_authority.as_bytes()),
        None => None,
    }
}

impl HeaderRules<'_> {
    /// Writes the upstream request's headers, in this order and with these precedences:
    /// the client's (and the function's, which replace them) without the hop-by-hop ones or
    /// those a later rule replaces; `te: trailers` and a WebSocket upgrade, kept;
    /// `content-length` for the body sent; the rewritten host; the forwarding headers; the
    /// stages' headers; the route's additions; and `Host` of last resort. The stages' and the
    /// route's rules win over what comes before them, the route's over the stages'.
    /// `endpoint` is the address this attempt goes to (the `Host` of last resort) and its
    /// authority as `autoHostRewrite` names it.
    pub fn write(
        &self,
        client: &ClientRequest<'_>,
        (endpoint, endpoint_authority): (&str, &str),
        out: &mut impl HeaderSink,
    ) {
        let opts = self.opts;
        let rewritten_host = rewritten_host(opts, endpoint_authority);
        let edits = self.edits;
        let route_replaces = |name: &str| {
            opts.request_remove.iter().any(|n| is(name, n.as_str()))
                || opts
                    .request_add
                    .iter()
                    .any(|a| !a.append && is(name, a.name.as_str()))
        };
        let by_route = |name: &str| {
            edits.is_some_and(|e| e.replaces_request(name.as_bytes())) || route_replaces(name)
        };
        // Values `HeaderValue` would refuse are left out, whichever transport writes them.
        let valid = |v: &str| v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        let by_function = |name: &str| {
            self.call.is_some_and(|c| {
                c.remove_headers.iter().any(|n| is(name, n.as_str()))
                    || c.set_headers
                        .iter()
                        .any(|(n, v)| is(name, n.as_str()) && valid(v))
            })
        };
        // Framing is the gateway's to write: neither the client, a function nor the route
        // sets it.
        let framing = |name: &str| hop_by_hop(name) || is(name, "content-length");
        let managed = |name: &str| framing(name) || is(name, "x-forwarded-proto");
        // A name the client's `connection` header lists is hop-by-hop too (RFC 9110, 7.6.1).
        let lists = client.headers.iter().any(|(n, _)| is(n, "connection"));
        let listed = |name: &str| {
            lists
                && client
                    .headers
                    .iter()
                    .filter(|(n, _)| is(*n, "connection"))
                    .flat_map(|(_, v)| connection_tokens(v))
                    .any(|t| is(name, t))
        };
        let mut w = Copier {
            out,
            by_route: &by_route,
            host_rewritten: rewritten_host.is_some(),
            previous_xff: None,
            has_host: false,
            has_request_id: false,
        };
        if let Some(a) = client.authority
            && !by_function("host")
        {
            w.header("host", a.as_bytes());
        }
        let mut te_trailers = false;
        for (name, value) in client.headers.iter() {
            if is(name, "te") {
                te_trailers |= connection_tokens(value).any(|t| is(t, "trailers"));
            }
            if managed(name)
                || by_function(name)
                || (client.authority.is_some() && is(name, "host"))
                || listed(name)
            {
                continue;
            }
            w.header(name, value);
        }
        if let Some(c) = self.call {
            for (n, v) in &c.set_headers {
                if !managed(n.as_str()) && valid(v) {
                    w.header(n.as_str(), v.as_bytes());
                }
            }
        }
        let Copier {
            out,
            previous_xff,
            mut has_host,
            has_request_id,
            ..
        } = w;
        // `te: trailers` goes on (the one TE HTTP/2 allows, RFC 9113 8.2.2; Envoy keeps it):
        // gRPC servers refuse calls without it.
        if te_trailers {
            out.append("te", &[b"trailers"]);
        }
        if let Some(protocol) = self.upgrade {
            out.append("connection", &[b"upgrade"]);
            out.append("upgrade", &[protocol]);
        }
        match self.body_len {
            Some(n) if n > 0 || matches!(self.method, "POST" | "PUT" | "PATCH") => {
                let mut digits = itoa::Buffer::new();
                out.append("content-length", &[digits.format(n).as_bytes()]);
            }
            _ => {}
        }
        if let Some(h) = rewritten_host
            && !by_route("host")
        {
            out.append("host", &[h]);
            has_host = true;
        }
        Forwarding {
            previous: previous_xff,
            client_ip: self.client_ip,
            scheme: self.scheme,
            has_request_id,
        }
        .write(by_route, out);
        let from_stages = edits.into_iter().flat_map(|e| &e.request_set);
        for (n, v) in
            from_stages.filter(|(n, _)| !managed(n.as_str()) && !route_replaces(n.as_str()))
        {
            has_host |= n == http::header::HOST;
            out.append(n.as_str(), &[v.as_bytes()]);
        }
        for a in opts
            .request_add
            .iter()
            .filter(|a| !framing(a.name.as_str()))
        {
            has_host |= a.name == http::header::HOST;
            out.append(a.name.as_str(), &[a.value.as_bytes()]);
        }
        if !has_host {
            // Every HTTP/1.1 request names a host; the route removed the client's.
            out.append("host", &[endpoint.as_bytes()]);
        }
    }
}

/// Copies the client's (and the function's) headers, remembering what the later steps need.
struct Copier<'o, 'v, S, F: Fn(&str) -> bool> {
    out: &'o mut S,
    by_route: &'o F,
    host_rewritten: bool,
    previous_xff: Option<&'v [u8]>,
    has_host: bool,
    has_request_id: bool,
}

impl<'v, S: HeaderSink, F: Fn(&str) -> bool> Copier<'_, 'v, S, F> {
    fn header(&mut self, name: &str, value: &'v [u8]) {
        if is(name, "host") {
            if self.host_rewritten {
                return;
            }
            self.has_host |= !(self.by_route)(name);
        }
        if is(name, "x-forwarded-for") {
            // The first value the client (or a function) gave, if it is one a header can carry.
            if self.previous_xff.is_none() {
                self.previous_xff = super::matcher::visible_ascii(value).map(str::as_bytes);
            }
            return;
        }
        if is(name, "x-request-id") {
            self.has_request_id = true;
        }
        if (self.by_route)(name) {
            return;
        }
        self.out.append(name, &[value]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::table::HeaderAdd;
    use http::{HeaderMap, HeaderName, HeaderValue};

    fn raw(text: &'static str) -> Vec<httparse::Header<'static>> {
        text.lines()
            .map(|l| {
                let (name, value) = l.split_once(": ").unwrap();
                httparse::Header {
                    name,
                    value: value.as_bytes(),
                }
            })
            .collect()
    }

    fn map_of(headers: &[httparse::Header<'_>]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for h in headers {
            m.append(
                HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        m
    }

    fn client<'a>(headers: Headers<'a>, authority: Option<&'a str>) -> ClientRequest<'a> {
        ClientRequest {
            method: "POST",
            target: "/pets?x=1",
            path: "/pets",
            query: Some("x=1"),
            authority,
            headers,
            body: b"abc",
        }
    }

    /// The header lines a rule set writes, in order, through each transport's sink, from the
    /// client's headers as each transport holds them.
    fn written(
        rules: &HeaderRules<'_>,
        headers: &[httparse::Header<'_>],
        authority: Option<&str>,
    ) -> Vec<String> {
        let mut head = Vec::new();
        let endpoint = ("10.1.1.1:8080", "svc.internal:8080");
        rules.write(
            &client(Headers::Raw(headers), authority),
            endpoint,
            &mut head,
        );
        // A request id the gateway makes is random: its shape is compared, not its value.
        let made = |line: String| match line.strip_prefix("x-request-id: ") {
            Some(id) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                "x-request-id: <made>".to_string()
            }
            _ => line,
        };
        let from_head: Vec<String> = String::from_utf8(head)
            .unwrap()
            .lines()
            .map(|l| made(l.to_string()))
            .collect();
        let map = map_of(headers);
        let mut out = HeaderMap::new();
        rules.write(&client(Headers::Map(&map), authority), endpoint, &mut out);
        let mut from_map: Vec<String> = out
            .iter()
            .map(|(n, v)| made(format!("{n}: {}", v.to_str().unwrap())))
            .collect();
        // Hyper's sink that shares the client's own names and values: the same headers.
        let mut shared = HeaderMap::new();
        let mut sink = crate::gateway::forwarding::FromClient {
            client: &map,
            out: &mut shared,
        };
        rules.write(&client(Headers::Map(&map), authority), endpoint, &mut sink);
        let mut from_shared: Vec<String> = shared
            .iter()
            .map(|(n, v)| made(format!("{n}: {}", v.to_str().unwrap())))
            .collect();
        let mut sorted = from_head.clone();
        sorted.sort();
        from_map.sort();
        from_shared.sort();
        assert_eq!(sorted, from_map, "the two sinks disagree");
        assert_eq!(
            from_map, from_shared,
            "sharing the client's values changed them"
        );
        from_head
    }

    fn options() -> Options {
        let add = |name: &'static str, value: &'static str, append: bool| HeaderAdd {
            name: HeaderName::from_static(name),
            value: HeaderValue::from_static(value),
            append,
        };
        Options {
            request_remove: vec![HeaderName::from_static("x-secret")],
            request_add: vec![add("x-app", "route", true), add("x-route", "route", false)],
            ..Default::default()
        }
    }

    #[test]
    fn one_rule_set_writes_the_same_headers_through_both_sinks() {
        let headers = raw("host: client.test\r\n\
connection: keep-alive, x-hop\r\n\
x-hop: 1\r\n\
te: trailers\r\n\
keep-alive: 5\r\n\
content-length: 3\r\n\
x-forwarded-for: 10.0.0.1\r\n\
x-forwarded-proto: https\r\n\
x-secret: s\r\n\
x-claim: forged\r\n\
authorization: Bearer t\r\n\
x-fn: client\r\n\
x-route: client\r\n\
x-app: mine\r\n\
x-request-id: given");
        let opts = options();
        let edits = Edits {
            request_set: [(
                HeaderName::from_static("x-claim"),
                HeaderValue::from_static("alice"),
            )]
            .into_iter()
            .collect(),
            request_remove: [http::header::AUTHORIZATION].into_iter().collect(),
            ..Default::default()
        };
        let call = RenderedCall {
            method: None,
            path: None,
            set_headers: vec![(HeaderName::from_static("x-fn"), "function".into())],
            remove_headers: vec![],
            body: None,
        };
        let rules = HeaderRules {
            method: "POST",
            opts: &opts,
            call: Some(&call),
            edits: Some(&edits),
            body_len: Some(3),
            client_ip: "127.0.0.1",
            scheme: "https",
            upgrade: None,
        };
        assert_eq!(
            written(&rules, &headers, None),
            [
                "host: client.test",
                "x-app: mine",
                "x-request-id: given",
                "x-fn: function",
                "te: trailers",
                "content-length: 3",
                "x-forwarded-for: 10.0.0.1, 127.0.0.1",
                "x-forwarded-proto: https",
                "x-claim: alice",
                "x-app: route",
                "x-route: route",
            ]
        );
    }

    #[test]
    fn host_precedence() {
        let headers = raw("host: client.test");
        let plain = Options::default();
        let rules = |opts| HeaderRules {
            method: "GET",
            opts,
            call: None,
            edits: None,
            body_len: Some(0),
            client_ip: "127.0.0.1",
            scheme: "http",
            upgrade: None,
        };
        let host = |lines: Vec<String>| {
            let hosts: Vec<String> = lines
                .into_iter()
                .filter(|l| l.starts_with("host: "))
                .collect();
            assert_eq!(hosts.len(), 1, "{hosts:?}");
            hosts[0].clone()
        };
        // The client's; the target's authority over it.
        assert_eq!(
            host(written(&rules(&plain), &headers, None)),
            "host: client.test"
        );
        assert_eq!(
            host(written(&rules(&plain), &headers, Some("named.test"))),
            "host: named.test"
        );
        // A function's host over the target's authority, once.
        let call = RenderedCall {
            method: None,
            path: None,
            set_headers: vec![(http::header::HOST, "fn.internal".into())],
            remove_headers: vec![],
            body: None,
        };
        let with_call = HeaderRules {
            call: Some(&call),
            ..rules(&plain)
        };
        assert_eq!(
            host(written(&with_call, &headers, Some("named.test"))),
            "host: fn.internal"
        );
        // `autoHostRewrite`: the endpoint's authority; the route's own host rule over it.
        let auto = Options {
            auto_host_rewrite: true,
            ..Default::default()
        };
        assert_eq!(
            host(written(&rules(&auto), &headers, None)),
            "host: svc.internal:8080"
        );
        let auto_and_route = Options {
            auto_host_rewrite: true,
            request_add: vec![HeaderAdd {
                name: http::header::HOST,
                value: HeaderValue::from_static("from-route"),
                append: false,
            }],
            ..Default::default()
        };
        assert_eq!(
            host(written(&rules(&auto_and_route), &headers, None)),
            "host: from-route"
        );
        // The route removes it: the endpoint's address, of last resort.
        let removed = Options {
            request_remove: vec![http::header::HOST],
            ..Default::default()
        };
        assert_eq!(
            host(written(&rules(&removed), &headers, None)),
            "host: 10.1.1.1:8080"
        );
    }

    #[test]
    fn a_websocket_upgrade_is_kept_and_other_hop_by_hop_headers_are_not() {
        let headers =
            raw("host: a\r\nconnection: upgrade\r\nupgrade: websocket\r\nproxy-connection: x");
        let opts = Options::default();
        let rules = HeaderRules {
            method: "GET",
            opts: &opts,
            call: None,
            edits: None,
            body_len: None,
            client_ip: "127.0.0.1",
            scheme: "http",
            upgrade: Some(b"websocket"),
        };
        let lines = written(&rules, &headers, None);
        assert_eq!(
            lines[..3],
            ["host: a", "connection: upgrade", "upgrade: websocket"]
        );
        assert!(!lines.iter().any(|l| l.starts_with("proxy-connection")));
        assert!(!lines.iter().any(|l| l.starts_with("content-length")));
    }

    #[test]
    fn rewrites_and_a_target_that_cannot_be_sent() {
        let headers = raw("host: a");
        let c = client(Headers::Raw(&headers), None);
        let prefix = Options {
            prefix_rewrite: Some("/api/v2".into()),
            ..Default::default()
        };
        let matched = PathCond::Prefix("/pets".into());
        let p = Planned::new(&c, &prefix, &matched, None, None).unwrap();
        assert_eq!(p.path_and_query(), "/api/v2?x=1");
        assert_eq!(p.method(), "POST");
        assert_eq!(p.function_body(), None);
        let regex = |sub: &str| Options {
            regex_rewrite: Some((
                regex::Regex::new("^/(\\w+)$").unwrap(),
                envoy_substitution(sub).into_owned(),
            )),
            ..Default::default()
        };
        let p = Planned::new(&c, &regex("/v1/\\1/$"), &matched, None, None).unwrap();
        assert_eq!(p.path_and_query(), "/v1/pets/$?x=1");
        let Err((status, code, message)) =
            Planned::new(&c, &regex("/a b/\\1"), &matched, None, None)
        else {
            panic!("a target with a space was planned");
        };
        assert_eq!((status.as_u16(), code), (400, "bad-request"));
        assert!(message.contains("/a b/pets"), "{message}");
        // No rewrite: the client's target, as it came.
        let p = Planned::new(&c, &Options::default(), &matched, None, None).unwrap();
        assert_eq!(p.path_and_query(), "/pets?x=1");
    }
}
