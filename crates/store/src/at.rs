//! File-system calls relative to an open directory (`linkat`, `fstatat`, `mkdirat`, …).
//!
//! A warm install links and checks some 35k store files, each named by a path of a dozen
//! components, and the kernel walked every component each time: about a tenth of the
//! install's kernel time. Relative to the package's directory and to `files/`, a call walks
//! one or two. Where the platform has no such calls, the same methods take joined paths.

use std::io;
use std::path::{Path, PathBuf};

/// A directory held open for calls relative to it.
pub struct Dir {
  path: PathBuf,
  #[cfg(unix)]
  fd: std::os::fd::OwnedFd,
}

impl Dir {
  pub fn open(path: &Path) -> io::Result<Dir> {
    #[cfg(unix)]
    {
      use std::os::unix::fs::OpenOptionsExt;
      let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(path)?;
      Ok(Dir { path: path.to_path_buf(), fd: file.into() })
    }
    #[cfg(not(unix))]
    {
      if !path.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
      }
      Ok(Dir { path: path.to_path_buf() })
    }
  }

  pub fn path(&self) -> &Path {
    &self.path
  }

  /// The full path of `rel`, for messages.
  pub fn join(&self, rel: &str) -> PathBuf {
    self.path.join(rel)
  }

  /// Where `path` is below this directory, its path relative to it.
  pub fn relative<'a>(&self, path: &'a Path) -> Option<&'a str> {
    // Blob paths are this directory's path with a name pushed on: comparing bytes finds that
    // without parsing both paths into components (a few per cent of a warm install's CPU).
    #[cfg(unix)]
    {
      use std::os::unix::ffi::OsStrExt;
      let rest = path.as_os_str().as_bytes().strip_prefix(self.path.as_os_str().as_bytes());
      if let Some(rel) = rest.and_then(|r| r.strip_prefix(b"/")) {
        if !rel.is_empty() && !rel.starts_with(b"/") && !rel.ends_with(b"/") {
          return std::str::from_utf8(rel).ok();
        }
      }
    }
    path.strip_prefix(&self.path).ok().and_then(Path::to_str).filter(|r| !r.is_empty())
  }

  pub fn mkdir(&self, rel: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
      let rel = c(rel)?;
      // SAFETY: a valid descriptor and a NUL-terminated path.
      check(unsafe { libc::mkdirat(fd(self), rel.as_ptr(), 0o777) })
    }
    #[cfg(not(unix))]
    {
      std::fs::create_dir(self.join(rel))
    }
  }

  /// Size and modification time (ms since the epoch) of the file at `rel`.
  pub fn size_and_mtime_ms(&self, rel: &str) -> io::Result<(u64, f64)> {
    #[cfg(unix)]
    {
      let rel = c(rel)?;
      let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
      // SAFETY: a valid descriptor, a NUL-terminated path, and room for the result.
      check(unsafe { libc::fstatat(fd(self), rel.as_ptr(), st.as_mut_ptr(), 0) })?;
      // SAFETY: fstatat succeeded, so it filled `st`.
      let st = unsafe { st.assume_init() };
      // The field types differ between platforms.
      #[allow(clippy::unnecessary_cast)]
      Ok((st.st_size as u64, st.st_mtime as f64 * 1000.0 + st.st_mtime_nsec as f64 / 1e6))
    }
    #[cfg(not(unix))]
    {
      size_and_mtime_ms(&self.join(rel))
    }
  }

  /// A hard link at `to` (in this directory) to `from`: relative to `from_dir` when it is
  /// below it, else by its full path.
  pub fn hard_link(&self, from_dir: Option<&Dir>, from: &Path, to: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
      let (from_fd, from) = below(from_dir, from)?;
      let to = c(to)?;
      // SAFETY: valid descriptors (or AT_FDCWD) and NUL-terminated paths.
      check(unsafe { libc::linkat(from_fd, from.as_ptr(), fd(self), to.as_ptr(), 0) })
    }
    #[cfg(not(unix))]
    {
      let _ = from_dir;
      std::fs::hard_link(from, self.join(to))
    }
  }

  /// A hard link at `to` (in this directory) to `from` in `from_dir`.
  pub fn hard_link_from(&self, from_dir: &Dir, from: &str, to: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
      let (from, to) = (c(from)?, c(to)?);
      // SAFETY: valid descriptors and NUL-terminated paths.
      check(unsafe { libc::linkat(fd(from_dir), from.as_ptr(), fd(self), to.as_ptr(), 0) })
    }
    #[cfg(not(unix))]
    {
      std::fs::hard_link(from_dir.join(from), self.join(to))
    }
  }

  /// `path` opened for reading: relative to `from_dir` when it is below it, else by its
  /// full path.
  pub fn open_read(from_dir: Option<&Dir>, path: &Path) -> io::Result<std::fs::File> {
    #[cfg(unix)]
    {
      let (dir_fd, rel) = below(from_dir, path)?;
      // SAFETY: a valid descriptor (or AT_FDCWD) and a NUL-terminated path; the new descriptor
      // is owned here.
      let raw = unsafe { libc::openat(dir_fd, rel.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
      check(raw)?;
      // SAFETY: openat returned a descriptor nobody else owns.
      Ok(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) })
    }
    #[cfg(not(unix))]
    {
      let _ = from_dir;
      std::fs::File::open(path)
    }
  }

  /// A new file at `rel`, for writing; `AlreadyExists` if something is there (a file there
  /// may be a hard link to a store blob: it is removed, never truncated).
  pub fn create_new(&self, rel: &str, mode: u32) -> io::Result<std::fs::File> {
    #[cfg(unix)]
    {
      let rel = c(rel)?;
      let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
      // SAFETY: a valid descriptor and a NUL-terminated path; the new descriptor is owned here.
      let raw = unsafe { libc::openat(fd(self), rel.as_ptr(), flags, mode as libc::c_uint) };
      check(raw)?;
      // SAFETY: openat returned a descriptor nobody else owns.
      Ok(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) })
    }
    #[cfg(not(unix))]
    {
      let _ = mode;
      std::fs::File::create_new(self.join(rel))
    }
  }

  pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
      let (from, to) = (c(from)?, c(to)?);
      // SAFETY: a valid descriptor and NUL-terminated paths.
      check(unsafe { libc::renameat(fd(self), from.as_ptr(), fd(self), to.as_ptr()) })
    }
    #[cfg(not(unix))]
    {
      std::fs::rename(self.join(from), self.join(to))
    }
  }

  pub fn remove_file(&self, rel: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
      let rel = c(rel)?;
      // SAFETY: a valid descriptor and a NUL-terminated path.
      check(unsafe { libc::unlinkat(fd(self), rel.as_ptr(), 0) })
    }
    #[cfg(not(unix))]
    {
      std::fs::remove_file(self.join(rel))
    }
  }
}

/// Size and modification time (ms since the epoch) of the file at `path`.
pub fn size_and_mtime_ms(path: &Path) -> io::Result<(u64, f64)> {
  let meta = std::fs::metadata(path)?;
  let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
  Ok((meta.len(), mtime.map_or(f64::MAX, |d| d.as_secs_f64() * 1000.0)))
}

#[cfg(unix)]
fn fd(dir: &Dir) -> std::os::fd::RawFd {
  std::os::fd::AsRawFd::as_raw_fd(&dir.fd)
}

/// `path` for an `*at` call: relative to `dir` when it is below it, else in full (`AT_FDCWD`).
#[cfg(unix)]
fn below(dir: Option<&Dir>, path: &Path) -> io::Result<(std::os::fd::RawFd, std::ffi::CString)> {
  match dir.and_then(|d| d.relative(path).map(|r| (d, r))) {
    Some((d, rel)) => Ok((fd(d), c(rel)?)),
    None => Ok((libc::AT_FDCWD, c_path(path)?)),
  }
}

#[cfg(unix)]
fn c(s: &str) -> io::Result<std::ffi::CString> {
  std::ffi::CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

#[cfg(unix)]
fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
  use std::os::unix::ffi::OsStrExt;
  std::ffi::CString::new(p.as_os_str().as_bytes())
    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

#[cfg(unix)]
fn check(rc: libc::c_int) -> io::Result<()> {
  if rc < 0 {
    Err(io::Error::last_os_error())
  } else {
    Ok(())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn calls_relative_to_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("files");
    std::fs::create_dir_all(store.join("ab")).unwrap();
    std::fs::write(store.join("ab/blob"), b"bytes").unwrap();
    let files = Dir::open(&store).unwrap();
    let pkg = Dir::open(tmp.path()).unwrap();
    pkg.mkdir("lib").unwrap();
    assert_eq!(pkg.mkdir("lib").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    pkg.hard_link(Some(&files), &store.join("ab/blob"), "lib/a.js").unwrap();
    // No directory to start from: by its full path.
    pkg.hard_link(None, &store.join("ab/blob"), "lib/b.js").unwrap();
    assert_eq!(std::fs::read(tmp.path().join("lib/a.js")).unwrap(), b"bytes");
    assert_eq!(pkg.size_and_mtime_ms("lib/b.js").unwrap().0, 5);
    std::io::Write::write_all(&mut pkg.create_new("c.tmp", 0o644).unwrap(), b"new").unwrap();
    assert_eq!(pkg.create_new("c.tmp", 0o644).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    pkg.rename("c.tmp", "c").unwrap();
    files.hard_link_from(&pkg, "c", "ab/c").unwrap();
    assert_eq!(std::fs::read(store.join("ab/c")).unwrap(), b"new");
    assert_eq!(std::fs::read(tmp.path().join("c")).unwrap(), b"new");
    pkg.remove_file("c").unwrap();
    assert!(!tmp.path().join("c").exists());
    assert_eq!(files.relative(&store.join("ab/blob")), Some("ab/blob"));
    assert_eq!(files.relative(tmp.path()), None);
    assert_eq!(files.relative(&store), None);
    // A sibling whose name starts with this directory's is not below it.
    assert_eq!(files.relative(&tmp.path().join("filesab/blob")), None);
    assert_eq!(files.relative(Path::new("files/ab/blob")), None);
  }
}
