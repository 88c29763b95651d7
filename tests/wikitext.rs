//! WikiText-2 by name: the archive downloaded over real HTTP (127.0.0.1),
//! verified, unpacked atomically, read as PyTorch reads it; bad archives,
//! the offline error, and `data: WikiText2(..)` through the binary.

mod common;
use common::{assert_ok, iq_tui, names_in, read_json, sha256, text};

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use iq_tui::data::wikitext::{self, Lookup};
use iq_tui::data::{DataError, EOS};

/// Serves one body at every address; returns the base URL and a request counter.
fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!(
        "http://{}/wikitext-2-v1.zip",
        server.server_addr().to_ip().unwrap()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = request.respond(tiny_http::Response::from_data(body.clone()));
        }
    });
    (url, hits)
}

/// Lines in WikiText's shape: blank lines, headings, `<unk>`, `@-@`.
const TRAIN: &str = " \n = Valkyria Chronicles = \n \n the <unk> game is a role @-@ playing game . \n the game sold well . \n";
const VALID: &str = " \n = Tower = \n \n the tower is tall . \n";
const TEST: &str = " \n the game is a tower . \n";

fn archive(members: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.add_directory("wikitext-2/", options).unwrap();
    for (name, body) in members {
        zip.start_file(format!("wikitext-2/{name}"), options)
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn the_archive() -> Vec<u8> {
    archive(&[
        ("wiki.train.tokens", TRAIN),
        ("wiki.valid.tokens", VALID),
        ("wiki.test.tokens", TEST),
    ])
}

fn lookup(cache: &Path, url: String, sha256: String) -> Lookup {
    Lookup {
        explicit: None,
        env_dir: None,
        cache: Some(cache.to_path_buf()),
        offline: false,
        url,
        sha256,
    }
}

#[test]
fn the_archive_downloads_unpacks_and_reads_as_pytorch_reads_it() {
    let zip = the_archive();
    let sum = sha256(&zip);
    let (url, hits) = serve(zip);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("wikitext-2");
    let dir = lookup(&cache, url.clone(), sum.clone()).resolve().unwrap();
    assert_eq!(dir, cache);
    // the three files and their sums, no archive and no temporary file left
    assert_eq!(
        names_in(&dir),
        [
            "SHA256SUMS",
            "wiki.test.tokens",
            "wiki.train.tokens",
            "wiki.valid.tokens"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("wiki.train.tokens")).unwrap(),
        TRAIN
    );
    // found in the cache the second time: no request
    let before = hits.load(Ordering::SeqCst);
    lookup(&cache, url.clone(), sum.clone()).resolve().unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // a cached file changed afterwards: offline, an error naming it; online,
    // downloaded and unpacked again
    let valid = dir.join("wiki.valid.tokens");
    std::fs::write(&valid, "tampered\n").unwrap();
    let mut offline = lookup(&cache, url.clone(), sum.clone());
    offline.offline = true;
    match offline.resolve().unwrap_err() {
        DataError::Checksum { file, .. } => assert!(file.ends_with("wiki.valid.tokens"), "{file}"),
        other => panic!("expected a checksum error, got {other}"),
    }
    lookup(&cache, url, sum).resolve().unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), before + 1);
    assert_eq!(std::fs::read_to_string(&valid).unwrap(), VALID);

    let corpus = wikitext::read(&dir).unwrap();
    // PyTorch's data.py: `line.split() + ['<eos>']` for every line, blank ones too
    let tokens = |t: &str| t.split_whitespace().count() + t.lines().count();
    assert_eq!(corpus.train.len(), tokens(TRAIN));
    assert_eq!(corpus.valid.len(), tokens(VALID));
    assert_eq!(corpus.test.len(), tokens(TEST));
    let eos = corpus.vocab.id(EOS).unwrap();
    assert_eq!(
        corpus.train.iter().filter(|&&t| t == eos).count(),
        TRAIN.lines().count()
    );
    // "<unk>" is a word of the text; "tall" and "tower" of valid are not
    // in training and read as it
    assert!(corpus.vocab.id("<unk>").is_some());
    assert_eq!(corpus.unknown, [0, 3, 1]);
    assert!(
        corpus.origin.starts_with("WikiText-2 "),
        "{}",
        corpus.origin
    );
}

#[test]
fn a_wrong_archive_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = the_archive();
    let right = sha256(&zip);

    // the served bytes are not the pinned ones
    let (url, _) = serve(b"<html>moved</html>".to_vec());
    let cache = tmp.path().join("a");
    match lookup(&cache, url, right.clone()).resolve().unwrap_err() {
        DataError::Checksum {
            expected, actual, ..
        } => {
            assert_eq!(expected, right);
            assert_eq!(actual, sha256(b"<html>moved</html>"));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(names_in(&cache).is_empty(), "{:?}", names_in(&cache));

    // right hash, but not a zip
    let body = b"not a zip at all".to_vec();
    let (url, _) = serve(body.clone());
    let cache = tmp.path().join("b");
    let err = lookup(&cache, url, sha256(&body)).resolve().unwrap_err();
    assert!(matches!(err, DataError::Archive { .. }), "{err}");
    assert!(err.to_string().contains("not a zip archive"), "{err}");
    assert_eq!(names_in(&cache), ["wikitext-2-v1.zip"]);

    // a zip without the test split: no member is unpacked
    let partial = archive(&[("wiki.train.tokens", TRAIN), ("wiki.valid.tokens", VALID)]);
    let (url, _) = serve(partial.clone());
    let cache = tmp.path().join("c");
    let err = lookup(&cache, url, sha256(&partial))
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not WikiText-2") && err.contains("wikitext-2/wiki.test.tokens"),
        "{err}"
    );
    assert_eq!(names_in(&cache), ["wikitext-2-v1.zip"]);
}

#[test]
fn a_damaged_member_is_refused_by_its_checksum() {
    let mut zip = archive(&[
        ("wiki.train.tokens", &TRAIN.repeat(50)),
        ("wiki.valid.tokens", VALID),
        ("wiki.test.tokens", TEST),
    ]);
    // flip a byte in the middle of the first member's compressed data
    let at = zip.len() / 4;
    zip[at] ^= 0x55;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.zip");
    std::fs::write(&path, &zip).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let err = wikitext::unpack(&path, &out).unwrap_err();
    assert!(matches!(err, DataError::Archive { .. }), "{err}");
    assert!(
        !out.join("wiki.train.tokens").exists(),
        "{:?}",
        names_in(&out)
    );
}

#[test]
fn offline_without_a_copy_says_where_it_looked_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let lookup = Lookup {
        explicit: None,
        env_dir: Some(tmp.path().join("env-dir")),
        cache: Some(tmp.path().join("cache")),
        offline: true,
        url: "http://127.0.0.1:9/".into(),
        sha256: wikitext::ARCHIVE_SHA256.into(),
    };
    let msg = lookup.resolve().unwrap_err().to_string();
    assert!(msg.starts_with("WikiText-2 not found"), "{msg}");
    assert!(msg.contains("env-dir") && msg.contains("cache"), "{msg}");
    assert!(
        msg.contains("IQ_TUI_WIKITEXT2_DIR") && msg.contains("fetch-wikitext2"),
        "{msg}"
    );
}

#[test]
fn fetch_wikitext2_refuses_an_archive_that_is_not_the_published_one() {
    // the real command pins the real hash, so a local archive must fail it
    let (url, _) = serve(the_archive());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wt2");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_iq-tui"))
        .args(["fetch-wikitext2", "--dir", dir.to_str().unwrap()])
        .env("IQ_TUI_WIKITEXT2_URL", &url)
        .env_remove("IQ_TUI_OFFLINE")
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(wikitext::ARCHIVE_SHA256) && err.contains(&url),
        "{err}"
    );
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
}

#[test]
fn a_wikitext2_experiment_trains_headless() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wt2");
    std::fs::create_dir(&dir).unwrap();
    for (name, body) in [
        ("wiki.train.tokens", TRAIN.repeat(300)),
        ("wiki.valid.tokens", VALID.repeat(20)),
        ("wiki.test.tokens", TEST.repeat(20)),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let out = tmp.path().join("run");
    let o = iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--set",
        &format!("data=WikiText2(dir: Some({:?}))", dir.to_str().unwrap()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let summary = read_json(&out.join("summary.json"));
    let corpus = &summary["corpus"];
    assert!(
        corpus["source"]
            .as_str()
            .unwrap()
            .starts_with("WikiText-2 "),
        "{corpus}"
    );
    // 14 distinct words of TRAIN, <unk> among them, and <eos>
    assert_eq!(corpus["vocabulary"], 15, "{corpus}");

    // a data.dir that does not exist is refused before anything runs
    let o = iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--set",
        "data=WikiText2(dir: Some(\"/nonexistent/wt2\"))",
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("data.dir"), "{}", text(&o.stderr));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The archive is read only once its hash matched, but the reader must
    /// still end in Ok or an error on any bytes: flipped, cut or stretched.
    #[test]
    fn unpacking_damaged_archives_never_panics(
        flips in proptest::collection::vec((0usize..4096, 1u8..=255), 0..8),
        cut in proptest::option::of(0usize..4096),
    ) {
        let mut zip = the_archive();
        for (at, x) in flips {
            let n = zip.len();
            zip[at % n] ^= x;
        }
        if let Some(cut) = cut {
            zip.truncate(cut % (zip.len() + 1));
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.zip");
        std::fs::write(&path, &zip).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        if wikitext::unpack(&path, &out).is_ok() {
            proptest::prop_assert_eq!(names_in(&out).len(), 4, "three members and SHA256SUMS");
        }
    }
}
