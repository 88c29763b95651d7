//! The dashboard in a real terminal (tmux): it comes alive, pauses, resumes,
//! exports, quits, and gives the terminal back; SIGTERM mid-run too; a run
//! quit half-way continues in the dashboard with `iq-tui resume`.

mod common;
use common::tmux::{have_tmux, Session};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn command(out: &Path, extra: &str) -> String {
    format!(
        "cd {} && exec {} run experiments/demo.ron --out {} --set training.epochs=1 {extra}",
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_BIN_EXE_iq-tui"),
        out.display()
    )
}

#[test]
fn demo_dashboard_pause_resume_export_quit() {
    if !have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let s = Session::start("iq-tui-test-main", &command(&out, ""));
    s.wait_for("RUNNING", 60);
    assert!(s.alternate_screen());
    s.wait_for("iteration 1", 240);
    s.keys("p");
    s.wait_for("PAUSED", 30);
    s.keys("p");
    s.wait_for("RUNNING", 30);
    s.keys("e");
    s.wait_for("exported to", 10);
    let snapshots: Vec<_> = std::fs::read_dir(out.join("snapshots")).unwrap().collect();
    assert_eq!(snapshots.len(), 1);
    let snap = snapshots[0].as_ref().unwrap().path();
    for f in [
        "report.md",
        "data/perplexity.csv",
        "data/quant_loss.csv",
        "data/matrices.csv",
        "data/train_progress.json",
        "charts/pretraining.svg",
    ] {
        assert!(snap.join(f).is_file(), "no {f}");
    }
    s.keys("?");
    s.wait_for("Keys (any key closes)", 10);
    s.keys("Escape");
    s.keys("q");
    let screen = s.screen();
    if !screen.contains("FINISHED") {
        s.wait_for("Quit and stop it?", 10);
        s.keys("y");
    }
    s.wait_exit_on_normal_screen();
    // back on the normal screen, the run directory is named
    assert!(
        s.screen().contains(&out.display().to_string()),
        "{}",
        s.screen()
    );
    iq_tui::store::read_events(&out.join("events.jsonl")).unwrap();
}

#[test]
fn sigterm_restores_the_terminal_and_keeps_records() {
    if !have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let s = Session::start("iq-tui-test-term", &command(&out, ""));
    s.wait_for("RUNNING", 60);
    s.wait_for("step", 60);
    Command::new("kill")
        .args(["-TERM", &s.pid()])
        .status()
        .unwrap();
    s.wait_exit_on_normal_screen();
    let events = iq_tui::store::read_events(&out.join("events.jsonl")).unwrap();
    let last = serde_json::to_value(&events.last().unwrap().event).unwrap();
    assert_eq!(last["type"], "stopped", "{last}");
}

#[test]
fn a_run_quit_half_way_resumes_in_the_dashboard() {
    if !have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let s = Session::start("iq-tui-test-resume", &command(&out, ""));
    s.wait_for("RUNNING", 60);
    s.wait_for("step", 60);
    s.keys("q");
    s.wait_for("Quit and stop it?", 10);
    s.keys("y");
    s.wait_exit_on_normal_screen();
    assert!(s.screen().contains("iq-tui resume"), "{}", s.screen());
    drop(s);
    let resume = format!(
        "cd {} && exec {} resume {}",
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_BIN_EXE_iq-tui"),
        out.display()
    );
    let s = Session::start("iq-tui-test-resumed", &resume);
    s.wait_for("RUNNING", 60);
    assert!(s.alternate_screen());
    // The history before the stop is on screen at once: the epoch's rows.
    s.keys("BTab"); // the log view
    s.wait_for("resumed from a checkpoint", 30);
    s.wait_for("FINISHED", 240);
    // On disk while the dashboard still shows the finished run, so closing
    // the terminal instead of quitting loses nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !out.join("summary.json").is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "no summary.json while FINISHED is shown"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    s.keys("q");
    s.wait_exit_on_normal_screen();
    assert!(out.join("summary.json").is_file());
}

/// Starts a headless demo run into `out` and waits until it holds its
/// run directory and has begun its log.
fn headless_demo(out: &Path, extra: &[&str]) -> std::process::Child {
    let run = Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "experiments/demo.ron", "--headless", "--out"])
        .arg(out)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while iq_tui::store::lock::writer(out).is_none() || !out.join("events.jsonl").is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run
}

/// A headless run, watched from another terminal: `iq-tui RUN_DIR` follows
/// it, its progress moves, pause and resume from the watcher reach it (and
/// it records them), and quitting the watcher leaves it to finish.
#[test]
fn a_headless_run_is_followed_paused_resumed_and_left_running() {
    if !have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut run = headless_demo(&out, &["--set", "training.epochs=2"]);
    let events = out.join("events.jsonl");
    let watch = format!(
        "cd {} && exec {} {}",
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_BIN_EXE_iq-tui"),
        out.display()
    );
    let s = Session::start("iq-tui-test-follow", &watch);
    s.wait_for("following process", 30);
    let progress = |s: &Session| s.screen().lines().nth(1).unwrap_or_default().to_string();
    s.wait_for("step", 60);
    let first = progress(&s);
    let moved = Instant::now();
    while progress(&s) == first {
        assert!(
            moved.elapsed() < Duration::from_secs(60),
            "progress froze at {first:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s.keys("p");
    s.wait_for("PAUSED", 30);
    let recorded = |what: &str| {
        iq_tui::store::read_events(&events)
            .unwrap()
            .iter()
            .any(|r| serde_json::to_value(&r.event).unwrap()["type"] == what)
    };
    assert!(recorded("paused"), "the run recorded its pause");
    s.keys("p");
    s.wait_for("RUNNING", 30);
    assert!(recorded("resumed"));
    s.keys("q"); // no question: quitting a watcher stops nothing
    s.wait_exit_on_normal_screen();
    let status = run.wait().unwrap();
    assert!(status.success(), "the run went on to finish: {status}");
    assert!(out.join("summary.json").is_file());
    assert!(recorded("finished"));
    assert!(!out.join("control").exists(), "the run took its command");
}

/// A watcher says so when the process it follows dies without a last
/// record, and points at `iq-tui resume`.
#[test]
fn a_watcher_says_when_the_run_s_process_is_killed() {
    if !have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut run = headless_demo(&out, &[]);
    let watch = format!(
        "cd {} && exec {} open {}",
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_BIN_EXE_iq-tui"),
        out.display()
    );
    let s = Session::start("iq-tui-test-orphan", &watch);
    s.wait_for("following process", 30);
    run.kill().unwrap(); // SIGKILL: no last record
    run.wait().unwrap();
    let screen = s.wait_for("its process is gone", 30);
    assert!(screen.contains("iq-tui resume"), "{screen}");
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.contains("STOPPED") && !header.contains("RUNNING"),
        "the badge says the run no longer goes: {header}"
    );
    assert!(!screen.contains("p pause"), "nothing to pause: {screen}");
    s.keys("q");
    s.wait_exit_on_normal_screen();
}
