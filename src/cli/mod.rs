//! The command line: arguments (clap checks their ranges), one function per
//! command, and one error type whose variant is the exit status. What a
//! command does lives in the rooms below; this folder only reads arguments,
//! calls them and says how it went.
//!
//! `run.rs` starts, resumes and shows runs (the engine thread, the dashboard
//! or the headless printer); `sweep.rs` runs sweeps here, `cell.rs` one unit
//! of a sweep, `slurm.rs` submits sweeps to Slurm and reports their state;
//! `tools.rs` holds the other commands.

mod args;
mod cell;
mod error;
mod run;
mod slurm;
mod sweep;
mod tools;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub use args::Cli;
use args::Command;
pub use error::{CliError, CliResult, Done, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STOPPED};

/// Runs the program.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(Cli::expand(std::env::args_os().collect()));
    error::exit_code(dispatch(cli))
}

fn dispatch(cli: Cli) -> CliResult {
    crate::model::backend::check_request().map_err(CliError::bad)?;
    match cli.command {
        Some(Command::Run(args)) if sweep::is_sweep_file(&args.file) => sweep::from_run(args),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Validate { file, set }) if sweep::is_sweep_file(&file) => {
            sweep::validate(&file, &set.set)
        }
        Some(Command::Validate { file, set }) => tools::validate(&file, &set.set),
        Some(Command::Sweep(args)) => sweep::start(args),
        Some(Command::RunCell {
            sweep_dir,
            unit,
            index,
            stage,
        }) => cell::run_cell(sweep_dir, unit, index, stage),
        Some(Command::Status { sweep_dir }) => slurm::status(&sweep_dir),
        Some(Command::Resume(args))
            if args.slurm.slurm && crate::sweep::state::is_sweep_dir(&args.run_dir) =>
        {
            slurm::resume(args)
        }
        Some(Command::Resume(args)) if crate::sweep::state::is_sweep_dir(&args.run_dir) => {
            sweep::resume(args)
        }
        Some(Command::Bench(args)) => tools::bench(args),
        Some(Command::FetchPtb { dir }) => tools::fetch_ptb(dir),
        Some(Command::FetchWikitext2 { dir }) => tools::fetch_wikitext2(dir),
        Some(Command::Quantize(args)) => tools::quantize(args),
        Some(Command::Open { run_dir }) => run::open(run_dir),
        Some(Command::Resume(args)) => run::resume(args),
        Some(Command::ExportModel {
            run_dir,
            out,
            format: args::ModelFormat::Iqpk,
        }) => tools::export_model(&run_dir, out),
        Some(Command::ExportModel {
            run_dir,
            out,
            format: args::ModelFormat::Torch,
        }) => tools::export_torch(&run_dir, out),
        Some(Command::Eval(args)) => tools::eval(args),
        Some(Command::Export { run_dirs, to }) => tools::export(&run_dirs, to.as_deref()),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "iq-tui", &mut std::io::stdout());
            Ok(Done::Finished)
        }
        Some(Command::ManPage) => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| CliError::failed(format!("cannot write the man page: {e}")))?;
            Ok(Done::Finished)
        }
        None => {
            Cli::command()
                .print_help()
                .map_err(|e| CliError::failed(e.to_string()))?;
            Err(CliError::bad(
                "no command, experiment file or run directory given",
            ))
        }
    }
}
