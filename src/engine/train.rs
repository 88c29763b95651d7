//! The training loop shared by pre-training and every retraining phase:
//! walks the training split segment by segment (wrapping, with a fresh state,
//! at the end of the split), obeys [`Control`] between steps, and reports.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;

use super::{Control, Emitter, Event, Phase};
use crate::data::Segments;
use crate::experiment::{Experiment, LossScale};
use crate::model::{LstmLm, LstmState, StepOptions, StepStats};

/// The run was stopped by request.
#[derive(Debug)]
pub struct Stopped(pub String);

pub struct Trainer<'a> {
    pub model: LstmLm<f32>,
    experiment: &'a Experiment,
    segments: Segments<'a>,
    cursor: usize,
    state: LstmState<f32>,
    rng: ChaCha8Rng,
    /// Steps in the whole schedule, for the ETA.
    pub total_steps: usize,
    pub done_steps: usize,
    steady_seconds: f64,
    pub tokens: usize,
    pub seconds: f64,
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
            experiment,
            segments: Segments::new(train, t.batch_size, t.bptt),
            cursor: 0,
            state,
            rng,
            total_steps: 0,
            done_steps: 0,
            steady_seconds: 0.0,
            tokens: 0,
            seconds: 0.0,
        }
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
        self.done_steps += 1;
        if self.done_steps > 1 {
            self.steady_seconds += seconds; // the first step warms caches and allocators
        }
        self.tokens += stats.targets;
        stats
    }

    fn eta(&self) -> Option<f64> {
        (self.done_steps > 1).then(|| {
            self.steady_seconds / (self.done_steps - 1) as f64
                * self.total_steps.saturating_sub(self.done_steps) as f64
        })
    }

    /// Runs `steps` steps at `lr`, reporting progress; `after_step` runs after
    /// each (mask updates, live quantization loss). Returns the phase's
    /// training perplexity.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        steps: usize,
        lr: f64,
        phase: Phase,
        epoch: usize,
        out: &mut Emitter,
        control: &Control,
        mut after_step: impl FnMut(&mut LstmLm<f32>, usize, &mut Emitter),
    ) -> Result<f64, Stopped> {
        let (mut nll, mut count) = (0.0, 0usize);
        let (mut window_nll, mut window_count) = (0.0, 0usize);
        let mut window_start = Instant::now();
        let report_every = (steps / 100).max(1);
        for step in 0..steps {
            if control.is_paused() {
                out.emit(Event::Paused);
                control.wait_while_paused();
                if !control.is_stopped() {
                    out.emit(Event::Resumed);
                }
            }
            if control.is_stopped() {
                return Err(Stopped(format!(
                    "stopped by request during {phase:?} at step {step} of {steps}"
                )));
            }
            let stats = self.step(lr);
            nll += stats.nll_sum;
            count += stats.targets;
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
            after_step(&mut self.model, step + 1, out);
        }
        Ok((nll / count.max(1) as f64).exp())
    }
}
