//! Colour themes: TOML files with semantic colours. The four in `themes/` are built in; a file
//! `NAME.toml` in `./themes/` or `$XDG_CONFIG_HOME/epoxy/themes/` overrides or adds one.
//! `NO_COLOR` (set and not empty) turns every colour off; emphasis stays (bold, reverse).

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::str::FromStr;

const BUILT_IN: [(&str, &str); 4] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("gruvbox", include_str!("../../themes/gruvbox.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    name: String,
    fg: String,
    bg: String,
    muted: String,
    accent: String,
    ok: String,
    warn: String,
    error: String,
    new: String,
    changed: String,
    header_fg: String,
    header_bg: String,
    selection_fg: String,
    selection_bg: String,
    border: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub color: bool,
    pub fg: Color,
    pub bg: Color,
    pub muted: Color,
    pub accent: Color,
    pub ok: Color,
    pub warn: Color,
    pub error: Color,
    pub new: Color,
    pub changed: Color,
    pub header_fg: Color,
    pub header_bg: Color,
    pub selection_fg: Color,
    pub selection_bg: Color,
    pub border: Color,
}

fn color(field: &str, s: &str) -> Result<Color, String> {
    Color::from_str(s).map_err(|_| format!("{field}: unknown colour `{s}`"))
}

impl Theme {
    pub fn parse(text: &str) -> Result<Theme, String> {
        let f: ThemeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(Theme {
            name: f.name,
            color: true,
            fg: color("fg", &f.fg)?,
            bg: color("bg", &f.bg)?,
            muted: color("muted", &f.muted)?,
            accent: color("accent", &f.accent)?,
            ok: color("ok", &f.ok)?,
            warn: color("warn", &f.warn)?,
            error: color("error", &f.error)?,
            new: color("new", &f.new)?,
            changed: color("changed", &f.changed)?,
            header_fg: color("header_fg", &f.header_fg)?,
            header_bg: color("header_bg", &f.header_bg)?,
            selection_fg: color("selection_fg", &f.selection_fg)?,
            selection_bg: color("selection_bg", &f.selection_bg)?,
            border: color("border", &f.border)?,
        })
    }

    /// The built-in names, then any others found on disk.
    pub fn names() -> Vec<String> {
        let mut v: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
        for d in search_dirs() {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "toml")
                        && let Some(s) = p.file_stem().and_then(|s| s.to_str())
                        && !v.iter().any(|n| n == s)
                    {
                        v.push(s.to_string());
                    }
                }
            }
        }
        v
    }

    /// Loads theme `name` (files on disk first, then the built-ins).
    pub fn load(name: &str) -> Result<Theme, String> {
        if name.contains('/') || name.contains('\\') || name.contains("..") {
            return Err(format!("theme `{name}`: a name, not a path"));
        }
        for d in search_dirs() {
            let p = d.join(format!("{name}.toml"));
            if let Ok(text) = std::fs::read_to_string(&p) {
                let mut t = Theme::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
                t.name = name.to_string();
                return Ok(t);
            }
        }
        match BUILT_IN.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => Theme::parse(text),
            None => Err(format!(
                "no theme `{name}` (themes: {})",
                Theme::names().join(", ")
            )),
        }
    }

    /// The theme to start with: `--theme`, else dark; colourless when `NO_COLOR` is set.
    pub fn select(name: Option<&str>) -> Result<Theme, String> {
        let t = Theme::load(name.unwrap_or("dark"))?;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ok(if no_color { t.without_color() } else { t })
    }

    pub fn without_color(mut self) -> Theme {
        self.color = false;
        for c in [
            &mut self.fg,
            &mut self.bg,
            &mut self.muted,
            &mut self.accent,
            &mut self.ok,
            &mut self.warn,
            &mut self.error,
            &mut self.new,
            &mut self.changed,
            &mut self.header_fg,
            &mut self.header_bg,
            &mut self.selection_fg,
            &mut self.selection_bg,
            &mut self.border,
        ] {
            *c = Color::Reset;
        }
        self
    }

    pub fn base(&self) -> Style {
        Style::default().fg(self.fg).bg(self.bg)
    }
    pub fn muted(&self) -> Style {
        Style::default().fg(self.muted)
    }
    pub fn accent(&self) -> Style {
        Style::default()
            .fg(self.accent)
            .add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        Style::default().fg(self.ok)
    }
    pub fn warn(&self) -> Style {
        Style::default().fg(self.warn)
    }
    pub fn error(&self) -> Style {
        Style::default().fg(self.error).add_modifier(Modifier::BOLD)
    }
    pub fn new_style(&self) -> Style {
        Style::default().fg(self.new)
    }
    pub fn changed(&self) -> Style {
        Style::default().fg(self.changed)
    }
    pub fn header(&self) -> Style {
        Style::default().fg(self.header_fg).bg(self.header_bg)
    }
    pub fn border(&self) -> Style {
        Style::default().fg(self.border)
    }
    pub fn selection(&self) -> Style {
        if self.color {
            Style::default()
                .fg(self.selection_fg)
                .bg(self.selection_bg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::parse(BUILT_IN[0].1).unwrap_or_else(|_| unreachable!("the built-in theme parses"))
    }
}

fn search_dirs() -> Vec<std::path::PathBuf> {
    let mut v = vec![std::path::PathBuf::from("themes")];
    if let Some(c) = super::keymap::config_dir() {
        v.push(c.join("epoxy/themes"));
    }
    v
}
