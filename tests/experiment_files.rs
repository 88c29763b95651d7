//! Valid and invalid experiment fixtures through the real binary.

mod common;
use common::{iq_tui, root, text};

#[test]
fn shipped_experiments_and_valid_fixtures_validate() {
    let mut files: Vec<_> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .chain(std::fs::read_dir(root().join("tests/fixtures/valid")).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for f in files {
        let out = iq_tui(&["validate", f.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            text(&out.stderr)
        );
    }
}

/// (fixture, text the error must contain)
const INVALID: &[(&str, &[&str])] = &[
    ("syntax.ron", &["syntax.ron:4:23", "Expected comma"]),
    (
        "unknown_field.ron",
        &["unknown_field.ron:4:", "hiden", "expected one of", "hidden"],
    ),
    (
        "wrong_type.ron",
        &["wrong_type.ron:4:", "epochs", "Expected integer"],
    ),
    (
        "hidden_zero.ron",
        &[
            "hidden_zero.ron:6:9",
            "model.hidden",
            "at least 1",
            "allowed: an integer ≥ 1",
        ],
    ),
    (
        "dropout_one.ron",
        &[
            "dropout_one.ron:4:",
            "model.dropout",
            "allowed: a number in [0, 1)",
        ],
    ),
    (
        "bptt_zero.ron",
        &["bptt_zero.ron:4:", "training.bptt", "allowed"],
    ),
    (
        "missing_data_dir.ron",
        &[
            "missing_data_dir.ron:3:",
            "data.dir",
            "/nonexistent/ptb",
            "does not exist",
        ],
    ),
    ("missing_name.ron", &["missing_name.ron:", "name"]),
    (
        "text_min_count.ron",
        &["text_min_count.ron:3:", "data.min_count", "at least 1"],
    ),
    (
        "tied_widths.ron",
        &["tied_widths.ron:4:", "model.tied", "16 wide", "embedding 8"],
    ),
    (
        "unknown_variant.ron",
        &["unknown_variant.ron:3:", "Wikitext", "Ptb", "Synthetic"],
    ),
];

#[test]
fn invalid_fixtures_exit_2_with_file_line_column_and_field() {
    for (file, needles) in INVALID {
        let path = format!("tests/fixtures/invalid/{file}");
        for command in ["validate", "run"] {
            let out = iq_tui(&[command, &path]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {file}: {err}");
            for needle in *needles {
                assert!(
                    err.contains(needle),
                    "{command} {file}: missing {needle:?} in\n{err}"
                );
            }
            assert!(
                !err.contains("panicked") && !err.contains("backtrace"),
                "{err}"
            );
        }
    }
}

#[test]
fn missing_file_is_bad_input() {
    let out = iq_tui(&["validate", "no/such/file.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.ron: cannot read the file"));
}

#[test]
fn overrides_go_through_the_same_validation() {
    let out = iq_tui(&[
        "validate",
        "experiments/demo.ron",
        "--set",
        "model.hidden=0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("model.hidden: must be at least 1"),
        "{}",
        text(&out.stderr)
    );

    let out = iq_tui(&[
        "validate",
        "experiments/demo.ron",
        "--set",
        "training.epohcs=1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no field `epohcs`") && err.contains("epochs"),
        "{err}"
    );

    let out = iq_tui(&[
        "validate",
        "experiments/demo.ron",
        "--set",
        "model.dropout=lots",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("model.dropout"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dry_run_prints_the_resolved_plan_which_parses_back() {
    let out = iq_tui(&[
        "run",
        "tests/fixtures/valid/minimal.ron",
        "--headless",
        "--dry-run",
        "--set",
        "training.epochs=1",
        "--set",
        "data.dir=Some(\"/tmp\")",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    // every default is spelled out
    for field in [
        "seed: 1",
        "layers: 2",
        "hidden: 200",
        "bptt: 20",
        "init_range: 0.1",
        "DecayAfter",
        "SumOverTime",
        "epochs: 1",
        "\"/tmp\"",
    ] {
        assert!(plan.contains(field), "missing {field:?} in\n{plan}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("plan.ron");
    std::fs::write(&path, &plan).unwrap();
    let again = iq_tui_dry(&path);
    assert_eq!(again, plan);
}

fn iq_tui_dry(path: &std::path::Path) -> String {
    let out = iq_tui(&["run", path.to_str().unwrap(), "--headless", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Output into a pipe nobody reads (`iq-tui … | head`) ends the program
/// quietly: no panic, no backtrace.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args([
            "validate",
            root().join("experiments/demo.ron").to_str().unwrap(),
        ])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
