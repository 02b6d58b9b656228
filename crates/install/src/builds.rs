//! Packages that need a build. The addon never runs lifecycle scripts: it reports which
//! packages need one, in the order they must run (dependencies first), and records them in
//! `.modules.yaml` the way pnpm does.

use std::collections::{BTreeMap, HashSet};

use pacquet_lockfile::{parse_pkg_key, ref_to_dep_path, remove_peer_suffix, DependencyRef, Lockfile};

/// pnpm's `allowBuilds`: `name` or `name@version` → allowed.
#[derive(Debug, Clone, Default)]
pub struct BuildPolicy {
  pub allow: BTreeMap<String, bool>,
  pub allow_all: bool,
}

impl BuildPolicy {
  /// `Some(true)` allowed, `Some(false)` explicitly disallowed, `None` not decided (pnpm
  /// blocks it and lists it as an ignored build).
  pub fn verdict(&self, dep_path: &str) -> Option<bool> {
    if self.allow_all {
      return Some(true);
    }
    let key = parse_pkg_key(remove_peer_suffix(dep_path))?;
    self.allow.get(&format!("{}@{}", key.name, key.version)).or_else(|| self.allow.get(key.name)).copied()
  }
}

/// `needs` sorted so that every package comes after the packages it depends on (directly or
/// not); ties keep the lockfile's order.
pub fn dependency_order(lockfile: &Lockfile, needs: &HashSet<String>) -> Vec<String> {
  let mut out = Vec::with_capacity(needs.len());
  let mut visited: HashSet<&str> = HashSet::new();
  for start in lockfile.snapshots.keys().filter(|k| needs.contains(*k)) {
    // Iterative post-order walk: deep dependency graphs must not overflow the stack.
    let mut stack: Vec<(&str, bool)> = vec![(start.as_str(), false)];
    while let Some((dep_path, expanded)) = stack.pop() {
      if expanded {
        if needs.contains(dep_path) {
          out.push(dep_path.to_string());
        }
        continue;
      }
      if !visited.insert(dep_path) {
        continue;
      }
      stack.push((dep_path, true));
      if let Some(snapshot) = lockfile.snapshots.get(dep_path) {
        for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
          if let DependencyRef::Snapshot(child) = ref_to_dep_path(reference, alias) {
            if let Some((child_key, _)) = lockfile.snapshots.get_key_value(&child) {
              if !visited.contains(child_key.as_str()) {
                stack.push((child_key.as_str(), false));
              }
            }
          }
        }
      }
    }
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn dependencies_build_first() {
    let text = "lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      a:
        specifier: '1'
        version: 1.0.0
packages:
  a@1.0.0:
    resolution: {integrity: sha512-AAAA}
  b@1.0.0:
    resolution: {integrity: sha512-AAAA}
  c@1.0.0:
    resolution: {integrity: sha512-AAAA}
snapshots:
  a@1.0.0:
    dependencies:
      b: 1.0.0
  b@1.0.0:
    dependencies:
      c: 1.0.0
  c@1.0.0: {}
";
    let lockfile = pacquet_lockfile::parse_lockfile(text, std::path::Path::new("x")).unwrap();
    let needs: HashSet<String> = ["a@1.0.0", "c@1.0.0"].iter().map(|s| s.to_string()).collect();
    assert_eq!(dependency_order(&lockfile, &needs), ["c@1.0.0", "a@1.0.0"]);
    let policy = BuildPolicy {
      allow: [("c".to_string(), true), ("a@1.0.0".to_string(), false)].into(),
      allow_all: false,
    };
    assert_eq!(policy.verdict("c@1.0.0"), Some(true));
    assert_eq!(policy.verdict("a@1.0.0"), Some(false));
    assert_eq!(policy.verdict("b@1.0.0"), None);
  }
}
