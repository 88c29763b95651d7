//! The GEMM backend is chosen by measuring: a BLAS that loads but runs
//! generic kernels loses to the built-in one, the choice is cached per
//! machine, OpenBLAS is told the core type the CPU allows, and any CBLAS
//! library can be a candidate. Needs OpenBLAS (CI installs it); elsewhere
//! the tests say they skip.

mod common;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use common::text;

/// The tests time the backends, so they run one at a time: side by side,
/// each measurement would share the cores with another's.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn have_openblas() -> bool {
    let ok = Command::new("sh")
        .args(["-c", "ldconfig -p | grep -q 'libopenblas\\.so\\.0'"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must install OpenBLAS"
    );
    if !ok {
        eprintln!("skipping: OpenBLAS is not installed");
    }
    ok
}

fn bench(cache: &std::path::Path, env: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iq-tui"));
    c.args(["bench", "--gemm-peak"])
        .env("IQ_TUI_CACHE_DIR", cache)
        .env_remove("IQ_TUI_GEMM")
        .env_remove("IQ_TUI_CBLAS");
    for v in unset {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn chosen(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    text(&o.stdout).lines().next().unwrap().to_string()
}

#[test]
fn openblas_on_generic_kernels_loses_the_measurement_and_the_choice_is_kept() {
    let _serial = one_at_a_time();
    if !have_openblas() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = bench(tmp.path(), &[("OPENBLAS_CORETYPE", "PRESCOTT")], &[]);
    let line = chosen(&o);
    assert!(line.starts_with("GEMM backend: builtin"), "{line}");
    assert!(line.contains("Prescott kernels"), "{line}");
    let out = text(&o.stdout);
    assert!(
        out.contains("builtin (gemm crate):") && out.contains("OpenBLAS:"),
        "every candidate's rate: {out}"
    );
    // The next process reads the choice instead of measuring again.
    let again = chosen(&bench(
        tmp.path(),
        &[("OPENBLAS_CORETYPE", "PRESCOTT")],
        &[],
    ));
    assert!(
        again.starts_with("GEMM backend: builtin") && again.contains("cached"),
        "{again}"
    );
    assert!(tmp.path().join("gemm-choice.json").is_file());
}

#[test]
fn openblas_is_told_the_core_this_cpu_allows() {
    let _serial = one_at_a_time();
    if !have_openblas() {
        return;
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = cpu
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"]
        .iter()
        .all(|f| flags.contains(f));
    let tmp = tempfile::tempdir().unwrap();
    let line = chosen(&bench(tmp.path(), &[], &["OPENBLAS_CORETYPE"]));
    if avx512 {
        let core = if flags.contains(&"avx512_bf16") {
            "Cooperlake"
        } else {
            "SkylakeX"
        };
        assert!(line.contains(&format!("{core} kernels")), "{line}");
    } else if flags.contains(&"avx2") {
        assert!(
            line.contains("Haswell kernels") || line.contains("Zen kernels"),
            "{line}"
        );
    } else {
        eprintln!("skipping the core check: this CPU has neither AVX-512 nor AVX2");
    }
}

#[test]
fn any_cblas_library_is_a_candidate_or_can_be_forced() {
    let _serial = one_at_a_time();
    if !have_openblas() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = bench(tmp.path(), &[("IQ_TUI_CBLAS", "libopenblas.so.0")], &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        out.contains("CBLAS (IQ_TUI_CBLAS):"),
        "three candidates: {out}"
    );
    let line = chosen(&bench(
        tmp.path(),
        &[
            ("IQ_TUI_CBLAS", "libopenblas.so.0"),
            ("IQ_TUI_GEMM", "cblas"),
        ],
        &[],
    ));
    assert!(
        line.starts_with("GEMM backend: CBLAS") && line.contains("IQ_TUI_GEMM=cblas"),
        "{line}"
    );
    let o = bench(
        tmp.path(),
        &[
            ("IQ_TUI_CBLAS", "/no/such/libblas.so"),
            ("IQ_TUI_GEMM", "cblas"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("/no/such/libblas.so cannot be loaded"),
        "{}",
        text(&o.stderr)
    );
}
