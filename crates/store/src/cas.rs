//! Writing blobs into `files/`: named by content, placed atomically.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashSet;
use sha2::{Digest, Sha512};

use crate::dir::StoreDir;
use crate::error::StoreError;

pub fn sha512_hex(bytes: &[u8]) -> String {
  hex::encode(Sha512::digest(bytes))
}

/// Writes blobs for one install. Remembers what it placed so that a file shared by many
/// packages is written once.
pub struct BlobWriter {
  store: StoreDir,
  placed: DashSet<(String, bool)>,
  counter: AtomicU64,
}

impl BlobWriter {
  pub fn new(store: StoreDir) -> Self {
    BlobWriter {
      store,
      placed: DashSet::new(),
      counter: AtomicU64::new(0),
    }
  }

  pub fn store(&self) -> &StoreDir {
    &self.store
  }

  /// Stores `bytes` (already hashed to `hex_digest`) and returns the blob's path.
  ///
  /// The content goes to a temporary name in the same directory and is renamed over the
  /// final name, so no reader (this process, another install, pnpm) ever sees half a blob
  /// under its content name. Replacing an existing blob is harmless: same name, same bytes.
  pub fn write(&self, hex_digest: &str, bytes: &[u8], executable: bool) -> Result<PathBuf, StoreError> {
    let path = self.store.blob_path(hex_digest, executable);
    let key = (hex_digest.to_string(), executable);
    if self.placed.contains(&key) {
      return Ok(path);
    }
    let n = self.counter.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(
      "{}.{}-{n}.tmp",
      path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
      std::process::id()
    ));
    let err = |source: std::io::Error| StoreError::Write {
      path: path.clone(),
      source,
    };
    let written = match write_new(&tmp, bytes, executable) {
      // The shard directory is missing (a store created by someone else, pruned, …).
      Err(e) if e.kind() == std::io::ErrorKind::NotFound => tmp
        .parent()
        .map_or(Err(e), std::fs::create_dir_all)
        .and_then(|()| write_new(&tmp, bytes, executable)),
      other => other,
    };
    if let Err(e) = written {
      let _ = std::fs::remove_file(&tmp);
      return Err(err(e));
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
      let _ = std::fs::remove_file(&tmp);
      return Err(err(e));
    }
    self.placed.insert(key);
    Ok(path)
  }
}

fn write_new(path: &std::path::Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
  let mut options = std::fs::OpenOptions::new();
  options.write(true).create(true).truncate(true);
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(if executable { 0o755 } else { 0o644 });
  }
  #[cfg(not(unix))]
  let _ = executable;
  let mut file = options.open(path)?;
  file.write_all(bytes)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn writes_content_addressed_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreDir::new(dir.path());
    store.init().unwrap();
    let writer = BlobWriter::new(store.clone());
    let hex = sha512_hex(b"hello");
    let path = writer.write(&hex, b"hello", true).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    assert!(path.to_string_lossy().ends_with("-exec"));
    #[cfg(unix)]
    {
      use std::os::unix::fs::PermissionsExt;
      assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o111,
        0o111
      );
    }
    // No temporary file is left behind.
    let shard = path.parent().unwrap();
    assert_eq!(std::fs::read_dir(shard).unwrap().count(), 1);
  }
}
