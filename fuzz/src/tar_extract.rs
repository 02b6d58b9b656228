//! Tarball bytes → `extract_tarball` into a store in a fresh temporary directory.

use std::path::Path;

use pacquet_fetch::{extract_tarball, ExtractLimits};
use pacquet_store::{sha512_hex, BlobWriter, StoreDir};

/// Small enough that a decompression bomb fails fast instead of timing the fuzzer out.
const LIMIT: u64 = 1 << 20;

pub fn check(data: &[u8]) {
  let limits =
    ExtractLimits { max_unpacked_bytes: LIMIT, ratio_floor_bytes: LIMIT, ..ExtractLimits::default() };
  let whole = check_with(data, limits);
  // The streaming path (taken by tarballs too large to inflate whole; files beyond the
  // hold-back are streamed into the store too) must agree with the whole-buffer one on every
  // input: the same files, or a failure with the same code.
  let streamed =
    check_with(data, ExtractLimits { whole_inflate_bytes: 0, deferred_write_bytes: 64, ..limits });
  assert_eq!(whole, streamed, "inflated whole and streamed disagree");
}

/// Extracts with `limits` into a fresh store, checks the invariants, and returns what came
/// out: (path, digest, mode) per file, or the error code.
fn check_with(data: &[u8], limits: ExtractLimits) -> Result<Vec<(String, String, u32)>, String> {
  let tmp = tempfile::tempdir().expect("temporary directory");
  let store = StoreDir::new(tmp.path().join("store"));
  let writer = BlobWriter::new(store.clone());
  let outcome = match extract_tarball("fuzz@1.0.0", data, &writer, limits, None, None) {
    Ok(package) => {
      assert!(package.unpacked_bytes <= LIMIT);
      for (path, info) in &package.files {
        // The link step joins these to the package directory: each must stay inside it.
        assert!(
          !path.is_empty()
            && !path.starts_with('/')
            && !path.contains(['\\', '\0'])
            && path.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
          "unsafe in-package path {path:?}"
        );
        let blob = store.blob_path(&info.digest, info.is_executable());
        let bytes = std::fs::read(&blob).unwrap_or_else(|e| panic!("blob of {path:?} missing: {e}"));
        assert_eq!(bytes.len() as u64, info.size, "size of {path:?}");
        assert_eq!(sha512_hex(&bytes), info.digest, "digest of {path:?}");
      }
      Ok(package.files.into_iter().map(|(path, info)| (path, info.digest, info.mode)).collect())
    }
    Err(err) => {
      let code = err.error_code();
      assert!(code.starts_with("ERR_PNPM_"), "no error code for {err}");
      Err(code)
    }
  };
  // Nothing but content-named blobs may appear, whatever the tarball holds.
  assert_only_blobs(tmp.path(), &store);
  outcome
}

fn assert_only_blobs(dir: &Path, store: &StoreDir) {
  let files = store.root().join("files");
  let mut stack = vec![dir.to_path_buf()];
  while let Some(dir) = stack.pop() {
    for entry in std::fs::read_dir(&dir).expect("read_dir") {
      let path = entry.expect("dir entry").path();
      let meta = std::fs::symlink_metadata(&path).expect("metadata");
      if meta.is_dir() {
        let allowed = [tmp_parent(store), store.root(), files.as_path()].contains(&path.as_path())
          || path.parent() == Some(files.as_path());
        assert!(allowed, "unexpected directory {path:?}");
        stack.push(path);
        continue;
      }
      assert!(meta.is_file(), "not a regular file: {path:?}");
      let shard = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
      let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
      let hex = name.strip_suffix("-exec").unwrap_or(name);
      assert!(
        path.parent().and_then(Path::parent) == Some(files.as_path())
          && sha512_hex(&std::fs::read(&path).expect("blob")) == format!("{shard}{hex}"),
        "not a content-named blob: {path:?}"
      );
    }
  }
}

/// `<tmp>/store`, which holds `v11`.
fn tmp_parent(store: &StoreDir) -> &Path {
  store.root().parent().expect("store root has a parent")
}
