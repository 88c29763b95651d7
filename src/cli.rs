//! Command-line interface: argument parsing and wiring only.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};
use color_eyre::eyre::{eyre, Result, WrapErr};

use crate::data::{self, DataError};
use crate::engine::checkpoint::{sha256_hex, Resume};
use crate::engine::{self, Control, Outcome};
use crate::experiment::{self, Experiment};
use crate::headless::Printer;
use crate::record::{Listener, Record};
use crate::store::checkpoint::{CheckpointError, Checkpoints};
use crate::store::manifest::{ResumeRecord, RunManifest};
use crate::store::RunDir;
use crate::ui::keymap::Keymap;
use crate::ui::{run_dashboard, Source};

/// Exit status for bad input: an invalid experiment, missing or corrupt data.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status for a run stopped before its end (Ctrl-C, SIGTERM).
pub const EXIT_STOPPED: i32 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "iq-tui",
    version,
    about = "Retraining-based iterative weight quantization of LSTM language models, explored from a terminal",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Experiment file to open in the dashboard.
    experiment: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment.
    Run(RunArgs),
    /// Check an experiment file; exit status 2 if it is invalid.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
    },
    /// Measure training throughput (tokens/s) at standard sizes.
    Bench(BenchArgs),
    /// Reopen a finished or stopped run in the dashboard, read-only.
    Open { run_dir: PathBuf },
    /// Continue a stopped or killed run from its newest intact checkpoint.
    Resume(ResumeArgs),
    /// Write the run's final quantized model as a packed file (bit-planes,
    /// coefficients, masks, biases, vocabulary).
    ExportModel {
        run_dir: PathBuf,
        /// Destination (default: RUN_DIR/model.iqpk).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Perplexity of a packed model, computed from its bits.
    Eval(EvalArgs),
    /// Write a result snapshot: every series as CSV and JSON, charts (SVG,
    /// PNG) and a Markdown report; with several runs, also a comparison.
    Export {
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        /// Destination (default: RUN_DIR/snapshots/<time>, or
        /// ./comparison-<time> for several runs).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Quantize your own 2-D float32 matrix (.npy, row-major) row by row and
    /// print the relative squared error.
    Quantize(QuantizeArgs),
    /// Download Penn Treebank into the cache (or DIR), verified by SHA-256.
    FetchPtb {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct SetArgs {
    /// Override a field, e.g. `--set training.epochs=1` (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    file: PathBuf,
    /// No dashboard: progress on the terminal or as plain lines.
    #[arg(long)]
    headless: bool,
    /// Print the resolved experiment (after defaults and overrides) and exit.
    #[arg(long)]
    dry_run: bool,
    /// Run directory (default: <output.dir>/<name>-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    set: SetArgs,
}

#[derive(Debug, Args)]
struct QuantizeArgs {
    /// A 2-D float32 NumPy file, e.g. from `np.save("w.npy", w.astype(np.float32))`.
    file: PathBuf,
    /// Bits per weight, 1 to 4.
    #[arg(long, default_value_t = 2)]
    bits: usize,
    #[arg(long, value_enum, default_value = "alternating")]
    method: MethodArg,
    /// Alternating cycles T.
    #[arg(long, default_value_t = 2)]
    cycles: usize,
    /// Prune this fraction of smallest-magnitude weights first; the fit uses survivors only.
    #[arg(long, value_name = "P")]
    mask_rate: Option<f64>,
    /// Write the dequantized matrix here (.npy, float32).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Greedy,
    Refined,
    Alternating,
    Uniform,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Timed steps per configuration (median reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Configurations as LAYERSxHIDDEN.
    #[arg(long, value_delimiter = ',', default_value = "1x300,2x200,2x650")]
    sizes: Vec<String>,
    #[arg(long, default_value_t = 10_000)]
    vocab: usize,
    #[arg(long, default_value_t = 20)]
    batch: usize,
    #[arg(long, default_value_t = 35)]
    bptt: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Measure the GEMM rate the training kernels reach (1024³ products)
    /// instead of training.
    #[arg(long)]
    gemm_peak: bool,
}

/// Runs the program; returns the exit status.
pub fn main() -> Result<i32> {
    let cli = Cli::parse();
    if let Err(e) = crate::model::gemm::select_backend() {
        eprintln!("error: {e}");
        return Ok(EXIT_BAD_INPUT);
    }
    match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Validate { file, set }) => match load(&file, &set.set) {
            Ok(_) => {
                println!("{}: valid", file.display());
                Ok(0)
            }
            Err(code) => Ok(code),
        },
        Some(Command::Bench(args)) => bench(args),
        Some(Command::FetchPtb { dir }) => fetch_ptb(dir),
        Some(Command::Quantize(args)) => quantize(args),
        Some(Command::Open { run_dir }) => open(run_dir),
        Some(Command::Resume(args)) => resume(args),
        Some(Command::ExportModel { run_dir, out }) => export_model(&run_dir, out),
        Some(Command::Eval(args)) => eval(args),
        Some(Command::Export { run_dirs, to }) => {
            match crate::report::export(&run_dirs, to.as_deref()) {
                Ok(done) => {
                    println!("wrote {}", done.report.display());
                    Ok(0)
                }
                Err(e @ crate::report::ReportError::Read { .. }) => {
                    eprintln!("error: {e}");
                    Ok(EXIT_BAD_INPUT)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(1)
                }
            }
        }
        None => match cli.experiment {
            Some(file) => run(RunArgs {
                file,
                headless: false,
                dry_run: false,
                out: None,
                set: SetArgs { set: vec![] },
            }),
            None => {
                use clap::CommandFactory;
                Cli::command().print_help()?;
                Ok(EXIT_BAD_INPUT)
            }
        },
    }
}

/// Loads and validates; on failure prints the error and returns exit status 2.
fn load(file: &Path, set: &[String]) -> std::result::Result<Experiment, i32> {
    experiment::load(file, set).map_err(|e| {
        eprintln!("error: invalid experiment\n{e}");
        EXIT_BAD_INPUT
    })
}

fn data_error_status(e: &DataError) -> i32 {
    match e {
        DataError::Io { .. } | DataError::Download { .. } => 1,
        _ => EXIT_BAD_INPUT,
    }
}

fn run(args: RunArgs) -> Result<i32> {
    let experiment = match load(&args.file, &args.set.set) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    if args.dry_run {
        print!("{}", experiment::to_ron(&experiment));
        return Ok(0);
    }
    if let Err(code) = check_terminal(args.headless, &format!("run {}", args.file.display())) {
        return Ok(code);
    }
    let keymap = match keymap_for(args.headless) {
        Ok(k) => k,
        Err(code) => return Ok(code),
    };
    let corpus = match load_corpus(&experiment) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let pretrained = match load_pretrained(&experiment, &corpus) {
        Ok(w) => w,
        Err(code) => return Ok(code),
    };
    let run_dir = RunDir::create(
        &experiment.output.dir,
        &experiment.name,
        args.out.as_deref(),
    )
    .wrap_err("cannot create the run directory")?;
    let text = experiment::to_ron(&experiment);
    run_dir
        .write_atomic("experiment.ron", text.as_bytes())
        .wrap_err("cannot write the run directory")?;
    let experiment_sha256 = sha256_hex(text.as_bytes());
    run_dir
        .write_json(
            "manifest.json",
            &RunManifest::new(experiment.seed, experiment_sha256.clone()),
        )
        .wrap_err("cannot write the run directory")?;
    init_log(&run_dir.file("run.log"), false)?;
    if args.headless {
        println!("run directory: {}", run_dir.path.display());
    }
    let context = engine::RunContext {
        pretrained,
        weights_dir: Some(run_dir.file("weights")),
        checkpoints: Some(Checkpoints::new(&run_dir.path)),
        experiment_sha256,
        resume: None,
        checkpoint_every: checkpoint_every(),
    };
    execute(
        run_dir,
        experiment,
        corpus,
        context,
        args.headless,
        keymap,
        Vec::new(),
    )
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// A packed model from `iq-tui export-model`.
    model: PathBuf,
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Take the corpus from this experiment's `data` (default: the
    /// `experiment.ron` beside MODEL, where `export-model` puts it in a run
    /// directory; else Penn Treebank).
    #[arg(long)]
    experiment: Option<PathBuf>,
    /// Parallel streams (default: the experiment's eval batch, else 10).
    #[arg(long)]
    batch: Option<usize>,
    /// Segment length (default: the experiment's BPTT, else 20).
    #[arg(long)]
    bptt: Option<usize>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    Train,
    Valid,
    Test,
}

#[derive(Debug, Args)]
struct ResumeArgs {
    run_dir: PathBuf,
    /// No dashboard: progress on the terminal or as plain lines.
    #[arg(long)]
    headless: bool,
    /// Resume even though experiment.ron was edited since the run started.
    #[arg(long)]
    force: bool,
}

/// Continues a stopped or killed run from its newest intact checkpoint.
fn resume(args: ResumeArgs) -> Result<i32> {
    let dir = &args.run_dir;
    let bad = |message: String| {
        eprintln!("error: {message}");
        Ok(EXIT_BAD_INPUT)
    };
    let file = dir.join("experiment.ron");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return bad(format!(
            "{}: not a run directory (it has no readable experiment.ron)",
            dir.display()
        ));
    };
    if dir.join("summary.json").exists() {
        return bad(format!(
            "{}: this run has finished (summary.json exists); nothing to resume",
            dir.display()
        ));
    }
    let experiment = match load(&file, &[]) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let checkpoints = Checkpoints::new(dir);
    checkpoints.clean_partial();
    let (resume, checkpoint_name) = match checkpoints.latest() {
        Ok(latest) => {
            for skipped in &latest.skipped {
                eprintln!("warning: {skipped}; using an older checkpoint");
            }
            match Resume::from_file(latest.file) {
                Ok(r) => (Some(r), Some(latest.path.display().to_string())),
                Err(e) => return bad(format!("{}: {e}", latest.path.display())),
            }
        }
        Err(CheckpointError::None { .. }) => {
            eprintln!(
                "note: {} has no checkpoint yet (it stopped before its first epoch ended); the run starts over",
                dir.display()
            );
            (None, None)
        }
        Err(e) => return bad(format!("no intact checkpoint to resume from: {e}")),
    };
    let text_sha = sha256_hex(text.as_bytes());
    let manifest_path = dir.join("manifest.json");
    let mut manifest: RunManifest = match std::fs::read_to_string(&manifest_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => return bad(format!("{}: {e}", manifest_path.display())),
    };
    // The experiment the run started with: the checkpoint's, else the manifest's.
    let started_with = resume
        .as_ref()
        .map_or(manifest.experiment_sha256.clone(), |r| {
            r.state.experiment_sha256.clone()
        });
    let mut forced = false;
    {
        if started_with != text_sha {
            if !args.force {
                return bad(format!(
                    "{} was changed after the run started; resuming would mix two experiments in one run. Undo the edit, start a new run, or pass --force to continue with the edited file",
                    file.display()
                ));
            }
            forced = true;
            eprintln!(
                "warning: {} was edited; continuing anyway (--force)",
                file.display()
            );
        }
    }
    if let Err(code) = check_terminal(args.headless, &format!("resume {}", dir.display())) {
        return Ok(code);
    }
    let keymap = match keymap_for(args.headless) {
        Ok(k) => k,
        Err(code) => return Ok(code),
    };
    let corpus = match load_corpus(&experiment) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Some(r) = &resume {
        if r.state.corpus_sha256 != engine::checkpoint::corpus_sha256(&corpus) {
            return bad(format!(
                "the data of {} differ from the data the run started on; resume it with the same corpus",
                file.display()
            ));
        }
    }
    let pretrained = if resume.is_some() {
        None // the checkpoint holds the weights
    } else {
        match load_pretrained(&experiment, &corpus) {
            Ok(w) => w,
            Err(code) => return Ok(code),
        }
    };
    // Cut the log back to the checkpoint: what came after is replayed.
    let events = dir.join("events.jsonl");
    let keep = resume.as_ref().map_or(0, |r| r.file.events_len);
    let len = std::fs::metadata(&events).map(|m| m.len()).unwrap_or(0);
    if len < keep {
        return bad(format!(
            "{}: {len} bytes, shorter than the {keep} the checkpoint was taken at; the record is damaged",
            events.display()
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&events)
        .and_then(|f| f.set_len(keep))
        .wrap_err_with(|| format!("cannot cut {} back to the checkpoint", events.display()))?;
    let history = crate::store::read_events(&events).wrap_err("cannot read events.jsonl")?;
    let run_dir = RunDir { path: dir.clone() };
    let position = resume
        .as_ref()
        .map_or("the start".into(), |r| r.state.position.describe());
    manifest.resumes.push(ResumeRecord {
        at: crate::store::manifest::now(),
        checkpoint: checkpoint_name,
        position: position.clone(),
        forced,
        arithmetic: Some(crate::model::Arithmetic::current()),
    });
    run_dir
        .write_json("manifest.json", &manifest)
        .wrap_err("cannot write the run directory")?;
    init_log(&run_dir.file("run.log"), true)?;
    if args.headless {
        println!(
            "run directory: {} (resuming at {position})",
            run_dir.path.display()
        );
    }
    let context = engine::RunContext {
        pretrained,
        weights_dir: Some(run_dir.file("weights")),
        checkpoints: Some(checkpoints),
        // Once forced, the edited file is the run's experiment.
        experiment_sha256: if forced { text_sha } else { started_with },
        resume,
        checkpoint_every: checkpoint_every(),
    };
    execute(
        run_dir,
        experiment,
        corpus,
        context,
        args.headless,
        keymap,
        history,
    )
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

fn check_terminal(headless: bool, command: &str) -> std::result::Result<(), i32> {
    use std::io::IsTerminal;
    if !headless && !std::io::stdout().is_terminal() {
        eprintln!(
            "error: the dashboard needs a terminal and standard output is not one; use `iq-tui {command} --headless`"
        );
        return Err(EXIT_BAD_INPUT);
    }
    Ok(())
}

fn keymap_for(headless: bool) -> std::result::Result<Keymap, i32> {
    if headless {
        return Ok(Keymap::default());
    }
    Keymap::load().map_err(|e| {
        eprintln!("error: keymap {e}");
        EXIT_BAD_INPUT
    })
}

fn load_corpus(experiment: &Experiment) -> std::result::Result<data::Corpus, i32> {
    data::load(&experiment.data, experiment.seed).map_err(|e| {
        eprintln!("error: {e}");
        data_error_status(&e)
    })
}

fn load_pretrained(
    experiment: &Experiment,
    corpus: &data::Corpus,
) -> std::result::Result<Option<crate::store::weights::Weights>, i32> {
    let Some(dir) = &experiment.pretrained else {
        return Ok(None);
    };
    crate::store::weights::load(dir)
        .map_err(|e| e.to_string())
        .and_then(|w| {
            engine::check_pretrained(&w, engine::dims_for(experiment, corpus), corpus).map(|()| w)
        })
        .map(Some)
        .map_err(|e| {
            eprintln!("error: pretrained weights {}: {e}", dir.display());
            EXIT_BAD_INPUT
        })
}

/// Runs the engine on its own thread while the dashboard or the headless
/// printer shows its records; `history` is what the run recorded before (a
/// resume), shown by the dashboard first.
fn execute(
    run_dir: RunDir,
    experiment: Experiment,
    corpus: data::Corpus,
    context: engine::RunContext,
    headless: bool,
    keymap: Keymap,
    history: Vec<Record>,
) -> Result<i32> {
    let control = Control::new();
    // A signal stops the run cooperatively; the dashboard also leaves the screen.
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, control.stop_flag())?;
        signal_hook::flag::register(signal, terminate.clone())?;
    }
    let mut event_log = run_dir
        .event_log()
        .wrap_err("cannot write the run directory")?
        .on_error({
            let control = control.clone();
            move || control.stop()
        });

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Record>();
    if !headless {
        for r in history {
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
        })?;
    if headless {
        let mut printer = Printer::new();
        while let Some(record) = rx.blocking_recv() {
            printer.on_record(&record);
        }
    } else {
        let source = Source::Live {
            records: rx,
            control: control.clone(),
        };
        let shown = run_dashboard(source, run_dir.path.clone(), keymap, terminate);
        control.stop(); // leaving the dashboard ends the run (after confirmation)
        if let Err(e) = shown {
            let _ = worker.join();
            return Err(eyre!(e).wrap_err("the dashboard failed"));
        }
        println!("run directory: {}", run_dir.path.display());
    }
    let (outcome, log_error, summary_written) = worker
        .join()
        .map_err(|_| eyre!("the training thread panicked"))?;
    if let Some(e) = log_error {
        eprintln!(
            "error: the run was stopped because its records could not be written: {e}\nwhat was finished is in {}; continue with `iq-tui resume {}` once there is space",
            run_dir.path.display(),
            run_dir.path.display()
        );
        return Ok(1);
    }
    match outcome {
        Outcome::Finished(_) => {
            summary_written.wrap_err("cannot write summary.json")?;
            println!("summary: {}", run_dir.file("summary.json").display());
            Ok(0)
        }
        Outcome::Stopped => {
            println!(
                "stopped; continue with `iq-tui resume {}`",
                run_dir.path.display()
            );
            Ok(EXIT_STOPPED)
        }
        Outcome::Failed(error) => {
            eprintln!(
                "error: {error}\nthe run stopped; what was finished is in {}",
                run_dir.path.display()
            );
            Ok(1)
        }
    }
}

fn open(run_dir: PathBuf) -> Result<i32> {
    let records = match crate::store::read_events(&run_dir.join("events.jsonl")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}\n(a run directory holds events.jsonl)");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, terminate.clone())?;
    }
    let keymap = match Keymap::load() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: keymap {e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    match run_dashboard(Source::Recorded(records), run_dir, keymap, terminate) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_BAD_INPUT)
        }
    }
}

fn init_log(path: &Path, append: bool) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .wrap_err_with(|| format!("cannot open {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init()
        .map_err(|e| eyre!("cannot start logging: {e}"))?;
    Ok(())
}

fn bench(args: BenchArgs) -> Result<i32> {
    if args.gemm_peak {
        let peak = crate::bench::gemm_peak(1024, 20);
        if args.json {
            println!("{}", serde_json::to_string(&peak)?);
        } else {
            println!(
                "single-precision GEMM, {0}×{0}×{0}, {1} threads, {2}: {3:.1} GFLOP/s (best of 20)",
                peak.size, peak.threads, peak.backend, peak.gflops
            );
        }
        return Ok(0);
    }
    if !args.json {
        println!(
            "training throughput: vocab {}, batch {}, BPTT {}, {} threads, GEMM {}, median of {} steps",
            args.vocab,
            args.batch,
            args.bptt,
            rayon::current_num_threads(),
            crate::model::gemm::backend(),
            args.steps
        );
        println!(
            "{:>8} {:>10} {:>10} {:>10} {:>13}",
            "model", "tokens/s", "ms/step", "GFLOP/s", "fastest step"
        );
    }
    for size in &args.sizes {
        let (layers, hidden) = size
            .split_once('x')
            .and_then(|(l, h)| Some((l.parse().ok()?, h.parse().ok()?)))
            .ok_or_else(|| eyre!("size {size:?}: expected LAYERSxHIDDEN, e.g. 2x200"))?;
        let t = crate::bench::training_throughput(
            layers, hidden, args.vocab, args.batch, args.bptt, args.steps,
        );
        if args.json {
            println!("{}", serde_json::to_string(&t)?);
        } else {
            println!(
                "{:>8} {:>10.0} {:>10.1} {:>10.1} {:>10.1} ms",
                size, t.tokens_per_sec, t.step_ms, t.gflops, t.fastest_step_ms
            );
        }
    }
    Ok(0)
}

fn quantize(args: QuantizeArgs) -> Result<i32> {
    use crate::compress::Method;
    let method = match args.method {
        MethodArg::Greedy => Method::Greedy,
        MethodArg::Refined => Method::Refined,
        MethodArg::Alternating => Method::Alternating {
            cycles: args.cycles,
        },
        MethodArg::Uniform => Method::Uniform,
    };
    if !(1..=4).contains(&args.bits) {
        eprintln!("error: --bits {}: quantization uses 1 to 4 bits", args.bits);
        return Ok(EXIT_BAD_INPUT);
    }
    if let Some(p) = args.mask_rate {
        if !(0.0..1.0).contains(&p) {
            eprintln!("error: --mask-rate {p}: expected a fraction in [0, 1)");
            return Ok(EXIT_BAD_INPUT);
        }
    }
    match crate::quantize_file::quantize_file(
        &args.file,
        args.bits,
        method,
        args.mask_rate,
        args.out.as_deref(),
    ) {
        Ok(r) => {
            println!(
                "{}: {}×{}, {} bits, {}",
                args.file.display(),
                r.rows,
                r.cols,
                r.bits,
                r.method
            );
            println!(
                "relative squared error ‖W − Q‖²/‖W‖² = {:.6}",
                r.relative_error
            );
            println!(
                "sparsity {:.1} %, packed {} bytes vs {} bytes as float32 ({:.1}x smaller)",
                r.sparsity * 100.0,
                r.packed_bytes,
                r.fp32_bytes,
                r.fp32_bytes as f64 / r.packed_bytes.max(1) as f64
            );
            if let Some(out) = &args.out {
                println!("wrote {}", out.display());
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_BAD_INPUT)
        }
    }
}

fn fetch_ptb(dir: Option<PathBuf>) -> Result<i32> {
    let dir = match dir.or_else(data::ptb::cache_dir) {
        Some(d) => d,
        None => {
            eprintln!("error: no cache directory on this system; pass --dir");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let base =
        std::env::var("IQ_TUI_PTB_URL").unwrap_or_else(|_| data::ptb::DEFAULT_BASE_URL.into());
    println!("downloading Penn Treebank from {base}");
    match data::ptb::download(&base, &dir, &data::ptb::FILES) {
        Ok(()) => {
            println!("verified (SHA-256) in {}", dir.display());
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(data_error_status(&e))
        }
    }
}

fn export_model(run_dir: &Path, out: Option<PathBuf>) -> Result<i32> {
    let model = match crate::packed::PackedModel::from_run(run_dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}\n(export-model needs a finished run that quantized its model)");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let out = out.unwrap_or_else(|| run_dir.join("model.iqpk"));
    let body = model
        .write(&out)
        .wrap_err("cannot write the packed model")?;
    let file = std::fs::metadata(&out)?.len();
    println!(
        "wrote {}: {file} bytes ({body} bytes of weights, the rest the header and vocabulary)",
        out.display()
    );
    let st = out.with_extension("safetensors");
    model
        .write_safetensors(&st)
        .wrap_err("cannot write the safetensors export")?;
    println!(
        "wrote {} (dequantized f32 and the packed planes, for PyTorch and NumPy)",
        st.display()
    );
    let reported = std::fs::read_to_string(run_dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["final"]["packed_bytes"].as_u64());
    if let Some(r) = reported {
        println!("the run reported {r} packed bytes");
    }
    Ok(0)
}

fn eval(args: EvalArgs) -> Result<i32> {
    let model = match crate::packed::PackedModel::read(&args.model) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let experiment = args.experiment.clone().or_else(|| {
        let file = args.model.parent()?.join("experiment.ron");
        file.is_file().then(|| {
            println!("corpus and evaluation settings from {}", file.display());
            file
        })
    });
    let (source, batch, bptt) = match &experiment {
        Some(file) => match load(file, &[]) {
            Ok(e) => ((e.data.clone(), e.seed), e.eval.batch_size, e.training.bptt),
            Err(code) => return Ok(code),
        },
        None => ((experiment::DataSource::Ptb { dir: None }, 0), 10, 20),
    };
    let (batch, bptt) = (args.batch.unwrap_or(batch), args.bptt.unwrap_or(bptt));
    let corpus = match data::load(&source.0, source.1) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(data_error_status(&e));
        }
    };
    if corpus.vocab.words() != model.vocab.as_slice() {
        eprintln!("error: the model's vocabulary is not this corpus' vocabulary");
        return Ok(EXIT_BAD_INPUT);
    }
    let split = match args.split {
        SplitArg::Train => data::Split::Train,
        SplitArg::Valid => data::Split::Valid,
        SplitArg::Test => data::Split::Test,
    };
    let start = std::time::Instant::now();
    match crate::packed::infer::evaluate(&model, corpus.split(split), batch, bptt) {
        Ok((ppl, _, tokens)) => {
            println!(
                "{}: {split} perplexity {ppl:.4} ({tokens} tokens, {:.1} s, packed kernels)",
                args.model.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.model.display());
            Ok(EXIT_BAD_INPUT)
        }
    }
}
