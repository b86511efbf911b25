//! The list table every list view uses: a titled box, a header, rows, one selected, scrolled so
//! that the selection is visible.

use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table};
use std::ops::Range;

/// One row: cells with optional styles.
#[derive(Debug, Clone, Default)]
pub struct TRow {
    pub cells: Vec<(String, Style)>,
}

impl TRow {
    pub fn new() -> Self {
        TRow::default()
    }
    pub fn cell(mut self, s: impl Into<String>) -> Self {
        self.cells.push((s.into(), Style::default()));
        self
    }
    pub fn styled(mut self, s: impl Into<String>, st: Style) -> Self {
        self.cells.push((s.into(), st));
        self
    }
    pub fn text(&self) -> String {
        self.cells
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub struct TableView<'a> {
    pub title: String,
    pub filter: &'a str,
    pub header: &'a [&'a str],
    pub widths: &'a [Constraint],
    /// The rows on screen only: `rows[0]` is row `first` of `total`.
    pub rows: &'a [TRow],
    pub first: usize,
    pub total: usize,
    pub empty: &'a str,
}

/// Scrolls a table of `total` rows drawn in `area` so that `selected` is visible (updating
/// `offset`, the first row shown); returns the rows on screen.
pub fn scroll(area: Rect, selected: usize, offset: &mut usize, total: usize) -> Range<usize> {
    let visible = Block::bordered().inner(area).height.saturating_sub(1) as usize;
    if visible > 0 {
        if selected < *offset {
            *offset = selected;
        } else if selected >= *offset + visible {
            *offset = selected + 1 - visible;
        }
        if *offset + visible > total {
            *offset = total.saturating_sub(visible);
        }
    }
    *offset..(*offset + visible).min(total)
}

/// Draws the table (scrolled with `scroll`); returns the area of the rows (for mouse clicks).
pub fn render(
    f: &mut Frame,
    area: Rect,
    theme: &Theme,
    t: &TableView<'_>,
    selected: usize,
    focused: bool,
) -> Rect {
    let mut title = vec![Span::styled(format!(" {} ", t.title), theme.accent())];
    if !t.filter.is_empty() {
        title.push(Span::styled(format!(" /{} ", t.filter), theme.warn()));
    }
    let block = Block::bordered()
        .border_style(if focused {
            theme.border().add_modifier(Modifier::BOLD)
        } else {
            theme.border()
        })
        .title(Line::from(title));
    let inner = block.inner(area);
    let visible = inner.height.saturating_sub(1) as usize;
    // The columns as the table lays them out, so that a cut cell can end with `…`.
    let cols: Vec<usize> = ratatui::layout::Layout::horizontal(t.widths.to_vec())
        .flex(ratatui::layout::Flex::Start)
        .spacing(1)
        .split(Rect::new(0, 0, inner.width, 1))
        .iter()
        .map(|c| c.width as usize)
        .collect();
    let rows: Vec<Row> = t
        .rows
        .iter()
        .take(visible)
        .enumerate()
        .map(|(k, r)| {
            let sel = t.first + k == selected;
            let cells: Vec<Cell> = r
                .cells
                .iter()
                .enumerate()
                .map(|(ci, (s, st))| {
                    let text = if ci == 0 {
                        format!("{}{s}", if sel { "▶" } else { " " })
                    } else {
                        s.clone()
                    };
                    let text = match cols.get(ci) {
                        Some(w) => ellipsize(&text, *w),
                        None => text,
                    };
                    Cell::from(text).style(if sel { theme.selection() } else { *st })
                })
                .collect();
            let row = Row::new(cells);
            if sel {
                row.style(theme.selection())
            } else {
                row
            }
        })
        .collect();
    let header = Row::new(t.header.iter().enumerate().map(|(i, h)| {
        let h = if i == 0 {
            format!(" {h}")
        } else {
            h.to_string()
        };
        Cell::from(match cols.get(i) {
            Some(w) => ellipsize(&h, *w),
            None => h,
        })
    }))
    .style(theme.muted().add_modifier(Modifier::BOLD));
    f.render_widget(block, area);
    if t.total == 0 {
        let [h, rest] =
            ratatui::layout::Layout::vertical([Constraint::Length(1), Constraint::Min(0)])
                .areas(inner);
        f.render_widget(
            Table::new(Vec::<Row>::new(), t.widths.to_vec()).header(header),
            h,
        );
        f.render_widget(
            // Wrapped: an empty list's text says why (a missing CRD: a long line).
            ratatui::widgets::Paragraph::new(Line::styled(format!(" {}", t.empty), theme.muted()))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            rest,
        );
    } else {
        f.render_widget(
            Table::new(rows, t.widths.to_vec())
                .header(header)
                .column_spacing(1),
            inner,
        );
    }
    Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    }
}

/// `s` cut to `width` columns, ending with `…` when it was cut.
pub fn ellipsize(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}
