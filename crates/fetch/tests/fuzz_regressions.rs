//! The `tar_extract` fuzz target's seeds and past findings (`fuzz/`, run by `scripts/fuzz.sh`),
//! replayed through the same check on every `cargo test`.

#[path = "../../../fuzz/src/tar_extract.rs"]
mod check;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn tar_extract_fuzz_inputs_hold_their_invariants() {
  let regressions =
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/tar_extract");
  assert!(replay::replay("tar_extract", &regressions, check::check) > 0);
}

/// The seeds reach the interesting paths: a normal package unpacks whole, and a hostile one
/// keeps only regular files, each inside the package.
#[test]
fn tar_extract_seeds_unpack_as_expected() {
  let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/tar_extract");
  let tmp = tempfile::tempdir().unwrap();
  let writer = pacquet_store::BlobWriter::new(pacquet_store::StoreDir::new(tmp.path()));
  let unpack = |name: &str| {
    let bytes = std::fs::read(seeds.join(name)).unwrap();
    let package =
      pacquet_fetch::extract_tarball(name, &bytes, &writer, Default::default(), None, None).unwrap();
    package.files.keys().cloned().collect::<Vec<_>>()
  };
  assert_eq!(unpack("package.tgz"), ["package.json", "index.js", "cli.js", "lib/a.js"]);
  // (no package.json: pnpm 11's placeholder is added)
  assert_eq!(
    unpack("hostile.tar"),
    ["escape.js", "abs/path.js", "win.js", "b.js", "hard", "dup.js", "package.json"]
  );
}

/// Found by the fuzzer: a pax path with NUL bytes was kept, and only importing it into
/// node_modules would have failed.
#[test]
fn a_nul_in_an_entry_path_is_a_corrupt_tarball() {
  let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/tar_extract");
  let bytes = std::fs::read(dir.join("nul-in-pax-path.tar")).unwrap();
  let tmp = tempfile::tempdir().unwrap();
  let writer = pacquet_store::BlobWriter::new(pacquet_store::StoreDir::new(tmp.path()));
  let Err(err) = pacquet_fetch::extract_tarball("x", &bytes, &writer, Default::default(), None, None) else {
    panic!("extracted a path with a NUL byte");
  };
  assert_eq!(err.error_code(), "ERR_PNPM_TARBALL_EXTRACT");
}
