//! The app's drawing: the frame around every view (header, breadcrumbs, the message line, the
//! footer with the keys that work here, from the keymap, and the confirm dialog on top), and in
//! it the current view, drawn from its own narrow context (`views::ViewCtx`), never from `App`.

use crate::tui::app::{App, INFO_TTL, Mode};
use crate::tui::commands::candidates;
use crate::tui::nav::View;
use crate::tui::views::{self, help};
use crate::tui::widgets::diff::DiffLine;
use crate::tui::widgets::table::{self, TRow, TableView};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

pub fn draw(app: &mut App, f: &mut Frame) {
    let area = f.area();
    f.render_widget(Block::default().style(app.theme.base()), area);
    let [header, crumbs, body, message, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(app, f, header);
    draw_crumbs(app, f, crumbs);
    draw_view(app, f, body);
    draw_message(app, f, message);
    draw_footer(app, f, footer);
    if let Mode::Confirm(c) = &app.mode {
        draw_confirm(app, f, body, c);
    }
}

fn tail(s: &str, n: usize) -> String {
    let c = s.chars().count();
    if c <= n {
        s.to_string()
    } else {
        format!("…{}", s.chars().skip(c + 1 - n).collect::<String>())
    }
}

fn draw_header(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let now = app.now();
    let w = area.width as usize;
    let rate = app.data.rate(now);
    let routes = app.data.route_count();
    let long = format!(
        "gw {} · {routes} routes · {rate:.1} req/s ",
        app.ctx.gateway_url
    );
    let short = format!(
        "{} · {routes} rt · {rate:.1}/s ",
        app.ctx.gateway_url.trim_start_matches("http://")
    );
    let ro = if app.ctx.readonly {
        " · read-only"
    } else {
        ""
    };
    let base = format!(" {}", app.ctx.source);
    let ns = format!(" · ns {}{ro}", app.ctx.namespace);
    // Room for the store's description, if any is left.
    let fixed = 7 + base.chars().count() + ns.chars().count() + 2;
    let (right, room) = if fixed + long.chars().count() + 12 <= w {
        (long.clone(), w - fixed - long.chars().count())
    } else {
        (
            short.clone(),
            w.saturating_sub(fixed + short.chars().count()),
        )
    };
    let store = if room >= 12 {
        format!(" · {}", tail(&app.ctx.store_desc, room - 3))
    } else {
        String::new()
    };
    let left = format!("{base}{store}{ns}");
    let used = 7 + left.chars().count() + right.chars().count();
    let pad = w.saturating_sub(used).max(1);
    let line = Line::from(vec![
        Span::styled(
            " epoxy ",
            t.header().add_modifier(ratatui::style::Modifier::BOLD),
        ),
        Span::raw(left),
        Span::raw(" ".repeat(pad)),
        Span::styled(right, t.accent()),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_crumbs(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let crumbs: Vec<String> = app.stack.iter().map(|p| p.view.title()).collect();
    let left = format!(" {}", crumbs.join(" > "));
    let mut spans = vec![Span::styled(left.clone(), t.muted())];
    // Kinds the cluster has no CRD for (read as empty) stay in view, on the right.
    if let Some(note) = views::crd_note(&app.data.listing.unavailable) {
        let w = area.width as usize;
        let used = left.chars().count() + 2;
        let note = table::ellipsize(&format!("⚠ {note} "), w.saturating_sub(used).max(12));
        let pad = w.saturating_sub(used + note.chars().count()) + 2;
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::styled(note, t.warn()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_view(app: &mut App, f: &mut Frame, area: Rect) {
    let view = app.view().clone();
    match view {
        View::Editor => {
            if let Some(e) = app.editor.as_mut() {
                views::editor::draw(e, &app.data, &app.theme, f, area);
            }
        }
        View::Tester => {
            let ep = app.ctx.endpoint();
            views::tester::draw(&app.view_ctx(), &app.tester, &ep, f, area);
        }
        View::Help => {
            let lines = help::lines(&app.view_ctx(), &app.keymap, &app.help_under());
            draw_lines(app, f, area, " Help ", lines)
        }
        View::Function { upstream, name } => {
            let lines = views::functions::detail_lines(&app.view_ctx(), &upstream, &name);
            draw_lines(
                app,
                f,
                area,
                &format!(" Function · {upstream} · {name} "),
                lines,
            )
        }
        View::Describe { target, yaml } => {
            let cx = app.view_ctx();
            let lines = views::describe::lines(&cx, &target, yaml);
            let title = format!(
                " {} · {} ",
                if yaml { "YAML" } else { "Describe" },
                target.title()
            );
            let series = (!yaml)
                .then(|| views::describe::series(&cx, &target))
                .flatten();
            let ch = views::describe::chart_height(area.height);
            match series {
                Some(s) if ch > 0 => {
                    // The text as tall as it needs (up to what the charts leave); the charts
                    // take the rest.
                    let text_h = (lines.len() as u16 + 2).min(area.height - ch).max(4);
                    let [text, charts] =
                        Layout::vertical([Constraint::Length(text_h), Constraint::Min(ch)])
                            .areas(area);
                    views::describe::draw_charts(&cx, f, charts, &s, "traffic");
                    draw_lines(app, f, text, &title, lines);
                }
                _ => draw_lines(app, f, area, &title, lines),
            }
        }
        View::Request { seq } => {
            let lines = views::request_lines(&app.view_ctx(), seq);
            draw_lines(app, f, area, " Request ", lines.as_ref().clone());
        }
        View::Log => {
            let strip_h = if area.height >= 16 { 6 } else { 4 };
            let [strip, list] =
                Layout::vertical([Constraint::Length(strip_h), Constraint::Min(3)]).areas(area);
            views::log::draw_strip(&app.view_ctx(), f, strip);
            let follow = app.follow;
            draw_list(app, f, list, follow);
        }
        View::Upstreams | View::Discovery => match discovery_error(app) {
            // The selected upstream's discovery error, whole (the column cuts it).
            Some(err) if area.height >= 10 => {
                let [list, detail] =
                    Layout::vertical([Constraint::Min(5), Constraint::Length(4)]).areas(area);
                draw_list(app, f, list, false);
                let t = &app.theme;
                f.render_widget(
                    Paragraph::new(Line::styled(err, t.error()))
                        .wrap(Wrap { trim: true })
                        .block(
                            Block::bordered()
                                .border_style(t.border())
                                .title(Span::styled(" Discovery error ", t.accent())),
                        ),
                    detail,
                );
            }
            _ => draw_list(app, f, area, false),
        },
        _ => draw_list(app, f, area, false),
    }
}

/// The discovery error of the upstream selected in the upstreams or discovery view.
fn discovery_error(app: &App) -> Option<String> {
    let name = match app.selected_item()? {
        views::ItemId::Upstream(u) | views::ItemId::Discovery(u) => u,
        _ => return None,
    };
    app.data
        .discovery
        .iter()
        .find(|(k, _)| k.name == name)
        .and_then(|(k, d)| d.last_error.as_ref().map(|e| format!("{}: {e}", k.name)))
}

/// Draws the current list view, building only the rows on screen; `to_last` selects the last
/// row first (the log, following).
fn draw_list(app: &mut App, f: &mut Frame, area: Rect, to_last: bool) {
    let mut selected = app.page().selected;
    let mut offset = app.page().offset;
    let (meta, rows, shown, total) = {
        let Some(list) = views::list(app.view_ctx(), app.list_ctx()) else {
            return;
        };
        let total = list.len();
        if to_last && total > 0 {
            selected = total - 1;
        }
        let shown = table::scroll(area, selected, &mut offset, total);
        let rows: Vec<TRow> = shown.clone().filter_map(|i| list.row(i)).collect();
        (list.meta(), rows, shown, total)
    };
    let filter = app.page().filter.clone();
    let tv = TableView {
        title: meta.title,
        filter: &filter,
        header: &meta.header,
        widths: &meta.widths,
        rows: &rows,
        first: shown.start,
        total,
        empty: &meta.empty,
    };
    let rows_area = table::render(f, area, &app.theme, &tv, selected, true);
    let page = app.page_mut();
    page.selected = selected;
    page.offset = offset;
    app.list_area = rows_area;
}

fn draw_lines(
    app: &mut App,
    f: &mut Frame,
    area: Rect,
    title: &str,
    lines: Vec<(String, ratatui::style::Style)>,
) {
    let t = &app.theme;
    let block = Block::bordered()
        .border_style(t.border())
        .title(Span::styled(title.to_string(), t.accent()));
    let inner = block.inner(area);
    let h = inner.height as usize;
    let max_top = lines.len().saturating_sub(h);
    let sel = app.page().selected.min(lines.len().saturating_sub(1));
    // The selection is a scroll position here: keep it on screen.
    let top = sel.saturating_sub(h.saturating_sub(1)).min(max_top);
    let w = inner.width as usize;
    let shown: Vec<Line> = lines
        .into_iter()
        .skip(top)
        .take(h)
        .map(|(s, st)| Line::styled(table::ellipsize(&s, w), st))
        .collect();
    f.render_widget(Paragraph::new(shown).block(block), area);
    app.list_area = Rect::default();
}

fn draw_message(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let line = match &app.mode {
        Mode::Command(input) => {
            let (a, c, b) = input.with_cursor();
            let cands = candidates(&input.text);
            let hint = if input.text.trim().is_empty() || cands.is_empty() {
                String::new()
            } else {
                format!("   {}", cands.join(" "))
            };
            Line::from(vec![
                Span::styled(":", t.accent()),
                Span::raw(a),
                Span::styled(c, t.selection()),
                Span::raw(b),
                Span::styled(hint, t.muted()),
            ])
        }
        Mode::Filter(input) => {
            let (a, c, b) = input.with_cursor();
            Line::from(vec![
                Span::styled("/", t.accent()),
                Span::raw(a),
                Span::styled(c, t.selection()),
                Span::raw(b),
                Span::styled("   enter keeps · esc clears", t.muted()),
            ])
        }
        _ => match &app.message {
            Some(m) if m.error => Line::from(vec![
                Span::styled(format!(" ✗ {}", m.text), t.error()),
                Span::styled("  [x] dismiss", t.muted()),
            ]),
            Some(m) if app.now().duration_since(m.at).unwrap_or_default() < INFO_TTL => {
                Line::styled(format!(" {}", m.text), t.ok())
            }
            _ => Line::raw(""),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_footer(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let scopes = match &app.mode {
        Mode::Confirm(_) => vec![crate::tui::keymap::Scope::Confirm],
        _ => {
            let mut s = app.view().scopes();
            if app.view().takes_text() {
                s.retain(|x| *x != crate::tui::keymap::Scope::Global);
            }
            s
        }
    };
    let yaml = app.editor.as_ref().is_some_and(|e| e.yaml_mode());
    let mut items: Vec<(String, String, bool)> = Vec::new();
    for b in app.keymap.bindings_for(&scopes) {
        if !b.footer || (app.ctx.readonly && b.action.writes()) {
            continue;
        }
        // Keys that would do nothing here are not offered.
        if let View::Describe { target, .. } = app.view()
            && b.action == crate::tui::action::Action::Edit
            && !matches!(target, crate::tui::nav::Target::Route(_))
        {
            continue;
        }
        if yaml
            && app.view() == &View::Editor
            && matches!(
                b.action,
                crate::tui::action::Action::NextField | crate::tui::action::Action::PickNext
            )
        {
            continue;
        }
        let Some(k) = b.keys.first() else { continue };
        let help = if b.help.is_empty() {
            b.action.name()
        } else {
            b.help.to_string()
        };
        let is_help = b.action == crate::tui::action::Action::Help;
        items.push((format!("<{k}>"), format!(" {help}  "), is_help));
    }
    // The help key always shows: when not everything fits, it goes last, after what fits.
    let len = |(k, h, _): &(String, String, bool)| k.chars().count() + h.chars().count();
    let w = area.width as usize;
    if items.iter().map(len).sum::<usize>() > w {
        let help = items.iter().position(|i| i.2).map(|i| items.remove(i));
        let room = w.saturating_sub(help.as_ref().map_or(0, len));
        let mut width = 0;
        items.retain(|i| {
            width += len(i);
            width <= room
        });
        items.extend(help);
    }
    let spans: Vec<Span> = items
        .into_iter()
        .flat_map(|(k, h, _)| [Span::styled(k, t.accent()), Span::styled(h, t.muted())])
        .collect();
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_confirm(app: &App, f: &mut Frame, body: Rect, c: &crate::tui::app::Confirm) {
    let t = &app.theme;
    let w = body.width.saturating_sub(4).min(100);
    let h = body
        .height
        .saturating_sub(2)
        .min(c.lines.len() as u16 + 4)
        .max(5);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height.saturating_sub(h)) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, area);
    let compact = crate::tui::widgets::diff::compact(&c.lines, 2);
    let mut lines: Vec<Line> = compact
        .iter()
        .skip(c.scroll)
        .map(|d| match d {
            DiffLine::Same(l) => Line::styled(format!("  {l}"), t.muted()),
            DiffLine::Added(l) => Line::styled(format!("+ {l}"), t.new_style()),
            DiffLine::Removed(l) => Line::styled(format!("- {l}"), t.error()),
        })
        .collect();
    lines.truncate(h.saturating_sub(3) as usize);
    lines.push(Line::from(vec![
        Span::styled("<y> apply  ", t.accent()),
        Span::styled("<n> cancel  ", t.muted()),
        Span::styled("<j/k> scroll", t.muted()),
    ]));
    f.render_widget(
        Paragraph::new(lines).style(t.base()).block(
            Block::bordered().border_style(t.warn()).title(Span::styled(
                table::ellipsize(&format!(" {} ", c.title), w.saturating_sub(2) as usize),
                t.warn(),
            )),
        ),
        area,
    );
}
