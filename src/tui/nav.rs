//! Where the console is: the views and the navigation stack of pages (each with its
//! selection and filter). Plain data, shared by the app and the views.

use super::keymap::Scope;
use crate::api::ResourceKey;

/// What a describe or YAML view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource(ResourceKey),
    /// A route, by its id (it is found wherever it is now).
    Route(String),
    Function {
        upstream: String,
        name: String,
    },
}

impl Target {
    pub fn title(&self) -> String {
        match self {
            Target::Resource(k) => k.name.clone(),
            Target::Route(id) => id.rsplit('/').next().unwrap_or(id).to_string(),
            Target::Function { name, .. } => name.clone(),
        }
    }
}

/// The views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Upstreams,
    Functions {
        upstream: Option<String>,
    },
    Function {
        upstream: String,
        name: String,
    },
    VirtualServices,
    Routes {
        vs: ResourceKey,
    },
    Editor,
    Tester,
    Log,
    Discovery,
    Help,
    /// One resource, route or function, described or as YAML (`d`, `y`).
    Describe {
        target: Target,
        yaml: bool,
    },
    /// The tester's saved, named requests.
    Saved,
    /// One request of the access log, by sequence number.
    Request {
        seq: u64,
    },
}

impl View {
    pub fn title(&self) -> String {
        match self {
            View::Upstreams => "upstreams".into(),
            View::Functions { upstream: None } => "functions".into(),
            View::Functions { upstream: Some(u) } => format!("{u} > functions"),
            View::Function { name, .. } => name.clone(),
            View::VirtualServices => "virtualservices".into(),
            View::Routes { vs } => format!("{} > routes", vs.name),
            View::Editor => "edit".into(),
            View::Tester => "test".into(),
            View::Log => "log".into(),
            View::Discovery => "discovery".into(),
            View::Help => "help".into(),
            View::Describe { target, yaml } => {
                format!(
                    "{} ({})",
                    target.title(),
                    if *yaml { "yaml" } else { "describe" }
                )
            }
            View::Request { seq } => format!("request {seq}"),
            View::Saved => "saved requests".into(),
        }
    }

    /// The key scopes of the view, most specific first.
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            View::Upstreams => vec![Scope::Upstreams, Scope::List, Scope::Global],
            View::Functions { .. } => vec![Scope::Functions, Scope::List, Scope::Global],
            View::Function { .. } => vec![Scope::Function, Scope::List, Scope::Global],
            View::VirtualServices => vec![Scope::VirtualServices, Scope::List, Scope::Global],
            View::Routes { .. } => vec![Scope::Routes, Scope::List, Scope::Global],
            View::Editor => vec![Scope::Editor],
            View::Tester => vec![Scope::Tester],
            View::Log => vec![Scope::Log, Scope::List, Scope::Global],
            View::Discovery => vec![Scope::Discovery, Scope::List, Scope::Global],
            View::Help => vec![Scope::List, Scope::Global],
            View::Describe { .. } => vec![Scope::Describe, Scope::List, Scope::Global],
            View::Request { .. } => vec![Scope::Request, Scope::List, Scope::Global],
            View::Saved => vec![Scope::Saved, Scope::List, Scope::Global],
        }
    }

    /// Views whose keys go to a text input unless the view binds them.
    pub fn takes_text(&self) -> bool {
        matches!(self, View::Editor | View::Tester)
    }
}

/// A view on the navigation stack, with its selection and filter.
#[derive(Debug, Clone)]
pub struct Page {
    pub view: View,
    pub selected: usize,
    pub offset: usize,
    pub filter: String,
}

impl Page {
    pub fn new(view: View) -> Self {
        Page {
            view,
            selected: 0,
            offset: 0,
            filter: String::new(),
        }
    }
}
