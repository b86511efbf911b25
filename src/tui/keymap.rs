//! Keys: one table that both dispatches keys and lists them in the footer and in help.
//! A TOML file can override any binding; it replaces only the actions it names.
//!
//! ```toml
//! [global]
//! quit = "ctrl-q"
//! [routes]
//! edit = ["e", "enter"]
//! ```

use super::action::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;

/// Where a binding applies. A view looks its keys up in its own scopes first, then `Global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    List,
    Upstreams,
    Functions,
    Function,
    VirtualServices,
    Routes,
    Editor,
    Tester,
    Log,
    Confirm,
    Describe,
    Request,
    Discovery,
    Saved,
}

impl Scope {
    pub const ALL: [Scope; 15] = [
        Scope::Global,
        Scope::List,
        Scope::Upstreams,
        Scope::Functions,
        Scope::Function,
        Scope::VirtualServices,
        Scope::Routes,
        Scope::Editor,
        Scope::Tester,
        Scope::Log,
        Scope::Confirm,
        Scope::Describe,
        Scope::Request,
        Scope::Discovery,
        Scope::Saved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::List => "list",
            Scope::Upstreams => "upstreams",
            Scope::Functions => "functions",
            Scope::Function => "function",
            Scope::VirtualServices => "virtualservices",
            Scope::Routes => "routes",
            Scope::Editor => "editor",
            Scope::Tester => "tester",
            Scope::Log => "log",
            Scope::Confirm => "confirm",
            Scope::Describe => "describe",
            Scope::Request => "request",
            Scope::Discovery => "discovery",
            Scope::Saved => "saved",
        }
    }
}

/// A key with its modifiers (shift is folded into the character for printable keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn from_event(e: &KeyEvent) -> Key {
        Key {
            code: e.code,
            ctrl: e.modifiers.contains(KeyModifiers::CONTROL),
            alt: e.modifiers.contains(KeyModifiers::ALT),
        }
    }

    /// Reads `j`, `G`, `?`, `ctrl-s`, `alt-x`, `enter`, `esc`, `tab`, `backtab`, `space`, `up`,
    /// `down`, `left`, `right`, `pgup`, `pgdn`, `home`, `end`, `delete`, `backspace`, `f1`..`f12`.
    pub fn parse(s: &str) -> Option<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            if let Some(r) = rest
                .strip_prefix("ctrl-")
                .or_else(|| rest.strip_prefix("c-"))
            {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pgup" => KeyCode::PageUp,
            "pgdn" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "delete" => KeyCode::Delete,
            "backspace" => KeyCode::Backspace,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().ok()?)
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
            _ => return None,
        };
        Some(Key { code, ctrl, alt })
    }

    pub fn event(self) -> KeyEvent {
        let mut m = KeyModifiers::empty();
        if self.ctrl {
            m |= KeyModifiers::CONTROL;
        }
        if self.alt {
            m |= KeyModifiers::ALT;
        }
        if let KeyCode::Char(c) = self.code
            && c.is_ascii_uppercase()
        {
            m |= KeyModifiers::SHIFT;
        }
        if self.code == KeyCode::BackTab {
            m |= KeyModifiers::SHIFT;
        }
        KeyEvent::new(self.code, m)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("backtab"),
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub scope: Scope,
    pub keys: Vec<Key>,
    pub action: Action,
    pub help: &'static str,
    /// Shown in the footer (the rest only in help).
    pub footer: bool,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

fn b(scope: Scope, keys: &[&str], action: Action, help: &'static str, footer: bool) -> Binding {
    Binding {
        scope,
        keys: keys.iter().filter_map(|k| Key::parse(k)).collect(),
        action,
        help,
        footer,
    }
}

impl Default for Keymap {
    fn default() -> Self {
        use Action as A;
        use Scope as S;
        Keymap {
            bindings: vec![
                // Per view first: the footer lists them in this order.
                b(S::Upstreams, &["enter"], A::Open, "functions", true),
                b(S::Upstreams, &["t"], A::Test, "test", true),
                b(S::Upstreams, &["d"], A::Describe, "describe", true),
                b(S::Upstreams, &["y"], A::Yaml, "yaml", true),
                b(S::Functions, &["enter"], A::Open, "details", true),
                b(S::Functions, &["t"], A::Test, "test", true),
                b(S::Functions, &["r"], A::RouteTo, "route to it", true),
                b(S::Functions, &["d"], A::Describe, "describe", false),
                b(S::Functions, &["y"], A::Yaml, "yaml", true),
                b(S::Function, &["t"], A::Test, "test", true),
                b(S::Function, &["r"], A::RouteTo, "route to it", true),
                b(S::Function, &["y"], A::Yaml, "yaml", true),
                b(S::VirtualServices, &["enter"], A::Open, "routes", true),
                b(S::VirtualServices, &["d"], A::Describe, "describe", true),
                b(S::VirtualServices, &["y"], A::Yaml, "yaml", true),
                b(S::Routes, &["e", "enter"], A::Edit, "edit", true),
                b(S::Routes, &["n"], A::New, "new", true),
                b(S::Routes, &["d"], A::Describe, "describe", true),
                b(S::Routes, &["y"], A::Yaml, "yaml", true),
                b(S::Routes, &["ctrl-d"], A::Delete, "delete", true),
                b(S::Routes, &["K"], A::MoveUp, "move up", true),
                b(S::Routes, &["J"], A::MoveDown, "move down", true),
                b(S::Routes, &["t"], A::Test, "test", true),
                b(S::Routes, &["u"], A::Undo, "undo", true),
                b(S::Routes, &["U"], A::Redo, "redo", false),
                b(S::Editor, &["ctrl-s"], A::Apply, "apply", true),
                b(
                    S::Editor,
                    &["f2", "ctrl-y"],
                    A::ToggleYaml,
                    "form/yaml",
                    true,
                ),
                b(
                    S::Editor,
                    &["tab", "down"],
                    A::NextField,
                    "next field",
                    true,
                ),
                b(
                    S::Editor,
                    &["backtab", "up"],
                    A::PrevField,
                    "prev field",
                    false,
                ),
                b(
                    S::Editor,
                    &["ctrl-p", "alt-left"],
                    A::PickPrev,
                    "previous choice",
                    false,
                ),
                b(
                    S::Editor,
                    &["ctrl-n", "alt-right"],
                    A::PickNext,
                    "next choice",
                    true,
                ),
                b(S::Editor, &["esc"], A::Cancel, "cancel", true),
                b(S::Editor, &["f1"], A::Help, "help", true),
                b(S::Editor, &["alt-:"], A::Command, "command", false),
                b(S::Tester, &["enter", "ctrl-s"], A::Send, "send", true),
                b(
                    S::Tester,
                    &["tab", "down"],
                    A::NextField,
                    "next field",
                    true,
                ),
                b(
                    S::Tester,
                    &["backtab", "up"],
                    A::PrevField,
                    "prev field",
                    false,
                ),
                b(S::Tester, &["ctrl-o"], A::CopyCurl, "copy as curl", true),
                b(S::Tester, &["ctrl-r"], A::History, "history", true),
                b(S::Tester, &["esc"], A::Back, "back", true),
                b(S::Tester, &["f1"], A::Help, "help", true),
                b(S::Tester, &["alt-:"], A::Command, "command", false),
                b(S::Log, &["enter"], A::Open, "details", true),
                b(S::Log, &["t"], A::Test, "replay", true),
                b(S::Log, &["s"], A::Save, "save", true),
                b(S::Log, &["space"], A::Follow, "follow/pause", true),
                b(S::Request, &["t"], A::Test, "replay in tester", true),
                b(S::Request, &["g"], A::GotoRoute, "go to route", true),
                b(S::Request, &["s"], A::Save, "save log", false),
                b(S::Describe, &["y"], A::Yaml, "yaml/describe", true),
                b(S::Describe, &["e"], A::Edit, "edit", true),
                b(S::Describe, &["t"], A::Test, "test", true),
                b(S::Discovery, &["enter"], A::Open, "functions", true),
                b(S::Saved, &["enter"], A::Open, "load in tester", true),
                b(S::Saved, &["ctrl-d"], A::Delete, "drop", true),
                b(S::Discovery, &["d"], A::Describe, "describe", true),
                b(S::Discovery, &["y"], A::Yaml, "yaml", true),
                b(S::Confirm, &["y", "enter"], A::Confirm, "yes", true),
                b(S::Confirm, &["n", "esc"], A::Cancel, "no", true),
                b(S::List, &["j", "down"], A::Down, "down", false),
                b(S::List, &["k", "up"], A::Up, "up", false),
                b(S::List, &["g", "home"], A::Top, "top", false),
                b(S::List, &["G", "end"], A::Bottom, "bottom", false),
                b(
                    S::List,
                    &["pgdn", "ctrl-d"],
                    A::PageDown,
                    "page down",
                    false,
                ),
                b(S::List, &["pgup", "ctrl-u"], A::PageUp, "page up", false),
                b(S::List, &["/"], A::Filter, "filter", true),
                b(S::Global, &[":"], A::Command, "command", true),
                b(S::Global, &["?", "f1"], A::Help, "help", true),
                b(S::Global, &["esc"], A::Back, "back", true),
                b(S::Global, &["x"], A::Dismiss, "dismiss message", false),
                b(S::Global, &["tab"], A::NextPane, "next view", false),
                b(S::Global, &["ctrl-c"], A::Quit, "quit", false),
            ],
        }
    }
}

impl Keymap {
    /// The action of `key` in the first of `scopes` that binds it.
    pub fn lookup(&self, scopes: &[Scope], key: &KeyEvent) -> Option<Action> {
        let k = Key::from_event(key);
        for s in scopes {
            if let Some(b) = self
                .bindings
                .iter()
                .find(|b| b.scope == *s && b.keys.contains(&k))
            {
                return Some(b.action);
            }
        }
        None
    }

    /// The bindings of `scopes`, in order, one per action (the first scope that binds it).
    pub fn bindings_for(&self, scopes: &[Scope]) -> Vec<&Binding> {
        let mut out: Vec<&Binding> = Vec::new();
        for s in scopes {
            for b in self.bindings.iter().filter(|b| b.scope == *s) {
                if !out.iter().any(|o| o.action == b.action) && !b.keys.is_empty() {
                    out.push(b);
                }
            }
        }
        out
    }

    /// Applies overrides from TOML: `[scope] action = "key"` or `= ["k1", "k2"]`.
    pub fn apply_toml(&mut self, text: &str) -> Result<Vec<String>, String> {
        let v: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut notes = Vec::new();
        for (scope_name, table) in &v {
            let Some(scope) = Scope::ALL.into_iter().find(|s| s.name() == scope_name) else {
                notes.push(format!("unknown scope [{scope_name}]"));
                continue;
            };
            let Some(table) = table.as_table() else {
                notes.push(format!("[{scope_name}] must be a table"));
                continue;
            };
            for (action_name, keys) in table {
                let Some(action) = Action::from_name(action_name) else {
                    notes.push(format!("unknown action `{action_name}` in [{scope_name}]"));
                    continue;
                };
                let names: Vec<&str> = match keys {
                    toml::Value::String(s) => vec![s.as_str()],
                    toml::Value::Array(a) => a.iter().filter_map(|k| k.as_str()).collect(),
                    _ => {
                        notes.push(format!(
                            "{scope_name}.{action_name}: expected a key or a list"
                        ));
                        continue;
                    }
                };
                let mut parsed = Vec::new();
                for n in names {
                    match Key::parse(n) {
                        Some(k) => parsed.push(k),
                        None => {
                            notes.push(format!("{scope_name}.{action_name}: unknown key `{n}`"))
                        }
                    }
                }
                // A key moved to this action leaves the others of the same scope.
                for other in self.bindings.iter_mut().filter(|b| b.scope == scope) {
                    other.keys.retain(|k| !parsed.contains(k));
                }
                match self
                    .bindings
                    .iter_mut()
                    .find(|b| b.scope == scope && b.action == action)
                {
                    Some(b) => b.keys = parsed,
                    None => self.bindings.push(Binding {
                        scope,
                        keys: parsed,
                        action,
                        help: "",
                        footer: true,
                    }),
                }
            }
        }
        Ok(notes)
    }

    /// The default map with the user's file applied: `$EPOXY_KEYS`, else
    /// `$XDG_CONFIG_HOME/epoxy/keys.toml` (or `~/.config/epoxy/keys.toml`).
    pub fn load() -> (Keymap, Vec<String>) {
        let mut k = Keymap::default();
        let path = std::env::var_os("EPOXY_KEYS")
            .map(std::path::PathBuf::from)
            .or_else(|| config_dir().map(|d| d.join("epoxy/keys.toml")));
        let mut notes = Vec::new();
        if let Some(p) = path
            && let Ok(text) = std::fs::read_to_string(&p)
        {
            match k.apply_toml(&text) {
                Ok(n) => notes.extend(n.into_iter().map(|n| format!("{}: {n}", p.display()))),
                Err(e) => notes.push(format!("{}: {e}", p.display())),
            }
        }
        (k, notes)
    }
}

pub fn config_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
}
