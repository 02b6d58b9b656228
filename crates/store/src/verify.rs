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
      let digest = decode_lower_hex(info.digest.as_bytes())?;
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

/// A SHA-512 digest from its 128 lowercase hex digits. Lowercase only: an uppercase digest
/// names no blob (`files/AB/…`), a miss, and must not share the key of the lowercase one
/// verified already. One table lookup per digit, checked once at the end: this runs for every
/// file of a warm install, and a general decoder that also takes uppercase was a tenth of its
/// user time.
fn decode_lower_hex(hex: &[u8]) -> Option<[u8; 64]> {
  const BAD: u8 = 0xff;
  static DIGITS: [u8; 256] = {
    let mut table = [BAD; 256];
    let mut i = 0;
    while i < 16 {
      table[b"0123456789abcdef"[i] as usize] = i as u8;
      i += 1;
    }
    table
  };
  if hex.len() != 128 {
    return None;
  }
  let mut out = [0u8; 64];
  let mut seen = 0u8;
  for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
    let (high, low) = (DIGITS[pair[0] as usize], DIGITS[pair[1] as usize]);
    seen |= high | low;
    *byte = high << 4 | low;
  }
  (seen & 0xf0 == 0).then_some(out)
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
  fn digests_are_lowercase_hex_of_64_bytes() {
    let digest = sha512_hex(b"x");
    let bytes = decode_lower_hex(digest.as_bytes()).unwrap();
    assert_eq!(hex::encode(bytes), digest);
    for bad in [digest.to_uppercase(), digest[1..].to_string(), format!("{}g", &digest[1..]), String::new()] {
      assert!(decode_lower_hex(bad.as_bytes()).is_none(), "{bad}");
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
