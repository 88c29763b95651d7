//! The schedule of docs/method.md §3 as its phases, in order: pre-train,
//! prune, one-shot baselines, iterate, finish. Each phase starts from where
//! the run stands ([`Position`]: a fresh run's start, or a checkpoint's) and
//! leaves a checkpoint at its end, so a resumed run skips what is done and
//! re-enters the phase it was in at the step it was at.

/// Weight snapshots a whole run records (plus one at each stretch's end).
const WEIGHT_SNAPSHOTS: usize = 300;

use std::time::Instant;

use super::checkpoint::{Position, Stage};
use super::compression::{self, Detail, Pass, Quantization, Target};
use super::train::Stretch;
use super::{dims_for, Emitter, Engine, Halted};
use crate::compress::prune::cubic_sparsity;
use crate::data::{Corpus, Split};
use crate::experiment::{
    Experiment, Length, LrPolicy, PruneSchedule, PruningConfig, QuantizationConfig, RetrainConfig,
};
use crate::model::Arithmetic;
use crate::record::{
    CorpusSummary, EpochSummary, Event, FinalSummary, IterationSummary, MatrixSummary, ModelTag,
    OneShotSummary, Phase, PplPair, PrunedSummary, Summary,
};

impl Engine<'_, '_> {
    /// Runs every phase that is not done yet and returns what the run measured.
    pub(super) fn schedule(&mut self) -> Result<Summary, Halted> {
        let start = self.begin();
        if let Position::Pretrain { epoch, step } = start {
            self.pretrain(epoch, step)?;
        }
        if let Some(p) = &self.experiment.pruning {
            if start.stage() <= Stage::Prune {
                self.prune(p, start)?;
            }
        }
        let mut final_model = None;
        if let Some(q) = &self.experiment.quantization {
            let targets = compression::targets(&self.trainer.model, q);
            if start.stage() <= Stage::Baselines {
                self.baselines(q, &targets)?;
            }
            self.iterate(q, &targets, start)?;
            final_model = Some(self.finish(q, &targets)?);
        }
        self.summary(final_model)
    }

    /// Sets the schedule's length and announces the run (or its
    /// continuation); returns where to start.
    fn begin(&mut self) -> Position {
        let experiment = self.experiment;
        let steps_per_epoch = self.steps_per_epoch;
        let prune_steps = experiment
            .pruning
            .as_ref()
            .map_or(0, |p| retrain_steps(&p.retrain, steps_per_epoch));
        let quant_steps = experiment.quantization.as_ref().map_or(0, |q| {
            q.iterations * retrain_steps(&q.retrain, steps_per_epoch)
        });
        self.trainer.total_steps =
            steps_per_epoch * experiment.training.epochs + prune_steps + quant_steps;
        // A few hundred weight snapshots over the whole run, however long.
        self.trainer.weights_every = (self.trainer.total_steps / WEIGHT_SNAPSHOTS).max(1);
        if let Some(r) = &self.context.resume {
            let position = r.state.position;
            self.out.emit(Event::Continued {
                position: position.describe(),
                total_steps: self.trainer.total_steps,
            });
            self.out.log(format!(
                "resumed from a checkpoint: {}",
                position.describe()
            ));
            return position;
        }
        let corpus = self.corpus;
        let dims = dims_for(experiment, corpus);
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
            epochs: experiment.training.epochs,
            total_steps: self.trainer.total_steps,
            arithmetic: Some(Arithmetic::current()),
            clip: experiment.training.clip,
        });
        // run.log's line; `run_started` already says it on screen
        tracing::info!(
            "{}: {} parameters, {} steps per epoch on {}",
            experiment.name,
            dims.parameter_count(),
            steps_per_epoch,
            corpus.origin
        );
        Position::Pretrain { epoch: 1, step: 0 }
    }

    /// Full-precision training from `first_epoch` at `first_step`, then the
    /// full-precision reference evaluation and the saved `fp` weights.
    fn pretrain(&mut self, first_epoch: usize, first_step: usize) -> Result<(), Halted> {
        let t = &self.experiment.training;
        let steps_per_epoch = self.steps_per_epoch;
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
            let stretch = Stretch {
                phase: Phase::Pretrain,
                epoch,
                steps: steps_per_epoch,
                from,
                lr,
            };
            self.train(
                stretch,
                |step| Position::Pretrain { epoch, step },
                &mut |_, _, _, _| Ok(()),
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
                self.update_plateau(valid_ppl, factor, patience);
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
        Ok(())
    }

    fn update_plateau(&mut self, valid_ppl: f64, factor: f64, patience: usize) {
        let plateau = &mut self.plateau;
        if plateau.best_valid.is_none_or(|best| valid_ppl < best) {
            plateau.best_valid = Some(valid_ppl);
            plateau.bad_epochs = 0;
            return;
        }
        plateau.bad_epochs += 1;
        if plateau.bad_epochs > patience {
            plateau.lr *= factor;
            plateau.bad_epochs = 0;
            let lr = plateau.lr;
            self.out.log(format!(
                "validation did not improve: learning rate now {lr}"
            ));
        }
    }

    /// Pruning (docs/method.md §4), then retraining with the mask applied
    /// after every step; gradual pruning raises the rate along the way.
    fn prune(&mut self, p: &PruningConfig, start: Position) -> Result<(), Halted> {
        let prune_steps = retrain_steps(&p.retrain, self.steps_per_epoch);
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
                    compression::prune_model(&mut self.trainer.model, p, first_rate, Detail::Full);
                self.out.emit(Event::Pruned { sparsity, matrices });
                self.trainer.start_phase();
                0
            }
        };
        let stretch = Stretch {
            phase: Phase::Prune,
            epoch: 0,
            steps: prune_steps,
            from,
            lr: p.retrain.lr,
        };
        self.train(
            stretch,
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
                        let rate = cubic_sparsity(initial, p.rate, step as f64 / ramp_steps as f64);
                        let report = step == ramp_steps || step % (every * 10) == 0;
                        let detail = if report { Detail::Full } else { Detail::Brief };
                        let (sparsity, matrices) = compression::prune_model(model, p, rate, detail);
                        if report {
                            out.emit(Event::Pruned { sparsity, matrices });
                        }
                    }
                }
                Ok(())
            },
        )?;
        // The ramp ends at the final rate; make sure of it whatever the step
        // count (for one-shot this recomputes the same mask).
        let (sparsity, matrices) =
            compression::prune_model(&mut self.trainer.model, p, p.rate, Detail::Full);
        if let PruneSchedule::Gradual { .. } = p.schedule {
            self.out.emit(Event::Pruned { sparsity, matrices });
        }
        self.progress.pruned = Some(PrunedSummary {
            sparsity,
            valid_ppl: self.eval(Split::Valid, ModelTag::Pruned, None),
            test_ppl: self.eval(Split::Test, ModelTag::Pruned, None),
        });
        self.checkpoint(Position::Baselines)
    }

    /// One-shot quantization of the same model with each baseline method, no
    /// retraining; the full-precision weights are put back after each.
    fn baselines(&mut self, q: &QuantizationConfig, targets: &[Target]) -> Result<(), Halted> {
        self.out.emit(Event::PhaseStarted {
            phase: Phase::OneShot,
            lr: 0.0,
            steps: 0,
        });
        let bits = common_bits(self.experiment);
        for &baseline in &q.baselines {
            let method = compression::method_of(baseline);
            let saved: Vec<Vec<f32>> = targets
                .iter()
                .map(|t| self.trainer.model.read_param(t.index))
                .collect();
            let pass = compression::quantize_model(
                &mut self.trainer.model,
                targets,
                Quantization::baseline(method),
                &mut self.trainer.warm,
            )
            .map_err(Halted::Failed)?;
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
        self.checkpoint(Position::Iteration { j: 1 })
    }

    /// Iterations j = 1..K: quantize in place, evaluate, retrain in full
    /// precision, measuring the loss the weights would have along the way.
    fn iterate(
        &mut self,
        q: &QuantizationConfig,
        targets: &[Target],
        start: Position,
    ) -> Result<(), Halted> {
        let steps = retrain_steps(&q.retrain, self.steps_per_epoch);
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
                        targets,
                        Quantization::ITERATE,
                        &mut self.trainer.warm,
                    )
                    .map_err(Halted::Failed)?;
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
            let stretch = Stretch {
                phase,
                epoch: 0,
                steps,
                from,
                lr,
            };
            self.train(
                stretch,
                |step| Position::Retrain { j, step },
                &mut |model, warm, step, out| {
                    if step % every == 0 || step == steps {
                        let probe =
                            compression::quantize_model(model, targets, Quantization::PROBE, warm)?;
                        out.emit(Event::QuantLoss {
                            j,
                            step,
                            quant_loss: probe.quant_loss(),
                        });
                    }
                    Ok(())
                },
            )?;
            self.checkpoint(Position::Iteration { j: j + 1 })?;
        }
        Ok(())
    }

    /// The last quantization: the deliverable model, evaluated and saved.
    fn finish(
        &mut self,
        q: &QuantizationConfig,
        targets: &[Target],
    ) -> Result<FinalSummary, Halted> {
        self.out.emit(Event::PhaseStarted {
            phase: Phase::Final,
            lr: 0.0,
            steps: 0,
        });
        let pass = compression::quantize_model(
            &mut self.trainer.model,
            targets,
            Quantization::ITERATE,
            &mut self.trainer.warm,
        )
        .map_err(Halted::Failed)?;
        emit_quantized(&mut self.out, ModelTag::Final, &pass);
        let valid_ppl = self.eval(Split::Valid, ModelTag::Final, None);
        let test_ppl = self.eval(Split::Test, ModelTag::Final, None);
        self.save_weights("final");
        self.save_codes(targets);
        let method = q
            .groups
            .iter()
            .map(|g| compression::method_of(g.method).label())
            .collect::<Vec<_>>();
        Ok(FinalSummary {
            bits: common_bits(self.experiment),
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
        })
    }

    /// What the run measured, and the `finished` record.
    fn summary(&mut self, final_model: Option<FinalSummary>) -> Result<Summary, Halted> {
        let progress = std::mem::take(&mut self.progress);
        let fp = progress.fp.ok_or_else(|| {
            Halted::Failed("the checkpoint lacks the full-precision evaluation".into())
        })?;
        let summary = Summary {
            name: self.experiment.name.clone(),
            seed: self.experiment.seed,
            fp,
            epochs: progress.epochs,
            pruned: progress.pruned,
            one_shot: progress.one_shot,
            iterations: progress.iterations,
            final_model,
            train_seconds: self.trainer.seconds,
            train_tokens_per_sec: self.trainer.tokens as f64 / self.trainer.seconds.max(1e-9),
            arithmetic: Some(Arithmetic::current()),
            corpus: Some(corpus_summary(self.corpus)),
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

/// What the summary says of the corpus.
fn corpus_summary(corpus: &Corpus) -> CorpusSummary {
    let tokens = [corpus.train.len(), corpus.valid.len(), corpus.test.len()];
    let rate = |k: usize| corpus.unknown[k] as f64 / tokens[k].max(1) as f64;
    CorpusSummary {
        source: corpus.origin.clone(),
        vocabulary: corpus.vocab.len(),
        tokens,
        unknown_rate: [rate(0), rate(1), rate(2)],
    }
}

/// Learning rate for `epoch` (1-based) under a schedule. Plateau decay is
/// applied from validation results instead ([`Engine::update_plateau`]).
fn scheduled_lr(base: f64, policy: &LrPolicy, epoch: usize) -> f64 {
    match policy {
        LrPolicy::DecayAfter {
            epoch: keep,
            factor,
        } if epoch > *keep => base * factor.powi((epoch - keep) as i32),
        _ => base,
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

fn emit_quantized(out: &mut Emitter, model: ModelTag, pass: &Pass) {
    out.emit(Event::Quantized {
        model,
        quant_loss: pass.quant_loss(),
        packed_bytes: pass.packed_bytes,
        fp32_bytes: pass.fp32_bytes,
        matrices: pass.matrices.clone(),
    });
}
