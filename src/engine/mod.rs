//! The engine: runs an experiment's schedule on the caller's thread (callers
//! put it on its own thread), tells listeners what happens, and obeys
//! [`Control`] between steps. It never waits for a listener.

mod compression;
mod control;
mod events;
mod train;

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use control::Control;
pub use events::{Event, LogLevel, MatrixReport, ModelTag, Phase, Record};

use std::collections::HashMap;
use std::path::PathBuf;

use crate::data::{Corpus, Segments, Split};
use crate::experiment::{Experiment, Length, LrPolicy, PruneSchedule, RetrainConfig};
use crate::model::{LstmLm, ModelDims};
use crate::store::npy::Matrix;
use crate::store::weights::{self, Manifest, Weights};
use compression::Pass;
use train::{Stopped, Trainer};

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

/// What a run starts from and where it saves weights, beside the experiment.
#[derive(Debug, Default)]
pub struct RunContext {
    /// Weights to start from (the experiment's `pretrained`), already loaded.
    pub pretrained: Option<Weights>,
    /// Where to save the full-precision (`fp`) and final (`final`) weights.
    pub weights_dir: Option<PathBuf>,
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

fn save_weights(
    context: &RunContext,
    which: &str,
    model: &LstmLm<f32>,
    corpus: &Corpus,
    out: &mut Emitter,
) {
    if let Some(dir) = &context.weights_dir {
        let dir = dir.join(which);
        match weights::save(&dir, &weights_of(model, corpus)) {
            Ok(()) => out.log(format!("saved {which} weights to {}", dir.display())),
            Err(e) => out.emit(Event::Log {
                level: LogLevel::Warn,
                message: format!("could not save {which} weights: {e}"),
            }),
        }
    }
}

/// Trains, prunes, quantizes and evaluates as the experiment says.
pub fn run(
    experiment: &Experiment,
    corpus: &Corpus,
    context: &RunContext,
    listeners: Vec<&mut dyn Listener>,
    control: &Control,
) -> Outcome {
    let mut out = Emitter {
        start: Instant::now(),
        listeners,
    };
    match schedule(experiment, corpus, context, &mut out, control) {
        Ok(summary) => Outcome::Finished(Box::new(summary)),
        Err(Stopped(reason)) => {
            out.emit(Event::Stopped { reason });
            Outcome::Stopped
        }
    }
}

fn retrain_steps(r: &RetrainConfig, steps_per_epoch: usize) -> usize {
    match r.length {
        Length::Steps(n) => n,
        Length::Epochs(n) => n * steps_per_epoch,
    }
}

fn common_bits(experiment: &Experiment) -> Option<usize> {
    let groups = &experiment.quantization.as_ref()?.groups;
    let first = groups.first()?.bits;
    groups.iter().all(|g| g.bits == first).then_some(first)
}

fn schedule(
    experiment: &Experiment,
    corpus: &Corpus,
    context: &RunContext,
    out: &mut Emitter,
    control: &Control,
) -> Result<Summary, Stopped> {
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
    let per_epoch = trainer.segments_per_epoch();
    let steps_per_epoch = t
        .max_steps_per_epoch
        .map_or(per_epoch, |m| m.min(per_epoch));
    let prune_steps = experiment
        .pruning
        .as_ref()
        .map_or(0, |p| retrain_steps(&p.retrain, steps_per_epoch));
    let quant_steps = experiment.quantization.as_ref().map_or(0, |q| {
        q.iterations * retrain_steps(&q.retrain, steps_per_epoch)
    });
    trainer.total_steps = steps_per_epoch * t.epochs + prune_steps + quant_steps;
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
        total_steps: trainer.total_steps,
    });
    out.log(format!(
        "{}: {} parameters, {} steps per epoch on {}",
        experiment.name,
        dims.parameter_count(),
        steps_per_epoch,
        corpus.origin
    ));
    let eval = |model: &LstmLm<f32>,
                split: Split,
                tag: ModelTag,
                epoch: Option<usize>,
                out: &mut Emitter| {
        let (ppl, nll, tokens) = evaluate(
            model,
            corpus.split(split),
            experiment.eval.batch_size,
            t.bptt,
        );
        out.emit(Event::Evaluated {
            split,
            model: tag,
            epoch,
            ppl,
            nll,
            tokens,
        });
        ppl
    };

    // 1. Pre-training in full precision.
    out.emit(Event::PhaseStarted {
        phase: Phase::Pretrain,
        lr: t.lr,
        steps: steps_per_epoch * t.epochs,
    });
    let mut epochs = Vec::new();
    let mut plateau_lr = t.lr;
    let (mut best_valid, mut bad_epochs) = (f64::INFINITY, 0);
    for epoch in 1..=t.epochs {
        let lr = match t.lr_policy {
            LrPolicy::Plateau { .. } => plateau_lr,
            _ => scheduled_lr(t.lr, &t.lr_policy, epoch),
        };
        out.emit(Event::EpochStarted { epoch, lr });
        let epoch_start = Instant::now();
        trainer.rewind();
        let train_ppl = trainer.run(
            steps_per_epoch,
            lr,
            Phase::Pretrain,
            epoch,
            out,
            control,
            |_, _, _| {},
        )?;
        let valid_ppl = eval(&trainer.model, Split::Valid, ModelTag::Fp, Some(epoch), out);
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
    let fp = PplPair {
        valid_ppl: eval(&trainer.model, Split::Valid, ModelTag::Fp, None, out),
        test_ppl: eval(&trainer.model, Split::Test, ModelTag::Fp, None, out),
    };
    save_weights(context, "fp", &trainer.model, corpus, out);

    // 2. Pruning, then retraining with the mask applied after every step.
    let mut pruned = None;
    if let Some(p) = &experiment.pruning {
        out.emit(Event::PhaseStarted {
            phase: Phase::Prune,
            lr: p.retrain.lr,
            steps: prune_steps,
        });
        let first_rate = match p.schedule {
            PruneSchedule::OneShot => p.rate,
            PruneSchedule::Gradual { initial, .. } => initial,
        };
        let (sparsity, matrices) =
            compression::prune_model(&mut trainer.model, p, first_rate, true);
        out.emit(Event::Pruned { sparsity, matrices });
        trainer.run(
            prune_steps,
            p.retrain.lr,
            Phase::Prune,
            0,
            out,
            control,
            |model, step, out| {
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
                        let (sparsity, matrices) = compression::prune_model(model, p, rate, report);
                        if report {
                            out.emit(Event::Pruned { sparsity, matrices });
                        }
                    }
                }
            },
        )?;
        // The ramp ends at the final rate; make sure of it whatever the step
        // count (for one-shot this recomputes the same mask).
        let (sparsity, matrices) = compression::prune_model(&mut trainer.model, p, p.rate, true);
        if let PruneSchedule::Gradual { .. } = p.schedule {
            out.emit(Event::Pruned { sparsity, matrices });
        }
        pruned = Some(PrunedSummary {
            sparsity,
            valid_ppl: eval(&trainer.model, Split::Valid, ModelTag::Pruned, None, out),
            test_ppl: eval(&trainer.model, Split::Test, ModelTag::Pruned, None, out),
        });
    }

    let mut summary = Summary {
        name: experiment.name.clone(),
        seed: experiment.seed,
        fp,
        epochs,
        pruned,
        one_shot: Vec::new(),
        iterations: Vec::new(),
        final_model: None,
        train_seconds: 0.0,
        train_tokens_per_sec: 0.0,
    };

    // 3. Quantization: one-shot baselines, then the iterations, then the final model.
    if let Some(q) = &experiment.quantization {
        let targets = compression::targets(&trainer.model, q);
        let mut warm = HashMap::new();
        let bits = common_bits(experiment);
        out.emit(Event::PhaseStarted {
            phase: Phase::OneShot,
            lr: 0.0,
            steps: 0,
        });
        for &baseline in &q.baselines {
            let method = compression::method_of(baseline);
            let saved: Vec<Vec<f32>> = targets
                .iter()
                .map(|t| trainer.model.read_param(t.index))
                .collect();
            let pass = compression::quantize_model(
                &mut trainer.model,
                &targets,
                Some(method),
                true,
                &mut warm,
                false,
            );
            let tag = ModelTag::OneShot {
                method: method.label(),
            };
            emit_quantized(out, tag.clone(), &pass);
            let valid_ppl = eval(&trainer.model, Split::Valid, tag.clone(), None, out);
            let test_ppl = eval(&trainer.model, Split::Test, tag, None, out);
            summary.one_shot.push(OneShotSummary {
                bits,
                method: method.label(),
                quant_loss: pass.quant_loss(),
                valid_ppl,
                test_ppl,
            });
            for (t, w) in targets.iter().zip(&saved) {
                trainer.model.write_param(t.index, w);
            }
        }
        let steps = retrain_steps(&q.retrain, steps_per_epoch);
        let mut lr = q.retrain.lr;
        for j in 1..=q.iterations {
            out.emit(Event::PhaseStarted {
                phase: Phase::Iteration {
                    j,
                    of: q.iterations,
                },
                lr,
                steps,
            });
            let pass = compression::quantize_model(
                &mut trainer.model,
                &targets,
                None,
                true,
                &mut warm,
                true,
            );
            emit_quantized(out, ModelTag::Iteration { j }, &pass);
            let valid_ppl = eval(
                &trainer.model,
                Split::Valid,
                ModelTag::Iteration { j },
                None,
                out,
            );
            summary.iterations.push(IterationSummary {
                iteration: j,
                quant_loss: pass.quant_loss(),
                valid_ppl,
            });
            let every = q.loss_every;
            trainer.run(
                steps,
                lr,
                Phase::Iteration {
                    j,
                    of: q.iterations,
                },
                0,
                out,
                control,
                |model, step, out| {
                    if step % every == 0 || step == steps {
                        let probe = compression::quantize_model(
                            model, &targets, None, false, &mut warm, false,
                        );
                        out.emit(Event::QuantLoss {
                            j,
                            step,
                            quant_loss: probe.quant_loss(),
                        });
                    }
                },
            )?;
            lr *= q.retrain.decay;
        }
        out.emit(Event::PhaseStarted {
            phase: Phase::Final,
            lr: 0.0,
            steps: 0,
        });
        let pass =
            compression::quantize_model(&mut trainer.model, &targets, None, true, &mut warm, true);
        emit_quantized(out, ModelTag::Final, &pass);
        let valid_ppl = eval(&trainer.model, Split::Valid, ModelTag::Final, None, out);
        let test_ppl = eval(&trainer.model, Split::Test, ModelTag::Final, None, out);
        save_weights(context, "final", &trainer.model, corpus, out);
        let method = q
            .groups
            .iter()
            .map(|g| compression::method_of(g.method).label())
            .collect::<Vec<_>>();
        summary.final_model = Some(FinalSummary {
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

    summary.train_seconds = trainer.seconds;
    summary.train_tokens_per_sec = trainer.tokens as f64 / trainer.seconds.max(1e-9);
    let (valid_ppl, test_ppl) = match (&summary.final_model, &summary.pruned) {
        (Some(f), _) => (f.valid_ppl, f.test_ppl),
        (None, Some(p)) => (p.valid_ppl, p.test_ppl),
        (None, None) => (summary.fp.valid_ppl, summary.fp.test_ppl),
    };
    out.emit(Event::Finished {
        valid_ppl,
        test_ppl,
        seconds: out.start.elapsed().as_secs_f64(),
    });
    Ok(summary)
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
