//! The headless printer: progress for a terminal (a bar) or a log file
//! (plain lines), from the same events the dashboard shows.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::record::format::duration as format_duration;
use crate::record::{milestone, Event, Phase, Record};

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
            Event::EpochStarted { epoch, .. } => {
                self.last_plain_step = 0;
                if self.fancy {
                    self.start_bar(format!("epoch {epoch}"));
                    return;
                }
            }
            Event::PhaseStarted { phase, steps, .. } => {
                self.last_plain_step = 0;
                if *phase != Phase::Pretrain {
                    self.finish_bar();
                    self.print_milestones(&record.event);
                    if self.fancy && *steps > 0 {
                        self.start_bar(phase.to_string());
                    }
                }
                return;
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
                    if *epoch > 0 {
                        say(&format!(
                            "epoch {epoch} step {step}/{steps_in_epoch}: {msg}"
                        ));
                    } else {
                        say(&format!("step {step}/{steps_in_epoch}: {msg}"));
                    }
                }
                return;
            }
            Event::EpochFinished { .. } => self.finish_bar(),
            Event::Evaluated { epoch: None, .. } => self.finish_bar(),
            Event::Stopped { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
            }
            _ => {}
        }
        self.print_milestones(&record.event);
    }

    fn print_milestones(&self, event: &Event) {
        for line in milestone::lines(event) {
            self.line(line);
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
