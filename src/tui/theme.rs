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
    /// A field's placeholder (its hint when empty): told apart from a value by colour, and
    /// without colour (`NO_COLOR`) by being dim and italic.
    pub fn placeholder(&self) -> Style {
        if self.color {
            self.muted().add_modifier(Modifier::ITALIC)
        } else {
            Style::default().add_modifier(Modifier::DIM | Modifier::ITALIC)
        }
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

/// WCAG 2 contrast of the built-in themes' pairs, with xterm's default palette for named colours
/// and, for `reset`, a black background and white text (the dark terminals `dark` is for).
#[cfg(test)]
mod contrast {
    use super::*;

    fn rgb(c: Color, reset: (u8, u8, u8)) -> (u8, u8, u8) {
        match c {
            Color::Reset => reset,
            Color::Black => (0, 0, 0),
            Color::Red => (0xcd, 0, 0),
            Color::Green => (0, 0xcd, 0),
            Color::Yellow => (0xcd, 0xcd, 0),
            Color::Blue => (0, 0, 0xee),
            Color::Magenta => (0xcd, 0, 0xcd),
            Color::Cyan => (0, 0xcd, 0xcd),
            Color::Gray => (0xe5, 0xe5, 0xe5),
            Color::DarkGray => (0x7f, 0x7f, 0x7f),
            Color::LightRed => (0xff, 0, 0),
            Color::LightGreen => (0, 0xff, 0),
            Color::LightYellow => (0xff, 0xff, 0),
            Color::LightBlue => (0x5c, 0x5c, 0xff),
            Color::LightMagenta => (0xff, 0, 0xff),
            Color::LightCyan => (0, 0xff, 0xff),
            Color::White => (0xff, 0xff, 0xff),
            Color::Rgb(r, g, b) => (r, g, b),
            other => panic!("no RGB for {other:?}"),
        }
    }

    /// Relative luminance (WCAG 2.x).
    fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
        let lin = |c: u8| {
            let c = c as f64 / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    fn ratio(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn every_theme_is_readable() {
        let white = (0xff, 0xff, 0xff);
        let black = (0, 0, 0);
        let mut bad = Vec::new();
        for (name, text) in BUILT_IN {
            let t = Theme::parse(text).unwrap();
            let bg = rgb(t.bg, black);
            let fg = rgb(t.fg, white);
            // Text: WCAG AA for normal text (4.5:1); borders are not text (3:1, as for
            // non-text components).
            let mut pairs = vec![
                ("fg", fg, bg, 4.5),
                ("muted", rgb(t.muted, fg), bg, 4.5),
                ("accent", rgb(t.accent, fg), bg, 4.5),
                ("ok", rgb(t.ok, fg), bg, 4.5),
                ("warn", rgb(t.warn, fg), bg, 4.5),
                ("error", rgb(t.error, fg), bg, 4.5),
                ("new", rgb(t.new, fg), bg, 4.5),
                ("changed", rgb(t.changed, fg), bg, 4.5),
                ("border", rgb(t.border, fg), bg, 3.0),
            ];
            pairs.push(("header", rgb(t.header_fg, fg), rgb(t.header_bg, bg), 4.5));
            pairs.push((
                "selection",
                rgb(t.selection_fg, fg),
                rgb(t.selection_bg, bg),
                4.5,
            ));
            for (what, a, b, min) in pairs {
                let r = ratio(a, b);
                if r < min {
                    bad.push(format!("{name}: {what} {r:.2} < {min}"));
                }
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn the_ratio_matches_wcag_examples() {
        assert!((ratio((0, 0, 0), (255, 255, 255)) - 21.0).abs() < 1e-9);
        assert!((ratio((0x76, 0x76, 0x76), (255, 255, 255)) - 4.54).abs() < 0.01);
    }
}
