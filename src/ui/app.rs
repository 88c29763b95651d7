//! The terminal loop, on a single-threaded tokio runtime: waits on whichever
//! comes first of an engine record, a key, or a tick, so it never blocks on
//! training. Restores the terminal on every exit path (ratatui's init
//! installs a panic hook that restores first).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

use super::keymap::Keymap;
use super::state::State;
use super::update::{update, Command};
use super::view::draw;
use crate::engine::Control;
use crate::record::RunStatus;
use crate::record::{Event, Record};

/// Where the records come from.
pub enum Source {
    /// A run in progress: records arrive on the channel; commands go to `control`.
    Live {
        records: UnboundedReceiver<Record>,
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
    let mut state = State::new(matches!(source, Source::Recorded(_)), keymap.describe());
    let (records, control) = match source {
        Source::Live { records, control } => (Some(records), Some(control)),
        Source::Recorded(all) => {
            for r in &all {
                state.run.apply(r);
            }
            (None, None)
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = ratatui::init();
    let result = runtime.block_on(event_loop(
        &mut terminal,
        &mut state,
        records,
        control,
        &keymap,
        &run_dir,
        &terminate,
    ));
    ratatui::restore();
    result.map(|()| state)
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    state: &mut State,
    mut records: Option<UnboundedReceiver<Record>>,
    control: Option<Arc<Control>>,
    keymap: &Keymap,
    run_dir: &std::path::Path,
    terminate: &AtomicBool,
) -> std::io::Result<()> {
    let mut keys = EventStream::new();
    // Redraws between records keep the ETA and the "pausing…" notice honest.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    terminal.draw(|f| draw(f, state))?;
    loop {
        if terminate.load(Ordering::SeqCst) {
            if let Some(c) = &control {
                c.stop();
            }
            return Ok(());
        }
        let changed = tokio::select! {
            record = async { records.as_mut()?.recv().await }, if records.is_some() => {
                match record {
                    Some(first) => {
                        apply(state, &first);
                        // Drain what else is waiting: one redraw per batch.
                        while let Some(r) = records.as_mut().and_then(|rx| rx.try_recv().ok()) {
                            apply(state, &r);
                        }
                    }
                    None => {
                        records = None; // the engine is done
                        if state.is_running() {
                            state.run.status = Some(RunStatus::Failed("the training thread ended unexpectedly".into()));
                        }
                    }
                }
                true
            }
            key = keys.next() => {
                let Some(event) = key.transpose()? else { return Ok(()) };
                match event {
                    TermEvent::Key(key) if key.kind == KeyEventKind::Press => {
                        if let Some(action) = keymap.action_for(key) {
                            if handle(state, action, &control, run_dir) {
                                return Ok(());
                            }
                        }
                        true
                    }
                    TermEvent::Resize(..) => true,
                    _ => false,
                }
            }
            _ = tick.tick() => true,
        };
        if changed {
            terminal.draw(|f| draw(f, state))?;
        }
    }
}

/// Applies an action; true when the dashboard should close.
fn handle(
    state: &mut State,
    action: super::update::Action,
    control: &Option<Arc<Control>>,
    run_dir: &std::path::Path,
) -> bool {
    match update(state, action) {
        Some(Command::Pause) => {
            if let Some(c) = control {
                c.pause();
                state.notice = Some("pausing after the current step…".into());
            }
        }
        Some(Command::Resume) => {
            if let Some(c) = control {
                c.resume();
                state.notice = None;
            }
        }
        Some(Command::Stop) => {
            if let Some(c) = control {
                c.stop();
            }
        }
        Some(Command::Export) => {
            // From the records on disk, as `iq-tui export` does.
            state.notice = Some(
                match crate::report::export(&[run_dir.to_path_buf()], None) {
                    Ok(done) => format!("exported to {}", done.dir.display()),
                    Err(e) => format!("export failed: {e}"),
                },
            );
        }
        Some(Command::Exit) => {
            if let Some(c) = control {
                c.stop();
            }
            return true;
        }
        None => {}
    }
    false
}

fn apply(state: &mut State, record: &Record) {
    if matches!(record.event, Event::Paused | Event::Resumed) {
        state.notice = None; // "pausing…" is now a fact on the status line
    }
    state.run.apply(record);
}
