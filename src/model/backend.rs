//! Which library computes the GEMM blocks: chosen by measuring, not by
//! what happens to be installed.
//!
//! The candidates are the built-in `gemm` crate, OpenBLAS when
//! `libopenblas.so.0` loads, and any other CBLAS library named by
//! `IQ_TUI_CBLAS` (MKL's `libmkl_rt.so`, BLIS). A library that loads is not
//! therefore fast: Debian's OpenBLAS 0.3.21 runs its SSE3 (Prescott)
//! kernels on CPUs newer than it knows, at under half the built-in rate. So
//! OpenBLAS is told the core type the CPU's features allow before it loads
//! (unless `OPENBLAS_CORETYPE` is set), and on first use on a machine every
//! candidate is timed on a training step's shapes (`measure.rs`); the
//! fastest is kept in the cache directory per CPU, library and thread
//! count, so every later process, and every unit of a sweep, computes with
//! the same arithmetic. `IQ_TUI_GEMM` forces one.

mod measure;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use measure::{Candidate, Choice};

/// The environment variable that picks the backend: `builtin`, `openblas`,
/// `cblas`, or `auto` (the default): the fastest, measured.
pub const BACKEND_VAR: &str = "IQ_TUI_GEMM";
/// The CBLAS library to consider beside OpenBLAS: a path or a name `dlopen`
/// finds.
pub const CBLAS_VAR: &str = "IQ_TUI_CBLAS";

/// Which library computes the GEMM blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The `gemm` crate, compiled in.
    Builtin,
    /// A system OpenBLAS, loaded at run time and run on one thread per block.
    OpenBlas,
    /// The CBLAS library `IQ_TUI_CBLAS` names, loaded at run time.
    Cblas,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Builtin => "builtin (gemm crate)",
            Backend::OpenBlas => "OpenBLAS",
            Backend::Cblas => "CBLAS (IQ_TUI_CBLAS)",
        })
    }
}

/// The backend chosen from [`BACKEND_VAR`], measured when it says `auto`;
/// an error names what was asked for and why it cannot be had.
pub fn select_backend() -> Result<Backend, String> {
    choice().map(|c| c.backend)
}

/// Checks what [`BACKEND_VAR`] asks for without measuring anything: a
/// name it does not know, or a library it forces that does not load, is an
/// error before any work starts.
pub fn check_request() -> Result<(), String> {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("") | Ok("auto") | Ok("builtin") => Ok(()),
        Ok("openblas" | "cblas") => choice().map(|_| ()),
        Ok(other) => Err(format!(
            "{BACKEND_VAR}={other:?} is not a GEMM backend (allowed: builtin, openblas, cblas, auto)"
        )),
    }
}

/// The choice and the reason for it, made once per process (measured, for
/// `auto`, the first time a product needs it).
pub fn choice() -> Result<&'static Choice, String> {
    static MADE: OnceLock<Result<Choice, String>> = OnceLock::new();
    MADE.get_or_init(choose).as_ref().map_err(Clone::clone)
}

fn choose() -> Result<Choice, String> {
    let forced = |backend: Backend, why: String| Choice {
        backend,
        why,
        candidates: Vec::new(),
    };
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(measure::fastest(&available())),
        Ok("builtin") => Ok(forced(Backend::Builtin, format!("{BACKEND_VAR}=builtin"))),
        Ok("openblas") => openblas()
            .map(|l| forced(Backend::OpenBlas, format!("{BACKEND_VAR}=openblas ({})", l.describe())))
            .map_err(|e| format!("{BACKEND_VAR}=openblas, but OpenBLAS cannot be loaded: {e}")),
        Ok("cblas") => other_cblas()
            .map(|l| forced(Backend::Cblas, format!("{BACKEND_VAR}=cblas ({})", l.describe())))
            .map_err(|e| format!("{BACKEND_VAR}=cblas, but {e}")),
        Ok(other) => Err(format!(
            "{BACKEND_VAR}={other:?} is not a GEMM backend (allowed: builtin, openblas, cblas, auto)"
        )),
    }
}

/// Every backend that can run here, built-in first.
pub fn available() -> Vec<Backend> {
    let mut out = vec![Backend::Builtin];
    if openblas().is_ok() {
        out.push(Backend::OpenBlas);
    }
    if std::env::var_os(CBLAS_VAR).is_some() && other_cblas().is_ok() {
        out.push(Backend::Cblas);
    }
    out
}

/// The backend every product uses, fixed at first use ([`select_backend`],
/// falling back to the built-in one; the CLI reports a bad choice first).
pub fn backend() -> Backend {
    static CHOSEN: OnceLock<Backend> = OnceLock::new();
    *CHOSEN.get_or_init(|| select_backend().unwrap_or(Backend::Builtin))
}

/// What a run's rounding depends on beyond its experiment and seed. Every
/// product adds in its backend's order, so two backends give different
/// numbers (and one epoch of SGD carries such differences into the
/// trajectory); the thread count sets the block split. A run records it,
/// and a resume says when it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Arithmetic {
    pub gemm: Backend,
    pub threads: usize,
}

impl Arithmetic {
    pub fn current() -> Self {
        Self {
            gemm: backend(),
            threads: rayon::current_num_threads(),
        }
    }
}

impl std::fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.threads == 1 { "" } else { "s" };
        write!(f, "GEMM {}, {} thread{plural}", self.gemm, self.threads)
    }
}

pub(super) type CblasGemm<E> = unsafe extern "C" fn(
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    E,
    *const E,
    i32,
    *const E,
    i32,
    E,
    *mut E,
    i32,
);

/// A loaded CBLAS library: the two GEMM entry points the products need.
pub(crate) struct Cblas {
    pub(super) sgemm: CblasGemm<f32>,
    pub(super) dgemm: CblasGemm<f64>,
    /// Where it was loaded from (the name given to `dlopen`).
    pub name: String,
    /// The file it is, for the choice's cache key.
    pub file: Option<PathBuf>,
    /// OpenBLAS's own name of the kernels it runs (`Haswell`, `Prescott`).
    pub core: Option<String>,
    // Keeps the library mapped for as long as the function pointers live.
    _library: libloading::Library,
}

impl Cblas {
    pub fn describe(&self) -> String {
        match &self.core {
            Some(core) => format!("{}, {core} kernels", self.name),
            None => self.name.clone(),
        }
    }
}

/// OpenBLAS, loaded once, set to one thread per call (this module's caller
/// splits the work itself, so results stay independent of its threading).
pub(super) fn openblas() -> Result<&'static Cblas, String> {
    static LOADED: OnceLock<Result<Cblas, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            hint_openblas_core();
            let mut last = String::new();
            for name in ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"] {
                match load(name) {
                    Ok(l) => return Ok(l),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The library `IQ_TUI_CBLAS` names, loaded once.
pub(super) fn other_cblas() -> Result<&'static Cblas, String> {
    static LOADED: OnceLock<Result<Cblas, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let name =
                std::env::var(CBLAS_VAR).map_err(|_| format!("{CBLAS_VAR} names no library"))?;
            // MKL and OpenMP builds read these when they start; one thread
            // per call, as for OpenBLAS.
            for var in ["MKL_NUM_THREADS", "OMP_NUM_THREADS", "BLIS_NUM_THREADS"] {
                if std::env::var_os(var).is_none() {
                    // Before the library's threads exist, and before this
                    // process starts its own pool.
                    std::env::set_var(var, "1");
                }
            }
            load(&name).map_err(|e| format!("{CBLAS_VAR}={name} cannot be loaded: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn load(name: &str) -> Result<Cblas, String> {
    // SAFETY: a BLAS library's initialisers only read the environment and
    // start its thread pool.
    let library = unsafe { libloading::Library::new(name) }.map_err(|e| e.to_string())?;
    // SAFETY: the CBLAS signatures, as in cblas.h; the optional threading
    // and core-name functions as OpenBLAS, MKL and BLIS declare them.
    unsafe {
        let sgemm = *library
            .get::<CblasGemm<f32>>(b"cblas_sgemm\0")
            .map_err(|e| format!("{name}: {e}"))?;
        let dgemm = *library
            .get::<CblasGemm<f64>>(b"cblas_dgemm\0")
            .map_err(|e| format!("{name}: {e}"))?;
        if let Ok(set) = library.get::<unsafe extern "C" fn(i32)>(b"openblas_set_num_threads\0") {
            set(1);
        }
        if let Ok(set) = library.get::<unsafe extern "C" fn(i32)>(b"MKL_Set_Num_Threads\0") {
            set(1);
        }
        if let Ok(set) = library.get::<unsafe extern "C" fn(i64)>(b"bli_thread_set_num_threads\0") {
            set(1);
        }
        let core = library
            .get::<unsafe extern "C" fn() -> *const std::ffi::c_char>(b"openblas_get_corename\0")
            .ok()
            .map(|f| f())
            .filter(|p| !p.is_null())
            .map(|p| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        Ok(Cblas {
            sgemm,
            dgemm,
            name: name.to_string(),
            file: library_file(sgemm as usize),
            core,
            _library: library,
        })
    }
}

/// The file the library holding `symbol` was mapped from, read from
/// `/proc/self/maps` (the mapping whose address range holds it).
fn library_file(symbol: usize) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (lo, hi) = f.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        let path = f.nth(4)?;
        (lo <= symbol && symbol < hi && path.starts_with('/')).then(|| PathBuf::from(path))
    })
}

/// OpenBLAS's name for the kernels this CPU's features allow, which it is
/// told before it loads: a DYNAMIC_ARCH build older than the CPU falls back
/// to generic kernels otherwise.
pub fn openblas_core_for(vendor: &str, has: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"]
        .iter()
        .all(|f| has(f));
    let intel = vendor == "GenuineIntel";
    let amd = vendor == "AuthenticAMD" || vendor == "HygonGenuine";
    if avx512 && has("avx512_bf16") {
        Some("COOPERLAKE")
    } else if avx512 {
        Some("SKYLAKEX")
    } else if has("avx2") && has("fma") && amd {
        Some("ZEN")
    } else if has("avx2") && has("fma") && intel {
        Some("HASWELL")
    } else {
        None
    }
}

/// The CPU as `/proc/cpuinfo` names it.
pub struct Cpu {
    pub vendor: String,
    pub model: Option<String>,
    pub flags: Vec<String>,
}

/// The first CPU's vendor, model name and feature flags.
pub fn cpu() -> Cpu {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    Cpu {
        vendor: field("vendor_id").unwrap_or_default(),
        model: field("model name"),
        flags: field("flags")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect(),
    }
}

fn hint_openblas_core() {
    if std::env::var_os("OPENBLAS_CORETYPE").is_some() {
        return;
    }
    let Cpu { vendor, flags, .. } = cpu();
    if let Some(core) = openblas_core_for(&vendor, &|f| flags.iter().any(|x| x == f)) {
        // Before the library is loaded (its initialiser reads it) and
        // before any thread that could read the environment runs.
        std::env::set_var("OPENBLAS_CORETYPE", core);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_features_map_to_openblas_core_names() {
        fn cpu(flags: &'static [&'static str]) -> impl Fn(&str) -> bool {
            move |f: &str| flags.contains(&f)
        }
        const SKX: [&str; 6] = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"];
        const CPL: [&str; 7] = [
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512_bf16",
        ];
        assert_eq!(
            openblas_core_for("GenuineIntel", &cpu(&CPL)),
            Some("COOPERLAKE")
        );
        assert_eq!(
            openblas_core_for("GenuineIntel", &cpu(&SKX)),
            Some("SKYLAKEX")
        );
        assert_eq!(
            openblas_core_for("AuthenticAMD", &cpu(&SKX)),
            Some("SKYLAKEX")
        );
        assert_eq!(
            openblas_core_for("GenuineIntel", &cpu(&["avx2", "fma"])),
            Some("HASWELL")
        );
        assert_eq!(
            openblas_core_for("AuthenticAMD", &cpu(&["avx2", "fma"])),
            Some("ZEN")
        );
        assert_eq!(openblas_core_for("GenuineIntel", &cpu(&["sse3"])), None);
        // AVX-512 F alone (Knights Landing) is not SkylakeX.
        assert_eq!(
            openblas_core_for("GenuineIntel", &cpu(&["avx2", "fma", "avx512f"])),
            Some("HASWELL")
        );
    }
}
