//! The headless printer: progress for a terminal (a bar) or a log file
//! (plain lines), from the same events the dashboard shows.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::record::format::{bytes as format_bytes, duration as format_duration};
use crate::record::{Event, Phase, Record};

pub struct Printer {
    bar: Option<ProgressBar>,
    fancy: bool,
    last_plain_step: usize,
}

impl Printer {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        Self::with_terminal(std::io::stderr().is_terminal())
    }

    pub fn with_terminal(fancy: bool) -> Self {
        Self {
            bar: None,
            fancy,
            last_plain_step: 0,
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => say(&text),
        }
    }

    pub fn on_record(&mut self, record: &Record) {
        match &record.event {
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
                self.line(format!(
                    "{name}: {}x{} LSTM, vocab {}, {parameters} parameters; {epochs} epochs of {steps_per_epoch} steps on {corpus}",
                    dims.layers, dims.hidden, dims.vocab
                ));
                if let Some(a) = arithmetic {
                    self.line(format!("arithmetic: {a}"));
                }
            }
            Event::EpochStarted { epoch, lr } => {
                self.last_plain_step = 0;
                if self.fancy {
                    self.start_bar(format!("epoch {epoch}"));
                } else {
                    say(&format!("epoch {epoch}: lr {lr}"));
                }
            }
            Event::PhaseStarted { phase, lr, steps } => {
                self.finish_bar();
                let title = match phase {
                    Phase::Pretrain => return,
                    Phase::Prune => format!("{phase}: {steps} steps at lr {lr}"),
                    Phase::Iteration { .. } => {
                        format!("{phase}: quantize, evaluate, retrain {steps} steps at lr {lr}")
                    }
                    Phase::OneShot | Phase::Final => phase.to_string(),
                };
                self.line(format!("== {title}"));
                self.last_plain_step = 0;
                if self.fancy && *steps > 0 {
                    self.start_bar(match phase {
                        Phase::Iteration { j, .. } => format!("iter {j}"),
                        _ => "retrain".to_string(),
                    });
                }
            }
            Event::Pruned { sparsity, .. } => {
                self.line(format!("pruned: sparsity {:.1} %", sparsity * 100.0))
            }
            Event::Quantized {
                model,
                quant_loss,
                packed_bytes,
                fp32_bytes,
                ..
            } => self.line(format!(
                "{}: quantization loss {quant_loss:.4}, packed {} ({:.1}x smaller than fp32)",
                model,
                format_bytes(*packed_bytes),
                *fp32_bytes as f64 / (*packed_bytes).max(1) as f64
            )),
            Event::QuantLoss { .. } => {}
            Event::TrainProgress {
                epoch,
                step,
                steps_in_epoch,
                train_ppl,
                tokens_per_sec,
                eta_s,
                ..
            } => {
                let eta = eta_s.map_or("-".to_string(), format_duration);
                let msg = format!("ppl {train_ppl:.1} | {tokens_per_sec:.0} tok/s | ETA {eta}");
                if let Some(bar) = &self.bar {
                    bar.set_length(*steps_in_epoch as u64);
                    bar.set_position(*step as u64);
                    bar.set_message(msg);
                } else if *step == *steps_in_epoch
                    || *step >= self.last_plain_step + (steps_in_epoch / 10).max(1)
                {
                    self.last_plain_step = *step;
                    if *epoch > 0 {
                        say(&format!(
                            "epoch {epoch} step {step}/{steps_in_epoch}: {msg}"
                        ));
                    } else {
                        say(&format!("step {step}/{steps_in_epoch}: {msg}"));
                    }
                }
            }
            Event::EpochFinished {
                epoch,
                train_ppl,
                valid_ppl,
                lr,
                seconds,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.line(format!(
                    "epoch {epoch}: train ppl {train_ppl:.2}, valid ppl {valid_ppl:.2}, lr {lr}, {}",
                    format_duration(*seconds)
                ));
            }
            Event::Evaluated {
                split,
                model,
                epoch: None,
                ppl,
                tokens,
                ..
            } => {
                self.finish_bar();
                self.line(format!(
                    "{}: {split} perplexity {ppl:.2} ({tokens} tokens)",
                    model
                ))
            }
            Event::Continued { position, .. } => {
                self.line(format!("resumed from a checkpoint: {position}"))
            }
            Event::Paused => self.line("paused".into()),
            Event::Resumed => self.line("resumed".into()),
            Event::Stopped { reason } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
                self.line(format!("stopped: {reason}"));
            }
            Event::Finished { seconds, .. } => {
                self.line(format!("finished in {}", format_duration(*seconds)))
            }
            Event::Failed { error } => self.line(format!("failed: {error}")),
            Event::Log { .. } | Event::Evaluated { .. } => {}
        }
    }
}

impl Printer {
    fn start_bar(&mut self, prefix: String) {
        self.finish_bar();
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Default for Printer {
    fn default() -> Self {
        Self::new()
    }
}

/// Prints a line on standard output, ignoring a closed one: a long run
/// piped into `head` must not die on its next line (the run is stopped
/// cooperatively instead, see `cli::run`).
pub fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}
