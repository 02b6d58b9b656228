//! Writing blobs into `files/`: named by content, placed atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
  /// Set once `O_TMPFILE` turned out not to work here.
  #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
  no_tmpfile: AtomicBool,
}

impl BlobWriter {
  pub fn new(store: StoreDir) -> Self {
    BlobWriter {
      store,
      placed: DashSet::new(),
      counter: AtomicU64::new(0),
      no_tmpfile: AtomicBool::new(false),
    }
  }

  pub fn store(&self) -> &StoreDir {
    &self.store
  }

  /// Stores `bytes` (already hashed to `hex_digest`) and returns the blob's path.
  ///
  /// A blob appears under its content name whole or not at all (it is written unnamed or
  /// under a temporary name, then hard-linked into place), and an existing blob is never
  /// replaced: files already linked into projects keep sharing its inode. An existing blob is
  /// trusted only if its bytes are these bytes; a torn one (a crashed writer) is replaced.
  pub fn write(&self, hex_digest: &str, bytes: &[u8], executable: bool) -> Result<PathBuf, StoreError> {
    let path = self.store.blob_path(hex_digest, executable);
    let key = (hex_digest.to_string(), executable);
    if self.placed.contains(&key) {
      return Ok(path);
    }
    let err = |source: std::io::Error| StoreError::Write { path: path.clone(), source };
    // A low open-file limit: wait for other workers to close theirs rather than fail.
    let place = || crate::limits::retry_out_of_descriptors(|| self.place_new(&path, bytes, executable));
    let placed = match place() {
      // The shard directory is missing (a store created by someone else, pruned, …).
      Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
        path.parent().map_or(Err(e), std::fs::create_dir_all).and_then(|()| place())
      }
      other => other,
    };
    match placed {
      Ok(()) => {}
      Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
        if std::fs::read(&path).map_or(true, |existing| existing != bytes) {
          crate::limits::retry_out_of_descriptors(|| self.replace(&path, bytes, executable)).map_err(err)?;
        }
      }
      Err(e) => return Err(err(e)),
    }
    self.placed.insert(key);
    Ok(path)
  }

  /// Creates the blob if nothing is at `path`; `AlreadyExists` otherwise.
  fn place_new(&self, path: &Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if !self.no_tmpfile.load(Ordering::Relaxed) {
      match linux::place_unnamed(path, bytes, mode(executable)) {
        Err(e) if linux::unsupported(&e) => self.no_tmpfile.store(true, Ordering::Relaxed),
        other => return other,
      }
    }
    let tmp = self.temp_path(path);
    write_new(&tmp, bytes, executable)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
  }

  /// Atomically puts good bytes over a damaged blob.
  fn replace(&self, path: &Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
    let tmp = self.temp_path(path);
    write_new(&tmp, bytes, executable)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
      let _ = std::fs::remove_file(&tmp);
    })
  }

  fn temp_path(&self, path: &Path) -> PathBuf {
    let n = self.counter.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    path.with_file_name(format!("{name}.{}-{n}.tmp", std::process::id()))
  }
}

fn mode(executable: bool) -> u32 {
  if executable {
    0o755
  } else {
    0o644
  }
}

fn write_new(path: &Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
  let mut options = std::fs::OpenOptions::new();
  options.write(true).create(true).truncate(true);
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode(executable));
  }
  #[cfg(not(unix))]
  let _ = executable;
  let mut file = options.open(path)?;
  file.write_all(bytes)
}

#[cfg(target_os = "linux")]
mod linux {
  use std::ffi::CString;
  use std::io::Write;
  use std::os::fd::AsRawFd;
  use std::os::unix::ffi::OsStrExt;
  use std::os::unix::fs::OpenOptionsExt;
  use std::path::Path;

  /// Writes into an unnamed file in the blob's directory (`O_TMPFILE`) and gives it its
  /// name with `linkat`: one system call fewer than a named temporary, and nothing to clean
  /// up if the process dies half way.
  pub fn place_unnamed(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file =
      std::fs::OpenOptions::new().write(true).custom_flags(libc::O_TMPFILE).mode(mode).open(dir)?;
    file.write_all(bytes)?;
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; `file` keeps the descriptor open.
    let rc = unsafe {
      libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW)
    };
    if rc == 0 {
      Ok(())
    } else {
      Err(std::io::Error::last_os_error())
    }
  }

  /// The file system or the kernel cannot do it (or `/proc` is not mounted): use a named
  /// temporary instead.
  pub fn unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL))
      || (e.kind() == std::io::ErrorKind::NotFound && !Path::new("/proc/self/fd").exists())
  }
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
      assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o111, 0o111);
    }
    // No temporary file is left behind.
    let shard = path.parent().unwrap();
    assert_eq!(std::fs::read_dir(shard).unwrap().count(), 1);
  }

  #[cfg(unix)]
  #[test]
  fn existing_blobs_keep_their_inode_and_torn_ones_are_replaced() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = StoreDir::new(dir.path());
    store.init().unwrap();
    let hex = sha512_hex(b"shared");
    let first = BlobWriter::new(store.clone()).write(&hex, b"shared", false).unwrap();
    let inode = std::fs::metadata(&first).unwrap().ino();
    // Another install (a new writer) brings the same file: the blob is left as it is.
    BlobWriter::new(store.clone()).write(&hex, b"shared", false).unwrap();
    assert_eq!(std::fs::metadata(&first).unwrap().ino(), inode);
    // A torn blob (a writer died) is replaced by the whole one.
    std::fs::write(&first, b"sha").unwrap();
    BlobWriter::new(store.clone()).write(&hex, b"shared", false).unwrap();
    assert_eq!(std::fs::read(&first).unwrap(), b"shared");
  }
}
