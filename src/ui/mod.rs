//! The dashboard: Elm-style state (`state.rs`), actions and a pure update
//! (`update.rs`), a pure view (`view.rs`), and the terminal loop (`app.rs`).

mod app;
pub mod keymap;
pub mod state;
pub mod update;
pub mod view;

pub use app::{run_dashboard, Source};
