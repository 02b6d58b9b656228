//! End-to-end installs against a registry served from this process.

mod support;

use std::path::Path;
use std::sync::Arc;

use pacquet_install::{install, Event, LockfileSource};
use support::harness::{code, options, row_count, run};
use support::{publish, Pkg, Registry};
use tokio_util::sync::CancellationToken;

fn graph() -> Vec<Pkg> {
  vec![
    Pkg::new("a", "1.0.0").dep("b", "2.0.0").dep("c-alias", "c@3.0.0").file(
      "bin/a.js",
      b"#!/usr/bin/env node\n",
      0o755,
    ),
    Pkg::new("b", "2.0.0").dep("@s/d", "1.0.0"),
    Pkg::new("c", "3.0.0"),
    Pkg::new("@s/d", "1.0.0").dep("b", "2.0.0"),
  ]
}

/// A project whose lockfile has [`graph`] (`a` direct), installed once: registry, temporary
/// directory, project, store.
async fn graph_installed() -> (Registry, tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(project.join("pnpm-lock.yaml"), publish(&registry, &graph(), &[("a", "1.0.0")])).unwrap();
  run(&project, options(&registry, &store)).await.0.unwrap();
  (registry, tmp, project, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_a_graph_into_the_store_and_the_virtual_store() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(
    project.join("pnpm-lock.yaml"),
    publish(&registry, &graph(), &[("a", "1.0.0"), ("my-c", "c@3.0.0")]),
  )
  .unwrap();

  let (result, events) = run(&project, options(&registry, &store)).await;
  let summary = result.unwrap();
  assert_eq!((summary.added, summary.fetched, summary.reused), (4, 4, 0));

  let vsd = project.join("node_modules/.pnpm");
  let a = vsd.join("a@1.0.0/node_modules/a");
  assert_eq!(std::fs::read_to_string(a.join("index.js")).unwrap(), "module.exports = 'a@1.0.0'\n");
  #[cfg(unix)]
  {
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(a.join("bin/a.js")).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::metadata(a.join("index.js")).unwrap().permissions().mode() & 0o111, 0);
  }
  // Relative links between slots, aliases included; scoped names get a `+` slot.
  let link = |p: &str| std::fs::read_link(vsd.join(p)).unwrap();
  assert_eq!(link("a@1.0.0/node_modules/b"), Path::new("../../b@2.0.0/node_modules/b"));
  assert_eq!(link("a@1.0.0/node_modules/c-alias"), Path::new("../../c@3.0.0/node_modules/c"));
  assert_eq!(link("b@2.0.0/node_modules/@s/d"), Path::new("../../../@s+d@1.0.0/node_modules/@s/d"));
  assert!(vsd.join("@s+d@1.0.0/node_modules/@s/d/package.json").is_file());
  // The importer's direct links.
  assert_eq!(
    std::fs::read_link(project.join("node_modules/a")).unwrap(),
    Path::new(".pnpm/a@1.0.0/node_modules/a")
  );
  assert_eq!(
    std::fs::read_link(project.join("node_modules/my-c")).unwrap(),
    Path::new(".pnpm/c@3.0.0/node_modules/c")
  );
  // Store: blobs named by content, and one row per package.
  let bin_blob = store.join("v11/files").join(&pacquet_store::sha512_hex(b"#!/usr/bin/env node\n")[..2]);
  assert!(std::fs::read_dir(bin_blob).unwrap().any(|e| e
    .unwrap()
    .file_name()
    .to_string_lossy()
    .ends_with("-exec")));
  assert_eq!(row_count(&store), 4);
  // Events in pnpm's shapes.
  let count = |status: &str| {
    events.iter().filter(|e| matches!(e, Event::Progress { status: s, .. } if *s == status)).count()
  };
  assert_eq!((count("resolved"), count("fetched")), (4, 4));
  assert_eq!(events.iter().filter(|e| matches!(e, Event::Imported { .. })).count(), 4);

  // Again with node_modules gone: everything comes from the store, nothing is downloaded.
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  registry.clear_requests();
  let (result, _) = run(&project, options(&registry, &store)).await;
  let summary = result.unwrap();
  assert_eq!((summary.fetched, summary.reused), (0, 4));
  assert!(registry.requests().is_empty(), "{:?}", registry.requests());
  assert!(project.join("node_modules/.pnpm/a@1.0.0/node_modules/a/bin/a.js").is_file());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_files_are_their_store_blobs_also_after_an_interrupted_import() {
  use std::os::unix::fs::MetadataExt;
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let lockfile = publish(&registry, &graph(), &[("a", "1.0.0")]);
  std::fs::write(project.join("pnpm-lock.yaml"), &lockfile).unwrap();
  let blob = |bytes: &[u8], exec: bool| {
    pacquet_store::StoreDir::new(store.join("v11")).blob_path(&pacquet_store::sha512_hex(bytes), exec)
  };
  let slot = project.join("node_modules/.pnpm/a@1.0.0/node_modules/a");
  let same_file = |file: &Path, blob: &Path| {
    let (f, b) = (std::fs::metadata(file).unwrap(), std::fs::metadata(blob).unwrap());
    (f.dev(), f.ino()) == (b.dev(), b.ino())
  };
  let check = || {
    assert_eq!(std::fs::read(slot.join("index.js")).unwrap(), b"module.exports = 'a@1.0.0'\n");
    assert!(same_file(&slot.join("index.js"), &blob(b"module.exports = 'a@1.0.0'\n", false)));
    assert!(same_file(&slot.join("bin/a.js"), &blob(b"#!/usr/bin/env node\n", true)));
    let manifest = std::fs::read(slot.join("package.json")).unwrap();
    assert!(same_file(&slot.join("package.json"), &blob(&manifest, false)));
    // Nothing but content-named blobs in the store, nothing but the package in its directory.
    for shard in std::fs::read_dir(store.join("v11/files")).unwrap() {
      for entry in std::fs::read_dir(shard.unwrap().path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.len() >= 126 && !name.contains('.'), "{name}");
      }
    }
    let mut names: Vec<String> = std::fs::read_dir(&slot)
      .unwrap()
      .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
      .collect();
    names.sort();
    assert_eq!(names, ["bin", "index.js", "package.json"]);
  };
  run(&project, options(&registry, &store)).await.0.unwrap();
  check();

  // A killed install: the store is gone, the slot holds a torn file and a half-written marker
  // but no package.json. A cold install puts whole files there, one with their blobs.
  std::fs::remove_dir_all(&store).unwrap();
  std::fs::remove_file(slot.join("package.json")).unwrap();
  std::fs::remove_file(slot.join("index.js")).unwrap();
  std::fs::write(slot.join("index.js"), b"module.exp").unwrap();
  std::fs::write(slot.join(".package.json.pacquet-marker-1.tmp"), b"{\"na").unwrap();
  std::fs::remove_file(project.join("node_modules/.pnpm/lock.yaml")).unwrap();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!(summary.fetched, 4);
  check();

  // A store holding a torn blob of one of the files: replaced by the whole one.
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  std::fs::remove_dir_all(&store).unwrap();
  let torn = blob(b"module.exports = 'a@1.0.0'\n", false);
  std::fs::create_dir_all(torn.parent().unwrap()).unwrap();
  std::fs::write(&torn, b"module.exports").unwrap();
  run(&project, options(&registry, &store)).await.0.unwrap();
  check();
}

/// A store on another file system: nothing can be hard-linked between it and the project, so
/// packages are copied, and the store still gets every blob and row.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_another_file_system_gets_copies() {
  use std::os::unix::fs::MetadataExt;
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
    eprintln!("skipped: no /dev/shm");
    return;
  };
  if std::fs::metadata(other.path()).unwrap().dev() == std::fs::metadata(tmp.path()).unwrap().dev() {
    eprintln!("skipped: /dev/shm is on the same file system as {}", tmp.path().display());
    return;
  }
  let (project, store) = (tmp.path().join("p"), other.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(project.join("pnpm-lock.yaml"), publish(&registry, &graph(), &[("a", "1.0.0")])).unwrap();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!((summary.fetched, summary.import_method.as_deref()), (4, Some("copy")));
  let a = project.join("node_modules/.pnpm/a@1.0.0/node_modules/a");
  for (file, bytes, exec) in
    [("index.js", &b"module.exports = 'a@1.0.0'\n"[..], false), ("bin/a.js", b"#!/usr/bin/env node\n", true)]
  {
    let meta = std::fs::metadata(a.join(file)).unwrap();
    assert_eq!((std::fs::read(a.join(file)).unwrap(), meta.nlink()), (bytes.to_vec(), 1));
    assert_eq!(meta.mode() & 0o111 != 0, exec);
    let blob = pacquet_store::StoreDir::new(&store).blob_path(&pacquet_store::sha512_hex(bytes), exec);
    assert_eq!(std::fs::read(blob).unwrap(), bytes);
  }
  assert_eq!(row_count(&store), 4);
  // And a warm install from that store copies again, downloading nothing.
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  registry.clear_requests();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!((summary.fetched, summary.reused), (0, 4));
  assert!(registry.requests().is_empty());
  assert_eq!(std::fs::read(a.join("index.js")).unwrap(), b"module.exports = 'a@1.0.0'\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_blob_is_detected_and_fetched_again() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(
    project.join("pnpm-lock.yaml"),
    publish(&registry, &[Pkg::new("c", "3.0.0")], &[("c", "3.0.0")]),
  )
  .unwrap();
  run(&project, options(&registry, &store)).await.0.unwrap();
  let blob = store.join("v11").join(
    pacquet_store::StoreDir::new(&store)
      .blob_path(&pacquet_store::sha512_hex(b"module.exports = 'c@3.0.0'\n"), false)
      .strip_prefix(store.join("v11"))
      .unwrap(),
  );
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  // Same size, other bytes, and a newer mtime than the row's checkedAt.
  std::thread::sleep(std::time::Duration::from_millis(150));
  std::fs::write(&blob, b"module.exports = 'evil!!'\n\n").unwrap();
  registry.clear_requests();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!(summary.fetched, 1);
  assert_eq!(registry.requests().len(), 1);
  assert_eq!(
    std::fs::read_to_string(project.join("node_modules/c/index.js")).unwrap(),
    "module.exports = 'c@3.0.0'\n"
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_index_is_gone_is_filled_again() {
  // Without index.db the store holds no package for pnpm, whatever blobs are left in files/.
  let (registry, _tmp, project, store) = graph_installed().await;
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  let index = store.join("v11").join("index.db");
  for suffix in ["", "-wal", "-shm"] {
    let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
  }
  registry.clear_requests();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!((summary.fetched, summary.reused), (4, 0));
  assert_eq!(registry.requests().len(), 4);
  assert_eq!(
    std::fs::read(project.join("node_modules/a/index.js")).unwrap(),
    b"module.exports = 'a@1.0.0'\n"
  );
  // The index is whole again: the next install needs nothing from the registry.
  assert!(index.exists());
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  registry.clear_requests();
  assert_eq!(run(&project, options(&registry, &store)).await.0.unwrap().reused, 4);
  assert!(registry.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_install_of_many_packages_refetches_exactly_the_damaged_ones() {
  // Enough packages that the store is read in several chunks; damage in the first and last.
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let names: Vec<&'static str> = (0..300).map(|i| &*Box::leak(format!("pkg{i}").into_boxed_str())).collect();
  let pkgs: Vec<Pkg> = names.iter().map(|n| Pkg::new(n, "1.0.0")).collect();
  let direct: Vec<(&str, &str)> = names.iter().map(|n| (*n, "1.0.0")).collect();
  std::fs::write(project.join("pnpm-lock.yaml"), publish(&registry, &pkgs, &direct)).unwrap();
  run(&project, options(&registry, &store)).await.0.unwrap();
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  let damaged = ["pkg0", "pkg299"];
  // Newer than the rows' checkedAt, so the blobs are hashed again.
  std::thread::sleep(std::time::Duration::from_millis(150));
  for name in damaged {
    let content = format!("module.exports = '{name}@1.0.0'\n");
    let blob = pacquet_store::StoreDir::new(store.join("v11"))
      .blob_path(&pacquet_store::sha512_hex(content.as_bytes()), false);
    std::fs::write(&blob, content.replace("module", "mod-ule")).unwrap();
  }
  registry.clear_requests();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!((summary.fetched, summary.reused), (2, 298));
  let mut fetched = registry.requests();
  fetched.sort();
  assert_eq!(fetched, ["/pkg0/-/pkg0-1.0.0.tgz", "/pkg299/-/pkg299-1.0.0.tgz"]);
  for name in ["pkg0", "pkg150", "pkg299"] {
    assert_eq!(
      std::fs::read_to_string(project.join("node_modules").join(name).join("index.js")).unwrap(),
      format!("module.exports = '{name}@1.0.0'\n")
    );
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrity_mismatch_fails_and_records_nothing() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let c = Pkg::new("c", "3.0.0");
  let lockfile = publish(&registry, &[c], &[("c", "3.0.0")]);
  registry.add("/c/-/c-3.0.0.tgz", Pkg::new("c", "3.0.0").file("extra.js", b"x", 0o644).tarball());
  std::fs::write(project.join("pnpm-lock.yaml"), lockfile).unwrap();
  let (result, _) = run(&project, options(&registry, &store)).await;
  let err = result.unwrap_err();
  assert_eq!(code(&err), "ERR_PNPM_TARBALL_INTEGRITY");
  assert!(!err.hint().is_empty());
  assert_eq!(row_count(&store), 0);
  assert!(!project.join("node_modules/.pnpm/c@3.0.0/node_modules/c").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_retry_only_where_pnpm_retries() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(
    project.join("pnpm-lock.yaml"),
    publish(&registry, &[Pkg::new("c", "3.0.0")], &[("c", "3.0.0")]),
  )
  .unwrap();

  // 503 twice, then the body: succeeds after two retries, each reported.
  registry.fail("/c/-/c-3.0.0.tgz", &[503, 500]);
  let (result, events) = run(&project, options(&registry, &store)).await;
  result.unwrap();
  let retries: Vec<_> = events.iter().filter(|e| matches!(e, Event::RequestRetry { .. })).collect();
  assert_eq!(retries.len(), 2);
  assert!(matches!(retries[0], Event::RequestRetry { http_status: Some(503), attempt: 1, .. }));

  // 404 is final: one request, a coded error.
  let tmp2 = tempfile::tempdir().unwrap();
  std::fs::write(
    tmp2.path().join("pnpm-lock.yaml"),
    publish(&registry, &[Pkg::new("b", "2.0.0")], &[("b", "2.0.0")]),
  )
  .unwrap();
  registry.fail("/b/-/b-2.0.0.tgz", &[404, 404, 404]);
  registry.clear_requests();
  let (result, _) = run(tmp2.path(), options(&registry, &store)).await;
  assert_eq!(code(&result.unwrap_err()), "ERR_PNPM_FETCH_404");
  assert_eq!(registry.requests().len(), 1);

  // 500 forever: retries run out, the error says so.
  registry.fail("/b/-/b-2.0.0.tgz", &[500, 500, 500]);
  let (result, _) = run(tmp2.path(), options(&registry, &store)).await;
  assert_eq!(code(&result.unwrap_err()), "ERR_PNPM_FETCH_500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_never_touches_the_network() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(project.join("pnpm-lock.yaml"), publish(&registry, &graph(), &[("a", "1.0.0")])).unwrap();
  let mut o = options(&registry, &store);
  o.offline = true;
  let err = run(&project, o.clone()).await.0.unwrap_err();
  assert_eq!(code(&err), "ERR_PNPM_NO_OFFLINE_TARBALL");
  assert!(registry.requests().is_empty());
  assert!(!project.join("node_modules").exists());
  // Filled once online, the store serves an offline install.
  run(&project, options(&registry, &store)).await.0.unwrap();
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  registry.clear_requests();
  assert_eq!(run(&project, o).await.0.unwrap().reused, 4);
  assert!(registry.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_packages_for_other_platforms_are_skipped() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let mut native = Pkg::new("native", "1.0.0");
  native.optional = true;
  native.os = Some("aix");
  let lockfile = publish(&registry, &[Pkg::new("host", "1.0.0"), native], &[("host", "1.0.0")])
    .replace("  'host@1.0.0': {}", "  'host@1.0.0':\n    optionalDependencies:\n      native: 1.0.0");
  std::fs::write(project.join("pnpm-lock.yaml"), lockfile).unwrap();
  let (result, events) = run(&project, options(&registry, &store)).await;
  let summary = result.unwrap();
  assert_eq!(summary.skipped, vec!["native@1.0.0".to_string()]);
  assert_eq!(summary.added, 1);
  assert!(events.iter().any(|e| matches!(e, Event::SkippedOptional { name, .. } if name == "native")));
  assert!(!project.join("node_modules/.pnpm/native@1.0.0").exists());
  assert!(!project.join("node_modules/.pnpm/host@1.0.0/node_modules/native").exists());
  assert!(!registry.requests().iter().any(|r| r.contains("native")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_install_stops_with_abort() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(project.join("pnpm-lock.yaml"), publish(&registry, &graph(), &[("a", "1.0.0")])).unwrap();
  let cancel = CancellationToken::new();
  cancel.cancel();
  let result = install(
    LockfileSource::Path(project.clone()),
    options(&registry, &store),
    Arc::new(pacquet_install::NoopReporter),
    cancel,
  )
  .await;
  assert_eq!(code(&result.unwrap_err()), "ABORT_ERR");
  assert!(registry.requests().is_empty());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_get_copies_and_bins_get_their_exec_bit() {
  use std::os::unix::fs::{MetadataExt, PermissionsExt};
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let mut built = Pkg::new("built", "1.0.0");
  built.files[0].1 = br#"{"name":"built","version":"1.0.0","scripts":{"postinstall":"node x.js"}}"#.to_vec();
  let mut tool = Pkg::new("tool", "1.0.0");
  tool.files[0].1 = br#"{"name":"tool","version":"1.0.0","bin":{"tool":"./cli.js"}}"#.to_vec();
  let tool = tool.file("cli.js", b"#!/usr/bin/env node\n", 0o644);
  let lockfile = publish(&registry, &[built, tool], &[("built", "1.0.0"), ("tool", "1.0.0")]);
  std::fs::write(project.join("pnpm-lock.yaml"), lockfile).unwrap();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  // The host runs builds: the addon says which, and pnpm's .modules.yaml says they are blocked
  // until allowed (no allowBuilds given).
  assert_eq!(summary.deps_requiring_build, vec!["built@1.0.0".to_string()]);
  let modules: serde_json::Value =
    serde_json::from_str(&std::fs::read_to_string(project.join("node_modules/.modules.yaml")).unwrap())
      .unwrap();
  assert_eq!(modules["ignoredBuilds"], serde_json::json!(["built@1.0.0"]));
  assert_eq!(modules["pendingBuilds"], serde_json::json!([]));
  let vsd = project.join("node_modules/.pnpm");
  // A package with an install script is copied: its build must not write into the store.
  assert_eq!(std::fs::metadata(vsd.join("built@1.0.0/node_modules/built/index.js")).unwrap().nlink(), 1);
  assert!(std::fs::metadata(vsd.join("tool@1.0.0/node_modules/tool/index.js")).unwrap().nlink() > 1);
  let cli = std::fs::metadata(vsd.join("tool@1.0.0/node_modules/tool/cli.js")).unwrap();
  assert_eq!(cli.permissions().mode() & 0o777, 0o755);
  // The importer's `.bin` has a shim for it.
  let shim = std::fs::read_to_string(project.join("node_modules/.bin/tool")).unwrap();
  assert!(shim.starts_with("#!/bin/sh") && shim.contains("tool/cli.js"), "{shim}");
  // Same from a warm store; with scripts ignored the build is recorded as pending.
  std::fs::remove_dir_all(project.join("node_modules")).unwrap();
  let mut o = options(&registry, &store);
  o.ignore_scripts = true;
  run(&project, o).await.0.unwrap();
  let modules: serde_json::Value =
    serde_json::from_str(&std::fs::read_to_string(project.join("node_modules/.modules.yaml")).unwrap())
      .unwrap();
  assert_eq!(modules["pendingBuilds"], serde_json::json!(["built@1.0.0"]));
  assert_eq!(std::fs::metadata(vsd.join("built@1.0.0/node_modules/built/index.js")).unwrap().nlink(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_and_incremental_installs_touch_only_what_changed() {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let lockfile = publish(&registry, &graph(), &[("a", "1.0.0")]);
  std::fs::write(project.join("pnpm-lock.yaml"), &lockfile).unwrap();
  run(&project, options(&registry, &store)).await.0.unwrap();

  // State files as pnpm writes them.
  let modules: serde_json::Value =
    serde_json::from_str(&std::fs::read_to_string(project.join("node_modules/.modules.yaml")).unwrap())
      .unwrap();
  assert_eq!(modules["layoutVersion"], 5);
  assert_eq!(modules["virtualStoreDir"], ".pnpm");
  assert_eq!(modules["storeDir"], store.join("v11").to_string_lossy().as_ref());
  assert_eq!(std::fs::read_to_string(project.join("node_modules/.pnpm/lock.yaml")).unwrap(), lockfile);

  // Nothing changed: nothing is done.
  registry.clear_requests();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!((summary.added, summary.fetched, summary.reused, summary.files_imported), (0, 0, 0, 0));

  // A slot removed by hand is noticed and restored.
  std::fs::remove_dir_all(project.join("node_modules/.pnpm/c@3.0.0")).unwrap();
  let summary = run(&project, options(&registry, &store)).await.0.unwrap();
  assert_eq!((summary.added, summary.reused), (1, 1));
  assert!(project.join("node_modules/.pnpm/c@3.0.0/node_modules/c/index.js").is_file());

  // The lockfile changes: `c` goes, `e` comes; the other slots are kept as they are.
  // A file's inode and change time (a new hard link to it would change the latter), and the
  // inode of its slot directory (a slot made again would have a new one).
  let inode = |p: &str| {
    use std::os::unix::fs::MetadataExt;
    let vsd = project.join("node_modules/.pnpm");
    let file = std::fs::metadata(vsd.join(p)).unwrap();
    let slot = std::fs::metadata(vsd.join(p.split('/').next().unwrap())).unwrap();
    (file.ino(), file.ctime(), file.ctime_nsec(), slot.ino())
  };
  let kept = ["b@2.0.0/node_modules/b/index.js", "@s+d@1.0.0/node_modules/@s/d/package.json"];
  let before: Vec<_> = kept.iter().map(|p| inode(p)).collect();
  let mut pkgs = graph();
  pkgs[0].deps.retain(|(alias, _)| *alias != "c-alias");
  pkgs.retain(|p| p.name != "c");
  pkgs.push(Pkg::new("e", "1.0.0"));
  let lockfile = publish(&registry, &pkgs, &[("a", "1.0.0"), ("e", "1.0.0")]);
  std::fs::write(project.join("pnpm-lock.yaml"), &lockfile).unwrap();
  registry.clear_requests();
  let (result, events) = run(&project, options(&registry, &store)).await;
  let summary = result.unwrap();
  // `a` changed (it lost a dependency), `e` is new; `b` and `@s/d` are untouched.
  assert_eq!(summary.added, 2);
  assert!(events.iter().any(|e| matches!(e, Event::Stats { removed: Some(1), .. })));
  assert!(!project.join("node_modules/.pnpm/c@3.0.0").exists());
  assert!(std::fs::symlink_metadata(project.join("node_modules/.pnpm/a@1.0.0/node_modules/c-alias")).is_err());
  assert!(project.join("node_modules/e").exists());
  assert_eq!(registry.requests(), vec!["/e/-/e-1.0.0.tgz".to_string()]);
  // Unchanged slots were not re-imported: same files, same inodes.
  assert_eq!(kept.iter().map(|p| inode(p)).collect::<Vec<_>>(), before);

  // Another store: the layout differs, so node_modules is rebuilt against it.
  let other = tmp.path().join("other-store");
  let summary = run(&project, options(&registry, &other)).await.0.unwrap();
  assert_eq!(summary.added, 4);
  let modules = std::fs::read_to_string(project.join("node_modules/.modules.yaml")).unwrap();
  assert!(modules.contains(&*other.join("v11").to_string_lossy()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_status_lists_packages_changed_in_node_modules() {
  let (registry, _tmp, project, store) = graph_installed().await;
  let status =
    || pacquet_install::store_status(LockfileSource::Path(project.clone()), options(&registry, &store));
  assert!(status().unwrap().is_empty());
  assert_eq!(pacquet_install::store_path(options(&registry, &store)).unwrap(), store.join("v11"));
  // An edit in node_modules is an edit of the store (hardlinks): reported.
  std::fs::write(project.join("node_modules/.pnpm/b@2.0.0/node_modules/b/index.js"), "edited").unwrap();
  assert_eq!(status().unwrap(), vec!["b@2.0.0".to_string()]);
}
