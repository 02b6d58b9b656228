//! Importing a package's files from the store into a directory.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use pacquet_store::at::Dir;

use crate::error::LinkError;

/// pnpm's `packageImportMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMethod {
  /// Linux: hardlink, then clone, then copy; elsewhere: clone, then hardlink, then copy.
  Auto,
  Hardlink,
  Clone,
  Copy,
  CloneOrCopy,
}

impl ImportMethod {
  pub fn parse(s: &str) -> Option<Self> {
    Some(match s {
      "auto" => ImportMethod::Auto,
      "hardlink" => ImportMethod::Hardlink,
      "clone" => ImportMethod::Clone,
      "copy" => ImportMethod::Copy,
      "clone-or-copy" => ImportMethod::CloneOrCopy,
      _ => return None,
    })
  }
}

/// One file to place: its path inside the package, its blob, its mode.
pub struct PackageFile<'a> {
  pub path: &'a str,
  pub blob: &'a Path,
  pub executable: bool,
}

/// How many files an import placed (0: the package was complete already).
pub type Imported = Result<usize, LinkError>;

/// Which of a package's files marks its import complete: `package.json`, placed last.
fn marker_index(files: &[PackageFile<'_>]) -> usize {
  files.iter().position(|f| f.path == "package.json").unwrap_or(files.len().saturating_sub(1))
}

const HARDLINK: u8 = 0;
const CLONE: u8 = 1;
const COPY: u8 = 2;
const UNSET: u8 = u8::MAX;

fn method_name(m: u8) -> &'static str {
  match m {
    HARDLINK => "hardlink",
    CLONE => "clone",
    _ => "copy",
  }
}

/// Imports packages with one method for a whole install. With `auto`, a method that fails
/// for a reason other than the file itself is dropped for the rest of the install.
pub struct Importer {
  method: ImportMethod,
  /// Current rung of the `auto` ladder (index into `ladder`).
  rung: AtomicU8,
  ladder: Vec<u8>,
  used: AtomicU8,
  /// The store's `files/`, open: links are made relative to it.
  store_files: Option<Dir>,
}

impl Importer {
  pub fn new(method: ImportMethod) -> Self {
    let ladder = match method {
      ImportMethod::Auto if cfg!(target_os = "linux") => vec![HARDLINK, CLONE, COPY],
      ImportMethod::Auto => vec![CLONE, HARDLINK, COPY],
      ImportMethod::Hardlink => vec![HARDLINK, COPY],
      ImportMethod::Clone => vec![CLONE],
      ImportMethod::Copy => vec![COPY],
      ImportMethod::CloneOrCopy => vec![CLONE, COPY],
    };
    Importer { method, rung: AtomicU8::new(0), ladder, used: AtomicU8::new(UNSET), store_files: None }
  }

  /// Links blobs under `files` (the store's `files/`) relative to it: shorter path walks.
  pub fn with_store_files(mut self, files: &Path) -> Self {
    self.store_files = Dir::open(files).ok();
    self
  }

  /// The method files were actually placed with (the first that worked), if any.
  pub fn method_used(&self) -> Option<&'static str> {
    match self.used.load(Ordering::Relaxed) {
      UNSET => None,
      m => Some(method_name(m)),
    }
  }

  /// Places `files` under `dest`. `package.json` goes last: its presence marks a complete
  /// import, so an interrupted one is redone rather than trusted. Returns the number of
  /// files placed (0 when the directory was already complete).
  ///
  /// With `copy`, files are copied whatever the method: a package that will be built must
  /// never write through a hardlink into the store (pnpm does the same).
  pub fn import_package(&self, dest: &Path, files: &[PackageFile<'_>], copy: bool) -> Imported {
    if files.get(marker_index(files)).is_some_and(|m| imported_already(dest, m.path)) {
      return Ok(0);
    }
    self.import_new_package(dest, files, copy)
  }

  /// [`Importer::import_package`] into a `dest` below a directory the caller has just made:
  /// nothing can be there yet, so neither a complete import nor a killed one's leftovers are
  /// looked for (two failing calls per package of a fresh install).
  pub fn import_new_package(&self, dest: &Path, files: &[PackageFile<'_>], copy: bool) -> Imported {
    let marker = marker_index(files);
    let dir = prepare_dir(dest, files.iter().map(|f| f.path))
      .map_err(|(path, source)| LinkError::Mkdir { path, source })?;
    let order: Vec<(&PackageFile<'_>, &str)> =
      (files.iter().enumerate()).filter(|(i, _)| *i != marker).map(|(_, f)| (f, f.path)).collect();
    // A package of thousands of files (core-js: 3,695, copied for its build) would otherwise
    // keep one core busy at the end of an install while the other idles: its chunks go to the
    // pool, where an idle worker takes them.
    let chunk = if copy { PREFETCH } else { LINK_CHUNK };
    let place_chunk = |chunk: &[(&PackageFile<'_>, &str)]| -> Result<(), LinkError> {
      if copy {
        self.copy_chunk(chunk, &dir)
      } else {
        chunk.iter().try_for_each(|(f, to)| self.place(f, &dir, to))
      }
    };
    if order.len() > chunk {
      use rayon::prelude::*;
      order.par_chunks(chunk).try_for_each(place_chunk)?;
    } else {
      place_chunk(&order)?;
    }
    let Some(marker) = files.get(marker) else { return Ok(files.len()) };
    // A hard link appears whole or not at all: the marker is linked under its name, last.
    if !copy && self.hardlinks() && self.place_with(HARDLINK, marker, &dir, marker.path).is_ok() {
      let _ = self.used.compare_exchange(UNSET, HARDLINK, Ordering::Relaxed, Ordering::Relaxed);
      return Ok(files.len());
    }
    // A copy or clone can be cut short (the process killed): it is made under another name
    // and renamed, so that a half-written marker never claims the import complete.
    let tmp = marker_temp_name(marker.path);
    place_chunk(&[(marker, &tmp)])?;
    dir.rename(&tmp, marker.path).map_err(|source| {
      let _ = dir.remove_file(&tmp);
      LinkError::Import { from: dir.join(&tmp), to: dir.join(marker.path), method: "rename", source }
    })?;
    Ok(files.len())
  }

  /// Whether files are hard-linked out of the store (the method, or the `auto` ladder's
  /// current rung): then a package may be written straight into its directory and linked
  /// into the store from there, which leaves the same two names on one file.
  pub fn hardlinks(&self) -> bool {
    let rung = self.rung.load(Ordering::Relaxed) as usize;
    self.ladder.get(rung) == Some(&HARDLINK)
  }

  /// Prepares `dest` for files written into it directly, in-package `paths` (see
  /// [`Importer::hardlinks`]), and returns it open. `None` when `dest` is complete already:
  /// nothing to write.
  pub fn begin_direct<'p>(
    &self,
    dest: &Path,
    paths: impl Iterator<Item = &'p str>,
  ) -> std::io::Result<Option<Dir>> {
    if imported_already(dest, "package.json") {
      return Ok(None);
    }
    prepare_dir(dest, paths).map(Some).map_err(|(_, e)| e)
  }

  /// Where, in the package directory, a directly written file goes: `package.json`, the
  /// completion marker, under a temporary name until [`Importer::finish_direct`].
  pub fn direct_name(path: &str) -> std::borrow::Cow<'_, str> {
    if path == "package.json" {
      marker_temp_name(path).into()
    } else {
      path.into()
    }
  }

  /// Completes a directly written package: its marker takes its name. `linked`: whether its
  /// files became hard links to their blobs (`Some(false)`: the store could not link them,
  /// they are copies), reported as the import method; `None` for copies made on purpose.
  pub fn finish_direct(&self, dest: &Path, linked: Option<bool>) -> std::io::Result<()> {
    std::fs::rename(marker_temp(dest, "package.json"), dest.join("package.json"))?;
    if let Some(linked) = linked {
      let method = if linked { HARDLINK } else { COPY };
      let _ = self.used.compare_exchange(UNSET, method, Ordering::Relaxed, Ordering::Relaxed);
    }
    Ok(())
  }

  /// Copies a chunk of files. Copies read their blobs, and a blob not in the page cache is
  /// a wait on the disk: opened and announced together, the reads overlap instead of queueing.
  fn copy_chunk(&self, chunk: &[(&PackageFile<'_>, &str)], dir: &Dir) -> Result<(), LinkError> {
    let mut sources: Vec<Option<std::fs::File>> =
      chunk.iter().map(|(f, _)| Dir::open_read(self.store_files.as_ref(), f.blob).ok()).collect();
    sources.iter().flatten().for_each(will_need);
    for ((f, to), source) in chunk.iter().zip(sources.iter_mut()) {
      self.copy_from(f, dir, to, source.take()).map_err(|source| LinkError::Import {
        from: f.blob.to_path_buf(),
        to: dir.join(to),
        method: "copy",
        source,
      })?;
    }
    Ok(())
  }

  fn place(&self, file: &PackageFile<'_>, dir: &Dir, to: &str) -> Result<(), LinkError> {
    loop {
      let rung = self.rung.load(Ordering::Relaxed) as usize;
      let method = self.ladder[rung.min(self.ladder.len() - 1)];
      match self.place_with(method, file, dir, to) {
        Ok(()) => {
          let _ = self.used.compare_exchange(UNSET, method, Ordering::Relaxed, Ordering::Relaxed);
          return Ok(());
        }
        Err(e) => {
          let file_specific = matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied);
          let can_fall = rung + 1 < self.ladder.len() && !file_specific;
          // A hardlink across devices falls back to copy even when the method was forced.
          let exdev = e.raw_os_error() == Some(libc::EXDEV);
          if can_fall && (self.method != ImportMethod::Hardlink || exdev || method != HARDLINK) {
            let _ =
              self.rung.compare_exchange(rung as u8, rung as u8 + 1, Ordering::Relaxed, Ordering::Relaxed);
            continue;
          }
          return Err(LinkError::Import {
            from: file.blob.to_path_buf(),
            to: dir.join(to),
            method: method_name(method),
            source: e,
          });
        }
      }
    }
  }

  /// A copy of `file` at `to`, from `source` when the blob is open already.
  fn copy_from(
    &self,
    file: &PackageFile<'_>,
    dir: &Dir,
    to: &str,
    source: Option<std::fs::File>,
  ) -> std::io::Result<()> {
    let Some(mut source) = source else {
      // Not opened ahead (a missing blob, no descriptor left): the general path reports or
      // retries it.
      return self.place_with(COPY, file, dir, to);
    };
    let mode = if file.executable { 0o755 } else { 0o644 };
    let mut dest =
      replacing_leftover(dir, to, || pacquet_store::retry_out_of_descriptors(|| dir.create_new(to, mode)))?;
    copy_contents(&mut source, &mut dest)
  }

  fn place_with(&self, method: u8, file: &PackageFile<'_>, dir: &Dir, to: &str) -> std::io::Result<()> {
    let attempt = || -> std::io::Result<()> {
      // Clones and copies open files: under a low open-file limit, wait for a descriptor.
      pacquet_store::retry_out_of_descriptors(|| match method {
        HARDLINK => dir.hard_link(self.store_files.as_ref(), file.blob, to),
        CLONE => reflink_copy::reflink(file.blob, dir.join(to)),
        _ => copy_file(file.blob, dir, to, file.executable),
      })
    };
    replacing_leftover(dir, to, attempt)?;
    if method == CLONE {
      set_mode(&dir.join(to), file.executable)?;
    }
    Ok(())
  }
}

/// Runs `attempt`, and again once `to` is removed if something was in the way: a leftover
/// from an interrupted import.
fn replacing_leftover<T>(
  dir: &Dir,
  to: &str,
  attempt: impl Fn() -> std::io::Result<T>,
) -> std::io::Result<T> {
  match attempt() {
    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
      dir.remove_file(to)?;
      attempt()
    }
    other => other,
  }
}

const MARKER_TMP: &str = ".pacquet-marker-";

fn marker_temp_name(path: &str) -> String {
  format!(".{}{MARKER_TMP}{}.tmp", path.replace('/', "_"), std::process::id())
}

fn marker_temp(dest: &Path, path: &str) -> PathBuf {
  dest.join(marker_temp_name(path))
}

/// A package directory ready for its files: the directory and every parent of `paths`
/// (in-package, `/`-separated) made, each once. On failure, the directory that could not be
/// made.
fn prepare_dir<'p>(
  dest: &Path,
  paths: impl Iterator<Item = &'p str>,
) -> Result<Dir, (PathBuf, std::io::Error)> {
  std::fs::create_dir_all(dest).map_err(|e| (dest.to_path_buf(), e))?;
  let dir = Dir::open(dest).map_err(|e| (dest.to_path_buf(), e))?;
  let mut dirs: HashSet<&str, rustc_hash::FxBuildHasher> = HashSet::default();
  for path in paths {
    if let Some((parent, _)) = path.rsplit_once('/') {
      if dirs.insert(parent) {
        mkdir_all(&dir, parent).map_err(|e| (dir.join(parent), e))?;
      }
    }
  }
  Ok(dir)
}

/// `mkdir -p` of `rel` inside `dir`.
fn mkdir_all(dir: &Dir, rel: &str) -> std::io::Result<()> {
  match dir.mkdir(rel) {
    Err(e) if e.kind() == ErrorKind::NotFound => match rel.rsplit_once('/') {
      Some((parent, _)) => {
        mkdir_all(dir, parent)?;
        mkdir_all(dir, rel)
      }
      None => Err(e),
    },
    Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
    other => other,
  }
}

/// Whether `dest` holds a complete import (its `marker`). If not, what a killed import left of
/// its marker is removed, so that the import can start over.
fn imported_already(dest: &Path, marker: &str) -> bool {
  if dest.join(marker).exists() {
    return true;
  }
  remove_leftover_markers(dest);
  false
}

/// Removes what a killed import left of its marker in a package directory that is being
/// imported again (the directory exists only then; a fresh import costs one failed read).
fn remove_leftover_markers(dest: &Path) {
  let Ok(entries) = std::fs::read_dir(dest) else { return };
  for entry in entries.flatten() {
    let name = entry.file_name();
    let name = name.to_string_lossy();
    if name.starts_with('.') && name.contains(MARKER_TMP) && name.ends_with(".tmp") {
      let _ = std::fs::remove_file(entry.path());
    }
  }
}

/// A copy with the mode set at creation. `std::fs::copy` also reads both files' metadata and
/// changes the mode afterwards: three more system calls per file, and a warm install copies
/// thousands of files (packages that need a build).
fn copy_file(from: &Path, dir: &Dir, to: &str, executable: bool) -> std::io::Result<()> {
  let mut src = std::fs::File::open(from)?;
  let mut dst = dir.create_new(to, if executable { 0o755 } else { 0o644 })?;
  copy_contents(&mut src, &mut dst)
}

/// Blobs a package's copy opens and announces to the kernel at once (see `import_package`):
/// enough to keep the disk busy, few enough descriptors.
const PREFETCH: usize = 64;

/// Files a package's links are split into for the pool once it has more than this.
const LINK_CHUNK: usize = 256;

/// Tells the kernel that `file` will be read whole: it starts reading it now, without waiting.
fn will_need(file: &std::fs::File) {
  #[cfg(target_os = "linux")]
  {
    use std::os::fd::AsRawFd;
    // SAFETY: an open descriptor; advice only, its result does not matter.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
  }
  #[cfg(not(target_os = "linux"))]
  let _ = file;
}

fn copy_contents(src: &mut std::fs::File, dst: &mut std::fs::File) -> std::io::Result<()> {
  #[cfg(target_os = "linux")]
  {
    use std::os::fd::AsRawFd;
    loop {
      // SAFETY: two open descriptors; null offsets use and advance the file positions.
      let n = unsafe {
        libc::copy_file_range(
          src.as_raw_fd(),
          std::ptr::null_mut(),
          dst.as_raw_fd(),
          std::ptr::null_mut(),
          1 << 30,
          0,
        )
      };
      match n {
        0 => return Ok(()),
        n if n > 0 => continue,
        _ => {
          let e = std::io::Error::last_os_error();
          // Not supported between these files (another file system, an old kernel): copy by hand.
          if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL)) {
            break;
          }
          return Err(e);
        }
      }
    }
  }
  std::io::copy(src, dst).map(|_| ())
}

#[cfg(unix)]
fn set_mode(path: &Path, executable: bool) -> std::io::Result<()> {
  use std::os::unix::fs::PermissionsExt;
  // Copies take the blob's mode already; only make sure the exec bit is right.
  let meta = std::fs::metadata(path)?;
  let mode = meta.permissions().mode();
  let want = if executable { mode | 0o111 } else { mode };
  if want != mode {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
  }
  Ok(())
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: bool) -> std::io::Result<()> {
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::path::PathBuf;

  fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("blob-a");
    let b = dir.path().join("blob-b");
    std::fs::write(&a, b"{\"name\":\"x\"}").unwrap();
    std::fs::write(&b, b"#!/bin/sh\n").unwrap();
    (dir, a, b)
  }

  /// `n` blobs in `store`, the i-th holding "content i".
  fn numbered_blobs(store: &Path, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(store).unwrap();
    (0..n)
      .map(|i| {
        let blob = store.join(format!("blob-{i}"));
        std::fs::write(&blob, format!("content {i}")).unwrap();
        blob
      })
      .collect()
  }

  #[cfg(unix)]
  #[test]
  fn copies_for_a_build_are_new_files_in_every_chunk() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("files");
    // More files than one chunk of opened blobs, the marker in the middle.
    let blobs = numbered_blobs(&store, PREFETCH * 2 + 3);
    let paths: Vec<String> =
      (0..blobs.len()).map(|i| if i == 70 { "package.json".into() } else { format!("lib/{i}.js") }).collect();
    let files: Vec<PackageFile<'_>> = (0..blobs.len())
      .map(|i| PackageFile { path: &paths[i], blob: &blobs[i], executable: i == 5 })
      .collect();
    let importer = Importer::new(ImportMethod::Hardlink).with_store_files(&store);
    let dest = dir.path().join("pkg");
    // What an interrupted copy left: replaced, not appended to.
    std::fs::create_dir_all(dest.join("lib")).unwrap();
    std::fs::write(dest.join("lib/3.js"), "partial").unwrap();
    assert_eq!(importer.import_package(&dest, &files, true).unwrap(), files.len());
    for (i, path) in paths.iter().enumerate() {
      let meta = std::fs::metadata(dest.join(path)).unwrap();
      assert_eq!(std::fs::read_to_string(dest.join(path)).unwrap(), format!("content {i}"));
      assert_eq!(meta.nlink(), 1, "{path} is a copy, not a link to its blob");
      assert_eq!(meta.mode() & 0o111 != 0, i == 5, "{path}");
    }
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 2, "no temporary marker left");

    // A missing blob fails the import with its path, and leaves no marker.
    std::fs::remove_dir_all(&dest).unwrap();
    std::fs::remove_file(&blobs[100]).unwrap();
    let err = importer.import_package(&dest, &files, true).unwrap_err().to_string();
    assert!(err.contains("blob-100"), "{err}");
    assert!(!dest.join("package.json").exists());
  }

  #[cfg(unix)]
  #[test]
  fn a_package_of_many_files_is_linked_whole_in_chunks() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("files");
    // Several chunks for the pool, in more than one directory, the marker among them.
    let blobs = numbered_blobs(&store, LINK_CHUNK * 3 + 7);
    let paths: Vec<String> = (0..blobs.len())
      .map(|i| if i == 300 { "package.json".into() } else { format!("d{}/{i}.js", i % 5) })
      .collect();
    let files: Vec<PackageFile<'_>> =
      (0..blobs.len()).map(|i| PackageFile { path: &paths[i], blob: &blobs[i], executable: false }).collect();
    let importer = Importer::new(ImportMethod::Hardlink).with_store_files(&store);
    let dest = dir.path().join("pkg");
    // What a killed copy of this package left: a half-written marker under its other name.
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join(marker_temp_name("package.json")), "{\"na").unwrap();
    assert_eq!(importer.import_package(&dest, &files, false).unwrap(), files.len());
    let linked = |dest: &Path| {
      for (i, path) in paths.iter().enumerate() {
        let meta = std::fs::metadata(dest.join(path)).unwrap();
        assert_eq!(meta.ino(), std::fs::metadata(&blobs[i]).unwrap().ino(), "{path} links its blob");
      }
      assert_eq!(std::fs::read_dir(dest).unwrap().count(), 6, "five directories and the marker");
    };
    linked(&dest);
    // Into a directory just made: the same files.
    let new = dir.path().join("new/pkg");
    std::fs::create_dir(dir.path().join("new")).unwrap();
    assert_eq!(importer.import_new_package(&new, &files, false).unwrap(), files.len());
    linked(&new);

    // A blob missing from one chunk fails the import and leaves no marker.
    std::fs::remove_dir_all(&dest).unwrap();
    std::fs::remove_file(&blobs[LINK_CHUNK * 2 + 1]).unwrap();
    let err = importer.import_package(&dest, &files, false).unwrap_err().to_string();
    assert!(err.contains(&format!("blob-{}", LINK_CHUNK * 2 + 1)), "{err}");
    assert!(!dest.join("package.json").exists());
  }

  #[test]
  fn imports_with_every_method() {
    for method in [ImportMethod::Auto, ImportMethod::Hardlink, ImportMethod::Copy, ImportMethod::CloneOrCopy]
    {
      let (dir, a, b) = setup();
      let importer = Importer::new(method);
      let dest = dir.path().join("pkg");
      let files = [
        PackageFile { path: "package.json", blob: &a, executable: false },
        PackageFile { path: "bin/cli", blob: &b, executable: true },
      ];
      assert_eq!(importer.import_package(&dest, &files, false).unwrap(), 2);
      assert_eq!(std::fs::read(dest.join("bin/cli")).unwrap(), b"#!/bin/sh\n");
      #[cfg(unix)]
      {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("bin/cli")).unwrap().permissions().mode();
        assert_eq!(
          mode & 0o111,
          if method == ImportMethod::Copy || method == ImportMethod::CloneOrCopy {
            0o111
          } else {
            mode & 0o111
          }
        );
      }
      assert!(importer.method_used().is_some());
      // Complete already: nothing to do.
      assert_eq!(importer.import_package(&dest, &files, false).unwrap(), 0);
    }
  }
}
