//! The explorer in a real terminal (tmux): `iq-tui sweep FILE` starts the
//! sweep in the background and shows it; a running cell opens in its
//! dashboard and Esc comes back; quitting leaves the sweep running, and
//! SIGTERM stops it with checkpoints for `iq-tui resume`.

mod common;
use common::tmux::{have_tmux, Session};
use std::time::{Duration, Instant};

#[test]
fn a_running_sweep_is_explored_drilled_into_and_left_running() {
    if !have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bits.ron");
    std::fs::write(
        &file,
        format!(
            r#"Sweep(name: "bits", base: "{}", grid: {{ "quantization.groups.0.bits": [1, 2] }})"#,
            common::root().join("experiments/demo.ron").display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("sweep");
    let command = format!(
        "cd {} && exec {} sweep {} --out {} --jobs 1",
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_BIN_EXE_iq-tui"),
        file.display(),
        out.display()
    );
    let s = Session::start("iq-tui-test-explorer", &command);
    s.wait_for("sweep bits", 60);
    assert!(s.alternate_screen());
    s.wait_for("sweep running in process", 10);
    // The first cell starts once the shared pre-training is done.
    let screen = s.wait_for("2 runs: 1 running", 240);
    assert!(screen.contains("pre-training 1/1"), "{screen}");
    s.keys("Enter");
    let dash = s.wait_for("bits-c000-bits1", 30);
    assert!(dash.contains("Overview"), "{dash}");
    s.keys("Escape");
    s.wait_for("Runs │ Pareto │ Marked", 30);
    s.keys("Tab");
    s.wait_for("no finished run yet", 10);
    s.keys("q");
    s.wait_exit_on_normal_screen();

    // The sweep outlived the explorer; SIGTERM stops it, cells checkpointed.
    let pid = iq_tui::store::lock::writer(&out).expect("the sweep still runs");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while iq_tui::store::lock::writer(&out).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the sweep did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(out.join("sweep.log")).unwrap();
    assert!(log.contains("continue with `iq-tui resume"), "{log}");
    let state = common::read_json(&out.join("sweep.json"));
    let first = state["cells"][0]["status"].as_str().unwrap();
    assert!(["stopped", "finished"].contains(&first), "{first}");
}
