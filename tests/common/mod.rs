#![allow(dead_code, reason = "each test crate uses its own subset")]
pub mod tmux;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `iq-tui` binary, run from the crate root.
pub fn iq_tui(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("IQ_TUI_PTB_DIR")
        .env("IQ_TUI_OFFLINE", "1")
        .output()
        .expect("run iq-tui")
}

/// A headless run of the smoke experiment for 2 epochs into `out`, plus
/// `extra` arguments; panics unless it succeeds.
pub fn run_smoke(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "training.epochs=2",
    ];
    args.extend_from_slice(extra);
    let o = iq_tui(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// Panics, with both outputs, unless the command exited 0.
pub fn assert_ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The PTB copy tests may use: `IQ_TUI_PTB_DIR`, else ../shared/data/ptb.
/// CI must have it (it sets IQ_TUI_PTB_DIR); elsewhere the caller skips.
pub fn ptb_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("IQ_TUI_PTB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/data/ptb"));
    if dir.join("ptb.train.txt").is_file() {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Penn Treebank via IQ_TUI_PTB_DIR (looked in {})",
            dir.display()
        );
        eprintln!("skipping: no Penn Treebank at {}", dir.display());
        None
    }
}

/// The names in `dir`, sorted (none when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `iq-tui export-model RUN --format torch --out FILE`.
pub fn export_torch(run: &Path, file: &Path) -> Output {
    iq_tui(&[
        "export-model",
        run.to_str().unwrap(),
        "--format",
        "torch",
        "--out",
        file.to_str().unwrap(),
    ])
}

/// `smoke.ron` from `pretrained`, training nothing and quantizing nothing.
pub fn evaluate_only(pretrained: &Path, out: &Path, extra: &[&str]) -> Output {
    let pretrained = format!("pretrained=Some({:?})", pretrained.to_str().unwrap());
    let mut args = vec![
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--set",
        &pretrained,
        "--set",
        "training.epochs=0",
        "--set",
        "pruning=None",
        "--set",
        "quantization=None",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    iq_tui(&args)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("parse json")
}

/// A 4 KiB tmpfs mounted at `at` for as long as this lives: a real full
/// disk. Mounting needs root (CI runs as root); elsewhere the caller skips,
/// and under `CI=true` that is a failure.
pub struct TinyFilesystem(PathBuf);

impl TinyFilesystem {
    pub fn mount(at: &Path) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4k", "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        if mounted {
            return Some(Self(at.to_path_buf()));
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (it runs as root) to test a full disk"
        );
        eprintln!("skipping: cannot mount a tmpfs here (needs root)");
        None
    }
}

impl Drop for TinyFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// The header of a version-1 `.npy` file of float32 with this `shape`
/// (written by hand so tests can declare shapes no body backs).
pub fn npy_header(shape: &str) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while header.len() < 117 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes
}

/// What `draw` puts on a `w`×`h` test terminal, as text, one line per row
/// with trailing blanks cut (what the screen snapshots compare).
pub fn render(w: u16, h: u16, draw: impl FnOnce(&mut ratatui::Frame)) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    terminal.draw(draw).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `sweep.csv` without the wall-time column, which no two runs share.
pub fn sweep_results(sweep_dir: &Path, to: &Path) -> Vec<Vec<String>> {
    let o = iq_tui(&[
        "export",
        sweep_dir.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut r = csv::Reader::from_path(to.join("sweep.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let wall = header.iter().position(|h| h == "train_seconds").unwrap();
    let mut rows = vec![header];
    for rec in r.records() {
        rows.push(rec.unwrap().iter().map(String::from).collect());
    }
    for row in &mut rows {
        row.remove(wall);
    }
    rows
}
