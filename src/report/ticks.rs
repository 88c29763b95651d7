//! Where a chart's axis ticks go: integers on integer axes, decades (and
//! 2 and 5 between them when the range is short) on log axes, round steps
//! otherwise. Positions are exact, so every label sits on its value.

/// Round steps (1, 2 or 5 × 10^k) over `[lo, hi]`, about `n` of them.
pub fn nice(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Integers over `[lo, hi]`, every k-th so that at most `max` remain.
pub fn integers(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let (a, b) = (lo.ceil() as i64, hi.floor() as i64);
    if b < a {
        return vec![];
    }
    let count = (b - a + 1) as usize;
    let every = count.div_ceil(max.max(1)).max(1) as i64;
    (a..=b)
        .filter(|i| (i - a) % every == 0)
        .map(|i| i as f64)
        .collect()
}

/// Ticks for a log axis, in log10 units over `[lo, hi]` (log10 of the
/// values): the decades, with 2× and 5× when fewer than three decades
/// show, and every integer multiple when less than one does.
pub fn log10(lo: f64, hi: f64) -> Vec<f64> {
    let decades = hi - lo;
    let multiples: &[f64] = if decades >= 3.0 {
        &[1.0]
    } else if decades >= 0.8 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    };
    let mut out = Vec::new();
    for k in lo.floor() as i64..=hi.ceil() as i64 {
        for m in multiples {
            let v = (m * 10f64.powi(k as i32)).log10();
            if v >= lo - 1e-9 && v <= hi + 1e-9 {
                out.push(v);
            }
        }
    }
    if out.len() < 2 && decades < 0.8 {
        return nice(lo, hi, 4); // a very short range: round steps of log10
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_integer_or_decades() {
        assert_eq!(
            nice(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(integers(0.9, 5.1, 10), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            integers(1.0, 40.0, 10),
            (0..10).map(|i| 1.0 + 4.0 * i as f64).collect::<Vec<_>>()
        );
        let decades: Vec<f64> = log10(-4.2, 0.1).iter().map(|v| 10f64.powf(*v)).collect();
        assert_eq!(decades.len(), 5);
        assert!((decades[0] - 1e-4).abs() < 1e-12 && (decades[4] - 1.0).abs() < 1e-12);
        let short: Vec<f64> = log10(2.0, 2.31)
            .iter()
            .map(|v| 10f64.powf(*v).round())
            .collect();
        assert_eq!(short, vec![100.0, 150.0, 200.0]);
    }
}
