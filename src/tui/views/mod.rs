//! The views: each list view gives its rows one at a time, with an identity per row, from data
//! derived once per change of what it is made from (see `Cache`); the others (editor, tester,
//! log strip, help) have their own state and drawing.

pub mod credentials;
pub mod describe;
pub mod discovery;
pub mod editor;
pub mod frame;
pub mod functions;
pub mod help;
pub mod log;
pub mod policies;
pub mod request;
pub mod routes;
pub mod tester;
pub mod upstreams;

use super::app::{App, View};
use super::data::Generations;
use super::widgets::table::TRow;
use crate::api::ResourceKey;
use ratatui::layout::Constraint;
use ratatui::style::Style;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Lines of text with their styles (details views).
pub type StyledLines = Vec<(String, Style)>;

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
    Saved(usize),
}

/// What a list view shows around its rows.
pub struct ListMeta {
    pub title: String,
    pub header: Vec<&'static str>,
    pub widths: Vec<Constraint>,
    pub empty: String,
}

pub fn is_list(v: &View) -> bool {
    !matches!(
        v,
        View::Editor
            | View::Tester
            | View::Help
            | View::Function { .. }
            | View::Describe { .. }
            | View::Request { .. }
    )
}

/// One derived value and the key (the generations of its inputs) it was computed for.
pub struct Slot<K, V>(RefCell<Option<(K, V)>>);

impl<K, V> Default for Slot<K, V> {
    fn default() -> Self {
        Slot(RefCell::new(None))
    }
}

impl<K: PartialEq, V: Clone> Slot<K, V> {
    /// The value for `key`: the kept one if it was made for the same key, else `make()`'s.
    pub fn get(&self, key: K, make: impl FnOnce() -> V) -> V {
        if let Some((k, v)) = &*self.0.borrow()
            && *k == key
        {
            return v.clone();
        }
        let v = make();
        *self.0.borrow_mut() = Some((key, v.clone()));
        v
    }
}

/// The list views' derived data, recomputed only when its inputs change (the listing's,
/// report's or discovery's generation; for the filter also the filter and what moves with
/// time), never per frame.
#[derive(Default)]
pub struct Cache {
    upstreams: Slot<u64, Arc<Vec<ResourceKey>>>,
    virtual_services: Slot<u64, Arc<Vec<ResourceKey>>>,
    discovery: Slot<u64, Arc<Vec<ResourceKey>>>,
    functions: Slot<(u64, Option<String>), Arc<Vec<functions::FnRow>>>,
    routes: Slot<(u64, ResourceKey), Arc<routes::RouteRows>>,
    filter: Slot<FilterKey, Arc<Vec<usize>>>,
    /// Requests per route id over the last `routes::TREND` seconds, keyed by the events seen
    /// and the second it was made in.
    pub(crate) trends: Slot<(u64, u64), Arc<routes::Trends>>,
    request: Slot<(u64, Generations), Arc<StyledLines>>,
}

/// What the rows a filter keeps depend on.
#[derive(PartialEq)]
struct FilterKey {
    view: View,
    filter: String,
    generations: Generations,
    /// What else the rows' text moves with: the clock (ages), the rate window, the log.
    stamp: u128,
}

/// The rows of a list view, before filtering.
enum Rows {
    Upstreams(Arc<Vec<ResourceKey>>),
    Functions {
        all: bool,
        upstream: Option<String>,
        fns: Arc<Vec<functions::FnRow>>,
    },
    VirtualServices(Arc<Vec<ResourceKey>>),
    Routes {
        vs: ResourceKey,
        rows: Arc<routes::RouteRows>,
        status: (String, Style),
    },
    Log,
    Discovery(Arc<Vec<ResourceKey>>),
    Saved,
}

/// A list view: its rows are built on demand (only the visible ones are, when drawing).
pub struct List<'a> {
    app: &'a App,
    rows: Rows,
    /// The rows the `/` filter keeps (indices into the view's rows); None: every row.
    shown: Option<Arc<Vec<usize>>>,
}

impl List<'_> {
    fn raw_len(&self) -> usize {
        match &self.rows {
            Rows::Upstreams(k) | Rows::VirtualServices(k) | Rows::Discovery(k) => k.len(),
            Rows::Functions { fns, .. } => fns.len(),
            Rows::Routes { rows, .. } => rows.shadowed_by.len(),
            Rows::Log => self.app.data.log.len(),
            Rows::Saved => self.app.tester.collection.len(),
        }
    }

    fn raw_id(&self, i: usize) -> Option<ItemId> {
        let app = self.app;
        Some(match &self.rows {
            Rows::Upstreams(k) => upstreams::id(app, k.get(i)?)?,
            Rows::Functions { fns, .. } => {
                let f = fns.get(i)?;
                ItemId::Function(f.upstream.clone(), f.name.clone())
            }
            Rows::VirtualServices(k) => ItemId::Vs(k.get(i)?.clone()),
            Rows::Routes { vs, rows, .. } => {
                rows.shadowed_by.get(i)?;
                ItemId::Route(vs.clone(), i)
            }
            Rows::Log => {
                app.data.log.get(i)?;
                ItemId::Event(i)
            }
            Rows::Discovery(k) => ItemId::Discovery(k.get(i)?.name.clone()),
            Rows::Saved => {
                app.tester.collection.get(i)?;
                ItemId::Saved(i)
            }
        })
    }

    fn raw_row(&self, i: usize) -> Option<TRow> {
        let app = self.app;
        Some(match &self.rows {
            Rows::Upstreams(k) => upstreams::row(app, k.get(i)?)?,
            Rows::Functions { fns, all, .. } => functions::row(app, fns.get(i)?, *all),
            Rows::VirtualServices(k) => routes::vs_row(app, k.get(i)?)?,
            Rows::Routes { vs, rows, status } => {
                routes::row(app, vs, i, *rows.shadowed_by.get(i)?, status)?
            }
            Rows::Log => log::row(app, app.data.log.get(i)?),
            Rows::Discovery(k) => discovery::row(app, k.get(i)?)?,
            Rows::Saved => {
                let n = app.tester.collection.get(i)?;
                TRow::new()
                    .styled(n.name.clone(), app.theme.accent())
                    .cell(n.request.method.clone())
                    .cell(n.request.path.clone())
                    .styled(n.request.headers.clone(), app.theme.muted())
                    .styled(n.request.body.clone(), app.theme.muted())
            }
        })
    }

    /// The index in the view's rows of the `i`th row shown.
    fn index(&self, i: usize) -> Option<usize> {
        match &self.shown {
            Some(s) => s.get(i).copied(),
            None => (i < self.raw_len()).then_some(i),
        }
    }

    /// How many rows are shown (after the filter).
    pub fn len(&self) -> usize {
        match &self.shown {
            Some(s) => s.len(),
            None => self.raw_len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the `i`th row shown stands for.
    pub fn id(&self, i: usize) -> Option<ItemId> {
        self.raw_id(self.index(i)?)
    }

    /// The `i`th row shown.
    pub fn row(&self, i: usize) -> Option<TRow> {
        self.raw_row(self.index(i)?)
    }

    pub fn meta(&self) -> ListMeta {
        let app = self.app;
        let n = self.len();
        match &self.rows {
            Rows::Upstreams(_) => upstreams::meta(n),
            Rows::Functions { upstream, .. } => functions::meta(upstream.as_deref(), n),
            Rows::VirtualServices(_) => routes::vs_meta(n),
            Rows::Routes { vs, .. } => routes::meta(app, vs, n),
            Rows::Log => log::meta(app, n),
            Rows::Discovery(_) => discovery::meta(n),
            Rows::Saved => ListMeta {
                title: format!("Saved requests ({n})"),
                header: vec!["NAME", "METHOD", "PATH", "HEADERS", "BODY"],
                widths: vec![
                    Constraint::Fill(2),
                    Constraint::Length(7),
                    Constraint::Fill(3),
                    Constraint::Fill(2),
                    Constraint::Fill(2),
                ],
                empty: "none yet: in the tester, alt-: then keep NAME saves the request".into(),
            },
        }
    }

    /// The indices of the rows whose text `filter` matches (a case-insensitive regex; plain
    /// text when it is not a valid regex).
    fn matching(&self, filter: &str) -> Vec<usize> {
        let re = regex::RegexBuilder::new(filter)
            .case_insensitive(true)
            .build()
            .ok();
        let needle = filter.to_lowercase();
        (0..self.raw_len())
            .filter(|&i| {
                let text = self.raw_row(i).map(|r| r.text()).unwrap_or_default();
                match &re {
                    Some(re) => re.is_match(&text),
                    None => text.to_lowercase().contains(&needle),
                }
            })
            .collect()
    }
}

/// The derived rows of a virtual service's routes (shadowing), from the cache.
pub fn route_rows(app: &App, vs: &ResourceKey) -> Arc<routes::RouteRows> {
    let g = app.data.generations();
    app.cache
        .routes
        .get((g.listing, vs.clone()), || Arc::new(routes::rows(app, vs)))
}

/// The lines of a request's details, from the cache (its match trace walks the routes).
pub fn request_lines(app: &App, seq: u64) -> Arc<StyledLines> {
    app.cache.request.get((seq, app.data.generations()), || {
        Arc::new(request::lines(app, seq))
    })
}

fn rows_of(app: &App, view: &View) -> Option<Rows> {
    let cache = &app.cache;
    let g = app.data.generations();
    Some(match view {
        View::Upstreams => Rows::Upstreams(
            cache
                .upstreams
                .get(g.listing, || Arc::new(upstreams::keys(app))),
        ),
        View::Functions { upstream } => Rows::Functions {
            all: upstream.is_none(),
            upstream: upstream.clone(),
            fns: cache.functions.get((g.listing, upstream.clone()), || {
                Arc::new(functions::rows(app, upstream.as_deref()))
            }),
        },
        View::VirtualServices => {
            Rows::VirtualServices(cache.virtual_services.get(g.listing, || {
                Arc::new(app.data.virtual_services().map(|r| r.key()).collect())
            }))
        }
        View::Routes { vs } => Rows::Routes {
            vs: vs.clone(),
            rows: route_rows(app, vs),
            status: routes::status_of(app, vs),
        },
        View::Log => Rows::Log,
        View::Saved => Rows::Saved,
        View::Discovery => Rows::Discovery(cache.discovery.get(g.discovery, || {
            Arc::new(app.data.discovery.keys().cloned().collect())
        })),
        _ => return None,
    })
}

/// The current list view, filtered by its `/` filter.
pub fn list(app: &App) -> Option<List<'_>> {
    let page = app.page();
    let mut list = List {
        app,
        rows: rows_of(app, &page.view)?,
        shown: None,
    };
    if !page.filter.is_empty() {
        let stamp = match page.view {
            View::Upstreams | View::Discovery => app
                .now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            View::Routes { .. } => app.data.window_version() as u128,
            View::Log => app.data.total as u128,
            _ => 0,
        };
        let key = FilterKey {
            view: page.view.clone(),
            filter: page.filter.clone(),
            generations: app.data.generations(),
            stamp,
        };
        list.shown = Some(
            app.cache
                .filter
                .get(key, || Arc::new(list.matching(&page.filter))),
        );
    }
    Some(list)
}

pub fn item_count(app: &App) -> usize {
    match app.view() {
        View::Help => help::lines(app).len(),
        View::Function { upstream, name } => functions::detail_lines(app, upstream, name).len(),
        View::Describe { target, yaml } => describe::lines(app, target, *yaml).len(),
        View::Request { seq } => request_lines(app, *seq).len(),
        _ => list(app).map_or(0, |l| l.len()),
    }
}

pub fn selected_item(app: &App) -> Option<ItemId> {
    match app.view() {
        View::Function { upstream, name } => Some(ItemId::Function(upstream.clone(), name.clone())),
        View::Describe { target, .. } => match target {
            describe::Target::Route(id) => {
                let (vs, i) = app.data.locate(id)?;
                Some(ItemId::Route(vs, i))
            }
            describe::Target::Resource(k) if k.kind == crate::api::Kind::Upstream => {
                Some(ItemId::Upstream(k.name.clone()))
            }
            describe::Target::Resource(k) if k.kind == crate::api::Kind::VirtualService => {
                Some(ItemId::Vs(k.clone()))
            }
            describe::Target::Function { upstream, name } => {
                Some(ItemId::Function(upstream.clone(), name.clone()))
            }
            _ => None,
        },
        View::Request { seq } => Some(ItemId::Event(
            (*seq + app.data.log.len() as u64).checked_sub(app.data.total)? as usize,
        )),
        View::Log if app.follow => {
            // Following: the newest request is the selected one, whatever was drawn last.
            let l = list(app)?;
            l.id(l.len().checked_sub(1)?)
        }
        _ => list(app)?.id(app.page().selected),
    }
}
