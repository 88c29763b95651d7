//! The sbatch script of a stage: readable, so a user sees (and may edit)
//! what each task runs. Task `i` of the array runs unit `i` of its stage in
//! `sweep.json`; the array spec, the dependency on pre-training and the
//! task limit are given on `sbatch`'s command line, so one script serves a
//! first submission and every resubmission.

use std::path::Path;

use super::record::{Options, Stage};

/// Where a stage's script lies in the sweep directory.
pub fn path(sweep_dir: &Path, stage: Stage) -> std::path::PathBuf {
    sweep_dir
        .join("slurm")
        .join(format!("{}.sbatch", stage.name()))
}

/// The log of task `index` of array `job`, as the script's `--output` names it.
pub fn log_path(sweep_dir: &Path, stage: Stage, job: &str, index: usize) -> std::path::PathBuf {
    sweep_dir
        .join("logs")
        .join(format!("slurm-{}-{job}_{index}.out", stage.name()))
}

/// Shell-quotes a word unless it is plainly safe.
fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The script text.
pub fn script(
    sweep_name: &str,
    sweep_dir: &Path,
    stage: Stage,
    options: &Options,
    executable: &Path,
    ptb_dir: Option<&Path>,
) -> String {
    let what = match stage {
        Stage::Pretrain => "the shared pre-training runs",
        Stage::Cells => "the cells",
    };
    let dir = sweep_dir.display().to_string();
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("# iq-tui sweep {sweep_name}: {what}, one array task each."),
        "# Written by `iq-tui sweep --slurm`, which submits it with --array (and,".into(),
        "# for the cells, --dependency on the pre-training); `iq-tui resume DIR".into(),
        "# --slurm` submits it again for the units not finished.".into(),
        format!(
            "#SBATCH --job-name={}",
            quote(&format!("iq-{sweep_name}-{}", stage.name()))
        ),
        format!("#SBATCH --cpus-per-task={}", options.cpus_per_task),
        format!("#SBATCH --mem={}", quote(&options.mem)),
    ];
    if let Some(t) = &options.time {
        lines.push(format!("#SBATCH --time={}", quote(t)));
    }
    if let Some(p) = &options.partition {
        lines.push(format!("#SBATCH --partition={}", quote(p)));
    }
    lines.push(format!(
        "#SBATCH --output={}",
        quote(&format!("{dir}/logs/slurm-{}-%A_%a.out", stage.name()))
    ));
    lines
        .push("# SIGTERM two minutes before the time limit: the run checkpoints and stops.".into());
    lines.push("#SBATCH --signal=B:TERM@120".into());
    if stage == Stage::Cells {
        lines.push("# Cancelled, not left pending, if a pre-training job fails.".into());
        lines.push("#SBATCH --kill-on-invalid-dep=yes".into());
    }
    for a in &options.sbatch_args {
        lines.push(format!("#SBATCH {a}"));
    }
    lines.push(String::new());
    lines.push("# Compute nodes download nothing.".into());
    lines.push("export IQ_TUI_OFFLINE=1".into());
    if let Some(p) = ptb_dir {
        lines.push(format!(
            "export IQ_TUI_PTB_DIR={}",
            quote(&p.display().to_string())
        ));
    }
    lines.push("# One thread per CPU Slurm gives the task.".into());
    lines.push(format!(
        "export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{}}}\"",
        options.cpus_per_task
    ));
    lines.push(format!(
        "exec {} run-cell {} --stage {} --index \"$SLURM_ARRAY_TASK_ID\"",
        quote(&executable.display().to_string()),
        quote(&dir),
        stage.name()
    ));
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_runs_one_unit_per_task_with_the_cpus_it_was_given() {
        let options = Options {
            partition: Some("gpu".into()),
            time: Some("2:00:00".into()),
            cpus_per_task: 4,
            mem: "2G".into(),
            max_running: Some(2),
            sbatch_args: vec!["--account=lab".into()],
        };
        let text = script(
            "paper",
            Path::new("/scratch/my sweep"),
            Stage::Cells,
            &options,
            Path::new("/home/u/.cargo/bin/iq-tui"),
            Some(Path::new("/home/u/.cache/iq-tui/ptb")),
        );
        for line in [
            "#SBATCH --job-name=iq-paper-cells",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --mem=2G",
            "#SBATCH --time=2:00:00",
            "#SBATCH --partition=gpu",
            "#SBATCH --output='/scratch/my sweep/logs/slurm-cells-%A_%a.out'",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --account=lab",
            "export IQ_TUI_OFFLINE=1",
            "export IQ_TUI_PTB_DIR=/home/u/.cache/iq-tui/ptb",
            "exec /home/u/.cargo/bin/iq-tui run-cell '/scratch/my sweep' --stage cells --index \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.starts_with("#!/bin/bash\n"));
        // sbatch reads #SBATCH lines only before the first command.
        let first_command = text
            .lines()
            .position(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap();
        assert!(text
            .lines()
            .skip(first_command)
            .all(|l| !l.starts_with("#SBATCH")));
    }
}
