use dfdx::dtypes::Dtype;
use dfdx::tensor::{Cpu, Storage};
use wide::f32x8;

/// The float types the model runs in: `f32` for work, `f64` for gradient checks.
pub trait Real: Dtype + Send + Sync + 'static {
    fn of(x: f64) -> Self;
    fn as_f64(self) -> f64;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    /// The gradient buffer dfdx hands out, as a slice (its concrete type is
    /// only visible for concrete float types).
    fn grad_slice(v: &mut <Cpu as Storage<Self>>::Vec) -> &mut [Self];

    /// `x ← eˣ` over a slice.
    fn exp_all(xs: &mut [Self]) {
        xs.iter_mut().for_each(|x| *x = x.exp());
    }
    /// `x ← e^(x − shift)` over a slice, returning the sum of the results
    /// added left to right: one pass for what is a subtraction pass,
    /// [`Real::exp_all`] and a sum, rounded exactly as those three would.
    fn exp_shifted_sum(xs: &mut [Self], shift: Self) -> Self {
        let mut sum = Self::default();
        for chunk in xs.chunks_mut(64) {
            chunk.iter_mut().for_each(|x| *x -= shift);
            Self::exp_all(chunk);
            sum = chunk.iter().fold(sum, |a, &x| a + x);
        }
        sum
    }
    /// `x ← 1 / (1 + e⁻ˣ)` over a slice.
    fn sigmoid_all(xs: &mut [Self]) {
        xs.iter_mut()
            .for_each(|x| *x = Self::ONE / (Self::ONE + (Self::default() - *x).exp()));
    }
    /// `x ← tanh x` over a slice.
    fn tanh_all(xs: &mut [Self]) {
        xs.iter_mut().for_each(|x| *x = x.tanh());
    }
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

    // Eight lanes at a time: libm's scalar expf/tanhf were an eighth of a
    // 2×200 step in perf (tanhf ~24 ns a call); `wide`'s exp is within 2e-7
    // relative.
    // Its exp returns 0, not ∞, above ~87, hence the clamps (softmax only
    // passes arguments ≤ 0).
    fn exp_all(xs: &mut [Self]) {
        map8(xs, |x| x.fast_min(f32x8::splat(87.0)).exp());
    }
    fn sigmoid_all(xs: &mut [Self]) {
        map8(xs, |x| {
            let x = x.fast_max(f32x8::splat(-80.0)).fast_min(f32x8::splat(80.0));
            f32x8::ONE / (f32x8::ONE + (-x).exp())
        });
    }
    fn tanh_all(xs: &mut [Self]) {
        // 1 − 2/(e²ˣ + 1), where |x| ≤ 15 already rounds to ±1
        map8(xs, |x| {
            let x = x.fast_max(f32x8::splat(-15.0)).fast_min(f32x8::splat(15.0));
            f32x8::ONE - f32x8::splat(2.0) / ((x + x).exp() + f32x8::ONE)
        });
    }
}

/// Applies `f` to `xs` eight at a time (the tail padded with zeros).
fn map8(xs: &mut [f32], f: impl Fn(f32x8) -> f32x8) {
    let mut chunks = xs.chunks_exact_mut(8);
    for c in &mut chunks {
        let y = f(f32x8::from(&*c));
        c.copy_from_slice(&y.to_array());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [0.0; 8];
        buf[..tail.len()].copy_from_slice(tail);
        let y = f(f32x8::from(buf)).to_array();
        tail.copy_from_slice(&y[..tail.len()]);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-lane maps against libm, over the range training meets and
    /// far beyond (saturation), including lengths with a tail.
    #[test]
    fn vector_maps_match_libm() {
        let xs: Vec<f32> = (0..4003).map(|i| (i as f32 - 2001.0) / 20.0).collect();
        let check = |map: fn(&mut [f32]), f: fn(f32) -> f32, tol: f32| {
            let mut ys = xs.clone();
            map(&mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                let want = f(x);
                let err = (y - want).abs() / want.abs().max(1.0);
                assert!(err <= tol, "x = {x}: {y} vs {want}");
            }
        };
        let mut big = [86.0f32, 87.0];
        f32::exp_all(&mut big);
        assert!(big.iter().all(|x| x.is_finite() && *x > 1e37), "{big:?}");
        check(f32::exp_all, |x| x.min(87.0).exp(), 4e-7);
        check(f32::sigmoid_all, |x| 1.0 / (1.0 + (-x).exp()), 4e-7);
        check(f32::tanh_all, f32::tanh, 4e-7);
    }
}
