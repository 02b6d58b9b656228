//! Lockfile text → parse + validate → what the installer derives from it before writing
//! anything (store ids, slot names, package directories, platform checks).

use std::collections::HashMap;
use std::path::{Component, Path};

use pacquet_lockfile::{
  dep_path_to_filename, is_platform_compatible, lockfile_from_value, parse_lockfile, parse_pkg_key,
  ref_to_dep_path, remove_peer_suffix, DependencyRef, Host, Lockfile, LockfileError, SupportedArchitectures,
};

/// `virtualStoreDirMaxLength` values: pnpm's default and a short one that forces hash tails.
const MAX_LENGTHS: [usize; 2] = [120, 40];

pub fn check(data: &[u8]) {
  // The installer reads the file as UTF-8 text; other bytes never reach the parser.
  let Ok(text) = std::str::from_utf8(data) else { return };
  check_result(parse_lockfile(text, Path::new("pnpm-lock.yaml")));
  // The addon also takes the lockfile as a JS object; JSON text is the nearest thing.
  if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
    check_result(lockfile_from_value(value));
  }
}

fn check_result(result: Result<Lockfile, LockfileError>) {
  match result {
    Ok(lockfile) => plan(&lockfile),
    // Every rejection must reach JS with an ERR_PNPM_* code.
    Err(err) => {
      let code = miette::Diagnostic::code(&err).map(|c| c.to_string()).unwrap_or_default();
      assert!(code.starts_with("ERR_PNPM_"), "no error code for {err}");
    }
  }
}

/// What the installer's planner relies on once validation has passed: it indexes `snapshots`
/// and `packages` by the keys below without checking, and joins names into paths.
fn plan(lockfile: &Lockfile) {
  let host = Host { os: "linux".into(), cpu: "x64".into(), libc: Some("glibc".into()) };
  let supported = SupportedArchitectures::default();
  let mut slots: HashMap<String, &str> = HashMap::new();
  for (dep_path, snapshot) in &lockfile.snapshots {
    let pkg_key = remove_peer_suffix(dep_path);
    let package =
      lockfile.packages.get(pkg_key).unwrap_or_else(|| panic!("validated {dep_path} has no package"));
    let key = parse_pkg_key(pkg_key).unwrap_or_else(|| panic!("validated key {pkg_key} has no version"));
    assert_stays_inside(key.name, 2);
    let _ = is_platform_compatible(
      package.os.as_deref(),
      package.cpu.as_deref(),
      package.libc.as_deref(),
      &host,
      &supported,
    );
    let _ = package.resolution.classify();
    for max_length in MAX_LENGTHS {
      let slot = dep_path_to_filename(dep_path, max_length);
      assert_stays_inside(&slot, 1);
      // Longer names are cut and given a hash tail, which keeps them within the limit.
      assert!(slot.len() <= max_length, "slot {slot:?} is longer than {max_length}");
    }
    // Distinct snapshots may collide (the planner reports it); the name must not depend on
    // anything but the dep path.
    let slot = dep_path_to_filename(dep_path, MAX_LENGTHS[0]);
    assert_eq!(slot, dep_path_to_filename(dep_path, MAX_LENGTHS[0]));
    slots.insert(slot, dep_path);
    for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
      check_reference(lockfile, alias, reference);
    }
  }
  for importer in lockfile.importers.values() {
    let deps =
      importer.dependencies.iter().chain(&importer.dev_dependencies).chain(&importer.optional_dependencies);
    for (alias, dep) in deps {
      check_reference(lockfile, alias, &dep.version);
    }
  }
}

fn check_reference(lockfile: &Lockfile, alias: &str, reference: &str) {
  // An alias becomes `node_modules/<alias>`.
  assert_stays_inside(alias, 2);
  if let DependencyRef::Snapshot(dep_path) = ref_to_dep_path(reference, alias) {
    assert!(lockfile.snapshots.contains_key(&dep_path), "validated reference {dep_path} is dangling");
    let name = parse_pkg_key(remove_peer_suffix(&dep_path)).map_or(dep_path.as_str(), |k| k.name);
    assert_stays_inside(name, 2);
  }
}

/// `name` is at most `max_parts` plain path components: joined to a directory, it names
/// something inside it.
fn assert_stays_inside(name: &str, max_parts: usize) {
  assert!(!name.is_empty() && !name.contains(['\\', '\0']), "unsafe name {name:?}");
  let parts: Vec<_> = Path::new(name).components().collect();
  assert!(
    parts.len() <= max_parts && parts.iter().all(|c| matches!(c, Component::Normal(_))),
    "name {name:?} does not stay inside its directory"
  );
  // `Path` drops `.` components and repeated slashes silently; the raw segments must be clean too.
  assert!(name.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "unsafe name {name:?}");
}
