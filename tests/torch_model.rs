//! End to end: a run's final model exported as PyTorch's word_language_model
//! state dict and imported again as the starting point of another run, and
//! the bad inputs of both. (PyTorch itself is exercised by
//! scripts/torch-roundtrip.sh, outside the test suite.)

mod common;
use common::{assert_ok, evaluate_only, export_torch, iq_tui, read_json, run_smoke, text};

#[test]
fn an_exported_model_imports_to_the_same_perplexity() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_smoke(&run, &[]);
    let file = tmp.path().join("export").join("model.safetensors");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let o = export_torch(&run, &file);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("RNNModel('LSTM', 40, 32, 32, 2)"),
        "{}",
        text(&o.stdout)
    );
    assert!(file.with_file_name("vocab.txt").is_file());

    let again = tmp.path().join("again");
    assert_ok(&evaluate_only(&file, &again, &[]));
    let first = read_json(&run.join("summary.json"));
    let second = read_json(&again.join("summary.json"));
    for split in ["valid_ppl", "test_ppl"] {
        let (a, b) = (
            first["final"][split].as_f64().unwrap(),
            second["fp"][split].as_f64().unwrap(),
        );
        // the same weights and the same evaluation; only the two biases'
        // sum (bias + 0) could round, and does not
        assert!((a / b - 1.0).abs() < 1e-6, "{split}: {a} vs {b}");
    }
    let source = second["corpus"]["source"].as_str().unwrap();
    assert!(
        source.contains("read through the vocabulary of"),
        "{source}"
    );
}

#[test]
fn misfit_models_and_vocabularies_are_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_smoke(&run, &[]);
    let file = tmp.path().join("m.safetensors");
    let o = iq_tui(&[
        "export-model",
        run.to_str().unwrap(),
        "--format",
        "torch",
        "--out",
        "x.iqpk",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("must end in .safetensors"));
    assert_ok(&export_torch(&run, &file));

    // a model of another size than the experiment's
    let o = evaluate_only(&file, &tmp.path().join("a"), &["--set", "model.hidden=16"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("pretrained weights") && err.contains("2x32") && err.contains("2x16"),
        "{err}"
    );

    // a vocabulary without a word of the corpus, and no <unk>
    let vocab = file.with_file_name("vocab.txt");
    let words = std::fs::read_to_string(&vocab).unwrap();
    let mut lines: Vec<&str> = words.lines().collect();
    let dropped = lines.pop().unwrap().to_string();
    lines.push("zebra");
    std::fs::write(&vocab, lines.join("\n") + "\n").unwrap();
    let o = evaluate_only(&file, &tmp.path().join("b"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("vocab.txt") && err.contains(&format!("{dropped:?}")) && err.contains("<unk>"),
        "{err}"
    );

    // a vocabulary of the wrong length
    lines.pop();
    std::fs::write(&vocab, lines.join("\n") + "\n").unwrap();
    let o = evaluate_only(&file, &tmp.path().join("c"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("vocab.txt"), "{err}");

    // a damaged file
    std::fs::write(&file, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    std::fs::write(&vocab, words).unwrap();
    let o = evaluate_only(&file, &tmp.path().join("d"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a safetensors file"),
        "{}",
        text(&o.stderr)
    );
}
