//! Replays a fuzz target's seed corpus and its recorded crashes through its check, on stable
//! Rust: this is how inputs that once broke a target stay regression tests. Included by the
//! crates' `tests/fuzz_regressions.rs` (`#[path]`), not by the fuzz crate.

use std::path::{Path, PathBuf};

/// Runs `check` on every file of `fuzz/seeds/<target>` and of `regressions` (a crate's
/// `tests/fuzz-regressions/<target>`, absent until a crash was found); returns how many ran.
pub fn replay(target: &str, regressions: &Path, check: fn(&[u8])) -> usize {
  let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
  let mut inputs = files(&seeds);
  assert!(!inputs.is_empty(), "no seeds in {}", seeds.display());
  inputs.extend(files(regressions));
  for input in &inputs {
    let bytes = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    eprintln!("{}", input.display());
    check(&bytes);
  }
  inputs.len()
}

fn files(dir: &Path) -> Vec<PathBuf> {
  let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
  let mut files: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).collect();
  files.sort();
  files
}
