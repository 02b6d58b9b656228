use std::path::{Component, Path, PathBuf};

use crate::error::LinkError;

/// The path that leads from directory `from` to `to` (both absolute and normalised).
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
  let from: Vec<Component> = from.components().collect();
  let to: Vec<Component> = to.components().collect();
  let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
  let mut out = PathBuf::new();
  for _ in common..from.len() {
    out.push("..");
  }
  for c in &to[common..] {
    out.push(c.as_os_str());
  }
  if out.as_os_str().is_empty() {
    out.push(".");
  }
  out
}

/// Makes `link` a relative symlink to the directory `target`, replacing whatever was there
/// (pnpm's force semantics). Creates the parent directory when missing.
pub fn symlink_dir(target: &Path, link: &Path) -> Result<(), LinkError> {
  let parent = link.parent().unwrap_or(Path::new("."));
  let relative = relative_path(parent, target);
  let err = |source| LinkError::Symlink { link: link.to_path_buf(), target: target.to_path_buf(), source };
  match make_symlink(&relative, link) {
    Ok(()) => Ok(()),
    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
      if std::fs::read_link(link).is_ok_and(|existing| existing == relative) {
        return Ok(());
      }
      match std::fs::symlink_metadata(link) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(link).map_err(err)?,
        Ok(_) => std::fs::remove_file(link).map_err(err)?,
        Err(_) => {}
      }
      make_symlink(&relative, link).map_err(err)
    }
    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
      std::fs::create_dir_all(parent).map_err(err)?;
      make_symlink(&relative, link).map_err(err)
    }
    Err(e) => Err(err(e)),
  }
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
  std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn make_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
  std::os::windows::fs::symlink_dir(target, link)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn relative_paths() {
    assert_eq!(
      relative_path(
        Path::new("/p/node_modules/.pnpm/a@1/node_modules"),
        Path::new("/p/node_modules/.pnpm/b@1/node_modules/b")
      ),
      PathBuf::from("../../b@1/node_modules/b")
    );
    assert_eq!(
      relative_path(
        Path::new("/p/node_modules/@s"),
        Path::new("/p/node_modules/.pnpm/@s+x@1/node_modules/@s/x")
      ),
      PathBuf::from("../.pnpm/@s+x@1/node_modules/@s/x")
    );
  }

  #[test]
  fn replaces_what_is_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    std::fs::create_dir(&target).unwrap();
    let link = dir.path().join("nm/@s/x");
    symlink_dir(&target, &link).unwrap();
    symlink_dir(&target, &link).unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("../../t"));
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();
    symlink_dir(&target, &link).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
  }
}
