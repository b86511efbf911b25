//! Help: every key of the view help was opened from (from the same table that dispatches
//! them), then the commands.

use super::ViewCtx;
use crate::tui::commands::COMMANDS;
use crate::tui::keymap::Keymap;
use crate::tui::nav::View;
use ratatui::style::Style;

/// The help of `under` (the view help was opened from), with the keys of `keymap`.
pub fn lines(cx: &ViewCtx, keymap: &Keymap, under: &View) -> Vec<(String, Style)> {
    let t = cx.theme;
    let mut scopes = under.scopes();
    if under.takes_text() {
        scopes.push(crate::tui::keymap::Scope::Global);
    }
    let mut out = vec![(format!("keys of {}", under.title()), t.accent())];
    for b in keymap.bindings_for(&scopes) {
        if cx.readonly && b.action.writes() {
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
    if cx.readonly {
        out.push((String::new(), Style::default()));
        out.push((
            "read-only: edit, new, delete, move and undo are off".into(),
            t.warn(),
        ));
    }
    out
}
