//! A real terminal for tests: tmux sessions, their screens and keys.

use std::process::Command;
use std::time::{Duration, Instant};

pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must install tmux"
    );
    if !ok {
        eprintln!("skipping: tmux is not installed");
    }
    ok
}

pub struct Session(pub String);

impl Session {
    pub fn start(name: &str, command: &str) -> Self {
        let _ = tmux(&["kill-session", "-t", name]);
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "110",
                "-y",
                "32",
                command,
            ])
            .status()
            .unwrap();
        assert!(status.success());
        tmux(&["set-option", "-t", name, "remain-on-exit", "on"]);
        Session(name.to_string())
    }

    pub fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    pub fn keys(&self, keys: &str) {
        tmux(&["send-keys", "-t", &self.0, keys]);
    }

    pub fn wait_for(&self, what: &str, seconds: u64) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(seconds),
                "no {what:?} after {seconds} s:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn alternate_screen(&self) -> bool {
        tmux(&["display-message", "-p", "-t", &self.0, "#{alternate_on}"]).trim() == "1"
    }

    pub fn dead(&self) -> bool {
        tmux(&["display-message", "-p", "-t", &self.0, "#{pane_dead}"]).trim() == "1"
    }

    /// Waits (60 s at most) for iq-tui to exit, then checks it gave the
    /// terminal back (left the alternate screen).
    pub fn wait_exit_on_normal_screen(&self) {
        let start = Instant::now();
        while !self.dead() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "iq-tui did not exit:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            !self.alternate_screen(),
            "the terminal was left on the alternate screen"
        );
    }

    pub fn pid(&self) -> String {
        tmux(&["display-message", "-p", "-t", &self.0, "#{pane_pid}"])
            .trim()
            .to_string()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.0]);
    }
}
