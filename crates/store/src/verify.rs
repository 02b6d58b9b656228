//! Checking, before trusting a row, that the blobs it names are still what it says
//! (pnpm's `verifyStoreIntegrity`).

use std::path::{Path, PathBuf};

use crate::at::Dir;

use dashmap::DashSet;

use crate::cas::file_sha512_hex;
use crate::dir::StoreDir;
use crate::row::PackageFilesIndex;

/// Blobs already verified in this install, by digest and executable bit: a blob shared by
/// many packages is checked once. (Hashing the path itself walked its components with
/// SipHash: a tenth of a warm store lookup.)
pub type VerifiedBlobs = DashSet<(String, bool), rustc_hash::FxBuildHasher>;

pub struct Verifier<'a> {
  pub store: &'a StoreDir,
  pub verified: &'a VerifiedBlobs,
  /// `false` maps paths without touching the disk (`verifyStoreIntegrity: false`).
  pub check: bool,
  /// The store's `files/`, open: blobs are looked at relative to it (shorter path walks).
  pub files: Option<&'a Dir>,
}

impl Verifier<'_> {
  /// The blob path of every file in `row`, or `None` if any blob is missing or damaged
  /// (damaged blobs are removed, so the package is fetched and written again).
  pub fn files(&self, row: &PackageFilesIndex) -> Option<Vec<(String, PathBuf, u32)>> {
    let mut out = Vec::with_capacity(row.files.len());
    for (rel, info) in &row.files {
      if info.digest.len() != 128 || !info.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
      }
      let path = self.store.blob_path(&info.digest, info.is_executable());
      let key = (info.digest.clone(), info.is_executable());
      if self.check && !self.verified.contains(&key) {
        if !verify_blob(self.files, &path, info.size, &info.digest, info.checked_at) {
          return None;
        }
        self.verified.insert(key);
      }
      out.push((rel.clone(), path, info.mode));
    }
    Some(out)
  }
}

fn verify_blob(files: Option<&Dir>, path: &Path, size: u64, digest: &str, checked_at: Option<f64>) -> bool {
  let stat = match files.and_then(|dir| dir.relative(path).map(|rel| (dir, rel))) {
    Some((dir, rel)) => dir.size_and_mtime_ms(rel),
    None => crate::at::size_and_mtime_ms(path),
  };
  let Ok((actual_size, mtime_ms)) = stat else {
    return false;
  };
  // Untouched since it was last checked: trust it without reading, as pnpm does.
  if mtime_ms - checked_at.unwrap_or(0.0) <= 100.0 {
    return true;
  }
  if actual_size != size {
    let _ = std::fs::remove_file(path);
    return false;
  }
  match file_sha512_hex(path) {
    Ok(actual) if actual == digest => true,
    Ok(_) => {
      let _ = std::fs::remove_file(path);
      false
    }
    Err(_) => false,
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::cas::{sha512_hex, BlobWriter};
  use crate::row::FileInfo;

  fn row_for(digest: &str, size: u64, checked_at: Option<f64>) -> PackageFilesIndex {
    let mut files = indexmap::IndexMap::new();
    files.insert("a.txt".to_string(), FileInfo { digest: digest.to_string(), mode: 0o644, size, checked_at });
    PackageFilesIndex {
      algo: "sha512".into(),
      requires_build: None,
      manifest: None,
      files,
      side_effects: None,
    }
  }

  #[test]
  fn detects_changed_truncated_and_missing_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreDir::new(dir.path());
    store.init().unwrap();
    let writer = BlobWriter::new(store.clone());
    let digest = sha512_hex(b"hello");
    let path = writer.write(&digest, b"hello", false).unwrap();
    let verified = VerifiedBlobs::default();
    let v = Verifier { store: &store, verified: &verified, check: true, files: None };
    // Never checked (checkedAt absent): re-hashed, passes.
    assert!(v.files(&row_for(&digest, 5, None)).is_some());
    // Same size, other bytes: detected and removed.
    std::fs::write(&path, b"jello").unwrap();
    let fresh = VerifiedBlobs::default();
    let v = Verifier { store: &store, verified: &fresh, check: true, files: None };
    assert!(v.files(&row_for(&digest, 5, None)).is_none());
    assert!(!path.exists());
    // Missing.
    assert!(v.files(&row_for(&digest, 5, None)).is_none());
    // Truncated.
    std::fs::write(&path, b"hel").unwrap();
    assert!(v.files(&row_for(&digest, 5, None)).is_none());
    assert!(!path.exists());
  }
}
