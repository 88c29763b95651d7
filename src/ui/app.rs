//! The terminal loop, on a single-threaded tokio runtime: waits on whichever
//! comes first of an engine record, a key, or a tick, so it never blocks on
//! training. Restores the terminal on every exit path (ratatui's init
//! installs a panic hook that restores first).
//!
//! The records come from the engine in this process, or from the run
//! directory of a run that another process writes (`iq-tui open`), tailed
//! on each tick; commands then go through the run's control file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

use super::keymap::Keymap;
use super::state::State;
use super::update::{update, Command};
use super::view::draw;
use crate::engine::Control;
use crate::record::{Event, Record, RunStatus, RunView};
use crate::store::follow::{self, Appended, EventTail};

/// Where the records come from.
pub enum Source {
    /// A run in this process: records arrive on the channel; commands go to `control`.
    Live {
        records: UnboundedReceiver<Record>,
        control: Arc<Control>,
    },
    /// A run directory, followed as it grows: the records read so far (and
    /// any warnings about them), then what the tail reads as its writer (if
    /// one is alive) appends.
    Follow {
        records: Vec<Record>,
        tail: EventTail,
        /// Opened from the explorer: Esc goes back to it.
        back: bool,
    },
}

/// Where pause, resume and stop go.
enum Driver {
    InProcess(Arc<Control>),
    /// The control file of a run another process writes.
    ControlFile,
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
    let watching = matches!(source, Source::Follow { .. });
    let mut state = State::new(watching, keymap.describe());
    state.watching = watching;
    state.back = matches!(source, Source::Follow { back: true, .. });
    let mut feed = match source {
        Source::Live { records, control } => Feed {
            records: Some(records),
            tail: None,
            driver: Driver::InProcess(control),
        },
        Source::Follow { records, tail, .. } => {
            restart(&mut state, &records);
            Feed {
                records: None,
                tail: Some(tail),
                driver: Driver::ControlFile,
            }
        }
    };
    if watching {
        check_writer(&mut state, &run_dir);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = ratatui::init();
    let result = runtime.block_on(event_loop(
        &mut terminal,
        &mut state,
        &mut feed,
        &keymap,
        &run_dir,
        &terminate,
    ));
    ratatui::restore();
    result.map(|()| state)
}

struct Feed {
    records: Option<UnboundedReceiver<Record>>,
    tail: Option<EventTail>,
    driver: Driver,
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    state: &mut State,
    feed: &mut Feed,
    keymap: &Keymap,
    run_dir: &Path,
    terminate: &AtomicBool,
) -> std::io::Result<()> {
    let mut keys = EventStream::new();
    // Redraws between records keep the ETA and the "pausing…" notice honest,
    // and a followed run's log is read on each one.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut writer_checked = Instant::now();
    terminal.draw(|f| draw(f, state))?;
    loop {
        if terminate.load(Ordering::SeqCst) {
            if let Driver::InProcess(c) = &feed.driver {
                c.stop();
            }
            return Ok(());
        }
        let changed = tokio::select! {
            record = async { feed.records.as_mut()?.recv().await }, if feed.records.is_some() => {
                match record {
                    Some(first) => {
                        apply(state, &first);
                        // Drain what else is waiting: one redraw per batch.
                        while let Some(r) = feed.records.as_mut().and_then(|rx| rx.try_recv().ok()) {
                            apply(state, &r);
                        }
                    }
                    None => {
                        feed.records = None; // the engine is done
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
                            if handle(state, action, &feed.driver, run_dir) {
                                return Ok(());
                            }
                        }
                        true
                    }
                    TermEvent::Resize(..) => true,
                    _ => false,
                }
            }
            _ = tick.tick() => {
                if let Some(tail) = &mut feed.tail {
                    match tail.poll() {
                        Ok(Appended::More(records)) => records.iter().for_each(|r| apply(state, r)),
                        Ok(Appended::Restarted(records)) => restart(state, &records),
                        Err(e) => state.notice = Some(format!("cannot read the run's log: {e}")),
                    }
                    if let Some(e) = tail.take_error() {
                        state.notice = Some(format!("skipped a damaged record: {e}"));
                    }
                    if writer_checked.elapsed() > Duration::from_secs(1) {
                        writer_checked = Instant::now();
                        check_writer(state, run_dir);
                    }
                }
                true
            }
        };
        if changed {
            terminal.draw(|f| draw(f, state))?;
        }
    }
}

/// Whether a process still writes the followed run: controls are offered
/// only then, and a run that stops being written without a last record is
/// said to have lost its process.
fn check_writer(state: &mut State, run_dir: &Path) {
    let writer = crate::store::lock::writer(run_dir);
    state.read_only = writer.is_none();
    state.writer = writer;
}

fn restart(state: &mut State, records: &[Record]) {
    state.run = RunView::default();
    records.iter().for_each(|r| apply(state, r));
}

/// Applies an action; true when the dashboard should close.
fn handle(
    state: &mut State,
    action: super::update::Action,
    driver: &Driver,
    run_dir: &Path,
) -> bool {
    let command = update(state, action);
    let send = |c: follow::Command| match driver {
        Driver::InProcess(control) => {
            control.obey(c);
            None
        }
        Driver::ControlFile => follow::send(run_dir, c)
            .err()
            .map(|e| format!("cannot reach the run: {e}")),
    };
    match command {
        Some(Command::Pause) => {
            state.notice = Some(
                send(follow::Command::Pause)
                    .unwrap_or_else(|| "pausing after the current step…".into()),
            );
        }
        Some(Command::Resume) => {
            state.notice = send(follow::Command::Resume);
        }
        Some(Command::Stop) => {
            state.notice = Some(
                send(follow::Command::Stop)
                    .unwrap_or_else(|| "stopping after the current step…".into()),
            );
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
            // Leaving a run of this process stops it (after confirmation);
            // leaving a followed run leaves it alone.
            if let Driver::InProcess(c) = driver {
                c.stop();
            }
            return true;
        }
        None => {}
    }
    false
}

fn apply(state: &mut State, record: &Record) {
    if matches!(
        record.event,
        Event::Paused | Event::Resumed | Event::Stopped { .. }
    ) {
        state.notice = None; // "pausing…" is now a fact on the status line
    }
    state.run.apply(record);
}
