//! The terminal loop: owns the screen, drains engine records without ever
//! blocking on them, maps keys to actions, and restores the terminal on every
//! exit path (ratatui's init installs a panic hook that restores first).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent, KeyEventKind};

use super::export::export;
use super::keymap::Keymap;
use super::state::State;
use super::update::{update, Command};
use super::view::draw;
use crate::engine::{Control, Record};

/// Where the records come from.
pub enum Source {
    /// A run in progress: records arrive on the channel; commands go to `control`.
    Live {
        records: Receiver<Record>,
        control: Arc<Control>,
    },
    /// A finished or stopped run read back from its directory.
    Recorded(Vec<Record>),
}

/// Runs the dashboard until the user quits (or a signal arrives). Returns
/// the final state for the caller to report.
pub fn run_dashboard(
    source: Source,
    run_dir: PathBuf,
    keymap: Keymap,
    terminate: Arc<AtomicBool>,
) -> std::io::Result<State> {
    if !std::io::stdout().is_terminal() {
        return Err(std::io::Error::other(
            "standard output is not a terminal; use `iq-tui run FILE --headless` for plain progress lines",
        ));
    }
    let mut state = State::new(matches!(source, Source::Recorded(_)));
    state.keys = keymap.describe();
    let (records, control) = match source {
        Source::Live { records, control } => (Some(records), Some(control)),
        Source::Recorded(all) => {
            for r in &all {
                state.run.apply(r);
            }
            (None, None)
        }
    };
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        let mut dirty = true;
        let mut last_draw = Instant::now();
        let mut engine_done = records.is_none();
        loop {
            if let Some(rx) = &records {
                loop {
                    match rx.try_recv() {
                        Ok(r) => {
                            if matches!(
                                r.event,
                                crate::engine::Event::Paused | crate::engine::Event::Resumed
                            ) {
                                state.notice = None; // "pausing…" is now a fact on the status line
                            }
                            state.run.apply(&r);
                            dirty = true;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            engine_done = true;
                            break;
                        }
                    }
                }
            }
            if terminate.load(Ordering::SeqCst) {
                if let Some(c) = &control {
                    c.stop();
                }
                return Ok(());
            }
            if dirty || last_draw.elapsed() > Duration::from_millis(500) {
                terminal.draw(|f| draw(f, &state))?;
                dirty = false;
                last_draw = Instant::now();
            }
            if !event::poll(Duration::from_millis(50))? {
                continue;
            }
            let TermEvent::Key(key) = event::read()? else {
                dirty = true; // resize and the like
                continue;
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            let Some(action) = keymap.action_for(key) else {
                continue;
            };
            dirty = true;
            match update(&mut state, action) {
                Some(Command::Pause) => {
                    if let Some(c) = &control {
                        c.pause();
                        state.notice = Some("pausing after the current step…".into());
                    }
                }
                Some(Command::Resume) => {
                    if let Some(c) = &control {
                        c.resume();
                        state.notice = None;
                    }
                }
                Some(Command::Stop) => {
                    if let Some(c) = &control {
                        c.stop();
                    }
                }
                Some(Command::Export) => {
                    state.notice = Some(match export(&run_dir, &state.run) {
                        Ok(dir) => format!("exported to {}", dir.display()),
                        Err(e) => format!("export failed: {e}"),
                    });
                }
                Some(Command::Exit) => {
                    if let Some(c) = &control {
                        if !engine_done {
                            c.stop();
                        }
                    }
                    return Ok(());
                }
                None => {}
            }
        }
    })();
    ratatui::restore();
    result.map(|()| state)
}
