//! `iq-tui sweep --slurm`, `iq-tui resume SWEEP_DIR --slurm` and
//! `iq-tui status SWEEP_DIR`: a sweep submitted as job arrays from a login
//! node, resubmitted for what is not finished, and its state read from the
//! run directories and the scheduler together. Nothing here waits for a
//! job: every command submits or reads, then exits.

use std::fs;
use std::path::{Path, PathBuf};

use super::args::{ResumeArgs, SlurmArgs, SweepArgs};
use super::error::{CliError, CliResult, Done};
use super::sweep::{lock_error, prepare, Prepared};
use crate::data::ptb;
use crate::experiment::DataSource;
use crate::slurm::{self, script, Options, SlurmRecord, Stage, UnitView};
use crate::store::lock::RunLock;
use crate::sweep::{Status, SweepState};

/// CPUs per task when `--cpus-per-task` is not given.
const DEFAULT_CPUS: usize = 4;

/// `iq-tui sweep FILE --slurm`.
pub(super) fn submit(args: SweepArgs) -> CliResult {
    let p = prepare(&args.file, args.out.as_deref())?;
    let cpus = args.slurm.cpus_per_task.map_or(DEFAULT_CPUS, usize::from);
    let options = Options {
        partition: args.slurm.partition.clone(),
        time: args.slurm.time.clone(),
        cpus_per_task: cpus,
        mem: args
            .slurm
            .mem
            .clone()
            .unwrap_or_else(|| slurm::default_mem(p.peak_bytes())),
        max_running: args.slurm.max_running.map(usize::from),
        sbatch_args: args.slurm.sbatch_args.clone(),
    };
    let ptb_dir = ptb_needed(&p)?;
    let executable = executable()?;
    if args.dry_run {
        let at_once = options
            .max_running
            .map_or("as many at a time as Slurm runs".into(), |m| {
                format!("{m} at a time on Slurm")
            });
        p.print_plan(&at_once, cpus);
        println!("\nthe cells' sbatch script:\n");
        print!(
            "{}",
            script::script(
                &p.sweep.name,
                &p.root,
                Stage::Cells,
                &options,
                &executable,
                ptb_dir.as_deref()
            )
        );
        return Ok(Done::Finished);
    }
    slurm::check_sbatch().map_err(CliError::bad)?;
    let (state, lock) = p.create(cpus)?;
    let root = p.root.clone();
    let mut record = SlurmRecord {
        options,
        executable,
        submissions: Vec::new(),
    };
    let checked = write_scripts(&root, &state, &record, ptb_dir.as_deref()).and_then(|()| {
        for (stage, n) in [
            (Stage::Pretrain, state.pretrains.len()),
            (Stage::Cells, state.cells.len()),
        ] {
            if n > 0 {
                let all: Vec<usize> = (0..n).collect();
                slurm::test_only(&root, stage, &all, &record.options).map_err(CliError::bad)?;
            }
        }
        Ok(())
    });
    if let Err(e) = checked {
        // Nothing ran in it: leave no half-made sweep behind.
        drop(lock);
        let _ = fs::remove_dir_all(&root);
        return Err(e);
    }
    say_plan(&root, &state, &record.options);
    let pretrains: Vec<usize> = (0..state.pretrains.len()).collect();
    let cells: Vec<usize> = (0..state.cells.len()).collect();
    let result = submit_units(&root, &mut record, &pretrains, &cells, &[]);
    drop(lock);
    result
}

fn say_plan(root: &Path, state: &SweepState, o: &Options) {
    println!(
        "sweep directory: {} ({} cell{}, {} shared pre-training; {} CPU{}, {} per task{}{})",
        root.display(),
        state.cells.len(),
        if state.cells.len() == 1 { "" } else { "s" },
        state.pretrains.len(),
        o.cpus_per_task,
        if o.cpus_per_task == 1 { "" } else { "s" },
        o.mem,
        o.time
            .as_ref()
            .map_or(String::new(), |t| format!(", time limit {t}")),
        o.max_running
            .map_or(String::new(), |m| format!(", {m} at a time"))
    );
}

/// Submits the pre-training units, then the cells after them and after
/// `queued_pretrain_jobs` (pre-training already in the queue), recording
/// each submission as soon as it is made.
fn submit_units(
    root: &Path,
    record: &mut SlurmRecord,
    pretrains: &[usize],
    cells: &[usize],
    queued_pretrain_jobs: &[String],
) -> CliResult {
    let write = |e: std::io::Error| {
        CliError::failed(format!(
            "cannot write {}: {e}",
            root.join(slurm::record::RECORD_FILE).display()
        ))
    };
    let mut after: Vec<String> = queued_pretrain_jobs.to_vec();
    if !pretrains.is_empty() {
        let s = slurm::submit(root, Stage::Pretrain, pretrains, &record.options, &[])
            .map_err(CliError::failed)?;
        println!(
            "submitted the pre-training: job {} ({} task{})",
            s.job,
            pretrains.len(),
            if pretrains.len() == 1 { "" } else { "s" }
        );
        after.push(s.job.clone());
        record.submissions.push(s);
        record.write(root).map_err(write)?;
    }
    if !cells.is_empty() {
        let s = slurm::submit(root, Stage::Cells, cells, &record.options, &after).map_err(|e| {
            CliError::failed(format!(
                "{e}\nthe pre-training is submitted; `iq-tui resume {} --slurm` submits the cells",
                root.display()
            ))
        })?;
        println!(
            "submitted the cells: job {} ({} task{}{})",
            s.job,
            cells.len(),
            if cells.len() == 1 { "" } else { "s" },
            if after.is_empty() {
                String::new()
            } else {
                format!(", after job {}", after.join(", "))
            }
        );
        record.submissions.push(s);
        record.write(root).map_err(write)?;
    }
    let dir = root.display();
    println!(
        "watch with `iq-tui status {dir}` or `iq-tui {dir}` (the explorer); logs in {dir}/logs/"
    );
    Ok(Done::Finished)
}

/// The PTB directory the tasks read, checked here because compute nodes
/// download nothing; `None` when no unit reads PTB.
fn ptb_needed(p: &Prepared) -> Result<Option<PathBuf>, CliError> {
    let units = p.plan.pretrains.iter().chain(&p.plan.cells);
    corpora_here(units.map(|u| (u.name.clone(), u.experiment.data.clone())))
}

/// The PTB directory of the first unit that reads PTB, found here, after
/// checking that every corpus the units read is on this machine.
fn corpora_here(
    units: impl Iterator<Item = (String, DataSource)>,
) -> Result<Option<PathBuf>, CliError> {
    let mut ptb = None;
    for (name, data) in units {
        match data {
            DataSource::Ptb { dir } if ptb.is_none() => {
                ptb = Some(ptb_here(&name, dir.as_deref())?);
            }
            DataSource::WikiText2 { dir } => wikitext_here(&name, dir.as_deref())?,
            _ => {}
        }
    }
    Ok(ptb)
}

/// WikiText-2 must be on this machine too: tasks read it where this lookup
/// finds it (the cache, on a shared home directory, or IQ_TUI_WIKITEXT2_DIR
/// or data.dir on a shared filesystem).
fn wikitext_here(unit: &str, dir: Option<&Path>) -> Result<(), CliError> {
    let mut lookup = crate::data::wikitext::Lookup::from_env(dir);
    lookup.offline = true;
    match lookup.resolve() {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::bad(format!(
            "{unit} reads WikiText-2, and compute nodes download nothing: {e}\nfetch it here first with `iq-tui fetch-wikitext2`, then submit again"
        ))),
    }
}

/// Where PTB lies on this machine, looked up as a run would but never
/// downloaded.
fn ptb_here(unit: &str, dir: Option<&Path>) -> Result<PathBuf, CliError> {
    let mut lookup = ptb::Lookup::from_env(dir);
    lookup.offline = true;
    match lookup.resolve() {
        Ok(d) => Ok(std::path::absolute(&d).unwrap_or(d)),
        Err(crate::data::DataError::NotFound { looked, .. }) => {
            let looked: Vec<String> = looked
                .iter()
                .map(|p| format!("  - {}", p.display()))
                .collect();
            Err(CliError::bad(format!(
                "{unit} reads Penn Treebank, which is not on this machine, and compute nodes download nothing. Looked in:\n{}\nfetch it here first with `iq-tui fetch-ptb` (into the cache; compute nodes read it where home directories are shared), or set IQ_TUI_PTB_DIR to a copy on the shared filesystem, then submit again",
                looked.join("\n")
            )))
        }
        Err(e) => Err(CliError::bad(format!("{unit}: {e}"))),
    }
}

fn executable() -> Result<PathBuf, CliError> {
    std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find the iq-tui executable: {e}")))
}

fn write_scripts(
    root: &Path,
    state: &SweepState,
    record: &SlurmRecord,
    ptb_dir: Option<&Path>,
) -> Result<(), CliError> {
    let write = |p: &Path, e: std::io::Error| {
        CliError::failed(format!("cannot write {}: {e}", p.display()))
    };
    for d in [root.join("slurm"), root.join("logs")] {
        fs::create_dir_all(&d).map_err(|e| write(&d, e))?;
    }
    for (stage, n) in [
        (Stage::Pretrain, state.pretrains.len()),
        (Stage::Cells, state.cells.len()),
    ] {
        if n == 0 {
            continue;
        }
        let path = script::path(root, stage);
        let text = script::script(
            &state.name,
            root,
            stage,
            &record.options,
            &record.executable,
            ptb_dir,
        );
        crate::atomic::write(&path, text.as_bytes()).map_err(|e| write(&path, e))?;
    }
    Ok(())
}

/// `iq-tui resume SWEEP_DIR --slurm [--retry-failed]`.
pub(super) fn resume(args: ResumeArgs) -> CliResult {
    let root = std::path::absolute(&args.run_dir)
        .map_err(|e| CliError::failed(format!("{}: {e}", args.run_dir.display())))?;
    if !crate::sweep::state::is_sweep_dir(&root) {
        return Err(CliError::bad(format!(
            "{}: not a sweep directory; --slurm resubmits a sweep's units (a single run resumes with `iq-tui resume RUN_DIR --headless` in your own batch script)",
            root.display()
        )));
    }
    let mut state = SweepState::read(&root).map_err(CliError::bad)?;
    let lock = RunLock::acquire(&root).map_err(lock_error)?;
    slurm::check_sbatch().map_err(CliError::bad)?;
    let old = SlurmRecord::read(&root).map_err(CliError::bad)?;
    let given = &args.slurm;
    let mut record = match old {
        Some(r) => r,
        None => SlurmRecord {
            options: Options {
                partition: None,
                time: None,
                cpus_per_task: state.threads,
                mem: String::new(),
                max_running: None,
                sbatch_args: Vec::new(),
            },
            executable: executable()?,
            submissions: Vec::new(),
        },
    };
    let changed = apply(&mut record.options, given, &root, &state);
    if record.options.cpus_per_task != state.threads {
        println!(
            "note: the units computed with {} thread{} so far; a unit resumed with {} may differ from an uninterrupted one in the last digits",
            state.threads,
            if state.threads == 1 { "" } else { "s" },
            record.options.cpus_per_task
        );
        state.threads = record.options.cpus_per_task;
        state
            .write(&root)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", root.display())))?;
    }
    let board = slurm::board(&root, &state).map_err(CliError::bad)?;
    let todo = |stage: Stage| -> Vec<usize> {
        board
            .units
            .iter()
            .filter(|u| u.stage == stage && wants(u, args.retry_failed))
            .map(|u| u.index)
            .collect()
    };
    let mut pretrains = todo(Stage::Pretrain);
    let mut cells = todo(Stage::Cells);
    // A cell waits for its pre-training: one that is blocked goes only
    // when that pre-training goes again.
    cells.retain(|&i| {
        let after = state.cells[i].after;
        let u = &board.units[state.pretrains.len() + i];
        u.run != Status::Blocked || after.is_some_and(|k| pretrains.contains(&k))
    });
    let queued: Vec<String> = board
        .units
        .iter()
        .filter(|u| u.stage == Stage::Pretrain && is_queued(u))
        .filter(|u| state.cells.iter().any(|c| c.after == Some(u.index)))
        .filter_map(|u| u.job.as_ref().and_then(|j| j.split('_').next()))
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let waiting = board.units.iter().filter(|u| is_queued(u)).count();
    let failed = board
        .units
        .iter()
        .filter(|u| is_failure(u) && !args.retry_failed)
        .count();
    if pretrains.is_empty() && cells.is_empty() {
        println!(
            "nothing to submit: {} of {} cells finished, {waiting} unit{} queued or running{}",
            board
                .units
                .iter()
                .filter(|u| u.stage == Stage::Cells && u.state == "FINISHED")
                .count(),
            state.cells.len(),
            if waiting == 1 { "" } else { "s" },
            if failed > 0 {
                format!(", {failed} failed (--retry-failed submits them again)")
            } else {
                String::new()
            }
        );
        return Ok(Done::Finished);
    }
    if changed || !script::path(&root, Stage::Cells).is_file() {
        let ptb_dir = ptb_of_scripts(&root, &state)?;
        write_scripts(&root, &state, &record, ptb_dir.as_deref())?;
    }
    pretrains.sort_unstable();
    cells.sort_unstable();
    say_plan(&root, &state, &record.options);
    let result = submit_units(&root, &mut record, &pretrains, &cells, &queued);
    drop(lock);
    result
}

/// Resources given again on `resume --slurm` replace those recorded;
/// whether any was given.
fn apply(o: &mut Options, given: &SlurmArgs, root: &Path, state: &SweepState) -> bool {
    let before = o.clone();
    if let Some(p) = &given.partition {
        o.partition = Some(p.clone());
    }
    if let Some(t) = &given.time {
        o.time = Some(t.clone());
    }
    if let Some(c) = given.cpus_per_task {
        o.cpus_per_task = c.into();
    }
    if let Some(m) = &given.mem {
        o.mem = m.clone();
    }
    if let Some(m) = given.max_running {
        o.max_running = Some(m.into());
    }
    if !given.sbatch_args.is_empty() {
        o.sbatch_args = given.sbatch_args.clone();
    }
    if o.mem.is_empty() {
        let peak = state
            .units()
            .filter_map(|u| crate::experiment::load(&root.join(&u.experiment), &[]).ok())
            .map(|e| crate::engine::footprint::Footprint::of(&e).peak_bytes())
            .max()
            .unwrap_or(0);
        o.mem = slurm::default_mem(peak);
    }
    *o != before && !before.mem.is_empty()
}

/// The PTB directory for freshly written scripts: checked as on submission.
fn ptb_of_scripts(root: &Path, state: &SweepState) -> Result<Option<PathBuf>, CliError> {
    corpora_here(state.units().filter_map(|u| {
        let e = crate::experiment::load(&root.join(&u.experiment), &[]).ok()?;
        Some((u.name.clone(), e.data))
    }))
}

/// A local `resume` of a sweep whose units still wait or run on Slurm
/// would give them a second writer: refused, naming the jobs.
pub(super) fn refuse_if_queued(root: &Path, state: &SweepState) -> Result<(), CliError> {
    if !root.join(slurm::record::RECORD_FILE).is_file() {
        return Ok(());
    }
    let board = slurm::board(root, state).map_err(CliError::bad)?;
    let queued: Vec<String> = board
        .units
        .iter()
        .filter(|u| u.job.is_some() && matches!(u.state.as_str(), "PENDING" | "RUNNING"))
        .filter_map(|u| u.job.clone())
        .collect();
    if queued.is_empty() {
        return Ok(());
    }
    Err(CliError::bad(format!(
        "{}: {} unit{} of this sweep {} queued or running on Slurm ({}); wait for them, or `scancel` them first; `iq-tui resume {} --slurm` submits the rest",
        root.display(),
        queued.len(),
        if queued.len() == 1 { "" } else { "s" },
        if queued.len() == 1 { "is" } else { "are" },
        queued.join(", "),
        root.display()
    )))
}

fn is_queued(u: &UnitView) -> bool {
    matches!(u.state.as_str(), "PENDING" | "RUNNING") && u.job.is_some() || u.run == Status::Running
}

fn is_failure(u: &UnitView) -> bool {
    matches!(u.state.as_str(), "FAILED" | "OUT_OF_MEMORY" | "NODE_FAIL")
}

/// Whether `resume --slurm` submits this unit.
fn wants(u: &UnitView, retry_failed: bool) -> bool {
    if u.state == "FINISHED" || is_queued(u) {
        return false;
    }
    // A unit never submitted and still pending in its run directory goes too.
    !is_failure(u) || retry_failed
}

/// `iq-tui status SWEEP_DIR`.
pub(super) fn status(dir: &Path) -> CliResult {
    if !crate::sweep::state::is_sweep_dir(dir) {
        let hint = if dir.join("events.jsonl").is_file() {
            format!(
                "it is a run directory: `iq-tui open {}` shows it",
                dir.display()
            )
        } else {
            "give the directory `iq-tui sweep` made (it holds sweep.json)".into()
        };
        return Err(CliError::bad(format!(
            "{}: not a sweep directory; {hint}",
            dir.display()
        )));
    }
    let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let state = SweepState::read(&root).map_err(CliError::bad)?;
    let board = slurm::board(&root, &state).map_err(CliError::bad)?;
    let source = match (&board.record, &board.snapshot) {
        (None, _) => "run here (no Slurm jobs)".to_string(),
        (Some(_), s) if s.squeue => format!(
            "Slurm: squeue{}",
            if s.sacct {
                " and sacct"
            } else {
                " (sacct: accounting off)"
            }
        ),
        (Some(_), s) => format!(
            "Slurm: {} (states from the run directories and the last ones seen)",
            s.note.as_deref().unwrap_or("squeue did not answer")
        ),
    };
    println!("sweep {} · {} · {source}", state.name, root.display());
    print!("{}", table(&root, &board.units));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for u in board.units.iter().filter(|u| u.stage == Stage::Cells) {
        match counts.iter_mut().find(|c| c.0 == u.state) {
            Some(c) => c.1 += 1,
            None => counts.push((u.state.clone(), 1)),
        }
    }
    counts.sort();
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "{} cell{}: {}",
        state.cells.len(),
        if state.cells.len() == 1 { "" } else { "s" },
        parts.join(", ")
    );
    Ok(Done::Finished)
}

/// One line per unit: name, state, job, log (relative to the sweep), detail.
fn table(root: &Path, units: &[UnitView]) -> String {
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let rows: Vec<[String; 5]> = units
        .iter()
        .map(|u| {
            [
                match u.stage {
                    Stage::Pretrain => format!("pretrain/{}", u.name),
                    Stage::Cells => u.name.clone(),
                },
                u.state.clone(),
                u.job.clone().unwrap_or_else(|| "-".into()),
                u.log.as_deref().map_or("-".into(), rel),
                u.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["UNIT", "STATE", "JOB", "LOG", ""].map(String::from);
    let mut widths = [0usize; 4];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
