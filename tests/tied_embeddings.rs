//! Tied embeddings end to end: `model.tied: true` trains, quantizes and
//! packs the shared matrix once, the packed bits evaluate to the run's
//! perplexity, and the PyTorch state dict goes out with both names and comes
//! back from either form PyTorch writes.

mod common;
use common::{assert_ok, export_torch, iq_tui, read_json, run_smoke, text};

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

fn matrices(summary: &serde_json::Value) -> Vec<(String, u64)> {
    summary["final"]["matrices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["packed_bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_tied_model_is_quantized_and_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (tied, untied) = (tmp.path().join("tied"), tmp.path().join("untied"));
    run_smoke(&tied, &["--set", "model.tied=true"]);
    run_smoke(&untied, &[]);
    let (t, u) = (
        read_json(&tied.join("summary.json")),
        read_json(&untied.join("summary.json")),
    );
    let names: Vec<String> = matrices(&t).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "embedding",
            "lstm.0.w_ih",
            "lstm.0.w_hh",
            "lstm.1.w_ih",
            "lstm.1.w_hh"
        ]
    );
    assert!(!tied.join("weights/final/decoder.npy").exists());
    let json = std::fs::read_to_string(tied.join("weights/final/model.json")).unwrap();
    assert!(json.contains("\"tied\": true"), "{json}");

    // the same LSTM matrices, pruned alike: the packed sizes differ by the
    // untied decoder's section, nothing else
    let decoder = matrices(&u)
        .into_iter()
        .find(|(n, _)| n == "decoder")
        .unwrap()
        .1;
    let packed = |s: &serde_json::Value| s["final"]["packed_bytes"].as_u64().unwrap();
    assert_eq!(packed(&u) - packed(&t), decoder);
    let fp32 = |s: &serde_json::Value| s["final"]["fp32_bytes"].as_u64().unwrap();
    assert_eq!(fp32(&u) - fp32(&t), 40 * 32 * 4);

    // the packed file holds what the run reported, and its bits evaluate
    // to the run's final perplexity
    let file = tmp.path().join("tied.iqpk");
    let o = iq_tui(&[
        "export-model",
        tied.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains(&format!("({} bytes of weights", packed(&t))),
        "{}",
        text(&o.stdout)
    );
    let experiment = tied.join("experiment.ron");
    let o = iq_tui(&[
        "eval",
        file.to_str().unwrap(),
        "--experiment",
        experiment.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let want = format!(
        "test perplexity {:.4}",
        t["final"]["test_ppl"].as_f64().unwrap()
    );
    assert!(
        text(&o.stdout).contains(&want),
        "{want} in {}",
        text(&o.stdout)
    );
}

#[test]
fn tied_without_equal_widths_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let o = iq_tui(&[
        "run",
        "experiments/smoke.ron",
        "--headless",
        "--set",
        "model.tied=true",
        "--set",
        "model.embed=Some(16)",
        "--out",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("model.tied") && err.contains("16"), "{err}");
}

fn evaluate_only(pretrained: &Path, out: &Path, tied: bool) -> std::process::Output {
    let tied = format!("model.tied={tied}");
    common::evaluate_only(pretrained, out, &["--set", &tied])
}

/// Rewrites a state dict with only the tensors `keep` accepts.
fn rewrite(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) {
    let bytes = std::fs::read(from).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| keep(n))
        .map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec()))
        .collect();
    let views: Vec<(String, TensorView)> = kept
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    std::fs::write(to, safetensors::serialize(views, None).unwrap()).unwrap();
    std::fs::copy(
        from.with_file_name("vocab.txt"),
        to.with_file_name("vocab.txt"),
    )
    .unwrap();
}

#[test]
fn a_tied_state_dict_goes_out_with_both_names_and_comes_back_from_either() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_smoke(&run, &["--set", "model.tied=true"]);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = out.join("model.safetensors");
    let o = export_torch(&run, &file);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("RNNModel('LSTM', 40, 32, 32, 2, tie_weights=True)"),
        "{}",
        text(&o.stdout)
    );
    let bytes = std::fs::read(&file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (enc, dec) = (
        st.tensor("encoder.weight").unwrap(),
        st.tensor("decoder.weight").unwrap(),
    );
    assert_eq!(enc.shape(), [40, 32]);
    assert_eq!(enc.data(), dec.data());

    let want = read_json(&run.join("summary.json"))["final"]["test_ppl"]
        .as_f64()
        .unwrap();
    // as exported (both names, `save_file` of a clone), and as
    // `safetensors.torch.save_model` writes it (one of the two names)
    let only_encoder = out.join("enc").join("model.safetensors");
    let only_decoder = out.join("dec").join("model.safetensors");
    for d in [&only_encoder, &only_decoder] {
        std::fs::create_dir(d.parent().unwrap()).unwrap();
    }
    rewrite(&file, &only_encoder, |n| n != "decoder.weight");
    rewrite(&file, &only_decoder, |n| n != "encoder.weight");
    for (k, f) in [&file, &only_encoder, &only_decoder]
        .into_iter()
        .enumerate()
    {
        let again = tmp.path().join(format!("again{k}"));
        assert_ok(&evaluate_only(f, &again, true));
        let got = read_json(&again.join("summary.json"))["fp"]["test_ppl"]
            .as_f64()
            .unwrap();
        assert!((got / want - 1.0).abs() < 1e-6, "{f:?}: {got} vs {want}");
    }

    // the experiment must say tied too, and an untied state dict does not
    // fit a tied experiment
    let o = evaluate_only(&file, &tmp.path().join("untied"), false);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("tie the decoder to the embedding")
            && text(&o.stderr).contains("model.tied: false"),
        "{}",
        text(&o.stderr)
    );
    let plain = tmp.path().join("plain");
    run_smoke(&plain, &[]);
    let plain_file = tmp.path().join("plain-export").join("model.safetensors");
    std::fs::create_dir(plain_file.parent().unwrap()).unwrap();
    let o = export_torch(&plain, &plain_file);
    assert_ok(&o);
    let o = evaluate_only(&plain_file, &tmp.path().join("tied-plain"), true);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("have a decoder of their own"),
        "{}",
        text(&o.stderr)
    );
}
