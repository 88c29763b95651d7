//! The lines a run's milestones read as: epochs, phases, pruning, each
//! quantization and evaluation, pauses, the end. The headless printer prints
//! them and the dashboard's log pane shows them, so both say the same.

use super::events::{Event, Phase};
use super::format::{bytes as format_bytes, duration as format_duration};

/// A learning rate as it was meant: six significant digits, trailing zeros
/// dropped, so a decayed 0.35 × 0.7 reads 0.245, not 0.24499999999999997.
fn lr_text(lr: f64) -> String {
    if lr == 0.0 || !lr.is_finite() {
        return lr.to_string();
    }
    let digits = (5 - lr.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{lr:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

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
        Event::EpochStarted { epoch, lr } => one(format!("epoch {epoch}: lr {}", lr_text(*lr))),
        Event::PhaseStarted { phase, lr, steps } => match phase {
            Phase::Pretrain => vec![],
            Phase::Prune => one(format!("== {phase}: {steps} steps at lr {}", lr_text(*lr))),
            Phase::Iteration { .. } => one(format!(
                "== {phase}: quantize, evaluate, retrain {steps} steps at lr {}",
                lr_text(*lr)
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
            "epoch {epoch}: train ppl {train_ppl:.2}, valid ppl {valid_ppl:.2}, lr {}, {}",
            lr_text(*lr),
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

#[cfg(test)]
mod tests {
    use super::lr_text;

    #[test]
    fn learning_rates_read_as_meant() {
        assert_eq!(lr_text(0.35 * 0.7), "0.245");
        assert_eq!(lr_text(1.0), "1");
        assert_eq!(lr_text(20.0), "20");
        assert_eq!(lr_text(0.001), "0.001");
        assert_eq!(lr_text(0.0), "0");
        assert_eq!(lr_text(f64::INFINITY), "inf");
        assert_eq!(lr_text(1e-9), "0.000000001");
    }
}
