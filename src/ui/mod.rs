//! The dashboard: Elm-style state (`state.rs`), actions (`action.rs`) bound
//! to keys (`keymap.rs`) and applied by a pure update (`update.rs`), a pure
//! view (`view.rs`), and the terminal loop (`app.rs`). The run itself is the
//! shared fold, `record::RunView`.

pub mod action;
mod app;
pub mod explorer;
pub mod keymap;
pub mod state;
pub mod update;
pub mod view;

pub use app::{run_dashboard, Source};
pub use explorer::{explorable, run_explorer};
