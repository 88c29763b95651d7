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
    /// `x ← e^(x − shift)` over a slice, returning the sum of the results:
    /// one pass, 64 entries at a time, for what is a subtraction pass,
    /// [`Real::exp_all`] and a sum. The sum runs in sixteen running sums
    /// (entry i into sum i mod 16, the sixteen then added in order), so the
    /// adds do not wait on each other; a softmax row of 10k entries was one
    /// chain of 10k dependent adds. The order is fixed, the same everywhere.
    fn exp_shifted_sum(xs: &mut [Self], shift: Self) -> Self {
        let mut lanes = [Self::default(); 16];
        for chunk in xs.chunks_mut(64) {
            chunk.iter_mut().for_each(|x| *x -= shift);
            Self::exp_all(chunk);
            let mut groups = chunk.chunks_exact(16);
            for g in &mut groups {
                for (s, &x) in lanes.iter_mut().zip(g) {
                    *s += x;
                }
            }
            for (s, &x) in lanes.iter_mut().zip(groups.remainder()) {
                *s += x;
            }
        }
        lanes.iter().fold(Self::default(), |a, &x| a + x)
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
    // Where the CPU has AVX-512, sixteen lanes at a time with the same
    // operations lane for lane (`avx512` below).
    fn exp_all(xs: &mut [Self]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::in_use() {
            return avx512::exp_all(xs);
        }
        map8(xs, exp8);
    }
    fn sigmoid_all(xs: &mut [Self]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::in_use() {
            return avx512::sigmoid_all(xs);
        }
        map8(xs, sigmoid8);
    }
    fn tanh_all(xs: &mut [Self]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::in_use() {
            return avx512::tanh_all(xs);
        }
        map8(xs, tanh8);
    }
}

fn exp8(x: f32x8) -> f32x8 {
    x.fast_min(f32x8::splat(87.0)).exp()
}

fn sigmoid8(x: f32x8) -> f32x8 {
    let x = x.fast_max(f32x8::splat(-80.0)).fast_min(f32x8::splat(80.0));
    f32x8::ONE / (f32x8::ONE + (-x).exp())
}

/// 1 − 2/(e²ˣ + 1), where |x| ≤ 15 already rounds to ±1.
fn tanh8(x: f32x8) -> f32x8 {
    let x = x.fast_max(f32x8::splat(-15.0)).fast_min(f32x8::splat(15.0));
    f32x8::ONE - f32x8::splat(2.0) / ((x + x).exp() + f32x8::ONE)
}

/// The eight-lane maps on sixteen lanes. `wide` picks its instructions when
/// it is compiled (SSE2 in a portable build, whatever the CPU), so its
/// `f32x8` runs on two 4-lane halves; these repeat its exp, sigmoid and
/// tanh operation for operation (no fused multiply-adds, its rounding by
/// integer conversion), so they give the same bits on 16 lanes a register.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::model::kernels::{self, Vector};

    pub fn in_use() -> bool {
        kernels::vector() == Vector::Avx512
    }

    pub fn exp_all(xs: &mut [f32]) {
        // SAFETY: callers check `in_use`: the CPU has AVX-512 F.
        unsafe { exp16(xs) }
    }

    pub fn sigmoid_all(xs: &mut [f32]) {
        // SAFETY: as `exp_all`.
        unsafe { sigmoid16(xs) }
    }

    pub fn tanh_all(xs: &mut [f32]) {
        // SAFETY: as `exp_all`.
        unsafe { tanh16(xs) }
    }

    // The closures are written inside the target-feature functions, whose
    // features they inherit, so the intrinsics inline into them.
    #[target_feature(enable = "avx512f")]
    fn exp16(xs: &mut [f32]) {
        map16(xs, |x| exp(_mm512_min_ps(x, _mm512_set1_ps(87.0))))
    }

    #[target_feature(enable = "avx512f")]
    fn sigmoid16(xs: &mut [f32]) {
        map16(xs, |x| {
            let x = _mm512_max_ps(x, _mm512_set1_ps(-80.0));
            let x = _mm512_min_ps(x, _mm512_set1_ps(80.0));
            let one = _mm512_set1_ps(1.0);
            let minus_x = _mm512_sub_ps(_mm512_setzero_ps(), x);
            _mm512_div_ps(one, _mm512_add_ps(one, exp(minus_x)))
        })
    }

    #[target_feature(enable = "avx512f")]
    fn tanh16(xs: &mut [f32]) {
        map16(xs, |x| {
            let x = _mm512_max_ps(x, _mm512_set1_ps(-15.0));
            let x = _mm512_min_ps(x, _mm512_set1_ps(15.0));
            let one = _mm512_set1_ps(1.0);
            let e = _mm512_add_ps(exp(_mm512_add_ps(x, x)), one);
            _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0), e))
        })
    }

    /// Applies `f` to `xs` sixteen at a time (the tail padded with zeros).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn map16(xs: &mut [f32], f: impl Fn(__m512) -> __m512) {
        let mut chunks = xs.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: c holds 16 floats.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), f(_mm512_loadu_ps(c.as_ptr()))) };
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let mut buf = [0.0f32; 16];
            buf[..tail.len()].copy_from_slice(tail);
            // SAFETY: as above, on the 16 floats of `buf`.
            unsafe { _mm512_storeu_ps(buf.as_mut_ptr(), f(_mm512_loadu_ps(buf.as_ptr()))) };
            tail.copy_from_slice(&buf[..tail.len()]);
        }
    }

    /// `wide`'s `f32x8::exp` (Cephes' polynomial after a split by ln 2).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp(x: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        let (mul, add, sub) = (_mm512_mul_ps, _mm512_add_ps, _mm512_sub_ps);
        // a.mul_add(m, b) and a.mul_neg_add(m, b), unfused as in `wide`
        let mul_add = |a, m, b| add(mul(a, m), b);
        let mul_neg_add = |a, m, b| sub(b, mul(a, m));
        let r = round(mul(x, c(std::f32::consts::LOG2_E)));
        let y = mul_neg_add(r, c(0.693_359_4), x);
        let y = mul_neg_add(r, c(-2.121_944_4e-4), y);
        let (p0, p1, p2) = (c(1.0 / 2.0), c(1.0 / 6.0), c(1. / 24.));
        let (p3, p4, p5) = (c(1. / 120.), c(1. / 720.), c(1. / 5040.));
        let y2 = mul(y, y);
        let y4 = mul(y2, y2);
        let z = mul_add(
            mul_add(p3, y, p2),
            y2,
            mul_add(mul_add(p5, y, p4), y4, mul_add(p1, y, p0)),
        );
        let z = mul_add(z, mul(y, y), y);
        // 2^r: r + (127 + 2²³), its low bits shifted into the exponent
        let biased = add(r, add(c(127.0), c(8388608.0)));
        let pow2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(biased)));
        let z = mul(add(z, c(1.0)), pow2);
        let abs = _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(x),
            _mm512_set1_epi32(i32::MAX),
        ));
        let in_range = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(abs, c(87.3));
        _mm512_maskz_mov_ps(in_range, z)
    }

    /// Round to nearest as `wide` does without SSE4.1: through an i32,
    /// keeping x where the conversion overflows.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn round(x: __m512) -> __m512 {
        let i = _mm512_cvtps_epi32(x);
        let overflow = _mm512_cmpeq_epi32_mask(i, _mm512_set1_epi32(i32::MIN));
        _mm512_mask_mov_ps(_mm512_cvtepi32_ps(i), overflow, x)
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

    /// The shifted exponentials and their sum against f64, on lengths with
    /// and without a tail.
    #[test]
    fn shifted_sums_match_f64() {
        for n in [1usize, 17, 64, 100, 10_000] {
            let xs: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
                .collect();
            let shift = 3.0f32;
            let mut ys = xs.clone();
            let sum = f32::exp_shifted_sum(&mut ys, shift);
            let want: f64 = xs.iter().map(|&x| ((x - shift) as f64).exp()).sum();
            assert!(
                ((sum as f64) - want).abs() <= 1e-6 * want,
                "n = {n}: {sum} vs {want}"
            );
            for (&x, &y) in xs.iter().zip(&ys) {
                let e = ((x - shift) as f64).exp();
                assert!(((y as f64) - e).abs() <= 4e-7 * e, "n = {n}, x = {x}");
            }
        }
    }

    /// The sixteen-lane maps give the eight-lane maps' bits, on the same
    /// range and beyond (NaN, ±∞, overflow), with a tail.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sixteen_lanes_give_the_eight_lane_bits() {
        if !avx512::in_use() {
            eprintln!("skipped: the AVX-512 activations are not in use on this CPU");
            return;
        }
        let mut xs: Vec<f32> = (0..4005).map(|i| (i as f32 - 2001.0) / 20.0).collect();
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            1e30,
            -1e30,
        ]);
        type Map = fn(&mut [f32]);
        type Lanes = fn(f32x8) -> f32x8;
        let pairs: [(Map, Lanes); 3] = [
            (avx512::exp_all, exp8),
            (avx512::sigmoid_all, sigmoid8),
            (avx512::tanh_all, tanh8),
        ];
        for (k, (sixteen, eight)) in pairs.into_iter().enumerate() {
            let (mut a, mut b) = (xs.clone(), xs.clone());
            sixteen(&mut a);
            map8(&mut b, eight);
            for ((x, a), b) in xs.iter().zip(&a).zip(&b) {
                assert_eq!(a.to_bits(), b.to_bits(), "map {k} at x = {x}: {a} vs {b}");
            }
        }
    }
}
