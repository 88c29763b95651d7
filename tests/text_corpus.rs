//! End to end: a headless run on a corpus of one's own (`data: Text(..)`),
//! in WikiText's file names, and its bad inputs.

mod common;
use common::{assert_ok, iq_tui, read_json, text};

use rand::{Rng, SeedableRng};

/// Sentences from a small grammar, so the model has something to learn.
fn sentences(rng: &mut rand_chacha::ChaCha8Rng, lines: usize) -> String {
    let subjects = ["the cat", "a dog", "the old man", "she", "they"];
    let verbs = ["sees", "likes", "eats", "finds", "wants"];
    let objects = ["the fish", "a ball", "bread", "the red car", "it"];
    fn pick(rng: &mut rand_chacha::ChaCha8Rng, xs: &[&'static str]) -> &'static str {
        xs[rng.gen_range(0..xs.len())]
    }
    let mut out = String::new();
    for _ in 0..lines {
        let (s, v, o) = (pick(rng, &subjects), pick(rng, &verbs), pick(rng, &objects));
        out.push_str(&format!(" {s} {v} {o} . \n"));
    }
    out
}

/// Writes the three files; returns the validation text, which has one word
/// ("zebra") the training text lacks.
fn corpus(dir: &std::path::Path) -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    std::fs::write(dir.join("wiki.train.tokens"), sentences(&mut rng, 3000)).unwrap();
    let mut valid = sentences(&mut rng, 200);
    valid.push_str(" the zebra sees it . \n");
    std::fs::write(dir.join("wiki.valid.tokens"), &valid).unwrap();
    std::fs::write(dir.join("wiki.test.tokens"), sentences(&mut rng, 200)).unwrap();
    valid
}

fn run(data: &str, out: &std::path::Path) -> std::process::Output {
    iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--set",
        &format!("data={data}"),
        "--set",
        "training.epochs=2",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn a_wikitext_style_directory_trains_and_reports_its_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    std::fs::create_dir(&dir).unwrap();
    let valid = corpus(&dir);
    let valid_tokens = valid.split_whitespace().count() + valid.lines().count();
    let out = tmp.path().join("run");
    let o = run(&format!("Text(dir: {:?})", dir.to_str().unwrap()), &out);
    assert_ok(&o);
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    // 19 words and "." in the grammar, <eos>, and <unk> for "zebra"
    assert!(
        log.contains("text corpus") && log.contains("vocabulary 22)"),
        "{log}"
    );
    let rate = 100.0 / valid_tokens as f64;
    let counts = format!("valid {valid_tokens}, {rate:.2} %; test ");
    assert!(log.contains(&counts), "{counts} in {log}");
    assert!(
        log.contains("train ") && log.contains(" tokens, 0.00 % unknown"),
        "{log}"
    );
    let summary = read_json(&out.join("summary.json"));
    let corpus = &summary["corpus"];
    assert_eq!(corpus["vocabulary"], 22, "{corpus}");
    assert_eq!(corpus["tokens"][1], valid_tokens, "{corpus}");
    let unknown = corpus["unknown_rate"][1].as_f64().unwrap();
    assert!(
        (unknown - 1.0 / valid_tokens as f64).abs() < 1e-12,
        "{corpus}"
    );
    assert_eq!(corpus["unknown_rate"][2], 0.0, "{corpus}");
    let ppl = summary["fp"]["test_ppl"].as_f64().unwrap();
    // uniform over 22 words would be 22: the grammar is learnt
    assert!(ppl.is_finite() && ppl < 15.0, "test perplexity {ppl}");
}

#[test]
fn missing_binary_and_invalid_text_corpora_are_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    std::fs::create_dir(&dir).unwrap();
    corpus(&dir);
    std::fs::remove_file(dir.join("wiki.test.tokens")).unwrap();
    let data = format!("Text(dir: {:?})", dir.to_str().unwrap());
    let o = run(&data, &tmp.path().join("a"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("no test split") && err.contains("test.txt, wiki.test.tokens"),
        "{err}"
    );

    std::fs::write(dir.join("test.txt"), b"\x7fELF\x02\x01\x01\x00\x00").unwrap();
    let o = run(&data, &tmp.path().join("b"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("test.txt") && err.contains("binary"), "{err}");

    let o = run(
        &format!("Text(dir: {:?}, max_vocab: Some(2))", dir.to_str().unwrap()),
        &tmp.path().join("c"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("data.max_vocab"),
        "{}",
        text(&o.stderr)
    );

    let o = run("Text(dir: \"/nonexistent/corpus\")", &tmp.path().join("d"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("/nonexistent/corpus"),
        "{}",
        text(&o.stderr)
    );
}
