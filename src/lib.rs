//! iq-tui: retraining-based iterative weight quantization (Lee & Kim,
//! arXiv 1805.11233) for LSTM language models, explored from a terminal.
//!
//! Rooms, and what each may touch, are described in ARCHITECTURE.md.

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod compress;
pub mod data;
pub mod engine;
pub mod experiment;
pub mod headless;
pub mod model;
pub mod packed;
pub mod quantize_file;
pub mod record;
pub mod report;
pub mod slurm;
pub mod store;
pub mod sweep;
pub mod ui;
