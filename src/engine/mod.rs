//! The engine: runs an experiment's schedule on the caller's thread (callers
//! put it on its own thread), tells listeners what happens, and obeys
//! [`Control`] between steps. It never waits for a listener.

pub mod checkpoint;
mod compression;
mod control;
mod events;
mod train;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use control::Control;
pub use events::{Event, LogLevel, MatrixReport, ModelTag, Phase, Record};

use std::path::PathBuf;

use crate::data::{Corpus, Segments, Split};
use crate::experiment::{Experiment, Length, LrPolicy, PruneSchedule, RetrainConfig};
use crate::model::{Arithmetic, LstmLm, ModelDims};
use crate::store::checkpoint::{Checkpoints, NamedTensor};
use crate::store::npy::Matrix;
use crate::store::weights::{self, Manifest, Weights};
use checkpoint::{Plateau, Position, Progress, Resume, State};
use compression::Pass;
use train::{Halt, Trainer, Warm};

/// Receives every event, in order. Must return quickly.
pub trait Listener {
    fn on_event(&mut self, record: &Record);
}

impl<F: FnMut(&Record)> Listener for F {
    fn on_event(&mut self, record: &Record) {
        self(record)
    }
}

/// What a finished run measured (`summary.json`; README documents every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub seed: u64,
    /// Full-precision model after pre-training.
    pub fp: PplPair,
    pub epochs: Vec<EpochSummary>,
    /// After pruning and its retraining (full precision), if the run prunes.
    pub pruned: Option<PrunedSummary>,
    /// One-shot quantization of the same model, per baseline method.
    pub one_shot: Vec<OneShotSummary>,
    /// Iteration j: quantization loss of the weights before quantizing, and
    /// the quantized model's validation perplexity.
    pub iterations: Vec<IterationSummary>,
    /// The deliverable: quantized after the last retraining.
    #[serde(rename = "final")]
    pub final_model: Option<FinalSummary>,
    /// Seconds spent in training steps (all phases).
    pub train_seconds: f64,
    /// Mean training throughput over all steps.
    pub train_tokens_per_sec: f64,
    /// The GEMM backend and threads that finished the run.
    #[serde(default)]
    pub arithmetic: Option<Arithmetic>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunedSummary {
    pub sparsity: f64,
    pub valid_ppl: f64,
    pub test_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneShotSummary {
    /// Bits when every group has the same; `None` for mixed groups.
    pub bits: Option<usize>,
    pub method: String,
    pub quant_loss: f64,
    pub valid_ppl: f64,
    pub test_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationSummary {
    pub iteration: usize,
    pub quant_loss: f64,
    pub valid_ppl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalSummary {
    pub bits: Option<usize>,
    pub method: String,
    pub quant_loss: f64,
    pub valid_ppl: f64,
    pub test_ppl: f64,
    /// Fraction of zero weights over all weight matrices.
    pub sparsity: f64,
    /// Real packed size: codes, coefficients (f32), masks, full-precision
    /// matrices and biases (METHOD.md §4).
    pub packed_bytes: u64,
    pub fp32_bytes: u64,
    pub matrices: Vec<MatrixSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixSummary {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: Option<usize>,
    pub sparsity: f64,
    pub quant_loss: f64,
    pub packed_bytes: u64,
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

fn weights_of(model: &LstmLm<f32>, corpus: &Corpus) -> Weights {
    let d = model.dims();
    let params = model.params();
    Weights {
        manifest: Manifest {
            vocab: d.vocab,
            embed: d.embed,
            hidden: d.hidden,
            layers: d.layers,
            params: params
                .iter()
                .map(|p| (p.name.clone(), p.rows, p.cols))
                .collect(),
        },
        vocab: corpus.vocab.words().to_vec(),
        params: params
            .iter()
            .enumerate()
            .map(|(i, p)| Matrix {
                rows: p.rows,
                cols: p.cols,
                values: model.read_param(i),
            })
            .collect(),
    }
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

fn retrain_steps(r: &RetrainConfig, steps_per_epoch: usize) -> usize {
    match r.length {
        Length::Steps(n) => n,
        Length::Epochs(n) => n * steps_per_epoch,
    }
}

/// Learning rate of iteration `j`'s retraining: decayed once per iteration.
fn retrain_lr(r: &RetrainConfig, j: usize) -> f64 {
    let mut lr = r.lr;
    for _ in 1..j {
        lr *= r.decay;
    }
    lr
}

fn common_bits(experiment: &Experiment) -> Option<usize> {
    let groups = &experiment.quantization.as_ref()?.groups;
    let first = groups.first()?.bits;
    groups.iter().all(|g| g.bits == first).then_some(first)
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

    fn save_weights(&mut self, which: &str) {
        if let Some(dir) = &self.context.weights_dir {
            let dir = dir.join(which);
            match weights::save(&dir, &weights_of(&self.trainer.model, self.corpus)) {
                Ok(()) => self
                    .out
                    .log(format!("saved {which} weights to {}", dir.display())),
                Err(e) => self.out.emit(Event::Log {
                    level: LogLevel::Warn,
                    message: format!("could not save {which} weights: {e}"),
                }),
            }
        }
    }

    /// Saves the final model's codes and coefficients (the warm start holds
    /// them after the final pass) beside its weights, for `export-model`.
    fn save_codes(&mut self, targets: &[compression::Target]) {
        let Some(dir) = &self.context.weights_dir else {
            return;
        };
        let params = self.trainer.model.params();
        let mut tensors = Vec::new();
        let mut matrices = Vec::new();
        for t in targets {
            let (Some(q), Some(p)) = (self.trainer.warm.get(&t.index), params.get(t.index)) else {
                continue;
            };
            matrices.push(
                serde_json::json!({"name": p.name, "bits": q.bits, "method": t.method.label()}),
            );
            tensors.push(NamedTensor::f32(
                format!("{}.alphas", p.name),
                vec![q.rows, q.bits],
                q.alphas.clone(),
            ));
            tensors.push(NamedTensor::u8(
                format!("{}.codes", p.name),
                vec![q.rows, q.cols],
                q.codes.clone(),
            ));
        }
        for (i, p) in params.iter().enumerate() {
            if let Some(m) = self.trainer.model.mask(i) {
                tensors.push(NamedTensor::u8(
                    format!("{}.mask", p.name),
                    vec![p.rows, p.cols],
                    m.iter().map(|&k| k as u8).collect(),
                ));
            }
        }
        let state = serde_json::json!({ "matrices": matrices }).to_string();
        let path = dir.join("final").join(weights::CODES_FILE);
        match weights::save_codes(&path, state, tensors) {
            Ok(()) => self
                .out
                .log(format!("saved the final codes to {}", path.display())),
            Err(e) => self.out.emit(Event::Log {
                level: LogLevel::Warn,
                message: format!("could not save the final codes: {e}"),
            }),
        }
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

    /// Trains the phase's steps `from..steps`. A pause writes a checkpoint
    /// and waits; a stop writes one and ends the run.
    #[allow(clippy::too_many_arguments)]
    fn train(
        &mut self,
        steps: usize,
        mut from: usize,
        lr: f64,
        phase: Phase,
        epoch: usize,
        position: impl Fn(usize) -> Position,
        after_step: &mut impl FnMut(&mut LstmLm<f32>, &mut Warm, usize, &mut Emitter),
    ) -> Result<(), Halted> {
        loop {
            let halt = self.trainer.run(
                steps,
                from,
                lr,
                phase,
                epoch,
                &mut self.out,
                self.control,
                after_step,
            );
            match halt {
                Ok(()) => return Ok(()),
                Err(Halt::Pause { step }) => {
                    self.checkpoint(position(step))?;
                    self.out.emit(Event::Paused);
                    self.control.wait_while_paused();
                    if self.control.is_stopped() {
                        return Err(Halted::Stopped(format!(
                            "stopped by request while paused ({})",
                            position(step).describe()
                        )));
                    }
                    self.out.emit(Event::Resumed);
                    from = step;
                }
                Err(Halt::Checkpoint { step }) => {
                    self.checkpoint(position(step))?;
                    from = step;
                }
                Err(Halt::Stop { step }) => {
                    self.checkpoint(position(step))?;
                    return Err(Halted::Stopped(format!(
                        "stopped by request ({})",
                        position(step).describe()
                    )));
                }
            }
        }
    }

    fn schedule(&mut self) -> Result<Summary, Halted> {
        let experiment = self.experiment;
        let corpus = self.corpus;
        let t = &experiment.training;
        let dims = dims_for(experiment, corpus);
        let steps_per_epoch = self.steps_per_epoch;
        let prune_steps = experiment
            .pruning
            .as_ref()
            .map_or(0, |p| retrain_steps(&p.retrain, steps_per_epoch));
        let quant_steps = experiment.quantization.as_ref().map_or(0, |q| {
            q.iterations * retrain_steps(&q.retrain, steps_per_epoch)
        });
        self.trainer.total_steps = steps_per_epoch * t.epochs + prune_steps + quant_steps;
        let start = match &self.context.resume {
            Some(r) => {
                let position = r.state.position;
                self.out.emit(Event::Continued {
                    position: position.describe(),
                    total_steps: self.trainer.total_steps,
                });
                self.out.log(format!(
                    "resumed from a checkpoint: {}",
                    position.describe()
                ));
                position
            }
            None => {
                self.out.emit(Event::RunStarted {
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
                    total_steps: self.trainer.total_steps,
                    arithmetic: Some(Arithmetic::current()),
                });
                self.out.log(format!(
                    "{}: {} parameters, {} steps per epoch on {}",
                    experiment.name,
                    dims.parameter_count(),
                    steps_per_epoch,
                    corpus.origin
                ));
                Position::Pretrain { epoch: 1, step: 0 }
            }
        };

        // 1. Pre-training in full precision.
        if let Position::Pretrain {
            epoch: first_epoch,
            step: first_step,
        } = start
        {
            if first_epoch == 1 && first_step == 0 {
                self.out.emit(Event::PhaseStarted {
                    phase: Phase::Pretrain,
                    lr: t.lr,
                    steps: steps_per_epoch * t.epochs,
                });
            }
            for epoch in first_epoch..=t.epochs {
                let from = if epoch == first_epoch { first_step } else { 0 };
                let lr = match t.lr_policy {
                    LrPolicy::Plateau { .. } => self.plateau.lr,
                    _ => scheduled_lr(t.lr, &t.lr_policy, epoch),
                };
                let epoch_start = Instant::now();
                if from == 0 {
                    self.out.emit(Event::EpochStarted { epoch, lr });
                    self.trainer.rewind();
                    self.trainer.start_phase();
                }
                self.train(
                    steps_per_epoch,
                    from,
                    lr,
                    Phase::Pretrain,
                    epoch,
                    |step| Position::Pretrain { epoch, step },
                    &mut |_, _, _, _| {},
                )?;
                let train_ppl = self.trainer.phase_ppl();
                let valid_ppl = self.eval(Split::Valid, ModelTag::Fp, Some(epoch));
                let seconds = epoch_start.elapsed().as_secs_f64();
                self.out.emit(Event::EpochFinished {
                    epoch,
                    train_ppl,
                    valid_ppl,
                    lr,
                    seconds,
                });
                self.progress.epochs.push(EpochSummary {
                    epoch,
                    lr,
                    train_ppl,
                    valid_ppl,
                    seconds,
                });
                if let LrPolicy::Plateau { factor, patience } = t.lr_policy {
                    if self.plateau.best_valid.is_none_or(|best| valid_ppl < best) {
                        self.plateau.best_valid = Some(valid_ppl);
                        self.plateau.bad_epochs = 0;
                    } else {
                        self.plateau.bad_epochs += 1;
                        if self.plateau.bad_epochs > patience {
                            self.plateau.lr *= factor;
                            self.plateau.bad_epochs = 0;
                            self.out.log(format!(
                                "validation did not improve: learning rate now {}",
                                self.plateau.lr
                            ));
                        }
                    }
                }
                self.checkpoint(Position::Pretrain {
                    epoch: epoch + 1,
                    step: 0,
                })?;
            }
            self.progress.fp = Some(PplPair {
                valid_ppl: self.eval(Split::Valid, ModelTag::Fp, None),
                test_ppl: self.eval(Split::Test, ModelTag::Fp, None),
            });
            self.save_weights("fp");
        }

        // 2. Pruning, then retraining with the mask applied after every step.
        if let Some(p) = experiment.pruning.as_ref().filter(|_| start.stage() <= 1) {
            let from = match start {
                Position::Prune { step } => step,
                _ => {
                    self.out.emit(Event::PhaseStarted {
                        phase: Phase::Prune,
                        lr: p.retrain.lr,
                        steps: prune_steps,
                    });
                    let first_rate = match p.schedule {
                        PruneSchedule::OneShot => p.rate,
                        PruneSchedule::Gradual { initial, .. } => initial,
                    };
                    let (sparsity, matrices) =
                        compression::prune_model(&mut self.trainer.model, p, first_rate, true);
                    self.out.emit(Event::Pruned { sparsity, matrices });
                    self.trainer.start_phase();
                    0
                }
            };
            self.train(
                prune_steps,
                from,
                p.retrain.lr,
                Phase::Prune,
                0,
                |step| Position::Prune { step },
                &mut |model, _, step, out| {
                    if let PruneSchedule::Gradual {
                        initial,
                        every,
                        ramp,
                    } = p.schedule
                    {
                        let ramp_steps = ((prune_steps as f64 * ramp).ceil() as usize).max(1);
                        if step % every == 0 || step == ramp_steps {
                            let rate = crate::compress::prune::cubic_sparsity(
                                initial,
                                p.rate,
                                step as f64 / ramp_steps as f64,
                            );
                            let report = step == ramp_steps || step % (every * 10) == 0;
                            let (sparsity, matrices) =
                                compression::prune_model(model, p, rate, report);
                            if report {
                                out.emit(Event::Pruned { sparsity, matrices });
                            }
                        }
                    }
                },
            )?;
            // The ramp ends at the final rate; make sure of it whatever the step
            // count (for one-shot this recomputes the same mask).
            let (sparsity, matrices) =
                compression::prune_model(&mut self.trainer.model, p, p.rate, true);
            if let PruneSchedule::Gradual { .. } = p.schedule {
                self.out.emit(Event::Pruned { sparsity, matrices });
            }
            self.progress.pruned = Some(PrunedSummary {
                sparsity,
                valid_ppl: self.eval(Split::Valid, ModelTag::Pruned, None),
                test_ppl: self.eval(Split::Test, ModelTag::Pruned, None),
            });
            self.checkpoint(Position::Baselines)?;
        }

        // 3. Quantization: one-shot baselines, then the iterations, then the final model.
        let mut final_model = None;
        if let Some(q) = &experiment.quantization {
            let targets = compression::targets(&self.trainer.model, q);
            let bits = common_bits(experiment);
            if start.stage() <= 2 {
                self.out.emit(Event::PhaseStarted {
                    phase: Phase::OneShot,
                    lr: 0.0,
                    steps: 0,
                });
                for &baseline in &q.baselines {
                    let method = compression::method_of(baseline);
                    let saved: Vec<Vec<f32>> = targets
                        .iter()
                        .map(|t| self.trainer.model.read_param(t.index))
                        .collect();
                    let pass = compression::quantize_model(
                        &mut self.trainer.model,
                        &targets,
                        Some(method),
                        true,
                        &mut self.trainer.warm,
                        false,
                    );
                    let tag = ModelTag::OneShot {
                        method: method.label(),
                    };
                    emit_quantized(&mut self.out, tag.clone(), &pass);
                    let valid_ppl = self.eval(Split::Valid, tag.clone(), None);
                    let test_ppl = self.eval(Split::Test, tag, None);
                    self.progress.one_shot.push(OneShotSummary {
                        bits,
                        method: method.label(),
                        quant_loss: pass.quant_loss(),
                        valid_ppl,
                        test_ppl,
                    });
                    for (t, w) in targets.iter().zip(&saved) {
                        self.trainer.model.write_param(t.index, w);
                    }
                }
                self.checkpoint(Position::Iteration { j: 1 })?;
            }
            let steps = retrain_steps(&q.retrain, steps_per_epoch);
            let (first_j, first_step) = match start {
                Position::Iteration { j } => (j, None),
                Position::Retrain { j, step } => (j, Some(step)),
                _ => (1, None),
            };
            for j in first_j..=q.iterations {
                let lr = retrain_lr(&q.retrain, j);
                let phase = Phase::Iteration {
                    j,
                    of: q.iterations,
                };
                let from = match first_step.filter(|_| j == first_j) {
                    Some(step) => step,
                    None => {
                        self.out.emit(Event::PhaseStarted { phase, lr, steps });
                        let pass = compression::quantize_model(
                            &mut self.trainer.model,
                            &targets,
                            None,
                            true,
                            &mut self.trainer.warm,
                            true,
                        );
                        emit_quantized(&mut self.out, ModelTag::Iteration { j }, &pass);
                        let valid_ppl = self.eval(Split::Valid, ModelTag::Iteration { j }, None);
                        self.progress.iterations.push(IterationSummary {
                            iteration: j,
                            quant_loss: pass.quant_loss(),
                            valid_ppl,
                        });
                        self.trainer.start_phase();
                        0
                    }
                };
                let every = q.loss_every;
                self.train(
                    steps,
                    from,
                    lr,
                    phase,
                    0,
                    |step| Position::Retrain { j, step },
                    &mut |model, warm, step, out| {
                        if step % every == 0 || step == steps {
                            let probe = compression::quantize_model(
                                model, &targets, None, false, warm, false,
                            );
                            out.emit(Event::QuantLoss {
                                j,
                                step,
                                quant_loss: probe.quant_loss(),
                            });
                        }
                    },
                )?;
                self.checkpoint(Position::Iteration { j: j + 1 })?;
            }
            self.out.emit(Event::PhaseStarted {
                phase: Phase::Final,
                lr: 0.0,
                steps: 0,
            });
            let pass = compression::quantize_model(
                &mut self.trainer.model,
                &targets,
                None,
                true,
                &mut self.trainer.warm,
                true,
            );
            emit_quantized(&mut self.out, ModelTag::Final, &pass);
            let valid_ppl = self.eval(Split::Valid, ModelTag::Final, None);
            let test_ppl = self.eval(Split::Test, ModelTag::Final, None);
            self.save_weights("final");
            self.save_codes(&targets);
            let method = q
                .groups
                .iter()
                .map(|g| compression::method_of(g.method).label())
                .collect::<Vec<_>>();
            final_model = Some(FinalSummary {
                bits,
                method: if method.iter().all(|m| *m == method[0]) {
                    method[0].clone()
                } else {
                    method.join("+")
                },
                quant_loss: pass.quant_loss(),
                valid_ppl,
                test_ppl,
                sparsity: pass.sparsity(),
                packed_bytes: pass.packed_bytes,
                fp32_bytes: pass.fp32_bytes,
                matrices: pass
                    .matrices
                    .iter()
                    .map(|m| MatrixSummary {
                        name: m.name.clone(),
                        rows: m.rows,
                        cols: m.cols,
                        bits: m.bits,
                        sparsity: m.sparsity,
                        quant_loss: m.quant_loss,
                        packed_bytes: m.packed_bytes,
                    })
                    .collect(),
            });
        }

        let progress = std::mem::take(&mut self.progress);
        let fp = progress.fp.ok_or_else(|| {
            Halted::Failed("the checkpoint lacks the full-precision evaluation".into())
        })?;
        let summary = Summary {
            name: experiment.name.clone(),
            seed: experiment.seed,
            fp,
            epochs: progress.epochs,
            pruned: progress.pruned,
            one_shot: progress.one_shot,
            iterations: progress.iterations,
            final_model,
            train_seconds: self.trainer.seconds,
            train_tokens_per_sec: self.trainer.tokens as f64 / self.trainer.seconds.max(1e-9),
            arithmetic: Some(Arithmetic::current()),
        };
        let (valid_ppl, test_ppl) = match (&summary.final_model, &summary.pruned) {
            (Some(f), _) => (f.valid_ppl, f.test_ppl),
            (None, Some(p)) => (p.valid_ppl, p.test_ppl),
            (None, None) => (summary.fp.valid_ppl, summary.fp.test_ppl),
        };
        self.out.emit(Event::Finished {
            valid_ppl,
            test_ppl,
            seconds: self.out.start.elapsed().as_secs_f64(),
        });
        Ok(summary)
    }
}

fn emit_quantized(out: &mut Emitter, model: ModelTag, pass: &Pass) {
    out.emit(Event::Quantized {
        model,
        quant_loss: pass.quant_loss(),
        packed_bytes: pass.packed_bytes,
        fp32_bytes: pass.fp32_bytes,
        matrices: pass.matrices.clone(),
    });
}
