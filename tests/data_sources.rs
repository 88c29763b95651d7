//! Penn Treebank: exact counts, download over real HTTP (127.0.0.1), checksum
//! failures, atomic writes, and the offline error.

mod common;
use common::{names_in, sha256};

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use iq_tui::data::ptb::{self, Lookup};
use iq_tui::data::{DataError, EOS};

/// Serves files from memory on 127.0.0.1; returns the base URL and a request counter.
fn serve(files: Vec<(String, Vec<u8>)>) -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
    let base = format!("http://{}/data/", server.server_addr().to_ip().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            counter.fetch_add(1, Ordering::SeqCst);
            let name = request.url().trim_start_matches("/data/").to_string();
            let response = match files.iter().find(|(n, _)| *n == name) {
                Some((_, body)) => tiny_http::Response::from_data(body.clone()),
                None => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    (base, hits)
}

#[test]
fn download_verifies_and_writes_only_good_files() {
    let good = b" a b c \n b c \n".to_vec();
    let (base, hits) = serve(vec![
        ("x.txt".into(), good.clone()),
        ("y.txt".into(), b"tampered".to_vec()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let good_sum = sha256(&good);

    ptb::download(&base, dir.path(), &[("x.txt", &good_sum)]).unwrap();
    assert_eq!(std::fs::read(dir.path().join("x.txt")).unwrap(), good);
    // A second call finds the verified file and does not download again.
    let before = hits.load(Ordering::SeqCst);
    ptb::download(&base, dir.path(), &[("x.txt", &good_sum)]).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // Wrong checksum: an error naming both sums, and no file left behind.
    let err = ptb::download(&base, dir.path(), &[("y.txt", &good_sum)]).unwrap_err();
    match &err {
        DataError::Checksum {
            expected,
            actual,
            file,
        } => {
            assert_eq!(expected, &good_sum);
            assert_eq!(actual, &sha256(b"tampered"));
            assert!(file.ends_with("y.txt"));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert_eq!(names_in(dir.path()), ["x.txt"]);

    // Missing on the server: a download error with the address.
    let err = ptb::download(&base, dir.path(), &[("z.txt", &good_sum)]).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert!(err.to_string().contains("z.txt"), "{err}");
    assert_eq!(names_in(dir.path()), ["x.txt"]);

    // A corrupt file already in place is replaced by a verified download.
    std::fs::write(dir.path().join("x.txt"), b"corrupt").unwrap();
    ptb::download(&base, dir.path(), &[("x.txt", &good_sum)]).unwrap();
    assert_eq!(std::fs::read(dir.path().join("x.txt")).unwrap(), good);
}

#[test]
fn offline_without_a_copy_says_where_it_looked_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let lookup = Lookup {
        explicit: None,
        env_dir: Some(tmp.path().join("env-dir")),
        cache: Some(tmp.path().join("cache")),
        offline: true,
        base_url: "http://127.0.0.1:9/".into(),
    };
    let msg = lookup.resolve().unwrap_err().to_string();
    assert!(msg.contains("env-dir") && msg.contains("cache"), "{msg}");
    assert!(
        msg.contains("IQ_TUI_PTB_DIR") && msg.contains("fetch-ptb"),
        "{msg}"
    );
}

#[test]
fn an_unreachable_server_is_a_clear_download_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) of the loopback address here.
    let err = ptb::download("http://127.0.0.1:9/", tmp.path(), &[("a.txt", "00")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("download of http://127.0.0.1:9/a.txt failed"),
        "{err}"
    );
    assert!(names_in(tmp.path()).is_empty());
}

fn real_ptb() -> Option<PathBuf> {
    common::ptb_dir()
}

#[test]
fn the_real_files_download_from_a_local_server_and_pass_the_pinned_checksums() {
    let Some(src) = real_ptb() else { return };
    let files = ptb::FILES
        .iter()
        .map(|(n, _)| (n.to_string(), std::fs::read(src.join(n)).unwrap()))
        .collect();
    let (base, _) = serve(files);
    let tmp = tempfile::tempdir().unwrap();
    let lookup = Lookup {
        explicit: None,
        env_dir: None,
        cache: Some(tmp.path().join("ptb")),
        offline: false,
        base_url: base,
    };
    let dir = lookup.resolve().unwrap();
    assert_eq!(dir, tmp.path().join("ptb"));
    ptb::verify_dir(&dir).unwrap();
    assert_eq!(
        names_in(&dir),
        ["ptb.test.txt", "ptb.train.txt", "ptb.valid.txt"]
    );
}

#[test]
fn ptb_counts_match_the_standard_split() {
    let Some(dir) = real_ptb() else { return };
    let corpus = ptb::load(Some(&dir)).unwrap();
    assert_eq!(corpus.vocab.len(), 10_000);
    assert_eq!(corpus.train.len(), 929_589);
    assert_eq!(corpus.valid.len(), 73_760);
    assert_eq!(corpus.test.len(), 82_430);
    let eos = corpus.vocab.id(EOS).unwrap();
    let lines = |s: &[u32]| s.iter().filter(|&&t| t == eos).count();
    assert_eq!(
        (
            lines(&corpus.train),
            lines(&corpus.valid),
            lines(&corpus.test)
        ),
        (42_068, 3_370, 3_761)
    );
    assert_eq!(*corpus.train.last().unwrap(), eos);
}
