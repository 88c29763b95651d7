use dfdx::dtypes::Dtype;
use dfdx::tensor::{Cpu, Storage};

/// The float types the model runs in: `f32` for work, `f64` for gradient checks.
pub trait Real: Dtype + Send + Sync + 'static {
    fn of(x: f64) -> Self;
    fn as_f64(self) -> f64;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    /// The gradient buffer dfdx hands out, as a slice (its concrete type is
    /// only visible for concrete float types).
    fn grad_slice(v: &mut <Cpu as Storage<Self>>::Vec) -> &mut [Self];
    /// Moves a gradient buffer out of dfdx's map (leaving it empty).
    fn take_grad(v: &mut <Cpu as Storage<Self>>::Vec) -> Vec<Self>;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    fn grad_slice(v: &mut <Cpu as Storage<Self>>::Vec) -> &mut [Self] {
        v
    }
    fn take_grad(v: &mut <Cpu as Storage<Self>>::Vec) -> Vec<Self> {
        std::mem::take(v)
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn grad_slice(v: &mut <Cpu as Storage<Self>>::Vec) -> &mut [Self] {
        v
    }
    fn take_grad(v: &mut <Cpu as Storage<Self>>::Vec) -> Vec<Self> {
        std::mem::take(v)
    }
}
