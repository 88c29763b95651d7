//! The engine: runs an experiment's schedule on the caller's thread (callers
//! put it on its own thread), tells listeners what happens, and obeys
//! [`Control`] between steps. It never waits for a listener.
//!
//! `schedule.rs` holds the phases; `train.rs` the training loop they share;
//! `compression.rs` applies pruning and quantization to the model;
//! `checkpoint.rs` what a checkpoint holds; `saving.rs` the weights a run
//! leaves. This file wires them: one run's state ([`Engine`]), evaluation,
//! checkpoints and the pause / stop protocol.

pub mod checkpoint;
mod compression;
mod control;
pub mod footprint;
mod saving;
mod schedule;
mod train;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use std::path::PathBuf;

pub use control::Control;

use crate::data::{Corpus, Segments, Split};
use crate::experiment::Experiment;
use crate::model::{Arithmetic, LstmLm, ModelDims};
use crate::record::{Event, Listener, LogLevel, ModelTag, Record, Summary};
use crate::store::checkpoint::Checkpoints;
use crate::store::weights::Weights;
use checkpoint::{Plateau, Position, Progress, Resume, State};
use train::{AfterStep, Returned, Stretch, Trainer, Warm};

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Finished(Box<Summary>),
    /// Stopped by request; a checkpoint holds where it was.
    Stopped,
    /// Could not go on (e.g. a checkpoint could not be written).
    Failed(String),
}

/// Model sizes an experiment asks for on a corpus.
pub fn dims_for(experiment: &Experiment, corpus: &Corpus) -> ModelDims {
    ModelDims {
        vocab: corpus.vocab.len(),
        embed: experiment.model.embed_size(),
        hidden: experiment.model.hidden,
        layers: experiment.model.layers,
        tied: experiment.model.tied,
    }
}

pub struct Emitter<'a> {
    start: Instant,
    listeners: Vec<&'a mut dyn Listener>,
}

impl Emitter<'_> {
    pub fn emit(&mut self, event: Event) {
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
/// no dropout (docs/method.md §6). Returns (ppl, mean NLL, targets).
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

/// What a run starts from and where it saves, beside the experiment.
#[derive(Debug, Default)]
pub struct RunContext {
    /// Weights to start from (the experiment's `pretrained`), already loaded.
    pub pretrained: Option<Weights>,
    /// Where to save the full-precision (`fp`) and final (`final`) weights.
    pub weights_dir: Option<PathBuf>,
    /// Where checkpoints go; without, the run cannot be resumed.
    pub checkpoints: Option<Checkpoints>,
    /// SHA-256 of the experiment as the run directory holds it.
    pub experiment_sha256: String,
    /// Continue from this checkpoint instead of starting afresh.
    pub resume: Option<Resume>,
    /// Also checkpoint after this many seconds of training, mid-phase, so a
    /// killed run loses at most that much.
    pub checkpoint_every: Option<f64>,
}

/// Why pretrained weights do not fit the experiment.
pub fn check_pretrained(weights: &Weights, dims: ModelDims, corpus: &Corpus) -> Result<(), String> {
    let m = &weights.manifest;
    let theirs = (m.vocab, m.embed, m.hidden, m.layers);
    let ours = (dims.vocab, dims.embed, dims.hidden, dims.layers);
    if m.tied != dims.tied {
        let (has, asks) = if m.tied {
            ("tie the decoder to the embedding", "model.tied: false")
        } else {
            ("have a decoder of their own", "model.tied: true")
        };
        return Err(format!(
            "the pretrained weights {has}; the experiment says {asks}"
        ));
    }
    if theirs != ours {
        return Err(format!(
            "the pretrained weights are {}x{} (embedding {}, vocabulary {}); the experiment asks for {}x{} (embedding {}, vocabulary {})",
            m.layers, m.hidden, m.embed, m.vocab, dims.layers, dims.hidden, dims.embed, dims.vocab
        ));
    }
    if weights.vocab != corpus.vocab.words() {
        return Err(
            "the pretrained weights were trained on another vocabulary than this corpus".into(),
        );
    }
    Ok(())
}

/// Trains, prunes, quantizes and evaluates as the experiment says, from the
/// start or from `context.resume`.
pub fn run(
    experiment: &Experiment,
    corpus: &Corpus,
    context: &RunContext,
    listeners: Vec<&mut dyn Listener>,
    control: &Control,
) -> Outcome {
    let now = Instant::now();
    let t0 = context.resume.as_ref().map_or(0.0, |r| r.state.t);
    let out = Emitter {
        start: now.checked_sub(Duration::from_secs_f64(t0)).unwrap_or(now),
        listeners,
    };
    let t = &experiment.training;
    let dims = dims_for(experiment, corpus);
    let mut init_rng = ChaCha8Rng::seed_from_u64(experiment.seed);
    let dropout_rng = ChaCha8Rng::seed_from_u64(experiment.seed.wrapping_add(1));
    let mut model = LstmLm::<f32>::new(dims, experiment.model.init_range, &mut init_rng);
    if let Some(w) = &context.pretrained {
        for (i, m) in w.params.iter().enumerate() {
            model.write_param(i, &m.values);
        }
    }
    let mut trainer = Trainer::new(model, experiment, &corpus.train, dropout_rng);
    trainer.checkpoint_every = context.checkpoint_every;
    let per_epoch = trainer.segments_per_epoch();
    let mut engine = Engine {
        experiment,
        corpus,
        context,
        out,
        control,
        trainer,
        progress: Progress::default(),
        plateau: Plateau {
            lr: t.lr,
            best_valid: None,
            bad_epochs: 0,
        },
        steps_per_epoch: t
            .max_steps_per_epoch
            .map_or(per_epoch, |m| m.min(per_epoch)),
        corpus_sha256: context
            .checkpoints
            .as_ref()
            .map(|_| checkpoint::corpus_sha256(corpus))
            .unwrap_or_default(),
    };
    let result = match &context.resume {
        Some(r) => engine.restore(r).and_then(|()| engine.schedule()),
        None => engine.schedule(),
    };
    match result {
        Ok(summary) => Outcome::Finished(Box::new(summary)),
        Err(Halted::Stopped(reason)) => {
            engine.out.emit(Event::Stopped { reason });
            Outcome::Stopped
        }
        Err(Halted::Failed(error)) => {
            engine.out.emit(Event::Failed {
                error: error.clone(),
            });
            Outcome::Failed(error)
        }
    }
}

/// Why the schedule ended early.
enum Halted {
    Stopped(String),
    Failed(String),
}

/// One run's moving parts.
struct Engine<'a, 'l> {
    experiment: &'a Experiment,
    corpus: &'a Corpus,
    context: &'a RunContext,
    out: Emitter<'l>,
    control: &'a Control,
    trainer: Trainer<'a>,
    progress: Progress,
    plateau: Plateau,
    steps_per_epoch: usize,
    corpus_sha256: String,
}

impl Engine<'_, '_> {
    fn restore(&mut self, resume: &Resume) -> Result<(), Halted> {
        let fail = |e: String| Halted::Failed(format!("cannot resume from the checkpoint: {e}"));
        if resume.state.corpus_sha256 != self.corpus_sha256 {
            return Err(fail(
                "the corpus differs from the one the run started on".into(),
            ));
        }
        resume
            .restore_model(&mut self.trainer.model)
            .map_err(fail)?;
        self.trainer.restore(resume).map_err(fail)?;
        self.progress = resume.state.progress.clone();
        self.plateau = resume.state.plateau;
        let now = Arithmetic::current();
        if let Some(then) = resume.state.arithmetic.filter(|&then| then != now) {
            let message = format!(
                "the checkpoint was written with {then}, this process runs {now}: \
                 from here on the numbers will not match an uninterrupted run's bit \
                 for bit; the rounding differs, and SGD can carry that further \
                 (README, \"One epoch, before and after\")"
            );
            tracing::warn!("{message}");
            self.out.emit(Event::Log {
                level: LogLevel::Warn,
                message,
            });
        }
        Ok(())
    }

    fn eval(&mut self, split: Split, tag: ModelTag, epoch: Option<usize>) -> f64 {
        let (ppl, nll, tokens) = evaluate(
            &self.trainer.model,
            self.corpus.split(split),
            self.experiment.eval.batch_size,
            self.experiment.training.bptt,
        );
        self.out.emit(Event::Evaluated {
            split,
            model: tag,
            epoch,
            ppl,
            nll,
            tokens,
        });
        ppl
    }

    /// Saves everything needed to continue from `position`. A checkpoint
    /// that cannot be written stops the run: going on would risk work that
    /// could not be resumed.
    fn checkpoint(&mut self, position: Position) -> Result<(), Halted> {
        self.trainer.since_checkpoint = 0.0;
        let Some(store) = &self.context.checkpoints else {
            return Ok(());
        };
        let (h, c) = self.trainer.lstm_state();
        let batch = self.experiment.training.batch_size;
        let (tensors, masked, warm) =
            checkpoint::tensors(&self.trainer.model, (&h, &c), batch, &self.trainer.warm);
        let state = State {
            format: checkpoint::FORMAT,
            program_version: env!("CARGO_PKG_VERSION").into(),
            experiment_sha256: self.context.experiment_sha256.clone(),
            corpus_sha256: self.corpus_sha256.clone(),
            position,
            t: self.out.start.elapsed().as_secs_f64(),
            progress: self.progress.clone(),
            plateau: self.plateau,
            trainer: self.trainer.save_state(),
            masked,
            warm,
            layers: self.trainer.model.dims().layers,
            batch,
            arithmetic: Some(Arithmetic::current()),
        };
        let json = serde_json::to_string(&state).expect("serialisable");
        match store.save(json, tensors) {
            Ok(path) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                tracing::info!("checkpoint {name}: {}", position.describe());
                Ok(())
            }
            Err(e) => Err(Halted::Failed(format!("cannot write a checkpoint: {e}"))),
        }
    }

    /// The run's end when training diverged: what happened, where, and
    /// what to change. No checkpoint is written, so the last one (before the
    /// divergence) is what a resume would start from.
    fn diverged(&self, at: Position, lr: f64, loss: f64, grad_norm: f64) -> Halted {
        let clip = match self.experiment.training.clip {
            Some(c) => format!("gradient-norm clipping at {c}"),
            None => "no gradient clipping".into(),
        };
        Halted::Failed(format!(
            "training diverged at {}: the loss per token is {loss} and the gradient norm \
             {grad_norm} (learning rate {lr}, {clip}). Lower the learning rate (training.lr, or \
             the phase's retrain.lr) or clip the gradient, e.g. --set training.clip=5.0",
            at.describe(),
            lr = if lr.abs() >= 1e6 {
                format!("{lr:e}")
            } else {
                lr.to_string()
            },
        ))
    }

    /// Trains the stretch; `position` says where a step count of it is in
    /// the schedule. A periodic checkpoint is written and training goes on;
    /// a pause writes one and waits; a stop writes one and ends the run.
    fn train(
        &mut self,
        mut stretch: Stretch,
        position: impl Fn(usize) -> Position,
        after_step: &mut impl FnMut(&mut LstmLm<f32>, &mut Warm, usize, &mut Emitter) -> AfterStep,
    ) -> Result<(), Halted> {
        loop {
            match self
                .trainer
                .run(stretch, &mut self.out, self.control, after_step)
            {
                Returned::Done => return Ok(()),
                Returned::Pause { step } => {
                    self.checkpoint(position(step))?;
                    self.out.emit(Event::Paused);
                    let paused = Instant::now();
                    self.control.wait_while_paused();
                    self.trainer.paused_for(paused.elapsed().as_secs_f64());
                    if self.control.is_stopped() {
                        return Err(Halted::Stopped(format!(
                            "stopped by request while paused ({})",
                            position(step).describe()
                        )));
                    }
                    self.out.emit(Event::Resumed);
                    stretch.from = step;
                }
                Returned::Checkpoint { step } => {
                    self.checkpoint(position(step))?;
                    stretch.from = step;
                }
                Returned::Diverged {
                    step,
                    lr,
                    loss,
                    grad_norm,
                } => return Err(self.diverged(position(step), lr, loss, grad_norm)),
                Returned::Failed(error) => return Err(Halted::Failed(error)),
                Returned::Stop { step } => {
                    self.checkpoint(position(step))?;
                    return Err(Halted::Stopped(format!(
                        "stopped by request ({})",
                        position(step).describe()
                    )));
                }
            }
        }
    }
}
