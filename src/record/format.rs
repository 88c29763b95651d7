//! How numbers read, wherever a run is shown: the dashboard, the headless
//! printer and the report format sizes and durations the same way.

/// `2.10 GB`, `1.20 MB`, `830.0 kB`, `512 B` (decimal units).
pub fn bytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} MB", bytes as f64 / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.2} GB", bytes as f64 / 1e9),
        _ => format!("{:.2} TB", bytes as f64 / 1e12),
    }
}

/// `1h02m`, `3m05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_durations_read_in_decimal_units_and_clock_time() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(39_520), "39.5 kB");
        assert_eq!(super::bytes(1_390_000), "1.39 MB");
        assert_eq!(super::bytes(24_372_470_000), "24.37 GB");
        assert_eq!(super::duration(12.4), "12s");
        assert_eq!(super::duration(185.0), "3m05s");
        assert_eq!(super::duration(3720.0), "1h02m");
    }
}
