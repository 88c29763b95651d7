//! The headless printer: progress for a terminal (a bar) or a log file
//! (plain lines), from the same events the dashboard shows.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Event, Record};

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
            None => println!("{text}"),
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
                ..
            } => self.line(format!(
                "{name}: {}x{} LSTM, vocab {}, {parameters} parameters; {epochs} epochs of {steps_per_epoch} steps on {corpus}",
                dims.layers, dims.hidden, dims.vocab
            )),
            Event::EpochStarted { epoch, lr } => {
                self.last_plain_step = 0;
                if self.fancy {
                    let bar = ProgressBar::new(0);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>9} [{bar:30}] {pos}/{len} {msg}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("epoch {epoch}"));
                    bar.enable_steady_tick(Duration::from_millis(250));
                    self.bar = Some(bar);
                } else {
                    println!("epoch {epoch}: lr {lr}");
                }
            }
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
                    println!("epoch {epoch} step {step}/{steps_in_epoch}: {msg}");
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
                epoch: None,
                ppl,
                tokens,
                ..
            } => self.line(format!("{split} perplexity {ppl:.2} ({tokens} tokens)")),
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

impl Default for Printer {
    fn default() -> Self {
        Self::new()
    }
}

/// `1h02m`, `3m05s`, `12s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
