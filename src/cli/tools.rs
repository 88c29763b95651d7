//! The commands besides running: validate, bench, quantize, export,
//! export-model, eval, fetch-ptb, fetch-wikitext2.

use std::path::{Path, PathBuf};

use super::args::{BenchArgs, EvalArgs, MethodArg, QuantizeArgs, SplitArg};
use super::error::{CliError, CliResult, Done};
use super::run::{data_error, load};
use crate::data;
use crate::experiment;

pub(super) fn validate(file: &Path, set: &[String]) -> CliResult {
    let experiment = load(file, set)?;
    println!("{}: valid", file.display());
    for line in super::run::footprint_lines(&experiment) {
        println!("{line}");
    }
    Ok(Done::Finished)
}

pub(super) fn export(run_dirs: &[PathBuf], to: Option<&Path>) -> CliResult {
    match crate::report::export(run_dirs, to) {
        Ok(done) => {
            for w in &done.warnings {
                eprintln!("warning: {w}");
            }
            println!("wrote {}", done.report.display());
            Ok(Done::Finished)
        }
        Err(e @ crate::report::ReportError::Read { .. }) => Err(CliError::bad(e.to_string())),
        Err(e) => Err(CliError::failed(e.to_string())),
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("benchmark results serialise")
}

pub(super) fn bench(args: BenchArgs) -> CliResult {
    let choice = crate::model::backend::choice().map_err(CliError::bad)?;
    if !args.json {
        println!("GEMM backend: {} ({})", choice.backend, choice.why);
        println!(
            "vector kernels: {} (IQ_TUI_KERNELS=avx512|avx2|portable chooses)",
            crate::model::kernels::vector().name()
        );
    }
    if args.gemm_peak {
        // Every candidate, so a table from any machine says what was there.
        for backend in crate::model::backend::available() {
            let peak = crate::bench::gemm_peak_on(backend, 1024, 20);
            if args.json {
                println!("{}", json(&peak));
            } else {
                println!(
                    "single-precision GEMM, {0}×{0}×{0}, {1} threads, {2}: {3:.1} GFLOP/s (best of 20){4}",
                    peak.size,
                    peak.threads,
                    peak.backend,
                    peak.gflops,
                    if backend == choice.backend { ", chosen" } else { "" }
                );
            }
        }
        return Ok(Done::Finished);
    }
    let (vocab, batch, bptt, steps) = (
        args.vocab as usize,
        args.batch as usize,
        args.bptt as usize,
        args.steps as usize,
    );
    if !args.json {
        println!(
            "training throughput: vocab {vocab}, batch {batch}, BPTT {bptt}, {} threads, GEMM {}, median of {steps} steps",
            rayon::current_num_threads(),
            crate::model::gemm::backend(),
        );
        println!(
            "{:>8} {:>10} {:>10} {:>10} {:>13}",
            "model", "tokens/s", "ms/step", "GFLOP/s", "fastest step"
        );
    }
    for &(layers, hidden) in &args.sizes {
        let t = crate::bench::training_throughput(layers, hidden, vocab, batch, bptt, steps);
        if args.json {
            println!("{}", json(&t));
        } else {
            println!(
                "{:>8} {:>10.0} {:>10.1} {:>10.1} {:>10.1} ms",
                format!("{layers}x{hidden}"),
                t.tokens_per_sec,
                t.step_ms,
                t.gflops,
                t.fastest_step_ms
            );
        }
    }
    Ok(Done::Finished)
}

pub(super) fn quantize(args: QuantizeArgs) -> CliResult {
    use crate::compress::Method;
    let method = match args.method {
        MethodArg::Greedy => Method::Greedy,
        MethodArg::Refined => Method::Refined,
        MethodArg::Alternating => Method::Alternating {
            cycles: args.cycles as usize,
        },
        MethodArg::Uniform => Method::Uniform,
        MethodArg::UniformFitted => Method::UniformFitted,
    };
    let r = crate::quantize_file::quantize_file(
        &args.file,
        args.bits as usize,
        method,
        args.mask_rate,
        args.out.as_deref(),
    )
    .map_err(|e| CliError::bad(e.to_string()))?;
    println!(
        "{}: {}×{}, {} bits, {}",
        args.file.display(),
        r.rows,
        r.cols,
        r.bits,
        r.method
    );
    println!(
        "relative squared error ‖W − Q‖²/‖W‖² = {:.6}",
        r.relative_error
    );
    println!(
        "sparsity {:.1} %, packed {} bytes vs {} bytes as float32 ({:.1}x smaller)",
        r.sparsity * 100.0,
        r.packed_bytes,
        r.fp32_bytes,
        r.fp32_bytes as f64 / r.packed_bytes.max(1) as f64
    );
    if let Some(out) = &args.out {
        println!("wrote {}", out.display());
    }
    Ok(Done::Finished)
}

pub(super) fn fetch_ptb(dir: Option<PathBuf>) -> CliResult {
    if std::env::var("IQ_TUI_OFFLINE").is_ok_and(|v| v == "1") {
        return Err(CliError::bad(
            "IQ_TUI_OFFLINE=1 forbids downloads, and fetch-ptb downloads; unset it, or copy the three files and set IQ_TUI_PTB_DIR",
        ));
    }
    let dir = dir
        .or_else(data::ptb::cache_dir)
        .ok_or_else(|| CliError::bad("no cache directory on this system; pass --dir"))?;
    let base =
        std::env::var("IQ_TUI_PTB_URL").unwrap_or_else(|_| data::ptb::DEFAULT_BASE_URL.into());
    println!("downloading Penn Treebank from {base}");
    data::ptb::download(&base, &dir, &data::ptb::FILES).map_err(data_error)?;
    println!("verified (SHA-256) in {}", dir.display());
    Ok(Done::Finished)
}

pub(super) fn fetch_wikitext2(dir: Option<PathBuf>) -> CliResult {
    use data::wikitext;
    if data::download::offline() {
        return Err(CliError::bad(
            "IQ_TUI_OFFLINE=1 forbids downloads, and fetch-wikitext2 downloads; unset it, or unpack the archive yourself and set IQ_TUI_WIKITEXT2_DIR",
        ));
    }
    let dir = dir
        .or_else(wikitext::cache_dir)
        .ok_or_else(|| CliError::bad("no cache directory on this system; pass --dir"))?;
    let lookup = wikitext::Lookup::from_env(None);
    println!("downloading WikiText-2 from {}", lookup.url);
    wikitext::fetch(&lookup.url, &lookup.sha256, &dir).map_err(data_error)?;
    println!("verified (SHA-256) and unpacked in {}", dir.display());
    Ok(Done::Finished)
}

/// `export-model --format torch`: the run's final weights as PyTorch's
/// state dict.
pub(super) fn export_torch(run_dir: &Path, out: Option<PathBuf>) -> CliResult {
    if let Some(out) = out
        .as_ref()
        .filter(|o| !crate::store::torch::is_state_dict(o))
    {
        return Err(CliError::bad(format!(
            "--out {}: a PyTorch state dict's name must end in .safetensors (vocab.txt goes beside it)",
            out.display()
        )));
    }
    let final_dir = run_dir.join("weights").join("final");
    let weights = crate::store::weights::load(&final_dir).map_err(|e| {
        CliError::bad(format!(
            "{e}\n(export-model needs a finished run that quantized its model)"
        ))
    })?;
    let out = out.unwrap_or_else(|| run_dir.join("model.safetensors"));
    crate::store::torch::export(&weights, &out)
        .map_err(|e| CliError::failed(format!("cannot write the state dict: {e}")))?;
    println!(
        "wrote {} and {}: word_language_model's RNNModel('LSTM', {}, {}, {}, {}{}) loads it",
        out.display(),
        crate::store::torch::vocab_path(&out).display(),
        weights.manifest.vocab,
        weights.manifest.embed,
        weights.manifest.hidden,
        weights.manifest.layers,
        if weights.manifest.tied {
            ", tie_weights=True"
        } else {
            ""
        }
    );
    Ok(Done::Finished)
}

pub(super) fn export_model(run_dir: &Path, out: Option<PathBuf>) -> CliResult {
    // Two files are written, FILE.iqpk and FILE.safetensors beside it: a
    // name of any other kind would make them one.
    if let Some(out) = out
        .as_ref()
        .filter(|o| o.extension().is_none_or(|e| e != "iqpk"))
    {
        return Err(CliError::bad(format!(
            "--out {}: the packed model's name must end in .iqpk (the safetensors copy goes beside it, with .safetensors)",
            out.display()
        )));
    }
    let model = crate::packed::PackedModel::from_run(run_dir).map_err(|e| {
        CliError::bad(format!(
            "{e}\n(export-model needs a finished run that quantized its model)"
        ))
    })?;
    let out = out.unwrap_or_else(|| run_dir.join("model.iqpk"));
    let failed = |what: &str, e: &dyn std::fmt::Display| CliError::failed(format!("{what}: {e}"));
    let body = model
        .write(&out)
        .map_err(|e| failed("cannot write the packed model", &e))?;
    let file = std::fs::metadata(&out)
        .map_err(|e| failed("cannot read back the packed model", &e))?
        .len();
    println!(
        "wrote {}: {file} bytes ({body} bytes of weights, the rest the header and vocabulary)",
        out.display()
    );
    let st = out.with_extension("safetensors");
    model
        .write_safetensors(&st)
        .map_err(|e| failed("cannot write the safetensors export", &e))?;
    println!(
        "wrote {} (dequantized f32 and the packed planes, for PyTorch and NumPy)",
        st.display()
    );
    let reported = std::fs::read_to_string(run_dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["final"]["packed_bytes"].as_u64());
    if let Some(r) = reported {
        println!("the run reported {r} packed bytes");
    }
    Ok(Done::Finished)
}

pub(super) fn eval(args: EvalArgs) -> CliResult {
    let model =
        crate::packed::PackedModel::read(&args.model).map_err(|e| CliError::bad(e.to_string()))?;
    let experiment = args.experiment.clone().or_else(|| {
        let file = args.model.parent()?.join("experiment.ron");
        file.is_file().then(|| {
            println!("corpus and evaluation settings from {}", file.display());
            file
        })
    });
    let (source, seed, batch, bptt) = match &experiment {
        Some(file) => {
            let e = load(file, &[])?;
            (e.data.clone(), e.seed, e.eval.batch_size, e.training.bptt)
        }
        None => (experiment::DataSource::Ptb { dir: None }, 0, 10, 20),
    };
    let batch = args.batch.map_or(batch, |b| b as usize);
    let bptt = args.bptt.map_or(bptt, |b| b as usize);
    let corpus = data::load(&source, seed).map_err(data_error)?;
    if corpus.vocab.words() != model.vocab.as_slice() {
        return Err(CliError::bad(
            "the model's vocabulary is not this corpus' vocabulary",
        ));
    }
    let split = match args.split {
        SplitArg::Train => data::Split::Train,
        SplitArg::Valid => data::Split::Valid,
        SplitArg::Test => data::Split::Test,
    };
    let start = std::time::Instant::now();
    let (ppl, _, tokens) = crate::packed::infer::evaluate(&model, corpus.split(split), batch, bptt)
        .map_err(|e| CliError::bad(format!("{}: {e}", args.model.display())))?;
    println!(
        "{}: {split} perplexity {ppl:.4} ({tokens} tokens, {:.1} s, packed kernels)",
        args.model.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(Done::Finished)
}
