//! The engine: runs an experiment's schedule on the caller's thread (callers
//! put it on its own thread), tells listeners what happens, and obeys
//! [`Control`] between steps. It never waits for a listener.

mod control;
mod events;

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use control::Control;
pub use events::{Event, LogLevel, Record};

use crate::data::{Corpus, Segments, Split};
use crate::experiment::{Experiment, LossScale, LrPolicy};
use crate::model::{LstmLm, ModelDims, StepOptions};

/// Receives every event, in order. Must return quickly.
pub trait Listener {
    fn on_event(&mut self, record: &Record);
}

impl<F: FnMut(&Record)> Listener for F {
    fn on_event(&mut self, record: &Record) {
        self(record)
    }
}

/// What a finished run measured (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub seed: u64,
    /// Full-precision model after training.
    pub fp: PplPair,
    pub epochs: Vec<EpochSummary>,
    pub train_seconds: f64,
    /// Mean training throughput over all steps.
    pub train_tokens_per_sec: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PplPair {
    pub valid_ppl: f64,
    pub test_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: usize,
    pub lr: f64,
    pub train_ppl: f64,
    pub valid_ppl: f64,
    pub seconds: f64,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Finished(Summary),
    Stopped,
}

/// Model sizes an experiment asks for on a corpus.
pub fn dims_for(experiment: &Experiment, corpus: &Corpus) -> ModelDims {
    ModelDims {
        vocab: corpus.vocab.len(),
        embed: experiment.model.embed_size(),
        hidden: experiment.model.hidden,
        layers: experiment.model.layers,
    }
}

struct Emitter<'a> {
    start: Instant,
    listeners: Vec<&'a mut dyn Listener>,
}

impl Emitter<'_> {
    fn emit(&mut self, event: Event) {
        let record = Record {
            t: self.start.elapsed().as_secs_f64(),
            event,
        };
        for l in &mut self.listeners {
            l.on_event(&record);
        }
    }

    fn log(&mut self, message: String) {
        tracing::info!("{message}");
        self.emit(Event::Log {
            level: LogLevel::Info,
            message,
        });
    }
}

/// Perplexity of `tokens` under `model`, state carried across segments,
/// no dropout (METHOD.md §5). Returns (ppl, mean NLL, targets).
pub fn evaluate(
    model: &LstmLm<f32>,
    tokens: &[u32],
    batch: usize,
    bptt: usize,
) -> (f64, f64, usize) {
    let mut state = model.zero_state(batch);
    let (mut nll, mut count) = (0.0, 0);
    for seg in Segments::new(tokens, batch, bptt).iter() {
        let (s, c) = model.segment_nll(&seg, &mut state);
        nll += s;
        count += c;
    }
    let mean = nll / count.max(1) as f64;
    (mean.exp(), mean, count)
}

/// Learning rate for `epoch` (1-based) under a schedule. Plateau decay is
/// applied by the caller from validation results.
fn scheduled_lr(base: f64, policy: &LrPolicy, epoch: usize) -> f64 {
    match policy {
        LrPolicy::DecayAfter {
            epoch: keep,
            factor,
        } if epoch > *keep => base * factor.powi((epoch - keep) as i32),
        _ => base,
    }
}

/// Trains and evaluates the experiment's model on `corpus`.
pub fn run(
    experiment: &Experiment,
    corpus: &Corpus,
    listeners: Vec<&mut dyn Listener>,
    control: &Control,
) -> Outcome {
    let mut out = Emitter {
        start: Instant::now(),
        listeners,
    };
    let t = &experiment.training;
    let dims = dims_for(experiment, corpus);
    let mut init_rng = ChaCha8Rng::seed_from_u64(experiment.seed);
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(experiment.seed.wrapping_add(1));
    let mut model = LstmLm::<f32>::new(dims, experiment.model.init_range, &mut init_rng);
    let segments = Segments::new(&corpus.train, t.batch_size, t.bptt);
    let steps_per_epoch = t
        .max_steps_per_epoch
        .map_or(segments.len(), |m| m.min(segments.len()));
    out.emit(Event::RunStarted {
        name: experiment.name.clone(),
        seed: experiment.seed,
        corpus: corpus.origin.clone(),
        vocab: dims.vocab,
        train_tokens: corpus.train.len(),
        valid_tokens: corpus.valid.len(),
        test_tokens: corpus.test.len(),
        dims,
        parameters: dims.parameter_count(),
        steps_per_epoch,
        epochs: t.epochs,
    });
    out.log(format!(
        "{}: {} parameters, {} steps per epoch on {}",
        experiment.name,
        dims.parameter_count(),
        steps_per_epoch,
        corpus.origin
    ));

    let total_steps = steps_per_epoch * t.epochs;
    let mut done_steps = 0usize;
    let mut steady_seconds = 0.0; // step time after the first (warm-up) step
    let mut all_tokens = 0usize;
    let mut train_seconds = 0.0;
    let mut plateau_lr = t.lr;
    let mut best_valid = f64::INFINITY;
    let mut bad_epochs = 0;
    let mut epochs = Vec::new();

    for epoch in 1..=t.epochs {
        let lr = match t.lr_policy {
            LrPolicy::Plateau { .. } => plateau_lr,
            _ => scheduled_lr(t.lr, &t.lr_policy, epoch),
        };
        out.emit(Event::EpochStarted { epoch, lr });
        let epoch_start = Instant::now();
        let mut state = model.zero_state(t.batch_size);
        let (mut epoch_nll, mut epoch_count) = (0.0, 0usize);
        let (mut window_nll, mut window_count, mut window_tokens) = (0.0, 0usize, 0usize);
        let mut window_start = Instant::now();
        let report_every = (steps_per_epoch / 100).max(1);
        for step in 0..steps_per_epoch {
            if control.is_paused() {
                out.emit(Event::Paused);
                control.wait_while_paused();
                if !control.is_stopped() {
                    out.emit(Event::Resumed);
                }
            }
            if control.is_stopped() {
                out.emit(Event::Stopped {
                    reason: format!("stopped by request in epoch {epoch} at step {step}"),
                });
                return Outcome::Stopped;
            }
            let seg = segments.get(step);
            let loss_scale = match t.loss {
                LossScale::SumOverTime => 1.0 / seg.streams as f64,
                LossScale::MeanPerToken => 1.0 / seg.target_count().max(1) as f64,
            };
            let opts = StepOptions {
                lr,
                clip: t.clip,
                loss_scale,
                dropout: experiment.model.dropout,
            };
            let step_start = Instant::now();
            let stats = model.train_step(&seg, &mut state, &opts, &mut dropout_rng);
            let seconds = step_start.elapsed().as_secs_f64();
            train_seconds += seconds;
            done_steps += 1;
            if done_steps > 1 {
                steady_seconds += seconds;
            }
            all_tokens += stats.targets;
            epoch_nll += stats.nll_sum;
            epoch_count += stats.targets;
            window_nll += stats.nll_sum;
            window_count += stats.targets;
            window_tokens += stats.targets;
            let last = step + 1 == steps_per_epoch;
            if last || (step + 1) % report_every == 0 || window_start.elapsed().as_secs_f64() > 1.0
            {
                let elapsed = window_start.elapsed().as_secs_f64().max(1e-9);
                let eta_s = (done_steps > 1).then(|| {
                    steady_seconds / (done_steps - 1) as f64 * (total_steps - done_steps) as f64
                });
                out.emit(Event::TrainProgress {
                    epoch,
                    step: step + 1,
                    steps_in_epoch: steps_per_epoch,
                    train_ppl: (window_nll / window_count.max(1) as f64).exp(),
                    grad_norm: stats.grad_norm,
                    lr,
                    tokens_per_sec: window_tokens as f64 / elapsed,
                    eta_s,
                });
                (window_nll, window_count, window_tokens) = (0.0, 0, 0);
                window_start = Instant::now();
            }
        }
        let train_ppl = (epoch_nll / epoch_count.max(1) as f64).exp();
        let (valid_ppl, valid_nll, valid_tokens) =
            evaluate(&model, &corpus.valid, experiment.eval.batch_size, t.bptt);
        out.emit(Event::Evaluated {
            split: Split::Valid,
            epoch: Some(epoch),
            ppl: valid_ppl,
            nll: valid_nll,
            tokens: valid_tokens,
        });
        let seconds = epoch_start.elapsed().as_secs_f64();
        out.emit(Event::EpochFinished {
            epoch,
            train_ppl,
            valid_ppl,
            lr,
            seconds,
        });
        epochs.push(EpochSummary {
            epoch,
            lr,
            train_ppl,
            valid_ppl,
            seconds,
        });
        if let LrPolicy::Plateau { factor, patience } = t.lr_policy {
            if valid_ppl < best_valid {
                best_valid = valid_ppl;
                bad_epochs = 0;
            } else {
                bad_epochs += 1;
                if bad_epochs > patience {
                    plateau_lr *= factor;
                    bad_epochs = 0;
                    out.log(format!(
                        "validation did not improve: learning rate now {plateau_lr}"
                    ));
                }
            }
        }
    }

    let final_eval = |split: Split, out: &mut Emitter| {
        let (ppl, nll, tokens) = evaluate(
            &model,
            corpus.split(split),
            experiment.eval.batch_size,
            t.bptt,
        );
        out.emit(Event::Evaluated {
            split,
            epoch: None,
            ppl,
            nll,
            tokens,
        });
        ppl
    };
    let valid_ppl = final_eval(Split::Valid, &mut out);
    let test_ppl = final_eval(Split::Test, &mut out);
    out.emit(Event::Finished {
        valid_ppl,
        test_ppl,
        seconds: out.start.elapsed().as_secs_f64(),
    });
    Outcome::Finished(Summary {
        name: experiment.name.clone(),
        seed: experiment.seed,
        fp: PplPair {
            valid_ppl,
            test_ppl,
        },
        epochs,
        train_seconds,
        train_tokens_per_sec: all_tokens as f64 / train_seconds.max(1e-9),
    })
}
