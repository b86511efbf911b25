//! The views: each list view turns the live data into a table with an identity per row; the
//! others (editor, tester, log, help) have their own state and drawing.

pub mod discovery;
pub mod editor;
pub mod frame;
pub mod functions;
pub mod help;
pub mod log;
pub mod routes;
pub mod tester;
pub mod upstreams;

use super::app::{App, View};
use super::widgets::table::TRow;
use crate::api::ResourceKey;
use ratatui::layout::Constraint;

/// What a row stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemId {
    Upstream(String),
    Function(String, String),
    Vs(ResourceKey),
    Route(ResourceKey, usize),
    Event(usize),
    Discovery(String),
    Line(usize),
}

pub struct ListTable {
    pub title: String,
    pub header: Vec<&'static str>,
    pub widths: Vec<Constraint>,
    pub rows: Vec<TRow>,
    pub ids: Vec<ItemId>,
    pub empty: String,
}

pub fn is_list(v: &View) -> bool {
    !matches!(
        v,
        View::Editor | View::Tester | View::Help | View::Function { .. }
    )
}

/// The table of a list view, before filtering.
fn raw_table(app: &App, view: &View) -> Option<ListTable> {
    Some(match view {
        View::Upstreams => upstreams::table(app),
        View::Functions { upstream } => functions::table(app, upstream.as_deref()),
        View::VirtualServices => routes::vs_table(app),
        View::Routes { vs } => routes::table(app, vs),
        View::Log => log::table(app),
        View::Discovery => discovery::table(app),
        _ => return None,
    })
}

/// The table of the current view, filtered by its `/` filter (a case-insensitive regex; plain
/// text when it is not a valid regex).
pub fn table(app: &App) -> Option<ListTable> {
    let page = app.page();
    let mut t = raw_table(app, &page.view)?;
    if !page.filter.is_empty() {
        let re = regex::RegexBuilder::new(&page.filter)
            .case_insensitive(true)
            .build()
            .ok();
        let needle = page.filter.to_lowercase();
        let keep: Vec<bool> = t
            .rows
            .iter()
            .map(|r| {
                let text = r.text();
                match &re {
                    Some(re) => re.is_match(&text),
                    None => text.to_lowercase().contains(&needle),
                }
            })
            .collect();
        let mut k = keep.iter();
        t.rows.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        t.ids.retain(|_| *k.next().unwrap_or(&false));
    }
    Some(t)
}

pub fn item_count(app: &App) -> usize {
    match app.view() {
        View::Help => help::lines(app).len(),
        View::Function { upstream, name } => functions::detail_lines(app, upstream, name).len(),
        _ => table(app).map(|t| t.ids.len()).unwrap_or(0),
    }
}

pub fn selected_item(app: &App) -> Option<ItemId> {
    match app.view() {
        View::Function { upstream, name } => Some(ItemId::Function(upstream.clone(), name.clone())),
        _ => table(app)?.ids.get(app.page().selected).cloned(),
    }
}
