//! Reading a lockfile from a path, a directory, or an already-parsed value, and checking
//! that it is complete before anything is installed from it.

use std::path::{Path, PathBuf};

use crate::dep_path::{parse_pkg_key, ref_to_dep_path, remove_peer_suffix};
use crate::error::LockfileError;
use crate::model::{DependencyRef, Lockfile};

pub const LOCKFILE_NAME: &str = "pnpm-lock.yaml";

/// What the caller handed us.
pub enum LockfileSource {
  /// `pnpm-lock.yaml` itself, or the directory that holds it.
  Path(PathBuf),
  /// Already parsed (e.g. a JS object), same shape as the YAML.
  Value(serde_json::Value),
}

/// Reads, parses and validates a lockfile. Returns it with the path of the file (if any).
pub fn read_lockfile(source: LockfileSource) -> Result<(Lockfile, Option<PathBuf>), LockfileError> {
  match source {
    LockfileSource::Path(path) => {
      let (text, file) = read_lockfile_text(&path)?;
      Ok((parse_lockfile(&text, &file)?, Some(file)))
    }
    LockfileSource::Value(value) => Ok((lockfile_from_value(value)?, None)),
  }
}

/// The text of `pnpm-lock.yaml` at `path` (the file, or the directory holding it).
pub fn read_lockfile_text(path: &Path) -> Result<(String, PathBuf), LockfileError> {
  let file = if path.is_dir() { path.join(LOCKFILE_NAME) } else { path.to_path_buf() };
  match std::fs::read_to_string(&file) {
    Ok(text) => Ok((text, file)),
    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LockfileError::NotFound { path: file }),
    Err(source) => Err(LockfileError::Io { path: file, source }),
  }
}

/// Parses and validates lockfile text; `file` names it in errors.
pub fn parse_lockfile(text: &str, file: &Path) -> Result<Lockfile, LockfileError> {
  let lockfile = parse_yaml(text, file)?;
  validate(&lockfile)?;
  Ok(lockfile)
}

/// Validates an already-parsed lockfile (a JS object, say).
pub fn lockfile_from_value(value: serde_json::Value) -> Result<Lockfile, LockfileError> {
  check_version_value(&value)?;
  let lockfile = serde_json::from_value::<Lockfile>(value)
    .map_err(|e| LockfileError::Broken { location: "the lockfile object".into(), message: e.to_string() })?;
  validate(&lockfile)?;
  Ok(lockfile)
}

fn parse_yaml(text: &str, file: &Path) -> Result<Lockfile, LockfileError> {
  let broken = |message: String| LockfileError::Broken { location: file.display().to_string(), message };
  // The version is checked first so an old lockfile gets the version error rather than a
  // shape error. A line scan suffices: parsing the whole document twice would double the
  // cost of the hot path.
  let version = text
    .lines()
    .find_map(|line| line.strip_prefix("lockfileVersion:"))
    .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string());
  match version {
    Some(v) => check_version_value(&serde_json::json!({ "lockfileVersion": v }))?,
    None => {
      // Not at the start of a line: let the parser say what is wrong, or report it missing.
      let lockfile = serde_saphyr::from_str::<serde_json::Value>(text).map_err(|e| broken(e.to_string()))?;
      check_version_value(&lockfile)?;
    }
  }
  match crate::pieces::parse_in_pieces(text) {
    Some(lockfile) => Ok(lockfile),
    None => serde_saphyr::from_str::<Lockfile>(text).map_err(|e| broken(e.to_string())),
  }
}

fn check_version_value(value: &serde_json::Value) -> Result<(), LockfileError> {
  let version = match value.get("lockfileVersion") {
    Some(serde_json::Value::String(s)) => s.clone(),
    Some(serde_json::Value::Number(n)) => n.to_string(),
    Some(serde_json::Value::Null) | None => {
      return Err(LockfileError::Broken {
        location: "lockfileVersion".into(),
        message: "lockfileVersion is missing".into(),
      })
    }
    Some(other) => other.to_string(),
  };
  // pnpm reads any 9.x lockfile; a major change is a breaking change.
  if version == "9" || version.starts_with("9.") {
    Ok(())
  } else {
    Err(LockfileError::UnsupportedVersion { found: version })
  }
}

/// Every reference must resolve, and every name must be a plain package name: a lockfile
/// can come from anyone, and names become paths.
fn validate(lockfile: &Lockfile) -> Result<(), LockfileError> {
  let check_ref = |alias: &str, reference: &str, referrer: &str| -> Result<(), LockfileError> {
    check_name(alias, referrer)?;
    if let DependencyRef::Snapshot(dep_path) = ref_to_dep_path(reference, alias) {
      if !lockfile.snapshots.contains_key(&dep_path) {
        return Err(LockfileError::MissingDependency { missing: dep_path, referrer: referrer.to_string() });
      }
    }
    Ok(())
  };
  for (id, importer) in &lockfile.importers {
    let referrer = format!("importers['{id}']");
    // Ids are paths relative to the lockfile; an absolute one would put node_modules anywhere.
    let absolute = id.starts_with(['/', '\\']) || id.as_bytes().get(1) == Some(&b':') || id.contains('\0');
    if absolute || id.is_empty() {
      return Err(LockfileError::Broken {
        location: referrer,
        message: "an importer id must be a path relative to the lockfile's directory".into(),
      });
    }
    for (alias, dep) in
      importer.dependencies.iter().chain(&importer.dev_dependencies).chain(&importer.optional_dependencies)
    {
      check_ref(alias, &dep.version, &referrer)?;
    }
  }
  for (key, snapshot) in &lockfile.snapshots {
    let referrer = format!("snapshots['{key}']");
    let pkg_key = remove_peer_suffix(key);
    let Some(parsed) = parse_pkg_key(pkg_key) else {
      return Err(LockfileError::Broken {
        location: referrer,
        message: "the key is not of the form name@version".into(),
      });
    };
    check_name(parsed.name, &referrer)?;
    let Some(package) = lockfile.packages.get(pkg_key) else {
      return Err(LockfileError::MissingDependency { missing: pkg_key.to_string(), referrer });
    };
    if package.resolution.classify().is_none() {
      return Err(LockfileError::UnsupportedResolution {
        key: pkg_key.to_string(),
        detail: "no integrity, tarball or directory".into(),
      });
    }
    for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
      check_ref(alias, reference, &referrer)?;
    }
  }
  Ok(())
}

/// npm names: optional `@scope/`, then one path segment; nothing that walks directories.
fn check_name(name: &str, referrer: &str) -> Result<(), LockfileError> {
  let bad =
    || LockfileError::InvalidDependencyName { name: name.to_string(), referrer: referrer.to_string() };
  let segment_ok =
    |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']) && !s.starts_with('.');
  match name.strip_prefix('@') {
    Some(scoped) => {
      let (scope, rest) = scoped.split_once('/').ok_or_else(bad)?;
      if segment_ok(scope) && segment_ok(rest) {
        Ok(())
      } else {
        Err(bad())
      }
    }
    None if segment_ok(name) => Ok(()),
    None => Err(bad()),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn parse(text: &str) -> Result<Lockfile, LockfileError> {
    parse_lockfile(text, Path::new("pnpm-lock.yaml"))
  }

  const GOOD: &str = "lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      foo:
        specifier: ^1.0.0
        version: 1.0.0(bar@2.0.0)
      baz:
        specifier: npm:qux@1.0.0
        version: qux@1.0.0
packages:
  foo@1.0.0:
    resolution: {integrity: sha512-AAAA}
  bar@2.0.0:
    resolution: {integrity: sha512-BBBB}
  qux@1.0.0:
    resolution: {tarball: 'http://127.0.0.1/qux.tgz'}
snapshots:
  foo@1.0.0(bar@2.0.0):
    dependencies:
      bar: 2.0.0
  bar@2.0.0: {}
  qux@1.0.0: {}
";

  #[test]
  fn reads_a_v9_lockfile() {
    let lockfile = parse(GOOD).unwrap();
    assert_eq!(lockfile.snapshots.len(), 3);
    assert_eq!(lockfile.importers["."].dependencies["baz"].version, "qux@1.0.0");
  }

  fn code(err: LockfileError) -> String {
    miette::Diagnostic::code(&err).map(|c| c.to_string()).unwrap_or_default()
  }

  #[test]
  fn rejects_other_versions_and_broken_yaml() {
    assert_eq!(code(parse("lockfileVersion: '6.0'\n").unwrap_err()), "ERR_PNPM_LOCKFILE_BREAKING_CHANGE");
    assert_eq!(code(parse("lockfileVersion: 5.4\n").unwrap_err()), "ERR_PNPM_LOCKFILE_BREAKING_CHANGE");
    assert_eq!(
      code(parse("lockfileVersion: '9.0'\nimporters: [\n").unwrap_err()),
      "ERR_PNPM_BROKEN_LOCKFILE"
    );
    assert_eq!(code(parse("foo: bar\n").unwrap_err()), "ERR_PNPM_BROKEN_LOCKFILE");
  }

  #[test]
  fn rejects_dangling_references() {
    let text = GOOD.replace("  bar@2.0.0: {}\n", "");
    let err = parse(&text).unwrap_err();
    assert!(err.to_string().contains("bar@2.0.0"), "{err}");
    assert_eq!(code(err), "ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY");
    let text = GOOD.replace("  qux@1.0.0:\n    resolution: {tarball: 'http://127.0.0.1/qux.tgz'}\n", "");
    assert_eq!(code(parse(&text).unwrap_err()), "ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY");
  }

  #[test]
  fn rejects_names_that_walk_out_of_node_modules() {
    for name in ["../../etc", "node_modules/../x", "@scope/../x", ".bin", "@x", "a\\b"] {
      let text = GOOD.replace(
        "    dependencies:\n      bar: 2.0.0",
        &format!("    dependencies:\n      '{name}': bar@2.0.0"),
      );
      assert_eq!(code(parse(&text).unwrap_err()), "ERR_PNPM_INVALID_DEPENDENCY_NAME", "{name}");
    }
  }
}
