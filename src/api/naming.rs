//! Gloo's naming rules: discovered upstream names and valid resource names.

/// Gloo's `SanitizeNameV2`: the name Gloo's discovery gives an upstream, so that routes written
/// for Gloo find the same upstream in epoxy.
pub fn sanitize_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '*' | '/' | '.' | ':' | '_' | ' ' => s.push('-'),
            '[' | ']' | '\n' | '"' | '\'' => {}
            c => s.push(c),
        }
    }
    if s.len() > 63 {
        let digest = format!("{:x}", md5::compute(s.as_bytes()));
        let head: String = cut_bytes(&s, 31).to_string();
        s = format!("{head}-{digest}");
        s = cut_bytes(&s, 63).to_string();
    }
    s.to_lowercase()
}

/// A route's identity for statistics (`/metrics` labels, rates, the access log): its `name`,
/// else `ns/owner#` and a digest of its content, so counts stay with the route when others
/// are inserted or moved around it (an index would hand them to whatever takes its place).
pub fn route_identity(ns: &str, owner: &str, route: &crate::api::Route) -> String {
    if let Some(n) = &route.name {
        return n.clone();
    }
    let bytes = serde_json::to_vec(route).unwrap_or_default();
    let digest = format!("{:x}", md5::compute(&bytes));
    format!("{ns}/{owner}#{}", &digest[..8])
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn cut_bytes(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `NAMESPACE-SERVICE-PORT`, e.g. `default-petstore-8080`.
pub fn upstream_name(namespace: &str, service: &str, port: u32) -> String {
    sanitize_name(&format!("{namespace}-{service}-{port}"))
}

/// Why `name` is not a valid resource name (a DNS-1123 subdomain), or None if it is.
/// The name is also a file name in the directory store, so this check is also what keeps
/// `..` and `/` out of paths.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name is required".into());
    }
    if name.len() > 253 {
        return Some(format!("`{name}` is longer than 253 characters"));
    }
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok_chars || !ends_ok(name.chars().next()) || !ends_ok(name.chars().last()) {
        return Some(format!(
            "`{name}` is not a valid name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
        ));
    }
    None
}

/// Why `ns` is not a valid namespace (a DNS-1123 label), or None if it is.
pub fn namespace_problem(ns: &str) -> Option<String> {
    if ns.is_empty() {
        return Some("a namespace is required".into());
    }
    if ns.len() > 63 || ns.contains('.') {
        return Some(format!(
            "`{ns}` is not a valid namespace: at most 63 lower-case letters, digits and '-'"
        ));
    }
    name_problem(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gloo_upstream_names() {
        assert_eq!(
            upstream_name("default", "petstore", 8080),
            "default-petstore-8080"
        );
        assert_eq!(
            upstream_name("Default", "pet_store.v1", 80),
            "default-pet-store-v1-80"
        );
        assert_eq!(sanitize_name("a[b]'c\"d"), "abcd");
    }

    #[test]
    fn long_names_are_cut_with_md5() {
        let long = format!("default-{}-8080", "x".repeat(80));
        let n = upstream_name("default", &"x".repeat(80), 8080);
        assert_eq!(n.len(), 63);
        let digest = format!("{:x}", md5::compute(long.as_bytes()));
        assert_eq!(n, format!("{}-{}", &long[..31], &digest[..31]));
    }

    #[test]
    fn names_are_checked() {
        assert!(name_problem("default-petstore-8080").is_none());
        assert!(name_problem("../etc").is_some());
        assert!(name_problem("a/b").is_some());
        assert!(name_problem("Upper").is_some());
        assert!(namespace_problem("gloo-system").is_none());
        assert!(namespace_problem("a.b").is_some());
    }
}
