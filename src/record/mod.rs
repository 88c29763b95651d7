//! A run's record, and everything that reads it.
//!
//! The engine emits [`Record`]s; the store appends them to `events.jsonl`;
//! the dashboard, the headless printer, `open` and the report all fold them
//! with [`RunView`] and name things with the labels here. This room sits
//! below all of those and imports none of them, so every reader of a run
//! agrees with every other.

mod events;
mod float;
mod fold;
pub mod format;
pub mod milestone;
pub mod series;
mod summary;

pub use events::{
    Event, LogLevel, MatrixReport, ModelTag, Phase, Record, WeightSnapshot, PERCENTILES,
};
pub use fold::{Ending, MatrixTrack, PplRow, RunStatus, RunView, TrainPoint};
pub use series::Series;
pub use summary::{
    CorpusSummary, EpochSummary, FinalSummary, IterationSummary, MatrixSummary, OneShotSummary,
    PplPair, PrunedSummary, Summary,
};

/// Receives every record, in order. Must return quickly: the engine calls
/// it between training steps and never waits for a reader.
pub trait Listener {
    fn on_event(&mut self, record: &Record);
}

impl<F: FnMut(&Record)> Listener for F {
    fn on_event(&mut self, record: &Record) {
        self(record)
    }
}
