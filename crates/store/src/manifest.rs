//! The part of `package.json` that pnpm keeps in a package's index row, and whether the
//! package needs a build.

use serde_json::{Map, Value};

const KEPT_FIELDS: [&str; 14] = [
  "bin",
  "bundledDependencies",
  "bundleDependencies",
  "cpu",
  "dependencies",
  "devDependencies",
  "directories",
  "engines",
  "libc",
  "name",
  "optionalDependencies",
  "os",
  "peerDependencies",
  "peerDependenciesMeta",
];
const LIFECYCLE_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// `version` first, then the kept fields present, then the install scripts; `None` when
/// nothing is kept (pnpm omits the field then).
pub fn bundled_manifest(package_json: &Value) -> Option<Value> {
  let obj = package_json.as_object()?;
  let mut kept = Map::new();
  for field in KEPT_FIELDS {
    if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
      kept.insert(field.to_string(), v.clone());
    }
  }
  let mut scripts = Map::new();
  if let Some(all) = obj.get("scripts").and_then(Value::as_object) {
    for name in LIFECYCLE_SCRIPTS {
      if let Some(s) = all.get(name).filter(|s| s.as_str().is_some_and(|s| !s.is_empty())) {
        scripts.insert(name.to_string(), s.clone());
      }
    }
  }
  if kept.is_empty() && scripts.is_empty() {
    return None;
  }
  let mut out = Map::new();
  out.insert("version".into(), obj.get("version").map(clean_version).unwrap_or_else(|| Value::from("0.0.0")));
  out.extend(kept);
  if !scripts.is_empty() {
    out.insert("scripts".into(), Value::Object(scripts));
  }
  Some(Value::Object(out))
}

/// A light `semver.clean(v, {loose: true})`: trims white space, a leading `=` or `v`.
fn clean_version(v: &Value) -> Value {
  match v.as_str() {
    Some(s) => Value::from(s.trim().trim_start_matches('=').trim_start_matches('v').trim()),
    None => v.clone(),
  }
}

/// pnpm's rule: install scripts, a `binding.gyp`, or files under `.hooks/`.
pub fn requires_build<'a>(manifest: Option<&Value>, mut paths: impl Iterator<Item = &'a str>) -> bool {
  let has_script = manifest.and_then(|m| m.get("scripts")).and_then(Value::as_object).is_some_and(|s| {
    LIFECYCLE_SCRIPTS.iter().any(|n| s.get(*n).is_some_and(|v| v.as_str().is_some_and(|v| !v.is_empty())))
  });
  has_script || paths.any(|p| p == "binding.gyp" || p.starts_with(".hooks/"))
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn keeps_pnpms_subset_in_order() {
    let pkg = json!({"name": "a", "version": "v1.0.0", "main": "x.js", "bin": {"a": "cli.js"},
      "scripts": {"test": "t", "postinstall": "p"}, "dependencies": {"b": "^1"}});
    let m = bundled_manifest(&pkg).unwrap();
    let keys: Vec<_> = m.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["version", "bin", "dependencies", "name", "scripts"]);
    assert_eq!(m["version"], "1.0.0");
    assert_eq!(m["scripts"], json!({"postinstall": "p"}));
    assert!(requires_build(Some(&m), std::iter::empty()));
    assert!(!requires_build(None, ["index.js"].into_iter()));
    assert!(requires_build(None, ["binding.gyp"].into_iter()));
  }
}
