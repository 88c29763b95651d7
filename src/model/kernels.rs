//! Which vector instructions the project's own kernels use: chosen once
//! per process from what the CPU has (AVX-512 F, else AVX2 + FMA, else the
//! portable code), or forced with `IQ_TUI_KERNELS=avx512|avx2|portable` to
//! compare them side by side. A forced set the CPU lacks falls back to the
//! best it has.

use std::sync::OnceLock;

pub const KERNELS_VAR: &str = "IQ_TUI_KERNELS";

/// A family of vector kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vector {
    Portable,
    Avx2,
    Avx512,
}

impl Vector {
    /// Whether this CPU has the instructions.
    pub fn available(self) -> bool {
        match self {
            Vector::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Vector::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Vector::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Vector::Portable => "portable",
            Vector::Avx2 => "AVX2",
            Vector::Avx512 => "AVX-512",
        }
    }
}

/// The kernels in use.
pub fn vector() -> Vector {
    static CHOSEN: OnceLock<Vector> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let best = [Vector::Avx512, Vector::Avx2]
            .into_iter()
            .find(|v| v.available())
            .unwrap_or(Vector::Portable);
        let asked = match std::env::var(KERNELS_VAR).as_deref() {
            Ok("avx512") => Vector::Avx512,
            Ok("avx2") => Vector::Avx2,
            Ok("portable") => Vector::Portable,
            _ => best,
        };
        if asked.available() {
            asked
        } else {
            best
        }
    })
}
