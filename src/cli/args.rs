//! The arguments of every command, with their ranges: a number out of range
//! is refused by clap with exit status 2 before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The version line: the crate's version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IQ_TUI_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "iq-tui",
    version = VERSION,
    about = "Retraining-based iterative weight quantization of LSTM language models, explored from a terminal",
    override_usage = "iq-tui <EXPERIMENT.ron | SWEEP.ron | RUN_DIR | SWEEP_DIR>\n       iq-tui <COMMAND>",
    after_help = "`iq-tui EXPERIMENT.ron` runs an experiment in the dashboard (as `iq-tui run`), `iq-tui SWEEP.ron` a sweep in the background with the explorer on it; `iq-tui RUN_DIR` opens a run directory, following it while it runs (as `iq-tui open`), and `iq-tui SWEEP_DIR` (or a directory of runs) opens the explorer."
)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Option<Command>,
}

impl Cli {
    /// The names a first argument is read as a subcommand by.
    fn is_command(word: &str) -> bool {
        use clap::CommandFactory;
        word == "help"
            || Self::command()
                .get_subcommands()
                .any(|c| c.get_name() == word || c.get_all_aliases().any(|a| a == word))
    }

    /// `iq-tui PATH …` as the command it stands for: `run PATH …` for a
    /// file, `open PATH` for a directory. Anything else (a mistyped
    /// subcommand included) is left to clap, which suggests the nearest.
    pub fn expand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
        let Some(first) = args.get(1).map(|a| a.to_string_lossy().into_owned()) else {
            return args;
        };
        if first.starts_with('-') || Self::is_command(&first) {
            return args;
        }
        let path = std::path::Path::new(&first);
        let command = if path.is_dir() {
            "open"
        } else if path.exists() || first.contains('.') || first.contains('/') {
            "run"
        } else {
            return args;
        };
        args.insert(1, command.into());
        args
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run an experiment.
    Run(RunArgs),
    /// Check an experiment or sweep file; exit status 2 if it is invalid.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
    },
    /// Measure training throughput (tokens/s) at standard sizes.
    Bench(BenchArgs),
    /// Run a sweep file: every cell of its grid as an ordinary run directory
    /// inside one sweep directory, shared pre-training done once.
    Sweep(SweepArgs),
    /// Run one unit of a sweep directory (what `iq-tui sweep` starts for
    /// each cell, and what a cluster job runs).
    #[command(hide = true)]
    RunCell {
        sweep_dir: PathBuf,
        /// The unit's name, as in sweep.json.
        #[arg(long, conflicts_with = "index")]
        unit: Option<String>,
        /// The unit's index (0-based) in its stage, as a job array's task id.
        #[arg(long)]
        index: Option<usize>,
        /// Which units --index counts.
        #[arg(long, value_enum, default_value = "cells")]
        stage: StageArg,
    },
    /// Every unit of a sweep directory and its state, from the run
    /// directories and, for a sweep submitted with --slurm, the scheduler
    /// (squeue, and sacct when accounting is on): job ids and logs too.
    Status { sweep_dir: PathBuf },
    /// Open a run directory in the dashboard: a run that is going is
    /// followed live (pause, resume and stop reach it through its control
    /// file); quitting leaves it running. A sweep directory, or a
    /// directory of runs, opens in the explorer.
    Open { run_dir: PathBuf },
    /// Continue a stopped or killed run from its newest intact checkpoint,
    /// or a sweep: every cell not finished.
    Resume(ResumeArgs),
    /// Write the run's final quantized model as a packed file (bit-planes,
    /// coefficients, masks, biases, vocabulary), or with `--format torch` as
    /// a PyTorch word_language_model state dict (.safetensors, vocab.txt
    /// beside it).
    ExportModel {
        run_dir: PathBuf,
        /// Destination, ending in .iqpk (default: RUN_DIR/model.iqpk; the
        /// safetensors copy goes beside it), or for `--format torch` in
        /// .safetensors (default: RUN_DIR/model.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "iqpk")]
        format: ModelFormat,
    },
    /// Perplexity of a packed model, computed from its bits.
    Eval(EvalArgs),
    /// Write a result snapshot: every series as CSV and JSON, charts (SVG,
    /// PNG) and a Markdown report; with several runs (or a directory of
    /// them), also a comparison; for a sweep directory, its tables
    /// (sweep.csv, sweep_groups.csv), sweep.md and Pareto chart.
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
    /// Download WikiText-2 into the cache (or DIR): the published archive,
    /// verified by SHA-256, unpacked to its three files.
    #[command(name = "fetch-wikitext2")]
    FetchWikitext2 {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print a shell completion script: `iq-tui completions bash >
    /// ~/.local/share/bash-completion/completions/iq-tui`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `iq-tui man-page > ~/.local/share/man/man1/iq-tui.1`.
    ManPage,
}

#[derive(Debug, Args)]
pub(super) struct SetArgs {
    /// Override a field, e.g. `--set training.epochs=1` (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    pub file: PathBuf,
    /// No dashboard: progress on the terminal or as plain lines.
    #[arg(long)]
    pub headless: bool,
    /// Print the resolved experiment (after defaults and overrides) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Run directory (default: <output.dir>/<name>-<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start even though the estimated memory exceeds what this machine has
    /// available.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub set: SetArgs,
}

#[derive(Debug, Args)]
pub(super) struct ResumeArgs {
    pub run_dir: PathBuf,
    /// No dashboard: progress on the terminal or as plain lines.
    #[arg(long)]
    pub headless: bool,
    /// Resume even though experiment.ron was edited since the run started,
    /// or the estimated memory exceeds what this machine has available.
    #[arg(long)]
    pub force: bool,
    /// With no intact checkpoint, start the run over from the beginning
    /// (its records are replaced).
    #[arg(long)]
    pub restart: bool,
    /// For a sweep directory: try failed cells again.
    #[arg(long)]
    pub retry_failed: bool,
    /// For a sweep directory: units at a time (default: the cores divided by
    /// the threads each unit started with).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024), conflicts_with = "slurm")]
    pub jobs: Option<u16>,
    /// For a sweep directory: submit the units not finished to Slurm (the
    /// resources it was first submitted with, unless given again).
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

#[derive(Debug, Args)]
pub(super) struct SweepArgs {
    /// A sweep file: `Sweep(name: …, base: "x.ron", grid: {…}, zip: {…}, seeds: […])`.
    pub file: PathBuf,
    /// No dashboard: one line per unit started and ended.
    #[arg(long)]
    pub headless: bool,
    /// List the cells and the shared work, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Units at a time (default: as many as fit the cores and memory).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,
    /// Threads per unit (default: the cores divided by --jobs).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024), conflicts_with = "slurm")]
    pub threads: Option<u16>,
    /// Sweep directory (default: <output.dir>/<name>-<timestamp>); with
    /// --slurm, on a filesystem the compute nodes share.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// Submitting to a Slurm cluster.
#[derive(Debug, Clone, Default, Args)]
pub(super) struct SlurmArgs {
    /// Submit to Slurm from this login node: the pre-training as one job
    /// array, the cells as another that waits for it; print the job ids and
    /// exit.
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition (default: the cluster's).
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Time limit per task, as sbatch reads it (`30`, `2:00:00`, `1-00:00:00`).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// CPUs per task, and the threads each unit computes with (default 4).
    #[arg(long, requires = "slurm", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub cpus_per_task: Option<u16>,
    /// Memory per task, as sbatch reads it (`800M`, `4G`; default: the
    /// estimated peak, half as much again and 256 MB).
    #[arg(long, requires = "slurm", value_parser = slurm_mem)]
    pub mem: Option<String>,
    /// Tasks of an array running at once (`--array=…%P`; default: no limit).
    #[arg(long, requires = "slurm", value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub max_running: Option<u16>,
    /// One more `#SBATCH` line for both scripts, e.g. `--sbatch-arg=--account=lab`
    /// (repeatable).
    #[arg(
        long = "sbatch-arg",
        value_name = "ARG",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    pub sbatch_args: Vec<String>,
}

/// Which units `run-cell --index` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum StageArg {
    Pretrain,
    Cells,
}

/// `800M`, `4G`, `1T`, `2048` (megabytes): what sbatch's --mem takes.
fn slurm_mem(text: &str) -> Result<String, String> {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T']);
    if !digits.is_empty()
        && digits.len() + 1 >= text.len()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits != "0"
    {
        Ok(text.to_string())
    } else {
        Err("a size as sbatch reads it: a number of megabytes, or one ending in K, M, G or T (e.g. 800M, 4G)".into())
    }
}

#[derive(Debug, Args)]
pub(super) struct QuantizeArgs {
    /// A 2-D float32 NumPy file, e.g. from `np.save("w.npy", w.astype(np.float32))`.
    pub file: PathBuf,
    /// Bits per weight, 1 to 4.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub bits: u8,
    #[arg(long, value_enum, default_value = "alternating")]
    pub method: MethodArg,
    /// Alternating cycles T (at least 1).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub cycles: u32,
    /// Prune this fraction of smallest-magnitude weights first (0 ≤ P < 1);
    /// the fit uses survivors only.
    #[arg(long, value_name = "P", value_parser = fraction)]
    pub mask_rate: Option<f64>,
    /// Write the dequantized matrix here (.npy, float32).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum MethodArg {
    Greedy,
    Refined,
    Alternating,
    Uniform,
    UniformFitted,
}

#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    /// Timed steps per configuration (median reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub steps: u32,
    /// Configurations as LAYERSxHIDDEN (layers 1 to 8, hidden 1 to 8192).
    #[arg(long, value_delimiter = ',', default_value = "1x300,2x200,2x650", value_parser = size)]
    pub sizes: Vec<(usize, usize)>,
    /// Vocabulary size (2 to 1,000,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
    pub vocab: u32,
    /// Parallel streams (1 to 4096).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// Segment length (1 to 4096).
    #[arg(long, default_value_t = 35, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub bptt: u32,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measure the GEMM rate the training kernels reach (1024³ products)
    /// instead of training.
    #[arg(long)]
    pub gemm_peak: bool,
}

#[derive(Debug, Args)]
pub(super) struct EvalArgs {
    /// A packed model from `iq-tui export-model`.
    pub model: PathBuf,
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Take the corpus from this experiment's `data` (default: the
    /// `experiment.ron` beside MODEL, where `export-model` puts it in a run
    /// directory; else Penn Treebank).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Parallel streams, 1 to 4096 (default: the experiment's eval batch, else 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: Option<u32>,
    /// Segment length, 1 to 4096 (default: the experiment's BPTT, else 20).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub bptt: Option<u32>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum SplitArg {
    Train,
    Valid,
    Test,
}

/// A fraction in [0, 1).
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("{p} is not a fraction in [0, 1)")),
        Err(e) => Err(e.to_string()),
    }
}

/// `LAYERSxHIDDEN`, e.g. `2x200`.
fn size(text: &str) -> Result<(usize, usize), String> {
    let expected = || format!("expected LAYERSxHIDDEN, e.g. 2x200 (got {text:?})");
    let (layers, hidden) = text.split_once('x').ok_or_else(expected)?;
    let (layers, hidden): (usize, usize) = (
        layers.parse().map_err(|_| expected())?,
        hidden.parse().map_err(|_| expected())?,
    );
    if !(1..=8).contains(&layers) {
        return Err(format!("{layers} layers: use 1 to 8"));
    }
    if !(1..=8192).contains(&hidden) {
        return Err(format!("hidden size {hidden}: use 1 to 8192"));
    }
    Ok((layers, hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers_out_of_range_are_refused_before_anything_runs() {
        for args in [
            &["iq-tui", "quantize", "w.npy", "--bits", "0"][..],
            &["iq-tui", "quantize", "w.npy", "--bits", "5"],
            &["iq-tui", "quantize", "w.npy", "--cycles", "0"],
            &["iq-tui", "quantize", "w.npy", "--mask-rate", "1"],
            &["iq-tui", "bench", "--sizes", "foo"],
            &["iq-tui", "bench", "--sizes", "1x0"],
            &["iq-tui", "bench", "--sizes", "0x8"],
            &["iq-tui", "bench", "--sizes", "1x100000"],
            &["iq-tui", "bench", "--vocab", "0"],
            &["iq-tui", "bench", "--batch", "0"],
            &["iq-tui", "eval", "m.iqpk", "--batch", "0"],
            &["iq-tui", "eval", "m.iqpk", "--bptt", "0"],
        ] {
            let e = Cli::try_parse_from(args).expect_err(&args.join(" "));
            assert_eq!(e.exit_code(), 2, "{}", args.join(" "));
        }
        let ok = Cli::try_parse_from(["iq-tui", "bench", "--sizes", "2x200,1x300"]).unwrap();
        let Some(Command::Bench(b)) = ok.command else {
            panic!("bench");
        };
        assert_eq!(b.sizes, vec![(2, 200), (1, 300)]);
    }
}

/// How `export-model` writes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelFormat {
    /// iq-tui's packed bits (`eval` reads it).
    Iqpk,
    /// PyTorch's word_language_model state dict, dense float32.
    Torch,
}
