//! The dashboard's state: the run as its records say ([`RunView`], the
//! shared fold) plus what the user chose to look at.

use serde::Serialize;

use super::action::KeyHelp;
use crate::record::{RunStatus, RunView};

/// The dashboard's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum View {
    Overview,
    Training,
    Weights,
    Sparsity,
    Log,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Training,
        View::Weights,
        View::Sparsity,
        View::Log,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Training => "Training",
            View::Weights => "Weights",
            View::Sparsity => "Sparsity",
            View::Log => "Log",
        }
    }
}

/// The questions the dashboard asks before acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Confirm {
    /// Quit, which stops a run of this process.
    Quit,
    /// Stop the run.
    Stop,
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
    /// A question on screen, waiting for yes or no.
    pub confirm: Option<Confirm>,
    /// Nothing to pause or stop: the run is over, or no process writes it.
    pub read_only: bool,
    /// Following a run that another process writes (`iq-tui open`):
    /// quitting leaves it running.
    pub watching: bool,
    /// The process writing a followed run (its pid), while it lives.
    pub writer: Option<String>,
    /// Distributions over time instead of the histogram (Weights view).
    pub distribution: bool,
    /// Lines the log is scrolled back from its end.
    pub log_scroll: usize,
    /// Opened from the explorer: Esc goes back to it.
    pub back: bool,
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
            confirm: None,
            read_only,
            watching: false,
            writer: None,
            distribution: false,
            log_scroll: 0,
            back: false,
            notice: None,
            keys,
        }
    }

    /// Whether pause and stop can act: a run that is going, in this process
    /// or in one that a followed run's lock names.
    pub fn controllable(&self) -> bool {
        !self.read_only && self.is_running()
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.run.status(),
            RunStatus::Starting | RunStatus::Running | RunStatus::Paused
        )
    }
}
