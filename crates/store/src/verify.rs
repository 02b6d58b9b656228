//! Checking, before trusting a row, that the blobs it names are still what it says
//! (pnpm's `verifyStoreIntegrity`).

use std::path::{Path, PathBuf};

use crate::at::Dir;

use dashmap::DashSet;

use crate::cas::file_sha512_hex;
use crate::dir::StoreDir;
use crate::row::FileInfo;
use indexmap::IndexMap;

/// Blobs already verified in this install, by digest (binary) and executable bit: a blob
/// shared by many packages is checked once. A fixed-size key costs no allocation per file.
pub type VerifiedBlobs = DashSet<([u8; 64], bool), rustc_hash::FxBuildHasher>;

/// A set sized for about `files` blobs: growing it shard by shard cost a warm lookup more
/// than its lookups did.
pub fn verified_blobs(files: usize) -> VerifiedBlobs {
  VerifiedBlobs::with_capacity_and_hasher(files, Default::default())
}

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
  /// Takes the row's files: their paths move into the result.
  pub fn files(&self, files: IndexMap<String, FileInfo>) -> Option<Vec<(String, PathBuf, u32)>> {
    let mut out = Vec::with_capacity(files.len());
    for (rel, info) in files {
      // Lowercase only: an uppercase digest names no blob (`files/AB/…`), a miss as before,
      // and must not share the key of the lowercase one verified already.
      let lower_hex = info.digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
      let mut digest = [0u8; 64];
      if info.digest.len() != 128 || !lower_hex || hex::decode_to_slice(&info.digest, &mut digest).is_err() {
        return None;
      }
      let path = self.store.blob_path(&info.digest, info.is_executable());
      let key = (digest, info.is_executable());
      if self.check && !self.verified.contains(&key) {
        if !verify_blob(self.files, &path, info.size, &info.digest, info.checked_at) {
          return None;
        }
        self.verified.insert(key);
      }
      out.push((rel, path, info.mode));
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

  fn files_for(digest: &str, size: u64, checked_at: Option<f64>) -> IndexMap<String, FileInfo> {
    let mut files = IndexMap::new();
    files.insert("a.txt".to_string(), FileInfo { digest: digest.to_string(), mode: 0o644, size, checked_at });
    files
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
    assert!(v.files(files_for(&digest, 5, None)).is_some());
    // The same digest in capitals names no blob: a miss, although its bytes were verified.
    assert!(v.files(files_for(&digest.to_uppercase(), 5, None)).is_none());
    // Same size, other bytes: detected and removed.
    std::fs::write(&path, b"jello").unwrap();
    let fresh = VerifiedBlobs::default();
    let v = Verifier { store: &store, verified: &fresh, check: true, files: None };
    assert!(v.files(files_for(&digest, 5, None)).is_none());
    assert!(!path.exists());
    // Missing.
    assert!(v.files(files_for(&digest, 5, None)).is_none());
    // Truncated.
    std::fs::write(&path, b"hel").unwrap();
    assert!(v.files(files_for(&digest, 5, None)).is_none());
    assert!(!path.exists());
  }
}
