//! Lockfiles that are broken or written to harm: each fails with pnpm's code, names the key
//! at fault, and leaves nothing behind (no store, no `node_modules`, no request).

mod support;

use support::harness::{code, options, run};
use support::Registry;

const INTEGRITY: &str = "sha512-AAAA";

/// `importers` with one dependency `alias: reference`, and packages/snapshots for `x@1.0.0`.
fn with_dependency(alias: &str, reference: &str) -> String {
  format!(
    "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      '{alias}':\n        specifier: '1'\n        version: '{reference}'\npackages:\n  x@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\nsnapshots:\n  x@1.0.0: {{}}\n"
  )
}

/// `x@1.0.0` depends on `alias: reference` from its snapshot.
fn with_snapshot_dependency(alias: &str, reference: &str) -> String {
  format!(
    "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      x:\n        specifier: '1'\n        version: 1.0.0\npackages:\n  x@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\n  y@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\nsnapshots:\n  x@1.0.0:\n    dependencies:\n      '{alias}': '{reference}'\n  y@1.0.0: {{}}\n"
  )
}

fn with_integrity(integrity: &str) -> String {
  with_dependency("x", "1.0.0").replace(INTEGRITY, integrity)
}

/// Installs `text` and checks the error: its code, that its message (or hint) names
/// `culprit`, and that nothing was written or requested.
async fn assert_rejected(text: &str, expected: &str, culprit: &str) {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  std::fs::write(project.join("pnpm-lock.yaml"), text).unwrap();
  let err = run(&project, options(&registry, &store)).await.0.unwrap_err();
  assert_eq!(code(&err), expected, "{err}\n---\n{text}");
  let said = format!("{err} {}", err.hint());
  assert!(said.contains(culprit), "{said:?} does not name {culprit:?}");
  let left: Vec<_> = std::fs::read_dir(&project).unwrap().map(|e| e.unwrap().file_name()).collect();
  assert_eq!(left, ["pnpm-lock.yaml"], "written into the project");
  assert!(!store.exists(), "the store was created");
  assert!(registry.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_yaml_is_a_broken_lockfile_with_its_line() {
  let text = "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      a: {specifier: '1', version: 1.0.0\n  packages: [\n";
  assert_rejected(text, "ERR_PNPM_BROKEN_LOCKFILE", "pnpm-lock.yaml").await;
  assert_rejected(text, "ERR_PNPM_BROKEN_LOCKFILE", "line").await;
  assert_rejected("\u{0}\u{1}binary", "ERR_PNPM_BROKEN_LOCKFILE", "pnpm-lock.yaml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_lockfile_versions_are_a_breaking_change() {
  for version in ["'6.0'", "'5.4'", "'10.0'", "9x", "'abc'"] {
    let text = with_dependency("x", "1.0.0").replace("'9.0'", version);
    assert_rejected(&text, "ERR_PNPM_LOCKFILE_BREAKING_CHANGE", version.trim_matches('\'')).await;
  }
  let text = with_dependency("x", "1.0.0").replace("lockfileVersion: '9.0'\n", "");
  assert_rejected(&text, "ERR_PNPM_BROKEN_LOCKFILE", "lockfileVersion").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sections_and_fields_name_what_is_missing() {
  let full = with_dependency("x", "1.0.0");
  // No packages: the snapshot has no package entry.
  let no_packages =
    full.replace(&format!("packages:\n  x@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\n"), "");
  assert_rejected(&no_packages, "ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY", "x@1.0.0").await;
  // No snapshots: the importer's dependency goes nowhere.
  let no_snapshots = full.replace("snapshots:\n  x@1.0.0: {}\n", "");
  assert_rejected(&no_snapshots, "ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY", "importers['.']").await;
  // A snapshot's dependency without its own snapshot.
  let dangling = with_snapshot_dependency("z", "1.0.0");
  assert_rejected(&dangling, "ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY", "z@1.0.0").await;
  // A package without resolution, an importer dependency without version.
  let no_resolution =
    full.replace(&format!("    resolution: {{integrity: {INTEGRITY}}}\n"), "    hasBin: true\n");
  assert_rejected(&no_resolution, "ERR_PNPM_BROKEN_LOCKFILE", "resolution").await;
  let no_version = full.replace("        version: '1.0.0'\n", "");
  assert_rejected(&no_version, "ERR_PNPM_BROKEN_LOCKFILE", "version").await;
  // A resolution of no known kind.
  let unknown = full.replace(&format!("{{integrity: {INTEGRITY}}}"), "{type: svn, url: x}");
  assert_rejected(&unknown, "ERR_PNPM_UNSUPPORTED_RESOLUTION", "x@1.0.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_without_its_package_entry_is_a_missing_dependency() {
  let text = with_snapshot_dependency("y", "1.0.0")
    .replace(&format!("  y@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\n"), "");
  assert_rejected(&text, "ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY", "snapshots['y@1.0.0']").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependency_names_that_would_leave_node_modules_are_refused() {
  for name in ["../../etc", "node_modules/../x", "@scope/../x", "..", ".bin", "/etc/x", "a\\\\b", "@x", ""] {
    let text = with_dependency(name, "x@1.0.0");
    assert_rejected(&text, "ERR_PNPM_INVALID_DEPENDENCY_NAME", "importers['.']").await;
  }
  // The same in a snapshot: an alias that would escape its slot.
  for name in ["../../../../x", "../y", "@s/../../y"] {
    let text = with_snapshot_dependency(name, "y@1.0.0");
    assert_rejected(&text, "ERR_PNPM_INVALID_DEPENDENCY_NAME", "snapshots['x@1.0.0']").await;
  }
  // And as the package name of a snapshot key.
  let text = with_dependency("x", "../../x@1.0.0")
    .replace("  x@1.0.0:\n    resolution", "  ../../x@1.0.0:\n    resolution")
    .replace("  x@1.0.0: {}", "  ../../x@1.0.0: {}");
  assert_rejected(&text, "ERR_PNPM_INVALID_DEPENDENCY_NAME", "../../x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_snapshots_that_would_share_a_slot_are_refused() {
  let text = format!(
    "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      a:\n        specifier: '1'\n        version: 1.0.0(b@1.0.0)\n      c:\n        specifier: '1'\n        version: a@1.0.0_b@1.0.0\npackages:\n  a@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\n  a@1.0.0_b@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\n  b@1.0.0:\n    resolution: {{integrity: {INTEGRITY}}}\nsnapshots:\n  a@1.0.0(b@1.0.0):\n    dependencies:\n      b: 1.0.0\n  a@1.0.0_b@1.0.0: {{}}\n  b@1.0.0: {{}}\n"
  );
  assert_rejected(&text, "ERR_PNPM_BROKEN_LOCKFILE", "collides").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_importer_id_that_is_an_absolute_path_is_refused() {
  let text = with_dependency("x", "1.0.0").replace("  .:\n", "  /tmp/elsewhere:\n");
  assert_rejected(&text, "ERR_PNPM_BROKEN_LOCKFILE", "importers['/tmp/elsewhere']").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrity_that_does_not_parse_is_refused_before_anything_is_written() {
  for integrity in ["sha512-!!!", "md5-AAAA", "not-an-sri", "sha512"] {
    assert_rejected(&with_integrity(integrity), "ERR_PNPM_INVALID_INTEGRITY", "x@1.0.0").await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_outside_the_workspace_is_a_symlink_and_nothing_more() {
  // pnpm links `link:` dependencies wherever they point; nothing is written there.
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let project = tmp.path().join("p");
  std::fs::create_dir_all(&project).unwrap();
  let text = "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      far:\n        specifier: link:../../far\n        version: link:../../far\n";
  std::fs::write(project.join("pnpm-lock.yaml"), text).unwrap();
  run(&project, options(&registry, &tmp.path().join("store"))).await.0.unwrap();
  let link = std::fs::read_link(project.join("node_modules/far")).unwrap();
  assert_eq!(link, std::path::Path::new("../../../far"));
  assert!(!tmp.path().join("../far").exists());
  assert!(registry.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_named_like_its_package_does_not_replace_it() {
  // pnpm never links a child under the package's own name (the package is there).
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  let (project, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&project).unwrap();
  let x = support::Pkg::new("x", "1.0.0");
  let x2 = support::Pkg::new("x", "2.0.0");
  let text = support::publish(&registry, &[x, x2], &[("x", "1.0.0")]).replace(
    "  'x@1.0.0': {}",
    "  'x@1.0.0':\n    dependencies:\n      x: 2.0.0\n      other: link:../../outside",
  );
  std::fs::write(project.join("pnpm-lock.yaml"), text).unwrap();
  run(&project, options(&registry, &store)).await.0.unwrap();
  let pkg = project.join("node_modules/.pnpm/x@1.0.0/node_modules/x");
  assert!(!std::fs::symlink_metadata(&pkg).unwrap().file_type().is_symlink());
  assert_eq!(std::fs::read_to_string(pkg.join("index.js")).unwrap(), "module.exports = 'x@1.0.0'\n");
}
