//! What a key (or a mouse event, or a command) asks the console to do.

use serde::{Deserialize, Serialize};

/// An action a key can be bound to. The names (snake case) are the ones the keys file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Back,
    Help,
    Command,
    Filter,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    NextPane,
    Test,
    Edit,
    New,
    Delete,
    MoveUp,
    MoveDown,
    Undo,
    Redo,
    RouteTo,
    Send,
    CopyCurl,
    History,
    Follow,
    Dismiss,
    Apply,
    ToggleYaml,
    NextField,
    PrevField,
    PickPrev,
    PickNext,
    Confirm,
    Cancel,
    Describe,
    Yaml,
    Save,
    GotoRoute,
}

impl Action {
    pub const ALL: [Action; 39] = [
        Action::Quit,
        Action::Back,
        Action::Help,
        Action::Command,
        Action::Filter,
        Action::Up,
        Action::Down,
        Action::Top,
        Action::Bottom,
        Action::PageUp,
        Action::PageDown,
        Action::Open,
        Action::NextPane,
        Action::Test,
        Action::Edit,
        Action::New,
        Action::Delete,
        Action::MoveUp,
        Action::MoveDown,
        Action::Undo,
        Action::Redo,
        Action::RouteTo,
        Action::Send,
        Action::CopyCurl,
        Action::History,
        Action::Follow,
        Action::Dismiss,
        Action::Apply,
        Action::ToggleYaml,
        Action::NextField,
        Action::PrevField,
        Action::PickPrev,
        Action::PickNext,
        Action::Confirm,
        Action::Cancel,
        Action::Describe,
        Action::Yaml,
        Action::Save,
        Action::GotoRoute,
    ];

    /// The name used in the keys file (`move_up`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn from_name(s: &str) -> Option<Action> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Whether the action changes the store (refused in read-only mode).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Action::Edit
                | Action::New
                | Action::Delete
                | Action::MoveUp
                | Action::MoveDown
                | Action::Undo
                | Action::Redo
                | Action::RouteTo
                | Action::Apply
        )
    }
}
