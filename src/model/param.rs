//! A parameter the model owns as a plain buffer, not as a dfdx tensor.
//!
//! dfdx 0.13 lets nothing outside the crate borrow a tensor's storage, so
//! weights kept as tensors had to be copied out for the custom ops on every
//! step (50 MB a step at 2×650, and the 10k×650 decoder on every evaluation
//! segment). Kept here, the ops read them in place; a backward pass keeps a
//! shared handle to the values (no copy) and adds into the parameter's own
//! gradient slot instead of dfdx's gradient map.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Real;

pub(super) struct Param<E> {
    values: Arc<Vec<E>>,
    rows: usize,
    cols: usize,
    /// Empty until a backward pass reaches the parameter.
    grad: Arc<Mutex<Vec<E>>>,
}

impl<E: Real> Param<E> {
    /// A `rows × cols` parameter (a bias is `1 × n`) in storage order.
    pub fn new(values: Vec<E>, rows: usize, cols: usize) -> Self {
        assert_eq!(
            values.len(),
            rows * cols,
            "a parameter's values fill its shape"
        );
        Self {
            values: Arc::new(values),
            rows,
            cols,
            grad: Arc::default(),
        }
    }

    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn values(&self) -> &[E] {
        &self.values
    }

    /// The values for writing: in place, since no backward pass outlives the
    /// step that made it (were one still holding them, they would be copied
    /// first, as `Arc::make_mut` does, and the handle keep the old values).
    pub fn values_mut(&mut self) -> &mut [E] {
        Arc::make_mut(&mut self.values).as_mut_slice()
    }

    /// The same values and gradient slot, for a backward pass to keep.
    pub fn share(&self) -> Self {
        Self {
            values: Arc::clone(&self.values),
            rows: self.rows,
            cols: self.cols,
            grad: Arc::clone(&self.grad),
        }
    }

    /// Runs `f` on the gradient, zeroed first if nothing has reached it
    /// since it was last taken.
    pub fn add_grad<R>(&self, f: impl FnOnce(&mut [E]) -> R) -> R {
        let mut grad = self.grad_slot();
        if grad.is_empty() {
            grad.resize(self.rows * self.cols, E::default());
        }
        f(&mut grad)
    }

    /// The gradient accumulated since it was last taken (zeros if none),
    /// leaving the slot empty.
    pub fn take_grad(&self) -> Vec<E> {
        let grad = std::mem::take(&mut *self.grad_slot());
        if grad.is_empty() {
            vec![E::default(); self.rows * self.cols]
        } else {
            grad
        }
    }

    fn grad_slot(&self) -> MutexGuard<'_, Vec<E>> {
        // a panic mid-update leaves a gradient no step will use: the slot
        // itself stays usable
        self.grad.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
