//! Starting, resuming and showing runs: the engine on its own thread, the
//! dashboard or the headless printer in front of it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::args::{ResumeArgs, RunArgs};
use super::error::{CliError, CliResult, Done};
use crate::data::{self, DataError};
use crate::engine::checkpoint::{corpus_sha256, sha256_hex, Resume};
use crate::engine::footprint::Footprint;
use crate::engine::{self, Control, Outcome};
use crate::experiment::{self, Experiment};
use crate::headless::{say, Printer};
use crate::model::Arithmetic;
use crate::record::{format, Listener, Record, RunView};
use crate::store::checkpoint::Checkpoints;
use crate::store::follow::{self, Appended, EventTail};
use crate::store::lock::{LockError, RunLock};
use crate::store::manifest::available_memory;
use crate::store::manifest::{self, ResumeRecord, RunManifest};
use crate::store::resume::{self, ResumeError};
use crate::store::weights::Weights;
use crate::store::RunDir;
use crate::ui::keymap::Keymap;
use crate::ui::{run_dashboard, Source};

/// The parameter count and estimated memory, for `validate` and `--dry-run`.
pub(super) fn footprint_lines(e: &Experiment) -> Vec<String> {
    let f = Footprint::of(e);
    let mut lines = vec![
        format!("parameters: {}", f.parameters),
        format!(
            "estimated peak memory: training {}, evaluation {}",
            format::bytes(f.train_bytes),
            format::bytes(f.eval_bytes)
        ),
    ];
    if let Some(available) = available_memory().filter(|&a| f.peak_bytes() > a) {
        lines.push(format!(
            "that is more than the {} this machine has available: `run` refuses it without --force",
            format::bytes(available)
        ));
    }
    lines
}

/// Refuses a run whose estimated memory exceeds what is available, before
/// anything is allocated.
fn check_memory(e: &Experiment, force: bool) -> Result<(), CliError> {
    let f = Footprint::of(e);
    let Some(available) = available_memory() else {
        return Ok(());
    };
    if f.peak_bytes() <= available || force {
        return Ok(());
    }
    Err(CliError::bad(format!(
        "{}: {} parameters need about {} of memory to train and {} to evaluate, and this machine has {} available; make the model, batch or corpus smaller, or pass --force if you know better",
        e.name,
        f.parameters,
        format::bytes(f.train_bytes),
        format::bytes(f.eval_bytes),
        format::bytes(available)
    )))
}

/// Loads and validates an experiment file.
pub(super) fn load(file: &Path, set: &[String]) -> Result<Experiment, CliError> {
    experiment::load(file, set).map_err(|e| CliError::bad(format!("invalid experiment\n{e}")))
}

pub(super) fn data_error(e: DataError) -> CliError {
    match e {
        DataError::Io { .. } | DataError::Download { .. } => CliError::failed(e.to_string()),
        _ => CliError::bad(e.to_string()),
    }
}

fn lock_error(e: LockError) -> CliError {
    match e {
        LockError::Held { .. } => CliError::bad(e.to_string()),
        LockError::Store(e) => write_error(e),
    }
}

fn write_error(e: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("cannot write the run directory: {e}"))
}

pub(super) fn run(args: RunArgs) -> CliResult {
    let experiment = load(&args.file, &args.set.set)?;
    if args.dry_run {
        // As RON comments, so the output stays a valid experiment file.
        for line in footprint_lines(&experiment) {
            println!("// {line}");
        }
        print!("{}", experiment::to_ron(&experiment));
        return Ok(Done::Finished);
    }
    check_memory(&experiment, args.force)?;
    check_terminal(args.headless, &format!("run {}", args.file.display()))?;
    let keymap = keymap_for(args.headless)?;
    let corpus = load_corpus(&experiment)?;
    let pretrained = load_pretrained(&experiment, &corpus)?;
    let run_dir = RunDir::create(
        &experiment.output.dir,
        &experiment.name,
        args.out.as_deref(),
    )
    .map_err(|e| match e.source.kind() {
        std::io::ErrorKind::AlreadyExists => CliError::bad(e.to_string()),
        _ => CliError::failed(format!("cannot create the run directory: {e}")),
    })?;
    let _lock = RunLock::acquire(&run_dir.path).map_err(lock_error)?;
    let text = experiment::to_ron(&experiment);
    run_dir
        .write_atomic("experiment.ron", text.as_bytes())
        .map_err(write_error)?;
    let experiment_sha256 = sha256_hex(text.as_bytes());
    run_dir
        .write_json(
            "manifest.json",
            &RunManifest::new(experiment.seed, experiment_sha256.clone()),
        )
        .map_err(write_error)?;
    init_log(&run_dir.file("run.log"), false)?;
    if args.headless {
        say(&format!("run directory: {}", run_dir.path.display()));
    }
    let context = engine::RunContext {
        pretrained,
        weights_dir: Some(run_dir.file("weights")),
        checkpoints: Some(Checkpoints::new(&run_dir.path)),
        experiment_sha256,
        resume: None,
        checkpoint_every: checkpoint_every(),
    };
    let show = Show {
        headless: args.headless,
        keymap,
        history: Vec::new(),
    };
    execute(run_dir, experiment, corpus, context, show)
}

/// Continues a stopped or killed run from its newest intact checkpoint.
pub(super) fn resume(args: ResumeArgs) -> CliResult {
    let mut plan = resume::plan(&args.run_dir).map_err(|e| match e {
        ResumeError::Refused(m) => CliError::bad(m),
        ResumeError::Store(e) => CliError::failed(e.to_string()),
    })?;
    let _lock = plan.lock.take();
    let experiment = load(&plan.experiment_file, &[])?;
    check_memory(&experiment, args.force)?;
    let (resume, checkpoint_name) = match plan.checkpoint.take() {
        Some(latest) => {
            for skipped in &latest.skipped {
                eprintln!("warning: {skipped}; using an older checkpoint");
            }
            let name = latest.path.display().to_string();
            let r = Resume::from_file(latest.file)
                .map_err(|e| CliError::bad(format!("{name}: {e}")))?;
            (Some(r), Some(name))
        }
        None if args.restart => {
            eprintln!(
                "note: {} has no checkpoint; --restart: the run starts over",
                args.run_dir.display()
            );
            (None, None)
        }
        None => {
            let reached = RunView::from_records(&plan.records());
            let found = match reached.phase {
                None => "it recorded no training yet".to_string(),
                Some(phase) => format!(
                    "its records reach {phase}{}, {} training steps in",
                    if reached.epoch > 0 {
                        format!(", epoch {}", reached.epoch)
                    } else {
                        String::new()
                    },
                    reached.steps_done
                ),
            };
            return Err(CliError::bad(format!(
                "{} has no intact checkpoint to continue from ({found}); `iq-tui resume {} --restart` starts it over from the beginning and replaces its records",
                args.run_dir.display(),
                args.run_dir.display()
            )));
        }
    };
    let text_sha = sha256_hex(plan.experiment_text.as_bytes());
    // The experiment the run started with: the checkpoint's, else the manifest's.
    let started_with = resume.as_ref().map_or_else(
        || plan.manifest.experiment_sha256.clone(),
        |r| r.state.experiment_sha256.clone(),
    );
    let forced = started_with != text_sha;
    if forced && !args.force {
        return Err(CliError::bad(format!(
            "{} was changed after the run started; resuming would mix two experiments in one run. Undo the edit, start a new run, or pass --force to continue with the edited file",
            plan.experiment_file.display()
        )));
    }
    if forced {
        eprintln!(
            "warning: {} was edited; continuing anyway (--force)",
            plan.experiment_file.display()
        );
    }
    check_terminal(args.headless, &format!("resume {}", args.run_dir.display()))?;
    let keymap = keymap_for(args.headless)?;
    let corpus = load_corpus(&experiment)?;
    if let Some(r) = &resume {
        if r.state.corpus_sha256 != corpus_sha256(&corpus) {
            return Err(CliError::bad(format!(
                "the data of {} differ from the data the run started on; resume it with the same corpus",
                plan.experiment_file.display()
            )));
        }
    }
    let pretrained = match resume {
        Some(_) => None, // the checkpoint holds the weights
        None => load_pretrained(&experiment, &corpus)?,
    };
    let keep = resume.as_ref().map_or(0, |r| r.file.events_len);
    let history = plan.cut_log(keep).map_err(|e| match e {
        ResumeError::Refused(m) => CliError::bad(m),
        ResumeError::Store(e) => CliError::failed(format!(
            "cannot cut the event log back to the checkpoint: {e}"
        )),
    })?;
    let position = resume
        .as_ref()
        .map_or("the start".into(), |r| r.state.position.describe());
    plan.record(ResumeRecord {
        at: manifest::now(),
        checkpoint: checkpoint_name,
        position: position.clone(),
        forced,
        arithmetic: Some(Arithmetic::current()),
    })
    .map_err(write_error)?;
    let run_dir = plan.run;
    init_log(&run_dir.file("run.log"), true)?;
    if args.headless {
        say(&format!(
            "run directory: {} (resuming at {position})",
            run_dir.path.display()
        ));
    }
    let context = engine::RunContext {
        pretrained,
        weights_dir: Some(run_dir.file("weights")),
        checkpoints: Some(plan.checkpoints),
        // Once forced, the edited file is the run's experiment.
        experiment_sha256: if forced { text_sha } else { started_with },
        resume,
        checkpoint_every: checkpoint_every(),
    };
    let show = Show {
        headless: args.headless,
        keymap,
        history,
    };
    execute(run_dir, experiment, corpus, context, show)
}

/// Opens a run directory in the dashboard and follows it: a run that
/// another process is writing moves on screen and takes pause, resume and
/// stop through its control file; a finished or stopped one is shown as it
/// ended.
pub(super) fn open(run_dir: PathBuf) -> CliResult {
    let events = run_dir.join("events.jsonl");
    if !events.is_file() {
        if crate::ui::explorable(&run_dir) {
            return explore(run_dir);
        }
        return Err(CliError::bad(format!(
            "{}: no events.jsonl here, so it is not a run directory, and it holds no run directories or sweep.json to explore (`iq-tui run` writes events.jsonl into every run directory)",
            run_dir.display()
        )));
    }
    let mut tail = EventTail::new(&events);
    let mut records = match tail.poll() {
        Ok(Appended::More(r) | Appended::Restarted(r)) => r,
        Err(e) => return Err(CliError::bad(e.to_string())),
    };
    // What the log already holds must read: a damaged line there is named.
    if let Some(e) = tail.take_error() {
        return Err(CliError::bad(format!(
            "{e}\n(a run directory's events.jsonl holds one JSON record per line)"
        )));
    }
    if let Some(warning) = crate::store::cut_short(&run_dir, &records) {
        eprintln!("warning: {warning}");
        // and in the dashboard's log, which takes the screen
        records.push(Record {
            t: records.last().map_or(0.0, |r| r.t),
            event: crate::record::Event::Log {
                level: crate::record::LogLevel::Warn,
                message: format!("warning: {warning}"),
            },
        });
    }
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, terminate.clone())
            .map_err(|e| CliError::failed(format!("cannot watch for signals: {e}")))?;
    }
    let keymap = Keymap::load().map_err(|e| CliError::bad(format!("keymap {e}")))?;
    let source = Source::Follow {
        records,
        tail,
        back: false,
    };
    run_dashboard(source, run_dir, keymap, terminate).map_err(|e| CliError::bad(e.to_string()))?;
    Ok(Done::Finished)
}

/// The explorer on a sweep directory or a directory of runs.
pub(super) fn explore(dir: PathBuf) -> CliResult {
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, terminate.clone())
            .map_err(|e| CliError::failed(format!("cannot watch for signals: {e}")))?;
    }
    let keymap = Keymap::load().map_err(|e| CliError::bad(format!("keymap {e}")))?;
    crate::ui::run_explorer(dir, keymap, terminate).map_err(|e| CliError::bad(e.to_string()))?;
    Ok(Done::Finished)
}

/// Seconds of training between periodic checkpoints: 10 minutes, or
/// `IQ_TUI_CHECKPOINT_SECONDS`.
fn checkpoint_every() -> Option<f64> {
    let seconds = std::env::var("IQ_TUI_CHECKPOINT_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(600.0);
    (seconds > 0.0).then_some(seconds)
}

pub(super) fn check_terminal(headless: bool, command: &str) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if !headless && !std::io::stdout().is_terminal() {
        return Err(CliError::bad(format!(
            "the dashboard needs a terminal and standard output is not one; use `iq-tui {command} --headless`"
        )));
    }
    Ok(())
}

fn keymap_for(headless: bool) -> Result<Keymap, CliError> {
    if headless {
        return Ok(Keymap::default());
    }
    Keymap::load().map_err(|e| CliError::bad(format!("keymap {e}")))
}

/// The experiment's corpus; read through the vocabulary of the PyTorch
/// model it starts from, if it does.
fn load_corpus(experiment: &Experiment) -> Result<data::Corpus, CliError> {
    let corpus = data::load(&experiment.data, experiment.seed).map_err(data_error)?;
    let Some(path) = experiment
        .pretrained
        .as_ref()
        .filter(|p| crate::store::torch::is_state_dict(p))
    else {
        return Ok(corpus);
    };
    let vocab_file = crate::store::torch::vocab_path(path);
    let words = crate::store::torch::read_vocab(&vocab_file)
        .map_err(|e| CliError::bad(format!("pretrained model's vocabulary: {e}")))?;
    let unk = match &experiment.data {
        experiment::DataSource::Text { unk, .. } => unk.as_str(),
        _ => "<unk>",
    };
    corpus.through(words, unk, &vocab_file).map_err(data_error)
}

fn load_pretrained(
    experiment: &Experiment,
    corpus: &data::Corpus,
) -> Result<Option<Weights>, CliError> {
    let Some(dir) = &experiment.pretrained else {
        return Ok(None);
    };
    let weights = if crate::store::torch::is_state_dict(dir) {
        crate::store::torch::import(dir)
    } else {
        crate::store::weights::load(dir)
    };
    weights
        .map_err(|e| e.to_string())
        .and_then(|w| {
            engine::check_pretrained(&w, engine::dims_for(experiment, corpus), corpus).map(|()| w)
        })
        .map(Some)
        .map_err(|e| CliError::bad(format!("pretrained weights {}: {e}", dir.display())))
}

fn init_log(path: &Path, append: bool) -> Result<(), CliError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .map_err(|e| CliError::failed(format!("cannot open {}: {e}", path.display())))?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init()
        .map_err(|e| CliError::failed(format!("cannot start logging: {e}")))
}

/// The thread that obeys `RUN_DIR/control` (see `store::follow`) while the
/// run goes on; stopped with [`ControlWatcher::stop`].
struct ControlWatcher {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlWatcher {
    fn stop(mut self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch_control_file(dir: &Path, control: Arc<Control>) -> ControlWatcher {
    // A command left by a watcher of an earlier process is not for this one.
    let _ = std::fs::remove_file(dir.join(follow::CONTROL_FILE));
    let running = Arc::new(AtomicBool::new(true));
    let (dir, flag) = (dir.to_path_buf(), running.clone());
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            while flag.load(Ordering::SeqCst) {
                match follow::take(&dir) {
                    Ok(Some(command)) => {
                        tracing::info!("control file: {}", command.word());
                        control.obey(command);
                    }
                    Ok(None) => {}
                    Err(message) => tracing::warn!("{message}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
        .ok();
    ControlWatcher { running, thread }
}

/// How a run is shown: the dashboard (with the keymap, and the records
/// before a resume drawn first) or the headless printer.
struct Show {
    headless: bool,
    keymap: Keymap,
    history: Vec<Record>,
}

/// Runs the engine on its own thread while the dashboard or the headless
/// printer shows its records.
fn execute(
    run_dir: RunDir,
    experiment: Experiment,
    corpus: data::Corpus,
    context: engine::RunContext,
    show: Show,
) -> CliResult {
    let control = Control::new();
    let signals = |e: std::io::Error| CliError::failed(format!("cannot watch for signals: {e}"));
    // A signal stops the run cooperatively; the dashboard also leaves the
    // screen. A closed standard output (a headless run piped into `head`)
    // stops it the same way: with a handler, a write to it fails instead of
    // killing the process between two checkpoints.
    let terminate = Arc::new(AtomicBool::new(false));
    if show.headless {
        signal_hook::flag::register(signal_hook::consts::SIGPIPE, control.stop_flag())
            .map_err(signals)?;
    }
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, control.stop_flag()).map_err(signals)?;
        signal_hook::flag::register(signal, terminate.clone()).map_err(signals)?;
    }
    let watcher = watch_control_file(&run_dir.path, control.clone());
    let mut event_log = run_dir.event_log().map_err(write_error)?.on_error({
        let control = control.clone();
        move || control.stop()
    });

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Record>();
    if !show.headless {
        for r in show.history {
            let _ = tx.send(r);
        }
    }
    let engine_control = control.clone();
    let summary_dir = run_dir.clone();
    let worker = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            let mut forward = move |r: &Record| {
                let _ = tx.send(r.clone());
            };
            let outcome = engine::run(
                &experiment,
                &corpus,
                &context,
                vec![&mut event_log as &mut dyn Listener, &mut forward],
                &engine_control,
            );
            // Written as soon as the run ends, not when the dashboard is
            // left: a terminal closed on a finished run loses nothing.
            let written = match &outcome {
                Outcome::Finished(summary) => summary_dir.write_json("summary.json", summary),
                _ => Ok(()),
            };
            (outcome, event_log.take_error(), written)
        })
        .map_err(|e| CliError::failed(format!("cannot start the training thread: {e}")))?;
    if show.headless {
        let mut printer = Printer::new();
        while let Some(record) = rx.blocking_recv() {
            printer.on_record(&record);
        }
    } else {
        let source = Source::Live {
            records: rx,
            control: control.clone(),
        };
        let shown = run_dashboard(source, run_dir.path.clone(), show.keymap, terminate);
        control.stop(); // leaving the dashboard ends the run (after confirmation)
        if let Err(e) = shown {
            let _ = worker.join();
            return Err(CliError::failed(format!("the dashboard failed: {e}")));
        }
        say(&format!("run directory: {}", run_dir.path.display()));
    }
    let (outcome, log_error, summary_written) = worker
        .join()
        .map_err(|_| CliError::failed("the training thread panicked"))?;
    watcher.stop();
    if let Some(e) = log_error {
        return Err(CliError::failed(format!(
            "the run was stopped because its records could not be written: {e}\nwhat was finished is in {}; continue with `iq-tui resume {}` once there is space",
            run_dir.path.display(),
            run_dir.path.display()
        )));
    }
    match outcome {
        Outcome::Finished(_) => {
            summary_written
                .map_err(|e| CliError::failed(format!("cannot write summary.json: {e}")))?;
            say(&format!(
                "summary: {}",
                run_dir.file("summary.json").display()
            ));
            Ok(Done::Finished)
        }
        Outcome::Stopped => {
            say(&format!(
                "stopped; continue with `iq-tui resume {}`",
                run_dir.path.display()
            ));
            Ok(Done::Stopped)
        }
        Outcome::Failed(error) => Err(CliError::failed(format!(
            "{error}\nthe run stopped; what was finished is in {}",
            run_dir.path.display()
        ))),
    }
}
