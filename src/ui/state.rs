//! The dashboard's state: the run as its records say ([`RunView`], the
//! shared fold) plus what the user chose to look at.

use serde::Serialize;

use super::action::KeyHelp;
use crate::record::{RunStatus, RunView};

/// The dashboard's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum View {
    Overview,
    Weights,
    Sparsity,
    Log,
}

impl View {
    pub const ALL: [View; 4] = [View::Overview, View::Weights, View::Sparsity, View::Log];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Weights => "Weights",
            View::Sparsity => "Sparsity",
            View::Log => "Log",
        }
    }
}

/// Records plus what the user chose to look at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    pub run: RunView,
    pub view: View,
    /// Index into `run.matrices`.
    pub selected: usize,
    pub log_scale: bool,
    /// Plain block characters instead of braille in charts.
    pub blocks: bool,
    pub help: bool,
    pub confirm_quit: bool,
    /// A reopened run: nothing to pause or stop.
    pub read_only: bool,
    /// Last message for the status line (export done, …).
    pub notice: Option<String>,
    /// The keys of every action, from the keymap in force: the help
    /// overlay and the footer's hints.
    #[serde(skip)]
    pub keys: Vec<KeyHelp>,
}

impl State {
    pub fn new(read_only: bool, keys: Vec<KeyHelp>) -> Self {
        Self {
            run: RunView::default(),
            view: View::Overview,
            selected: 0,
            // the loss falls by orders of magnitude across iterations
            log_scale: true,
            blocks: false,
            help: false,
            confirm_quit: false,
            read_only,
            notice: None,
            keys,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.run.status(),
            RunStatus::Starting | RunStatus::Running | RunStatus::Paused
        )
    }
}
