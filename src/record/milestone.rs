//! The lines a run's milestones read as: epochs, phases, pruning, each
//! quantization and evaluation, pauses, the end. The headless printer prints
//! them and the dashboard's log pane shows them, so both say the same.

use super::events::{Event, Phase};
use super::format::{bytes as format_bytes, duration as format_duration};

/// The milestone lines of one event (none for progress and data events).
pub fn lines(event: &Event) -> Vec<String> {
    let one = |s: String| vec![s];
    match event {
        Event::RunStarted {
            name,
            corpus,
            dims,
            parameters,
            steps_per_epoch,
            epochs,
            arithmetic,
            ..
        } => {
            let mut v = vec![format!(
                "{name}: {}x{} LSTM, vocab {}, {parameters} parameters; {epochs} epochs of {steps_per_epoch} steps on {corpus}",
                dims.layers, dims.hidden, dims.vocab
            )];
            if let Some(a) = arithmetic {
                v.push(format!("arithmetic: {a}"));
            }
            v
        }
        Event::EpochStarted { epoch, lr } => one(format!("epoch {epoch}: lr {lr}")),
        Event::PhaseStarted { phase, lr, steps } => match phase {
            Phase::Pretrain => vec![],
            Phase::Prune => one(format!("== {phase}: {steps} steps at lr {lr}")),
            Phase::Iteration { .. } => one(format!(
                "== {phase}: quantize, evaluate, retrain {steps} steps at lr {lr}"
            )),
            Phase::OneShot | Phase::Final => one(format!("== {phase}")),
        },
        Event::Pruned { sparsity, .. } => {
            one(format!("pruned: sparsity {:.1} %", sparsity * 100.0))
        }
        Event::Quantized {
            model,
            quant_loss,
            packed_bytes,
            fp32_bytes,
            ..
        } => one(format!(
            "{model}: quantization loss {quant_loss:.4}, packed {} ({:.1}x smaller than fp32)",
            format_bytes(*packed_bytes),
            *fp32_bytes as f64 / (*packed_bytes).max(1) as f64
        )),
        Event::EpochFinished {
            epoch,
            train_ppl,
            valid_ppl,
            lr,
            seconds,
        } => one(format!(
            "epoch {epoch}: train ppl {train_ppl:.2}, valid ppl {valid_ppl:.2}, lr {lr}, {}",
            format_duration(*seconds)
        )),
        Event::Evaluated {
            split,
            model,
            epoch: None,
            ppl,
            tokens,
            ..
        } => one(format!(
            "{model}: {split} perplexity {ppl:.2} ({tokens} tokens)"
        )),
        Event::Continued { position, .. } => one(format!("resumed from a checkpoint: {position}")),
        Event::Paused => one("paused".into()),
        Event::Resumed => one("resumed".into()),
        Event::Stopped { reason } => one(format!("stopped: {reason}")),
        Event::Finished { seconds, .. } => {
            one(format!("finished in {}", format_duration(*seconds)))
        }
        Event::Failed { error } => one(format!("failed: {error}")),
        Event::Evaluated { .. }
        | Event::TrainProgress { .. }
        | Event::QuantLoss { .. }
        | Event::Weights { .. }
        | Event::Log { .. } => vec![],
    }
}
