//! The views: each list view gives its rows one at a time, with an identity per row, from data
//! derived once per change of what it is made from (see `Cache`); the others (editor, tester,
//! log strip, help) have their own state and drawing.

pub mod credentials;
pub mod describe;
pub mod discovery;
pub mod editor;
pub mod functions;
pub mod help;
pub mod log;
pub mod policies;
pub mod request;
pub mod routes;
pub mod tester;
pub mod upstreams;

use super::data::{Data, Generations};
use super::nav::{Page, View};
use super::theme::Theme;
use super::widgets::table::TRow;
use crate::api::{Kind, ResourceKey};
use crate::gateway::Gateway;
use crate::tester::send::Named;
use ratatui::layout::Constraint;
use ratatui::style::Style;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every view sees: the console's data, the theme, the clock, the settings that change
/// what it shows, and the cache of derived rows. Never the `App`: a view draws and answers
/// questions about its rows; what a key asks is an `Action` the app applies.
#[derive(Clone, Copy)]
pub struct ViewCtx<'a> {
    pub data: &'a Data,
    pub theme: &'a Theme,
    pub cache: &'a Cache,
    /// Its route table (match traces) and listeners (certificates).
    pub gateway: &'a Gateway,
    /// The namespace the console works in (routes read relative to it).
    pub namespace: &'a str,
    pub readonly: bool,
    pub now: SystemTime,
    /// The clock is fixed (snapshot tests): what differs run to run (durations) is not shown.
    pub fixed_clock: bool,
}

/// A list view's own state: its page (selection, filter), and what the log and the saved
/// requests keep.
#[derive(Clone, Copy)]
pub struct ListCtx<'a> {
    pub page: &'a Page,
    /// The log follows its newest request.
    pub follow: bool,
    pub saved: &'a [Named],
}

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
    cx: ViewCtx<'a>,
    follow: bool,
    saved: &'a [Named],
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
            Rows::Log => self.cx.data.log.len(),
            Rows::Saved => self.saved.len(),
        }
    }

    fn raw_id(&self, i: usize) -> Option<ItemId> {
        let cx = &self.cx;
        Some(match &self.rows {
            Rows::Upstreams(k) => upstreams::id(cx, k.get(i)?)?,
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
                cx.data.log.get(i)?;
                ItemId::Event(i)
            }
            Rows::Discovery(k) => ItemId::Discovery(k.get(i)?.name.clone()),
            Rows::Saved => {
                self.saved.get(i)?;
                ItemId::Saved(i)
            }
        })
    }

    fn raw_row(&self, i: usize) -> Option<TRow> {
        let cx = &self.cx;
        Some(match &self.rows {
            Rows::Upstreams(k) => upstreams::row(cx, k.get(i)?)?,
            Rows::Functions { fns, all, .. } => functions::row(cx, fns.get(i)?, *all),
            Rows::VirtualServices(k) => routes::vs_row(cx, k.get(i)?)?,
            Rows::Routes { vs, rows, status } => {
                routes::row(cx, vs, i, *rows.shadowed_by.get(i)?, status)?
            }
            Rows::Log => log::row(cx, cx.data.log.get(i)?),
            Rows::Discovery(k) => discovery::row(cx, k.get(i)?)?,
            Rows::Saved => {
                let n = self.saved.get(i)?;
                TRow::new()
                    .styled(n.name.clone(), cx.theme.accent())
                    .cell(n.request.method.clone())
                    .cell(n.request.path.clone())
                    .styled(n.request.headers.clone(), cx.theme.muted())
                    .styled(n.request.body.clone(), cx.theme.muted())
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
        let mut meta = self.own_meta();
        // An empty list of a kind the cluster has no CRD for says so, not "none yet".
        let kind = match &self.rows {
            Rows::Upstreams(_) | Rows::Functions { .. } | Rows::Discovery(_) => Kind::Upstream,
            Rows::VirtualServices(_) | Rows::Routes { .. } => Kind::VirtualService,
            Rows::Log | Rows::Saved => return meta,
        };
        if self.cx.data.listing.unavailable.contains(&kind) {
            meta.empty = crate::store::kube::absent_note(kind);
        }
        meta
    }

    fn own_meta(&self) -> ListMeta {
        let cx = &self.cx;
        let n = self.len();
        match &self.rows {
            Rows::Upstreams(_) => upstreams::meta(n),
            Rows::Functions { upstream, .. } => functions::meta(upstream.as_deref(), n),
            Rows::VirtualServices(_) => routes::vs_meta(n),
            Rows::Routes { vs, .. } => routes::meta(cx, vs, n),
            Rows::Log => log::meta(self.follow, n),
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
pub fn route_rows(cx: &ViewCtx, vs: &ResourceKey) -> Arc<routes::RouteRows> {
    let g = cx.data.generations();
    cx.cache
        .routes
        .get((g.listing, vs.clone()), || Arc::new(routes::rows(cx, vs)))
}

/// The lines of a request's details, from the cache (its match trace walks the routes).
pub fn request_lines(cx: &ViewCtx, seq: u64) -> Arc<StyledLines> {
    cx.cache.request.get((seq, cx.data.generations()), || {
        Arc::new(request::lines(cx, seq))
    })
}

fn rows_of(cx: &ViewCtx, view: &View) -> Option<Rows> {
    let cache = cx.cache;
    let g = cx.data.generations();
    Some(match view {
        View::Upstreams => Rows::Upstreams(
            cache
                .upstreams
                .get(g.listing, || Arc::new(upstreams::keys(cx))),
        ),
        View::Functions { upstream } => Rows::Functions {
            all: upstream.is_none(),
            upstream: upstream.clone(),
            fns: cache.functions.get((g.listing, upstream.clone()), || {
                Arc::new(functions::rows(cx, upstream.as_deref()))
            }),
        },
        View::VirtualServices => {
            Rows::VirtualServices(cache.virtual_services.get(g.listing, || {
                Arc::new(cx.data.virtual_services().map(|r| r.key()).collect())
            }))
        }
        View::Routes { vs } => Rows::Routes {
            vs: vs.clone(),
            rows: route_rows(cx, vs),
            status: routes::status_of(cx, vs),
        },
        View::Log => Rows::Log,
        View::Saved => Rows::Saved,
        View::Discovery => Rows::Discovery(cache.discovery.get(g.discovery, || {
            Arc::new(cx.data.discovery.keys().cloned().collect())
        })),
        _ => return None,
    })
}

/// The list view of `lc.page`, filtered by its `/` filter (None: not a list view).
pub fn list<'a>(cx: ViewCtx<'a>, lc: ListCtx<'a>) -> Option<List<'a>> {
    let page = lc.page;
    let mut list = List {
        cx,
        follow: lc.follow,
        saved: lc.saved,
        rows: rows_of(&cx, &page.view)?,
        shown: None,
    };
    if !page.filter.is_empty() {
        let stamp = match page.view {
            View::Upstreams | View::Discovery => cx
                .now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            View::Routes { .. } => cx.data.window_version() as u128,
            View::Log => cx.data.total as u128,
            _ => 0,
        };
        let key = FilterKey {
            view: page.view.clone(),
            filter: page.filter.clone(),
            generations: cx.data.generations(),
            stamp,
        };
        list.shown = Some(
            cx.cache
                .filter
                .get(key, || Arc::new(list.matching(&page.filter))),
        );
    }
    Some(list)
}

/// The note the frame keeps in view while the cluster lacks CRDs (their kinds read as empty):
/// `cluster lacks CRDs: authconfigs, ratelimitconfigs`.
pub fn crd_note(unavailable: &[Kind]) -> Option<String> {
    if unavailable.is_empty() {
        return None;
    }
    let kinds: Vec<&str> = unavailable.iter().map(|k| k.plural()).collect();
    Some(format!("cluster lacks CRDs: {}", kinds.join(", ")))
}
