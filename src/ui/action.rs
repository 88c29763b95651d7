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
    ToggleDistribution,
    LogUp,
    LogDown,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::TogglePause,
        Action::Stop,
        Action::Export,
        Action::NextView,
        Action::PrevView,
        Action::NextMatrix,
        Action::PrevMatrix,
        Action::ToggleLogScale,
        Action::ToggleBlocks,
        Action::ToggleDistribution,
        Action::LogUp,
        Action::LogDown,
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
            Action::ToggleDistribution => "distribution",
            Action::LogUp | Action::LogDown => "scroll log",
            Action::Help => "help",
            Action::Quit => "quit",
            Action::Confirm => "yes",
            Action::Cancel => "no",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::TogglePause => "pause / resume training (between steps)",
            Action::Stop => "stop the run, with a checkpoint (asks first)",
            Action::Export => "export a snapshot (report, data, charts)",
            Action::NextView => "next view",
            Action::PrevView => "previous view",
            Action::NextMatrix => "next matrix",
            Action::PrevMatrix => "previous matrix",
            Action::ToggleLogScale => "perplexity and loss charts: log / linear scale",
            Action::ToggleBlocks => "plain block characters in charts",
            Action::ToggleDistribution => "weights: histogram / distribution over time",
            Action::LogUp => "log: scroll back",
            Action::LogDown => "log: scroll forward",
            Action::Help => "this help",
            Action::Quit => "quit (asks first if that stops the run)",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The help overlay is 76 columns (it fits 80): borders, 22 for the keys
    /// and two spaces leave 50 for a description, which must not be cut.
    #[test]
    fn every_description_fits_the_help_overlay() {
        for a in Action::ALL {
            let n = a.description().chars().count();
            assert!(n <= 50, "{a:?}: {n} characters: {}", a.description());
        }
    }
}
