//! `iq-tui sweep`: a sweep directory made from a sweep file, its units run
//! as child processes (`iq-tui run-cell`), N at a time with the cores
//! divided between them, and resumed from the directory after a stop.
//!
//! Each unit is its own process so that a failed or killed cell leaves the
//! others running, and each has a fixed thread count so that its numbers do
//! not depend on how many units ran beside it. A child learns of its
//! parent's death (`PR_SET_PDEATHSIG`) and stops with a checkpoint.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{ResumeArgs, RunArgs, SlurmArgs, SweepArgs};
use super::error::{CliError, CliResult, Done};
use crate::engine::footprint::Footprint;
use crate::experiment;
use crate::headless::say;
use crate::record::format;
use crate::store::lock::{LockError, RunLock};
use crate::store::manifest::available_memory;
use crate::sweep::{self, observe, Status, SweepState, UnitEntry};

fn invalid(e: experiment::ExperimentError) -> CliError {
    CliError::bad(format!("invalid sweep\n{e}"))
}

/// Whether a file given to `run` or `validate` is a sweep file.
pub(super) fn is_sweep_file(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|t| sweep::is_sweep(&t))
}

pub(super) fn validate(file: &Path, set: &[String]) -> CliResult {
    if !set.is_empty() {
        return Err(no_set());
    }
    let (s, cells) = sweep::load(file).map_err(invalid)?;
    let plan = sweep::plan::plan(&s.name, &cells, Path::new("."));
    println!(
        "{}: valid sweep, {} cells, {} shared pre-training run{}",
        file.display(),
        cells.len(),
        plan.pretrains.len(),
        if plan.pretrains.len() == 1 { "" } else { "s" }
    );
    Ok(Done::Finished)
}

fn no_set() -> CliError {
    CliError::bad(
        "--set applies to one experiment; in a sweep, vary the field in `grid` or change the base experiment",
    )
}

/// `iq-tui FILE` and `iq-tui run FILE` on a sweep file.
pub(super) fn from_run(args: RunArgs) -> CliResult {
    if !args.set.set.is_empty() {
        return Err(no_set());
    }
    start(SweepArgs {
        file: args.file,
        headless: args.headless,
        dry_run: args.dry_run,
        out: args.out,
        jobs: None,
        threads: None,
        slurm: SlurmArgs::default(),
    })
}

/// Cores, and the units that fit beside each other in memory.
fn default_jobs(units: &[&experiment::Experiment], cores: usize) -> usize {
    let peak = units
        .iter()
        .map(|e| Footprint::of(e).peak_bytes())
        .max()
        .unwrap_or(1)
        .max(1);
    let by_memory = available_memory().map_or(cores, |a| (a / peak).max(1) as usize);
    cores.min(by_memory).min(units.len()).max(1)
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A sweep file read and planned into the directory it will run in.
pub(super) struct Prepared {
    pub sweep: sweep::SweepFile,
    pub cells: Vec<sweep::CellSpec>,
    pub out: PathBuf,
    pub root: PathBuf,
    pub plan: sweep::Plan,
}

pub(super) fn prepare(file: &Path, out: Option<&Path>) -> Result<Prepared, CliError> {
    let (s, cells) = sweep::load(file).map_err(invalid)?;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        s.base.output.dir.join(format!("{}-{stamp}", s.name))
    });
    let root = std::path::absolute(&out)
        .map_err(|e| CliError::failed(format!("{}: {e}", out.display())))?;
    let plan = sweep::plan::plan(&s.name, &cells, &root);
    Ok(Prepared {
        sweep: s,
        cells,
        out,
        root,
        plan,
    })
}

impl Prepared {
    /// Cores and memory allow this many units at a time.
    fn default_jobs(&self) -> usize {
        let all: Vec<&experiment::Experiment> =
            self.plan.cells.iter().map(|u| &u.experiment).collect();
        default_jobs(&all, cores())
    }

    /// Writes the sweep directory (refusing one that holds anything) and
    /// locks it.
    pub fn create(&self, threads: usize) -> Result<(SweepState, RunLock), CliError> {
        let (out, root) = (&self.out, &self.root);
        if out.exists() && fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
            return Err(CliError::bad(format!(
                "{} already exists and is not empty; `iq-tui resume {}` continues a sweep, or choose another --out",
                out.display(),
                out.display()
            )));
        }
        let write =
            |e: std::io::Error| CliError::failed(format!("cannot write {}: {e}", root.display()));
        fs::create_dir_all(root.join("experiments")).map_err(write)?;
        let lock = RunLock::acquire(root).map_err(lock_error)?;
        crate::atomic::write(
            &root.join("sweep.ron"),
            sweep::resolved_ron(&self.sweep).as_bytes(),
        )
        .map_err(write)?;
        for u in self.plan.pretrains.iter().chain(&self.plan.cells) {
            let file = root.join("experiments").join(format!("{}.ron", u.name));
            crate::atomic::write(&file, experiment::to_ron(&u.experiment).as_bytes())
                .map_err(write)?;
        }
        let state = sweep::initial_state(&self.sweep, &self.plan, &self.cells, threads);
        state.write(root).map_err(write)?;
        Ok((state, lock))
    }

    /// The largest estimated peak memory of a cell.
    pub fn peak_bytes(&self) -> u64 {
        self.plan
            .pretrains
            .iter()
            .chain(&self.plan.cells)
            .map(|u| Footprint::of(&u.experiment).peak_bytes())
            .max()
            .unwrap_or(0)
    }

    pub fn print_plan(&self, at_once: &str, threads: usize) {
        print_plan(&self.sweep, &self.cells, &self.plan, at_once, threads);
    }
}

pub(super) fn start(args: SweepArgs) -> CliResult {
    if args.slurm.slurm {
        return super::slurm::submit(args);
    }
    let p = prepare(&args.file, args.out.as_deref())?;
    let jobs = args.jobs.map_or_else(|| p.default_jobs(), usize::from);
    let threads = args
        .threads
        .map_or_else(|| (cores() / jobs).max(1), usize::from);
    if args.dry_run {
        p.print_plan(&format!("{jobs} at a time"), threads);
        return Ok(Done::Finished);
    }
    if !args.headless {
        super::run::check_terminal(false, &format!("sweep {}", args.file.display()))?;
    }
    let (mut state, lock) = p.create(threads)?;
    let root = p.root;
    if !args.headless {
        drop(lock);
        return in_background(&root, jobs);
    }
    say(&format!(
        "sweep directory: {} ({} cells, {} shared pre-training, {jobs} at a time, {threads} thread{} each)",
        root.display(),
        state.cells.len(),
        state.pretrains.len(),
        if threads == 1 { "" } else { "s" }
    ));
    let result = drive(&root, &mut state, jobs, false);
    drop(lock);
    result
}

fn print_plan(
    s: &sweep::SweepFile,
    cells: &[sweep::CellSpec],
    plan: &sweep::Plan,
    at_once: &str,
    threads: usize,
) {
    println!(
        "sweep {}: {} cells, {at_once}, {threads} thread{} each",
        s.name,
        cells.len(),
        if threads == 1 { "" } else { "s" }
    );
    for (c, u) in cells.iter().zip(&plan.cells) {
        let after = u.after.map_or(String::new(), |k| {
            format!("  (from {})", plan.pretrains[k].name)
        });
        println!("  {}  {}{after}", c.name, sweep::describe(&c.values));
    }
    if plan.pretrains.is_empty() {
        println!(
            "shared work: none (every cell trains its own model or starts from given weights)"
        );
    } else {
        println!(
            "shared work: {} pre-training run{} instead of {}",
            plan.pretrains.len(),
            if plan.pretrains.len() == 1 { "" } else { "s" },
            plan.cells.iter().filter(|u| u.after.is_some()).count()
        );
        for (k, p) in plan.pretrains.iter().enumerate() {
            let n = plan.cells.iter().filter(|u| u.after == Some(k)).count();
            println!(
                "  {}  {} epoch{}, seed {}, for {n} cell{}",
                p.name,
                p.experiment.training.epochs,
                if p.experiment.training.epochs == 1 {
                    ""
                } else {
                    "s"
                },
                p.experiment.seed,
                if n == 1 { "" } else { "s" }
            );
        }
    }
    let f = plan
        .cells
        .iter()
        .map(|u| Footprint::of(&u.experiment).peak_bytes())
        .max()
        .unwrap_or(0);
    println!("estimated peak memory per cell: {}", format::bytes(f));
}

pub(super) fn lock_error(e: LockError) -> CliError {
    match e {
        LockError::Held { .. } => CliError::bad(format!(
            "{e} (another `iq-tui sweep` or `resume` is running this sweep)"
        )),
        LockError::Store(e) => CliError::failed(format!("cannot write the sweep directory: {e}")),
    }
}

/// `iq-tui resume SWEEP_DIR`.
pub(super) fn resume(args: ResumeArgs) -> CliResult {
    let root = std::path::absolute(&args.run_dir)
        .map_err(|e| CliError::failed(format!("{}: {e}", args.run_dir.display())))?;
    let mut state = SweepState::read(&root).map_err(CliError::bad)?;
    let lock = RunLock::acquire(&root).map_err(lock_error)?;
    super::slurm::refuse_if_queued(&root, &state)?;
    let jobs = args
        .jobs
        .map_or_else(|| (cores() / state.threads).max(1), usize::from);
    if !args.headless {
        super::run::check_terminal(false, &format!("resume {}", args.run_dir.display()))?;
        drop(lock);
        if args.retry_failed {
            return Err(CliError::bad(format!(
                "--retry-failed runs headless: `iq-tui resume {} --headless --retry-failed`",
                args.run_dir.display()
            )));
        }
        return in_background(&root, jobs);
    }
    refresh(&root, &mut state);
    let left = state
        .units()
        .filter(|u| u.status != Status::Finished)
        .count();
    say(&format!(
        "sweep directory: {} ({left} of {} units to do, {jobs} at a time, {} thread{} each)",
        root.display(),
        state.pretrains.len() + state.cells.len(),
        state.threads,
        if state.threads == 1 { "" } else { "s" }
    ));
    let result = drive(&root, &mut state, jobs, args.retry_failed);
    drop(lock);
    result
}

/// Runs the sweep in a process group of its own (`iq-tui resume DIR
/// --headless`, its lines in `DIR/sweep.log`) and shows it in the explorer.
/// The sweep outlives the explorer, as a cluster job does; `kill -TERM` on
/// its pid (the explorer shows it) stops it with checkpoints.
fn in_background(root: &Path, jobs: usize) -> CliResult {
    let log_path = root.join("sweep.log");
    let mut command = iq_tui_logged(&log_path)?;
    command
        .arg("resume")
        .arg(root)
        .arg("--headless")
        .arg("--jobs")
        .arg(jobs.to_string());
    own_group(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| CliError::failed(format!("cannot start the sweep: {e}")))?;
    // Its lock shows that it started; an early exit, why not.
    let started = Instant::now();
    while crate::store::lock::writer(root).is_none() {
        let ended = child.try_wait().ok().flatten().is_some();
        if ended || started.elapsed() > Duration::from_secs(10) {
            let said = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(CliError::failed(format!(
                "the sweep did not start: {}",
                said.lines().last().unwrap_or("see its log")
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    super::run::explore(root.to_path_buf())
}

/// A process group of its own: Ctrl-C in the explorer's terminal does not reach it.
#[cfg(unix)]
fn own_group(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn own_group(_: &mut Command) {}

/// Reads every unit's status from its run directory.
fn refresh(root: &Path, state: &mut SweepState) {
    for u in state.pretrains.iter_mut().chain(state.cells.iter_mut()) {
        u.status = observe(&root.join(&u.dir));
    }
    block_orphans(state);
}

/// Cells whose pre-training failed cannot start.
fn block_orphans(state: &mut SweepState) {
    let failed: Vec<bool> = state
        .pretrains
        .iter()
        .map(|p| p.status == Status::Failed)
        .collect();
    for c in &mut state.cells {
        if c.after.is_some_and(|k| failed[k]) && c.status == Status::Pending {
            c.status = Status::Blocked;
        }
        if c.after.is_some_and(|k| !failed[k]) && c.status == Status::Blocked {
            c.status = Status::Pending;
        }
    }
}

/// Which unit, by its place in `pretrains` then `cells`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Pretrain(usize),
    Cell(usize),
}

fn entry(state: &SweepState, slot: Slot) -> &UnitEntry {
    match slot {
        Slot::Pretrain(i) => &state.pretrains[i],
        Slot::Cell(i) => &state.cells[i],
    }
}

fn entry_mut(state: &mut SweepState, slot: Slot) -> &mut UnitEntry {
    match slot {
        Slot::Pretrain(i) => &mut state.pretrains[i],
        Slot::Cell(i) => &mut state.cells[i],
    }
}

/// The units that can start now, pre-training first.
fn ready(state: &SweepState, retry_failed: bool, running: &[Slot]) -> Vec<Slot> {
    let wants = |u: &UnitEntry| {
        matches!(u.status, Status::Pending | Status::Stopped)
            || (retry_failed && u.status == Status::Failed)
    };
    let mut out: Vec<Slot> = (0..state.pretrains.len()).map(Slot::Pretrain).collect();
    out.extend((0..state.cells.len()).map(Slot::Cell));
    out.retain(|&s| {
        let u = entry(state, s);
        let after_done = u
            .after
            .is_none_or(|k| state.pretrains[k].status == Status::Finished);
        wants(u) && after_done && !running.contains(&s)
    });
    out
}

/// Runs units until none is left to start, or a signal stops the sweep.
fn drive(root: &Path, state: &mut SweepState, jobs: usize, retry_failed: bool) -> CliResult {
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, terminate.clone())
            .map_err(|e| CliError::failed(format!("cannot watch for signals: {e}")))?;
    }
    let write = |e: std::io::Error| {
        CliError::failed(format!(
            "cannot write {}: {e}",
            root.join(sweep::state::STATE_FILE).display()
        ))
    };
    fs::create_dir_all(root.join("logs")).map_err(write)?;
    let mut running: Vec<(Slot, Child, Instant)> = Vec::new();
    let mut retried: Vec<Slot> = Vec::new();
    loop {
        let stopping = terminate.load(Ordering::SeqCst);
        if !stopping {
            let busy: Vec<Slot> = running.iter().map(|r| r.0).collect();
            for slot in ready(state, retry_failed, &busy) {
                if running.len() >= jobs {
                    break;
                }
                if entry(state, slot).status == Status::Failed {
                    if retried.contains(&slot) {
                        continue; // once per resume
                    }
                    retried.push(slot);
                }
                let child = spawn(root, entry(state, slot), state.threads)?;
                let u = entry_mut(state, slot);
                say(&format!("start {} ({})", u.name, u.dir.display()));
                u.status = Status::Running;
                running.push((slot, child, Instant::now()));
                state.write(root).map_err(write)?;
            }
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            let exited = running[i]
                .1
                .try_wait()
                .map_err(|e| CliError::failed(format!("cannot wait for a unit: {e}")))?;
            let Some(code) = exited else {
                i += 1;
                continue;
            };
            let (slot, _, started) = running.swap_remove(i);
            let dir = root.join(&entry(state, slot).dir);
            let log = root
                .join("logs")
                .join(format!("{}.log", entry(state, slot).name));
            let mut status = observe(&dir);
            if status == Status::Running || status == Status::Pending {
                // It ended before (or without) writing its records' end.
                status = if code.success() {
                    Status::Stopped
                } else {
                    Status::Failed
                };
            }
            if code.code() == Some(super::error::EXIT_STOPPED as i32) && status != Status::Finished
            {
                status = Status::Stopped;
            }
            let u = entry_mut(state, slot);
            u.status = status;
            u.error = (status == Status::Failed).then(|| {
                sweep::state::last_error(&log)
                    .unwrap_or_else(|| "it exited without an error message".into())
            });
            let took = format::duration(started.elapsed().as_secs_f64());
            match status {
                Status::Finished => say(&format!("done {} in {took}{}", u.name, result_of(&dir))),
                Status::Failed => say(&format!(
                    "FAILED {} after {took}: {} (log: {})",
                    u.name,
                    u.error.as_deref().unwrap_or("see the log"),
                    log.display()
                )),
                _ => say(&format!("stopped {} after {took}", u.name)),
            }
            block_orphans(state);
            state.write(root).map_err(write)?;
        }
        if terminate.load(Ordering::SeqCst) && !stopping {
            say("stopping: every running unit checkpoints and stops");
            for (_, child, _) in &running {
                terminate_child(child);
            }
        }
    }
    report_end(root, state, terminate.load(Ordering::SeqCst))
}

fn report_end(root: &Path, state: &SweepState, stopped: bool) -> CliResult {
    let count = |s: Status| state.cells.iter().filter(|u| u.status == s).count();
    let (done, failed, blocked) = (
        count(Status::Finished),
        count(Status::Failed),
        count(Status::Blocked),
    );
    let failed_pre = state
        .pretrains
        .iter()
        .filter(|u| u.status == Status::Failed)
        .count();
    say(&format!(
        "{done} of {} cells finished{}{}{}",
        state.cells.len(),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        },
        if blocked > 0 {
            format!(", {blocked} blocked by {failed_pre} failed pre-training")
        } else {
            String::new()
        },
        if stopped { ", stopped" } else { "" }
    ));
    let dir = root.display();
    if stopped || done + failed + blocked < state.cells.len() {
        say(&format!("continue with `iq-tui resume {dir} --headless`"));
        return Ok(Done::Stopped);
    }
    if failed + blocked > 0 {
        return Err(CliError::failed(format!(
            "{} unit{} failed; their logs are in {dir}/logs/; `iq-tui resume {dir} --headless --retry-failed` tries them again",
            failed + failed_pre,
            if failed + failed_pre == 1 { "" } else { "s" }
        )));
    }
    say(&format!(
        "compare the cells with `iq-tui {dir}` or `iq-tui export {dir}`"
    ));
    Ok(Done::Finished)
}

fn result_of(run_dir: &Path) -> String {
    let Ok(text) = fs::read_to_string(run_dir.join("summary.json")) else {
        return String::new();
    };
    let Ok(s) = serde_json::from_str::<crate::record::Summary>(&text) else {
        return String::new();
    };
    match s.final_model {
        Some(f) => format!(
            ": final test ppl {:.2} (full precision {:.2})",
            f.test_ppl, s.fp.test_ppl
        ),
        None => format!(": test ppl {:.2}", s.fp.test_ppl),
    }
}

fn terminate_child(child: &Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
    }
}

/// This program as a child, its output appended to `log_path`.
fn iq_tui_logged(log_path: &Path) -> Result<Command, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find the iq-tui executable: {e}")))?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", log_path.display())))?;
    let err = log
        .try_clone()
        .map_err(|e| CliError::failed(e.to_string()))?;
    let mut command = Command::new(exe);
    command.stdin(Stdio::null()).stdout(log).stderr(err);
    Ok(command)
}

fn spawn(root: &Path, unit: &UnitEntry, threads: usize) -> Result<Child, CliError> {
    let log_path = root.join("logs").join(format!("{}.log", unit.name));
    let mut command = iq_tui_logged(&log_path)?;
    command
        .arg("run-cell")
        .arg(root)
        .arg("--unit")
        .arg(&unit.name)
        .env("RAYON_NUM_THREADS", threads.to_string());
    die_with_parent(&mut command);
    command
        .spawn()
        .map_err(|e| CliError::failed(format!("cannot start {}: {e}", unit.name)))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl, which is async-signal-safe and touches no shared state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn die_with_parent(_: &mut Command) {}
