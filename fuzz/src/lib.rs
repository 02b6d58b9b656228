//! The checks behind the fuzz targets. Each `check` takes raw fuzzer bytes, runs them through
//! the engine and panics on any broken invariant. The crates' regression tests include these
//! same files (`#[path]`) to replay the seed corpora and past crashes on stable Rust.

pub mod lockfile;
pub mod msgpackr_row;
pub mod tar_extract;
