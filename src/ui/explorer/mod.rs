//! The explorer: a sweep directory, or any directory of runs, as one live
//! table (`model.rs`, pure), drawn by `view.rs`, driven by the keys in
//! `keys.rs`. Every run is followed from its own directory, the same way
//! `iq-tui open` follows one; Enter opens its dashboard and Esc comes back.
//! A sweep submitted to Slurm also gets the scheduler's state of each cell,
//! read on a thread of its own every few seconds so that a slow `squeue`
//! never holds up the keys.

mod charts;
mod keys;
pub mod model;
pub mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;

use self::model::{Effect, Entry, Explorer};
use super::keymap::Keymap;
use crate::record::{RunView, Summary};
use crate::store::follow::{Appended, EventTail};
use crate::sweep::{observe, Status, SweepState, UnitEntry};

/// Whether `dir` is something the explorer shows: a sweep directory, or a
/// directory holding run directories.
pub fn explorable(dir: &Path) -> bool {
    crate::sweep::state::is_sweep_dir(dir) || !crate::store::run_dirs(dir).is_empty()
}

/// A run the explorer follows: its records as they grow.
struct Watch {
    tail: EventTail,
}

/// Reads what `root` holds into an explorer, every run folded so far.
pub fn load(root: &Path) -> Result<Explorer, String> {
    load_watched(root).map(|(e, _, _)| e)
}

/// The explorer, the tail of every run's log, and the shared pre-training
/// runs' directories.
fn load_watched(root: &Path) -> Result<(Explorer, Vec<Watch>, Vec<PathBuf>), String> {
    let (title, axes, units, pretrains) = if crate::sweep::state::is_sweep_dir(root) {
        let s = SweepState::read(root)?;
        let pre: Vec<PathBuf> = s.pretrains.iter().map(|p| root.join(&p.dir)).collect();
        (format!("sweep {}", s.name), s.axes, s.cells, pre)
    } else {
        let units = crate::store::run_dirs(root)
            .into_iter()
            .map(|d| UnitEntry {
                name: d
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                experiment: d.join("experiment.ron"),
                dir: d,
                values: Vec::new(),
                after: None,
                status: Status::Pending,
                error: None,
            })
            .collect();
        (root.display().to_string(), Vec::new(), units, Vec::new())
    };
    let mut entries = Vec::new();
    let mut watches = Vec::new();
    for u in units {
        let dir = root.join(&u.dir);
        entries.push(Entry {
            status: u.status,
            unit: u,
            dir: dir.clone(),
            view: RunView::default(),
            summary: None,
            scheduler: None,
        });
        watches.push(Watch {
            tail: EventTail::new(&dir.join("events.jsonl")),
        });
    }
    let mut e = Explorer::new(title, axes, entries);
    refresh(&mut e, &mut watches, &pretrains);
    e.sweeper = sweeper(root);
    if root.join(crate::slurm::record::RECORD_FILE).is_file() {
        if let Ok(s) = SweepState::read(root) {
            if let Ok(board) = crate::slurm::board(root, &s) {
                show_scheduler(&mut e, &board);
            }
        }
    }
    Ok((e, watches, pretrains))
}

/// The scheduler's word on every cell, into the table and the header.
pub fn show_scheduler(e: &mut Explorer, board: &crate::slurm::Board) {
    use crate::slurm::Stage;
    for entry in &mut e.entries {
        let unit = board
            .units
            .iter()
            .find(|u| u.stage == Stage::Cells && u.name == entry.unit.name);
        entry.scheduler = unit.map(|u| match &u.job {
            Some(job) => format!("{} {job}", u.state),
            None => u.state.clone(),
        });
        agree(entry);
    }
    let jobs = board
        .record
        .as_ref()
        .map(|r| r.jobs().join(", "))
        .unwrap_or_default();
    let s = &board.snapshot;
    e.slurm = Some(if s.squeue {
        format!("Slurm jobs {jobs}")
    } else {
        format!(
            "Slurm jobs {jobs}: {}",
            s.note.as_deref().unwrap_or("squeue did not answer")
        )
    });
}

/// Between two answers of the scheduler, the run directory's newer word:
/// a cell whose summary or writer appeared since shows so at once.
fn agree(entry: &mut Entry) {
    let word = match entry.status {
        Status::Finished => "FINISHED",
        Status::Running => "RUNNING",
        _ => return,
    };
    if let Some(s) = &mut entry.scheduler {
        *s = match s.split_once(' ') {
            Some((_, job)) => format!("{word} {job}"),
            None => word.to_string(),
        };
    }
}

/// How often the scheduler is asked: often enough to follow a queue, rare
/// enough not to load a cluster's controller.
const SCHEDULER_EVERY: Duration = Duration::from_secs(5);

/// The newest answer of the thread that asks the scheduler.
type SchedulerAnswer = Arc<Mutex<Option<crate::slurm::Board>>>;

/// Asks the scheduler about a Slurm sweep until `stop` is set.
fn watch_scheduler(root: &Path, stop: Arc<AtomicBool>) -> Option<SchedulerAnswer> {
    if !root.join(crate::slurm::record::RECORD_FILE).is_file() {
        return None;
    }
    let answer: SchedulerAnswer = Arc::default();
    let (root, out) = (root.to_path_buf(), answer.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let waited = std::time::Instant::now();
            while waited.elapsed() < SCHEDULER_EVERY {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let Ok(s) = SweepState::read(&root) else {
                continue;
            };
            if let Ok(board) = crate::slurm::board(&root, &s) {
                *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(board);
            }
        }
    });
    Some(answer)
}

/// Reads what every run appended, and each one's state.
fn refresh(e: &mut Explorer, watches: &mut [Watch], pretrains: &[PathBuf]) {
    for (entry, w) in e.entries.iter_mut().zip(watches.iter_mut()) {
        entry.status = observe(&entry.dir);
        if entry.dir.join("events.jsonl").is_file() {
            match w.tail.poll() {
                Ok(Appended::More(records)) => records.iter().for_each(|r| entry.view.apply(r)),
                Ok(Appended::Restarted(records)) => {
                    entry.view = RunView::default();
                    records.iter().for_each(|r| entry.view.apply(r));
                }
                Err(_) => {}
            }
            let _ = w.tail.take_error(); // a damaged line is the run's own dashboard's to name
        }
        agree(entry);
        if entry.status == Status::Finished && entry.summary.is_none() {
            entry.summary = std::fs::read_to_string(entry.dir.join("summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Summary>(&t).ok());
        }
    }
    let done = pretrains
        .iter()
        .filter(|p| observe(p) == Status::Finished)
        .count();
    e.pretraining = (done, pretrains.len());
}

/// Who runs the sweep at `root`, if it is one.
fn sweeper(root: &Path) -> Option<Option<String>> {
    crate::sweep::state::is_sweep_dir(root).then(|| crate::store::lock::writer(root))
}

/// Runs the explorer until the user quits or a signal arrives.
pub fn run_explorer(
    root: PathBuf,
    keymap: Keymap,
    terminate: Arc<AtomicBool>,
) -> std::io::Result<()> {
    // A damaged sweep.json is named before anything else.
    let (mut explorer, mut watches, pretrains) =
        load_watched(&root).map_err(std::io::Error::other)?;
    if !std::io::stdout().is_terminal() {
        return Err(std::io::Error::other(format!(
            "the explorer needs a terminal and standard output is not one; `iq-tui export {}` writes the same tables as files",
            root.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let stop_asking = Arc::new(AtomicBool::new(false));
    let scheduler = watch_scheduler(&root, stop_asking.clone());
    let mut terminal = ratatui::init();
    let result = loop {
        let effect = runtime.block_on(event_loop(
            &mut terminal,
            &mut explorer,
            &mut watches,
            &pretrains,
            &root,
            &terminate,
            scheduler.as_ref(),
        ));
        match effect {
            Ok(Some(Effect::Open(i))) => {
                ratatui::restore();
                let opened = open_run(&explorer.entries[i].dir, &keymap, &terminate);
                terminal = ratatui::init();
                explorer.notice = opened.err();
            }
            Ok(Some(Effect::Export)) => {
                explorer.notice = Some(
                    match crate::report::export(std::slice::from_ref(&root), None) {
                        Ok(done) => format!("exported to {}", done.dir.display()),
                        Err(e) => format!("export failed: {e}"),
                    },
                );
            }
            Ok(Some(Effect::Quit) | None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    ratatui::restore();
    stop_asking.store(true, Ordering::SeqCst);
    result
}

/// A run's dashboard, following it; returns when the user goes back.
fn open_run(dir: &Path, keymap: &Keymap, terminate: &Arc<AtomicBool>) -> Result<(), String> {
    if !dir.join("events.jsonl").is_file() {
        return Err(format!("{} has not started yet", dir.display()));
    }
    let mut tail = EventTail::new(&dir.join("events.jsonl"));
    let records = match tail.poll() {
        Ok(Appended::More(r) | Appended::Restarted(r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let source = super::Source::Follow {
        records,
        tail,
        back: true,
    };
    super::run_dashboard(source, dir.to_path_buf(), keymap.clone(), terminate.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    e: &mut Explorer,
    watches: &mut [Watch],
    pretrains: &[PathBuf],
    root: &Path,
    terminate: &AtomicBool,
    scheduler: Option<&SchedulerAnswer>,
) -> std::io::Result<Option<Effect>> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    terminal.draw(|f| view::draw(f, e))?;
    loop {
        if terminate.load(Ordering::SeqCst) {
            return Ok(None);
        }
        tokio::select! {
            key = keys.next() => {
                let Some(event) = key.transpose()? else { return Ok(None) };
                if let TermEvent::Key(key) = event {
                    if key.kind == KeyEventKind::Press {
                        if let Some(ask) = keys::ask(key, e.editing) {
                            e.notice = None;
                            if let Some(effect) = e.update(ask) {
                                return Ok(Some(effect));
                            }
                        }
                    }
                }
            }
            _ = tick.tick() => {
                refresh(e, watches, pretrains);
                e.sweeper = sweeper(root);
                let answer = scheduler.and_then(|a| a.lock().unwrap_or_else(|p| p.into_inner()).take());
                if let Some(board) = answer {
                    show_scheduler(e, &board);
                }
            }
        }
        terminal.draw(|f| view::draw(f, e))?;
    }
}
