//! The `:` commands: their names, aliases and help, completion and the candidates shown
//! while typing.

use super::theme::Theme;

pub const COMMANDS: [(&str, &[&str], &str); 15] = [
    ("upstreams", &["us", "upstream"], "the upstreams"),
    (
        "functions",
        &["fn", "function"],
        "every function of every upstream",
    ),
    (
        "virtualservices",
        &["vs", "virtualservice"],
        "the virtual services",
    ),
    (
        "routes",
        &["route", "rt"],
        "the routes of a virtual service: routes [NAME]",
    ),
    ("test", &["tester", "t"], "the request tester"),
    ("log", &["logs", "accesslog"], "the live access log"),
    (
        "discovery",
        &["fds", "disc"],
        "function discovery, per upstream",
    ),
    (
        "namespace",
        &["ns"],
        "switch the namespace new routes and :routes use: ns NAME (without: list them)",
    ),
    (
        "keep",
        &["k"],
        "save the tester's request under a name: keep NAME",
    ),
    (
        "auth",
        &["credentials"],
        "attach credentials to the tester's request: auth bearer TOKEN | basic USER:PASSWORD | key KEY [HEADER] | none",
    ),
    (
        "requests",
        &["saved", "collection"],
        "the tester's saved requests",
    ),
    ("help", &["h"], "the keys of the current view"),
    (
        "save",
        &["w"],
        "save the access log to a file, as JSON lines: save [FILE]",
    ),
    ("theme", &[], "switch the colour theme: theme NAME"),
    ("quit", &["q", "q!", "exit"], "leave the console"),
];

/// Completes a command: the first command or alias that starts with what was typed.
pub fn complete(text: &str) -> String {
    let t = text.trim_start();
    if t.contains(' ') {
        if let Some(rest) = t.strip_prefix("theme ")
            && let Some(n) = Theme::names()
                .into_iter()
                .find(|n| n.starts_with(rest.trim()))
        {
            return format!("theme {n}");
        }
        return text.to_string();
    }
    COMMANDS
        .iter()
        .find(|(n, _, _)| n.starts_with(t))
        .map(|(n, _, _)| n.to_string())
        .unwrap_or_else(|| text.to_string())
}

/// The candidates for what was typed so far (shown while typing a command).
pub fn candidates(text: &str) -> Vec<&'static str> {
    let t = text.trim();
    COMMANDS
        .iter()
        .filter(|(n, a, _)| n.starts_with(t) || a.iter().any(|a| a.starts_with(t)))
        .map(|(n, _, _)| *n)
        .collect()
}
