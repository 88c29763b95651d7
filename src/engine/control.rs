//! Commands into a running engine: pause, resume, stop. The engine checks
//! between steps, so a command takes effect within one training step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Shared between the engine thread and whoever drives it (UI, signals).
#[derive(Debug, Default)]
pub struct Control {
    paused: Mutex<bool>,
    wake: Condvar,
    stop: Arc<AtomicBool>,
}

impl Control {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn pause(&self) {
        *self.paused.lock().expect("control lock") = true;
    }

    pub fn resume(&self) {
        *self.paused.lock().expect("control lock") = false;
        self.wake.notify_all();
    }

    /// A cooperative cancel: the engine finishes its step, records, returns.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Does what a watcher's control file asks (`store::follow`).
    pub fn obey(&self, command: crate::store::follow::Command) {
        use crate::store::follow::Command;
        match command {
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Stop => self.stop(),
        }
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.lock().expect("control lock")
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The flag behind [`Control::stop`], for signal handlers.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Blocks while paused (returns early on stop).
    pub fn wait_while_paused(&self) {
        let mut paused = self.paused.lock().expect("control lock");
        while *paused && !self.is_stopped() {
            // Timed wait: a stop raised by a signal handler cannot notify.
            paused = self
                .wake
                .wait_timeout(paused, Duration::from_millis(100))
                .expect("control lock")
                .0;
        }
    }
}
