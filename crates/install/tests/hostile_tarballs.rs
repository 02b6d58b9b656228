//! Tarballs whose integrity matches the lockfile (so they are what was published) but whose
//! content is hostile or broken. Whatever they hold, nothing is written outside the package
//! directory and the store; what cannot be installed fails with a coded error and leaves no
//! row and no blob behind.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};

use support::harness::{assert_store_holds_only, code, files_below, key_of, options, run};
use support::{gzip, integrity, Registry};
use tar::EntryType;

/// A tar written header by header, with names and sizes the `tar` crate's safe API refuses.
struct RawTar(tar::Builder<Vec<u8>>);

impl RawTar {
  fn new() -> RawTar {
    RawTar(tar::Builder::new(Vec::new()))
  }

  /// An entry whose header declares `size` bytes, followed by `body` (possibly shorter).
  fn raw(mut self, name: &str, kind: EntryType, body: &[u8], size: u64, link: Option<&str>) -> RawTar {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    if let Some(l) = link {
      h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    self.0.append(&h, body).unwrap();
    self
  }

  fn entry(self, name: &str, kind: EntryType, body: &[u8], link: Option<&str>) -> RawTar {
    self.raw(name, kind, body, body.len() as u64, link)
  }

  fn file(self, name: &str, body: &[u8]) -> RawTar {
    self.entry(name, EntryType::Regular, body, None)
  }

  fn manifest(self) -> RawTar {
    self.file("package/package.json", br#"{"name":"evil","version":"1.0.0"}"#)
  }

  fn tar(self) -> Vec<u8> {
    self.0.into_inner().unwrap()
  }

  fn tgz(self) -> Vec<u8> {
    gzip(&self.tar())
  }
}

struct Case {
  registry: Registry,
  tmp: tempfile::TempDir,
  project: PathBuf,
  store: PathBuf,
  key: String,
}

impl Case {
  fn pkg_dir(&self) -> PathBuf {
    self.project.join("node_modules/.pnpm/evil@1.0.0/node_modules/evil")
  }

  /// Every file under the test's directory is in the store, in the package directory, or
  /// one the test or the install's bookkeeping put there; `secret.txt` is untouched.
  fn assert_nothing_outside(&self) {
    let (pkg, modules) = (self.pkg_dir(), self.project.join("node_modules"));
    let slot = modules.join(".pnpm/evil@1.0.0");
    let expected = |p: &PathBuf| {
      let bookkeeping = p.starts_with(&modules)
        && !p.starts_with(&slot)
        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("escape"));
      p.starts_with(&self.store)
        || p.starts_with(&pkg)
        || bookkeeping
        || p == &self.project.join("pnpm-lock.yaml")
        || p == &self.tmp.path().join("secret.txt")
    };
    let outside: Vec<PathBuf> = files_below(self.tmp.path()).into_iter().filter(|p| !expected(p)).collect();
    assert!(outside.is_empty(), "written outside the package: {outside:?}");
    assert_eq!(std::fs::read_to_string(self.tmp.path().join("secret.txt")).unwrap(), "secret");
  }
}

/// Serves `tgz` as `evil@1.0.0` with its own integrity in the lockfile, and installs it.
async fn install_tarball(
  tgz: Vec<u8>,
) -> (Case, Result<pacquet_install::InstallSummary, pacquet_install::InstallError>) {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
  let lockfile = format!(
    "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      evil:\n        specifier: '1'\n        version: 1.0.0\npackages:\n  evil@1.0.0:\n    resolution: {{integrity: {}}}\nsnapshots:\n  evil@1.0.0: {{}}\n",
    integrity(&tgz)
  );
  let key = key_of(&tgz, "evil", "1.0.0");
  registry.add("/evil/-/evil-1.0.0.tgz", tgz);
  std::fs::write(project.join("pnpm-lock.yaml"), lockfile).unwrap();
  let (result, _) = run(&project, options(&registry, &store)).await;
  (Case { registry, tmp, project, store, key }, result)
}

/// The install failed with `expected`, recorded nothing and imported nothing.
async fn assert_refused(tgz: Vec<u8>, expected: &str, message: &str) {
  let (case, result) = install_tarball(tgz).await;
  let err = result.err().unwrap_or_else(|| panic!("installed although {message}"));
  assert_eq!(code(&err), expected, "{err}");
  assert!(err.to_string().contains(message), "{err} does not say {message:?}");
  assert!(!err.hint().is_empty());
  assert_store_holds_only(&case.store, &[]);
  assert!(!case.pkg_dir().exists());
  case.assert_nothing_outside();
}

fn relative_files(dir: &Path) -> Vec<String> {
  let mut out: Vec<String> =
    files_below(dir).iter().map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned()).collect();
  out.sort();
  out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_and_absolute_paths_are_resolved_inside_the_package() {
  let tgz = RawTar::new()
    .manifest()
    .file("package/../../../escape-1.txt", b"1")
    .file("package/sub/../../../escape-2.txt", b"2")
    .file("package\\..\\..\\escape-3.txt", b"3")
    .file("/escape-4.txt", b"4")
    .file("/tmp/escape-5.txt", b"5")
    .tgz();
  let (case, result) = install_tarball(tgz).await;
  result.unwrap();
  let files = relative_files(&case.pkg_dir());
  assert_eq!(
    files,
    ["escape-1.txt", "escape-2.txt", "escape-3.txt", "escape-4.txt", "package.json", "tmp/escape-5.txt"]
  );
  case.assert_nothing_outside();
  assert_store_holds_only(&case.store, &[&case.key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_dropped_and_hard_links_become_plain_files() {
  let case_dir = tempfile::tempdir().unwrap();
  let outside = case_dir.path().join("outside");
  let tgz = RawTar::new()
    .manifest()
    .entry("package/link-out", EntryType::Symlink, b"", Some("../../../../../.."))
    .file("package/link-out/escape.txt", b"through the link?")
    .entry("package/abs-link", EntryType::Symlink, b"", Some(outside.to_str().unwrap()))
    .entry("package/hard", EntryType::Link, b"", Some("/etc/passwd"))
    .entry("package/hard-rel", EntryType::Link, b"", Some("../../secret.txt"))
    .tgz();
  let (case, result) = install_tarball(tgz).await;
  result.unwrap();
  let pkg = case.pkg_dir();
  // As pnpm: a hard link entry is a file of its own (empty here), never a link.
  assert_eq!(relative_files(&pkg), ["hard", "hard-rel", "link-out/escape.txt", "package.json"]);
  for name in ["hard", "hard-rel", "link-out"] {
    assert!(!std::fs::symlink_metadata(pkg.join(name)).unwrap().file_type().is_symlink(), "{name}");
  }
  assert_eq!(std::fs::read(pkg.join("hard")).unwrap(), b"");
  assert!(std::fs::symlink_metadata(pkg.join("abs-link")).is_err());
  assert!(!outside.exists());
  case.assert_nothing_outside();
  assert_store_holds_only(&case.store, &[&case.key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_and_fifo_entries_fail_the_tarball_as_in_pnpm() {
  for (kind, name) in [(EntryType::Char, "tty"), (EntryType::Block, "disk"), (EntryType::Fifo, "pipe")] {
    let tgz = RawTar::new().manifest().entry(&format!("package/{name}"), kind, b"", None).tgz();
    assert_refused(tgz, "ERR_PNPM_TARBALL_EXTRACT", &format!("package/{name}")).await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_is_both_a_file_and_a_directory_fails_the_tarball() {
  let file_first = RawTar::new().manifest().file("package/lib", b"file").file("package/lib/a.js", b"a").tgz();
  assert_refused(file_first, "ERR_PNPM_TARBALL_EXTRACT", "lib is a file in one entry and a directory").await;
  let dir_first =
    RawTar::new().manifest().file("package/lib/a/b.js", b"b").file("package/lib/a", b"file").tgz();
  assert_refused(dir_first, "ERR_PNPM_TARBALL_EXTRACT", "lib/a is a file in one entry and a directory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_entries_keep_the_last_one_and_store_only_it() {
  let tgz = RawTar::new()
    .manifest()
    .file("package/dup.txt", b"first")
    .file("package/other.txt", b"other")
    .file("package/dup.txt", b"second")
    .tgz();
  let (case, result) = install_tarball(tgz).await;
  result.unwrap();
  let pkg = case.pkg_dir();
  assert_eq!(std::fs::read(pkg.join("dup.txt")).unwrap(), b"second");
  assert_eq!(relative_files(&pkg), ["dup.txt", "other.txt", "package.json"]);
  // The first copy never reached the store.
  assert_store_holds_only(&case.store, &[&case.key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_declares_100_gb_is_refused_before_reading() {
  let tgz =
    RawTar::new().manifest().raw("package/huge.bin", EntryType::Regular, b"tiny", 100 << 30, None).tgz();
  assert_refused(tgz, "ERR_PNPM_TARBALL_TOO_LARGE", "unpacks to more than").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_shorter_than_its_header_says_is_a_corrupt_tarball() {
  let tgz =
    RawTar::new().manifest().raw("package/short.bin", EntryType::Regular, b"tiny", 1 << 20, None).tgz();
  assert_refused(tgz, "ERR_PNPM_TARBALL_EXTRACT", "short.bin").await;
}

/// A gzip stream of `tar` followed by `zeros` zero bytes, compressed as it is written
/// (at the best level: ~1000×, what a bomb uses).
fn gzip_with_zeros(tar: &[u8], zeros: u64) -> Vec<u8> {
  let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
  enc.write_all(tar).unwrap();
  std::io::copy(&mut std::io::Read::take(std::io::repeat(0), zeros), &mut enc).unwrap();
  enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_refused() {
  // 300 MiB of zeros after the end of the archive: ~300 KiB on the wire, past the bound
  // (256 MiB, or 200× the tarball when larger) before any file is stored.
  let tar = RawTar::new().manifest().file("package/index.js", b"1").tar();
  assert_refused(gzip_with_zeros(&tar, 300 << 20), "ERR_PNPM_TARBALL_TOO_LARGE", "unpacks to more than")
    .await;

  // The same size as honest entries: refused when the entry that crosses the bound is seen.
  let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
  {
    let mut builder = tar::Builder::new(&mut enc);
    let mut h = tar::Header::new_gnu();
    h.set_size(34);
    h.set_mode(0o644);
    builder
      .append_data(&mut h, "package/package.json", &br#"{"name":"evil","version":"1.0.0"}"#[..])
      .unwrap();
    for i in 0..20 {
      let mut h = tar::Header::new_gnu();
      h.set_size(16 << 20);
      h.set_mode(0o644);
      let zeros = std::io::Read::take(std::io::repeat(0), 16 << 20);
      builder.append_data(&mut h, format!("package/zeros-{i}.bin"), zeros).unwrap();
    }
    builder.finish().unwrap();
  }
  let (case, result) = install_tarball(enc.finish().unwrap()).await;
  assert_eq!(code(&result.unwrap_err()), "ERR_PNPM_TARBALL_TOO_LARGE");
  // Past the bytes held back, blobs may be in the store (as pnpm leaves them), but no row.
  assert_eq!(support::harness::row_count(&case.store), 0);
  assert!(!files_below(&case.store).iter().any(|p| p.to_string_lossy().ends_with(".tmp")));
  assert!(!case.pkg_dir().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tar_is_accepted_as_pnpm_does() {
  let (case, result) = install_tarball(RawTar::new().manifest().file("package/a.js", b"a").tar()).await;
  result.unwrap();
  assert_eq!(relative_files(&case.pkg_dir()), ["a.js", "package.json"]);
  assert_store_holds_only(&case.store, &[&case.key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_neither_gzip_nor_tar_is_refused() {
  let html = b"<html><body>Service Unavailable</body></html>".repeat(40);
  assert_refused(html, "ERR_PNPM_TARBALL_EXTRACT", "evil@1.0.0").await;
  assert_refused(Vec::new(), "ERR_PNPM_TARBALL_EXTRACT", "empty").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_gzip_is_refused() {
  let tgz = RawTar::new().manifest().file("package/a.js", &[7u8; 5000]).tgz();
  // Cut in the middle of the data, and cut only the gzip trailer (CRC and size).
  for cut in [tgz.len() / 2, tgz.len() - 8] {
    assert_refused(tgz[..cut].to_vec(), "ERR_PNPM_TARBALL_EXTRACT", "evil@1.0.0").await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_without_package_json_gets_pnpms_placeholder() {
  let (case, result) = install_tarball(RawTar::new().file("package/index.js", b"1").tgz()).await;
  result.unwrap();
  let manifest = std::fs::read_to_string(case.pkg_dir().join("package.json")).unwrap();
  assert!(manifest.contains("\"_pnpmPlaceholder\""), "{manifest}");
  assert_store_holds_only(&case.store, &[&case.key]);
  // The row records no manifest: the placeholder is not the package's.
  let dir = pacquet_store::StoreDir::new(&case.store);
  let rows = pacquet_store::IndexReader::open(&dir).unwrap().get_many(&[case.key.as_str()]).unwrap();
  let row = pacquet_store::msgpackr::decode(&rows[&case.key]).unwrap();
  assert!(row.manifest.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_json_naming_another_package_is_caught_when_read_from_the_store() {
  let other = br#"{"name":"someone-else","version":"9.9.9"}"#;
  let (case, result) = install_tarball(RawTar::new().file("package/package.json", other).tgz()).await;
  // pnpm 11 checks name and version when it reads a package from the store, not when it
  // downloads it: the first install succeeds.
  result.unwrap();
  let (project, store, registry) = (&case.project, &case.store, &case.registry);
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  let err = run(project, options(registry, store)).await.0.unwrap_err();
  assert_eq!(code(&err), "ERR_PNPM_UNEXPECTED_PKG_CONTENT_IN_STORE");
  assert!(
    err.to_string().contains("someone-else@9.9.9") || err.hint().contains("someone-else@9.9.9"),
    "{err}"
  );
  assert!(!project.join("node_modules").exists());
  let mut lenient = options(registry, store);
  lenient.strict_store_pkg_content_check = Some(false);
  run(project, lenient).await.0.unwrap();
  assert!(project.join("node_modules/evil/package.json").is_file());
}
