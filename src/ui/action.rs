//! What a user can ask of the dashboard, independent of the keys that ask
//! it: `keymap` binds keys to these, `update` applies them, and the footer and
//! help overlay describe them from the keymap in force.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Action {
    TogglePause,
    Stop,
    Export,
    Help,
    Quit,
    Confirm,
    Cancel,
    NextView,
    PrevView,
    NextMatrix,
    PrevMatrix,
    ToggleLogScale,
    ToggleBlocks,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::TogglePause,
        Action::Stop,
        Action::Export,
        Action::NextView,
        Action::PrevView,
        Action::NextMatrix,
        Action::PrevMatrix,
        Action::ToggleLogScale,
        Action::ToggleBlocks,
        Action::Help,
        Action::Quit,
        Action::Confirm,
        Action::Cancel,
    ];

    /// A word or two for the footer's key hints.
    pub fn hint(self) -> &'static str {
        match self {
            Action::TogglePause => "pause",
            Action::Stop => "stop",
            Action::Export => "export",
            Action::NextView | Action::PrevView => "view",
            Action::NextMatrix | Action::PrevMatrix => "matrix",
            Action::ToggleLogScale => "log scale",
            Action::ToggleBlocks => "blocks",
            Action::Help => "help",
            Action::Quit => "quit",
            Action::Confirm => "yes",
            Action::Cancel => "no",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::TogglePause => "pause / resume training (between steps)",
            Action::Stop => "stop the run (records stay consistent)",
            Action::Export => "export a snapshot (JSON and CSV)",
            Action::NextView => "next view",
            Action::PrevView => "previous view",
            Action::NextMatrix => "next matrix",
            Action::PrevMatrix => "previous matrix",
            Action::ToggleLogScale => "quantization loss: log / linear scale",
            Action::ToggleBlocks => "plain block characters in charts",
            Action::Help => "this help",
            Action::Quit => "quit (asks first while a run is going)",
            Action::Confirm => "yes (in a question)",
            Action::Cancel => "no (in a question)",
        }
    }
}

/// The keys bound to one action, for the help overlay and the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHelp {
    pub action: Action,
    /// Key labels in binding order; empty when the action is unbound.
    pub keys: Vec<String>,
}
