//! Names the commit the binary was built from, for `iq-tui --version` and
//! the run manifest (`IQ_TUI_GIT_COMMIT`): the short hash of HEAD, with
//! `+dirty` when tracked files had uncommitted changes, or `unknown`
//! outside a git checkout (a crate tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let commit = commit.map(|c| if dirty { format!("{c}+dirty") } else { c });
    if let Some(c) = &commit {
        // run manifests record it (absent when unknown)
        println!("cargo:rustc-env=IQ_TUI_GIT_COMMIT={c}");
    }
    let shown = commit.as_deref().unwrap_or("unknown");
    println!("cargo:rustc-env=IQ_TUI_COMMIT={shown}");
    // Rebuild when HEAD moves or the index changes (a commit, a checkout).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for f in ["HEAD", "index", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
