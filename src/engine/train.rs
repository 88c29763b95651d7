//! The training loop shared by pre-training and every retraining phase:
//! walks the training split segment by segment (wrapping, with a fresh state,
//! at the end of the split), obeys [`Control`] between steps, and reports.

use std::collections::HashMap;
use std::time::Instant;

use rand_chacha::ChaCha8Rng;

use super::checkpoint::{Resume, TrainerState};
use super::{Control, Emitter};
use crate::compress::Quantized;
use crate::data::Segments;
use crate::experiment::{Experiment, LossScale};
use crate::model::{LstmLm, LstmState, StepOptions, StepStats};
use crate::record::{Event, Phase, WeightSnapshot};

/// Why training returned: the stretch is done, or it returned between two
/// steps with `step` steps of it done.
#[derive(Debug, Clone, PartialEq)]
pub enum Returned {
    Done,
    /// A pause was requested.
    Pause {
        step: usize,
    },
    /// A stop was requested.
    Stop {
        step: usize,
    },
    /// Time for a periodic checkpoint; training goes on after it.
    Checkpoint {
        step: usize,
    },
    /// Step `step` (1-based) gave a non-finite loss or gradient norm at
    /// learning rate `lr`: the weights it updated are not worth keeping.
    Diverged {
        step: usize,
        lr: f64,
        loss: f64,
        grad_norm: f64,
    },
    /// The work after a step failed (e.g. weights that cannot be quantized).
    Failed(String),
}

/// What runs after each step (mask updates, the live quantization loss)
/// says whether training may go on.
pub type AfterStep = Result<(), String>;

/// A stretch of training: steps `from..steps` of a phase at one learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    pub phase: Phase,
    /// Pre-training epoch (1-based); 0 outside pre-training.
    pub epoch: usize,
    /// Steps in the phase (or the pre-training epoch).
    pub steps: usize,
    /// Steps already done.
    pub from: usize,
    pub lr: f64,
}

/// Each quantized matrix's latest codes, the warm start of its next quantization.
pub type Warm = HashMap<usize, Quantized>;

pub struct Trainer<'a> {
    pub model: LstmLm<f32>,
    pub warm: Warm,
    experiment: &'a Experiment,
    segments: Segments<'a>,
    cursor: usize,
    state: LstmState<f32>,
    rng: ChaCha8Rng,
    /// Steps in the whole schedule, for the ETA.
    pub total_steps: usize,
    pub done_steps: usize,
    /// The end of this process's first step: the ETA's clock starts there,
    /// once caches and allocators are warm (a resumed run starts afresh).
    clock: Option<Instant>,
    /// Seconds spent paused since `clock` started, which the ETA leaves out.
    paused_seconds: f64,
    /// Steps this process ran after its first.
    steady_steps: usize,
    /// Training steps between two weight snapshots.
    pub weights_every: usize,
    pub tokens: usize,
    pub seconds: f64,
    /// Training NLL and targets of the current phase (epoch or retraining).
    phase_nll: f64,
    phase_count: usize,
    /// Training time between periodic checkpoints (none: only at boundaries).
    pub checkpoint_every: Option<f64>,
    /// Training seconds since the last checkpoint.
    pub since_checkpoint: f64,
}

impl<'a> Trainer<'a> {
    pub fn new(
        model: LstmLm<f32>,
        experiment: &'a Experiment,
        train: &'a [u32],
        rng: ChaCha8Rng,
    ) -> Self {
        let t = &experiment.training;
        let state = model.zero_state(t.batch_size);
        Self {
            model,
            warm: Warm::new(),
            experiment,
            segments: Segments::new(train, t.batch_size, t.bptt),
            cursor: 0,
            state,
            rng,
            total_steps: 0,
            done_steps: 0,
            clock: None,
            paused_seconds: 0.0,
            steady_steps: 0,
            weights_every: 1,
            tokens: 0,
            seconds: 0.0,
            phase_nll: 0.0,
            phase_count: 0,
            checkpoint_every: None,
            since_checkpoint: 0.0,
        }
    }

    /// Its place in the data, RNG and counters, for a checkpoint.
    pub fn save_state(&self) -> TrainerState {
        TrainerState {
            cursor: self.cursor,
            rng: self.rng.clone(),
            done_steps: self.done_steps,
            tokens: self.tokens,
            seconds: self.seconds,
            phase_nll: self.phase_nll,
            phase_count: self.phase_count,
        }
    }

    /// The carried LSTM state's values (h, c per layer).
    pub fn lstm_state(&self) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        self.model.state_values(&self.state)
    }

    /// Continues from a checkpoint (the model is restored separately).
    pub fn restore(&mut self, resume: &Resume) -> Result<(), String> {
        let s = &resume.state.trainer;
        if s.cursor > self.segments.len() {
            return Err(format!(
                "its data position {} is past the {} segments of an epoch",
                s.cursor,
                self.segments.len()
            ));
        }
        let batch = self.experiment.training.batch_size;
        if resume.state.batch != batch {
            return Err("it was written with another batch size".into());
        }
        let (h, c) = resume.lstm_state(self.model.dims().hidden)?;
        self.state = self.model.state_from(batch, &h, &c);
        self.warm = resume.warm()?;
        self.cursor = s.cursor;
        self.rng = s.rng.clone();
        self.done_steps = s.done_steps;
        self.tokens = s.tokens;
        self.seconds = s.seconds;
        self.phase_nll = s.phase_nll;
        self.phase_count = s.phase_count;
        Ok(())
    }

    /// Starts counting a new phase's training perplexity.
    pub fn start_phase(&mut self) {
        self.phase_nll = 0.0;
        self.phase_count = 0;
    }

    /// Training perplexity of the current phase so far.
    pub fn phase_ppl(&self) -> f64 {
        (self.phase_nll / self.phase_count.max(1) as f64).exp()
    }

    /// Segments in one pass over the training split.
    pub fn segments_per_epoch(&self) -> usize {
        self.segments.len()
    }

    /// Starts a fresh pass over the data (epoch boundary).
    pub fn rewind(&mut self) {
        self.cursor = 0;
        self.state = self.model.zero_state(self.experiment.training.batch_size);
    }

    fn step(&mut self, lr: f64) -> StepStats {
        if self.cursor >= self.segments.len() {
            self.rewind();
        }
        let seg = self.segments.get(self.cursor);
        self.cursor += 1;
        let t = &self.experiment.training;
        let loss_scale = match t.loss {
            LossScale::SumOverTime => 1.0 / seg.streams as f64,
            LossScale::MeanPerToken => 1.0 / seg.target_count().max(1) as f64,
        };
        let opts = StepOptions {
            lr,
            clip: t.clip,
            loss_scale,
            dropout: self.experiment.model.dropout,
        };
        let start = Instant::now();
        let stats = self
            .model
            .train_step(&seg, &mut self.state, &opts, &mut self.rng);
        let seconds = start.elapsed().as_secs_f64();
        self.seconds += seconds;
        self.since_checkpoint += seconds;
        match self.clock {
            Some(_) => self.steady_steps += 1,
            None => self.clock = Some(Instant::now()),
        }
        self.done_steps += 1;
        self.tokens += stats.targets;
        stats
    }

    /// Seconds to the last training step at this process's wall-clock rate:
    /// evaluations, quantization and checkpoints between steps count, in
    /// proportion, and pauses do not.
    fn eta(&self) -> Option<f64> {
        let clock = self.clock.filter(|_| self.steady_steps > 0)?;
        let seconds = (clock.elapsed().as_secs_f64() - self.paused_seconds).max(0.0);
        Some(
            seconds / self.steady_steps as f64
                * self.total_steps.saturating_sub(self.done_steps) as f64,
        )
    }

    /// Leaves `seconds` of pause out of the ETA's rate.
    pub fn paused_for(&mut self, seconds: f64) {
        if self.clock.is_some() {
            self.paused_seconds += seconds;
        }
    }

    /// Records every weight matrix as it is now.
    fn snapshot(&self, phase: Phase, out: &mut Emitter) {
        let matrices = self
            .model
            .params()
            .iter()
            .enumerate()
            .filter(|(_, info)| info.is_matrix)
            .map(|(i, info)| {
                WeightSnapshot::of(&info.name, info.rows, info.cols, &self.model.read_param(i))
            })
            .collect();
        out.emit(Event::Weights {
            steps_done: self.done_steps,
            phase,
            matrices,
        });
    }

    /// Runs the stretch, reporting progress; `after_step` runs after each
    /// step (mask updates, live quantization loss) with the number of steps
    /// done. Returns early, between two steps, when a pause or stop is
    /// requested or a periodic checkpoint is due.
    pub fn run(
        &mut self,
        stretch: Stretch,
        out: &mut Emitter,
        control: &Control,
        after_step: &mut impl FnMut(&mut LstmLm<f32>, &mut Warm, usize, &mut Emitter) -> AfterStep,
    ) -> Returned {
        let Stretch {
            phase,
            epoch,
            steps,
            from,
            lr,
        } = stretch;
        let (mut window_nll, mut window_count) = (0.0, 0usize);
        let mut window_start = Instant::now();
        let report_every = (steps / 100).max(1);
        if self.done_steps == 0 && from < steps {
            self.snapshot(phase, out); // the weights as initialised
        }
        for step in from..steps {
            if control.is_stopped() {
                return Returned::Stop { step };
            }
            if control.is_paused() {
                return Returned::Pause { step };
            }
            if step > from
                && self
                    .checkpoint_every
                    .is_some_and(|s| self.since_checkpoint >= s)
            {
                return Returned::Checkpoint { step };
            }
            let stats = self.step(lr);
            if !stats.nll_sum.is_finite() || !stats.grad_norm.is_finite() {
                return Returned::Diverged {
                    step: step + 1,
                    lr,
                    loss: stats.nll_sum / stats.targets.max(1) as f64,
                    grad_norm: stats.grad_norm,
                };
            }
            self.phase_nll += stats.nll_sum;
            self.phase_count += stats.targets;
            window_nll += stats.nll_sum;
            window_count += stats.targets;
            let last = step + 1 == steps;
            if last || (step + 1) % report_every == 0 || window_start.elapsed().as_secs_f64() > 1.0
            {
                let elapsed = window_start.elapsed().as_secs_f64().max(1e-9);
                out.emit(Event::TrainProgress {
                    phase,
                    epoch,
                    step: step + 1,
                    steps_in_epoch: steps,
                    train_ppl: (window_nll / window_count.max(1) as f64).exp(),
                    grad_norm: stats.grad_norm,
                    lr,
                    tokens_per_sec: window_count as f64 / elapsed,
                    eta_s: self.eta(),
                });
                (window_nll, window_count) = (0.0, 0);
                window_start = Instant::now();
            }
            if let Err(e) = after_step(&mut self.model, &mut self.warm, step + 1, out) {
                return Returned::Failed(e);
            }
            if self.done_steps.is_multiple_of(self.weights_every.max(1)) || last {
                self.snapshot(phase, out);
            }
        }
        Returned::Done
    }
}
