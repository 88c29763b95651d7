//! `manifest.json`: which program made a run, on what, and when; so a
//! number in a run directory can be traced to the code and machine behind it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub program: String,
    pub version: String,
    /// The commit the program was built from, when it was built from a git checkout.
    pub git_commit: Option<String>,
    pub seed: u64,
    /// SHA-256 of `experiment.ron` as the run started with it.
    pub experiment_sha256: String,
    /// UTC, RFC 3339.
    pub started: String,
    pub command: Vec<String>,
    pub machine: Machine,
    /// Each `iq-tui resume` of this run.
    #[serde(default)]
    pub resumes: Vec<ResumeRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cpu: Option<String>,
    pub logical_cores: usize,
    /// Threads the training kernels use (rayon).
    pub threads: usize,
    /// The library the products ran on (absent in older runs).
    #[serde(default)]
    pub gemm: Option<crate::model::GemmBackend>,
    /// Why that library: measured against the others, or forced.
    #[serde(default)]
    pub gemm_choice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeRecord {
    pub at: String,
    /// Checkpoint file it continued from; none when the run started over.
    pub checkpoint: Option<String>,
    pub position: String,
    /// It continued although experiment.ron had changed (`--force`).
    pub forced: bool,
    /// The GEMM backend and threads it continued on (absent in older runs).
    #[serde(default)]
    pub arithmetic: Option<crate::model::Arithmetic>,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl RunManifest {
    pub fn new(seed: u64, experiment_sha256: String) -> Self {
        Self {
            program: "iq-tui".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: option_env!("IQ_TUI_GIT_COMMIT").map(str::to_string),
            seed,
            experiment_sha256,
            started: now(),
            command: std::env::args().collect(),
            machine: Machine::this(),
            resumes: Vec::new(),
        }
    }
}

impl Machine {
    pub fn this() -> Self {
        let cpu = crate::model::backend::cpu().model;
        Self {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpu,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads: rayon::current_num_threads(),
            gemm: Some(crate::model::Arithmetic::current().gemm),
            gemm_choice: crate::model::backend::choice().ok().map(|c| c.why.clone()),
        }
    }
}

/// Memory this process may still use: the kernel's `MemAvailable`, and the
/// cgroup's limit less its use where one is set; `None` where neither can be
/// read (not Linux).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    });
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let cgroup =
        read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
