//! Running out of a resource: file descriptors (`ulimit -n`) and disk space.
//!
//! An install opens many files at once; a low open-file limit must slow it down, not fail
//! it. A full disk must fail it with an error that says so, whatever layer met it.

use std::io;
use std::time::{Duration, Instant};

/// The soft limit on open files of this process, when it has one.
pub fn open_file_limit() -> Option<u64> {
  #[cfg(unix)]
  {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
      || limit.rlim_cur == libc::RLIM_INFINITY
    {
      return None;
    }
    // rlim_t is not u64 on every platform.
    #[allow(clippy::unnecessary_cast)]
    Some(limit.rlim_cur as u64)
  }
  #[cfg(not(unix))]
  {
    None
  }
}

/// "Too many open files", for this process or for the whole system.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
  #[cfg(unix)]
  {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
  }
  #[cfg(not(unix))]
  {
    let _ = e;
    false
  }
}

/// Runs `f` again while it fails for lack of file descriptors: the other workers of the
/// install release theirs within moments. Gives up after a few seconds (a leak elsewhere in
/// the host process would never release them) and returns the last error.
pub fn retry_out_of_descriptors<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
  let deadline = Instant::now() + Duration::from_secs(5);
  let mut wait = Duration::from_millis(1);
  loop {
    match f() {
      Err(e) if is_out_of_descriptors(&e) && Instant::now() < deadline => {
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(100));
      }
      other => return other,
    }
  }
}

/// What ran out, when an error (or one of its causes) is a resource running out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
  /// No space left on the device, or the disk quota is used up.
  DiskSpace,
  /// Too many open files.
  FileDescriptors,
}

/// Looks through `error` and its causes for a full disk or a full descriptor table, in
/// file-system calls and in SQLite alike.
pub fn exhausted(error: &(dyn std::error::Error + 'static)) -> Option<Exhausted> {
  let mut cause = Some(error);
  while let Some(e) = cause {
    if let Some(io) = e.downcast_ref::<io::Error>() {
      if matches!(io.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) {
        return Some(Exhausted::DiskSpace);
      }
      if is_out_of_descriptors(io) {
        return Some(Exhausted::FileDescriptors);
      }
    }
    if let Some(sqlite) = e.downcast_ref::<rusqlite::Error>() {
      if sqlite.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return Some(Exhausted::DiskSpace);
      }
    }
    cause = e.source();
  }
  None
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn finds_a_full_disk_among_the_causes() {
    let full =
      crate::StoreError::Write { path: "x".into(), source: io::Error::from(io::ErrorKind::StorageFull) };
    assert_eq!(exhausted(&full), Some(Exhausted::DiskSpace));
    let denied =
      crate::StoreError::Write { path: "x".into(), source: io::Error::from(io::ErrorKind::PermissionDenied) };
    assert_eq!(exhausted(&denied), None);
    #[cfg(unix)]
    {
      let emfile = io::Error::from_raw_os_error(libc::EMFILE);
      assert_eq!(exhausted(&emfile), Some(Exhausted::FileDescriptors));
      let mut calls = 0;
      let r = retry_out_of_descriptors(|| {
        calls += 1;
        if calls < 3 {
          Err(io::Error::from_raw_os_error(libc::EMFILE))
        } else {
          Ok(calls)
        }
      });
      assert_eq!(r.unwrap(), 3);
    }
  }
}
