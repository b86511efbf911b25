//! A one-line text input (command line, filter, tester and form fields).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineInput {
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
}

impl LineInput {
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        LineInput {
            cursor: text.chars().count(),
            text,
        }
    }

    pub fn set(&mut self, text: impl Into<String>) {
        *self = LineInput::new(text);
    }

    /// Inserts pasted text at the cursor, on one line: line breaks become spaces (a paste
    /// into a one-line field never acts as enter).
    pub fn paste(&mut self, text: &str) {
        let flat: String = text
            .trim_end_matches(['\n', '\r'])
            .chars()
            .map(|c| {
                if c == '\n' || c == '\r' || c == '\t' {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let b = self.byte(self.cursor);
        self.text.insert_str(b, &flat);
        self.cursor += flat.chars().count();
    }

    fn byte(&self, c: usize) -> usize {
        self.text
            .char_indices()
            .nth(c)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    /// Edits on a key; returns whether the text changed (or the cursor moved).
    pub fn handle(&mut self, k: &KeyEvent) -> bool {
        let n = self.text.chars().count();
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = n,
            KeyCode::Char('u') if ctrl => {
                let b = self.byte(self.cursor);
                self.text.replace_range(..b, "");
                self.cursor = 0;
            }
            KeyCode::Char('k') if ctrl => {
                let b = self.byte(self.cursor);
                self.text.truncate(b);
            }
            KeyCode::Char('w') if ctrl => {
                let before: Vec<char> = self.text.chars().take(self.cursor).collect();
                let mut i = before.len();
                while i > 0 && before[i - 1] == ' ' {
                    i -= 1;
                }
                while i > 0 && before[i - 1] != ' ' {
                    i -= 1;
                }
                let (a, b) = (self.byte(i), self.byte(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor = i;
            }
            KeyCode::Char(c) if !ctrl => {
                let b = self.byte(self.cursor);
                self.text.insert(b, c);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let (a, b) = (self.byte(self.cursor - 1), self.byte(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < n => {
                let (a, b) = (self.byte(self.cursor), self.byte(self.cursor + 1));
                self.text.replace_range(a..b, "");
            }
            KeyCode::Left if self.cursor > 0 => self.cursor -= 1,
            KeyCode::Right if self.cursor < n => self.cursor += 1,
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = n,
            _ => return false,
        }
        true
    }

    /// The text with a visible cursor, scrolled horizontally to fit `width` columns: the
    /// cursor always shows; what is cut off on either side is marked with `…`.
    pub fn window(&self, width: usize) -> (String, String, String) {
        let (a, c, b) = self.with_cursor();
        let width = width.max(3);
        let a_n = a.chars().count();
        let a = if a_n + 1 > width {
            let keep = width - 2;
            format!("…{}", a.chars().skip(a_n - keep).collect::<String>())
        } else {
            a
        };
        let room = width.saturating_sub(a.chars().count() + 1);
        (a, c, super::table::ellipsize(&b, room))
    }

    /// The text with a visible cursor (for rendering when focused).
    pub fn with_cursor(&self) -> (String, String, String) {
        let b = self.byte(self.cursor);
        let (a, rest) = self.text.split_at(b);
        let mut chars = rest.chars();
        let at = chars.next().map(|c| c.to_string()).unwrap_or(" ".into());
        (a.to_string(), at, chars.collect())
    }
}
