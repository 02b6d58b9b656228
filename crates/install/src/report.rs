//! Events that only pnpm's reporter needs: each importer's manifest and the direct
//! dependencies an install links anew. Built only when someone listens.

use std::path::Path;

use pacquet_lockfile::{parse_pkg_key, ref_to_dep_path, remove_peer_suffix, DependencyRef, Lockfile};
use serde_json::Value;

use crate::events::{Event, RootDep};
use crate::plan::ImporterPlan;

/// `pnpm:package-manifest` for one importer directory.
pub(crate) fn package_manifest(dir: &Path) -> Event {
  let initial = std::fs::read(dir.join("package.json"))
    .ok()
    .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    .filter(Value::is_object)
    .unwrap_or_else(|| Value::Object(Default::default()));
  Event::PackageManifest { prefix: dir.to_string_lossy().into_owned(), initial }
}

/// The direct dependencies of `importers` (the plan's, in the lockfile's importer order) whose
/// `node_modules` link does not already point at its target. Call before linking.
pub(crate) fn new_direct_deps(lockfile: &Lockfile, importers: &[ImporterPlan]) -> Vec<RootDep> {
  let mut out = Vec::new();
  for ((_, importer), plan) in lockfile.importers.iter().zip(importers) {
    let Some(dir) = plan.modules_dir.parent() else { continue };
    for (alias, target) in &plan.links {
      let link = plan.modules_dir.join(alias);
      // pnpm reports a direct dependency only when its link is new or changed. The link is
      // ours or pnpm's, both relative: one readlink says it (resolving both paths costs a
      // readlink per path component).
      let wanted = link.parent().map(|from| pacquet_link::relative_path(from, target));
      if std::fs::read_link(&link).is_ok_and(|existing| Some(existing) == wanted) {
        continue;
      }
      let (dependency_type, dep) = if let Some(d) = importer.dependencies.get(alias) {
        ("prod", d)
      } else if let Some(d) = importer.dev_dependencies.get(alias) {
        ("dev", d)
      } else if let Some(d) = importer.optional_dependencies.get(alias) {
        ("optional", d)
      } else {
        continue;
      };
      let mut root = RootDep {
        prefix: dir.to_string_lossy().into_owned(),
        dependency_type,
        id: dep.version.clone(),
        name: alias.clone(),
        real_name: alias.clone(),
        version: None,
        linked_from: None,
      };
      match ref_to_dep_path(&dep.version, alias) {
        DependencyRef::Snapshot(dep_path) => {
          let key = remove_peer_suffix(&dep_path);
          if let Some(k) = parse_pkg_key(key) {
            root.real_name = k.name.to_string();
            root.version = Some(k.version.to_string());
          }
          root.id = key.to_string();
        }
        DependencyRef::Link(_) => {
          let manifest = std::fs::read(target.join("package.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
          let field =
            |k: &str| manifest.as_ref().and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_string);
          if let Some(name) = field("name") {
            root.real_name = name;
          }
          root.version = field("version");
          root.linked_from = Some(target.to_string_lossy().into_owned());
        }
      }
      out.push(root);
    }
  }
  out
}
