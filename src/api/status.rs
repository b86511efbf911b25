//! A resource's status, derived from validation: Accepted, Warning or Rejected, as in Gloo.

use super::resource::ResourceKey;
use super::validate::{Problem, Severity};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    Accepted,
    Warning,
    Rejected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Accepted => "Accepted",
            State::Warning => "Warning",
            State::Rejected => "Rejected",
        }
    }
}

/// What `get -o yaml` shows under `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub reported_by: &'static str,
}

impl Status {
    pub fn accepted() -> Self {
        Status {
            state: State::Accepted,
            reason: None,
            warnings: Vec::new(),
            reported_by: "epoxy",
        }
    }

    /// The status a resource gets from its problems.
    pub fn from_problems<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> Self {
        let mut s = Status::accepted();
        let mut errors = Vec::new();
        for p in problems {
            let line = if p.path.is_empty() {
                p.reason.clone()
            } else {
                format!("{}: {}", p.path, p.reason)
            };
            match p.severity {
                Severity::Error => errors.push(line),
                Severity::Warning => s.warnings.push(line),
            }
        }
        if !errors.is_empty() {
            s.state = State::Rejected;
            s.reason = Some(errors.join("; "));
        } else if !s.warnings.is_empty() {
            s.state = State::Warning;
        }
        s
    }
}

/// Statuses of every key named, from a validation's problems.
pub fn statuses<'a>(
    keys: impl IntoIterator<Item = &'a ResourceKey>,
    problems: &[Problem],
) -> BTreeMap<ResourceKey, Status> {
    keys.into_iter()
        .map(|k| {
            (
                k.clone(),
                Status::from_problems(problems.iter().filter(|p| &p.key == k)),
            )
        })
        .collect()
}
