//! The `msgpackr_row` fuzz target's seeds and past findings (`fuzz/`, run by `scripts/fuzz.sh`),
//! replayed through the same check on every `cargo test`.

#[path = "../../../fuzz/src/msgpackr_row.rs"]
mod check;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn msgpackr_row_fuzz_inputs_hold_their_invariants() {
  let regressions =
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/msgpackr_row");
  assert!(replay::replay("msgpackr_row", &regressions, check::check) > 0);
}
