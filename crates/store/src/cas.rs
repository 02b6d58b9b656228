//! Writing blobs into `files/`: named by content, placed atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use dashmap::DashSet;
use sha2::{Digest, Sha512};

use crate::at::Dir;
use crate::dir::StoreDir;
use crate::error::StoreError;

pub fn sha512_hex(bytes: &[u8]) -> String {
  hex::encode(Sha512::digest(bytes))
}

/// Writes blobs for one install. Remembers what it placed so that a file shared by many
/// packages is written once.
pub struct BlobWriter {
  store: StoreDir,
  placed: DashSet<(String, bool), rustc_hash::FxBuildHasher>,
  files: OnceLock<Dir>,
  counter: AtomicU64,
  /// Set once `O_TMPFILE` turned out not to work here.
  #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
  no_tmpfile: AtomicBool,
}

impl BlobWriter {
  pub fn new(store: StoreDir) -> Self {
    BlobWriter {
      store,
      placed: DashSet::default(),
      files: OnceLock::new(),
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

  /// Stores `bytes` by way of `rel` in `dir`, a new file outside the store (a package's
  /// imported copy): written whole there first, then hard-linked under its content name, so
  /// the store only ever sees the whole file. Afterwards that file and the blob are one file,
  /// as a hardlink import leaves them, and it was written once instead of written and then
  /// linked.
  ///
  /// Returns false when the store cannot link to it (another file system, a link limit): it
  /// then stays an ordinary copy, the blob is written on its own, and later calls should not
  /// try again.
  pub fn write_at(
    &self,
    hex_digest: &str,
    bytes: &[u8],
    executable: bool,
    dir: &Dir,
    rel: &str,
  ) -> Result<bool, StoreError> {
    let path = self.store.blob_path(hex_digest, executable);
    let key = (hex_digest.to_string(), executable);
    let at_err = |source: std::io::Error| StoreError::Import { path: dir.join(rel), source };
    let files = self.files();
    if self.placed.contains(&key) {
      link_replacing(files, &path, dir, rel).map_err(at_err)?;
      return Ok(true);
    }
    write_copy(dir, rel, bytes, executable).map_err(at_err)?;
    let err = |source: std::io::Error| StoreError::Write { path: path.clone(), source };
    // Both names relative to open directories: a path walk of a few components each.
    let link = || match files.and_then(|f| f.relative(&path).map(|r| (f, r))) {
      Some((files, blob)) => files.hard_link_from(dir, rel, blob),
      None => std::fs::hard_link(dir.join(rel), &path),
    };
    let linked = match link() {
      Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
        path.parent().map_or(Err(e), std::fs::create_dir_all).and_then(|()| link())
      }
      other => other,
    };
    match linked {
      Ok(()) => {}
      Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
        if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
          // The store's blob is the one every project shares: `at` becomes it too.
          link_replacing(files, &path, dir, rel).map_err(at_err)?;
        } else {
          // A torn blob (a crashed writer): the whole file takes its name.
          let tmp = self.temp_path(&path);
          std::fs::hard_link(dir.join(rel), &tmp).and_then(|()| std::fs::rename(&tmp, &path)).map_err(
            |e| {
              let _ = std::fs::remove_file(&tmp);
              err(e)
            },
          )?;
        }
      }
      Err(e) if cannot_link(&e) => {
        self.write(hex_digest, bytes, executable)?;
        return Ok(false);
      }
      Err(e) => return Err(err(e)),
    }
    self.placed.insert(key);
    Ok(true)
  }

  /// Stores `bytes` as a blob and writes a separate copy of them at `rel` in `dir`: the files
  /// of a package that will be built, which must never write through a link into the store.
  pub fn write_with_copy(
    &self,
    hex_digest: &str,
    bytes: &[u8],
    executable: bool,
    dir: &Dir,
    rel: &str,
  ) -> Result<(), StoreError> {
    self.write(hex_digest, bytes, executable)?;
    write_copy(dir, rel, bytes, executable)
      .map_err(|source| StoreError::Import { path: dir.join(rel), source })
  }

  /// The store's `files/`, held open once it could be opened (`None` until then: calls take
  /// full paths, and a later call tries again).
  fn files(&self) -> Option<&Dir> {
    if let Some(dir) = self.files.get() {
      return Some(dir);
    }
    let dir = Dir::open(&self.store.root().join("files")).ok()?;
    Some(self.files.get_or_init(|| dir))
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

  /// A blob written as it is read, hashed on the way: for files too large to hold in
  /// memory. The bytes go to an unnamed (or temporary) file in `files/`; [`BlobSink::finish`]
  /// names it by its digest, with the same rules as [`BlobWriter::write`].
  pub fn sink(&self, executable: bool) -> Result<BlobSink<'_>, StoreError> {
    let dir = self.store.root().join("files");
    let err = |source| StoreError::Write { path: dir.clone(), source };
    let open = || -> std::io::Result<(std::fs::File, Option<PathBuf>)> {
      #[cfg(target_os = "linux")]
      if !self.no_tmpfile.load(Ordering::Relaxed) {
        match linux::open_unnamed(&dir, mode(executable)) {
          Err(e) if linux::unsupported(&e) => self.no_tmpfile.store(true, Ordering::Relaxed),
          other => return other.map(|f| (f, None)),
        }
      }
      let tmp = self.temp_path(&dir.join("blob"));
      Ok((open_new(&tmp, executable)?, Some(tmp)))
    };
    let (file, temp) = crate::limits::retry_out_of_descriptors(open).map_err(err)?;
    Ok(BlobSink { writer: self, file, temp, hasher: Sha512::new(), size: 0, executable })
  }

  fn temp_path(&self, path: &Path) -> PathBuf {
    let n = self.counter.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    path.with_file_name(format!("{name}.{}-{n}.tmp", std::process::id()))
  }
}

/// A blob being streamed into the store (see [`BlobWriter::sink`]). Dropped unfinished, it
/// leaves nothing behind.
pub struct BlobSink<'a> {
  writer: &'a BlobWriter,
  file: std::fs::File,
  /// The temporary name, where the file system cannot make unnamed files.
  temp: Option<PathBuf>,
  hasher: Sha512,
  size: u64,
  executable: bool,
}

impl BlobSink<'_> {
  pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
    self.hasher.update(bytes);
    self.size += bytes.len() as u64;
    self.file.write_all(bytes).map_err(|source| StoreError::Write { path: self.where_(), source })
  }

  /// Names the blob by its digest; returns the digest (hex) and the size.
  pub fn finish(mut self) -> Result<(String, u64), StoreError> {
    let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
    let path = self.writer.store.blob_path(&digest, self.executable);
    let key = (digest.clone(), self.executable);
    if self.writer.placed.contains(&key) {
      return Ok((digest, self.size));
    }
    let err = |source| StoreError::Write { path: path.clone(), source };
    let link = || self.link_to(&path);
    let linked = match link() {
      Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.parent().is_some_and(|p| !p.exists()) => {
        path.parent().map_or(Err(e), std::fs::create_dir_all).and_then(|()| link())
      }
      other => other,
    };
    match linked {
      Ok(()) => {}
      // Someone placed it first: trusted only if its bytes hash to its name.
      Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
        if !file_has_digest(&path, &digest) {
          let tmp = self.writer.temp_path(&path);
          self.link_to(&tmp).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
          })?;
        }
      }
      Err(e) => return Err(err(e)),
    }
    self.writer.placed.insert(key);
    Ok((digest, self.size))
  }

  /// Gives the written file the name `path` (fails with `AlreadyExists` if taken).
  fn link_to(&self, path: &Path) -> std::io::Result<()> {
    match &self.temp {
      Some(temp) => std::fs::hard_link(temp, path),
      #[cfg(target_os = "linux")]
      None => linux::link_unnamed(&self.file, path),
      #[cfg(not(target_os = "linux"))]
      None => Err(std::io::Error::other("no temporary file")),
    }
  }

  fn where_(&self) -> PathBuf {
    self.temp.clone().unwrap_or_else(|| self.writer.store.root().join("files"))
  }
}

impl Drop for BlobSink<'_> {
  fn drop(&mut self) {
    if let Some(temp) = &self.temp {
      let _ = std::fs::remove_file(temp);
    }
  }
}

/// Whether the file at `path` hashes to `digest`.
fn file_has_digest(path: &Path, digest: &str) -> bool {
  file_sha512_hex(path).is_ok_and(|actual| actual == digest)
}

/// The SHA-512 (hex) of the file at `path`, read in pieces: blobs can be hundreds of MB.
pub(crate) fn file_sha512_hex(path: &Path) -> std::io::Result<String> {
  let mut file = std::fs::File::open(path)?;
  let mut hasher = Sha512::new();
  let mut buf = vec![0u8; 1 << 20];
  loop {
    match std::io::Read::read(&mut file, &mut buf)? {
      0 => break,
      n => hasher.update(&buf[..n]),
    }
  }
  Ok(hex::encode(hasher.finalize()))
}

fn mode(executable: bool) -> u32 {
  if executable {
    0o755
  } else {
    0o644
  }
}

/// The file system will not hard-link these two: a reason to copy, not to fail.
fn cannot_link(e: &std::io::Error) -> bool {
  #[cfg(unix)]
  {
    matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EPERM | libc::EMLINK | libc::EOPNOTSUPP))
  }
  #[cfg(not(unix))]
  {
    let _ = e;
    true
  }
}

/// Makes `rel` in `dir` a hard link to the blob `from`, replacing whatever file is there.
fn link_replacing(files: Option<&Dir>, from: &Path, dir: &Dir, rel: &str) -> std::io::Result<()> {
  match dir.hard_link(files, from, rel) {
    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
      dir.remove_file(rel)?;
      dir.hard_link(files, from, rel)
    }
    other => other,
  }
}

/// Writes a package's own copy of a file at `rel` in `dir`. What an interrupted import left
/// there is removed, not truncated: it may be a hard link to a blob.
fn write_copy(dir: &Dir, rel: &str, bytes: &[u8], executable: bool) -> std::io::Result<()> {
  crate::limits::retry_out_of_descriptors(|| {
    let mut file = match dir.create_new(rel, mode(executable)) {
      Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
        dir.remove_file(rel)?;
        dir.create_new(rel, mode(executable))
      }
      other => other,
    }?;
    file.write_all(bytes)
  })
}

fn write_new(path: &Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
  open_new(path, executable)?.write_all(bytes)
}

fn open_new(path: &Path, executable: bool) -> std::io::Result<std::fs::File> {
  let mut options = std::fs::OpenOptions::new();
  options.write(true).create(true).truncate(true);
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode(executable));
  }
  #[cfg(not(unix))]
  let _ = executable;
  options.open(path)
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
    let mut file = open_unnamed(path.parent().unwrap_or(Path::new(".")), mode)?;
    file.write_all(bytes)?;
    link_unnamed(&file, path)
  }

  /// An unnamed file in `dir`, to be named by [`link_unnamed`].
  pub fn open_unnamed(dir: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).custom_flags(libc::O_TMPFILE).mode(mode).open(dir)
  }

  /// Gives an unnamed file its name (fails with `AlreadyExists` if taken).
  pub fn link_unnamed(file: &std::fs::File, path: &Path) -> std::io::Result<()> {
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
    let inode = std::fs::metadata(&first).unwrap().ino();
    // Written by way of a package's copy: the copy becomes the existing blob.
    let copy = dir.path().join("copy");
    std::fs::write(&copy, b"leftover").unwrap();
    let at = Dir::open(dir.path()).unwrap();
    assert!(BlobWriter::new(store.clone()).write_at(&hex, b"shared", false, &at, "copy").unwrap());
    assert_eq!(std::fs::metadata(&copy).unwrap().ino(), inode);
    assert_eq!(std::fs::read(&copy).unwrap(), b"shared");
  }
}
