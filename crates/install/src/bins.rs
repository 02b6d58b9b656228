//! The files a package declares as executables (`bin`, `directories.bin`). pnpm makes them
//! executable when it links bins, whatever mode the tarball gave them; so do we, so the
//! tree (and the shared store blob) ends up as pnpm leaves it.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// In-package paths of the package's executables; paths that leave the package are ignored.
pub fn targets(manifest: &Value, files: &[(String, PathBuf, u32)]) -> Vec<String> {
  let mut out = Vec::new();
  match manifest.get("bin") {
    Some(Value::String(path)) => out.extend(clean(path)),
    Some(Value::Object(map)) => out.extend(map.values().filter_map(Value::as_str).filter_map(clean)),
    _ => {
      if let Some(dir) = manifest.pointer("/directories/bin").and_then(Value::as_str).and_then(clean) {
        let prefix = format!("{dir}/");
        out.extend(files.iter().filter(|(p, _, _)| p.starts_with(&prefix)).map(|(p, _, _)| p.clone()));
      }
    }
  }
  out
}

fn clean(path: &str) -> Option<String> {
  let mut parts = Vec::new();
  for c in Path::new(path).components() {
    match c {
      Component::Normal(s) => parts.push(s.to_str()?.to_string()),
      Component::CurDir => {}
      _ => return None,
    }
  }
  (!parts.is_empty()).then(|| parts.join("/"))
}

/// Adds the execute bits to every declared executable that lacks them.
pub fn make_executable(pkg_dir: &Path, manifest: &Value, files: &[(String, PathBuf, u32)]) {
  #[cfg(unix)]
  for target in targets(manifest, files) {
    use std::os::unix::fs::PermissionsExt;
    let path = pkg_dir.join(&target);
    let Ok(meta) = std::fs::metadata(&path) else {
      continue;
    };
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o111 != 0o111 {
      let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o111));
    }
  }
  #[cfg(not(unix))]
  let _ = (pkg_dir, manifest, files);
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn reads_bin_forms_and_stays_inside() {
    let files =
      vec![("bin/a".to_string(), PathBuf::new(), 0o644), ("lib/x.js".to_string(), PathBuf::new(), 0o644)];
    assert_eq!(targets(&json!({"bin": "./cli.js"}), &files), ["cli.js"]);
    assert_eq!(targets(&json!({"bin": {"a": "bin/a", "evil": "../../x"}}), &files), ["bin/a"]);
    assert_eq!(targets(&json!({"directories": {"bin": "./bin"}}), &files), ["bin/a"]);
    assert!(targets(&json!({"bin": "/etc/passwd"}), &files).is_empty());
  }
}
