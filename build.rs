//! Names the commit the binary was built from, for `iq-tui --version` and
//! the run manifest (`IQ_TUI_GIT_COMMIT`): the short hash of HEAD, or
//! `unknown` outside a git checkout (a crate tarball). Only a change of
//! HEAD reruns this, so editing or staging files never rebuilds the crate
//! for it (and uncommitted edits are not flagged).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    if let Some(c) = &commit {
        // run manifests record it (absent when unknown)
        println!("cargo:rustc-env=IQ_TUI_GIT_COMMIT={c}");
    }
    let shown = commit.as_deref().unwrap_or("unknown");
    println!("cargo:rustc-env=IQ_TUI_COMMIT={shown}");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let mut watched = vec![format!("{dir}/HEAD"), format!("{dir}/packed-refs")];
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(format!("{dir}/{head}"));
        }
        // A path that does not exist would rerun this on every build.
        for path in watched.iter().filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
