//! Help: every key of the view help was opened from (from the same table that dispatches
//! them), then the commands.

use crate::tui::app::{App, COMMANDS, View};
use ratatui::style::Style;

pub fn lines(app: &App) -> Vec<(String, Style)> {
    let t = &app.theme;
    let under = app
        .stack
        .iter()
        .rev()
        .map(|p| &p.view)
        .find(|v| **v != View::Help)
        .cloned()
        .unwrap_or(View::Upstreams);
    let mut scopes = under.scopes();
    if under.takes_text() {
        scopes.push(crate::tui::keymap::Scope::Global);
    }
    let mut out = vec![(format!("keys of {}", under.title()), t.accent())];
    for b in app.keymap.bindings_for(&scopes) {
        if app.ctx.readonly && b.action.writes() {
            continue;
        }
        let keys = b
            .keys
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let help = if b.help.is_empty() {
            b.action.name()
        } else {
            b.help.to_string()
        };
        out.push((format!("  {keys:<18} {help}"), Style::default()));
    }
    out.push((String::new(), Style::default()));
    out.push(("also".into(), t.accent()));
    for (k, h) in [
        ("mouse wheel", "scroll"),
        ("click", "select; click again to open"),
        ("x", "dismiss an error message"),
        ("ctrl-c", "quit"),
    ] {
        out.push((format!("  {k:<18} {h}"), Style::default()));
    }
    out.push((String::new(), Style::default()));
    out.push(("commands (: then tab completes)".into(), t.accent()));
    for (n, aliases, h) in COMMANDS {
        let a = if aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", aliases.join(", "))
        };
        out.push((format!("  :{n}{a}"), Style::default()));
        out.push((format!("      {h}"), t.muted()));
    }
    if app.ctx.readonly {
        out.push((String::new(), Style::default()));
        out.push((
            "read-only: edit, new, delete, move and undo are off".into(),
            t.warn(),
        ));
    }
    out
}
