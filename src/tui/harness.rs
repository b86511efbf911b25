//! Drives the console without a terminal: keys in, the real feeds pumped, the screen rendered
//! to a `TestBackend`. Used by the tests (and handy for measuring frame time).

use super::app::{App, Msg};
use super::feeds::Feeds;
use super::keymap::Key;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Duration;

pub struct Harness {
    pub app: App,
    pub feeds: Feeds,
}

impl Harness {
    pub fn new(mut app: App, mut feeds: Feeds) -> Harness {
        for m in feeds.initial() {
            app.update(m);
        }
        Harness { app, feeds }
    }

    /// One key by name: `j`, `G`, `enter`, `ctrl-s`, `esc`, ... (see `Key::parse`).
    pub fn key(&mut self, name: &str) {
        let k =
            Key::parse(name).unwrap_or_else(|| panic!("test used an unknown key name `{name}`"));
        self.app.update(Msg::Term(Event::Key(k.event())));
        self.pump();
    }

    pub fn keys(&mut self, names: &[&str]) {
        for n in names {
            self.key(n);
        }
    }

    /// Types text, one character at a time.
    pub fn type_text(&mut self, s: &str) {
        for c in s.chars() {
            let m = if c.is_ascii_uppercase() {
                KeyModifiers::SHIFT
            } else {
                KeyModifiers::NONE
            };
            self.app
                .update(Msg::Term(Event::Key(KeyEvent::new(KeyCode::Char(c), m))));
        }
        self.pump();
    }

    /// `:cmd` then enter.
    pub fn command(&mut self, cmd: &str) {
        self.key(":");
        self.type_text(cmd);
        self.key("enter");
    }

    /// Applies whatever the feeds have ready now.
    pub fn pump(&mut self) {
        while let Some(m) = self.feeds.try_next() {
            self.app.update(m);
        }
    }

    /// Feeds messages until `cond` holds, or fails after `timeout`.
    pub async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&App) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.pump();
        while !cond(&self.app) {
            match tokio::time::timeout_at(deadline, self.feeds.next()).await {
                Ok(m) => self.app.update(m),
                Err(_) => return Err(format!("timed out waiting for {what}")),
            }
        }
        Ok(())
    }

    /// Renders the console at `w`x`h` and returns the screen as text (one line per row,
    /// trailing spaces removed).
    pub fn screen(&mut self, w: u16, h: u16) -> String {
        match self.buffer(w, h) {
            Ok(b) => buffer_text(&b),
            Err(e) => e,
        }
    }

    /// Renders the console at `w`x`h` and returns the cells (text and style).
    pub fn buffer(&mut self, w: u16, h: u16) -> Result<ratatui::buffer::Buffer, String> {
        let mut term =
            Terminal::new(TestBackend::new(w, h)).map_err(|e| format!("no test terminal: {e}"))?;
        term.draw(|f| self.app.draw(f))
            .map_err(|e| format!("draw failed: {e}"))?;
        Ok(term.backend().buffer().clone())
    }
}

pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            line.push_str(sym);
            let w = unicode_width(sym);
            if w > 1 {
                skip = w - 1;
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn unicode_width(s: &str) -> usize {
    // The wide characters the console draws are rare; treat CJK/emoji ranges as width 2.
    s.chars()
        .map(|c| {
            if (c as u32) >= 0x1100 && is_wide(c) {
                2
            } else {
                1
            }
        })
        .sum::<usize>()
        .max(1)
}

fn is_wide(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF)
}
