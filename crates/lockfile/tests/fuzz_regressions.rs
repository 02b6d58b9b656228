//! The `lockfile` fuzz target's seeds and past findings (`fuzz/`, run by `scripts/fuzz.sh`),
//! replayed through the same check on every `cargo test`.

#[path = "../../../fuzz/src/lockfile.rs"]
mod check;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn lockfile_fuzz_inputs_hold_their_invariants() {
  let regressions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/lockfile");
  assert!(replay::replay("lockfile", &regressions, check::check) > 0);
}

/// Seeds that pass validation are what lets the fuzzer reach the planning checks.
#[test]
fn lockfile_seeds_are_valid_lockfiles() {
  let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/lockfile");
  for name in ["small.yaml", "peers-aliases.yaml"] {
    let path = seeds.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    if let Err(err) = pacquet_lockfile::parse_lockfile(&text, &path) {
      panic!("{name}: {err}");
    }
  }
  let object = serde_json::from_slice(&std::fs::read(seeds.join("object.json")).unwrap()).unwrap();
  pacquet_lockfile::lockfile_from_value(object).unwrap();
}
